//! Seal/open round trips through the public API, every backend.

use envelope::{Backend, Error, LocalKek, ObjectContext};
use std::io::Cursor;

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

#[test]
fn round_trip_sizes_and_lengths() {
    for &backend in Backend::all() {
        for n in [0usize, 1, 16383, 16384, 16385, 3 * 16384, 100_000] {
            let pt = data(n);
            let mut sealed = Vec::new();
            let got = envelope::seal(&kek(), "kek-1", &ctx("o"), &pt[..], &mut sealed, backend)
                .expect("seal");
            assert_eq!(got, n as u64);
            let (h, hl) = envelope::Header::parse(&sealed).expect("header");
            assert_eq!(h.key_id(), "kek-1");
            assert_eq!(
                envelope::sealed_len(hl as u64, n as u64).expect("len"),
                sealed.len() as u64
            );
            assert_eq!(
                envelope::plaintext_len(hl as u64, sealed.len() as u64).expect("len"),
                n as u64
            );
            let mut out = Vec::new();
            envelope::open(&kek(), &ctx("o"), &sealed[..], &mut out, backend).expect("open");
            assert!(out == pt, "n={n}");
            // Ranges.
            for (a, b) in [(0, n), (n / 2, n), (n / 3, 2 * n / 3), (0, n.min(1))] {
                let mut part = Vec::new();
                let len = envelope::open_range(
                    &kek(),
                    &ctx("o"),
                    &mut Cursor::new(&sealed),
                    a as u64..b as u64,
                    &mut part,
                    backend,
                )
                .expect("range");
                assert_eq!(len, n as u64);
                assert!(part == pt[a..b], "n={n} range {a}..{b}");
            }
            // Wrong context fails at the commitment check.
            let err = envelope::open(&kek(), &ctx("other"), &sealed[..], &mut Vec::new(), backend)
                .expect_err("wrong context");
            assert!(matches!(err, Error::Commitment), "{err:?}");
        }
    }
}

#[test]
fn range_outside_object_is_an_error() {
    let mut sealed = Vec::new();
    envelope::seal(
        &kek(),
        "kek-1",
        &ctx("o"),
        &data(10)[..],
        &mut sealed,
        Backend::default(),
    )
    .expect("seal");
    let err = envelope::open_range(
        &kek(),
        &ctx("o"),
        &mut Cursor::new(&sealed),
        5..11,
        &mut Vec::new(),
        Backend::default(),
    )
    .expect_err("out of range");
    assert!(
        matches!(err, Error::InvalidRange { len: 10, .. }),
        "{err:?}"
    );
}

#[test]
fn sealed_range_plan_matches_layout() {
    let hl = 100u64;
    let len = 5 * 16384 + 10;
    let plan = envelope::sealed_range(hl, len, 16384 + 5..2 * 16384 + 1).expect("plan");
    assert_eq!(plan.prefix, 0..156);
    assert_eq!(plan.chunks, 156 + 16400..156 + 3 * 16400);
    assert_eq!(plan.final_chunk, 156 + 5 * 16400..156 + 5 * 16400 + 26);
    assert_eq!(
        plan.final_chunk.end,
        envelope::sealed_len(hl, len).expect("len")
    );
}
