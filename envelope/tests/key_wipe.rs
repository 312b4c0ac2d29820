//! Key material is wiped before its memory goes back to the allocator.
//!
//! A global allocator wraps the system one and, while armed, scans every block handed back to it
//! for the bytes of the keys in play. Each case builds and uses a key-holding value, drops it, and
//! asserts that no freed block still held a key. A positive control (a plain `Vec` with a key in
//! it) shows that the scanner does find what is not wiped.
//!
//! What this cannot see: copies left on the stack, and blocks still live when the case ends.

// `GlobalAlloc` is an unsafe trait: implementing it is the only way to look at memory as it is
// freed. Everything else in the workspace forbids `unsafe`.
#![allow(unsafe_code)]

use envelope::chunked::{BodyReader, BodyWriter, SALT_SIZE};
use envelope::{Backend, DataKey, LocalKek, WrapScheme};
use hkdf::hmac::{Hmac, KeyInit, Mac};
use sha2::Sha512;
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Needles are 16 bytes: a round key of AES (the first two of AES-256 are its key's halves), so
/// that a key schedule stored in 128-bit lanes is found as well as the raw key.
const NEEDLE: usize = 16;
const MAX_NEEDLES: usize = 8;

static ARMED: AtomicBool = AtomicBool::new(false);
static HITS: AtomicUsize = AtomicUsize::new(0);
/// Fixed storage: the allocator must never allocate, nor wait on a lock held by an allocation.
static NEEDLES: Mutex<([[u8; NEEDLE]; MAX_NEEDLES], usize)> =
    Mutex::new(([[0; NEEDLE]; MAX_NEEDLES], 0));

struct Scanning;

impl Scanning {
    fn scan(block: &[u8]) {
        let Ok(needles) = NEEDLES.try_lock() else {
            return;
        };
        let (list, n) = &*needles;
        for needle in &list[..*n] {
            if block.windows(NEEDLE).any(|w| w == needle) {
                HITS.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

// SAFETY: every call is forwarded to `System` with its own arguments; `dealloc` only reads the
// block it is about to free, which is still allocated and `layout.size()` bytes long.
unsafe impl GlobalAlloc for Scanning {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ARMED.load(Ordering::SeqCst) {
            // SAFETY: see the impl comment; the bytes were written by their owner before it
            // freed them (allocated blocks are initialized here by construction of the cases).
            let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            Scanning::scan(block);
        }
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Scanning = Scanning;

/// Run `case` with `keys` as needles (each split into 16-byte halves); returns how many freed
/// blocks held one of them.
fn freed_blocks_holding(keys: &[&[u8; 32]], case: impl FnOnce()) -> usize {
    {
        let mut needles = NEEDLES.lock().expect("needles");
        let mut n = 0;
        for key in keys {
            for half in key.chunks(NEEDLE) {
                needles.0[n].copy_from_slice(half);
                n += 1;
            }
        }
        needles.1 = n;
    }
    HITS.store(0, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
    case();
    ARMED.store(false, Ordering::SeqCst);
    HITS.load(Ordering::SeqCst)
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
    let hits = freed_blocks_holding(&[&aead_key], || {
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

        let hits = freed_blocks_holding(&[&aead_key], || {
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

        let hits = freed_blocks_holding(&[&aead_key], || {
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
    let hits = freed_blocks_holding(&[&kek_bytes, &dk_bytes], || {
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
