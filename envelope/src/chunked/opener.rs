//! The I/O-free chunk opener: the one place that knows which chunk comes next, which chunk is the
//! final one, and that a failure is final. The `std::io` and tokio readers, the range readers and
//! the multipart part readers read the bytes and hand them to it.

use super::keys::ChunkKeys;
use super::{ENCRYPTED_CHUNK_SIZE, TAG_SIZE};
use crate::error::{Error, Result};

/// The chunk rule of a body read as a stream: `n` is what a read of up to a full encrypted chunk
/// got (fewer only at the end of the body). Fewer bytes than a tag is [`Error::Truncated`] (no
/// final chunk); a full chunk is never the final one, and anything shorter is.
pub(crate) fn is_final_chunk(n: usize) -> Result<bool> {
    if n < TAG_SIZE {
        Err(Error::Truncated)
    } else {
        Ok(n < ENCRYPTED_CHUNK_SIZE)
    }
}

/// A failure a reader keeps reporting on every later call.
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

    /// The error reported again; an I/O error is reported once, then as [`Error::Poisoned`].
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Done,
    Failed(Failure),
}

/// Opens a body's chunks in order, as a streamed read gets them: chunk index, the final-chunk rule
/// ([`is_final_chunk`]) and sticky failure, with no I/O.
pub(crate) struct ChunkOpener {
    keys: ChunkKeys,
    index: u64,
    state: State,
}

impl ChunkOpener {
    /// At the first chunk of a body whose commitment `keys` were checked against.
    pub(crate) fn new(keys: ChunkKeys) -> ChunkOpener {
        ChunkOpener {
            keys,
            index: 0,
            state: State::Open,
        }
    }

    /// Whether another chunk is due (`false` once the final chunk has authenticated); the
    /// recorded failure, if any.
    pub(crate) fn pending(&self) -> Result<bool> {
        match self.state {
            State::Open => Ok(true),
            State::Done => Ok(false),
            State::Failed(f) => Err(f.error()),
        }
    }

    /// Whether the final chunk has authenticated.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Open the next chunk from `buf` (`ciphertext || tag`, what a read of up to
    /// [`ENCRYPTED_CHUNK_SIZE`] bytes got); returns its plaintext length, at the front of `buf`.
    /// On failure `buf` holds no plaintext the caller may release.
    pub(crate) fn open(&mut self, buf: &mut [u8]) -> Result<usize> {
        let r = self.pending().and_then(|_| {
            let last = is_final_chunk(buf.len())?;
            let n = self.keys.open_encrypted_chunk(self.index, buf, last)?;
            Ok((n, last))
        });
        self.settle(r)
    }

    /// [`ChunkOpener::open`] for a chunk read in two pieces: `got` bytes at the front of `body`
    /// (at most a chunk of plaintext), then `tail` (at most a tag, and only after a full `body`).
    /// The tag is the last [`TAG_SIZE`] of those bytes; the plaintext is opened in place at the
    /// front of `body`. Returns the plaintext length.
    pub(crate) fn open_split(&mut self, body: &mut [u8], got: usize, tail: &[u8]) -> Result<usize> {
        let r = self.pending().and_then(|_| {
            let n = got + tail.len();
            let last = is_final_chunk(n)?;
            let pt_len = n - TAG_SIZE;
            // The tag's first `k` bytes were read into `body`, the rest into `tail`.
            let k = got - pt_len;
            let mut tag = [0u8; TAG_SIZE];
            tag[..k].copy_from_slice(&body[pt_len..got]);
            tag[k..].copy_from_slice(tail);
            self.keys
                .open_chunk(self.index, &mut body[..pt_len], &tag, last)?;
            Ok((pt_len, last))
        });
        self.settle(r)
    }

    /// Open chunk `index` of a body read by ranges, from all of its stored bytes (the final chunk
    /// is the short one, as in [`is_final_chunk`]); returns the plaintext length and whether it
    /// was the final chunk.
    pub(crate) fn open_at(keys: &ChunkKeys, index: u64, buf: &mut [u8]) -> Result<(usize, bool)> {
        let last = is_final_chunk(buf.len())?;
        let n = keys.open_encrypted_chunk(index, buf, last)?;
        Ok((n, last))
    }

    /// Record a failure of the reader around the opener (an I/O error): every later call fails.
    pub(crate) fn fail(&mut self, e: &Error) {
        self.state = State::Failed(Failure::of(e));
    }

    fn settle(&mut self, r: Result<(usize, bool)>) -> Result<usize> {
        match r {
            Ok((n, true)) => {
                self.state = State::Done;
                Ok(n)
            }
            Ok((n, false)) => {
                self.index += 1;
                Ok(n)
            }
            Err(e) => {
                self.fail(&e);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aead::Backend;
    use crate::chunked::{BodyWriter, CHUNK_SIZE, PREFIX_SIZE};

    fn body(len: usize) -> (ChunkKeys, Vec<u8>) {
        let key = [3u8; 32];
        let pt: Vec<u8> = (0..len).map(|i| (i % 251).to_le_bytes()[0]).collect();
        let mut w =
            BodyWriter::salted(Vec::new(), &key, &[4u8; 24], b"ctx", Backend::default()).unwrap();
        std::io::Write::write_all(&mut w, &pt).unwrap();
        let sealed = w.finish().unwrap();
        let prefix: [u8; PREFIX_SIZE] = sealed[..PREFIX_SIZE].try_into().unwrap();
        let keys = ChunkKeys::derive_checked(Backend::default(), &key, &prefix, b"ctx").unwrap();
        (keys, sealed[PREFIX_SIZE..].to_vec())
    }

    #[test]
    fn the_final_chunk_rule() {
        assert!(matches!(is_final_chunk(0), Err(Error::Truncated)));
        assert!(matches!(
            is_final_chunk(TAG_SIZE - 1),
            Err(Error::Truncated)
        ));
        assert!(is_final_chunk(TAG_SIZE).unwrap());
        assert!(is_final_chunk(ENCRYPTED_CHUNK_SIZE - 1).unwrap());
        assert!(!is_final_chunk(ENCRYPTED_CHUNK_SIZE).unwrap());
    }

    #[test]
    fn opens_in_order_then_is_done() {
        let (keys, mut chunks) = body(CHUNK_SIZE + 5);
        let mut o = ChunkOpener::new(keys);
        let (first, last) = chunks.split_at_mut(ENCRYPTED_CHUNK_SIZE);
        assert_eq!(o.open(first).unwrap(), CHUNK_SIZE);
        assert!(o.pending().unwrap());
        assert_eq!(o.open(last).unwrap(), 5);
        assert!(o.is_done());
        assert!(!o.pending().unwrap());
    }

    #[test]
    fn a_full_final_chunk_is_truncation_and_failures_stick() {
        // A body cut after its first full chunk: that chunk is not a final chunk.
        let (keys, mut chunks) = body(CHUNK_SIZE + 5);
        let mut o = ChunkOpener::new(keys);
        o.open(&mut chunks[..ENCRYPTED_CHUNK_SIZE]).unwrap();
        assert!(matches!(o.open(&mut []), Err(Error::Truncated)));
        assert!(matches!(o.pending(), Err(Error::Truncated)));
        let mut tail = chunks[ENCRYPTED_CHUNK_SIZE..].to_vec();
        assert!(matches!(o.open(&mut tail), Err(Error::Truncated)));
    }

    #[test]
    fn split_reads_open_like_whole_ones() {
        let (keys, chunks) = body(CHUNK_SIZE + 20);
        let mut o = ChunkOpener::new(keys);
        let mut out = vec![0u8; CHUNK_SIZE];
        out.copy_from_slice(&chunks[..CHUNK_SIZE]);
        let tail = &chunks[CHUNK_SIZE..ENCRYPTED_CHUNK_SIZE];
        assert_eq!(
            o.open_split(&mut out, CHUNK_SIZE, tail).unwrap(),
            CHUNK_SIZE
        );
        let rest = &chunks[ENCRYPTED_CHUNK_SIZE..];
        out[..rest.len()].copy_from_slice(rest);
        assert_eq!(o.open_split(&mut out, rest.len(), &[]).unwrap(), 20);
        assert!(o.is_done());
    }

    #[test]
    fn a_tampered_chunk_reports_its_index_again() {
        let (keys, mut chunks) = body(CHUNK_SIZE + 5);
        chunks[ENCRYPTED_CHUNK_SIZE + 1] ^= 1;
        let mut o = ChunkOpener::new(keys);
        let (first, last) = chunks.split_at_mut(ENCRYPTED_CHUNK_SIZE);
        o.open(first).unwrap();
        assert!(matches!(
            o.open(last),
            Err(Error::BadFinalChunk { index: 1 })
        ));
        assert!(matches!(
            o.pending(),
            Err(Error::BadFinalChunk { index: 1 })
        ));
        o.fail(&Error::Poisoned);
        assert!(matches!(o.pending(), Err(Error::Poisoned)));
    }
}
