//! The key-ID grammar, and its one parser.
//!
//! A key is named in one of two forms (the OBS SSE-KMS documentation's "two formats"):
//!
//! ```text
//! key-id      = full-key-id / key-uuid
//! full-key-id = region-id ":" domain-id ":key/" key-uuid
//! region-id   = 1*64( %x61-7A / DIGIT / "-" )      ; lower-case letters, digits, '-',
//!                                                  ; not starting or ending with '-'
//! domain-id   = 1*64( ALPHA / DIGIT )              ; the tenant's account ID
//! key-uuid    = 8HEXDIG "-" 4HEXDIG "-" 4HEXDIG "-" 4HEXDIG "-" 12HEXDIG
//! ```
//!
//! Hex digits are accepted in either case on input and always written in lower case (RFC 9562,
//! section 4: "case insensitive on input"). Nothing else is accepted: no braces, no `urn:uuid:`
//! prefix, no 32-digit form without hyphens, no surrounding white space. So
//! `region:783fc6652cf246c096ea836694f71855:key/522d6070-5ad3-4765-9737-9312ddc72cdb` and
//! `4f1cd4de-ab64-4807-920a-47fc42e7f0d0` are key IDs, and `522d6070-5ad3-4765-43a7-a7d1-ab21f498482d`
//! (six groups) is not.
//!
//! A bare UUID names a key in the caller's own domain and region; [`KeyRef::resolve`] turns it into
//! the full form. A full key ID that names another domain or region is still well-formed: whether the
//! caller may use it is the key service's decision, not the parser's.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use uuid::Uuid;

/// Longest region ID accepted.
pub const MAX_REGION_LEN: usize = 64;
/// Longest domain ID accepted.
pub const MAX_DOMAIN_LEN: usize = 64;

/// Why a key ID, region ID or domain ID was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {what} {input:?}: {reason}")]
pub struct KeyIdError {
    what: &'static str,
    /// The refused input, shortened to at most 100 characters.
    input: String,
    reason: &'static str,
}

impl KeyIdError {
    fn new(what: &'static str, input: &str, reason: &'static str) -> Self {
        let input = input.chars().take(100).collect();
        Self {
            what,
            input,
            reason,
        }
    }

    /// The part of the grammar that failed, in words.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

/// A region ID, such as `cn-north-4`. Shared, not copied, when cloned: every call's caller and
/// every key record holds one. Its grammar leaves nothing for JSON to escape.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionId(Arc<str>);

/// A domain (tenant account) ID, such as `783fc6652cf246c096ea836694f71855`. Shared, not
/// copied, when cloned. Its grammar leaves nothing for JSON to escape.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainId(Arc<str>);

impl RegionId {
    /// Parses a region ID.
    pub fn parse(s: &str) -> Result<Self, KeyIdError> {
        let err = |reason| KeyIdError::new("region ID", s, reason);
        if s.is_empty() {
            return Err(err("empty"));
        }
        if s.len() > MAX_REGION_LEN {
            return Err(err("longer than 64 characters"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(err("only lower-case letters, digits and '-' are allowed"));
        }
        if s.starts_with('-') || s.ends_with('-') {
            return Err(err("must not start or end with '-'"));
        }
        Ok(Self(Arc::from(s)))
    }

    /// The region ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl DomainId {
    /// Parses a domain ID.
    pub fn parse(s: &str) -> Result<Self, KeyIdError> {
        let err = |reason| KeyIdError::new("domain ID", s, reason);
        if s.is_empty() {
            return Err(err("empty"));
        }
        if s.len() > MAX_DOMAIN_LEN {
            return Err(err("longer than 64 characters"));
        }
        if !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(err("only letters and digits are allowed"));
        }
        Ok(Self(Arc::from(s)))
    }

    /// The domain ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RegionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for DomainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses the canonical hyphenated UUID form, 8-4-4-4-12 hex digits, and nothing else.
pub fn parse_key_uuid(s: &str) -> Result<Uuid, KeyIdError> {
    let err = |reason| KeyIdError::new("key ID", s, reason);
    let b = s.as_bytes();
    if b.len() != 36 {
        return Err(err(
            "a key UUID has 36 characters: 8-4-4-4-12 hexadecimal digits",
        ));
    }
    // The common case first (this runs on every data-path call): hyphens in place and the
    // `uuid` crate's decoder, which refuses anything but hexadecimal digits between them.
    let hyphens = [8, 13, 18, 23].iter().all(|&i| b.get(i) == Some(&b'-'));
    if hyphens && let Ok(uuid) = Uuid::try_parse_ascii(b) {
        return Ok(uuid);
    }
    for (i, &c) in b.iter().enumerate() {
        let hyphen = matches!(i, 8 | 13 | 18 | 23);
        if hyphen && c != b'-' {
            return Err(err("a key UUID has hyphens after 8, 12, 16 and 20 digits"));
        }
        if !hyphen && !c.is_ascii_hexdigit() {
            return Err(err(
                "a key UUID has only hexadecimal digits between its hyphens",
            ));
        }
    }
    Err(err("not a UUID"))
}

/// A fully qualified key ID: `regionID:domainID:key/<uuid>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FullKeyId {
    /// The region the key lives in.
    pub region: RegionId,
    /// The tenant that owns the key.
    pub domain: DomainId,
    /// The key's UUID.
    pub uuid: Uuid,
}

impl FullKeyId {
    /// Builds a full key ID from its parts.
    pub fn new(region: RegionId, domain: DomainId, uuid: Uuid) -> Self {
        Self {
            region,
            domain,
            uuid,
        }
    }

    /// The text form of the key ID with these parts, exactly as `Display` writes it, built in one
    /// allocation without cloning the parts (the data path renders one per call).
    pub fn render(region: &RegionId, domain: &DomainId, uuid: Uuid) -> String {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let uuid = uuid.hyphenated().encode_lower(&mut buf);
        let (region, domain) = (region.as_str(), domain.as_str());
        let mut s = String::with_capacity(region.len() + domain.len() + uuid.len() + 6);
        for piece in [region, ":", domain, ":key/", uuid] {
            s.push_str(piece);
        }
        s
    }
}

impl fmt::Display for FullKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Piece by piece: the formatting machinery costs more than the copy on the data path.
        let mut uuid = [0u8; uuid::fmt::Hyphenated::LENGTH];
        f.write_str(self.region.as_str())?;
        f.write_str(":")?;
        f.write_str(self.domain.as_str())?;
        f.write_str(":key/")?;
        f.write_str(self.uuid.hyphenated().encode_lower(&mut uuid))
    }
}

impl FromStr for FullKeyId {
    type Err = KeyIdError;

    fn from_str(s: &str) -> Result<Self, KeyIdError> {
        match s.parse::<KeyRef>()? {
            KeyRef::Full(full) => Ok(full),
            KeyRef::Bare(_) => Err(KeyIdError::new(
                "key ID",
                s,
                "expected the full form regionID:domainID:key/<uuid>",
            )),
        }
    }
}

/// A key ID as a request may give it: full, or a bare UUID in the caller's domain and region.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyRef {
    /// `regionID:domainID:key/<uuid>`.
    Full(FullKeyId),
    /// `<uuid>`.
    Bare(Uuid),
}

impl KeyRef {
    /// The key's UUID, whichever the form.
    pub fn uuid(&self) -> Uuid {
        match self {
            KeyRef::Full(f) => f.uuid,
            KeyRef::Bare(u) => *u,
        }
    }

    /// The full key ID, with a bare UUID placed in the given (caller's) region and domain.
    pub fn resolve(&self, region: &str, domain: &str) -> Result<FullKeyId, KeyIdError> {
        Ok(match self {
            KeyRef::Full(f) => f.clone(),
            KeyRef::Bare(u) => {
                FullKeyId::new(RegionId::parse(region)?, DomainId::parse(domain)?, *u)
            }
        })
    }
}

impl FromStr for KeyRef {
    type Err = KeyIdError;

    fn from_str(s: &str) -> Result<Self, KeyIdError> {
        if s.is_empty() {
            return Err(KeyIdError::new("key ID", s, "empty"));
        }
        let Some((region, rest)) = s.split_once(':') else {
            return parse_key_uuid(s).map(KeyRef::Bare);
        };
        let Some((domain, key)) = rest.split_once(':') else {
            return Err(KeyIdError::new(
                "key ID",
                s,
                "expected regionID:domainID:key/<uuid> or a bare UUID",
            ));
        };
        let Some(uuid) = key.strip_prefix("key/") else {
            return Err(KeyIdError::new(
                "key ID",
                s,
                "the part after the domain ID must be key/<uuid>",
            ));
        };
        let region = RegionId::parse(region)?;
        let domain = DomainId::parse(domain)?;
        let uuid = parse_key_uuid(uuid).map_err(|e| KeyIdError::new("key ID", s, e.reason))?;
        Ok(KeyRef::Full(FullKeyId::new(region, domain, uuid)))
    }
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyRef::Full(full) => full.fmt(f),
            KeyRef::Bare(u) => write!(f, "{}", u.hyphenated()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_FULL: &str =
        "region:783fc6652cf246c096ea836694f71855:key/522d6070-5ad3-4765-9737-9312ddc72cdb";

    #[test]
    fn well_formed_key_ids_parse_and_print_in_canonical_form() {
        // (input, expected canonical text)
        let cases = [
            (SEED_FULL, SEED_FULL),
            (
                "region:domainiddomainiddomainiddoma0001:key/4f1cd4de-ab64-4807-920a-47fc42e7f0d0",
                "region:domainiddomainiddomainiddoma0001:key/4f1cd4de-ab64-4807-920a-47fc42e7f0d0",
            ),
            (
                "4f1cd4de-ab64-4807-920a-47fc42e7f0d0",
                "4f1cd4de-ab64-4807-920a-47fc42e7f0d0",
            ),
            (
                "cn-north-4:0a1B:key/4F1CD4DE-AB64-4807-920A-47FC42E7F0D0",
                "cn-north-4:0a1B:key/4f1cd4de-ab64-4807-920a-47fc42e7f0d0",
            ),
            (
                "00000000-0000-0000-0000-000000000000",
                "00000000-0000-0000-0000-000000000000",
            ),
        ];
        for (input, canonical) in cases {
            let parsed: KeyRef = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(parsed.to_string(), canonical, "{input}");
        }
    }

    #[test]
    fn malformed_key_ids_are_refused_with_the_reason() {
        // (rule broken, input)
        let cases = [
            ("empty", ""),
            (
                "six groups (seed sample 2)",
                "522d6070-5ad3-4765-43a7-a7d1-ab21f498482d",
            ),
            (
                "32 digits without hyphens",
                "4f1cd4deab644807920a47fc42e7f0d0",
            ),
            ("braces", "{4f1cd4de-ab64-4807-920a-47fc42e7f0d0}"),
            (
                "urn prefix",
                "urn:uuid:4f1cd4de-ab64-4807-920a-47fc42e7f0d0",
            ),
            ("leading space", " 4f1cd4de-ab64-4807-920a-47fc42e7f0d0"),
            ("trailing newline", "4f1cd4de-ab64-4807-920a-47fc42e7f0d0\n"),
            ("non-hex digit", "4f1cd4de-ab64-4807-920a-47fc42e7f0dg"),
            ("hyphen misplaced", "4f1cd4dea-b64-4807-920a-47fc42e7f0d0"),
            (
                "full form, missing key/",
                "region:domain:4f1cd4de-ab64-4807-920a-47fc42e7f0d0",
            ),
            (
                "full form, alias/ instead of key/",
                "region:domain:alias/4f1cd4de-ab64-4807-920a-47fc42e7f0d0",
            ),
            (
                "full form, two parts",
                "region:key/4f1cd4de-ab64-4807-920a-47fc42e7f0d0",
            ),
            (
                "full form, empty region",
                ":domain:key/4f1cd4de-ab64-4807-920a-47fc42e7f0d0",
            ),
            (
                "full form, empty domain",
                "region::key/4f1cd4de-ab64-4807-920a-47fc42e7f0d0",
            ),
            (
                "full form, upper-case region",
                "Region:domain:key/4f1cd4de-ab64-4807-920a-47fc42e7f0d0",
            ),
            (
                "full form, region ends with -",
                "cn-:domain:key/4f1cd4de-ab64-4807-920a-47fc42e7f0d0",
            ),
            (
                "full form, domain with _",
                "region:dom_ain:key/4f1cd4de-ab64-4807-920a-47fc42e7f0d0",
            ),
            (
                "full form, extra colon",
                "region:domain:key/4f1cd4de-ab64-4807-920a-47fc42e7f0d0:x",
            ),
            (
                "full form, bad uuid",
                "region:domain:key/522d6070-5ad3-4765-43a7-a7d1-ab21f498482d",
            ),
            ("full form, empty uuid", "region:domain:key/"),
        ];
        for (rule, input) in cases {
            let err = input
                .parse::<KeyRef>()
                .expect_err(&format!("{rule}: {input:?} must be refused"));
            let msg = err.to_string();
            assert!(msg.starts_with("malformed "), "{rule}: {msg}");
        }
    }

    #[test]
    fn overlong_region_and_domain_are_refused() {
        let long_region = "a".repeat(MAX_REGION_LEN + 1);
        let long_domain = "b".repeat(MAX_DOMAIN_LEN + 1);
        let uuid = "4f1cd4de-ab64-4807-920a-47fc42e7f0d0";
        assert!(
            format!("{long_region}:d:key/{uuid}")
                .parse::<KeyRef>()
                .is_err()
        );
        assert!(
            format!("r:{long_domain}:key/{uuid}")
                .parse::<KeyRef>()
                .is_err()
        );
        let max_region = "a".repeat(MAX_REGION_LEN);
        assert!(
            format!("{max_region}:d:key/{uuid}")
                .parse::<KeyRef>()
                .is_ok()
        );
    }

    #[test]
    fn bare_uuid_resolves_into_the_callers_domain_and_region() {
        let bare: KeyRef = "4f1cd4de-ab64-4807-920a-47fc42e7f0d0".parse().unwrap();
        let full = bare.resolve("cn-north-4", "tenant1").unwrap();
        assert_eq!(
            full.to_string(),
            "cn-north-4:tenant1:key/4f1cd4de-ab64-4807-920a-47fc42e7f0d0"
        );
        // A full key ID keeps its own domain and region.
        let other: KeyRef = SEED_FULL.parse().unwrap();
        assert_eq!(
            other.resolve("cn-north-4", "tenant1").unwrap().to_string(),
            SEED_FULL
        );
    }

    #[test]
    fn full_key_id_from_str_refuses_the_bare_form() {
        assert!(
            "4f1cd4de-ab64-4807-920a-47fc42e7f0d0"
                .parse::<FullKeyId>()
                .is_err()
        );
        assert!(SEED_FULL.parse::<FullKeyId>().is_ok());
    }

    #[test]
    fn error_message_names_the_input_but_truncates_it() {
        let long = "x".repeat(10_000);
        let err = long.parse::<KeyRef>().unwrap_err().to_string();
        assert!(err.len() < 300, "{err}");
        assert!(err.contains("malformed key ID"));
    }

    proptest::proptest! {
        /// No input makes the parser panic, and whatever it accepts prints back to a form it
        /// accepts again as the same key.
        #[test]
        fn parser_never_panics_and_round_trips(s in "\\PC{0,120}") {
            if let Ok(k) = s.parse::<KeyRef>() {
                let again: KeyRef = k.to_string().parse().unwrap();
                proptest::prop_assert_eq!(again, k);
            }
        }

        /// A key UUID decodes to the UUID it writes, in either case of its hexadecimal digits.
        #[test]
        fn key_uuids_decode_in_either_case(uuid in proptest::prelude::any::<u128>()) {
            let u = Uuid::from_u128(uuid);
            let lower = u.hyphenated().to_string();
            proptest::prop_assert_eq!(parse_key_uuid(&lower).unwrap(), u);
            proptest::prop_assert_eq!(parse_key_uuid(&lower.to_uppercase()).unwrap(), u);
        }

        /// Every well-formed full key ID parses, whatever its parts.
        #[test]
        fn generated_full_ids_parse(
            region in "[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?",
            domain in "[A-Za-z0-9]{1,64}",
            uuid in proptest::prelude::any::<u128>(),
        ) {
            let id = format!("{region}:{domain}:key/{}", Uuid::from_u128(uuid).hyphenated());
            let k: KeyRef = id.parse().unwrap();
            proptest::prop_assert_eq!(&k.to_string(), &id);
            let KeyRef::Full(full) = k else { panic!("{id} parsed as a bare UUID") };
            proptest::prop_assert_eq!(FullKeyId::render(&full.region, &full.domain, full.uuid), id);
        }
    }
}
