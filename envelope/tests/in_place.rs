//! `seal_in_place` / `open_in_place`: the same bytes as the streaming adapters (known-answer files
//! included), and nothing released from an object that does not authenticate whole.

use envelope::chunked::{CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE, PREFIX_SIZE, SALT_SIZE};
use envelope::{
    Backend, DataKey, Encryptor, Error, LocalKek, ObjectContext, ObjectKey, ObjectKind, WrapScheme,
    WrappedKey,
};
use std::io::Write;
use std::path::PathBuf;

fn kek() -> LocalKek {
    LocalKek::aes_kw("kek-1", &[0x42; 32]).expect("kek")
}

fn ctx(object: &str) -> ObjectContext {
    ObjectContext::from_pairs([("tenant", "t1"), ("bucket", "b"), ("object-key", object)])
        .expect("ctx")
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + i / 7).to_le_bytes()[0]).collect()
}

fn fixed_key() -> ObjectKey {
    let dk = [0x11u8; 32];
    let wrapped = WrappedKey {
        scheme: WrapScheme::AesKw,
        bytes: kek().wrap(WrapScheme::AesKw, &dk).expect("wrap"),
    };
    ObjectKey::new(
        ObjectKind::Single,
        DataKey::from_slice(&dk).expect("dk"),
        "kek-1",
        wrapped,
    )
    .expect("key")
}

fn streamed(key: &ObjectKey, pt: &[u8], salt: &[u8; SALT_SIZE], backend: Backend) -> Vec<u8> {
    let mut enc = Encryptor::with_salt(key, &ctx("o"), Vec::new(), salt, backend).expect("enc");
    enc.write_all(pt).expect("write");
    enc.finish().expect("finish")
}

const SIZES: &[usize] = &[
    0,
    1,
    CHUNK_SIZE - 1,
    CHUNK_SIZE,
    CHUNK_SIZE + 1,
    2 * CHUNK_SIZE,
    3 * CHUNK_SIZE + 17,
    100_000,
];

#[test]
fn seal_in_place_writes_the_streamed_bytes() {
    let key = fixed_key();
    let salt = [0xA5u8; SALT_SIZE];
    for &backend in Backend::all() {
        for &n in SIZES {
            let pt = data(n);
            let want = streamed(&key, &pt, &salt, backend);
            let mut buf = pt.clone();
            envelope::object::seal_in_place_with_salt(&key, &ctx("o"), &mut buf, &salt, backend)
                .expect("seal in place");
            assert!(buf == want, "{backend:?} n={n}: bytes differ");
            let hl = key.header().len() as u64;
            assert_eq!(
                envelope::sealed_len(hl, n as u64).expect("len"),
                buf.len() as u64
            );
        }
    }
}

#[test]
fn round_trip_every_backend_pair() {
    for &sealer in Backend::all() {
        for &opener in Backend::all() {
            for &n in SIZES {
                let pt = data(n);
                let key = ObjectKey::generate(&kek(), "kek-1", &ctx("o"), ObjectKind::Single)
                    .expect("key");
                let mut buf = pt.clone();
                envelope::seal_in_place(&key, &ctx("o"), &mut buf, sealer).expect("seal");
                // The streaming reader opens it.
                let mut out = Vec::new();
                envelope::open(&kek(), &ctx("o"), &buf[..], &mut out, opener).expect("open");
                assert!(out == pt, "{sealer:?}/{opener:?} n={n}: open");
                // And so does open_in_place.
                envelope::open_in_place(&kek(), &ctx("o"), &mut buf, opener)
                    .expect("open in place");
                assert!(
                    buf == pt,
                    "{sealed:?}/{opener:?} n={n}: open_in_place",
                    sealed = sealer
                );
            }
        }
    }
}

/// Open `sealed` in place and require the failure `check` with `buf` zeroed and empty, or left
/// as it was for failures before any chunk.
fn open_fails(sealed: &[u8], context: &ObjectContext, backend: Backend) -> Error {
    let mut buf = sealed.to_vec();
    let err = envelope::open_in_place(&kek(), context, &mut buf, backend).expect_err("must fail");
    assert!(
        buf.is_empty() || buf == sealed,
        "{backend:?}: buffer after failure ({err:?}) holds other bytes"
    );
    err
}

#[test]
fn tampering_is_detected_and_nothing_is_released() {
    for &backend in Backend::all() {
        for &n in SIZES {
            let pt = data(n);
            let key =
                ObjectKey::generate(&kek(), "kek-1", &ctx("o"), ObjectKind::Single).expect("key");
            let mut sealed = pt.clone();
            envelope::seal_in_place(&key, &ctx("o"), &mut sealed, backend).expect("seal");
            let hl = key.header().len();
            let chunks = n / CHUNK_SIZE + 1;

            // A bit flip in the header, the salt, the commitment, and in every chunk (first byte,
            // last ciphertext byte, last tag byte).
            let mut spots = vec![0, hl - 1, hl, hl + PREFIX_SIZE - 1];
            for k in 0..chunks {
                let start = hl + PREFIX_SIZE + k * ENCRYPTED_CHUNK_SIZE;
                let end = (start + ENCRYPTED_CHUNK_SIZE).min(sealed.len());
                spots.extend([start, end - 17, end - 1]);
            }
            for &i in &spots {
                if i >= sealed.len() {
                    continue;
                }
                let mut bad = sealed.clone();
                bad[i] ^= 0x04;
                let err = open_fails(&bad, &ctx("o"), backend);
                if i >= hl + PREFIX_SIZE {
                    let k = ((i - hl - PREFIX_SIZE) / ENCRYPTED_CHUNK_SIZE) as u64;
                    let index = match err {
                        Error::TamperedChunk { index } | Error::BadFinalChunk { index } => index,
                        _ => panic!("{backend:?} n={n} flip at {i}: {err:?}"),
                    };
                    assert_eq!(index, k, "{backend:?} n={n} flip at {i}");
                }
            }

            // Truncation at every chunk boundary and inside chunks, and appended bytes.
            let body = hl + PREFIX_SIZE;
            let mut cuts = vec![0, hl, body, body + 15];
            for k in 1..=chunks {
                let b = body + k * ENCRYPTED_CHUNK_SIZE;
                cuts.extend([b - 1, b, b + 1, b - 100]);
            }
            for &c in &cuts {
                if c >= sealed.len() {
                    continue;
                }
                open_fails(&sealed[..c], &ctx("o"), backend);
            }
            let mut longer = sealed.clone();
            longer.push(0);
            open_fails(&longer, &ctx("o"), backend);
            let mut longer = sealed.clone();
            longer.extend_from_slice(&[0u8; ENCRYPTED_CHUNK_SIZE]);
            open_fails(&longer, &ctx("o"), backend);

            // Chunk swap.
            if chunks >= 3 {
                let mut bad = sealed.clone();
                let a = body..body + ENCRYPTED_CHUNK_SIZE;
                let b = body + ENCRYPTED_CHUNK_SIZE..body + 2 * ENCRYPTED_CHUNK_SIZE;
                let first = bad[a.clone()].to_vec();
                bad.copy_within(b.clone(), a.start);
                bad[b].copy_from_slice(&first);
                let err = open_fails(&bad, &ctx("o"), backend);
                assert!(matches!(err, Error::TamperedChunk { index: 0 }), "{err:?}");
            }

            // Wrong context: fails at the commitment, before any chunk, buffer untouched.
            let mut buf = sealed.clone();
            let err = envelope::open_in_place(&kek(), &ctx("other"), &mut buf, backend)
                .expect_err("wrong context");
            assert!(matches!(err, Error::Commitment), "{err:?}");
            assert!(buf == sealed);

            // A key whose header is not the buffer's.
            let other =
                ObjectKey::generate(&kek(), "kek-1", &ctx("o"), ObjectKind::Single).expect("key");
            let mut buf = sealed.clone();
            envelope::open_in_place_with_key(&other, &ctx("o"), &mut buf, backend)
                .expect_err("other header");
            assert!(buf == sealed);
        }
    }
}

/// The known-answer files under `tests/kat/` (see `tests/kat.rs`) open in place too.
#[test]
fn known_answer_files_open_in_place() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kat");
    let kek_bytes: Vec<u8> = (0u8..32).collect();
    for (name, len, scheme) in [
        ("empty-kw", 0usize, WrapScheme::AesKw),
        ("short-kw", 5, WrapScheme::AesKw),
        ("one-chunk-kwp", 16384, WrapScheme::AesKwp),
        ("multi-chunk-kw", 40000, WrapScheme::AesKw),
    ] {
        let kek = match scheme {
            WrapScheme::AesKwp => LocalKek::aes_kwp("kat-kek", &kek_bytes),
            _ => LocalKek::aes_kw("kat-kek", &kek_bytes),
        }
        .expect("kek");
        let context = ObjectContext::from_pairs([
            ("tenant", "kat-tenant"),
            ("bucket", "kat-bucket"),
            ("object-key", name),
        ])
        .expect("context");
        let stored = std::fs::read(dir.join(format!("{name}.kbx"))).expect("kat file");
        let pt: Vec<u8> = (0..len)
            .map(|i| ((i * 7 + 3) % 251).to_le_bytes()[0])
            .collect();
        for &backend in Backend::all() {
            let mut buf = stored.clone();
            envelope::open_in_place(&kek, &context, &mut buf, backend)
                .unwrap_or_else(|e| panic!("{name} {backend:?}: {e}"));
            assert!(buf == pt, "{name} {backend:?}: plaintext differs");
            // Re-sealed in place with the file's data key and salt: the same bytes.
            let dk = [0xD0u8 ^ len.to_le_bytes()[0]; 32];
            let salt = [0x5Au8 ^ name.len().to_le_bytes()[0]; SALT_SIZE];
            let key = ObjectKey::new(
                ObjectKind::Single,
                DataKey::from_slice(&dk).expect("dk"),
                "kat-kek",
                WrappedKey {
                    scheme,
                    bytes: kek.wrap(scheme, &dk).expect("wrap"),
                },
            )
            .expect("key");
            envelope::object::seal_in_place_with_salt(&key, &context, &mut buf, &salt, backend)
                .expect("seal in place");
            assert!(buf == stored, "{name} {backend:?}: re-sealed bytes differ");
        }
    }
}

/// A reader that hands out at most `step` bytes per call.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(out.len()).min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// The `Read` path with caller buffers of at least one chunk (decrypted in the caller's buffer):
/// final chunks whose tag straddles the chunk boundary, sources that return short reads, and a
/// failure leaves no plaintext of the failing chunk in the caller's buffer.
#[test]
fn read_into_large_buffers() {
    use std::io::Read;
    for &backend in Backend::all() {
        for n in [
            0,
            5,
            CHUNK_SIZE - 16,
            CHUNK_SIZE - 15,
            CHUNK_SIZE - 1,
            CHUNK_SIZE,
            2 * CHUNK_SIZE - 3,
            3 * CHUNK_SIZE + 100,
        ] {
            let pt = data(n);
            let mut sealed = Vec::new();
            envelope::seal(&kek(), "kek-1", &ctx("o"), &pt[..], &mut sealed, backend)
                .expect("seal");
            for step in [usize::MAX, 1000, 7] {
                for cap in [CHUNK_SIZE, CHUNK_SIZE + 20, 3 * CHUNK_SIZE] {
                    let src = Trickle {
                        data: &sealed,
                        step,
                    };
                    let mut dec =
                        envelope::Decryptor::new(&kek(), &ctx("o"), src, backend).expect("dec");
                    let mut got = Vec::new();
                    let mut buf = vec![0u8; cap];
                    loop {
                        let k = dec.read(&mut buf).expect("read");
                        if k == 0 {
                            break;
                        }
                        got.extend_from_slice(&buf[..k]);
                    }
                    assert!(got == pt, "{backend:?} n={n} step={step} cap={cap}");
                }
            }
            // Tamper with the last chunk: the read that reaches it fails and leaves zeros.
            let mut bad = sealed.clone();
            let i = bad.len() - 1;
            bad[i] ^= 1;
            let mut dec =
                envelope::Decryptor::new(&kek(), &ctx("o"), &bad[..], backend).expect("dec");
            let mut buf = vec![0xEEu8; CHUNK_SIZE];
            let err = loop {
                buf.fill(0xEE);
                match dec.read(&mut buf) {
                    Ok(0) => panic!("{backend:?} n={n}: tampered object opened"),
                    Ok(_) => {}
                    Err(e) => break e,
                }
            };
            assert!(
                buf.iter().all(|&b| b == 0) || buf.iter().all(|&b| b == 0xEE),
                "{backend:?} n={n}: buffer holds bytes after {err}"
            );
            assert!(dec.read(&mut buf).is_err(), "failure is sticky");
        }
    }
}
