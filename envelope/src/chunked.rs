//! C2SP chunked encryption v1, "Cobblestone-256" (AES-256-GCM, HKDF-SHA-512): the object body.
//!
//! This is the format layer of FORMAT.md section 3, usable on its own by callers that manage their
//! own input keys: [`BodyWriter`] seals a stream, [`BodyReader`] opens one, [`read_body_range`]
//! decrypts a plaintext byte range from a seekable source, and [`body_len`],
//! [`body_plaintext_len`] and [`body_chunk_range`] map lengths and ranges exactly.
//!
//! Each writer and reader holds one chunk buffer (16 KiB + 16 bytes) whatever the message size, and
//! a reader releases no byte of a chunk before that chunk has authenticated.

use crate::aead::{Backend, ChunkAead, KEY_LEN, NONCE_LEN, TAG_LEN, new_aead};
use crate::error::{Error, Result};
use crate::kdf::{ct_eq, hkdf_expand};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use zeroize::Zeroizing;

/// Plaintext bytes per chunk (every chunk but the last, which is always shorter).
pub const CHUNK_SIZE: usize = 16 * 1024;
/// AEAD tag bytes per chunk.
pub const TAG_SIZE: usize = TAG_LEN;
/// Encrypted bytes of a full chunk.
pub const ENCRYPTED_CHUNK_SIZE: usize = CHUNK_SIZE + TAG_SIZE;
/// Salt bytes at the start of a body.
pub const SALT_SIZE: usize = 24;
/// Key-commitment bytes after the salt.
pub const COMMITMENT_SIZE: usize = 32;
/// Bytes before the first chunk: salt and commitment.
pub const PREFIX_SIZE: usize = SALT_SIZE + COMMITMENT_SIZE;
/// The chunk counter must stay below 2^38.
pub const MAX_CHUNKS: u64 = 1 << 38;

const CHUNK_U64: u64 = CHUNK_SIZE as u64;
const ENC_CHUNK_U64: u64 = ENCRYPTED_CHUNK_SIZE as u64;
const PREFIX_U64: u64 = PREFIX_SIZE as u64;
const TAG_U64: u64 = TAG_SIZE as u64;

/// The per-message AEAD key and base nonce derived from the input key, salt and context.
pub(crate) struct ChunkKeys {
    aead: Box<dyn ChunkAead>,
    base_nonce: [u8; NONCE_LEN],
}

impl ChunkKeys {
    /// `key || base_nonce || commitment = HKDF-Expand(input_key, label || salt || context, 76)`.
    pub(crate) fn derive(
        backend: Backend,
        input_key: &[u8],
        salt: &[u8; SALT_SIZE],
        context: &[u8],
    ) -> Result<(ChunkKeys, [u8; COMMITMENT_SIZE])> {
        if input_key.len() != KEY_LEN {
            return Err(Error::InvalidKeySize(input_key.len()));
        }
        let mut okm = Zeroizing::new([0u8; KEY_LEN + NONCE_LEN + COMMITMENT_SIZE]);
        hkdf_expand(
            input_key,
            &[
                b"c2sp.org/chunked-encryption@v1+AEAD_AES_256_GCM\0",
                salt,
                context,
            ],
            &mut okm[..],
        );
        let aead = new_aead(backend, &okm[..KEY_LEN])?;
        let mut base_nonce = [0u8; NONCE_LEN];
        base_nonce.copy_from_slice(&okm[KEY_LEN..KEY_LEN + NONCE_LEN]);
        let mut commitment = [0u8; COMMITMENT_SIZE];
        commitment.copy_from_slice(&okm[KEY_LEN + NONCE_LEN..]);
        Ok((ChunkKeys { aead, base_nonce }, commitment))
    }

    /// Derive the keys and check `commitment` (constant time) before any chunk is touched.
    pub(crate) fn derive_checked(
        backend: Backend,
        input_key: &[u8],
        prefix: &[u8; PREFIX_SIZE],
        context: &[u8],
    ) -> Result<ChunkKeys> {
        let (salt, stored) = split_prefix(prefix);
        let (keys, derived) = ChunkKeys::derive(backend, input_key, salt, context)?;
        if ct_eq(&derived, stored) {
            Ok(keys)
        } else {
            Err(Error::Commitment)
        }
    }

    /// `base_nonce XOR be96(index)`.
    fn nonce(&self, index: u64) -> Result<[u8; NONCE_LEN]> {
        if index >= MAX_CHUNKS {
            return Err(Error::TooLong);
        }
        let mut nonce = self.base_nonce;
        for (n, c) in nonce[4..].iter_mut().zip(index.to_be_bytes()) {
            *n ^= c;
        }
        Ok(nonce)
    }

    /// Seal chunk `index` in place; returns its tag.
    pub(crate) fn seal_chunk(&self, index: u64, buf: &mut [u8]) -> Result<[u8; TAG_SIZE]> {
        let nonce = self.nonce(index)?;
        Ok(self.aead.seal_in_place(&nonce, &[], buf))
    }

    /// Seal chunk `index` from `buf[..len]` into `buf[shift..]` (`len = buf.len() - shift`);
    /// returns its tag.
    pub(crate) fn seal_chunk_shifted(
        &self,
        index: u64,
        buf: &mut [u8],
        shift: usize,
    ) -> Result<[u8; TAG_SIZE]> {
        let nonce = self.nonce(index)?;
        Ok(self.aead.seal_shifted(&nonce, &[], buf, shift))
    }

    /// Whether opening into the caller's buffer saves a copy with this backend.
    pub(crate) fn out_of_place(&self) -> bool {
        self.aead.out_of_place()
    }

    /// Open an encrypted chunk (`ciphertext || tag`) from `enc` into `out`, which must hold the
    /// plaintext length; returns it. On failure `out` holds no plaintext.
    pub(crate) fn open_encrypted_chunk_into(
        &self,
        index: u64,
        enc: &[u8],
        out: &mut [u8],
        last: bool,
    ) -> Result<usize> {
        let Some(pt_len) = enc.len().checked_sub(TAG_SIZE) else {
            return Err(Error::Truncated);
        };
        let (body, tag) = enc.split_at(pt_len);
        let tag: [u8; TAG_SIZE] = match tag.try_into() {
            Ok(t) => t,
            Err(_) => return Err(Error::Truncated),
        };
        let nonce = self.nonce(index)?;
        self.aead
            .open_into(&nonce, &[], body, &mut out[..pt_len], &tag)
            .map_err(|_| {
                if last {
                    Error::BadFinalChunk { index }
                } else {
                    Error::TamperedChunk { index }
                }
            })?;
        Ok(pt_len)
    }

    /// Open the encrypted chunk (`ciphertext || tag`) `buf[src..]`, writing its plaintext to the
    /// front of `buf`. On failure the caller must discard all of `buf`.
    pub(crate) fn open_chunk_shifted(
        &self,
        index: u64,
        buf: &mut [u8],
        src: usize,
        last: bool,
    ) -> Result<()> {
        let Some(tag_at) = buf.len().checked_sub(TAG_SIZE).filter(|&t| t >= src) else {
            return Err(Error::Truncated);
        };
        let (body, tag) = buf.split_at_mut(tag_at);
        let tag: [u8; TAG_SIZE] = match (&*tag).try_into() {
            Ok(t) => t,
            Err(_) => return Err(Error::Truncated),
        };
        let nonce = self.nonce(index)?;
        self.aead
            .open_shifted(&nonce, &[], body, src, &tag)
            .map_err(|_| {
                if last {
                    Error::BadFinalChunk { index }
                } else {
                    Error::TamperedChunk { index }
                }
            })
    }

    /// Open chunk `index` in place. `last` only chooses the error reported.
    pub(crate) fn open_chunk(
        &self,
        index: u64,
        buf: &mut [u8],
        tag: &[u8; TAG_SIZE],
        last: bool,
    ) -> Result<()> {
        let nonce = self.nonce(index)?;
        self.aead.open_in_place(&nonce, &[], buf, tag).map_err(|_| {
            if last {
                Error::BadFinalChunk { index }
            } else {
                Error::TamperedChunk { index }
            }
        })
    }

    /// Open an encrypted chunk (`ciphertext || tag`) in place and return its plaintext length.
    pub(crate) fn open_encrypted_chunk(
        &self,
        index: u64,
        enc: &mut [u8],
        last: bool,
    ) -> Result<usize> {
        let Some(pt_len) = enc.len().checked_sub(TAG_SIZE) else {
            return Err(Error::Truncated);
        };
        let (body, tag) = enc.split_at_mut(pt_len);
        let tag: [u8; TAG_SIZE] = match (&*tag).try_into() {
            Ok(t) => t,
            Err(_) => return Err(Error::Truncated),
        };
        self.open_chunk(index, body, &tag, last)?;
        Ok(pt_len)
    }
}

fn split_prefix(prefix: &[u8; PREFIX_SIZE]) -> (&[u8; SALT_SIZE], &[u8; COMMITMENT_SIZE]) {
    let (salt, commitment) = prefix.split_at(SALT_SIZE);
    match (salt.try_into(), commitment.try_into()) {
        (Ok(s), Ok(c)) => (s, c),
        _ => unreachable!("prefix is salt || commitment"),
    }
}

/// The exact body length (salt, commitment and chunks) of a `plaintext_len`-byte message.
pub fn body_len(plaintext_len: u64) -> Result<u64> {
    let full = plaintext_len / CHUNK_U64;
    if full >= MAX_CHUNKS {
        return Err(Error::TooLong);
    }
    let rem = plaintext_len % CHUNK_U64;
    full.checked_mul(ENC_CHUNK_U64)
        .and_then(|v| v.checked_add(PREFIX_U64 + rem + TAG_U64))
        .ok_or(Error::TooLong)
}

/// The plaintext length of a body of `body_len` bytes, or [`Error::Truncated`] when no message
/// encrypts to that length.
pub fn body_plaintext_len(body_len: u64) -> Result<u64> {
    let c = body_len.checked_sub(PREFIX_U64).ok_or(Error::Truncated)?;
    let full = c / ENC_CHUNK_U64;
    let rem = c % ENC_CHUNK_U64;
    if rem < TAG_U64 {
        return Err(Error::Truncated);
    }
    if full >= MAX_CHUNKS {
        return Err(Error::TooLong);
    }
    Ok(full * CHUNK_U64 + rem - TAG_U64)
}

/// The body byte range holding the chunks that overlap plaintext `range` of a message of
/// `plaintext_len` bytes. An empty range maps to an empty range at its chunk. A reader also needs
/// the first [`PREFIX_SIZE`] body bytes (salt and commitment).
pub fn body_chunk_range(plaintext_len: u64, range: Range<u64>) -> Result<Range<u64>> {
    check_range(plaintext_len, &range)?;
    let first = range.start / CHUNK_U64;
    let start = PREFIX_U64 + first * ENC_CHUNK_U64;
    if range.is_empty() {
        return Ok(start..start);
    }
    let last = (range.end - 1) / CHUNK_U64;
    let end = if last == plaintext_len / CHUNK_U64 {
        body_len(plaintext_len)?
    } else {
        PREFIX_U64 + (last + 1) * ENC_CHUNK_U64
    };
    Ok(start..end)
}

pub(crate) fn check_range(len: u64, range: &Range<u64>) -> Result<()> {
    if range.start > range.end || range.end > len {
        return Err(Error::InvalidRange {
            start: range.start,
            end: range.end,
            len,
        });
    }
    Ok(())
}

/// Seal the message held in `buf[..]` in place: afterwards `buf` is `head` reserved bytes
/// (zeros, for the caller to fill, e.g. with an object header) followed by the body
/// (`salt || commitment || chunks`). Chunks go last first, so no unsealed byte is overwritten:
/// each is sealed where it lies and then moved to its place in the body (reading what the cipher
/// has just written, from the cache). Reserve capacity with [`body_len`] to avoid a reallocation.
pub(crate) fn seal_body_in_place(
    keys: &ChunkKeys,
    salt: &[u8; SALT_SIZE],
    commitment: &[u8; COMMITMENT_SIZE],
    buf: &mut Vec<u8>,
    head: usize,
) -> Result<()> {
    let n = buf.len();
    let body = usize::try_from(body_len(n as u64)?).map_err(|_| Error::TooLong)?;
    let total = head.checked_add(body).ok_or(Error::TooLong)?;
    let last = n / CHUNK_SIZE;
    // Every nonce is valid (checked by `body_len`): nothing below fails after `buf` changes.
    buf.resize(total, 0);
    for k in (0..=last).rev() {
        let src = k * CHUNK_SIZE;
        let len = if k == last { n - src } else { CHUNK_SIZE };
        let dst = head + PREFIX_SIZE + k * ENCRYPTED_CHUNK_SIZE;
        if k > 0 {
            // Warm the chunk sealed next (the one before this), as `BodyWriter` does.
            touch_ahead(&buf[src - CHUNK_SIZE..src]);
        }
        let tag = keys.seal_chunk_shifted(k as u64, &mut buf[src..dst + len], dst - src)?;
        buf[dst + len..dst + len + TAG_SIZE].copy_from_slice(&tag);
    }
    buf[..head].fill(0);
    buf[head..head + SALT_SIZE].copy_from_slice(salt);
    buf[head + SALT_SIZE..head + PREFIX_SIZE].copy_from_slice(commitment);
    Ok(())
}

/// Open the body held in `buf[head..]` in place, whose salt and commitment `keys` were derived
/// from and checked against: afterwards `buf` holds the plaintext only. Each chunk is opened to
/// its plaintext offset (ring: in one pass from where it lies; aes-gcm: from a copy). A body
/// length that no message has fails before `buf` changes; once a chunk has been touched, any
/// failure zeroes and empties `buf`, so no byte of a message that did not authenticate whole
/// (final chunk included) is released.
pub(crate) fn open_body_in_place(keys: &ChunkKeys, buf: &mut Vec<u8>, head: usize) -> Result<()> {
    let body = buf.len().checked_sub(head).ok_or(Error::Truncated)?;
    let n = usize::try_from(body_plaintext_len(body as u64)?).map_err(|_| Error::TooLong)?;
    match open_chunks_in_place(keys, buf, head, n) {
        Ok(()) => {
            // The bytes past the plaintext are leftovers of the last chunks; wipe them too.
            buf[n..].fill(0);
            buf.truncate(n);
            Ok(())
        }
        Err(e) => {
            buf.fill(0);
            buf.clear();
            Err(e)
        }
    }
}

fn open_chunks_in_place(keys: &ChunkKeys, buf: &mut [u8], head: usize, n: usize) -> Result<()> {
    let last = n / CHUNK_SIZE;
    // Out-of-place backends (aes-gcm: GHASH pass, then CTR pass) open from a copy staged in
    // the cache: its GHASH pass over a chunk still in memory is slower than a copy of it.
    let mut scratch = keys
        .out_of_place()
        .then(|| Box::new([0u8; ENCRYPTED_CHUNK_SIZE]));
    for k in 0..=last {
        let src = head + PREFIX_SIZE + k * ENCRYPTED_CHUNK_SIZE;
        let end = if k == last {
            buf.len()
        } else {
            src + ENCRYPTED_CHUNK_SIZE
        };
        if let Some(scratch) = scratch.as_mut() {
            let enc = &mut scratch[..end - src];
            enc.copy_from_slice(&buf[src..end]);
            let dst = k * CHUNK_SIZE;
            keys.open_encrypted_chunk_into(k as u64, enc, &mut buf[dst..end], k == last)?;
            continue;
        }
        // Decrypt chunk k from where it lies to its plaintext offset, in one pass with ring.
        keys.open_chunk_shifted(
            k as u64,
            &mut buf[k * CHUNK_SIZE..end],
            src - k * CHUNK_SIZE,
            k == last,
        )?;
    }
    Ok(())
}

/// Streaming C2SP encryption into a `Write`: call [`BodyWriter::finish`] at the end, which writes
/// the short final chunk. A writer dropped without `finish` leaves a truncated body that no reader
/// accepts.
pub struct BodyWriter<W: Write> {
    inner: W,
    keys: ChunkKeys,
    buf: Box<[u8; ENCRYPTED_CHUNK_SIZE]>,
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
            buf: Box::new([0u8; ENCRYPTED_CHUNK_SIZE]),
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
fn touch_ahead(ahead: &[u8]) {
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

/// Read until `buf` is full or EOF; returns the bytes read.
pub(crate) fn read_up_to<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Read the salt and commitment; EOF first is [`Error::Truncated`].
pub(crate) fn read_prefix<R: Read + ?Sized>(r: &mut R) -> Result<[u8; PREFIX_SIZE]> {
    let mut prefix = [0u8; PREFIX_SIZE];
    if read_up_to(r, &mut prefix)? != PREFIX_SIZE {
        return Err(Error::Truncated);
    }
    Ok(prefix)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadState {
    Reading,
    Done,
    Failed(Failure),
}

/// A failure the reader keeps reporting on every later call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    Truncated,
    Tampered(u64),
    BadFinal(u64),
    TooLong,
    Io,
}

impl Failure {
    pub(crate) fn of(e: &Error) -> Failure {
        match e {
            Error::Truncated => Failure::Truncated,
            Error::TamperedChunk { index } => Failure::Tampered(*index),
            Error::BadFinalChunk { index } => Failure::BadFinal(*index),
            Error::TooLong => Failure::TooLong,
            _ => Failure::Io,
        }
    }

    pub(crate) fn error(self) -> Error {
        match self {
            Failure::Truncated => Error::Truncated,
            Failure::Tampered(index) => Error::TamperedChunk { index },
            Failure::BadFinal(index) => Error::BadFinalChunk { index },
            Failure::TooLong => Error::TooLong,
            Failure::Io => Error::Poisoned,
        }
    }
}

/// Streaming C2SP decryption from a `Read`.
///
/// [`BodyReader::new`] reads the salt and commitment and checks the commitment before anything
/// else. `read` then releases each chunk only after it has authenticated; the end of the stream is
/// accepted only after a short final chunk has authenticated. After a failure every later call
/// fails again.
pub struct BodyReader<R: Read> {
    inner: R,
    keys: ChunkKeys,
    buf: Box<[u8; ENCRYPTED_CHUNK_SIZE]>,
    pos: usize,
    end: usize,
    index: u64,
    state: ReadState,
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
            keys,
            buf: Box::new([0u8; ENCRYPTED_CHUNK_SIZE]),
            pos: 0,
            end: 0,
            index: 0,
            state: ReadState::Reading,
        }
    }

    /// Decrypt the rest of the body into `out`; returns the bytes written. Unlike `io::copy` over
    /// the `Read` impl, failures come back typed.
    pub fn copy_to<W: Write + ?Sized>(&mut self, out: &mut W) -> Result<u64> {
        let mut total = 0u64;
        loop {
            if self.pos == self.end {
                match self.state {
                    ReadState::Done => return Ok(total),
                    ReadState::Failed(f) => return Err(f.error()),
                    ReadState::Reading => self.next_chunk()?,
                }
                continue;
            }
            out.write_all(&self.buf[self.pos..self.end])?;
            total += (self.end - self.pos) as u64;
            self.pos = self.end;
        }
    }

    /// Whether the final chunk has authenticated (the whole body was read).
    pub fn is_done(&self) -> bool {
        self.state == ReadState::Done && self.pos == self.end
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
        match self.next_chunk_inner(direct) {
            Ok(n) => Ok(n),
            Err(e) => {
                self.pos = 0;
                self.end = 0;
                self.state = ReadState::Failed(Failure::of(&e));
                Err(e)
            }
        }
    }

    fn next_chunk_inner(&mut self, direct: Option<&mut [u8]>) -> Result<usize> {
        if let Some(out) = direct {
            return self.next_chunk_in_caller(out);
        }
        let n = read_up_to(&mut self.inner, &mut self.buf[..])?;
        if n < TAG_SIZE {
            // No final chunk, or one shorter than a tag.
            return Err(Error::Truncated);
        }
        // A full chunk is never the final one; anything shorter is.
        let last = n < ENCRYPTED_CHUNK_SIZE;
        let len = self
            .keys
            .open_encrypted_chunk(self.index, &mut self.buf[..n], last)?;
        self.pos = 0;
        self.end = len;
        if last {
            self.state = ReadState::Done;
        } else {
            self.index += 1;
        }
        Ok(0)
    }
}

impl<R: Read> BodyReader<R> {
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
        let n1 = read_up_to(&mut self.inner, &mut out[..CHUNK_SIZE])?;
        let mut tag = [0u8; TAG_SIZE];
        let n2 = if n1 == CHUNK_SIZE {
            read_up_to(&mut self.inner, &mut tag)?
        } else {
            0
        };
        let n = n1 + n2;
        if n < TAG_SIZE {
            // No final chunk, or one shorter than a tag.
            return Err(Error::Truncated);
        }
        // A full chunk is never the final one; anything shorter is.
        let last = n < ENCRYPTED_CHUNK_SIZE;
        let pt_len = n - TAG_SIZE;
        if n2 < TAG_SIZE {
            // A short final chunk: its tag starts inside `out`.
            let k = n1 - pt_len;
            let mut t = [0u8; TAG_SIZE];
            t[..k].copy_from_slice(&out[pt_len..n1]);
            t[k..].copy_from_slice(&tag[..n2]);
            tag = t;
        }
        let index = self.index;
        self.keys
            .open_chunk(index, &mut out[..pt_len], &tag, last)?;
        // The tag bytes that were read into `out` are not plaintext; clear them.
        out[pt_len..n1].fill(0);
        if last {
            self.state = ReadState::Done;
        } else {
            self.index += 1;
        }
        Ok(pt_len)
    }
}

impl<R: Read> Read for BodyReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        while self.pos == self.end {
            match self.state {
                ReadState::Done => return Ok(0),
                ReadState::Failed(f) => return Err(f.error().into()),
                ReadState::Reading if out.len() >= CHUNK_SIZE => {
                    // Decrypt in the caller's buffer (zeroed on failure).
                    let n = self.next_chunk_to(Some(&mut out[..CHUNK_SIZE]))?;
                    if n > 0 || self.state == ReadState::Done {
                        return Ok(n);
                    }
                }
                ReadState::Reading => self.next_chunk()?,
            }
        }
        let n = (self.end - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Decrypt plaintext `range` of the body that starts at `body_offset` in `source` and runs to the
/// end of `source`, writing it to `out`; returns the plaintext length of the whole message.
///
/// Reads the salt and commitment (checked first), the final chunk (which authenticates the
/// message length, so a truncated or extended body fails even for a range that does not reach
/// it), and the chunks that overlap `range`; nothing else.
pub fn read_body_range<R: Read + Seek + ?Sized, W: Write + ?Sized>(
    source: &mut R,
    body_offset: u64,
    input_key: &[u8],
    context: &[u8],
    backend: Backend,
    range: Range<u64>,
    out: &mut W,
) -> Result<u64> {
    let total = source.seek(SeekFrom::End(0))?;
    let body = total.checked_sub(body_offset).ok_or(Error::Truncated)?;
    if input_key.len() != KEY_LEN {
        return Err(Error::InvalidKeySize(input_key.len()));
    }
    source.seek(SeekFrom::Start(body_offset))?;
    let prefix = read_prefix(source)?;
    let keys = ChunkKeys::derive_checked(backend, input_key, &prefix, context)?;
    let len = body_plaintext_len(body)?;
    read_range_with_keys(source, body_offset, &keys, len, range, out)?;
    Ok(len)
}

/// The range reader behind [`read_body_range`], once the keys are derived and checked.
pub(crate) fn read_range_with_keys<R: Read + Seek + ?Sized, W: Write + ?Sized>(
    source: &mut R,
    body_offset: u64,
    keys: &ChunkKeys,
    len: u64,
    range: Range<u64>,
    out: &mut W,
) -> Result<()> {
    let plan = RangeChunks::new(len, range)?;
    let mut buf = Box::new([0u8; ENCRYPTED_CHUNK_SIZE]);
    let mut read_chunk = |c: &ChunkRead, buf: &mut [u8; ENCRYPTED_CHUNK_SIZE]| -> Result<()> {
        source.seek(SeekFrom::Start(body_offset + c.offset))?;
        if read_up_to(source, &mut buf[..c.len])? != c.len {
            return Err(Error::Truncated);
        }
        keys.open_encrypted_chunk(c.index, &mut buf[..c.len], c.last)?;
        Ok(())
    };
    // Authenticate the length first: the final chunk must open at its index.
    read_chunk(&plan.final_chunk(), &mut buf)?;
    for c in plan.overlapping() {
        if !c.cached {
            read_chunk(&c, &mut buf)?;
        }
        out.write_all(&buf[c.release])?;
    }
    Ok(())
}

/// One chunk that a range read opens (planned by [`RangeChunks`], shared by the `std::io` and
/// tokio range readers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChunkRead {
    /// Zero-based chunk index in the body.
    pub(crate) index: u64,
    /// Where the encrypted chunk starts, counted from the start of the body (salt included).
    pub(crate) offset: u64,
    /// Encrypted length: ciphertext and tag.
    pub(crate) len: usize,
    /// Whether it is the body's final chunk.
    pub(crate) last: bool,
    /// The bytes of the chunk's plaintext that lie in the range (none for the length check).
    pub(crate) release: Range<usize>,
    /// The final chunk, opened for the length check just before and still in the chunk buffer:
    /// no need to read it again.
    pub(crate) cached: bool,
}

/// The chunks a read of plaintext `range` of a `len`-byte body opens, in order: the final chunk
/// first (it authenticates the length, so a truncated or extended body fails whatever the range),
/// then each chunk that overlaps the range; nothing else.
#[derive(Debug, Clone)]
pub(crate) struct RangeChunks {
    len: u64,
    range: Range<u64>,
}

impl RangeChunks {
    /// Plan the read; a range outside the message is [`Error::InvalidRange`].
    pub(crate) fn new(len: u64, range: Range<u64>) -> Result<RangeChunks> {
        check_range(len, &range)?;
        Ok(RangeChunks { len, range })
    }

    fn chunk(&self, index: u64) -> ChunkRead {
        let last = index == self.len / CHUNK_U64;
        let pt = if last {
            self.len % CHUNK_U64
        } else {
            CHUNK_U64
        };
        let start = index * CHUNK_U64;
        let from = self.range.start.saturating_sub(start).min(pt);
        let to = self.range.end.saturating_sub(start).clamp(from, pt);
        ChunkRead {
            index,
            offset: PREFIX_U64 + index * ENC_CHUNK_U64,
            len: pt as usize + TAG_SIZE,
            last,
            release: from as usize..to as usize,
            cached: false,
        }
    }

    /// The final chunk, read first to authenticate the length; it releases nothing.
    pub(crate) fn final_chunk(&self) -> ChunkRead {
        ChunkRead {
            release: 0..0,
            ..self.chunk(self.len / CHUNK_U64)
        }
    }

    /// The chunks that overlap the range, in order (none for an empty range).
    pub(crate) fn overlapping(&self) -> impl Iterator<Item = ChunkRead> + '_ {
        let chunks = if self.range.is_empty() {
            0..0
        } else {
            self.range.start / CHUNK_U64..(self.range.end - 1) / CHUNK_U64 + 1
        };
        let first = chunks.start;
        chunks.map(move |k| {
            let c = self.chunk(k);
            ChunkRead {
                cached: c.last && k == first,
                ..c
            }
        })
    }
}

/// Open chunk `index` of a body read as a stream, whose `buf` holds the `min(remaining,
/// ENCRYPTED_CHUNK_SIZE)` bytes a read could get (fewer at end of input): shorter than a tag is
/// [`Error::Truncated`], a full chunk is never the final one and anything shorter is, as in
/// [`BodyReader`]. Returns the plaintext length (at the front of `buf`) and whether the chunk was
/// the final one.
#[cfg(feature = "tokio")]
pub(crate) fn open_streamed_chunk(
    keys: &ChunkKeys,
    index: u64,
    buf: &mut [u8],
) -> Result<(usize, bool)> {
    if buf.len() < TAG_SIZE {
        return Err(Error::Truncated);
    }
    let last = buf.len() < ENCRYPTED_CHUNK_SIZE;
    let n = keys.open_encrypted_chunk(index, buf, last)?;
    Ok((n, last))
}
