//! The per-object data key.

use crate::error::{Error, Result};
use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of a data key in bytes (AES-256).
pub const DATA_KEY_LEN: usize = 32;

/// A 32-byte data key: the C2SP input key of one object (or one multipart upload).
///
/// It is generated from the OS RNG, wiped on drop, cannot be cloned, and its `Debug` prints no
/// bytes.
///
/// ```compile_fail
/// let k = envelope::DataKey::generate().unwrap();
/// let copy = k.clone(); // DataKey is not Clone
/// ```
///
/// ```
/// let k = envelope::DataKey::generate()?;
/// assert_eq!(format!("{k:?}"), "DataKey(..)");
/// # Ok::<(), envelope::Error>(())
/// ```
pub struct DataKey {
    bytes: [u8; DATA_KEY_LEN],
}

impl DataKey {
    /// A fresh data key from the operating system's random number generator.
    pub fn generate() -> Result<DataKey> {
        let mut bytes = [0u8; DATA_KEY_LEN];
        getrandom::fill(&mut bytes).map_err(|_| Error::Rng)?;
        Ok(DataKey { bytes })
    }

    /// A data key from bytes that a KMS or an unwrap returned. The slice must be 32 bytes; the
    /// caller remains responsible for wiping its own copy.
    pub fn from_slice(bytes: &[u8]) -> Result<DataKey> {
        let bytes: [u8; DATA_KEY_LEN] = bytes
            .try_into()
            .map_err(|_| Error::InvalidKeySize(bytes.len()))?;
        Ok(DataKey { bytes })
    }

    /// The raw key bytes, for key wrapping and derivation inside the crate.
    pub(crate) fn expose(&self) -> &[u8; DATA_KEY_LEN] {
        &self.bytes
    }
}

impl Drop for DataKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl ZeroizeOnDrop for DataKey {}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// Fill `buf` from the OS RNG.
pub(crate) fn random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|_| Error::Rng)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_differ_and_debug_hides_bytes() {
        let a = DataKey::generate().expect("rng");
        let b = DataKey::generate().expect("rng");
        assert_ne!(a.expose(), b.expose());
        let shown = format!("{a:?}");
        assert_eq!(shown, "DataKey(..)");
    }

    #[test]
    fn from_slice_checks_length() {
        assert!(matches!(
            DataKey::from_slice(&[1u8; 31]),
            Err(Error::InvalidKeySize(31))
        ));
        let k = DataKey::from_slice(&[7u8; 32]).expect("32 bytes");
        assert_eq!(k.expose(), &[7u8; 32]);
    }
}
