//! The kms.v1 API against a real daemon on loopback: every RPC, every error class, tenancy,
//! restart persistence and concurrent first use of the default key.

use std::collections::HashMap;

use kms_proto::ErrorCode;
use kms_proto::v1::{self as pb, KeyCreator, KeyState};
use kmsbox_tests::{Tenant, TestDaemon, assert_refused, error_code};
use tonic::Code;

fn ctx(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn create(t: &mut Tenant, alias: &str) -> pb::KeyMetadata {
    let r = t
        .client
        .create_key(t.req(pb::CreateKeyRequest {
            alias: alias.into(),
            description: "test key".into(),
        }))
        .await
        .expect("CreateKey");
    r.into_inner().metadata.expect("metadata")
}

async fn encrypt(
    t: &mut Tenant,
    key_id: &str,
    pt: &[u8],
    c: &HashMap<String, String>,
) -> Result<pb::EncryptResponse, tonic::Status> {
    t.client
        .encrypt(t.req(pb::EncryptRequest {
            key_id: key_id.into(),
            plaintext: pt.to_vec(),
            encryption_context: c.clone(),
        }))
        .await
        .map(tonic::Response::into_inner)
}

async fn decrypt(
    t: &mut Tenant,
    blob: &[u8],
    c: &HashMap<String, String>,
    key_id: &str,
) -> Result<pb::DecryptResponse, tonic::Status> {
    t.client
        .decrypt(t.req(pb::DecryptRequest {
            ciphertext_blob: blob.to_vec(),
            encryption_context: c.clone(),
            key_id: key_id.into(),
        }))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn create_describe_and_list_name_keys_by_the_full_form() {
    let d = TestDaemon::start().await;
    let mut t = d.tenant("alice").await;
    let m = create(&mut t, "app-key").await;
    assert_eq!(m.key_id, format!("region:alice:key/{}", m.key_uuid));
    assert_eq!(
        (m.domain_id.as_str(), m.region.as_str()),
        ("alice", "region")
    );
    assert_eq!(m.state, KeyState::Enabled as i32);
    assert_eq!(m.creator, KeyCreator::Customer as i32);
    assert_eq!(m.current_version, 1);
    assert!(m.created_at.is_some() && m.deletion_date.is_none());
    // Both forms name the same key.
    assert_eq!(t.describe(&m.key_id).await.unwrap(), m);
    assert_eq!(t.describe(&m.key_uuid).await.unwrap(), m);
    // Alias taken.
    let again = t
        .client
        .create_key(t.req(pb::CreateKeyRequest {
            alias: "app-key".into(),
            description: String::new(),
        }))
        .await;
    assert_refused(
        again,
        Code::AlreadyExists,
        ErrorCode::AliasExists,
        "app-key",
    );
    // Reserved alias suffix.
    let reserved = t
        .client
        .create_key(t.req(pb::CreateKeyRequest {
            alias: "mine/default".into(),
            description: String::new(),
        }))
        .await;
    assert_refused(
        reserved,
        Code::InvalidArgument,
        ErrorCode::InvalidKeyAlias,
        "/default",
    );
}

#[tokio::test]
async fn list_keys_pages_through_the_callers_keys_only() {
    let d = TestDaemon::start().await;
    let mut a = d.tenant("alice").await;
    let mut b = d.tenant("bob").await;
    let mut made = Vec::new();
    for i in 0..7 {
        made.push(create(&mut a, &format!("k{i}")).await.key_id);
    }
    create(&mut b, "bobs").await;
    create(&mut a.in_region("cn-north-4"), "elsewhere").await;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = a
            .client
            .list_keys(a.req(pb::ListKeysRequest {
                page_size: 3,
                page_token: token.clone(),
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(page.keys.len() <= 3);
        seen.extend(page.keys.into_iter().map(|k| k.key_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(
        seen, made,
        "every key of alice in region, oldest first, once"
    );
    let bad = a
        .client
        .list_keys(a.req(pb::ListKeysRequest {
            page_size: 5000,
            page_token: String::new(),
        }))
        .await;
    assert_refused(
        bad,
        Code::InvalidArgument,
        ErrorCode::InvalidLimit,
        "page_size",
    );
    let bad = a
        .client
        .list_keys(a.req(pb::ListKeysRequest {
            page_size: 0,
            page_token: "garbage".into(),
        }))
        .await;
    assert_refused(
        bad,
        Code::InvalidArgument,
        ErrorCode::InvalidMarker,
        "page_token",
    );
}

#[tokio::test]
async fn encrypt_decrypt_round_trip_binds_the_encryption_context() {
    let d = TestDaemon::start().await;
    let mut t = d.tenant("alice").await;
    let k = create(&mut t, "").await;
    let c = ctx(&[("bucket", "b1"), ("object", "o1")]);
    let e = encrypt(&mut t, &k.key_uuid, b"hello world", &c)
        .await
        .unwrap();
    assert_eq!(e.key_id, k.key_id);
    assert_eq!(e.key_version, 1);
    let p = decrypt(&mut t, &e.ciphertext_blob, &c, "").await.unwrap();
    assert_eq!(p.plaintext, b"hello world");
    assert_eq!(p.key_id, k.key_id);
    // With the optional key_id, in either form.
    decrypt(&mut t, &e.ciphertext_blob, &c, &k.key_uuid)
        .await
        .unwrap();
    decrypt(&mut t, &e.ciphertext_blob, &c, &k.key_id)
        .await
        .unwrap();
    // (rule, context) pairs that must fail authentication, never yield plaintext.
    let wrong = [
        ("other value", ctx(&[("bucket", "b1"), ("object", "o2")])),
        ("missing pair", ctx(&[("bucket", "b1")])),
        (
            "extra pair",
            ctx(&[("bucket", "b1"), ("object", "o1"), ("x", "y")]),
        ),
        ("empty", ctx(&[])),
    ];
    for (rule, c2) in wrong {
        let r = decrypt(&mut t, &e.ciphertext_blob, &c2, "").await;
        assert_refused(
            r,
            Code::InvalidArgument,
            ErrorCode::CiphertextAuthFailed,
            "authentication",
        );
        let _ = rule;
    }
}

#[tokio::test]
async fn tampered_and_truncated_blobs_fail_with_a_clear_error() {
    let d = TestDaemon::start().await;
    let mut t = d.tenant("alice").await;
    let k = create(&mut t, "").await;
    let c = ctx(&[]);
    let blob = encrypt(&mut t, &k.key_id, b"0123456789abcdef", &c)
        .await
        .unwrap()
        .ciphertext_blob;
    // Every bit of the blob: a flip never yields a plaintext.
    for i in 0..blob.len() * 8 {
        let mut b = blob.clone();
        b[i / 8] ^= 1 << (i % 8);
        let s = decrypt(&mut t, &b, &c, "")
            .await
            .expect_err("flipped bit must fail");
        assert!(
            matches!(
                error_code(&s),
                Some(
                    ErrorCode::MalformedCiphertext
                        | ErrorCode::CiphertextAuthFailed
                        | ErrorCode::KeyNotFound
                )
            ),
            "bit {i}: {:?} {}",
            error_code(&s),
            s.message()
        );
    }
    for len in [0, 3, 5, 20, 37, 38, 53, blob.len() - 1] {
        let s = decrypt(&mut t, &blob[..len], &c, "")
            .await
            .expect_err("truncated");
        // The KMSBOX.042x codes: malformed, failed authentication, key_id mismatch.
        assert!(
            matches!(
                error_code(&s),
                Some(
                    ErrorCode::MalformedCiphertext
                        | ErrorCode::CiphertextAuthFailed
                        | ErrorCode::KeyIdMismatch
                )
            ),
            "len {len}: {}",
            s.message()
        );
    }
    let r = decrypt(&mut t, b"not a blob at all, clearly", &c, "").await;
    assert_refused(
        r,
        Code::InvalidArgument,
        ErrorCode::MalformedCiphertext,
        "bad magic",
    );
    // The daemon keeps serving after all that.
    assert_eq!(
        decrypt(&mut t, &blob, &c, "").await.unwrap().plaintext,
        b"0123456789abcdef"
    );
}

#[tokio::test]
async fn size_limits_are_enforced_with_named_fields() {
    let d = TestDaemon::start().await;
    let mut t = d.tenant("alice").await;
    let k = create(&mut t, "").await;
    let c = ctx(&[]);
    // The largest plaintext round-trips: both messages are past the codec's starting buffers.
    let largest: Vec<u8> = (0..4096u32).map(|i| i.to_le_bytes()[0] ^ 0x5a).collect();
    let e = encrypt(&mut t, &k.key_id, &largest, &c).await.unwrap();
    assert!(e.ciphertext_blob.len() > kms_proto::codec::BUFFER_SIZE * 4);
    let opened = decrypt(&mut t, &e.ciphertext_blob, &c, "").await.unwrap();
    assert_eq!(opened.plaintext, largest);
    let r = encrypt(&mut t, &k.key_id, &[7u8; 4097], &c).await;
    assert_refused(
        r,
        Code::InvalidArgument,
        ErrorCode::PayloadTooLarge,
        "plaintext is 4097 bytes",
    );
    let r = encrypt(&mut t, &k.key_id, &[], &c).await;
    assert_refused(
        r,
        Code::InvalidArgument,
        ErrorCode::InvalidArgument,
        "plaintext",
    );
    for (n, ok) in [(0u32, true), (1, true), (1024, true), (1025, false)] {
        let r = t
            .client
            .generate_data_key(t.req(pb::GenerateDataKeyRequest {
                key_id: k.key_id.clone(),
                number_of_bytes: n,
                encryption_context: c.clone(),
            }))
            .await;
        if ok {
            let want = if n == 0 { 32 } else { n as usize };
            assert_eq!(r.unwrap().into_inner().plaintext.len(), want, "n={n}");
        } else {
            assert_refused(
                r,
                Code::InvalidArgument,
                ErrorCode::InvalidDatakeyLength,
                "number_of_bytes",
            );
        }
    }
    let big = ctx(&[("k", &"v".repeat(9000))]);
    let r = encrypt(&mut t, &k.key_id, b"x", &big).await;
    assert_refused(
        r,
        Code::InvalidArgument,
        ErrorCode::InvalidEncryptionContext,
        "encryption_context",
    );
    let r = decrypt(&mut t, &vec![0u8; 10_000], &c, "").await;
    assert_refused(
        r,
        Code::InvalidArgument,
        ErrorCode::PayloadTooLarge,
        "ciphertext_blob",
    );
}

#[tokio::test]
async fn data_keys_decrypt_to_the_same_plaintext_and_without_plaintext_variant_works() {
    let d = TestDaemon::start().await;
    let mut t = d.tenant("alice").await;
    let k = create(&mut t, "").await;
    let c = ctx(&[("obs:object", "a/b")]);
    let dk = t
        .client
        .generate_data_key(t.req(pb::GenerateDataKeyRequest {
            key_id: k.key_uuid.clone(),
            number_of_bytes: 32,
            encryption_context: c.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dk.key_id, k.key_id);
    assert_eq!(dk.plaintext.len(), 32);
    let p = decrypt(&mut t, &dk.ciphertext_blob, &c, "").await.unwrap();
    assert_eq!(p.plaintext, dk.plaintext);
    let wo = t
        .client
        .generate_data_key_without_plaintext(t.req(pb::GenerateDataKeyRequest {
            key_id: k.key_id.clone(),
            number_of_bytes: 64,
            encryption_context: c.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(wo.key_id, k.key_id);
    assert_eq!(
        decrypt(&mut t, &wo.ciphertext_blob, &c, "")
            .await
            .unwrap()
            .plaintext
            .len(),
        64
    );
}

#[tokio::test]
async fn re_encrypt_moves_a_blob_to_another_key_and_context() {
    let d = TestDaemon::start().await;
    let mut t = d.tenant("alice").await;
    let k1 = create(&mut t, "").await;
    let k2 = create(&mut t, "").await;
    let (c1, c2) = (ctx(&[("a", "1")]), ctx(&[("b", "2")]));
    let blob = encrypt(&mut t, &k1.key_id, b"moving", &c1)
        .await
        .unwrap()
        .ciphertext_blob;
    let r = t
        .client
        .re_encrypt(t.req(pb::ReEncryptRequest {
            ciphertext_blob: blob.clone(),
            source_encryption_context: c1.clone(),
            source_key_id: k1.key_uuid.clone(),
            destination_key_id: k2.key_uuid.clone(),
            destination_encryption_context: c2.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.source_key_id.as_str(), r.key_id.as_str()),
        (k1.key_id.as_str(), k2.key_id.as_str())
    );
    let p = decrypt(&mut t, &r.ciphertext_blob, &c2, &k2.key_id)
        .await
        .unwrap();
    assert_eq!(p.plaintext, b"moving");
    // The key_id check: the blob is under k2 now, not k1.
    let r2 = decrypt(&mut t, &r.ciphertext_blob, &c2, &k1.key_id).await;
    assert_refused(
        r2,
        Code::InvalidArgument,
        ErrorCode::KeyIdMismatch,
        "does not match",
    );
    // Wrong source context.
    let bad = t
        .client
        .re_encrypt(t.req(pb::ReEncryptRequest {
            ciphertext_blob: blob,
            source_encryption_context: c2.clone(),
            source_key_id: String::new(),
            destination_key_id: k2.key_id.clone(),
            destination_encryption_context: c2,
        }))
        .await;
    assert_refused(
        bad,
        Code::InvalidArgument,
        ErrorCode::CiphertextAuthFailed,
        "authentication",
    );
}

#[tokio::test]
async fn rotation_keeps_old_data_readable_and_encrypts_new_data_with_the_new_version() {
    let d = TestDaemon::start().await;
    let mut t = d.tenant("alice").await;
    let k = create(&mut t, "").await;
    let c = ctx(&[]);
    let old = encrypt(&mut t, &k.key_id, b"v1 data", &c).await.unwrap();
    let rotated = t
        .client
        .rotate_key(t.req(pb::RotateKeyRequest {
            key_id: k.key_id.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .metadata
        .unwrap();
    assert_eq!(rotated.current_version, 2);
    let new = encrypt(&mut t, &k.key_id, b"v2 data", &c).await.unwrap();
    assert_eq!((old.key_version, new.key_version), (1, 2));
    assert_eq!(
        decrypt(&mut t, &old.ciphertext_blob, &c, "")
            .await
            .unwrap()
            .plaintext,
        b"v1 data"
    );
    assert_eq!(
        decrypt(&mut t, &new.ciphertext_blob, &c, "")
            .await
            .unwrap()
            .key_version,
        2
    );
}

#[tokio::test]
async fn key_states_gate_use_with_distinct_errors() {
    let d = TestDaemon::start().await;
    let mut t = d.tenant("alice").await;
    let k = create(&mut t, "").await;
    let c = ctx(&[]);
    let blob = encrypt(&mut t, &k.key_id, b"x", &c)
        .await
        .unwrap()
        .ciphertext_blob;
    let id = k.key_id.clone();

    let m = t
        .client
        .disable_key(t.req(pb::DisableKeyRequest { key_id: id.clone() }))
        .await
        .unwrap();
    assert_eq!(
        m.into_inner().metadata.unwrap().state,
        KeyState::Disabled as i32
    );
    assert_refused(
        encrypt(&mut t, &id, b"x", &c).await,
        Code::FailedPrecondition,
        ErrorCode::KeyDisabled,
        "disabled",
    );
    assert_refused(
        decrypt(&mut t, &blob, &c, "").await,
        Code::FailedPrecondition,
        ErrorCode::KeyDisabled,
        "disabled",
    );
    let rot = t
        .client
        .rotate_key(t.req(pb::RotateKeyRequest { key_id: id.clone() }))
        .await;
    assert_refused(
        rot,
        Code::FailedPrecondition,
        ErrorCode::KeyDisabled,
        "disabled",
    );

    t.client
        .enable_key(t.req(pb::EnableKeyRequest { key_id: id.clone() }))
        .await
        .unwrap();
    assert_eq!(
        decrypt(&mut t, &blob, &c, "").await.unwrap().plaintext,
        b"x"
    );

    // Deletion window bounds.
    for (days, ok) in [(6u32, false), (1097, false), (7, true)] {
        let r = t
            .client
            .schedule_key_deletion(t.req(pb::ScheduleKeyDeletionRequest {
                key_id: id.clone(),
                pending_window_days: days,
            }))
            .await;
        if ok {
            let m = r.unwrap().into_inner().metadata.unwrap();
            assert_eq!(m.state, KeyState::PendingDeletion as i32);
            let del = m.deletion_date.unwrap().seconds - m.created_at.unwrap().seconds;
            assert!(
                (7 * 86400 - 60..=7 * 86400 + 60).contains(&del),
                "deletion in 7 days, got {del}s"
            );
        } else {
            assert_refused(
                r,
                Code::InvalidArgument,
                ErrorCode::DeletionWindowOutOfRange,
                "pending_window_days",
            );
        }
    }
    assert_refused(
        encrypt(&mut t, &id, b"x", &c).await,
        Code::FailedPrecondition,
        ErrorCode::KeyPendingDeletion,
        "pending deletion",
    );
    assert_refused(
        decrypt(&mut t, &blob, &c, "").await,
        Code::FailedPrecondition,
        ErrorCode::KeyPendingDeletion,
        "pending deletion",
    );
    let en = t
        .client
        .enable_key(t.req(pb::EnableKeyRequest { key_id: id.clone() }))
        .await;
    assert_refused(
        en,
        Code::FailedPrecondition,
        ErrorCode::KeyPendingDeletion,
        "pending deletion",
    );

    let m = t
        .client
        .cancel_key_deletion(t.req(pb::CancelKeyDeletionRequest { key_id: id.clone() }))
        .await
        .unwrap()
        .into_inner()
        .metadata
        .unwrap();
    assert_eq!(
        m.state,
        KeyState::Disabled as i32,
        "a cancelled deletion leaves the key disabled"
    );
    assert!(m.deletion_date.is_none());
    let again = t
        .client
        .cancel_key_deletion(t.req(pb::CancelKeyDeletionRequest { key_id: id.clone() }))
        .await;
    assert_refused(
        again,
        Code::FailedPrecondition,
        ErrorCode::KeyNotPendingDeletion,
        "pending deletion",
    );
}

#[tokio::test]
async fn default_keys_are_service_keys_that_cannot_be_changed() {
    let d = TestDaemon::start().await;
    let mut t = d.tenant("alice").await;
    let m = t
        .client
        .get_default_key(t.req(pb::GetDefaultKeyRequest {
            service: "obs".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .metadata
        .unwrap();
    assert_eq!(m.alias, "obs/default");
    assert_eq!(m.creator, KeyCreator::Service as i32);
    assert_eq!(m.service, "obs");
    let id = m.key_id.clone();
    let r = t
        .client
        .disable_key(t.req(pb::DisableKeyRequest { key_id: id.clone() }))
        .await;
    assert_refused(
        r,
        Code::FailedPrecondition,
        ErrorCode::DefaultKeyImmutable,
        "default key",
    );
    let r = t
        .client
        .schedule_key_deletion(t.req(pb::ScheduleKeyDeletionRequest {
            key_id: id.clone(),
            pending_window_days: 7,
        }))
        .await;
    assert_refused(
        r,
        Code::FailedPrecondition,
        ErrorCode::DefaultKeyImmutable,
        "default key",
    );
    let r = t
        .client
        .rotate_key(t.req(pb::RotateKeyRequest { key_id: id.clone() }))
        .await;
    assert_refused(
        r,
        Code::FailedPrecondition,
        ErrorCode::DefaultKeyImmutable,
        "default key",
    );
    // Per region and per service: another region or service gets another key.
    let other_region = t.in_region("cn-north-4");
    let mut o = other_region.clone();
    let m2 = o
        .client
        .get_default_key(o.req(pb::GetDefaultKeyRequest {
            service: "obs".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .metadata
        .unwrap();
    assert_ne!(m2.key_uuid, m.key_uuid);
    assert_eq!(m2.region, "cn-north-4");
    let bad = t
        .client
        .get_default_key(t.req(pb::GetDefaultKeyRequest {
            service: "OBS!".into(),
        }))
        .await;
    assert_refused(
        bad,
        Code::InvalidArgument,
        ErrorCode::InvalidArgument,
        "service",
    );
}

#[tokio::test]
async fn two_hundred_concurrent_first_uses_create_exactly_one_default_key() {
    let mut d = TestDaemon::start().await;
    let t = d.tenant("racer").await;
    let calls = (0..200).map(|_| {
        let mut t = t.clone();
        async move {
            t.client
                .get_default_key(t.req(pb::GetDefaultKeyRequest {
                    service: "obs".into(),
                }))
                .await
                .map(|r| r.into_inner().metadata.unwrap().key_id)
        }
    });
    let ids: Vec<String> = futures::future::join_all(calls)
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    let first = ids[0].clone();
    assert!(
        ids.iter().all(|i| *i == first),
        "all 200 callers got one key"
    );
    d.restart().await;
    let mut t = d.tenant("racer").await;
    let after = t
        .client
        .get_default_key(t.req(pb::GetDefaultKeyRequest {
            service: "obs".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .metadata
        .unwrap();
    assert_eq!(after.key_id, first, "the same default key after a restart");
    let all = t
        .client
        .list_keys(t.req(pb::ListKeysRequest {
            page_size: 1000,
            page_token: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert_eq!(all.len(), 1, "exactly one key stored");
}

#[tokio::test]
async fn a_tenant_cannot_use_or_even_detect_another_tenants_key() {
    let d = TestDaemon::start().await;
    let mut alice = d.tenant("alice").await;
    let mut bob = d.tenant("bob").await;
    let k = create(&mut alice, "secret").await;
    let c = ctx(&[]);
    let blob = encrypt(&mut alice, &k.key_id, b"alice's", &c)
        .await
        .unwrap()
        .ciphertext_blob;
    let unknown_uuid = uuid::Uuid::new_v4().to_string();
    let unknown_full = format!("region:alice:key/{unknown_uuid}");

    // For each way of naming the key, bob's answer equals the answer for a key that does not exist.
    for (foreign, absent) in [
        (k.key_id.clone(), unknown_full.clone()),
        (k.key_uuid.clone(), unknown_uuid.clone()),
    ] {
        let f = bob.describe(&foreign).await.unwrap_err();
        let a = bob.describe(&absent).await.unwrap_err();
        assert_eq!(
            (f.code(), error_code(&f)),
            (Code::NotFound, Some(ErrorCode::KeyNotFound))
        );
        assert_eq!((a.code(), error_code(&a)), (f.code(), error_code(&f)));
        assert_eq!(
            f.message().replace(&foreign, "KEY"),
            a.message().replace(&absent, "KEY"),
            "messages differ only by the key named"
        );
        let e = encrypt(&mut bob, &foreign, b"x", &c).await.unwrap_err();
        assert_eq!(error_code(&e), Some(ErrorCode::KeyNotFound));
        let dis = bob
            .client
            .disable_key(bob.req(pb::DisableKeyRequest {
                key_id: foreign.clone(),
            }))
            .await;
        assert_eq!(error_code(&dis.unwrap_err()), Some(ErrorCode::KeyNotFound));
    }
    let r = decrypt(&mut bob, &blob, &c, "").await;
    assert_refused(r, Code::NotFound, ErrorCode::KeyNotFound, "not found");
    // Alice's key is untouched and she can still decrypt.
    assert_eq!(
        alice.describe(&k.key_id).await.unwrap().state,
        KeyState::Enabled as i32
    );
    assert_eq!(
        decrypt(&mut alice, &blob, &c, "").await.unwrap().plaintext,
        b"alice's"
    );
    // The same tenant in another region does not see it either.
    let mut elsewhere = alice.in_region("cn-north-4");
    assert_eq!(
        error_code(&elsewhere.describe(&k.key_uuid).await.unwrap_err()),
        Some(ErrorCode::KeyNotFound)
    );
    assert_eq!(
        error_code(&decrypt(&mut elsewhere, &blob, &c, "").await.unwrap_err()),
        Some(ErrorCode::KeyNotFound)
    );
}

#[tokio::test]
async fn malformed_key_ids_and_missing_tenancy_are_refused() {
    let d = TestDaemon::start().await;
    let t = d.tenant("alice").await;
    for bad in [
        "",
        "522d6070-5ad3-4765-43a7-a7d1-ab21f498482d",
        "region:alice:alias/x",
        "{4f1cd4de-ab64-4807-920a-47fc42e7f0d0}",
    ] {
        let r = t.describe(bad).await;
        assert_refused(
            r,
            Code::InvalidArgument,
            ErrorCode::MalformedKeyId,
            "malformed",
        );
    }
    let mut anon = Tenant::connect(&d.endpoint(), "", None, None).await;
    let r = anon
        .client
        .create_key(anon.req(pb::CreateKeyRequest::default()))
        .await;
    assert_refused(
        r,
        Code::Unauthenticated,
        ErrorCode::Unauthenticated,
        "x-kms-domain-id",
    );
}

#[tokio::test]
async fn keys_and_their_versions_survive_a_restart() {
    let mut d = TestDaemon::start().await;
    let mut t = d.tenant("alice").await;
    let k = create(&mut t, "durable").await;
    let c = ctx(&[("x", "y")]);
    let v1 = encrypt(&mut t, &k.key_id, b"before", &c).await.unwrap();
    t.client
        .rotate_key(t.req(pb::RotateKeyRequest {
            key_id: k.key_id.clone(),
        }))
        .await
        .unwrap();
    let v2 = encrypt(&mut t, &k.key_id, b"rotated", &c).await.unwrap();
    d.restart().await;
    let mut t = d.tenant("alice").await;
    let m = t.describe(&k.key_id).await.unwrap();
    assert_eq!((m.alias.as_str(), m.current_version), ("durable", 2));
    assert_eq!(
        decrypt(&mut t, &v1.ciphertext_blob, &c, "")
            .await
            .unwrap()
            .plaintext,
        b"before"
    );
    assert_eq!(
        decrypt(&mut t, &v2.ciphertext_blob, &c, "")
            .await
            .unwrap()
            .plaintext,
        b"rotated"
    );
}

#[tokio::test]
async fn bearer_tokens_decide_the_tenant() {
    let d = TestDaemon::start_with(|c, dir| {
        let p = dir.join("tenants.toml");
        std::fs::write(
            &p,
            "[[tenants]]\ndomain_id = \"alice\"\ntoken = \"alice-secret-token-1\"\n\
             [[tenants]]\ndomain_id = \"bob\"\ntoken = \"bob-secret-token-22\"\n",
        )
        .unwrap();
        c.tenants = Some(p);
    })
    .await;
    let ep = d.endpoint();
    let mut alice = Tenant::connect(&ep, "", None, Some("alice-secret-token-1")).await;
    let k = create(&mut alice, "").await;
    assert_eq!(k.domain_id, "alice");
    // Claiming another domain with alice's token is refused.
    let mut liar = Tenant::connect(&ep, "bob", None, Some("alice-secret-token-1")).await;
    let r = liar
        .client
        .create_key(liar.req(pb::CreateKeyRequest::default()))
        .await;
    assert_refused(
        r,
        Code::PermissionDenied,
        ErrorCode::PermissionDenied,
        "not the domain",
    );
    // No token, or a wrong one.
    let mut none = Tenant::connect(&ep, "alice", None, None).await;
    let r = none
        .client
        .describe_key(none.req(pb::DescribeKeyRequest {
            key_id: k.key_id.clone(),
        }))
        .await;
    assert_refused(
        r,
        Code::Unauthenticated,
        ErrorCode::Unauthenticated,
        "Bearer",
    );
    let mut wrong = Tenant::connect(&ep, "", None, Some("alice-secret-token-X")).await;
    let r = wrong
        .client
        .describe_key(wrong.req(pb::DescribeKeyRequest {
            key_id: k.key_id.clone(),
        }))
        .await;
    assert_refused(
        r,
        Code::Unauthenticated,
        ErrorCode::Unauthenticated,
        "unknown bearer token",
    );
    // Bob's token cannot reach alice's key.
    let bob = Tenant::connect(&ep, "", None, Some("bob-secret-token-22")).await;
    assert_eq!(
        error_code(&bob.describe(&k.key_id).await.unwrap_err()),
        Some(ErrorCode::KeyNotFound)
    );
}

#[tokio::test]
async fn without_tenants_file_the_daemon_refuses_non_loopback_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = kms_server::server::Config::local(dir.path());
    c.listen = "0.0.0.0:0".parse().unwrap();
    let e = kms_server::server::start(c).await.unwrap_err().to_string();
    assert!(e.contains("refusing to listen"), "{e}");
}

/// A call answers with the request ID its audit line names: the one the daemon made when the
/// caller gave none, the caller's own otherwise, on success and on refusal alike.
#[tokio::test]
async fn the_request_id_in_the_response_is_the_audit_lines() {
    use kms_proto::metadata::REQUEST_ID;
    let d = TestDaemon::start().await;
    let mut t = d.tenant("alice").await;
    let k = create(&mut t, "").await;
    let gdk = |t: &Tenant, key_id: &str, given: Option<&str>| {
        let mut r = t.req(pb::GenerateDataKeyRequest {
            key_id: key_id.into(),
            number_of_bytes: 32,
            encryption_context: HashMap::new(),
        });
        if let Some(id) = given {
            r.metadata_mut().insert(REQUEST_ID, id.parse().unwrap());
        }
        r
    };
    let answered = |md: &tonic::metadata::MetadataMap| {
        md.get(REQUEST_ID)
            .expect("the response names its request ID")
            .to_str()
            .unwrap()
            .to_owned()
    };
    let made = answered(
        t.client
            .generate_data_key(gdk(&t, &k.key_id, None))
            .await
            .unwrap()
            .metadata(),
    );
    let given = answered(
        t.client
            .generate_data_key(gdk(&t, &k.key_id, Some("caller-chosen-7")))
            .await
            .unwrap()
            .metadata(),
    );
    let missing = "00000000-0000-4000-8000-000000000000";
    let refused = answered(
        t.client
            .generate_data_key(gdk(&t, missing, None))
            .await
            .unwrap_err()
            .metadata(),
    );
    assert_eq!(given, "caller-chosen-7");
    assert_ne!(made, refused, "each call gets its own ID");
    d.server().flush_audit().await;
    let log = std::fs::read_to_string(d.data_dir().join("audit.jsonl")).unwrap();
    let rows: Vec<(String, String)> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["operation"] == "GenerateDataKey")
        .map(|r| {
            (
                r["request_id"].as_str().unwrap().to_owned(),
                r["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (made, "ok".to_owned()),
            (given, "ok".to_owned()),
            (refused, ErrorCode::KeyNotFound.as_str().to_owned()),
        ]
    );
}

#[tokio::test]
async fn every_call_is_audited_without_key_material() {
    let d = TestDaemon::start().await;
    let mut t = d.tenant("alice").await;
    let k = create(&mut t, "").await;
    let c = ctx(&[]);
    let e = encrypt(&mut t, &k.key_id, b"top secret plaintext", &c)
        .await
        .unwrap();
    let _ = decrypt(&mut t, &e.ciphertext_blob, &ctx(&[("wrong", "ctx")]), "").await;
    let _ = t.describe("malformed").await;
    d.server().flush_audit().await;
    let log = std::fs::read_to_string(d.data_dir().join("audit.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ops: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["domain"].as_str().unwrap(),
                r["operation"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            ("alice", "CreateKey", "ok"),
            ("alice", "Encrypt", "ok"),
            ("alice", "Decrypt", ErrorCode::CiphertextAuthFailed.as_str()),
            ("alice", "DescribeKey", ErrorCode::MalformedKeyId.as_str()),
        ]
    );
    assert_eq!(
        rows[1]["key_id"],
        k.key_id.as_str(),
        "the key is named in full"
    );
    assert_eq!(
        rows[3]["key_id"], "malformed",
        "a refused call records the key as the caller named it"
    );
    assert!(
        rows.iter()
            .all(|r| !r["request_id"].as_str().unwrap().is_empty()),
        "every entry has a request id"
    );
    assert!(
        rows.iter()
            .all(|r| r["time"].as_str().unwrap().ends_with('Z'))
    );
    assert!(
        !log.contains("top secret plaintext"),
        "no plaintext in the audit log"
    );
    let db = d.data_dir().join("kms.sqlite3");
    // Neither the plaintext nor any key material is in the database file.
    let raw = std::fs::read(&db).unwrap();
    let wal = std::fs::read(d.data_dir().join("kms.sqlite3-wal")).unwrap_or_default();
    let all: Vec<u8> = raw.into_iter().chain(wal).collect();
    let has = |needle: &[u8]| all.windows(needle.len()).any(|w| w == needle);
    assert!(
        !has(b"top secret plaintext"),
        "no plaintext in the database"
    );
    let root = std::fs::read(d.data_dir().join("root.key")).unwrap();
    assert!(!has(&root), "no root key in the database");
}

#[tokio::test]
async fn health_and_reflection_are_served_for_stock_grpc_tools() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let d = TestDaemon::start().await;
    let channel = tonic::transport::Endpoint::from_shared(d.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel.clone());
    let s = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "kms.v1.KeyManagementService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.status, ServingStatus::Serving as i32);

    let mut refl = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = refl
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("unexpected reflection answer {resp:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in [
        "kms.v1.KeyManagementService",
        "kms.admin.v1.Admin",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} not listed in {names:?}"
        );
    }
}

#[tokio::test]
async fn shutdown_writes_the_audit_log_out_and_stops_serving() {
    let mut d = TestDaemon::start().await;
    let endpoint = d.endpoint();
    let data = d.data_dir();
    let mut t = d.tenant("alice").await;
    let k = create(&mut t, "last").await;
    // No flush: shutdown itself waits for the audit writer.
    d.shut_down().await;
    let log = std::fs::read_to_string(data.join("audit.jsonl")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("CreateKey") && l.contains(&k.key_id)),
        "{log}"
    );
    let after = tonic::transport::Endpoint::from_shared(endpoint)
        .unwrap()
        .connect()
        .await;
    assert!(after.is_err(), "nothing listens after shutdown");
}

#[tokio::test]
async fn reflection_v1alpha_lists_the_services_for_older_clients() {
    // The Python grpcio-reflection client and older grpcurl speak only v1alpha.
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;

    let d = TestDaemon::start().await;
    let channel = tonic::transport::Endpoint::from_shared(d.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut refl = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = refl
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("unexpected reflection answer {resp:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in [
        "kms.v1.KeyManagementService",
        "kms.admin.v1.Admin",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} not listed in {names:?}"
        );
    }
    d.stop().await;
}

#[tokio::test]
async fn keys_past_their_deletion_date_are_purged_for_good() {
    let mut d = TestDaemon::start().await;
    let mut t = d.tenant("alice").await;
    let doomed = create(&mut t, "doomed").await;
    let kept = create(&mut t, "kept").await;
    t.client
        .schedule_key_deletion(t.req(pb::ScheduleKeyDeletionRequest {
            key_id: doomed.key_id.clone(),
            pending_window_days: 7,
        }))
        .await
        .unwrap();
    let svc = std::sync::Arc::clone(d.server().keyring());
    let now_ms = kms_server::keyring::now_ms();
    // Six days on: nothing is due yet.
    assert_eq!(svc.purge_expired(now_ms + 6 * 86_400_000).await.unwrap(), 0);
    assert!(t.describe(&doomed.key_id).await.is_ok());
    // Eight days on: the doomed key goes, the other stays.
    assert_eq!(svc.purge_expired(now_ms + 8 * 86_400_000).await.unwrap(), 1);
    assert_eq!(
        error_code(&t.describe(&doomed.key_id).await.unwrap_err()),
        Some(ErrorCode::KeyNotFound)
    );
    assert!(t.describe(&kept.key_id).await.is_ok());
    // And it stays gone after a restart; its alias is free again.
    d.restart().await;
    let mut t = d.tenant("alice").await;
    assert_eq!(
        error_code(&t.describe(&doomed.key_id).await.unwrap_err()),
        Some(ErrorCode::KeyNotFound)
    );
    create(&mut t, "doomed").await;
}

/// Nagle's algorithm on an accepted socket stalls concurrent calls on one HTTP/2 connection for a
/// delayed ACK (about 40 ms): every socket the daemon accepts has `TCP_NODELAY`, and keep-alive.
#[tokio::test]
async fn accepted_sockets_have_nodelay_and_keepalive() {
    use kmsbox_test_support::sockets::{TcpOptions, own_tcp_socket};
    let d = TestDaemon::start().await;
    let server = d.server().local_addr();
    let client = tokio::net::TcpStream::connect(server).await.unwrap();
    let peer = client.local_addr().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let accepted = loop {
        if let Some(options) = own_tcp_socket(server, peer) {
            break options;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon did not accept the connection within 5 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(
        accepted,
        TcpOptions {
            nodelay: true,
            keepalive: true
        }
    );
}

/// Answers that are ready together leave a connection together (the listener holds a write while
/// other requests on the connection are still being answered): 256 calls in flight on one
/// HTTP/2 connection, in waves, each get their own answer, and none waits on another's.
#[tokio::test]
async fn many_calls_in_flight_on_one_connection_each_get_their_own_answer() {
    let d = TestDaemon::start().await;
    let mut t = d.tenant("oneconnection").await;
    let key = create(&mut t, "batched").await.key_id;
    let none = HashMap::new();
    let all = async {
        for wave in 0u8..4 {
            let calls = (0u8..64).map(|i| {
                let mut t = t.clone();
                let (key, none) = (key.clone(), none.clone());
                async move {
                    let plaintext = [wave, i, 0xa5];
                    let blob = encrypt(&mut t, &key, &plaintext, &none)
                        .await
                        .expect("Encrypt")
                        .ciphertext_blob;
                    let back = decrypt(&mut t, &blob, &none, "").await.expect("Decrypt");
                    (plaintext, back.plaintext)
                }
            });
            for (sent, got) in futures::future::join_all(calls).await {
                assert_eq!(got, sent, "each call's answer is its own");
            }
        }
    };
    // A write held and never released would leave the calls waiting: bound the whole run.
    tokio::time::timeout(std::time::Duration::from_secs(30), all)
        .await
        .expect("256 calls on one connection answered within 30 s");
}

/// One port serves HTTP/1.1 beside gRPC: a path no API claims gets a plain 404 over HTTP/1.1,
/// an unknown gRPC method still gets `UNIMPLEMENTED`, and the connection keeps serving.
#[tokio::test]
async fn one_port_answers_http1_beside_grpc() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let d = TestDaemon::start().await;
    let addr = d.server().local_addr();

    let mut http1 = tokio::net::TcpStream::connect(addr).await.unwrap();
    for _ in 0..2 {
        http1
            .write_all(b"GET /no/such/api HTTP/1.1\r\nHost: kms\r\nContent-Length: 0\r\n\r\n")
            .await
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(http1.read(&mut byte).await.unwrap(), 1, "connection closed");
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 404"), "{head}");
        let len: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(str::to_owned)
            })
            .expect("a content-length")
            .parse()
            .unwrap();
        let mut body = vec![0u8; len];
        http1.read_exact(&mut body).await.unwrap();
        assert_eq!(body, b"no API at /no/such/api\n");
    }

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let status = grpc
        .unary::<(), (), _>(
            tonic::Request::new(()),
            http::uri::PathAndQuery::from_static("/kms.v9.Nothing/Call"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented, "{status:?}");
    let mut t = d.tenant("783fc6652cf246c096ea836694f71855").await;
    create(&mut t, "still-serving").await;
}

#[tokio::test]
async fn aliases_descriptions_rotation_schedules_and_random_bytes_over_grpc() {
    const DAY_S: i64 = 86_400;
    let d = TestDaemon::start().await;
    let mut t = d.tenant("alice").await;
    let m = create(&mut t, "before").await;
    create(&mut t, "taken").await;
    let id = m.key_id.clone();
    let renamed = t
        .client
        .update_key_alias(t.req(pb::UpdateKeyAliasRequest {
            key_id: id.clone(),
            alias: "after".into(),
        }))
        .await
        .expect("UpdateKeyAlias")
        .into_inner()
        .metadata
        .expect("metadata");
    assert_eq!(renamed.alias, "after");
    let taken = t
        .client
        .update_key_alias(t.req(pb::UpdateKeyAliasRequest {
            key_id: id.clone(),
            alias: "taken".into(),
        }))
        .await;
    assert_refused(taken, Code::AlreadyExists, ErrorCode::AliasExists, "taken");
    let described = t
        .client
        .update_key_description(t.req(pb::UpdateKeyDescriptionRequest {
            key_id: id.clone(),
            description: "new words".into(),
        }))
        .await
        .expect("UpdateKeyDescription")
        .into_inner()
        .metadata
        .expect("metadata");
    assert_eq!(described.description, "new words");
    assert_eq!(t.describe(&id).await.expect("describe").alias, "after");

    let status = |t: &mut Tenant| {
        let mut t = t.clone();
        let id = id.clone();
        async move {
            t.client
                .get_key_rotation_status(t.req(pb::GetKeyRotationStatusRequest { key_id: id }))
                .await
                .expect("GetKeyRotationStatus")
                .into_inner()
        }
    };
    let s = status(&mut t).await;
    assert_eq!(
        (
            s.rotation_enabled,
            s.rotation_interval_days,
            s.number_of_rotations
        ),
        (false, 365, 0)
    );
    assert!(s.last_rotation_time.is_none() && s.next_rotation_time.is_none());
    let on = t
        .client
        .enable_key_rotation(t.req(pb::EnableKeyRotationRequest { key_id: id.clone() }))
        .await
        .expect("EnableKeyRotation")
        .into_inner()
        .metadata
        .expect("metadata");
    let created = m.created_at.expect("created").seconds;
    let next = on.next_rotation_time.expect("scheduled").seconds;
    assert!(on.rotation_enabled);
    assert!(
        (next - created - 365 * DAY_S).abs() < 60,
        "365 days from now"
    );
    for days in [29, 366] {
        let r = t
            .client
            .update_key_rotation_interval(t.req(pb::UpdateKeyRotationIntervalRequest {
                key_id: id.clone(),
                rotation_interval_days: days,
            }))
            .await;
        assert_refused(
            r,
            Code::InvalidArgument,
            ErrorCode::InvalidRotationInterval,
            "rotation_interval",
        );
    }
    let every_30 = t
        .client
        .update_key_rotation_interval(t.req(pb::UpdateKeyRotationIntervalRequest {
            key_id: id.clone(),
            rotation_interval_days: 30,
        }))
        .await
        .expect("UpdateKeyRotationInterval")
        .into_inner()
        .metadata
        .expect("metadata");
    let next = every_30.next_rotation_time.expect("scheduled").seconds;
    assert!((next - created - 30 * DAY_S).abs() < 60, "30 days from now");
    t.client
        .rotate_key(t.req(pb::RotateKeyRequest { key_id: id.clone() }))
        .await
        .expect("RotateKey");
    let s = status(&mut t).await;
    assert_eq!((s.number_of_rotations, s.rotation_interval_days), (1, 30));
    assert!(s.last_rotation_time.is_some());
    let off = t
        .client
        .disable_key_rotation(t.req(pb::DisableKeyRotationRequest { key_id: id.clone() }))
        .await
        .expect("DisableKeyRotation")
        .into_inner()
        .metadata
        .expect("metadata");
    assert!(!off.rotation_enabled && off.next_rotation_time.is_none());
    assert_eq!(off.rotation_interval_days, 30, "the interval is kept");

    let default = t
        .client
        .get_default_key(t.req(pb::GetDefaultKeyRequest {
            service: "obs".into(),
        }))
        .await
        .expect("GetDefaultKey")
        .into_inner()
        .metadata
        .expect("metadata");
    let r = t
        .client
        .enable_key_rotation(t.req(pb::EnableKeyRotationRequest {
            key_id: default.key_id,
        }))
        .await;
    assert_refused(
        r,
        Code::FailedPrecondition,
        ErrorCode::DefaultKeyImmutable,
        "default key",
    );
    let mut bob = d.tenant("bob").await;
    let r = bob
        .client
        .update_key_alias(bob.req(pb::UpdateKeyAliasRequest {
            key_id: m.key_uuid.clone(),
            alias: "mine".into(),
        }))
        .await;
    assert_refused(r, Code::NotFound, ErrorCode::KeyNotFound, "not found");

    let random = |n: u32| {
        let mut t = t.clone();
        async move {
            t.client
                .generate_random(t.req(pb::GenerateRandomRequest { number_of_bytes: n }))
                .await
                .map(|r| r.into_inner().random)
        }
    };
    let (a, b) = (random(32).await.expect("32"), random(32).await.expect("32"));
    assert_eq!((a.len(), b.len()), (32, 32));
    assert_ne!(a, b, "fresh each time");
    for n in [0, 1025] {
        assert_refused(
            random(n).await,
            Code::InvalidArgument,
            ErrorCode::InvalidRandomLength,
            "number_of_bytes",
        );
    }
}

/// The daemon's own tick rotates a key whose scheduled rotation time has passed: the test moves
/// the key 31 days back in its store (no waiting for a month), restarts the daemon, and watches
/// the rotation happen, audited, with the old blob still decrypting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_past_its_scheduled_rotation_time_is_rotated_by_the_daemon() {
    let d = TestDaemon::start_with(|c, _| {
        c.clock = kms_server::server::ClockConfig::Virtual { start_ms: None };
    })
    .await;
    let advance = async |days: i64| d.advance_clock_days(days).await.rotated_keys;
    let mut t = d.tenant("alice").await;
    let m = create(&mut t, "scheduled").await;
    let old = encrypt(&mut t, &m.key_id, b"before", &ctx(&[]))
        .await
        .expect("Encrypt");
    t.client
        .update_key_rotation_interval(t.req(pb::UpdateKeyRotationIntervalRequest {
            key_id: m.key_id.clone(),
            rotation_interval_days: 30,
        }))
        .await
        .expect("interval");
    t.client
        .enable_key_rotation(t.req(pb::EnableKeyRotationRequest {
            key_id: m.key_id.clone(),
        }))
        .await
        .expect("EnableKeyRotation");
    assert_eq!(advance(29).await, 0, "not due for 30 days");
    assert_eq!(
        t.describe(&m.key_id)
            .await
            .expect("describe")
            .current_version,
        1,
        "not due for 30 days"
    );
    // The rotation runs before the clock's move returns.
    assert_eq!(advance(2).await, 1, "due after 30 days");
    let rotated = t.describe(&m.key_id).await.expect("describe");
    assert_eq!(rotated.current_version, 2, "rotated by the daemon");
    assert!(rotated.rotation_enabled, "still scheduled");
    let opened = decrypt(&mut t, &old.ciphertext_blob, &ctx(&[]), "")
        .await
        .expect("the old blob decrypts");
    assert_eq!(
        (opened.plaintext.as_slice(), opened.key_version),
        (&b"before"[..], 1)
    );
    let log = std::fs::read_to_string(d.data_dir().join("audit.jsonl")).expect("audit log");
    assert!(
        log.lines().any(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
            v["operation"] == "RotateKey"
                && v["request_id"] == "scheduled-rotation"
                && v["key_id"] == m.key_id.as_str()
        }),
        "the scheduled rotation is audited:\n{log}"
    );
    let fresh = encrypt(&mut t, &m.key_id, b"after", &ctx(&[]))
        .await
        .expect("Encrypt");
    assert_eq!(fresh.key_version, 2, "new blobs use the new version");
}

/// Huawei KMS's own codes where Huawei defines the refusal, on gRPC as on the REST API: each case
/// is the call that triggers it, its gRPC code and its Huawei code.
#[tokio::test]
async fn refusals_huawei_defines_carry_huaweis_codes() {
    let d = TestDaemon::start().await;
    let mut t = d.tenant("alice").await;
    let id = create(&mut t, "huawei-codes").await.key_id;
    let pending = create(&mut t, "huawei-pending").await.key_id;
    t.client
        .schedule_key_deletion(t.req(pb::ScheduleKeyDeletionRequest {
            key_id: pending.clone(),
            pending_window_days: 7,
        }))
        .await
        .expect("scheduled");

    let bad_alias = t
        .client
        .create_key(t.req(pb::CreateKeyRequest {
            alias: "a//b".into(),
            description: String::new(),
        }))
        .await
        .map(|_| ());
    let long_description = t
        .client
        .create_key(t.req(pb::CreateKeyRequest {
            alias: "long-words".into(),
            description: "d".repeat(256),
        }))
        .await
        .map(|_| ());
    let twice = t
        .client
        .schedule_key_deletion(t.req(pb::ScheduleKeyDeletionRequest {
            key_id: pending.clone(),
            pending_window_days: 7,
        }))
        .await
        .map(|_| ());
    let not_pending = t
        .client
        .cancel_key_deletion(t.req(pb::CancelKeyDeletionRequest { key_id: id.clone() }))
        .await
        .map(|_| ());
    let enabled_again = t
        .client
        .enable_key(t.req(pb::EnableKeyRequest { key_id: id.clone() }))
        .await
        .map(|_| ());
    let without_plaintext = t
        .client
        .generate_data_key_without_plaintext(t.req(pb::GenerateDataKeyRequest {
            key_id: id.clone(),
            number_of_bytes: 1025,
            encryption_context: HashMap::new(),
        }))
        .await
        .map(|_| ());
    let mut elsewhere = Tenant::connect(&d.endpoint(), "alice", Some("Not A Region"), None).await;
    let bad_region = elsewhere
        .client
        .list_keys(elsewhere.req(pb::ListKeysRequest::default()))
        .await
        .map(|_| ());

    // (rule, result, gRPC code, Huawei code, a word of the message)
    let cases = [
        (
            "an alias outside the grammar",
            bad_alias,
            Code::InvalidArgument,
            ErrorCode::InvalidKeyAlias,
            "alias",
        ),
        (
            "a description over 255 characters",
            long_description,
            Code::InvalidArgument,
            ErrorCode::InvalidKeyDescription,
            "description",
        ),
        (
            "a deletion scheduled twice",
            twice,
            Code::FailedPrecondition,
            ErrorCode::KeyAlreadyPendingDeletion,
            "already pending deletion",
        ),
        (
            "cancelling a deletion never scheduled",
            not_pending,
            Code::FailedPrecondition,
            ErrorCode::KeyNotPendingDeletion,
            "pending deletion",
        ),
        (
            "enabling a key that is not disabled",
            enabled_again,
            Code::FailedPrecondition,
            ErrorCode::KeyNotDisabled,
            "not disabled",
        ),
        (
            "a data key over 1024 bytes without plaintext",
            without_plaintext,
            Code::InvalidArgument,
            ErrorCode::InvalidDatakeyLengthWithoutPlaintext,
            "number_of_bytes",
        ),
        (
            "a region outside the grammar",
            bad_region,
            Code::InvalidArgument,
            ErrorCode::InvalidRealm,
            "region",
        ),
    ];
    for (rule, r, grpc, code, needle) in cases {
        let s = r.expect_err(rule);
        assert_eq!(
            (s.code(), error_code(&s)),
            (grpc, Some(code)),
            "{rule}: {}",
            s.message()
        );
        assert!(s.message().contains(needle), "{rule}: {}", s.message());
    }
    // Nothing was stored: the two keys made above, the pending one still pending.
    let listed = t
        .client
        .list_keys(t.req(pb::ListKeysRequest::default()))
        .await
        .expect("lists")
        .into_inner()
        .keys;
    assert_eq!(listed.len(), 2);
    assert_eq!(
        t.describe(&pending).await.expect("described").state,
        KeyState::PendingDeletion as i32
    );
}

/// README's error table has a row for every code of the one table, and no other code.
#[test]
fn the_readme_error_table_lists_every_code() {
    let readme = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .join("README.md");
    let text = std::fs::read_to_string(readme).expect("README.md");
    let rows: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(code, _)| code))
        .filter(|c| c.starts_with("KMS.") || c.starts_with("KMSBOX."))
        .collect();
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(rows, codes, "README rows in table order");
}
