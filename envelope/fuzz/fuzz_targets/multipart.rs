//! Multipart reading on arbitrary input (`envelope::fuzzing::multipart`).
//! `tests/fuzz_corpus.rs` replays the committed corpus through the same function on stable.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| envelope::fuzzing::multipart(data));
