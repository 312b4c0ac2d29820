//! The manifest (FORMAT.md section 5): `(part number, plaintext length, commitment)` per part,
//! under a tag keyed from the upload's data key, header and context.

use super::{ENTRY_LEN, MANIFEST_MAGIC, MANIFEST_TAG_LEN, MAX_PART_NUMBER};
use crate::chunked::{self, COMMITMENT_SIZE, SALT_SIZE};
use crate::context::{ObjectContext, len32};
use crate::error::{Error, ManifestError, Result};
use crate::kdf::hkdf_expand;
use crate::object::ObjectKey;
use zeroize::Zeroizing;

/// What sealing one part produced; give these to [`Upload::complete`](super::Upload::complete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    /// The part number, 1 ..= 10000.
    pub number: u32,
    /// Plaintext bytes in the part.
    pub plaintext_len: u64,
    /// The part body's key commitment.
    pub commitment: [u8; COMMITMENT_SIZE],
    /// The part body's salt (lets `complete` check that the part belongs to this upload).
    pub salt: [u8; SALT_SIZE],
}

impl PartInfo {
    /// Stored (encrypted) length of the part's body.
    pub fn sealed_len(&self) -> Result<u64> {
        chunked::body_len(self.plaintext_len)
    }

    pub(super) fn entry(&self) -> ManifestEntry {
        ManifestEntry {
            number: self.number,
            plaintext_len: self.plaintext_len,
            commitment: self.commitment,
        }
    }
}

pub(super) fn check_part_number(n: u32) -> Result<()> {
    if (1..=MAX_PART_NUMBER).contains(&n) {
        Ok(())
    } else {
        Err(ManifestError::PartNumbers.into())
    }
}

pub(super) fn manifest_key(key: &ObjectKey, ctx: &ObjectContext) -> Result<Zeroizing<[u8; 32]>> {
    let header = key.header().as_bytes();
    let header_len = len32("header", header.len())?;
    let mut k = Zeroizing::new([0u8; 32]);
    hkdf_expand(
        key.data_key().expose(),
        &[
            b"kmsbox.org/envelope@v1 manifest\0",
            &header_len,
            header,
            &ctx.encode()?,
        ],
        &mut k[..],
    );
    Ok(k)
}

/// One manifest entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// Part number.
    pub number: u32,
    /// Plaintext length of the part.
    pub plaintext_len: u64,
    /// The part body's commitment.
    pub commitment: [u8; COMMITMENT_SIZE],
}

/// A parsed manifest (authenticated only once [`MultipartObject::open`](super::MultipartObject::open) accepts it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    entries: Vec<ManifestEntry>,
    bytes: Vec<u8>,
}

impl Manifest {
    /// Parse the manifest's syntax (not its tag).
    pub fn parse(bytes: &[u8]) -> Result<Manifest> {
        let bad = || Error::Manifest(ManifestError::Malformed);
        if bytes.len() < 11 + MANIFEST_TAG_LEN || &bytes[..6] != MANIFEST_MAGIC || bytes[6] != 1 {
            return Err(bad());
        }
        let count = u32::from_be_bytes([bytes[7], bytes[8], bytes[9], bytes[10]]) as usize;
        if count == 0 || count > MAX_PART_NUMBER as usize {
            return Err(bad());
        }
        if bytes.len() != 11 + count * ENTRY_LEN + MANIFEST_TAG_LEN {
            return Err(bad());
        }
        let mut entries = Vec::with_capacity(count);
        for e in bytes[11..11 + count * ENTRY_LEN].chunks_exact(ENTRY_LEN) {
            let mut n = [0u8; 4];
            n.copy_from_slice(&e[..4]);
            let mut l = [0u8; 8];
            l.copy_from_slice(&e[4..12]);
            let mut commitment = [0u8; COMMITMENT_SIZE];
            commitment.copy_from_slice(&e[12..]);
            entries.push(ManifestEntry {
                number: u32::from_be_bytes(n),
                plaintext_len: u64::from_be_bytes(l),
                commitment,
            });
        }
        for e in &entries {
            check_part_number(e.number)?;
            chunked::body_len(e.plaintext_len)?;
        }
        if entries.windows(2).any(|w| w[0].number >= w[1].number) {
            return Err(ManifestError::PartNumbers.into());
        }
        Ok(Manifest {
            entries,
            bytes: bytes.to_vec(),
        })
    }

    /// The encoded manifest, tag included.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The parts, in ascending part-number (and storage) order.
    pub fn entries(&self) -> &[ManifestEntry] {
        &self.entries
    }

    /// Plaintext length of the completed object.
    pub fn plaintext_len(&self) -> Result<u64> {
        self.entries
            .iter()
            .try_fold(0u64, |acc, e| acc.checked_add(e.plaintext_len))
            .ok_or(Error::TooLong)
    }

    /// Stored length of the completed object (the concatenated part bodies).
    pub fn sealed_len(&self) -> Result<u64> {
        self.entries.iter().try_fold(0u64, |acc, e| {
            acc.checked_add(chunked::body_len(e.plaintext_len)?)
                .ok_or(Error::TooLong)
        })
    }
}
