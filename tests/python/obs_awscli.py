"""The AWS CLI (awscli, unmodified, its defaults: SigV4, multipart above 8 MiB) against
obs-gateway: an SSE-KMS upload, its download and head-object. Prints the outcome as JSON.

usage: obs_awscli.py ENDPOINT ACCESS_KEY SECRET_KEY BUCKET KEY FILE OUT
"""
import json
import os
import subprocess
import sys

endpoint, ak, sk, bucket, key, path, out = sys.argv[1:]
env = dict(
    os.environ,
    AWS_ACCESS_KEY_ID=ak,
    AWS_SECRET_ACCESS_KEY=sk,
    AWS_DEFAULT_REGION="us-east-1",
    AWS_CONFIG_FILE=os.devnull,
    AWS_SHARED_CREDENTIALS_FILE=os.devnull,
)


def aws(*args):
    r = subprocess.run(
        [sys.executable, "-m", "awscli", "--endpoint-url", endpoint, *args],
        env=env,
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        raise SystemExit(f"aws {' '.join(args)} failed ({r.returncode}):\n{r.stderr}")
    return r.stdout


aws("s3", "mb", f"s3://{bucket}")
aws("s3", "cp", path, f"s3://{bucket}/{key}", "--sse", "aws:kms")
aws("s3", "cp", f"s3://{bucket}/{key}", out)
head = json.loads(aws("s3api", "head-object", "--bucket", bucket, "--key", key))
listed = aws("s3", "ls", f"s3://{bucket}/")
print(json.dumps({"head": head, "listed": listed}))
