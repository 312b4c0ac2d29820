"""Replays one of the seed's sample requests (obs-adapter/reference/obs-sse-kms.rst) on the wire,
byte for byte as the document writes it, with only what must change for a live server changed:
the Date (now), the signature (re-computed with the test credentials, by this script's own
implementation of OBS signature V2), a presigned URL's AccessKeyId/Expires/Signature, and
placeholders: "[N Byte object contents]" becomes N random bytes, and with KEY_UUID the key UUID
of a full key ID header becomes the tenant's live key. Prints the response as JSON.

usage: obs_seed_replay.py HOST PORT ACCESS_KEY SECRET_KEY REQUEST_FILE [KEY_UUID]
"""
import base64
import email.utils
import hashlib
import hmac
import json
import os
import re
import socket
import sys
import time
import urllib.parse

SUB_RESOURCES = {"acl", "policy", "uploads", "uploadid", "partnumber", "encryption", "delete"}


def sign(sk, method, headers, resource, date_or_expires):
    """OBS signature V2: HMAC-SHA1 over VERB, Content-MD5, Content-Type, Date, x-obs- headers,
    the resource; base64."""
    lower = {}
    for name, value in headers:
        lower.setdefault(name.lower(), []).append(value.strip())
    canonical = "".join(
        f"{n}:{','.join(v)}\n" for n, v in sorted(lower.items()) if n.startswith("x-obs-")
    )
    date = "" if "x-obs-date" in lower else date_or_expires
    sts = (
        f"{method}\n{','.join(lower.get('content-md5', ['']))}\n"
        f"{','.join(lower.get('content-type', ['']))}\n{date}\n{canonical}{resource}"
    )
    mac = hmac.new(sk.encode(), sts.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def main():
    host, port, ak, sk, path, *key_uuid = sys.argv[1:]
    text = open(path).read().strip("\n")
    head, _, rest = text.partition("\n\n")
    lines = head.split("\n")
    method, target, version = lines[0].split(" ")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append([name, value])
    body = b""
    m = re.match(r"\[(\d+) Byte object contents\]", rest.strip())
    if m:
        body = os.urandom(int(m.group(1)))
    now = email.utils.formatdate(usegmt=True)
    host_header = next(v for n, v in headers if n.lower() == "host").strip()
    bucket = host_header.split(".")[0]
    url = urllib.parse.urlsplit(target)
    for h in headers:
        if h[0].lower() == "date":
            h[1] = h[1][: len(h[1]) - len(h[1].lstrip())] + now
        if key_uuid and h[0].lower() == "x-obs-server-side-encryption-kms-key-id" and ":key/" in h[1]:
            h[1] = re.sub(r"key/[0-9a-f-]+$", "key/" + key_uuid[0], h[1])
    resource = "/" + bucket + url.path
    if url.query:
        params = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
        expires = str(int(time.time()) + 600)
        subs = sorted(
            (n, v) for n, v in params
            if n.lower() in SUB_RESOURCES or n.lower().startswith("x-obs-")
        )
        signed_resource = resource
        if subs:
            signed_resource += "?" + "&".join(f"{n}={v}" if v else n for n, v in subs)
        sig = sign(sk, method, [h for h in headers if h[0].lower() != "date"], signed_resource, expires)
        replaced = {"AccessKeyId": ak, "Expires": expires, "Signature": sig}
        query = "&".join(
            f"{n}={urllib.parse.quote(replaced.get(n, v), safe='')}" for n, v in params
        )
        target = url.path + "?" + query
    for h in headers:
        if h[0].lower() == "authorization":
            scheme, _, _ = h[1].strip().partition(" ")
            sig = sign(sk, method, [x for x in headers if x[0].lower() != "authorization"], resource, now)
            h[1] = h[1][: len(h[1]) - len(h[1].lstrip())] + f"{scheme} {ak}:{sig}"
    wire = f"{method} {target} {version}\r\n" + "".join(f"{n}:{v}\r\n" for n, v in headers) + "\r\n"
    s = socket.create_connection((host, int(port)), timeout=30)
    s.sendall(wire.encode())
    reader = s.makefile("rb")
    expect = any(n.lower() == "expect" for n, _ in headers)

    def read_head():
        status_line = reader.readline().decode().rstrip("\r\n")
        got = []
        while True:
            line = reader.readline().decode().rstrip("\r\n")
            if not line:
                return status_line, got
            name, _, value = line.partition(":")
            got.append([name, value.strip()])

    if expect and body:
        status_line, got = read_head()
        if status_line.split(" ")[1] == "100":
            s.sendall(body)
            status_line, got = read_head()
    else:
        s.sendall(body)
        status_line, got = read_head()
    length = int(next((v for n, v in got if n.lower() == "content-length"), "0"))
    response_body = reader.read(length) if length else b""
    print(
        json.dumps(
            {
                "status_line": status_line,
                "headers": got,
                "body": response_body.decode(errors="replace"),
                "sent_md5": hashlib.md5(body).hexdigest() if body else None,
            }
        )
    )


main()
