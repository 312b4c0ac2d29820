//! [`BodyReader`]: streaming decryption from a `Read`, driving the [`ChunkOpener`].

use super::keys::ChunkKeys;
use super::opener::ChunkOpener;
use super::{CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE, PREFIX_SIZE, TAG_SIZE};
use super::{ChunkBuf, chunk_buf};
use crate::aead::{Backend, KEY_LEN};
use crate::error::{Error, Result};
use crate::fill::{read_exact_or_truncated, read_up_to};
use std::io::{self, Read, Write};

/// Read the salt and commitment; EOF first is [`Error::Truncated`].
pub(crate) fn read_prefix<R: Read + ?Sized>(r: &mut R) -> Result<[u8; PREFIX_SIZE]> {
    let mut prefix = [0u8; PREFIX_SIZE];
    read_exact_or_truncated(r, &mut prefix)?;
    Ok(prefix)
}

/// Streaming C2SP decryption from a `Read`.
///
/// [`BodyReader::new`] reads the salt and commitment and checks the commitment before anything
/// else. `read` then releases each chunk only after it has authenticated; the end of the stream is
/// accepted only after a short final chunk has authenticated. After a failure every later call
/// fails again.
pub struct BodyReader<R: Read> {
    inner: R,
    opener: ChunkOpener,
    buf: ChunkBuf,
    pos: usize,
    end: usize,
    /// Bytes of a chunk not yet whole, read by [`BodyReader::open_chunks`], at the front of `buf`.
    carry: usize,
}

impl<R: Read> BodyReader<R> {
    /// Read the body prefix from `inner` and check the commitment for `input_key` and `context`.
    pub fn new(mut inner: R, input_key: &[u8], context: &[u8], backend: Backend) -> Result<Self> {
        if input_key.len() != KEY_LEN {
            return Err(Error::InvalidKeySize(input_key.len()));
        }
        let prefix = read_prefix(&mut inner)?;
        let keys = ChunkKeys::derive_checked(backend, input_key, &prefix, context)?;
        Ok(Self::from_parts(inner, keys))
    }

    pub(crate) fn from_parts(inner: R, keys: ChunkKeys) -> Self {
        BodyReader {
            inner,
            opener: ChunkOpener::new(keys),
            buf: chunk_buf(),
            pos: 0,
            end: 0,
            carry: 0,
        }
    }

    /// Decrypt the rest of the body into `out`; returns the bytes written. Unlike `io::copy` over
    /// the `Read` impl, failures come back typed.
    pub fn copy_to<W: Write + ?Sized>(&mut self, out: &mut W) -> Result<u64> {
        let mut total = 0u64;
        loop {
            if self.pos == self.end {
                if !self.opener.pending()? {
                    return Ok(total);
                }
                self.next_chunk()?;
                continue;
            }
            out.write_all(&self.buf[self.pos..self.end])?;
            total += u64::try_from(self.end - self.pos).map_err(|_| Error::TooLong)?;
            self.pos = self.end;
        }
    }

    /// Read chunks straight into the caller's `block` and open each one where it lies, with no
    /// copy through the chunk buffer; returns where the plaintext is.
    ///
    /// `block` is a whole number of slots of [`ENCRYPTED_CHUNK_SIZE`] bytes. One call reads until
    /// the block is full, the source ends, or at least one whole chunk has arrived (a pipe is not
    /// waited on for more), then opens every whole chunk it holds; afterwards slot `i` holds the
    /// plaintext of one chunk at its front (see [`OpenedChunks::slices`]). Bytes of a chunk not
    /// yet whole are kept by the reader for the next call. The object is whole and authenticated
    /// once a call returns an empty [`OpenedChunks`] (then [`BodyReader::is_done`]).
    ///
    /// A chunk that does not authenticate ends the block: the plaintext of the chunks before it
    /// is returned, everything from its slot on is zeroed, and every later call (or `read`) fails
    /// with its error; a failure at the first chunk of a call is returned at once. Mixing this
    /// with `read` of less than a chunk is [`Error::ChunkBlock`]: use one API per stream.
    pub fn open_chunks(&mut self, block: &mut [u8]) -> Result<OpenedChunks> {
        if block.is_empty() || !block.len().is_multiple_of(ENCRYPTED_CHUNK_SIZE) {
            return Err(Error::ChunkBlock(
                "not a whole, non-zero number of encrypted chunk slots",
            ));
        }
        if self.pos != self.end {
            return Err(Error::ChunkBlock(
                "plaintext of an earlier read is still buffered",
            ));
        }
        if !self.opener.pending()? {
            return Ok(OpenedChunks { full: 0, tail: 0 });
        }
        let (got, eof) = match self.fill_block(block) {
            Ok(filled) => filled,
            Err(e) => {
                block.fill(0);
                self.carry = 0;
                self.opener.fail(&e);
                return Err(e);
            }
        };
        let full = got / ENCRYPTED_CHUNK_SIZE;
        let whole = full * ENCRYPTED_CHUNK_SIZE;
        for (i, slot) in block[..whole]
            .chunks_exact_mut(ENCRYPTED_CHUNK_SIZE)
            .enumerate()
        {
            if let Err(e) = self.opener.open(slot) {
                // The opener records the failure; release what authenticated before it.
                block[i * ENCRYPTED_CHUNK_SIZE..].fill(0);
                self.carry = 0;
                return if i > 0 {
                    Ok(OpenedChunks { full: i, tail: 0 })
                } else {
                    Err(e)
                };
            }
            slot[CHUNK_SIZE..].fill(0);
        }
        if !eof {
            // The start of the next chunk waits in the chunk buffer for the next call.
            self.carry = got - whole;
            self.buf[..self.carry].copy_from_slice(&block[whole..got]);
            block[whole..got].fill(0);
            return Ok(OpenedChunks { full, tail: 0 });
        }
        // The source ended: what is left after the whole chunks is the final chunk.
        match self.opener.open(&mut block[whole..got]) {
            Ok(tail) => {
                block[whole + tail..got].fill(0);
                Ok(OpenedChunks { full, tail })
            }
            Err(e) => {
                block[whole..].fill(0);
                if full > 0 {
                    Ok(OpenedChunks { full, tail: 0 })
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Move the carried bytes to the front of `block` and read after them until the block is
    /// full, the source ends, or it holds a whole chunk and a read came back short; returns the
    /// bytes in the block and whether the source ended.
    fn fill_block(&mut self, block: &mut [u8]) -> Result<(usize, bool)> {
        let mut got = self.carry;
        block[..got].copy_from_slice(&self.buf[..got]);
        self.carry = 0;
        while got < block.len() {
            match self.inner.read(&mut block[got..]) {
                Ok(0) => return Ok((got, true)),
                Ok(n) => {
                    got += n;
                    if got >= ENCRYPTED_CHUNK_SIZE {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok((got, false))
    }

    /// Whether the final chunk has authenticated (the whole body was read).
    pub fn is_done(&self) -> bool {
        self.opener.is_done() && self.pos == self.end
    }

    /// The inner reader, positioned after the body once [`BodyReader::is_done`].
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn next_chunk(&mut self) -> Result<()> {
        self.next_chunk_to(None).map(|_| ())
    }

    /// Read and authenticate the next chunk: into `direct` when given (returns the plaintext
    /// length written there), else into the internal buffer (returns 0). Failures are sticky.
    fn next_chunk_to(&mut self, direct: Option<&mut [u8]>) -> Result<usize> {
        if self.carry != 0 {
            return Err(Error::ChunkBlock(
                "bytes read by open_chunks are pending: use one API per stream",
            ));
        }
        let r = match direct {
            Some(out) => self.next_chunk_in_caller(out),
            None => self.next_chunk_buffered(),
        };
        if let Err(e) = &r {
            self.pos = 0;
            self.end = 0;
            self.opener.fail(e);
        }
        r
    }

    fn next_chunk_buffered(&mut self) -> Result<usize> {
        let n = read_up_to(&mut self.inner, &mut self.buf[..])?;
        self.end = self.opener.open(&mut self.buf[..n])?;
        self.pos = 0;
        Ok(0)
    }

    /// Read the next chunk's ciphertext straight into the caller's `out` (`CHUNK_SIZE` bytes) and
    /// its tag aside, then open it there in place, saving the copy out of the chunk buffer (and
    /// keeping both aes-gcm passes on cache-hot data). Whatever fails, `out` is zeroed: it never
    /// holds unauthenticated plaintext.
    fn next_chunk_in_caller(&mut self, out: &mut [u8]) -> Result<usize> {
        let r = self.open_in_caller(out);
        if r.is_err() {
            out.fill(0);
        }
        r
    }

    fn open_in_caller(&mut self, out: &mut [u8]) -> Result<usize> {
        let got = read_up_to(&mut self.inner, &mut out[..CHUNK_SIZE])?;
        let mut tag = [0u8; TAG_SIZE];
        let tail = if got == CHUNK_SIZE {
            read_up_to(&mut self.inner, &mut tag)?
        } else {
            0
        };
        let pt_len = self.opener.open_split(out, got, &tag[..tail])?;
        // The tag bytes that were read into `out` are not plaintext; clear them.
        out[pt_len..got].fill(0);
        Ok(pt_len)
    }
}

impl<R: Read> Read for BodyReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        while self.pos == self.end {
            if !self.opener.pending()? {
                return Ok(0);
            }
            if out.len() >= CHUNK_SIZE {
                // Decrypt in the caller's buffer (zeroed on failure).
                let n = self.next_chunk_to(Some(&mut out[..CHUNK_SIZE]))?;
                if n > 0 || self.opener.is_done() {
                    return Ok(n);
                }
            } else {
                self.next_chunk()?;
            }
        }
        let n = (self.end - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Where [`BodyReader::open_chunks`] left the plaintext in the caller's block: `full` whole chunks,
/// one at the front of each slot, then `tail` bytes of the final chunk at the front of the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenedChunks {
    full: usize,
    tail: usize,
}

impl OpenedChunks {
    /// The plaintext bytes in the block.
    pub fn len(&self) -> usize {
        self.full * CHUNK_SIZE + self.tail
    }

    /// Whether the block holds no plaintext (the body had ended, or its final chunk was empty).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The plaintext pieces in `block` (the block given to `open_chunks`), in order, e.g. for one
    /// `write_vectored` of the whole block.
    pub fn slices<'a>(&self, block: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let tail = (self.tail > 0).then_some(self.full);
        let tail_len = self.tail;
        block
            .chunks(ENCRYPTED_CHUNK_SIZE)
            .take(self.full + usize::from(tail.is_some()))
            .enumerate()
            .map(move |(i, slot)| {
                if Some(i) == tail {
                    &slot[..tail_len]
                } else {
                    &slot[..CHUNK_SIZE]
                }
            })
    }
}
