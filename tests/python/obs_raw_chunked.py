"""aws-chunked uploads over raw HTTP, signed with this script's own Signature V4: what AWS SDKs
send over TLS by default (and never over plain HTTP, so boto3 cannot be made to send it here).

usage: obs_raw_chunked.py ENDPOINT ACCESS_KEY SECRET_KEY MODE BUCKET KEY FILE [tamper]
  MODE: signed (STREAMING-AWS4-HMAC-SHA256-PAYLOAD), signed-trailer
        (STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER), unsigned-trailer
        (STREAMING-UNSIGNED-PAYLOAD-TRAILER)
  tamper: change one byte of the second chunk after signing
Always asks for SSE-KMS (x-amz-server-side-encryption: aws:kms). Prints the response as JSON.
"""
import base64
import datetime
import hashlib
import hmac
import http.client
import json
import sys
import urllib.parse
import zlib

CHUNK = 65536
EMPTY = hashlib.sha256(b"").hexdigest()


def h(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def main():
    endpoint, ak, sk, mode, bucket, key, path, *flags = sys.argv[1:]
    data = open(path, "rb").read()
    u = urllib.parse.urlsplit(endpoint)
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = now.strftime("%Y%m%d")
    scope = f"{day}/us-east-1/s3/aws4_request"
    payload = {
        "signed": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "signed-trailer": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        "unsigned-trailer": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    }[mode]
    trailer = mode.endswith("trailer")
    headers = {
        "host": u.netloc,
        "content-encoding": "aws-chunked",
        "x-amz-content-sha256": payload,
        "x-amz-date": amz_date,
        "x-amz-decoded-content-length": str(len(data)),
        "x-amz-server-side-encryption": "aws:kms",
    }
    if trailer:
        headers["x-amz-trailer"] = "x-amz-checksum-crc32"
    path_enc = "/" + urllib.parse.quote(bucket) + "/" + urllib.parse.quote(key, safe="/~")
    signed = ";".join(sorted(headers))
    canonical = "\n".join(
        ["PUT", path_enc, "", "".join(f"{n}:{headers[n]}\n" for n in sorted(headers)), signed, payload]
    )
    sts = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    k = h(h(h(h(("AWS4" + sk).encode(), day), "us-east-1"), "s3"), "aws4_request")
    seed = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={ak}/{scope}, SignedHeaders={signed}, Signature={seed}"
    )
    body = b""
    prev = seed
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)] + [b""]
    for n, chunk in enumerate(chunks):
        if mode == "unsigned-trailer":
            line = f"{len(chunk):x}\r\n"
        else:
            csts = "\n".join(
                ["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, EMPTY, hashlib.sha256(chunk).hexdigest()]
            )
            prev = hmac.new(k, csts.encode(), hashlib.sha256).hexdigest()
            line = f"{len(chunk):x};chunk-signature={prev}\r\n"
        if "tamper" in flags and n == 1:
            chunk = bytes([chunk[0] ^ 1]) + chunk[1:]
        body += line.encode() + chunk
        if chunk or not trailer:
            body += b"\r\n"
    if trailer:
        crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
        body += f"x-amz-checksum-crc32:{crc}\r\n".encode()
        if mode == "signed-trailer":
            tsts = "\n".join(
                [
                    "AWS4-HMAC-SHA256-TRAILER",
                    amz_date,
                    scope,
                    prev,
                    hashlib.sha256(f"x-amz-checksum-crc32:{crc}\n".encode()).hexdigest(),
                ]
            )
            tsig = hmac.new(k, tsts.encode(), hashlib.sha256).hexdigest()
            body += f"x-amz-trailer-signature:{tsig}\r\n".encode()
        body += b"\r\n"
    headers["content-length"] = str(len(body))
    conn = http.client.HTTPConnection(u.hostname, u.port)
    conn.request("PUT", path_enc, body=body, headers=headers)
    r = conn.getresponse()
    text = r.read().decode()
    if r.status >= 300:
        code = text.split("<Code>")[1].split("</Code>")[0] if "<Code>" in text else ""
        print(json.dumps({"error": code, "status": r.status}))
    else:
        print(json.dumps({"status": r.status, "headers": {k.lower(): v for k, v in r.getheaders()}}))


main()
