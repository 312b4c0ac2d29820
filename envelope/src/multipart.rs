//! Multipart uploads (FORMAT.md section 5): one data key and header per upload, parts sealed
//! independently (in any order, in parallel) with their part number bound into the body context,
//! and an authenticated manifest of `(part number, plaintext length, commitment)`.
//!
//! The header and the manifest are stored by the application next to the object (for example in
//! its metadata); the object data is the concatenation of the part bodies in manifest order.
//!
//! ```
//! use envelope::multipart::{MultipartObject, Upload};
//! use envelope::{Backend, LocalKek, ObjectContext, ObjectKey, ObjectKind};
//! use std::io::Write;
//! let kek = LocalKek::aes_kw("kek", &[1u8; 32])?;
//! let ctx = ObjectContext::new().with("upload-id", "u1")?;
//! let key = ObjectKey::generate(&kek, "kek", &ctx, ObjectKind::Multipart)?;
//! let header = key.header().as_bytes().to_vec();
//! let upload = Upload::new(key, ctx.clone(), Backend::default())?;
//! let mut p2 = upload.part_writer(2, Vec::new())?;
//! p2.write_all(b" world")?;
//! let (body2, info2) = p2.finish()?;
//! let mut p1 = upload.part_writer(1, Vec::new())?;
//! p1.write_all(b"hello")?;
//! let (body1, info1) = p1.finish()?;
//! let manifest = upload.complete(&[info2, info1])?;
//!
//! let stored = [body1, body2].concat();
//! let (h, _) = envelope::Header::parse(&header)?;
//! let key = ObjectKey::unwrap_with(&kek, h, &ctx)?;
//! let object = MultipartObject::open(key, ctx, manifest.as_bytes(), Backend::default())?;
//! let mut out = Vec::new();
//! object.copy_to(&stored[..], &mut out)?;
//! assert_eq!(out, b"hello world");
//! # Ok::<(), envelope::Error>(())
//! ```

use crate::aead::Backend;
use crate::chunked::{
    self, BodyReader, BodyWriter, COMMITMENT_SIZE, ChunkKeys, Failure, PREFIX_SIZE, SALT_SIZE,
    read_prefix, read_range_with_keys,
};
use crate::context::{BodyRole, ObjectContext};
use crate::error::{Error, ManifestError, Result};
use crate::header::{Header, ObjectKind};
use crate::kdf::{ct_eq, hkdf_expand, tag32};
use crate::object::ObjectKey;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use zeroize::Zeroizing;

/// The manifest's magic bytes.
pub const MANIFEST_MAGIC: &[u8; 6] = b"KBXMAN";
/// Highest part number (as in S3 and OBS).
pub const MAX_PART_NUMBER: u32 = 10_000;
const ENTRY_LEN: usize = 4 + 8 + COMMITMENT_SIZE;
const MANIFEST_TAG_LEN: usize = 32;

/// What sealing one part produced; give these to [`Upload::complete`].
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
}

fn check_part_number(n: u32) -> Result<()> {
    if (1..=MAX_PART_NUMBER).contains(&n) {
        Ok(())
    } else {
        Err(ManifestError::PartNumbers.into())
    }
}

fn manifest_key(key: &ObjectKey, ctx: &ObjectContext) -> Zeroizing<[u8; 32]> {
    let header = key.header().as_bytes();
    let mut k = Zeroizing::new([0u8; 32]);
    hkdf_expand(
        key.data_key().expose(),
        &[
            b"kmsbox.org/envelope@v1 manifest\0",
            &(header.len() as u32).to_be_bytes(),
            header,
            &ctx.encode(),
        ],
        &mut k[..],
    );
    k
}

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
        let ctx = self.key.context(&self.context, BodyRole::Part(number));
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
            let ctx = self.key.context(&self.context, BodyRole::Part(p.number));
            let (_, c) =
                ChunkKeys::derive(self.backend, self.key.data_key().expose(), &p.salt, &ctx)?;
            if !ct_eq(&c, &p.commitment) {
                return Err(ManifestError::ForeignPart { part: p.number }.into());
            }
        }
        let mut bytes = Vec::with_capacity(11 + parts.len() * ENTRY_LEN + MANIFEST_TAG_LEN);
        bytes.extend_from_slice(MANIFEST_MAGIC);
        bytes.push(1);
        bytes.extend_from_slice(&(parts.len() as u32).to_be_bytes());
        for p in &parts {
            bytes.extend_from_slice(&p.number.to_be_bytes());
            bytes.extend_from_slice(&p.plaintext_len.to_be_bytes());
            bytes.extend_from_slice(&p.commitment);
        }
        let tag = tag32(&manifest_key(&self.key, &self.context)[..], &bytes);
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

/// A parsed manifest (authenticated only once [`MultipartObject::open`] accepts it).
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
        let expected = tag32(&manifest_key(&key, &context)[..], body);
        if !ct_eq(&expected, tag) {
            return Err(ManifestError::Authentication.into());
        }
        let manifest = Manifest::parse(manifest)?;
        let mut offsets = Vec::with_capacity(manifest.entries.len());
        let (mut pt, mut ct) = (0u64, 0u64);
        for e in &manifest.entries {
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
            .zip(self.manifest.entries.last())
            .map_or(0, |((pt, _), e)| pt + e.plaintext_len)
    }

    /// Check a part body's prefix against the manifest and derive its keys.
    pub(crate) fn part_keys(&self, i: usize, prefix: &[u8; PREFIX_SIZE]) -> Result<ChunkKeys> {
        let e = &self.manifest.entries[i];
        let mismatch = || Error::Manifest(ManifestError::PartMismatch { part: e.number });
        if !ct_eq(&prefix[chunked::SALT_SIZE..], &e.commitment) {
            return Err(mismatch());
        }
        let ctx = self.key.context(&self.context, BodyRole::Part(e.number));
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
        Ok(chunked::body_len(self.manifest.entries[i].plaintext_len)? - PREFIX_SIZE as u64)
    }

    /// After part `i`'s final chunk authenticated: it must have held the plaintext length the
    /// manifest lists.
    pub(crate) fn check_part_len(&self, i: usize, n: u64) -> Result<()> {
        let e = &self.manifest.entries[i];
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
            .entries
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
        for i in 0..self.manifest.entries.len() {
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
        MultipartReader {
            object: self,
            walk: WholeRead::new(),
            source: Some(source),
        }
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

/// A `Read` over a completed multipart object; see [`MultipartObject::reader`].
pub struct MultipartReader<'a, R: Read> {
    object: &'a MultipartObject,
    walk: WholeRead<BodyReader<io::Take<R>>>,
    /// The source between parts (inside the part's `BodyReader` while a part is read).
    source: Option<R>,
}

/// A failure a whole read keeps reporting.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Sticky {
    Manifest(ManifestError),
    Body(Failure),
    TrailingData,
}

impl Sticky {
    fn of(e: &Error) -> Sticky {
        match e {
            Error::Manifest(m) => Sticky::Manifest(*m),
            Error::TrailingData => Sticky::TrailingData,
            other => Sticky::Body(Failure::of(other)),
        }
    }

    pub(crate) fn error(self) -> Error {
        match self {
            Sticky::Manifest(m) => Error::Manifest(m),
            Sticky::Body(f) => f.error(),
            Sticky::TrailingData => Error::TrailingData,
        }
    }
}

/// Where a streamed read of a whole completed object stands, and the checks between its steps:
/// the state machine that [`MultipartReader`] (`std::io`) and the tokio reads
/// (`MultipartAsyncReader`, `copy_to_async`) share. It does no I/O: the reader reads what
/// [`WholeRead::phase_mut`] asks for and reports it back.
///
/// Part after part: the salt and commitment ([`PREFIX_SIZE`] bytes, checked against the manifest
/// by [`WholeRead::start_part`]), then the part's chunks, read by `B` (a `BodyReader` over
/// `Read::take(rest)` for `std::io`, a `tokio_multipart::PartChunks` for tokio) and counted with
/// [`WholeRead::count`], then [`WholeRead::end_part`] once its final chunk has authenticated (its
/// plaintext length must be the manifest's). After the last part the source must end
/// ([`WholeRead::end`]). A failure recorded with [`WholeRead::fail`] is reported again by every
/// later step.
pub(crate) struct WholeRead<B> {
    /// Parts started so far: while in [`Phase::Part`], the current part is `started - 1`.
    started: usize,
    /// Plaintext bytes of the current part released so far.
    released: u64,
    phase: Phase<B>,
}

/// What a [`WholeRead`] expects next.
pub(crate) enum Phase<B> {
    /// The next part's salt and commitment: [`PREFIX_SIZE`] bytes, fewer is [`Error::Truncated`].
    Prefix,
    /// The current part's chunks, read by `B`.
    Part(B),
    /// The end of the source, after the last part: a byte there is [`Error::TrailingData`].
    End,
    /// The whole object has been read and checked.
    Done,
    /// A step failed: every later one fails again.
    Failed(Sticky),
}

impl<B> WholeRead<B> {
    /// At the first part's salt and commitment (a manifest lists at least one part).
    pub(crate) fn new() -> WholeRead<B> {
        WholeRead {
            started: 0,
            released: 0,
            phase: Phase::Prefix,
        }
    }

    /// What the read expects next (with the current part's reader).
    pub(crate) fn phase_mut(&mut self) -> &mut Phase<B> {
        &mut self.phase
    }

    /// The failure recorded by [`WholeRead::fail`], if any.
    pub(crate) fn failure(&self) -> Option<Error> {
        match self.phase {
            Phase::Failed(f) => Some(f.error()),
            _ => None,
        }
    }

    /// Check the next part's salt and commitment against the manifest (before any of its chunks
    /// is read) and read its chunks with `body(keys, rest)`, where `rest` is the part's stored
    /// length after its prefix.
    pub(crate) fn start_part(
        &mut self,
        object: &MultipartObject,
        prefix: &[u8; PREFIX_SIZE],
        body: impl FnOnce(ChunkKeys, u64) -> B,
    ) -> Result<()> {
        debug_assert!(matches!(self.phase, Phase::Prefix));
        let i = self.started;
        let keys = object.part_keys(i, prefix)?;
        let rest = object.part_rest(i)?;
        self.phase = Phase::Part(body(keys, rest));
        self.started += 1;
        self.released = 0;
        Ok(())
    }

    /// Count `n` plaintext bytes of the current part as released (they have authenticated).
    pub(crate) fn count(&mut self, n: usize) {
        self.released += n as u64;
    }

    /// The current part's final chunk has authenticated: check that the part held the plaintext
    /// length the manifest lists, and move on to the next part (or the end of the source).
    /// Returns the part's reader.
    pub(crate) fn end_part(&mut self, object: &MultipartObject) -> Result<B> {
        object.check_part_len(self.started - 1, self.released)?;
        let next = if self.started == object.manifest.entries.len() {
            Phase::End
        } else {
            Phase::Prefix
        };
        match std::mem::replace(&mut self.phase, next) {
            Phase::Part(b) => Ok(b),
            _ => unreachable!("end_part outside a part"),
        }
    }

    /// After the last part, a read of the source got `extra` bytes: any is
    /// [`Error::TrailingData`].
    pub(crate) fn end(&mut self, extra: usize) -> Result<()> {
        if extra != 0 {
            return Err(Error::TrailingData);
        }
        self.phase = Phase::Done;
        Ok(())
    }

    /// Record a failure (dropping the current part's reader and keys): every later step reports
    /// it again. An I/O error is reported once; later steps fail with [`Error::Poisoned`].
    pub(crate) fn fail(&mut self, e: &Error) {
        self.phase = Phase::Failed(Sticky::of(e));
    }
}

impl<R: Read> MultipartReader<'_, R> {
    fn read_inner(&mut self, out: &mut [u8]) -> Result<usize> {
        loop {
            match self.walk.phase_mut() {
                Phase::Done => return Ok(0),
                Phase::Failed(f) => return Err(f.error()),
                Phase::Part(body) => {
                    let n = body.read(out).map_err(Error::from_io)?;
                    if n > 0 {
                        self.walk.count(n);
                        return Ok(n);
                    }
                    // The part's final chunk has authenticated.
                    let body = self.walk.end_part(self.object)?;
                    self.source = Some(body.into_inner().into_inner());
                }
                Phase::Prefix => {
                    let Some(mut source) = self.source.take() else {
                        return Err(Error::Poisoned);
                    };
                    let prefix = read_prefix(&mut source)?;
                    self.walk.start_part(self.object, &prefix, |keys, rest| {
                        BodyReader::from_parts(source.take(rest), keys)
                    })?;
                }
                Phase::End => {
                    let Some(source) = self.source.as_mut() else {
                        return Err(Error::Poisoned);
                    };
                    let mut probe = [0u8; 1];
                    let extra = crate::fill::read_up_to(source, &mut probe)?;
                    self.walk.end(extra)?;
                }
            }
        }
    }
}

impl<R: Read> Read for MultipartReader<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.walk.failure() {
            return Err(e.into());
        }
        if out.is_empty() {
            return Ok(0);
        }
        match self.read_inner(out) {
            Ok(n) => Ok(n),
            Err(e) => {
                // Sticky: report a failure again on every later call.
                self.walk.fail(&e);
                self.source = None;
                Err(e.into())
            }
        }
    }
}
