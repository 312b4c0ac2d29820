//! tokio adapters (feature `tokio`): [`AsyncEncryptor`] (`AsyncWrite`), [`AsyncDecryptor`]
//! (`AsyncRead`) and [`open_range_async`] (`AsyncRead + AsyncSeek`), with the same format and the
//! same guarantees as the `std::io` types: one chunk of buffering, nothing released before its
//! chunk authenticates, end of stream only after the final chunk authenticates. Completed
//! multipart objects have their async reads in [`tokio_multipart`](crate::tokio_multipart).

use crate::aead::Backend;
use crate::chunked::{
    self, BodyWriter, ChunkKeys, ENCRYPTED_CHUNK_SIZE, Failure, PREFIX_SIZE, ReadState, TAG_SIZE,
};
use crate::context::{BodyRole, ObjectContext};
use crate::error::{Error, Result};
use crate::header::{Header, ObjectKind};
use crate::object::ObjectKey;
use crate::provider::AsyncKeyProvider;
use std::io::{self, Write};
use std::ops::Range;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeek, AsyncSeekExt, AsyncWrite, ReadBuf};

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
        let ctx = key.context(context, BodyRole::Single);
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

pub(crate) async fn read_exact_or_truncated<R: AsyncRead + Unpin + ?Sized>(
    r: &mut R,
    buf: &mut [u8],
) -> Result<()> {
    match r.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(Error::Truncated),
        Err(e) => Err(e.into()),
    }
}

/// Read exactly one object header from `r`.
pub async fn read_header<R: AsyncRead + Unpin + ?Sized>(r: &mut R) -> Result<Header> {
    // Read the fixed fields, let the parser judge them (magic, version, ...), then read what the
    // length fields say remains.
    let mut bytes = vec![0u8; 11];
    read_exact_or_truncated(r, &mut bytes).await?;
    for step in 0..2 {
        match Header::parse(&bytes) {
            Ok((h, _)) => return Ok(h),
            Err(Error::Truncated) => {}
            Err(e) => return Err(e),
        }
        let more = if step == 0 {
            u16::from_be_bytes([bytes[9], bytes[10]]) as usize + 3
        } else {
            let at = bytes.len();
            u16::from_be_bytes([bytes[at - 2], bytes[at - 1]]) as usize + crate::header::TAG_LEN
        };
        let start = bytes.len();
        bytes.resize(start + more, 0);
        read_exact_or_truncated(r, &mut bytes[start..]).await?;
    }
    Header::parse(&bytes).map(|(h, _)| h)
}

/// Streaming decryption from an `AsyncRead`.
pub struct AsyncDecryptor<R> {
    inner: R,
    keys: ChunkKeys,
    buf: Box<[u8; ENCRYPTED_CHUNK_SIZE]>,
    filled: usize,
    pos: usize,
    end: usize,
    index: u64,
    state: ReadState,
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
        read_exact_or_truncated(&mut inner, &mut prefix).await?;
        let ctx = key.context(context, BodyRole::Single);
        let keys = ChunkKeys::derive_checked(backend, key.data_key().expose(), &prefix, &ctx)?;
        Ok(AsyncDecryptor {
            inner,
            keys,
            buf: Box::new([0u8; ENCRYPTED_CHUNK_SIZE]),
            filled: 0,
            pos: 0,
            end: 0,
            index: 0,
            state: ReadState::Reading,
        })
    }

    /// Fill the chunk buffer (or reach EOF), then authenticate the chunk.
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        while self.filled < ENCRYPTED_CHUNK_SIZE {
            let mut rb = ReadBuf::new(&mut self.buf[self.filled..]);
            ready!(Pin::new(&mut self.inner).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            if n == 0 {
                break;
            }
            self.filled += n;
        }
        let n = std::mem::take(&mut self.filled);
        let last = n < ENCRYPTED_CHUNK_SIZE;
        if n < TAG_SIZE {
            return Poll::Ready(Err(Error::Truncated));
        }
        let len = self
            .keys
            .open_encrypted_chunk(self.index, &mut self.buf[..n], last)?;
        if last {
            self.state = ReadState::Done;
        } else {
            self.index += 1;
        }
        self.pos = 0;
        self.end = len;
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
            match this.state {
                ReadState::Done => return Poll::Ready(Ok(())),
                ReadState::Failed(f) => return Poll::Ready(Err(f.error().into())),
                ReadState::Reading => {
                    if let Err(e) = ready!(this.poll_chunk(cx)) {
                        this.state = ReadState::Failed(Failure::of(&e));
                        this.pos = 0;
                        this.end = 0;
                        return Poll::Ready(Err(e.into()));
                    }
                }
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
    let hl = key.header().len() as u64;
    let total = source.seek(io::SeekFrom::End(0)).await?;
    source.seek(io::SeekFrom::Start(hl)).await?;
    let mut prefix = [0u8; PREFIX_SIZE];
    read_exact_or_truncated(source, &mut prefix).await?;
    let ctx = key.context(context, BodyRole::Single);
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
    let mut buf = vec![0u8; ENCRYPTED_CHUNK_SIZE];
    let final_chunk = plan.final_chunk();
    read_chunk_at(source, body_offset, keys, &final_chunk, &mut buf).await?;
    for c in plan.overlapping() {
        if !c.cached {
            read_chunk_at(source, body_offset, keys, &c, &mut buf).await?;
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
    read_exact_or_truncated(source, &mut buf[..c.len]).await?;
    keys.open_encrypted_chunk(c.index, &mut buf[..c.len], c.last)?;
    Ok(())
}

/// Read until `buf` is full or EOF; returns the bytes read (the async `chunked::read_up_to`).
pub(crate) async fn read_up_to<R: AsyncRead + Unpin + ?Sized>(
    r: &mut R,
    buf: &mut [u8],
) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]).await {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
