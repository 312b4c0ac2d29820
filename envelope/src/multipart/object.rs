//! [`MultipartObject`]: a completed object whose manifest has authenticated, and its `std::io`
//! reads (whole and by range).

use super::MANIFEST_TAG_LEN;
use super::manifest::{Manifest, manifest_key};
use super::read::MultipartReader;
use crate::aead::Backend;
use crate::chunked::{self, BodyReader, ChunkKeys, PREFIX_SIZE, read_prefix, read_range_with_keys};
use crate::context::{BodyRole, ObjectContext};
use crate::error::{Error, ManifestError, Result};
use crate::header::ObjectKind;
use crate::kdf::{ct_eq, tag32};
use crate::object::ObjectKey;
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;

/// A completed multipart object whose manifest has authenticated: decrypts it whole or by range.
///
/// With the `tokio` feature it also reads from tokio sources: `copy_to_async`,
/// `read_range_async` and `reader_async` (an `AsyncRead`; module `tokio_multipart`).
#[derive(Debug)]
pub struct MultipartObject {
    key: ObjectKey,
    context: ObjectContext,
    manifest: Manifest,
    backend: Backend,
    /// Per part: plaintext offset and stored offset.
    offsets: Vec<(u64, u64)>,
}

impl MultipartObject {
    /// Check the manifest's tag under the upload's key and context.
    pub fn open(
        key: ObjectKey,
        context: ObjectContext,
        manifest: &[u8],
        backend: Backend,
    ) -> Result<MultipartObject> {
        if key.header().kind() != ObjectKind::Multipart {
            return Err(Error::MalformedHeader("not a multipart header"));
        }
        if manifest.len() < MANIFEST_TAG_LEN {
            return Err(ManifestError::Malformed.into());
        }
        let (body, tag) = manifest.split_at(manifest.len() - MANIFEST_TAG_LEN);
        let expected = tag32(&manifest_key(&key, &context)?[..], body);
        if !ct_eq(&expected, tag) {
            return Err(ManifestError::Authentication.into());
        }
        let manifest = Manifest::parse(manifest)?;
        let mut offsets = Vec::with_capacity(manifest.entries().len());
        let (mut pt, mut ct) = (0u64, 0u64);
        for e in manifest.entries() {
            offsets.push((pt, ct));
            pt += e.plaintext_len;
            ct += chunked::body_len(e.plaintext_len)?;
        }
        Ok(MultipartObject {
            key,
            context,
            manifest,
            backend,
            offsets,
        })
    }

    /// The authenticated manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Plaintext length of the object.
    pub fn plaintext_len(&self) -> u64 {
        self.offsets
            .last()
            .zip(self.manifest.entries().last())
            .map_or(0, |((pt, _), e)| pt + e.plaintext_len)
    }

    /// Check a part body's prefix against the manifest and derive its keys.
    pub(crate) fn part_keys(&self, i: usize, prefix: &[u8; PREFIX_SIZE]) -> Result<ChunkKeys> {
        let e = &self.manifest.entries()[i];
        let mismatch = || Error::Manifest(ManifestError::PartMismatch { part: e.number });
        if !ct_eq(&prefix[chunked::SALT_SIZE..], &e.commitment) {
            return Err(mismatch());
        }
        let ctx = self.key.context(&self.context, BodyRole::Part(e.number))?;
        ChunkKeys::derive_checked(self.backend, self.key.data_key().expose(), prefix, &ctx).map_err(
            |err| match err {
                Error::Commitment => mismatch(),
                other => other,
            },
        )
    }

    /// Stored bytes of part `i`'s body after its salt and commitment: what a whole read takes from
    /// the source for that part once its prefix is checked.
    pub(crate) fn part_rest(&self, i: usize) -> Result<u64> {
        Ok(chunked::body_len(self.manifest.entries()[i].plaintext_len)? - PREFIX_SIZE as u64)
    }

    /// After part `i`'s final chunk authenticated: it must have held the plaintext length the
    /// manifest lists.
    pub(crate) fn check_part_len(&self, i: usize, n: u64) -> Result<()> {
        let e = &self.manifest.entries()[i];
        if n == e.plaintext_len {
            Ok(())
        } else {
            Err(Error::Manifest(ManifestError::PartMismatch {
                part: e.number,
            }))
        }
    }

    /// Check a range read's range against the plaintext length ([`Error::InvalidRange`]).
    pub(crate) fn check_range(&self, range: &Range<u64>) -> Result<()> {
        chunked::check_range(self.plaintext_len(), range)
    }

    /// Check a range read's source before it reads any chunk: its length (`stored`, measured by
    /// a seek to the end) against the manifest ([`Error::Truncated`], [`Error::TrailingData`]).
    pub(crate) fn check_stored_len(&self, stored: u64) -> Result<()> {
        let expected = self.manifest.sealed_len()?;
        if stored < expected {
            return Err(Error::Truncated);
        }
        if stored > expected {
            return Err(Error::TrailingData);
        }
        Ok(())
    }

    /// The parts that plaintext `range` overlaps, in storage order (an empty range touches
    /// none), with where each lies and the range relative to its plaintext.
    pub(crate) fn parts_in(&self, range: Range<u64>) -> impl Iterator<Item = PartRange> + '_ {
        self.manifest
            .entries()
            .iter()
            .zip(&self.offsets)
            .enumerate()
            .filter_map(move |(index, (e, &(pt_start, stored_at)))| {
                let pt_end = pt_start + e.plaintext_len;
                if range.start >= pt_end || range.end <= pt_start || range.is_empty() {
                    return None;
                }
                Some(PartRange {
                    index,
                    stored_at,
                    plaintext_len: e.plaintext_len,
                    local: range.start.max(pt_start) - pt_start..range.end.min(pt_end) - pt_start,
                })
            })
    }

    /// Decrypt the whole object from the concatenated part bodies in `source`; returns the
    /// plaintext length. Each part is released chunk by chunk once authenticated; bytes after the
    /// last part are [`Error::TrailingData`].
    pub fn copy_to<R: Read, W: Write + ?Sized>(&self, mut source: R, out: &mut W) -> Result<u64> {
        let mut total = 0;
        for i in 0..self.manifest.entries().len() {
            let prefix = read_prefix(&mut source)?;
            let keys = self.part_keys(i, &prefix)?;
            let rest = self.part_rest(i)?;
            let mut body = BodyReader::from_parts((&mut source).take(rest), keys);
            let n = body.copy_to(out)?;
            self.check_part_len(i, n)?;
            total += n;
        }
        let mut probe = [0u8; 1];
        if crate::fill::read_up_to(&mut source, &mut probe)? != 0 {
            return Err(Error::TrailingData);
        }
        Ok(total)
    }

    /// A `std::io::Read` over the whole object, part after part, from the concatenated part
    /// bodies in `source`: one chunk buffer, each part's salt and commitment checked against the
    /// manifest before any of its chunks, each chunk released only once authenticated, end of
    /// stream only after the last part's final chunk, a check of each part's plaintext length
    /// against the manifest, and a check that nothing follows the last part.
    pub fn reader<R: Read>(&self, source: R) -> MultipartReader<'_, R> {
        MultipartReader::new(self, source)
    }

    /// Decrypt plaintext `range` (which may cross parts) from the stored object in `source`.
    /// For each part it touches, reads that part's salt and commitment, its final chunk and the
    /// chunks overlapping the range.
    pub fn read_range<R: Read + Seek + ?Sized, W: Write + ?Sized>(
        &self,
        source: &mut R,
        range: Range<u64>,
        out: &mut W,
    ) -> Result<()> {
        self.check_range(&range)?;
        let stored = source.seek(SeekFrom::End(0))?;
        self.check_stored_len(stored)?;
        for p in self.parts_in(range) {
            source.seek(SeekFrom::Start(p.stored_at))?;
            let prefix = read_prefix(source)?;
            let keys = self.part_keys(p.index, &prefix)?;
            read_range_with_keys(source, p.stored_at, &keys, p.plaintext_len, p.local, out)?;
        }
        Ok(())
    }
}

/// One part that a plaintext range overlaps (see [`MultipartObject::parts_in`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartRange {
    /// The part's position in the manifest.
    pub(crate) index: usize,
    /// Where the part's body (salt first) starts in the stored object.
    pub(crate) stored_at: u64,
    /// Plaintext length of the part.
    pub(crate) plaintext_len: u64,
    /// The part of the range that falls in this part, relative to the part's plaintext.
    pub(crate) local: Range<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunked::{CHUNK_SIZE, body_len};
    use crate::multipart::Upload;
    use crate::provider::LocalKek;
    use std::io::Write;

    fn object(lens: &[usize]) -> MultipartObject {
        let kek = LocalKek::aes_kw("k", &[1u8; 32]).unwrap();
        let ctx = ObjectContext::new();
        let key = ObjectKey::generate(&kek, "k", &ctx, ObjectKind::Multipart).unwrap();
        let header = key.header().clone();
        let upload = Upload::new(key, ctx.clone(), Backend::default()).unwrap();
        let infos: Vec<_> = (1u32..)
            .zip(lens)
            .map(|(number, &n)| {
                let mut w = upload.part_writer(number, Vec::new()).unwrap();
                w.write_all(&vec![7u8; n]).unwrap();
                w.finish().unwrap().1
            })
            .collect();
        let manifest = upload.complete(&infos).unwrap();
        let key = ObjectKey::unwrap_with(&kek, header, &ctx).unwrap();
        MultipartObject::open(key, ctx, manifest.as_bytes(), Backend::default()).unwrap()
    }

    #[test]
    fn lengths_and_parts_of_a_range() {
        let c = u64::try_from(CHUNK_SIZE).unwrap();
        let o = object(&[10, CHUNK_SIZE, 5]);
        let (b0, b1, b2) = (
            body_len(10).unwrap(),
            body_len(c).unwrap(),
            body_len(5).unwrap(),
        );
        assert_eq!(o.plaintext_len(), 10 + c + 5);
        assert_eq!(o.manifest().sealed_len().unwrap(), b0 + b1 + b2);
        assert_eq!(o.part_rest(1).unwrap(), b1 - 56);
        let part = |index, stored_at, plaintext_len, local| PartRange {
            index,
            stored_at,
            plaintext_len,
            local,
        };
        assert_eq!(
            o.parts_in(5..12).collect::<Vec<_>>(),
            [part(0, 0, 10, 5..10), part(1, b0, c, 0..2)]
        );
        assert_eq!(
            o.parts_in(0..o.plaintext_len()).count(),
            3,
            "a whole read touches every part"
        );
        assert_eq!(
            o.parts_in(10 + c..10 + c + 5).collect::<Vec<_>>(),
            [part(2, b0 + b1, 5, 0..5)]
        );
        assert_eq!(o.parts_in(3..3).count(), 0);
        let stored = b0 + b1 + b2;
        assert!(o.check_stored_len(stored).is_ok());
        assert!(matches!(
            o.check_stored_len(stored - 1),
            Err(Error::Truncated)
        ));
        assert!(matches!(
            o.check_stored_len(stored + 1),
            Err(Error::TrailingData)
        ));
        assert!(matches!(
            o.check_range(&(0..o.plaintext_len() + 1)),
            Err(Error::InvalidRange { .. })
        ));
        assert!(o.check_part_len(2, 5).is_ok());
        assert!(matches!(
            o.check_part_len(2, 4),
            Err(Error::Manifest(ManifestError::PartMismatch { part: 3 }))
        ));
    }
}
