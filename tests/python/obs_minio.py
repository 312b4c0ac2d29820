"""MinIO's Python SDK (`minio` from PyPI), unmodified, against obs-gateway: the calls its users
make, each outcome as JSON on stdout.

usage: obs_minio.py ENDPOINT ACCESS_KEY SECRET_KEY BUCKET KEY_ID
  Creates BUCKET; puts small and multipart (5 MiB parts) objects, plain and SSE-KMS under KEY_ID
  (the SDK's SseKMS); reads them whole and by range; stat; lists (v2 and v1); copies and composes
  server-side; object tags; a presigned GET fetched with urllib; a lifecycle rule set and read;
  removes every object in one batch and the bucket. Then BUCKET-versions: versioning enabled,
  an object written twice and deleted, read and stat by version, listed with its versions,
  every version removed in one batch, and the bucket.
"""
import io
import json
import sys
import urllib.request

from minio import Minio
from minio.commonconfig import ENABLED, ComposeSource, CopySource, Filter, Tags
from minio.deleteobjects import DeleteObject
from minio.lifecycleconfig import Expiration, LifecycleConfig, Rule
from minio.sse import SseKMS
from minio.versioningconfig import VersioningConfig


def main():
    endpoint, ak, sk, bucket, key_id = sys.argv[1:]
    c = Minio(endpoint.removeprefix("http://"), access_key=ak, secret_key=sk, secure=False,
              region="us-east-1")
    kms = SseKMS(key_id, None)
    big = b"minio plaintext line\n" * 600_000  # 12.6 MB: three 5 MiB parts
    seen = {}
    c.make_bucket(bucket)
    seen["exists"] = c.bucket_exists(bucket)
    c.put_object(bucket, "small", io.BytesIO(b"hello"), 5)
    c.put_object(bucket, "small-kms", io.BytesIO(b"secret"), 6, sse=kms)
    seen["multipart_etags"] = [
        c.put_object(bucket, "big", io.BytesIO(big), -1, part_size=5 * 1024 * 1024).etag[-2:],
        c.put_object(bucket, "big-kms", io.BytesIO(big), -1, part_size=5 * 1024 * 1024,
                     sse=kms).etag[-2:],
    ]
    seen["reads"] = [
        c.get_object(bucket, "small-kms").read().decode(),
        c.get_object(bucket, "big-kms").read() == big,
        c.get_object(bucket, "big-kms", offset=5 * 1024 * 1024 - 3, length=8).read().decode(),
    ]
    stat = c.stat_object(bucket, "big-kms")
    seen["stat"] = [stat.size == len(big), stat.metadata.get("x-amz-server-side-encryption"),
                    stat.metadata.get("x-amz-server-side-encryption-aws-kms-key-id") == key_id]
    c.copy_object(bucket, "copy", CopySource(bucket, "small-kms"), sse=kms)
    c.compose_object(bucket, "composed", [ComposeSource(bucket, "big"), ComposeSource(bucket, "big")],
                     sse=kms)
    seen["copies"] = [c.get_object(bucket, "copy").read().decode(),
                      c.get_object(bucket, "composed").read() == big + big,
                      c.stat_object(bucket, "composed").metadata.get("x-amz-server-side-encryption")]
    tags = Tags.new_object_tags()
    tags["team"] = "storage"
    c.set_object_tags(bucket, "small", tags)
    seen["tags"] = dict(c.get_object_tags(bucket, "small"))
    with urllib.request.urlopen(c.presigned_get_object(bucket, "small")) as r:
        seen["presigned"] = r.read().decode()
    rule = Rule(ENABLED, rule_filter=Filter(prefix="logs/"), rule_id="logs",
                expiration=Expiration(days=3))
    c.set_bucket_lifecycle(bucket, LifecycleConfig([rule]))
    got = c.get_bucket_lifecycle(bucket).rules
    seen["lifecycle"] = [[r.rule_id, r.rule_filter.prefix, r.expiration.days] for r in got]
    names = sorted(o.object_name for o in c.list_objects(bucket, recursive=True))
    seen["listed"] = [names, sorted(o.object_name for o in c.list_objects(
        bucket, recursive=True, use_api_v1=True))]
    errors = list(c.remove_objects(bucket, [DeleteObject(n) for n in names]))
    seen["remove_errors"] = [str(e) for e in errors]
    c.remove_bucket(bucket)
    seen["exists_after"] = c.bucket_exists(bucket)
    vb = bucket + "-versions"
    c.make_bucket(vb)
    c.set_bucket_versioning(vb, VersioningConfig(ENABLED))
    seen["versioning"] = c.get_bucket_versioning(vb).status
    first = c.put_object(vb, "k", io.BytesIO(b"one"), 3, sse=kms).version_id
    second = c.put_object(vb, "k", io.BytesIO(b"two"), 3).version_id
    seen["version_reads"] = [c.get_object(vb, "k", version_id=first).read().decode(),
                             c.stat_object(vb, "k", version_id=first).size,
                             c.stat_object(vb, "k").version_id == second]
    c.remove_object(vb, "k")
    listed = list(c.list_objects(vb, include_version=True))
    seen["versions_listed"] = [[o.object_name, {first: "first", second: "second"}.get(
        o.version_id, "marker"), o.is_delete_marker, o.is_latest] for o in listed]
    errors = list(c.remove_objects(vb, [DeleteObject(o.object_name, o.version_id) for o in listed]))
    seen["versions_removed"] = [str(e) for e in errors]
    c.remove_bucket(vb)
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
