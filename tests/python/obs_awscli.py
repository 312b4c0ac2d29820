"""The AWS CLI (awscli, unmodified, its defaults: SigV4, multipart above 8 MiB) against
obs-gateway: an SSE-KMS upload, its download and head-object; then the workflow people run it
for: a folder synced up (SSE-KMS) and back, a changed file synced alone, a stream from standard
input uploaded (a multipart upload of unknown size) and read to standard output, a move, a
recursive delete and the bucket removed. Prints the outcome as JSON.

usage: obs_awscli.py ENDPOINT ACCESS_KEY SECRET_KEY BUCKET KEY FILE OUT
"""
import filecmp
import json
import os
import subprocess
import sys
import tempfile

endpoint, ak, sk, bucket, key, path, out = sys.argv[1:]
env = dict(
    os.environ,
    AWS_ACCESS_KEY_ID=ak,
    AWS_SECRET_ACCESS_KEY=sk,
    AWS_DEFAULT_REGION="us-east-1",
    AWS_CONFIG_FILE=os.devnull,
    AWS_SHARED_CREDENTIALS_FILE=os.devnull,
)


def aws(*args, stdin=None, binary=False):
    r = subprocess.run(
        [sys.executable, "-m", "awscli", "--endpoint-url", endpoint, *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=not binary,
    )
    if r.returncode != 0:
        raise SystemExit(f"aws {' '.join(args)} failed ({r.returncode}):\n{r.stderr}")
    return r.stdout


def transfers(output, verb):
    """The keys an `aws s3` command reports it moved (`upload: d/f2 to s3://b/p/f2`)."""
    return sorted(line.split(" to s3://", 1)[1].split("/", 1)[1].strip()
                  for line in output.replace("\r", "\n").splitlines()
                  if line.startswith(verb + ": ") and " to s3://" in line)


aws("s3", "mb", f"s3://{bucket}")
aws("s3", "cp", path, f"s3://{bucket}/{key}", "--sse", "aws:kms")
aws("s3", "cp", f"s3://{bucket}/{key}", out)
head = json.loads(aws("s3api", "head-object", "--bucket", bucket, "--key", key))
listed = aws("s3", "ls", f"s3://{bucket}/")

with tempfile.TemporaryDirectory() as tmp:
    up, down = os.path.join(tmp, "up"), os.path.join(tmp, "down")
    os.makedirs(os.path.join(up, "sub"))
    for name, size in [("f1", 1000), ("f2", 2000), ("f3", 3000), ("sub/big", 9_000_000)]:
        with open(os.path.join(up, name), "wb") as f:
            f.write(os.urandom(size))
    first_sync = transfers(aws("s3", "sync", up, f"s3://{bucket}/p", "--sse", "aws:kms"), "upload")
    with open(os.path.join(up, "f2"), "ab") as f:
        f.write(b"changed")
    second_sync = transfers(aws("s3", "sync", up, f"s3://{bucket}/p", "--sse", "aws:kms"), "upload")
    aws("s3", "sync", f"s3://{bucket}/p", down)
    compared = filecmp.dircmp(up, down)
    synced_back = (not compared.left_only and not compared.right_only and not compared.diff_files
                   and filecmp.cmp(os.path.join(up, "sub/big"), os.path.join(down, "sub/big"), shallow=False))
    big = json.loads(aws("s3api", "head-object", "--bucket", bucket, "--key", "p/sub/big",
                         "--checksum-mode", "ENABLED"))
    streamed = os.urandom(12_000_000)
    aws("s3", "cp", "-", f"s3://{bucket}/stdin", "--sse", "aws:kms", stdin=streamed, binary=True)
    read_back = aws("s3", "cp", f"s3://{bucket}/stdin", "-", binary=True)
    aws("s3", "mv", f"s3://{bucket}/p/f1", f"s3://{bucket}/moved")
    after_move = sorted(line.split()[-1] for line in aws("s3", "ls", "--recursive", f"s3://{bucket}").splitlines())
    deleted = transfers(aws("s3", "rm", "--recursive", f"s3://{bucket}").replace("delete: s3://", "delete: x to s3://"), "delete")
    aws("s3", "rb", f"s3://{bucket}")
    buckets = aws("s3", "ls")

print(json.dumps({
    "head": head,
    "listed": listed,
    "first_sync": first_sync,
    "second_sync": second_sync,
    "synced_back": synced_back,
    "synced_big": [big.get("ServerSideEncryption"), big.get("ChecksumType"), big["ETag"].endswith('-2"')],
    "stdin_round_trip": read_back == streamed,
    "after_move": after_move,
    "deleted": deleted,
    "bucket_left": bucket in buckets,
}))
