//! The keyring's rules on an in-memory store: no SQLite, no gRPC.

use std::sync::Arc;

use kms_proto::ErrorCode;
use kms_proto::key_id::{DomainId, RegionId};

use super::*;
use crate::crypto::RootKey;
use crate::store::{KeyPolicy, KeyState, MemoryStore};

fn caller(domain: &str, region: &str) -> Caller {
    Caller {
        domain: DomainId::parse(domain).unwrap(),
        region: RegionId::parse(region).unwrap(),
    }
}

fn alice() -> Caller {
    caller("alice", "r1")
}

fn keyring() -> (Arc<MemoryStore>, Keyring) {
    let store = Arc::new(MemoryStore::new());
    let k = Keyring::open(store.clone(), RootKey::from_bytes([7; 32])).unwrap();
    (store, k)
}

fn ctx(pairs: &[(&str, &str)]) -> Context {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The code of a result: `None` for success.
fn code<T>(r: &Result<T>) -> Option<ErrorCode> {
    r.as_ref().err().map(KmsError::code)
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Enable,
    Disable,
    ScheduleDeletion,
    CancelDeletion,
    Rotate,
}

async fn apply(k: &Keyring, c: &Caller, id: &str, op: Op) -> Result<Arc<KeyRecord>> {
    match op {
        Op::Enable => k.enable(c, id).await,
        Op::Disable => k.disable(c, id).await,
        Op::ScheduleDeletion => k.schedule_deletion(c, id, 7).await,
        Op::CancelDeletion => k.cancel_deletion(c, id).await,
        Op::Rotate => k.rotate(c, id).await,
    }
}

/// A fresh customer key of alice's, brought to `state`.
async fn key_in(k: &Keyring, state: KeyState) -> String {
    let id = k
        .create_key(&alice(), "", "")
        .await
        .unwrap()
        .full_id()
        .to_string();
    match state {
        KeyState::Enabled => {}
        KeyState::Disabled => {
            k.disable(&alice(), &id).await.unwrap();
        }
        KeyState::PendingDeletion => {
            k.schedule_deletion(&alice(), &id, 7).await.unwrap();
        }
    }
    id
}

#[tokio::test]
async fn state_transitions_follow_the_key_lifecycle() {
    use ErrorCode as E;
    use KeyState::{Disabled, Enabled, PendingDeletion as Pending};
    // (rule, from, op, the state after, or the refusal)
    let cases: &[(&str, KeyState, Op, Result<KeyState, ErrorCode>)] = &[
        (
            "only a disabled key can be enabled (Huawei's KMS.1201)",
            Enabled,
            Op::Enable,
            Err(E::KeyNotDisabled),
        ),
        (
            "a disabled key can be enabled",
            Disabled,
            Op::Enable,
            Ok(Enabled),
        ),
        (
            "a key pending deletion cannot be enabled",
            Pending,
            Op::Enable,
            Err(E::KeyPendingDeletion),
        ),
        (
            "an enabled key can be disabled",
            Enabled,
            Op::Disable,
            Ok(Disabled),
        ),
        (
            "only an enabled key can be disabled (Huawei's KMS.1301)",
            Disabled,
            Op::Disable,
            Err(E::KeyNotEnabled),
        ),
        (
            "a key pending deletion cannot be disabled",
            Pending,
            Op::Disable,
            Err(E::KeyPendingDeletion),
        ),
        (
            "an enabled key can be scheduled for deletion",
            Enabled,
            Op::ScheduleDeletion,
            Ok(Pending),
        ),
        (
            "a disabled key can be scheduled for deletion",
            Disabled,
            Op::ScheduleDeletion,
            Ok(Pending),
        ),
        (
            "a deletion cannot be scheduled twice",
            Pending,
            Op::ScheduleDeletion,
            Err(E::KeyAlreadyPendingDeletion),
        ),
        (
            "only a pending deletion can be cancelled (enabled)",
            Enabled,
            Op::CancelDeletion,
            Err(E::KeyNotPendingDeletion),
        ),
        (
            "only a pending deletion can be cancelled (disabled)",
            Disabled,
            Op::CancelDeletion,
            Err(E::KeyNotPendingDeletion),
        ),
        (
            "a cancelled deletion leaves the key disabled",
            Pending,
            Op::CancelDeletion,
            Ok(Disabled),
        ),
        (
            "an enabled key can be rotated",
            Enabled,
            Op::Rotate,
            Ok(Enabled),
        ),
        (
            "a disabled key cannot be rotated",
            Disabled,
            Op::Rotate,
            Err(E::KeyDisabled),
        ),
        (
            "a key pending deletion cannot be rotated",
            Pending,
            Op::Rotate,
            Err(E::KeyPendingDeletion),
        ),
    ];
    let (store, k) = keyring();
    for &(rule, from, op, want) in cases {
        let id = key_in(&k, from).await;
        let got = apply(&k, &alice(), &id, op).await;
        match want {
            Ok(state) => {
                let rec = got.unwrap_or_else(|e| panic!("{rule}: {e}"));
                assert_eq!(rec.state, state, "{rule}");
                assert_eq!(
                    rec.deletion_date_ms.is_some(),
                    state == Pending,
                    "{rule}: a deletion date exactly when pending deletion"
                );
                // What the caller was told is what is stored.
                let stored = store.get(rec.uuid).unwrap();
                assert_eq!(stored, *rec, "{rule}: the store agrees");
            }
            Err(want) => assert_eq!(code(&got), Some(want), "{rule}"),
        }
        // A refused change leaves the key as it was.
        if want.is_err() {
            let rec = k.find(&alice(), &id).unwrap();
            assert_eq!(rec.state, from, "{rule}: unchanged");
        }
    }
}

#[tokio::test]
async fn rotation_adds_a_version_and_keeps_old_blobs_readable() {
    let (store, k) = keyring();
    let id = key_in(&k, KeyState::Enabled).await;
    let c = ctx(&[("a", "b")]);
    let old = k.encrypt(&alice(), &id, b"v1", &c).unwrap();
    let rec = k.rotate(&alice(), &id).await.unwrap();
    assert_eq!((rec.current_version, rec.versions.len()), (2, 2));
    assert_eq!(store.get(rec.uuid).unwrap().current_version, 2);
    let new = k.encrypt(&alice(), &id, b"v2", &c).unwrap();
    assert_eq!((old.version, new.version), (1, 2));
    let back = k.decrypt(&alice(), &old.blob, &c, "").unwrap();
    assert_eq!((&back.plaintext[..], back.version), (&b"v1"[..], 1));
}

#[tokio::test]
async fn only_an_enabled_key_serves_the_data_path() {
    let (_, k) = keyring();
    let c = ctx(&[]);
    // (rule, state, expected refusal of encrypt, data key and decrypt)
    let cases = [
        ("an enabled key serves", KeyState::Enabled, None),
        (
            "a disabled key refuses",
            KeyState::Disabled,
            Some(ErrorCode::KeyDisabled),
        ),
        (
            "a key pending deletion refuses",
            KeyState::PendingDeletion,
            Some(ErrorCode::KeyPendingDeletion),
        ),
    ];
    for (rule, state, want) in cases {
        let id = key_in(&k, KeyState::Enabled).await;
        let blob = k.encrypt(&alice(), &id, b"x", &c).unwrap().blob;
        match state {
            KeyState::Enabled => {}
            KeyState::Disabled => drop(k.disable(&alice(), &id).await.unwrap()),
            KeyState::PendingDeletion => {
                drop(k.schedule_deletion(&alice(), &id, 7).await.unwrap());
            }
        }
        assert_eq!(
            code(&k.encrypt(&alice(), &id, b"x", &c)),
            want,
            "{rule}: encrypt"
        );
        assert_eq!(
            code(&k.generate_data_key(&alice(), &id, 0, &c)),
            want,
            "{rule}: data key"
        );
        assert_eq!(
            code(&k.decrypt(&alice(), &blob, &c, "")),
            want,
            "{rule}: decrypt"
        );
    }
}

#[tokio::test]
async fn default_keys_cannot_be_disabled_deleted_or_rotated() {
    let (_, k) = keyring();
    let d = k.default_key(&alice(), "obs").await.unwrap();
    let id = d.full_id().to_string();
    for op in [Op::Disable, Op::ScheduleDeletion, Op::Rotate] {
        let r = apply(&k, &alice(), &id, op).await;
        assert_eq!(code(&r), Some(ErrorCode::DefaultKeyImmutable), "{op:?}");
    }
    // Enabling an enabled default key is refused as for any enabled key, not as a default key's.
    assert_eq!(
        code(&apply(&k, &alice(), &id, Op::Enable).await),
        Some(ErrorCode::KeyNotDisabled)
    );
    assert_eq!(
        code(&apply(&k, &alice(), &id, Op::CancelDeletion).await),
        Some(ErrorCode::KeyNotPendingDeletion)
    );
}

#[tokio::test]
async fn one_default_key_per_domain_region_and_service() {
    let (_, k) = keyring();
    let first = k.default_key(&alice(), "obs").await.unwrap();
    // (rule, caller, service, same key as the first)
    let cases = [
        ("the same slot gets the same key", alice(), "obs", true),
        ("another service gets another key", alice(), "evs", false),
        (
            "another region gets another key",
            caller("alice", "r2"),
            "obs",
            false,
        ),
        (
            "another domain gets another key",
            caller("bob", "r1"),
            "obs",
            false,
        ),
    ];
    for (rule, c, service, same) in cases {
        let got = k.default_key(&c, service).await.unwrap();
        assert_eq!(got.uuid == first.uuid, same, "{rule}");
        assert_eq!(got.alias, format!("{service}/default"), "{rule}");
    }
    // The cached slot answers again.
    let again = k.default_key(&alice(), "obs").await.unwrap();
    assert_eq!(again.uuid, first.uuid);
    assert_eq!(
        code(&k.default_key(&alice(), "OBS").await),
        Some(ErrorCode::InvalidArgument)
    );
}

#[tokio::test]
async fn default_key_survives_a_reopen_of_the_store() {
    let store = Arc::new(MemoryStore::new());
    let k = Keyring::open(store.clone(), RootKey::from_bytes([7; 32])).unwrap();
    let first = k.default_key(&alice(), "obs").await.unwrap();
    drop(k);
    let k = Keyring::open(store, RootKey::from_bytes([7; 32])).unwrap();
    assert_eq!(
        k.default_key(&alice(), "obs").await.unwrap().uuid,
        first.uuid
    );
}

#[tokio::test]
async fn another_tenants_or_regions_key_is_not_found() {
    let (_, k) = keyring();
    let rec = k.create_key(&alice(), "mine", "").await.unwrap();
    let full = rec.full_id().to_string();
    let bare = rec.uuid.to_string();
    let c = ctx(&[]);
    let blob = k.encrypt(&alice(), &full, b"x", &c).unwrap().blob;
    // (rule, caller, found)
    let cases = [
        ("the owner finds it", alice(), true),
        ("another domain does not", caller("bob", "r1"), false),
        (
            "another region of the same domain does not",
            caller("alice", "r2"),
            false,
        ),
    ];
    for (rule, who, found) in cases {
        for id in [&full, &bare] {
            let want = if found {
                None
            } else {
                Some(ErrorCode::KeyNotFound)
            };
            assert_eq!(code(&k.find(&who, id)), want, "{rule}: find {id}");
            assert_eq!(
                code(&k.disable(&who, id).await),
                want,
                "{rule}: disable {id}"
            );
            // Enabled again where the disable took; where it was refused, still enabled.
            let again = k.enable(&alice(), &full).await;
            if want.is_none() {
                drop(again.unwrap());
            } else {
                assert_eq!(code(&again), Some(ErrorCode::KeyNotDisabled));
            }
        }
        let want = if found {
            None
        } else {
            Some(ErrorCode::KeyNotFound)
        };
        assert_eq!(
            code(&k.decrypt(&who, &blob, &c, "")),
            want,
            "{rule}: decrypt"
        );
    }
}

#[tokio::test]
async fn aliases_are_unique_per_domain_and_region() {
    let (_, k) = keyring();
    k.create_key(&alice(), "app", "").await.unwrap();
    // (rule, caller, alias, expected refusal)
    let cases = [
        (
            "the same alias twice is refused",
            alice(),
            "app",
            Some(ErrorCode::AliasExists),
        ),
        (
            "another domain may use it",
            caller("bob", "r1"),
            "app",
            None,
        ),
        (
            "another region may use it",
            caller("alice", "r2"),
            "app",
            None,
        ),
        ("empty aliases never collide", alice(), "", None),
        ("empty aliases never collide (again)", alice(), "", None),
        (
            "/default is reserved",
            alice(),
            "x/default",
            Some(ErrorCode::InvalidKeyAlias),
        ),
    ];
    for (rule, c, alias, want) in cases {
        assert_eq!(code(&k.create_key(&c, alias, "").await), want, "{rule}");
    }
}

#[tokio::test]
async fn a_failed_store_write_changes_nothing() {
    let (store, k) = keyring();
    let id = key_in(&k, KeyState::Enabled).await;
    store.fail_writes(true);
    for op in [Op::Disable, Op::ScheduleDeletion, Op::Rotate] {
        let r = apply(&k, &alice(), &id, op).await;
        assert_eq!(code(&r), Some(ErrorCode::Internal), "{op:?}");
        let rec = k.find(&alice(), &id).unwrap();
        assert_eq!(
            (rec.state, rec.current_version),
            (KeyState::Enabled, 1),
            "{op:?}"
        );
    }
    let before = k.key_count();
    assert_eq!(
        code(&k.create_key(&alice(), "new", "").await),
        Some(ErrorCode::Internal)
    );
    assert_eq!(
        code(&k.default_key(&alice(), "obs").await),
        Some(ErrorCode::Internal)
    );
    assert_eq!(k.key_count(), before, "nothing cached that is not stored");
    store.fail_writes(false);
    k.create_key(&alice(), "new", "").await.unwrap();
}

#[tokio::test]
async fn purge_deletes_only_keys_past_their_deletion_date() {
    let (store, k) = keyring();
    let doomed = key_in(&k, KeyState::PendingDeletion).await;
    let kept = key_in(&k, KeyState::Disabled).await;
    let now = now_ms();
    // (rule, days on, purged)
    for (rule, days, purged) in [
        ("nothing is due before the window ends", 6, 0),
        ("the key goes once the window has passed", 8, 1),
        ("and only once", 9, 0),
    ] {
        let n = k.purge_expired(now + days * 86_400_000).await.unwrap();
        assert_eq!(n, purged, "{rule}");
    }
    let gone = k.find(&alice(), &doomed);
    assert_eq!(code(&gone), Some(ErrorCode::KeyNotFound));
    assert!(k.find(&alice(), &kept).is_ok());
    assert_eq!(
        store.load_all().unwrap().len(),
        1,
        "deleted from the store too"
    );
}

#[tokio::test]
async fn list_pages_through_the_callers_keys_oldest_first() {
    let (_, k) = keyring();
    let mut made = Vec::new();
    for i in 0..5 {
        made.push(
            k.create_key(&alice(), &format!("k{i}"), "")
                .await
                .unwrap()
                .uuid,
        );
    }
    k.create_key(&caller("bob", "r1"), "", "").await.unwrap();
    k.create_key(&caller("alice", "r2"), "", "").await.unwrap();
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = k.list(&alice(), 2, &token).unwrap();
        assert!(page.keys.len() <= 2);
        seen.extend(page.keys.iter().map(|r| r.uuid));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    // Keys made in the same millisecond are ordered by UUID.
    let mut want = made.clone();
    want.sort_by_key(|u| (k.find(&alice(), &u.to_string()).unwrap().created_at_ms, *u));
    assert_eq!(seen, want);
    assert_eq!(
        code(&k.list(&alice(), 1001, "")),
        Some(ErrorCode::InvalidLimit)
    );
    assert_eq!(
        code(&k.list(&alice(), 0, "garbage")),
        Some(ErrorCode::InvalidMarker)
    );
}

#[tokio::test]
async fn decrypt_binds_the_context_and_checks_the_named_key() {
    let (_, k) = keyring();
    let id = key_in(&k, KeyState::Enabled).await;
    let other = key_in(&k, KeyState::Enabled).await;
    let c = ctx(&[("bucket", "b1")]);
    let blob = k.encrypt(&alice(), &id, b"secret", &c).unwrap().blob;
    // (rule, context, key_id, expected refusal)
    let cases = [
        ("the same context opens it", c.clone(), "", None),
        ("the named key may be given", c.clone(), id.as_str(), None),
        (
            "another context fails authentication",
            ctx(&[("bucket", "b2")]),
            "",
            Some(ErrorCode::CiphertextAuthFailed),
        ),
        (
            "another key named is a mismatch",
            c.clone(),
            other.as_str(),
            Some(ErrorCode::KeyIdMismatch),
        ),
        (
            "a malformed key named is refused",
            c.clone(),
            "nope",
            Some(ErrorCode::MalformedKeyId),
        ),
    ];
    for (rule, context, key_id, want) in cases {
        assert_eq!(
            code(&k.decrypt(&alice(), &blob, &context, key_id)),
            want,
            "{rule}"
        );
    }
    let moved = k
        .re_encrypt(&alice(), &blob, &c, "", &other, &ctx(&[]))
        .unwrap();
    assert_eq!(moved.source_key.full_id().to_string(), id);
    assert_eq!(moved.encrypted.key.full_id().to_string(), other);
    let back = k
        .decrypt(&alice(), &moved.encrypted.blob, &ctx(&[]), &other)
        .unwrap();
    assert_eq!(&back.plaintext[..], b"secret");
}

/// The nonce counter of a key's current version.
fn counter_of(k: &Keyring, id: &str) -> Arc<super::versions::VersionState> {
    let rec = k.find(&alice(), id).unwrap();
    k.version_state(&rec, rec.current_version).unwrap()
}

/// The reservation the store holds for a key's current version.
fn stored_reservation(store: &MemoryStore, k: &Keyring, id: &str) -> u64 {
    let rec = k.find(&alice(), id).unwrap();
    store
        .get(rec.uuid)
        .unwrap()
        .version(rec.current_version)
        .unwrap()
        .nonces_reserved
}

/// Raises the store's count of a key's current version by `n`, as other daemons' grants would.
fn others_take(store: &dyn crate::store::KeyStore, k: &Keyring, id: &str, n: u64) {
    let rec = k.find(&alice(), id).unwrap();
    store
        .reserve_nonces(rec.uuid, rec.current_version, n, nonces::NONCE_LIMIT)
        .unwrap();
}

#[tokio::test]
async fn a_nonce_block_is_granted_by_the_store_before_its_first_nonce_and_a_restart_takes_a_new_one()
 {
    use nonces::NONCE_BLOCK;
    let (store, k) = keyring();
    let id = key_in(&k, KeyState::Enabled).await;
    let none = Context::new();
    assert_eq!(stored_reservation(&store, &k, &id), 0);
    k.encrypt(&alice(), &id, b"x", &none).unwrap();
    assert_eq!(stored_reservation(&store, &k, &id), NONCE_BLOCK);
    let c = counter_of(&k, &id);
    assert_eq!((c.nonces.sealed(), c.nonces.granted()), (1, NONCE_BLOCK));
    assert_eq!(c.nonces.fleet(), NONCE_BLOCK);

    // The last nonce of a grant needs no store write.
    c.nonces.set_sealed_for_test(NONCE_BLOCK - 1);
    store.fail_writes(true);
    k.encrypt(&alice(), &id, b"x", &none).unwrap();
    assert_eq!(c.nonces.sealed(), NONCE_BLOCK);
    // The first past the grant is not used while no new grant can be had.
    let e = k.encrypt(&alice(), &id, b"x", &none);
    assert_eq!(code(&e), Some(ErrorCode::Internal));
    assert_eq!(stored_reservation(&store, &k, &id), NONCE_BLOCK);
    assert_eq!(c.nonces.granted(), NONCE_BLOCK);
    store.fail_writes(false);
    k.generate_data_key(&alice(), &id, 32, &none).unwrap();
    assert_eq!(stored_reservation(&store, &k, &id), 2 * NONCE_BLOCK);
    assert_eq!(c.nonces.sealed(), NONCE_BLOCK + 2);
    assert_eq!(c.nonces.granted(), 2 * NONCE_BLOCK);

    // A restart starts with nothing granted and takes a new block: what was left of the old
    // grant is wasted (over-counted), never used again.
    let k2 = Keyring::open(store.clone(), RootKey::from_bytes([7; 32])).unwrap();
    let c2 = counter_of(&k2, &id);
    assert_eq!((c2.nonces.sealed(), c2.nonces.granted()), (0, 0));
    k2.encrypt(&alice(), &id, b"x", &none).unwrap();
    assert_eq!((c2.nonces.sealed(), c2.nonces.granted()), (1, NONCE_BLOCK));
    assert_eq!(stored_reservation(&store, &k2, &id), 3 * NONCE_BLOCK);
    assert_eq!(c2.nonces.fleet(), 3 * NONCE_BLOCK);
}

#[tokio::test]
async fn two_keyrings_on_one_store_share_one_limit_per_version() {
    use nonces::{NONCE_BLOCK, NONCE_LIMIT};
    let (store, a) = keyring();
    let id = key_in(&a, KeyState::Enabled).await;
    let b = Keyring::open(store.clone(), RootKey::from_bytes([7; 32])).unwrap();
    let none = Context::new();
    a.encrypt(&alice(), &id, b"x", &none).unwrap();
    b.encrypt(&alice(), &id, b"x", &none).unwrap();
    // Each was granted a block of its own: the store's count is the sum, not the highest.
    assert_eq!(stored_reservation(&store, &a, &id), 2 * NONCE_BLOCK);
    let (ca, cb) = (counter_of(&a, &id), counter_of(&b, &id));
    assert_eq!(
        (ca.nonces.granted(), cb.nonces.granted()),
        (NONCE_BLOCK, NONCE_BLOCK)
    );
    assert_eq!(
        (ca.nonces.fleet(), cb.nonces.fleet()),
        (NONCE_BLOCK, 2 * NONCE_BLOCK)
    );

    // Others took all but one block: the first to ask gets it, the second is refused.
    others_take(&*store, &a, &id, NONCE_LIMIT - 3 * NONCE_BLOCK);
    ca.nonces.set_sealed_for_test(NONCE_BLOCK);
    cb.nonces.set_sealed_for_test(NONCE_BLOCK);
    a.encrypt(&alice(), &id, b"x", &none).unwrap();
    assert_eq!(stored_reservation(&store, &a, &id), NONCE_LIMIT);
    let e = b.encrypt(&alice(), &id, b"x", &none);
    assert_eq!(code(&e), Some(ErrorCode::WrongKeyState));
    assert_eq!(stored_reservation(&store, &a, &id), NONCE_LIMIT);
    // The one that holds the last block seals until it is used up.
    a.generate_data_key(&alice(), &id, 32, &none).unwrap();
    ca.nonces.set_sealed_for_test(2 * NONCE_BLOCK);
    let e = a.encrypt(&alice(), &id, b"x", &none);
    assert_eq!(code(&e), Some(ErrorCode::WrongKeyState));
}

#[tokio::test]
async fn a_version_past_2_pow_31_blobs_is_warned_about() {
    use nonces::{NONCE_BLOCK, NONCE_WARN};
    let (store, k) = keyring();
    let id = key_in(&k, KeyState::Enabled).await;
    let none = Context::new();
    others_take(&*store, &k, &id, NONCE_WARN - NONCE_BLOCK);
    let c = counter_of(&k, &id);
    k.encrypt(&alice(), &id, b"x", &none).unwrap();
    assert_eq!(c.nonces.fleet(), NONCE_WARN);
    assert!(
        !c.nonces.warned(),
        "2^31 nonces granted is not past the warning"
    );
    c.nonces.set_sealed_for_test(NONCE_BLOCK);
    k.encrypt(&alice(), &id, b"x", &none).unwrap();
    assert!(c.nonces.warned(), "a grant past 2^31 warns");
    assert_eq!(
        stored_reservation(&store, &k, &id),
        NONCE_WARN + NONCE_BLOCK
    );
}

#[tokio::test]
async fn a_version_that_sealed_2_pow_32_blobs_refuses_to_seal_but_still_decrypts() {
    use nonces::{NONCE_BLOCK, NONCE_LIMIT};
    let (store, k) = keyring();
    let id = key_in(&k, KeyState::Enabled).await;
    let other = key_in(&k, KeyState::Enabled).await;
    let none = Context::new();
    let old = k.encrypt(&alice(), &id, b"old", &none).unwrap();
    let elsewhere = k.encrypt(&alice(), &other, b"elsewhere", &none).unwrap();
    let c = counter_of(&k, &id);
    // One nonce is left to grant, a partial last block.
    others_take(&*store, &k, &id, NONCE_LIMIT - 1 - NONCE_BLOCK);
    c.nonces.set_sealed_for_test(NONCE_BLOCK);
    // The last nonce allowed.
    k.encrypt(&alice(), &id, b"x", &none).unwrap();
    assert_eq!(c.nonces.granted(), NONCE_BLOCK + 1);
    assert_eq!(stored_reservation(&store, &k, &id), NONCE_LIMIT);

    let e = k.encrypt(&alice(), &id, b"x", &none);
    assert_eq!(code(&e), Some(ErrorCode::WrongKeyState));
    let e = e.unwrap_err();
    assert_eq!(ErrorCode::WrongKeyState.as_str(), "KMSBOX.0409");
    assert_eq!(
        e.to_string(),
        "key version 1 has sealed 2^32 blobs; rotate the key"
    );
    let e = k.generate_data_key(&alice(), &id, 32, &none);
    assert_eq!(code(&e), Some(ErrorCode::WrongKeyState));
    let e = k.re_encrypt(&alice(), &elsewhere.blob, &none, "", &id, &none);
    assert_eq!(code(&e), Some(ErrorCode::WrongKeyState));
    assert_eq!(stored_reservation(&store, &k, &id), NONCE_LIMIT);

    let back = k.decrypt(&alice(), &old.blob, &none, "").unwrap();
    assert_eq!(&back.plaintext[..], b"old");
    // Re-encrypting away from the exhausted key works: only sealing under it is refused.
    k.re_encrypt(&alice(), &old.blob, &none, "", &other, &none)
        .unwrap();
}

#[tokio::test]
async fn rotating_an_exhausted_key_gives_a_fresh_version_that_encrypts_again() {
    use nonces::{NONCE_BLOCK, NONCE_LIMIT};
    let (store, k) = keyring();
    let id = key_in(&k, KeyState::Enabled).await;
    let none = Context::new();
    let old = k.encrypt(&alice(), &id, b"old", &none).unwrap();
    others_take(&*store, &k, &id, NONCE_LIMIT);
    counter_of(&k, &id).nonces.set_sealed_for_test(NONCE_BLOCK);
    let e = k.encrypt(&alice(), &id, b"x", &none);
    assert_eq!(code(&e), Some(ErrorCode::WrongKeyState));

    let rec = k.rotate(&alice(), &id).await.unwrap();
    assert_eq!(rec.current_version, 2);
    let c = counter_of(&k, &id);
    assert_eq!((c.nonces.sealed(), c.nonces.granted()), (0, 0));
    let new = k.encrypt(&alice(), &id, b"new", &none).unwrap();
    assert_eq!(new.version, 2);
    assert_eq!(c.nonces.sealed(), 1);
    assert_eq!(stored_reservation(&store, &k, &id), NONCE_BLOCK);
    assert_eq!(
        &k.decrypt(&alice(), &old.blob, &none, "").unwrap().plaintext[..],
        b"old"
    );
}

#[tokio::test]
async fn nonce_grants_survive_a_restart_over_sqlite() {
    use crate::store::SqliteStore;
    use nonces::NONCE_BLOCK;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kms.db");
    let none = Context::new();
    let id = {
        let store = Arc::new(SqliteStore::open(&path).unwrap());
        let k = Keyring::open(store, RootKey::from_bytes([7; 32])).unwrap();
        let id = key_in(&k, KeyState::Enabled).await;
        k.encrypt(&alice(), &id, b"x", &none).unwrap();
        let c = counter_of(&k, &id);
        c.nonces.set_sealed_for_test(NONCE_BLOCK);
        k.encrypt(&alice(), &id, b"x", &none).unwrap();
        assert_eq!(c.nonces.sealed(), NONCE_BLOCK + 1);
        assert_eq!(c.nonces.fleet(), 2 * NONCE_BLOCK);
        id
    };
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let k = Keyring::open(store, RootKey::from_bytes([7; 32])).unwrap();
    let c = counter_of(&k, &id);
    assert_eq!((c.nonces.sealed(), c.nonces.granted()), (0, 0));
    k.encrypt(&alice(), &id, b"x", &none).unwrap();
    assert_eq!((c.nonces.sealed(), c.nonces.granted()), (1, NONCE_BLOCK));
    assert_eq!(c.nonces.fleet(), 3 * NONCE_BLOCK);
}

#[tokio::test]
async fn concurrent_sealers_at_a_block_boundary_get_the_next_block_and_lose_no_count() {
    use nonces::NONCE_BLOCK;
    let (store, k) = keyring();
    let id = key_in(&k, KeyState::Enabled).await;
    k.encrypt(&alice(), &id, b"x", &Context::new()).unwrap();
    let c = counter_of(&k, &id);
    let start = NONCE_BLOCK - 500;
    c.nonces.set_sealed_for_test(start);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..250 {
                    k.encrypt(&alice(), &id, b"x", &Context::new()).unwrap();
                }
            });
        }
    });
    assert_eq!(c.nonces.sealed(), start + 1000);
    assert_eq!(c.nonces.granted(), 2 * NONCE_BLOCK);
    assert_eq!(stored_reservation(&store, &k, &id), 2 * NONCE_BLOCK);
}

#[tokio::test]
async fn an_alias_names_a_key_only_in_its_own_domain_and_region() {
    let (_, k) = keyring();
    let rec = k.create_key(&alice(), "app", "").await.unwrap();
    assert_eq!(k.find_alias(&alice(), "app").unwrap().uuid, rec.uuid);
    // (rule, caller, alias)
    let cases = [
        ("another tenant's alias", caller("bob", "r1"), "app"),
        ("another region's alias", caller("alice", "r2"), "app"),
        ("an alias nobody has", alice(), "nope"),
        ("the empty alias names no key", alice(), ""),
    ];
    for (rule, c, alias) in cases {
        assert_eq!(
            code(&k.find_alias(&c, alias)),
            Some(ErrorCode::KeyNotFound),
            "{rule}"
        );
    }
}

#[tokio::test]
async fn the_alias_index_follows_changes_purges_and_restarts() {
    let (store, k) = keyring();
    let rec = k.create_key(&alice(), "app", "").await.unwrap();
    let id = rec.full_id().to_string();
    // A change to the key (here a rotation) keeps its alias pointing at it.
    k.rotate(&alice(), &id).await.unwrap();
    assert_eq!(k.find_alias(&alice(), "app").unwrap().current_version, 2);
    // A reopened keyring finds it by alias too.
    let reopened = Keyring::open(store.clone(), RootKey::from_bytes([7; 32])).unwrap();
    assert_eq!(reopened.find_alias(&alice(), "app").unwrap().uuid, rec.uuid);
    // Purged, the alias names nothing, and can name a new key.
    k.schedule_deletion(&alice(), &id, 7).await.unwrap();
    k.purge_expired(now_ms() + 8 * 86_400_000).await.unwrap();
    assert_eq!(
        code(&k.find_alias(&alice(), "app")),
        Some(ErrorCode::KeyNotFound)
    );
    let again = k.create_key(&alice(), "app", "").await.unwrap();
    assert_eq!(k.find_alias(&alice(), "app").unwrap().uuid, again.uuid);
}

#[tokio::test]
async fn alias_and_description_updates_are_stored_and_follow_the_alias_rules() {
    let (store, k) = keyring();
    let a = k.create_key(&alice(), "a", "first").await.unwrap();
    k.create_key(&alice(), "b", "").await.unwrap();
    let id = a.full_id().to_string();
    let renamed = k.update_alias(&alice(), &id, "a2").await.unwrap();
    assert_eq!(renamed.alias, "a2");
    let described = k.update_description(&alice(), &id, "second").await.unwrap();
    assert_eq!(
        (described.alias.as_str(), described.description.as_str()),
        ("a2", "second")
    );
    let stored = store.get(a.uuid).unwrap();
    assert_eq!(
        (stored.alias.as_str(), stored.description.as_str()),
        ("a2", "second")
    );
    let default = k
        .default_key(&alice(), "obs")
        .await
        .unwrap()
        .full_id()
        .to_string();
    let pending = key_in(&k, KeyState::PendingDeletion).await;
    // (rule, result, code)
    let cases = [
        (
            "an alias taken in the domain and region",
            code(&k.update_alias(&alice(), &id, "b").await),
            Some(ErrorCode::AliasExists),
        ),
        (
            "an alias outside the grammar",
            code(&k.update_alias(&alice(), &id, "x//y").await),
            Some(ErrorCode::InvalidKeyAlias),
        ),
        (
            "an empty alias",
            code(&k.update_alias(&alice(), &id, "").await),
            Some(ErrorCode::InvalidKeyAlias),
        ),
        (
            "a default key keeps its alias",
            code(&k.update_alias(&alice(), &default, "mine").await),
            Some(ErrorCode::DefaultKeyImmutable),
        ),
        (
            "a default key keeps its description",
            code(&k.update_description(&alice(), &default, "x").await),
            Some(ErrorCode::DefaultKeyImmutable),
        ),
        (
            "a key pending deletion keeps its alias",
            code(&k.update_alias(&alice(), &pending, "p").await),
            Some(ErrorCode::KeyPendingDeletion),
        ),
        (
            "a description over 255 characters",
            code(&k.update_description(&alice(), &id, &"d".repeat(256)).await),
            Some(ErrorCode::InvalidKeyDescription),
        ),
        (
            "another tenant's key is not found",
            code(
                &k.update_alias(&caller("bob", "r1"), &a.uuid.to_string(), "c")
                    .await,
            ),
            Some(ErrorCode::KeyNotFound),
        ),
    ];
    for (rule, got, want) in cases {
        assert_eq!(got, want, "{rule}");
    }
    assert_eq!(
        store.get(a.uuid).unwrap().alias,
        "a2",
        "refusals change nothing"
    );
}

const DAY_MS: i64 = 86_400_000;

#[tokio::test]
async fn a_rotation_schedule_rotates_an_enabled_key_when_its_time_passes_and_old_blobs_stay_readable()
 {
    let (store, k) = keyring();
    let key = k.create_key(&alice(), "", "").await.unwrap();
    let id = key.full_id().to_string();
    let old = k
        .encrypt(&alice(), &id, b"before", &Context::new())
        .unwrap();
    assert_eq!(key.next_rotation_ms(), None, "off by default");
    for (rule, days) in [("29 days", 29), ("366 days", 366)] {
        assert_eq!(
            code(&k.set_rotation(&alice(), &id, None, Some(days)).await),
            Some(ErrorCode::InvalidRotationInterval),
            "an interval of {rule} is refused"
        );
    }
    let on = k
        .set_rotation(&alice(), &id, Some(true), Some(30))
        .await
        .unwrap();
    let next = on.next_rotation_ms().expect("scheduled");
    assert_eq!(next, on.rotation.since_ms + 30 * DAY_MS);
    assert_eq!(store.get(key.uuid).unwrap().rotation, on.rotation, "stored");

    assert!(
        k.rotate_due(next - 1).await.unwrap().is_empty(),
        "not yet due"
    );
    let rotated = k.rotate_due(next).await.unwrap();
    assert_eq!(rotated.len(), 1);
    assert_eq!(rotated[0].current_version, 2);
    // The next interval counts from the rotation (made on the keyring's clock).
    let next2 = rotated[0].next_rotation_ms().expect("still scheduled");
    assert_eq!(next2, rotated[0].current_version_made_ms() + 30 * DAY_MS);
    assert!(
        k.rotate_due(next2 - 1).await.unwrap().is_empty(),
        "rotated once"
    );
    let opened = k.decrypt(&alice(), &old.blob, &Context::new(), "").unwrap();
    assert_eq!((&opened.plaintext[..], opened.version), (&b"before"[..], 1));
    let new = k.encrypt(&alice(), &id, b"after", &Context::new()).unwrap();
    assert_eq!(new.version, 2);

    // A disabled key waits; a key whose schedule is off does not rotate.
    k.disable(&alice(), &id).await.unwrap();
    assert!(k.rotate_due(next2 + 365 * DAY_MS).await.unwrap().is_empty());
    k.enable(&alice(), &id).await.unwrap();
    k.set_rotation(&alice(), &id, Some(false), None)
        .await
        .unwrap();
    assert!(k.rotate_due(next2 + 365 * DAY_MS).await.unwrap().is_empty());
    let default = k
        .default_key(&alice(), "obs")
        .await
        .unwrap()
        .full_id()
        .to_string();
    assert_eq!(
        code(&k.set_rotation(&alice(), &default, Some(true), None).await),
        Some(ErrorCode::DefaultKeyImmutable),
        "default keys do not rotate"
    );
}

#[tokio::test]
async fn a_key_created_rotating_is_stored_with_its_schedule_and_a_bad_interval_creates_nothing() {
    let (store, k) = keyring();
    let rotating = |days| KeyOptions {
        rotation_days: Some(days),
        ..KeyOptions::default()
    };
    for days in [29, 366] {
        assert_eq!(
            code(&k.create_key_with(&alice(), "r", rotating(days)).await),
            Some(ErrorCode::InvalidRotationInterval),
            "{days} days"
        );
    }
    assert_eq!(k.key_count(), 0, "nothing created");
    let key = k
        .create_key_with(&alice(), "r", rotating(90))
        .await
        .unwrap();
    assert!(key.rotation.enabled);
    assert_eq!(key.rotation.interval_days, 90);
    assert_eq!(
        key.next_rotation_ms(),
        Some(key.created_at_ms + 90 * DAY_MS)
    );
    assert_eq!(
        store.get(key.uuid).unwrap().rotation,
        key.rotation,
        "stored"
    );
    let due = k.rotate_due(key.created_at_ms + 90 * DAY_MS).await.unwrap();
    assert_eq!(due.len(), 1, "rotated by its schedule");
}

#[tokio::test]
async fn a_key_that_requires_a_context_refuses_every_data_call_without_one() {
    let (store, k) = keyring();
    let options = KeyOptions {
        policy: KeyPolicy {
            context_required: true,
            deletion_allowed: false,
        },
        ..KeyOptions::default()
    };
    let key = k
        .create_key_with(&alice(), "derived", options)
        .await
        .unwrap();
    assert!(
        store.get(key.uuid).unwrap().policy.context_required,
        "stored"
    );
    let id = key.full_id_string();
    let plain = k.create_key(&alice(), "plain", "").await.unwrap();
    let plain_id = plain.full_id_string();
    let none = Context::new();
    let some = ctx(&[("bucket", "b")]);
    let sealed = k.encrypt(&alice(), &id, b"x", &some).unwrap();
    let other = k.encrypt(&alice(), &plain_id, b"y", &none).unwrap();
    // (rule, outcome)
    let cases = [
        ("encrypt", code(&k.encrypt(&alice(), &id, b"x", &none))),
        (
            "generate a data key",
            code(&k.generate_data_key(&alice(), &id, 32, &none)),
        ),
        (
            "decrypt",
            code(&k.decrypt(&alice(), &sealed.blob, &none, "")),
        ),
        (
            "re-encrypt to it",
            code(&k.re_encrypt(&alice(), &other.blob, &none, "", &id, &none)),
        ),
    ];
    for (rule, got) in cases {
        assert_eq!(
            got,
            Some(ErrorCode::InvalidArgument),
            "{rule} without a context"
        );
    }
    let opened = k.decrypt(&alice(), &sealed.blob, &some, "").unwrap();
    assert_eq!(&opened.plaintext[..], b"x", "with its context");
    assert!(k.generate_data_key(&alice(), &id, 32, &some).is_ok());
    let moved = k.re_encrypt(&alice(), &sealed.blob, &some, "", &plain_id, &none);
    assert!(moved.is_ok(), "out of it, to a key that requires none");
}

#[tokio::test]
async fn configure_changes_rotation_and_deletion_in_one_write_and_not_a_key_pending_deletion() {
    let (store, k) = keyring();
    let key = k.create_key(&alice(), "app", "").await.unwrap();
    let id = key.full_id_string();
    let change = Configure {
        rotation_enabled: Some(true),
        rotation_days: Some(60),
        deletion_allowed: Some(true),
    };
    let changed = k.configure(&alice(), &id, change).await.unwrap();
    let stored = store.get(key.uuid).unwrap();
    assert_eq!(
        (stored.rotation, stored.policy.deletion_allowed),
        (changed.rotation, true)
    );
    assert_eq!(stored.rotation.interval_days, 60);
    assert!(!stored.policy.context_required, "left as it was");
    assert_eq!(
        code(
            &k.configure(
                &alice(),
                &id,
                Configure {
                    rotation_days: Some(10),
                    ..change
                }
            )
            .await
        ),
        Some(ErrorCode::InvalidRotationInterval)
    );
    k.schedule_deletion(&alice(), &id, 7).await.unwrap();
    let off = Configure {
        deletion_allowed: Some(false),
        ..Configure::default()
    };
    assert_eq!(
        code(&k.configure(&alice(), &id, off).await),
        Some(ErrorCode::KeyPendingDeletion)
    );
    assert!(
        store.get(key.uuid).unwrap().policy.deletion_allowed,
        "unchanged"
    );
}

fn tags(pairs: &[(&str, &str)]) -> crate::store::Tags {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn removal(pairs: &[(&str, Option<&str>)]) -> TagEdit {
    TagEdit::Remove(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
            .collect(),
    )
}

#[tokio::test]
async fn tag_edits_follow_huaweis_rules_and_a_refused_one_changes_nothing() {
    let (store, k) = keyring();
    let id = key_in(&k, KeyState::Enabled).await;
    let ten: Vec<(String, String)> = (0..10).map(|i| (format!("k{i}"), String::new())).collect();
    let ten: Vec<(&str, &str)> = ten.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let long_key = "k".repeat(37);
    let long_value = "v".repeat(44);
    let cjk_key = "键".repeat(36);
    // (rule, start from, edit, code, tags after)
    type Tagged<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(&str, Tagged<'_>, TagEdit, Option<ErrorCode>, Tagged<'_>)> = vec![
        (
            "a tag is added",
            vec![],
            TagEdit::Set(tags(&[("team", "storage")])),
            None,
            vec![("team", "storage")],
        ),
        (
            "a tag key set again takes the new value",
            vec![("team", "a")],
            TagEdit::Set(tags(&[("team", "b")])),
            None,
            vec![("team", "b")],
        ),
        (
            "a value may be empty",
            vec![],
            TagEdit::Set(tags(&[("team", "")])),
            None,
            vec![("team", "")],
        ),
        (
            "36 characters of any script make a key",
            vec![],
            TagEdit::Set(tags(&[(&cjk_key, "v")])),
            None,
            vec![(&cjk_key, "v")],
        ),
        (
            "ten tags fit",
            vec![],
            TagEdit::Set(tags(&ten)),
            None,
            ten.clone(),
        ),
        (
            "an eleventh does not",
            ten.clone(),
            TagEdit::Set(tags(&[("one-more", "")])),
            Some(ErrorCode::InvalidArgument),
            ten.clone(),
        ),
        (
            "a key of 37 characters is refused",
            vec![],
            TagEdit::Set(tags(&[(&long_key, "")])),
            Some(ErrorCode::InvalidArgument),
            vec![],
        ),
        (
            "a value of 44 characters is refused",
            vec![],
            TagEdit::Set(tags(&[("team", &long_value)])),
            Some(ErrorCode::InvalidArgument),
            vec![],
        ),
        (
            "an empty tag key is refused",
            vec![],
            TagEdit::Set(tags(&[("", "v")])),
            Some(ErrorCode::InvalidArgument),
            vec![],
        ),
        (
            "'=' is refused in a key",
            vec![],
            TagEdit::Set(tags(&[("a=b", "v")])),
            Some(ErrorCode::InvalidArgument),
            vec![],
        ),
        (
            "'*' is refused in a value",
            vec![],
            TagEdit::Set(tags(&[("a", "v*")])),
            Some(ErrorCode::InvalidArgument),
            vec![],
        ),
        (
            "a control character is refused",
            vec![],
            TagEdit::Set(tags(&[("a", "v\n")])),
            Some(ErrorCode::InvalidArgument),
            vec![],
        ),
        (
            "one bad tag refuses the whole batch",
            vec![],
            TagEdit::Set(tags(&[("good", "v"), ("b<d", "v")])),
            Some(ErrorCode::InvalidArgument),
            vec![],
        ),
        (
            "no tag to set is refused",
            vec![("team", "a")],
            TagEdit::Set(tags(&[])),
            Some(ErrorCode::EmptyTagList),
            vec![("team", "a")],
        ),
        (
            "no tag to remove is refused",
            vec![("team", "a")],
            removal(&[]),
            Some(ErrorCode::EmptyTagList),
            vec![("team", "a")],
        ),
        (
            "a tag is removed by its key",
            vec![("team", "a"), ("env", "prod")],
            removal(&[("team", None)]),
            None,
            vec![("env", "prod")],
        ),
        (
            "a value given must match to remove",
            vec![("team", "a")],
            removal(&[("team", Some("b"))]),
            None,
            vec![("team", "a")],
        ),
        (
            "a matching value removes",
            vec![("team", "a")],
            removal(&[("team", Some("a"))]),
            None,
            vec![],
        ),
        (
            "removing an absent tag is no error",
            vec![("team", "a")],
            removal(&[("gone", None)]),
            None,
            vec![("team", "a")],
        ),
    ];
    for (rule, start, edit, want, after) in cases {
        let reset: Vec<String> = k
            .find(&alice(), &id)
            .unwrap()
            .tags
            .keys()
            .cloned()
            .collect();
        if !reset.is_empty() {
            k.edit_tags(
                &alice(),
                &id,
                TagEdit::Remove(reset.into_iter().map(|t| (t, None)).collect()),
            )
            .await
            .unwrap();
        }
        if !start.is_empty() {
            k.edit_tags(&alice(), &id, TagEdit::Set(tags(&start)))
                .await
                .unwrap();
        }
        let got = k.edit_tags(&alice(), &id, edit).await;
        assert_eq!(code(&got), want, "{rule}");
        assert_eq!(k.find(&alice(), &id).unwrap().tags, tags(&after), "{rule}");
        let stored = store
            .load_all()
            .unwrap()
            .into_iter()
            .find(|r| r.full_id().to_string() == id)
            .unwrap();
        assert_eq!(
            stored.tags,
            tags(&after),
            "{rule}: the store holds what the cache does"
        );
    }
}

#[tokio::test]
async fn default_keys_and_keys_pending_deletion_take_no_tags_and_another_tenant_sees_none() {
    let (_store, k) = keyring();
    let default = k
        .default_key(&alice(), "obs")
        .await
        .unwrap()
        .full_id()
        .to_string();
    let pending = key_in(&k, KeyState::PendingDeletion).await;
    let mine = key_in(&k, KeyState::Disabled).await;
    let set = || TagEdit::Set(tags(&[("team", "a")]));
    // (rule, caller, key, code)
    let cases = [
        (
            "a default key takes no tags",
            alice(),
            default.as_str(),
            Some(ErrorCode::DefaultKeyImmutable),
        ),
        (
            "a key pending deletion takes none",
            alice(),
            pending.as_str(),
            Some(ErrorCode::KeyPendingDeletion),
        ),
        ("a disabled key takes tags", alice(), mine.as_str(), None),
        (
            "another tenant's key is not found",
            caller("bob", "r1"),
            mine.as_str(),
            Some(ErrorCode::KeyNotFound),
        ),
        (
            "another region's key is not found",
            caller("alice", "r2"),
            mine.as_str(),
            Some(ErrorCode::KeyNotFound),
        ),
    ];
    for (rule, who, key, want) in cases {
        assert_eq!(code(&k.edit_tags(&who, key, set()).await), want, "{rule}");
    }
    assert!(
        k.tags_in_use(&caller("bob", "r1")).is_empty(),
        "bob's project has no tags"
    );
    assert_eq!(k.tags_in_use(&alice()).len(), 1);
}

#[tokio::test]
async fn a_tag_filter_keeps_keys_with_every_named_tag_and_one_of_its_values() {
    let (_store, k) = keyring();
    let clock = Arc::new(crate::clock::Clock::virtual_at(1_000));
    let k = k.with_clock(Arc::clone(&clock));
    let mut ids = Vec::new();
    for (alias, t) in [
        ("web-a", vec![("env", "prod"), ("team", "web")]),
        ("web-b", vec![("env", "test"), ("team", "web")]),
        ("db", vec![("env", "prod")]),
        ("bare", vec![]),
    ] {
        let key = k.create_key(&alice(), alias, "").await.unwrap();
        if !t.is_empty() {
            k.edit_tags(&alice(), &key.full_id().to_string(), TagEdit::Set(tags(&t)))
                .await
                .unwrap();
        }
        ids.push(alias);
        clock.advance(1).unwrap();
    }
    let filter = |t: &[(&str, &[&str])], alias: Option<&str>| TagFilter {
        tags: t
            .iter()
            .map(|(k, vs)| {
                (
                    (*k).to_owned(),
                    vs.iter().map(|v| (*v).to_owned()).collect(),
                )
            })
            .collect(),
        alias_contains: alias.map(str::to_owned),
    };
    // (rule, filter, aliases kept, oldest first)
    let cases = [
        (
            "no tag keeps every key",
            filter(&[], None),
            vec!["web-a", "web-b", "db", "bare"],
        ),
        (
            "a tag key without values keeps every key that has it",
            filter(&[("team", &[])], None),
            vec!["web-a", "web-b"],
        ),
        (
            "a value must be one of those given",
            filter(&[("env", &["prod"])], None),
            vec!["web-a", "db"],
        ),
        (
            "values of one key are alternatives",
            filter(&[("env", &["prod", "test"])], None),
            vec!["web-a", "web-b", "db"],
        ),
        (
            "tag keys must all match",
            filter(&[("env", &["prod"]), ("team", &["web"])], None),
            vec!["web-a"],
        ),
        (
            "the alias match narrows",
            filter(&[("env", &[])], Some("web")),
            vec!["web-a", "web-b"],
        ),
        (
            "an absent tag key keeps nothing",
            filter(&[("owner", &[])], None),
            vec![],
        ),
    ];
    for (rule, f, want) in cases {
        let got: Vec<String> = k
            .keys_tagged(&alice(), &f)
            .iter()
            .map(|r| r.alias.clone())
            .collect();
        assert_eq!(got, want, "{rule}");
    }
    assert!(
        k.keys_tagged(&caller("bob", "r1"), &filter(&[], None))
            .is_empty(),
        "another tenant's keys are not listed"
    );
    assert_eq!(ids.len(), 4);
}
