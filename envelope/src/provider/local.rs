//! A local key-encryption key: AES key wrap (RFC 3394) and AES key wrap with padding (RFC 5649),
//! via RustCrypto `aes-kw`.

use super::{GeneratedKey, KeyProvider};
use crate::context::ObjectContext;
use crate::error::{Error, Result};
use crate::header::{WrapScheme, WrappedKey};
use crate::key::DataKey;
use aes_kw::KeyInit;
use std::fmt;
use zeroize::Zeroizing;

/// A local AES key-encryption key (16, 24 or 32 bytes) with an identifier that headers record.
///
/// It wraps each data key with AES-KW (RFC 3394) or AES-KWP (RFC 5649), as chosen at
/// construction; it unwraps whichever of the two a header names. `Debug` prints no key bytes.
pub struct LocalKek {
    id: String,
    kek: Zeroizing<Vec<u8>>,
    scheme: WrapScheme,
}

impl fmt::Debug for LocalKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKek")
            .field("id", &self.id)
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

impl LocalKek {
    /// A KEK that wraps with AES-KW (RFC 3394).
    pub fn aes_kw(id: impl Into<String>, kek: &[u8]) -> Result<LocalKek> {
        Self::new(id.into(), kek, WrapScheme::AesKw)
    }

    /// A KEK that wraps with AES-KWP (RFC 5649).
    pub fn aes_kwp(id: impl Into<String>, kek: &[u8]) -> Result<LocalKek> {
        Self::new(id.into(), kek, WrapScheme::AesKwp)
    }

    fn new(id: String, kek: &[u8], scheme: WrapScheme) -> Result<LocalKek> {
        if !matches!(kek.len(), 16 | 24 | 32) {
            return Err(Error::InvalidKeySize(kek.len()));
        }
        Ok(LocalKek {
            id,
            kek: Zeroizing::new(kek.to_vec()),
            scheme,
        })
    }

    /// The identifier recorded in headers.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Wrap `key` with `scheme` (AES-KW needs a multiple of 8 bytes, at least 16).
    pub fn wrap(&self, scheme: WrapScheme, key: &[u8]) -> Result<Vec<u8>> {
        let mut out = vec![0u8; key.len() + 16];
        let n = match scheme {
            WrapScheme::AesKw => {
                if key.len() < 16 || !key.len().is_multiple_of(8) {
                    return Err(Error::InvalidKeySize(key.len()));
                }
                kw_op(&self.kek, |c| c.wrap(key, &mut out))?
            }
            WrapScheme::AesKwp => {
                if key.is_empty() {
                    return Err(Error::InvalidKeySize(0));
                }
                kwp_op(&self.kek, |c| c.wrap(key, &mut out))?
            }
            WrapScheme::Kms => return Err(Error::WrongKey),
        };
        out.truncate(n);
        Ok(out)
    }

    /// Unwrap `wrapped` with `scheme`; any integrity or length failure is [`Error::WrongKey`].
    pub fn unwrap(&self, scheme: WrapScheme, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
        let n = match scheme {
            // RFC 3394 output is at least 3 semiblocks.
            WrapScheme::AesKw if wrapped.len() >= 24 && wrapped.len().is_multiple_of(8) => {
                kw_op(&self.kek, |c| c.unwrap(wrapped, &mut out))?
            }
            WrapScheme::AesKwp if wrapped.len() >= 16 && wrapped.len().is_multiple_of(8) => {
                kwp_op(&self.kek, |c| c.unwrap(wrapped, &mut out))?
            }
            _ => return Err(Error::WrongKey),
        };
        out.truncate(n);
        Ok(out)
    }
}

/// One AES-KW or AES-KWP cipher of any AES key size.
trait Wrapper {
    fn wrap(&self, key: &[u8], out: &mut [u8]) -> Result<usize>;
    fn unwrap(&self, wrapped: &[u8], out: &mut [u8]) -> Result<usize>;
}

macro_rules! wrapper {
    ($ty:ty) => {
        impl Wrapper for $ty {
            fn wrap(&self, key: &[u8], out: &mut [u8]) -> Result<usize> {
                self.wrap_key(key, out)
                    .map(|s| s.len())
                    .map_err(|_| Error::InvalidKeySize(key.len()))
            }
            fn unwrap(&self, wrapped: &[u8], out: &mut [u8]) -> Result<usize> {
                self.unwrap_key(wrapped, out)
                    .map(|s| s.len())
                    .map_err(|_| Error::WrongKey)
            }
        }
    };
}

wrapper!(aes_kw::KwAes128);
wrapper!(aes_kw::KwAes192);
wrapper!(aes_kw::KwAes256);
wrapper!(aes_kw::KwpAes128);
wrapper!(aes_kw::KwpAes192);
wrapper!(aes_kw::KwpAes256);

fn kw_op<T>(kek: &[u8], f: impl FnOnce(&dyn Wrapper) -> Result<T>) -> Result<T> {
    let bad = |_| Error::InvalidKeySize(kek.len());
    match kek.len() {
        16 => f(&aes_kw::KwAes128::new_from_slice(kek).map_err(bad)?),
        24 => f(&aes_kw::KwAes192::new_from_slice(kek).map_err(bad)?),
        32 => f(&aes_kw::KwAes256::new_from_slice(kek).map_err(bad)?),
        n => Err(Error::InvalidKeySize(n)),
    }
}

fn kwp_op<T>(kek: &[u8], f: impl FnOnce(&dyn Wrapper) -> Result<T>) -> Result<T> {
    let bad = |_| Error::InvalidKeySize(kek.len());
    match kek.len() {
        16 => f(&aes_kw::KwpAes128::new_from_slice(kek).map_err(bad)?),
        24 => f(&aes_kw::KwpAes192::new_from_slice(kek).map_err(bad)?),
        32 => f(&aes_kw::KwpAes256::new_from_slice(kek).map_err(bad)?),
        n => Err(Error::InvalidKeySize(n)),
    }
}

impl KeyProvider for LocalKek {
    fn generate_data_key(&self, key_id: &str, _context: &ObjectContext) -> Result<GeneratedKey> {
        if key_id != self.id {
            return Err(Error::WrongKey);
        }
        let data_key = DataKey::generate()?;
        let bytes = self.wrap(self.scheme, data_key.expose())?;
        Ok(GeneratedKey {
            data_key,
            key_id: self.id.clone(),
            wrapped: WrappedKey {
                scheme: self.scheme,
                bytes,
            },
        })
    }

    fn decrypt_data_key(
        &self,
        key_id: &str,
        wrapped: &WrappedKey,
        _context: &ObjectContext,
    ) -> Result<DataKey> {
        if key_id != self.id {
            return Err(Error::WrongKey);
        }
        let plain = self.unwrap(wrapped.scheme, &wrapped.bytes)?;
        DataKey::from_slice(&plain).map_err(|_| Error::WrongKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_round_trip_and_wrong_kek() {
        for kek in [
            LocalKek::aes_kw("k1", &[1u8; 32]),
            LocalKek::aes_kwp("k1", &[1u8; 16]),
        ] {
            let kek = kek.expect("kek");
            let ctx = ObjectContext::new();
            let g = kek.generate_data_key("k1", &ctx).expect("generate");
            let dk = kek
                .decrypt_data_key("k1", &g.wrapped, &ctx)
                .expect("unwrap");
            assert_eq!(dk.expose(), g.data_key.expose());
            let other = LocalKek::aes_kw("k1", &[2u8; 32]).expect("kek");
            assert!(matches!(
                other.decrypt_data_key("k1", &g.wrapped, &ctx),
                Err(Error::WrongKey)
            ));
            assert!(matches!(
                kek.decrypt_data_key("k2", &g.wrapped, &ctx),
                Err(Error::WrongKey)
            ));
            assert!(!format!("{kek:?}").contains("[1"));
        }
    }
}
