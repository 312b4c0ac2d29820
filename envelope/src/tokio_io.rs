//! tokio adapters (feature `tokio`): [`AsyncEncryptor`] (`AsyncWrite`), [`AsyncDecryptor`]
//! (`AsyncRead`) and [`open_range_async`] (`AsyncRead + AsyncSeek`), with the same format and the
//! same guarantees as the `std::io` types: one chunk of buffering, nothing released before its
//! chunk authenticates, end of stream only after the final chunk authenticates. Completed
//! multipart objects have their async reads in [`tokio_multipart`](crate::tokio_multipart).

use crate::aead::Backend;
use crate::chunked::{
    self, BodyWriter, ChunkBuf, ChunkKeys, ChunkOpener, ENCRYPTED_CHUNK_SIZE, PREFIX_SIZE,
    chunk_buf,
};
use crate::context::{BodyRole, ObjectContext};
use crate::error::{Error, Result};
use crate::fill::{poll_fill, read_exact_or_truncated_async};
use crate::header::{Header, HeaderDecoder, HeaderStep, ObjectKind};
use crate::object::ObjectKey;
use crate::provider::AsyncKeyProvider;
use std::io::{self, Write};
use std::ops::Range;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncSeek, AsyncSeekExt, AsyncWrite, ReadBuf};

/// Streaming encryption into an `AsyncWrite`: header, then body. `shutdown` seals the final
/// chunk; an encryptor dropped without it leaves an object no reader accepts.
pub struct AsyncEncryptor<W> {
    inner: W,
    /// Seals into a `Vec` that holds at most the header and one encrypted chunk before it is
    /// drained into `inner`.
    body: BodyWriter<Vec<u8>>,
    drained: usize,
    finished: bool,
}

impl<W: AsyncWrite + Unpin> AsyncEncryptor<W> {
    /// Start an object sealed under `key` (a single-object key) and bound to `context`.
    pub fn new(
        key: &ObjectKey,
        context: &ObjectContext,
        inner: W,
        backend: Backend,
    ) -> Result<Self> {
        key.expect_kind(ObjectKind::Single)?;
        let mut pending =
            Vec::with_capacity(key.header().len() + PREFIX_SIZE + ENCRYPTED_CHUNK_SIZE);
        pending.extend_from_slice(key.header().as_bytes());
        let ctx = key.context(context, BodyRole::Single)?;
        let body = BodyWriter::new(pending, key.data_key().expose(), &ctx, backend)?;
        Ok(AsyncEncryptor {
            inner,
            body,
            drained: 0,
            finished: false,
        })
    }

    /// The inner writer.
    pub fn into_inner(self) -> W {
        self.inner
    }

    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let pending = self.body.inner_mut();
            if self.drained == pending.len() {
                pending.clear();
                self.drained = 0;
                return Poll::Ready(Ok(()));
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &pending[self.drained..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.drained += n;
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for AsyncEncryptor<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        Poll::Ready(this.body.write(data))
    }

    /// Drains sealed chunks; plaintext of an incomplete chunk stays buffered (the format cannot
    /// seal it early).
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        if !this.finished {
            this.body.finish_in_place()?;
            this.finished = true;
            ready!(this.poll_drain(cx))?;
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// Read exactly one object header from `r` (nothing after it), as [`Header::read_from`] does.
pub async fn read_header<R: AsyncRead + Unpin + ?Sized>(r: &mut R) -> Result<Header> {
    let mut decoder = HeaderDecoder::new();
    loop {
        match decoder.step()? {
            HeaderStep::Read(buf) => read_exact_or_truncated_async(r, buf).await?,
            HeaderStep::Done(h) => return Ok(h),
        }
    }
}

/// Streaming decryption from an `AsyncRead`.
pub struct AsyncDecryptor<R> {
    inner: R,
    opener: ChunkOpener,
    buf: ChunkBuf,
    /// Bytes of the next chunk read so far (kept across `Pending`).
    filled: usize,
    pos: usize,
    end: usize,
}

impl<R: AsyncRead + Unpin> AsyncDecryptor<R> {
    /// Read the header, unwrap its data key with `provider`, check the header tag, then read and
    /// check the body's commitment. No chunk is decrypted yet.
    pub async fn new<P: AsyncKeyProvider + ?Sized>(
        provider: &P,
        context: &ObjectContext,
        mut inner: R,
        backend: Backend,
    ) -> Result<Self> {
        let header = read_header(&mut inner).await?;
        let key = ObjectKey::unwrap_with_async(provider, header, context).await?;
        Self::with_key(&key, context, inner, backend).await
    }

    /// Open the body that follows an already read and verified header.
    pub async fn with_key(
        key: &ObjectKey,
        context: &ObjectContext,
        mut inner: R,
        backend: Backend,
    ) -> Result<Self> {
        key.expect_kind(ObjectKind::Single)?;
        let mut prefix = [0u8; PREFIX_SIZE];
        read_exact_or_truncated_async(&mut inner, &mut prefix).await?;
        let ctx = key.context(context, BodyRole::Single)?;
        let keys = ChunkKeys::derive_checked(backend, key.data_key().expose(), &prefix, &ctx)?;
        Ok(AsyncDecryptor {
            inner,
            opener: ChunkOpener::new(keys),
            buf: chunk_buf(),
            filled: 0,
            pos: 0,
            end: 0,
        })
    }

    /// Fill the chunk buffer (or reach EOF), then authenticate the chunk.
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let n = ready!(poll_fill(
            &mut self.inner,
            cx,
            &mut self.buf[..],
            &mut self.filled
        ))?;
        self.filled = 0;
        self.end = self.opener.open(&mut self.buf[..n])?;
        self.pos = 0;
        Poll::Ready(Ok(()))
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for AsyncDecryptor<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.pos == this.end {
            if !this.opener.pending()? {
                return Poll::Ready(Ok(()));
            }
            if let Err(e) = ready!(this.poll_chunk(cx)) {
                this.opener.fail(&e);
                this.pos = 0;
                this.end = 0;
                return Poll::Ready(Err(e.into()));
            }
        }
        let n = (this.end - this.pos).min(out.remaining());
        out.put_slice(&this.buf[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}

/// Decrypt plaintext `range` of the object in `source` (header included) into `out`; returns
/// the plaintext length. Reads the header, salt and commitment, the final chunk (authenticating
/// the length) and the chunks overlapping `range`.
pub async fn open_range_async<P, R, W>(
    provider: &P,
    context: &ObjectContext,
    source: &mut R,
    range: Range<u64>,
    out: &mut W,
    backend: Backend,
) -> Result<u64>
where
    P: AsyncKeyProvider + ?Sized,
    R: AsyncRead + AsyncSeek + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    use tokio::io::AsyncWriteExt;
    source.seek(io::SeekFrom::Start(0)).await?;
    let header = read_header(source).await?;
    let key = ObjectKey::unwrap_with_async(provider, header, context).await?;
    key.expect_kind(ObjectKind::Single)?;
    let hl = u64::try_from(key.header().len()).map_err(|_| Error::TooLong)?;
    let total = source.seek(io::SeekFrom::End(0)).await?;
    source.seek(io::SeekFrom::Start(hl)).await?;
    let mut prefix = [0u8; PREFIX_SIZE];
    read_exact_or_truncated_async(source, &mut prefix).await?;
    let ctx = key.context(context, BodyRole::Single)?;
    let keys = ChunkKeys::derive_checked(backend, key.data_key().expose(), &prefix, &ctx)?;
    let len = chunked::body_plaintext_len(total - hl)?;
    read_range_with_keys_async(source, hl, &keys, len, range, out).await?;
    out.flush().await?;
    Ok(len)
}

/// The async range reader behind [`open_range_async`] and
/// [`MultipartObject::read_range_async`](crate::multipart::MultipartObject::read_range_async):
/// decrypt plaintext `range` of the `len`-byte body that starts at `body_offset` in `source`, whose
/// keys were derived from its salt and commitment and checked. Reads the final chunk (which
/// authenticates the length), then the chunks overlapping `range` ([`chunked::RangeChunks`], as
/// the `std::io` reader does), releasing each only once it has authenticated; one chunk buffer.
pub(crate) async fn read_range_with_keys_async<R, W>(
    source: &mut R,
    body_offset: u64,
    keys: &ChunkKeys,
    len: u64,
    range: Range<u64>,
    out: &mut W,
) -> Result<()>
where
    R: AsyncRead + AsyncSeek + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    use tokio::io::AsyncWriteExt;
    let plan = chunked::RangeChunks::new(len, range)?;
    let mut buf = chunk_buf();
    let final_chunk = plan.final_chunk();
    read_chunk_at(source, body_offset, keys, &final_chunk, &mut buf[..]).await?;
    for c in plan.overlapping() {
        if !c.cached {
            read_chunk_at(source, body_offset, keys, &c, &mut buf[..]).await?;
        }
        out.write_all(&buf[c.release]).await?;
    }
    Ok(())
}

/// Seek to chunk `c` of the body at `body_offset`, read it whole and open it in `buf`.
async fn read_chunk_at<R: AsyncRead + AsyncSeek + Unpin + ?Sized>(
    source: &mut R,
    body_offset: u64,
    keys: &ChunkKeys,
    c: &chunked::ChunkRead,
    buf: &mut [u8],
) -> Result<()> {
    source
        .seek(io::SeekFrom::Start(body_offset + c.offset))
        .await?;
    read_exact_or_truncated_async(source, &mut buf[..c.len]).await?;
    c.open(keys, buf)
}
