//! Who is calling: the daemon's [`Authenticator`] finds the caller's domain and region in request
//! metadata and bearer tokens. (The client side of the same metadata is [`kms_proto::Tenancy`].)

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderValue;
use kms_proto::key_id::{DomainId, RegionId};
use kms_proto::metadata::{AUTHORIZATION, DOMAIN_ID, REGION, REQUEST_ID};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::metadata::MetadataMap;
use zeroize::Zeroizing;

use crate::error::{ConfigError, KmsError, Result};
use crate::keyring::Caller;

/// The tenants file: domain IDs and their bearer tokens; optionally an access key, its secret
/// key and projects by region for the signed HTTP API (Huawei Cloud KMS, `SDK-HMAC-SHA256`).
///
/// ```toml
/// [[tenants]]
/// domain_id = "783fc6652cf246c096ea836694f71855"
/// token = "a long random secret"
/// access_key = "HUAWEIAKEXAMPLE"
/// secret_key = "another long random secret"
/// projects = { "region" = "0123456789abcdef0123456789abcdef" }
/// ```
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantsFile {
    tenants: Vec<TenantEntry>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantEntry {
    domain_id: String,
    token: String,
    #[serde(default)]
    access_key: Option<String>,
    #[serde(default)]
    secret_key: Option<String>,
    /// Region -> project ID.
    #[serde(default)]
    projects: BTreeMap<String, String>,
}

/// A tenant of the tenants file: its domain, the SHA-256 of its token, and its access key.
struct KnownTenant {
    domain: DomainId,
    token_digest: [u8; 32],
    access: Option<AccessKey>,
}

/// A tenant's access key for the signed HTTP API: its ID, its secret key (never printed) and the
/// tenant's projects, each in one region.
pub struct AccessKey {
    id: String,
    secret: Zeroizing<Vec<u8>>,
    domain: DomainId,
    /// (project ID, region).
    projects: Vec<(String, RegionId)>,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .field("domain", &self.domain)
            .field("projects", &self.projects)
            .finish()
    }
}

impl AccessKey {
    /// The access key ID (`Access=` of a signature).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The secret key, the HMAC key of the signatures.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// The tenant the key belongs to.
    pub fn domain(&self) -> &DomainId {
        &self.domain
    }

    /// The region of one of the tenant's projects; `None` for a project that is not the tenant's.
    pub fn region_of(&self, project_id: &str) -> Option<&RegionId> {
        self.projects
            .iter()
            .find(|(p, _)| p == project_id)
            .map(|(_, r)| r)
    }
}

/// Access key IDs and project IDs: letters and digits, at most this long.
pub const MAX_ACCESS_ID_LEN: usize = 128;

/// Tokens shorter than this are refused when the tenants file is loaded.
pub const MIN_TOKEN_LEN: usize = 16;

/// How callers are identified: by trusting `x-kms-domain-id` on loopback, or by bearer token.
pub struct Authenticator {
    /// `None`: trust `x-kms-domain-id` (loopback only).
    tenants: Option<Vec<KnownTenant>>,
    default_region: RegionId,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("tenants", &self.tenants.as_ref().map(Vec::len))
            .field("default_region", &self.default_region)
            .finish()
    }
}

impl Authenticator {
    /// Trusts the `x-kms-domain-id` metadata (for loopback use only).
    pub fn trusting(default_region: RegionId) -> Self {
        Self {
            tenants: None,
            default_region,
        }
    }

    /// Requires a bearer token from the given TOML tenants file on every call.
    pub fn from_file(path: &Path, default_region: RegionId) -> Result<Self, ConfigError> {
        const WHAT: &str = "tenants file";
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            action: "reading",
            what: WHAT,
            path: path.to_owned(),
            source,
        })?;
        let file: TenantsFile = toml::from_str(&text).map_err(|e| ConfigError::Toml {
            what: WHAT,
            path: path.to_owned(),
            source: Box::new(e),
        })?;
        let mut tenants = Vec::with_capacity(file.tenants.len());
        let mut access_ids = HashSet::new();
        let mut project_ids = HashSet::new();
        let invalid = |reason: String| ConfigError::Invalid {
            what: WHAT,
            path: path.to_owned(),
            reason,
        };
        for t in file.tenants {
            let domain = DomainId::parse(&t.domain_id).map_err(|source| ConfigError::Id {
                what: WHAT,
                path: path.to_owned(),
                source,
            })?;
            if t.token.len() < MIN_TOKEN_LEN {
                return Err(ConfigError::Invalid {
                    what: WHAT,
                    path: path.to_owned(),
                    reason: format!(
                        "the token of domain {domain} is shorter than {MIN_TOKEN_LEN} characters"
                    ),
                });
            }
            let access = match (t.access_key, t.secret_key) {
                (None, None) if t.projects.is_empty() => None,
                (None, None) => {
                    return Err(invalid(format!(
                        "domain {domain} has projects but no access_key and secret_key"
                    )));
                }
                (Some(id), Some(secret)) => {
                    if !plain_id(&id) {
                        return Err(invalid(format!(
                            "the access_key of domain {domain} must be 1 to {MAX_ACCESS_ID_LEN} letters and digits"
                        )));
                    }
                    if secret.len() < MIN_TOKEN_LEN {
                        return Err(invalid(format!(
                            "the secret_key of domain {domain} is shorter than {MIN_TOKEN_LEN} characters"
                        )));
                    }
                    if !access_ids.insert(id.clone()) {
                        return Err(invalid(format!("access_key {id} is given twice")));
                    }
                    let mut projects = Vec::with_capacity(t.projects.len());
                    for (region, project) in t.projects {
                        let region =
                            RegionId::parse(&region).map_err(|source| ConfigError::Id {
                                what: WHAT,
                                path: path.to_owned(),
                                source,
                            })?;
                        if !plain_id(&project) {
                            return Err(invalid(format!(
                                "project {project:?} of domain {domain} must be 1 to {MAX_ACCESS_ID_LEN} letters and digits"
                            )));
                        }
                        // A project is in one tenant and one region: it decides both.
                        if !project_ids.insert(project.clone()) {
                            return Err(invalid(format!("project {project} is given twice")));
                        }
                        projects.push((project, region));
                    }
                    Some(AccessKey {
                        id,
                        secret: Zeroizing::new(secret.into_bytes()),
                        domain: domain.clone(),
                        projects,
                    })
                }
                _ => {
                    return Err(invalid(format!(
                        "domain {domain} needs both access_key and secret_key, or neither"
                    )));
                }
            };
            tenants.push(KnownTenant {
                token_digest: token_digest(&t.token),
                domain,
                access,
            });
        }
        Ok(Self {
            tenants: Some(tenants),
            default_region,
        })
    }

    /// The access key with this ID, for the signed HTTP API. `None` without a tenants file (then
    /// signatures are not checked) and for an unknown ID.
    pub fn access_key(&self, id: &str) -> Option<&AccessKey> {
        self.tenants
            .as_ref()?
            .iter()
            .filter_map(|t| t.access.as_ref())
            .find(|a| a.id == id)
    }

    /// Whether bearer tokens are required.
    pub fn requires_tokens(&self) -> bool {
        self.tenants.is_some()
    }

    /// The region used when a call names none.
    pub fn default_region(&self) -> &RegionId {
        &self.default_region
    }

    /// Identifies the caller of a request.
    ///
    /// The tenancy metadata (`x-kms-domain-id`, `x-kms-region`, `authorization`,
    /// `x-kms-request-id`) may appear at most once each: a repeated one is refused as
    /// `KMS.0308`, so that no copy but the first can go unchecked.
    pub fn authenticate(&self, md: &MetadataMap) -> Result<Caller> {
        match TenancyHeaders::of(md.as_ref()) {
            (_, Some(repeated)) => Err(repeated),
            (given, None) => self.caller(&given),
        }
    }

    /// The request ID a call answers with (see [`request_id`]) and its caller, from one pass over
    /// the request's metadata: what [`request_id`] and [`Authenticator::authenticate`] give.
    pub fn identify(&self, md: &MetadataMap) -> (String, Result<Caller>) {
        let (given, repeated) = TenancyHeaders::of(md.as_ref());
        let request_id = request_id_from(given.request_id.and_then(|v| v.to_str().ok()));
        let caller = match repeated {
            Some(e) => Err(e),
            None => self.caller(&given),
        };
        (request_id, caller)
    }

    fn caller(&self, given: &TenancyHeaders<'_>) -> Result<Caller> {
        let claimed = given.text(DOMAIN_ID, given.domain)?;
        let domain = match &self.tenants {
            None => {
                let d = claimed.ok_or(KmsError::Unauthenticated(
                    "missing x-kms-domain-id request metadata",
                ))?;
                parse_domain(d).map_err(|e| KmsError::InvalidArgument {
                    field: DOMAIN_ID,
                    reason: e.to_string(),
                })?
            }
            Some(tenants) => {
                let auth = given.text(AUTHORIZATION, given.authorization)?.ok_or(
                    KmsError::Unauthenticated(
                        "missing authorization: Bearer <token> request metadata",
                    ),
                )?;
                let token = auth
                    .strip_prefix("Bearer ")
                    .ok_or(KmsError::Unauthenticated(
                        "authorization must be Bearer <token>",
                    ))?;
                let domain = tenant_of_token(tenants, token)
                    .ok_or(KmsError::Unauthenticated("unknown bearer token"))?;
                if let Some(c) = claimed
                    && c != domain.as_str()
                {
                    return Err(KmsError::PermissionDenied(format!(
                        "x-kms-domain-id {c:?} is not the domain of the bearer token"
                    )));
                }
                domain.clone()
            }
        };
        let region = match given.text(REGION, given.region)? {
            Some(r) => RegionId::parse(r).map_err(|e| KmsError::Invalid {
                code: kms_proto::ErrorCode::InvalidRealm,
                field: REGION,
                reason: e.to_string(),
            })?,
            None => self.default_region.clone(),
        };
        Ok(Caller { domain, region })
    }
}

impl Authenticator {
    /// Identifies the caller of an HTTP API that carries a bearer token alone (Vault's
    /// `X-Vault-Token`). With a tenants file the token decides the domain, compared in constant
    /// time against every tenant's as for gRPC; without one (loopback only) the token *is* the
    /// domain ID, trusted as `x-kms-domain-id` is. The region is the daemon's default region.
    pub fn authenticate_token(&self, token: &str) -> Result<Caller> {
        let domain = match &self.tenants {
            None => DomainId::parse(token).map_err(|_| {
                KmsError::Unauthenticated("without --tenants the token must be a domain ID")
            })?,
            Some(tenants) => tenant_of_token(tenants, token)
                .ok_or(KmsError::Unauthenticated("unknown token"))?
                .clone(),
        };
        Ok(Caller {
            domain,
            region: self.default_region.clone(),
        })
    }
}

/// The domain whose token this is: compared against every tenant, without stopping early, in
/// constant time.
fn tenant_of_token<'a>(tenants: &'a [KnownTenant], token: &str) -> Option<&'a DomainId> {
    let digest = token_digest(token);
    let mut found: Option<&DomainId> = None;
    for t in tenants {
        if bool::from(t.token_digest.ct_eq(&digest)) {
            found = Some(&t.domain);
        }
    }
    found
}

/// The request ID of a call: the caller's `x-kms-request-id` if it is sane, else a fresh one made
/// of a per-process random prefix and a counter (unique, and no system call on the request path).
pub fn request_id(md: &MetadataMap) -> String {
    request_id_from(md.get(REQUEST_ID).and_then(|v| v.to_str().ok()))
}

/// The request ID of a call that gave `given` (see [`request_id`]).
pub fn request_id_from(given: Option<&str>) -> String {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    match given
        .filter(|s| !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()))
    {
        Some(given) => given.to_owned(),
        None => {
            let prefix =
                PREFIX.get_or_init(|| uuid::Uuid::new_v4().simple().to_string()[..16].to_owned());
            // Written by hand: `format!` costs a tenth of a bare RPC's CPU here.
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let digits = (64 - n.leading_zeros()).div_ceil(4).max(1);
            // Exactly the ID's length: the response's metadata value takes the buffer over as it
            // is only when no capacity is spare.
            let mut id =
                String::with_capacity(prefix.len() + 1 + usize::try_from(digits).unwrap_or(16));
            id.push_str(prefix);
            id.push('-');
            for shift in (0..digits).rev() {
                let nibble = u8::try_from((n >> (shift * 4)) & 0xf).unwrap_or(0);
                id.push(char::from(b"0123456789abcdef"[usize::from(nibble)]));
            }
            id
        }
    }
}

/// The tenancy metadata of a request, found in one pass over its headers (a lookup by name per
/// header would cost a tenth of a bare RPC).
struct TenancyHeaders<'a> {
    domain: Option<&'a HeaderValue>,
    region: Option<&'a HeaderValue>,
    authorization: Option<&'a HeaderValue>,
    request_id: Option<&'a HeaderValue>,
}

impl<'a> TenancyHeaders<'a> {
    /// The first value of each header that authentication and auditing read (domain, region,
    /// authorization, request ID; each may appear once), and the refusal of the first one repeated.
    fn of(headers: &'a http::HeaderMap) -> (Self, Option<KmsError>) {
        let mut found = Self {
            domain: None,
            region: None,
            authorization: None,
            request_id: None,
        };
        let mut repeated = None;
        for (name, value) in headers {
            let (field, slot) = match name.as_str() {
                DOMAIN_ID => (DOMAIN_ID, &mut found.domain),
                REGION => (REGION, &mut found.region),
                AUTHORIZATION => (AUTHORIZATION, &mut found.authorization),
                REQUEST_ID => (REQUEST_ID, &mut found.request_id),
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value);
            } else if repeated.is_none() {
                repeated = Some(KmsError::InvalidArgument {
                    field,
                    reason: "repeated; it may appear at most once".into(),
                });
            }
        }
        (found, repeated)
    }

    /// A header's value as text.
    fn text(&self, field: &'static str, value: Option<&'a HeaderValue>) -> Result<Option<&'a str>> {
        value
            .map(|v| {
                v.to_str().map_err(|_| KmsError::InvalidArgument {
                    field,
                    reason: "not visible ASCII".into(),
                })
            })
            .transpose()
    }
}

/// Letters and digits, 1 to [`MAX_ACCESS_ID_LEN`] of them.
fn plain_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_ACCESS_ID_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// [`DomainId::parse`], reusing the ID this thread parsed last when the text is the same: a
/// tenant's calls come in runs, and a clone of a parsed ID is a count where parsing is a scan
/// and an allocation.
pub(crate) fn parse_domain(
    s: &str,
) -> std::result::Result<DomainId, kms_proto::key_id::KeyIdError> {
    thread_local! {
        static LAST: std::cell::RefCell<Option<DomainId>> = const { std::cell::RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| {
        if let Some(d) = last.as_ref().filter(|d| d.as_str() == s) {
            return Ok(d.clone());
        }
        let d = DomainId::parse(s)?;
        *last = Some(d.clone());
        Ok(d)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kms_proto::ErrorCode;

    fn md(pairs: &[(&'static str, &str)]) -> MetadataMap {
        let mut m = MetadataMap::new();
        for (k, v) in pairs {
            m.insert(*k, v.parse().unwrap());
        }
        m
    }

    /// The reused ID is the one parsing gives, whatever came before it on the thread.
    #[test]
    fn a_domain_parsed_again_is_the_domain_parsing_gives() {
        for s in ["d1", "d1", "D1", "d1", "bad!", "d1", "", "d2", "d1d1", "d1"] {
            assert_eq!(
                parse_domain(s).map(|d| d.as_str().to_owned()),
                DomainId::parse(s).map(|d| d.as_str().to_owned()),
                "{s:?}"
            );
        }
    }

    fn with_tenants() -> Authenticator {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tenants.toml");
        std::fs::write(
            &p,
            "[[tenants]]\ndomain_id = \"alice\"\ntoken = \"alice-token-0123456789\"\n\
             [[tenants]]\ndomain_id = \"bob\"\ntoken = \"bob-token-0123456789\"\n",
        )
        .unwrap();
        Authenticator::from_file(&p, RegionId::parse("r1").unwrap()).unwrap()
    }

    #[test]
    fn tokens_decide_the_domain() {
        let t = with_tenants();
        // (rule, metadata, expected domain or error code)
        type Case<'a> = (
            &'a str,
            Vec<(&'static str, &'a str)>,
            Result<&'a str, ErrorCode>,
        );
        let cases: &[Case<'_>] = &[
            (
                "token names the domain",
                vec![("authorization", "Bearer bob-token-0123456789")],
                Ok("bob"),
            ),
            (
                "matching domain header is fine",
                vec![
                    ("authorization", "Bearer alice-token-0123456789"),
                    ("x-kms-domain-id", "alice"),
                ],
                Ok("alice"),
            ),
            (
                "disagreeing domain header is refused",
                vec![
                    ("authorization", "Bearer alice-token-0123456789"),
                    ("x-kms-domain-id", "bob"),
                ],
                Err(ErrorCode::PermissionDenied),
            ),
            (
                "no token",
                vec![("x-kms-domain-id", "alice")],
                Err(ErrorCode::Unauthenticated),
            ),
            (
                "unknown token",
                vec![("authorization", "Bearer nope-nope-nope-nope")],
                Err(ErrorCode::Unauthenticated),
            ),
            (
                "not bearer",
                vec![("authorization", "Basic abc")],
                Err(ErrorCode::Unauthenticated),
            ),
        ];
        for (rule, pairs, want) in cases {
            let got = t.authenticate(&md(pairs));
            match want {
                Ok(d) => assert_eq!(got.unwrap().domain.as_str(), *d, "{rule}"),
                Err(code) => assert_eq!(got.unwrap_err().code(), *code, "{rule}"),
            }
        }
    }

    #[test]
    fn trusting_mode_reads_domain_and_region() {
        let t = Authenticator::trusting(RegionId::parse("r1").unwrap());
        let c = t.authenticate(&md(&[("x-kms-domain-id", "d1")])).unwrap();
        assert_eq!((c.domain.as_str(), c.region.as_str()), ("d1", "r1"));
        let c = t
            .authenticate(&md(&[
                ("x-kms-domain-id", "d1"),
                ("x-kms-region", "cn-north-4"),
            ]))
            .unwrap();
        assert_eq!(c.region.as_str(), "cn-north-4");
        assert_eq!(
            t.authenticate(&md(&[])).unwrap_err().code(),
            ErrorCode::Unauthenticated
        );
        assert_eq!(
            t.authenticate(&md(&[("x-kms-domain-id", "bad domain")]))
                .unwrap_err()
                .code(),
            ErrorCode::InvalidArgument
        );
    }

    fn md_appending(pairs: &[(&'static str, &str)]) -> MetadataMap {
        let mut m = MetadataMap::new();
        for (k, v) in pairs {
            m.append(*k, v.parse().unwrap());
        }
        m
    }

    #[test]
    fn repeated_tenancy_metadata_is_refused() {
        let tokens = with_tenants();
        let trusting = Authenticator::trusting(RegionId::parse("r1").unwrap());
        // (rule, authenticator, metadata)
        type Case<'a> = (&'a str, &'a Authenticator, Vec<(&'static str, &'a str)>);
        let cases: &[Case<'_>] = &[
            (
                "domain header twice, first one matching the token",
                &tokens,
                vec![
                    ("authorization", "Bearer alice-token-0123456789"),
                    ("x-kms-domain-id", "alice"),
                    ("x-kms-domain-id", "bob"),
                ],
            ),
            (
                "authorization twice",
                &tokens,
                vec![
                    ("authorization", "Bearer alice-token-0123456789"),
                    ("authorization", "Bearer bob-token-0123456789"),
                ],
            ),
            (
                "authorization twice, same value",
                &tokens,
                vec![
                    ("authorization", "Bearer alice-token-0123456789"),
                    ("authorization", "Bearer alice-token-0123456789"),
                ],
            ),
            (
                "region twice",
                &tokens,
                vec![
                    ("authorization", "Bearer alice-token-0123456789"),
                    ("x-kms-region", "r1"),
                    ("x-kms-region", "r2"),
                ],
            ),
            (
                "request ID twice",
                &tokens,
                vec![
                    ("authorization", "Bearer alice-token-0123456789"),
                    ("x-kms-request-id", "a"),
                    ("x-kms-request-id", "b"),
                ],
            ),
            (
                "domain header twice when trusting it",
                &trusting,
                vec![("x-kms-domain-id", "d1"), ("x-kms-domain-id", "d2")],
            ),
        ];
        for (rule, auth, pairs) in cases {
            assert_eq!(
                auth.authenticate(&md_appending(pairs)).unwrap_err().code(),
                ErrorCode::InvalidArgument,
                "{rule}"
            );
        }
    }

    #[test]
    fn a_bare_token_is_a_tenants_token_or_without_tenants_a_domain_id() {
        let tokens = with_tenants();
        let trusting = Authenticator::trusting(RegionId::parse("r1").unwrap());
        // (rule, authenticator, token, expected domain or error code)
        let cases: &[(&str, &Authenticator, &str, Result<&str, ErrorCode>)] = &[
            (
                "a tenant's token",
                &tokens,
                "bob-token-0123456789",
                Ok("bob"),
            ),
            (
                "an unknown token",
                &tokens,
                "nope-nope-nope-nope",
                Err(ErrorCode::Unauthenticated),
            ),
            (
                "a domain ID is no token when tokens are required",
                &tokens,
                "alice",
                Err(ErrorCode::Unauthenticated),
            ),
            ("without tenants, the domain ID", &trusting, "d1", Ok("d1")),
            (
                "without tenants, not a domain ID",
                &trusting,
                "not a domain",
                Err(ErrorCode::Unauthenticated),
            ),
        ];
        for (rule, auth, token, want) in cases {
            let got = auth.authenticate_token(token);
            match want {
                Ok(d) => {
                    let c = got.unwrap();
                    assert_eq!((c.domain.as_str(), c.region.as_str()), (*d, "r1"), "{rule}");
                }
                Err(code) => assert_eq!(got.unwrap_err().code(), *code, "{rule}"),
            }
        }
    }

    #[test]
    fn short_tokens_are_refused_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.toml");
        std::fs::write(&p, "[[tenants]]\ndomain_id = \"a\"\ntoken = \"short\"\n").unwrap();
        let e = Authenticator::from_file(&p, RegionId::parse("r").unwrap()).unwrap_err();
        assert!(e.to_string().contains("shorter than"), "{e}");
    }

    fn from_text(text: &str) -> Result<Authenticator, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tenants.toml");
        std::fs::write(&p, text).unwrap();
        Authenticator::from_file(&p, RegionId::parse("r1").unwrap())
    }

    const ALICE: &str = "[[tenants]]\ndomain_id = \"alice\"\ntoken = \"alice-token-0123456789\"\n";

    #[test]
    fn access_keys_name_the_tenant_and_projects_the_region() {
        let t = from_text(&format!(
            "{ALICE}access_key = \"AKALICE\"\nsecret_key = \"alice-secret-0123456789\"\n\
             projects = {{ \"r1\" = \"p1alice\", \"cn-north-4\" = \"p2alice\" }}\n\
             [[tenants]]\ndomain_id = \"bob\"\ntoken = \"bob-token-0123456789\"\n"
        ))
        .unwrap();
        let ak = t.access_key("AKALICE").expect("alice's access key");
        assert_eq!(ak.domain().as_str(), "alice");
        assert_eq!(ak.secret(), b"alice-secret-0123456789");
        assert_eq!(ak.region_of("p1alice").map(RegionId::as_str), Some("r1"));
        assert_eq!(
            ak.region_of("p2alice").map(RegionId::as_str),
            Some("cn-north-4")
        );
        assert!(ak.region_of("nope").is_none());
        assert!(t.access_key("AKBOB").is_none(), "bob has no access key");
        assert!(
            !format!("{ak:?}").contains("alice-secret"),
            "the secret never prints"
        );
        let trusting = Authenticator::trusting(RegionId::parse("r1").unwrap());
        assert!(trusting.access_key("AKALICE").is_none());
    }

    #[test]
    fn broken_access_key_entries_are_refused() {
        let bob = "[[tenants]]\ndomain_id = \"bob\"\ntoken = \"bob-token-0123456789\"\n";
        let ak = |id: &str, projects: &str| {
            format!(
                "access_key = \"{id}\"\nsecret_key = \"a-secret-key-0123456789\"\nprojects = {{ {projects} }}\n"
            )
        };
        // (rule, file)
        let cases: Vec<(&str, String)> = vec![
            (
                "access key without secret key",
                format!("{ALICE}access_key = \"AK1\"\n"),
            ),
            (
                "secret key without access key",
                format!("{ALICE}secret_key = \"a-secret-key-0123456789\"\n"),
            ),
            (
                "projects without access key",
                format!("{ALICE}projects = {{ \"r1\" = \"p1\" }}\n"),
            ),
            (
                "short secret key",
                format!("{ALICE}access_key = \"AK1\"\nsecret_key = \"short\"\n"),
            ),
            (
                "access key not letters and digits",
                format!("{ALICE}{}", ak("AK-1", "")),
            ),
            (
                "project not letters and digits",
                format!("{ALICE}{}", ak("AK1", "\"r1\" = \"p 1\"")),
            ),
            (
                "region not in the region grammar",
                format!("{ALICE}{}", ak("AK1", "\"R_1\" = \"p1\"")),
            ),
            (
                "one access key for two tenants",
                format!("{ALICE}{}{bob}{}", ak("AK1", ""), ak("AK1", "")),
            ),
            (
                "one project for two tenants",
                format!(
                    "{ALICE}{}{bob}{}",
                    ak("AK1", "\"r1\" = \"p1\""),
                    ak("AK2", "\"r2\" = \"p1\"")
                ),
            ),
            (
                "one project in two regions",
                format!("{ALICE}{}", ak("AK1", "\"r1\" = \"p1\", \"r2\" = \"p1\"")),
            ),
        ];
        for (rule, text) in cases {
            assert!(from_text(&text).is_err(), "{rule}: accepted\n{text}");
        }
    }
}
