//! The data path's random number generator: data keys, blob nonces and GenerateRandom's bytes.
//!
//! One ChaCha20 generator per thread with fast key erasure (D. J. Bernstein, "Fast-key-erasure
//! random-number generators", 2017), keyed from the operating system's generator and keyed from it
//! afresh every [`RESEED_REFILLS`] refills. A refill runs ChaCha20 once under the key: the
//! keystream's first 32 bytes replace the key before anything is handed out, and the next
//! [`POOL`] bytes are the pool that draws take from; each byte handed out is zeroed in the pool at
//! once. Reading the generator's state therefore reveals no output it gave before (only the pool's
//! bytes not yet given). A draw costs a copy and a fraction of a refill where `getrandom` costs a
//! system call (BENCHMARKS.md); CMK and root key material still come straight from the OS
//! (SECURITY.md).

use std::cell::RefCell;

use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use zeroize::{Zeroize, Zeroizing};

/// Refills between two keys from the operating system.
pub(super) const RESEED_REFILLS: u32 = 64;

/// The bytes of the next key at the head of each refill's keystream.
const KEY: usize = 32;

/// The bytes one refill makes for draws to take from. With the next key before them they are
/// eight ChaCha20 blocks made in one call, two of the AVX2 backend's four-block batches: the key
/// and the pool made in two calls cost six batches, as a lone or trailing block costs a whole one.
const POOL: usize = 512 - KEY;

/// One thread's generator: its key and pool, wiped on drop (so at thread exit).
struct Generator {
    key: Zeroizing<[u8; KEY]>,
    /// The last refill's keystream: the next key's bytes (zero once moved into `key`), then the
    /// pool.
    refill: Zeroizing<[u8; KEY + POOL]>,
    /// Where the pool's bytes not yet handed out begin, in `refill`; every byte before is zero.
    taken: usize,
    refills_left: u32,
}

impl Generator {
    fn new() -> Result<Self, getrandom::Error> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut *key)?;
        Ok(Self {
            key,
            refill: Zeroizing::new([0u8; KEY + POOL]),
            taken: KEY + POOL,
            refills_left: RESEED_REFILLS,
        })
    }

    fn fill(&mut self, out: &mut [u8]) -> Result<(), getrandom::Error> {
        if out.len() > POOL {
            // A large draw has a key to itself.
            self.refill_key()?;
            draw(&mut self.key, out);
            return Ok(());
        }
        if KEY + POOL - self.taken < out.len() {
            self.refill()?;
        }
        let given = &mut self.refill[self.taken..self.taken + out.len()];
        out.copy_from_slice(given);
        given.zeroize();
        self.taken += out.len();
        Ok(())
    }

    /// A new pool, and the key replaced by the keystream's first bytes, in one ChaCha20 call.
    fn refill(&mut self) -> Result<(), getrandom::Error> {
        self.refill_key()?;
        self.refill.fill(0);
        keystream(&self.key).apply_keystream(&mut *self.refill);
        let next = &mut self.refill[..KEY];
        self.key.copy_from_slice(next);
        next.zeroize();
        self.taken = KEY;
        Ok(())
    }

    /// Counts a use of the key, and takes a new one from the OS when its count is spent.
    fn refill_key(&mut self) -> Result<(), getrandom::Error> {
        if self.refills_left == 0 {
            getrandom::fill(&mut *self.key)?;
            self.refills_left = RESEED_REFILLS;
        }
        self.refills_left -= 1;
        Ok(())
    }
}

thread_local! {
    static GENERATOR: RefCell<Option<Generator>> = const { RefCell::new(None) };
}

/// Fills `buf` with random bytes.
pub(super) fn fill(buf: &mut [u8]) -> Result<(), getrandom::Error> {
    GENERATOR.with_borrow_mut(|slot| {
        let generator = match slot {
            Some(g) => g,
            None => slot.insert(Generator::new()?),
        };
        generator.fill(buf)
    })
}

/// The one keystream a key is used for: ChaCha20 (RFC 8439) with a zero nonce, from block 0.
/// chacha20's `zeroize` feature wipes its state when it drops.
fn keystream(key: &[u8; KEY]) -> ChaCha20 {
    ChaCha20::new(&(*key).into(), &[0u8; 12].into())
}

/// One use of `key` for a draw larger than the pool: its [`keystream`]'s first 32 bytes replace
/// `key`, the next `buf.len()` fill `buf`, as a refill's do.
fn draw(key: &mut [u8; KEY], buf: &mut [u8]) {
    let mut cipher = keystream(key);
    key.fill(0);
    cipher.apply_keystream(key);
    buf.fill(0);
    cipher.apply_keystream(buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8439, appendix A.1, test vector 1: ChaCha20's block 0 under the all-zero key and nonce.
    const ZERO_KEY_BLOCK_0: &str = "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7\
                                    da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586";

    #[test]
    fn a_draw_takes_the_next_key_first_and_then_the_output() {
        let block = hex::decode(ZERO_KEY_BLOCK_0).unwrap();
        let mut key = [0u8; 32];
        let mut out = [0xAAu8; 32];
        draw(&mut key, &mut out);
        assert_eq!(key.as_slice(), &block[..32], "the next key");
        assert_eq!(out.as_slice(), &block[32..], "the output");
    }

    #[test]
    fn a_drawn_key_is_never_used_again() {
        let mut key = [0u8; 32];
        let mut first = [0u8; 32];
        let mut second = [0u8; 32];
        draw(&mut key, &mut first);
        draw(&mut key, &mut second);
        assert_ne!(first, second);
    }

    #[test]
    fn draws_come_from_the_pool_in_order_and_leave_zeros_behind() {
        let mut g = Generator::new().unwrap();
        let mut key = *g.key;
        let mut block = vec![0u8; POOL];
        draw(&mut key, &mut block);
        let mut first = [0u8; 12];
        let mut second = [0u8; 44];
        g.fill(&mut first).unwrap();
        g.fill(&mut second).unwrap();
        assert_eq!(first.as_slice(), &block[..12]);
        assert_eq!(second.as_slice(), &block[12..56]);
        assert_eq!(*g.key, key, "the key that made the pool is gone");
        assert!(
            g.refill[..KEY + 56].iter().all(|&b| b == 0),
            "the next key's bytes and the handed-out bytes are wiped"
        );
        assert_eq!(&g.refill[KEY + 56..], &block[56..]);
    }

    #[test]
    fn a_draw_larger_than_what_is_left_refills_and_the_os_rekeys_after_its_count() {
        let mut g = Generator::new().unwrap();
        let mut out = [0u8; 300];
        g.fill(&mut out).unwrap();
        assert_eq!(g.refills_left, RESEED_REFILLS - 1);
        g.fill(&mut out).unwrap(); // 180 left: a refill
        assert_eq!((g.refills_left, g.taken), (RESEED_REFILLS - 2, KEY + 300));
        let mut big = vec![0u8; POOL + 1];
        g.fill(&mut big).unwrap(); // its own key, the pool untouched
        assert_eq!((g.refills_left, g.taken), (RESEED_REFILLS - 3, KEY + 300));
        // Spend the count: the next refill takes its key from the OS, not from the keystream.
        g.refills_left = 0;
        let mut key = *g.key;
        draw(&mut key, &mut [0u8; POOL]);
        g.fill(&mut out).unwrap();
        assert_eq!(g.refills_left, RESEED_REFILLS - 1);
        assert_ne!(*g.key, key);
    }

    #[test]
    fn each_thread_has_its_own_generator() {
        let draw_n = || {
            let mut out = vec![0u8; 32];
            fill(&mut out).unwrap();
            out
        };
        let here = draw_n();
        let there = std::thread::scope(|s| s.spawn(draw_n).join().unwrap());
        assert_ne!(here, there);
    }

    #[test]
    fn draws_of_every_size_are_filled() {
        for len in [1, 12, 32, 44, 64, 65, POOL, POOL + 1, 4096] {
            // At least 16 bytes in draws of `len`, so that two runs match by chance with a
            // probability of 2^-128, not 1/256 as two one-byte draws would.
            let run = || {
                let mut out = vec![0u8; len * 16usize.div_ceil(len)];
                for draw in out.chunks_mut(len) {
                    fill(draw).unwrap();
                }
                out
            };
            assert_ne!(run(), run(), "{len} bytes");
        }
    }
}
