//! A global allocator for key-wipe tests: it wraps the system allocator and, while armed, scans
//! every block handed back to it for the bytes of the keys in play.
//!
//! Install it in a test binary that has no other test running at the same time (one `#[test]` per
//! binary), then wrap each case in [`freed_blocks_holding`]:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: kmsbox_test_support::scanning_alloc::Scanning =
//!     kmsbox_test_support::scanning_alloc::Scanning;
//! ```
//!
//! Nothing is scanned in a binary that does not install it: [`freed_blocks_holding`] then panics
//! rather than report a clean result it never checked.
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

#[allow(unsafe_code)]
// SAFETY: every call is forwarded to `System` with its own arguments; `dealloc` only reads the
// block it is about to free, which is still allocated and `layout.size()` bytes long.
unsafe impl GlobalAlloc for Scanning {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ARMED.load(Ordering::SeqCst) {
            SEEN_FREE.store(true, Ordering::SeqCst);
            // SAFETY: see the impl comment.
            let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            Scanning::scan(block);
        }
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Set by the allocator on every free, so that a case can tell it is installed.
static SEEN_FREE: AtomicBool = AtomicBool::new(false);

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
    SEEN_FREE.store(false, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
    let out = case();
    // A probe block freed while armed proves that this allocator is the global one.
    drop(std::hint::black_box(vec![0u8; 64]));
    ARMED.store(false, Ordering::SeqCst);
    assert!(
        SEEN_FREE.load(Ordering::SeqCst),
        "the scanning allocator is not installed: add #[global_allocator] static ALLOCATOR: Scanning = Scanning;"
    );
    (HITS.load(Ordering::SeqCst), out)
}
