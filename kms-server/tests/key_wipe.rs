//! The daemon's secrets are wiped before their memory goes back to the allocator: the root key,
//! the HKDF PRK kept in its place, the key of the store's MACs derived from it, and a CMK version's
//! material, through every data-path call (refused ones included), a rotation, a second start-up on
//! the same store (which unwraps every key version and checks every MAC) and the shutdown of the
//! service.
//!
//! A global allocator (`kmsbox-test-support`'s `scanning_alloc`) scans every block
//! handed back to it for those bytes; a positive control shows that it finds what is not wiped.
//! Out of scope: the protobuf messages that carry plaintext to and from gRPC (SECURITY.md).
//!
//! Also checked: the HMAC-SHA-256 states of an HKDF keyed by the root key's PRK (the `sha2`
//! zeroize feature; in the daemon they live on the stack, which the scanner cannot see, so a boxed
//! one stands in), and the plaintext of `Encrypt`, `Decrypt` and `ReEncrypt` in the blob code (a
//! distinctive 32-byte plaintext is the needle).

#[global_allocator]
static ALLOCATOR: Scanning = Scanning;

use hkdf::Hkdf;
use kms_proto::key_id::{DomainId, RegionId};
use kms_server::crypto::{RootKey, WrapContext};
use kms_server::keyring::{Caller, Context, Keyring};
use kms_server::store::{KeyStore, SqliteStore};
use kmsbox_test_support::scanning_alloc::{Scanning, freed_blocks_holding};
use sha2::Sha256;
use std::sync::Arc;

/// A plaintext no key, blob or record contains: the needle for plaintext left in freed blocks.
const PATTERN: &[u8; 32] = b"kms plaintext needle, issue #19!";

/// The SHA-256 initial hash value (FIPS 180-4, 5.3.3).
const SHA256_IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// The SHA-256 state, as it lies in memory, of an HMAC keyed by `key` after absorbing
/// `key ^ pad` (pad 0x36: inner, 0x5c: outer).
fn hmac_sha256_state(key: &[u8; 32], pad: u8) -> [u8; 32] {
    let mut block = [pad; 64];
    for (b, k) in block.iter_mut().zip(key) {
        *b ^= k;
    }
    let mut state = SHA256_IV;
    sha2::block_api::compress256(&mut state, &[block]);
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_mut(4).zip(state) {
        o.copy_from_slice(&w.to_ne_bytes());
    }
    out
}

#[test]
fn key_material_is_wiped_before_it_is_freed() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let root = [0x42u8; 32];
    let prk: [u8; 32] = Hkdf::<Sha256>::extract(Some(b"kmsbox.cmk-wrap.v1"), &root)
        .0
        .into();
    let mut mac_key = [0u8; 32];
    Hkdf::<Sha256>::from_prk(&prk)
        .expect("prk")
        .expand(b"kmsbox.store-mac.v1", &mut mac_key)
        .expect("mac key");
    let caller = Caller {
        domain: DomainId::parse("0123456789abcdef0123456789abcdef").expect("domain"),
        region: RegionId::parse("region").expect("region"),
    };

    // Set-up outside the scanned window: a store, a key, and (from a copy of the root key) that
    // key's material, so that the scanner knows what to look for.
    let store: Arc<dyn KeyStore> =
        Arc::new(SqliteStore::open(&dir.path().join("kms.sqlite3")).expect("store"));
    let service = Arc::new(Keyring::open(store.clone(), RootKey::from_bytes(root)).expect("open"));
    let rec = rt
        .block_on(service.create_key(&caller, "app", "wipe test"))
        .expect("create");
    let material: [u8; 32] = *RootKey::from_bytes(root)
        .unwrap(
            &WrapContext {
                uuid: rec.uuid,
                version: 1,
                domain: rec.domain.as_str(),
                region: rec.region.as_str(),
            },
            &rec.versions[0].wrapped,
        )
        .expect("unwrap")
        .expose();
    let id = rec.full_id().to_string();

    // Positive control: material left in a plain `Vec` is found when the `Vec` is freed.
    let (hits, ()) = freed_blocks_holding(&[&material], || {
        drop(std::hint::black_box(material.to_vec()));
    });
    assert!(hits > 0, "the scanner must see unwiped material");

    // For the plaintext cases below: the first window consumes `rt` and `caller`.
    let caller2 = caller.clone();
    let rt2 = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (hits, ()) = freed_blocks_holding(&[&root, &prk, &mac_key, &material], move || {
        let ctx: Context = [("bucket".to_owned(), "b".to_owned())].into();
        let blob = service
            .encrypt(&caller, &id, b"a small secret", &ctx)
            .expect("encrypt")
            .blob;
        let opened = service.decrypt(&caller, &blob, &ctx, "").expect("decrypt");
        assert_eq!(&opened.plaintext[..], b"a small secret");
        let dk = service
            .generate_data_key(&caller, &id, 32, &ctx)
            .expect("data key");
        let back = service
            .decrypt(&caller, &dk.blob, &ctx, &id)
            .expect("decrypt data key");
        assert_eq!(back.plaintext, dk.plaintext);
        service
            .re_encrypt(&caller, &blob, &ctx, "", &id, &ctx)
            .expect("re-encrypt");
        // Refused: another context, a tampered blob.
        assert!(
            service
                .decrypt(&caller, &blob, &Context::new(), "")
                .is_err()
        );
        let mut tampered = blob.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(service.decrypt(&caller, &tampered, &ctx, "").is_err());
        rt.block_on(service.rotate(&caller, &id)).expect("rotate");
        // A second start-up on the same store unwraps every key version.
        let again = Keyring::open(store.clone(), RootKey::from_bytes(root)).expect("reopen");
        assert_eq!(again.key_count(), 1);
        drop(again);
        drop(service);
        drop(store);
    });
    assert_eq!(
        hits, 0,
        "a freed block still held the root key, its PRK, the MAC key or CMK material"
    );

    // The HKDF that derives each KEK from the PRK: its keyed HMAC states are wiped on drop.
    let inner = hmac_sha256_state(&prk, 0x36);
    let outer = hmac_sha256_state(&prk, 0x5c);
    let (hits, ()) = freed_blocks_holding(&[&inner], || {
        drop(std::hint::black_box(inner.to_vec()));
    });
    assert!(hits > 0, "the scanner must see an unwiped HMAC state");
    let (hits, ()) = freed_blocks_holding(&[&inner, &outer], || {
        let hk = Box::new(Hkdf::<Sha256>::from_prk(&prk).expect("prk"));
        let mut kek = [0u8; 32];
        hk.expand(b"info", &mut kek).expect("expand");
        drop(std::hint::black_box(hk));
    });
    assert_eq!(
        hits, 0,
        "an HKDF keyed by the root key's PRK was freed unwiped"
    );

    // Plaintext through the blob code: sealed, opened, re-encrypted, refused.
    let store2: Arc<dyn KeyStore> =
        Arc::new(SqliteStore::open(&dir.path().join("kms2.sqlite3")).expect("store"));
    let service = Keyring::open(store2, RootKey::from_bytes(root)).expect("open");
    let rec = rt2
        .block_on(service.create_key(&caller2, "app2", "plaintext wipe test"))
        .expect("create");
    let id = rec.full_id().to_string();
    let (hits, ()) = freed_blocks_holding(&[PATTERN], || {
        drop(std::hint::black_box(PATTERN.to_vec()));
    });
    assert!(hits > 0, "the scanner must see unwiped plaintext");
    let (hits, ()) = freed_blocks_holding(&[PATTERN], || {
        let ctx: Context = [("bucket".to_owned(), "b".to_owned())].into();
        let blob = service
            .encrypt(&caller2, &id, PATTERN, &ctx)
            .expect("encrypt")
            .blob;
        let opened = service.decrypt(&caller2, &blob, &ctx, "").expect("decrypt");
        assert_eq!(&opened.plaintext[..], PATTERN);
        drop(opened);
        let again = service
            .re_encrypt(&caller2, &blob, &ctx, "", &id, &ctx)
            .expect("re-encrypt");
        drop(again);
        assert!(
            service
                .decrypt(&caller2, &blob, &Context::new(), "")
                .is_err()
        );
    });
    assert_eq!(
        hits, 0,
        "a freed block still held the plaintext of Encrypt, Decrypt or ReEncrypt"
    );
}
