//! tokio reads of completed multipart objects (feature `tokio`):
//! [`MultipartObject::copy_to_async`] (whole object from an `AsyncRead`) and
//! [`MultipartObject::read_range_async`] (plaintext ranges, across parts, from an
//! `AsyncRead + AsyncSeek`), both into an `AsyncWrite`; and [`MultipartObject::reader_async`]
//! ([`MultipartAsyncReader`], the whole object as an `AsyncRead`, e.g. for a GET's body stream).
//!
//! They plan exactly as [`MultipartObject::copy_to`], [`MultipartObject::read_range`] and
//! [`MultipartObject::reader`] do (same parts, same chunks, same offsets, same checks in the same
//! order) and fail with the same typed errors; the crypto is the `chunked` layer's. One chunk
//! buffer whatever the object size, and no byte of a chunk is released before that chunk has
//! authenticated.
//!
//! ```
//! use envelope::multipart::{MultipartObject, Upload};
//! use envelope::{Backend, LocalKek, ObjectContext, ObjectKey, ObjectKind};
//! use std::io::{Cursor, Write};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), envelope::Error> {
//! let kek = LocalKek::aes_kw("kek", &[1u8; 32])?;
//! let ctx = ObjectContext::new().with("upload-id", "u1")?;
//! let key = ObjectKey::generate(&kek, "kek", &ctx, ObjectKind::Multipart)?;
//! let header = key.header().as_bytes().to_vec();
//! let upload = Upload::new(key, ctx.clone(), Backend::default())?;
//! let mut p1 = upload.part_writer(1, Vec::new())?;
//! p1.write_all(b"hello")?;
//! let (body1, info1) = p1.finish()?;
//! let mut p2 = upload.part_writer(2, Vec::new())?;
//! p2.write_all(b" world")?;
//! let (body2, info2) = p2.finish()?;
//! let manifest = upload.complete(&[info1, info2])?;
//! let stored = [body1, body2].concat();
//!
//! let (h, _) = envelope::Header::parse(&header)?;
//! let key = ObjectKey::unwrap_with(&kek, h, &ctx)?;
//! let object = MultipartObject::open(key, ctx, manifest.as_bytes(), Backend::default())?;
//! let mut out = Vec::new();
//! object.copy_to_async(&stored[..], &mut out).await?;
//! assert_eq!(out, b"hello world");
//! let mut out = Vec::new();
//! object.read_range_async(&mut Cursor::new(&stored), 3..8, &mut out).await?;
//! assert_eq!(out, b"lo wo");
//! use tokio::io::AsyncReadExt;
//! let mut out = Vec::new();
//! object.reader_async(&stored[..]).read_to_end(&mut out).await?;
//! assert_eq!(out, b"hello world");
//! # Ok(())
//! # }
//! ```

use crate::chunked::{
    ChunkBuf, ChunkKeys, ChunkOpener, ENCRYPTED_CHUNK_SIZE, PREFIX_SIZE, chunk_buf,
};
use crate::error::{Error, Result};
use crate::fill::{poll_fill, read_exact_or_truncated_async, read_up_to_async};
use crate::multipart::{MultipartObject, Phase, WholeRead};
use crate::tokio_io::read_range_with_keys_async;
use std::io::{self, SeekFrom};
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncSeek, AsyncSeekExt, AsyncWrite, AsyncWriteExt, ReadBuf};

impl MultipartObject {
    /// The async [`MultipartObject::copy_to`]: decrypt the whole object from the concatenated
    /// part bodies in `source` into `out`, then flush `out`; returns the plaintext length.
    ///
    /// Each part's salt and commitment are checked against the manifest before any of its chunks
    /// is read (a dropped, reordered, duplicated or foreign part is
    /// [`ManifestError::PartMismatch`](crate::ManifestError::PartMismatch)); each chunk is
    /// written to `out` only once it has authenticated, so on failure `out` holds a correct prefix
    /// of the plaintext. Bytes after the last part are [`Error::TrailingData`]. One chunk buffer.
    pub async fn copy_to_async<R, W>(&self, mut source: R, out: &mut W) -> Result<u64>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin + ?Sized,
    {
        let mut walk = WholeRead::new();
        let mut buf = chunk_buf();
        let mut total = 0u64;
        loop {
            match walk.phase_mut() {
                Phase::Done => break,
                Phase::Failed(f) => return Err(f.error()),
                Phase::Prefix => {
                    let mut prefix = [0u8; PREFIX_SIZE];
                    read_exact_or_truncated_async(&mut source, &mut prefix).await?;
                    walk.start_part(self, &prefix, PartChunks::new)?;
                }
                Phase::Part(part) if part.is_done() => {
                    walk.end_part(self)?;
                }
                Phase::Part(part) => {
                    let got = read_up_to_async(&mut source, &mut buf[..part.want()]).await?;
                    let pt = part.open(&mut buf[..got])?;
                    out.write_all(&buf[..pt]).await?;
                    walk.count(pt);
                    total += u64::try_from(pt).map_err(|_| Error::TooLong)?;
                }
                Phase::End => {
                    let mut probe = [0u8; 1];
                    let extra = read_up_to_async(&mut source, &mut probe).await?;
                    walk.end(extra)?;
                }
            }
        }
        out.flush().await?;
        Ok(total)
    }

    /// The async [`MultipartObject::read_range`]: decrypt plaintext `range` (which may cross
    /// parts) from the stored object in `source` into `out`, then flush `out`.
    ///
    /// Checks the range ([`Error::InvalidRange`] past the end) and the stored length
    /// ([`Error::Truncated`], [`Error::TrailingData`]) first; then, for each part the range
    /// overlaps, reads that part's salt and commitment (checked against the manifest), its final
    /// chunk (which authenticates its length) and the chunks overlapping the range, and nothing
    /// else. Each chunk is written only once it has authenticated. One chunk buffer.
    pub async fn read_range_async<R, W>(
        &self,
        source: &mut R,
        range: Range<u64>,
        out: &mut W,
    ) -> Result<()>
    where
        R: AsyncRead + AsyncSeek + Unpin + ?Sized,
        W: AsyncWrite + Unpin + ?Sized,
    {
        self.check_range(&range)?;
        let stored = source.seek(SeekFrom::End(0)).await?;
        self.check_stored_len(stored)?;
        for p in self.parts_in(range) {
            source.seek(SeekFrom::Start(p.stored_at)).await?;
            let mut prefix = [0u8; PREFIX_SIZE];
            read_exact_or_truncated_async(source, &mut prefix).await?;
            let keys = self.part_keys(p.index, &prefix)?;
            read_range_with_keys_async(source, p.stored_at, &keys, p.plaintext_len, p.local, out)
                .await?;
        }
        out.flush().await?;
        Ok(())
    }
}

/// One part's chunks as a streamed read takes them from its source: each chunk is what is left of
/// the part's stored length, up to a full chunk (as `Read::take(rest)` gives the `std::io`
/// reader), opened by the part's [`ChunkOpener`] (a short one is the final chunk).
pub(crate) struct PartChunks {
    opener: ChunkOpener,
    /// Stored bytes of the part not read yet.
    rest: u64,
}

impl PartChunks {
    /// A part whose prefix has been checked: `keys` from it, `rest` stored bytes after it.
    pub(crate) fn new(keys: ChunkKeys, rest: u64) -> PartChunks {
        PartChunks {
            opener: ChunkOpener::new(keys),
            rest,
        }
    }

    /// Stored bytes the next chunk takes: the rest of the part, up to a full encrypted chunk.
    pub(crate) fn want(&self) -> usize {
        usize::try_from(self.rest).map_or(ENCRYPTED_CHUNK_SIZE, |r| r.min(ENCRYPTED_CHUNK_SIZE))
    }

    /// Open the next chunk from `buf`, the bytes a read of [`PartChunks::want`] got (fewer at the
    /// end of the source); returns the plaintext length, at the front of `buf`.
    pub(crate) fn open(&mut self, buf: &mut [u8]) -> Result<usize> {
        let got = u64::try_from(buf.len()).map_err(|_| Error::TooLong)?;
        self.rest = self.rest.saturating_sub(got);
        self.opener.open(buf)
    }

    /// Whether the part's final chunk has authenticated.
    pub(crate) fn is_done(&self) -> bool {
        self.opener.is_done()
    }
}

/// The object a [`MultipartAsyncReader`] reads: borrowed, or shared through an `Arc` (so that the
/// reader can be `'static`, as an HTTP body must be).
enum ObjectRef<'a> {
    Borrowed(&'a MultipartObject),
    Shared(Arc<MultipartObject>),
}

impl ObjectRef<'_> {
    fn get(&self) -> &MultipartObject {
        match self {
            ObjectRef::Borrowed(o) => o,
            ObjectRef::Shared(o) => o,
        }
    }
}

impl MultipartObject {
    /// The async [`MultipartObject::reader`]: a `tokio::io::AsyncRead` over the whole object,
    /// part after part, from the concatenated part bodies in `source`, for storage engines that
    /// serve a GET as a body stream.
    ///
    /// Same checks and errors as [`MultipartReader`](crate::multipart::MultipartReader): each
    /// part's salt and commitment are checked against the manifest before any of its chunks is
    /// read; a chunk is released only once it has authenticated; the stream ends only after the
    /// last part's final chunk has authenticated, every part has held the plaintext length the
    /// manifest lists, and nothing follows the last part ([`Error::TrailingData`]). Failures are
    /// `io::Error`s carrying the crate's [`Error`] (recover it with [`Error::from_io`]); after a
    /// failure every later read fails again. One chunk buffer, whatever the object size.
    pub fn reader_async<R: AsyncRead + Unpin>(&self, source: R) -> MultipartAsyncReader<'_, R> {
        MultipartAsyncReader::new(ObjectRef::Borrowed(self), source)
    }

    /// [`MultipartObject::reader_async`] over a shared object: the reader owns its `Arc`, so it
    /// is `'static` (and `Send` when `source` is), as a body stream handed to an HTTP server must
    /// be.
    pub fn into_reader_async<R: AsyncRead + Unpin>(
        self: Arc<Self>,
        source: R,
    ) -> MultipartAsyncReader<'static, R> {
        MultipartAsyncReader::new(ObjectRef::Shared(self), source)
    }
}

/// An `AsyncRead` over a completed multipart object; see [`MultipartObject::reader_async`].
///
/// It follows the same plan as the `std::io` [`MultipartReader`](crate::multipart::MultipartReader)
/// and keeps everything a step has read so far in itself, so a source may return data in pieces
/// of any size with `Pending` between them (a chunk may take many polls).
pub struct MultipartAsyncReader<'a, R> {
    object: ObjectRef<'a>,
    walk: WholeRead<PartChunks>,
    source: R,
    /// The chunk buffer: the step being read (`filled` bytes so far, kept across `Pending`), then
    /// the plaintext of the chunk that authenticated, released from `pos` to `end`.
    buf: ChunkBuf,
    filled: usize,
    pos: usize,
    end: usize,
}

impl<'a, R: AsyncRead + Unpin> MultipartAsyncReader<'a, R> {
    fn new(object: ObjectRef<'a>, source: R) -> Self {
        MultipartAsyncReader {
            object,
            walk: WholeRead::new(),
            source,
            buf: chunk_buf(),
            filled: 0,
            pos: 0,
            end: 0,
        }
    }

    /// Read until `buf` holds `want` bytes or the source ends; returns how many it holds and
    /// starts over for the next step. Bytes read before a `Pending` stay counted in `filled`.
    fn poll_fill(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<usize>> {
        let got = ready!(poll_fill(
            &mut self.source,
            cx,
            &mut self.buf[..want],
            &mut self.filled
        ))?;
        self.filled = 0;
        Poll::Ready(Ok(got))
    }

    /// Take the next step of the read (a part's prefix, a chunk, the end of a part or of the
    /// source); `false` once the object has ended. A chunk's plaintext is left in
    /// `buf[pos..end]`.
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool>> {
        let want = match self.walk.phase_mut() {
            Phase::Done => return Poll::Ready(Ok(false)),
            Phase::Failed(f) => return Poll::Ready(Err(f.error())),
            Phase::Part(part) if part.is_done() => {
                self.walk.end_part(self.object.get())?;
                return Poll::Ready(Ok(true));
            }
            Phase::Prefix => PREFIX_SIZE,
            Phase::Part(part) => part.want(),
            Phase::End => 1,
        };
        let got = ready!(self.poll_fill(cx, want))?;
        match self.walk.phase_mut() {
            Phase::Prefix => {
                if got != PREFIX_SIZE {
                    return Poll::Ready(Err(Error::Truncated));
                }
                let mut prefix = [0u8; PREFIX_SIZE];
                prefix.copy_from_slice(&self.buf[..PREFIX_SIZE]);
                self.walk
                    .start_part(self.object.get(), &prefix, PartChunks::new)?;
            }
            Phase::Part(part) => {
                let pt = part.open(&mut self.buf[..got])?;
                self.walk.count(pt);
                self.pos = 0;
                self.end = pt;
            }
            Phase::End => self.walk.end(got)?,
            Phase::Done | Phase::Failed(_) => unreachable!("no read in this phase"),
        }
        Poll::Ready(Ok(true))
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for MultipartAsyncReader<'_, R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.walk.failure() {
            return Poll::Ready(Err(e.into()));
        }
        if out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        while this.pos == this.end {
            match ready!(this.poll_step(cx)) {
                Ok(true) => {}
                Ok(false) => return Poll::Ready(Ok(())),
                Err(e) => {
                    // Sticky: report a failure again on every later call.
                    this.walk.fail(&e);
                    this.filled = 0;
                    this.pos = 0;
                    this.end = 0;
                    return Poll::Ready(Err(e.into()));
                }
            }
        }
        let n = (this.end - this.pos).min(out.remaining());
        out.put_slice(&this.buf[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}
