//! The AEAD seam: AES-256-GCM with a 12-byte nonce and a detached 16-byte tag, in place.
//!
//! The chunked layer only talks to a private `ChunkAead` trait; each backend is one small type
//! behind it. Every backend produces the same bytes, so the on-disk format does not depend on which
//! one wrote it.

use crate::error::{Error, Result};

/// AES-256-GCM key length.
pub(crate) const KEY_LEN: usize = 32;
/// AES-256-GCM nonce length.
pub(crate) const NONCE_LEN: usize = 12;
/// AES-256-GCM tag length.
pub(crate) const TAG_LEN: usize = 16;

/// Which AES-256-GCM implementation seals and opens chunks. Every backend writes the same bytes.
///
/// [`Backend::default`] is ring when the `ring` feature is on (a default feature), else the
/// pure-Rust RustCrypto backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// RustCrypto `aes-gcm` 0.11: pure Rust, the default of a build without the `ring` feature.
    RustCrypto,
    /// `ring` 0.17 (feature `ring`, on by default): BoringSSL's stitched AES-GCM assembly.
    #[cfg(feature = "ring")]
    Ring,
}

impl Default for Backend {
    /// The fastest backend compiled in: ring's AES-GCM runs 3 to 5 times faster than aes-gcm 0.11
    /// on AES-NI machines, whose speed also moves with the AES code path it picks
    /// (BENCHMARKS-envelope.md).
    fn default() -> Self {
        Self::fastest()
    }
}

impl Backend {
    /// The fastest backend compiled into this build: ring when the `ring` feature is on, else
    /// RustCrypto. The same as [`Backend::default`].
    pub fn fastest() -> Backend {
        #[cfg(feature = "ring")]
        return Backend::Ring;
        #[cfg(not(feature = "ring"))]
        Backend::RustCrypto
    }

    /// Every backend compiled into this build.
    pub fn all() -> &'static [Backend] {
        &[
            Backend::RustCrypto,
            #[cfg(feature = "ring")]
            Backend::Ring,
        ]
    }
}

/// The opaque failure of an AEAD open: the tag did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpenFailed;

/// AES-256-GCM, in place with a detached tag.
pub(crate) trait ChunkAead: Send + Sync {
    /// Encrypt `buf` in place and return the tag.
    fn seal_in_place(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN];
    /// Decrypt `buf` in place if `tag` verifies. On failure `buf` holds no plaintext the caller
    /// may use (the callers discard it).
    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), OpenFailed>;

    /// Decrypt the ciphertext `buf[src..]` if `tag` verifies, writing the plaintext to the front
    /// of `buf` (`buf[..buf.len() - src]`). On failure the caller must discard all of `buf`.
    fn open_shifted(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        src: usize,
        tag: &[u8; TAG_LEN],
    ) -> Result<(), OpenFailed> {
        self.open_in_place(nonce, aad, &mut buf[src..], tag)?;
        buf.copy_within(src.., 0);
        Ok(())
    }

    /// Encrypt the plaintext `buf[..len]` and write the ciphertext to `buf[shift..shift + len]`
    /// (`buf.len() == shift + len`); returns the tag.
    fn seal_shifted(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        shift: usize,
    ) -> [u8; TAG_LEN] {
        let len = buf.len() - shift;
        let tag = self.seal_in_place(nonce, aad, &mut buf[..len]);
        buf.copy_within(..len, shift);
        tag
    }

    /// Whether [`ChunkAead::open_into`] avoids a copy (decrypts out of place).
    fn out_of_place(&self) -> bool {
        false
    }

    /// Encrypt `input` into `out` (same length) and return the tag. Test-only: the `Write`
    /// adapter copies into its chunk buffer and seals there (BENCHMARKS-envelope.md).
    #[cfg(test)]
    fn seal_into(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        input: &[u8],
        out: &mut [u8],
    ) -> [u8; TAG_LEN] {
        out.copy_from_slice(input);
        self.seal_in_place(nonce, aad, out)
    }

    /// Decrypt `input` into `out` (same length) if `tag` verifies. On failure `out` holds no
    /// plaintext: it is zeroed (or, for out-of-place backends, never written).
    fn open_into(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        input: &[u8],
        out: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), OpenFailed> {
        out.copy_from_slice(input);
        let r = self.open_in_place(nonce, aad, out, tag);
        if r.is_err() {
            out.fill(0);
        }
        r
    }
}

/// Build the backend's AEAD for a 32-byte key.
pub(crate) fn new_aead(backend: Backend, key: &[u8]) -> Result<Box<dyn ChunkAead>> {
    if key.len() != KEY_LEN {
        return Err(Error::InvalidKeySize(key.len()));
    }
    Ok(match backend {
        Backend::RustCrypto => Box::new(rustcrypto::Gcm::new(key)?),
        #[cfg(feature = "ring")]
        Backend::Ring => Box::new(ring_backend::Gcm::new(key)?),
    })
}

mod rustcrypto {
    use super::{ChunkAead, NONCE_LEN, OpenFailed, TAG_LEN};
    use crate::error::{Error, Result};
    use aes_gcm::aead::inout::InOutBuf;
    use aes_gcm::aead::{AeadInOut, KeyInit};
    use aes_gcm::{Aes256Gcm, Nonce, Tag};

    pub(super) struct Gcm(Aes256Gcm);

    impl Gcm {
        pub(super) fn new(key: &[u8]) -> Result<Self> {
            Aes256Gcm::new_from_slice(key)
                .map(Gcm)
                .map_err(|_| Error::InvalidKeySize(key.len()))
        }
    }

    impl ChunkAead for Gcm {
        fn seal_in_place(
            &self,
            nonce: &[u8; NONCE_LEN],
            aad: &[u8],
            buf: &mut [u8],
        ) -> [u8; TAG_LEN] {
            // aes-gcm only fails for inputs longer than 2^36 bytes; chunks are 16 KiB.
            match self
                .0
                .encrypt_inout_detached(&Nonce::from(*nonce), aad, buf.into())
            {
                Ok(tag) => tag.into(),
                Err(_) => unreachable!("AES-GCM input within limits"),
            }
        }

        fn open_in_place(
            &self,
            nonce: &[u8; NONCE_LEN],
            aad: &[u8],
            buf: &mut [u8],
            tag: &[u8; TAG_LEN],
        ) -> Result<(), OpenFailed> {
            self.0
                .decrypt_inout_detached(&Nonce::from(*nonce), aad, buf.into(), &Tag::from(*tag))
                .map_err(|_| OpenFailed)
        }

        fn out_of_place(&self) -> bool {
            true
        }

        // `seal_shifted` / `open_shifted` keep the defaults (in place, then a move of the
        // cache-hot chunk), and there is no out-of-place seal: see BENCHMARKS-envelope.md.

        /// aes-gcm verifies the tag before it decrypts, so `out` is untouched on failure.
        fn open_into(
            &self,
            nonce: &[u8; NONCE_LEN],
            aad: &[u8],
            input: &[u8],
            out: &mut [u8],
            tag: &[u8; TAG_LEN],
        ) -> Result<(), OpenFailed> {
            let Ok(buf) = InOutBuf::new(input, out) else {
                unreachable!("open_into: input and output lengths differ")
            };
            self.0
                .decrypt_inout_detached(&Nonce::from(*nonce), aad, buf, &Tag::from(*tag))
                .map_err(|_| OpenFailed)
        }
    }
}

#[cfg(feature = "ring")]
mod ring_backend {
    use super::{ChunkAead, NONCE_LEN, OpenFailed, TAG_LEN};
    use crate::error::{Error, Result};
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};

    pub(super) struct Gcm(LessSafeKey);

    impl Gcm {
        pub(super) fn new(key: &[u8]) -> Result<Self> {
            UnboundKey::new(&AES_256_GCM, key)
                .map(|k| Gcm(LessSafeKey::new(k)))
                .map_err(|_| Error::InvalidKeySize(key.len()))
        }
    }

    /// ring neither zeroizes its key schedules nor exposes them. A key schedule is plain data
    /// stored inline, so assigning the schedule of an all-zero key overwrites the old one where
    /// it lies; `black_box` keeps the compiler from dropping that store as dead before the free.
    /// `tests/key_wipe.rs` checks that no freed block still holds the key.
    impl Drop for Gcm {
        fn drop(&mut self) {
            if let Ok(zero) = UnboundKey::new(&AES_256_GCM, &[0u8; super::KEY_LEN]) {
                self.0 = LessSafeKey::new(zero);
                std::hint::black_box(&self.0);
            }
        }
    }

    impl ChunkAead for Gcm {
        fn seal_in_place(
            &self,
            nonce: &[u8; NONCE_LEN],
            aad: &[u8],
            buf: &mut [u8],
        ) -> [u8; TAG_LEN] {
            match self.0.seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                buf,
            ) {
                Ok(tag) => {
                    let mut out = [0u8; TAG_LEN];
                    out.copy_from_slice(tag.as_ref());
                    out
                }
                Err(_) => unreachable!("AES-GCM input within limits"),
            }
        }

        fn open_in_place(
            &self,
            nonce: &[u8; NONCE_LEN],
            aad: &[u8],
            buf: &mut [u8],
            tag: &[u8; TAG_LEN],
        ) -> Result<(), OpenFailed> {
            self.0
                .open_in_place_separate_tag(
                    Nonce::assume_unique_for_key(*nonce),
                    Aad::from(aad),
                    Tag::from(*tag),
                    buf,
                    0..,
                )
                .map(|_| ())
                .map_err(|_| OpenFailed)
        }

        /// ring decrypts from `buf[src..]` to `buf[..]` in one pass (no separate move).
        fn open_shifted(
            &self,
            nonce: &[u8; NONCE_LEN],
            aad: &[u8],
            buf: &mut [u8],
            src: usize,
            tag: &[u8; TAG_LEN],
        ) -> Result<(), OpenFailed> {
            self.0
                .open_in_place_separate_tag(
                    Nonce::assume_unique_for_key(*nonce),
                    Aad::from(aad),
                    Tag::from(*tag),
                    buf,
                    src..,
                )
                .map(|_| ())
                .map_err(|_| OpenFailed)
        }
    }
}

#[cfg(test)]
mod tests {
    //! Wycheproof AES-GCM (256-bit key, 96-bit nonce, 128-bit tag) through the seam.
    use super::*;

    // The crate's tests always build with `ring` (the dev-dependency on itself turns it on).
    #[test]
    fn the_default_backend_is_the_fastest_compiled_in_ring() {
        assert_eq!(Backend::default(), Backend::Ring);
        assert_eq!(Backend::default(), Backend::fastest());
    }

    fn vectors() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testdata/wycheproof/testvectors_v1/aes_gcm_test.json"
        );
        let text = std::fs::read_to_string(path).expect("read aes_gcm_test.json");
        serde_json::from_str(&text).expect("parse aes_gcm_test.json")
    }

    fn hex(v: &serde_json::Value) -> Vec<u8> {
        hex::decode(v.as_str().expect("hex string")).expect("hex")
    }

    #[test]
    fn wycheproof_aes_256_gcm() {
        for &backend in Backend::all() {
            let mut ran = 0;
            let v = vectors();
            for group in v["testGroups"].as_array().expect("groups") {
                if group["keySize"] != 256 || group["ivSize"] != 96 || group["tagSize"] != 128 {
                    continue;
                }
                for t in group["tests"].as_array().expect("tests") {
                    let id = &t["tcId"];
                    let (key, iv, aad, msg, ct, tag) = (
                        hex(&t["key"]),
                        hex(&t["iv"]),
                        hex(&t["aad"]),
                        hex(&t["msg"]),
                        hex(&t["ct"]),
                        hex(&t["tag"]),
                    );
                    let valid = t["result"] != "invalid";
                    let aead = new_aead(backend, &key).expect("key");
                    let nonce: [u8; 12] = iv.as_slice().try_into().expect("96-bit iv");
                    let tag: [u8; 16] = tag.as_slice().try_into().expect("128-bit tag");
                    let mut buf = ct.clone();
                    let opened = aead.open_in_place(&nonce, &aad, &mut buf, &tag);
                    let mut out = vec![0xEEu8; ct.len()];
                    let opened_into = aead.open_into(&nonce, &aad, &ct, &mut out, &tag);
                    assert_eq!(opened.is_ok(), opened_into.is_ok(), "{backend:?} tcId {id}");
                    if opened_into.is_ok() {
                        assert_eq!(out, msg, "{backend:?} tcId {id}: open_into");
                    } else {
                        assert!(
                            out.iter().all(|&b| b == 0xEE) || out.iter().all(|&b| b == 0),
                            "{backend:?} tcId {id}: open_into left output"
                        );
                    }
                    for shift in [0usize, 1, 16, 57, ct.len(), ct.len() + 3] {
                        let mut shifted = vec![0xEEu8; shift];
                        shifted.extend_from_slice(&ct);
                        let r = aead.open_shifted(&nonce, &aad, &mut shifted, shift, &tag);
                        assert_eq!(r.is_ok(), valid, "{backend:?} tcId {id}: open_shifted");
                        if r.is_ok() {
                            assert_eq!(&shifted[..msg.len()], &msg[..], "{backend:?} tcId {id}");
                        }
                    }
                    if valid {
                        assert!(opened.is_ok(), "{backend:?} tcId {id}: open failed");
                        assert_eq!(buf, msg, "{backend:?} tcId {id}: plaintext");
                        let mut buf = msg.clone();
                        let sealed_tag = aead.seal_in_place(&nonce, &aad, &mut buf);
                        assert_eq!(buf, ct, "{backend:?} tcId {id}: ciphertext");
                        assert_eq!(sealed_tag, tag, "{backend:?} tcId {id}: tag");
                        for shift in [0usize, 1, 16, 57, msg.len(), msg.len() + 3] {
                            let mut buf = msg.clone();
                            buf.resize(msg.len() + shift, 0xEE);
                            let t = aead.seal_shifted(&nonce, &aad, &mut buf, shift);
                            assert_eq!(&buf[shift..], &ct[..], "{backend:?} tcId {id}: shifted");
                            assert_eq!(t, tag, "{backend:?} tcId {id}: seal_shifted tag");
                        }
                        let mut out = vec![0u8; msg.len()];
                        let t2 = aead.seal_into(&nonce, &aad, &msg, &mut out);
                        assert_eq!(out, ct, "{backend:?} tcId {id}: seal_into");
                        assert_eq!(t2, tag, "{backend:?} tcId {id}: seal_into tag");
                    } else {
                        assert!(
                            opened.is_err(),
                            "{backend:?} tcId {id}: invalid vector opened"
                        );
                    }
                    ran += 1;
                }
            }
            assert!(ran > 20, "{backend:?}: only {ran} AES-256-GCM vectors ran");
        }
    }

    #[test]
    fn rejects_short_and_long_keys() {
        for &backend in Backend::all() {
            assert!(matches!(
                new_aead(backend, &[0u8; 16]),
                Err(Error::InvalidKeySize(16))
            ));
            assert!(matches!(
                new_aead(backend, &[0u8; 33]),
                Err(Error::InvalidKeySize(33))
            ));
        }
    }
}
