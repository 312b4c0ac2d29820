//! Single objects: `header || body` (FORMAT.md sections 2 to 4).

use crate::aead::Backend;
use crate::chunked::{self, BodyReader, BodyWriter, ChunkKeys, read_prefix};
use crate::context::{BodyRole, ObjectContext, body_context};
use crate::error::{Error, Result};
use crate::header::{Header, ObjectKind, WrappedKey};
use crate::key::DataKey;
use crate::provider::{AsyncKeyProvider, KeyProvider};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;

/// A data key together with its authenticated header: what sealing and opening need.
#[derive(Debug)]
pub struct ObjectKey {
    data_key: DataKey,
    header: Header,
}

impl ObjectKey {
    /// Build the header for a data key that was generated (and wrapped) elsewhere, e.g. by the
    /// asynchronous KMS provider.
    pub fn new(
        kind: ObjectKind,
        data_key: DataKey,
        key_id: &str,
        wrapped: WrappedKey,
    ) -> Result<ObjectKey> {
        let header = Header::new(kind, key_id, wrapped, &data_key)?;
        Ok(ObjectKey { data_key, header })
    }

    /// Generate a data key with `provider` under `key_id` and build its header.
    ///
    /// `context` should name the object (bucket, object name, version): an empty context, or one
    /// that does not tell objects apart, lets stored objects be moved and swapped, and nothing
    /// stops an old version from being replayed under the same context ([`ObjectContext`]).
    pub fn generate<P: KeyProvider + ?Sized>(
        provider: &P,
        key_id: &str,
        context: &ObjectContext,
        kind: ObjectKind,
    ) -> Result<ObjectKey> {
        let g = provider.generate_data_key(key_id, context)?;
        ObjectKey::new(kind, g.data_key, &g.key_id, g.wrapped)
    }

    /// Accept a parsed header with the data key unwrapped for it: checks the header tag.
    pub fn open(header: Header, data_key: DataKey) -> Result<ObjectKey> {
        header.verify(&data_key)?;
        Ok(ObjectKey { data_key, header })
    }

    /// Unwrap a parsed header's data key with `provider` and check the header tag.
    pub fn unwrap_with<P: KeyProvider + ?Sized>(
        provider: &P,
        header: Header,
        context: &ObjectContext,
    ) -> Result<ObjectKey> {
        let dk = provider.decrypt_data_key(header.key_id(), header.wrapped_key(), context)?;
        ObjectKey::open(header, dk)
    }

    /// [`ObjectKey::generate`] with an [`AsyncKeyProvider`] (the daemon's `KmsProvider`, or any
    /// [`KeyProvider`]). The same warning about an empty `context` applies.
    pub async fn generate_async<P: AsyncKeyProvider + ?Sized>(
        provider: &P,
        key_id: &str,
        context: &ObjectContext,
        kind: ObjectKind,
    ) -> Result<ObjectKey> {
        let g = provider.generate_data_key_async(key_id, context).await?;
        ObjectKey::new(kind, g.data_key, &g.key_id, g.wrapped)
    }

    /// [`ObjectKey::unwrap_with`] with an [`AsyncKeyProvider`].
    pub async fn unwrap_with_async<P: AsyncKeyProvider + ?Sized>(
        provider: &P,
        header: Header,
        context: &ObjectContext,
    ) -> Result<ObjectKey> {
        let dk = provider
            .decrypt_data_key_async(header.key_id(), header.wrapped_key(), context)
            .await?;
        ObjectKey::open(header, dk)
    }

    /// The authenticated header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    pub(crate) fn data_key(&self) -> &DataKey {
        &self.data_key
    }

    /// [`Error::MalformedHeader`] unless the header is for an object of `kind`.
    pub(crate) fn expect_kind(&self, kind: ObjectKind) -> Result<()> {
        if self.header.kind() == kind {
            Ok(())
        } else {
            Err(Error::MalformedHeader(
                "object kind does not fit the operation",
            ))
        }
    }

    pub(crate) fn context(&self, ctx: &ObjectContext, role: BodyRole) -> Result<Vec<u8>> {
        body_context(self.header.as_bytes(), ctx, role)
    }
}

/// Streaming encryption of one object into a `Write`: writes the header, then the body. Call
/// [`Encryptor::finish`]; an encryptor dropped without it leaves an object no reader accepts.
pub struct Encryptor<W: Write> {
    body: BodyWriter<W>,
}

impl<W: Write> Encryptor<W> {
    /// Start an object sealed under `key` (a single-object key) and bound to `context`.
    pub fn new(
        key: &ObjectKey,
        context: &ObjectContext,
        mut out: W,
        backend: Backend,
    ) -> Result<Self> {
        key.expect_kind(ObjectKind::Single)?;
        out.write_all(key.header.as_bytes())?;
        let ctx = key.context(context, BodyRole::Single)?;
        let body = BodyWriter::new(out, key.data_key.expose(), &ctx, backend)?;
        Ok(Encryptor { body })
    }

    /// Test seam (feature `test-support`) for known-answer files: a chosen body salt.
    #[cfg(feature = "test-support")]
    pub fn with_salt(
        key: &ObjectKey,
        context: &ObjectContext,
        mut out: W,
        salt: &[u8; chunked::SALT_SIZE],
        backend: Backend,
    ) -> Result<Self> {
        key.expect_kind(ObjectKind::Single)?;
        out.write_all(key.header.as_bytes())?;
        let ctx = key.context(context, BodyRole::Single)?;
        let body = BodyWriter::salted(out, key.data_key.expose(), salt, &ctx, backend)?;
        Ok(Encryptor { body })
    }

    /// Seal whole chunks where they lie in the caller's `block` and write them, with no copy
    /// through the chunk buffer: for callers that read plaintext straight into slots of
    /// [`chunked::ENCRYPTED_CHUNK_SIZE`] bytes (see [`BodyWriter::seal_chunks`]). Write the final
    /// partial chunk with `write`, then call [`Encryptor::finish`].
    pub fn seal_chunks(&mut self, block: &mut [u8]) -> Result<()> {
        self.body.seal_chunks(block)
    }

    /// Seal the final chunk and return the inner writer.
    pub fn finish(self) -> Result<W> {
        self.body.finish()
    }
}

impl<W: Write> Write for Encryptor<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.body.write(data)
    }
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.body.write_all(data)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.body.flush()
    }
}

/// Streaming decryption of one object from a `Read`, releasing each chunk only once it has
/// authenticated, and reporting end of stream only after the final chunk has.
pub struct Decryptor<R: Read> {
    body: BodyReader<R>,
}

impl<R: Read> Decryptor<R> {
    /// Read the header from `input`, unwrap its data key with `provider`, check the header tag,
    /// then read and check the body's commitment for `context`. No chunk is decrypted yet.
    pub fn new<P: KeyProvider + ?Sized>(
        provider: &P,
        context: &ObjectContext,
        mut input: R,
        backend: Backend,
    ) -> Result<Self> {
        let header = Header::read_from(&mut input)?;
        let key = ObjectKey::unwrap_with(provider, header, context)?;
        Self::with_key(&key, context, input, backend)
    }

    /// Open the body that follows an already read and verified header (`input` is positioned
    /// just after the header).
    pub fn with_key(
        key: &ObjectKey,
        context: &ObjectContext,
        mut input: R,
        backend: Backend,
    ) -> Result<Self> {
        key.expect_kind(ObjectKind::Single)?;
        let ctx = key.context(context, BodyRole::Single)?;
        let prefix = read_prefix(&mut input)?;
        let keys = ChunkKeys::derive_checked(backend, key.data_key.expose(), &prefix, &ctx)?;
        Ok(Decryptor {
            body: BodyReader::from_parts(input, keys),
        })
    }

    /// Decrypt the rest of the object into `out`, with typed errors; returns the bytes written.
    pub fn copy_to<W: Write + ?Sized>(&mut self, out: &mut W) -> Result<u64> {
        self.body.copy_to(out)
    }

    /// Read as many chunks as fit into the caller's `block` and open them where they lie, with no
    /// copy through the chunk buffer (see [`BodyReader::open_chunks`]); an empty result means the
    /// object is whole and authenticated.
    pub fn open_chunks(&mut self, block: &mut [u8]) -> Result<chunked::OpenedChunks> {
        self.body.open_chunks(block)
    }

    /// The inner reader.
    pub fn into_inner(self) -> R {
        self.body.into_inner()
    }
}

impl<R: Read> Read for Decryptor<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.body.read(out)
    }
}

/// Seal all of `input` into `output` as one object under a fresh data key from `provider`;
/// returns the plaintext length.
///
/// The object opens under any `context` equal to this one: with an empty context (allowed) it
/// opens wherever it is stored, and an old version stored again under the same context opens too.
/// Bind the object name and a version kept in the storage engine's metadata ([`ObjectContext`],
/// FORMAT.md section 7).
pub fn seal<P: KeyProvider + ?Sized, R: Read, W: Write>(
    provider: &P,
    key_id: &str,
    context: &ObjectContext,
    mut input: R,
    output: W,
    backend: Backend,
) -> Result<u64> {
    let key = ObjectKey::generate(provider, key_id, context, ObjectKind::Single)?;
    let mut enc = Encryptor::new(&key, context, output, backend)?;
    let n = io::copy(&mut input, &mut enc).map_err(Error::from_io)?;
    enc.finish()?;
    Ok(n)
}

/// Open a whole object from `input` into `output`; returns the plaintext length.
pub fn open<P: KeyProvider + ?Sized, R: Read, W: Write>(
    provider: &P,
    context: &ObjectContext,
    input: R,
    mut output: W,
    backend: Backend,
) -> Result<u64> {
    let n = Decryptor::new(provider, context, input, backend)?.copy_to(&mut output)?;
    output.flush()?;
    Ok(n)
}

/// Seal the plaintext held in `buf` in place into a whole object (`header || body`) under `key`
/// and bound to `context`: the in-memory form of [`Encryptor`], for storage engines that hold an
/// object in one buffer. `buf` grows by [`sealed_len`] minus the plaintext length (reserve that
/// capacity first to avoid a reallocation). Each chunk is sealed where it lies and then moved, hot
/// in the cache, to its place; the bytes are those [`Encryptor`] writes for the same salt.
pub fn seal_in_place(
    key: &ObjectKey,
    context: &ObjectContext,
    buf: &mut Vec<u8>,
    backend: Backend,
) -> Result<()> {
    let mut salt = [0u8; chunked::SALT_SIZE];
    crate::key::random(&mut salt)?;
    seal_in_place_salted(key, context, buf, &salt, backend)
}

/// Test seam (feature `test-support`) for known-answer comparisons: [`seal_in_place`] with a
/// chosen body salt.
#[cfg(feature = "test-support")]
pub fn seal_in_place_with_salt(
    key: &ObjectKey,
    context: &ObjectContext,
    buf: &mut Vec<u8>,
    salt: &[u8; chunked::SALT_SIZE],
    backend: Backend,
) -> Result<()> {
    seal_in_place_salted(key, context, buf, salt, backend)
}

fn seal_in_place_salted(
    key: &ObjectKey,
    context: &ObjectContext,
    buf: &mut Vec<u8>,
    salt: &[u8; chunked::SALT_SIZE],
    backend: Backend,
) -> Result<()> {
    key.expect_kind(ObjectKind::Single)?;
    let ctx = key.context(context, BodyRole::Single)?;
    let (keys, commitment) = ChunkKeys::derive(backend, key.data_key.expose(), salt, &ctx)?;
    let head = key.header.len();
    chunked::seal_body_in_place(&keys, salt, &commitment, buf, head)?;
    buf[..head].copy_from_slice(key.header.as_bytes());
    Ok(())
}

/// Open a whole object held in `buf` in place: parse its header, unwrap the data key with
/// `provider`, check the header tag and the body's commitment for `context` (a failure up to here
/// leaves `buf` as it was), then open every chunk where it lies. On success `buf` holds the
/// plaintext only. Once a chunk has been touched, any failure (a tampered chunk, a bad final
/// chunk) zeroes and empties `buf`: nothing of an object that did not authenticate whole is
/// released.
pub fn open_in_place<P: KeyProvider + ?Sized>(
    provider: &P,
    context: &ObjectContext,
    buf: &mut Vec<u8>,
    backend: Backend,
) -> Result<()> {
    let header = Header::read_from(&mut &buf[..])?;
    let key = ObjectKey::unwrap_with(provider, header, context)?;
    open_in_place_with_key(&key, context, buf, backend)
}

/// [`open_in_place`] with an already unwrapped key; `buf` holds the whole object and must start
/// with `key`'s header.
pub fn open_in_place_with_key(
    key: &ObjectKey,
    context: &ObjectContext,
    buf: &mut Vec<u8>,
    backend: Backend,
) -> Result<()> {
    key.expect_kind(ObjectKind::Single)?;
    let head = key.header.len();
    if buf.get(..head) != Some(key.header.as_bytes()) {
        return Err(Error::MalformedHeader(
            "the object does not start with the key's header",
        ));
    }
    let prefix: &[u8; chunked::PREFIX_SIZE] = buf
        .get(head..head + chunked::PREFIX_SIZE)
        .and_then(|p| p.try_into().ok())
        .ok_or(Error::Truncated)?;
    let ctx = key.context(context, BodyRole::Single)?;
    let keys = ChunkKeys::derive_checked(backend, key.data_key.expose(), prefix, &ctx)?;
    chunked::open_body_in_place(&keys, buf, head)
}

/// Decrypt plaintext `range` of the object stored in `source` into `out`; returns the object's
/// plaintext length. Reads the header, the salt and commitment, the final chunk (to authenticate
/// the length), and only the chunks that overlap `range`: corruption in any other chunk goes
/// unnoticed (what is released is still authentic). Only a whole read checks every chunk.
pub fn open_range<P: KeyProvider + ?Sized, R: Read + Seek + ?Sized, W: Write + ?Sized>(
    provider: &P,
    context: &ObjectContext,
    source: &mut R,
    range: Range<u64>,
    out: &mut W,
    backend: Backend,
) -> Result<u64> {
    source.seek(SeekFrom::Start(0))?;
    let header = Header::read_from(source)?;
    let key = ObjectKey::unwrap_with(provider, header, context)?;
    open_range_with_key(&key, context, source, range, out, backend)
}

/// [`open_range`] with an already unwrapped key; `source` holds the whole object (header
/// included).
pub fn open_range_with_key<R: Read + Seek + ?Sized, W: Write + ?Sized>(
    key: &ObjectKey,
    context: &ObjectContext,
    source: &mut R,
    range: Range<u64>,
    out: &mut W,
    backend: Backend,
) -> Result<u64> {
    key.expect_kind(ObjectKind::Single)?;
    let ctx = key.context(context, BodyRole::Single)?;
    chunked::read_body_range(
        source,
        key.header.len() as u64,
        key.data_key.expose(),
        &ctx,
        backend,
        range,
        out,
    )
}

/// The exact stored length of an object whose header is `header_len` bytes and whose plaintext
/// is `plaintext_len` bytes (for Content-Length).
pub fn sealed_len(header_len: u64, plaintext_len: u64) -> Result<u64> {
    chunked::body_len(plaintext_len)?
        .checked_add(header_len)
        .ok_or(Error::TooLong)
}

/// The plaintext length of a stored object of `sealed_len` bytes with a `header_len`-byte header;
/// [`Error::Truncated`] when no plaintext seals to that length.
pub fn plaintext_len(header_len: u64, sealed_len: u64) -> Result<u64> {
    chunked::body_plaintext_len(sealed_len.checked_sub(header_len).ok_or(Error::Truncated)?)
}

/// The stored byte ranges a range GET needs to decrypt plaintext `range`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangePlan {
    /// Header, salt and commitment: always `0..header_len + 56`.
    pub prefix: Range<u64>,
    /// The chunks overlapping the plaintext range.
    pub chunks: Range<u64>,
    /// The final chunk, which authenticates the object's length.
    pub final_chunk: Range<u64>,
}

/// Map plaintext `range` of an object (`header_len`-byte header, `plaintext_len` bytes of
/// plaintext) to the stored byte ranges to fetch.
pub fn sealed_range(header_len: u64, plaintext_len: u64, range: Range<u64>) -> Result<RangePlan> {
    let chunks = chunked::body_chunk_range(plaintext_len, range)?;
    let last = plaintext_len / chunked::CHUNK_SIZE as u64;
    let body_end = chunked::body_len(plaintext_len)?;
    let final_start = chunked::PREFIX_SIZE as u64 + last * chunked::ENCRYPTED_CHUNK_SIZE as u64;
    Ok(RangePlan {
        prefix: 0..header_len + chunked::PREFIX_SIZE as u64,
        chunks: header_len + chunks.start..header_len + chunks.end,
        final_chunk: header_len + final_start..header_len + body_end,
    })
}
