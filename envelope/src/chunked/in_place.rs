//! Sealing and opening a whole body held in one buffer, in place.

use super::keys::ChunkKeys;
use super::len::{body_len, body_plaintext_len};
use super::writer::touch_ahead;
use super::{CHUNK_SIZE, COMMITMENT_SIZE, ENCRYPTED_CHUNK_SIZE, PREFIX_SIZE, SALT_SIZE, TAG_SIZE};
use crate::error::{Error, Result};
use zeroize::Zeroize;

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
    if buf.capacity() < total {
        // A `resize` past the capacity would hand the block holding the plaintext back to the
        // allocator unwiped: grow into a fresh block and wipe the old one instead.
        let mut grown = Vec::with_capacity(total);
        grown.extend_from_slice(buf);
        buf.zeroize();
        *buf = grown;
    }
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
    let mut scratch = keys.out_of_place().then(super::chunk_buf);
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
