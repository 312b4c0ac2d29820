//! Key material is wiped before its memory goes back to the allocator.
//!
//! A global allocator (`kmsbox-test-support`'s `scanning_alloc`) scans every block
//! handed back to it for the bytes of the keys in play. Each case builds and uses a key-holding
//! value, drops it, and asserts that no freed block still held a key. A positive control (a plain
//! `Vec` with a key in it) shows that the scanner does find what is not wiped.
//!
//! Also checked: the HMAC-SHA-512 states keyed by a data key (the `hmac`/`sha2` zeroize features;
//! in the crate they live on the stack, which the scanner cannot see, so a boxed one stands in),
//! and the plaintext left in the chunk buffers of writers, readers and range reads (sync and
//! tokio), and in the block an in-place seal grows out of (a distinctive 32-byte plaintext
//! pattern is the needle).

#[global_allocator]
static ALLOCATOR: Scanning = Scanning;

use envelope::chunked::{BodyReader, BodyWriter, SALT_SIZE, read_body_range};
use envelope::tokio_io::{AsyncDecryptor, open_range_async};
use envelope::{
    Backend, DataKey, LocalKek, ObjectContext, ObjectKey, ObjectKind, WrapScheme, seal_in_place,
};
use hkdf::hmac::{Hmac, KeyInit, Mac};
use kmsbox_test_support::scanning_alloc::{Scanning, freed_blocks_holding};
use sha2::Sha512;
use std::io::{Cursor, Read, Write};
use zeroize::Zeroizing;

/// A plaintext pattern no key or header contains: the needle for plaintext left in freed blocks.
const PATTERN: &[u8; 32] = b"kmsbox plaintext needle #19 !!!!";

/// The SHA-512 initial hash value (FIPS 180-4, 5.3.5).
const SHA512_IV: [u64; 8] = [
    0x6a09e667f3bcc908,
    0xbb67ae8584caa73b,
    0x3c6ef372fe94f82b,
    0xa54ff53a5f1d36f1,
    0x510e527fade682d1,
    0x9b05688c2b3e6c1f,
    0x1f83d9abfb41bd6b,
    0x5be0cd19137e2179,
];

/// The first 32 bytes, as they lie in memory, of the SHA-512 state an HMAC keyed by `key` holds
/// after absorbing `key ^ pad` (pad 0x36: inner, 0x5c: outer).
fn hmac_sha512_state(key: &[u8; 32], pad: u8) -> [u8; 32] {
    let mut block = [pad; 128];
    for (b, k) in block.iter_mut().zip(key) {
        *b ^= k;
    }
    let mut state = SHA512_IV;
    sha2::block_api::compress512(&mut state, &[block]);
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_mut(8).zip(state) {
        o.copy_from_slice(&w.to_ne_bytes());
    }
    out
}

/// A keyed HMAC state is wiped when dropped (the `zeroize` features of `hmac` and `sha2`).
fn hmac_states_are_wiped(input_key: &[u8; 32]) {
    let inner = hmac_sha512_state(input_key, 0x36);
    let outer = hmac_sha512_state(input_key, 0x5c);
    // Positive control: the same state copied into a plain `Vec` is found.
    let (hits, ()) = freed_blocks_holding(&[&inner], || {
        drop(std::hint::black_box(inner.to_vec()));
    });
    assert!(hits > 0, "the scanner must see an unwiped HMAC state");
    let (hits, ()) = freed_blocks_holding(&[&inner, &outer], || {
        let mut mac =
            Box::new(<Hmac<Sha512> as KeyInit>::new_from_slice(input_key).expect("hmac key"));
        mac.update(b"c2sp.org/chunked-encryption@v1+AEAD_AES_256_GCM\0");
        drop(std::hint::black_box(mac));
    });
    assert_eq!(hits, 0, "a keyed HMAC-SHA-512 state was freed unwiped");
}

/// The tokio reader and range reader release plaintext from their own chunk buffers.
fn async_readers_are_wiped(kek: &LocalKek, ctx: &ObjectContext, plaintext: &[u8]) {
    use tokio::io::AsyncReadExt;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    for &backend in Backend::all() {
        let mut sealed = Vec::new();
        envelope::seal(kek, "kek-1", ctx, plaintext, &mut sealed, backend).expect("seal");
        let (hits, out) = freed_blocks_holding(&[PATTERN], || {
            rt.block_on(async {
                let mut d = AsyncDecryptor::new(kek, ctx, &sealed[..], backend)
                    .await
                    .expect("decryptor");
                let mut out = Vec::with_capacity(plaintext.len());
                let mut small = [0u8; 1000];
                loop {
                    let n = d.read(&mut small).await.expect("read");
                    if n == 0 {
                        break;
                    }
                    out.extend_from_slice(&small[..n]);
                }
                small.fill(0);
                Zeroizing::new(out)
            })
        });
        assert_eq!(
            hits, 0,
            "{backend:?}: an async reader's chunk buffer was freed holding plaintext"
        );
        assert_eq!(out[..], plaintext[..]);
        drop(out);

        let (hits, out) = freed_blocks_holding(&[PATTERN], || {
            rt.block_on(async {
                let mut out = Vec::with_capacity(100);
                open_range_async(
                    kek,
                    ctx,
                    &mut Cursor::new(&sealed[..]),
                    20_000..20_100,
                    &mut out,
                    backend,
                )
                .await
                .expect("range");
                Zeroizing::new(out)
            })
        });
        assert_eq!(
            hits, 0,
            "{backend:?}: an async range read's chunk buffer was freed holding plaintext"
        );
        assert_eq!(out[..], plaintext[20_000..20_100]);
    }
}

/// `n` bytes of [`PATTERN`], over and over. The test wipes its own plaintext copies before freeing
/// them: a block it left unwiped could come back, stale, as the spare capacity of a later
/// allocation and be counted against the code under test.
fn patterned(n: usize) -> Vec<u8> {
    PATTERN.iter().copied().cycle().take(n).collect()
}

/// Plaintext is wiped from the chunk buffers before they are freed: a writer dropped with a
/// partial chunk buffered, a reader that released its chunks from its buffer, a range read, and
/// an in-place seal of a buffer without the capacity reserved (it grows into a new block).
fn plaintext_buffers_are_wiped(input_key: &[u8; 32], salt: &[u8; SALT_SIZE], context: &[u8]) {
    // Two whole chunks and a partial one.
    let plaintext = Zeroizing::new(patterned(40_000));
    for &backend in Backend::all() {
        let mut w =
            BodyWriter::with_salt(Vec::new(), input_key, salt, context, backend).expect("writer");
        w.write_all(&plaintext).expect("write");
        let sealed = w.finish().expect("finish");

        let (hits, ()) = freed_blocks_holding(&[PATTERN], || {
            let mut w = BodyWriter::with_salt(
                Vec::with_capacity(sealed.len()),
                input_key,
                salt,
                context,
                backend,
            )
            .expect("writer");
            w.write_all(&plaintext).expect("write");
            // Dropped without `finish`: the partial last chunk is still plaintext in its buffer.
            drop(w);
        });
        assert_eq!(
            hits, 0,
            "{backend:?}: a body writer's chunk buffer was freed holding plaintext"
        );

        let (hits, out) = freed_blocks_holding(&[PATTERN], || {
            let mut r = BodyReader::new(&sealed[..], input_key, context, backend).expect("reader");
            // `copy_to` releases every chunk from the reader's own buffer.
            let mut out = Vec::with_capacity(plaintext.len());
            r.copy_to(&mut out).expect("read");
            Zeroizing::new(out)
        });
        assert_eq!(
            hits, 0,
            "{backend:?}: a body reader's chunk buffer was freed holding plaintext"
        );
        assert_eq!(out[..], plaintext[..]);
        drop(out);

        let (hits, out) = freed_blocks_holding(&[PATTERN], || {
            let mut out = Vec::with_capacity(100);
            read_body_range(
                &mut Cursor::new(&sealed[..]),
                0,
                input_key,
                context,
                backend,
                20_000..20_100,
                &mut out,
            )
            .expect("range");
            Zeroizing::new(out)
        });
        assert_eq!(
            hits, 0,
            "{backend:?}: a range read's chunk buffer was freed holding plaintext"
        );
        assert_eq!(out[..], plaintext[20_000..20_100]);
    }

    // In place: a buffer holding exactly the plaintext grows, and the block it leaves is wiped.
    let kek = LocalKek::aes_kw("kek-1", &[0x33u8; 32]).expect("kek");
    let ctx = ObjectContext::new().with("object", "o").expect("ctx");
    let key = ObjectKey::generate(&kek, "kek-1", &ctx, ObjectKind::Single).expect("key");
    async_readers_are_wiped(&kek, &ctx, &plaintext);
    for &backend in Backend::all() {
        let mut buf = plaintext.to_vec();
        assert_eq!(buf.capacity(), plaintext.len());
        let (hits, buf) = freed_blocks_holding(&[PATTERN], || {
            seal_in_place(&key, &ctx, &mut buf, backend).expect("seal");
            buf
        });
        assert_eq!(
            hits, 0,
            "{backend:?}: an in-place seal freed the block that held the plaintext unwiped"
        );
        assert!(buf.len() > plaintext.len());
    }
}

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
            drop(out);
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

    hmac_states_are_wiped(&input_key);
    plaintext_buffers_are_wiped(&input_key, &salt, context);
}
