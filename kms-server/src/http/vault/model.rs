//! Vault transit's JSON and strings: the request bodies, the `vault:v<version>:` ciphertext, the
//! base64 `context` and its place in the encryption context (FORMATS.md §4). No I/O, no keyring.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::error::VaultError;
use crate::keyring::Context;

/// The largest request body taken, in bytes; a larger one is `413`. Enough for a 4096-byte
/// plaintext and an 8192-byte context in base64, several times over.
pub(super) const MAX_BODY: usize = 64 * 1024;

/// The encryption-context key under which a transit `context` is bound (FORMATS.md §4).
pub(super) const CONTEXT_KEY: &str = "vault_context";

/// The only key type served: kmsbox's keys are AES-256-GCM with 96-bit nonces.
pub(super) const KEY_TYPE: &str = "aes256-gcm96";

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

/// The encryption context a transit `context` binds: none for an absent or empty one, else
/// `{"vault_context": <the context's bytes in standard base64>}` (re-encoded, so that one context
/// has one spelling).
pub(super) fn context(given: Option<&str>) -> Result<Context, VaultError> {
    let mut c = Context::new();
    if let Some(text) = given.filter(|t| !t.is_empty()) {
        let bytes = decode_base64("context", text)?;
        c.insert(CONTEXT_KEY.to_owned(), encode_base64(&bytes));
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

/// `POST keys/:name`. Unknown fields are ignored, as Vault ignores them (`derived` among them:
/// kmsbox binds every `context` given, derived key or not).
#[derive(Debug, Default, Deserialize)]
pub(super) struct CreateKeyRequest {
    /// Only `aes256-gcm96`.
    #[serde(rename = "type")]
    pub(super) key_type: Option<String>,
    /// Unsupported when true.
    pub(super) convergent_encryption: Option<bool>,
    /// Unsupported when true: key material never leaves the daemon.
    pub(super) exportable: Option<bool>,
    /// Unsupported when true.
    pub(super) allow_plaintext_backup: Option<bool>,
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
    fn a_context_binds_as_one_entry_and_an_empty_one_as_none() {
        assert!(context(None).unwrap().is_empty());
        assert!(context(Some("")).unwrap().is_empty());
        let c = context(Some("YnVja2V0L29iamVjdA==")).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[CONTEXT_KEY], "YnVja2V0L29iamVjdA==");
        assert!(context(Some("%%%")).is_err());
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

    /// The committed known answer (FORMATS.md §4): its text parses into its blob, the blob opens
    /// under the context's encryption context, and formatting gives the text back.
    #[test]
    fn the_transit_known_answer_opens_and_round_trips() {
        let kat: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/kat/vault_transit_v1.json")).unwrap();
        let text = |k: &str| kat[k].as_str().unwrap();
        let (version, blob) = parse_ciphertext(text("ciphertext")).unwrap();
        assert_eq!(blob.as_slice(), hex::decode(text("blob")).unwrap());
        assert_eq!(u64::from(version), kat["key_version"].as_u64().unwrap());
        assert_eq!(format_ciphertext(version, &blob), text("ciphertext"));
        let ctx = context(Some(text("context"))).unwrap();
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
    fn escaped_json_strings_still_decode() {
        let r: DataRequest<'_> = parse_body(br#"{"plaintext": "aGk\/"}"#).unwrap();
        assert_eq!(r.plaintext.as_deref(), Some("aGk/"));
    }
}
