//! The additional checksums S3 clients send with uploads (`x-amz-checksum-{crc32,crc32c,
//! crc64nvme,sha1,sha256}`, as a header or as an `aws-chunked` trailer): computed over the decoded body and
//! compared before anything is committed. An algorithm the gateway cannot check is refused, not
//! ignored: a checksum the client believes was verified must have been. A multipart object's
//! checksum is made from its parts' values ([`UploadChecksum::object_value`]): composite (the
//! checksum of the parts' values) or, for the CRCs, full object (the parts' CRCs combined).

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
    /// CRC-64/NVME (S3's default since 2025; full-object values only).
    Crc64Nvme,
    /// CRC-64/XZ, which OBS calls CRC64-ECMA (the OBS SDK's `isAttachCrc64`): OBS's own, its
    /// value a decimal integer, full-object only.
    Crc64Ecma,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 6] = [
        Algorithm::Crc32,
        Algorithm::Crc32c,
        Algorithm::Crc64Nvme,
        Algorithm::Crc64Ecma,
        Algorithm::Sha1,
        Algorithm::Sha256,
    ];

    /// Whether `name` is the header of a checksum value this gateway checks and keeps.
    pub fn is_header(name: &str) -> bool {
        matches!(Self::of_name(name), Ok(Some(_)))
    }

    /// The algorithm of a header or trailer name (`x-amz-checksum-crc32`, ..., and OBS's
    /// `x-obs-checksum-crc64ecma`, which the OBS SDK names `x-amz-` in its S3 modes); `Err` for
    /// another checksum name, `Ok(None)` for names that are not checksums.
    pub fn of_name(name: &str) -> Result<Option<Self>, String> {
        let lower = name.to_ascii_lowercase();
        let alg = match (
            lower.strip_prefix("x-amz-checksum-"),
            lower.strip_prefix("x-obs-checksum-"),
        ) {
            (Some(alg), _) => alg,
            (None, Some("crc64ecma")) => return Ok(Some(Algorithm::Crc64Ecma)),
            (None, Some(other)) => {
                return Err(format!("the checksum algorithm {other} is not supported"));
            }
            (None, None) => return Ok(None),
        };
        match alg {
            "crc32" => Ok(Some(Algorithm::Crc32)),
            "crc32c" => Ok(Some(Algorithm::Crc32c)),
            "crc64nvme" => Ok(Some(Algorithm::Crc64Nvme)),
            "crc64ecma" => Ok(Some(Algorithm::Crc64Ecma)),
            "sha1" => Ok(Some(Algorithm::Sha1)),
            "sha256" => Ok(Some(Algorithm::Sha256)),
            // Not a checksum value: how the client computed its full-object checksum.
            "type" => Ok(None),
            other => Err(format!("the checksum algorithm {other} is not supported")),
        }
    }

    /// The algorithm S3 names in `x-amz-checksum-algorithm` (`CRC32`, `SHA256`, ...), any case.
    pub fn of_algorithm_name(name: &str) -> Result<Self, String> {
        match name.trim().to_ascii_uppercase().as_str() {
            "CRC32" => Ok(Algorithm::Crc32),
            "CRC32C" => Ok(Algorithm::Crc32c),
            "CRC64NVME" => Ok(Algorithm::Crc64Nvme),
            "SHA1" => Ok(Algorithm::Sha1),
            "SHA256" => Ok(Algorithm::Sha256),
            other => Err(format!("the checksum algorithm {other} is not supported")),
        }
    }

    /// Its name in `x-amz-checksum-algorithm`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "CRC32",
            Algorithm::Crc32c => "CRC32C",
            Algorithm::Crc64Nvme => "CRC64NVME",
            Algorithm::Crc64Ecma => "CRC64ECMA",
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
        }
    }

    /// The header that carries a value of it.
    pub fn header(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "x-amz-checksum-crc32",
            Algorithm::Crc32c => "x-amz-checksum-crc32c",
            Algorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Algorithm::Crc64Ecma => "x-obs-checksum-crc64ecma",
            Algorithm::Sha1 => "x-amz-checksum-sha1",
            Algorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// The XML element that carries a value of it (`ChecksumCRC32`, ...).
    pub fn element(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "ChecksumCRC32",
            Algorithm::Crc32c => "ChecksumCRC32C",
            Algorithm::Crc64Nvme => "ChecksumCRC64NVME",
            Algorithm::Crc64Ecma => "ChecksumCRC64ECMA",
            Algorithm::Sha1 => "ChecksumSHA1",
            Algorithm::Sha256 => "ChecksumSHA256",
        }
    }

    /// Its CRC; `None` for a hash, whose values cannot be combined.
    fn crc(self) -> Option<Crc> {
        match self {
            Algorithm::Crc32 => Some(CRC32),
            Algorithm::Crc32c => Some(CRC32C),
            Algorithm::Crc64Nvme => Some(CRC64NVME),
            Algorithm::Crc64Ecma => Some(CRC64ECMA),
            Algorithm::Sha1 | Algorithm::Sha256 => None,
        }
    }
}

/// How a multipart object's checksum is made from its parts' (`x-amz-checksum-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combination {
    /// The checksum of the parts' checksums, written `value-N` (N parts). S3's default.
    Composite,
    /// The checksum of the whole object, as if it had been uploaded whole: CRCs only.
    FullObject,
}

impl Combination {
    /// Its name in `x-amz-checksum-type`.
    pub fn name(self) -> &'static str {
        match self {
            Combination::Composite => "COMPOSITE",
            Combination::FullObject => "FULL_OBJECT",
        }
    }

    /// The combination a kept value was made by: a composite value ends in `-N`, which base64
    /// never contains.
    pub fn of_value(value: &str) -> Self {
        if value.contains('-') {
            Combination::Composite
        } else {
            Combination::FullObject
        }
    }
}

/// The checksum a multipart upload was begun with (`x-amz-checksum-algorithm`, and
/// `x-amz-checksum-type`): every part must carry a value of the algorithm, and the object gets
/// the combination of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadChecksum {
    /// The algorithm of every part's value.
    pub algorithm: Algorithm,
    /// How the object's value is made from them.
    pub combination: Combination,
}

impl UploadChecksum {
    /// The upload's checksum from its initiation's `x-amz-checksum-algorithm` and
    /// `x-amz-checksum-type`: `None` without either; a type without an algorithm, an unknown
    /// type, a full-object hash (which parts cannot make) or a composite CRC-64/NVME is an
    /// error, as S3 refuses them. The type defaults to composite, full object for CRC-64/NVME.
    pub fn of_headers(
        algorithm: Option<&str>,
        combination: Option<&str>,
    ) -> Result<Option<Self>, String> {
        let Some(algorithm) = algorithm else {
            return match combination {
                None => Ok(None),
                Some(_) => Err("x-amz-checksum-type can only be used with \
                                x-amz-checksum-algorithm"
                    .into()),
            };
        };
        let algorithm = Algorithm::of_algorithm_name(algorithm)?;
        let combination = match combination
            .map(|c| c.trim().to_ascii_uppercase())
            .as_deref()
        {
            // CRC-64/NVME makes full-object values only, and is so by default (as S3).
            None | Some("FULL_OBJECT") if algorithm == Algorithm::Crc64Nvme => {
                Combination::FullObject
            }
            Some("COMPOSITE") if algorithm == Algorithm::Crc64Nvme => {
                return Err(
                    "the COMPOSITE checksum type cannot be used with the CRC64NVME \
                            algorithm: its values are full-object only"
                        .into(),
                );
            }
            None | Some("COMPOSITE") => Combination::Composite,
            Some("FULL_OBJECT") if algorithm.crc().is_some() => Combination::FullObject,
            Some("FULL_OBJECT") => {
                return Err(format!(
                    "the FULL_OBJECT checksum type cannot be used with the {} algorithm: \
                     only a CRC of the parts makes one of the whole object",
                    algorithm.name()
                ));
            }
            Some(other) => {
                return Err(format!(
                    "the checksum type {other} is not one of COMPOSITE, FULL_OBJECT"
                ));
            }
        };
        Ok(Some(Self {
            algorithm,
            combination,
        }))
    }

    /// As its column keeps it: `CRC32 COMPOSITE`.
    pub fn to_column(self) -> String {
        format!("{} {}", self.algorithm.name(), self.combination.name())
    }

    /// From its column.
    pub fn from_column(column: &str) -> Result<Self, String> {
        let (algorithm, combination) = column
            .split_once(' ')
            .ok_or_else(|| format!("an upload checksum column {column:?}"))?;
        Self::of_headers(Some(algorithm), Some(combination))?
            .ok_or_else(|| format!("an upload checksum column {column:?}"))
    }

    /// The object's value from its parts' values (base64, as kept) and plaintext lengths, in
    /// part order: the checksum of the parts' decoded values with `-N` (composite), or the CRC
    /// of the whole object computed from the parts' CRCs (full object).
    pub fn object_value(self, parts: &[(&str, u64)]) -> Result<String, String> {
        match (self.combination, self.algorithm.crc()) {
            (Combination::FullObject, Some(crc)) => {
                let mut whole: Option<u64> = None;
                for (value, len) in parts.iter().copied() {
                    let part = crc.decode(value).ok_or_else(|| {
                        format!("a part's {} {value:?} is not one", self.algorithm.name())
                    })?;
                    whole = Some(match whole {
                        None => part,
                        Some(before) => crc_combine(crc, before, part, len),
                    });
                }
                let whole = whole.ok_or_else(|| "an object of no parts".to_owned())?;
                Ok(crc.encode(whole))
            }
            _ => {
                let b64 = base64::engine::general_purpose::STANDARD;
                let decoded = parts
                    .iter()
                    .map(|(v, _)| {
                        b64.decode(v)
                            .map_err(|_| format!("a part's checksum {v:?} is not base64"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let mut c = Checksum::new(self.algorithm);
                for value in &decoded {
                    c.update(value);
                }
                Ok(format!("{}-{}", c.finish(), decoded.len()))
            }
        }
    }
}

/// A reflected CRC (S3's CRC-32, CRC-32C and CRC-64/NVME): its reversed polynomial, its width
/// in bytes and its tables; it starts from all ones and its value is the state inverted.
#[derive(Debug, Clone, Copy)]
pub struct Crc {
    poly: u64,
    bytes: usize,
    tables: &'static Tables,
    /// Its values are written as decimal integers (OBS's CRC64-ECMA), not base64 (S3's).
    decimal: bool,
}

/// A CRC's eight tables: `[k][i]` is the state that byte `i` followed by `k` zero bytes leaves
/// (from a zero state), so that eight bytes are folded in one step (slicing-by-8), each through
/// its own table, rather than one byte after another.
type Tables = [[u64; 256]; 8];

impl Crc {
    /// The value whose bits are all ones over the width.
    const fn ones(self) -> u64 {
        u64::MAX >> (64 - 8 * self.bytes)
    }

    /// A value as it is written: base64 of its big-endian bytes over the width, or decimal.
    fn encode(self, value: u64) -> String {
        if self.decimal {
            value.to_string()
        } else {
            base64::engine::general_purpose::STANDARD.encode(&value.to_be_bytes()[8 - self.bytes..])
        }
    }

    /// A value from how it is written; `None` when it is not one of this CRC's.
    fn decode(self, text: &str) -> Option<u64> {
        if self.decimal {
            return text.trim().parse().ok();
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?;
        (bytes.len() == self.bytes)
            .then(|| bytes.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b)))
    }
}

const fn crc_tables(poly: u64) -> Tables {
    let mut t = [[0u64; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u64;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 != 0 { poly ^ (c >> 1) } else { c >> 1 };
            bit += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let before = t[k - 1][i];
            t[k][i] = (before >> 8) ^ t[0][(before & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

/// CRC-32 (IEEE 802.3, zlib's), CRC-32C (Castagnoli) and CRC-64/NVME, as their catalogue entries
/// give the polynomials (reflected here).
const CRC32_POLY: u64 = 0x04C1_1DB7_u32.reverse_bits() as u64;
const CRC32C_POLY: u64 = 0x1EDC_6F41_u32.reverse_bits() as u64;
const CRC64NVME_POLY: u64 = 0xAD93_D235_94C9_3659_u64.reverse_bits();
const CRC64ECMA_POLY: u64 = 0x42F0_E1EB_A9EA_3693_u64.reverse_bits();
static CRC32_TABLES: Tables = crc_tables(CRC32_POLY);
static CRC32C_TABLES: Tables = crc_tables(CRC32C_POLY);
static CRC64NVME_TABLES: Tables = crc_tables(CRC64NVME_POLY);
static CRC64ECMA_TABLES: Tables = crc_tables(CRC64ECMA_POLY);
const CRC32: Crc = Crc {
    poly: CRC32_POLY,
    bytes: 4,
    tables: &CRC32_TABLES,
    decimal: false,
};
const CRC32C: Crc = Crc {
    poly: CRC32C_POLY,
    bytes: 4,
    tables: &CRC32C_TABLES,
    decimal: false,
};
const CRC64NVME: Crc = Crc {
    poly: CRC64NVME_POLY,
    bytes: 8,
    tables: &CRC64NVME_TABLES,
    decimal: false,
};
const CRC64ECMA: Crc = Crc {
    poly: CRC64ECMA_POLY,
    bytes: 8,
    tables: &CRC64ECMA_TABLES,
    decimal: true,
};

/// `mat` (a matrix over GF(2), one column per word) times `vec`.
fn gf2_times(mat: &[u64; 64], mut vec: u64) -> u64 {
    let mut sum = 0;
    for column in mat {
        if vec == 0 {
            break;
        }
        if vec & 1 != 0 {
            sum ^= column;
        }
        vec >>= 1;
    }
    sum
}

/// `mat` squared.
fn gf2_square(mat: &[u64; 64]) -> [u64; 64] {
    mat.map(|column| gf2_times(mat, column))
}

/// The CRC of A followed by B, from the CRC of A, the CRC of B and B's length, as zlib's
/// `crc32_combine`: A's CRC is carried through `len_b` zero bytes by repeated squaring of the
/// one-zero-bit operator, then B's is added.
fn crc_combine(crc: Crc, crc_a: u64, crc_b: u64, len_b: u64) -> u64 {
    // The operator of one zero bit: shift right, and feed the polynomial back from bit 0. Only
    // the width's columns are used; the others stay zero.
    let mut one_bit = [0u64; 64];
    one_bit[0] = crc.poly;
    let mut row = 1u64;
    for column in one_bit.iter_mut().take(8 * crc.bytes).skip(1) {
        *column = row;
        row <<= 1;
    }
    // Four zero bits, then one zero byte at the loop's first squaring.
    let mut op = gf2_square(&gf2_square(&one_bit));
    let mut value = crc_a;
    let mut len = len_b;
    while len != 0 {
        op = gf2_square(&op);
        if len & 1 != 0 {
            value = gf2_times(&op, value);
        }
        len >>= 1;
    }
    value ^ crc_b
}

/// A running checksum.
#[derive(Debug, Clone)]
pub enum Checksum {
    /// A CRC's state (inverted), and the CRC.
    Crc(u64, Crc),
    /// SHA-1.
    Sha1(Sha1),
    /// SHA-256.
    Sha256(Sha256),
}

impl Checksum {
    /// A fresh state.
    pub fn new(alg: Algorithm) -> Self {
        match (alg.crc(), alg) {
            (Some(crc), _) => Checksum::Crc(crc.ones(), crc),
            (None, Algorithm::Sha1) => Checksum::Sha1(Sha1::new()),
            (None, _) => Checksum::Sha256(Sha256::new()),
        }
    }

    /// Adds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Checksum::Crc(c, crc) => {
                let t = crc.tables;
                let (blocks, rest) = data.as_chunks::<8>();
                for block in blocks {
                    // The state (at most 8 bytes) and the next 8 bytes, folded at once: byte j
                    // still has 7 - j bytes after it in the block.
                    let x = (*c ^ u64::from_le_bytes(*block)).to_le_bytes();
                    *c = t[7][usize::from(x[0])]
                        ^ t[6][usize::from(x[1])]
                        ^ t[5][usize::from(x[2])]
                        ^ t[4][usize::from(x[3])]
                        ^ t[3][usize::from(x[4])]
                        ^ t[2][usize::from(x[5])]
                        ^ t[1][usize::from(x[6])]
                        ^ t[0][usize::from(x[7])];
                }
                for &b in rest {
                    // The low byte of the state, without a truncating cast.
                    let low = c.to_le_bytes()[0];
                    *c = t[0][usize::from(low ^ b)] ^ (*c >> 8);
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
            Checksum::Crc(c, crc) => crc.encode(!c & crc.ones()),
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
    /// The check values of "123456789" in the CRC catalogue (CRC-32 0xCBF43926, CRC-32C
    /// 0xE3069283, CRC-64/NVME 0xAE8B14860A799888).
    fn check_values_match_the_standards() {
        let b64 = |v: &[u8]| base64::engine::general_purpose::STANDARD.encode(v);
        assert_eq!(
            of(Algorithm::Crc32, b"123456789"),
            b64(&0xCBF4_3926_u32.to_be_bytes())
        );
        assert_eq!(
            of(Algorithm::Crc32c, b"123456789"),
            b64(&0xE306_9283_u32.to_be_bytes())
        );
        assert_eq!(
            of(Algorithm::Crc64Nvme, b"123456789"),
            b64(&0xAE8B_1486_0A79_9888_u64.to_be_bytes())
        );
        // CRC-64/XZ, OBS's CRC64-ECMA, written in decimal as the OBS SDK writes it.
        assert_eq!(
            of(Algorithm::Crc64Ecma, b"123456789"),
            0x995D_C9BB_DF19_39FA_u64.to_string()
        );
        for name in ["x-obs-checksum-crc64ecma", "x-amz-checksum-crc64ecma"] {
            assert_eq!(Algorithm::of_name(name), Ok(Some(Algorithm::Crc64Ecma)));
        }
        assert!(Algorithm::of_name("x-obs-checksum-crc32").is_err());
        assert_eq!(
            of(Algorithm::Sha256, b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(
            Algorithm::of_name("x-amz-checksum-crc64").map_err(|_| ()),
            Err(())
        );
        assert_eq!(Algorithm::of_name("x-amz-meta-x"), Ok(None));
    }

    /// The algorithms that are CRCs.
    const CRCS: [Algorithm; 4] = [
        Algorithm::Crc32,
        Algorithm::Crc32c,
        Algorithm::Crc64Nvme,
        Algorithm::Crc64Ecma,
    ];

    /// Bytes that are not all one value, so that a wrong split or order shows.
    fn sample(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| u8::try_from(i * 131 % 251).unwrap_or_default())
            .collect()
    }

    #[test]
    fn eight_bytes_at_a_time_give_the_crc_of_one_byte_at_a_time() {
        let data = sample(4099);
        for alg in CRCS {
            let crc = alg.crc().unwrap();
            let one_at_a_time = |bytes: &[u8]| {
                let mut c = crc.ones();
                for &b in bytes {
                    c = crc.tables[0][usize::from(c.to_le_bytes()[0] ^ b)] ^ (c >> 8);
                }
                crc.encode(!c & crc.ones())
            };
            for len in (0..=70).chain([4095, 4096, 4097, 4099]) {
                let want = one_at_a_time(&data[..len]);
                // Fed whole, and in pieces whose lengths are not multiples of 8.
                assert_eq!(of(alg, &data[..len]), want, "{alg:?} {len}");
                let mut c = Checksum::new(alg);
                for piece in data[..len].chunks(13) {
                    c.update(piece);
                }
                assert_eq!(c.finish(), want, "{alg:?} {len} in pieces");
            }
        }
    }

    #[test]
    fn a_crc_of_two_pieces_combines_to_the_crc_of_both() {
        let data = sample(300_001);
        for alg in CRCS {
            let params = alg.crc().unwrap();
            let crc = |b: &[u8]| {
                let mut c = Checksum::new(alg);
                c.update(b);
                match c {
                    Checksum::Crc(state, params) => !state & params.ones(),
                    _ => unreachable!(),
                }
            };
            for split in [0, 1, 7, 8, 255, 4096, 100_000, 299_999, 300_001] {
                let (a, b) = data.split_at(split);
                assert_eq!(
                    crc_combine(params, crc(a), crc(b), b.len() as u64),
                    crc(&data),
                    "{alg:?} split at {split}"
                );
            }
        }
    }

    #[test]
    fn an_objects_value_is_its_parts_combined_as_the_upload_said() {
        let data = sample(250_000);
        let parts: Vec<&[u8]> = vec![&data[..102_400], &data[102_400..204_800], &data[204_800..]];
        for alg in Algorithm::ALL {
            let values: Vec<String> = parts.iter().map(|p| of(alg, p)).collect();
            let given: Vec<(&str, u64)> = values
                .iter()
                .zip(&parts)
                .map(|(v, p)| (v.as_str(), p.len() as u64))
                .collect();
            // Composite (S3's, whose values are base64): the checksum of the parts' raw values,
            // then the number of parts.
            if alg != Algorithm::Crc64Ecma {
                let mut raw = Vec::new();
                for v in &values {
                    raw.extend(base64::engine::general_purpose::STANDARD.decode(v).unwrap());
                }
                let composite = UploadChecksum {
                    algorithm: alg,
                    combination: Combination::Composite,
                };
                let value = composite.object_value(&given).unwrap();
                assert_eq!(value, format!("{}-3", of(alg, &raw)), "{alg:?}");
                assert_eq!(Combination::of_value(&value), Combination::Composite);
            }
            // Full object: a CRC's value is the whole object's, as if uploaded in one piece.
            if alg.crc().is_some() {
                let full = UploadChecksum {
                    algorithm: alg,
                    combination: Combination::FullObject,
                };
                let value = full.object_value(&given).unwrap();
                assert_eq!(value, of(alg, &data), "{alg:?}");
                assert_eq!(Combination::of_value(&value), Combination::FullObject);
                assert_eq!(
                    full.object_value(&given[..1]).unwrap(),
                    values[0],
                    "one part"
                );
            }
        }
        let crc = UploadChecksum {
            algorithm: Algorithm::Crc32,
            combination: Combination::FullObject,
        };
        assert!(crc.object_value(&[("not base64!", 1)]).is_err());
        assert!(crc.object_value(&[("AAAAAAA=", 1)]).is_err(), "5 bytes");
        assert!(crc.object_value(&[]).is_err());
    }

    #[test]
    fn an_upload_takes_the_algorithms_and_types_s3_takes() {
        use Algorithm::*;
        use Combination::*;
        for (algorithm, combination, taken) in [
            (None, None, Ok(None)),
            (Some("CRC32"), None, Ok(Some((Crc32, Composite)))),
            (
                Some("crc32c"),
                Some("full_object"),
                Ok(Some((Crc32c, FullObject))),
            ),
            (Some("SHA1"), Some("COMPOSITE"), Ok(Some((Sha1, Composite)))),
            (Some("SHA256"), None, Ok(Some((Sha256, Composite)))),
            (Some("SHA256"), Some("FULL_OBJECT"), Err("FULL_OBJECT")),
            (Some("SHA1"), Some("FULL_OBJECT"), Err("FULL_OBJECT")),
            (Some("CRC64NVME"), None, Ok(Some((Crc64Nvme, FullObject)))),
            (
                Some("crc64nvme"),
                Some("FULL_OBJECT"),
                Ok(Some((Crc64Nvme, FullObject))),
            ),
            (Some("CRC64NVME"), Some("COMPOSITE"), Err("COMPOSITE")),
            (Some("CRC64"), None, Err("CRC64")),
            (Some("MD5"), None, Err("MD5")),
            (Some("CRC32"), Some("BOTH"), Err("BOTH")),
            (None, Some("COMPOSITE"), Err("x-amz-checksum-algorithm")),
        ] {
            let got = UploadChecksum::of_headers(algorithm, combination);
            match taken {
                Ok(want) => {
                    let got = got.unwrap();
                    assert_eq!(
                        got.map(|u| (u.algorithm, u.combination)),
                        want,
                        "{algorithm:?} {combination:?}"
                    );
                    if let Some(u) = got {
                        assert_eq!(UploadChecksum::from_column(&u.to_column()), Ok(u));
                    }
                }
                Err(names) => {
                    let e = got.unwrap_err();
                    assert!(e.contains(names), "{algorithm:?} {combination:?}: {e}");
                }
            }
        }
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::of_name(alg.header()), Ok(Some(alg)));
            // OBS's CRC64-ECMA is no algorithm an S3 upload can be begun with.
            let by_name = Algorithm::of_algorithm_name(alg.name());
            if alg == Algorithm::Crc64Ecma {
                assert!(by_name.is_err());
            } else {
                assert_eq!(by_name, Ok(alg));
            }
        }
        assert!(UploadChecksum::from_column("CRC32").is_err());
    }
}
