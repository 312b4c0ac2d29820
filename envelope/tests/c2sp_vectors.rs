//! The 35 Wycheproof vectors for C2SP chunked encryption (Cobblestone-256), run through the
//! crate's streaming reader, its range reader, and (for valid vectors) its writer.

use envelope::chunked::{BodyReader, BodyWriter, read_body_range};
use envelope::{Backend, Error};
use sha2::{Digest, Sha512};
use std::io::{Cursor, Read};

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testdata/wycheproof/testvectors_v1/c2sp_chunked_encryption_aes_256_gcm_test.json"
);

struct Vector {
    id: u64,
    key: Vec<u8>,
    ctx: Vec<u8>,
    ct: Vec<u8>,
    valid: bool,
    flags: Vec<String>,
    msg_len: Option<u64>,
    msg_sha512: Option<Vec<u8>>,
}

impl Vector {
    fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

fn hexs(v: &serde_json::Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

fn vectors() -> Vec<Vector> {
    let text = std::fs::read_to_string(PATH).expect("read vector file");
    let json: serde_json::Value = serde_json::from_str(&text).expect("parse vector file");
    assert_eq!(json["algorithm"], "Cobblestone-256");
    let mut out = Vec::new();
    for g in json["testGroups"].as_array().expect("groups") {
        assert_eq!(g["aead"], "AEAD_AES_256_GCM");
        assert_eq!(g["sha"], "SHA-512");
        for t in g["tests"].as_array().expect("tests") {
            let id = t["tcId"].as_u64().expect("tcId");
            // The ciphertexts are stored zlib-compressed.
            let ct = miniz_oxide::inflate::decompress_to_vec_zlib(&hexs(&t["ct"]))
                .unwrap_or_else(|e| panic!("tcId {id}: inflate: {e:?}"));
            out.push(Vector {
                id,
                key: hexs(&t["key"]),
                ctx: hexs(&t["ctx"]),
                ct,
                valid: t["result"] == "valid",
                flags: t["flags"]
                    .as_array()
                    .expect("flags")
                    .iter()
                    .map(|f| f.as_str().expect("flag").to_owned())
                    .collect(),
                msg_len: t["msgLength"].as_u64(),
                msg_sha512: t.get("msgSha512").map(hexs),
            });
        }
    }
    assert_eq!(out.len(), 35, "expected all 35 vectors");
    out
}

/// A reader that counts the bytes taken from it.
struct Counting<'a> {
    inner: Cursor<&'a [u8]>,
    taken: usize,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.taken += n;
        Ok(n)
    }
}

fn sha512(b: &[u8]) -> Vec<u8> {
    Sha512::digest(b).to_vec()
}

#[test]
fn wycheproof_c2sp_chunked_encryption() {
    for &backend in Backend::all() {
        for v in vectors() {
            check(&v, backend);
        }
    }
}

fn check(v: &Vector, backend: Backend) {
    let id = v.id;
    let mut src = Counting {
        inner: Cursor::new(&v.ct),
        taken: 0,
    };
    let opened = BodyReader::new(&mut src, &v.key, &v.ctx, backend);
    if v.has("HeaderFailure") {
        assert!(!v.valid, "tcId {id}");
        let err = opened
            .err()
            .unwrap_or_else(|| panic!("tcId {id}: header accepted"));
        assert!(
            matches!(
                err,
                Error::Commitment | Error::InvalidKeySize(_) | Error::Truncated
            ),
            "tcId {id}: unexpected header error {err:?}"
        );
        if v.has("InvalidKeySize") {
            assert!(
                matches!(err, Error::InvalidKeySize(_)),
                "tcId {id}: {err:?}"
            );
        }
        if v.has("WrongKey") || v.has("WrongContext") {
            assert!(matches!(err, Error::Commitment), "tcId {id}: {err:?}");
        }
        assert!(src.taken <= 56, "tcId {id}: read past the header");
        // The range reader rejects it too, whatever range is asked for.
        let mut out = Vec::new();
        let r = read_body_range(
            &mut Cursor::new(&v.ct),
            0,
            &v.key,
            &v.ctx,
            backend,
            0..0,
            &mut out,
        );
        assert!(r.is_err(), "tcId {id}: range reader accepted the header");
        return;
    }
    let mut reader = opened.unwrap_or_else(|e| panic!("tcId {id}: header rejected: {e:?}"));
    // The `Read` path with a buffer larger than a chunk (decrypts straight into the caller's
    // buffer on out-of-place backends) must agree with `copy_to`.
    let mut big = BodyReader::new(&v.ct[..], &v.key, &v.ctx, backend).expect("header");
    let mut via_read = Vec::new();
    let mut buf = vec![0u8; 20_000];
    let read_result = loop {
        match big.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => via_read.extend_from_slice(&buf[..n]),
            Err(e) => break Err(e),
        }
    };
    assert_eq!(read_result.is_ok(), v.valid, "tcId {id}: Read path outcome");
    match (v.valid, v.has("PartialPlaintext")) {
        (true, _) | (false, true) => {
            assert_eq!(
                Some(via_read.len() as u64),
                v.msg_len,
                "tcId {id}: Read path length"
            );
            assert_eq!(
                Some(sha512(&via_read)),
                v.msg_sha512,
                "tcId {id}: Read path SHA-512"
            );
        }
        (false, false) => assert!(via_read.is_empty(), "tcId {id}: Read path released bytes"),
    }
    let mut out = Vec::new();
    let result = reader.copy_to(&mut out);
    if v.valid {
        let n = result.unwrap_or_else(|e| panic!("tcId {id}: {e:?}"));
        assert_eq!(Some(n), v.msg_len, "tcId {id}: length");
        assert_eq!(Some(sha512(&out)), v.msg_sha512, "tcId {id}: SHA-512");
        // The writer reproduces the ciphertext byte for byte from the same salt.
        let salt: [u8; 24] = v.ct[..24].try_into().expect("salt");
        let mut w = BodyWriter::with_salt(Vec::new(), &v.key, &salt, &v.ctx, backend)
            .unwrap_or_else(|e| panic!("tcId {id}: {e:?}"));
        // Uneven writes to exercise buffering.
        for piece in out.chunks(7777) {
            std::io::Write::write_all(&mut w, piece).expect("write");
        }
        let ct = w.finish().unwrap_or_else(|e| panic!("tcId {id}: {e:?}"));
        assert!(ct == v.ct, "tcId {id}: re-encryption differs");
        // Random access over a few ranges.
        let len = out.len() as u64;
        for (a, b) in [
            (0, len),
            (0, 0),
            (len / 3, len / 2),
            (len.saturating_sub(1), len),
        ] {
            let mut part = Vec::new();
            let got = read_body_range(
                &mut Cursor::new(&v.ct),
                0,
                &v.key,
                &v.ctx,
                backend,
                a..b,
                &mut part,
            )
            .unwrap_or_else(|e| panic!("tcId {id}: range {a}..{b}: {e:?}"));
            assert_eq!(got, len, "tcId {id}");
            assert!(part == out[ix(a)..ix(b)], "tcId {id}: range {a}..{b}");
        }
        return;
    }
    let err = result
        .err()
        .unwrap_or_else(|| panic!("tcId {id}: invalid vector decrypted"));
    let kind_ok = match &err {
        // C2SP: a final encrypted chunk shorter than a tag "must return a message truncation
        // error", which is also how 1..=15 garbage bytes after a full chunk present.
        Error::Truncated => v.has("Truncation") || v.has("TrailingData"),
        Error::TamperedChunk { .. } => v.has("ModifiedCiphertext") || v.has("ChunkReordering"),
        Error::BadFinalChunk { .. } => {
            v.has("ModifiedCiphertext")
                || v.has("ChunkReordering")
                || v.has("Truncation")
                || v.has("TrailingData")
        }
        _ => false,
    };
    assert!(
        kind_ok,
        "tcId {id}: error {err:?} does not fit flags {:?}",
        v.flags
    );
    // Only an authenticated prefix may have been released, and exactly the one the vector states.
    if v.has("PartialPlaintext") {
        assert_eq!(
            Some(out.len() as u64),
            v.msg_len,
            "tcId {id}: prefix length"
        );
        assert_eq!(
            Some(sha512(&out)),
            v.msg_sha512,
            "tcId {id}: prefix SHA-512"
        );
    } else {
        assert!(out.is_empty(), "tcId {id}: released {} bytes", out.len());
    }
    // It keeps failing.
    let mut more = [0u8; 64];
    assert!(
        reader.read(&mut more).is_err(),
        "tcId {id}: read after failure"
    );
    assert!(reader.copy_to(&mut Vec::new()).is_err(), "tcId {id}");
    // The range reader authenticates the length through the final chunk: only vectors whose final
    // chunk is valid at its index may pass an empty range; none may pass the full one.
    let mut part = Vec::new();
    let empty = read_body_range(
        &mut Cursor::new(&v.ct),
        0,
        &v.key,
        &v.ctx,
        backend,
        0..0,
        &mut part,
    );
    if !v.has("ValidFinalChunk") {
        assert!(
            empty.is_err(),
            "tcId {id}: range reader accepted the length"
        );
    }
    if let Ok(len) = empty {
        let full = read_body_range(
            &mut Cursor::new(&v.ct),
            0,
            &v.key,
            &v.ctx,
            backend,
            0..len,
            &mut part,
        );
        assert!(full.is_err(), "tcId {id}: full range decrypted");
    }
}

/// A `u64` offset as an index into an in-memory buffer.
fn ix(x: u64) -> usize {
    usize::try_from(x).expect("offset fits usize")
}
