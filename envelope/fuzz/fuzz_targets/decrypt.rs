//! The decryptors on arbitrary input: whole objects under the known-answer KEK (seed the corpus
//! with tests/kat/*.kbx), and bodies that start with a valid salt and commitment followed by
//! arbitrary chunks, through the streaming and the range reader. Nothing may panic, and nothing
//! but an exact KAT may decrypt.
#![no_main]
use envelope::chunked::{BodyReader, BodyWriter, read_body_range};
use envelope::{Backend, LocalKek, ObjectContext};
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let kek_bytes: Vec<u8> = (0u8..32).collect();
    let kek = LocalKek::aes_kw("kat-kek", &kek_bytes).expect("kek");
    let ctx = ObjectContext::from_pairs([
        ("tenant", "kat-tenant"),
        ("bucket", "kat-bucket"),
        ("object-key", "multi-chunk-kw"),
    ])
    .expect("ctx");
    let mut out = Vec::new();
    if envelope::open(&kek, &ctx, data, &mut out, Backend::default()).is_ok() {
        // The only object under this KEK and context: the known-answer file.
        assert_eq!(data, &include_bytes!("../../tests/kat/multi-chunk-kw.kbx")[..]);
    }
    let len = data.len() as u64;
    let _ = envelope::open_range(
        &kek,
        &ctx,
        &mut Cursor::new(data),
        len / 3..len / 2,
        &mut Vec::new(),
        Backend::default(),
    );

    // A valid prefix for a fixed key, then the fuzzer's bytes as chunks.
    let key = [7u8; 32];
    let prefix = BodyWriter::with_salt(Vec::new(), &key, &[1u8; 24], b"fuzz", Backend::default())
        .and_then(|w| w.finish())
        .expect("prefix");
    let mut body = prefix[..56].to_vec();
    body.extend_from_slice(data);
    if let Ok(mut r) = BodyReader::new(&body[..], &key, b"fuzz", Backend::default()) {
        let _ = r.copy_to(&mut Vec::new());
    }
    let b = body.len() as u64;
    let _ = read_body_range(
        &mut Cursor::new(&body),
        0,
        &key,
        b"fuzz",
        Backend::default(),
        b / 4..b / 3,
        &mut Vec::new(),
    );
});
