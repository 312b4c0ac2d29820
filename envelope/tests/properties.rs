//! Property tests: random sizes, write split points, read buffer sizes and ranges round-trip.
//! (The chunk size is fixed at 16 KiB by the format, so "segment size" is not a parameter.)

use envelope::{Backend, Decryptor, Encryptor, LocalKek, ObjectContext, ObjectKey, ObjectKind};
use proptest::prelude::*;
use std::io::{Cursor, Read, Write};

fn kek() -> LocalKek {
    LocalKek::aes_kwp("kek", &[9u8; 32]).expect("kek")
}

fn ctx() -> ObjectContext {
    ObjectContext::new().with("object-key", "p").expect("ctx")
}

fn seal_split(pt: &[u8], splits: &[usize], backend: Backend) -> Vec<u8> {
    let key = ObjectKey::generate(&kek(), "kek", &ctx(), ObjectKind::Single).expect("key");
    let mut enc = Encryptor::new(&key, &ctx(), Vec::new(), backend).expect("enc");
    let mut rest = pt;
    let mut i = 0;
    while !rest.is_empty() {
        let n = splits
            .get(i)
            .copied()
            .unwrap_or(rest.len())
            .clamp(1, rest.len());
        // Mix `write` (may take less) and `write_all`.
        if i % 2 == 0 {
            enc.write_all(&rest[..n]).expect("write_all");
            rest = &rest[n..];
        } else {
            let took = enc.write(&rest[..n]).expect("write");
            rest = &rest[took..];
        }
        i += 1;
    }
    enc.finish().expect("finish")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn seal_open_round_trip(
        len in prop_oneof![0usize..100, 16_300usize..16_500, 0usize..70_000],
        splits in proptest::collection::vec(1usize..40_000, 0..12),
        read_buf in 1usize..40_000,
        a in any::<prop::sample::Index>(),
        b in any::<prop::sample::Index>(),
        seed in any::<u8>(),
    ) {
        let pt: Vec<u8> = (0..len).map(|i| (i.to_le_bytes()[0]).wrapping_mul(13) ^ seed).collect();
        for &backend in Backend::all() {
            let sealed = seal_split(&pt, &splits, backend);
            let (h, hl) = envelope::Header::parse(&sealed).expect("header");
            prop_assert_eq!(h.kind(), ObjectKind::Single);
            prop_assert_eq!(envelope::sealed_len(hl as u64, len as u64).expect("len"), sealed.len() as u64);
            prop_assert_eq!(envelope::plaintext_len(hl as u64, sealed.len() as u64).expect("len"), len as u64);

            // Streaming read with an odd buffer size.
            let mut dec = Decryptor::new(&kek(), &ctx(), &sealed[..], backend).expect("dec");
            let mut out = Vec::new();
            let mut buf = vec![0u8; read_buf];
            loop {
                let n = dec.read(&mut buf).expect("read");
                if n == 0 { break; }
                out.extend_from_slice(&buf[..n]);
            }
            prop_assert!(out == pt);

            // A random range, and the stored ranges it maps to.
            let (x, y) = (a.index(len + 1), b.index(len + 1));
            let (s, e) = (x.min(y) as u64, x.max(y) as u64);
            let mut part = Vec::new();
            envelope::open_range(&kek(), &ctx(), &mut Cursor::new(&sealed), s..e, &mut part, backend)
                .expect("range");
            prop_assert!(part[..] == pt[ix(s)..ix(e)]);
            let plan = envelope::sealed_range(hl as u64, len as u64, s..e).expect("plan");
            prop_assert!(plan.chunks.start >= plan.prefix.end);
            prop_assert!(plan.chunks.end <= sealed.len() as u64);
            prop_assert_eq!(plan.final_chunk.end, sealed.len() as u64);
            // Only the planned bytes are needed: zero everything else and the range still opens.
            let mut sparse = vec![0u8; sealed.len()];
            for r in [plan.prefix.clone(), plan.chunks.clone(), plan.final_chunk.clone()] {
                sparse[ix(r.start)..ix(r.end)].copy_from_slice(&sealed[ix(r.start)..ix(r.end)]);
            }
            let mut part2 = Vec::new();
            envelope::open_range(&kek(), &ctx(), &mut Cursor::new(&sparse), s..e, &mut part2, backend)
                .expect("sparse range");
            prop_assert!(part2 == part);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Multipart: random part numbers and sizes sealed in random order, random ranges across
    /// parts.
    #[test]
    fn multipart_round_trip(
        sizes in proptest::collection::vec(prop_oneof![0usize..50, 16_370usize..16_400, 0usize..40_000], 1..5),
        gaps in proptest::collection::vec(1u32..4, 5),
        reverse in any::<bool>(),
        a in any::<prop::sample::Index>(),
        b in any::<prop::sample::Index>(),
    ) {
        use envelope::multipart::{MultipartObject, Upload};
        let ctx = ctx();
        let key = ObjectKey::generate(&kek(), "kek", &ctx, ObjectKind::Multipart).expect("key");
        let header = key.header().as_bytes().to_vec();
        let upload = Upload::new(key, ctx.clone(), Backend::default()).expect("upload");
        let mut numbers = Vec::new();
        let mut n = 0u32;
        for g in gaps.iter().take(sizes.len()) {
            n += g;
            numbers.push(n);
        }
        let mut order: Vec<usize> = (0..sizes.len()).collect();
        if reverse {
            order.reverse();
        }
        let mut bodies = vec![Vec::new(); sizes.len()];
        let mut infos = Vec::new();
        for &i in &order {
            let mut w = upload.part_writer(numbers[i], Vec::new()).expect("part");
            let data: Vec<u8> = (0..sizes[i]).map(|j| (j.to_le_bytes()[0]) ^ (i.to_le_bytes()[0] * 17)).collect();
            w.write_all(&data).expect("write");
            let (body, info) = w.finish().expect("finish");
            bodies[i] = body;
            infos.push(info);
        }
        let manifest = upload.complete(&infos).expect("complete");
        let stored = bodies.concat();
        let pt: Vec<u8> = (0..sizes.len())
            .flat_map(|i| (0..sizes[i]).map(move |j| (j.to_le_bytes()[0]) ^ (i.to_le_bytes()[0] * 17)))
            .collect();
        prop_assert_eq!(manifest.sealed_len().expect("len"), stored.len() as u64);
        let (h, _) = envelope::Header::parse(&header).expect("header");
        let key = ObjectKey::unwrap_with(&kek(), h, &ctx).expect("key");
        let obj = MultipartObject::open(key, ctx, manifest.as_bytes(), Backend::default()).expect("open");
        let mut out = Vec::new();
        obj.copy_to(&stored[..], &mut out).expect("copy");
        prop_assert!(out == pt);
        let len = pt.len();
        let (x, y) = (a.index(len + 1), b.index(len + 1));
        let (s, e) = (x.min(y), x.max(y));
        let mut part = Vec::new();
        obj.read_range(&mut Cursor::new(&stored), s as u64..e as u64, &mut part).expect("range");
        prop_assert!(part[..] == pt[s..e]);
    }
}

/// A `u64` offset as an index into an in-memory buffer.
fn ix(x: u64) -> usize {
    usize::try_from(x).expect("offset fits usize")
}
