//! Header and manifest parsers on arbitrary bytes: no panic, and an accepted header re-encodes to
//! exactly the bytes it was parsed from.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((h, n)) = envelope::Header::parse(data) {
        assert_eq!(n, h.len());
        assert_eq!(&data[..n], h.as_bytes());
    }
    if let Ok(m) = envelope::multipart::Manifest::parse(data) {
        assert_eq!(m.as_bytes(), data);
    }
});
