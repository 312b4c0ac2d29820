//! Multipart uploads (FORMAT.md section 5): one data key and header per upload, parts sealed
//! independently (in any order, in parallel) with their part number bound into the body context,
//! and an authenticated manifest of `(part number, plaintext length, commitment)`.
//!
//! The header and the manifest are stored by the application next to the object (for example in
//! its metadata); the object data is the concatenation of the part bodies in manifest order.
//!
//! ```
//! use envelope::multipart::{MultipartObject, Upload};
//! use envelope::{Backend, LocalKek, ObjectContext, ObjectKey, ObjectKind};
//! use std::io::Write;
//! let kek = LocalKek::aes_kw("kek", &[1u8; 32])?;
//! let ctx = ObjectContext::new().with("upload-id", "u1")?;
//! let key = ObjectKey::generate(&kek, "kek", &ctx, ObjectKind::Multipart)?;
//! let header = key.header().as_bytes().to_vec();
//! let upload = Upload::new(key, ctx.clone(), Backend::default())?;
//! let mut p2 = upload.part_writer(2, Vec::new())?;
//! p2.write_all(b" world")?;
//! let (body2, info2) = p2.finish()?;
//! let mut p1 = upload.part_writer(1, Vec::new())?;
//! p1.write_all(b"hello")?;
//! let (body1, info1) = p1.finish()?;
//! let manifest = upload.complete(&[info2, info1])?;
//!
//! let stored = [body1, body2].concat();
//! let (h, _) = envelope::Header::parse(&header)?;
//! let key = ObjectKey::unwrap_with(&kek, h, &ctx)?;
//! let object = MultipartObject::open(key, ctx, manifest.as_bytes(), Backend::default())?;
//! let mut out = Vec::new();
//! object.copy_to(&stored[..], &mut out)?;
//! assert_eq!(out, b"hello world");
//! # Ok::<(), envelope::Error>(())
//! ```

use crate::chunked::COMMITMENT_SIZE;

mod manifest;
mod object;
mod read;
mod upload;

pub use manifest::{Manifest, ManifestEntry, PartInfo};
pub use object::MultipartObject;
pub use read::MultipartReader;
pub use upload::{PartWriter, Upload};

#[cfg(feature = "tokio")]
pub(crate) use read::{Phase, WholeRead};

/// The manifest's magic bytes.
pub const MANIFEST_MAGIC: &[u8; 6] = b"KBXMAN";
/// Highest part number (as in S3 and OBS).
pub const MAX_PART_NUMBER: u32 = 10_000;
const ENTRY_LEN: usize = 4 + 8 + COMMITMENT_SIZE;
const MANIFEST_TAG_LEN: usize = 32;
