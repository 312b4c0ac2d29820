//! tokio reads of completed multipart objects (feature `tokio`):
//! [`MultipartObject::copy_to_async`] (whole object from an `AsyncRead`) and
//! [`MultipartObject::read_range_async`] (plaintext ranges, across parts, from an
//! `AsyncRead + AsyncSeek`), both into an `AsyncWrite`.
//!
//! They plan exactly as [`MultipartObject::copy_to`] and [`MultipartObject::read_range`] do (same
//! parts, same chunks, same offsets, same checks in the same order) and fail with the same typed
//! errors; the crypto is the `chunked` layer's. One chunk buffer whatever the object size, and no
//! byte of a chunk is written out before that chunk has authenticated.
//!
//! ```
//! use envelope::multipart::{MultipartObject, Upload};
//! use envelope::{Backend, LocalKek, ObjectContext, ObjectKey, ObjectKind};
//! use std::io::{Cursor, Write};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), envelope::Error> {
//! let kek = LocalKek::aes_kw("kek", &[1u8; 32])?;
//! let ctx = ObjectContext::new().with("upload-id", "u1")?;
//! let key = ObjectKey::generate(&kek, "kek", &ctx, ObjectKind::Multipart)?;
//! let header = key.header().as_bytes().to_vec();
//! let upload = Upload::new(key, ctx.clone(), Backend::default())?;
//! let mut p1 = upload.part_writer(1, Vec::new())?;
//! p1.write_all(b"hello")?;
//! let (body1, info1) = p1.finish()?;
//! let mut p2 = upload.part_writer(2, Vec::new())?;
//! p2.write_all(b" world")?;
//! let (body2, info2) = p2.finish()?;
//! let manifest = upload.complete(&[info1, info2])?;
//! let stored = [body1, body2].concat();
//!
//! let (h, _) = envelope::Header::parse(&header)?;
//! let key = ObjectKey::unwrap_with(&kek, h, &ctx)?;
//! let object = MultipartObject::open(key, ctx, manifest.as_bytes(), Backend::default())?;
//! let mut out = Vec::new();
//! object.copy_to_async(&stored[..], &mut out).await?;
//! assert_eq!(out, b"hello world");
//! let mut out = Vec::new();
//! object.read_range_async(&mut Cursor::new(&stored), 3..8, &mut out).await?;
//! assert_eq!(out, b"lo wo");
//! # Ok(())
//! # }
//! ```

use crate::chunked::{self, ENCRYPTED_CHUNK_SIZE, PREFIX_SIZE};
use crate::error::{Error, Result};
use crate::multipart::MultipartObject;
use crate::tokio_io::{read_exact_or_truncated, read_range_with_keys_async, read_up_to};
use std::io::SeekFrom;
use std::ops::Range;
use tokio::io::{AsyncRead, AsyncSeek, AsyncSeekExt, AsyncWrite, AsyncWriteExt};

impl MultipartObject {
    /// The async [`MultipartObject::copy_to`]: decrypt the whole object from the concatenated
    /// part bodies in `source` into `out`, then flush `out`; returns the plaintext length.
    ///
    /// Each part's salt and commitment are checked against the manifest before any of its chunks
    /// is read (a dropped, reordered, duplicated or foreign part is
    /// [`ManifestError::PartMismatch`](crate::ManifestError::PartMismatch)); each chunk is
    /// written to `out` only once it has authenticated, so on failure `out` holds a correct prefix
    /// of the plaintext. Bytes after the last part are [`Error::TrailingData`]. One chunk buffer.
    pub async fn copy_to_async<R, W>(&self, mut source: R, out: &mut W) -> Result<u64>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin + ?Sized,
    {
        let mut buf = vec![0u8; ENCRYPTED_CHUNK_SIZE];
        let mut total = 0;
        for i in 0..self.manifest().entries().len() {
            let mut prefix = [0u8; PREFIX_SIZE];
            if read_up_to(&mut source, &mut prefix).await? != PREFIX_SIZE {
                return Err(Error::Truncated);
            }
            let keys = self.part_keys(i, &prefix)?;
            // As the `std::io` path reads the part through `Read::take(rest)`: each chunk is what
            // is left of the part's stored length, up to a full chunk; a short one is the last.
            let mut rest = self.part_rest(i)?;
            let mut n = 0u64;
            for index in 0.. {
                let want = rest.min(ENCRYPTED_CHUNK_SIZE as u64) as usize;
                let got = read_up_to(&mut source, &mut buf[..want]).await?;
                rest -= got as u64;
                let (pt, last) = chunked::open_streamed_chunk(&keys, index, &mut buf[..got])?;
                out.write_all(&buf[..pt]).await?;
                n += pt as u64;
                if last {
                    break;
                }
            }
            self.check_part_len(i, n)?;
            total += n;
        }
        let mut probe = [0u8; 1];
        if read_up_to(&mut source, &mut probe).await? != 0 {
            return Err(Error::TrailingData);
        }
        out.flush().await?;
        Ok(total)
    }

    /// The async [`MultipartObject::read_range`]: decrypt plaintext `range` (which may cross
    /// parts) from the stored object in `source` into `out`, then flush `out`.
    ///
    /// Checks the range ([`Error::InvalidRange`] past the end) and the stored length
    /// ([`Error::Truncated`], [`Error::TrailingData`]) first; then, for each part the range
    /// overlaps, reads that part's salt and commitment (checked against the manifest), its final
    /// chunk (which authenticates its length) and the chunks overlapping the range, and nothing
    /// else. Each chunk is written only once it has authenticated. One chunk buffer.
    pub async fn read_range_async<R, W>(
        &self,
        source: &mut R,
        range: Range<u64>,
        out: &mut W,
    ) -> Result<()>
    where
        R: AsyncRead + AsyncSeek + Unpin + ?Sized,
        W: AsyncWrite + Unpin + ?Sized,
    {
        self.check_range(&range)?;
        let stored = source.seek(SeekFrom::End(0)).await?;
        self.check_stored_len(stored)?;
        for p in self.parts_in(range) {
            source.seek(SeekFrom::Start(p.stored_at)).await?;
            let mut prefix = [0u8; PREFIX_SIZE];
            read_exact_or_truncated(source, &mut prefix).await?;
            let keys = self.part_keys(p.index, &prefix)?;
            read_range_with_keys_async(source, p.stored_at, &keys, p.plaintext_len, p.local, out)
                .await?;
        }
        out.flush().await?;
        Ok(())
    }
}
