"""Independent generator of vault_transit_aad_v1.json (FORMATS.md section 4): a version-1 blob
sealed under a transit `context` and `associated_data`, and its `vault:v<version>:` text.
Run once; never again."""
import base64, json, struct, uuid
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

def lp(b): return struct.pack(">I", len(b)) + b

cmk = bytes(range(64, 96))
kid = uuid.UUID("5d1c9a2e-3b4f-4a6d-8e7f-901a2b3c4d5e")
ver = 1
nonce = bytes.fromhex("1a1b1c1d1e1f202122232425")
domain, region = "0a1b2c3d4e5f60718293a4b5c6d7e8f9", "region"
context_b64 = base64.b64encode(b"tenant-7/table/users").decode()
ad_b64 = base64.b64encode(b"row 17, column secret").decode()
ctx = {"vault_context": context_b64, "vault_associated_data": ad_b64}
pt = b"associated data binds"
header = b"KMSB" + bytes([1, 1]) + kid.bytes + struct.pack(">I", ver) + nonce
aad = b"kmsbox.blob.v1\x00" + header + lp(domain.encode()) + lp(region.encode())
pairs = sorted(ctx.items(), key=lambda kv: kv[0].encode())
aad += struct.pack(">I", len(pairs)) + b"".join(lp(k.encode()) + lp(v.encode()) for k, v in pairs)
blob = header + AESGCM(cmk).encrypt(nonce, pt, aad)
json.dump({"cmk_material": cmk.hex(), "key_uuid": str(kid), "key_version": ver, "nonce": nonce.hex(),
           "domain": domain, "region": region, "context": context_b64,
           "associated_data": ad_b64,
           "encryption_context": ctx, "plaintext": base64.b64encode(pt).decode(),
           "blob": blob.hex(),
           "ciphertext": "vault:v%d:%s" % (ver, base64.b64encode(blob).decode())},
          open("vault_transit_aad_v1.json", "w"), indent=2)
