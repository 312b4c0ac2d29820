//! The chunk-block API (`Encryptor::seal_chunks`, `Decryptor::open_chunks`): sealing and opening
//! whole chunks where they lie in the caller's buffer writes and reads exactly the bytes of the
//! `Write`/`Read` adapters, releases nothing of a chunk that does not authenticate, and refuses a
//! block that is not whole slots or a stream that is not at a chunk boundary.

use envelope::chunked::{CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE, SALT_SIZE};
use envelope::{
    Backend, DataKey, Decryptor, Encryptor, Error, LocalKek, ObjectContext, ObjectKey, ObjectKind,
    WrapScheme, WrappedKey,
};
use std::io::{Read, Write};

fn kek() -> LocalKek {
    LocalKek::aes_kw("kek-1", &[0x42; 32]).expect("kek")
}

fn ctx() -> ObjectContext {
    ObjectContext::from_pairs([("bucket", "b"), ("object-key", "o")]).expect("ctx")
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

const SALT: [u8; SALT_SIZE] = [0xA5; SALT_SIZE];

/// What the `Write` adapter makes of `pt`.
fn streamed(pt: &[u8], backend: Backend) -> Vec<u8> {
    let mut enc =
        Encryptor::with_salt(&fixed_key(), &ctx(), Vec::new(), &SALT, backend).expect("enc");
    enc.write_all(pt).expect("write");
    enc.finish().expect("finish")
}

/// What sealing `pt` in blocks of `slots` chunk slots makes of it (the final short chunk through
/// `write`), as a program reading its input into slots does.
fn sealed_in_blocks(pt: &[u8], slots: usize, backend: Backend) -> Vec<u8> {
    let mut enc =
        Encryptor::with_salt(&fixed_key(), &ctx(), Vec::new(), &SALT, backend).expect("enc");
    let mut block = vec![0u8; slots * ENCRYPTED_CHUNK_SIZE];
    let mut rest = pt;
    while rest.len() >= CHUNK_SIZE {
        let k = (rest.len() / CHUNK_SIZE).min(slots);
        for (slot, chunk) in block
            .chunks_mut(ENCRYPTED_CHUNK_SIZE)
            .zip(rest.chunks(CHUNK_SIZE))
            .take(k)
        {
            slot[..CHUNK_SIZE].copy_from_slice(chunk);
        }
        enc.seal_chunks(&mut block[..k * ENCRYPTED_CHUNK_SIZE])
            .expect("seal_chunks");
        rest = &rest[k * CHUNK_SIZE..];
    }
    enc.write_all(rest).expect("write");
    enc.finish().expect("finish")
}

/// A reader that hands out at most `step` bytes per call (a pipe).
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(out.len()).min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Opens `sealed` block by block from a source that returns at most `step` bytes per read; the
/// plaintext, or the error, the plaintext released before it, and whether the failing call left
/// the block zeroed (or untouched).
#[allow(clippy::type_complexity, reason = "a test helper's result")]
fn opened_in_blocks(
    sealed: &[u8],
    slots: usize,
    step: usize,
    backend: Backend,
) -> Result<Vec<u8>, (Error, Vec<u8>, bool)> {
    let src = Trickle { data: sealed, step };
    let mut dec = Decryptor::new(&kek(), &ctx(), src, backend).expect("dec");
    let mut block = vec![0u8; slots * ENCRYPTED_CHUNK_SIZE];
    let mut out = Vec::new();
    loop {
        block.fill(0xEE);
        match dec.open_chunks(&mut block) {
            Ok(opened) if opened.is_empty() => break,
            Ok(opened) => {
                let before = out.len();
                for piece in opened.slices(&block) {
                    out.extend_from_slice(piece);
                }
                assert_eq!(out.len() - before, opened.len());
            }
            Err(e) => {
                let clean = block.iter().all(|&b| b == 0) || block.iter().all(|&b| b == 0xEE);
                assert!(dec.open_chunks(&mut block).is_err(), "failure is sticky");
                return Err((e, out, clean));
            }
        }
    }
    assert!(
        matches!(dec.open_chunks(&mut block), Ok(o) if o.is_empty()),
        "a whole object keeps reporting its end"
    );
    Ok(out)
}

const SIZES: &[usize] = &[
    0,
    1,
    CHUNK_SIZE - 1,
    CHUNK_SIZE,
    CHUNK_SIZE + 1,
    2 * CHUNK_SIZE,
    3 * CHUNK_SIZE,
    3 * CHUNK_SIZE + 17,
    7 * CHUNK_SIZE + 5,
];

#[test]
fn sealing_in_blocks_writes_the_streamed_bytes() {
    for &backend in Backend::all() {
        for &n in SIZES {
            let pt = data(n);
            let want = streamed(&pt, backend);
            for slots in [1, 2, 3, 64] {
                assert!(
                    sealed_in_blocks(&pt, slots, backend) == want,
                    "{backend:?} n={n} slots={slots}"
                );
            }
        }
    }
}

#[test]
fn opening_in_blocks_reads_what_was_sealed() {
    for &backend in Backend::all() {
        for &n in SIZES {
            let pt = data(n);
            let sealed = streamed(&pt, backend);
            for slots in [1, 2, 3, 64] {
                for step in [usize::MAX, 65536, 20000, 1000] {
                    let got = opened_in_blocks(&sealed, slots, step, backend).expect("open");
                    assert!(got == pt, "{backend:?} n={n} slots={slots} step={step}");
                }
            }
        }
    }
}

#[test]
fn a_chunk_that_does_not_authenticate_leaves_a_zeroed_block_and_a_failed_stream() {
    for &backend in Backend::all() {
        for &n in &[0, CHUNK_SIZE, 3 * CHUNK_SIZE + 17, 7 * CHUNK_SIZE + 5] {
            let pt = data(n);
            let sealed = streamed(&pt, backend);
            let header = fixed_key().header().len();
            let chunks = n / CHUNK_SIZE + 1;
            for k in 0..chunks {
                let at = header + envelope::chunked::PREFIX_SIZE + k * ENCRYPTED_CHUNK_SIZE;
                let mut bad = sealed.clone();
                bad[at] ^= 0x04;
                for (slots, step) in [
                    (1, usize::MAX),
                    (3, usize::MAX),
                    (64, usize::MAX),
                    (64, 20000),
                ] {
                    let (err, released, zeroed) =
                        opened_in_blocks(&bad, slots, step, backend).expect_err("tampered");
                    assert!(
                        matches!(err, Error::TamperedChunk { index } | Error::BadFinalChunk { index } if index == k as u64),
                        "{backend:?} n={n} chunk {k} slots={slots}: {err:?}"
                    );
                    assert!(
                        zeroed,
                        "{backend:?} n={n} chunk {k} slots={slots}: block not zeroed"
                    );
                    // Exactly the chunks before the failing one were released.
                    assert!(
                        released == pt[..k * CHUNK_SIZE],
                        "{backend:?} n={n} chunk {k} slots={slots}: released {} bytes",
                        released.len()
                    );
                }
            }
            // Truncated at a chunk boundary (no final chunk), and extended.
            let full_end = sealed.len() - (n % CHUNK_SIZE + 16);
            for slots in [1, 3, 64] {
                let (err, _, _) = opened_in_blocks(&sealed[..full_end], slots, usize::MAX, backend)
                    .expect_err("truncated");
                assert!(
                    matches!(err, Error::Truncated | Error::BadFinalChunk { .. }),
                    "{backend:?} n={n} slots={slots}: {err:?}"
                );
                let mut longer = sealed.clone();
                longer.push(0);
                opened_in_blocks(&longer, slots, usize::MAX, backend).expect_err("extended");
            }
        }
    }
}

#[test]
fn blocks_must_be_whole_slots_at_a_chunk_boundary() {
    let backend = Backend::default();
    let mut enc = Encryptor::new(&fixed_key(), &ctx(), Vec::new(), backend).expect("enc");
    for len in [1, CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE + 1] {
        let mut block = vec![0u8; len];
        let err = enc.seal_chunks(&mut block).expect_err("not whole slots");
        assert!(matches!(err, Error::ChunkBlock(_)), "{len}: {err:?}");
    }
    enc.write_all(b"partial").expect("write");
    let mut block = vec![0u8; ENCRYPTED_CHUNK_SIZE];
    let err = enc.seal_chunks(&mut block).expect_err("not at a boundary");
    assert!(matches!(err, Error::ChunkBlock(_)), "{err:?}");
    // The refusals changed nothing: the object still opens to what was written.
    let sealed = enc.finish().expect("finish");
    let mut plain = Vec::new();
    envelope::open(&kek(), &ctx(), &sealed[..], &mut plain, backend).expect("open");
    assert_eq!(plain, b"partial");

    let sealed = streamed(&data(3 * CHUNK_SIZE), backend);
    let mut dec = Decryptor::new(&kek(), &ctx(), &sealed[..], backend).expect("dec");
    for len in [0, CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE - 1] {
        let mut block = vec![0u8; len];
        let err = dec.open_chunks(&mut block).expect_err("not whole slots");
        assert!(matches!(err, Error::ChunkBlock(_)), "{len}: {err:?}");
    }
    let mut small = [0u8; 10];
    dec.read_exact(&mut small).expect("read");
    let mut block = vec![0u8; ENCRYPTED_CHUNK_SIZE];
    let err = dec.open_chunks(&mut block).expect_err("plaintext buffered");
    assert!(matches!(err, Error::ChunkBlock(_)), "{err:?}");

    // Bytes of a chunk that open_chunks holds for its next call are not lost to a `read`.
    let src = Trickle {
        data: &sealed,
        step: 20000,
    };
    let mut dec = Decryptor::new(&kek(), &ctx(), src, backend).expect("dec");
    let mut block = vec![0u8; 4 * ENCRYPTED_CHUNK_SIZE];
    let opened = dec.open_chunks(&mut block).expect("open_chunks");
    assert_eq!(opened.len(), CHUNK_SIZE);
    let err = dec.read(&mut small).expect_err("bytes pending");
    assert!(matches!(Error::from_io(err), Error::ChunkBlock(_)));
}
