"""Independent generator of store_mac_v1.json (FORMATS.md §3; see README.md), with Python's standard
library only. Run once; never again."""
import hashlib, hmac, json, struct, uuid

def lp(b): return struct.pack(">I", len(b)) + b

def hkdf_extract(salt, ikm): return hmac.new(salt, ikm, hashlib.sha256).digest()

def hkdf_expand32(prk, info): return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()

root = bytes([0x5C] * 32)
mac_key = hkdf_expand32(hkdf_extract(b"kmsbox.cmk-wrap.v1", root), b"kmsbox.store-mac.v1")

records = [
    {"uuid": "4f1cd4de-ab64-4807-920a-47fc42e7f0d0", "domain": "783fc6652cf246c096ea836694f71855",
     "region": "cn-north-4", "alias": "app/logs", "description": "a rotated key, pending deletion",
     "state": 3, "creator": 1, "service": "", "created_at_ms": 1764633600123,
     "deletion_date_ms": 1767225600123, "current_version": 2,
     "versions": [{"version": 1, "scheme": 1, "wrapped": bytes(range(40)).hex()},
                  {"version": 2, "scheme": 1, "wrapped": bytes(range(40, 80)).hex()}]},
    {"uuid": "0b8a6a4e-52f6-4d0b-8a57-3c1f1f5d2e11", "domain": "783fc6652cf246c096ea836694f71855",
     "region": "cn-north-4", "alias": "obs/default", "description": "Default key of service obs",
     "state": 1, "creator": 2, "service": "obs", "created_at_ms": 1764633600000,
     "deletion_date_ms": None, "current_version": 1,
     "versions": [{"version": 1, "scheme": 1, "wrapped": bytes(range(200, 240)).hex()}]},
]

def record_message(r):
    m = b"kmsbox.key-record.v1\x00" + uuid.UUID(r["uuid"]).bytes
    for f in ("domain", "region", "alias", "description"):
        m += lp(r[f].encode())
    m += bytes([r["state"], r["creator"]]) + lp(r["service"].encode())
    m += struct.pack(">q", r["created_at_ms"])
    d = r["deletion_date_ms"]
    m += b"\x00" if d is None else b"\x01" + struct.pack(">q", d)
    m += struct.pack(">I", r["current_version"])
    vs = sorted(r["versions"], key=lambda v: v["version"])
    m += struct.pack(">I", len(vs))
    for v in vs:
        m += struct.pack(">II", v["version"], v["scheme"]) + lp(bytes.fromhex(v["wrapped"]))
    return m

for r in records:
    r["record_mac"] = hmac.new(mac_key, record_message(r), hashlib.sha256).hexdigest()

store_id = "9d6f6ad2-2f0e-4b8e-9f55-0c8f0a1e6c3b"
m = b"kmsbox.store.v1\x00" + uuid.UUID(store_id).bytes + struct.pack(">Q", len(records))
for r in sorted(records, key=lambda r: uuid.UUID(r["uuid"]).bytes):
    m += uuid.UUID(r["uuid"]).bytes + bytes.fromhex(r["record_mac"])
json.dump({"root_key": root.hex(), "store_id": store_id, "records": records,
           "store_mac": hmac.new(mac_key, m, hashlib.sha256).hexdigest()},
          open("store_mac_v1.json", "w"), indent=2)
