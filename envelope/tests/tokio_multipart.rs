//! Async reads of completed multipart objects (`MultipartObject::copy_to_async`,
//! `MultipartObject::read_range_async`, and the `AsyncRead` of `MultipartObject::reader_async`):
//! they return what the `std::io` reads return, fail with the same typed errors, release only
//! authenticated plaintext, and a range read reads only the chunks that overlap the range.
#![allow(
    clippy::disallowed_methods,
    reason = "writer and reader tasks feed pipes for the length of one test"
)]
#![cfg(feature = "tokio")]

use envelope::chunked::{CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE, PREFIX_SIZE};
use envelope::multipart::{MultipartObject, PartInfo, Upload};
use envelope::{
    Backend, Error, Header, LocalKek, ManifestError, ObjectContext, ObjectKey, ObjectKind,
};
use std::io::{self, Cursor, Read, SeekFrom, Write};
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeek, AsyncWriteExt, ReadBuf};

const C: usize = CHUNK_SIZE;
const ENC: u64 = ENCRYPTED_CHUNK_SIZE as u64;

fn kek() -> LocalKek {
    LocalKek::aes_kw("kek", &[9u8; 32]).expect("kek")
}

fn ctx(upload: &str) -> ObjectContext {
    ObjectContext::from_pairs([("bucket", "b"), ("object-key", "o"), ("upload-id", upload)])
        .expect("ctx")
}

fn part_data(number: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i.to_le_bytes()[0])
                .wrapping_mul(7)
                .wrapping_add(number.to_le_bytes()[0])
        })
        .collect()
}

/// A completed, opened multipart object and what it was made of.
struct Fixture {
    /// Shared, so that a test can also hand it to a `'static` reader.
    object: Arc<MultipartObject>,
    /// Each part's stored body, in part-number order.
    bodies: Vec<Vec<u8>>,
    /// Each part's plaintext length, in part-number order.
    lens: Vec<usize>,
    plaintext: Vec<u8>,
}

impl Fixture {
    fn stored(&self) -> Vec<u8> {
        self.bodies.concat()
    }

    /// Plaintext offset at which part `i` (position in the manifest) starts.
    fn part_start(&self, i: usize) -> usize {
        self.lens[..i].iter().sum()
    }

    /// Stored offset at which part `i`'s body starts.
    fn stored_start(&self, i: usize) -> usize {
        self.bodies[..i].iter().map(Vec::len).sum()
    }
}

/// Seal the parts of `layout` (part number, plaintext length), in reverse order, complete the
/// upload and open the object.
fn fixture(upload_id: &str, layout: &[(u32, usize)], backend: Backend) -> Fixture {
    let key =
        ObjectKey::generate(&kek(), "kek", &ctx(upload_id), ObjectKind::Multipart).expect("key");
    let header = key.header().as_bytes().to_vec();
    let upload = Upload::new(key, ctx(upload_id), backend).expect("upload");
    let mut parts: Vec<(PartInfo, Vec<u8>)> = layout
        .iter()
        .rev()
        .map(|&(n, len)| {
            let mut w = upload.part_writer(n, Vec::new()).expect("part");
            w.write_all(&part_data(n, len)).expect("write");
            let (body, info) = w.finish().expect("finish");
            (info, body)
        })
        .collect();
    parts.sort_by_key(|(i, _)| i.number);
    let infos: Vec<PartInfo> = parts.iter().map(|(i, _)| i.clone()).collect();
    let manifest = upload.complete(&infos).expect("complete");
    let (h, _) = Header::parse(&header).expect("header");
    let key = ObjectKey::unwrap_with(&kek(), h, &ctx(upload_id)).expect("unwrap");
    let object = Arc::new(
        MultipartObject::open(key, ctx(upload_id), manifest.as_bytes(), backend).expect("open"),
    );
    let mut sorted = layout.to_vec();
    sorted.sort_by_key(|&(n, _)| n);
    Fixture {
        object,
        bodies: parts.into_iter().map(|(_, b)| b).collect(),
        lens: sorted.iter().map(|&(_, len)| len).collect(),
        plaintext: sorted
            .iter()
            .flat_map(|&(n, len)| part_data(n, len))
            .collect(),
    }
}

/// Parts of 0 bytes, 1 byte, exactly one chunk and many chunks, in one object.
const MIXED: &[(u32, usize)] = &[(1, 0), (2, 1), (3, C), (5, 3 * C + 100), (9, 0)];
/// The layout of the `std::io` multipart tests.
const LAYOUT: &[(u32, usize)] = &[(1, C + 5), (2, 3 * C), (4, 0), (7, 2 * C + 100)];

/// An `AsyncRead + AsyncSeek` over a byte vector that hands out at most `max_read` bytes per read
/// and counts the bytes read.
struct Counting {
    inner: Cursor<Vec<u8>>,
    max_read: usize,
    taken: u64,
}

impl Counting {
    fn new(data: Vec<u8>, max_read: usize) -> Counting {
        Counting {
            inner: Cursor::new(data),
            max_read,
            taken: 0,
        }
    }
}

impl AsyncRead for Counting {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut tmp = vec![0u8; buf.remaining().min(this.max_read)];
        let mut rb = ReadBuf::new(&mut tmp);
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
        let n = rb.filled().len();
        buf.put_slice(&tmp[..n]);
        this.taken += n as u64;
        Poll::Ready(Ok(()))
    }
}

impl AsyncSeek for Counting {
    fn start_seek(self: Pin<&mut Self>, pos: SeekFrom) -> io::Result<()> {
        Pin::new(&mut self.get_mut().inner).start_seek(pos)
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Pin::new(&mut self.get_mut().inner).poll_complete(cx)
    }
}

/// The futures are `Send`, so a storage engine can run them on a multi-threaded runtime.
fn send<F: std::future::Future + Send>(f: F) -> F {
    f
}

/// Errors compared by variant and fields (`Error` has no `PartialEq`).
fn same(a: &Error, b: &Error) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

/// A stored object broken in one way, and how a whole read of it fails.
struct Broken {
    what: &'static str,
    stored: Vec<u8>,
    /// The whole read's error.
    error: Error,
    /// The plaintext a whole read releases before it fails: everything before the failing chunk
    /// (or part, or end of object) starts, and not one byte more.
    released: usize,
    /// The manifest position of the part at which the read fails.
    part: usize,
}

/// [`MIXED`] with one bit flipped: in a salt, a commitment, a chunk, a tag, a final chunk.
fn tampered(f: &Fixture) -> Vec<Broken> {
    let stored = f.stored();
    let enc = ENCRYPTED_CHUNK_SIZE;
    let p = PREFIX_SIZE;
    let mismatch = |part| Error::Manifest(ManifestError::PartMismatch { part });
    // (what, part position in the manifest, byte offset in its body, the error, the chunk
    // index whose plaintext must not be released: plaintext before it is).
    let cases: Vec<(&str, usize, usize, Error, usize)> = vec![
        ("salt of a 0-byte part", 0, 3, mismatch(1), 0),
        ("commitment of a 1-byte part", 1, 30, mismatch(2), 0),
        (
            "the 1-byte part's only chunk",
            1,
            p,
            Error::BadFinalChunk { index: 0 },
            0,
        ),
        (
            "a 0-byte part's tag",
            4,
            p + 2,
            Error::BadFinalChunk { index: 0 },
            0,
        ),
        (
            "the one-chunk part's chunk",
            2,
            p + 9,
            Error::TamperedChunk { index: 0 },
            0,
        ),
        (
            "the one-chunk part's empty final chunk",
            2,
            p + enc + 1,
            Error::BadFinalChunk { index: 1 },
            1,
        ),
        (
            "first chunk of a many-chunk part",
            3,
            p,
            Error::TamperedChunk { index: 0 },
            0,
        ),
        (
            "tag of chunk 1 of a many-chunk part",
            3,
            p + 2 * enc - 1,
            Error::TamperedChunk { index: 1 },
            1,
        ),
        (
            "middle chunk 2 of a many-chunk part",
            3,
            p + 2 * enc + 500,
            Error::TamperedChunk { index: 2 },
            2,
        ),
        (
            "final chunk 3 of a many-chunk part",
            3,
            p + 3 * enc + 50,
            Error::BadFinalChunk { index: 3 },
            3,
        ),
    ];
    cases
        .into_iter()
        .map(|(what, part, at, error, chunk)| {
            let mut t = stored.clone();
            t[f.stored_start(part) + at] ^= 0x20;
            Broken {
                what,
                stored: t,
                error,
                released: f.part_start(part) + chunk * C,
                part,
            }
        })
        .collect()
}

/// [`LAYOUT`] with parts dropped, swapped, duplicated or taken from `other` (another upload of
/// the same layout), a trailing byte, or truncated.
fn substituted(f: &Fixture, other: &Fixture) -> Vec<Broken> {
    let b: Vec<&[u8]> = f.bodies.iter().map(Vec::as_slice).collect();
    let all = f.stored();
    let mut trailing = all.clone();
    trailing.push(0);
    let mismatch = |part| Error::Manifest(ManifestError::PartMismatch { part });
    let at = |i| f.part_start(i);
    // (what, stored bytes, the whole read's error, plaintext released, part at which it fails)
    let cases: Vec<(&str, Vec<u8>, Error, usize, usize)> = vec![
        (
            "dropped part 2",
            [b[0], b[2], b[3]].concat(),
            mismatch(2),
            at(1),
            1,
        ),
        (
            "dropped last part",
            [b[0], b[1], b[2]].concat(),
            Error::Truncated,
            at(3),
            3,
        ),
        (
            "swapped parts 1 and 2",
            [b[1], b[0], b[2], b[3]].concat(),
            mismatch(1),
            0,
            0,
        ),
        (
            "swapped parts 4 and 7",
            [b[0], b[1], b[3], b[2]].concat(),
            mismatch(4),
            at(2),
            2,
        ),
        (
            "part 1 in place of part 2",
            [b[0], b[0], b[2], b[3]].concat(),
            mismatch(2),
            at(1),
            1,
        ),
        (
            "part 2 from another upload",
            [b[0], &other.bodies[1], b[2], b[3]].concat(),
            mismatch(2),
            at(1),
            1,
        ),
        (
            "trailing byte",
            trailing,
            Error::TrailingData,
            f.plaintext.len(),
            3,
        ),
        (
            "truncated by one byte",
            all[..all.len() - 1].to_vec(),
            Error::BadFinalChunk { index: 2 },
            at(3) + 2 * C,
            3,
        ),
        (
            "truncated at a chunk boundary",
            all[..f.stored_start(1) + PREFIX_SIZE + ENCRYPTED_CHUNK_SIZE].to_vec(),
            Error::Truncated,
            at(1) + C,
            1,
        ),
    ];
    cases
        .into_iter()
        .map(|(what, stored, error, released, part)| Broken {
            what,
            stored,
            error,
            released,
            part,
        })
        .collect()
}

async fn whole_sync_and_async(
    f: &Fixture,
    stored: &[u8],
) -> (Result<u64, Error>, Vec<u8>, Result<u64, Error>, Vec<u8>) {
    let mut sync_out = Vec::new();
    let sync = f.object.copy_to(stored, &mut sync_out);
    let mut async_out = Vec::new();
    let mut src = Counting::new(stored.to_vec(), 1000);
    let r = f.object.copy_to_async(&mut src, &mut async_out).await;
    (sync, sync_out, r, async_out)
}

async fn range_sync_and_async(
    f: &Fixture,
    stored: &[u8],
    range: Range<u64>,
) -> (Result<(), Error>, Vec<u8>, Result<(), Error>, Vec<u8>, u64) {
    let mut sync_out = Vec::new();
    let sync = f
        .object
        .read_range(&mut Cursor::new(stored), range.clone(), &mut sync_out);
    let mut async_out = Vec::new();
    let mut src = Counting::new(stored.to_vec(), 5000);
    let r = send(f.object.read_range_async(&mut src, range, &mut async_out)).await;
    (sync, sync_out, r, async_out, src.taken)
}

#[tokio::test]
async fn async_whole_read_equals_sync_read() {
    let layouts: &[(&str, &[(u32, usize)])] = &[
        ("one part of 0 bytes", &[(1, 0)]),
        ("one part of 1 byte", &[(1, 1)]),
        ("one part of exactly one chunk", &[(1, C)]),
        ("one part of many chunks", &[(3, 5 * C + 7)]),
        ("parts of 0, 1, C, many and 0 bytes", MIXED),
        ("the std::io tests' layout", LAYOUT),
    ];
    for &backend in Backend::all() {
        for &(what, layout) in layouts {
            let f = fixture("u1", layout, backend);
            let stored = f.stored();
            let n = f.plaintext.len() as u64;
            let mut sync_out = Vec::new();
            let sync_n = f.object.copy_to(&stored[..], &mut sync_out).expect(what);
            assert_eq!(sync_n, n, "{what}");
            assert!(sync_out == f.plaintext, "{what}: sync");
            // From a slice, through 7-byte reads, and through a pipe fed in pieces.
            let mut out = Vec::new();
            let got = f.object.copy_to_async(&stored[..], &mut out).await;
            assert_eq!(got.expect(what), n, "{what}: slice");
            assert!(out == sync_out, "{what}: slice");
            let mut out = Vec::new();
            let mut src = Counting::new(stored.clone(), 7);
            let got = f.object.copy_to_async(&mut src, &mut out).await;
            assert_eq!(got.expect(what), n, "{what}: 7-byte reads");
            assert!(out == sync_out, "{what}: 7-byte reads");
            assert_eq!(src.taken, stored.len() as u64, "{what}: read all");
            let (mut client, server) = tokio::io::duplex(3000);
            let feed = stored.clone();
            let writer = tokio::spawn(async move {
                for piece in feed.chunks(4099) {
                    client.write_all(piece).await.expect("feed");
                }
                client.shutdown().await.expect("shutdown");
            });
            let mut out = Vec::new();
            let got = send(f.object.copy_to_async(server, &mut out)).await;
            writer.await.expect("writer task");
            assert_eq!(got.expect(what), n, "{what}: pipe");
            assert!(out == sync_out, "{what}: pipe");
        }
    }
}

#[tokio::test]
async fn async_range_reads_equal_sync_and_read_only_overlapping_chunks() {
    for &backend in Backend::all() {
        // Parts: 1 (C + 5), 2 (20 chunks), 3 (0 bytes), 4 (1 byte), 5 (C), 6 (2C + 100).
        let layout = [
            (1, C + 5),
            (2, 20 * C),
            (3, 0),
            (4, 1),
            (5, C),
            (6, 2 * C + 100),
        ];
        let f = fixture("u1", &layout, backend);
        let stored = f.stored();
        let n = f.plaintext.len() as u64;
        let at = |i: usize| f.part_start(i) as u64;
        let cases: Vec<(&str, Range<u64>)> = vec![
            ("inside one part, one chunk", 5..6),
            (
                "inside one part, across a chunk boundary",
                at(1) + C as u64 - 3..at(1) + C as u64 + 3,
            ),
            (
                "inside one part, several chunks",
                at(1) + 100..at(1) + 4 * C as u64,
            ),
            (
                "the middle of a many-chunk part",
                at(1) + 10 * C as u64 + 1..at(1) + 11 * C as u64,
            ),
            ("a whole part", at(4)..at(5)),
            ("a whole part of 1 byte", at(3)..at(4)),
            ("crossing one part boundary", at(1) - 3..at(1) + 3),
            (
                "crossing a boundary at a chunk edge",
                at(4) - 1..at(4) + C as u64 + 1,
            ),
            (
                "crossing several part boundaries",
                at(1) + 19 * C as u64..at(5) + 5,
            ),
            ("crossing every part", 1..n - 1),
            ("the whole object", 0..n),
            ("the first byte", 0..1),
            ("the last byte", n - 1..n),
            (
                "the end of a part exactly",
                at(1) + 20 * C as u64 - 7..at(1) + 20 * C as u64,
            ),
            ("empty range", 0..0),
            ("empty range inside a part", at(1) + 77..at(1) + 77),
            ("empty range at the end", n..n),
        ];
        for (what, r) in cases {
            let (sync, sync_out, got, out, taken) =
                range_sync_and_async(&f, &stored, r.clone()).await;
            sync.unwrap_or_else(|e| panic!("{what}: sync: {e}"));
            got.unwrap_or_else(|e| panic!("{what}: async: {e}"));
            let want = &f.plaintext[ix(r.start)..ix(r.end)];
            assert!(out == want, "{what}: async range");
            assert!(sync_out == want, "{what}: sync range");
            // Per part touched: salt and commitment, final chunk, and the chunks overlapping the
            // range (at most one partial chunk at each end).
            let touched = (0..layout.len())
                .filter(|&i| {
                    let (s, e) = (at(i), at(i) + f.lens[i] as u64);
                    !r.is_empty() && r.start < e && r.end > s
                })
                .count() as u64;
            let bound = r.end.saturating_sub(r.start).div_ceil(C as u64) * ENC
                + touched * (PREFIX_SIZE as u64 + 3 * ENC);
            assert!(
                taken <= bound,
                "{what}: read {taken} bytes for {} of range, bound {bound}",
                r.end - r.start
            );
            if r.is_empty() {
                assert_eq!(taken, 0, "{what}: an empty range reads nothing");
            }
        }
        // A small range in a large object reads a small part of it.
        let (_, _, got, _, taken) = range_sync_and_async(&f, &stored, at(1) + 5..at(1) + 6).await;
        got.expect("small range");
        assert!(
            taken <= PREFIX_SIZE as u64 + 2 * ENC,
            "small range read {taken} bytes"
        );
        assert!(taken * 10 < stored.len() as u64);
    }
}

#[tokio::test]
async fn async_range_past_the_end_is_refused() {
    let f = fixture("u1", LAYOUT, Backend::default());
    let stored = f.stored();
    let n = f.plaintext.len() as u64;
    #[allow(clippy::reversed_empty_ranges)]
    let cases: [(&str, Range<u64>); 4] = [
        ("one past the end", n..n + 1),
        ("the whole object and one byte", 0..n + 1),
        ("far past the end", n + 100..n + 200),
        ("start after end", 5..3),
    ];
    for (what, r) in cases {
        let (sync, sync_out, got, out, taken) = range_sync_and_async(&f, &stored, r.clone()).await;
        let err = got.expect_err(what);
        assert!(
            matches!(err, Error::InvalidRange { start, end, len } if start == r.start && end == r.end && len == n),
            "{what}: {err:?}"
        );
        assert!(
            same(&err, &sync.expect_err(what)),
            "{what}: differs from sync"
        );
        assert!(out.is_empty() && sync_out.is_empty(), "{what}: wrote");
        assert_eq!(taken, 0, "{what}: read before refusing");
    }
}

#[tokio::test]
async fn async_tampered_chunk_fails_like_sync_and_releases_only_earlier_chunks() {
    for &backend in Backend::all() {
        let f = fixture("u1", MIXED, backend);
        for Broken {
            what,
            stored: t,
            error: want,
            released,
            part,
        } in tampered(&f)
        {
            let (sync, sync_out, got, out) = whole_sync_and_async(&f, &t).await;
            let err = got.expect_err(what);
            assert!(same(&err, &want), "{what}: got {err:?}, want {want:?}");
            assert!(
                same(&err, &sync.expect_err(what)),
                "{what}: differs from sync"
            );
            // Exactly the plaintext before the failing chunk, as the sync path.
            assert!(
                out == f.plaintext[..released],
                "{what}: released {} bytes",
                out.len()
            );
            assert!(out == sync_out, "{what}: differs from the sync output");
            // A range over the whole object fails the same way, releasing only correct bytes. (A
            // range read checks only the parts it overlaps, and no range overlaps a 0-byte part.)
            let n = f.plaintext.len() as u64;
            let (sync, sync_out, got, out, _) = range_sync_and_async(&f, &t, 0..n).await;
            if f.lens[part] == 0 {
                sync.expect(what);
                got.expect(what);
                assert!(
                    out == f.plaintext && sync_out == f.plaintext,
                    "{what}: range"
                );
                continue;
            }
            let err = got.expect_err(what);
            assert!(
                same(&err, &want),
                "{what}: range: got {err:?}, want {want:?}"
            );
            assert!(
                same(&err, &sync.expect_err(what)),
                "{what}: range differs from sync"
            );
            assert!(
                f.plaintext.starts_with(&out),
                "{what}: range released wrong bytes"
            );
            assert!(out == sync_out, "{what}: range output differs from sync");
        }
    }
}

#[tokio::test]
async fn async_dropped_swapped_and_foreign_parts_fail_like_sync() {
    let backend = Backend::default();
    let f = fixture("u1", LAYOUT, backend);
    let other = fixture("u2", LAYOUT, backend);
    let n = f.plaintext.len() as u64;
    for Broken {
        what,
        stored: t,
        error: want,
        ..
    } in substituted(&f, &other)
    {
        let (sync, sync_out, got, out) = whole_sync_and_async(&f, &t).await;
        let err = got.expect_err(what);
        let sync_err = sync.expect_err(what);
        assert!(
            same(&err, &sync_err),
            "{what}: {err:?} vs sync {sync_err:?}"
        );
        assert!(same(&err, &want), "{what}: got {err:?}, want {want:?}");
        assert!(
            f.plaintext.starts_with(&out),
            "{what}: released wrong bytes"
        );
        assert!(out == sync_out, "{what}: output differs from sync");
        // A range over the whole object fails as the sync one does; a range over some parts
        // checks only those (and the stored length), with the same outcome as the sync one.
        for r in [0..n, 0..1, n - 1..n] {
            let (sync, sync_out, got, out, _) = range_sync_and_async(&f, &t, r.clone()).await;
            match (&got, &sync) {
                (Err(err), Err(sync_err)) => assert!(
                    same(err, sync_err),
                    "{what} {r:?}: {err:?} vs sync {sync_err:?}"
                ),
                (Ok(()), Ok(())) => assert!(r != (0..n), "{what}: whole range opened"),
                _ => panic!("{what} {r:?}: async {got:?}, sync {sync:?}"),
            }
            assert!(
                f.plaintext[ix(r.start)..].starts_with(&out),
                "{what} {r:?}: range released wrong bytes"
            );
            assert!(out == sync_out, "{what} {r:?}: output differs from sync");
        }
    }
}

/// An `AsyncRead` over a byte vector that returns `Pending` before every read (waking itself at
/// once) and then hands out at most `step` bytes: a chunk arrives over many polls.
struct Trickle {
    data: Vec<u8>,
    at: usize,
    step: usize,
    /// Whether the next poll hands out bytes (else it returns `Pending`).
    ready: bool,
}

impl Trickle {
    fn new(data: &[u8], step: usize) -> Trickle {
        Trickle {
            data: data.to_vec(),
            at: 0,
            step,
            ready: false,
        }
    }
}

impl AsyncRead for Trickle {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.ready {
            this.ready = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        this.ready = false;
        let n = this
            .step
            .min(buf.remaining())
            .min(this.data.len() - this.at);
        buf.put_slice(&this.data[this.at..this.at + n]);
        this.at += n;
        Poll::Ready(Ok(()))
    }
}

/// A source whose every read fails, as a dropped connection does.
struct Reset;

fn reset() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "connection reset")
}

impl Read for Reset {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(reset())
    }
}

impl AsyncRead for Reset {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Ready(Err(reset()))
    }
}

/// The whole object through the `std::io` reader: its typed error, if any, and the plaintext it
/// released before.
fn sync_reader(object: &MultipartObject, stored: &[u8]) -> (Result<(), Error>, Vec<u8>) {
    let mut out = Vec::new();
    let r = object
        .reader(stored)
        .read_to_end(&mut out)
        .map(|_| ())
        .map_err(Error::from_io);
    (r, out)
}

/// Read `r` to its end or its first error with `read` calls into a `buf_len`-byte buffer: the
/// typed error, if any, and the plaintext released before.
async fn drain<R: AsyncRead + Unpin>(r: &mut R, buf_len: usize) -> (Result<(), Error>, Vec<u8>) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; buf_len];
    loop {
        match r.read(&mut buf).await {
            Ok(0) => return (Ok(()), out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (Err(Error::from_io(e)), out),
        }
    }
}

/// After a failure, every later read fails again with the same typed error.
async fn assert_sticky<R: AsyncRead + Unpin>(r: &mut R, first: &Error, what: &str) {
    for _ in 0..2 {
        let again = r.read(&mut [0u8; 8]).await.expect_err(what);
        let again = Error::from_io(again);
        assert!(
            same(&again, first),
            "{what}: then {again:?}, first {first:?}"
        );
    }
}

/// Feed `stored` into a `tokio::io::duplex` pipe of 64 bytes, in pieces of 4099 bytes, and read
/// it on another task through a `'static` reader (`into_reader_async`) with `buf_len`-byte reads:
/// `Pending` happens inside every chunk. Returns the outcome, the plaintext released, and whether
/// a failure was sticky.
async fn through_a_pipe(
    object: &Arc<MultipartObject>,
    stored: &[u8],
    buf_len: usize,
) -> (Result<(), Error>, Vec<u8>) {
    let (mut client, server) = tokio::io::duplex(64);
    let feed = stored.to_vec();
    let writer = tokio::spawn(async move {
        for piece in feed.chunks(4099) {
            // The reader stops at its first failure and drops its end of the pipe.
            if client.write_all(piece).await.is_err() {
                return;
            }
        }
        client.shutdown().await.expect("shutdown");
    });
    let mut reader = Arc::clone(object).into_reader_async(server);
    let got = tokio::spawn(async move {
        let (r, out) = drain(&mut reader, buf_len).await;
        if let Err(e) = &r {
            assert_sticky(&mut reader, e, "pipe").await;
        }
        (r, out)
    })
    .await
    .expect("reader task");
    writer.await.expect("writer task");
    got
}

#[tokio::test]
async fn async_reader_output_equals_sync_reader_output_whatever_the_pieces() {
    let layouts: &[(&str, &[(u32, usize)])] = &[
        ("one part of 0 bytes", &[(1, 0)]),
        ("one part of 1 byte", &[(1, 1)]),
        ("one part of exactly one chunk", &[(1, C)]),
        ("one part of many chunks", &[(3, 5 * C + 7)]),
        ("parts of 0, 1, C, many and 0 bytes", MIXED),
        ("the std::io tests' layout", LAYOUT),
    ];
    for &backend in Backend::all() {
        for &(what, layout) in layouts {
            let f = fixture("u1", layout, backend);
            let stored = f.stored();
            let (sync, sync_out) = sync_reader(&f.object, &stored);
            sync.expect(what);
            assert!(sync_out == f.plaintext, "{what}: sync reader");
            // From a slice.
            let mut out = Vec::new();
            let n = f
                .object
                .reader_async(&stored[..])
                .read_to_end(&mut out)
                .await;
            assert_eq!(n.expect(what), out.len(), "{what}: slice");
            assert!(out == sync_out, "{what}: slice");
            // 1 to 7 bytes per read, with `Pending` before each.
            for step in 1..=7 {
                let mut src = Trickle::new(&stored, step);
                let mut out = Vec::new();
                let got = f.object.reader_async(&mut src).read_to_end(&mut out).await;
                got.unwrap_or_else(|e| panic!("{what}: {step}-byte reads: {e}"));
                assert!(out == sync_out, "{what}: {step}-byte reads");
                assert_eq!(src.at, stored.len(), "{what}: {step}-byte reads: read all");
            }
            // Reads into buffers smaller and larger than a chunk.
            for buf_len in [1, 1000, C, 3 * C] {
                let mut r = f.object.reader_async(Trickle::new(&stored, 7));
                let (got, out) = drain(&mut r, buf_len).await;
                got.unwrap_or_else(|e| panic!("{what}: {buf_len}-byte buffer: {e}"));
                assert!(out == sync_out, "{what}: {buf_len}-byte buffer");
                // The end of the stream stays the end.
                assert_eq!(r.read(&mut [0u8; 8]).await.expect(what), 0, "{what}");
            }
            // Through a small pipe, on another task.
            let (got, out) = through_a_pipe(&f.object, &stored, 1000).await;
            got.unwrap_or_else(|e| panic!("{what}: pipe: {e}"));
            assert!(out == sync_out, "{what}: pipe");
        }
    }
}

#[tokio::test]
async fn async_reader_fails_like_sync_reader_and_releases_only_earlier_chunks() {
    for &backend in Backend::all() {
        let mixed = fixture("u1", MIXED, backend);
        let layout = fixture("u1", LAYOUT, backend);
        let other = fixture("u2", LAYOUT, backend);
        let cases = tampered(&mixed).into_iter().map(|b| (&mixed, b)).chain(
            substituted(&layout, &other)
                .into_iter()
                .map(|b| (&layout, b)),
        );
        for (f, b) in cases {
            let what = b.what;
            let want_out = &f.plaintext[..b.released];
            let (sync, sync_out) = sync_reader(&f.object, &b.stored);
            let sync_err = sync.expect_err(what);
            assert!(same(&sync_err, &b.error), "{what}: sync {sync_err:?}");
            assert!(
                sync_out == want_out,
                "{what}: sync released {}",
                sync_out.len()
            );
            // From a slice, through 3-byte reads with `Pending` before each, through a pipe.
            let mut r = f.object.reader_async(&b.stored[..]);
            let slice = drain(&mut r, 3 * C).await;
            assert_sticky(&mut r, &b.error, what).await;
            let mut r = f.object.reader_async(Trickle::new(&b.stored, 3));
            let trickle = drain(&mut r, 1000).await;
            assert_sticky(&mut r, &b.error, what).await;
            let pipe = through_a_pipe(&f.object, &b.stored, C).await;
            for (how, (got, out)) in [("slice", slice), ("3-byte reads", trickle), ("pipe", pipe)] {
                let err = got.expect_err(what);
                assert!(
                    same(&err, &sync_err),
                    "{what}, {how}: {err:?} vs sync {sync_err:?}"
                );
                // Exactly the plaintext before the failing chunk: nothing from it or after it.
                assert!(
                    out == want_out,
                    "{what}, {how}: released {} bytes, want {}",
                    out.len(),
                    want_out.len()
                );
            }
        }
    }
}

#[tokio::test]
async fn async_reader_reports_a_source_error_as_is_then_stays_failed_like_sync() {
    let f = fixture("u1", LAYOUT, Backend::default());
    let stored = f.stored();
    // The connection drops 10 bytes into part 2's second chunk.
    let cut = f.stored_start(1) + PREFIX_SIZE + ENCRYPTED_CHUNK_SIZE + 10;
    let want_out = &f.plaintext[..f.part_start(1) + C];

    let mut r = f.object.reader(Read::chain(&stored[..cut], Reset));
    let mut sync_out = Vec::new();
    let err = r.read_to_end(&mut sync_out).expect_err("sync");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "sync: {err:?}");
    assert!(sync_out == want_out, "sync released {}", sync_out.len());
    let again = Error::from_io(r.read(&mut [0u8; 8]).expect_err("sync again"));
    assert!(matches!(again, Error::Poisoned), "sync then {again:?}");

    let mut r = f
        .object
        .reader_async(AsyncReadExt::chain(Trickle::new(&stored[..cut], 5), Reset));
    let (got, out) = drain(&mut r, 1000).await;
    let err = got.expect_err("async");
    assert!(
        matches!(&err, Error::Io(e) if e.kind() == io::ErrorKind::ConnectionReset),
        "async: {err:?}"
    );
    assert!(out == sync_out, "async released {}", out.len());
    let again = Error::from_io(r.read(&mut [0u8; 8]).await.expect_err("async again"));
    assert!(matches!(again, Error::Poisoned), "async then {again:?}");
}

#[tokio::test]
async fn a_part_shorter_than_the_manifest_lists_fails_every_whole_read() {
    // A part body sealed twice with the same salt (the test-only salt seam stands for a broken
    // RNG): both carry the commitment the manifest lists, but only the longer one has the length
    // it lists. Stored last, the shorter one ends the object early at a valid final chunk.
    let backend = Backend::default();
    let key = ObjectKey::generate(&kek(), "kek", &ctx("u1"), ObjectKind::Multipart).expect("key");
    let header = key.header().as_bytes().to_vec();
    let upload = Upload::new(key, ctx("u1"), backend).expect("upload");
    let seal = |number: u32, len: usize, salt: &[u8; 24]| {
        let mut w = upload
            .part_writer_with_salt(number, Vec::new(), salt)
            .expect("part");
        w.write_all(&part_data(number, len)).expect("write");
        w.finish().expect("finish")
    };
    let (body1, info1) = seal(1, C + 5, &[1; 24]);
    let (_, info2) = seal(2, 2 * C + 100, &[2; 24]);
    let (short2, _) = seal(2, C + 3, &[2; 24]);
    let manifest = upload.complete(&[info1, info2]).expect("complete");
    let (h, _) = Header::parse(&header).expect("header");
    let key = ObjectKey::unwrap_with(&kek(), h, &ctx("u1")).expect("unwrap");
    let object = MultipartObject::open(key, ctx("u1"), manifest.as_bytes(), backend).expect("open");
    let stored = [body1, short2].concat();
    let want = Error::Manifest(ManifestError::PartMismatch { part: 2 });

    let mut copied = Vec::new();
    let err = object
        .copy_to(&stored[..], &mut copied)
        .expect_err("copy_to");
    assert!(same(&err, &want), "copy_to: {err:?}");
    let mut copied_async = Vec::new();
    let err = object
        .copy_to_async(&stored[..], &mut copied_async)
        .await
        .expect_err("copy_to_async");
    assert!(same(&err, &want), "copy_to_async: {err:?}");
    let (got, sync_out) = sync_reader(&object, &stored);
    let err = got.expect_err("reader");
    assert!(same(&err, &want), "reader: {err:?}");
    let mut r = object.reader_async(Trickle::new(&stored, 7));
    let (got, out) = drain(&mut r, 1000).await;
    let err = got.expect_err("reader_async");
    assert!(same(&err, &want), "reader_async: {err:?}");
    assert_sticky(&mut r, &want, "reader_async").await;
    // All four released the same authenticated chunks before failing.
    assert!(copied == copied_async && copied == sync_out && copied == out);
}

/// A `u64` offset as an index into an in-memory buffer.
fn ix(x: u64) -> usize {
    usize::try_from(x).expect("offset fits usize")
}
