//! HKDF-Expand (RFC 5869, section 2.3) with HMAC-SHA-512, and the truncated-HMAC tags of the header
//! and the manifest.
//!
//! C2SP chunked encryption uses the 32-byte input key directly as the HKDF PRK. The `hkdf` crate's
//! `Hkdf::from_prk` rejects a PRK shorter than the hash output (64 bytes for SHA-512), so the expand
//! step is computed here over the `hmac` crate that `hkdf` re-exports; the C2SP vectors pin it.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha512;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

type HmacSha512 = Hmac<Sha512>;

/// SHA-512 output length.
const HASH_LEN: usize = 64;

/// `HKDF-Expand(prk, info_0 || info_1 || ..., out.len())`; `out.len()` must be at most 255 * 64.
pub(crate) fn hkdf_expand(prk: &[u8], info: &[&[u8]], out: &mut [u8]) {
    assert!(out.len() <= 255 * HASH_LEN, "HKDF-Expand output too long");
    let mut prev = [0u8; HASH_LEN];
    let mut have_prev = false;
    // Block counters 1, 2, ...: at most 255 blocks by the assertion above.
    for (counter, block) in (1..=255u8).zip(out.chunks_mut(HASH_LEN)) {
        let mut mac = new_mac(prk);
        if have_prev {
            mac.update(&prev);
        }
        for part in info {
            mac.update(part);
        }
        mac.update(&[counter]);
        prev.copy_from_slice(&mac.finalize().into_bytes());
        have_prev = true;
        block.copy_from_slice(&prev[..block.len()]);
    }
    prev.zeroize();
}

fn new_mac(key: &[u8]) -> HmacSha512 {
    // HMAC accepts keys of any length.
    match <HmacSha512 as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes any key length"),
    }
}

/// The first 32 bytes of `HMAC-SHA-512(key, data)`.
pub(crate) fn tag32(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = new_mac(key);
    mac.update(data);
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; 32];
    out.copy_from_slice(&full[..32]);
    out
}

/// Constant-time equality of two byte strings.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5869 has no SHA-512 case; this checks HKDF-Expand against the `hkdf` crate where the
    /// crate accepts the PRK (64 bytes or more), for one- and multi-block outputs.
    #[test]
    fn matches_hkdf_crate_for_full_length_prk() {
        let prk: Vec<u8> = (0u8..64).collect();
        let hk = hkdf::Hkdf::<Sha512>::from_prk(&prk).expect("64-byte prk");
        for len in [1usize, 32, 64, 65, 76, 200] {
            let mut a = vec![0u8; len];
            let mut b = vec![0u8; len];
            hk.expand(b"infoinfo", &mut a).expect("expand");
            hkdf_expand(&prk, &[b"info", b"info"], &mut b);
            assert_eq!(a, b, "len {len}");
        }
    }

    #[test]
    fn tag_is_truncated_hmac() {
        let t1 = tag32(b"k", b"data");
        let t2 = tag32(b"k", b"datb");
        assert_ne!(t1, t2);
        assert!(ct_eq(&t1, &tag32(b"k", b"data")));
        assert!(!ct_eq(&t1, &t2));
    }
}
