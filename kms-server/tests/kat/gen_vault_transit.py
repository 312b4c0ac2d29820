"""Independent generator of the Vault transit known-answer file, vault_transit_v1.json (FORMATS.md
section 3): a version-1 blob sealed under a transit `context`, and its `vault:v<version>:` text.
Run once; never again."""
import base64, json, struct, uuid
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

def lp(b): return struct.pack(">I", len(b)) + b

cmk = bytes(range(32, 64))
kid = uuid.UUID("0b7e2d36-8f1a-4c2b-9d3e-5a6f7b8c9d0e")
ver = 2
nonce = bytes.fromhex("0c0d0e0f1011121314151617")
domain, region = "783fc6652cf246c096ea836694f71855", "region"
# What Ceph RGW and SeaweedFS send: a context that is itself base64 (of bucket/object, of JSON).
context_b64 = base64.b64encode(b'{"bucket":"b1","object":"o1"}').decode()
ctx = {"vault_context": context_b64}
pt = bytes(range(32))
header = b"KMSB" + bytes([1, 1]) + kid.bytes + struct.pack(">I", ver) + nonce
aad = b"kmsbox.blob.v1\x00" + header + lp(domain.encode()) + lp(region.encode())
pairs = sorted(ctx.items(), key=lambda kv: kv[0].encode())
aad += struct.pack(">I", len(pairs)) + b"".join(lp(k.encode()) + lp(v.encode()) for k, v in pairs)
blob = header + AESGCM(cmk).encrypt(nonce, pt, aad)
json.dump({"cmk_material": cmk.hex(), "key_uuid": str(kid), "key_version": ver, "nonce": nonce.hex(),
           "domain": domain, "region": region, "context": context_b64,
           "encryption_context": ctx, "plaintext": base64.b64encode(pt).decode(),
           "blob": blob.hex(),
           "ciphertext": "vault:v%d:%s" % (ver, base64.b64encode(blob).decode())},
          open("vault_transit_v1.json", "w"), indent=2)
