//! The crate's one error type.

use std::io;

/// Everything that can go wrong while sealing or opening an object.
///
/// Decryption failures say *what* failed (which check, which chunk), never *why* a tag differs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The object does not start with the `KBXENV` magic (or a manifest with `KBXMAN`).
    #[error("bad magic: not a kmsbox envelope object")]
    BadMagic,
    /// The header names a format version this release does not read.
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u8),
    /// The header is syntactically invalid (unknown suite, kind or wrap scheme, bad length, ...).
    #[error("malformed header: {0}")]
    MalformedHeader(&'static str),
    /// The header's tag does not verify under the unwrapped data key: a header byte was changed,
    /// or the data key does not belong to this header.
    #[error("header authentication failed")]
    HeaderAuthentication,
    /// The key provider could not unwrap the data key (wrong KEK/CMK, or the wrapped key was
    /// modified), or the key ID is not one the provider holds.
    #[error("wrong key: the data key could not be unwrapped")]
    WrongKey,
    /// A key had the wrong length for the algorithm.
    #[error("invalid key size: {0} bytes")]
    InvalidKeySize(usize),
    /// The body's key commitment does not match: wrong object context, wrong part number, a body
    /// that belongs to another header (object or upload), wrong key, or a modified salt/commitment.
    #[error("commitment mismatch: wrong context, wrong key, or the body belongs to another object")]
    Commitment,
    /// The ciphertext ends too early: inside the header, the salt/commitment, a chunk or a tag, or
    /// without the required short final chunk.
    #[error("truncated ciphertext")]
    Truncated,
    /// A chunk that is not the final one failed authentication (modified, reordered, duplicated).
    #[error("tampered chunk {index}")]
    TamperedChunk {
        /// Zero-based chunk index in its body.
        index: u64,
    },
    /// The final (short) chunk failed authentication: it was modified, or the ciphertext was
    /// truncated or extended so that another byte sequence ends the body.
    #[error("final chunk {index} failed authentication (modified, truncated or extended)")]
    BadFinalChunk {
        /// Zero-based chunk index in its body.
        index: u64,
    },
    /// Bytes follow the last part of a multipart object. (A single object has no end marker
    /// besides its short final chunk, so bytes appended to it change which bytes form the final
    /// chunk and fail as [`Error::BadFinalChunk`] or [`Error::Truncated`].)
    #[error("trailing data after the end of the object")]
    TrailingData,
    /// The message would exceed 2^38 chunks, or a length does not fit the format.
    #[error("message too long for the format")]
    TooLong,
    /// A length-prefixed field of an encoding (a context key or value, the number of context
    /// pairs, a header) is longer than its 32-bit length prefix can state (2^32 - 1).
    #[error("{field} is {len} long, more than a 32-bit length prefix states")]
    LengthPrefixOverflow {
        /// The field, in words.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// A requested plaintext range lies outside the object.
    #[error("range {start}..{end} outside an object of {len} bytes")]
    InvalidRange {
        /// First byte requested.
        start: u64,
        /// One past the last byte requested.
        end: u64,
        /// Plaintext length of the object.
        len: u64,
    },
    /// The multipart manifest is invalid.
    #[error("manifest: {0}")]
    Manifest(#[from] ManifestError),
    /// The object context is invalid (duplicate key).
    #[error("invalid object context: duplicate key")]
    DuplicateContextKey,
    /// The operating system's random number generator failed.
    #[error("OS random number generator failed")]
    Rng,
    /// The KMS could not be reached or refused the request.
    #[error("KMS request failed: {0}")]
    Kms(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The writer was used after an earlier error, or after `finish`.
    #[error("stream already failed or finished")]
    Poisoned,

    /// A block handed to the chunk-block API (`seal_chunks` / `open_chunks`) is not a whole
    /// number of encrypted chunk slots, or the stream is not at a chunk boundary.
    #[error("chunk block: {0}")]
    ChunkBlock(&'static str),
    /// Reading the ciphertext or writing the output failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// Why a multipart manifest was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
#[non_exhaustive]
pub enum ManifestError {
    /// The manifest's tag does not verify: it was modified, or it belongs to another object.
    #[error("authentication failed")]
    Authentication,
    /// The manifest is syntactically invalid.
    #[error("malformed")]
    Malformed,
    /// Part numbers are not strictly increasing, or outside 1..=10000.
    #[error("bad part numbering")]
    PartNumbers,
    /// The body at a part's position does not carry the commitment the manifest lists for it:
    /// a part is missing, reordered, duplicated or foreign.
    #[error("part {part} does not match the manifest")]
    PartMismatch {
        /// The part number listed in the manifest.
        part: u32,
    },
    /// A part given to `complete` was not sealed under this upload.
    #[error("part {part} was not sealed under this upload")]
    ForeignPart {
        /// The part number.
        part: u32,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        match e {
            Error::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

impl Error {
    /// Recover a typed error from an `io::Error` returned by this crate's `Read`/`Write` adapters.
    pub fn from_io(e: io::Error) -> Error {
        if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            match e.into_inner().map(|b| b.downcast::<Error>()) {
                Some(Ok(b)) => *b,
                Some(Err(other)) => Error::Io(io::Error::other(other)),
                None => Error::Poisoned,
            }
        } else {
            Error::Io(e)
        }
    }
}
