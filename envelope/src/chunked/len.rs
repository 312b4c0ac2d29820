//! Length and range arithmetic of a body: exact, with no I/O.

use super::{CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE, MAX_CHUNKS, PREFIX_SIZE, TAG_SIZE};
use crate::error::{Error, Result};
use std::ops::Range;

pub(super) const CHUNK_U64: u64 = CHUNK_SIZE as u64;
pub(super) const ENC_CHUNK_U64: u64 = ENCRYPTED_CHUNK_SIZE as u64;
pub(super) const PREFIX_U64: u64 = PREFIX_SIZE as u64;
const TAG_U64: u64 = TAG_SIZE as u64;

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

#[cfg(test)]
mod tests {
    use super::*;

    const C: u64 = CHUNK_U64;

    #[test]
    fn body_len_counts_prefix_chunks_and_tags() {
        assert_eq!(body_len(0).expect("len"), PREFIX_U64 + TAG_U64);
        assert_eq!(body_len(1).expect("len"), PREFIX_U64 + 1 + TAG_U64);
        // A full chunk is never the final one: one more, empty, chunk follows it.
        assert_eq!(
            body_len(C).expect("len"),
            PREFIX_U64 + ENC_CHUNK_U64 + TAG_U64
        );
        assert_eq!(
            body_len(3 * C + 7).expect("len"),
            PREFIX_U64 + 3 * ENC_CHUNK_U64 + 7 + TAG_U64
        );
        assert!(matches!(body_len(MAX_CHUNKS * C), Err(Error::TooLong)));
        assert!(body_len(MAX_CHUNKS * C - 1).is_ok());
        assert!(matches!(body_len(u64::MAX), Err(Error::TooLong)));
    }

    #[test]
    fn body_plaintext_len_inverts_body_len() {
        for n in [
            0,
            1,
            C - 1,
            C,
            C + 1,
            5 * C,
            5 * C + 123,
            MAX_CHUNKS * C - 1,
        ] {
            let b = body_len(n).expect("len");
            assert_eq!(body_plaintext_len(b).expect("plaintext len"), n, "{n}");
        }
    }

    #[test]
    fn lengths_no_message_has_are_truncated() {
        for b in [0, PREFIX_U64, PREFIX_U64 + TAG_U64 - 1] {
            assert!(
                matches!(body_plaintext_len(b), Err(Error::Truncated)),
                "{b}"
            );
        }
        // A full chunk then fewer bytes than a tag.
        let b = PREFIX_U64 + ENC_CHUNK_U64 + TAG_U64 - 1;
        assert!(matches!(body_plaintext_len(b), Err(Error::Truncated)));
        assert!(matches!(body_plaintext_len(u64::MAX), Err(Error::TooLong)));
    }

    #[test]
    fn chunk_ranges() {
        let n = 2 * C + 10;
        let chunk = |k: u64| PREFIX_U64 + k * ENC_CHUNK_U64;
        assert_eq!(
            body_chunk_range(n, 0..1).expect("range"),
            chunk(0)..chunk(1)
        );
        assert_eq!(
            body_chunk_range(n, C - 1..C + 1).expect("range"),
            chunk(0)..chunk(2)
        );
        assert_eq!(
            body_chunk_range(n, 2 * C..n).expect("range"),
            chunk(2)..body_len(n).expect("len")
        );
        assert_eq!(
            body_chunk_range(n, C..C).expect("range"),
            chunk(1)..chunk(1)
        );
        assert!(matches!(
            body_chunk_range(n, 0..n + 1),
            Err(Error::InvalidRange { .. })
        ));
    }
}
