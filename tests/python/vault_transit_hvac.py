"""Drives kmsbox's Vault transit API with hvac, unmodified, as a storage engine's operator would.

Usage:
  python vault_transit_hvac.py scenario URL TOKEN_A TOKEN_B BAD_TOKEN
      Every served call for tenant A, tenant B's view of A's key, a bad token; asserts as it goes
      and prints one JSON object (A's key ID, a ciphertext, its context, its plaintext) for the
      gRPC side of the test.
  python vault_transit_hvac.py decrypt URL TOKEN NAME CIPHERTEXT CONTEXT
      Prints the base64 plaintext of a ciphertext (made elsewhere, e.g. over gRPC).
"""
import base64
import json
import sys

import hvac
from hvac import exceptions


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def refused(exc_type, call, *args, **kwargs):
    """Asserts that a call raises exc_type (hvac's mapping of Vault's status codes); returns it."""
    try:
        call(*args, **kwargs)
    except exc_type as e:
        assert e.errors, f"{exc_type.__name__} without Vault's errors list"
        return e
    raise AssertionError(f"{call.__name__}{args} did not raise {exc_type.__name__}")


def scenario(url, token_a, token_b, bad_token):
    a = hvac.Client(url=url, token=token_a)
    b = hvac.Client(url=url, token=token_b)
    bad = hvac.Client(url=url, token=bad_token)
    ta, tb = a.secrets.transit, b.secrets.transit

    # sys/health, by GET (JSON) and by HEAD (hvac's default).
    health = a.sys.read_health_status(method="GET")
    assert health["initialized"] is True and health["sealed"] is False, health
    assert a.sys.read_health_status().status_code == 200

    # Tokens: lookup-self names the tenant; a bad token is not authenticated.
    assert a.is_authenticated()
    assert not bad.is_authenticated()
    me = a.auth.token.lookup_self()["data"]
    assert me["meta"]["kmsbox_domain_id"], me

    # keys/:name: create (twice: the same key), options kmsbox cannot honour are refused.
    created = ta.create_key(name="app")["data"]
    again = ta.create_key(name="app")["data"]
    assert created["kmsbox_key_id"] == again["kmsbox_key_id"], (created, again)
    refused(exceptions.InvalidRequest, ta.create_key, name="rsa", key_type="rsa-2048")
    refused(exceptions.InvalidRequest, ta.create_key, name="exp", exportable=True)
    # Deletion is refused as Vault refuses it for a key without deletion_allowed; the key stays.
    e = refused(exceptions.InvalidRequest, ta.delete_key, name="app")
    assert "deletion is not allowed" in e.errors[0], e.errors
    # Allowed in its config, a deletion schedules the key's (kmsbox's shortest wait, 7 days): the
    # key reads as pending deletion and serves no call.
    ta.create_key(name="doomed")
    ta.update_key_configuration(name="doomed", deletion_allowed=True)
    assert ta.read_key(name="doomed")["data"]["deletion_allowed"] is True
    assert ta.delete_key(name="doomed").status_code == 204
    doomed = ta.read_key(name="doomed")["data"]
    assert doomed["kmsbox_key_state"] == "pending deletion", doomed
    refused(exceptions.InvalidRequest, ta.encrypt_data, name="doomed", plaintext=b64(b"x"))
    refused(exceptions.InvalidRequest, ta.delete_key, name="doomed")
    # Its name is not free until the key is purged: a create names the way back, not a dead key.
    e = refused(exceptions.InvalidRequest, ta.create_key, name="doomed")
    assert "pending deletion" in e.errors[0] and "cancel-key-deletion" in e.errors[0], e.errors
    key = ta.read_key(name="app")["data"]
    assert key["type"] == "aes256-gcm96" and key["name"] == "app", key
    assert key["latest_version"] == 1 and list(key["keys"]) == ["1"], key
    assert key["auto_rotate_period"] == 0, "a new key does not rotate by itself"

    # keys/:name/config: the automatic rotation, in whole days (kmsbox's schedule); what kmsbox
    # cannot honour is refused whole, changing nothing.
    day = 86400
    ta.update_key_configuration(name="app", auto_rotate_period="720h")
    assert ta.read_key(name="app")["data"]["auto_rotate_period"] == 30 * day
    for refusal, words in [
        (dict(auto_rotate_period="1h"), "whole days"),
        (dict(auto_rotate_period="400d"), "whole days"),
        (dict(min_decryption_version=2), "every version"),
        (dict(min_encryption_version=1), "latest version"),
        (dict(exportable=True, auto_rotate_period="60d"), "never leaves"),
    ]:
        e = refused(exceptions.InvalidRequest, ta.update_key_configuration, name="app",
                    **refusal)
        assert words in e.errors[0], (refusal, e.errors)
    assert ta.read_key(name="app")["data"]["auto_rotate_period"] == 30 * day, "unchanged"
    ta.update_key_configuration(name="app", auto_rotate_period=0, min_decryption_version=1)
    assert ta.read_key(name="app")["data"]["auto_rotate_period"] == 0, "turned off"
    refused(exceptions.InvalidRequest, ta.update_key_configuration, name="nope",
            auto_rotate_period="30d")
    # A key created rotating; the schedule is the key's own, seen over gRPC too.
    rotating = ta.create_key(name="rotating", auto_rotate_period="90d")["data"]
    assert rotating["auto_rotate_period"] == 90 * day, rotating
    refused(exceptions.InvalidRequest, ta.create_key, name="hourly", auto_rotate_period="1h")
    refused(exceptions.InvalidPath, ta.read_key, name="hourly")
    # Ceph RGW's SSE-S3 bucket key: chacha20-poly1305, derived; served as a kmsbox key. A derived
    # key takes no call without a context, as in Vault.
    bucket = ta.create_key(name="bucketkey", key_type="chacha20-poly1305", derived=True)["data"]
    assert bucket["type"] == "aes256-gcm96" and bucket["derived"] is True, bucket
    arn = b64(b'{"aws:s3:arn":"arn:aws:s3:::bucket/object"}')
    dk = ta.generate_data_key(name="bucketkey", key_type="plaintext", context=arn)["data"]
    out = ta.decrypt_data(name="bucketkey", ciphertext=dk["ciphertext"], context=arn)["data"]
    assert out["plaintext"] == dk["plaintext"]
    for call, kwargs in [(ta.generate_data_key, dict(key_type="plaintext")),
                         (ta.encrypt_data, dict(plaintext=b64(b"x"))),
                         (ta.decrypt_data, dict(ciphertext=dk["ciphertext"])),
                         # Associated data does not stand in for the context.
                         (ta.encrypt_data, dict(plaintext=b64(b"x"), associated_data=b64(b"ad")))]:
        e = refused(exceptions.InvalidRequest, call, name="bucketkey", **kwargs)
        assert "requires an encryption context" in e.errors[0], (call.__name__, e.errors)

    # encrypt / decrypt, with the context bound.
    ctx = b64(b'{"bucket":"b1","object":"o1"}')
    v1 = ta.encrypt_data(name="app", plaintext=b64(b"hello transit"), context=ctx)["data"]
    assert v1["ciphertext"].startswith("vault:v1:") and v1["key_version"] == 1, v1
    out = ta.decrypt_data(name="app", ciphertext=v1["ciphertext"], context=ctx)["data"]
    assert base64.b64decode(out["plaintext"]) == b"hello transit"
    refused(exceptions.InvalidRequest, ta.decrypt_data, name="app", ciphertext=v1["ciphertext"])
    refused(exceptions.InvalidRequest, ta.decrypt_data, name="app",
            ciphertext=v1["ciphertext"], context=b64(b"another"))

    # associated_data (AEAD additional data, hvac's `associated_data`): bound as the context is;
    # the ciphertext opens only with the same data and context.
    ad = b64(b"row 17, column secret")
    with_ad = ta.encrypt_data(name="app", plaintext=b64(b"bound"), context=ctx,
                              associated_data=ad)["data"]
    out = ta.decrypt_data(name="app", ciphertext=with_ad["ciphertext"], context=ctx,
                          associated_data=ad)["data"]
    assert base64.b64decode(out["plaintext"]) == b"bound"
    for wrong in [None, b64(b"row 18, column secret")]:
        refused(exceptions.InvalidRequest, ta.decrypt_data, name="app",
                ciphertext=with_ad["ciphertext"], context=ctx, associated_data=wrong)
    refused(exceptions.InvalidRequest, ta.decrypt_data, name="app",
            ciphertext=v1["ciphertext"], context=ctx, associated_data=ad)
    refused(exceptions.InvalidRequest, ta.encrypt_data, name="app", plaintext=b64(b"x"),
            context=ctx, associated_data="%%%")
    batch = ta.encrypt_data(name="app", batch_input=[
        {"plaintext": b64(b"one"), "context": ctx, "associated_data": ad}])["data"]
    out = ta.decrypt_data(name="app", batch_input=[
        {"ciphertext": batch["batch_results"][0]["ciphertext"], "context": ctx,
         "associated_data": ad}])["data"]
    assert base64.b64decode(out["batch_results"][0]["plaintext"]) == b"one", out

    # rotate: a new version encrypts, the old ciphertext still decrypts, rewrap moves it up.
    ta.rotate_key(name="app")
    key = ta.read_key(name="app")["data"]
    assert key["latest_version"] == 2 and sorted(key["keys"]) == ["1", "2"], key
    v2 = ta.encrypt_data(name="app", plaintext=b64(b"second"), context=ctx)["data"]
    assert v2["ciphertext"].startswith("vault:v2:") and v2["key_version"] == 2, v2
    out = ta.decrypt_data(name="app", ciphertext=v1["ciphertext"], context=ctx)["data"]
    assert base64.b64decode(out["plaintext"]) == b"hello transit", "v1 after rotation"
    rewrapped = ta.rewrap_data(name="app", ciphertext=v1["ciphertext"], context=ctx)["data"]
    assert rewrapped["ciphertext"].startswith("vault:v2:"), rewrapped
    out = ta.decrypt_data(name="app", ciphertext=rewrapped["ciphertext"], context=ctx)["data"]
    assert base64.b64decode(out["plaintext"]) == b"hello transit", "rewrapped"

    # batch_input: each item its own result, in order, with its reference; one bad item fails
    # the call with 400 (Vault's rule), which hvac raises.
    items = [{"plaintext": b64(b"one"), "context": ctx, "reference": "r1"},
             {"plaintext": b64(b"two"), "reference": "r2"}]
    sealed = ta.encrypt_data(name="app", batch_input=items)["data"]["batch_results"]
    assert [r["reference"] for r in sealed] == ["r1", "r2"], sealed
    assert all(r["ciphertext"].startswith("vault:v2:") for r in sealed), sealed
    opened = ta.decrypt_data(name="app", batch_input=[
        {"ciphertext": sealed[0]["ciphertext"], "context": ctx},
        {"ciphertext": sealed[1]["ciphertext"]},
    ])["data"]["batch_results"]
    assert [base64.b64decode(r["plaintext"]) for r in opened] == [b"one", b"two"], opened
    moved = ta.rewrap_data(name="app", ciphertext=None, batch_input=[
        {"ciphertext": v1["ciphertext"], "context": ctx},
    ])["data"]["batch_results"]
    assert moved[0]["ciphertext"].startswith("vault:v2:"), moved
    try:
        ta.encrypt_data(name="app",
                        batch_input=[{"plaintext": b64(b"fine")}, {"plaintext": "not base64!"}])
        raise AssertionError("a batch with a bad item must fail")
    except exceptions.InvalidRequest as e:
        # Vault's shape: no errors list, the items' results, the bad one with its error.
        assert "batch_results" in str(e) and "base64" in str(e), e

    # datakey: plaintext and wrapped, with and without context, each size Vault allows.
    dk = ta.generate_data_key(name="app", key_type="plaintext", context=ctx)["data"]
    assert len(base64.b64decode(dk["plaintext"])) == 32 and dk["key_version"] == 2, dk
    out = ta.decrypt_data(name="app", ciphertext=dk["ciphertext"], context=ctx)["data"]
    assert out["plaintext"] == dk["plaintext"], "datakey then decrypt with context"
    refused(exceptions.InvalidRequest, ta.decrypt_data, name="app", ciphertext=dk["ciphertext"])
    wrapped = ta.generate_data_key(name="app", key_type="wrapped")["data"]
    assert "plaintext" not in wrapped, wrapped
    out = ta.decrypt_data(name="app", ciphertext=wrapped["ciphertext"])["data"]
    assert len(base64.b64decode(out["plaintext"])) == 32, "datakey then decrypt without context"
    refused(exceptions.InvalidRequest, ta.decrypt_data, name="app",
            ciphertext=wrapped["ciphertext"], context=ctx)
    for bits in (128, 256, 512):
        dk = ta.generate_data_key(name="app", key_type="plaintext", bits=bits)["data"]
        assert len(base64.b64decode(dk["plaintext"])) == bits // 8, (bits, dk)

    # random: 32 bytes of base64 by default, a size and hex asked for; kmsbox's 1 to 1024 bytes.
    drawn = base64.b64decode(ta.generate_random_bytes()["data"]["random_bytes"])
    assert len(drawn) == 32, drawn
    hexed = ta.generate_random_bytes(n_bytes=16, output_format="hex")["data"]["random_bytes"]
    assert len(bytes.fromhex(hexed)) == 16, hexed
    e = refused(exceptions.InvalidRequest, ta.generate_random_bytes, n_bytes=2048)
    assert "invalid bytes" in e.errors[0], e.errors

    # Unknown keys: reading is 404, using is 400 (Vault's codes).
    refused(exceptions.InvalidPath, ta.read_key, name="nope")
    refused(exceptions.InvalidRequest, ta.encrypt_data, name="nope", plaintext=b64(b"x"))

    # The key list: A's keys by name, sorted; B has none yet (Vault's 404 for an empty list).
    listed = ta.list_keys()["data"]["keys"]
    assert listed == ["app", "bucketkey", "doomed", "rotating"], listed
    refused(exceptions.InvalidPath, tb.list_keys)

    # Tenant B sees none of A's keys, even under the same name, and cannot open A's ciphertext.
    refused(exceptions.InvalidPath, tb.read_key, name="app")
    refused(exceptions.InvalidRequest, tb.decrypt_data, name="app",
            ciphertext=v1["ciphertext"], context=ctx)
    theirs = tb.create_key(name="app")["data"]
    assert theirs["kmsbox_key_id"] != created["kmsbox_key_id"], "B's app is B's own key"
    assert tb.list_keys()["data"]["keys"] == ["app"]
    e = refused(exceptions.InvalidRequest, tb.decrypt_data, name="app",
                ciphertext=v1["ciphertext"], context=ctx)
    assert "not found" in str(e), e

    # A bad token: 403 on every call.
    refused(exceptions.Forbidden, bad.secrets.transit.read_key, name="app")
    refused(exceptions.Forbidden, bad.secrets.transit.encrypt_data, name="app",
            plaintext=b64(b"x"))

    print(json.dumps({
        "key_id": created["kmsbox_key_id"],
        "rotating_key_id": rotating["kmsbox_key_id"],
        "derived_key_id": bucket["kmsbox_key_id"],
        "ciphertext": v2["ciphertext"],
        "context": ctx,
        "plaintext": b64(b"second"),
    }))


def decrypt(url, token, name, ciphertext, context):
    client = hvac.Client(url=url, token=token)
    out = client.secrets.transit.decrypt_data(name=name, ciphertext=ciphertext,
                                              context=context or None)
    print(out["data"]["plaintext"])


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    {"scenario": scenario, "decrypt": decrypt}[mode](*args)
