//! Vault transit's JSON and strings: the request bodies, the `vault:v<version>:` ciphertext, the
//! base64 `context` and its place in the encryption context (FORMATS.md §4). No I/O, no keyring.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::error::VaultError;
use crate::keyring::Context;
use crate::keyring::validate::ROTATION_INTERVAL_DAYS;
use crate::store::Rotation;

/// The largest request body taken, in bytes; a larger one is `413`. Enough for a 4096-byte
/// plaintext and an 8192-byte context in base64, several times over.
pub(super) const MAX_BODY: usize = 64 * 1024;

/// The encryption-context key under which a transit `context` is bound (FORMATS.md §4).
pub(super) const CONTEXT_KEY: &str = "vault_context";

/// The encryption-context key under which a transit `associated_data` is bound (FORMATS.md §4).
pub(super) const ASSOCIATED_DATA_KEY: &str = "vault_associated_data";

/// The key type every key reads as: kmsbox's keys are AES-256-GCM with 96-bit nonces.
pub(super) const KEY_TYPE: &str = "aes256-gcm96";

/// The key types a create takes: kmsbox's own, and Vault's other 256-bit AEAD, which Ceph RGW asks
/// for its SSE-S3 bucket keys; both are served as kmsbox keys (transit ciphertexts are opaque, so
/// the cipher behind them is the server's choice), which read as [`KEY_TYPE`].
pub(super) const KEY_TYPES_TAKEN: [&str; 2] = [KEY_TYPE, "chacha20-poly1305"];

/// Seconds in a day: kmsbox's rotation schedule counts whole days.
const DAY_SECONDS: u64 = 86_400;

/// The data-key sizes transit's `datakey` takes, in bits.
pub(super) const DATA_KEY_BITS: [u32; 3] = [128, 256, 512];

/// Decodes standard, padded base64 (what Vault's Go decoder and its clients use); `field` names it
/// in the error. The bytes are wiped on drop: they may be a plaintext.
pub(super) fn decode_base64(field: &str, text: &str) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    STANDARD
        .decode(text)
        .map(Zeroizing::new)
        .map_err(|e| VaultError::bad_request(format!("{field} is not valid base64: {e}")))
}

/// Standard, padded base64.
pub(super) fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// The encryption context a transit `context` and `associated_data` bind: none for absent or
/// empty ones, else `{"vault_context": <the context's bytes in standard base64>}` and
/// `{"vault_associated_data": <the data's bytes in standard base64>}` (re-encoded, so that one
/// value has one spelling). So a ciphertext opens only with the same two.
pub(super) fn context(
    given: Option<&str>,
    associated_data: Option<&str>,
) -> Result<Context, VaultError> {
    let mut c = Context::new();
    for (field, key, text) in [
        ("context", CONTEXT_KEY, given),
        ("associated_data", ASSOCIATED_DATA_KEY, associated_data),
    ] {
        if let Some(text) = text.filter(|t| !t.is_empty()) {
            let bytes = decode_base64(field, text)?;
            c.insert(key.to_owned(), encode_base64(&bytes));
        }
    }
    Ok(c)
}

/// A transit ciphertext: `vault:v<version>:<base64 of the kmsbox ciphertext blob>`, the version
/// being the key version the blob was sealed under.
pub(super) fn format_ciphertext(version: u32, blob: &[u8]) -> String {
    format!("vault:v{version}:{}", encode_base64(blob))
}

/// Parses a transit ciphertext into its version and blob. The version is decimal, at least 1,
/// without sign or leading zero; that it is the blob's own version is checked by the caller.
pub(super) fn parse_ciphertext(text: &str) -> Result<(u32, Zeroizing<Vec<u8>>), VaultError> {
    let bad = |why: &str| VaultError::bad_request(format!("invalid ciphertext: {why}"));
    let rest = text
        .strip_prefix("vault:v")
        .ok_or_else(|| bad("it must start with vault:v<version>:"))?;
    let (digits, b64) = rest
        .split_once(':')
        .ok_or_else(|| bad("no ':' after the version"))?;
    let version = (!digits.is_empty()
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit()))
    .then(|| digits.parse::<u32>().ok())
    .flatten()
    .ok_or_else(|| bad("the version must be a decimal number from 1"))?;
    let blob = decode_base64("ciphertext", b64)?;
    Ok((version, blob))
}

/// Parses a JSON request body; an empty body is `{}` (Vault takes `-f` writes without one).
pub(super) fn parse_body<'a, T: Deserialize<'a> + Default>(
    body: &'a [u8],
) -> Result<T, VaultError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| VaultError::bad_request(format!("invalid request body: {e}")))
}

/// `POST keys/:name`. Unknown fields are ignored, as Vault ignores them.
#[derive(Debug, Default, Deserialize)]
pub(super) struct CreateKeyRequest {
    /// Every call must give a `context` (kmsbox binds any context given, derived key or not).
    pub(super) derived: Option<bool>,
    /// One of [`KEY_TYPES_TAKEN`].
    #[serde(rename = "type")]
    pub(super) key_type: Option<String>,
    /// Unsupported when true.
    pub(super) convergent_encryption: Option<bool>,
    /// Unsupported when true: key material never leaves the daemon.
    pub(super) exportable: Option<bool>,
    /// Unsupported when true.
    pub(super) allow_plaintext_backup: Option<bool>,
    /// The rotation schedule, as in [`ConfigRequest::auto_rotate_period`].
    pub(super) auto_rotate_period: Option<Period>,
}

/// `POST keys/:name/config`. Every field kmsbox cannot honour is refused, not ignored.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ConfigRequest {
    /// 0 or 1: kmsbox decrypts under every version of a key.
    pub(super) min_decryption_version: Option<u32>,
    /// 0: kmsbox encrypts under the latest version.
    pub(super) min_encryption_version: Option<u32>,
    /// Whether `DELETE keys/:name` may schedule the key's deletion.
    pub(super) deletion_allowed: Option<bool>,
    /// Unsupported when true.
    pub(super) exportable: Option<bool>,
    /// Unsupported when true.
    pub(super) allow_plaintext_backup: Option<bool>,
    /// The automatic rotation period: 0 turns it off; else whole days, as kmsbox's rotation
    /// schedule keeps them.
    pub(super) auto_rotate_period: Option<Period>,
}

/// A duration as Vault takes it: a number of seconds, or text (`"2592000"`, `"720h"`, `"30d"`,
/// `"1h30m"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum Period {
    /// Seconds.
    Seconds(u64),
    /// Text, read by [`Period::seconds`].
    Text(String),
}

impl Period {
    /// The period in seconds. Text is whole seconds, or `<n>d`, or one or more `<n><unit>` with
    /// the units `h`, `m` and `s` (Vault's `parseutil.ParseDurationSecond`, without fractions).
    pub(super) fn seconds(&self) -> Result<u64, VaultError> {
        let text = match self {
            Period::Seconds(s) => return Ok(*s),
            Period::Text(t) => t.trim(),
        };
        let bad = || {
            VaultError::bad_request(format!(
                "invalid auto_rotate_period {text:?}: a number of seconds or a duration such as \
                 \"720h\" or \"30d\""
            ))
        };
        if text.is_empty() {
            return Ok(0);
        }
        if let Ok(s) = text.parse::<u64>() {
            return Ok(s);
        }
        if let Some(days) = text.strip_suffix('d') {
            let days: u64 = days.parse().map_err(|_| bad())?;
            return days.checked_mul(DAY_SECONDS).ok_or_else(bad);
        }
        let mut total: u64 = 0;
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let unit_at = rest[digits..]
                .find(|c: char| c.is_ascii_digit())
                .map_or(rest.len(), |i| digits + i);
            let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
            let unit = match &rest[digits..unit_at] {
                "h" => 3_600,
                "m" => 60,
                "s" => 1,
                _ => return Err(bad()),
            };
            total = n
                .checked_mul(unit)
                .and_then(|s| total.checked_add(s))
                .ok_or_else(bad)?;
            rest = &rest[unit_at..];
        }
        Ok(total)
    }

    /// The rotation interval this period asks for: `None` to turn rotation off (0), else a whole
    /// number of days in kmsbox's range (its schedule counts days).
    pub(super) fn rotation_days(&self) -> Result<Option<u32>, VaultError> {
        let seconds = self.seconds()?;
        if seconds == 0 {
            return Ok(None);
        }
        let days = u32::try_from(seconds / DAY_SECONDS).ok();
        match days {
            Some(d) if seconds % DAY_SECONDS == 0 && ROTATION_INTERVAL_DAYS.contains(&d) => {
                Ok(Some(d))
            }
            _ => Err(VaultError::bad_request(format!(
                "auto_rotate_period of {seconds} seconds is not supported: kmsbox rotates a key \
                 every {} to {} whole days (\"{}d\" or {} seconds, say), or never (0)",
                ROTATION_INTERVAL_DAYS.start(),
                ROTATION_INTERVAL_DAYS.end(),
                ROTATION_INTERVAL_DAYS.start(),
                u64::from(*ROTATION_INTERVAL_DAYS.start()) * DAY_SECONDS,
            ))),
        }
    }

    /// What a key's schedule reads as: its interval in seconds, or 0 when it does not rotate.
    pub(super) fn of(rotation: &Rotation) -> u64 {
        if rotation.enabled {
            u64::from(rotation.interval_days) * DAY_SECONDS
        } else {
            0
        }
    }
}

/// `POST random(/:source)(/:bytes)`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct RandomRequest {
    /// How many bytes: 1 to 1024, 32 when absent (the path's `:bytes` wins).
    pub(super) bytes: Option<u32>,
    /// `base64` (the default) or `hex`.
    pub(super) format: Option<String>,
    /// `platform` (the default; the path's `:source` wins): kmsbox has no other source.
    pub(super) source: Option<String>,
}

/// How random bytes are written in the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RandomFormat {
    /// Standard, padded base64.
    Base64,
    /// Lower-case hex.
    Hex,
}

/// The size and format of a `random` call: `path` is what follows `random/` (empty, `:bytes`,
/// `:source` or `:source/:bytes`, as Vault routes it), over the body's fields.
pub(super) fn random_request(
    path: &str,
    req: &RandomRequest,
) -> Result<(u32, RandomFormat), VaultError> {
    let mut parts = path.split('/').filter(|p| !p.is_empty());
    let (source, bytes) = match (parts.next(), parts.next()) {
        (None, _) => (None, None),
        (Some(one), None) if one.bytes().all(|b| b.is_ascii_digit()) => (None, Some(one)),
        (Some(one), None) => (Some(one), None),
        (Some(source), Some(bytes)) => (Some(source), Some(bytes)),
    };
    let source = source.or(req.source.as_deref()).unwrap_or("platform");
    if source != "platform" {
        return Err(VaultError::bad_request(format!(
            "unsupported entropy source {source:?}: kmsbox draws from the platform's (the \
             operating system's generator)"
        )));
    }
    let bytes = match bytes {
        Some(b) => b
            .parse::<u32>()
            .map_err(|_| VaultError::bad_request(format!("invalid bytes {b:?} in the path")))?,
        None => req.bytes.unwrap_or(32),
    };
    let format = match req.format.as_deref().unwrap_or("base64") {
        "base64" => RandomFormat::Base64,
        "hex" => RandomFormat::Hex,
        other => {
            return Err(VaultError::bad_request(format!(
                "unsupported encoding format {other:?}: base64 or hex"
            )));
        }
    };
    Ok((bytes, format))
}

/// One item of `encrypt`, `decrypt` or `rewrap`: the request's own fields, or one entry of its
/// `batch_input`. Each call reads the fields it needs and ignores the others, as Vault does.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Item<'a> {
    /// The plaintext, base64 (`encrypt`).
    #[serde(borrow)]
    pub(super) plaintext: Option<Cow<'a, str>>,
    /// `vault:v<version>:<base64>` (`decrypt`, `rewrap`).
    #[serde(borrow)]
    pub(super) ciphertext: Option<Cow<'a, str>>,
    /// The context, base64.
    #[serde(borrow)]
    pub(super) context: Option<Cow<'a, str>>,
    /// AEAD additional data, base64: bound as the context is.
    #[serde(borrow)]
    pub(super) associated_data: Option<Cow<'a, str>>,
    /// Only the latest version (or 0, or absent): kmsbox seals under the current version.
    pub(super) key_version: Option<u32>,
    /// Convergent encryption only; unsupported.
    #[serde(borrow)]
    pub(super) nonce: Option<Cow<'a, str>>,
    /// Echoed in the item's batch result.
    pub(super) reference: Option<String>,
}

/// `POST encrypt/:name`, `decrypt/:name`, `rewrap/:name`: one item, or `batch_input`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct DataRequest<'a> {
    /// The plaintext, base64 (`encrypt`).
    #[serde(borrow)]
    pub(super) plaintext: Option<Cow<'a, str>>,
    /// `vault:v<version>:<base64>` (`decrypt`, `rewrap`).
    #[serde(borrow)]
    pub(super) ciphertext: Option<Cow<'a, str>>,
    /// The context, base64.
    #[serde(borrow)]
    pub(super) context: Option<Cow<'a, str>>,
    /// AEAD additional data, base64.
    #[serde(borrow)]
    pub(super) associated_data: Option<Cow<'a, str>>,
    /// Only the latest version (or 0, or absent).
    pub(super) key_version: Option<u32>,
    /// Convergent encryption only; unsupported.
    #[serde(borrow)]
    pub(super) nonce: Option<Cow<'a, str>>,
    /// Items processed one by one, each with its own result; the fields above are then unused.
    #[serde(borrow)]
    pub(super) batch_input: Option<Vec<Item<'a>>>,
    /// The status of a batch where some items failed and some succeeded (instead of 400 or 500).
    pub(super) partial_failure_response_code: Option<u16>,
}

impl<'a> DataRequest<'a> {
    /// The request's own item.
    pub(super) fn item(&mut self) -> Item<'a> {
        Item {
            plaintext: self.plaintext.take(),
            ciphertext: self.ciphertext.take(),
            context: self.context.take(),
            associated_data: self.associated_data.take(),
            key_version: self.key_version,
            nonce: self.nonce.take(),
            reference: None,
        }
    }
}

/// `POST datakey/{plaintext,wrapped}/:name`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct DataKeyRequest<'a> {
    /// The context, base64.
    #[serde(borrow)]
    pub(super) context: Option<Cow<'a, str>>,
    /// Convergent encryption only; unsupported.
    #[serde(borrow)]
    pub(super) nonce: Option<Cow<'a, str>>,
    /// 128, 256 (the default) or 512.
    pub(super) bits: Option<u32>,
    /// Only the latest version (or 0, or absent).
    pub(super) key_version: Option<u32>,
}

/// Refuses a `nonce`: it asks for convergent encryption, which kmsbox does not do.
pub(super) fn refuse_nonce(nonce: Option<&Cow<'_, str>>) -> Result<(), VaultError> {
    if nonce.is_some_and(|n| !n.is_empty()) {
        return Err(VaultError::bad_request(
            "nonce is for convergent encryption, which kmsbox does not support",
        ));
    }
    Ok(())
}

/// The version a request's `key_version` asks to seal under: absent or 0 is the latest; an older
/// one is refused (kmsbox seals only under a key's current version).
pub(super) fn check_key_version(asked: Option<u32>, latest: u32) -> Result<(), VaultError> {
    match asked {
        None | Some(0) => Ok(()),
        Some(v) if v == latest => Ok(()),
        Some(v) => Err(VaultError::bad_request(format!(
            "key_version {v}: kmsbox encrypts only under the latest version, {latest}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ciphertexts_round_trip_and_bad_ones_are_refused() {
        let text = format_ciphertext(7, b"blob bytes");
        assert_eq!(text, "vault:v7:YmxvYiBieXRlcw==");
        let (v, blob) = parse_ciphertext(&text).unwrap();
        assert_eq!((v, blob.as_slice()), (7, &b"blob bytes"[..]));
        // (rule, text)
        let bad = [
            ("no prefix", "YmxvYiBieXRlcw=="),
            ("another prefix", "kms:v1:YmxvYiBieXRlcw=="),
            ("no version", "vault:v:YmxvYiBieXRlcw=="),
            ("version 0", "vault:v0:YmxvYiBieXRlcw=="),
            ("leading zero", "vault:v01:YmxvYiBieXRlcw=="),
            ("signed version", "vault:v+1:YmxvYiBieXRlcw=="),
            ("version over u32", "vault:v4294967296:YmxvYiBieXRlcw=="),
            ("no second colon", "vault:v1YmxvYiBieXRlcw=="),
            ("invalid base64", "vault:v1:not base64!"),
            ("unpadded base64", "vault:v1:YmxvYiBieXRlcw"),
        ];
        for (rule, text) in bad {
            let e = parse_ciphertext(text).unwrap_err();
            assert_eq!(e.status, http::StatusCode::BAD_REQUEST, "{rule}");
        }
    }

    #[test]
    fn a_context_and_associated_data_bind_as_one_entry_each_and_empty_ones_as_none() {
        assert!(context(None, None).unwrap().is_empty());
        assert!(context(Some(""), Some("")).unwrap().is_empty());
        let c = context(Some("YnVja2V0L29iamVjdA=="), None).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[CONTEXT_KEY], "YnVja2V0L29iamVjdA==");
        let c = context(None, Some("cm93IDE3")).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[ASSOCIATED_DATA_KEY], "cm93IDE3");
        let both = context(Some("YnVja2V0L29iamVjdA=="), Some("cm93IDE3")).unwrap();
        assert_eq!(both.len(), 2);
        // The same bytes in either field are two different bindings.
        assert_ne!(
            context(Some("cm93IDE3"), None).unwrap(),
            context(None, Some("cm93IDE3")).unwrap()
        );
        assert!(context(Some("%%%"), None).is_err());
        assert!(context(None, Some("%%%")).is_err());
    }

    #[test]
    fn bodies_empty_malformed_and_mistyped() {
        let empty: CreateKeyRequest = parse_body(b"").unwrap();
        assert!(empty.key_type.is_none());
        let e: DataKeyRequest<'_> = parse_body(br#"{"bits": 512, "unknown": 1}"#).unwrap();
        assert_eq!(e.bits, Some(512));
        // (rule, body)
        let bad: [(&str, &[u8]); 4] = [
            ("malformed JSON", b"{\"bits\": "),
            ("a number as a string", br#"{"bits": "256"}"#),
            ("a string as a number", br#"{"plaintext": 5}"#),
            ("not an object", b"[1, 2]"),
        ];
        for (rule, body) in bad {
            let d = parse_body::<DataKeyRequest<'_>>(body).map(|_| ());
            let p = parse_body::<DataRequest<'_>>(body).map(|_| ());
            assert!(d.is_err() || p.is_err(), "{rule}");
        }
    }

    /// The committed known answers (FORMATS.md §4), with a `context` and with a `context` and
    /// `associated_data`: each text parses into its blob, the blob opens under the encryption
    /// context they bind, and formatting gives the text back.
    #[test]
    fn the_transit_known_answers_open_and_round_trip() {
        for file in [
            include_str!("../../../tests/kat/vault_transit_v1.json"),
            include_str!("../../../tests/kat/vault_transit_aad_v1.json"),
        ] {
            transit_known_answer(file);
        }
    }

    fn transit_known_answer(file: &str) {
        let kat: serde_json::Value = serde_json::from_str(file).unwrap();
        let text = |k: &str| kat[k].as_str().unwrap();
        let (version, blob) = parse_ciphertext(text("ciphertext")).unwrap();
        assert_eq!(blob.as_slice(), hex::decode(text("blob")).unwrap());
        assert_eq!(u64::from(version), kat["key_version"].as_u64().unwrap());
        assert_eq!(format_ciphertext(version, &blob), text("ciphertext"));
        let ctx = context(Some(text("context")), kat["associated_data"].as_str()).unwrap();
        let want: Context = serde_json::from_value(kat["encryption_context"].clone()).unwrap();
        assert_eq!(ctx, want);
        let header = crate::blob::BlobHeader::parse(&blob).unwrap();
        assert_eq!(header.key_version, version);
        let material: [u8; 32] = hex::decode(text("cmk_material"))
            .unwrap()
            .try_into()
            .unwrap();
        let material = crate::crypto::GcmKey::new(&crate::crypto::SecretKey::from_bytes(material));
        let binding = crate::blob::BlobBinding {
            domain: text("domain"),
            region: text("region"),
            context: &ctx,
        };
        let plaintext = crate::blob::open(&material, &header, &binding, &blob).unwrap();
        assert_eq!(encode_base64(&plaintext), text("plaintext"));
    }

    #[test]
    fn rotation_periods_read_as_vault_writes_them_in_whole_days() {
        /// The rotation asked for: `Ok(None)` off, `Ok(Some(days))`, `Err` refused.
        type Asked = Result<Option<u32>, ()>;
        let day = 86_400;
        // (rule, JSON value, what it asks for)
        let cases: [(&str, serde_json::Value, Asked); 14] = [
            ("seconds as a number", json!(30 * day), Ok(Some(30))),
            ("seconds as text", json!("2592000"), Ok(Some(30))),
            ("days", json!("90d"), Ok(Some(90))),
            ("hours", json!("720h"), Ok(Some(30))),
            ("hours and minutes", json!("8759h60m"), Ok(Some(365))),
            ("zero turns it off", json!(0), Ok(None)),
            ("zero as text", json!("0s"), Ok(None)),
            ("empty text turns it off", json!(""), Ok(None)),
            ("less than a day", json!("1h"), Err(())),
            ("not a whole number of days", json!(30 * day + 1), Err(())),
            ("under kmsbox's 30 days", json!("29d"), Err(())),
            ("over its 365 days", json!("366d"), Err(())),
            ("an unknown unit", json!("30w"), Err(())),
            ("a fraction", json!("1.5h"), Err(())),
        ];
        for (rule, value, want) in cases {
            let period: Period = serde_json::from_value(value).expect(rule);
            let got = period.rotation_days().map_err(|e| {
                assert_eq!(e.status, http::StatusCode::BAD_REQUEST, "{rule}");
            });
            assert_eq!(got, want, "{rule}");
        }
        let negative = serde_json::from_value::<Period>(json!(-1));
        assert!(negative.is_err(), "a negative period is no period");
    }

    #[test]
    fn random_takes_its_size_and_source_from_the_path_over_the_body() {
        let body = |bytes: Option<u32>, format: Option<&str>, source: Option<&str>| RandomRequest {
            bytes,
            format: format.map(Into::into),
            source: source.map(Into::into),
        };
        let none = body(None, None, None);
        // (rule, path, body, the size and format, or None for a refusal)
        let cases = [
            (
                "32 base64 bytes by default",
                "",
                &none,
                Some((32, RandomFormat::Base64)),
            ),
            (
                "the body's size",
                "",
                &body(Some(16), None, None),
                Some((16, RandomFormat::Base64)),
            ),
            (
                "hex",
                "",
                &body(None, Some("hex"), None),
                Some((32, RandomFormat::Hex)),
            ),
            (
                "the path's size wins",
                "64",
                &body(Some(16), None, None),
                Some((64, RandomFormat::Base64)),
            ),
            (
                "source and size in the path",
                "platform/8",
                &none,
                Some((8, RandomFormat::Base64)),
            ),
            (
                "the source alone in the path",
                "platform",
                &none,
                Some((32, RandomFormat::Base64)),
            ),
            ("no seal to draw from", "seal/8", &none, None),
            ("nor all sources", "all", &none, None),
            (
                "the body's source too",
                "",
                &body(None, None, Some("seal")),
                None,
            ),
            ("a size that is no number", "platform/many", &none, None),
            (
                "an unknown format",
                "",
                &body(None, Some("base32"), None),
                None,
            ),
        ];
        for (rule, path, req, want) in cases {
            assert_eq!(random_request(path, req).ok(), want, "{rule}");
        }
    }

    #[test]
    fn escaped_json_strings_still_decode() {
        let r: DataRequest<'_> = parse_body(br#"{"plaintext": "aGk\/"}"#).unwrap();
        assert_eq!(r.plaintext.as_deref(), Some("aGk/"));
    }
}
