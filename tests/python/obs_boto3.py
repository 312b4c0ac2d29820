"""boto3, unmodified, against obs-gateway: one operation per run, the outcome as JSON on stdout.

usage: obs_boto3.py ENDPOINT ACCESS_KEY SECRET_KEY SIGNATURE OP ARGS...
  SIGNATURE: "default" (botocore's default: SigV4 for requests, V2 for presigned URLs),
             "s3" (signature_version='s3', V2) or "s3v4" (SigV4 for presigned URLs too)
  OP: create-bucket B | put B K FILE [KEY_ID|-] [kms] | get B K OUT [RANGE] | head B K
      | delete B K | list B [PREFIX] | copy B K SRC_B SRC_K [KEY_ID|-] [kms]
      | put-encryption B [KEY_ID|-] | put-policy B JSON_FILE
      | multipart B K FILE PART_SIZE [KEY_ID|-] [kms] (parts uploaded last first, listed, completed)
      | abort-multipart B K (initiate, one part, abort)
      | post-form B K FILE (generate_presigned_post asking for SSE-KMS, posted with requests)
      | post-form-uncovered B K FILE (the same form with a field the policy does not name)
      | concurrent-puts B K N SIZE (N SSE-KMS puts of N different bodies at once, then a GET:
        which body won, -1 for none)
      | dropped-put B K (a presigned PUT announcing 1 MB that sends 100 kB and hangs up)
      | api-surface B (creates B; listings, metadata, conditional GETs, batch delete, deletes B)
      | presign-url B K (a presigned plain PUT URL, for raw clients)
      | managed-copy B K SRC_B SRC_K (boto3's managed copy with SSE-KMS: UploadPartCopy in 5 MiB
        ranges above 5 MiB)
      | presigned-put B K FILE (botocore's presigned URL asking for SSE-KMS, used by raw HTTP:
        botocore presigns V2 and moves x-amz-server-side-encryption into the query)
      | presigned-put-stripped B K FILE (the same URL without its SSE query parameters)
      | listing-edges B (creates B: paginated listings with a delimiter, v1 and v2, one entry
        per page; max-keys 0; bucket names, regions and key lengths at and past their limits;
        deleting a bucket with an upload in progress; the caller's buckets by prefix and region,
        one per page; B's versioning)
      | part-reads B (creates B: multipart objects, plain and SSE-KMS, read and headed by
        partNumber; an object written whole by part 1 and 2; partNumber with a Range)
      | uploads B (creates B: five uploads in progress, listed whole, one per page, by a
        delimiter, under a prefix; all aborted from the listing, then B deleted)
      | list-uploads B (the keys of B's uploads in progress)
      | limits B (creates B: multipart parts under and at 100 KiB, user metadata at and over
        8 KiB, copies of an object onto itself with and without a change; what is left)
      | read-while-replaced B (creates B: one thread replaces an SSE-KMS object 150 times while
        two read it and one copies it, at most 30 s: how each read and copy ended)
      | probe-other B K OWN_B (B another tenant's bucket holding K, OWN_B the caller's: what
        conditional writes into B and conditional copies out of B answer)
      | stored-headers B (creates B: the headers a PUT, a multipart upload and a copy set, as
        HEAD and GET answer them)
      | conditions B (creates B: conditional writes, among them N racing If-None-Match: * puts,
        conditional reads and copies, object lock and tag headers; what is left)
      | sub-resources B (creates B with SSE-KMS objects; calls of sub-resources the gateway does
        not serve, other versions than the current one, GET's response-* overrides; what is
        left of the objects and the bucket)
      | tampered-bodies B (creates B with a and b: configuration documents changed after
        signing, refused; what is left)
      | mutated-documents B (creates B with Object Lock: every configuration document cut,
        rotated and in hostile forms, signed; 5xx answers, refusals without an error document,
        refusals that changed the configuration)
      | mutated-headers B (creates B: the headers and query parameters of a PUT, GET, HEAD,
        copy and listing, each with hostile values, signed; 5xx answers, refusals without an
        error document, refusals that changed the object)
      | tagging B AK SK (creates B: object tags set, read, replaced and removed through every
        kind of write; S3's limits; AK/SK another tenant's)
      | versions B (creates B: ListObjectVersions whole, one entry per page with a delimiter,
        with bad markers; then boto3's resource empties B as such code does,
        bucket.object_versions.delete(), and deletes B)
      | storage-classes B (creates B: PUT, copy, multipart upload and form upload asking for
        storage classes; what is left)
      | bucket-configs B AK SK (creates B: the reads of each bucket configuration the gateway
        keeps none of, by the owner; one by another tenant; setting one)
      | acls B AK SK (creates B: bucket and object ACLs read and set, ACLs other than the
        owner's alone refused on new buckets, objects and uploads; AK/SK another tenant's)
      | website-redirect B (creates B: objects written with a website redirect by PUT, copy,
        multipart upload and form; what HEAD answers of each; a malformed one)
      | form-redirect B (creates B: form uploads with success_action_redirect)
      | bucket-keys B (creates B: S3 Bucket Keys asked for by each call that can; what is left)
      | late-parameters B (creates B and three buckets named after it: object ownership at
        creation, an abort conditional on its upload's initiation time)
      | crc64nvme B (creates B: CRC-64/NVME values of a PUT, a multipart upload and a copy;
        needs awscrt, botocore's optional CRC-64/NVME)
      | multipart-checksums B (creates B: multipart uploads with checksums, composite and full
        object, managed and by hand; what each call answers and refuses)
      | versioning B AK SK (creates B: versioning enabled, objects written, read, copied and
        deleted by version, delete markers, suspension, listings of versions, emptied and
        deleted; AK/SK another tenant's)
      | object-lock B (creates B with Object Lock and B-plain without: retention and legal hold by
        default, by header and by their calls; what deletes and changes they allow)
      | s3-policy B AK SK (creates B: a bucket policy written as S3's documents write it, which
        requires SSE-KMS under secure/ and lets everyone read public/; what uploads and another
        tenant's reads get; AK/SK another tenant's)
      | lifecycle B PHASE AK SK (bucket lifecycle: PHASE "write" creates B with objects and
        uploads, sets rules that expire some by days, by a date, by tag and size, end uploads,
        one disabled, one with a date already past; reads them back; refused configurations; the
        Expiration each object answers; AK/SK another tenant's | "read": the keys listed and the
        uploads in progress | "delete": deletes the configuration and reads it)
Refusals print {"error": code, "status": http_status}; the script fails only on a broken client.
"""
import json
import sys
import http.client
import urllib.parse

import boto3
import botocore.exceptions
from botocore.config import Config


def client(endpoint, ak, sk, signature, kind=boto3.client):
    kwargs = {"retries": {"total_max_attempts": 1}, "s3": {"addressing_style": "path"}}
    if signature in ("s3", "s3v4"):
        kwargs["signature_version"] = signature
    return kind(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ak,
        aws_secret_access_key=sk,
        region_name="us-east-1",
        config=Config(**kwargs),
    )


def resource(endpoint, ak, sk, signature):
    """boto3's resource API, configured as `client`."""
    return client(endpoint, ak, sk, signature, kind=boto3.resource)


def outcome(resp):
    meta = resp["ResponseMetadata"]
    return {"status": meta["HTTPStatusCode"], "headers": meta["HTTPHeaders"]}


def raw_put(url, data, headers, strip_sse=False):
    """PUT with exactly these headers (urllib would add a Content-Type the signer did not sign).
    With strip_sse, the URL's SSE query parameters are removed first (a tampered URL)."""
    u = urllib.parse.urlsplit(url)
    if strip_sse:
        kept = [p for p in u.query.split("&") if "server-side-encryption" not in p.lower()]
        u = u._replace(query="&".join(kept))
    conn = http.client.HTTPConnection(u.hostname, u.port)
    conn.request("PUT", u.path + "?" + u.query, body=data, headers=headers)
    r = conn.getresponse()
    body = r.read().decode()
    if r.status >= 300:
        code = body.split("<Code>")[1].split("</Code>")[0] if "<Code>" in body else ""
        return {"error": code, "status": r.status}
    return {"status": r.status, "headers": {k.lower(): v for k, v in r.getheaders()}}


def code_of(call):
    """The error code a call ends with, or "ok"."""
    try:
        call()
        return "ok"
    except botocore.exceptions.ClientError as e:
        return e.response["Error"].get("Code")


def api_surface(s3, bucket):
    """Buckets, listings, metadata, conditions and batch delete, observed for the test."""
    seen = {}
    s3.create_bucket(Bucket=bucket)
    for key in ["a/1", "a/2", "b/1", "c"]:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode(), Metadata={"color": "blue"})
    v1 = s3.list_objects(Bucket=bucket, Delimiter="/")
    seen["v1_prefixes"] = [p["Prefix"] for p in v1.get("CommonPrefixes", [])]
    seen["v1_keys"] = [o["Key"] for o in v1.get("Contents", [])]
    seen["v1_after_marker"] = [
        o["Key"] for o in s3.list_objects(Bucket=bucket, Marker="a/2").get("Contents", [])
    ]
    pages, keys, token = 0, [], None
    while True:
        extra = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket=bucket, MaxKeys=2, **extra)
        pages += 1
        keys += [o["Key"] for o in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    seen["v2_pages"], seen["v2_keys"] = pages, keys
    seen["v2_prefix"] = [
        o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="a/").get("Contents", [])
    ]
    head = s3.head_object(Bucket=bucket, Key="c")
    seen["metadata"] = head["Metadata"]
    etag = head["ETag"]
    seen["if_none_match"] = code_of(lambda: s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag))
    seen["if_match_wrong"] = code_of(
        lambda: s3.get_object(Bucket=bucket, Key="c", IfMatch='"0123"')
    )
    seen["if_match_right"] = code_of(lambda: s3.get_object(Bucket=bucket, Key="c", IfMatch=etag))
    seen["missing_key"] = code_of(lambda: s3.get_object(Bucket=bucket, Key="nope"))
    seen["listed_buckets"] = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    seen["delete_full_bucket"] = code_of(lambda: s3.delete_bucket(Bucket=bucket))
    deleted = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": k} for k in ["a/1", "a/2", "b/1", "c"]]}
    )
    seen["batch_deleted"] = sorted(d["Key"] for d in deleted.get("Deleted", []))
    seen["left"] = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    seen["delete_empty_bucket"] = code_of(lambda: s3.delete_bucket(Bucket=bucket))
    seen["head_deleted_bucket"] = code_of(lambda: s3.head_bucket(Bucket=bucket))
    return seen


def listing_edges(s3, bucket):
    """Paginated listings that end pages on common prefixes, and the naming limits."""
    seen = {}
    s3.create_bucket(Bucket=bucket)
    for key in ["a/1", "a/2", "a/b/3", "b/1", "c", "d/1"]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    for name, op in [("v2", "list_objects_v2"), ("v1", "list_objects")]:
        pages = s3.get_paginator(op).paginate(
            Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 1, "MaxItems": 50})
        entries = []
        for page in pages:
            entries += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
            entries += [o["Key"] for o in page.get("Contents", [])]
        seen[f"{name}_one_per_page"] = entries
        pages = s3.get_paginator(op).paginate(
            Bucket=bucket, Prefix="a/", Delimiter="/", PaginationConfig={"PageSize": 1})
        entries = []
        for page in pages:
            entries += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
            entries += [o["Key"] for o in page.get("Contents", [])]
        seen[f"{name}_under_a"] = entries
    empty = s3.list_objects_v2(Bucket=bucket, MaxKeys=0)
    seen["max_keys_0"] = [empty["IsTruncated"], empty["KeyCount"]]
    owners = lambda r: sorted({o.get("Owner", {}).get("ID", "none") for o in r["Contents"]})
    seen["owner_v2"] = owners(s3.list_objects_v2(Bucket=bucket))
    seen["owner_v2_fetched"] = owners(s3.list_objects_v2(Bucket=bucket, FetchOwner=True))
    seen["owner_v1"] = owners(s3.list_objects(Bucket=bucket))
    seen["bucket_names"] = {n: code_of(lambda n=n: s3.create_bucket(Bucket=n))
                            for n in ["a..b", "a-.b", "192.168.1.1", "ok.name-1"]}
    seen["bucket_regions"] = {
        region: code_of(lambda region=region: s3.create_bucket(
            Bucket=bucket + "-" + region, CreateBucketConfiguration={"LocationConstraint": region}))
        for region in ["region", "cn-north-4"]}
    other = bucket + "-uploads"
    s3.create_bucket(Bucket=other)
    uid = s3.create_multipart_upload(Bucket=other, Key="k")["UploadId"]
    s3.upload_part(Bucket=other, Key="k", UploadId=uid, PartNumber=1, Body=b"part")
    seen["delete_bucket_with_upload"] = code_of(lambda: s3.delete_bucket(Bucket=other))
    s3.abort_multipart_upload(Bucket=other, Key="k", UploadId=uid)
    seen["delete_bucket_after_abort"] = code_of(lambda: s3.delete_bucket(Bucket=other))
    pages = s3.get_paginator("list_buckets").paginate(
        Prefix=bucket, PaginationConfig={"PageSize": 1, "MaxItems": 20})
    seen["buckets_one_per_page"] = [[b["Name"] for b in p["Buckets"]] for p in pages]
    seen["buckets_in_another_region"] = [
        b["Name"] for b in s3.list_buckets(Prefix=bucket, BucketRegion="cn-north-4")["Buckets"]]
    seen["versioning"] = s3.get_bucket_versioning(Bucket=bucket).get("Status", "never enabled")
    seen["key_1024"] = code_of(lambda: s3.put_object(Bucket=bucket, Key="k" * 1024, Body=b"x"))
    seen["key_1025"] = code_of(lambda: s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x"))
    return seen


def upload_parts(s3, bucket, key, bodies, **kw):
    """Initiates an upload of `key` and uploads `bodies` as parts 1, 2, ...: its ID, the parts'
    list for completion, and the completion call (not made)."""
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key, **kw)["UploadId"]
    parts = [{"PartNumber": n, "ETag": s3.upload_part(
        Bucket=bucket, Key=key, UploadId=uid, PartNumber=n, Body=body)["ETag"]}
        for n, body in enumerate(bodies, start=1)]
    complete = lambda: s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=uid, MultipartUpload={"Parts": parts})
    return uid, parts, complete


def limits(s3, bucket):
    """OBS's limits on parts and metadata, and copies onto the object itself."""
    seen = {}
    s3.create_bucket(Bucket=bucket)
    kib100 = 100 * 1024

    def multipart(key, sizes, **kw):
        bodies = [bytes([64 + n]) * size for n, size in enumerate(sizes, start=1)]
        return upload_parts(s3, bucket, key, bodies, **kw)

    uid, parts, complete = multipart("small", [kib100 - 1, 10], ServerSideEncryption="aws:kms")
    seen["part_under_100_kib"] = code_of(complete)
    seen["upload_kept"] = len(s3.list_parts(Bucket=bucket, Key="small", UploadId=uid)["Parts"])
    seen["nothing_stored"] = code_of(lambda: s3.head_object(Bucket=bucket, Key="small"))
    # The same upload, its first part cut again at 100 KiB: completes.
    r = s3.upload_part(Bucket=bucket, Key="small", UploadId=uid, PartNumber=1,
                       Body=b"A" * kib100)
    parts[0]["ETag"] = r["ETag"]
    seen["part_of_100_kib"] = code_of(complete)
    seen["small_size"] = s3.head_object(Bucket=bucket, Key="small")["ContentLength"]
    seen["one_small_part"] = code_of(multipart("one", [10])[2])

    def meta(size):
        return {"a": "v" * (size - 1)}

    seen["metadata_8_kib"] = code_of(
        lambda: s3.put_object(Bucket=bucket, Key="meta", Body=b"m", Metadata=meta(8192)))
    seen["metadata_over_8_kib"] = code_of(
        lambda: s3.put_object(Bucket=bucket, Key="meta2", Body=b"m", Metadata=meta(8193)))
    seen["metadata_over_8_kib_upload"] = code_of(
        lambda: s3.create_multipart_upload(Bucket=bucket, Key="meta3", Metadata=meta(8193)))
    seen["metadata_over_8_kib_copy"] = code_of(lambda: s3.copy_object(
        Bucket=bucket, Key="meta4", CopySource={"Bucket": bucket, "Key": "meta"},
        MetadataDirective="REPLACE", Metadata=meta(8193)))
    seen["uploads"] = [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]

    s3.put_object(Bucket=bucket, Key="self", Body=b"self", Metadata={"a": "1"})
    to_self = lambda **kw: lambda: s3.copy_object(
        Bucket=bucket, Key="self", CopySource={"Bucket": bucket, "Key": "self"}, **kw)
    seen["copy_onto_itself"] = code_of(to_self())
    seen["copy_onto_itself_replacing_metadata"] = code_of(
        to_self(MetadataDirective="REPLACE", Metadata={"a": "2"}))
    seen["copy_onto_itself_encrypting"] = code_of(to_self(ServerSideEncryption="aws:kms"))
    head = s3.head_object(Bucket=bucket, Key="self")
    seen["self"] = [s3.get_object(Bucket=bucket, Key="self")["Body"].read().decode(),
                    head["Metadata"], head.get("ServerSideEncryption")]
    seen["left"] = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
    return seen


def uploads(s3, bucket):
    """ListMultipartUploads: whole, by the paginator one upload per page, rolled up by a
    delimiter, under a prefix; then every listed upload aborted and the bucket deleted."""
    import time
    seen = {}
    s3.create_bucket(Bucket=bucket)
    started = []
    for key in ["b", "a/1", "c/d/e", "a/1", "a/2"]:
        started.append((key, s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]))
        time.sleep(0.002)  # distinct initiation times: same-key uploads list oldest first
    # S3's order: by key, then initiation time.
    order = sorted(started, key=lambda u: (u[0], started.index(u)))
    listing = s3.list_multipart_uploads(Bucket=bucket)
    seen["whole_in_order"] = [(u["Key"], u["UploadId"]) for u in listing["Uploads"]] == order
    seen["whole_truncated"] = listing["IsTruncated"]

    def paged(**kw):
        pages = s3.get_paginator("list_multipart_uploads").paginate(
            Bucket=bucket, PaginationConfig={"PageSize": 1, "MaxItems": 50}, **kw)
        entries = []
        for page in pages:
            entries += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
            entries += [(u["Key"], u["UploadId"]) for u in page.get("Uploads", [])]
        return entries

    seen["paged_in_order"] = paged() == order
    seen["paged_by_delimiter"] = [e if isinstance(e, str) else e[0] for e in paged(Delimiter="/")]
    seen["under_a"] = [u["Key"] for u in s3.list_multipart_uploads(
        Bucket=bucket, Prefix="a/")["Uploads"]]
    seen["max_uploads_0"] = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=0)["IsTruncated"]
    seen["delete_bucket_with_uploads"] = code_of(lambda: s3.delete_bucket(Bucket=bucket))
    for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]:
        s3.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
    seen["left"] = len(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))
    seen["delete_bucket_after_aborts"] = code_of(lambda: s3.delete_bucket(Bucket=bucket))
    return seen


def part_reads(s3, bucket):
    """GET and HEAD by partNumber: multipart objects (plain and SSE-KMS) part by part, an object
    written whole as its one part, and the refusals."""
    seen = {}
    s3.create_bucket(Bucket=bucket)
    sizes = [100 * 1024, 100 * 1024, 5]
    for name, kw in [("plain", {}), ("kms", {"ServerSideEncryption": "aws:kms"})]:
        bodies = [bytes([65 + i]) * size for i, size in enumerate(sizes)]
        upload_parts(s3, bucket, name, bodies, **kw)[2]()
        got = []
        for n, body in enumerate(bodies, start=1):
            r = s3.get_object(Bucket=bucket, Key=name, PartNumber=n)
            got.append([r["ResponseMetadata"]["HTTPStatusCode"], r["Body"].read() == body,
                        r["ContentRange"], r["PartsCount"]])
        seen[name] = got
        h = s3.head_object(Bucket=bucket, Key=name, PartNumber=2)
        seen[name + "_head_2"] = [h["ResponseMetadata"]["HTTPStatusCode"], h["ContentLength"],
                                  h["ContentRange"], h["PartsCount"]]
        seen[name + "_part_4"] = code_of(
            lambda: s3.get_object(Bucket=bucket, Key=name, PartNumber=4))
    s3.put_object(Bucket=bucket, Key="whole", Body=b"0123456789")
    r = s3.get_object(Bucket=bucket, Key="whole", PartNumber=1)
    seen["whole_part_1"] = [r["ResponseMetadata"]["HTTPStatusCode"], r["Body"].read().decode(),
                            r.get("PartsCount")]
    seen["whole_part_2"] = code_of(lambda: s3.get_object(Bucket=bucket, Key="whole", PartNumber=2))
    seen["part_and_range"] = code_of(
        lambda: s3.get_object(Bucket=bucket, Key="kms", PartNumber=1, Range="bytes=0-1"))
    return seen


def read_while_replaced(s3, bucket):
    """Reads and copies of an object that another thread keeps replacing: each must be the
    whole of one version, never an error."""
    import collections
    import threading
    import time
    s3.create_bucket(Bucket=bucket)
    size = 100000
    put = lambda i: s3.put_object(Bucket=bucket, Key="hot", Body=bytes([65 + i % 2]) * size,
                                  ServerSideEncryption="aws:kms")
    put(0)
    done = threading.Event()
    deadline = time.time() + 30
    seen = collections.Counter()
    lock = threading.Lock()

    def count(what):
        with lock:
            seen[what] += 1

    def outcome(call):
        try:
            body = call()
            return "whole" if len(body) == size and len(set(body)) == 1 else "mixed"
        except botocore.exceptions.ClientError as e:
            return e.response["Error"]["Code"]

    def writer():
        for i in range(1, 151):
            if time.time() > deadline:
                break
            put(i)
        done.set()

    def reader():
        while not done.is_set() and time.time() < deadline:
            count(outcome(lambda: s3.get_object(Bucket=bucket, Key="hot")["Body"].read()))

    def copier():
        n = 0
        while not done.is_set() and time.time() < deadline:
            n += 1
            key = "copy-%d" % n

            def copy_and_read():
                s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": "hot"})
                return s3.get_object(Bucket=bucket, Key=key)["Body"].read()

            count("copy " + outcome(copy_and_read))

    threads = [threading.Thread(target=f) for f in (writer, reader, reader, copier)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"outcomes": sorted(seen), "reads": seen["whole"], "copies": seen["copy whole"]}


def probe_other(s3, bucket, key, own):
    """Another tenant's bucket: whether conditions tell anything about what it holds."""
    put = lambda k, **kw: lambda: s3.put_object(Bucket=bucket, Key=k, Body=b"x", **kw)
    copy = lambda k, **kw: lambda: s3.copy_object(
        Bucket=own, Key="stolen", CopySource={"Bucket": bucket, "Key": k}, **kw)
    return {
        "put_if_absent_existing": code_of(put(key, IfNoneMatch="*")),
        "put_if_absent_missing": code_of(put("missing", IfNoneMatch="*")),
        "put_if_match_missing": code_of(put("missing", IfMatch='"0123"')),
        "copy_existing_if_match_wrong": code_of(copy(key, CopySourceIfMatch='"0123"')),
        "copy_missing": code_of(copy("missing")),
    }


def stored_headers(s3, bucket):
    """Cache-Control, Content-Disposition, Content-Encoding, Content-Language, Expires and
    Content-Type as each way of writing sets them, as HEAD and GET answer them."""
    s3.create_bucket(Bucket=bucket)
    names = ["cache-control", "content-disposition", "content-encoding", "content-language",
             "expires", "content-type"]
    sent = dict(CacheControl="max-age=60", ContentDisposition='attachment; filename="a.txt"',
                ContentEncoding="gzip", ContentLanguage="de-CH",
                Expires="Tue, 01 Jan 2030 00:00:00 GMT",
                ContentType="text/x-a")
    seen = {}

    def answered(key):
        head = s3.head_object(Bucket=bucket, Key=key)["ResponseMetadata"]["HTTPHeaders"]
        get = s3.get_object(Bucket=bucket, Key=key)
        got = get["ResponseMetadata"]["HTTPHeaders"]
        get["Body"].read()
        return {"head": [head.get(n) for n in names], "get": [got.get(n) for n in names]}

    s3.put_object(Bucket=bucket, Key="put", Body=b"a", ServerSideEncryption="aws:kms", **sent)
    seen["put"] = answered("put")
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp", ServerSideEncryption="aws:kms",
                                     **sent)["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=b"b")
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    seen["multipart"] = answered("mp")
    s3.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": bucket, "Key": "put"})
    seen["copy"] = answered("copied")
    s3.copy_object(Bucket=bucket, Key="replaced", CopySource={"Bucket": bucket, "Key": "put"},
                   MetadataDirective="REPLACE", CacheControl="no-cache", ContentType="text/x-b")
    seen["copy_replace"] = answered("replaced")
    s3.put_object(Bucket=bucket, Key="plain", Body=b"c")
    seen["none"] = answered("plain")
    return seen


def conditions(s3, bucket):
    """What conditional writes, reads and copies answer, and what each leaves stored."""
    import concurrent.futures
    seen = {}
    s3.create_bucket(Bucket=bucket)
    body = lambda key: s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    put = lambda key, data, **kw: lambda: s3.put_object(
        Bucket=bucket, Key=key, Body=data, ServerSideEncryption="aws:kms", **kw)
    seen["create_if_absent"] = code_of(put("k", b"one", IfNoneMatch="*"))
    seen["create_if_absent_again"] = code_of(put("k", b"two", IfNoneMatch="*"))
    etag = s3.head_object(Bucket=bucket, Key="k")["ETag"]
    seen["replace_if_match_wrong"] = code_of(put("k", b"three", IfMatch='"0123"'))
    seen["replace_if_match"] = code_of(put("k", b"four", IfMatch=etag))
    seen["replace_if_match_old"] = code_of(put("k", b"five", IfMatch=etag))
    seen["if_match_missing_key"] = code_of(put("nope", b"six", IfMatch=etag))
    seen["k"] = body("k")
    # Racing creators of one key: exactly one wins, the rest are refused.
    n = 8
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        codes = list(pool.map(lambda i: code_of(put("lock", b"owner %d" % i, IfNoneMatch="*")),
                              range(n)))
    seen["race"] = sorted(codes)
    winner = body("lock")
    seen["race_winner_stored"] = [c for i, c in enumerate(codes) if winner == "owner %d" % i]
    uid = s3.create_multipart_upload(Bucket=bucket, Key="k", ServerSideEncryption="aws:kms")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="k", UploadId=uid, PartNumber=1, Body=b"mp")
    parts = {"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]}
    seen["complete_if_absent"] = code_of(lambda: s3.complete_multipart_upload(
        Bucket=bucket, Key="k", UploadId=uid, MultipartUpload=parts, IfNoneMatch="*"))
    seen["complete_unconditional"] = code_of(lambda: s3.complete_multipart_upload(
        Bucket=bucket, Key="k", UploadId=uid, MultipartUpload=parts))
    seen["k_after_complete"] = body("k")
    future, past = "Fri, 01 Jan 2100 00:00:00 GMT", "Sat, 01 Jan 2000 00:00:00 GMT"
    get = lambda **kw: lambda: s3.get_object(Bucket=bucket, Key="k", **kw)["Body"].read()
    seen["get_modified_since_future"] = code_of(get(IfModifiedSince=future))
    seen["get_modified_since_past"] = code_of(get(IfModifiedSince=past))
    seen["get_unmodified_since_past"] = code_of(get(IfUnmodifiedSince=past))
    seen["get_unmodified_since_future"] = code_of(get(IfUnmodifiedSince=future))
    # A presigned link resumed as a browser resumes a download: Range with If-Range.
    url = urllib.parse.urlsplit(s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=600))
    k_etag = s3.head_object(Bucket=bucket, Key="k")["ETag"]
    for name, validator in [("if_range_same", k_etag), ("if_range_changed", '"0123"')]:
        conn = http.client.HTTPConnection(url.hostname, url.port)
        conn.request("GET", url.path + "?" + url.query,
                     headers={"Range": "bytes=1-", "If-Range": validator})
        r = conn.getresponse()
        seen[name] = [r.status, r.read().decode()]
    src = {"Bucket": bucket, "Key": "k"}
    copy = lambda **kw: lambda: s3.copy_object(Bucket=bucket, Key="copy", CopySource=src, **kw)
    seen["copy_source_if_match_wrong"] = code_of(copy(CopySourceIfMatch='"0123"'))
    seen["copy_source_if_none_match"] = code_of(
        copy(CopySourceIfNoneMatch=s3.head_object(Bucket=bucket, Key="k")["ETag"]))
    seen["copy_source_unmodified_since_past"] = code_of(copy(CopySourceIfUnmodifiedSince=past))
    seen["copy_source_modified_since_past"] = code_of(copy(CopySourceIfModifiedSince=past))
    seen["copy"] = body("copy")
    seen["object_lock"] = code_of(put("locked", b"x", ObjectLockMode="COMPLIANCE",
                                      ObjectLockRetainUntilDate=future))
    seen["tagging"] = code_of(put("tagged", b"x", Tagging="a*=b"))
    seen["left"] = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
    return seen


def sub_resources(s3, bucket):
    """What each call that names a sub-resource or a version answers, and what is left."""
    seen = {}
    s3.create_bucket(Bucket=bucket)
    for key in ["k", " k ", "k2"]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"precious " + key.encode(),
                      ServerSideEncryption="aws:kms")
    tags = {"TagSet": [{"Key": "a", "Value": "b"}]}
    calls = {
        "put_object_tagging": lambda: s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tags),
        "delete_object_tagging": lambda: s3.delete_object_tagging(Bucket=bucket, Key="k"),
        "put_object_acl": lambda: s3.put_object_acl(Bucket=bucket, Key="k", ACL="private"),
        "get_object_acl": lambda: s3.get_object_acl(Bucket=bucket, Key="k"),
        "delete_bucket_website": lambda: s3.delete_bucket_website(Bucket=bucket),
        "delete_bucket_lifecycle": lambda: s3.delete_bucket_lifecycle(Bucket=bucket),
        "put_bucket_versioning_mfa": lambda: s3.put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"}),
        "get_other_version": lambda: s3.get_object(Bucket=bucket, Key="k", VersionId="v1"),
        "delete_other_version": lambda: s3.delete_object(Bucket=bucket, Key="k", VersionId="v1"),
        "copy_other_version": lambda: s3.copy_object(
            Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "k", "VersionId": "v1"}),
        "get_null_version": lambda: s3.get_object(Bucket=bucket, Key="k", VersionId="null"),
    }
    for name, call in calls.items():
        seen[name] = code_of(call)
    got = s3.get_object(Bucket=bucket, Key="k", ResponseContentType="text/x-test",
                        ResponseContentDisposition='attachment; filename="k.bin"',
                        ResponseCacheControl="no-store")
    seen["overrides"] = [got["ContentType"], got["ContentDisposition"], got["CacheControl"],
                         got["Body"].read().decode()]
    deleted = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": " k "}, {"Key": "k2", "VersionId": "v1"}]})
    seen["batch_deleted"] = [d["Key"] for d in deleted.get("Deleted", [])]
    seen["batch_refused"] = [[e["Key"], e["Code"]] for e in deleted.get("Errors", [])]
    seen["left"] = {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read().decode()
                    for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
    seen["bucket"] = code_of(lambda: s3.head_bucket(Bucket=bucket))
    return seen


def versions(s3, bucket, endpoint, ak, sk, signature):
    """ListObjectVersions of a bucket that keeps one version per object, and the resource API
    emptying the bucket through it."""
    seen = {}
    s3.create_bucket(Bucket=bucket)
    for key in ["a/1", "a/2", "b", "c"]:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode(), ServerSideEncryption="aws:kms")
    listed = s3.list_object_versions(Bucket=bucket)
    seen["whole"] = [[v["Key"], v["VersionId"], v["IsLatest"], v["Size"]]
                     for v in listed.get("Versions", [])]
    seen["delete_markers"] = listed.get("DeleteMarkers", [])
    pages = s3.get_paginator("list_object_versions").paginate(
        Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 1, "MaxItems": 20})
    entries = []
    for page in pages:
        entries += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        entries += [v["Key"] for v in page.get("Versions", [])]
    seen["one_per_page"] = entries
    seen["under_a"] = [v["Key"] for v in s3.list_object_versions(
        Bucket=bucket, Prefix="a/").get("Versions", [])]
    seen["after_a_2"] = [v["Key"] for v in s3.list_object_versions(
        Bucket=bucket, KeyMarker="a/2", VersionIdMarker="null").get("Versions", [])]
    seen["version_marker_alone"] = code_of(
        lambda: s3.list_object_versions(Bucket=bucket, VersionIdMarker="null"))
    seen["other_version_marker"] = code_of(
        lambda: s3.list_object_versions(Bucket=bucket, KeyMarker="a/1", VersionIdMarker="v1"))
    bucket_resource = resource(endpoint, ak, sk, signature)
    emptied = bucket_resource.Bucket(bucket).object_versions.delete()
    seen["emptied"] = sorted(d["Key"] for r in emptied for d in r.get("Deleted", []))
    seen["left"] = s3.list_objects_v2(Bucket=bucket).get("KeyCount")
    seen["bucket_deleted"] = code_of(lambda: bucket_resource.Bucket(bucket).delete())
    return seen


def storage_classes(s3, bucket):
    """What asking for a storage class answers, and that a refused write stores nothing."""
    s3.create_bucket(Bucket=bucket)
    put = lambda key, cls: lambda: s3.put_object(Bucket=bucket, Key=key, Body=b"x", StorageClass=cls)
    seen = {
        "put STANDARD": code_of(put("standard", "STANDARD")),
        "put GLACIER": code_of(put("glacier", "GLACIER")),
        "put STANDARD_IA": code_of(put("ia", "STANDARD_IA")),
        "copy STANDARD_IA": code_of(lambda: s3.copy_object(
            Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "standard"},
            StorageClass="STANDARD_IA")),
        "copy onto itself as STANDARD": code_of(lambda: s3.copy_object(
            Bucket=bucket, Key="standard", CopySource={"Bucket": bucket, "Key": "standard"},
            StorageClass="STANDARD")),
        "multipart DEEP_ARCHIVE": code_of(lambda: s3.create_multipart_upload(
            Bucket=bucket, Key="mp", StorageClass="DEEP_ARCHIVE")),
    }
    import requests
    post = s3.generate_presigned_post(Bucket=bucket, Key="form", Fields={"x-amz-storage-class": "GLACIER"},
                                      Conditions=[{"x-amz-storage-class": "GLACIER"}])
    r = requests.post(post["url"], data=post["fields"], files={"file": ("f", b"x")})
    seen["form GLACIER"] = (r.text.split("<Code>")[1].split("</Code>")[0]
                            if "<Code>" in r.text else r.status_code)
    seen["head"] = s3.head_object(Bucket=bucket, Key="standard").get("StorageClass", "STANDARD")
    seen["left"] = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
    seen["uploads"] = len(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))
    return seen


def bucket_configs(s3, bucket, other):
    """What reading each configuration of a new bucket answers."""
    s3.create_bucket(Bucket=bucket)
    b = {"Bucket": bucket}

    def read(call, pick):
        try:
            return pick(call(**b))
        except botocore.exceptions.ClientError as e:
            return [e.response["Error"].get("Code"), e.response["ResponseMetadata"]["HTTPStatusCode"]]

    seen = {
        "lifecycle": read(s3.get_bucket_lifecycle_configuration, lambda r: r.get("Rules")),
        "website": read(s3.get_bucket_website, lambda r: r.get("IndexDocument")),
        "replication": read(s3.get_bucket_replication, lambda r: r.get("ReplicationConfiguration")),
        "object_lock": read(s3.get_object_lock_configuration,
                            lambda r: r.get("ObjectLockConfiguration")),
        "public_access_block": read(s3.get_public_access_block,
                                    lambda r: r.get("PublicAccessBlockConfiguration")),
        "logging": read(s3.get_bucket_logging, lambda r: r.get("LoggingEnabled", "none")),
        "notification": read(s3.get_bucket_notification_configuration,
                             lambda r: sorted(k for k in r if k != "ResponseMetadata")),
        "request_payment": read(s3.get_bucket_request_payment, lambda r: r.get("Payer")),
        "accelerate": read(s3.get_bucket_accelerate_configuration,
                           lambda r: r.get("Status", "never set")),
        "ownership_controls": read(s3.get_bucket_ownership_controls,
                                   lambda r: [x["ObjectOwnership"]
                                              for x in r["OwnershipControls"]["Rules"]]),
    }
    seen["other_tenant"] = read(other.get_bucket_website, lambda r: r.get("IndexDocument"))
    seen["set_website"] = code_of(lambda: s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration={
        "IndexDocument": {"Suffix": "index.html"}}))
    seen["website_after_set"] = read(s3.get_bucket_website, lambda r: r.get("IndexDocument"))
    return seen


def checksums(s3, bucket):
    """The additional checksum an upload carried is kept and answered to reads that ask for it
    (ChecksumMode=ENABLED), so botocore checks the body it reads against it."""
    import base64
    import hashlib
    import zlib

    s3.create_bucket(Bucket=bucket)
    body = b"checksummed " * 1000
    crc = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    sha = base64.b64encode(hashlib.sha256(body).digest()).decode()
    seen = {}
    # botocore sends CRC32 by default.
    put = s3.put_object(Bucket=bucket, Key="crc", Body=body, ServerSideEncryption="aws:kms")
    seen["put_answers_crc32"] = put.get("ChecksumCRC32") == crc
    put = s3.put_object(Bucket=bucket, Key="sha", Body=body, ChecksumAlgorithm="SHA256")
    seen["put_answers_sha256"] = put.get("ChecksumSHA256") == sha
    head = s3.head_object(Bucket=bucket, Key="crc", ChecksumMode="ENABLED")
    seen["head_asked"] = [head.get("ChecksumCRC32") == crc, head.get("ChecksumType")]
    got = s3.get_object(Bucket=bucket, Key="sha", ChecksumMode="ENABLED")
    seen["get_asked"] = [got["Body"].read() == body, got.get("ChecksumSHA256") == sha]
    got = s3.get_object(Bucket=bucket, Key="crc", ChecksumMode="ENABLED", Range="bytes=0-9")
    seen["range_answers_none"] = [got["Body"].read().decode(), "ChecksumCRC32" in got]
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "crc"},
                   MetadataDirective="REPLACE", ContentType="text/plain")
    head = s3.head_object(Bucket=bucket, Key="copy", ChecksumMode="ENABLED")
    seen["copy_keeps_it"] = head.get("ChecksumCRC32") == crc
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=1, Body=body)["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    head = s3.head_object(Bucket=bucket, Key="mp", ChecksumMode="ENABLED")
    seen["multipart_has_none"] = [k for k in head if k.startswith("Checksum")]
    return seen


def multipart_checksums(s3, bucket):
    """Multipart uploads with checksums, as S3 keeps them: an upload begun with an algorithm
    takes only parts that carry its value and echoes each; the completion lists every part's
    value and the object gets the parts' values combined (COMPOSITE, `value-N`) or the whole
    object's CRC (FULL_OBJECT), which reads by the whole object or by part answer and botocore
    checks. Computed here independently: zlib's CRC-32 and hashlib's SHA-256."""
    import base64
    import hashlib
    import io
    import zlib

    from boto3.s3.transfer import TransferConfig

    def b64(raw):
        return base64.b64encode(raw).decode()

    def crc(data):
        return b64(zlib.crc32(data).to_bytes(4, "big"))

    def sha(data):
        return b64(hashlib.sha256(data).digest())

    def composite(values, algorithm):
        raw = b"".join(base64.b64decode(v) for v in values)
        whole = crc(raw) if algorithm == "CRC32" else sha(raw)
        return f"{whole}-{len(values)}"

    s3.create_bucket(Bucket=bucket)
    mib = 1 << 20
    parts = [bytes([65 + i]) * (5 * mib) for i in range(2)] + [b"end of object"]
    data = b"".join(parts)
    seen = {}
    config = TransferConfig(multipart_threshold=5 * mib, multipart_chunksize=5 * mib)

    # boto3's managed upload as it is by default: s3transfer begins the upload with CRC32
    # and lists the parts' values the gateway echoed.
    s3.upload_fileobj(io.BytesIO(data), bucket, "default", Config=config)
    head = s3.head_object(Bucket=bucket, Key="default", ChecksumMode="ENABLED")
    seen["default_upload"] = [head.get("ChecksumCRC32") == composite([crc(p) for p in parts], "CRC32"),
                              head.get("ChecksumType"), head["ETag"].endswith('-3"')]
    got = s3.get_object(Bucket=bucket, Key="default", ChecksumMode="ENABLED", PartNumber=2)
    seen["default_part_2"] = [got["Body"].read() == parts[1], got.get("ChecksumCRC32") == crc(parts[1]),
                              got.get("ChecksumType")]
    got = s3.get_object(Bucket=bucket, Key="default", ChecksumMode="ENABLED")
    seen["default_whole_read"] = got["Body"].read() == data

    # A full-object CRC given to the managed upload: FULL_OBJECT, checked at completion, and
    # botocore checks the whole object's CRC as it reads it.
    s3.upload_fileobj(io.BytesIO(data), bucket, "full", Config=config,
                      ExtraArgs={"ChecksumCRC32": crc(data), "ServerSideEncryption": "aws:kms"})
    head = s3.head_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
    seen["full_object"] = [head.get("ChecksumCRC32") == crc(data), head.get("ChecksumType"),
                           head.get("ServerSideEncryption")]
    got = s3.get_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
    seen["full_object_read"] = [got["Body"].read() == data,
                                got["ResponseMetadata"]["HTTPHeaders"].get("x-amz-checksum-crc32") == crc(data)]
    seen["full_object_wrong"] = code_of(lambda: s3.upload_fileobj(
        io.BytesIO(data), bucket, "full-wrong", Config=config,
        ExtraArgs={"ChecksumCRC32": crc(b"something else")}))
    seen["full_object_wrong_left_nothing"] = code_of(lambda: s3.head_object(Bucket=bucket, Key="full-wrong"))

    # SHA-256, composite, by hand (SSE-KMS), with what S3 refuses along the way.
    up = s3.create_multipart_upload(Bucket=bucket, Key="sha", ChecksumAlgorithm="SHA256",
                                    ServerSideEncryption="aws:kms")
    upload_id = up["UploadId"]
    seen["sha_created"] = [up.get("ChecksumAlgorithm"), up.get("ChecksumType")]
    answers = [s3.upload_part(Bucket=bucket, Key="sha", UploadId=upload_id, PartNumber=n,
                              Body=p, ChecksumAlgorithm="SHA256")
               for n, p in enumerate(parts, start=1)]
    seen["sha_parts_echoed"] = [a.get("ChecksumSHA256") == sha(p) for a, p in zip(answers, parts)]
    # botocore's default CRC32 on a SHA256 upload, as S3 refuses it.
    seen["sha_part_of_another_algorithm"] = code_of(lambda: s3.upload_part(
        Bucket=bucket, Key="sha", UploadId=upload_id, PartNumber=4, Body=b"x"))
    listed = s3.list_parts(Bucket=bucket, Key="sha", UploadId=upload_id)
    seen["sha_listed"] = [listed.get("ChecksumAlgorithm"), listed.get("ChecksumType"),
                          [p.get("ChecksumSHA256") == sha(b) for p, b in zip(listed["Parts"], parts)]]
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    seen["sha_in_uploads"] = [(u["Key"], u.get("ChecksumAlgorithm"), u.get("ChecksumType")) for u in uploads]

    def complete(part_list, **kw):
        return s3.complete_multipart_upload(Bucket=bucket, Key="sha", UploadId=upload_id,
                                            MultipartUpload={"Parts": part_list}, **kw)

    full_list = [{"PartNumber": n, "ETag": a["ETag"], "ChecksumSHA256": a["ChecksumSHA256"]}
                 for n, a in enumerate(answers, start=1)]
    missing = [dict(full_list[0]), {k: v for k, v in full_list[1].items() if k != "ChecksumSHA256"},
               dict(full_list[2])]
    swapped = [dict(p) for p in full_list]
    swapped[1]["ChecksumSHA256"] = full_list[0]["ChecksumSHA256"]
    expected = composite([sha(p) for p in parts], "SHA256")
    seen["sha_complete_missing_a_part"] = code_of(lambda: complete(missing))
    seen["sha_complete_wrong_part"] = code_of(lambda: complete(swapped))
    seen["sha_complete_wrong_object"] = code_of(lambda: complete(full_list, ChecksumSHA256=sha(b"no")))
    seen["sha_complete_other_type"] = code_of(lambda: complete(full_list, ChecksumType="FULL_OBJECT"))
    done = complete(full_list, ChecksumSHA256=expected)
    seen["sha_completed"] = [done.get("ChecksumSHA256") == expected, done.get("ChecksumType")]
    head = s3.head_object(Bucket=bucket, Key="sha", ChecksumMode="ENABLED")
    seen["sha_head"] = [head.get("ChecksumSHA256") == expected, head.get("ChecksumType")]
    seen["sha_head_not_asked"] = [k for k in s3.head_object(Bucket=bucket, Key="sha") if k.startswith("Checksum")]
    got = s3.get_object(Bucket=bucket, Key="sha", ChecksumMode="ENABLED", PartNumber=3)
    seen["sha_part_3"] = [got["Body"].read() == parts[2], got.get("ChecksumSHA256") == sha(parts[2])]
    attrs = s3.get_object_attributes(Bucket=bucket, Key="sha", ObjectAttributes=["Checksum", "ObjectParts"])
    seen["sha_attributes"] = [attrs["Checksum"].get("ChecksumSHA256") == expected,
                              attrs["Checksum"].get("ChecksumType"),
                              [p.get("ChecksumSHA256") == sha(b) for p, b in zip(attrs["ObjectParts"]["Parts"], parts)]]
    # A copy is written whole: a composite value is its parts', so the copy gets the whole's.
    copy = s3.copy_object(Bucket=bucket, Key="sha-copy", CopySource={"Bucket": bucket, "Key": "sha"})
    head = s3.head_object(Bucket=bucket, Key="sha-copy", ChecksumMode="ENABLED")
    seen["sha_copy"] = [copy["CopyObjectResult"].get("ChecksumSHA256") == sha(data),
                        head.get("ChecksumSHA256") == sha(data), head.get("ChecksumType")]
    # A copy may ask for another algorithm, computed as it copies.
    copy = s3.copy_object(Bucket=bucket, Key="crc-as-sha", ChecksumAlgorithm="SHA256",
                          CopySource={"Bucket": bucket, "Key": "default"})
    head = s3.head_object(Bucket=bucket, Key="crc-as-sha", ChecksumMode="ENABLED")
    seen["copy_asks_sha256"] = [copy["CopyObjectResult"].get("ChecksumSHA256") == sha(data),
                                head.get("ChecksumSHA256") == sha(data), "ChecksumCRC32" in head]
    seen["copy_asks_sha512"] = code_of(lambda: s3.copy_object(
        Bucket=bucket, Key="x", ChecksumAlgorithm="SHA512", CopySource={"Bucket": bucket, "Key": "default"}))

    # UploadPartCopy into a CRC32 full-object upload: the copied part's value is computed.
    up = s3.create_multipart_upload(Bucket=bucket, Key="copied", ChecksumAlgorithm="CRC32",
                                    ChecksumType="FULL_OBJECT")["UploadId"]
    copied = s3.upload_part_copy(Bucket=bucket, Key="copied", UploadId=up, PartNumber=1,
                                 CopySource={"Bucket": bucket, "Key": "sha"},
                                 CopySourceRange=f"bytes=0-{5 * mib - 1}")["CopyPartResult"]
    last = s3.upload_part(Bucket=bucket, Key="copied", UploadId=up, PartNumber=2, Body=b"tail",
                          ChecksumAlgorithm="CRC32")
    seen["copied_part"] = copied.get("ChecksumCRC32") == crc(parts[0])
    done = s3.complete_multipart_upload(Bucket=bucket, Key="copied", UploadId=up, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": copied["ETag"], "ChecksumCRC32": copied["ChecksumCRC32"]},
        {"PartNumber": 2, "ETag": last["ETag"], "ChecksumCRC32": last["ChecksumCRC32"]}]})
    seen["copied_completed"] = [done.get("ChecksumCRC32") == crc(parts[0] + b"tail"), done.get("ChecksumType")]
    got = s3.get_object(Bucket=bucket, Key="copied", ChecksumMode="ENABLED")
    seen["copied_read"] = got["Body"].read() == parts[0] + b"tail"

    # What S3 refuses at initiation.
    seen["refused_at_initiation"] = {
        "sha256_full_object": code_of(lambda: s3.create_multipart_upload(
            Bucket=bucket, Key="x", ChecksumAlgorithm="SHA256", ChecksumType="FULL_OBJECT")),
        "sha512": code_of(lambda: s3.create_multipart_upload(
            Bucket=bucket, Key="x", ChecksumAlgorithm="SHA512")),
        "crc64nvme_composite": code_of(lambda: s3.create_multipart_upload(
            Bucket=bucket, Key="x", ChecksumAlgorithm="CRC64NVME", ChecksumType="COMPOSITE")),
    }
    seen["uploads_left"] = sorted(u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))
    return seen


def late_parameters(s3, bucket):
    """Parameters of bucket creation and upload abort that were dropped: object ownership other
    than BucketOwnerEnforced (every bucket here is), and the initiated-time condition of an
    abort. Each is now refused or held."""
    import datetime

    seen = {}
    for ownership in ["ObjectWriter", "BucketOwnerPreferred", "BucketOwnerEnforced"]:
        name = f"{bucket}-{ownership.lower()}"
        seen[ownership] = code_of(lambda: s3.create_bucket(Bucket=name, ObjectOwnership=ownership))
        seen[ownership + "_exists"] = code_of(lambda: s3.head_bucket(Bucket=name))
    seen["ownership_read"] = s3.get_bucket_ownership_controls(
        Bucket=f"{bucket}-bucketownerenforced")["OwnershipControls"]["Rules"][0]["ObjectOwnership"]
    s3.create_bucket(Bucket=bucket)
    up = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    initiated = s3.list_multipart_uploads(Bucket=bucket)["Uploads"][0]["Initiated"]
    seen["abort_other_time"] = code_of(lambda: s3.abort_multipart_upload(
        Bucket=bucket, Key="k", UploadId=up, IfMatchInitiatedTime=initiated - datetime.timedelta(seconds=1)))
    seen["left_after_other_time"] = len(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))
    seen["abort_its_time"] = code_of(lambda: s3.abort_multipart_upload(
        Bucket=bucket, Key="k", UploadId=up, IfMatchInitiatedTime=initiated))
    seen["left_after_its_time"] = len(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))
    return seen


def crc64nvme(s3, bucket):
    """CRC-64/NVME, the checksum S3 gives every object since 2025, as botocore with the AWS
    common runtime (awscrt) computes and checks it: a PUT's value kept and answered, a multipart
    upload's parts combined into the whole object's value (full object only), a copy asking for
    it. The expected values come from awscrt's own CRC-64/NVME."""
    import base64
    import io

    from awscrt import checksums
    from boto3.s3.transfer import TransferConfig
    from botocore.compat import HAS_CRT

    def crc(data):
        return base64.b64encode(checksums.crc64nvme(data).to_bytes(8, "big")).decode()

    s3.create_bucket(Bucket=bucket)
    mib = 1 << 20
    parts = [bytes([97 + i]) * (5 * mib) for i in range(2)] + [b"the last part"]
    data = b"".join(parts)
    seen = {"botocore_has_crt": HAS_CRT}
    put = s3.put_object(Bucket=bucket, Key="one", Body=parts[2], ChecksumAlgorithm="CRC64NVME",
                        ServerSideEncryption="aws:kms")
    seen["put_answers_it"] = put.get("ChecksumCRC64NVME") == crc(parts[2])
    got = s3.get_object(Bucket=bucket, Key="one", ChecksumMode="ENABLED")
    seen["get_checked"] = [got["Body"].read() == parts[2], got.get("ChecksumCRC64NVME") == crc(parts[2]),
                           got.get("ChecksumType"), got["ResponseMetadata"].get("HTTPStatusCode")]
    config = TransferConfig(multipart_threshold=5 * mib, multipart_chunksize=5 * mib)
    s3.upload_fileobj(io.BytesIO(data), bucket, "mp", Config=config,
                      ExtraArgs={"ChecksumAlgorithm": "CRC64NVME"})
    head = s3.head_object(Bucket=bucket, Key="mp", ChecksumMode="ENABLED")
    seen["multipart_whole"] = [head.get("ChecksumCRC64NVME") == crc(data), head.get("ChecksumType"),
                               head["ETag"].endswith('-3"')]
    got = s3.get_object(Bucket=bucket, Key="mp", ChecksumMode="ENABLED")
    seen["multipart_read"] = got["Body"].read() == data
    got = s3.get_object(Bucket=bucket, Key="mp", ChecksumMode="ENABLED", PartNumber=2)
    seen["multipart_part_2"] = [got["Body"].read() == parts[1], got.get("ChecksumCRC64NVME") == crc(parts[1])]
    copy = s3.copy_object(Bucket=bucket, Key="copy", ChecksumAlgorithm="CRC64NVME",
                          CopySource={"Bucket": bucket, "Key": "one"})
    seen["copy_asks_it"] = copy["CopyObjectResult"].get("ChecksumCRC64NVME") == crc(parts[2])
    return seen


def bucket_keys(s3, bucket):
    """S3 Bucket Keys asked for by every call that can (PUT, copy, multipart upload, form, the
    bucket's encryption configuration): refused, so that no caller believes in one; false
    is taken. What is left, and the bucket's configuration, show nothing was done."""
    import requests

    s3.create_bucket(Bucket=bucket)
    kms = {"ServerSideEncryption": "aws:kms"}
    seen = {
        "put": code_of(lambda: s3.put_object(Bucket=bucket, Key="put", Body=b"x", BucketKeyEnabled=True, **kms)),
        "put_false": code_of(lambda: s3.put_object(Bucket=bucket, Key="plain", Body=b"x", BucketKeyEnabled=False, **kms)),
        "copy": code_of(lambda: s3.copy_object(Bucket=bucket, Key="copy", BucketKeyEnabled=True,
                                               CopySource={"Bucket": bucket, "Key": "plain"}, **kms)),
        "multipart": code_of(lambda: s3.create_multipart_upload(Bucket=bucket, Key="mp", BucketKeyEnabled=True, **kms)),
        "encryption": code_of(lambda: s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}, "BucketKeyEnabled": True}]})),
    }
    try:
        s3.get_bucket_encryption(Bucket=bucket)
        seen["encryption_after"] = "kept"
    except botocore.exceptions.ClientError as e:
        seen["encryption_after"] = e.response["Error"]["Code"]
    seen["encryption_false"] = code_of(lambda: s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}, "BucketKeyEnabled": False}]}))
    post = s3.generate_presigned_post(bucket, "form", Fields={
        "x-amz-server-side-encryption-bucket-key-enabled": "true"},
        Conditions=[{"x-amz-server-side-encryption-bucket-key-enabled": "true"}])
    r = requests.post(post["url"], data=post["fields"], files={"file": ("f", b"form body")})
    seen["form"] = r.status_code
    seen["keys"] = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
    seen["uploads"] = len(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))
    return seen


def form_redirect(s3, bucket):
    """A browser form upload with `success_action_redirect` (botocore's presigned POST): the
    browser is sent on (303) to the URL with the bucket, the key and the ETag in its query, and the
    object is stored; a value that is no http(s) URL is ignored for success_action_status, and a
    form whose policy does not cover the field is refused."""
    import requests

    s3.create_bucket(Bucket=bucket)
    seen = {}

    def post(key, fields, conditions):
        form = s3.generate_presigned_post(bucket, key, Fields=fields, Conditions=conditions)
        return requests.post(form["url"], data=form["fields"], files={"file": ("f", b"form body " + key.encode())},
                             allow_redirects=False)

    done = "http://app.example.invalid/uploaded?session=7"
    r = post("to redirect", {"success_action_redirect": done}, [{"success_action_redirect": done}])
    etag = s3.head_object(Bucket=bucket, Key="to redirect")["ETag"]
    seen["redirect"] = [r.status_code, r.headers.get("Location") == done + "&bucket=" + bucket
                        + "&key=to%20redirect&etag=" + urllib.parse.quote(etag, safe="")]
    r = post("not a url", {"success_action_redirect": "javascript:alert(1)", "success_action_status": "201"},
             [{"success_action_redirect": "javascript:alert(1)"}, {"success_action_status": "201"}])
    seen["not_a_url"] = [r.status_code, "Location" in r.headers]
    form = s3.generate_presigned_post(bucket, "uncovered")
    r = requests.post(form["url"], data={**form["fields"], "success_action_redirect": done},
                      files={"file": ("f", b"x")}, allow_redirects=False)
    seen["uncovered"] = r.status_code
    seen["keys"] = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
    return seen


def public_access(s3, bucket, other, other_domain):
    """A bucket's public access block: set, read, deleted by its owner only; with it a public
    policy is refused and an existing one opens nothing to another tenant."""
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"shared")

    def policy(principal):
        return json.dumps({"Statement": [{"Effect": "Allow", "Principal": principal,
                                          "Action": "GetObject", "Resource": f"{bucket}/*"}]})

    def other_reads():
        try:
            return other.get_object(Bucket=bucket, Key="k")["Body"].read().decode()
        except botocore.exceptions.ClientError as e:
            return e.response["Error"]["Code"]

    def block():
        try:
            return s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        except botocore.exceptions.ClientError as e:
            return e.response["Error"]["Code"]

    def is_public():
        try:
            return s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"]
        except botocore.exceptions.ClientError as e:
            return e.response["Error"]["Code"]

    every = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
             "RestrictPublicBuckets": True}
    seen = {"before": block(), "status_without_policy": is_public()}
    s3.put_bucket_policy(Bucket=bucket, Policy=policy("*"))
    seen["status_public"] = is_public()
    seen["other_reads_by_public_policy"] = other_reads()
    seen["set"] = code_of(lambda: s3.put_public_access_block(
        Bucket=bucket, PublicAccessBlockConfiguration=every))
    seen["read_back"] = block()
    seen["other_reads_restricted"] = other_reads()
    seen["owner_reads"] = s3.get_object(Bucket=bucket, Key="k")["Body"].read().decode()
    seen["public_policy_refused"] = code_of(lambda: s3.put_bucket_policy(
        Bucket=bucket, Policy=policy({"ID": "*"})))
    seen["named_policy"] = code_of(lambda: s3.put_bucket_policy(
        Bucket=bucket, Policy=policy({"ID": f"domain/{other_domain}"})))
    seen["status_named"] = is_public()
    seen["other_reads_by_named_policy"] = other_reads()
    seen["other_tenant_sets"] = code_of(lambda: other.put_public_access_block(
        Bucket=bucket, PublicAccessBlockConfiguration={"RestrictPublicBuckets": False}))
    seen["other_tenant_deletes"] = code_of(lambda: other.delete_public_access_block(Bucket=bucket))
    seen["only_restrict"] = code_of(lambda: s3.put_public_access_block(
        Bucket=bucket, PublicAccessBlockConfiguration={"RestrictPublicBuckets": True}))
    seen["public_policy_taken"] = code_of(lambda: s3.put_bucket_policy(
        Bucket=bucket, Policy=policy("*")))
    seen["other_reads_restricted_again"] = other_reads()
    seen["deleted"] = code_of(lambda: s3.delete_public_access_block(Bucket=bucket))
    seen["after_delete"] = block()
    seen["other_reads_after_delete"] = other_reads()
    return seen


def attributes(s3, bucket, other):
    """GetObjectAttributes of an object written whole and of a multipart one (SSE-KMS both):
    what it answers, its parts paged, and its refusals."""
    s3.create_bucket(Bucket=bucket)
    kms = {"ServerSideEncryption": "aws:kms"}
    s3.put_object(Bucket=bucket, Key="one", Body=b"x" * 10, **kms)
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", **kms)["UploadId"]
    sizes = [5 << 20, 5 << 20, 7]
    parts = [{"PartNumber": n, "ETag": s3.upload_part(
        Bucket=bucket, Key="mp", UploadId=up, PartNumber=n, Body=b"p" * size)["ETag"]}
        for n, size in enumerate(sizes, start=1)]
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up,
                                 MultipartUpload={"Parts": parts})
    every = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]

    def get(key, **kw):
        a = s3.get_object_attributes(Bucket=bucket, Key=key, **kw)
        return {k: a[k] for k in every if k in a}

    one = get("one", ObjectAttributes=every)
    import base64
    import zlib
    crc = base64.b64encode(zlib.crc32(b"x" * 10).to_bytes(4, "big")).decode()
    seen = {
        "one": {k: v for k, v in one.items() if k not in ("ETag", "Checksum")},
        # botocore sent CRC32 with the PUT: the kept checksum.
        "one_checksum": [one["Checksum"].get("ChecksumCRC32") == crc,
                         one["Checksum"].get("ChecksumType")],
        "one_etag_is_heads": one["ETag"] == s3.head_object(Bucket=bucket, Key="one")["ETag"].strip('"'),
        "mp_first_page": get("mp", ObjectAttributes=["ObjectParts", "ObjectSize"], MaxParts=2),
        "mp_second_page": get("mp", ObjectAttributes=["ObjectParts"], MaxParts=2,
                              PartNumberMarker=2),
        "mp_etag_is_heads": get("mp", ObjectAttributes=["ETag"])["ETag"]
        == s3.head_object(Bucket=bucket, Key="mp")["ETag"].strip('"'),
        "missing": code_of(lambda: s3.get_object_attributes(
            Bucket=bucket, Key="absent", ObjectAttributes=["ETag"])),
        "other_tenant": code_of(lambda: other.get_object_attributes(
            Bucket=bucket, Key="one", ObjectAttributes=["ETag"])),
        "unknown_attribute": code_of(lambda: s3.get_object_attributes(
            Bucket=bucket, Key="one", ObjectAttributes=["Colour"])),
        "other_version": code_of(lambda: s3.get_object_attributes(
            Bucket=bucket, Key="one", VersionId="v1", ObjectAttributes=["ETag"])),
    }
    return seen


def unkept_parameters(s3, bucket):
    """Request parameters that would change what a call does and that the gateway does not keep:
    refused, nothing made or changed; and a multipart completion's stated object size."""
    seen = {}
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"kept")
    seen["write_offset"] = code_of(lambda: s3.put_object(
        Bucket=bucket, Key="k", Body=b"appended?", WriteOffsetBytes=4))
    seen["event_hold"] = code_of(lambda: s3.put_object(
        Bucket=bucket, Key="held", Body=b"x", ObjectLockEventHold="ON"))
    part = b"p" * (5 << 20)

    def complete(key, size):
        up = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        etags = [s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=n,
                                Body=body)["ETag"] for n, body in [(1, part), (2, b"tail")]]
        parts = {"Parts": [{"PartNumber": n + 1, "ETag": e} for n, e in enumerate(etags)]}
        result = code_of(lambda: s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=up, MultipartUpload=parts, MpuObjectSize=size))
        if result != "ok":
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=up)
        return result

    seen["mpu_its_size"] = complete("mpu-right", len(part) + 4)
    seen["mpu_other_size"] = complete("mpu-wrong", len(part))
    seen["body"] = s3.get_object(Bucket=bucket, Key="k")["Body"].read().decode()
    seen["left"] = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
    return seen


def conditional_delete(s3, bucket):
    """S3's conditional deletes (IfMatch, IfMatchSize, IfMatchLastModifiedTime, and a batch
    delete's ETag/Size/LastModifiedTime per object): a delete whose condition does not hold is
    refused and deletes nothing."""
    s3.create_bucket(Bucket=bucket)
    for key in ["a", "b", "c", "d", "e", "f"]:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode() * 3)
    head = {k: s3.head_object(Bucket=bucket, Key=k) for k in ["a", "b", "c", "d", "e", "f"]}
    seen = {
        "other_etag": code_of(lambda: s3.delete_object(Bucket=bucket, Key="a", IfMatch='"0"')),
        "its_etag": code_of(lambda: s3.delete_object(Bucket=bucket, Key="b",
                                                     IfMatch=head["b"]["ETag"])),
        "missing": code_of(lambda: s3.delete_object(Bucket=bucket, Key="absent", IfMatch="*")),
        "other_size": code_of(lambda: s3.delete_object(Bucket=bucket, Key="c", IfMatchSize=4)),
        "its_size": code_of(lambda: s3.delete_object(Bucket=bucket, Key="d", IfMatchSize=3)),
        "other_time": code_of(lambda: s3.delete_object(
            Bucket=bucket, Key="c",
            IfMatchLastModifiedTime=head["c"]["LastModified"].replace(year=2001))),
        "its_time": code_of(lambda: s3.delete_object(
            Bucket=bucket, Key="e", IfMatchLastModifiedTime=head["e"]["LastModified"])),
        "unconditional_missing": code_of(lambda: s3.delete_object(Bucket=bucket, Key="absent")),
    }
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "a", "ETag": '"0"'},
        {"Key": "f", "ETag": head["f"]["ETag"], "Size": 3},
        {"Key": "c", "Size": 99},
    ]})
    seen["batch_deleted"] = sorted(d["Key"] for d in r.get("Deleted", []))
    seen["batch_refused"] = sorted([e["Key"], e["Code"]] for e in r.get("Errors", []))
    seen["left"] = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
    return seen


def expected_owner(s3, bucket, owner, stranger):
    """Calls naming the bucket's expected owner (ExpectedBucketOwner, ExpectedSourceBucketOwner):
    with the owner's ID they run, with another ID they are refused and change nothing; and S3's
    SSE-KMS encryption context, which the gateway does not keep, is refused."""
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"kept")
    src = {"Bucket": bucket, "Key": "k"}

    def both(call, **kw):
        return [code_of(lambda: call(ExpectedBucketOwner=owner, **kw)),
                code_of(lambda: call(ExpectedBucketOwner=stranger, **kw))]

    seen = {
        "put": [code_of(lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"owner's",
                                              ExpectedBucketOwner=owner)),
                code_of(lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"stranger's",
                                              ExpectedBucketOwner=stranger))],
        "get": both(s3.get_object, Bucket=bucket, Key="k"),
        "head": both(s3.head_object, Bucket=bucket, Key="k"),
        "list": both(s3.list_objects_v2, Bucket=bucket),
        "bucket_tagging": both(s3.put_bucket_tagging, Bucket=bucket,
                               Tagging={"TagSet": [{"Key": "a", "Value": "b"}]}),
        "multipart": both(s3.create_multipart_upload, Bucket=bucket, Key="m"),
        "copy_source_owner": [
            code_of(lambda: s3.copy_object(Bucket=bucket, Key="c1", CopySource=src,
                                           ExpectedSourceBucketOwner=owner)),
            code_of(lambda: s3.copy_object(Bucket=bucket, Key="c2", CopySource=src,
                                           ExpectedSourceBucketOwner=stranger)),
        ],
        "delete": both(s3.delete_object, Bucket=bucket, Key="c1"),
        "encryption_context": code_of(lambda: s3.put_object(
            Bucket=bucket, Key="ctx", Body=b"x", ServerSideEncryption="aws:kms",
            SSEKMSEncryptionContext="eyJhIjoiYiJ9")),
    }
    seen["body"] = s3.get_object(Bucket=bucket, Key="k")["Body"].read().decode()
    seen["left"] = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
    for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
    return seen


def sse_c(s3, bucket):
    """Every call that asks for SSE-C (a customer-provided key) on an object: refused, nothing
    stored, and the object there was readable as before."""
    import os

    import requests

    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="plain", Body=b"plain")
    ssec = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": os.urandom(32)}
    src_ssec = {"CopySourceSSECustomerAlgorithm": "AES256",
                "CopySourceSSECustomerKey": ssec["SSECustomerKey"]}
    seen = {
        "put": code_of(lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"secret", **ssec)),
        "put_over_plain": code_of(lambda: s3.put_object(
            Bucket=bucket, Key="plain", Body=b"secret", **ssec)),
        "copy_to": code_of(lambda: s3.copy_object(
            Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": "plain"}, **ssec)),
        "copy_from": code_of(lambda: s3.copy_object(
            Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": "plain"}, **src_ssec)),
        "multipart": code_of(lambda: s3.create_multipart_upload(Bucket=bucket, Key="m", **ssec)),
        "get": code_of(lambda: s3.get_object(Bucket=bucket, Key="plain", **ssec)),
        "head": code_of(lambda: s3.head_object(Bucket=bucket, Key="plain", **ssec)),
    }
    upload = s3.create_multipart_upload(Bucket=bucket, Key="m2")["UploadId"]
    seen["upload_part"] = code_of(lambda: s3.upload_part(
        Bucket=bucket, Key="m2", UploadId=upload, PartNumber=1, Body=b"p", **ssec))
    s3.abort_multipart_upload(Bucket=bucket, Key="m2", UploadId=upload)
    post = s3.generate_presigned_post(
        Bucket=bucket, Key="form",
        Fields={"x-amz-server-side-encryption-customer-algorithm": "AES256"},
        Conditions=[{"x-amz-server-side-encryption-customer-algorithm": "AES256"}])
    r = requests.post(post["url"], data=post["fields"], files={"file": ("f", b"secret")})
    seen["form"] = (r.text.split("<Code>")[1].split("</Code>")[0]
                    if "<Code>" in r.text else r.status_code)
    seen["left"] = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
    seen["uploads"] = len(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))
    seen["plain"] = s3.get_object(Bucket=bucket, Key="plain")["Body"].read().decode()
    return seen


def cors(s3, bucket, other, endpoint):
    """A bucket's CORS rules set, read and deleted through boto3, and what they answer a browser:
    its preflight (OPTIONS, unsigned, sent here by `requests` as a browser sends it) and the
    headers on the answer to its request (a presigned GET with an Origin)."""
    import requests

    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="page.txt", Body=b"hello")
    b = {"Bucket": bucket}

    def read(call):
        try:
            return call(**b)["CORSRules"]
        except botocore.exceptions.ClientError as e:
            return e.response["Error"].get("Code")

    rules = [
        {"ID": "uploads", "AllowedMethods": ["PUT", "POST"],
         "AllowedOrigins": ["https://*.example.com"], "AllowedHeaders": ["content-type", "x-amz-*"],
         "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 300},
        {"AllowedMethods": ["GET", "HEAD"], "AllowedOrigins": ["*"]},
    ]
    seen = {"before": read(s3.get_bucket_cors)}
    seen["set"] = code_of(lambda: s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules}))
    seen["read_back"] = read(s3.get_bucket_cors) == rules
    seen["other_tenant_read"] = read(other.get_bucket_cors)
    seen["other_tenant_set"] = code_of(lambda: other.put_bucket_cors(
        Bucket=bucket, CORSConfiguration={"CORSRules": [{"AllowedMethods": ["DELETE"], "AllowedOrigins": ["*"]}]}))
    seen["bad_method"] = code_of(lambda: s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={
        "CORSRules": [{"AllowedMethods": ["PATCH"], "AllowedOrigins": ["*"]}]}))
    seen["two_wildcards"] = code_of(lambda: s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={
        "CORSRules": [{"AllowedMethods": ["GET"], "AllowedOrigins": ["https://*.*.com"]}]}))
    seen["kept_after_refusals"] = read(s3.get_bucket_cors) == rules

    def preflight(key, origin, method, headers=None):
        h = {"Origin": origin, "Access-Control-Request-Method": method}
        if headers:
            h["Access-Control-Request-Headers"] = headers
        r = requests.options(f"{endpoint}/{bucket}/{key}", headers=h)
        if r.status_code != 200:
            code = r.text.split("<Code>")[1].split("</Code>")[0] if "<Code>" in r.text else ""
            return [r.status_code, code]
        return {k: r.headers.get(k) for k in [
            "Access-Control-Allow-Origin", "Access-Control-Allow-Methods",
            "Access-Control-Allow-Headers", "Access-Control-Expose-Headers",
            "Access-Control-Max-Age", "Access-Control-Allow-Credentials"] if k in r.headers}

    seen["preflight_put"] = preflight("new.txt", "https://app.example.com", "PUT",
                                      "Content-Type, X-Amz-Meta-Owner")
    seen["preflight_get_any_origin"] = preflight("page.txt", "https://elsewhere.test", "GET")
    seen["preflight_unlisted_header"] = preflight("new.txt", "https://app.example.com", "PUT",
                                                  "authorization-x")
    seen["preflight_other_origin_put"] = preflight("new.txt", "https://example.com.evil.test", "PUT")
    seen["preflight_delete"] = preflight("page.txt", "https://app.example.com", "DELETE")
    r = requests.options(f"{endpoint}/{bucket}/page.txt", headers={"Access-Control-Request-Method": "GET"})
    seen["preflight_without_origin"] = r.status_code
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "page.txt"})
    r = requests.get(url, headers={"Origin": "https://elsewhere.test"})
    seen["get_with_origin"] = [r.status_code, r.text, r.headers.get("Access-Control-Allow-Origin"),
                               r.headers.get("Vary")]
    url = s3.generate_presigned_url("delete_object", Params={"Bucket": bucket, "Key": "absent"})
    r = requests.delete(url, headers={"Origin": "https://app.example.com"})
    seen["delete_with_origin"] = [r.status_code, r.headers.get("Access-Control-Allow-Origin")]
    seen["deleted"] = code_of(lambda: s3.delete_bucket_cors(Bucket=bucket))
    seen["after_delete"] = read(s3.get_bucket_cors)
    seen["preflight_after_delete"] = preflight("page.txt", "https://elsewhere.test", "GET")
    r = requests.options(f"{endpoint}/{bucket}-absent/k",
                         headers={"Origin": "https://a.test", "Access-Control-Request-Method": "GET"})
    seen["preflight_absent_bucket"] = r.status_code
    return seen


def tampered_bodies(s3, bucket, endpoint, ak, sk):
    """Configuration documents whose body was changed after signing: a SigV4 body that is not
    its signed x-amz-content-sha256, a SigV2 body that is not its signed Content-MD5, a body that
    is not its x-amz-checksum. Each is refused and does nothing."""
    import base64
    import hashlib

    import requests
    from botocore.auth import HmacV1Auth, SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    creds = Credentials(ak, sk)
    s3.create_bucket(Bucket=bucket)
    for key in ["a", "b"]:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())

    def send(method, query, signed, sent, scheme, extra=None):
        url = f"{endpoint}/{bucket}?{query}"
        headers = dict(extra or {})
        if scheme == "v2":
            headers["Content-MD5"] = base64.b64encode(hashlib.md5(signed).digest()).decode()
        req = AWSRequest(method=method, url=url, data=signed, headers=headers)
        if scheme == "v4":
            req.headers["x-amz-content-sha256"] = hashlib.sha256(signed).hexdigest()
            SigV4Auth(creds, "s3", "us-east-1").add_auth(req)
        elif scheme == "v4-unsigned":
            req.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
            SigV4Auth(creds, "s3", "us-east-1").add_auth(req)
        else:
            HmacV1Auth(creds).add_auth(req)
        r = requests.request(method, url, data=sent, headers=dict(req.prepare().headers))
        return r.text.split("<Code>")[1].split("</Code>")[0] if "<Code>" in r.text else r.status_code

    delete = lambda key: (f"<Delete><Object><Key>{key}</Key></Object></Delete>").encode()
    policy = lambda who: json.dumps({"Version": "2008-10-17", "Statement": [{
        "Sid": "s", "Effect": "Allow", "Principal": {"ID": [who]}, "Action": ["GetObject"],
        "Resource": [f"{bucket}/*"]}]}).encode()
    crc = base64.b64encode(__import__("zlib").crc32(delete("a")).to_bytes(4, "big")).decode()
    seen = {
        "v4 delete": send("POST", "delete", delete("a"), delete("b"), "v4"),
        "v2 delete": send("POST", "delete", delete("a"), delete("b"), "v2"),
        "v4 policy": send("PUT", "policy", policy("domain/nobody"), policy("*"), "v4"),
        "crc32 delete": send("POST", "delete", delete("a"), delete("b"), "v4-unsigned",
                             {"x-amz-checksum-crc32": crc}),
        "untampered crc32 delete": send("POST", "delete", delete("a"), delete("a"), "v4-unsigned",
                                        {"x-amz-checksum-crc32": crc}),
    }
    seen["left"] = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
    seen["policy"] = code_of(lambda: s3.get_bucket_policy(Bucket=bucket))
    return seen


def sigv4_sender(endpoint, ak, sk):
    """A function that sends one request with exactly the headers given, signed with SigV4 as
    botocore signs it (its payload's hash signed too), on one keep-alive session: for bodies and
    header values no client API would send. Its path is the bucket and the key, its query raw."""
    import hashlib

    import requests
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    creds = Credentials(ak, sk)
    http = requests.Session()

    def send(method, path, query="", headers=None, body=b""):
        url = f"{endpoint}/{path}" + (f"?{query}" if query else "")
        h = dict(headers or {})
        h["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
        req = AWSRequest(method=method, url=url, data=body, headers=h)
        SigV4Auth(creds, "s3", "us-east-1").add_auth(req)
        return http.request(method, url, data=body, headers=dict(req.prepare().headers))

    return send


def mutated_documents(s3, bucket, endpoint, ak, sk):
    """Every configuration document the gateway reads, cut at about 40 places, rotated at as
    many, and a few hostile forms (empty, trailing garbage, not UTF-8, deeply nested, entity
    expansion, 2 MiB), each signed so that it reaches the parser. For each document: how many
    were sent, which got a 5xx other than 501, which refusals were not an S3 error document,
    which refusals changed what the configuration's read answers, and whether any was refused."""
    import base64
    import hashlib

    signed = sigv4_sender(endpoint, ak, sk)
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    s3.put_object(Bucket=bucket, Key="k", Body=b"k")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=b"m")["ETag"]
    owner = s3.get_bucket_acl(Bucket=bucket)["Owner"]["ID"]

    def send(method, path, query, body):
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        return signed(method, path, query, {"Content-MD5": md5}, body)

    def read(path, query):
        r = send("GET", path, query, b"")
        if r.status_code >= 300:
            # An error document's request ID differs each time.
            return [r.status_code, r.text.split("<Code>")[-1].split("</Code>")[0]]
        return [r.status_code, r.text]

    def versions():
        listed = s3.list_object_versions(Bucket=bucket)
        return sorted([v["Key"], v["VersionId"]]
                      for v in listed.get("Versions", []) + listed.get("DeleteMarkers", []))
    acl = (f'<AccessControlPolicy><Owner><ID>{owner}</ID></Owner><AccessControlList><Grant>'
           f'<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser">'
           f'<ID>{owner}</ID></Grantee><Permission>FULL_CONTROL</Permission></Grant>'
           f'</AccessControlList></AccessControlPolicy>')
    tags = "<Tagging><TagSet><Tag><Key>team</Key><Value>storage</Value></Tag></TagSet></Tagging>"
    documents = {
        "lifecycle": ("PUT", bucket, "lifecycle",
                      "<LifecycleConfiguration><Rule><ID>r</ID><Filter><Prefix>logs/</Prefix></Filter>"
                      "<Status>Enabled</Status><Expiration><Days>30</Days></Expiration>"
                      "<NoncurrentVersionExpiration><NoncurrentDays>7</NoncurrentDays>"
                      "</NoncurrentVersionExpiration></Rule></LifecycleConfiguration>", None),
        "cors": ("PUT", bucket, "cors",
                 "<CORSConfiguration><CORSRule><AllowedOrigin>https://a.example</AllowedOrigin>"
                 "<AllowedMethod>GET</AllowedMethod><AllowedHeader>*</AllowedHeader>"
                 "<MaxAgeSeconds>60</MaxAgeSeconds></CORSRule></CORSConfiguration>", None),
        "bucket tagging": ("PUT", bucket, "tagging", tags, None),
        "versioning": ("PUT", bucket, "versioning",
                       "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>", None),
        "object lock": ("PUT", bucket, "object-lock",
                        "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule>"
                        "<DefaultRetention><Mode>GOVERNANCE</Mode><Days>1</Days></DefaultRetention>"
                        "</Rule></ObjectLockConfiguration>", None),
        "policy": ("PUT", bucket, "policy", json.dumps({"Version": "2008-10-17", "Statement": [{
            "Sid": "s", "Effect": "Allow", "Principal": {"ID": ["domain/nobody"]},
            "Action": ["GetObject"], "Resource": [f"{bucket}/*"]}]}), None),
        "encryption": ("PUT", bucket, "encryption",
                       "<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault>"
                       "<SSEAlgorithm>aws:kms</SSEAlgorithm></ApplyServerSideEncryptionByDefault>"
                       "</Rule></ServerSideEncryptionConfiguration>", None),
        "public access block": ("PUT", bucket, "publicAccessBlock",
                                "<PublicAccessBlockConfiguration><BlockPublicAcls>true</BlockPublicAcls>"
                                "<IgnorePublicAcls>true</IgnorePublicAcls><BlockPublicPolicy>false"
                                "</BlockPublicPolicy><RestrictPublicBuckets>false</RestrictPublicBuckets>"
                                "</PublicAccessBlockConfiguration>", None),
        "bucket acl": ("PUT", bucket, "acl", acl, None),
        "object tagging": ("PUT", f"{bucket}/k", "tagging", tags, None),
        "retention": ("PUT", f"{bucket}/k", "retention",
                      "<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>2099-01-01T00:00:00Z"
                      "</RetainUntilDate></Retention>", None),
        "legal hold": ("PUT", f"{bucket}/k", "legal-hold", "<LegalHold><Status>ON</Status></LegalHold>", None),
        "object acl": ("PUT", f"{bucket}/k", "acl", acl, None),
        "batch delete": ("POST", bucket, "delete",
                         "<Delete><Quiet>true</Quiet><Object><Key>gone</Key></Object></Delete>", versions),
        "completion": ("POST", f"{bucket}/mp", f"uploadId={upload}",
                       f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag>"
                       f"</Part></CompleteMultipartUpload>", versions),
    }
    hostile = [
        b"",
        b"\xff\xfe\x00<\x00a\x00>",
        b"<a>" * 100000 + b"</a>" * 100000,
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;'
        b'&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><x>&c;&c;&c;</x>',
        b" " * (2 << 20),
    ]
    seen = {}
    for name, (method, path, query, doc, state) in documents.items():
        get_query = query if method == "PUT" else None
        state = state or (lambda p=path, q=get_query: read(p, q))
        whole = doc.encode()
        step = max(1, len(whole) // 40)
        bodies = [whole[:at] for at in range(0, len(whole), step)]
        bodies += [whole[at:] + whole[:at] for at in range(1, len(whole), step)]
        bodies += hostile + [whole + b"<garbage/>", whole + whole]
        out = {"sent": 0, "server_errors": [], "bad_error_bodies": [], "changed_on_refusal": [],
               "refused": False}
        before = state()
        for body in bodies:
            r = send(method, path, query, body)
            out["sent"] += 1
            shown = body[:60].decode("utf-8", "replace")
            if r.status_code >= 500 and r.status_code != 501:
                out["server_errors"].append([r.status_code, shown])
            if r.status_code >= 400:
                out["refused"] = True
                if "<Error>" not in r.text or "<Code>" not in r.text:
                    out["bad_error_bodies"].append([r.status_code, shown])
                after = state()
                if after != before:
                    out["changed_on_refusal"].append(shown)
                before = after
            else:
                before = state()
        seen[name] = out
    seen["still_serving"] = s3.head_object(Bucket=bucket, Key="k")["ContentLength"]
    return seen


def mutated_headers(s3, bucket, endpoint, ak, sk):
    """The headers and query parameters the gateway parses itself, each given each of a set of
    hostile values, signed: a PUT of k (and what HEAD then answers of k, unchanged by a
    refusal), a GET and a HEAD of k, a copy onto k2 (k2 unchanged by a refusal), the listings.
    For each request kind: how many were sent, which got a 5xx other than 501, which refusals
    were not an S3 error document (HEAD answers none), which refusals changed the object."""
    import urllib.parse

    signed = sigv4_sender(endpoint, ak, sk)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"0123456789")
    s3.put_object(Bucket=bucket, Key="k2", Body=b"k2")

    def send(method, key, query="", headers=None, body=b""):
        return signed(method, f"{bucket}/{key}", query, headers, body)

    def object_state(key):
        r = send("HEAD", key)
        keep = ("etag", "content-length", "content-type", "x-amz-server-side-encryption",
                "x-amz-tagging-count", "x-amz-meta-a", "cache-control", "expires")
        return [r.status_code] + [r.headers.get(h) for h in keep]

    values = ["", "a" * 9000, "-1", "0", "99999999999999999999", "1e309", "é",
              "%", "%ZZ", "/", "//", "..", "true", "null", "bytes=", "bytes=5-1", "bytes=-0",
              "bytes=0-,", "bytes=1-2,3-4", "2026-13-45T00:00:00Z", "Thu, 31 Feb 2026 00:00:00 GMT",
              "AA==", "aws:kms", "AES256", "x" * 300]
    put_headers = ["Content-MD5", "x-amz-checksum-crc32", "x-amz-checksum-sha256",
                   "x-amz-sdk-checksum-algorithm", "x-amz-server-side-encryption",
                   "x-amz-server-side-encryption-aws-kms-key-id",
                   "x-amz-server-side-encryption-context",
                   "x-amz-server-side-encryption-customer-algorithm",
                   "x-amz-server-side-encryption-bucket-key-enabled", "x-amz-storage-class",
                   "x-amz-tagging", "x-amz-meta-a", "x-amz-acl", "x-amz-grant-read",
                   "x-amz-object-lock-mode", "x-amz-object-lock-retain-until-date",
                   "x-amz-object-lock-legal-hold", "x-amz-website-redirect-location", "If-Match",
                   "If-None-Match", "x-amz-expected-bucket-owner", "Cache-Control", "Content-Type",
                   "Expires", "x-obs-expires", "x-obs-server-side-encryption",
                   "x-obs-storage-class", "x-obs-meta-a"]
    get_headers = ["Range", "If-Match", "If-None-Match", "If-Modified-Since",
                   "If-Unmodified-Since", "x-amz-checksum-mode",
                   "x-amz-server-side-encryption-customer-algorithm",
                   "x-amz-expected-bucket-owner"]
    get_queries = ["partNumber", "versionId", "response-content-type",
                   "response-content-disposition", "response-expires", "attributes"]
    copy_headers = ["x-amz-copy-source", "x-amz-copy-source-if-match",
                    "x-amz-copy-source-if-modified-since", "x-amz-metadata-directive",
                    "x-amz-tagging-directive", "x-amz-copy-source-range",
                    "x-amz-checksum-algorithm"]
    list_queries = [("list-type=2&max-keys", ""), ("list-type=2&continuation-token", ""),
                    ("list-type=2&start-after", ""), ("prefix", ""), ("delimiter", ""),
                    ("encoding-type", ""), ("marker", ""), ("max-keys", ""),
                    ("versions&key-marker", ""), ("versions&version-id-marker", "&key-marker=k"),
                    ("uploads&max-uploads", ""), ("uploads&upload-id-marker", "&key-marker=k")]
    seen = {}

    def check(kind, r, shown, state=None, before=None):
        out = seen.setdefault(kind, {"sent": 0, "server_errors": [], "bad_error_bodies": [],
                                     "changed_on_refusal": [], "refused": False, "answered": 0,
                                     "codes": []})
        out["sent"] += 1
        if r.status_code < 300:
            out["answered"] += 1
        code = r.text.split("<Code>")[1].split("</Code>")[0] if "<Code>" in r.text else None
        if code and code not in out["codes"]:
            out["codes"].append(code)
        if r.status_code >= 500 and r.status_code != 501:
            out["server_errors"].append([r.status_code, shown])
        if r.status_code >= 400:
            out["refused"] = True
            if r.request.method != "HEAD" and ("<Error>" not in r.text or "<Code>" not in r.text):
                out["bad_error_bodies"].append([r.status_code, shown])
            if state is not None and state() != before:
                out["changed_on_refusal"].append(shown)

    for name in put_headers:
        for value in values:
            before = object_state("k")
            r = send("PUT", "k", headers={name: value}, body=b"replaced")
            check("put", r, f"{name}: {value[:40]}", lambda: object_state("k"), before)
    for name in get_headers:
        for value in values:
            for method in ("GET", "HEAD"):
                check(method.lower(), send(method, "k", headers={name: value}), f"{name}: {value[:40]}")
    for name in get_queries:
        for value in values:
            query = f"{name}={urllib.parse.quote(value, safe='')}"
            check("get", send("GET", "k", query=query), query[:60])
    for name in copy_headers:
        for value in values:
            headers = {"x-amz-copy-source": f"/{bucket}/k", name: value}
            before = object_state("k2")
            r = send("PUT", "k2", headers=headers)
            check("copy", r, f"{name}: {value[:40]}", lambda: object_state("k2"), before)
    for name, rest in list_queries:
        for value in values:
            query = f"{name}={urllib.parse.quote(value, safe='')}{rest}"
            r = signed("GET", bucket, query)
            check("list", r, query[:60])
    seen["still_serving"] = s3.get_object(Bucket=bucket, Key="k2")["ContentLength"] >= 0
    return seen


def tagging(s3, bucket, other):
    """Object tags: set by PUT, copy, multipart upload and form, read, replaced and removed;
    S3's limits refused with nothing stored; a tag change leaves the object as it was."""
    import requests

    seen = {}
    s3.create_bucket(Bucket=bucket)
    tag_set = lambda key: [[t["Key"], t["Value"]] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]]
    s3.put_object(Bucket=bucket, Key="k", Body=b"tagged body", ServerSideEncryption="aws:kms",
                  Tagging="team=storage&cost%20center=r%2Bd")
    seen["put"] = tag_set("k")
    before = s3.head_object(Bucket=bucket, Key="k")
    seen["tag_count"] = [before.get("TagCount"), s3.get_object(Bucket=bucket, Key="k").get("TagCount")]
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": [
        {"Key": "team", "Value": "db"}, {"Key": "成本", "Value": "研发"}]})
    seen["replaced"] = tag_set("k")
    after = s3.head_object(Bucket=bucket, Key="k")
    seen["object_unchanged"] = [after["ETag"] == before["ETag"], after["LastModified"] == before["LastModified"],
                                s3.get_object(Bucket=bucket, Key="k")["Body"].read().decode()]
    copy = lambda key, **kw: s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": "k"}, **kw)
    copy("copied")
    copy("replaced", TaggingDirective="REPLACE", Tagging="a=b")
    copy("untagged", TaggingDirective="REPLACE")
    seen["copies"] = {k: tag_set(k) for k in ["copied", "replaced", "untagged"]}
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp", Tagging="via=multipart")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=b"mp")
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    seen["multipart"] = tag_set("mp")
    doc = "<Tagging><TagSet><Tag><Key>via</Key><Value>form</Value></Tag></TagSet></Tagging>"
    post = s3.generate_presigned_post(Bucket=bucket, Key="form", Fields={"tagging": doc},
                                      Conditions=[{"tagging": doc}], ExpiresIn=600)
    r = requests.post(post["url"], data=post["fields"], files={"file": ("f.bin", b"form")})
    seen["form"] = [r.status_code, tag_set("form") if r.status_code < 300 else r.text]
    s3.delete_object_tagging(Bucket=bucket, Key="k")
    seen["deleted"] = [tag_set("k"), s3.head_object(Bucket=bucket, Key="k").get("TagCount")]
    eleven = "&".join(f"k{i}=v" for i in range(11))
    seen["refused"] = {
        "eleven tags": code_of(lambda: s3.put_object(Bucket=bucket, Key="bad", Body=b"x", Tagging=eleven)),
        "a '*' in a key": code_of(lambda: s3.put_object(Bucket=bucket, Key="bad", Body=b"x", Tagging="a*=b")),
        "a key given twice": code_of(lambda: s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": [
            {"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}]})),
        "a value of 257 characters": code_of(lambda: s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={
            "TagSet": [{"Key": "a", "Value": "v" * 257}]})),
        "an absent object": code_of(lambda: s3.put_object_tagging(Bucket=bucket, Key="absent", Tagging={"TagSet": []})),
        "a multipart upload": code_of(lambda: s3.create_multipart_upload(Bucket=bucket, Key="bad", Tagging="a<b=c")),
        "another tenant reads": code_of(lambda: other.get_object_tagging(Bucket=bucket, Key="k")),
        "another tenant writes": code_of(lambda: other.delete_object_tagging(Bucket=bucket, Key="k")),
    }
    seen["after_refusals"] = [tag_set("k"), sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]),
                              len(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))]
    bucket_tags = lambda: [[t["Key"], t["Value"]] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]]
    put_bucket_tags = lambda *pairs: lambda: s3.put_bucket_tagging(Bucket=bucket, Tagging={
        "TagSet": [{"Key": k, "Value": v} for k, v in pairs]})
    seen["bucket"] = {
        "none yet": code_of(bucket_tags),
        "set": code_of(put_bucket_tags(("cost", "storage"), ("env", "prod"))),
        "a key of 37 characters": code_of(put_bucket_tags(("k" * 37, "v"))),
        "a '/' in a key": code_of(put_bucket_tags(("a/b", "v"))),
        "another tenant reads": code_of(lambda: other.get_bucket_tagging(Bucket=bucket)),
        "another tenant deletes": code_of(lambda: other.delete_bucket_tagging(Bucket=bucket)),
    }
    seen["bucket_tags"] = bucket_tags()
    s3.delete_bucket_tagging(Bucket=bucket)
    seen["bucket_after_delete"] = code_of(bucket_tags)
    return seen


def acls(s3, bucket, other):
    """ACLs of a bucket whose owner owns every object: read as the owner's full control; an ACL
    that says so is taken, any other refused and nothing stored; another tenant reads none."""
    seen = {}
    seen["create_public"] = code_of(lambda: s3.create_bucket(Bucket=bucket, ACL="public-read"))
    seen["after_refused_create"] = code_of(lambda: s3.head_bucket(Bucket=bucket))
    s3.create_bucket(Bucket=bucket, ACL="private")
    acl = s3.get_bucket_acl(Bucket=bucket)
    owner = acl["Owner"]["ID"]
    seen["owner"] = owner
    seen["bucket_grants"] = [[g["Grantee"]["Type"], g["Grantee"]["ID"] == owner, g["Permission"]]
                             for g in acl["Grants"]]
    seen["put_private"] = code_of(lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"mine", ACL="private"))
    seen["put_public"] = code_of(lambda: s3.put_object(Bucket=bucket, Key="public", Body=b"x", ACL="public-read"))
    seen["put_grant_read"] = code_of(lambda: s3.put_object(
        Bucket=bucket, Key="granted", Body=b"x", GrantRead='uri="http://acs.amazonaws.com/groups/global/AllUsers"'))
    seen["put_full_control_to_owner"] = code_of(lambda: s3.put_object(
        Bucket=bucket, Key="owned", Body=b"x", GrantFullControl=f'id="{owner}"'))
    seen["put_full_control_to_another"] = code_of(lambda: s3.put_object(
        Bucket=bucket, Key="given", Body=b"x", GrantFullControl='id="0a1b2c3d4e5f60718293a4b5c6d7e8f9"'))
    seen["multipart_full_control_to_owner"] = code_of(lambda: s3.abort_multipart_upload(
        Bucket=bucket, Key="mp-owned", UploadId=s3.create_multipart_upload(
            Bucket=bucket, Key="mp-owned", GrantFullControl=f'id="{owner}"')["UploadId"]))
    seen["copy_public"] = code_of(lambda: s3.copy_object(
        Bucket=bucket, Key="copied", CopySource={"Bucket": bucket, "Key": "k"}, ACL="public-read-write"))
    seen["multipart_public"] = code_of(lambda: s3.create_multipart_upload(Bucket=bucket, Key="mp", ACL="public-read"))
    seen["keys"] = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    seen["uploads"] = len(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))
    obj = s3.get_object_acl(Bucket=bucket, Key="k")
    seen["object_grants"] = [[g["Grantee"]["Type"], g["Grantee"]["ID"] == owner, g["Permission"]]
                             for g in obj["Grants"]]
    seen["object_owner"] = obj["Owner"]["ID"] == owner
    seen["missing_object_acl"] = code_of(lambda: s3.get_object_acl(Bucket=bucket, Key="absent"))
    owner_only = {"Owner": {"ID": owner}, "Grants": [
        {"Grantee": {"Type": "CanonicalUser", "ID": owner}, "Permission": "FULL_CONTROL"}]}
    everyone = {"Owner": {"ID": owner}, "Grants": owner_only["Grants"] + [
        {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"}, "Permission": "READ"}]}
    seen["set"] = {
        "bucket private": code_of(lambda: s3.put_bucket_acl(Bucket=bucket, ACL="private")),
        "bucket public-read": code_of(lambda: s3.put_bucket_acl(Bucket=bucket, ACL="public-read")),
        "bucket owner's document": code_of(lambda: s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy=owner_only)),
        "bucket everyone's document": code_of(lambda: s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy=everyone)),
        "bucket full control to the owner": code_of(lambda: s3.put_bucket_acl(
            Bucket=bucket, GrantFullControl=f'id="{owner}"')),
        "object owner-full-control": code_of(lambda: s3.put_object_acl(
            Bucket=bucket, Key="k", ACL="bucket-owner-full-control")),
        "object authenticated-read": code_of(lambda: s3.put_object_acl(
            Bucket=bucket, Key="k", ACL="authenticated-read")),
        "absent object": code_of(lambda: s3.put_object_acl(Bucket=bucket, Key="absent", ACL="private")),
    }
    seen["other_tenant"] = {
        "get bucket acl": code_of(lambda: other.get_bucket_acl(Bucket=bucket)),
        "get object acl": code_of(lambda: other.get_object_acl(Bucket=bucket, Key="k")),
        "put bucket acl": code_of(lambda: other.put_bucket_acl(Bucket=bucket, ACL="private")),
    }
    seen["unchanged"] = s3.get_object(Bucket=bucket, Key="k")["Body"].read().decode()
    return seen


def website_redirect(s3, bucket):
    """x-amz-website-redirect-location kept with the object and answered."""
    import requests

    s3.create_bucket(Bucket=bucket)
    redirect = lambda key: s3.head_object(Bucket=bucket, Key=key).get("WebsiteRedirectLocation")
    s3.put_object(Bucket=bucket, Key="put", Body=b"x", WebsiteRedirectLocation="/next.html")
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "put"})
    s3.copy_object(Bucket=bucket, Key="copy-given", CopySource={"Bucket": bucket, "Key": "put"},
                   WebsiteRedirectLocation="https://example.com/")
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp",
                                     WebsiteRedirectLocation="/mp.html")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=b"m")["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": etag}]})
    post = s3.generate_presigned_post(bucket, "form", Fields={"x-amz-website-redirect-location": "/form.html"},
                                      Conditions=[{"x-amz-website-redirect-location": "/form.html"}])
    requests.post(post["url"], data=post["fields"], files={"file": ("f", b"f")}).raise_for_status()
    seen = {k: redirect(k) for k in ("put", "copy", "copy-given", "mp", "form")}
    seen["malformed"] = code_of(lambda: s3.put_object(Bucket=bucket, Key="bad", Body=b"x",
                                                      WebsiteRedirectLocation="next.html"))
    seen["left"] = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
    return seen


def versioning(s3, bucket, other, resource):
    """Bucket versioning as S3 keeps it: each write a new version, a delete a delete marker,
    reads and copies by version, the removal of versions and markers by ID, suspension, the
    listing of versions in pages, and emptying the bucket as boto3's resource API does. Version
    IDs are shown as the labels v1, v2, ... in the order first seen (null stays null)."""
    labels = {}

    def label(version_id):
        if version_id in (None, "null"):
            return version_id
        assert len(version_id) == 32, version_id
        return labels.setdefault(version_id, "v%d" % (len(labels) + 1))

    def error(call):
        try:
            call()
            return "ok"
        except botocore.exceptions.ClientError as e:
            h = e.response["ResponseMetadata"]["HTTPHeaders"]
            return [e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"].get("Code"),
                    h.get("x-amz-delete-marker"), label(h.get("x-amz-version-id"))]

    def body(**kw):
        got = s3.get_object(Bucket=bucket, **kw)
        return [got["Body"].read().decode(), label(got.get("VersionId"))]

    def listed():
        out = s3.list_object_versions(Bucket=bucket)
        entries = [["version", v["Key"], label(v["VersionId"]), v["IsLatest"], v["Size"]]
                   for v in out.get("Versions", [])]
        entries += [["marker", m["Key"], label(m["VersionId"]), m["IsLatest"]]
                    for m in out.get("DeleteMarkers", [])]
        return entries

    s3.create_bucket(Bucket=bucket)
    # A bucket that never had versioning answers no version ID at all (not even null).
    unversioned = [
        s3.put_object(Bucket=bucket, Key="old", Body=b"old").get("VersionId"),
        s3.head_object(Bucket=bucket, Key="old").get("VersionId"),
        s3.get_object_tagging(Bucket=bucket, Key="old").get("VersionId"),
        s3.delete_object(Bucket=bucket, Key="old").get("VersionId"),
    ]
    status = lambda: s3.get_bucket_versioning(Bucket=bucket).get("Status")
    put_state = lambda client, **conf: code_of(lambda: client.put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration=conf))
    seen = {"before": status(), "enable": put_state(s3, Status="Enabled"), "after": status(),
            "mfa": put_state(s3, Status="Enabled", MFADelete="Enabled"),
            "other_tenant": put_state(other, Status="Suspended"), "still": status(),
            "unversioned": unversioned}
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one", ServerSideEncryption="aws:kms")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"two!")["VersionId"]
    seen["puts"] = [label(v1), label(v2)]
    seen["current"] = body(Key="k")
    seen["by_id"] = body(Key="k", VersionId=v1)
    seen["head_by_id"] = label(s3.head_object(Bucket=bucket, Key="k", VersionId=v1)["VersionId"])
    seen["unknown_version"] = error(lambda: s3.get_object(Bucket=bucket, Key="k", VersionId="0" * 32))
    seen["malformed_version"] = error(lambda: s3.get_object(Bucket=bucket, Key="k", VersionId="v1"))
    seen["tag_current_by_id"] = code_of(lambda: s3.put_object_tagging(
        Bucket=bucket, Key="k", VersionId=v2, Tagging={"TagSet": [{"Key": "a", "Value": "b"}]}))
    seen["tag_noncurrent"] = code_of(lambda: s3.put_object_tagging(
        Bucket=bucket, Key="k", VersionId=v1, Tagging={"TagSet": [{"Key": "v", "Value": "1"}]}))
    seen["tags_by_version"] = [
        [[t["Key"], t["Value"]] for t in s3.get_object_tagging(Bucket=bucket, Key="k", **kw)["TagSet"]]
        for kw in ({}, {"VersionId": v1})]
    seen["acl_noncurrent"] = code_of(lambda: s3.put_object_acl(
        Bucket=bucket, Key="k", VersionId=v1, ACL="private"))
    deleted = s3.delete_object(Bucket=bucket, Key="k")
    marker = deleted["VersionId"]
    seen["delete"] = [deleted.get("DeleteMarker"), label(marker)]
    seen["get_after_delete"] = error(lambda: s3.get_object(Bucket=bucket, Key="k"))
    seen["get_marker"] = error(lambda: s3.get_object(Bucket=bucket, Key="k", VersionId=marker))
    seen["head_marker"] = error(lambda: s3.head_object(Bucket=bucket, Key="k", VersionId=marker))
    seen["listed_objects"] = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    seen["versions"] = listed()
    copied = s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "k", "VersionId": v1})
    seen["copy_of_v1"] = [label(copied.get("CopySourceVersionId")), body(Key="copy")[0]]
    part_upload = s3.create_multipart_upload(Bucket=bucket, Key="part-of-v1")["UploadId"]
    part = s3.upload_part_copy(Bucket=bucket, Key="part-of-v1", UploadId=part_upload, PartNumber=1,
                               CopySource={"Bucket": bucket, "Key": "k", "VersionId": v1})
    s3.complete_multipart_upload(Bucket=bucket, Key="part-of-v1", UploadId=part_upload, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]})
    seen["part_copy_of_v1"] = [label(part.get("CopySourceVersionId")),
                               s3.get_object(Bucket=bucket, Key="part-of-v1")["Body"].read().decode()]
    seen["copy_of_marker"] = code_of(lambda: s3.copy_object(
        Bucket=bucket, Key="copy2", CopySource={"Bucket": bucket, "Key": "k", "VersionId": marker}))
    seen["copy_of_deleted"] = code_of(lambda: s3.copy_object(
        Bucket=bucket, Key="copy2", CopySource={"Bucket": bucket, "Key": "k"}))
    undeleted = s3.delete_object(Bucket=bucket, Key="k", VersionId=marker)
    seen["remove_marker"] = [undeleted.get("DeleteMarker"), label(undeleted.get("VersionId"))]
    seen["after_marker_removed"] = body(Key="k")
    s3.delete_object(Bucket=bucket, Key="k", VersionId=v2)
    seen["after_v2_removed"] = body(Key="k")
    seen["other_tenant_reads_version"] = code_of(lambda: other.get_object(Bucket=bucket, Key="k", VersionId=v1))
    # A policy that lets everyone read what is there does not reach older versions by ID (two
    # plaintext versions, removed again).
    p1 = s3.put_object(Bucket=bucket, Key="pub", Body=b"p1")["VersionId"]
    s3.put_object(Bucket=bucket, Key="pub", Body=b"p2")
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["s3:GetObject"],
         "Resource": [f"arn:aws:s3:::{bucket}/*"]}]}))
    seen["public_reads"] = [code_of(lambda: other.get_object(Bucket=bucket, Key="pub")),
                            code_of(lambda: other.get_object(Bucket=bucket, Key="pub", VersionId=p1)),
                            code_of(lambda: other.get_object(Bucket=bucket, Key="pub", VersionId="null"))]
    s3.delete_bucket_policy(Bucket=bucket)
    for v in s3.list_object_versions(Bucket=bucket, Prefix="pub").get("Versions", []):
        s3.delete_object(Bucket=bucket, Key="pub", VersionId=v["VersionId"])
    mp = s3.create_multipart_upload(Bucket=bucket, Key="big", ServerSideEncryption="aws:kms")
    part = s3.upload_part(Bucket=bucket, Key="big", UploadId=mp["UploadId"], PartNumber=1, Body=b"m" * 100)
    done = s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=mp["UploadId"],
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    seen["multipart_version"] = label(done.get("VersionId")) is not None
    import requests
    form = s3.generate_presigned_post(bucket, "form")
    posted = requests.post(form["url"], data=form["fields"], files={"file": ("f", b"f")})
    seen["form_version"] = [posted.status_code, label(posted.headers.get("x-amz-version-id")) is not None]
    seen["suspend"] = put_state(s3, Status="Suspended")
    seen["suspended_put"] = s3.put_object(Bucket=bucket, Key="k", Body=b"three").get("VersionId")
    s3.put_object(Bucket=bucket, Key="k", Body=b"four")
    seen["null_version"] = body(Key="k", VersionId="null")
    k_form = s3.generate_presigned_post(bucket, "k")
    seen["null_version_answers"] = [
        s3.head_object(Bucket=bucket, Key="k").get("VersionId"),
        s3.get_object_tagging(Bucket=bucket, Key="k").get("VersionId"),
        s3.copy_object(Bucket=bucket, Key="k", CopySource={"Bucket": bucket, "Key": "k"},
                       MetadataDirective="REPLACE").get("VersionId"),
        requests.post(k_form["url"], data=k_form["fields"], files={"file": ("f", b"four")})
        .headers.get("x-amz-version-id"),
    ]
    seen["suspended_versions"] = [e for e in listed() if e[1] == "k"]
    s3.put_object(Bucket=bucket, Key="p/1", Body=b"x")
    pages = s3.get_paginator("list_object_versions").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 1})
    seen["paged"] = [[v["Key"], label(v["VersionId"])] for page in pages
                     for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
    batch = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "copy"}, {"Key": "k", "VersionId": v1}, {"Key": "k", "VersionId": "bad"}]})
    seen["batch"] = sorted([d["Key"], label(d.get("VersionId")), d.get("DeleteMarker", False)]
                           for d in batch.get("Deleted", []))
    seen["batch_errors"] = [[e["Key"], e["Code"]] for e in batch.get("Errors", [])]
    rules = [{"ID": "old-versions", "Filter": {"Prefix": ""}, "Status": "Enabled",
              "Expiration": {"ExpiredObjectDeleteMarker": True},
              "NoncurrentVersionExpiration": {"NoncurrentDays": 30, "NewerNoncurrentVersions": 3}}]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    got = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    seen["noncurrent_rules_read_back"] = got == rules or got
    seen["delete_bucket_with_versions"] = code_of(lambda: s3.delete_bucket(Bucket=bucket))
    resource.Bucket(bucket).object_versions.delete()
    seen["left"] = listed()
    seen["delete_bucket"] = code_of(lambda: s3.delete_bucket(Bucket=bucket))
    return seen


def object_lock(s3, bucket):
    """Object Lock as S3 keeps it: refused on a bucket without it; a bucket made with it has
    versioning for good; its default retention applies to a PUT without one; a PUT's own
    retention and legal hold are answered by HEAD and their own calls; a protected version is
    not removed (a marker still is added), a COMPLIANCE retention is only lengthened, a
    GOVERNANCE one gives way to a caller that bypasses it."""
    import datetime
    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)
    seen = {}
    plain = bucket + "-plain"
    s3.create_bucket(Bucket=plain)
    seen["lock_on_plain_bucket"] = code_of(lambda: s3.put_object(
        Bucket=plain, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=now + day))
    seen["config_needs_versioning"] = code_of(lambda: s3.put_object_lock_configuration(
        Bucket=plain, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"}))
    seen["no_config"] = code_of(lambda: s3.get_object_lock_configuration(Bucket=plain))
    s3.delete_bucket(Bucket=plain)
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    seen["versioning"] = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    seen["suspend"] = code_of(lambda: s3.put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": "Suspended"}))
    config = {"ObjectLockEnabled": "Enabled",
              "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}}
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=config)
    seen["config"] = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"] == config
    v_default = s3.put_object(Bucket=bucket, Key="default", Body=b"d")["VersionId"]
    head = s3.head_object(Bucket=bucket, Key="default")
    seen["default_retention"] = [head.get("ObjectLockMode"),
                                 now + day - datetime.timedelta(minutes=5) < head["ObjectLockRetainUntilDate"] <= now + 2 * day]
    until = (now + 3 * day).replace(microsecond=0)
    v_kept = s3.put_object(Bucket=bucket, Key="kept", Body=b"k", ObjectLockMode="COMPLIANCE",
                           ObjectLockRetainUntilDate=until, ObjectLockLegalHoldStatus="ON")["VersionId"]
    head = s3.head_object(Bucket=bucket, Key="kept", VersionId=v_kept)
    seen["headers"] = [head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate") == until,
                       head.get("ObjectLockLegalHoldStatus")]
    retention = s3.get_object_retention(Bucket=bucket, Key="kept")["Retention"]
    seen["retention"] = [retention["Mode"], retention["RetainUntilDate"] == until]
    seen["legal_hold"] = s3.get_object_legal_hold(Bucket=bucket, Key="kept")["LegalHold"]["Status"]
    seen["delete_held"] = code_of(lambda: s3.delete_object(Bucket=bucket, Key="kept", VersionId=v_kept))
    s3.put_object_legal_hold(Bucket=bucket, Key="kept", LegalHold={"Status": "OFF"})
    # A hold lifted reads OFF; one never set is no configuration at all (S3's 404).
    seen["legal_hold_lifted"] = s3.get_object_legal_hold(Bucket=bucket, Key="kept")["LegalHold"]["Status"]
    seen["legal_hold_never_set"] = code_of(lambda: s3.get_object_legal_hold(Bucket=bucket, Key="default"))
    # HEAD and GET say the same: OFF once lifted, nothing where no hold was ever set.
    seen["legal_hold_read"] = {
        k: [s3.head_object(Bucket=bucket, Key=k).get("ObjectLockLegalHoldStatus"),
            s3.get_object(Bucket=bucket, Key=k).get("ObjectLockLegalHoldStatus")]
        for k in ("kept", "default")}
    seen["delete_compliance"] = code_of(lambda: s3.delete_object(
        Bucket=bucket, Key="kept", VersionId=v_kept, BypassGovernanceRetention=True))
    seen["shorten_compliance"] = code_of(lambda: s3.put_object_retention(
        Bucket=bucket, Key="kept", Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until - day},
        BypassGovernanceRetention=True))
    seen["lengthen_compliance"] = code_of(lambda: s3.put_object_retention(
        Bucket=bucket, Key="kept", Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until + day}))
    seen["delete_marker_allowed"] = s3.delete_object(Bucket=bucket, Key="kept").get("DeleteMarker")
    seen["delete_governance"] = code_of(lambda: s3.delete_object(
        Bucket=bucket, Key="default", VersionId=v_default))
    seen["delete_governance_bypassed"] = code_of(lambda: s3.delete_object(
        Bucket=bucket, Key="default", VersionId=v_default, BypassGovernanceRetention=True))
    seen["past_date"] = code_of(lambda: s3.put_object(
        Bucket=bucket, Key="past", Body=b"p", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=now - day))
    seen["mode_without_date"] = code_of(lambda: s3.put_object(
        Bucket=bucket, Key="half", Body=b"h", ObjectLockMode="GOVERNANCE"))
    seen["event_hold"] = code_of(lambda: s3.put_object(
        Bucket=bucket, Key="event", Body=b"e", ObjectLockEventHold="ON"))
    import requests
    fields = {"x-amz-object-lock-mode": "GOVERNANCE"}
    form = s3.generate_presigned_post(bucket, "form", Fields=fields, Conditions=[fields])
    seen["form_with_lock"] = requests.post(form["url"], data=form["fields"],
                                           files={"file": ("f", b"f")}).status_code
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ObjectLockMode="GOVERNANCE",
                                    ObjectLockRetainUntilDate=until)["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=1, Body=b"m")["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    head = s3.head_object(Bucket=bucket, Key="mp")
    seen["multipart_with_lock"] = [head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate") == until]
    s3.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": bucket, "Key": "kept", "VersionId": v_kept},
                   ObjectLockLegalHoldStatus="ON")
    head = s3.head_object(Bucket=bucket, Key="copied")
    seen["copy_with_lock"] = [head.get("ObjectLockMode"), head.get("ObjectLockLegalHoldStatus")]
    batch = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "kept", "VersionId": v_kept}]})
    seen["batch"] = [[e["Key"], e["Code"]] for e in batch.get("Errors", [])]
    seen["bucket_delete"] = code_of(lambda: s3.delete_bucket(Bucket=bucket))
    return seen


def s3_policy(s3, bucket, other):
    """A bucket policy in S3's spelling (principals, s3: actions, ARNs, S3's condition keys)."""
    s3.create_bucket(Bucket=bucket)
    policy = json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "DenyUnencryptedUploads", "Effect": "Deny", "Principal": "*",
             "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/secure/*",
             "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}},
            {"Sid": "PublicRead", "Effect": "Allow", "Principal": {"AWS": "*"},
             "Action": ["s3:GetObject"], "Resource": [f"arn:aws:s3:::{bucket}/public/*"]},
        ],
    })
    seen = {"put_policy": code_of(lambda: s3.put_bucket_policy(Bucket=bucket, Policy=policy))}
    seen["read_back"] = s3.get_bucket_policy(Bucket=bucket)["Policy"] == policy
    seen["public"] = s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"]
    put = lambda key, **kw: code_of(lambda: s3.put_object(Bucket=bucket, Key=key, Body=b"x", **kw))
    seen["secure_plain"] = put("secure/plain")
    seen["secure_kms"] = put("secure/kms", ServerSideEncryption="aws:kms")
    seen["public_plain"] = put("public/p")
    get = lambda key: code_of(lambda: other.get_object(Bucket=bucket, Key=key)["Body"].read())
    seen["other_reads_public"] = get("public/p")
    seen["other_reads_secure"] = get("secure/kms")
    seen["left"] = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
    return seen


def lifecycle(s3, bucket, phase, other):
    """Bucket lifecycle rules, set, read and applied (the test moves the clock between phases)."""
    import datetime

    def state():
        return {
            "listed": sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])),
            "uploads": sorted(u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])),
        }

    if phase == "read":
        return state()
    if phase == "delete":
        return {"delete": code_of(lambda: s3.delete_bucket_lifecycle(Bucket=bucket)),
                "read": code_of(lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket)),
                "state": state()}
    s3.create_bucket(Bucket=bucket)
    for key, body, extra in [
        ("logs/a", b"a", {}),
        ("logs/b", b"b", {"ServerSideEncryption": "aws:kms"}),
        ("tmp/t", b"t", {"Tagging": "temp=yes"}),
        ("tmp/u", b"u", {}),
        ("dated/d", b"d", {}),
        ("size/small", b"s" * 10, {}),
        ("size/big", b"b" * 1000, {}),
        ("past/p", b"p", {}),
        ("keep/k", b"k", {}),
    ]:
        s3.put_object(Bucket=bucket, Key=key, Body=body, **extra)
    for key in ("up/u", "other/u"):
        uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=1, Body=b"x")
    midnight = lambda d: datetime.datetime(2027, 1, d, tzinfo=datetime.timezone.utc)
    rules = [
        {"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled",
         "Expiration": {"Days": 1}},
        {"ID": "temp", "Status": "Enabled", "Expiration": {"Days": 2},
         "Filter": {"And": {"Prefix": "tmp/", "Tags": [{"Key": "temp", "Value": "yes"}]}}},
        {"ID": "dated", "Filter": {"Prefix": "dated/"}, "Status": "Enabled",
         "Expiration": {"Date": midnight(3)}},
        {"ID": "small", "Status": "Enabled", "Expiration": {"Days": 1},
         "Filter": {"And": {"Prefix": "size/", "ObjectSizeLessThan": 100}}},
        {"ID": "uploads", "Filter": {"Prefix": "up/"}, "Status": "Enabled",
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
        {"ID": "off", "Filter": {"Prefix": ""}, "Status": "Disabled", "Expiration": {"Days": 1}},
        {"ID": "past", "Filter": {"Prefix": "past/"}, "Status": "Enabled",
         "Expiration": {"Date": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)}},
    ]
    seen = {"put": code_of(lambda: s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": rules}))}
    got = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    seen["read_back"] = got == rules or [got, rules]
    bad = lambda **rule: lambda: s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [
            {"ID": "bad", "Filter": {"Prefix": ""}, "Status": "Enabled", **rule}]})
    seen["refused"] = {
        "a transition": code_of(bad(Transitions=[{"Days": 1, "StorageClass": "GLACIER"}])),
        "a date not at midnight": code_of(bad(Expiration={
            "Date": datetime.datetime(2027, 1, 5, 12, tzinfo=datetime.timezone.utc)})),
        "zero days": code_of(bad(Expiration={"Days": 0})),
        "no action": code_of(bad()),
        "noncurrent transition": code_of(bad(NoncurrentVersionTransitions=[
            {"NoncurrentDays": 1, "StorageClass": "GLACIER"}])),
        "another tenant": code_of(lambda: other.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": rules})),
        "another tenant reads": code_of(lambda: other.get_bucket_lifecycle_configuration(
            Bucket=bucket)),
    }
    seen["unchanged"] = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"] == rules
    seen["expiration"] = {k: s3.head_object(Bucket=bucket, Key=k).get("Expiration")
                          for k in ("logs/a", "tmp/t", "tmp/u", "dated/d", "size/small", "keep/k")}
    # A write a rule covers answers its expiry too (removed again: the listings stay as above).
    seen["write_answers"] = [
        s3.put_object(Bucket=bucket, Key="logs/put", Body=b"p").get("Expiration"),
        s3.copy_object(Bucket=bucket, Key="logs/copy",
                       CopySource={"Bucket": bucket, "Key": "keep/k"}).get("Expiration"),
        s3.put_object(Bucket=bucket, Key="keep/put", Body=b"p").get("Expiration"),
    ]
    for k in ("logs/put", "logs/copy", "keep/put"):
        s3.delete_object(Bucket=bucket, Key=k)
    seen["state"] = state()
    return seen


def main():
    endpoint, ak, sk, signature, op, *args = sys.argv[1:]
    s3 = client(endpoint, ak, sk, signature)
    try:
        if op == "create-bucket":
            out = outcome(s3.create_bucket(Bucket=args[0]))
        elif op == "put":
            bucket, key, path, *sse = args
            extra = {}
            if sse:
                extra["ServerSideEncryption"] = "aws:kms"
                if sse[0] != "-":
                    extra["SSEKMSKeyId"] = sse[0]
            with open(path, "rb") as f:
                out = outcome(s3.put_object(Bucket=bucket, Key=key, Body=f, **extra))
        elif op == "get":
            bucket, key, path, *rng = args
            extra = {"Range": rng[0]} if rng else {}
            resp = s3.get_object(Bucket=bucket, Key=key, **extra)
            out = outcome(resp)
            # Keep what arrived even when the body breaks off: the test checks every byte served.
            with open(path, "wb") as f:
                try:
                    for chunk in resp["Body"].iter_chunks(65536):
                        f.write(chunk)
                except Exception as e:  # urllib3/botocore report a cut body in several types
                    out = {"error": "IncompleteBody", "status": out["status"], "exception": type(e).__name__}
        elif op == "head":
            out = outcome(s3.head_object(Bucket=args[0], Key=args[1]))
        elif op == "delete":
            out = outcome(s3.delete_object(Bucket=args[0], Key=args[1]))
        elif op == "list":
            prefix = args[1] if len(args) > 1 else ""
            resp = s3.list_objects_v2(Bucket=args[0], Prefix=prefix)
            out = outcome(resp)
            out["keys"] = [o["Key"] for o in resp.get("Contents", [])]
        elif op == "copy":
            bucket, key, src_bucket, src_key, *sse = args
            extra = {}
            if sse:
                extra["ServerSideEncryption"] = "aws:kms"
                if sse[0] != "-":
                    extra["SSEKMSKeyId"] = sse[0]
            resp = s3.copy_object(
                Bucket=bucket, Key=key, CopySource={"Bucket": src_bucket, "Key": src_key}, **extra
            )
            out = outcome(resp)
            out["etag"] = resp["CopyObjectResult"]["ETag"]
            out["last_modified"] = resp["CopyObjectResult"]["LastModified"].isoformat()
        elif op == "multipart":
            bucket, key, path, part_size, *sse = args
            extra = {}
            if sse:
                extra["ServerSideEncryption"] = "aws:kms"
                if sse[0] != "-":
                    extra["SSEKMSKeyId"] = sse[0]
            data = open(path, "rb").read()
            size = int(part_size)
            chunks = [data[i : i + size] for i in range(0, len(data), size)]
            init = s3.create_multipart_upload(Bucket=bucket, Key=key, **extra)
            uid = init["UploadId"]
            parts = []
            # Parts in reverse order: the manifest orders them by number.
            for number in range(len(chunks), 0, -1):
                r = s3.upload_part(
                    Bucket=bucket, Key=key, UploadId=uid, PartNumber=number, Body=chunks[number - 1]
                )
                parts.append({"PartNumber": number, "ETag": r["ETag"]})
            listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=uid)
            parts.sort(key=lambda p: p["PartNumber"])
            done = s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=uid, MultipartUpload={"Parts": parts}
            )
            out = outcome(done)
            out["initiate"] = outcome(init)
            out["etag"] = done["ETag"]
            out["listed_parts"] = [p["PartNumber"] for p in listed.get("Parts", [])]
        elif op == "abort-multipart":
            bucket, key = args
            uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
            s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=1, Body=b"x" * 1000)
            out = outcome(s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=uid))
        elif op in ("post-form", "post-form-uncovered", "post-form-public"):
            import requests

            bucket, key, path = args
            fields = {"x-amz-server-side-encryption": "aws:kms"}
            if op == "post-form-public":
                fields["acl"] = "public-read"
            post = s3.generate_presigned_post(
                Bucket=bucket,
                Key=key,
                Fields=fields,
                Conditions=[{k: v} for k, v in fields.items()],
                ExpiresIn=600,
            )
            fields = dict(post["fields"])
            if op == "post-form-uncovered":
                fields["x-amz-meta-added"] = "not in the policy"
            with open(path, "rb") as f:
                r = requests.post(post["url"], data=fields, files={"file": ("upload.bin", f)})
            if r.status_code >= 300:
                code = r.text.split("<Code>")[1].split("</Code>")[0] if "<Code>" in r.text else ""
                out = {"error": code, "status": r.status_code}
            else:
                out = {"status": r.status_code, "headers": {k.lower(): v for k, v in r.headers.items()}}
            out["signed_fields"] = sorted(post["fields"])
        elif op == "concurrent-puts":
            import concurrent.futures

            bucket, key, n, size = args[0], args[1], int(args[2]), int(args[3])
            bodies = [bytes([65 + i]) * size for i in range(n)]

            def put(i):
                r = s3.put_object(Bucket=bucket, Key=key, Body=bodies[i], ServerSideEncryption="aws:kms")
                return r["ResponseMetadata"]["HTTPStatusCode"]

            with concurrent.futures.ThreadPoolExecutor(n) as pool:
                statuses = list(pool.map(put, range(n)))
            got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            winner = bodies.index(got) if got in bodies else -1
            out = {"statuses": statuses, "winner": winner, "len": len(got)}
        elif op == "dropped-put":
            import socket

            bucket, key = args
            url = s3.generate_presigned_url(
                "put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=600
            )
            u = urllib.parse.urlsplit(url)
            s = socket.create_connection((u.hostname, u.port))
            head = (
                f"PUT {u.path}?{u.query} HTTP/1.1\r\nHost: {u.netloc}\r\n"
                "Content-Length: 1000000\r\n\r\n"
            )
            s.sendall(head.encode() + b"D" * 100000)
            s.close()
            out = {"sent": 100000}
        elif op == "managed-copy":
            from boto3.s3.transfer import TransferConfig

            bucket, key, src_bucket, src_key = args
            mib = 1024 * 1024
            s3.copy(
                {"Bucket": src_bucket, "Key": src_key},
                bucket,
                key,
                ExtraArgs={"ServerSideEncryption": "aws:kms"},
                Config=TransferConfig(multipart_threshold=5 * mib, multipart_chunksize=5 * mib),
            )
            out = outcome(s3.head_object(Bucket=bucket, Key=key))
        elif op == "presign-url":
            url = s3.generate_presigned_url(
                "put_object", Params={"Bucket": args[0], "Key": args[1]}, ExpiresIn=600
            )
            out = {"url": url}
        elif op == "api-surface":
            out = api_surface(s3, args[0])
        elif op == "part-reads":
            out = part_reads(s3, args[0])
        elif op == "uploads":
            out = uploads(s3, args[0])
        elif op == "list-uploads":
            out = {"uploads": [u["Key"] for u in s3.list_multipart_uploads(
                Bucket=args[0]).get("Uploads", [])]}
        elif op == "limits":
            out = limits(s3, args[0])
        elif op == "listing-edges":
            out = listing_edges(s3, args[0])
        elif op == "read-while-replaced":
            out = read_while_replaced(s3, args[0])
        elif op == "probe-other":
            out = probe_other(s3, *args)
        elif op == "stored-headers":
            out = stored_headers(s3, args[0])
        elif op == "conditions":
            out = conditions(s3, args[0])
        elif op == "sub-resources":
            out = sub_resources(s3, args[0])
        elif op == "storage-classes":
            out = storage_classes(s3, args[0])
        elif op == "bucket-configs":
            bucket, other_ak, other_sk = args
            out = bucket_configs(s3, bucket, client(endpoint, other_ak, other_sk, signature))
        elif op == "checksums":
            out = checksums(s3, args[0])
        elif op == "multipart-checksums":
            out = multipart_checksums(s3, args[0])
        elif op == "form-redirect":
            out = form_redirect(s3, args[0])
        elif op == "bucket-keys":
            out = bucket_keys(s3, args[0])
        elif op == "late-parameters":
            out = late_parameters(s3, args[0])
        elif op == "crc64nvme":
            out = crc64nvme(s3, args[0])
        elif op == "public-access":
            bucket, other_ak, other_sk, other_domain = args
            out = public_access(s3, bucket, client(endpoint, other_ak, other_sk, signature),
                                other_domain)
        elif op == "attributes":
            bucket, other_ak, other_sk = args
            out = attributes(s3, bucket, client(endpoint, other_ak, other_sk, signature))
        elif op == "unkept-parameters":
            out = unkept_parameters(s3, args[0])
        elif op == "conditional-delete":
            out = conditional_delete(s3, args[0])
        elif op == "expected-owner":
            out = expected_owner(s3, *args)
        elif op == "sse-c":
            out = sse_c(s3, args[0])
        elif op == "cors":
            bucket, other_ak, other_sk = args
            out = cors(s3, bucket, client(endpoint, other_ak, other_sk, signature), endpoint)
        elif op == "versions":
            out = versions(s3, args[0], endpoint, ak, sk, signature)
        elif op == "website-redirect":
            out = website_redirect(s3, args[0])
        elif op == "versioning":
            bucket, other_ak, other_sk = args
            out = versioning(s3, bucket, client(endpoint, other_ak, other_sk, signature),
                             resource(endpoint, ak, sk, signature))
        elif op == "object-lock":
            out = object_lock(s3, args[0])
        elif op == "s3-policy":
            bucket, other_ak, other_sk = args
            out = s3_policy(s3, bucket, client(endpoint, other_ak, other_sk, signature))
        elif op == "lifecycle":
            bucket, phase, other_ak, other_sk = args
            out = lifecycle(s3, bucket, phase, client(endpoint, other_ak, other_sk, signature))
        elif op == "tampered-bodies":
            out = tampered_bodies(s3, args[0], endpoint, ak, sk)
        elif op == "mutated-documents":
            out = mutated_documents(s3, args[0], endpoint, ak, sk)
        elif op == "mutated-headers":
            out = mutated_headers(s3, args[0], endpoint, ak, sk)
        elif op == "tagging":
            bucket, other_ak, other_sk = args
            out = tagging(s3, bucket, client(endpoint, other_ak, other_sk, signature))
        elif op == "acls":
            bucket, other_ak, other_sk = args
            out = acls(s3, bucket, client(endpoint, other_ak, other_sk, signature))
        elif op == "put-encryption":
            rule = {"SSEAlgorithm": "aws:kms"}
            if len(args) > 1 and args[1] != "-":
                rule["KMSMasterKeyID"] = args[1]
            out = outcome(
                s3.put_bucket_encryption(
                    Bucket=args[0],
                    ServerSideEncryptionConfiguration={
                        "Rules": [{"ApplyServerSideEncryptionByDefault": rule}]
                    },
                )
            )
            got = s3.get_bucket_encryption(Bucket=args[0])
            out["rule"] = got["ServerSideEncryptionConfiguration"]["Rules"][0][
                "ApplyServerSideEncryptionByDefault"
            ]
        elif op == "put-policy":
            with open(args[1]) as f:
                out = outcome(s3.put_bucket_policy(Bucket=args[0], Policy=f.read()))
        elif op in ("presigned-put", "presigned-put-stripped"):
            bucket, key, path = args
            url = s3.generate_presigned_url(
                "put_object",
                Params={"Bucket": bucket, "Key": key, "ServerSideEncryption": "aws:kms"},
                ExpiresIn=600,
            )
            # Send what the signer signed: with V4 the SSE header stays a signed header.
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
            signed = query.get("X-Amz-SignedHeaders", [""])[0].split(";")
            headers = {h: "aws:kms" for h in signed if h == "x-amz-server-side-encryption"}
            with open(path, "rb") as f:
                out = raw_put(url, f.read(), headers, op.endswith("-stripped"))
        else:
            raise SystemExit(f"unknown operation {op}")
    except botocore.exceptions.ClientError as e:
        out = {
            "error": e.response["Error"].get("Code"),
            "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
            "message": e.response["Error"].get("Message"),
        }
    print(json.dumps(out))


main()
