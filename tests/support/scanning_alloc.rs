//! A global allocator for key-wipe tests: it wraps the system allocator and, while armed, scans
//! every block handed back to it for the bytes of the keys in play.
//!
//! Include it with `#[allow(unsafe_code)] #[path = ".../tests/support/scanning_alloc.rs"] mod
//! scanning_alloc;` from a test crate that has no other test running at the same time (one
//! `#[test]` per binary), then wrap each case in [`freed_blocks_holding`].
//!
//! What this cannot see: copies left on the stack, and blocks still live when a case ends.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Needles are 16 bytes: a round key of AES (the first two of AES-256 are its key's halves), so
/// that a key schedule stored in 128-bit lanes is found as well as the raw key.
const NEEDLE: usize = 16;
const MAX_NEEDLES: usize = 16;

static ARMED: AtomicBool = AtomicBool::new(false);
static HITS: AtomicUsize = AtomicUsize::new(0);
/// Fixed storage: the allocator must never allocate, nor wait on a lock held by an allocation.
static NEEDLES: Mutex<([[u8; NEEDLE]; MAX_NEEDLES], usize)> =
    Mutex::new(([[0; NEEDLE]; MAX_NEEDLES], 0));

/// The scanning allocator.
pub struct Scanning;

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
            // SAFETY: see the impl comment.
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
pub fn freed_blocks_holding<T>(keys: &[&[u8; 32]], case: impl FnOnce() -> T) -> (usize, T) {
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
    let out = case();
    ARMED.store(false, Ordering::SeqCst);
    (HITS.load(Ordering::SeqCst), out)
}
