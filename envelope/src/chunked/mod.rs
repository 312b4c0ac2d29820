//! C2SP chunked encryption v1, "Cobblestone-256" (AES-256-GCM, HKDF-SHA-512): the object body.
//!
//! This is the format layer of FORMAT.md section 3, usable on its own by callers that manage their
//! own input keys: [`BodyWriter`] seals a stream, [`BodyReader`] opens one, [`read_body_range`]
//! decrypts a plaintext byte range from a seekable source, and [`body_len`],
//! [`body_plaintext_len`] and [`body_chunk_range`] map lengths and ranges exactly.
//!
//! Each writer and reader holds one chunk buffer (16 KiB + 16 bytes) whatever the message size, and
//! a reader releases no byte of a chunk before that chunk has authenticated.

use crate::aead::TAG_LEN;

mod in_place;
mod keys;
mod len;
mod opener;
mod range;
mod reader;
mod writer;

pub use len::{body_chunk_range, body_len, body_plaintext_len};
pub use range::read_body_range;
pub use reader::{BodyReader, OpenedChunks};
pub use writer::BodyWriter;

pub(crate) use in_place::{open_body_in_place, seal_body_in_place};

/// One encrypted chunk's worth of buffer, wiped when dropped: between a seal and a write, or an
/// open and a read, it holds plaintext. Allocated once per reader or writer, so the wipe costs one
/// pass over 16 KiB per object, not a copy per chunk.
pub(crate) struct ChunkBuf(Box<[u8; ENCRYPTED_CHUNK_SIZE]>);

/// A zeroed [`ChunkBuf`].
pub(crate) fn chunk_buf() -> ChunkBuf {
    ChunkBuf(Box::new([0u8; ENCRYPTED_CHUNK_SIZE]))
}

impl std::ops::Deref for ChunkBuf {
    type Target = [u8; ENCRYPTED_CHUNK_SIZE];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for ChunkBuf {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for ChunkBuf {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0[..]);
    }
}
pub(crate) use keys::ChunkKeys;
pub(crate) use len::check_range;
pub(crate) use opener::Failure;
pub(crate) use range::read_range_with_keys;
pub(crate) use reader::read_prefix;
#[cfg(feature = "tokio")]
pub(crate) use {
    opener::ChunkOpener,
    range::{ChunkRead, RangeChunks},
};

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
