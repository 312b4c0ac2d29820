//! Streaming seal and open of a 256 MiB in-memory object with each backend, against that
//! backend's raw AES-256-GCM over the same buffer in one call (the ceiling for the format), and
//! against the raw call plus one copy of the object (the ceiling for any API that writes the
//! ciphertext somewhere other than the plaintext's buffer, such as the `Write`/`Read` adapters).
//! The AES and GHASH code paths each library picks on this CPU are printed first.
//!
//! Run briefly on a shared machine, e.g.
//! `cargo bench -p envelope --bench stream -- --warm-up-time 1 --measurement-time 3 --sample-size 10`.

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use envelope::{Backend, Decryptor, Encryptor, LocalKek, ObjectContext, ObjectKey, ObjectKind};
use std::cell::RefCell;
use std::hint::black_box;
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SIZE: usize = 256 << 20;

/// A `Write` into a preallocated buffer, so the benchmark measures no allocation.
struct Sink<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Write for Sink<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(self.buf.len() - self.at);
        self.buf[self.at..self.at + n].copy_from_slice(&data[..n]);
        self.at += n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The backend's raw AES-256-GCM, keyed once.
#[allow(clippy::large_enum_variant)] // one per benchmark, never moved
enum Raw {
    RustCrypto(aes_gcm::Aes256Gcm),
    #[cfg(feature = "ring")]
    Ring(Box<ring::aead::LessSafeKey>),
}

impl Raw {
    fn new(backend: Backend) -> Raw {
        let key = [7u8; 32];
        match backend {
            Backend::RustCrypto => {
                use aes_gcm::aead::KeyInit;
                Raw::RustCrypto(aes_gcm::Aes256Gcm::new_from_slice(&key).expect("key"))
            }
            #[cfg(feature = "ring")]
            Backend::Ring => {
                use ring::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
                Raw::Ring(Box::new(LessSafeKey::new(
                    UnboundKey::new(&AES_256_GCM, &key).expect("key"),
                )))
            }
            #[allow(unreachable_patterns)]
            _ => unreachable!("unknown backend"),
        }
    }

    /// Seal `buf` in place with a detached tag, in one call.
    fn seal(&self, buf: &mut [u8]) {
        let nonce = [9u8; 12];
        match self {
            Raw::RustCrypto(c) => {
                use aes_gcm::aead::AeadInOut;
                let tag = c
                    .encrypt_inout_detached(&nonce.into(), &[], buf.into())
                    .expect("seal");
                black_box(tag);
            }
            #[cfg(feature = "ring")]
            Raw::Ring(k) => {
                use ring::aead::{Aad, Nonce};
                let tag = k
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::empty(),
                        buf,
                    )
                    .expect("seal");
                let _ = black_box(tag);
            }
        }
    }

    /// One call per 16 KiB piece, no copies: the ceiling of any 16 KiB-chunked format.
    fn seal_chunked(&self, buf: &mut [u8]) {
        for piece in buf.chunks_mut(16 * 1024) {
            self.seal(piece);
        }
    }
}

/// A `Write` into a shared, reused buffer (tink's writer wants an owned `Box<dyn Write>`).
struct SharedSink(Rc<RefCell<Vec<u8>>>);

impl Write for SharedSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The streaming peer: the Rust port of Tink's AES-256-GCM-HKDF streaming AEAD (aes-gcm 0.10),
/// with 1 MiB ciphertext segments (its fastest template).
fn tink_peer(c: &mut BenchmarkGroup<'_, WallTime>, plaintext: &[u8], out: &mut [u8]) {
    use tink_core::StreamingAead;
    let aead = tink_streaming_aead::subtle::AesGcmHkdf::new(
        &[3u8; 32],
        tink_proto::HashType::Sha256,
        32,
        1 << 20,
        0,
    )
    .expect("tink key");
    let sink = Rc::new(RefCell::new(Vec::with_capacity(SIZE + SIZE / 1000 + 1024)));
    c.bench_function("tink-streaming-aead/seal", |b| {
        b.iter(|| {
            sink.borrow_mut().clear();
            let mut w = aead
                .new_encrypting_writer(Box::new(SharedSink(sink.clone())), b"aad")
                .expect("writer");
            w.write_all(plaintext).expect("write");
            w.close().expect("close");
        })
    });
    let sealed: Arc<[u8]> = sink.borrow().as_slice().into();
    c.bench_function("tink-streaming-aead/open", |b| {
        b.iter(|| {
            let mut r = aead
                .new_decrypting_reader(Box::new(io::Cursor::new(sealed.clone())), b"aad")
                .expect("reader");
            let mut at = 0;
            loop {
                let n = r.read(&mut out[at..]).expect("read");
                if n == 0 {
                    break;
                }
                at += n;
            }
            assert_eq!(at, SIZE);
        })
    });
}

/// The code paths the AEAD libraries pick at run time on this CPU, by the same rules they apply
/// (aes 0.9.4 `lib.rs`: VAES-512 with AVX-512F and VAES, else VAES-256, else AES-NI; polyval
/// 0.7.3: 128-bit PCLMULQDQ with AVX, it has no VPCLMULQDQ path; ring 0.17.14 `aes_gcm.rs`:
/// stitched VAES/VPCLMULQDQ AVX2 code, else stitched AES-NI/AVX/MOVBE, else AES-NI and PCLMULQDQ
/// apart), so that every figure below says what it measured. Builds with `--cfg aes_backend` or
/// `polyval_backend` set to `"soft"` override the first two.
fn code_paths() -> Vec<String> {
    let mut lines = Vec::new();
    if let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") {
        let field = |name: &str| {
            info.lines()
                .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_default()
        };
        lines.push(format!(
            "cpu: {} (family {}, model {}, stepping {}, microcode {}), {} logical CPUs",
            field("model name"),
            field("cpu family"),
            field("model"),
            field("stepping"),
            field("microcode"),
            info.lines().filter(|l| l.starts_with("processor")).count()
        ));
    }
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let flags: Vec<&str> = [
            ("aes", has!("aes")),
            ("pclmulqdq", has!("pclmulqdq")),
            ("avx", has!("avx")),
            ("avx2", has!("avx2")),
            ("movbe", has!("movbe")),
            ("avx512f", has!("avx512f")),
            ("vaes", has!("vaes")),
            ("vpclmulqdq", has!("vpclmulqdq")),
        ]
        .into_iter()
        .filter_map(|(n, on)| on.then_some(n))
        .collect();
        lines.push(format!("cpu flags used by the AEADs: {}", flags.join(" ")));
        let aes09 = if has!("avx512f") && has!("vaes") {
            "x86_vaes512 (512-bit VAES)"
        } else if has!("vaes") {
            "x86_vaes256 (256-bit VAES)"
        } else if has!("aes") {
            "x86_aes (AES-NI)"
        } else {
            "soft (fixslice)"
        };
        let clmul = if has!("avx") && has!("pclmulqdq") {
            "PCLMULQDQ, 128-bit (no VPCLMULQDQ path)"
        } else {
            "soft"
        };
        lines.push(format!(
            "RustCrypto backend (aes-gcm 0.11.1): AES aes 0.9.4 {aes09}; GHASH polyval 0.7.3 {clmul}; two passes (CTR, then GHASH)"
        ));
        #[cfg(feature = "ring")]
        {
            let ring = if has!("aes")
                && has!("pclmulqdq")
                && has!("avx")
                && has!("vaes")
                && has!("vpclmulqdq")
            {
                "aes_gcm_{enc,dec}_update_vaes_avx2 (stitched, 256-bit VAES and VPCLMULQDQ)"
            } else if has!("aes") && has!("pclmulqdq") && has!("avx") && has!("movbe") {
                "aesni_gcm_{en,de}crypt (stitched, AES-NI, AVX, MOVBE)"
            } else if has!("aes") && has!("pclmulqdq") {
                "AES-NI CTR and PCLMULQDQ GHASH, apart"
            } else {
                "vector-permute or fallback"
            };
            lines.push(format!("ring backend (ring 0.17.14): {ring}"));
        }
        let aes08 = if has!("aes") { "AES-NI" } else { "soft" };
        lines.push(format!(
            "tink-streaming-aead 0.3 (aes-gcm 0.10.3): AES aes 0.8.4 {aes08} (no VAES); GHASH polyval 0.6.2 {clmul}"
        ));
    }
    lines
}

fn bench(c: &mut Criterion) {
    for line in code_paths() {
        println!("{line}");
    }
    println!(
        "default backend (Backend::default()): {:?}",
        Backend::default()
    );
    let kek = LocalKek::aes_kw("bench", &[1u8; 32]).expect("kek");
    let ctx = ObjectContext::new()
        .with("object-key", "bench")
        .expect("ctx");
    let plaintext: Vec<u8> = (0..SIZE).map(|i| i.to_le_bytes()[0]).collect();
    let key = ObjectKey::generate(&kek, "bench", &ctx, ObjectKind::Single).expect("key");
    let sealed_len = envelope::sealed_len(key.header().len() as u64, SIZE as u64).expect("len");
    let sealed_len = usize::try_from(sealed_len).expect("sealed length fits memory");
    let mut sealed = vec![0u8; sealed_len];
    let mut out = vec![0u8; SIZE];
    // Sealed once up front, so that `open` benchmarks also run alone (e.g. under a filter).
    {
        let sink = Sink {
            buf: &mut sealed,
            at: 0,
        };
        let mut enc = Encryptor::new(&key, &ctx, sink, Backend::default()).expect("enc");
        enc.write_all(&plaintext).expect("write");
        enc.finish().expect("finish");
    }

    let mut g = c.benchmark_group("256MiB");
    g.throughput(Throughput::Bytes(SIZE as u64));
    for &backend in Backend::all() {
        let name = format!("{backend:?}");
        g.bench_function(BenchmarkId::new("raw-aes-256-gcm", &name), |b| {
            // In place, no copy: re-encrypting the previous output costs the same.
            out.copy_from_slice(&plaintext);
            let raw = Raw::new(backend);
            b.iter(|| raw.seal(&mut out))
        });
        g.bench_function(
            BenchmarkId::new("raw-aes-256-gcm-plus-one-copy", &name),
            |b| {
                // The raw call in place plus one copy of the object into another buffer: the
                // ceiling of any API that does not leave the ciphertext in the plaintext's buffer.
                let raw = Raw::new(backend);
                b.iter(|| {
                    out.copy_from_slice(&plaintext);
                    raw.seal(&mut out)
                })
            },
        );
        g.bench_function(
            BenchmarkId::new("raw-aes-256-gcm-16KiB-calls", &name),
            |b| {
                out.copy_from_slice(&plaintext);
                let raw = Raw::new(backend);
                b.iter(|| raw.seal_chunked(&mut out))
            },
        );
        g.bench_function(
            BenchmarkId::new("raw-aes-256-gcm-16KiB-cache-hot", &name),
            |b| {
                // The cipher alone: one 16 KiB buffer, sealed 16384 times (no memory traffic).
                let mut piece = plaintext[..16 * 1024].to_vec();
                let raw = Raw::new(backend);
                b.iter(|| {
                    for _ in 0..SIZE / piece.len() {
                        raw.seal(&mut piece);
                    }
                })
            },
        );
        g.bench_function(BenchmarkId::new("seal", &name), |b| {
            b.iter(|| {
                let sink = Sink {
                    buf: &mut sealed,
                    at: 0,
                };
                let mut enc = Encryptor::new(&key, &ctx, sink, backend).expect("enc");
                enc.write_all(&plaintext).expect("write");
                let sink = enc.finish().expect("finish");
                assert_eq!(sink.at, sealed_len);
            })
        });
        g.bench_function(BenchmarkId::new("open", &name), |b| {
            b.iter(|| {
                let mut dec = Decryptor::new(&kek, &ctx, &sealed[..], backend).expect("dec");
                let mut at = 0;
                loop {
                    let n = dec.read(&mut out[at..]).expect("read");
                    if n == 0 {
                        break;
                    }
                    at += n;
                }
                assert_eq!(at, SIZE);
            })
        });
        // The in-memory API: the object is sealed and opened where it lies in one `Vec`
        // (the refill of the buffer before each call is not timed).
        let mut buf: Vec<u8> = Vec::with_capacity(sealed_len);
        g.bench_function(BenchmarkId::new("seal_in_place", &name), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    buf.clear();
                    buf.extend_from_slice(&plaintext);
                    let t = Instant::now();
                    envelope::seal_in_place(&key, &ctx, &mut buf, backend).expect("seal");
                    total += t.elapsed();
                    assert_eq!(buf.len(), sealed_len);
                }
                total
            })
        });
        g.bench_function(BenchmarkId::new("open_in_place", &name), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    buf.clear();
                    buf.extend_from_slice(&sealed);
                    let t = Instant::now();
                    envelope::open_in_place(&kek, &ctx, &mut buf, backend).expect("open");
                    total += t.elapsed();
                    assert_eq!(buf.len(), SIZE);
                }
                total
            })
        });
    }
    // What the benchmark's own `Sink` costs: 256 MiB of sealed chunks copied into it from one
    // cache-hot chunk buffer, no cipher. No `Write` adapter can seal faster than this. (It
    // overwrites `sealed`: it runs after the opens.)
    g.bench_function("sink-copy-only", |b| {
        let chunk = [5u8; envelope::chunked::ENCRYPTED_CHUNK_SIZE];
        b.iter(|| {
            let mut sink = Sink {
                buf: &mut sealed,
                at: 0,
            };
            for _ in 0..SIZE / envelope::chunked::CHUNK_SIZE {
                sink.write_all(&chunk).expect("write");
            }
            black_box(sink.at);
        })
    });
    // The `Write` adapter's other step: each 16 KiB chunk of the object copied into one cache-hot
    // chunk buffer, no cipher. Its floor with a cipher that seals in place only (ring) is this
    // plus the cipher on a cache-hot chunk plus `sink-copy-only`, the three in sequence.
    g.bench_function("chunk-copy-in-only", |b| {
        let mut chunk = vec![0u8; envelope::chunked::CHUNK_SIZE];
        b.iter(|| {
            for piece in plaintext.chunks_exact(envelope::chunked::CHUNK_SIZE) {
                chunk.copy_from_slice(piece);
                black_box(&chunk[..]);
            }
        })
    });
    // The cheapest possible move of the object to another buffer: one `memcpy` of 256 MiB, no
    // cipher (glibc uses non-temporal stores at this size). Any API that leaves the plaintext
    // where it is and writes the ciphertext elsewhere pays at least this on top of the cipher.
    g.bench_function("copy-256MiB-only", |b| {
        b.iter(|| {
            out.copy_from_slice(&plaintext);
            black_box(out.as_ptr());
        })
    });
    tink_peer(&mut g, &plaintext, &mut out);
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
