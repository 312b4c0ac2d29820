"""Independent generator of the version-1 known-answer files (see README.md). Run once; never again."""
import json, struct, uuid
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives import hashes

def lp(b): return struct.pack(">I", len(b)) + b

# Ciphertext blob v1.
cmk = bytes(range(32))
kid = uuid.UUID("522d6070-5ad3-4765-9737-9312ddc72cdb")
ver = 3
nonce = bytes.fromhex("000102030405060708090a0b")
domain, region = "783fc6652cf246c096ea836694f71855", "region"
ctx = {"obs:bucket": "examplebucket", "obs:object": "encryp1", "a": ""}
pt = bytes.fromhex("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
header = b"KMSB" + bytes([1, 1]) + kid.bytes + struct.pack(">I", ver) + nonce
aad = b"kmsbox.blob.v1\x00" + header + lp(domain.encode()) + lp(region.encode())
pairs = sorted(ctx.items(), key=lambda kv: kv[0].encode())
aad += struct.pack(">I", len(pairs)) + b"".join(lp(k.encode()) + lp(v.encode()) for k, v in pairs)
blob = header + AESGCM(cmk).encrypt(nonce, pt, aad)
json.dump({"cmk_material": cmk.hex(), "key_uuid": str(kid), "key_version": ver, "nonce": nonce.hex(),
           "domain": domain, "region": region, "encryption_context": ctx, "plaintext": pt.hex(),
           "blob": blob.hex()}, open("blob_v1.json", "w"), indent=2)

# Wrapped CMK material v1.
root = bytes([0xA5] * 32)
material = bytes(range(100, 132))
wid = uuid.UUID("4f1cd4de-ab64-4807-920a-47fc42e7f0d0")
wver = 2
wdom, wreg = "domainiddomainiddomainiddoma0001", "cn-north-4"
info = wid.bytes + struct.pack(">I", wver) + lp(wdom.encode()) + lp(wreg.encode())
kek = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"kmsbox.cmk-wrap.v1", info=info).derive(root)
json.dump({"root_key": root.hex(), "uuid": str(wid), "version": wver, "domain": wdom, "region": wreg,
           "material": material.hex(), "wrapped": aes_key_wrap(kek, material).hex()},
          open("cmk_wrap_v1.json", "w"), indent=2)
