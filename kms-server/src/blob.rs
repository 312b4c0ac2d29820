//! The ciphertext blob, version 1 (FORMATS.md §1): parsing, sealing and opening.
//!
//! Pure functions over bytes; the key service looks the key up between [`BlobHeader::parse`] and
//! [`open`].

use std::collections::HashMap;

use uuid::Uuid;
use zeroize::Zeroizing;

use crate::crypto::{self, GcmKey, len32, put_lp};
use crate::error::{KmsError, Result};

/// `KMSB`.
pub const MAGIC: [u8; 4] = *b"KMSB";
/// The format version this code writes.
pub const VERSION_1: u8 = 1;
/// AES-256-GCM, 96-bit random nonce, 128-bit tag.
pub const SUITE_AES_256_GCM: u8 = 1;
/// Header length: magic, version, suite, key UUID, key version, nonce.
pub const HEADER_LEN: usize = 4 + 1 + 1 + 16 + 4 + 12;
/// GCM tag length.
pub const TAG_LEN: usize = 16;

/// The parsed, not yet authenticated, header of a ciphertext blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobHeader {
    /// The key the blob claims to be encrypted under.
    pub key_uuid: Uuid,
    /// The key version it claims.
    pub key_version: u32,
    nonce: [u8; 12],
}

impl BlobHeader {
    /// Parses the header; fails on anything that is not a complete version-1 blob.
    pub fn parse(blob: &[u8]) -> Result<Self> {
        if blob.len() < 4 || blob[..4] != MAGIC {
            return Err(KmsError::MalformedCiphertext(
                "not a kmsbox ciphertext blob (bad magic)",
            ));
        }
        if blob.len() < 6 {
            return Err(KmsError::MalformedCiphertext("truncated header"));
        }
        if blob[4] != VERSION_1 {
            return Err(KmsError::MalformedCiphertext("unsupported format version"));
        }
        if blob[5] != SUITE_AES_256_GCM {
            return Err(KmsError::MalformedCiphertext("unsupported algorithm suite"));
        }
        if blob.len() < HEADER_LEN + TAG_LEN {
            return Err(KmsError::MalformedCiphertext("truncated"));
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&blob[6..22]);
        let mut version = [0u8; 4];
        version.copy_from_slice(&blob[22..26]);
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&blob[26..38]);
        let key_version = u32::from_be_bytes(version);
        if key_version == 0 {
            return Err(KmsError::MalformedCiphertext("key version 0"));
        }
        Ok(Self {
            key_uuid: Uuid::from_bytes(uuid),
            key_version,
            nonce,
        })
    }

    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..4].copy_from_slice(&MAGIC);
        h[4] = VERSION_1;
        h[5] = SUITE_AES_256_GCM;
        h[6..22].copy_from_slice(self.key_uuid.as_bytes());
        h[22..26].copy_from_slice(&self.key_version.to_be_bytes());
        h[26..38].copy_from_slice(&self.nonce);
        h
    }
}

/// Who may open a blob: the key's tenant and region, under one encryption context.
#[derive(Debug, Clone, Copy)]
pub struct BlobBinding<'a> {
    /// The key's domain.
    pub domain: &'a str,
    /// The key's region.
    pub region: &'a str,
    /// The caller's encryption context.
    pub context: &'a HashMap<String, String>,
}

fn aad(header: &[u8; HEADER_LEN], b: &BlobBinding<'_>) -> Result<Vec<u8>> {
    let mut pairs: Vec<(&String, &String)> = b.context.iter().collect();
    pairs.sort_unstable_by(|x, y| x.0.as_bytes().cmp(y.0.as_bytes()));
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"kmsbox.blob.v1\0");
    out.extend_from_slice(header);
    put_lp(&mut out, "domain", b.domain.as_bytes())?;
    put_lp(&mut out, "region", b.region.as_bytes())?;
    out.extend_from_slice(&len32("encryption context", pairs.len())?);
    for (k, v) in pairs {
        put_lp(&mut out, "encryption context key", k.as_bytes())?;
        put_lp(&mut out, "encryption context value", v.as_bytes())?;
    }
    Ok(out)
}

/// Encrypts `plaintext` under one CMK version. `nonce` must come fresh from the OS random number
/// generator for every call (FORMATS.md §1); the caller draws it together with any other random
/// bytes it needs, to save a system call.
pub fn seal(
    key: &GcmKey,
    key_uuid: Uuid,
    key_version: u32,
    nonce: [u8; 12],
    binding: &BlobBinding<'_>,
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let header = BlobHeader {
        key_uuid,
        key_version,
        nonce,
    }
    .encode();
    crypto::gcm_seal(key, &nonce, &aad(&header, binding)?, &header, plaintext)
}

/// Authenticates and decrypts a blob whose header was parsed into `header`.
pub fn open(
    key: &GcmKey,
    header: &BlobHeader,
    binding: &BlobBinding<'_>,
    blob: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let encoded = header.encode();
    if blob.len() < HEADER_LEN + TAG_LEN || blob[..HEADER_LEN] != encoded {
        return Err(KmsError::CiphertextAuthFailed);
    }
    crypto::gcm_open(
        key,
        &header.nonce,
        &aad(&encoded, binding)?,
        &blob[HEADER_LEN..],
    )
    .ok_or(KmsError::CiphertextAuthFailed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SecretKey;

    fn ctx(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const UUID: Uuid = Uuid::from_u128(0x522d6070_5ad3_4765_9737_9312ddc72cdb);

    fn nonce() -> [u8; 12] {
        let mut n = [0u8; 12];
        crypto::fill_random(&mut n).unwrap();
        n
    }

    fn open_all(key: &GcmKey, b: &BlobBinding<'_>, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let h = BlobHeader::parse(blob)?;
        open(key, &h, b, blob)
    }

    #[test]
    fn round_trip_and_every_binding_is_checked() {
        let key = GcmKey::new(&SecretKey::from_bytes([3u8; 32]));
        let c = ctx(&[("bucket", "b1"), ("object", "o1")]);
        let good = BlobBinding {
            domain: "d1",
            region: "r1",
            context: &c,
        };
        let blob = seal(&key, UUID, 2, nonce(), &good, b"secret").unwrap();
        assert_eq!(BlobHeader::parse(&blob).unwrap().key_version, 2);
        assert_eq!(&open_all(&key, &good, &blob).unwrap()[..], b"secret");

        let other_ctx = ctx(&[("bucket", "b1"), ("object", "o2")]);
        let empty = ctx(&[]);
        // (rule, binding) pairs that must all fail authentication.
        let wrong = [
            (
                "other tenant",
                BlobBinding {
                    domain: "d2",
                    ..good
                },
            ),
            (
                "other region",
                BlobBinding {
                    region: "r2",
                    ..good
                },
            ),
            (
                "other context value",
                BlobBinding {
                    context: &other_ctx,
                    ..good
                },
            ),
            (
                "empty context",
                BlobBinding {
                    context: &empty,
                    ..good
                },
            ),
        ];
        for (rule, b) in wrong {
            assert!(
                matches!(
                    open_all(&key, &b, &blob),
                    Err(KmsError::CiphertextAuthFailed)
                ),
                "{rule}"
            );
        }
        assert!(matches!(
            open_all(
                &GcmKey::new(&SecretKey::from_bytes([4u8; 32])),
                &good,
                &blob
            ),
            Err(KmsError::CiphertextAuthFailed)
        ));
    }

    #[test]
    fn every_bit_flip_and_truncation_fails_and_never_yields_plaintext() {
        let key = GcmKey::new(&SecretKey::from_bytes([3u8; 32]));
        let c = ctx(&[("k", "v")]);
        let b = BlobBinding {
            domain: "d",
            region: "r",
            context: &c,
        };
        let blob = seal(&key, UUID, 1, nonce(), &b, b"0123456789").unwrap();
        for i in 0..blob.len() * 8 {
            let mut t = blob.clone();
            t[i / 8] ^= 1 << (i % 8);
            let r = open_all(&key, &b, &t);
            // Flips in the UUID or version bytes may also surface as "other key"; here, with the
            // key fixed, every flip must be refused.
            assert!(r.is_err(), "bit {i} flipped still opened");
        }
        for len in 0..blob.len() {
            assert!(
                open_all(&key, &b, &blob[..len]).is_err(),
                "truncated to {len}"
            );
        }
        let mut extended = blob.clone();
        extended.push(0);
        assert!(open_all(&key, &b, &extended).is_err(), "appended byte");
    }

    #[test]
    fn malformed_headers_say_what_is_wrong() {
        let cases: [(&[u8], &str); 5] = [
            (b"", "bad magic"),
            (b"XXXX\x01\x01", "bad magic"),
            (b"KMSB\x02\x01", "unsupported format version"),
            (b"KMSB\x01\x07", "unsupported algorithm suite"),
            (b"KMSB\x01\x01abc", "truncated"),
        ];
        for (blob, want) in cases {
            let e = BlobHeader::parse(blob).unwrap_err().to_string();
            assert!(e.contains(want), "{blob:?}: {e}");
        }
    }

    #[test]
    fn context_order_does_not_matter_but_content_does() {
        let key = GcmKey::new(&SecretKey::from_bytes([5u8; 32]));
        let a: HashMap<String, String> = (0..20)
            .map(|i| (format!("k{i}"), format!("v{i}")))
            .collect();
        let b: HashMap<String, String> = (0..20)
            .rev()
            .map(|i| (format!("k{i}"), format!("v{i}")))
            .collect();
        let ba = BlobBinding {
            domain: "d",
            region: "r",
            context: &a,
        };
        let bb = BlobBinding {
            domain: "d",
            region: "r",
            context: &b,
        };
        let blob = seal(&key, UUID, 1, nonce(), &ba, b"x").unwrap();
        assert_eq!(&open_all(&key, &bb, &blob).unwrap()[..], b"x");
        // Length prefixes keep ("ab","c") and ("a","bc") apart.
        let c1 = ctx(&[("ab", "c")]);
        let c2 = ctx(&[("a", "bc")]);
        let blob = seal(
            &key,
            UUID,
            1,
            nonce(),
            &BlobBinding {
                domain: "d",
                region: "r",
                context: &c1,
            },
            b"x",
        )
        .unwrap();
        assert!(
            open_all(
                &key,
                &BlobBinding {
                    domain: "d",
                    region: "r",
                    context: &c2
                },
                &blob
            )
            .is_err()
        );
    }

    /// Pins FORMATS.md §1: a later version must still open what version 1 sealed.
    #[test]
    fn blob_v1_known_answer() {
        let kat: serde_json::Value =
            serde_json::from_str(include_str!("../tests/kat/blob_v1.json")).unwrap();
        let hexf = |k: &str| hex::decode(kat[k].as_str().unwrap()).unwrap();
        let key = GcmKey::new(&SecretKey::from_bytes(
            hexf("cmk_material").try_into().unwrap(),
        ));
        let context: HashMap<String, String> =
            serde_json::from_value(kat["encryption_context"].clone()).unwrap();
        let b = BlobBinding {
            domain: kat["domain"].as_str().unwrap(),
            region: kat["region"].as_str().unwrap(),
            context: &context,
        };
        let blob = hexf("blob");
        let header = BlobHeader::parse(&blob).unwrap();
        assert_eq!(
            header.key_uuid.to_string(),
            kat["key_uuid"].as_str().unwrap()
        );
        assert_eq!(
            u64::from(header.key_version),
            kat["key_version"].as_u64().unwrap()
        );
        assert_eq!(
            &open(&key, &header, &b, &blob).unwrap()[..],
            &hexf("plaintext")[..]
        );
        let nonce: [u8; 12] = hexf("nonce").try_into().unwrap();
        let resealed = seal(
            &key,
            header.key_uuid,
            header.key_version,
            nonce,
            &b,
            &hexf("plaintext"),
        )
        .unwrap();
        assert_eq!(resealed, blob, "version 1 must seal to the pinned bytes");
    }

    proptest::proptest! {
        /// Arbitrary bytes never panic the parser, and never open.
        #[test]
        fn arbitrary_bytes_never_panic_or_open(
            well_formed_start in proptest::prelude::any::<bool>(),
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        ) {
            // Half the cases start like a real blob, so that they reach the AEAD.
            let mut bytes = if well_formed_start { b"KMSB\x01\x01".to_vec() } else { Vec::new() };
            bytes.extend(tail);
            let key = GcmKey::new(&SecretKey::from_bytes([3u8; 32]));
            let c = ctx(&[]);
            let b = BlobBinding { domain: "d", region: "r", context: &c };
            if let Ok(h) = BlobHeader::parse(&bytes) {
                proptest::prop_assert!(open(&key, &h, &b, &bytes).is_err());
            }
        }
    }
}
