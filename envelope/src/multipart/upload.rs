//! The write side: [`Upload`] seals parts ([`PartWriter`]) and completes the manifest.

use super::manifest::{Manifest, ManifestEntry, PartInfo, check_part_number, manifest_key};
use super::{ENTRY_LEN, MANIFEST_MAGIC, MANIFEST_TAG_LEN};
use crate::aead::Backend;
use crate::chunked::{BodyWriter, ChunkKeys, SALT_SIZE};
use crate::context::{BodyRole, ObjectContext};
use crate::error::{Error, ManifestError, Result};
use crate::header::{Header, ObjectKind};
use crate::kdf::{ct_eq, tag32};
use crate::object::ObjectKey;
use std::io::{self, Write};

/// An open multipart upload: seals parts and the manifest.
#[derive(Debug)]
pub struct Upload {
    key: ObjectKey,
    context: ObjectContext,
    backend: Backend,
}

impl Upload {
    /// Start sealing parts under `key`, which must be a multipart key
    /// ([`ObjectKind::Multipart`]).
    pub fn new(key: ObjectKey, context: ObjectContext, backend: Backend) -> Result<Upload> {
        if key.header().kind() != ObjectKind::Multipart {
            return Err(Error::MalformedHeader("not a multipart header"));
        }
        Ok(Upload {
            key,
            context,
            backend,
        })
    }

    /// The upload's header, to store with the completed object.
    pub fn header(&self) -> &Header {
        self.key.header()
    }

    /// A writer that seals part `number` into `out` with a fresh random salt. Re-uploading a
    /// part simply seals it again (new salt).
    pub fn part_writer<W: Write>(&self, number: u32, out: W) -> Result<PartWriter<W>> {
        let mut salt = [0u8; SALT_SIZE];
        crate::key::random(&mut salt)?;
        self.salted_part_writer(number, out, &salt)
    }

    /// Test seam (feature `test-support`): a part with a chosen salt.
    #[cfg(feature = "test-support")]
    pub fn part_writer_with_salt<W: Write>(
        &self,
        number: u32,
        out: W,
        salt: &[u8; SALT_SIZE],
    ) -> Result<PartWriter<W>> {
        self.salted_part_writer(number, out, salt)
    }

    fn salted_part_writer<W: Write>(
        &self,
        number: u32,
        out: W,
        salt: &[u8; SALT_SIZE],
    ) -> Result<PartWriter<W>> {
        check_part_number(number)?;
        let ctx = self.key.context(&self.context, BodyRole::Part(number))?;
        let body = BodyWriter::salted(out, self.key.data_key().expose(), salt, &ctx, self.backend)?;
        Ok(PartWriter {
            body,
            number,
            len: 0,
            salt: *salt,
        })
    }

    /// Build the authenticated manifest from the parts to keep (in any order). Part numbers must
    /// be distinct; every part must have been sealed under this upload.
    pub fn complete(&self, parts: &[PartInfo]) -> Result<Manifest> {
        let mut parts = parts.to_vec();
        parts.sort_by_key(|p| p.number);
        if parts.is_empty() || parts.windows(2).any(|w| w[0].number == w[1].number) {
            return Err(ManifestError::PartNumbers.into());
        }
        self.check_sealed_here(&parts)?;
        let entries: Vec<ManifestEntry> = parts.iter().map(PartInfo::entry).collect();
        self.seal_manifest(&entries)
    }

    /// The manifest of `prior` (a manifest completed under this upload, checked against its
    /// tag) with `parts` added after its last part: an object that grows by appends is a
    /// multipart object whose parts are the appends, and each append needs only its own part's
    /// [`PartInfo`]. The new parts' numbers must follow the prior manifest's, in order. The bytes
    /// are those [`complete`](Self::complete) gives for all the parts.
    pub fn extend(&self, prior: &[u8], parts: &[PartInfo]) -> Result<Manifest> {
        if prior.len() < MANIFEST_TAG_LEN {
            return Err(ManifestError::Malformed.into());
        }
        let (body, tag) = prior.split_at(prior.len() - MANIFEST_TAG_LEN);
        let expected = tag32(&manifest_key(&self.key, &self.context)?[..], body);
        if !ct_eq(&expected, tag) {
            return Err(ManifestError::Authentication.into());
        }
        let prior = Manifest::parse(prior)?;
        let mut entries = prior.entries().to_vec();
        let mut last = entries.last().map_or(0, |e| e.number);
        for p in parts {
            if p.number <= last {
                return Err(ManifestError::PartNumbers.into());
            }
            last = p.number;
        }
        self.check_sealed_here(parts)?;
        entries.extend(parts.iter().map(PartInfo::entry));
        self.seal_manifest(&entries)
    }

    /// Every part was sealed under this upload (its commitment is this upload's for its number
    /// and salt).
    fn check_sealed_here(&self, parts: &[PartInfo]) -> Result<()> {
        for p in parts {
            check_part_number(p.number)?;
            let ctx = self.key.context(&self.context, BodyRole::Part(p.number))?;
            let (_, c) =
                ChunkKeys::derive(self.backend, self.key.data_key().expose(), &p.salt, &ctx)?;
            if !ct_eq(&c, &p.commitment) {
                return Err(ManifestError::ForeignPart { part: p.number }.into());
            }
        }
        Ok(())
    }

    /// Encodes `entries` (ascending, distinct part numbers) under this upload's manifest tag.
    fn seal_manifest(&self, entries: &[ManifestEntry]) -> Result<Manifest> {
        let mut bytes = Vec::with_capacity(11 + entries.len() * ENTRY_LEN + MANIFEST_TAG_LEN);
        bytes.extend_from_slice(MANIFEST_MAGIC);
        bytes.push(1);
        // At most MAX_PART_NUMBER distinct part numbers (checked by the callers and by parse).
        let count = u32::try_from(entries.len()).map_err(|_| ManifestError::PartNumbers)?;
        bytes.extend_from_slice(&count.to_be_bytes());
        for e in entries {
            bytes.extend_from_slice(&e.number.to_be_bytes());
            bytes.extend_from_slice(&e.plaintext_len.to_be_bytes());
            bytes.extend_from_slice(&e.commitment);
        }
        let tag = tag32(&manifest_key(&self.key, &self.context)?[..], &bytes);
        bytes.extend_from_slice(&tag);
        Manifest::parse(&bytes)
    }
}

/// Seals one part; `finish` returns the inner writer and the part's [`PartInfo`].
pub struct PartWriter<W: Write> {
    body: BodyWriter<W>,
    number: u32,
    len: u64,
    salt: [u8; SALT_SIZE],
}

impl<W: Write> PartWriter<W> {
    /// Seal the final chunk of the part.
    pub fn finish(self) -> Result<(W, PartInfo)> {
        let commitment = self.body.commitment();
        let w = self.body.finish()?;
        Ok((
            w,
            PartInfo {
                number: self.number,
                plaintext_len: self.len,
                commitment,
                salt: self.salt,
            },
        ))
    }
}

impl<W: Write> Write for PartWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.body.write(data)?;
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.body.flush()
    }
}
