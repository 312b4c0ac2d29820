"""boto3, unmodified, against obs-gateway: one operation per run, the outcome as JSON on stdout.

usage: obs_boto3.py ENDPOINT ACCESS_KEY SECRET_KEY SIGNATURE OP ARGS...
  SIGNATURE: "default" (botocore's default, SigV4) or "s3" (signature_version='s3', V2)
  OP: create-bucket B | put B K FILE [KEY_ID|-] [kms] | get B K OUT [RANGE] | head B K
      | delete B K | list B [PREFIX] | presign-put B K (prints the URL, SSE-KMS in the query)
Refusals print {"error": code, "status": http_status}; the script fails only on a broken client.
"""
import json
import sys

import boto3
import botocore.exceptions
from botocore.config import Config


def client(endpoint, ak, sk, signature):
    kwargs = {"retries": {"total_max_attempts": 1}, "s3": {"addressing_style": "path"}}
    if signature == "s3":
        kwargs["signature_version"] = "s3"
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ak,
        aws_secret_access_key=sk,
        region_name="us-east-1",
        config=Config(**kwargs),
    )


def outcome(resp):
    meta = resp["ResponseMetadata"]
    return {"status": meta["HTTPStatusCode"], "headers": meta["HTTPHeaders"]}


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
        elif op == "presign-put":
            url = s3.generate_presigned_url(
                "put_object",
                Params={"Bucket": args[0], "Key": args[1], "ServerSideEncryption": "aws:kms"},
                ExpiresIn=600,
            )
            out = {"url": url}
        else:
            raise SystemExit(f"unknown operation {op}")
    except botocore.exceptions.ClientError as e:
        out = {
            "error": e.response["Error"].get("Code"),
            "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
        }
    print(json.dumps(out))


main()
