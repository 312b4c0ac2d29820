//! A 1 MiB range read (middle of the object) from a sealed 1 GiB file against the same read from a
//! sealed 16 MiB file: the cost should follow the range, not the object.
//!
//! `cargo bench -p envelope --bench range -- --warm-up-time 1 --measurement-time 3 --sample-size 10`
//! (writes about 1 GiB to a temporary file).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use envelope::{Backend, LocalKek, ObjectContext, ObjectKey, ObjectKind};
use std::fs::File;
use std::io::{BufWriter, Write};

fn seal_file(kek: &LocalKek, ctx: &ObjectContext, len: u64) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().expect("tempfile");
    let key = ObjectKey::generate(kek, "bench", ctx, ObjectKind::Single).expect("key");
    let out = BufWriter::new(f.reopen().expect("reopen"));
    let mut enc = envelope::Encryptor::new(&key, ctx, out, Backend::default()).expect("enc");
    let block = vec![0x5Au8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = usize::try_from(left).map_or(block.len(), |l| l.min(block.len()));
        enc.write_all(&block[..n]).expect("write");
        left -= u64::try_from(n).expect("n");
    }
    enc.finish().expect("finish").flush().expect("flush");
    f
}

fn bench(c: &mut Criterion) {
    let kek = LocalKek::aes_kw("bench", &[1u8; 32]).expect("kek");
    let ctx = ObjectContext::new()
        .with("object-key", "range")
        .expect("ctx");
    let mut g = c.benchmark_group("range-1MiB");
    g.throughput(Throughput::Bytes(1 << 20));
    for (name, len) in [("16MiB-object", 16u64 << 20), ("1GiB-object", 1u64 << 30)] {
        let file = seal_file(&kek, &ctx, len);
        let mut out = Vec::with_capacity(1 << 20);
        for &backend in Backend::all() {
            g.bench_function(BenchmarkId::new(name, format!("{backend:?}")), |b| {
                b.iter(|| {
                    let mut f = File::open(file.path()).expect("open");
                    out.clear();
                    let start = len / 2 + 12_345;
                    envelope::open_range(
                        &kek,
                        &ctx,
                        &mut f,
                        start..start + (1 << 20),
                        &mut out,
                        backend,
                    )
                    .expect("range");
                    assert_eq!(out.len(), 1 << 20);
                })
            });
        }
    }
    g.finish();
}

/// criterion's generated group function.
mod group {
    #![allow(missing_docs)]
    use super::*;
    criterion_group!(benches, bench);
}
use group::benches;
criterion_main!(benches);
