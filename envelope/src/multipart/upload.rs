//! The write side: [`Upload`] seals parts ([`PartWriter`]) and completes the manifest.

use super::manifest::{Manifest, PartInfo, check_part_number, manifest_key};
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
        for p in &parts {
            check_part_number(p.number)?;
            let ctx = self.key.context(&self.context, BodyRole::Part(p.number))?;
            let (_, c) =
                ChunkKeys::derive(self.backend, self.key.data_key().expose(), &p.salt, &ctx)?;
            if !ct_eq(&c, &p.commitment) {
                return Err(ManifestError::ForeignPart { part: p.number }.into());
            }
        }
        let mut bytes = Vec::with_capacity(11 + parts.len() * ENTRY_LEN + MANIFEST_TAG_LEN);
        bytes.extend_from_slice(MANIFEST_MAGIC);
        bytes.push(1);
        // At most MAX_PART_NUMBER distinct part numbers (checked above).
        let count = u32::try_from(parts.len()).map_err(|_| ManifestError::PartNumbers)?;
        bytes.extend_from_slice(&count.to_be_bytes());
        for p in &parts {
            bytes.extend_from_slice(&p.number.to_be_bytes());
            bytes.extend_from_slice(&p.plaintext_len.to_be_bytes());
            bytes.extend_from_slice(&p.commitment);
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
