//! The per-message keys: HKDF from the input key, salt and context; the commitment; the nonces.

use super::{COMMITMENT_SIZE, MAX_CHUNKS, PREFIX_SIZE, SALT_SIZE, TAG_SIZE};
use crate::aead::{Backend, ChunkAead, KEY_LEN, NONCE_LEN, new_aead};
use crate::error::{Error, Result};
use crate::kdf::{ct_eq, hkdf_expand};
use zeroize::Zeroizing;

/// The per-message AEAD key and base nonce derived from the input key, salt and context.
pub(crate) struct ChunkKeys {
    aead: Box<dyn ChunkAead>,
    base_nonce: [u8; NONCE_LEN],
}

impl ChunkKeys {
    /// `key || base_nonce || commitment = HKDF-Expand(input_key, label || salt || context, 76)`.
    pub(crate) fn derive(
        backend: Backend,
        input_key: &[u8],
        salt: &[u8; SALT_SIZE],
        context: &[u8],
    ) -> Result<(ChunkKeys, [u8; COMMITMENT_SIZE])> {
        if input_key.len() != KEY_LEN {
            return Err(Error::InvalidKeySize(input_key.len()));
        }
        let mut okm = Zeroizing::new([0u8; KEY_LEN + NONCE_LEN + COMMITMENT_SIZE]);
        hkdf_expand(
            input_key,
            &[
                b"c2sp.org/chunked-encryption@v1+AEAD_AES_256_GCM\0",
                salt,
                context,
            ],
            &mut okm[..],
        );
        let aead = new_aead(backend, &okm[..KEY_LEN])?;
        let mut base_nonce = [0u8; NONCE_LEN];
        base_nonce.copy_from_slice(&okm[KEY_LEN..KEY_LEN + NONCE_LEN]);
        let mut commitment = [0u8; COMMITMENT_SIZE];
        commitment.copy_from_slice(&okm[KEY_LEN + NONCE_LEN..]);
        Ok((ChunkKeys { aead, base_nonce }, commitment))
    }

    /// Derive the keys and check `commitment` (constant time) before any chunk is touched.
    pub(crate) fn derive_checked(
        backend: Backend,
        input_key: &[u8],
        prefix: &[u8; PREFIX_SIZE],
        context: &[u8],
    ) -> Result<ChunkKeys> {
        let (salt, stored) = split_prefix(prefix);
        let (keys, derived) = ChunkKeys::derive(backend, input_key, salt, context)?;
        if ct_eq(&derived, stored) {
            Ok(keys)
        } else {
            Err(Error::Commitment)
        }
    }

    /// `base_nonce XOR be96(index)`.
    fn nonce(&self, index: u64) -> Result<[u8; NONCE_LEN]> {
        if index >= MAX_CHUNKS {
            return Err(Error::TooLong);
        }
        let mut nonce = self.base_nonce;
        for (n, c) in nonce[4..].iter_mut().zip(index.to_be_bytes()) {
            *n ^= c;
        }
        Ok(nonce)
    }

    /// Seal chunk `index` in place; returns its tag.
    pub(crate) fn seal_chunk(&self, index: u64, buf: &mut [u8]) -> Result<[u8; TAG_SIZE]> {
        let nonce = self.nonce(index)?;
        Ok(self.aead.seal_in_place(&nonce, &[], buf))
    }

    /// Seal chunk `index` from `buf[..len]` into `buf[shift..]` (`len = buf.len() - shift`);
    /// returns its tag.
    pub(crate) fn seal_chunk_shifted(
        &self,
        index: u64,
        buf: &mut [u8],
        shift: usize,
    ) -> Result<[u8; TAG_SIZE]> {
        let nonce = self.nonce(index)?;
        Ok(self.aead.seal_shifted(&nonce, &[], buf, shift))
    }

    /// Whether opening into the caller's buffer saves a copy with this backend.
    pub(crate) fn out_of_place(&self) -> bool {
        self.aead.out_of_place()
    }

    /// Open an encrypted chunk (`ciphertext || tag`) from `enc` into `out`, which must hold the
    /// plaintext length; returns it. On failure `out` holds no plaintext.
    pub(crate) fn open_encrypted_chunk_into(
        &self,
        index: u64,
        enc: &[u8],
        out: &mut [u8],
        last: bool,
    ) -> Result<usize> {
        let Some(pt_len) = enc.len().checked_sub(TAG_SIZE) else {
            return Err(Error::Truncated);
        };
        let (body, tag) = enc.split_at(pt_len);
        let tag: [u8; TAG_SIZE] = match tag.try_into() {
            Ok(t) => t,
            Err(_) => return Err(Error::Truncated),
        };
        let nonce = self.nonce(index)?;
        self.aead
            .open_into(&nonce, &[], body, &mut out[..pt_len], &tag)
            .map_err(|_| {
                if last {
                    Error::BadFinalChunk { index }
                } else {
                    Error::TamperedChunk { index }
                }
            })?;
        Ok(pt_len)
    }

    /// Open the encrypted chunk (`ciphertext || tag`) `buf[src..]`, writing its plaintext to the
    /// front of `buf`. On failure the caller must discard all of `buf`.
    pub(crate) fn open_chunk_shifted(
        &self,
        index: u64,
        buf: &mut [u8],
        src: usize,
        last: bool,
    ) -> Result<()> {
        let Some(tag_at) = buf.len().checked_sub(TAG_SIZE).filter(|&t| t >= src) else {
            return Err(Error::Truncated);
        };
        let (body, tag) = buf.split_at_mut(tag_at);
        let tag: [u8; TAG_SIZE] = match (&*tag).try_into() {
            Ok(t) => t,
            Err(_) => return Err(Error::Truncated),
        };
        let nonce = self.nonce(index)?;
        self.aead
            .open_shifted(&nonce, &[], body, src, &tag)
            .map_err(|_| {
                if last {
                    Error::BadFinalChunk { index }
                } else {
                    Error::TamperedChunk { index }
                }
            })
    }

    /// Open chunk `index` in place. `last` only chooses the error reported.
    pub(crate) fn open_chunk(
        &self,
        index: u64,
        buf: &mut [u8],
        tag: &[u8; TAG_SIZE],
        last: bool,
    ) -> Result<()> {
        let nonce = self.nonce(index)?;
        self.aead.open_in_place(&nonce, &[], buf, tag).map_err(|_| {
            if last {
                Error::BadFinalChunk { index }
            } else {
                Error::TamperedChunk { index }
            }
        })
    }

    /// Open an encrypted chunk (`ciphertext || tag`) in place and return its plaintext length.
    pub(crate) fn open_encrypted_chunk(
        &self,
        index: u64,
        enc: &mut [u8],
        last: bool,
    ) -> Result<usize> {
        let Some(pt_len) = enc.len().checked_sub(TAG_SIZE) else {
            return Err(Error::Truncated);
        };
        let (body, tag) = enc.split_at_mut(pt_len);
        let tag: [u8; TAG_SIZE] = match (&*tag).try_into() {
            Ok(t) => t,
            Err(_) => return Err(Error::Truncated),
        };
        self.open_chunk(index, body, &tag, last)?;
        Ok(pt_len)
    }
}

fn split_prefix(prefix: &[u8; PREFIX_SIZE]) -> (&[u8; SALT_SIZE], &[u8; COMMITMENT_SIZE]) {
    let (salt, commitment) = prefix.split_at(SALT_SIZE);
    match (salt.try_into(), commitment.try_into()) {
        (Ok(s), Ok(c)) => (s, c),
        _ => unreachable!("prefix is salt || commitment"),
    }
}
