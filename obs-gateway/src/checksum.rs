//! The additional checksums S3 clients send with uploads (`x-amz-checksum-{crc32,crc32c,sha1,
//! sha256}`, as a header or as an `aws-chunked` trailer): computed over the decoded body and
//! compared before anything is committed. An algorithm the gateway cannot check is refused, not
//! ignored: a checksum the client believes was verified must have been.

use base64::Engine;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// The supported algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// CRC-32 (IEEE 802.3, as zlib).
    Crc32,
    /// CRC-32C (Castagnoli).
    Crc32c,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
}

impl Algorithm {
    /// Whether `name` is the header of a checksum value this gateway checks and keeps.
    pub fn is_header(name: &str) -> bool {
        matches!(Self::of_name(name), Ok(Some(_)))
    }

    /// The algorithm of a header or trailer name (`x-amz-checksum-crc32`, ...); `Err` for
    /// another `x-amz-checksum-` name, `Ok(None)` for names that are not checksums.
    pub fn of_name(name: &str) -> Result<Option<Self>, String> {
        let Some(alg) = name
            .to_ascii_lowercase()
            .strip_prefix("x-amz-checksum-")
            .map(str::to_owned)
        else {
            return Ok(None);
        };
        match alg.as_str() {
            "crc32" => Ok(Some(Algorithm::Crc32)),
            "crc32c" => Ok(Some(Algorithm::Crc32c)),
            "sha1" => Ok(Some(Algorithm::Sha1)),
            "sha256" => Ok(Some(Algorithm::Sha256)),
            // Not a checksum value: how the client computed its full-object checksum.
            "type" => Ok(None),
            other => Err(format!("the checksum algorithm {other} is not supported")),
        }
    }
}

const fn crc_table(poly: u32) -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0u32;
    while i < 256 {
        let mut c = i;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { poly ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[i as usize] = c;
        i += 1;
    }
    table
}

static CRC32: [u32; 256] = crc_table(0xEDB8_8320);
static CRC32C: [u32; 256] = crc_table(0x82F6_3B78);

/// A running checksum.
#[derive(Debug, Clone)]
pub enum Checksum {
    /// CRC state (inverted), and its table.
    Crc(u32, &'static [u32; 256]),
    /// SHA-1.
    Sha1(Sha1),
    /// SHA-256.
    Sha256(Sha256),
}

impl Checksum {
    /// A fresh state.
    pub fn new(alg: Algorithm) -> Self {
        match alg {
            Algorithm::Crc32 => Checksum::Crc(!0, &CRC32),
            Algorithm::Crc32c => Checksum::Crc(!0, &CRC32C),
            Algorithm::Sha1 => Checksum::Sha1(Sha1::new()),
            Algorithm::Sha256 => Checksum::Sha256(Sha256::new()),
        }
    }

    /// Adds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Checksum::Crc(c, table) => {
                for &b in data {
                    // The low byte of the state, without a truncating cast.
                    let low = c.to_le_bytes()[0];
                    *c = table[usize::from(low ^ b)] ^ (*c >> 8);
                }
            }
            Checksum::Sha1(h) => h.update(data),
            Checksum::Sha256(h) => h.update(data),
        }
    }

    /// The value as S3 writes it: base64 of the big-endian bytes.
    pub fn finish(self) -> String {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        match self {
            Checksum::Crc(c, _) => b64(&(!c).to_be_bytes()),
            Checksum::Sha1(h) => b64(&h.finalize()),
            Checksum::Sha256(h) => b64(&h.finalize()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(alg: Algorithm, data: &[u8]) -> String {
        let mut c = Checksum::new(alg);
        c.update(data);
        c.finish()
    }

    /// The standard check values of "123456789" (CRC-32 0xCBF43926, CRC-32C 0xE3069283).
    #[test]
    fn check_values_match_the_standards() {
        let b64 = |v: u32| base64::engine::general_purpose::STANDARD.encode(v.to_be_bytes());
        assert_eq!(of(Algorithm::Crc32, b"123456789"), b64(0xCBF4_3926));
        assert_eq!(of(Algorithm::Crc32c, b"123456789"), b64(0xE306_9283));
        assert_eq!(
            of(Algorithm::Sha256, b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(
            Algorithm::of_name("x-amz-checksum-crc64nvme").map_err(|_| ()),
            Err(())
        );
        assert_eq!(Algorithm::of_name("x-amz-meta-x"), Ok(None));
    }
}
