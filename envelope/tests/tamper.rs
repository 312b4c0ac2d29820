//! Tamper suite: every modification of a sealed object must fail to open, and no call may return
//! a byte of wrong plaintext (a streaming reader may release authenticated chunks before it fails,
//! so the output of a failed call must be a prefix of the true plaintext).

use envelope::chunked::{CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE, PREFIX_SIZE};
use envelope::{Backend, Error, Header, LocalKek, ObjectContext, ObjectKey, ObjectKind};
use std::io::{Cursor, Write};

const C: usize = CHUNK_SIZE;
const E: usize = ENCRYPTED_CHUNK_SIZE;

fn kek() -> LocalKek {
    LocalKek::aes_kw("kek-1", &[0x42; 32]).expect("kek")
}

fn ctx(obj: &str) -> ObjectContext {
    ObjectContext::from_pairs([("tenant", "t"), ("bucket", "b"), ("object-key", obj)]).expect("ctx")
}

fn data(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| {
            (i.to_le_bytes()[0]).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8).to_le_bytes()[0]
        })
        .collect()
}

fn seal(pt: &[u8], obj: &str, backend: Backend) -> Vec<u8> {
    let mut out = Vec::new();
    envelope::seal(&kek(), "kek-1", &ctx(obj), pt, &mut out, backend).expect("seal");
    out
}

/// The sizes of the issue: empty, one byte, exactly one chunk, one chunk plus one, many chunks.
const SIZES: &[usize] = &[0, 1, C, C + 1, 4 * C + 777];

/// Open `sealed` as object `obj` in full (must fail) and over a few ranges (may succeed only with
/// the right bytes); every output must be a prefix of the expected plaintext.
fn assert_rejected(sealed: &[u8], pt: &[u8], obj: &str, what: &str, backend: Backend) {
    let mut out = Vec::new();
    let r = envelope::open(&kek(), &ctx(obj), sealed, &mut out, backend);
    assert!(r.is_err(), "{what}: opened");
    assert!(pt.starts_with(&out), "{what}: released wrong plaintext");
    // The `Read` path with a buffer larger than a chunk (decrypts into the caller's buffer).
    if let Ok(mut dec) = envelope::Decryptor::new(&kek(), &ctx(obj), sealed, backend) {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 3 * C];
        let failed = loop {
            match std::io::Read::read(&mut dec, &mut buf) {
                Ok(0) => break false,
                Ok(k) => got.extend_from_slice(&buf[..k]),
                Err(_) => break true,
            }
        };
        assert!(failed, "{what}: Read path opened");
        assert!(
            pt.starts_with(&got),
            "{what}: Read path released wrong plaintext"
        );
    }
    let n = pt.len() as u64;
    for range in [0..n, n / 2..n] {
        let mut out = Vec::new();
        let r = envelope::open_range(
            &kek(),
            &ctx(obj),
            &mut Cursor::new(sealed),
            range.clone(),
            &mut out,
            backend,
        );
        let want = &pt[ix(range.start)..ix(range.end)];
        match r {
            // A range read authenticates the header, the commitment, the final chunk and the
            // chunks it reads: a change elsewhere may go unnoticed, but the bytes must be right.
            Ok(_) => assert!(out == want, "{what}: range {range:?} returned wrong bytes"),
            Err(_) => assert!(
                want.starts_with(&out),
                "{what}: range {range:?} wrong bytes"
            ),
        }
    }
    // The full range always covers every chunk, so it must fail.
    let r = envelope::open_range(
        &kek(),
        &ctx(obj),
        &mut Cursor::new(sealed),
        0..n,
        &mut Vec::new(),
        backend,
    );
    assert!(r.is_err(), "{what}: full range opened");
}

/// Deterministic sample of `k` positions below `n` (xorshift).
fn sample(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut x = seed | 1;
    (0..k)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ix(x % n as u64)
        })
        .collect()
}

#[test]
fn every_bit_flip_fails() {
    for &backend in Backend::all() {
        for &n in SIZES {
            let pt = data(n, 1);
            let sealed = seal(&pt, "o", backend);
            let (_, hl) = Header::parse(&sealed).expect("header");
            // Every bit of the header, salt and commitment; then every bit of each chunk's tag and
            // of its first and last bytes; then a sample of the rest.
            let mut bits: Vec<usize> = (0..(hl + PREFIX_SIZE) * 8).collect();
            let mut chunk_start = hl + PREFIX_SIZE;
            while chunk_start < sealed.len() {
                let end = (chunk_start + E).min(sealed.len());
                for byte in [chunk_start, end - 17, end - 1] {
                    bits.extend(byte * 8..byte * 8 + 8);
                }
                chunk_start = end;
            }
            bits.extend(sample(sealed.len() * 8, 200, n as u64 + 7));
            for bit in bits {
                let mut t = sealed.clone();
                t[bit / 8] ^= 1 << (bit % 8);
                assert_rejected(&t, &pt, "o", &format!("n={n} bit {bit}"), backend);
            }
        }
    }
}

#[test]
fn every_truncation_fails() {
    for &backend in Backend::all() {
        for &n in SIZES {
            let pt = data(n, 2);
            let sealed = seal(&pt, "o", backend);
            let (_, hl) = Header::parse(&sealed).expect("header");
            let body = hl + PREFIX_SIZE;
            // Every cut inside the header and prefix, at and around every chunk boundary, and
            // inside chunks.
            let mut cuts: Vec<usize> = (0..body).collect();
            let mut b = body;
            while b <= sealed.len() {
                for d in [0usize, 1, 15, 16, 17, 100] {
                    cuts.push(b.saturating_sub(d));
                    cuts.push(b + d);
                }
                cuts.push(b + E / 2);
                b += E;
            }
            cuts.retain(|&c| c < sealed.len());
            for cut in cuts {
                let what = format!("n={n} cut at {cut}");
                assert_rejected(&sealed[..cut], &pt, "o", &what, backend);
                let err =
                    envelope::open(&kek(), &ctx("o"), &sealed[..cut], &mut Vec::new(), backend)
                        .expect_err("truncated");
                assert!(
                    matches!(
                        err,
                        Error::Truncated
                            | Error::BadFinalChunk { .. }
                            | Error::TamperedChunk { .. }
                    ),
                    "{what}: {err:?}"
                );
            }
        }
    }
}

#[test]
fn appended_bytes_fail() {
    for &backend in Backend::all() {
        for &n in SIZES {
            let pt = data(n, 3);
            let sealed = seal(&pt, "o", backend);
            for extra in [1usize, 15, 16, 17, E, E + 16] {
                let mut t = sealed.clone();
                t.extend(std::iter::repeat_n(0xA5, extra));
                assert_rejected(&t, &pt, "o", &format!("n={n} +{extra}"), backend);
            }
            // Appending a copy of the final chunk (a validly encrypted chunk at the wrong index).
            let (_, hl) = Header::parse(&sealed).expect("header");
            let last = hl + PREFIX_SIZE + (n / C) * E;
            let mut t = sealed.clone();
            t.extend_from_slice(&sealed[last..]);
            assert_rejected(&t, &pt, "o", &format!("n={n} final chunk twice"), backend);
        }
    }
}

fn chunks(sealed: &[u8]) -> (usize, Vec<std::ops::Range<usize>>) {
    let (_, hl) = Header::parse(sealed).expect("header");
    let mut out = Vec::new();
    let mut s = hl + PREFIX_SIZE;
    while s < sealed.len() {
        let e = (s + E).min(sealed.len());
        out.push(s..e);
        s = e;
    }
    (hl, out)
}

#[test]
fn reorder_duplicate_and_swap_fail() {
    for &backend in Backend::all() {
        let n = 4 * C + 777;
        let pt = data(n, 4);
        let sealed = seal(&pt, "o", backend);
        let (_, cs) = chunks(&sealed);
        assert_eq!(cs.len(), 5);
        // Swap two full chunks; duplicate chunk 0 over chunk 1; drop a middle chunk.
        let mut t = sealed.clone();
        let (a, b) = (
            sealed[cs[0].clone()].to_vec(),
            sealed[cs[1].clone()].to_vec(),
        );
        t[cs[0].clone()].copy_from_slice(&b);
        t[cs[1].clone()].copy_from_slice(&a);
        assert_rejected(&t, &pt, "o", "swap 0/1", backend);
        let mut t = sealed.clone();
        t[cs[1].clone()].copy_from_slice(&a);
        assert_rejected(&t, &pt, "o", "dup 0 over 1", backend);
        let mut t = sealed[..cs[2].start].to_vec();
        t.extend_from_slice(&sealed[cs[3].start..]);
        assert_rejected(&t, &pt, "o", "drop chunk 2", backend);

        // Two objects under one object key (same header, same context): only the salts differ,
        // yet a chunk moved from one to the other fails.
        let key = ObjectKey::generate(&kek(), "kek-1", &ctx("o"), ObjectKind::Single).expect("key");
        let seal_with = |pt: &[u8]| {
            let mut enc =
                envelope::Encryptor::new(&key, &ctx("o"), Vec::new(), backend).expect("enc");
            enc.write_all(pt).expect("write");
            enc.finish().expect("finish")
        };
        let pt2 = data(n, 5);
        let x = seal_with(&pt);
        let y = seal_with(&pt2);
        let (_, cx) = chunks(&x);
        let mut t = x.clone();
        t[cx[1].clone()].copy_from_slice(&y[cx[1].clone()]);
        assert_rejected(&t, &pt, "o", "chunk from a sibling object", backend);
        // Salt and commitment of the sibling: commitment still verifies for that salt, but the
        // chunks belong to the other salt.
        let mut t = x.clone();
        let body = cx[0].start - PREFIX_SIZE;
        t[body..cx[0].start].copy_from_slice(&y[body..cx[0].start]);
        assert_rejected(&t, &pt, "o", "prefix from a sibling object", backend);
    }
}

#[test]
fn header_swap_wrong_context_and_wrong_key_fail() {
    for &backend in Backend::all() {
        for &n in SIZES {
            let pt = data(n, 6);
            let a = seal(&pt, "o", backend);
            let b = seal(&pt, "o", backend);
            let (_, ha) = Header::parse(&a).expect("header");
            let (_, hb) = Header::parse(&b).expect("header");
            // Header of b on body of a: a valid header, but the commitment binds a's header.
            let mut t = b[..hb].to_vec();
            t.extend_from_slice(&a[ha..]);
            assert_rejected(&t, &pt, "o", &format!("n={n} header swap"), backend);
            let err = envelope::open(&kek(), &ctx("o"), &t[..], &mut Vec::new(), backend)
                .expect_err("header swap");
            assert!(matches!(err, Error::Commitment), "{err:?}");
            // Same header and body, another object context.
            assert_rejected(&a, &pt, "other", &format!("n={n} wrong context"), backend);
            let err = envelope::open(&kek(), &ctx("other"), &a[..], &mut Vec::new(), backend)
                .expect_err("wrong context");
            assert!(matches!(err, Error::Commitment), "{err:?}");
            // Another KEK under the same identifier.
            let other = LocalKek::aes_kw("kek-1", &[0x43; 32]).expect("kek");
            let err = envelope::open(&other, &ctx("o"), &a[..], &mut Vec::new(), backend)
                .expect_err("wrong key");
            assert!(matches!(err, Error::WrongKey), "{err:?}");
            let err = envelope::open_range(
                &other,
                &ctx("o"),
                &mut Cursor::new(&a),
                0..0,
                &mut Vec::new(),
                backend,
            )
            .expect_err("wrong key");
            assert!(matches!(err, Error::WrongKey), "{err:?}");
        }
    }
}

#[test]
fn typed_header_errors() {
    let sealed = seal(b"x", "o", Backend::default());
    let open = |b: &[u8]| {
        envelope::open(&kek(), &ctx("o"), b, &mut Vec::new(), Backend::default())
            .expect_err("must fail")
    };
    let mut t = sealed.clone();
    t[0] ^= 1;
    assert!(matches!(open(&t), Error::BadMagic));
    let mut t = sealed.clone();
    t[6] = 7;
    assert!(matches!(open(&t), Error::UnsupportedVersion(7)));
    assert!(matches!(open(&sealed[..3]), Error::Truncated));
    // A changed key ID is caught before any chunk: here by the provider, which does not hold it.
    let mut t = sealed.clone();
    t[11] ^= 0x20;
    assert!(matches!(open(&t), Error::WrongKey));
    // A flipped tag bit is caught by the header authentication.
    let (_, hl) = Header::parse(&sealed).expect("header");
    let mut t = sealed.clone();
    t[hl - 1] ^= 1;
    assert!(matches!(open(&t), Error::HeaderAuthentication));
}

/// A `u64` offset as an index into an in-memory buffer.
fn ix(x: u64) -> usize {
    usize::try_from(x).expect("offset fits usize")
}
