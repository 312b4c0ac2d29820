//! What the format does not prevent, stated in FORMAT.md section 7 and SECURITY.md, shown as it
//! is: each test is named after the statement it demonstrates.
//!
//! * Replay: an old version of an object (a multipart one: header, manifest and parts together),
//!   stored again under the same context, opens.
//! * Moves: an object opens under another name only when the context does not name it; a context
//!   that differs in the object name refuses it.
//! * Range reads: a range read checks only the chunks it reads (and the final one), so it
//!   succeeds outside a corrupted chunk and fails on a range that covers it.

use envelope::chunked::{CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE, PREFIX_SIZE};
use envelope::multipart::{MultipartObject, Upload};
use envelope::{Backend, Error, Header, LocalKek, ObjectContext, ObjectKey, ObjectKind};
use std::io::{Cursor, Write};

const C: usize = CHUNK_SIZE;

fn kek() -> LocalKek {
    LocalKek::aes_kw("kek-1", &[0x42; 32]).expect("kek")
}

/// The context a storage engine should bind: bucket, object name and a version it keeps.
fn named(object: &str, version: &str) -> ObjectContext {
    ObjectContext::from_pairs([("bucket", "b"), ("object", object), ("version", version)])
        .expect("ctx")
}

/// The context of a caller that binds the object name but no version.
fn unversioned(object: &str) -> ObjectContext {
    ObjectContext::from_pairs([("bucket", "b"), ("object", object)]).expect("ctx")
}

fn seal(pt: &[u8], ctx: &ObjectContext, backend: Backend) -> Vec<u8> {
    let mut out = Vec::new();
    envelope::seal(&kek(), "kek-1", ctx, pt, &mut out, backend).expect("seal");
    out
}

fn open(sealed: &[u8], ctx: &ObjectContext, backend: Backend) -> envelope::Result<Vec<u8>> {
    let mut out = Vec::new();
    envelope::open(&kek(), ctx, sealed, &mut out, backend)?;
    Ok(out)
}

#[test]
fn replay_of_an_old_version_under_the_same_context_opens() {
    for &backend in Backend::all() {
        let ctx = unversioned("report.pdf");
        let v1 = seal(b"version one", &ctx, backend);
        let v2 = seal(b"version two", &ctx, backend);
        assert_eq!(open(&v2, &ctx, backend).expect("v2"), b"version two");
        // The storage puts v1 back where v2 was: nothing in the object tells them apart.
        assert_eq!(
            open(&v1, &ctx, backend).expect("replayed v1"),
            b"version one"
        );
        // Bound to a version the storage engine keeps in its metadata, the replay is refused.
        let v1 = seal(b"version one", &named("report.pdf", "1"), backend);
        assert!(matches!(
            open(&v1, &named("report.pdf", "2"), backend),
            Err(Error::Commitment | Error::WrongKey)
        ));
    }
}

#[test]
fn an_object_moves_freely_when_the_context_does_not_name_it() {
    for &backend in Backend::all() {
        // An empty context (allowed) binds an object to nothing: "a.csv" stored in the place of
        // "b.csv" opens as "b.csv" (whose reader, too, passes the empty context).
        let a = seal(b"contents of a", &ObjectContext::new(), backend);
        let b = seal(b"contents of b", &ObjectContext::new(), backend);
        assert_eq!(
            open(&b, &ObjectContext::new(), backend).expect("b"),
            b"contents of b"
        );
        let stored_as_b = a;
        assert_eq!(
            open(&stored_as_b, &ObjectContext::new(), backend).expect("moved"),
            b"contents of a"
        );
        // The same holds for a context that names the bucket only: it does not tell objects apart.
        let bucket = ObjectContext::new().with("bucket", "b").expect("ctx");
        let a = seal(b"contents of a", &bucket, backend);
        assert_eq!(open(&a, &bucket, backend).expect("moved"), b"contents of a");
    }
}

#[test]
fn the_same_object_under_a_context_that_differs_in_the_object_name_does_not_open() {
    for &backend in Backend::all() {
        let sealed = seal(b"payroll", &unversioned("a.csv"), backend);
        assert_eq!(
            open(&sealed, &unversioned("a.csv"), backend).expect("own name"),
            b"payroll"
        );
        // Moved to another name: refused before any chunk, by the KMS context or the commitment.
        let r = open(&sealed, &unversioned("b.csv"), backend);
        assert!(
            matches!(r, Err(Error::Commitment | Error::WrongKey)),
            "{backend:?}: {r:?}"
        );
    }
}

#[test]
fn a_range_read_outside_a_corrupted_chunk_succeeds_and_one_covering_it_fails() {
    for &backend in Backend::all() {
        let ctx = unversioned("big.bin");
        let pt: Vec<u8> = (0..4 * C + 100)
            .map(|i| (i % 251).to_le_bytes()[0])
            .collect();
        let mut sealed = seal(&pt, &ctx, backend);
        let header_len = Header::parse(&sealed).expect("header").1;
        // Corrupt one byte of chunk 1 (plaintext C..2C).
        sealed[header_len + PREFIX_SIZE + ENCRYPTED_CHUNK_SIZE + 7] ^= 1;

        let range = |r: std::ops::Range<u64>| {
            let mut out = Vec::new();
            envelope::open_range(
                &kek(),
                &ctx,
                &mut Cursor::new(&sealed[..]),
                r,
                &mut out,
                backend,
            )
            .map(|_| out)
        };
        // Chunks 0, 2 and 3 are intact: what the range read releases is authentic.
        let c = C as u64;
        assert_eq!(range(0..c).expect("chunk 0"), pt[..C]);
        assert_eq!(
            range(2 * c..3 * c + 10).expect("chunks 2-3"),
            pt[2 * C..3 * C + 10]
        );
        // A range that covers chunk 1 fails there.
        assert!(matches!(
            range(c - 1..c + 1),
            Err(Error::TamperedChunk { index: 1, .. })
        ));
        // The whole object does not open.
        assert!(open(&sealed, &ctx, backend).is_err());
    }
}

/// A multipart upload under `ctx` with one part holding `pt`: (header, manifest, stored parts).
fn multipart(ctx: &ObjectContext, pt: &[u8], backend: Backend) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let key = ObjectKey::generate(&kek(), "kek-1", ctx, ObjectKind::Multipart).expect("key");
    let header = key.header().as_bytes().to_vec();
    let upload = Upload::new(key, ctx.clone(), backend).expect("upload");
    let mut w = upload.part_writer(1, Vec::new()).expect("part");
    w.write_all(pt).expect("write");
    let (body, info) = w.finish().expect("finish");
    let manifest = upload.complete(&[info]).expect("complete");
    (header, manifest.as_bytes().to_vec(), body)
}

fn open_multipart(
    (header, manifest, body): &(Vec<u8>, Vec<u8>, Vec<u8>),
    ctx: &ObjectContext,
    backend: Backend,
) -> envelope::Result<Vec<u8>> {
    let (h, _) = Header::parse(header)?;
    let key = ObjectKey::unwrap_with(&kek(), h, ctx)?;
    let obj = MultipartObject::open(key, ctx.clone(), manifest, backend)?;
    let mut out = Vec::new();
    obj.copy_to(&body[..], &mut out)?;
    Ok(out)
}

#[test]
fn replay_of_an_old_multipart_version_under_the_same_context_opens() {
    for &backend in Backend::all() {
        let ctx = unversioned("video.mp4");
        let v1 = multipart(&ctx, b"first upload", backend);
        let v2 = multipart(&ctx, b"second upload", backend);
        assert_eq!(
            open_multipart(&v2, &ctx, backend).expect("v2"),
            b"second upload"
        );
        // Header, manifest and parts of v1 stored again together: they open.
        assert_eq!(
            open_multipart(&v1, &ctx, backend).expect("replayed v1"),
            b"first upload"
        );
        // Under a context that differs in the object name they do not.
        assert!(open_multipart(&v1, &unversioned("other.mp4"), backend).is_err());
    }
}
