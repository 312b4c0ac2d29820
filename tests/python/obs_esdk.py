"""Huawei's esdk-obs-python, unmodified, against obs-gateway: one operation per run, the outcome
as JSON on stdout.

usage: obs_esdk.py ENDPOINT ACCESS_KEY SECRET_KEY MODE OP ARGS...
  MODE: "default" (client_mode 'obs': with an IP endpoint, V2 in the x-amz dialect),
        "workflow" (client_mode 'workflow': the OBS scheme with x-obs- headers) or
        "v4" (signature='v4': SigV4 with UNSIGNED-PAYLOAD and a Date header)
  OP: create-bucket B | create-bucket-in B REGION | put B K FILE [KEY_ID|-] [kms]
      | get B K OUT [RANGE] | head B K | delete B K | copy B K SRC_B SRC_K [KEY_ID|-] [kms] | put-encryption B [KEY_ID|-]
      | multipart B K FILE PART_SIZE [KEY_ID|-] [kms]
      | post-form B K FILE (createPostSignature with x-obs-server-side-encryption=kms as a form
        field, posted with requests)
      | presigned-put B K FILE (createSignedUrl with SSE-KMS in the query in the mode's dialect:
        x-obs-server-side-encryption=kms or x-amz-server-side-encryption=aws:kms; used by raw
        HTTP) | presigned-put-stripped B K FILE (the URL without its SSE parameter)
      | presigned-put-obs-param B K FILE (x-obs-server-side-encryption=kms whatever the mode)
      | copy-conditions B K (K stored before: copies of K to K.copy under the SDK's copy-source
        conditions, and conditional GETs)
      | sub-resources B K (K stored before: the SDK's calls of sub-resources the gateway does
        not serve, another version, image processing, a content-type override; K's body after)
      | limits B (creates B: a multipart part under and at 100 KiB (the upload listed between),
        user metadata over 8 KiB, copies of an object onto itself with and without replacing
        its metadata)
      | acls B F (creates B with F stored as k: the bucket's and k's ACL as read, canned ACLs
        set on the bucket, on k and on a new object)
      | bucket-info B (getBucketStorageInfo's size and object count, getBucketVersioning)
      | storage-classes B (creates B: putContent and initiateMultipartUpload asking for OBS's
        storage classes; what is left)
      | bucket-configs B (creates B: the SDK's reads of the bucket configurations the gateway
        keeps none of)
      | public-access B (creates B: putBucketPublicAccessBlock, getBucketPublicAccessBlock, a public
        policy refused then taken, getBucketPolicyPublicStatus, getBucketPublicStatus)
      | quota B (creates B: setBucketQuota, then writes within and past it: puts, appends, a
        copy, a multipart completion; getBucketStorageInfo, the quota removed)
      | set-quota B N (setBucketQuota)
      | resumable B K FILE (uploadFile with SSE-KMS, 3 threads, a checkpoint and checkSum, then
        downloadFile with 3 threads and a checkpoint: what each answers, whether the download is
        FILE, the object's part count and SSE)
      | sse-c B (creates B with plain: the SDK's calls with an SseCHeader, what is left)
      | cors B (creates B with k: setBucketCors, getBucketCors, optionsBucket and optionsObject
        allowed and refused, deleteBucketCors)
      | object-tags B (creates B with k: the SDK's object tagging calls, OBS's limits)
      | list-versions B (listVersions: each version's key, ID and latest flag, delete markers)
      | object-metadata B (creates B: setObjectMetadata with REPLACE_NEW and REPLACE on a plain,
        an SSE-KMS and an appendable object, what getObjectMetadata and getObject see after)
      | expiry B PHASE (object expiry, x-obs-expires, the SDK's `expires`: PHASE "write" creates B
        with objects of one and two days' life (put, SSE-KMS put, multipart, append, a metadata
        change, a POST form), a copy, an object without; refused values; each object's life as
        getObjectMetadata's expiration minus its Last-Modified, in days | "read": what listObjects
        lists and getObject reads of every key | "unsigned": creates B, a put and an initiated
        upload with a life, which the default mode does not sign | "late": an object of one day's life written now,
        and a metadata change that would set an expiry already past)
      | versioning B (creates B: setBucketVersioning Enabled; objects written, read and deleted by
        version, delete markers, listVersions, suspension; emptied and deleted)
      | object-lock B (creates B: setBucketObjectLock before and after versioning, getBucketObjectLock,
        putObjectRetention, the deletes a retention allows)
      | lifecycle B PHASE (setBucketLifecycle: PHASE "write" creates B with objects, one with its
        own expiry, sets a rule by prefix that expires them in a day and one with an empty prefix
        that ends uploads, reads them back and each object's expiration | "read": the keys listed)
      | appends B MARKER (creates B: appendObject to an SSE-KMS and a plaintext object, what
        getObjectMetadata, getObject, listObjects and copyObject see of them, the refusals;
        MARKER starts the SSE-KMS object's second append)
Refusals print {"error": code, "status": http_status}.
"""
import json
import sys
import http.client
import urllib.parse

from obs import (
    AppendObjectContent,
    AppendObjectHeader,
    CreateBucketHeader,
    CompleteMultipartUploadRequest,
    CompletePart,
    CopyObjectHeader,
    CorsRule,
    GetObjectHeader,
    GetObjectRequest,
    ObsClient,
    Options,
    PutObjectHeader,
    SetObjectMetadataHeader,
    SseCHeader,
    SseKmsHeader,
)


def sse_header(sse):
    if not sse:
        return None
    return SseKmsHeader(encryption="kms", key=None if sse[0] == "-" else sse[0])


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


def post_form(c, mode, endpoint, ak, bucket, key, params, body):
    """A browser's form upload of `body` to bucket/key, signed by createPostSignature with the
    form fields `params` (in the policy and in the form), posted with requests."""
    import requests

    signed = c.createPostSignature(bucket, key, expires=600, formParams=params)
    if mode == "v4":
        fields = {
            "key": key,
            "policy": signed.policy,
            "x-amz-algorithm": "AWS4-HMAC-SHA256",
            "x-amz-credential": signed.credential,
            "x-amz-date": signed.date,
            "x-amz-signature": signed.signature,
        }
    else:
        id_field = "AccessKeyId" if mode == "workflow" else "AWSAccessKeyId"
        fields = {"key": key, id_field: ak, "policy": signed.policy, "signature": signed.signature}
    fields.update(params)
    return requests.post(f"{endpoint}/{bucket}", data=fields, files={"file": ("upload.bin", body)})


def main():
    endpoint, ak, sk, mode, op, *args = sys.argv[1:]
    kwargs = {"client_mode": "workflow"} if mode == "workflow" else {}
    if mode == "v4":
        kwargs = {"signature": "v4"}
    c = ObsClient(
        access_key_id=ak,
        secret_access_key=sk,
        server=endpoint,
        path_style=True,
        max_retry_count=0,
        **kwargs,
    )
    if op == "create-bucket-in":
        resp = c.createBucket(args[0], location=args[1])
    elif op == "create-bucket":
        resp = c.createBucket(args[0])
    elif op == "put":
        bucket, key, path, *sse = args
        headers = None
        if sse:
            headers = PutObjectHeader(
                sseHeader=SseKmsHeader(encryption="kms", key=None if sse[0] == "-" else sse[0])
            )
        resp = c.putFile(bucket, key, path, headers=headers)
    elif op == "get":
        bucket, key, path, *rng = args
        headers = GetObjectHeader(range=rng[0]) if rng else None
        resp = c.getObject(bucket, key, headers=headers, loadStreamInMemory=True)
        if resp.status < 300:
            with open(path, "wb") as f:
                f.write(resp.body.buffer)
    elif op == "head":
        resp = c.getObjectMetadata(args[0], args[1])
    elif op == "delete":
        resp = c.deleteObject(args[0], args[1])
    elif op == "copy":
        bucket, key, src_bucket, src_key, *sse = args
        headers = CopyObjectHeader(destSseHeader=sse_header(sse)) if sse else None
        resp = c.copyObject(src_bucket, src_key, bucket, key, headers=headers)
    elif op == "multipart":
        bucket, key, path, part_size, *sse = args
        data = open(path, "rb").read()
        size = int(part_size)
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        init = c.initiateMultipartUpload(bucket, key, sseHeader=sse_header(sse))
        if init.status >= 300:
            print(json.dumps({"error": init.errorCode, "status": init.status}))
            return
        uid = init.body.uploadId
        parts = []
        for number, chunk in enumerate(chunks, start=1):
            r = c.uploadPart(bucket, key, number, uid, object=chunk)
            if r.status >= 300:
                print(json.dumps({"error": r.errorCode, "status": r.status}))
                return
            parts.append(CompletePart(partNum=number, etag=r.body.etag))
        resp = c.completeMultipartUpload(
            bucket, key, uid, CompleteMultipartUploadRequest(parts=parts)
        )
    elif op == "post-form":
        bucket, key, path = args
        with open(path, "rb") as f:
            r = post_form(c, mode, endpoint, ak, bucket, key,
                          {"x-obs-server-side-encryption": "kms"}, f)
        if r.status_code >= 300:
            code = r.text.split("<Code>")[1].split("</Code>")[0] if "<Code>" in r.text else ""
            out = {"error": code, "status": r.status_code}
        else:
            out = {"status": r.status_code, "headers": {k.lower(): v for k, v in r.headers.items()}}
        print(json.dumps(out))
        return
    elif op == "copy-conditions":
        bucket, key = args
        etag = c.getObjectMetadata(bucket, key).body.etag
        past = "Sat, 01 Jan 2000 00:00:00 GMT"

        def copy(**kw):
            r = c.copyObject(bucket, key, bucket, key + ".copy", headers=CopyObjectHeader(**kw))
            return "ok" if r.status < 300 else r.errorCode

        def get(**kw):
            r = c.getObject(bucket, key, loadStreamInMemory=True, headers=GetObjectHeader(**kw))
            return "ok" if r.status < 300 else r.status

        seen = {
            "if_match": copy(if_match=etag),
            "if_match_wrong": copy(if_match='"0123"'),
            "if_none_match": copy(if_none_match=etag),
            "if_unmodified_since_past": copy(if_unmodified_since=past),
            "get_if_none_match": get(if_none_match=etag),
            "get_if_unmodified_since_past": get(if_unmodified_since=past),
        }
        print(json.dumps(seen))
        return
    elif op == "acls":
        bucket, path = args

        def code(resp):
            return "ok" if resp.status < 300 else resp.errorCode

        def grants(resp):
            return [[g.grantee.grantee_id, g.permission] for g in resp.body.grants]

        c.createBucket(bucket)
        c.putFile(bucket, "k", path)
        acl = c.getBucketAcl(bucket)
        seen = {
            "owner": acl.body.owner.owner_id,
            "bucket_grants": grants(acl),
            "object_grants": grants(c.getObjectAcl(bucket, "k")),
            "set_private": code(c.setBucketAcl(bucket, aclControl="private")),
            "set_public": code(c.setBucketAcl(bucket, aclControl="public-read")),
            "object_public": code(c.setObjectAcl(bucket, "k", aclControl="public-read-write")),
            "put_public": code(c.putFile(bucket, "public", path, headers=PutObjectHeader(acl="public-read"))),
        }
        seen["keys"] = [o.key for o in c.listObjects(bucket).body.contents]
        print(json.dumps(seen))
        return
    elif op == "sub-resources":
        bucket, key = args

        def code(resp):
            return "ok" if resp.status < 300 else resp.errorCode

        seen = {
            "setObjectAcl": code(c.setObjectAcl(bucket, key, aclControl="private")),
            "setBucketTagging": code(c.setBucketTagging(
                bucket, tagInfo={"tagSet": [{"key": "a", "value": "b"}]})),
            "getBucketTagging": [[str(t.key), str(t.value)]
                                 for t in c.getBucketTagging(bucket).body.tagSet],
            "deleteBucketTagging": code(c.deleteBucketTagging(bucket)),
            "deleteBucketWebsite": code(c.deleteBucketWebsite(bucket)),
            "otherVersion": code(c.getObject(
                bucket, key, loadStreamInMemory=True,
                getObjectRequest=GetObjectRequest(versionId="v1"))),
            "imageProcess": code(c.getObject(
                bucket, key, loadStreamInMemory=True,
                getObjectRequest=GetObjectRequest(imageProcess="image/resize,w_10"))),
        }
        got = c.getObject(bucket, key, loadStreamInMemory=True,
                          getObjectRequest=GetObjectRequest(content_type="text/x-obs"))
        seen["override"] = [got.body.contentType, got.body.buffer.decode()]
        print(json.dumps(seen))
        return
    elif op == "limits":
        bucket, = args

        def code(resp):
            return "ok" if resp.status < 300 else resp.errorCode

        kib100 = 100 * 1024
        c.createBucket(bucket)
        uid = c.initiateMultipartUpload(bucket, "small").body.uploadId
        etags = [c.uploadPart(bucket, "small", n, uid, object=b"p" * size).body.etag
                 for n, size in [(1, kib100 - 1), (2, 10)]]
        complete = lambda: c.completeMultipartUpload(bucket, "small", uid,
            CompleteMultipartUploadRequest(
                parts=[CompletePart(partNum=n, etag=e) for n, e in enumerate(etags, start=1)]))
        seen = {"part_under_100_kib": code(complete())}
        listed = c.listMultipartUploads(bucket).body
        seen["listed_uploads"] = [[u.key, u.uploadId == uid] for u in listed.upload]
        etags[0] = c.uploadPart(bucket, "small", 1, uid, object=b"p" * kib100).body.etag
        seen["part_of_100_kib"] = code(complete())
        big = {"a": "v" * 8192}
        seen["metadata_over_8_kib"] = code(c.putContent(bucket, "meta", "m", metadata=big))
        seen["metadata_over_8_kib_upload"] = code(
            c.initiateMultipartUpload(bucket, "meta", metadata=big))
        c.putContent(bucket, "self", "self", metadata={"a": "1"})
        seen["copy_onto_itself"] = code(c.copyObject(bucket, "self", bucket, "self"))
        seen["copy_onto_itself_replacing_metadata"] = code(c.copyObject(
            bucket, "self", bucket, "self", metadata={"a": "2"},
            headers=CopyObjectHeader(directive="REPLACE")))
        head = c.getObjectMetadata(bucket, "self")
        seen["self_metadata"] = [v for k, v in head.header if k.lower() == "a"]
        seen["left"] = sorted(o.key for o in c.listObjects(bucket).body.contents)
        print(json.dumps(seen))
        return
    elif op == "storage-classes":
        bucket, = args
        c.createBucket(bucket)

        def code(resp):
            return "ok" if resp.status < 300 else [resp.errorCode, resp.status]

        seen = {cls: code(c.putContent(bucket, cls.lower(), "x",
                                       headers=PutObjectHeader(storageClass=cls)))
                for cls in ["STANDARD", "WARM", "COLD"]}
        seen["multipart COLD"] = code(c.initiateMultipartUpload(bucket, "mp", storageClass="COLD"))
        seen["left"] = sorted(o.key for o in c.listObjects(bucket).body.contents)
        print(json.dumps(seen))
        return
    elif op == "bucket-configs":
        bucket, = args
        c.createBucket(bucket)

        def read(resp, pick):
            return pick(resp.body) if resp.status < 300 else [resp.errorCode, resp.status]

        seen = {
            "lifecycle": read(c.getBucketLifecycle(bucket), lambda b: b),
            "website": read(c.getBucketWebsite(bucket), lambda b: b),
            "public_access_block": read(c.getBucketPublicAccessBlock(bucket), lambda b: b),
            "logging": read(c.getBucketLogging(bucket), lambda b: b.targetBucket),
            "notification": read(c.getBucketNotification(bucket),
                                 lambda b: [b.topicConfigurations or [],
                                            b.functionGraphConfigurations or []]),
            "quota": read(c.getBucketQuota(bucket), lambda b: b.quota),
            "storage_policy": read(c.getBucketStoragePolicy(bucket), lambda b: b.storageClass),
            "request_payment": read(c.getBucketRequestPayment(bucket), lambda b: b.payer),
        }

        def code(resp):
            return "ok" if resp.status < 300 else resp.errorCode

        seen["set_standard"] = code(c.setBucketStoragePolicy(bucket, "STANDARD"))
        seen["set_warm"] = code(c.setBucketStoragePolicy(bucket, "WARM"))
        seen["set_unknown"] = code(c.setBucketStoragePolicy(bucket, "GOLDEN"))
        seen["class_after"] = read(c.getBucketStoragePolicy(bucket), lambda b: b.storageClass)
        print(json.dumps(seen))
        return
    elif op == "public-access":
        bucket, = args
        c.createBucket(bucket)

        def code(resp):
            return "ok" if resp.status < 300 else resp.errorCode

        def block():
            r = c.getBucketPublicAccessBlock(bucket)
            if r.status >= 300:
                return r.errorCode
            b = r.body
            return [b.blockPublicAcls, b.ignorePublicAcls, b.blockPublicPolicy,
                    b.restrictPublicBuckets]

        def status(call):
            r = call(bucket)
            return r.body.status if r.status < 300 else r.errorCode

        seen = {"before": block(), "policy_status": status(c.getBucketPolicyPublicStatus),
                "bucket_status": status(c.getBucketPublicStatus)}
        seen["set"] = code(c.putBucketPublicAccessBlock(bucket, True, False, True, True))
        seen["read_back"] = block()
        public = json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*",
                                            "Action": "GetObject", "Resource": bucket + "/*"}]})
        seen["public_policy_refused"] = code(c.setBucketPolicy(bucket, public))
        seen["deleted"] = code(c.deleteBucketPublicAccessBlock(bucket))
        seen["public_policy_taken"] = code(c.setBucketPolicy(bucket, public))
        seen["policy_status_public"] = status(c.getBucketPolicyPublicStatus)
        seen["bucket_status_public"] = status(c.getBucketPublicStatus)
        seen["after_delete"] = block()
        print(json.dumps(seen))
        return
    elif op == "quota":
        bucket, = args

        def code(resp):
            return "ok" if resp.status < 300 else resp.errorCode

        c.createBucket(bucket)
        kms = PutObjectHeader(sseHeader=SseKmsHeader(encryption="kms"))
        seen = {"set": code(c.setBucketQuota(bucket, 10240))}
        seen["read"] = c.getBucketQuota(bucket).body.quota
        seen["put_6000"] = code(c.putContent(bucket, "k1", "a" * 6000, headers=kms))
        seen["put_another_6000"] = code(c.putContent(bucket, "k2", "b" * 6000))
        seen["replace_with_8000"] = code(c.putContent(bucket, "k1", "c" * 8000, headers=kms))
        seen["append_3000"] = code(c.appendObject(bucket, "log", AppendObjectContent(
            content="d" * 3000, position=0)))
        seen["append_2000"] = code(c.appendObject(bucket, "log", AppendObjectContent(
            content="e" * 2000, position=0)))
        seen["append_500_more"] = code(c.appendObject(bucket, "log", AppendObjectContent(
            content="f" * 500, position=2000)))
        seen["copy"] = code(c.copyObject(bucket, "k1", bucket, "k3"))
        uid = c.initiateMultipartUpload(bucket, "mp").body.uploadId
        etag = c.uploadPart(bucket, "mp", 1, uid, object=b"g" * 300).body.etag
        seen["multipart"] = code(c.completeMultipartUpload(bucket, "mp", uid,
            CompleteMultipartUploadRequest(parts=[CompletePart(partNum=1, etag=etag)])))
        c.abortMultipartUpload(bucket, "mp", uid)
        seen["used"] = c.getBucketStorageInfo(bucket).body.size
        seen["log"] = c.getObject(bucket, "log", loadStreamInMemory=True).body.buffer.decode()
        seen["unset"] = code(c.setBucketQuota(bucket, 0))
        seen["put_after_unset"] = code(c.putContent(bucket, "k2", "b" * 6000))
        seen["bad"] = code(c.setBucketQuota(bucket, -1))
        seen["read_after"] = c.getBucketQuota(bucket).body.quota
        seen["left"] = sorted(o.key for o in c.listObjects(bucket).body.contents)
        print(json.dumps(seen))
        return
    elif op == "set-quota":
        bucket, quota = args
        resp = c.setBucketQuota(bucket, int(quota))
        print(json.dumps("ok" if resp.status < 300 else resp.errorCode))
        return
    elif op == "resumable":
        import os
        import tempfile

        bucket, key, src = args
        d = tempfile.mkdtemp()
        up = c.uploadFile(bucket, key, src, partSize=5 * 1024 * 1024, taskNum=3,
                          enableCheckpoint=True, checkpointFile=os.path.join(d, "up.cp"),
                          checkSum=True,
                          headers=PutObjectHeader(sseHeader=SseKmsHeader(encryption="kms")))
        dst = os.path.join(d, "dst")
        down = c.downloadFile(bucket, key, downloadFile=dst, partSize=4 * 1024 * 1024, taskNum=3,
                              enableCheckpoint=True, checkpointFile=os.path.join(d, "down.cp"))
        meta = c.getObjectMetadata(bucket, key)
        print(json.dumps({
            "upload": up.status if up.status < 300 else up.errorCode,
            "download": down.status if down.status < 300 else down.errorCode,
            "same": os.path.exists(dst) and open(dst, "rb").read() == open(src, "rb").read(),
            "parts": meta.body.etag.strip('"').split("-")[-1] if meta.status < 300 else None,
            "sse": meta.body.sseKms if meta.status < 300 else meta.errorCode,
            "checkpoints_left": sorted(n for n in os.listdir(d) if n.endswith(".cp")),
        }))
        return
    elif op == "sse-c":
        import os

        bucket, = args
        c.createBucket(bucket)
        c.putContent(bucket, "plain", "plain")
        ssec = SseCHeader(encryption="AES256", key=os.urandom(32))

        def code(resp):
            return "ok" if resp.status < 300 else resp.errorCode

        seen = {
            "putContent": code(c.putContent(bucket, "k", "secret", headers=PutObjectHeader(
                sseHeader=ssec))),
            "appendObject": code(c.appendObject(bucket, "log", AppendObjectContent(
                content="secret", position=0), headers=AppendObjectHeader(sseHeader=ssec))),
            "copyObject": code(c.copyObject(bucket, "plain", bucket, "c", headers=CopyObjectHeader(
                destSseHeader=ssec))),
            "copyObject_source": code(c.copyObject(bucket, "plain", bucket, "c",
                                                   headers=CopyObjectHeader(sourceSseHeader=ssec))),
            "getObject": code(c.getObject(bucket, "plain", loadStreamInMemory=True,
                                          headers=GetObjectHeader(sseHeader=ssec))),
            "getObjectMetadata": c.getObjectMetadata(bucket, "plain", sseHeader=ssec).status,
            "initiateMultipartUpload": code(c.initiateMultipartUpload(bucket, "m", sseHeader=ssec)),
        }
        seen["left"] = sorted(o.key for o in c.listObjects(bucket).body.contents)
        seen["plain"] = c.getObject(bucket, "plain", loadStreamInMemory=True).body.buffer.decode()
        print(json.dumps(seen))
        return
    elif op == "cors":
        bucket, = args
        c.createBucket(bucket)
        c.putContent(bucket, "k", "page")

        def rules_of(resp):
            if resp.status >= 300:
                return [resp.errorCode, resp.status]
            return [[r.id, r.allowedMethod, r.allowedOrigin, r.allowedHeader, r.maxAgeSecond,
                     r.exposeHeader] for r in resp.body]

        def options(resp):
            if resp.status >= 300:
                return [resp.errorCode, resp.status]
            b = resp.body
            return [b.accessContorlAllowOrigin, b.accessContorlAllowMethods,
                    b.accessContorlAllowHeaders, b.accessContorlExposeHeaders, b.accessContorlMaxAge]

        rules = [
            CorsRule(id="uploads", allowedMethod=["PUT", "POST"],
                     allowedOrigin=["https://*.example.com"],
                     allowedHeader=["content-type", "x-obs-*", "x-amz-*"], maxAgeSecond=300,
                     exposeHeader=["ETag", "x-obs-request-id"]),
            CorsRule(allowedMethod=["GET", "HEAD"], allowedOrigin=["*"]),
        ]
        seen = {"before": rules_of(c.getBucketCors(bucket))}
        seen["set"] = c.setBucketCors(bucket, rules).status
        seen["read_back"] = rules_of(c.getBucketCors(bucket))
        seen["options_bucket"] = options(c.optionsBucket(bucket, Options(
            origin="https://app.example.com", accessControlRequestMethods=["PUT", "POST"],
            accessControlRequestHeaders=["content-type", "x-obs-meta-owner"])))
        seen["options_object_any_origin"] = options(c.optionsObject(bucket, "k", Options(
            origin="https://elsewhere.test", accessControlRequestMethods=["GET"])))
        seen["options_object_one_method_refused"] = options(c.optionsObject(bucket, "k", Options(
            origin="https://app.example.com", accessControlRequestMethods=["PUT", "DELETE"])))
        meta = c.getBucketMetadata(bucket, origin="https://app.example.com",
                                   requestHeaders="content-type")
        seen["bucket_metadata"] = [meta.body.accessContorlAllowOrigin,
                                   meta.body.accessContorlAllowMethods, meta.body.location]
        meta = c.getObjectMetadata(bucket, "k", origin="https://elsewhere.test")
        seen["object_metadata_origin"] = meta.header and dict(
            (k.lower(), v) for k, v in meta.header).get("access-control-allow-origin")
        seen["bad_rule"] = c.setBucketCors(bucket, [CorsRule(
            allowedMethod=["PATCH"], allowedOrigin=["*"])]).errorCode
        seen["deleted"] = c.deleteBucketCors(bucket).status
        seen["after_delete"] = rules_of(c.getBucketCors(bucket))
        seen["options_after_delete"] = options(c.optionsObject(bucket, "k", Options(
            origin="https://elsewhere.test", accessControlRequestMethods=["GET"])))
        print(json.dumps(seen))
        return
    elif op == "object-tags":
        bucket, = args
        c.createBucket(bucket)
        c.putContent(bucket, "k", "tagged")

        def code(resp):
            return "ok" if resp.status < 300 else [resp.errorCode, resp.status]

        def tags():
            r = c.getObjectTagging(bucket, "k")
            if r.status >= 300:
                return [r.errorCode, r.status]
            return sorted([str(t.key), str(t.value)] for t in r.body.tags)

        seen = {"none_yet": tags()}
        seen["set"] = code(c.setObjectTagging(bucket, "k", {"team": "storage", "env": "prod"}))
        seen["tags"] = tags()
        seen["refused"] = {
            name: code(c.setObjectTagging(bucket, "k", t))
            for name, t in [
                ("eleven tags", {f"k{i}": "v" for i in range(11)}),
                ("a key of 129 characters", {"k" * 129: "v"}),
                ("a value of 256 characters", {"k": "v" * 256}),
                ("a '*' in a key", {"a*": "v"}),
                ("a '|' in a value", {"a": "v|w"}),
                ("a '/' in a value", {"a": "v/w"}),
                ("an absent object", None),
            ] if t is not None
        }
        seen["refused"]["an absent object"] = code(c.setObjectTagging(bucket, "absent", {"a": "b"}))
        seen["after_refusals"] = tags()
        seen["at_limits"] = code(c.setObjectTagging(bucket, "k", {"k" * 128: "v" * 255}))
        seen["deleted"] = code(c.deleteObjectTagging(bucket, "k"))
        seen["after_delete"] = tags()
        # Tags on a new object and on a copy, by the header of the request's dialect (an
        # extension header the SDK signs as any other of its prefix).
        prefix = "x-obs-" if mode == "workflow" else "x-amz-"
        seen["put_with_tags"] = code(c.putContent(
            bucket, "k", "tagged", extensionHeaders={prefix + "tagging": "a=1&b=2"}))
        seen["put_tags"] = tags()
        head = c.getObjectMetadata(bucket, "k")
        seen["count"] = [v for k, v in head.header if "tagging-count" in k.lower()]
        seen["copy_replacing"] = code(c.copyObject(bucket, "k", bucket, "k2", extensionHeaders={
            prefix + "tagging-directive": "REPLACE", prefix + "tagging": "c=3"}))
        r = c.getObjectTagging(bucket, "k2")
        seen["copy_tags"] = sorted([str(t.key), str(t.value)] for t in r.body.tags)
        print(json.dumps(seen))
        return
    elif op == "list-versions":
        r = c.listVersions(args[0])
        if r.status >= 300:
            print(json.dumps({"error": r.errorCode, "status": r.status}))
            return
        print(json.dumps({"versions": [[v.key, v.versionId, v.isLatest] for v in r.body.versions],
                          "markers": len(r.body.markers), "truncated": r.body.head.isTruncated}))
        return
    elif op == "object-metadata":
        bucket, = args

        def code(resp):
            return "ok" if resp.status < 300 else [resp.errorCode, resp.status]

        def seen_of(key):
            head = c.getObjectMetadata(bucket, key)
            b = head.body
            meta = sorted([k, v] for k, v in head.header if k.lower() in ("a", "b", "c"))
            got = c.getObject(bucket, key, loadStreamInMemory=True).body
            return {"type": b.contentType, "language": dict(head.header).get("content-language"),
                    "cache": dict(head.header).get("cache-control"), "meta": meta,
                    "etag": b.etag, "sse": b.sseKms, "appendable": b.isAppendable,
                    "body": got.buffer.decode()}

        c.createBucket(bucket)
        kms = SseKmsHeader(encryption="kms")
        c.putContent(bucket, "plain", "plain body", metadata={"a": "1", "b": "2"},
                     headers=PutObjectHeader(contentType="text/plain"))
        c.putContent(bucket, "sealed", "sealed body", metadata={"a": "1"},
                     headers=PutObjectHeader(contentType="text/plain", sseHeader=kms))
        c.appendObject(bucket, "log", content=AppendObjectContent(content="appended", position=0))
        seen = {"before": {k: seen_of(k) for k in ("plain", "sealed", "log")}}
        replace_new = lambda key: code(c.setObjectMetadata(
            bucket, key, metadata={"c": "3"},
            headers=SetObjectMetadataHeader(contentLanguage="de")))
        seen["replace_new"] = {k: replace_new(k) for k in ("plain", "sealed", "log")}
        seen["after_replace_new"] = {k: seen_of(k) for k in ("plain", "sealed", "log")}
        seen["replace"] = code(c.setObjectMetadata(
            bucket, "plain", headers=SetObjectMetadataHeader(removeUnset=True, cacheControl="no-cache")))
        seen["after_replace"] = seen_of("plain")
        seen["without_headers"] = code(c.setObjectMetadata(bucket, "plain", metadata={"a": "9"}))
        seen["absent"] = code(c.setObjectMetadata(
            bucket, "absent", headers=SetObjectMetadataHeader(contentType="text/plain")))
        seen["redirect"] = code(c.setObjectMetadata(
            bucket, "plain", headers=SetObjectMetadataHeader(location="/elsewhere")))
        seen["redirect_read"] = c.getObjectMetadata(bucket, "plain").body.websiteRedirectLocation
        seen["bad_redirect"] = code(c.setObjectMetadata(
            bucket, "plain", headers=SetObjectMetadataHeader(location="elsewhere")))
        print(json.dumps(seen))
        return
    elif op == "expiry":
        bucket, phase = args
        import email.utils

        def code(resp):
            return "ok" if resp.status < 300 else [resp.errorCode, resp.status]

        def life(key):
            r = c.getObjectMetadata(bucket, key)
            if r.status >= 300:
                return [r.errorCode, r.status]
            if r.body.expiration is None:
                return None
            at = email.utils.parsedate_to_datetime(r.body.expiration.split('"')[1])
            modified = email.utils.parsedate_to_datetime(r.body.lastModified)
            return round((at - modified).total_seconds() / 86400, 3)

        keys = ["day", "two", "mp", "log", "meta", "form", "day.copy", "kept", "late", "bad"]
        if phase == "write":
            c.createBucket(bucket)
            kms = SseKmsHeader(encryption="kms")
            seen = {
                "day": code(c.putContent(bucket, "day", "one day",
                                         headers=PutObjectHeader(expires=1, sseHeader=kms))),
                "two": code(c.putContent(bucket, "two", "two days",
                                         headers=PutObjectHeader(expires=2))),
                "kept": code(c.putContent(bucket, "kept", "no expiry")),
                "meta": code(c.putContent(bucket, "meta", "set later")),
            }
            uid = c.initiateMultipartUpload(bucket, "mp", expires=1).body.uploadId
            etag = c.uploadPart(bucket, "mp", 1, uid, object=b"m" * 10).body.etag
            seen["mp"] = code(c.completeMultipartUpload(bucket, "mp", uid,
                CompleteMultipartUploadRequest(parts=[CompletePart(partNum=1, etag=etag)])))
            seen["log"] = code(c.appendObject(bucket, "log", content=AppendObjectContent(
                content="a", position=0), headers=AppendObjectHeader(expires=1)))
            # A later append without a life keeps the object's.
            seen["log_again"] = code(c.appendObject(bucket, "log", content=AppendObjectContent(
                content="b", position=1)))
            seen["meta_change"] = code(c.setObjectMetadata(
                bucket, "meta", extensionHeaders={"x-obs-expires": "2"}))
            seen["copy"] = code(c.copyObject(bucket, "day", bucket, "day.copy"))
            seen["form"] = post_form(c, mode, endpoint, ak, bucket, "form", {"x-obs-expires": "1"},
                                     b"a form's day").status_code
            seen["form_refused"] = post_form(c, mode, endpoint, ak, bucket, "bad",
                                             {"x-obs-expires": "0"}, b"x").status_code
            seen["refused"] = {v: code(c.putContent(bucket, "bad", "x",
                                                    extensionHeaders={"x-obs-expires": v}))
                               for v in ("0", "-1", "1.5", "soon", "2147483648")}
            seen["life"] = {k: life(k) for k in keys if k not in ("late", "bad")}
            print(json.dumps(seen))
            return
        if phase == "unsigned":
            c.createBucket(bucket)
            put = c.putContent(bucket, "day", "x", headers=PutObjectHeader(expires=1))
            init = c.initiateMultipartUpload(bucket, "mp", expires=1)
            print(json.dumps({"put": code(put), "initiate": code(init),
                              "message": put.errorMessage,
                              "read": c.getObject(bucket, "day").errorCode,
                              "uploads": len(c.listMultipartUploads(bucket).body.upload)}))
            return
        if phase == "late":
            seen = {"late": code(c.putContent(bucket, "late", "written late",
                                              headers=PutObjectHeader(expires=1))),
                    "past": code(c.setObjectMetadata(bucket, "kept",
                                                     extensionHeaders={"x-obs-expires": "1"})),
                    "life": life("late")}
            print(json.dumps(seen))
            return
        reads = {}
        for k in keys:
            r = c.getObject(bucket, k, loadStreamInMemory=True)
            reads[k] = r.body.buffer.decode() if r.status < 300 else r.errorCode
        listed = sorted(o.key for o in c.listObjects(bucket).body.contents)
        print(json.dumps({"listed": listed, "reads": reads}))
        return
    elif op == "versioning":
        bucket, = args
        c.createBucket(bucket)
        labels = {}

        def label(version_id):
            if version_id in (None, "null"):
                return version_id
            return labels.setdefault(version_id, "v%d" % (len(labels) + 1))

        def code(resp):
            return "ok" if resp.status < 300 else resp.errorCode

        def read(key, version_id=None):
            resp = c.getObject(bucket, key, loadStreamInMemory=True,
                               getObjectRequest=GetObjectRequest(versionId=version_id))
            if resp.status >= 300:
                return [resp.status, resp.errorCode]
            return [resp.body.buffer.decode(), label(resp.header and dict(resp.header).get(
                "version-id"))]

        def listed():
            body = c.listVersions(bucket).body
            return ([["version", v.key, label(v.versionId), v.isLatest] for v in body.versions]
                    + [["marker", m.key, label(m.versionId), m.isLatest] for m in body.markers])

        seen = {"before": c.getBucketVersioning(bucket).body,
                "enable": code(c.setBucketVersioning(bucket, "Enabled")),
                "after": c.getBucketVersioning(bucket).body}
        v1 = c.putContent(bucket, "k", "one", headers=PutObjectHeader(
            sseHeader=SseKmsHeader(encryption="kms"))).body.versionId
        v2 = c.putContent(bucket, "k", "two!").body.versionId
        seen["puts"] = [label(v1), label(v2)]
        seen["current"] = read("k")
        seen["by_id"] = read("k", v1)
        seen["head_by_id"] = label(c.getObjectMetadata(bucket, "k", versionId=v1).body.versionId)
        deleted = c.deleteObject(bucket, "k").body
        seen["delete"] = [deleted.deleteMarker, label(deleted.versionId)]
        seen["get_after_delete"] = read("k")
        seen["get_marker"] = read("k", deleted.versionId)
        seen["versions"] = listed()
        undeleted = c.deleteObject(bucket, "k", versionId=deleted.versionId).body
        seen["remove_marker"] = [undeleted.deleteMarker, label(undeleted.versionId)]
        seen["after_marker_removed"] = read("k")
        seen["suspend"] = code(c.setBucketVersioning(bucket, "Suspended"))
        seen["still"] = c.getBucketVersioning(bucket).body
        c.putContent(bucket, "k", "three")
        seen["null_version"] = read("k", "null")
        for entry in c.listVersions(bucket).body.versions + c.listVersions(bucket).body.markers:
            c.deleteObject(bucket, entry.key, versionId=entry.versionId)
        seen["left"] = listed()
        seen["delete_bucket"] = code(c.deleteBucket(bucket))
        print(json.dumps(seen))
        return
    elif op == "object-lock":
        from obs import ObjectLockConfiguration, ObjectLockRule
        import time
        bucket, = args
        c.createBucket(bucket)

        def code(resp):
            return "ok" if resp.status < 300 else resp.errorCode

        config = ObjectLockConfiguration(objectLockEnabled="Enabled",
                                         rule=ObjectLockRule(days=1, mode="COMPLIANCE"))
        seen = {"before_versioning": code(c.setBucketObjectLock(bucket, config)),
                "versioning": code(c.setBucketVersioning(bucket, "Enabled")),
                "lock": code(c.setBucketObjectLock(bucket, config))}
        got = c.getBucketObjectLock(bucket).body
        seen["read_back"] = [got.objectLockEnabled, str(got.rule.days), got.rule.mode]
        version = c.putContent(bucket, "k", "kept").body.versionId
        until = int(time.time() * 1000) + 3 * 86_400_000
        seen["retention"] = code(c.putObjectRetention(bucket, "k", "COMPLIANCE", until, versionId=version))
        seen["shorter"] = code(c.putObjectRetention(bucket, "k", "COMPLIANCE", until - 86_400_000,
                                                    versionId=version))
        seen["delete_version"] = code(c.deleteObject(bucket, "k", versionId=version))
        seen["delete_marker"] = c.deleteObject(bucket, "k").body.deleteMarker
        print(json.dumps(seen))
        return
    elif op == "lifecycle":
        from obs import AbortIncompleteMultipartUpload, Expiration, Lifecycle, Rule

        bucket, phase = args
        if phase == "read":
            print(json.dumps(sorted(o.key for o in c.listObjects(bucket).body.contents)))
            return
        c.createBucket(bucket)
        c.putContent(bucket, "logs/a", "a")
        c.putContent(bucket, "logs/own", "own", headers=PutObjectHeader(expires=3))
        c.putContent(bucket, "keep", "k")
        rules = [
            Rule(id="obs", prefix="logs/", status="Enabled", expiration=Expiration(days=1)),
            Rule(id="uploads", prefix="", status="Enabled",
                 abortIncompleteMultipartUpload=AbortIncompleteMultipartUpload(
                     daysAfterInitiation=2)),
        ]
        put = c.setBucketLifecycle(bucket, Lifecycle(rule=rules))
        got = c.getBucketLifecycle(bucket)
        read = [[r.id, r.prefix, r.status, r.expiration.days if r.expiration else None]
                for r in got.body.lifecycleConfig.rule] if got.status < 300 else got.errorCode
        expiration = {k: c.getObjectMetadata(bucket, k).body.expiration
                      for k in ("logs/a", "logs/own", "keep")}
        print(json.dumps({"put": put.status, "read": read, "expiration": expiration}))
        return
    elif op == "appends":
        bucket, marker = args

        def code(resp):
            return "ok" if resp.status < 300 else [resp.errorCode, resp.status]

        def append(key, data, position, sse=None):
            headers = AppendObjectHeader(sseHeader=sse) if sse else None
            return c.appendObject(bucket, key, content=AppendObjectContent(
                content=data, position=position), headers=headers)

        def appended(resp):
            if resp.status >= 300:
                return [resp.errorCode, resp.status]
            b = resp.body
            return {"next": b.nextPosition, "sse": b.sseKms, "key": b.sseKmsKey,
                    "etag": b.etag.strip('"')}

        def meta(key):
            b = c.getObjectMetadata(bucket, key).body
            return {"appendable": b.isAppendable, "next": b.nextPosition,
                    "length": b.contentLength, "sse": b.sseKms, "etag": b.etag}

        def read(key, rng=None):
            r = c.getObject(bucket, key, loadStreamInMemory=True,
                            headers=GetObjectHeader(range=rng) if rng else None)
            return r.body.buffer.decode() if r.status < 300 else [r.errorCode, r.status]

        c.createBucket(bucket)
        kms = SseKmsHeader(encryption="kms")
        first = "first line\n"
        second = marker + " second line\n"
        # Over one 64 KiB chunk: an append is sealed in chunks like any body.
        third = "x" * 70000 + "\n"
        seen = {"first": appended(append("log", first, 0, kms))}
        seen["second"] = appended(append("log", second, len(first)))
        seen["third"] = appended(append("log", third, len(first + second), kms))
        whole = first + second + third
        seen["meta"] = meta("log")
        seen["whole"] = read("log") == whole
        seen["across_appends"] = read("log", "bytes=5-15")
        seen["refused"] = {
            "an old position": appended(append("log", "late", len(first))),
            "a position past the end": appended(append("log", "gap", len(whole) + 1)),
            "a new object at a position": appended(append("new", "x", 3)),
            "another key": appended(append("log", "k", len(whole), SseKmsHeader(
                encryption="kms", key="0d0466b0-e727-4d9c-b35d-f84bb474a37f"))),
        }
        seen["after_refusals"] = [meta("log")["length"], read("log") == whole]
        # Eight appends race at the same position: one lands, the others are told the position
        # moved, and the object is the one that landed after what was there.
        import threading
        racers = [str(i) * 1000 for i in range(8)]
        outcomes = [None] * len(racers)

        def race(i):
            outcomes[i] = appended(append("log", racers[i], len(whole)))

        threads = [threading.Thread(target=race, args=(i,)) for i in range(len(racers))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        won = [i for i, o in enumerate(outcomes) if isinstance(o, dict)]
        seen["race"] = [len(won), sorted({str(o) for o in outcomes if not isinstance(o, dict)}),
                        len(won) == 1 and read("log") == whole + racers[won[0]]]
        seen["plain"] = [appended(append("plain", "a", 0)), appended(append("plain", "bc", 1))]
        seen["plain_read"] = [read("plain"), meta("plain")["appendable"]]
        seen["plain_asked_kms"] = appended(append("plain", "d", 3, kms))
        c.putContent(bucket, "normal", "n")
        seen["normal"] = appended(append("normal", "m", 1))
        seen["listed"] = sorted([o.key, o.isAppendable]
                                for o in c.listObjects(bucket).body.contents)
        seen["copy"] = code(c.copyObject(bucket, "log", bucket, "log.copy",
                                         headers=CopyObjectHeader(destSseHeader=kms)))
        seen["copy_read"] = [read("log.copy") == read("log"), meta("log.copy")["appendable"]]
        seen["put_over"] = code(c.putContent(bucket, "plain", "replaced"))
        seen["put_over_read"] = [read("plain"), meta("plain")["appendable"]]
        print(json.dumps(seen))
        return
    elif op == "crc64":
        # The SDK's own CRC64 (isAttachCrc64: CRC-64/XZ, which OBS calls CRC64-ECMA, written in
        # decimal): checked on upload, kept, answered on reads; a multipart object's stated at
        # completion as its parts' combined. Expected values are the SDK's own.
        from obs import util as obs_util
        bucket, = args
        c.createBucket(bucket)
        crc = obs_util.calculate_content_crc64
        body = b"crc64 checked " * 20000
        seen = {}
        r = c.putContent(bucket, "one", body, headers=PutObjectHeader(isAttachCrc64=True))
        seen["put"] = [r.status, str(r.body.crc64) == str(crc(body)) if r.status < 300 else r.errorCode]
        r = c.putContent(bucket, "wrong", body, headers=PutObjectHeader(crc64=12345))
        seen["put_wrong"] = [r.status, r.errorCode]
        m = c.getObjectMetadata(bucket, "one")
        seen["head"] = str(m.body.crc64) == str(crc(body))
        r = c.getObject(bucket, "one", loadStreamInMemory=True, isAttachCrc64=True)
        seen["get"] = [r.status, r.body.buffer == body]
        up = c.initiateMultipartUpload(bucket, "mp").body.uploadId
        p1, p2 = b"first part " * 10000, b"the end"
        r1 = c.uploadPart(bucket, "mp", 1, up, object=p1, isAttachCrc64=True)
        r2 = c.uploadPart(bucket, "mp", 2, up, object=p2, isAttachCrc64=True)
        seen["parts_echoed"] = [str(r1.body.crc64) == str(crc(p1)), str(r2.body.crc64) == str(crc(p2))]
        r = c.uploadPart(bucket, "mp", 3, up, object=p2, crc64=12345)
        seen["part_wrong"] = [r.status, r.errorCode]

        def complete(part_crcs):
            parts = [CompletePart(partNum=n, etag=r.body.etag, crc64=v, size=len(p))
                     for n, (r, v, p) in enumerate(zip([r1, r2], part_crcs, [p1, p2]), start=1)]
            return c.completeMultipartUpload(bucket, "mp", up, CompleteMultipartUploadRequest(parts=parts),
                                             isAttachCrc64=True)
        r = complete([r2.body.crc64, r1.body.crc64])
        seen["complete_wrong"] = [r.status, r.errorCode]
        r = complete([r1.body.crc64, r2.body.crc64])
        seen["complete"] = [r.status, str(r.body.crc64) == str(crc(p1 + p2))]
        m = c.getObjectMetadata(bucket, "mp")
        seen["mp_head"] = str(m.body.crc64) == str(crc(p1 + p2))
        r = c.getObject(bucket, "mp", loadStreamInMemory=True, isAttachCrc64=True)
        seen["mp_get"] = [r.status, r.body.buffer == p1 + p2]
        # The SDK does not read a copy's CRC64 into its result: its raw headers show it.
        r = c.copyObject(bucket, "one", bucket, "copy")
        seen["copy"] = [r.status, [v for k, v in r.header if "crc64" in k.lower()] == [str(crc(body))]]
        seen["copy_head"] = str(c.getObjectMetadata(bucket, "copy").body.crc64) == str(crc(body))
        seen["left"] = sorted(o.key for o in c.listObjects(bucket).body.contents)
        print(json.dumps(seen))
        return
    elif op == "bucket-options":
        # OBS's options of a new bucket (CreateBucketHeader): what each creation answers, and
        # whether the bucket was made.
        prefix, = args
        seen = {}
        for name, header in [
            ("three-azs", CreateBucketHeader(availableZone="3az")),
            ("fusion", CreateBucketHeader(redundancy="FUSION")),
            ("fusion-upgrade", CreateBucketHeader(isFusionAllowUpgrade=True)),
            ("pfs", CreateBucketHeader(isPFS=True)),
            ("enterprise-project", CreateBucketHeader(epid="9d1c7c3a8f3e4f6b")),
            ("classic", CreateBucketHeader(redundancy="CLASSIC", epid="0",
                                           isFusionAllowUpgrade=False)),
        ]:
            bucket = f"{prefix}-{name}"
            resp = c.createBucket(bucket, header=header)
            made = c.headBucket(bucket).status
            seen[name] = [resp.status, resp.errorCode, made]
        print(json.dumps(seen))
        return
    elif op == "bucket-info":
        info = c.getBucketStorageInfo(args[0])
        if info.status >= 300:
            print(json.dumps({"error": info.errorCode, "status": info.status}))
            return
        versioning = c.getBucketVersioning(args[0])
        print(json.dumps({"size": info.body.size, "objects": info.body.objectNumber,
                          "versioning": versioning.body}))
        return
    elif op == "put-encryption":
        key = args[1] if len(args) > 1 and args[1] != "-" else None
        resp = c.setBucketEncryption(args[0], "kms", key=key)
    elif op in ("presigned-put", "presigned-put-stripped", "presigned-put-obs-param"):
        bucket, key, path = args
        # The SDK signs the query parameters of its own dialect's prefix as sub-resources.
        if mode == "workflow" or op == "presigned-put-obs-param":
            sse = {"x-obs-server-side-encryption": "kms"}
        else:
            sse = {"x-amz-server-side-encryption": "aws:kms"}
        signed = c.createSignedUrl("PUT", bucket, key, queryParams=sse, expires=600)
        with open(path, "rb") as f:
            out = raw_put(
                signed.signedUrl,
                f.read(),
                dict(signed.actualSignedRequestHeaders or {}),
                op.endswith("-stripped"),
            )
        print(json.dumps(out))
        return
    else:
        raise SystemExit(f"unknown operation {op}")
    if resp.status >= 300:
        out = {"error": resp.errorCode, "status": resp.status, "message": resp.errorMessage}
    else:
        out = {
            "status": resp.status,
            "headers": {k.lower(): v for k, v in (resp.header or [])},
        }
        body = resp.body
        for attr in ("sseKms", "sseKmsKey", "etag"):
            value = getattr(body, attr, None) if body is not None else None
            if value is not None:
                out[attr] = value
    print(json.dumps(out))


main()
