//! The bodies of the fuzz targets (feature `test-support`): `fuzz/fuzz_targets/*.rs` run them
//! under libFuzzer, and `tests/fuzz_corpus.rs` replays every committed corpus file through them on
//! stable, so that every input the fuzzer ever kept stays covered. Each panics on a finding.

use crate::chunked::{BodyReader, BodyWriter, PREFIX_SIZE, read_body_range};
use crate::multipart::{Manifest, MultipartObject};
use crate::{Backend, Header, LocalKek, ObjectContext, ObjectKey};
use std::io::{Cursor, Read};

const KAT_OBJECT: &[u8] = include_bytes!("../tests/kat/multi-chunk-kw.kbx");
const KAT_HEADER: &[u8] = include_bytes!("../tests/kat/multipart.header");
const KAT_MANIFEST: &[u8] = include_bytes!("../tests/kat/multipart.manifest");
const KAT_DATA: &[u8] = include_bytes!("../tests/kat/multipart.data");

fn kat_kek() -> LocalKek {
    let kek_bytes: Vec<u8> = (0u8..32).collect();
    LocalKek::aes_kw("kat-kek", &kek_bytes).expect("kek")
}

fn kat_context(object_key: &str) -> ObjectContext {
    ObjectContext::from_pairs([
        ("tenant", "kat-tenant"),
        ("bucket", "kat-bucket"),
        ("object-key", object_key),
    ])
    .expect("ctx")
}

fn len64(data: &[u8]) -> u64 {
    u64::try_from(data.len()).expect("length fits u64")
}

/// Header and manifest parsers on arbitrary bytes: no panic, and an accepted header or manifest
/// re-encodes to exactly the bytes it was parsed from.
pub fn header(data: &[u8]) {
    if let Ok((h, n)) = Header::parse(data) {
        assert_eq!(n, h.len());
        assert_eq!(&data[..n], h.as_bytes());
    }
    if let Ok(m) = Manifest::parse(data) {
        assert_eq!(m.as_bytes(), data);
    }
}

/// The decryptors on arbitrary input: whole objects under the known-answer KEK (the corpus is
/// seeded with tests/kat/*.kbx), and bodies that start with a valid salt and commitment followed
/// by arbitrary chunks, through the streaming and the range reader. Nothing may panic, and
/// nothing but the exact KAT may decrypt.
pub fn decrypt(data: &[u8]) {
    let kek = kat_kek();
    let ctx = kat_context("multi-chunk-kw");
    let mut out = Vec::new();
    if crate::open(&kek, &ctx, data, &mut out, Backend::default()).is_ok() {
        // The only object under this KEK and context: the known-answer file.
        assert_eq!(data, KAT_OBJECT);
    }
    let len = len64(data);
    let _ = crate::open_range(
        &kek,
        &ctx,
        &mut Cursor::new(data),
        len / 3..len / 2,
        &mut Vec::new(),
        Backend::default(),
    );

    // A valid prefix for a fixed key, then the fuzzer's bytes as chunks.
    let key = [7u8; 32];
    let prefix = BodyWriter::salted(Vec::new(), &key, &[1u8; 24], b"fuzz", Backend::default())
        .and_then(|w| w.finish())
        .expect("prefix");
    let mut body = prefix[..PREFIX_SIZE].to_vec();
    body.extend_from_slice(data);
    if let Ok(mut r) = BodyReader::new(&body[..], &key, b"fuzz", Backend::default()) {
        let _ = r.copy_to(&mut Vec::new());
    }
    let b = len64(&body);
    let _ = read_body_range(
        &mut Cursor::new(&body),
        0,
        &key,
        b"fuzz",
        Backend::default(),
        b / 4..b / 3,
        &mut Vec::new(),
    );
}

/// Multipart reading on arbitrary input: the manifest parser on the fuzzer's bytes, and the
/// known-answer upload (tests/kat/multipart.*) opened whole (`copy_to`, `reader`) and by a range
/// over the fuzzer's bytes as stored part bodies. Nothing may panic, and nothing but the exact
/// stored bytes of the KAT may decrypt whole.
pub fn multipart(data: &[u8]) {
    let _ = Manifest::parse(data);

    let kek = kat_kek();
    let ctx = kat_context("multipart");
    let header = Header::read_from(&mut &KAT_HEADER[..]).expect("KAT header");
    let key = ObjectKey::unwrap_with(&kek, header, &ctx).expect("KAT key");
    let object =
        MultipartObject::open(key, ctx, KAT_MANIFEST, Backend::default()).expect("KAT manifest");

    let mut out = Vec::new();
    if object.copy_to(data, &mut out).is_ok() {
        assert_eq!(data, KAT_DATA, "only the stored KAT bodies open");
    }
    let mut streamed = Vec::new();
    if object.reader(data).read_to_end(&mut streamed).is_ok() {
        assert_eq!(
            data, KAT_DATA,
            "only the stored KAT bodies open as a stream"
        );
    }
    let len = object.plaintext_len();
    let (a, b) = match data {
        [x, y, ..] => (u64::from(*x) * len / 255, u64::from(*y) * len / 255),
        _ => (0, len),
    };
    let _ = object.read_range(&mut Cursor::new(data), a.min(b)..a.max(b), &mut Vec::new());
}
