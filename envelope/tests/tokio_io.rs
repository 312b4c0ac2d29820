//! tokio adapters: async seal/open through a small duplex pipe (forcing partial reads and
//! writes), interoperability with the `std::io` types, failures, and async range reads.
#![allow(
    clippy::disallowed_methods,
    reason = "a writer task feeds a pipe for the length of one test"
)]
#![cfg(feature = "tokio")]

use envelope::tokio_io::{AsyncDecryptor, AsyncEncryptor, open_range_async};
use envelope::{Backend, Error, LocalKek, ObjectContext, ObjectKey, ObjectKind};
use std::io::Cursor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn kek() -> LocalKek {
    LocalKek::aes_kw("kek", &[5u8; 32]).expect("kek")
}

fn ctx() -> ObjectContext {
    ObjectContext::new()
        .with("object-key", "async")
        .expect("ctx")
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 253).to_le_bytes()[0]).collect()
}

#[tokio::test]
async fn async_round_trip_through_a_pipe() {
    for &backend in Backend::all() {
        for n in [0usize, 1, 16384, 16385, 70_000] {
            let pt = data(n);
            let key = ObjectKey::generate(&kek(), "kek", &ctx(), ObjectKind::Single).expect("key");
            let (client, server) = tokio::io::duplex(1000);
            let pt2 = pt.clone();
            let writer = tokio::spawn(async move {
                let mut enc = AsyncEncryptor::new(&key, &ctx(), client, backend).expect("enc");
                for piece in pt2.chunks(3001) {
                    enc.write_all(piece).await.expect("write");
                }
                enc.shutdown().await.expect("shutdown");
            });
            // Tee: read the sealed bytes, decrypt them with the std reader as well.
            let (tee_w, mut tee_r) = (server, Vec::new());
            let mut sealed = Vec::new();
            let mut r = tee_w;
            r.read_to_end(&mut sealed).await.expect("read sealed");
            writer.await.expect("writer task");
            tee_r.extend_from_slice(&sealed);
            let mut out = Vec::new();
            envelope::open(&kek(), &ctx(), &tee_r[..], &mut out, backend).expect("std open");
            assert!(out == pt, "n={n}: std open of async seal");

            let mut dec = AsyncDecryptor::new(&kek(), &ctx(), &sealed[..], backend)
                .await
                .expect("dec");
            let mut out = Vec::new();
            dec.read_to_end(&mut out).await.expect("async open");
            assert!(out == pt, "n={n}: async open");

            let len = pt.len() as u64;
            for r in [0..len, len / 3..len / 2, len.saturating_sub(1)..len] {
                let mut part = Vec::new();
                let got = open_range_async(
                    &kek(),
                    &ctx(),
                    &mut Cursor::new(&sealed),
                    r.clone(),
                    &mut part,
                    backend,
                )
                .await
                .expect("range");
                assert_eq!(got, len);
                assert!(part == pt[ix(r.start)..ix(r.end)], "n={n} {r:?}");
            }
        }
    }
}

#[tokio::test]
async fn async_reader_rejects_tampering() {
    let pt = data(40_000);
    let mut sealed = Vec::new();
    envelope::seal(
        &kek(),
        "kek",
        &ctx(),
        &pt[..],
        &mut sealed,
        Backend::default(),
    )
    .expect("seal");
    // Truncated at a chunk boundary, bit flip in the middle chunk, appended byte.
    let (_, hl) = envelope::Header::parse(&sealed).expect("header");
    let mut cases = vec![sealed[..hl + 56 + 16400].to_vec()];
    let mut flipped = sealed.clone();
    flipped[hl + 56 + 16400 + 100] ^= 4;
    cases.push(flipped);
    let mut longer = sealed.clone();
    longer.push(1);
    cases.push(longer);
    for (i, t) in cases.iter().enumerate() {
        let mut dec = AsyncDecryptor::new(&kek(), &ctx(), &t[..], Backend::default())
            .await
            .expect("header and commitment are intact");
        let mut out = Vec::new();
        let err = dec.read_to_end(&mut out).await.expect_err("must fail");
        assert!(pt.starts_with(&out), "case {i}: wrong plaintext released");
        let typed = Error::from_io(err);
        assert!(
            matches!(
                typed,
                Error::Truncated | Error::TamperedChunk { .. } | Error::BadFinalChunk { .. }
            ),
            "case {i}: {typed:?}"
        );
        // It keeps failing.
        let mut more = [0u8; 10];
        assert!(dec.read(&mut more).await.is_err(), "case {i}");
    }
    // Wrong context fails before any chunk.
    let other = ObjectContext::new()
        .with("object-key", "other")
        .expect("ctx");
    let r = AsyncDecryptor::new(&kek(), &other, &sealed[..], Backend::default()).await;
    assert!(matches!(r, Err(Error::Commitment)));
    let mut bad = sealed.clone();
    bad[0] = b'x';
    let r = AsyncDecryptor::new(&kek(), &ctx(), &bad[..], Backend::default()).await;
    assert!(matches!(r, Err(Error::BadMagic)));
}

/// A `u64` offset as an index into an in-memory buffer.
fn ix(x: u64) -> usize {
    usize::try_from(x).expect("offset fits usize")
}
