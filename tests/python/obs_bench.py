"""obs-gateway benchmark client (run by obs-gateway/benches/gateway.sh): SSE-KMS against plain,
in one run, rounds alternating which goes first.

usage: obs_bench.py ENDPOINT ACCESS_KEY SECRET_KEY ROUNDS SECONDS GATEWAY_PID [--big]
Environment QUICK=1 shrinks the sizes (to check the script, not to measure).
"""
import concurrent.futures
import io
import os
import statistics
import sys
import time

import boto3
from botocore.config import Config

endpoint, ak, sk, rounds, secs, pid, *flags = sys.argv[1:]
rounds, secs = int(rounds), float(secs)
quick = os.environ.get("QUICK") == "1"
MIB = 1024 * 1024
BIG_LEN = MIB if quick else 64 * MIB
s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    aws_access_key_id=ak,
    aws_secret_access_key=sk,
    region_name="us-east-1",
    config=Config(max_pool_connections=32, retries={"total_max_attempts": 1}),
)
s3.create_bucket(Bucket="bench")
SSE = {"plain": {}, "sse-kms": {"ServerSideEncryption": "aws:kms"}}


def vmhwm_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def large(mode):
    body = os.urandom(BIG_LEN)
    t = time.perf_counter()
    s3.put_object(Bucket="bench", Key=f"large-{mode}", Body=body, **SSE[mode])
    put = time.perf_counter() - t
    t = time.perf_counter()
    got = s3.get_object(Bucket="bench", Key=f"large-{mode}")["Body"].read()
    get = time.perf_counter() - t
    assert got == body
    return BIG_LEN / put / MIB, BIG_LEN / get / MIB


def small(mode):
    body = os.urandom(4096)
    deadline = time.perf_counter() + (0.5 if quick else secs)
    limit = 200 if quick else 200_000

    def worker(w):
        n = 0
        while time.perf_counter() < deadline and n < limit // 16:
            s3.put_object(Bucket="bench", Key=f"small-{mode}-{w}-{n}", Body=body, **SSE[mode])
            n += 1
        return n

    t = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        total = sum(pool.map(worker, range(16)))
    return total / (time.perf_counter() - t)


print(f"| round | order | plain PUT / GET MB/s (64 MiB) | SSE-KMS PUT / GET MB/s | PUT ratio | GET ratio |")
print("|---:|---|---:|---:|---:|---:|")
put_ratios, get_ratios = [], []
for r in range(rounds):
    order = ["plain", "sse-kms"] if r % 2 == 0 else ["sse-kms", "plain"]
    res = {m: large(m) for m in order}
    pr, gr = res["sse-kms"][0] / res["plain"][0], res["sse-kms"][1] / res["plain"][1]
    put_ratios.append(pr)
    get_ratios.append(gr)
    print(
        f"| {r + 1} | {order[0]} first | {res['plain'][0]:.0f} / {res['plain'][1]:.0f} "
        f"| {res['sse-kms'][0]:.0f} / {res['sse-kms'][1]:.0f} | {pr:.2f} | {gr:.2f} |"
    )
print(f"median ratios: PUT {statistics.median(put_ratios):.2f}, GET {statistics.median(get_ratios):.2f}")
print()
print("| round | plain 4 KiB PUT/s (16 in flight) | SSE-KMS PUT/s | ratio |")
print("|---:|---:|---:|---:|")
ratios = []
for r in range(rounds):
    order = ["plain", "sse-kms"] if r % 2 == 0 else ["sse-kms", "plain"]
    res = {m: small(m) for m in order}
    ratio = res["sse-kms"] / res["plain"]
    ratios.append(ratio)
    print(f"| {r + 1} | {res['plain']:.0f} | {res['sse-kms']:.0f} | {ratio:.2f} |")
print(f"median ratio: {statistics.median(ratios):.2f}")

if "--big" in flags:
    size = (64 * MIB) if quick else 5 * 1024 * MIB

    class Zeros(io.RawIOBase):
        """`size` bytes, generated as read (the client holds no 5 GiB buffer)."""

        def __init__(self):
            self.left = size

        def readable(self):
            return True

        def readinto(self, b):
            n = min(len(b), self.left)
            b[:n] = bytes(n)
            self.left -= n
            return n

    # A generated body cannot be rewound, so this upload signs V2 (no payload hash) and sends no
    # additional checksum: botocore needs to seek for either.
    streaming = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ak,
        aws_secret_access_key=sk,
        region_name="us-east-1",
        config=Config(signature_version="s3", request_checksum_calculation="when_required"),
    )
    before = vmhwm_kib()
    streaming.put_object(
        Bucket="bench",
        Key="five-gib",
        Body=io.BufferedReader(Zeros(), 1 << 20),
        ContentLength=size,
        ServerSideEncryption="aws:kms",
    )
    read = 0
    for chunk in s3.get_object(Bucket="bench", Key="five-gib")["Body"].iter_chunks(1 << 20):
        read += len(chunk)
    assert read == size
    print(f"gateway peak RSS (VmHWM): {before} KiB before, {vmhwm_kib()} KiB after a {size // MIB} MiB SSE-KMS PUT and GET")
