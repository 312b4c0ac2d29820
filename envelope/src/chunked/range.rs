//! Range reads: the plan of the chunks a plaintext range needs ([`RangeChunks`]) and the
//! `std::io` reader that follows it.

use super::keys::ChunkKeys;
use super::len::{CHUNK_U64, ENC_CHUNK_U64, PREFIX_U64, body_plaintext_len, check_range};
use super::opener::ChunkOpener;
use super::reader::read_prefix;
use super::{ENCRYPTED_CHUNK_SIZE, TAG_SIZE};
use crate::aead::{Backend, KEY_LEN};
use crate::error::{Error, Result};
use crate::fill::read_exact_or_truncated;
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;

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
    let mut buf = super::chunk_buf();
    let mut read_chunk = |c: &ChunkRead, buf: &mut [u8; ENCRYPTED_CHUNK_SIZE]| -> Result<()> {
        source.seek(SeekFrom::Start(body_offset + c.offset))?;
        read_exact_or_truncated(source, &mut buf[..c.len])?;
        c.open(keys, &mut buf[..])
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

impl ChunkRead {
    /// Open this chunk from `buf`, which holds all of its stored bytes at the front, by the same
    /// chunk rule as a streamed read (the short chunk is the final one).
    pub(crate) fn open(&self, keys: &ChunkKeys, buf: &mut [u8]) -> Result<()> {
        let (_, last) = ChunkOpener::open_at(keys, self.index, &mut buf[..self.len])?;
        debug_assert_eq!(last, self.last, "the plan and the chunk rule agree");
        Ok(())
    }
}

/// A plaintext length or offset within one chunk (at most [`CHUNK_SIZE`](super::CHUNK_SIZE)).
#[allow(
    clippy::cast_possible_truncation,
    reason = "callers pass values of at most CHUNK_SIZE"
)]
fn in_chunk(v: u64) -> usize {
    debug_assert!(v <= CHUNK_U64);
    v as usize
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
            len: in_chunk(pt) + TAG_SIZE,
            last,
            release: in_chunk(from)..in_chunk(to),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunked::CHUNK_SIZE;

    const C: u64 = CHUNK_U64;

    fn releases(plan: &RangeChunks) -> Vec<(u64, Range<usize>, bool)> {
        plan.overlapping()
            .map(|c| (c.index, c.release, c.cached))
            .collect()
    }

    #[test]
    fn the_final_chunk_comes_first_and_releases_nothing() {
        let plan = RangeChunks::new(2 * C + 10, 0..1).expect("plan");
        let f = plan.final_chunk();
        assert_eq!(f.index, 2);
        assert_eq!(f.offset, PREFIX_U64 + 2 * ENC_CHUNK_U64);
        assert_eq!(f.len, 10 + TAG_SIZE);
        assert!(f.last);
        assert_eq!(f.release, 0..0);
        // A message of whole chunks ends with an empty final chunk.
        let f = RangeChunks::new(2 * C, 0..0).expect("plan").final_chunk();
        assert_eq!((f.index, f.len, f.last), (2, TAG_SIZE, true));
        let f = RangeChunks::new(0, 0..0).expect("plan").final_chunk();
        assert_eq!((f.index, f.offset, f.len), (0, PREFIX_U64, TAG_SIZE));
    }

    #[test]
    fn overlapping_chunks_release_the_range_only() {
        let plan = RangeChunks::new(2 * C + 10, C - 5..C + 5).expect("plan");
        assert_eq!(
            releases(&plan),
            [(0, CHUNK_SIZE - 5..CHUNK_SIZE, false), (1, 0..5, false)]
        );
        let c: Vec<_> = plan.overlapping().collect();
        assert_eq!(c[0].len, ENCRYPTED_CHUNK_SIZE);
        assert!(!c[0].last);
        assert_eq!(c[1].offset, PREFIX_U64 + ENC_CHUNK_U64);
        // The whole message of two full chunks: both, whole; the empty final chunk is not re-read.
        let plan = RangeChunks::new(2 * C, 0..2 * C).expect("plan");
        assert_eq!(
            releases(&plan),
            [(0, 0..CHUNK_SIZE, false), (1, 0..CHUNK_SIZE, false)]
        );
    }

    #[test]
    fn a_range_in_the_final_chunk_reuses_it() {
        let plan = RangeChunks::new(2 * C + 10, 2 * C + 3..2 * C + 10).expect("plan");
        assert_eq!(releases(&plan), [(2, 3..10, true)]);
        // Starting before it: the final chunk is read again after the earlier one.
        let plan = RangeChunks::new(2 * C + 10, 2 * C - 1..2 * C + 1).expect("plan");
        assert_eq!(
            releases(&plan),
            [(1, CHUNK_SIZE - 1..CHUNK_SIZE, false), (2, 0..1, false)]
        );
    }

    #[test]
    fn empty_and_invalid_ranges() {
        assert!(releases(&RangeChunks::new(100, 50..50).expect("plan")).is_empty());
        assert!(matches!(
            RangeChunks::new(100, 50..101),
            Err(Error::InvalidRange {
                start: 50,
                end: 101,
                len: 100
            })
        ));
        #[allow(clippy::reversed_empty_ranges)]
        let backwards = 60..50;
        assert!(matches!(
            RangeChunks::new(100, backwards),
            Err(Error::InvalidRange { .. })
        ));
    }
}
