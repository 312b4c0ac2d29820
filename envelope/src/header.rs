//! The versioned object header (FORMAT.md section 2).

use crate::error::{Error, Result};
use crate::fill::read_exact_or_truncated;
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

// Field offsets (FORMAT.md section 2): magic, version, suite, kind, key ID length, key ID, then
// (after the key ID) the wrap scheme and the wrapped key's length, the wrapped key and the tag.
const VERSION_AT: usize = MAGIC.len();
const SUITE_AT: usize = VERSION_AT + 1;
const KIND_AT: usize = SUITE_AT + 1;
const KEY_ID_LEN_AT: usize = KIND_AT + 1;
const KEY_ID_AT: usize = KEY_ID_LEN_AT + 2;
/// Wrap scheme (1 byte) and wrapped key length (2 bytes), after the key ID.
const WRAP_FIELDS_LEN: usize = 3;
const _: () = assert!(KEY_ID_AT + WRAP_FIELDS_LEN + TAG_LEN == FIXED_LEN);

fn be16(b: &[u8], at: usize) -> usize {
    usize::from(u16::from_be_bytes([b[at], b[at + 1]]))
}

/// The I/O-free header decoder: it judges the fields read so far and says how many more bytes
/// the header needs, so the `std::io` and tokio readers take exactly the header from their source
/// (nothing after it). Drive it with [`HeaderDecoder::step`] until it yields the header.
#[derive(Debug)]
pub(crate) struct HeaderDecoder {
    bytes: Vec<u8>,
}

/// What a [`HeaderDecoder`] wants next.
#[derive(Debug)]
pub(crate) enum HeaderStep<'a> {
    /// Fill this buffer exactly from the source; fewer bytes is [`Error::Truncated`].
    Read(&'a mut [u8]),
    /// The complete header (syntax checked, tag not yet verified).
    Done(Header),
}

impl HeaderDecoder {
    pub(crate) fn new() -> HeaderDecoder {
        HeaderDecoder {
            bytes: Vec::with_capacity(128),
        }
    }

    /// Check the fields read so far; then either the buffer for the next read or the header.
    pub(crate) fn step(&mut self) -> Result<HeaderStep<'_>> {
        let more = Self::needs(&self.bytes)?;
        if more == 0 {
            let bytes = std::mem::take(&mut self.bytes);
            return Header::from_complete(bytes).map(HeaderStep::Done);
        }
        let start = self.bytes.len();
        self.bytes.resize(start + more, 0);
        Ok(HeaderStep::Read(&mut self.bytes[start..]))
    }

    /// Bytes the header needs after `b` (0: complete), checking each group of fields once it is
    /// whole, in format order.
    fn needs(b: &[u8]) -> Result<usize> {
        let need = |end: usize| end.saturating_sub(b.len());
        if b.len() < VERSION_AT {
            return Ok(need(VERSION_AT));
        }
        if &b[..VERSION_AT] != MAGIC {
            return Err(Error::BadMagic);
        }
        if b.len() < KEY_ID_LEN_AT {
            return Ok(need(KEY_ID_LEN_AT));
        }
        if b[VERSION_AT] != VERSION {
            return Err(Error::UnsupportedVersion(b[VERSION_AT]));
        }
        if b[SUITE_AT] != SUITE_COBBLESTONE_256 {
            return Err(Error::MalformedHeader("unknown suite"));
        }
        kind_of(b[KIND_AT])?;
        if b.len() < KEY_ID_AT {
            return Ok(need(KEY_ID_AT));
        }
        let id_len = be16(b, KEY_ID_LEN_AT);
        if id_len == 0 || id_len > MAX_KEY_ID_LEN {
            return Err(Error::MalformedHeader("key ID length"));
        }
        let wrap_at = KEY_ID_AT + id_len;
        if b.len() < wrap_at {
            return Ok(need(wrap_at));
        }
        std::str::from_utf8(&b[KEY_ID_AT..wrap_at])
            .map_err(|_| Error::MalformedHeader("key ID is not UTF-8"))?;
        let wrapped_at = wrap_at + WRAP_FIELDS_LEN;
        if b.len() < wrapped_at {
            return Ok(need(wrapped_at));
        }
        WrapScheme::from_code(b[wrap_at])?;
        let w_len = be16(b, wrap_at + 1);
        if w_len == 0 || w_len > MAX_WRAPPED_LEN {
            return Err(Error::MalformedHeader("wrapped key length"));
        }
        Ok(need(wrapped_at + w_len + TAG_LEN))
    }
}

fn kind_of(code: u8) -> Result<ObjectKind> {
    match code {
        0 => Ok(ObjectKind::Single),
        1 => Ok(ObjectKind::Multipart),
        _ => Err(Error::MalformedHeader("unknown object kind")),
    }
}

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

/// A length the constructor has bounded (to [`MAX_KEY_ID_LEN`] or [`MAX_WRAPPED_LEN`]) as the
/// format's 16-bit field.
fn len16(n: usize) -> Result<u16> {
    u16::try_from(n).map_err(|_| Error::MalformedHeader("length field"))
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
        b.extend_from_slice(&len16(key_id.len())?.to_be_bytes());
        b.extend_from_slice(key_id.as_bytes());
        b.push(wrapped.scheme.code());
        b.extend_from_slice(&len16(wrapped.bytes.len())?.to_be_bytes());
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
        let mut decoder = HeaderDecoder::new();
        loop {
            match decoder.step()? {
                HeaderStep::Read(buf) => read_exact_or_truncated(r, buf)?,
                HeaderStep::Done(h) => return Ok(h),
            }
        }
    }

    /// The header in `bytes`, which [`HeaderDecoder`] has checked whole.
    fn from_complete(bytes: Vec<u8>) -> Result<Header> {
        let id_len = be16(&bytes, KEY_ID_LEN_AT);
        let wrap_at = KEY_ID_AT + id_len;
        let w_len = be16(&bytes, wrap_at + 1);
        let wrapped_at = wrap_at + WRAP_FIELDS_LEN;
        let key_id = std::str::from_utf8(&bytes[KEY_ID_AT..wrap_at])
            .map_err(|_| Error::MalformedHeader("key ID is not UTF-8"))?
            .to_owned();
        Ok(Header {
            kind: kind_of(bytes[KIND_AT])?,
            key_id,
            wrapped: WrappedKey {
                scheme: WrapScheme::from_code(bytes[wrap_at])?,
                bytes: bytes[wrapped_at..wrapped_at + w_len].to_vec(),
            },
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
    fn the_decoder_asks_for_exactly_the_header() {
        let dk = DataKey::from_slice(&[9u8; 32]).expect("dk");
        let h = sample(&dk);
        let mut d = HeaderDecoder::new();
        let (mut at, mut asks) = (0, Vec::new());
        let parsed = loop {
            match d.step().expect("step") {
                HeaderStep::Read(buf) => {
                    asks.push(buf.len());
                    buf.copy_from_slice(&h.as_bytes()[at..at + buf.len()]);
                    at += buf.len();
                }
                HeaderStep::Done(p) => break p,
            }
        };
        assert_eq!(parsed, h);
        assert_eq!(at, h.len());
        // Magic; version, suite, kind; key ID length; key ID; scheme and length; key and tag.
        assert_eq!(asks, [6, 3, 2, 22, 3, 40 + TAG_LEN]);
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
