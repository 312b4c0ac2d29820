//! JSON written by hand where a data-path call's answer or audit line is built on every request:
//! one buffer, no intermediate `String`s, hex and base64 encoded straight into it. The output is
//! what `serde_json` writes for the same object (the tests hold them equal); serde's per-byte
//! escaping and per-field machinery cost as much as the call's cryptography.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// Appends `s` escaped as the inside of a JSON string, as `serde_json` escapes it: `"`, `\\` and
/// control characters; everything else, UTF-8 included, as it is.
pub fn escaped(out: &mut Vec<u8>, s: &str) {
    if !needs_escape(s.as_bytes()) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&s.as_bytes()[plain..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        plain = i + 1;
    }
    out.extend_from_slice(&s.as_bytes()[plain..]);
}

/// Whether `s` holds a byte JSON escapes: a control character, `"` or `\\`. Most values hold
/// none, and are short: eight bytes at a time, with no loop over a tail, costs a third of a
/// byte-wise scan on an audit line's fields.
pub(crate) fn needs_escape(s: &[u8]) -> bool {
    const fn each(b: u8) -> u64 {
        u64::from_ne_bytes([b; 8])
    }
    // Non-zero exactly when some byte of `x` is zero.
    let zero_byte = |x: u64| x.wrapping_sub(each(1)) & !x & each(0x80);
    // A byte below 0x20 has none of its top three bits set.
    let flagged =
        |x: u64| zero_byte(x & each(0xE0)) | zero_byte(x ^ each(b'"')) | zero_byte(x ^ each(b'\\'));
    let Some(tail) = s.len().checked_sub(8) else {
        let mut word = [b'a'; 8];
        word[..s.len()].copy_from_slice(s);
        return flagged(u64::from_ne_bytes(word)) != 0;
    };
    let (words, _) = s.as_chunks::<8>();
    let mut any = words
        .iter()
        .fold(0, |any, w| any | flagged(u64::from_ne_bytes(*w)));
    // The last eight bytes, overlapping the words: the bytes past them need no loop of their own.
    if let Some(last) = s[tail..].as_chunks::<8>().0.first() {
        any |= flagged(u64::from_ne_bytes(*last));
    }
    any != 0
}

/// Appends `"name":"value"` with `value` escaped: one string field of an object being written.
/// `name` is the caller's constant and is written as it is.
pub fn str_field(out: &mut Vec<u8>, name: &str, value: &str) {
    debug_assert!(
        !name.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\'),
        "field names are constants that need no escape"
    );
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":\"");
    escaped(out, value);
    out.push(b'"');
}

/// Each byte's two upper-case hexadecimal digits.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 0xf]];
        i += 1;
    }
    t
};

/// Appends `bytes` in upper-case hexadecimal, the Huawei API's encoding of key material.
pub fn hex_upper(out: &mut Vec<u8>, bytes: &[u8]) {
    let start = out.len();
    out.resize(start + bytes.len() * 2, 0);
    let (pairs, _) = out[start..].as_chunks_mut::<2>();
    for (pair, &b) in pairs.iter_mut().zip(bytes) {
        *pair = HEX_PAIRS[usize::from(b)];
    }
}

/// One JSON object, written field by field. Field names are the caller's constants and are
/// written as they are; values are escaped or encoded.
pub struct Object {
    out: Vec<u8>,
    empty: bool,
}

/// Only the length: an answer may hold a data key.
impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "json::Object({} bytes)", self.out.len())
    }
}

impl Object {
    /// An object whose text is expected to take about `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut out = Vec::with_capacity(capacity);
        out.push(b'{');
        Self { out, empty: true }
    }

    fn name(&mut self, name: &str) {
        debug_assert!(
            !name.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\'),
            "field names are constants that need no escape"
        );
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    /// A string field.
    pub fn str(&mut self, name: &str, value: &str) -> &mut Self {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        str_field(&mut self.out, name, value);
        self
    }

    /// A string field holding a UUID, hyphenated in lower case.
    pub fn uuid(&mut self, name: &str, uuid: &uuid::Uuid) -> &mut Self {
        self.name(name);
        self.out.push(b'"');
        let mut buf = uuid::Uuid::encode_buffer();
        self.out
            .extend_from_slice(uuid.hyphenated().encode_lower(&mut buf).as_bytes());
        self.out.push(b'"');
        self
    }

    /// A string field holding `bytes` in upper-case hexadecimal.
    pub fn hex_upper(&mut self, name: &str, bytes: &[u8]) -> &mut Self {
        self.name(name);
        self.out.push(b'"');
        hex_upper(&mut self.out, bytes);
        self.out.push(b'"');
        self
    }

    /// A string field holding `bytes` in standard base64 with padding.
    pub fn base64(&mut self, name: &str, bytes: &[u8]) -> &mut Self {
        self.name(name);
        self.out.push(b'"');
        let start = self.out.len();
        self.out.resize(start + bytes.len().div_ceil(3) * 4, 0);
        let written = BASE64
            .encode_slice(bytes, &mut self.out[start..])
            .unwrap_or(0);
        self.out.truncate(start + written);
        self.out.push(b'"');
        self
    }

    /// A string field holding a number, as the Huawei API sends numbers.
    pub fn number_str(&mut self, name: &str, value: u64) -> &mut Self {
        self.name(name);
        self.out.push(b'"');
        self.out
            .extend_from_slice(itoa_u64(value, &mut [0u8; 20]).as_bytes());
        self.out.push(b'"');
        self
    }

    /// The object's text.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.push(b'}');
        self.out
    }
}

/// `value` in decimal, in `buf`.
fn itoa_u64(mut value: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings that need every kind of escape, and some that need none.
    const AWKWARD: &[&str] = &[
        "",
        "plain",
        "quote \" backslash \\ slash /",
        "line\nreturn\rtab\tback\u{8}feed\u{c}",
        "\u{0}\u{1}\u{1f}\u{7f}",
        "ünïcödé ☃ 𝄞",
        "</script>",
    ];

    #[test]
    fn the_word_scan_finds_what_a_byte_scan_finds() {
        let naive = |s: &[u8]| s.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
        proptest::proptest!(|(s in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40))| {
            proptest::prop_assert_eq!(needs_escape(&s), naive(&s));
        });
        // The bytes beside the ones to escape need none, at every length.
        for len in 0..24 {
            for fine in [0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80, 0xff] {
                assert!(!needs_escape(&vec![fine; len]), "{fine:#x} x {len}");
            }
        }
    }

    #[test]
    fn escaped_strings_read_back_as_serde_json_writes_them() {
        for s in AWKWARD {
            let mut out = b"\"".to_vec();
            escaped(&mut out, s);
            out.push(b'"');
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn an_escape_is_found_at_every_position() {
        for len in 1..=40 {
            for at in 0..len {
                for special in ["\"", "\\", "\n", "\u{1f}"] {
                    let s = format!("{}{special}{}", "a".repeat(at), "b".repeat(len - at - 1));
                    let mut out = Vec::new();
                    escaped(&mut out, &s);
                    assert_eq!(out, serde_json::to_vec(&s).unwrap()[1..=out.len()], "{s:?}");
                }
            }
        }
    }

    #[test]
    fn an_object_is_byte_for_byte_what_serde_json_writes_for_the_same_fields() {
        #[derive(serde::Serialize)]
        struct Same<'a> {
            key_id: &'a str,
            uuid: String,
            plain_text: String,
            cipher_text: String,
            datakey_length: String,
        }
        let bytes: Vec<u8> = (0..=255).collect();
        for s in AWKWARD {
            for n in [0usize, 1, 2, 3, 31, 32, 33, 256] {
                let mut o = Object::with_capacity(16);
                o.str("key_id", s)
                    .uuid(
                        "uuid",
                        &uuid::Uuid::from_u128(n as u128 * 0x0123_4567_89ab_cdef),
                    )
                    .hex_upper("plain_text", &bytes[..n])
                    .base64("cipher_text", &bytes[..n])
                    .number_str("datakey_length", n as u64);
                let serde = serde_json::to_vec(&Same {
                    key_id: s,
                    uuid: uuid::Uuid::from_u128(n as u128 * 0x0123_4567_89ab_cdef).to_string(),
                    plain_text: hex::encode_upper(&bytes[..n]),
                    cipher_text: BASE64.encode(&bytes[..n]),
                    datakey_length: n.to_string(),
                })
                .unwrap();
                assert_eq!(o.finish(), serde, "{s:?} {n}");
            }
        }
    }

    #[test]
    fn debug_shows_no_value() {
        let mut o = Object::with_capacity(0);
        o.hex_upper("plain_text", &[0xab; 4]);
        let shown = format!("{o:?}");
        assert!(!shown.contains("ABAB"), "{shown}");
    }

    #[test]
    fn an_empty_object_is_braces() {
        assert_eq!(Object::with_capacity(0).finish(), b"{}");
    }

    #[test]
    fn numbers_are_decimal_strings() {
        for n in [0u64, 7, 10, 256, 1_000_000, u64::MAX] {
            let mut o = Object::with_capacity(0);
            o.number_str("n", n);
            assert_eq!(o.finish(), format!("{{\"n\":\"{n}\"}}").into_bytes());
        }
    }
}
