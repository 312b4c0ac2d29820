//! Multipart reading on arbitrary input: the manifest parser on the fuzzer's bytes, and the
//! known-answer upload (tests/kat/multipart.*) opened whole (`copy_to`, `reader`) and by a range
//! over the fuzzer's bytes as stored part bodies. Nothing may panic, and nothing but the exact
//! stored bytes of the KAT may decrypt whole.
#![no_main]
use envelope::multipart::{Manifest, MultipartObject};
use envelope::{Backend, Header, LocalKek, ObjectContext, ObjectKey};
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;

const HEADER: &[u8] = include_bytes!("../../tests/kat/multipart.header");
const MANIFEST: &[u8] = include_bytes!("../../tests/kat/multipart.manifest");
const DATA: &[u8] = include_bytes!("../../tests/kat/multipart.data");

fuzz_target!(|data: &[u8]| {
    let _ = Manifest::parse(data);

    let kek_bytes: Vec<u8> = (0u8..32).collect();
    let kek = LocalKek::aes_kw("kat-kek", &kek_bytes).expect("kek");
    let ctx = ObjectContext::from_pairs([
        ("tenant", "kat-tenant"),
        ("bucket", "kat-bucket"),
        ("object-key", "multipart"),
    ])
    .expect("ctx");
    let header = Header::read_from(&mut &HEADER[..]).expect("KAT header");
    let key = ObjectKey::unwrap_with(&kek, header, &ctx).expect("KAT key");
    let object =
        MultipartObject::open(key, ctx, MANIFEST, Backend::default()).expect("KAT manifest");

    let mut out = Vec::new();
    if object.copy_to(data, &mut out).is_ok() {
        assert_eq!(data, DATA, "only the stored KAT bodies open");
    }
    let mut streamed = Vec::new();
    if std::io::Read::read_to_end(&mut object.reader(data), &mut streamed).is_ok() {
        assert_eq!(data, DATA, "only the stored KAT bodies open as a stream");
    }
    let len = object.plaintext_len();
    let (a, b) = match data {
        [x, y, ..] => (u64::from(*x) * len / 255, u64::from(*y) * len / 255),
        _ => (0, len),
    };
    let _ = object.read_range(&mut Cursor::new(data), a.min(b)..a.max(b), &mut Vec::new());
});
