//! [`BodyWriter`]: streaming encryption into a `Write`.

use super::keys::ChunkKeys;
use super::{CHUNK_SIZE, COMMITMENT_SIZE, ENCRYPTED_CHUNK_SIZE, SALT_SIZE, TAG_SIZE};
use super::{ChunkBuf, chunk_buf};
use crate::aead::Backend;
use crate::error::{Error, Result};
use std::io::{self, Write};

/// Streaming C2SP encryption into a `Write`: call [`BodyWriter::finish`] at the end, which writes
/// the short final chunk. A writer dropped without `finish` leaves a truncated body that no reader
/// accepts.
pub struct BodyWriter<W: Write> {
    inner: W,
    keys: ChunkKeys,
    buf: ChunkBuf,
    filled: usize,
    index: u64,
    failed: bool,
    commitment: [u8; COMMITMENT_SIZE],
}

impl<W: Write> BodyWriter<W> {
    /// Start a body under `input_key` (32 bytes) and `context` with a fresh random salt; writes
    /// the salt and commitment.
    pub fn new(inner: W, input_key: &[u8], context: &[u8], backend: Backend) -> Result<Self> {
        let mut salt = [0u8; SALT_SIZE];
        crate::key::random(&mut salt)?;
        Self::salted(inner, input_key, &salt, context, backend)
    }

    /// Test seam (feature `test-support`): a body with a chosen salt (known-answer files). A salt
    /// must never repeat under one input key; use [`BodyWriter::new`].
    #[cfg(feature = "test-support")]
    pub fn with_salt(
        inner: W,
        input_key: &[u8],
        salt: &[u8; SALT_SIZE],
        context: &[u8],
        backend: Backend,
    ) -> Result<Self> {
        Self::salted(inner, input_key, salt, context, backend)
    }

    pub(crate) fn salted(
        mut inner: W,
        input_key: &[u8],
        salt: &[u8; SALT_SIZE],
        context: &[u8],
        backend: Backend,
    ) -> Result<Self> {
        let (keys, commitment) = ChunkKeys::derive(backend, input_key, salt, context)?;
        inner.write_all(salt)?;
        inner.write_all(&commitment)?;
        Ok(BodyWriter {
            inner,
            keys,
            buf: chunk_buf(),
            filled: 0,
            index: 0,
            failed: false,
            commitment,
        })
    }

    /// The commitment of this body (what a multipart manifest records).
    pub(crate) fn commitment(&self) -> [u8; COMMITMENT_SIZE] {
        self.commitment
    }

    fn seal_full_chunk(&mut self) -> Result<()> {
        let tag = self
            .keys
            .seal_chunk(self.index, &mut self.buf[..CHUNK_SIZE])?;
        self.buf[CHUNK_SIZE..].copy_from_slice(&tag);
        self.inner.write_all(&self.buf[..])?;
        self.filled = 0;
        self.index += 1;
        Ok(())
    }

    fn write_inner(&mut self, data: &[u8]) -> Result<usize> {
        if self.failed {
            return Err(Error::Poisoned);
        }
        if self.filled == 0 && data.len() >= CHUNK_SIZE {
            // A whole chunk from the caller's slice: copied into the chunk buffer and sealed there,
            // which keeps the cipher on cache-hot data with every backend.
            self.buf[..CHUNK_SIZE].copy_from_slice(&data[..CHUNK_SIZE]);
            touch_ahead(&data[CHUNK_SIZE..]);
            let r = self
                .keys
                .seal_chunk(self.index, &mut self.buf[..CHUNK_SIZE])
                .and_then(|tag| {
                    self.buf[CHUNK_SIZE..].copy_from_slice(&tag);
                    self.inner.write_all(&self.buf[..])?;
                    Ok(())
                });
            if let Err(e) = r {
                self.failed = true;
                return Err(e);
            }
            self.index += 1;
            return Ok(CHUNK_SIZE);
        }
        let take = (CHUNK_SIZE - self.filled).min(data.len());
        self.buf[self.filled..self.filled + take].copy_from_slice(&data[..take]);
        self.filled += take;
        if self.filled == CHUNK_SIZE {
            // A full chunk is never the last one: seal it now.
            if let Err(e) = self.seal_full_chunk() {
                self.failed = true;
                return Err(e);
            }
        }
        Ok(take)
    }

    /// Seal whole chunks where they lie in the caller's `block` and write it to the inner writer in
    /// one `write_all`, with no copy through the chunk buffer.
    ///
    /// `block` is a whole number of slots of [`ENCRYPTED_CHUNK_SIZE`] bytes; each slot holds a full
    /// chunk of plaintext ([`CHUNK_SIZE`] bytes) followed by [`TAG_SIZE`] bytes of room for its
    /// tag. Afterwards `block` holds exactly the ciphertext that was written. The stream must be
    /// at a chunk boundary (no plaintext buffered by an earlier `write` of a partial chunk), else
    /// [`Error::ChunkBlock`] and nothing changes. Write the final (short) plaintext with `write`
    /// and end with [`BodyWriter::finish`], as usual. Same bytes as the `Write` adapter.
    pub fn seal_chunks(&mut self, block: &mut [u8]) -> Result<()> {
        if self.failed {
            return Err(Error::Poisoned);
        }
        if !block.len().is_multiple_of(ENCRYPTED_CHUNK_SIZE) {
            return Err(Error::ChunkBlock(
                "not a whole number of encrypted chunk slots",
            ));
        }
        if self.filled != 0 {
            return Err(Error::ChunkBlock(
                "a partial chunk is buffered: the stream is not at a chunk boundary",
            ));
        }
        let r = self.seal_block(block);
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    fn seal_block(&mut self, block: &mut [u8]) -> Result<()> {
        for slot in block.chunks_exact_mut(ENCRYPTED_CHUNK_SIZE) {
            let (chunk, tag) = slot.split_at_mut(CHUNK_SIZE);
            tag.copy_from_slice(&self.keys.seal_chunk(self.index, chunk)?);
            self.index += 1;
        }
        self.inner.write_all(block)?;
        Ok(())
    }

    /// Seal the final (short, possibly empty) chunk, flush, and return the inner writer.
    pub fn finish(mut self) -> Result<W> {
        self.finish_in_place()?;
        self.inner.flush()?;
        Ok(self.inner)
    }

    /// Seal the final chunk into the inner writer; the writer accepts nothing afterwards.
    pub(crate) fn finish_in_place(&mut self) -> Result<()> {
        if self.failed {
            return Err(Error::Poisoned);
        }
        // Whatever happens next, no more data may follow the final chunk.
        self.failed = true;
        let n = self.filled;
        let tag = self.keys.seal_chunk(self.index, &mut self.buf[..n])?;
        self.buf[n..n + TAG_SIZE].copy_from_slice(&tag);
        self.inner.write_all(&self.buf[..n + TAG_SIZE])?;
        Ok(())
    }

    /// The inner writer (the async adapters drain a `Vec` through it).
    #[cfg(feature = "tokio")]
    pub(crate) fn inner_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}

impl<W: Write> Write for BodyWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        Ok(self.write_inner(data)?)
    }

    fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = self.write_inner(data)?;
            data = &data[n..];
        }
        Ok(())
    }

    /// Flushes the inner writer; buffered plaintext stays buffered until its chunk is full or
    /// `finish` is called (a chunk cannot be sealed early without changing the format).
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Load two cache lines at the start of each 4 KiB page of the first chunk of `ahead`, so that the
/// hardware prefetcher streams the rest of those pages in while the current chunk is sealed
/// (safe Rust has no prefetch instruction; `_mm_prefetch` needs `unsafe`). Only timing: the
/// values are discarded (why one chunk ahead and every 4 KiB: BENCHMARKS-envelope.md).
#[inline]
pub(super) fn touch_ahead(ahead: &[u8]) {
    let ahead = &ahead[..ahead.len().min(CHUNK_SIZE)];
    let mut at = 0;
    while at < ahead.len() {
        std::hint::black_box(ahead[at]);
        if let Some(&b) = ahead.get(at + 64) {
            std::hint::black_box(b);
        }
        at += 4096;
    }
}
