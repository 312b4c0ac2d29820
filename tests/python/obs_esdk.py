"""Huawei's esdk-obs-python, unmodified, against obs-gateway: one operation per run, the outcome
as JSON on stdout.

usage: obs_esdk.py ENDPOINT ACCESS_KEY SECRET_KEY MODE OP ARGS...
  MODE: "default" (client_mode 'obs': with an IP endpoint, V2 in the x-amz dialect) or
        "workflow" (client_mode 'workflow': the OBS scheme with x-obs- headers)
  OP: create-bucket B | put B K FILE [KEY_ID|-] [kms] | get B K OUT [RANGE] | head B K
      | delete B K
Refusals print {"error": code, "status": http_status}.
"""
import json
import sys

from obs import GetObjectHeader, ObsClient, PutObjectHeader, SseKmsHeader


def main():
    endpoint, ak, sk, mode, op, *args = sys.argv[1:]
    kwargs = {"client_mode": "workflow"} if mode == "workflow" else {}
    c = ObsClient(
        access_key_id=ak,
        secret_access_key=sk,
        server=endpoint,
        path_style=True,
        max_retry_count=0,
        **kwargs,
    )
    if op == "create-bucket":
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
    else:
        raise SystemExit(f"unknown operation {op}")
    if resp.status >= 300:
        out = {"error": resp.errorCode, "status": resp.status}
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
