//! Key material is wiped before its memory goes back to the allocator.
//!
//! A global allocator (`tests/support/scanning_alloc.rs` at the workspace root) scans every block
//! handed back to it for the bytes of the keys in play. Each case builds and uses a key-holding
//! value, drops it, and asserts that no freed block still held a key. A positive control (a plain
//! `Vec` with a key in it) shows that the scanner does find what is not wiped.

// `GlobalAlloc` is an unsafe trait: implementing it is the only way to look at memory as it is
// freed. Everything else in the workspace forbids `unsafe`.
#[allow(unsafe_code)]
// Shared with the workspace's `tests` crate, where its items are used from other modules.
#[allow(unreachable_pub)]
#[path = "../../tests/support/scanning_alloc.rs"]
mod scanning_alloc;

use envelope::chunked::{BodyReader, BodyWriter, SALT_SIZE};
use envelope::{Backend, DataKey, LocalKek, WrapScheme};
use hkdf::hmac::{Hmac, KeyInit, Mac};
use scanning_alloc::freed_blocks_holding;
use sha2::Sha512;
use std::io::{Read, Write};

/// The chunk AEAD key of a C2SP body: the first 32 bytes of
/// `HKDF-Expand(input_key, label || salt || context)` with SHA-512, i.e. of its first HMAC block.
fn chunk_aead_key(input_key: &[u8; 32], salt: &[u8; SALT_SIZE], context: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha512> as KeyInit>::new_from_slice(input_key).expect("hmac key");
    mac.update(b"c2sp.org/chunked-encryption@v1+AEAD_AES_256_GCM\0");
    mac.update(salt);
    mac.update(context);
    mac.update(&[1]);
    let t1 = mac.finalize().into_bytes();
    let mut key = [0u8; 32];
    key.copy_from_slice(&t1[..32]);
    key
}

#[test]
fn key_material_is_wiped_before_it_is_freed() {
    let input_key = [0x5au8; 32];
    let salt = [0x17u8; SALT_SIZE];
    let context = b"tenant=t1;bucket=b;object=o";
    let aead_key = chunk_aead_key(&input_key, &salt, context);
    let plaintext = vec![0x42u8; 40_000];

    // Positive control: a key left in a plain `Vec` is found when the `Vec` is freed.
    let (hits, ()) = freed_blocks_holding(&[&aead_key], || {
        let leaked = aead_key.to_vec();
        drop(std::hint::black_box(leaked));
    });
    assert!(hits > 0, "the scanner must see an unwiped key");

    for &backend in Backend::all() {
        // The sealed body, made outside the armed window.
        let mut w =
            BodyWriter::with_salt(Vec::new(), &input_key, &salt, context, backend).expect("writer");
        w.write_all(&plaintext).expect("write");
        let sealed = w.finish().expect("finish");

        let (hits, ()) = freed_blocks_holding(&[&aead_key], || {
            let mut w = BodyWriter::with_salt(Vec::new(), &input_key, &salt, context, backend)
                .expect("writer");
            w.write_all(&plaintext).expect("write");
            let out = w.finish().expect("finish");
            assert_eq!(out, sealed);
        });
        assert_eq!(
            hits, 0,
            "{backend:?}: a body writer's chunk key was freed unwiped"
        );

        let (hits, ()) = freed_blocks_holding(&[&aead_key], || {
            let mut r = BodyReader::new(&sealed[..], &input_key, context, backend).expect("reader");
            let mut out = Vec::new();
            r.read_to_end(&mut out).expect("read");
            assert_eq!(out, plaintext);
        });
        assert_eq!(
            hits, 0,
            "{backend:?}: a body reader's chunk key was freed unwiped"
        );
    }

    // A local KEK and the data keys it wraps and unwraps.
    let kek_bytes = [0x33u8; 32];
    let dk_bytes = [0x6cu8; 32];
    let (hits, ()) = freed_blocks_holding(&[&kek_bytes, &dk_bytes], || {
        let kek = Box::new(LocalKek::aes_kw("kek-1", &kek_bytes).expect("kek"));
        let wrapped = kek.wrap(WrapScheme::AesKw, &dk_bytes).expect("wrap");
        let unwrapped = kek.unwrap(WrapScheme::AesKw, &wrapped).expect("unwrap");
        let dk = Box::new(DataKey::from_slice(&unwrapped).expect("data key"));
        drop(unwrapped);
        drop(dk);
        drop(kek);
    });
    assert_eq!(hits, 0, "a KEK or data key was freed unwiped");
}
