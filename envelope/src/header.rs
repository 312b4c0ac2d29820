//! The versioned object header (FORMAT.md section 2).

use crate::chunked::read_up_to;
use crate::error::{Error, Result};
use crate::kdf::{ct_eq, hkdf_expand, tag32};
use crate::key::DataKey;
use std::io::Read;
use zeroize::Zeroizing;

/// The header's magic bytes.
pub const MAGIC: &[u8; 6] = b"KBXENV";
/// The only format version this release writes and reads.
pub const VERSION: u8 = 1;
/// Suite 1: Cobblestone-256 body, header tag HMAC-SHA-512 truncated to 32 bytes.
pub const SUITE_COBBLESTONE_256: u8 = 1;
/// Longest key ID accepted.
pub const MAX_KEY_ID_LEN: usize = 1024;
/// Longest wrapped key accepted.
pub const MAX_WRAPPED_LEN: usize = 4096;
/// Length of the header tag.
pub const TAG_LEN: usize = 32;
/// Header bytes besides the key ID and the wrapped key.
pub const FIXED_LEN: usize = 46;

/// Whether the header starts a single object or a multipart upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// `header || body`.
    Single,
    /// One body per part, plus a manifest (FORMAT.md section 5).
    Multipart,
}

/// How the data key is wrapped under the CMK or KEK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrapScheme {
    /// AES key wrap, RFC 3394, under a local KEK.
    AesKw,
    /// AES key wrap with padding, RFC 5649, under a local KEK.
    AesKwp,
    /// A ciphertext blob of the kmsbox daemon (`GenerateDataKey` / `Decrypt`).
    Kms,
}

impl WrapScheme {
    fn code(self) -> u8 {
        match self {
            WrapScheme::AesKw => 1,
            WrapScheme::AesKwp => 2,
            WrapScheme::Kms => 3,
        }
    }

    fn from_code(c: u8) -> Result<Self> {
        match c {
            1 => Ok(WrapScheme::AesKw),
            2 => Ok(WrapScheme::AesKwp),
            3 => Ok(WrapScheme::Kms),
            _ => Err(Error::MalformedHeader("unknown wrap scheme")),
        }
    }
}

/// A data key wrapped under a CMK or KEK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// The wrapping scheme.
    pub scheme: WrapScheme,
    /// The wrapped bytes.
    pub bytes: Vec<u8>,
}

/// A parsed (not yet authenticated) or freshly built object header.
///
/// Parsing checks syntax only; [`Header::verify`] checks the tag under the data key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    kind: ObjectKind,
    key_id: String,
    wrapped: WrappedKey,
    bytes: Vec<u8>,
}

fn header_key(dk: &DataKey) -> Zeroizing<[u8; 32]> {
    let mut k = Zeroizing::new([0u8; 32]);
    hkdf_expand(
        dk.expose(),
        &[b"kmsbox.org/envelope@v1 header\0"],
        &mut k[..],
    );
    k
}

impl Header {
    /// Build and authenticate a header for `data_key`.
    pub fn new(
        kind: ObjectKind,
        key_id: &str,
        wrapped: WrappedKey,
        data_key: &DataKey,
    ) -> Result<Header> {
        if key_id.is_empty() || key_id.len() > MAX_KEY_ID_LEN {
            return Err(Error::MalformedHeader("key ID length"));
        }
        if wrapped.bytes.is_empty() || wrapped.bytes.len() > MAX_WRAPPED_LEN {
            return Err(Error::MalformedHeader("wrapped key length"));
        }
        let mut b = Vec::with_capacity(FIXED_LEN + key_id.len() + wrapped.bytes.len());
        b.extend_from_slice(MAGIC);
        b.push(VERSION);
        b.push(SUITE_COBBLESTONE_256);
        b.push(match kind {
            ObjectKind::Single => 0,
            ObjectKind::Multipart => 1,
        });
        // Both lengths were bounded above.
        b.extend_from_slice(&(key_id.len() as u16).to_be_bytes());
        b.extend_from_slice(key_id.as_bytes());
        b.push(wrapped.scheme.code());
        b.extend_from_slice(&(wrapped.bytes.len() as u16).to_be_bytes());
        b.extend_from_slice(&wrapped.bytes);
        let tag = tag32(&header_key(data_key)[..], &b);
        b.extend_from_slice(&tag);
        Ok(Header {
            kind,
            key_id: key_id.to_owned(),
            wrapped,
            bytes: b,
        })
    }

    /// Parse a header from the start of `bytes`; returns it and its length. Bytes after the
    /// header are ignored.
    pub fn parse(bytes: &[u8]) -> Result<(Header, usize)> {
        let mut r = bytes;
        let h = Header::read_from(&mut r)?;
        let n = h.len();
        Ok((h, n))
    }

    /// Read exactly one header from `r` (nothing after it).
    pub fn read_from<R: Read + ?Sized>(r: &mut R) -> Result<Header> {
        let mut bytes = Vec::with_capacity(128);
        let take = |r: &mut R, n: usize, bytes: &mut Vec<u8>| -> Result<()> {
            let start = bytes.len();
            bytes.resize(start + n, 0);
            if read_up_to(r, &mut bytes[start..])? != n {
                return Err(Error::Truncated);
            }
            Ok(())
        };
        take(r, MAGIC.len(), &mut bytes)?;
        if &bytes[..] != MAGIC {
            return Err(Error::BadMagic);
        }
        take(r, 3, &mut bytes)?;
        if bytes[6] != VERSION {
            return Err(Error::UnsupportedVersion(bytes[6]));
        }
        if bytes[7] != SUITE_COBBLESTONE_256 {
            return Err(Error::MalformedHeader("unknown suite"));
        }
        let kind = match bytes[8] {
            0 => ObjectKind::Single,
            1 => ObjectKind::Multipart,
            _ => return Err(Error::MalformedHeader("unknown object kind")),
        };
        take(r, 2, &mut bytes)?;
        let id_len = u16::from_be_bytes([bytes[9], bytes[10]]) as usize;
        if id_len == 0 || id_len > MAX_KEY_ID_LEN {
            return Err(Error::MalformedHeader("key ID length"));
        }
        take(r, id_len, &mut bytes)?;
        let key_id = std::str::from_utf8(&bytes[11..11 + id_len])
            .map_err(|_| Error::MalformedHeader("key ID is not UTF-8"))?
            .to_owned();
        let at = 11 + id_len;
        take(r, 3, &mut bytes)?;
        let scheme = WrapScheme::from_code(bytes[at])?;
        let w_len = u16::from_be_bytes([bytes[at + 1], bytes[at + 2]]) as usize;
        if w_len == 0 || w_len > MAX_WRAPPED_LEN {
            return Err(Error::MalformedHeader("wrapped key length"));
        }
        take(r, w_len + TAG_LEN, &mut bytes)?;
        let wrapped = WrappedKey {
            scheme,
            bytes: bytes[at + 3..at + 3 + w_len].to_vec(),
        };
        Ok(Header {
            kind,
            key_id,
            wrapped,
            bytes,
        })
    }

    /// Check the header tag under `data_key` (constant time).
    pub fn verify(&self, data_key: &DataKey) -> Result<()> {
        let (body, tag) = self.bytes.split_at(self.bytes.len() - TAG_LEN);
        let expected = tag32(&header_key(data_key)[..], body);
        if ct_eq(&expected, tag) {
            Ok(())
        } else {
            Err(Error::HeaderAuthentication)
        }
    }

    /// Single object or multipart upload.
    pub fn kind(&self) -> ObjectKind {
        self.kind
    }

    /// The CMK's full key ID (or the local KEK's identifier).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The wrapped data key.
    pub fn wrapped_key(&self) -> &WrappedKey {
        &self.wrapped
    }

    /// The encoded header, tag included.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The encoded length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a header is never empty (present for API symmetry with `len`).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dk: &DataKey) -> Header {
        Header::new(
            ObjectKind::Single,
            "region:domain:key/1234",
            WrappedKey {
                scheme: WrapScheme::AesKw,
                bytes: vec![0xAB; 40],
            },
            dk,
        )
        .expect("header")
    }

    #[test]
    fn round_trip_and_layout() {
        let dk = DataKey::from_slice(&[9u8; 32]).expect("dk");
        let h = sample(&dk);
        assert_eq!(h.len(), FIXED_LEN + 22 + 40);
        assert_eq!(&h.as_bytes()[..6], MAGIC);
        let mut with_tail = h.as_bytes().to_vec();
        with_tail.extend_from_slice(b"body");
        let (p, n) = Header::parse(&with_tail).expect("parse");
        assert_eq!(n, h.len());
        assert_eq!(p, h);
        p.verify(&dk).expect("verify");
        let other = DataKey::from_slice(&[8u8; 32]).expect("dk");
        assert!(matches!(p.verify(&other), Err(Error::HeaderAuthentication)));
    }

    #[test]
    fn every_bit_flip_is_caught() {
        let dk = DataKey::from_slice(&[9u8; 32]).expect("dk");
        let h = sample(&dk);
        for i in 0..h.len() * 8 {
            let mut b = h.as_bytes().to_vec();
            b[i / 8] ^= 1 << (i % 8);
            if let Ok((p, _)) = Header::parse(&b) {
                assert!(p.verify(&dk).is_err(), "bit {i} accepted");
            }
        }
    }

    #[test]
    fn typed_parse_errors() {
        let dk = DataKey::from_slice(&[9u8; 32]).expect("dk");
        let h = sample(&dk).as_bytes().to_vec();
        let mut b = h.clone();
        b[0] = b'X';
        assert!(matches!(Header::parse(&b), Err(Error::BadMagic)));
        let mut b = h.clone();
        b[6] = 2;
        assert!(matches!(
            Header::parse(&b),
            Err(Error::UnsupportedVersion(2))
        ));
        let mut b = h.clone();
        b[7] = 9;
        assert!(matches!(Header::parse(&b), Err(Error::MalformedHeader(_))));
        for cut in 0..h.len() {
            assert!(
                matches!(Header::parse(&h[..cut]), Err(Error::Truncated)),
                "cut {cut}"
            );
        }
    }
}
