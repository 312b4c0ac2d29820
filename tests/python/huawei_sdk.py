"""The official Huawei Cloud KMS SDK (huaweicloudsdkkms, unmodified) against kms-server.

Usage: huawei_sdk.py <scenario> '<json arguments>'

Each scenario runs its calls, checks each rule with `check(rule, condition)`, and prints one JSON
object: {"failures": [rules that did not hold, with what was seen], "artifacts": {...}} for the
Rust test to assert on and to carry across to the gRPC API.
"""

import base64
import hashlib
import json
import os
import sys
from datetime import datetime, timedelta, timezone

import requests
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkkms.v2 import (
    BatchCreateKmsTagsRequest,
    BatchCreateKmsTagsRequestBody,
    CancelKeyDeletionRequest,
    CreateKmsTagRequest,
    CreateKmsTagRequestBody,
    CreateDatakeyRequest,
    CreateDatakeyRequestBody,
    CreateDatakeyWithoutPlaintextRequest,
    CreateKeyRequest,
    CreateKeyRequestBody,
    CreateRandomRequest,
    DecryptDataRequest,
    DecryptDataRequestBody,
    DecryptDatakeyRequest,
    DecryptDatakeyRequestBody,
    DeleteKeyRequest,
    DeleteTagRequest,
    DisableKeyRequest,
    DisableKeyRotationRequest,
    EnableKeyRequest,
    EnableKeyRotationRequest,
    EncryptDataRequest,
    EncryptDataRequestBody,
    EncryptDatakeyRequest,
    EncryptDatakeyRequestBody,
    GenRandomRequestBody,
    KmsClient,
    ListKeyDetailRequest,
    ListKeysRequest,
    ListKeysRequestBody,
    ListKmsByTagsRequest,
    ListKmsByTagsRequestBody,
    ListKmsTagsRequest,
    OperateKeyRequestBody,
    ReEncryptRequest,
    ReEncryptRequestBody,
    RotateOnDemandRequest,
    RotateOnDemandRequestBody,
    ScheduleKeyDeletionRequestBody,
    ShowKeyRotationStatusRequest,
    ShowKmsTagsRequest,
    ShowVersionRequest,
    ShowVersionsRequest,
    Tag,
    TagItem,
    UpdateKeyAliasRequest,
    UpdateKeyAliasRequestBody,
    UpdateKeyDescriptionRequest,
    UpdateKeyDescriptionRequestBody,
    UpdateKeyRotationIntervalRequest,
    UpdateKeyRotationIntervalRequestBody,
)

FAILURES = []


def check(rule, condition, seen=None):
    if not condition:
        FAILURES.append(f"{rule} (saw {seen!r})")


def client(endpoint, ak, sk, project):
    return (
        KmsClient.new_builder()
        .with_credentials(BasicCredentials(ak, sk, project))
        .with_endpoints([endpoint])
        .build()
    )


def refused(rule, call, status, code):
    """`call` raises ClientRequestException with `status` and Huawei error `code`."""
    try:
        call()
    except ClientRequestException as e:
        check(rule, (e.status_code, e.error_code) == (status, code), (e.status_code, e.error_code, e.error_msg))
        return
    check(rule, False, "the call succeeded")


def operate(key_id):
    return OperateKeyRequestBody(key_id=key_id)


def create_key(c, alias, description=None):
    body = CreateKeyRequestBody(key_alias=alias, key_description=description)
    return c.create_key(CreateKeyRequest(body=body)).key_info.key_id


def operations(a):
    """Every operation served, as one tenant, each result checked."""
    c = client(a["endpoint"], a["ak"], a["sk"], a["project"])
    created = c.create_key(CreateKeyRequest(body=CreateKeyRequestBody(key_alias="sdk/first", key_description="made by the SDK")))
    info = created.key_info
    key_id = info.key_id
    check("create-key answers the bare UUID", len(key_id) == 36 and key_id.count("-") == 4, key_id)
    check("create-key answers the tenant's domain", info.domain_id == a["domain"], info.domain_id)
    check("create-key answers the project's region", info.region_id == a["region"], info.region_id)

    d = c.list_key_detail(ListKeyDetailRequest(body=operate(key_id))).key_info
    check("describe-key: alias", d.key_alias == "sdk/first", d.key_alias)
    check("describe-key: description", d.key_description == "made by the SDK", d.key_description)
    check("describe-key: realm is the region", d.realm == a["region"], d.realm)
    check("describe-key: enabled is key_state 2", d.key_state == "2", d.key_state)
    check("describe-key: not a default key", d.default_key_flag == "0", d.default_key_flag)
    check("describe-key: AES_256", d.key_spec == "AES_256", d.key_spec)
    check("describe-key: creation_date in milliseconds", d.creation_date.isdigit() and len(d.creation_date) == 13, d.creation_date)
    check("describe-key: no deletion date", d.scheduled_deletion_date is None, d.scheduled_deletion_date)

    second = create_key(c, "sdk/second")
    third = create_key(c, "sdk/third")
    page = c.list_keys(ListKeysRequest(body=ListKeysRequestBody(limit="2")))
    check("list-keys: a page of limit keys, oldest first", page.keys == [key_id, second], page.keys)
    check("list-keys: key_details beside keys", [k.key_id for k in page.key_details] == [key_id, second], page.key_details)
    check("list-keys: truncated", page.truncated == "true", page.truncated)
    check("list-keys: total counts every page", page.total == 3, page.total)
    rest = c.list_keys(ListKeysRequest(body=ListKeysRequestBody(limit="2", marker=page.next_marker)))
    check("list-keys: the marker continues", rest.keys == [third], rest.keys)
    check("list-keys: last page not truncated", rest.truncated == "false", rest.truncated)

    s = c.disable_key(DisableKeyRequest(body=operate(second))).key_info
    check("disable-key: key_state 3", s.key_state == "3", s.key_state)
    disabled = c.list_keys(ListKeysRequest(body=ListKeysRequestBody(key_state="3")))
    check("list-keys: key_state filters", disabled.keys == [second], disabled.keys)
    check("list-keys: total counts what the filter keeps", disabled.total == 1, disabled.total)
    s = c.enable_key(EnableKeyRequest(body=operate(second))).key_info
    check("enable-key: key_state 2", s.key_state == "2", s.key_state)
    s = c.delete_key(DeleteKeyRequest(body=ScheduleKeyDeletionRequestBody(key_id=third, pending_days="7")))
    check("schedule-key-deletion: key_state 4", s.key_state == "4", s.key_state)
    d = c.list_key_detail(ListKeyDetailRequest(body=operate(third))).key_info
    check("describe-key: a deletion date once scheduled", d.scheduled_deletion_date and d.scheduled_deletion_date.isdigit(), d.scheduled_deletion_date)
    s = c.cancel_key_deletion(CancelKeyDeletionRequest(body=operate(third)))
    check("cancel-key-deletion: back to disabled, key_state 3", s.key_state == "3", s.key_state)

    dk = c.create_datakey(CreateDatakeyRequest(body=CreateDatakeyRequestBody(key_id=key_id, datakey_length="512")))
    check("create-datakey: 512 bits of plaintext in upper-case hex", len(dk.plain_text) == 128 and dk.plain_text == dk.plain_text.upper(), dk.plain_text)
    check("create-datakey: the key's bare UUID", dk.key_id == key_id, dk.key_id)
    back = c.decrypt_datakey(DecryptDatakeyRequest(body=DecryptDatakeyRequestBody(key_id=key_id, cipher_text=dk.cipher_text, datakey_cipher_length="64")))
    check("decrypt-datakey: the data key", back.data_key == dk.plain_text, back.data_key)
    check("decrypt-datakey: its length", back.datakey_length == "64", back.datakey_length)
    check("decrypt-datakey: datakey_dgst is its SHA-256", back.datakey_dgst == hashlib.sha256(bytes.fromhex(dk.plain_text)).hexdigest().upper(), back.datakey_dgst)

    wp = c.create_datakey_without_plaintext(CreateDatakeyWithoutPlaintextRequest(body=CreateDatakeyRequestBody(key_id=key_id, key_spec="AES_128", additional_authenticated_data="ctx")))
    check("create-datakey-without-plaintext: no plain_text", getattr(wp, "plain_text", None) is None, wp)
    back = c.decrypt_datakey(DecryptDatakeyRequest(body=DecryptDatakeyRequestBody(key_id=key_id, cipher_text=wp.cipher_text, datakey_cipher_length="16", additional_authenticated_data="ctx")))
    check("decrypt-datakey: AES_128 is 16 bytes", back.datakey_length == "16", back.datakey_length)
    refused("decrypt-datakey: another additional_authenticated_data fails authentication",
            lambda: c.decrypt_datakey(DecryptDatakeyRequest(body=DecryptDatakeyRequestBody(key_id=key_id, cipher_text=wp.cipher_text, datakey_cipher_length="16", additional_authenticated_data="other"))),
            400, "KMSBOX.0421")

    dek = os.urandom(32)
    plain = (dek + hashlib.sha256(dek).digest()).hex().upper()
    enc = c.encrypt_datakey(EncryptDatakeyRequest(body=EncryptDatakeyRequestBody(key_id=key_id, plain_text=plain, datakey_plain_length="32")))
    check("encrypt-datakey: datakey_length", enc.datakey_length == "32", enc.datakey_length)
    back = c.decrypt_datakey(DecryptDatakeyRequest(body=DecryptDatakeyRequestBody(key_id=key_id, cipher_text=enc.cipher_text, datakey_cipher_length="32")))
    check("encrypt-datakey then decrypt-datakey: the same data key", back.data_key == dek.hex().upper(), back.data_key)
    bad = (dek + bytes(32)).hex()
    refused("encrypt-datakey: a wrong SHA-256 digest is refused",
            lambda: c.encrypt_datakey(EncryptDatakeyRequest(body=EncryptDatakeyRequestBody(key_id=key_id, plain_text=bad, datakey_plain_length="32"))),
            400, "KMS.2103")

    e = c.encrypt_data(EncryptDataRequest(body=EncryptDataRequestBody(key_id=key_id, plain_text="hello, kmsbox", additional_authenticated_data="aad-1")))
    check("encrypt-data: base64 cipher_text", base64.b64decode(e.cipher_text) != b"", e.cipher_text)
    d = c.decrypt_data(DecryptDataRequest(body=DecryptDataRequestBody(cipher_text=e.cipher_text, additional_authenticated_data="aad-1")))
    check("decrypt-data: the plaintext", d.plain_text == "hello, kmsbox", d.plain_text)
    check("decrypt-data: plain_text_base64", base64.b64decode(d.plain_text_base64) == b"hello, kmsbox", d.plain_text_base64)
    check("decrypt-data: the key", d.key_id == key_id, d.key_id)

    other = create_key(c, "sdk/other")
    r = c.re_encrypt(ReEncryptRequest(body=ReEncryptRequestBody(cipher_text=dk.cipher_text, destination_key_id=other)))
    check("re-encrypt: under the destination key", (r.key_id, r.source_key_id) == (other, key_id), (r.key_id, r.source_key_id))
    back = c.decrypt_datakey(DecryptDatakeyRequest(body=DecryptDatakeyRequestBody(key_id=other, cipher_text=r.cipher_text, datakey_cipher_length="64")))
    check("re-encrypt: the same data key under the other key", back.data_key == dk.plain_text, back.data_key)

    rnd = c.create_random(CreateRandomRequest(body=GenRandomRequestBody(random_data_length="512")))
    check("gen-random: 512 bits in hex", len(bytes.fromhex(rnd.random_data)) == 64, rnd.random_data)
    rnd2 = c.create_random(CreateRandomRequest(body=GenRandomRequestBody(random_data_length="512")))
    check("gen-random: fresh each time", rnd.random_data != rnd2.random_data, rnd2.random_data)

    return {"key_id": key_id, "cipher_text": e.cipher_text, "aad": "aad-1", "plain_text": "hello, kmsbox"}


def refusals(a):
    """Credentials, tenancy and key states, each refused with its code."""
    c = client(a["endpoint"], a["ak"], a["sk"], a["project"])
    key_id = create_key(c, "sdk/states")
    wrong = client(a["endpoint"], a["ak"], "not-the-secret-key-0123456789", a["project"])
    refused("a wrong secret key is 401", lambda: wrong.list_keys(ListKeysRequest(body=ListKeysRequestBody())), 401, "KMSBOX.0401")
    unknown = client(a["endpoint"], "NOSUCHAK", a["sk"], a["project"])
    refused("an unknown access key is 401", lambda: unknown.list_keys(ListKeysRequest(body=ListKeysRequestBody())), 401, "KMSBOX.0401")
    theirs = client(a["endpoint"], a["ak"], a["sk"], a["bob_project"])
    refused("another tenant's project is 403", lambda: theirs.list_keys(ListKeysRequest(body=ListKeysRequestBody())), 403, "KMSBOX.0403")
    refused("another tenant's key is not found", lambda: c.list_key_detail(ListKeyDetailRequest(body=operate(a["bob_key"]))), 404, "KMS.0207")
    elsewhere = client(a["endpoint"], a["ak"], a["sk"], a["other_project"])
    refused("the tenant's key from its project in another region is not found",
            lambda: elsewhere.list_key_detail(ListKeyDetailRequest(body=operate(key_id))), 404, "KMS.0207")
    refused("a malformed key ID is KMS.0205", lambda: c.list_key_detail(ListKeyDetailRequest(body=operate("not-a-key"))), 400, "KMS.0205")
    refused("pending_days 6 is KMS.1401",
            lambda: c.delete_key(DeleteKeyRequest(body=ScheduleKeyDeletionRequestBody(key_id=key_id, pending_days="6"))), 400, "KMS.1401")
    refused("pending_days 1097 is KMS.1401",
            lambda: c.delete_key(DeleteKeyRequest(body=ScheduleKeyDeletionRequestBody(key_id=key_id, pending_days="1097"))), 400, "KMS.1401")
    c.disable_key(DisableKeyRequest(body=operate(key_id)))
    refused("a disabled key does not encrypt: KMS.0209",
            lambda: c.encrypt_data(EncryptDataRequest(body=EncryptDataRequestBody(key_id=key_id, plain_text="x"))), 400, "KMS.0209")
    refused("a disabled key makes no data key: KMS.0209",
            lambda: c.create_datakey(CreateDatakeyRequest(body=CreateDatakeyRequestBody(key_id=key_id))), 400, "KMS.0209")
    c.delete_key(DeleteKeyRequest(body=ScheduleKeyDeletionRequestBody(key_id=key_id, pending_days="7")))
    refused("a key pending deletion does not encrypt: KMS.0210",
            lambda: c.encrypt_data(EncryptDataRequest(body=EncryptDataRequestBody(key_id=key_id, plain_text="x"))), 400, "KMS.0210")
    refused("a key pending deletion cannot be enabled: KMS.0210",
            lambda: c.enable_key(EnableKeyRequest(body=operate(key_id))), 400, "KMS.0210")
    return {"key_id": key_id}


def attributes_and_rotation(a):
    """Alias and description updates, the rotation schedule, rotation on demand."""
    c = client(a["endpoint"], a["ak"], a["sk"], a["project"])
    key_id = create_key(c, "sdk/rotating", "first words")
    create_key(c, "sdk/taken")
    info = c.update_key_alias(UpdateKeyAliasRequest(body=UpdateKeyAliasRequestBody(key_id=key_id, key_alias="sdk/renamed"))).key_info
    check("update-key-alias: answers the new alias", (info.key_id, info.key_alias) == (key_id, "sdk/renamed"), info)
    info = c.update_key_description(UpdateKeyDescriptionRequest(body=UpdateKeyDescriptionRequestBody(key_id=key_id, key_description="new words"))).key_info
    check("update-key-description: answers the new description", info.key_description == "new words", info)
    d = c.list_key_detail(ListKeyDetailRequest(body=operate(key_id))).key_info
    check("describe-key: shows both", (d.key_alias, d.key_description) == ("sdk/renamed", "new words"), d)
    refused("update-key-alias: an alias taken is refused",
            lambda: c.update_key_alias(UpdateKeyAliasRequest(body=UpdateKeyAliasRequestBody(key_id=key_id, key_alias="sdk/taken"))),
            400, "KMS.1104")

    status = lambda: c.show_key_rotation_status(ShowKeyRotationStatusRequest(body=operate(key_id)))
    s = status()
    check("get-key-rotation-status: off, 365 days, never rotated",
          (s.key_rotation_enabled, s.rotation_interval, s.number_of_rotations, s.last_rotation_time) == (False, 365, 0, None), s)
    check("describe-key: key_rotation_enabled false", d.key_rotation_enabled == "false", d.key_rotation_enabled)
    c.enable_key_rotation(EnableKeyRotationRequest(body=operate(key_id)))
    s = status()
    check("enable-key-rotation: on", s.key_rotation_enabled is True, s)
    d = c.list_key_detail(ListKeyDetailRequest(body=operate(key_id))).key_info
    check("describe-key: key_rotation_enabled true", d.key_rotation_enabled == "true", d.key_rotation_enabled)
    for days in (29, 366):
        refused(f"update-key-rotation-interval: {days} days is out of 30-365",
                lambda: c.update_key_rotation_interval(UpdateKeyRotationIntervalRequest(body=UpdateKeyRotationIntervalRequestBody(key_id=key_id, rotation_interval=days))),
                400, "KMS.3001")
    c.update_key_rotation_interval(UpdateKeyRotationIntervalRequest(body=UpdateKeyRotationIntervalRequestBody(key_id=key_id, rotation_interval=90)))
    check("update-key-rotation-interval: 90 days", status().rotation_interval == 90, status())

    before = c.encrypt_data(EncryptDataRequest(body=EncryptDataRequestBody(key_id=key_id, plain_text="before rotation")))
    r = c.rotate_on_demand(RotateOnDemandRequest(body=RotateOnDemandRequestBody(key_id=key_id)))
    check("rotate-on-demand: answers the key", r.key_id == key_id, r.key_id)
    s = status()
    check("get-key-rotation-status: one rotation, and when", s.number_of_rotations == 1 and (s.last_rotation_time or "").isdigit(), s)
    old = c.decrypt_data(DecryptDataRequest(body=DecryptDataRequestBody(cipher_text=before.cipher_text)))
    check("rotation keeps old ciphertexts decryptable", old.plain_text == "before rotation", old.plain_text)
    after = c.encrypt_data(EncryptDataRequest(body=EncryptDataRequestBody(key_id=key_id, plain_text="after rotation")))
    check("the rotated key encrypts anew", after.cipher_text != before.cipher_text, after.cipher_text)
    c.disable_key_rotation(DisableKeyRotationRequest(body=operate(key_id)))
    s = status()
    check("disable-key-rotation: off, the interval kept", (s.key_rotation_enabled, s.rotation_interval) == (False, 90), s)
    return {"key_id": key_id}


def huawei_codes(a):
    """Each refusal Huawei has a code of its own for, as the SDK sees it: (rule, call, status, code)."""
    c = client(a["endpoint"], a["ak"], a["sk"], a["project"])
    key_id = create_key(c, "sdk/codes")
    taken = create_key(c, "sdk/codes-taken")
    c.disable_key(DisableKeyRequest(body=operate(taken)))
    pending = create_key(c, "sdk/codes-pending")
    c.delete_key(DeleteKeyRequest(body=ScheduleKeyDeletionRequestBody(key_id=pending, pending_days="7")))
    dek = os.urandom(32)
    good = (dek + hashlib.sha256(dek).digest()).hex().upper()
    blob = c.create_datakey(CreateDatakeyRequest(body=CreateDatakeyRequestBody(key_id=key_id, datakey_length="256"))).cipher_text

    def datakey(length, without_plaintext=False):
        body = CreateDatakeyRequestBody(key_id=key_id, datakey_length=length)
        if without_plaintext:
            return lambda: c.create_datakey_without_plaintext(CreateDatakeyWithoutPlaintextRequest(body=body))
        return lambda: c.create_datakey(CreateDatakeyRequest(body=body))

    def encrypt_datakey(plain_text, length):
        body = EncryptDatakeyRequestBody(key_id=key_id, plain_text=plain_text, datakey_plain_length=length)
        return lambda: c.encrypt_datakey(EncryptDatakeyRequest(body=body))

    def decrypt_datakey(cipher_text, length):
        body = DecryptDatakeyRequestBody(key_id=key_id, cipher_text=cipher_text, datakey_cipher_length=length)
        return lambda: c.decrypt_datakey(DecryptDatakeyRequest(body=body))

    def list_keys(**kw):
        return lambda: c.list_keys(ListKeysRequest(body=ListKeysRequestBody(**kw)))

    def random(length):
        return lambda: c.create_random(CreateRandomRequest(body=GenRandomRequestBody(random_data_length=length)))

    cases = [
        ("create-key: an alias outside the grammar", lambda: create_key(c, "a//b"), "KMS.1101"),
        ("create-key: an alias ending in /default", lambda: create_key(c, "x/default"), "KMS.1101"),
        ("create-key: an alias with '.', outside Huawei's pattern", lambda: create_key(c, "a.b"), "KMS.1101"),
        ("update-key-alias: an alias with '.', outside Huawei's pattern",
         lambda: c.update_key_alias(UpdateKeyAliasRequest(body=UpdateKeyAliasRequestBody(key_id=key_id, key_alias="sdk.dotted"))), "KMS.1101"),
        ("update-key-alias: an alias outside the grammar",
         lambda: c.update_key_alias(UpdateKeyAliasRequest(body=UpdateKeyAliasRequestBody(key_id=key_id, key_alias="has space"))), "KMS.1101"),
        ("create-key: a description over 255 characters", lambda: create_key(c, "sdk/long", "d" * 256), "KMS.1103"),
        ("update-key-description: over 255 characters",
         lambda: c.update_key_description(UpdateKeyDescriptionRequest(body=UpdateKeyDescriptionRequestBody(key_id=key_id, key_description="d" * 256))), "KMS.1103"),
        ("create-key: an alias taken", lambda: create_key(c, "sdk/codes-taken"), "KMS.1104"),
        ("update-key-alias: an alias taken",
         lambda: c.update_key_alias(UpdateKeyAliasRequest(body=UpdateKeyAliasRequestBody(key_id=key_id, key_alias="sdk/codes-taken"))), "KMS.1104"),
        ("schedule-key-deletion: pending_days 6", lambda: c.delete_key(DeleteKeyRequest(body=ScheduleKeyDeletionRequestBody(key_id=key_id, pending_days="6"))), "KMS.1401"),
        ("schedule-key-deletion: a key already pending deletion",
         lambda: c.delete_key(DeleteKeyRequest(body=ScheduleKeyDeletionRequestBody(key_id=pending, pending_days="7"))), "KMS.1402"),
        ("enable-key: a key that is not disabled", lambda: c.enable_key(EnableKeyRequest(body=operate(key_id))), "KMS.1201"),
        ("disable-key: a key that is not enabled", lambda: c.disable_key(DisableKeyRequest(body=operate(taken))), "KMS.1301"),
        ("cancel-key-deletion: a key not pending deletion", lambda: c.cancel_key_deletion(CancelKeyDeletionRequest(body=operate(key_id))), "KMS.1501"),
        ("list-keys: limit 0", list_keys(limit="0"), "KMS.1601"),
        ("list-keys: limit 1001", list_keys(limit="1001"), "KMS.1601"),
        ("list-keys: a limit that is no number", list_keys(limit="ten"), "KMS.1601"),
        ("list-keys: a marker from no list", list_keys(marker="garbage"), "KMS.1602"),
        ("gen-random: random_data_length not a multiple of 8", random("100"), "KMS.1802"),
        ("gen-random: random_data_length over 8192 bits", random("8200"), "KMS.1801"),
        ("gen-random: random_data_length 0", random("0"), "KMS.1801"),
        ("create-datakey: datakey_length not a multiple of 8", datakey("100"), "KMS.1903"),
        ("create-datakey: datakey_length over 8192 bits", datakey("8200"), "KMS.1901"),
        ("create-datakey-without-plaintext: datakey_length not a multiple of 8", datakey("100", True), "KMS.1903"),
        ("create-datakey: additional_authenticated_data over 8192 bytes",
         lambda: c.create_datakey(CreateDatakeyRequest(body=CreateDatakeyRequestBody(
             key_id=key_id, datakey_length="256", additional_authenticated_data="a" * 8193))), "KMS.0208"),
        ("encrypt-data: additional_authenticated_data over 8192 bytes",
         lambda: c.encrypt_data(EncryptDataRequest(body=EncryptDataRequestBody(
             key_id=key_id, plain_text="hello", additional_authenticated_data="a" * 8193))), "KMS.0208"),
        ("create-datakey: a key_spec other than AES_128 or AES_256",
         lambda: c.create_datakey(CreateDatakeyRequest(body=CreateDatakeyRequestBody(key_id=key_id, key_spec="AES_512"))), "KMS.1902"),
        ("create-datakey-without-plaintext: datakey_length over 8192 bits", datakey("8200", True), "KMS.2001"),
        ("encrypt-datakey: plain_text not hex", encrypt_datakey("XYZ", "32"), "KMS.2101"),
        ("encrypt-datakey: plain_text not the data key and its digest", encrypt_datakey(good[:-2], "32"), "KMS.2104"),
        ("encrypt-datakey: plain_text of another datakey_plain_length", encrypt_datakey(good, "16"), "KMS.2104"),
        ("encrypt-datakey: datakey_plain_length 0", encrypt_datakey(good, "0"), "KMS.2102"),
        ("encrypt-datakey: datakey_plain_length over 1024", encrypt_datakey(good, "1025"), "KMS.2102"),
        ("encrypt-datakey: a wrong SHA-256 digest", encrypt_datakey((dek + bytes(32)).hex(), "32"), "KMS.2103"),
        ("decrypt-datakey: cipher_text not hex", decrypt_datakey("XYZ", "32"), "KMS.2201"),
        ("decrypt-datakey: cipher_text no ciphertext blob", decrypt_datakey("AABBCC", "32"), "KMS.2201"),
        ("decrypt-datakey: datakey_cipher_length 0", decrypt_datakey(blob, "0"), "KMS.2202"),
        ("decrypt-datakey: datakey_cipher_length over 1024", decrypt_datakey(blob, "1025"), "KMS.2202"),
        ("decrypt-datakey: datakey_cipher_length not the data key's", decrypt_datakey(blob, "16"), "KMS.2204"),
        ("update-key-rotation-interval: 29 days",
         lambda: c.update_key_rotation_interval(UpdateKeyRotationIntervalRequest(body=UpdateKeyRotationIntervalRequestBody(key_id=key_id, rotation_interval=29))), "KMS.3001"),
    ]
    for rule, call, code in cases:
        refused(rule, call, 400, code)
    return {"key_id": key_id, "pending": pending, "made": 3}


def signed_post(a, operation, body, date=None, project=None, header_project=None, tamper=None, sk=None):
    """A POST signed by the SDK's own Signer, with the date, project or body changed as asked."""
    project = project or a["project"]
    host = a["endpoint"].split("://", 1)[1]
    headers = {"Content-Type": "application/json;charset=UTF-8", "X-Project-Id": header_project or project}
    if date is not None:
        headers["X-Sdk-Date"] = date.strftime("%Y%m%dT%H%M%SZ")
    req = SdkRequest(method="POST", schema="http", host=host, resource_path=f"/v1.0/{project}/kms/{operation}",
                     query_params=[], header_params=headers, body=json.dumps(body))
    Signer(BasicCredentials(a["ak"], sk or a["sk"], project)).sign(req)
    sent = req.body if tamper is None else tamper
    r = requests.post(a["endpoint"] + req.uri, data=sent, headers=req.header_params, timeout=10)
    code = r.json().get("error", {}).get("error_code") if r.status_code >= 400 else None
    return r.status_code, code


def signatures(a):
    """The signature's date, body, secret and project, each checked by the daemon."""
    now = datetime.now(timezone.utc)
    body = {"limit": "1"}
    check("a request signed now is served", signed_post(a, "list-keys", body, date=now) == (200, None), signed_post(a, "list-keys", body, date=now))
    check("14 minutes old is still fresh", signed_post(a, "list-keys", body, date=now - timedelta(minutes=14))[0] == 200)
    for rule, date in [("a date 16 minutes old is 401", now - timedelta(minutes=16)),
                       ("a date 16 minutes ahead is 401", now + timedelta(minutes=16))]:
        got = signed_post(a, "list-keys", body, date=date)
        check(rule, got == (401, "KMSBOX.0401"), got)
    got = signed_post(a, "list-keys", body, date=now, tamper=json.dumps({"limit": "2"}))
    check("a body changed after signing is 401", got == (401, "KMSBOX.0401"), got)
    got = signed_post(a, "list-keys", body, date=now, sk="not-the-secret-key-0123456789")
    check("a wrong secret key is 401", got == (401, "KMSBOX.0401"), got)
    got = signed_post(a, "list-keys", body, date=now, header_project=a["bob_project"])
    check("an X-Project-Id that is not the path's project is 403", got == (403, "KMSBOX.0403"), got)
    r = requests.post(f"{a['endpoint']}/v1.0/{a['project']}/kms/list-keys", json=body, timeout=10)
    got = (r.status_code, r.json()["error"]["error_code"])
    check("an unsigned request is 401", got == (401, "KMSBOX.0401"), got)
    return {}


def tags(a):
    """Key tags: added one at a time and in batches, listed per key and per project, filtered and
    counted, removed; Huawei's limits refused with its codes; another tenant sees none of them."""
    c = client(a["endpoint"], a["ak"], a["sk"], a["project"])
    bob = client(a["endpoint"], a["bob_ak"], a["bob_sk"], a["bob_project"])
    web = create_key(c, "sdk/tagged-web")
    db = create_key(c, "sdk/tagged-db")
    create_key(c, "sdk/untagged")

    def shown(key_id):
        r = c.show_kms_tags(ShowKmsTagsRequest(key_id=key_id))
        return [(t.key, t.value) for t in r.tags], r.exist_tags_num

    def add(key_id, *pairs):
        return c.batch_create_kms_tags(BatchCreateKmsTagsRequest(key_id=key_id, body=BatchCreateKmsTagsRequestBody(
            action="create", tags=[TagItem(key=k, value=v) for k, v in pairs])))

    def remove(key_id, *items):
        return c.batch_create_kms_tags(BatchCreateKmsTagsRequest(key_id=key_id, body=BatchCreateKmsTagsRequestBody(
            action="delete", tags=[TagItem(key=k, value=v) for k, v in items])))

    check("a new key has no tags", shown(web) == ([], 0), shown(web))
    r = c.create_kms_tag(CreateKmsTagRequest(key_id=web, body=CreateKmsTagRequestBody(tag=TagItem(key="team", value="storage"))))
    check("create-kms-tag: 204", r.status_code == 204, r.status_code)
    check("show-kms-tags: the tag and existTagsNum", shown(web) == ([("team", "storage")], 1), shown(web))
    r = add(web, ("env", "prod"), ("成本中心", "研发 一部"), ("cost center", ""))
    check("tags/action create: 204", r.status_code == 204, r.status_code)
    add(db, ("env", "test"), ("team", "storage"))
    check("show-kms-tags: every tag, by key", shown(web) == (
        [("cost center", ""), ("env", "prod"), ("team", "storage"), ("成本中心", "研发 一部")], 4), shown(web))
    add(web, ("env", "staging"))
    check("a tag key added again takes the new value", ("env", "staging") in shown(web)[0], shown(web))

    project = {t.key: sorted(t.values) for t in c.list_kms_tags(ListKmsTagsRequest()).tags}
    check("list-kms-tags: the project's tag keys with their values",
          project == {"cost center": [""], "env": ["staging", "test"], "team": ["storage"], "成本中心": ["研发 一部"]}, project)

    def by_tags(action="filter", tags=None, matches=None, limit=None, offset=None):
        body = ListKmsByTagsRequestBody(action=action, tags=tags, matches=matches, limit=limit, offset=offset)
        return c.list_kms_by_tags(ListKmsByTagsRequest(resource_instances="resource_instances", body=body))

    r = by_tags(tags=[Tag(key="team", values=[])])
    check("filter: a tag key without values keeps every key that has it, oldest first",
          ([x.resource_id for x in r.resources], r.total_count) == ([web, db], 2), r)
    first = r.resources[0]
    check("filter: each key with its alias, details and tags",
          (first.resource_name, first.resource_detail.key_id, first.resource_detail.key_alias, len(first.tags)) ==
          ("sdk/tagged-web", web, "sdk/tagged-web", 4), first)
    r = by_tags(tags=[Tag(key="env", values=["test", "prod"])])
    check("filter: a value must be one of those given", [x.resource_id for x in r.resources] == [db], r)
    r = by_tags(tags=[Tag(key="team", values=["storage"])], limit="1", offset="1")
    check("filter: limit and offset page, total_count counts all",
          ([x.resource_id for x in r.resources], r.total_count) == ([db], 2), r)
    r = by_tags(tags=[Tag(key="team", values=[])], matches=[TagItem(key="resource_name", value="web")])
    check("filter: matches resource_name narrows by alias", [x.resource_id for x in r.resources] == [web], r)
    r = by_tags(action="count", tags=[Tag(key="env", values=[])])
    check("count: how many, no resources", (r.total_count, r.resources) == (2, None), r)
    r = by_tags(action="count")
    check("count: no tag counts every key", r.total_count == 3, r)

    remove(web, ("env", "prod"))
    check("tags/action delete: a value given that differs removes nothing", ("env", "staging") in shown(web)[0], shown(web))
    remove(web, ("env", None), ("absent", None))
    check("tags/action delete: by key; an absent tag is no error", "env" not in dict(shown(web)[0]), shown(web))
    r = c.delete_tag(DeleteTagRequest(key_id=web, key="成本中心"))
    check("delete-tag: 204, a key percent-encoded in the path", r.status_code == 204, r.status_code)
    c.delete_tag(DeleteTagRequest(key_id=web, key="cost center"))
    check("delete-tag: gone", shown(web) == ([("team", "storage")], 1), shown(web))

    eleven = [(f"k{i}", "v") for i in range(10)]
    for rule, call, code in [
        ("an eleventh tag", lambda: add(web, *eleven), "KMS.0308"),
        ("an empty batch", lambda: add(web), "KMS.0401"),
        ("'=' in a tag key", lambda: add(web, ("a=b", "v")), "KMS.0308"),
        ("a value over 43 characters", lambda: add(web, ("long", "v" * 44)), "KMS.0308"),
        ("a tag key given twice", lambda: add(web, ("dup", "1"), ("dup", "2")), "KMS.0308"),
        ("an action other than create or delete", lambda: c.batch_create_kms_tags(BatchCreateKmsTagsRequest(
            key_id=web, body=BatchCreateKmsTagsRequestBody(action="upsert", tags=[TagItem(key="a", value="b")]))), "KMS.0308"),
        ("a filter action other than filter or count", lambda: by_tags(action="list"), "KMS.0308"),
        ("a filter limit of 0", lambda: by_tags(limit="0"), "KMS.1601"),
        ("a match other than resource_name", lambda: by_tags(matches=[TagItem(key="key_id", value="x")]), "KMS.0308"),
    ]:
        refused(f"refused with {code}: {rule}", call, 400, code)
    check("the refused edits changed nothing", shown(web) == ([("team", "storage")], 1), shown(web))
    refused("a key that does not exist", lambda: c.show_kms_tags(ShowKmsTagsRequest(key_id="0d0466b0-e727-4d9c-b35d-f84bb474a37f")), 404, "KMS.0207")

    refused("another tenant cannot read the key's tags", lambda: bob.show_kms_tags(ShowKmsTagsRequest(key_id=web)), 404, "KMS.0207")
    refused("another tenant cannot tag the key", lambda: bob.create_kms_tag(CreateKmsTagRequest(
        key_id=web, body=CreateKmsTagRequestBody(tag=TagItem(key="x", value="y")))), 404, "KMS.0207")
    check("another tenant's project has no tags", bob.list_kms_tags(ListKmsTagsRequest()).tags == [], "bob's tags")
    r = bob.list_kms_by_tags(ListKmsByTagsRequest(resource_instances="resource_instances", body=ListKmsByTagsRequestBody(action="count")))
    check("another tenant counts none of the keys", r.total_count == 0, r.total_count)

    c.delete_key(DeleteKeyRequest(body=ScheduleKeyDeletionRequestBody(key_id=db, pending_days="7")))
    refused("a key pending deletion takes no tag", lambda: add(db, ("late", "")), 400, "KMS.0210")
    return {"web": web, "db": db}


def versions(a):
    """The API's version documents (GET / and GET /v1.0), signed like every call; a signed
    X-Project-Id must be a project of the signer's tenant."""
    c = client(a["endpoint"], a["ak"], a["sk"], a["project"])
    vs = c.show_versions(ShowVersionsRequest()).versions
    check("show_versions: v1.0, CURRENT, no microversions",
          [(v.id, v.status, v.version, v.min_version) for v in vs] == [("v1.0", "CURRENT", "", "")], vs)
    check("show_versions: a self link to /v1.0/",
          [(l.rel, l.href.endswith("/v1.0/")) for l in vs[0].links] == [("self", True)], vs[0].links)
    # The SDK types this one `object`: a dict.
    v = c.show_version(ShowVersionRequest(version_id="v1.0")).version
    check("show_version: v1.0", (v["id"], v["status"]) == ("v1.0", "CURRENT"), v)
    refused("a wrong secret key is refused", lambda: client(a["endpoint"], a["ak"], "wrong", a["project"])
            .show_versions(ShowVersionsRequest()), 401, "KMSBOX.0401")
    refused("another tenant's project is refused", lambda: client(a["endpoint"], a["bob_ak"], a["bob_sk"], a["project"])
            .show_versions(ShowVersionsRequest()), 403, "KMSBOX.0403")
    return {}


def shown_tags(a):
    """A key's tags, as show-kms-tags answers them."""
    c = client(a["endpoint"], a["ak"], a["sk"], a["project"])
    return {t.key: t.value for t in c.show_kms_tags(ShowKmsTagsRequest(key_id=a["key_id"])).tags}


def create(a):
    """Creates a key and prints its ID."""
    c = client(a["endpoint"], a["ak"], a["sk"], a["project"])
    return {"key_id": create_key(c, a["alias"])}


def decrypt(a):
    """decrypt-data of a ciphertext made elsewhere (over gRPC)."""
    c = client(a["endpoint"], a["ak"], a["sk"], a["project"])
    d = c.decrypt_data(DecryptDataRequest(body=DecryptDataRequestBody(cipher_text=a["cipher_text"], additional_authenticated_data=a.get("aad"))))
    return {"key_id": d.key_id, "plain_text": d.plain_text}


if __name__ == "__main__":
    scenario, args = sys.argv[1], json.loads(sys.argv[2])
    scenarios = {
        "operations": operations,
        "refusals": refusals,
        "huawei_codes": huawei_codes,
        "attributes_and_rotation": attributes_and_rotation,
        "signatures": signatures,
        "create": create,
        "tags": tags,
        "shown_tags": shown_tags,
        "versions": versions,
        "decrypt": decrypt,
    }
    artifacts = scenarios[scenario](args)
    print(json.dumps({"failures": FAILURES, "artifacts": artifacts}))
