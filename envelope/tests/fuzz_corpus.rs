//! Every committed fuzz corpus file (`fuzz/corpus/{header,decrypt,multipart}/`) through the code
//! its fuzz target runs (`envelope::fuzzing`), on stable and in every `cargo test`, so that every
//! input the fuzzer ever kept, crashes included, stays covered.
#![cfg(feature = "test-support")]

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{target}: empty corpus");
    for path in &files {
        let data = std::fs::read(path).expect("corpus file");
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target}: {} fails", path.display());
    }
}

#[test]
fn header_corpus() {
    replay("header", envelope::fuzzing::header);
}

#[test]
fn decrypt_corpus() {
    replay("decrypt", envelope::fuzzing::decrypt);
}

#[test]
fn multipart_corpus() {
    replay("multipart", envelope::fuzzing::multipart);
}
