//! Multipart uploads: parts sealed in any order under one data key, an authenticated manifest,
//! a reader across parts (whole and by range), and the attacks the manifest must detect.

use envelope::chunked::CHUNK_SIZE;
use envelope::multipart::{MultipartObject, PartInfo, Upload};
use envelope::{
    Backend, Error, Header, LocalKek, ManifestError, ObjectContext, ObjectKey, ObjectKind,
};
use std::io::{Cursor, Write};

const C: usize = CHUNK_SIZE;

fn kek() -> LocalKek {
    LocalKek::aes_kw("kek", &[3u8; 32]).expect("kek")
}

fn ctx(upload: &str) -> ObjectContext {
    ObjectContext::from_pairs([("bucket", "b"), ("object-key", "o"), ("upload-id", upload)])
        .expect("ctx")
}

struct Sealed {
    header: Vec<u8>,
    parts: Vec<(PartInfo, Vec<u8>)>,
    upload: Upload,
}

fn part_data(number: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.to_le_bytes()[0]).wrapping_add((number.to_le_bytes()[0]).wrapping_mul(50)))
        .collect()
}

fn start(upload_id: &str, backend: Backend) -> Sealed {
    let key =
        ObjectKey::generate(&kek(), "kek", &ctx(upload_id), ObjectKind::Multipart).expect("key");
    let header = key.header().as_bytes().to_vec();
    let upload = Upload::new(key, ctx(upload_id), backend).expect("upload");
    Sealed {
        header,
        parts: Vec::new(),
        upload,
    }
}

fn seal_part(s: &Sealed, number: u32, len: usize) -> (PartInfo, Vec<u8>) {
    let mut w = s.upload.part_writer(number, Vec::new()).expect("part");
    w.write_all(&part_data(number, len)).expect("write");
    let (body, info) = w.finish().expect("finish");
    (info, body)
}

const LAYOUT: &[(u32, usize)] = &[(1, C + 5), (2, 3 * C), (4, 0), (7, 2 * C + 100)];

fn sealed_upload(upload_id: &str, backend: Backend) -> Sealed {
    let mut s = start(upload_id, backend);
    // Seal in reverse order: order of sealing does not matter.
    for &(n, len) in LAYOUT.iter().rev() {
        let p = seal_part(&s, n, len);
        s.parts.push(p);
    }
    s.parts.sort_by_key(|(i, _)| i.number);
    s
}

fn plaintext() -> Vec<u8> {
    LAYOUT
        .iter()
        .flat_map(|&(n, len)| part_data(n, len))
        .collect()
}

fn open(
    s: &Sealed,
    upload_id: &str,
    manifest: &[u8],
    backend: Backend,
) -> Result<MultipartObject, Error> {
    let (h, _) = Header::parse(&s.header)?;
    let key = ObjectKey::unwrap_with(&kek(), h, &ctx(upload_id))?;
    MultipartObject::open(key, ctx(upload_id), manifest, backend)
}

fn stored(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn round_trip_whole_and_ranges_across_parts() {
    for &backend in Backend::all() {
        let s = sealed_upload("u1", backend);
        let infos: Vec<PartInfo> = s.parts.iter().map(|(i, _)| i.clone()).collect();
        let manifest = s.upload.complete(&infos).expect("complete");
        let data = stored(
            &s.parts
                .iter()
                .map(|(_, b)| b.as_slice())
                .collect::<Vec<_>>(),
        );
        assert_eq!(manifest.sealed_len().expect("len"), data.len() as u64);
        let pt = plaintext();
        let obj = open(&s, "u1", manifest.as_bytes(), backend).expect("open");
        assert_eq!(obj.plaintext_len(), pt.len() as u64);
        let mut out = Vec::new();
        assert_eq!(
            obj.copy_to(&data[..], &mut out).expect("copy"),
            pt.len() as u64
        );
        assert!(out == pt);
        let n = pt.len() as u64;
        let p1 = (C + 5) as u64;
        for r in [
            0..n,
            0..0,
            p1 - 3..p1 + 3,                 // crosses parts 1/2
            p1 + 10..p1 + 3 * C as u64 + 7, // crosses 2 / (empty 4) / 7
            n - 1..n,
            5..6,
        ] {
            let mut out = Vec::new();
            obj.read_range(&mut Cursor::new(&data), r.clone(), &mut out)
                .unwrap_or_else(|e| panic!("{r:?}: {e}"));
            assert!(out == pt[ix(r.start)..ix(r.end)], "{r:?}");
        }
    }
}

fn expect_part_mismatch(r: Result<impl std::fmt::Debug, Error>, what: &str) {
    match r {
        Err(Error::Manifest(ManifestError::PartMismatch { .. })) => {}
        other => panic!("{what}: expected a part mismatch, got {other:?}"),
    }
}

#[test]
fn dropped_reordered_and_foreign_parts_fail() {
    let backend = Backend::default();
    let s = sealed_upload("u1", backend);
    let infos: Vec<PartInfo> = s.parts.iter().map(|(i, _)| i.clone()).collect();
    let manifest = s.upload.complete(&infos).expect("complete");
    let obj = open(&s, "u1", manifest.as_bytes(), backend).expect("open");
    let b: Vec<&[u8]> = s.parts.iter().map(|(_, b)| b.as_slice()).collect();
    let pt = plaintext();
    let check = |data: Vec<u8>, what: &str| {
        let mut out = Vec::new();
        let r = obj.copy_to(&data[..], &mut out);
        assert!(r.is_err(), "{what}: opened");
        assert!(pt.starts_with(&out), "{what}: wrong plaintext released");
        let r = obj.read_range(&mut Cursor::new(&data), 0..pt.len() as u64, &mut Vec::new());
        assert!(r.is_err(), "{what}: range opened");
    };
    // Dropped part 2.
    check(stored(&[b[0], b[2], b[3]]), "dropped");
    expect_part_mismatch(
        obj.copy_to(&stored(&[b[0], b[2], b[3]])[..], &mut Vec::new()),
        "dropped",
    );
    // Swapped parts 1 and 2.
    let swapped = stored(&[b[1], b[0], b[2], b[3]]);
    check(swapped.clone(), "swapped");
    expect_part_mismatch(obj.copy_to(&swapped[..], &mut Vec::new()), "swapped");
    // Duplicated part 1 in place of part 2 (same length would be needed; it is caught anyway).
    check(stored(&[b[0], b[0], b[2], b[3]]), "duplicated");
    // A part from another upload of the same object, same part number and length.
    let other = sealed_upload("u2", backend);
    let foreign = stored(&[b[0], &other.parts[1].1, b[2], b[3]]);
    check(foreign.clone(), "foreign");
    expect_part_mismatch(obj.copy_to(&foreign[..], &mut Vec::new()), "foreign");
    // Re-upload of part 2 under the same upload: a fresh salt, so a new commitment; the manifest
    // names the old one.
    let (_, reupload) = seal_part(&s, 2, 3 * C);
    assert_ne!(reupload, b[1].to_vec());
    let replaced = stored(&[b[0], &reupload, b[2], b[3]]);
    expect_part_mismatch(obj.copy_to(&replaced[..], &mut Vec::new()), "re-uploaded");
    // Trailing data and truncation.
    let mut long = stored(&b);
    long.push(0);
    assert!(matches!(
        obj.copy_to(&long[..], &mut Vec::new()),
        Err(Error::TrailingData)
    ));
    assert!(matches!(
        obj.read_range(&mut Cursor::new(&long), 0..1, &mut Vec::new()),
        Err(Error::TrailingData)
    ));
    let all = stored(&b);
    assert!(matches!(
        obj.read_range(
            &mut Cursor::new(&all[..all.len() - 1]),
            0..1,
            &mut Vec::new()
        ),
        Err(Error::Truncated)
    ));
    check(all[..all.len() - 1].to_vec(), "truncated");
}

#[test]
fn complete_rejects_foreign_and_moved_parts() {
    let backend = Backend::default();
    let s = sealed_upload("u1", backend);
    let other = sealed_upload("u2", backend);
    let mut infos: Vec<PartInfo> = s.parts.iter().map(|(i, _)| i.clone()).collect();
    infos[1] = other.parts[1].0.clone();
    assert!(matches!(
        s.upload.complete(&infos),
        Err(Error::Manifest(ManifestError::ForeignPart { part: 2 }))
    ));
    // Part 1's body presented as part 3.
    let mut moved = s.parts[0].0.clone();
    moved.number = 3;
    assert!(matches!(
        s.upload.complete(&[moved]),
        Err(Error::Manifest(ManifestError::ForeignPart { part: 3 }))
    ));
    let infos: Vec<PartInfo> = s.parts.iter().map(|(i, _)| i.clone()).collect();
    let mut dup = infos.clone();
    dup.push(infos[0].clone());
    assert!(matches!(
        s.upload.complete(&dup),
        Err(Error::Manifest(ManifestError::PartNumbers))
    ));
    assert!(s.upload.complete(&[]).is_err());
    assert!(s.upload.part_writer(0, Vec::new()).is_err());
    assert!(s.upload.part_writer(10_001, Vec::new()).is_err());
}

/// An object that grows by appends: each append is the next part, and `extend` adds it to the
/// manifest completed so far. The result is byte for byte what `complete` gives for all the
/// parts, so an appended object reads as any multipart object; a prior manifest that does not
/// authenticate, a part number that does not follow, or another upload's part is refused.
#[test]
fn extend_adds_parts_after_an_authenticated_manifest() {
    let backend = Backend::default();
    let s = sealed_upload("u1", backend);
    let infos: Vec<PartInfo> = s.parts.iter().map(|(i, _)| i.clone()).collect();
    let mut grown = s.upload.complete(&infos[..1]).expect("first part");
    for info in &infos[1..] {
        grown = s
            .upload
            .extend(grown.as_bytes(), std::slice::from_ref(info))
            .expect("extend");
    }
    let whole = s.upload.complete(&infos).expect("complete");
    assert_eq!(grown.as_bytes(), whole.as_bytes());
    let bodies: Vec<&[u8]> = s.parts.iter().map(|(_, b)| b.as_slice()).collect();
    let m = open(&s, "u1", grown.as_bytes(), backend).expect("open");
    let mut out = Vec::new();
    m.copy_to(Cursor::new(stored(&bodies)), &mut out)
        .expect("read");
    assert_eq!(out, plaintext());

    let first = s.upload.complete(&infos[..2]).expect("two parts");
    let mut forged = first.as_bytes().to_vec();
    forged[12] ^= 1;
    assert!(matches!(
        s.upload.extend(&forged, &infos[2..]),
        Err(Error::Manifest(ManifestError::Authentication))
    ));
    for not_after in [&infos[0], &infos[1]] {
        assert!(matches!(
            s.upload
                .extend(first.as_bytes(), std::slice::from_ref(not_after)),
            Err(Error::Manifest(ManifestError::PartNumbers))
        ));
    }
    let other = sealed_upload("u2", backend);
    assert!(matches!(
        s.upload.extend(
            first.as_bytes(),
            &other.parts[2..3]
                .iter()
                .map(|(i, _)| i.clone())
                .collect::<Vec<_>>()
        ),
        Err(Error::Manifest(ManifestError::ForeignPart { part: 4 }))
    ));
    let om = other
        .upload
        .complete(
            &other.parts[..2]
                .iter()
                .map(|(i, _)| i.clone())
                .collect::<Vec<_>>(),
        )
        .expect("other");
    assert!(matches!(
        s.upload.extend(om.as_bytes(), &infos[2..]),
        Err(Error::Manifest(ManifestError::Authentication))
    ));
}

#[test]
fn manifest_is_authenticated() {
    let backend = Backend::default();
    let s = sealed_upload("u1", backend);
    let infos: Vec<PartInfo> = s.parts.iter().map(|(i, _)| i.clone()).collect();
    let manifest = s.upload.complete(&infos).expect("complete");
    let m = manifest.as_bytes();
    for bit in 0..m.len() * 8 {
        let mut t = m.to_vec();
        t[bit / 8] ^= 1 << (bit % 8);
        let r = open(&s, "u1", &t, backend);
        assert!(
            matches!(r, Err(Error::Manifest(ManifestError::Authentication))),
            "bit {bit}: {r:?}"
        );
    }
    // A manifest listing fewer parts (a dropped part) needs a new tag.
    let fewer = s.upload.complete(&infos[..2]).expect("complete");
    let mut spliced = fewer.as_bytes()[..fewer.as_bytes().len() - 32].to_vec();
    spliced.extend_from_slice(&m[m.len() - 32..]);
    assert!(open(&s, "u1", &spliced, backend).is_err());
    // Another upload's manifest, or another context.
    let other = sealed_upload("u2", backend);
    let oinfos: Vec<PartInfo> = other.parts.iter().map(|(i, _)| i.clone()).collect();
    let om = other.upload.complete(&oinfos).expect("complete");
    assert!(matches!(
        open(&s, "u1", om.as_bytes(), backend),
        Err(Error::Manifest(ManifestError::Authentication))
    ));
    let (h, _) = Header::parse(&s.header).expect("header");
    let key = ObjectKey::unwrap_with(&kek(), h, &ctx("u1")).expect("key");
    assert!(matches!(
        MultipartObject::open(key, ctx("u9"), m, backend),
        Err(Error::Manifest(ManifestError::Authentication))
    ));
    // A single-object header cannot start an upload, nor open one.
    let single = ObjectKey::generate(&kek(), "kek", &ctx("u1"), ObjectKind::Single).expect("key");
    assert!(Upload::new(single, ctx("u1"), backend).is_err());
}

#[test]
fn bit_flips_in_stored_parts_fail() {
    for &backend in Backend::all() {
        let s = sealed_upload("u1", backend);
        let infos: Vec<PartInfo> = s.parts.iter().map(|(i, _)| i.clone()).collect();
        let manifest = s.upload.complete(&infos).expect("complete");
        let obj = open(&s, "u1", manifest.as_bytes(), backend).expect("open");
        let data = stored(
            &s.parts
                .iter()
                .map(|(_, b)| b.as_slice())
                .collect::<Vec<_>>(),
        );
        let pt = plaintext();
        // A fifth of the bits of each salt and commitment, and a spread through the chunks.
        let mut bits = Vec::new();
        let mut at = 0;
        for (_, body) in &s.parts {
            bits.extend((at * 8..(at + 56) * 8).step_by(5));
            at += body.len();
        }
        bits.extend((0..data.len() * 8).step_by(7919));
        for bit in bits {
            let mut t = data.clone();
            t[bit / 8] ^= 1 << (bit % 8);
            let mut out = Vec::new();
            assert!(obj.copy_to(&t[..], &mut out).is_err(), "bit {bit}: opened");
            assert!(pt.starts_with(&out), "bit {bit}: wrong plaintext released");
            let mut out = Vec::new();
            let r = obj.read_range(&mut Cursor::new(&t), 0..pt.len() as u64, &mut out);
            assert!(r.is_err(), "bit {bit}: range opened");
            assert!(
                pt.starts_with(&out),
                "bit {bit}: range released wrong plaintext"
            );
        }
    }
}

#[test]
fn reader_streams_across_parts_and_fails_sticky() {
    use std::io::Read;
    let backend = Backend::default();
    let s = sealed_upload("u1", backend);
    let infos: Vec<PartInfo> = s.parts.iter().map(|(i, _)| i.clone()).collect();
    let manifest = s.upload.complete(&infos).expect("complete");
    let obj = open(&s, "u1", manifest.as_bytes(), backend).expect("open");
    let data = stored(
        &s.parts
            .iter()
            .map(|(_, b)| b.as_slice())
            .collect::<Vec<_>>(),
    );
    let pt = plaintext();
    for buf_len in [1usize, 1000, C, 3 * C] {
        let mut r = obj.reader(&data[..]);
        let mut out = Vec::new();
        let mut buf = vec![0u8; buf_len];
        loop {
            let n = r.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert!(out == pt, "buffer {buf_len}");
    }
    // Swapped parts, a flipped bit in the last part, trailing data: errors, sticky, and only
    // correct plaintext before them.
    let b: Vec<&[u8]> = s.parts.iter().map(|(_, b)| b.as_slice()).collect();
    let mut flipped = data.clone();
    let at = data.len() - 20;
    flipped[at] ^= 1;
    let mut trailing = data.clone();
    trailing.push(7);
    for (what, t) in [
        ("swapped", stored(&[b[1], b[0], b[2], b[3]])),
        ("flipped", flipped),
        ("trailing", trailing),
        ("truncated", data[..data.len() - 1].to_vec()),
    ] {
        let mut r = obj.reader(&t[..]);
        let mut out = Vec::new();
        let err = r.read_to_end(&mut out).expect_err(what);
        assert!(pt.starts_with(&out), "{what}: wrong plaintext");
        let again = r.read(&mut [0u8; 8]).expect_err(what);
        assert_eq!(err.to_string(), again.to_string(), "{what}: not sticky");
        if what == "trailing" {
            assert!(matches!(Error::from_io(err), Error::TrailingData));
        }
    }
}

/// A `u64` offset as an index into an in-memory buffer.
fn ix(x: u64) -> usize {
    usize::try_from(x).expect("offset fits usize")
}
