//! Known-answer files: objects sealed by this version with fixed keys and salts, committed under
//! `tests/kat/`. Every later version must still open them to the same plaintext, and (while the
//! format is version 1) re-seal them byte for byte.
//!
//! Regenerate (only for a deliberate new format version, never to make a failure go away):
//! `ENVELOPE_WRITE_KAT=1 cargo test -p envelope --test kat`.

use envelope::chunked::SALT_SIZE;
use envelope::{
    Backend, DataKey, Encryptor, Header, KeyProvider, LocalKek, ObjectContext, ObjectKey,
    ObjectKind, WrapScheme, WrappedKey,
};
use sha2::{Digest, Sha512};
use std::io::{Cursor, Write};
use std::path::PathBuf;

const KEK_ID: &str = "kat-kek";

struct Kat {
    name: &'static str,
    len: usize,
    scheme: WrapScheme,
    /// SHA-512 of the whole sealed file, hex: pins every byte.
    sealed_sha512: &'static str,
}

const KATS: &[Kat] = &[
    Kat {
        name: "empty-kw",
        len: 0,
        scheme: WrapScheme::AesKw,
        sealed_sha512: "e29d33ed482364552ba48ffcc10c8c345aa934ecee0e7a75b6827c5ddf818c9d64aac3a95c4535d3c9905617dd290a367e292cef4052f97f07ac459864165629",
    },
    Kat {
        name: "short-kw",
        len: 5,
        scheme: WrapScheme::AesKw,
        sealed_sha512: "3fa6631c8b8a60df9bf99eb6ed7b62b46b88a1cc0d3269751718cfb3b686532aef57b0f0ee6b15097fa54bb01199c2f6c73c5cd26d068dae65a2f4c99e1f7669",
    },
    Kat {
        name: "one-chunk-kwp",
        len: 16384,
        scheme: WrapScheme::AesKwp,
        sealed_sha512: "78e362094eb6bc92e43e9ac7c73402f7413b693c71aa13873807561382fddffecc16ea757335c4e2ce3f4dd1372a98cc4bc5e27e8ddff7c1532088406927885a",
    },
    Kat {
        name: "multi-chunk-kw",
        len: 40000,
        scheme: WrapScheme::AesKw,
        sealed_sha512: "07520da7c2fff76625563c73ba830cc1891cbe080166efd4f66c9c5e14ddcc9f07191005ef96b1b8efa6b5754dc8e469ee1c631baf8c1bc57064f47d37543a01",
    },
];

fn kat_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kat")
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 7 + 3) % 251).to_le_bytes()[0])
        .collect()
}

fn kek(scheme: WrapScheme) -> LocalKek {
    let kek: Vec<u8> = (0u8..32).collect();
    match scheme {
        WrapScheme::AesKwp => LocalKek::aes_kwp(KEK_ID, &kek),
        _ => LocalKek::aes_kw(KEK_ID, &kek),
    }
    .expect("kek")
}

fn context(name: &str) -> ObjectContext {
    ObjectContext::from_pairs([
        ("tenant", "kat-tenant"),
        ("bucket", "kat-bucket"),
        ("object-key", name),
    ])
    .expect("context")
}

/// Seal a KAT with its fixed data key and salt.
fn seal(k: &Kat) -> Vec<u8> {
    let dk_bytes = [0xD0u8 ^ k.len.to_le_bytes()[0]; 32];
    let salt = [0x5Au8 ^ k.name.len().to_le_bytes()[0]; SALT_SIZE];
    let kek = kek(k.scheme);
    let wrapped = WrappedKey {
        scheme: k.scheme,
        bytes: kek.wrap(k.scheme, &dk_bytes).expect("wrap"),
    };
    let key = ObjectKey::new(
        ObjectKind::Single,
        DataKey::from_slice(&dk_bytes).expect("dk"),
        KEK_ID,
        wrapped,
    )
    .expect("object key");
    let mut enc = Encryptor::with_salt(
        &key,
        &context(k.name),
        Vec::new(),
        &salt,
        Backend::default(),
    )
    .expect("encryptor");
    enc.write_all(&plaintext(k.len)).expect("write");
    enc.finish().expect("finish")
}

/// The multipart KAT: one upload, parts 1 (20000 bytes) and 3 (5 bytes), fixed data key and
/// salts. Stored as `multipart.header`, `multipart.manifest` and `multipart.data` (the
/// concatenated part bodies).
fn seal_multipart() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    use envelope::multipart::Upload;
    let dk_bytes = [0xE1u8; 32];
    let kek = kek(WrapScheme::AesKw);
    let wrapped = WrappedKey {
        scheme: WrapScheme::AesKw,
        bytes: kek.wrap(WrapScheme::AesKw, &dk_bytes).expect("wrap"),
    };
    let key = ObjectKey::new(
        ObjectKind::Multipart,
        DataKey::from_slice(&dk_bytes).expect("dk"),
        KEK_ID,
        wrapped,
    )
    .expect("object key");
    let header = key.header().as_bytes().to_vec();
    let upload = Upload::new(key, context("multipart"), Backend::default()).expect("upload");
    let mut data = Vec::new();
    let mut infos = Vec::new();
    for (n, len, salt) in [
        (1u32, 20000usize, [0x11u8; SALT_SIZE]),
        (3, 5, [0x33; SALT_SIZE]),
    ] {
        let mut w = upload
            .part_writer_with_salt(n, Vec::new(), &salt)
            .expect("part");
        w.write_all(&plaintext(len)).expect("write");
        let (body, info) = w.finish().expect("finish");
        data.extend_from_slice(&body);
        infos.push(info);
    }
    let manifest = upload.complete(&infos).expect("complete");
    (header, manifest.as_bytes().to_vec(), data)
}

#[test]
fn multipart_known_answer_files_still_open() {
    use envelope::multipart::MultipartObject;
    let names = ["multipart.header", "multipart.manifest", "multipart.data"];
    let fresh = seal_multipart();
    if std::env::var_os("ENVELOPE_WRITE_KAT").is_some() {
        for (name, bytes) in names.iter().zip([&fresh.0, &fresh.1, &fresh.2]) {
            std::fs::write(kat_dir().join(name), bytes).expect("write kat");
        }
    }
    let read = |n: &str| std::fs::read(kat_dir().join(n)).unwrap_or_else(|e| panic!("{n}: {e}"));
    let (header, manifest, data) = (read(names[0]), read(names[1]), read(names[2]));
    let mut expected = plaintext(20000);
    expected.extend_from_slice(&plaintext(5));
    for &backend in Backend::all() {
        let (h, _) = Header::parse(&header).expect("header");
        let key = ObjectKey::unwrap_with(&kek(WrapScheme::AesKw), h, &context("multipart"))
            .expect("unwrap");
        let obj =
            MultipartObject::open(key, context("multipart"), &manifest, backend).expect("manifest");
        let mut out = Vec::new();
        obj.copy_to(&data[..], &mut out).expect("open");
        assert!(out == expected, "multipart plaintext");
        let mut part = Vec::new();
        obj.read_range(&mut Cursor::new(&data), 19_990..20_003, &mut part)
            .expect("range across parts");
        assert!(part == expected[19_990..20_003]);
    }
    assert!(
        fresh.0 == header,
        "multipart header: this version seals differently"
    );
    assert!(
        fresh.1 == manifest,
        "multipart manifest: this version seals differently"
    );
    assert!(
        fresh.2 == data,
        "multipart data: this version seals differently"
    );
}

#[test]
fn known_answer_files_still_open() {
    let write = std::env::var_os("ENVELOPE_WRITE_KAT").is_some();
    for k in KATS {
        let path = kat_dir().join(format!("{}.kbx", k.name));
        if write {
            std::fs::write(&path, seal(k)).expect("write kat");
        }
        let stored = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", k.name));
        for &backend in Backend::all() {
            let mut out = Vec::new();
            envelope::open(
                &kek(k.scheme),
                &context(k.name),
                &stored[..],
                &mut out,
                backend,
            )
            .unwrap_or_else(|e| panic!("{}: {e}", k.name));
            assert!(out == plaintext(k.len), "{}: plaintext differs", k.name);
            let mut part = Vec::new();
            let a = k.len as u64 / 3;
            envelope::open_range(
                &kek(k.scheme),
                &context(k.name),
                &mut Cursor::new(&stored),
                a..k.len as u64,
                &mut part,
                backend,
            )
            .unwrap_or_else(|e| panic!("{}: {e}", k.name));
            assert!(part == plaintext(k.len)[a as usize..], "{}: range", k.name);
        }
        // Version 1 writers still produce these exact bytes.
        assert!(
            seal(k) == stored,
            "{}: this version seals differently",
            k.name
        );
        let (h, _) = Header::parse(&stored).expect("header");
        assert_eq!(h.key_id(), KEK_ID);
        assert_eq!(h.wrapped_key().scheme, k.scheme);
        if !k.sealed_sha512.is_empty() {
            assert_eq!(
                hex::encode(Sha512::digest(&stored)),
                k.sealed_sha512,
                "{}: file changed",
                k.name
            );
        }
        // The object context is part of the answer.
        let err = envelope::open(
            &kek(k.scheme),
            &context("other"),
            &stored[..],
            &mut Vec::new(),
            Backend::default(),
        );
        assert!(
            matches!(err, Err(envelope::Error::Commitment)),
            "{}",
            k.name
        );
        let _ = kek(k.scheme)
            .decrypt_data_key(KEK_ID, h.wrapped_key(), &context(k.name))
            .expect("unwrap");
    }
}
