//! Envelope encryption for storage engines: per-object data keys wrapped under a CMK, and seekable
//! streaming AES-256-GCM in the C2SP chunked encryption format.
//!
//! The format is specified in `FORMAT.md` (next to this crate's `Cargo.toml`): a versioned header
//! (magic, version, suite, the CMK's key ID, the wrapped data key, a tag under a key derived from
//! the data key) followed by a C2SP chunked encryption v1 "Cobblestone-256" body whose context binds
//! the header and a caller-supplied [`ObjectContext`].
//!
//! # Choosing an API
//!
//! * Whole objects: [`seal`] / [`open`] with a [`KeyProvider`] such as [`LocalKek`].
//! * Streams: [`Encryptor`] (`std::io::Write`) and [`Decryptor`] (`std::io::Read`), built from an
//!   [`ObjectKey`]; both hold one 16 KiB chunk buffer whatever the object size.
//! * Objects held in one buffer: [`seal_in_place`] / [`open_in_place`] over a `Vec<u8>` (no
//!   copy through a chunk buffer; the fastest path, especially with the `ring` backend).
//! * Streams whose caller owns the I/O buffers (a storage engine or a CLI reading a socket or a
//!   file into its own buffer): [`Encryptor::seal_chunks`] / [`Decryptor::open_chunks`] seal and
//!   open whole chunks where they lie in the caller's block of
//!   [`chunked::ENCRYPTED_CHUNK_SIZE`]-byte slots, read into with one (vectored) read and
//!   written with one (vectored) write, so that the only copies are the kernel's. The
//!   `Write`/`Read` adapters cost one more copy of the object when the data comes from, or goes
//!   to, a buffer of the caller's (`kmsctl seal`/`open` use the chunk blocks).
//! * Which backend: [`Backend::default`], which is ring's AES-GCM (the default feature `ring`).
//!   Every backend writes the same bytes. ring ran at 3.3x to 6.1x tink-streaming-aead's speed
//!   (adapters and in place) on a Xeon with VAES and at 2.2x to 3.5x on an AMD EPYC (Zen 1)
//!   without it; the pure-Rust RustCrypto backend at 1.6x to 2.4x, depending on the machine and
//!   the AES code path aes 0.9 picks there (BENCHMARKS.md). A build that
//!   cannot take a C and assembly toolchain turns the `ring` feature off
//!   (`default-features = false`) and gets the pure-Rust backend as its default. Both backends
//!   wipe their key schedules when dropped.
//! * Range reads: [`open_range`] on a `Read + Seek`, and [`sealed_len`], [`plaintext_len`],
//!   [`sealed_range`] for Content-Length and range GETs.
//! * Multipart uploads: [`multipart`] (`Upload` seals parts and the manifest; `MultipartObject`
//!   opens the completed object whole, as a `Read`, or by ranges that cross parts).
//! * tokio `AsyncWrite` / `AsyncRead` / `AsyncSeek` adapters (feature `tokio`): `tokio_io`.
//! * Async reads of completed multipart objects (feature `tokio`): `tokio_multipart`
//!   (`MultipartObject::copy_to_async` from an `AsyncRead`, `MultipartObject::read_range_async`
//!   from an `AsyncRead + AsyncSeek`, into an `AsyncWrite`).
//! * The whole completed multipart object as a tokio `AsyncRead` (feature `tokio`), e.g. for a
//!   GET's body stream: `MultipartObject::reader_async` (`tokio_multipart::MultipartAsyncReader`;
//!   `MultipartObject::into_reader_async` over an `Arc` for a `'static` reader).
//! * The kmsbox daemon as key provider (feature `kms`): `provider::BlockingKmsProvider` implements
//!   [`KeyProvider`] like [`LocalKek`], for the synchronous APIs above; `provider::KmsProvider`
//!   implements [`AsyncKeyProvider`], which the tokio APIs and [`ObjectKey::generate_async`] /
//!   [`ObjectKey::unwrap_with_async`] take (as they take any [`KeyProvider`]).
//! * The bare C2SP layer, for callers that manage their own keys: [`chunked`].
//!
//! ```
//! use envelope::{Backend, LocalKek, ObjectContext};
//! let kek = LocalKek::aes_kw("kek-1", &[7u8; 32])?;
//! let ctx = ObjectContext::new().with("bucket", "b")?.with("object-key", "k")?;
//! let mut sealed = Vec::new();
//! envelope::seal(&kek, "kek-1", &ctx, &b"hello"[..], &mut sealed, Backend::default())?;
//! let mut plain = Vec::new();
//! envelope::open(&kek, &ctx, &sealed[..], &mut plain, Backend::default())?;
//! assert_eq!(plain, b"hello");
//! # Ok::<(), envelope::Error>(())
//! ```
#![forbid(unsafe_code)]

pub mod aead;
pub mod chunked;
pub mod context;
pub mod error;
mod fill;
#[cfg(feature = "test-support")]
pub mod fuzzing;
pub mod header;
mod kdf;
pub mod key;
pub mod multipart;
pub mod object;
pub mod provider;
#[cfg(feature = "tokio")]
pub mod tokio_io;
#[cfg(feature = "tokio")]
pub mod tokio_multipart;

pub use aead::Backend;
pub use context::ObjectContext;
pub use error::{Error, ManifestError, Result};
pub use header::{Header, ObjectKind, WrapScheme, WrappedKey};
pub use key::DataKey;
pub use object::{
    Decryptor, Encryptor, ObjectKey, RangePlan, open, open_in_place, open_in_place_with_key,
    open_range, open_range_with_key, plaintext_len, seal, seal_in_place, sealed_len, sealed_range,
};
pub use provider::{AsyncKeyProvider, GeneratedKey, KeyProvider, LocalKek};
