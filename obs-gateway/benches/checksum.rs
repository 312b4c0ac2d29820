//! What the gateway computes over every uploaded byte besides sealing it: the additional checksum
//! S3 clients send (botocore sends CRC32 by default), next to the MD5 of the ETag and the
//! SHA-256 of a signed payload, over 16 MiB.
//!
//! `cargo bench -p obs-gateway --bench checksum -- --warm-up-time 1 --measurement-time 3`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use md5::Digest;
use obs_gateway::checksum::{Algorithm, Checksum};

fn bench(c: &mut Criterion) {
    let data: Vec<u8> = (0..16u32 << 20)
        .map(|i| i.to_le_bytes()[0] ^ i.to_le_bytes()[2])
        .collect();
    let mut g = c.benchmark_group("16MiB");
    g.throughput(Throughput::Bytes(data.len() as u64));
    // The gateway feeds a checksum the body's pieces as they arrive: 64 KiB at a time.
    for alg in Algorithm::ALL {
        g.bench_with_input(BenchmarkId::new("checksum", alg.name()), &data, |b, d| {
            b.iter(|| {
                let mut c = Checksum::new(alg);
                for piece in d.chunks(64 << 10) {
                    c.update(piece);
                }
                c.finish()
            });
        });
    }
    g.bench_with_input(BenchmarkId::new("etag", "MD5"), &data, |b, d| {
        b.iter(|| md5::Md5::digest(d));
    });
    g.bench_with_input(
        BenchmarkId::new("signed-payload", "SHA-256"),
        &data,
        |b, d| {
            b.iter(|| sha2::Sha256::digest(d));
        },
    );
    g.finish();
}

// In a private module: the macro's function has no doc comment for `missing_docs`.
mod group {
    use super::*;
    criterion_group!(benches, bench);
}
use group::benches;
criterion_main!(benches);
