//! [`BodyReader`]: streaming decryption from a `Read`, driving the [`ChunkOpener`].

use super::keys::ChunkKeys;
use super::opener::ChunkOpener;
use super::{CHUNK_SIZE, PREFIX_SIZE, TAG_SIZE};
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
