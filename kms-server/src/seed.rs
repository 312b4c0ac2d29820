//! `--seed FILE`: keys with given IDs, states, dates and optionally key material, created at
//! start-up if missing (idempotent), and the same format written back by `export-seed`. The format
//! is FORMATS.md §5:
//!
//! ```toml
//! version = 1
//!
//! [[keys]]
//! domain_id = "783fc6652cf246c096ea836694f71855"
//! region = "region"                              # optional: the daemon's --region
//! key_id = "522d6070-5ad3-4765-9737-9312ddc72cdb"
//! alias = "seeded"                               # optional
//! description = "a key for reproducible tests"   # optional
//! state = "disabled"                             # optional: enabled, disabled, pending_deletion
//! current_version = 3                            # optional
//! rotation_interval_days = 90                     # optional: rotates by itself every 90 days
//! context_required = true                         # optional: a derived Vault key
//! tags = { team = "storage" }                     # optional: the key's tags
//! [[keys.versions]]
//! version = 3
//! material_hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
//!
//! [[keys]]                                       # the OBS default key of a tenant, pinned
//! domain_id = "783fc6652cf246c096ea836694f71855"
//! key_id = "0b8f4f4e-8c1c-4f43-9d43-6a4c6d1e2f30"
//! creator = "service"
//! service = "obs"
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use kms_proto::key_id::{DomainId, RegionId, parse_key_uuid};
use zeroize::Zeroizing;

use crate::crypto::{KEY_LEN, SecretKey};
use crate::error::{ConfigError, KmsError};
use crate::keyring::seeding::{SeedSpec, Seeded};
use crate::keyring::{Caller, Keyring};
use crate::store::{Creator, KeyPolicy, KeyRecord, KeyState};

/// The one version of the seed format this daemon reads and writes.
pub const SEED_FORMAT_VERSION: u32 = 1;

#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct SeedFile {
    #[serde(default)]
    version: Option<u32>,
    #[serde(default)]
    keys: Vec<SeedKey>,
}

#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct SeedKey {
    domain_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    key_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    alias: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    creator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deletion_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    current_version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rotation_interval_days: Option<u32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    context_required: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    deletion_allowed: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    versions: Vec<SeedVersion>,
}

#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct SeedVersion {
    version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    material_hex: Option<Material>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    material_file: Option<std::path::PathBuf>,
}

/// Key material as hex text, wiped when dropped and never printed.
struct Material(Zeroizing<String>);

impl<'de> serde::Deserialize<'de> for Material {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <String as serde::Deserialize>::deserialize(d).map(|s| Material(Zeroizing::new(s)))
    }
}

impl serde::Serialize for Material {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// 32 bytes from 64 hex digits (surrounding white space ignored) or, for a file, 32 raw bytes.
fn material_from(text: &[u8]) -> Result<SecretKey, String> {
    if text.len() == KEY_LEN {
        let mut k = [0u8; KEY_LEN];
        k.copy_from_slice(text);
        return Ok(SecretKey::from_bytes(k));
    }
    let trimmed = text.trim_ascii();
    let mut k = Zeroizing::new([0u8; KEY_LEN]);
    hex::decode_to_slice(trimmed, &mut k[..]).map_err(|_| {
        format!(
            "key material must be {KEY_LEN} bytes as {} hex digits",
            2 * KEY_LEN
        )
    })?;
    Ok(SecretKey::from_bytes(*k))
}

fn rfc3339_ms(field: &str, s: &str) -> Result<i64, String> {
    s.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| format!("{field} {s:?} is not an RFC 3339 instant: {e}"))
}

/// Reads one `[[keys]]` entry into what the keyring seeds.
fn spec_of(k: &SeedKey, dir: &Path, default_region: &RegionId) -> Result<SeedSpec, String> {
    let caller = Caller {
        domain: DomainId::parse(&k.domain_id).map_err(|e| format!("domain_id: {e}"))?,
        region: match &k.region {
            Some(r) => RegionId::parse(r).map_err(|e| format!("region: {e}"))?,
            None => default_region.clone(),
        },
    };
    let uuid = parse_key_uuid(&k.key_id).map_err(|e| e.to_string())?;
    let creator = match k.creator.as_deref() {
        None | Some("customer") => Creator::Customer,
        Some("service") => Creator::Service,
        Some(c) => return Err(format!("creator {c:?}: customer or service")),
    };
    let service = match (creator, &k.service) {
        (Creator::Service, Some(s)) => s.clone(),
        (Creator::Service, None) => return Err("a service key needs service".into()),
        (Creator::Customer, Some(_)) => return Err("service is for creator = \"service\"".into()),
        (Creator::Customer, None) => String::new(),
    };
    let state = match k.state.as_deref() {
        None | Some("enabled") => KeyState::Enabled,
        Some("disabled") => KeyState::Disabled,
        Some("pending_deletion") => KeyState::PendingDeletion,
        Some(s) => {
            return Err(format!(
                "state {s:?}: enabled, disabled or pending_deletion"
            ));
        }
    };
    let mut materials = BTreeMap::new();
    for v in &k.versions {
        let m = match (&v.material_hex, &v.material_file) {
            (Some(h), None) => material_from(h.0.as_bytes()),
            (None, Some(f)) => {
                let path = dir.join(f);
                let bytes = Zeroizing::new(
                    std::fs::read(&path)
                        .map_err(|e| format!("version {}: {}: {e}", v.version, path.display()))?,
                );
                material_from(&bytes)
            }
            (None, None) => Err("material_hex or material_file".into()),
            (Some(_), Some(_)) => Err("material_hex or material_file, not both".into()),
        }
        .map_err(|e| format!("version {}: {e}", v.version))?;
        if materials.insert(v.version, m).is_some() {
            return Err(format!("version {} is listed twice", v.version));
        }
    }
    Ok(SeedSpec {
        caller,
        uuid,
        alias: k.alias.clone(),
        description: k.description.clone(),
        creator,
        service,
        state,
        deletion_date_ms: k
            .deletion_date
            .as_deref()
            .map(|d| rfc3339_ms("deletion_date", d))
            .transpose()?,
        created_at_ms: k
            .created_at
            .as_deref()
            .map(|d| rfc3339_ms("created_at", d))
            .transpose()?,
        current_version: k.current_version,
        rotation_days: k.rotation_interval_days,
        policy: KeyPolicy {
            context_required: k.context_required,
            deletion_allowed: k.deletion_allowed,
        },
        tags: k.tags.clone(),
        materials,
    })
}

/// Creates every key of the seed file that does not exist yet, and checks those that do. Returns
/// the keys it created (for the audit log). A key the file describes badly, or that contradicts
/// the store, stops it with a message naming the key.
pub async fn apply(
    keyring: &Keyring,
    path: &Path,
    default_region: &RegionId,
) -> Result<Vec<Arc<KeyRecord>>, ConfigError> {
    const WHAT: &str = "seed file";
    let bad = |reason: String| ConfigError::Invalid {
        what: WHAT,
        path: path.to_owned(),
        reason,
    };
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            action: "reading",
            what: WHAT,
            path: path.to_owned(),
            source,
        })?,
    );
    let file: SeedFile = toml::from_str(&text).map_err(|e| ConfigError::Toml {
        what: WHAT,
        path: path.to_owned(),
        source: Box::new(e),
    })?;
    if let Some(v) = file.version.filter(|&v| v != SEED_FORMAT_VERSION) {
        return Err(bad(format!(
            "format version {v}: this daemon reads version {SEED_FORMAT_VERSION}"
        )));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut created = Vec::new();
    for k in &file.keys {
        let named = |e: String| bad(format!("key {}: {e}", k.key_id));
        let spec = spec_of(k, dir, default_region).map_err(named)?;
        match keyring.seed_key(spec).await {
            Ok(Seeded::Created(key)) => created.push(key),
            Ok(Seeded::Present) => {}
            Err(KmsError::InvalidArgument { reason, .. } | KmsError::Invalid { reason, .. }) => {
                return Err(named(reason));
            }
            Err(e) => return Err(named(e.to_string())),
        }
    }
    Ok(created)
}

/// Every key of the keyring as a seed file (FORMATS.md §5), with every version's material when
/// `include_material` (a file that then holds the keys in the clear).
pub fn export(keyring: &Keyring, include_material: bool) -> Result<Zeroizing<String>, KmsError> {
    let rfc3339 = |ms: i64| crate::audit::format_rfc3339_ms(ms);
    let mut keys = Vec::new();
    for rec in keyring.all_keys() {
        let service_key = rec.creator == Creator::Service;
        let mut versions = Vec::new();
        if include_material {
            for w in &rec.versions {
                let m = keyring.version_material(&rec, w.version)?;
                versions.push(SeedVersion {
                    version: w.version,
                    material_hex: Some(Material(Zeroizing::new(hex::encode(m.expose())))),
                    material_file: None,
                });
            }
        }
        keys.push(SeedKey {
            domain_id: rec.domain.to_string(),
            region: Some(rec.region.to_string()),
            key_id: rec.uuid.hyphenated().to_string(),
            alias: rec.alias.clone(),
            description: rec.description.clone(),
            creator: service_key.then(|| "service".to_owned()),
            service: service_key.then(|| rec.service.clone()),
            state: match rec.state {
                KeyState::Enabled => None,
                KeyState::Disabled => Some("disabled".into()),
                KeyState::PendingDeletion => Some("pending_deletion".into()),
            },
            deletion_date: rec.deletion_date_ms.map(rfc3339),
            created_at: Some(rfc3339(rec.created_at_ms)),
            current_version: Some(rec.current_version),
            rotation_interval_days: rec.rotation.enabled.then_some(rec.rotation.interval_days),
            context_required: rec.policy.context_required,
            deletion_allowed: rec.policy.deletion_allowed,
            tags: rec.tags.clone(),
            versions,
        });
    }
    let file = SeedFile {
        version: Some(SEED_FORMAT_VERSION),
        keys,
    };
    let mut text = toml::to_string(&file)
        .map(Zeroizing::new)
        .map_err(|e| KmsError::Internal(format!("writing the seed file: {e}")))?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::RootKey;
    use crate::store::MemoryStore;

    const UUID: &str = "522d6070-5ad3-4765-9737-9312ddc72cdb";
    const MATERIAL: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn keyring() -> Keyring {
        Keyring::open(
            Arc::new(MemoryStore::default()),
            RootKey::from_bytes([7; 32]),
        )
        .unwrap()
    }

    async fn seed(k: &Keyring, dir: &Path, text: &str) -> Result<Vec<Arc<KeyRecord>>, String> {
        let p = dir.join("seed.toml");
        std::fs::write(&p, text).unwrap();
        apply(k, &p, &RegionId::parse("region").unwrap())
            .await
            .map_err(|e| e.to_string())
    }

    fn key(extra: &str) -> String {
        format!("[[keys]]\ndomain_id = \"d1\"\nkey_id = \"{UUID}\"\n{extra}\n")
    }

    #[tokio::test]
    async fn a_seed_file_that_cannot_be_used_names_the_key_and_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        // (rule, key fields, the message names)
        let cases = [
            ("unknown state", "state = \"asleep\"", "state \"asleep\""),
            (
                "pending without a date",
                "state = \"pending_deletion\"",
                "needs a deletion_date",
            ),
            (
                "a date without pending",
                "deletion_date = \"2027-01-01T00:00:00Z\"",
                "only a key pending deletion",
            ),
            (
                "a bad date",
                "state = \"pending_deletion\"\ndeletion_date = \"soon\"",
                "not an RFC 3339 instant",
            ),
            (
                "service without service",
                "creator = \"service\"",
                "needs service",
            ),
            (
                "a disabled service key",
                "creator = \"service\"\nservice = \"obs\"\nstate = \"disabled\"",
                "always enabled",
            ),
            (
                "a service key's own alias",
                "creator = \"service\"\nservice = \"obs\"\nalias = \"mine\"",
                "\"obs/default\"",
            ),
            (
                "short material",
                "[[keys.versions]]\nversion = 1\nmaterial_hex = \"0011\"",
                "64 hex digits",
            ),
            (
                "version above current",
                &format!(
                    "current_version = 1\n[[keys.versions]]\nversion = 2\nmaterial_hex = \"{MATERIAL}\""
                ),
                "above current_version 1",
            ),
            (
                "version 0",
                &format!("[[keys.versions]]\nversion = 0\nmaterial_hex = \"{MATERIAL}\""),
                "start at 1",
            ),
            (
                "no material",
                "[[keys.versions]]\nversion = 1",
                "material_hex or material_file",
            ),
            (
                "a rotation interval out of range",
                "rotation_interval_days = 7",
                "out of range",
            ),
            (
                "a rotating service key",
                "creator = \"service\"\nservice = \"obs\"\nrotation_interval_days = 30",
                "neither rotates",
            ),
            (
                "a service key with a policy",
                "creator = \"service\"\nservice = \"obs\"\ncontext_required = true",
                "nor has a policy",
            ),
            (
                "a service key with tags",
                "creator = \"service\"\nservice = \"obs\"\ntags = { team = \"a\" }",
                "or tags",
            ),
            (
                "a tag key with '='",
                "tags = { \"a=b\" = \"v\" }",
                "not allowed",
            ),
            (
                "eleven tags",
                "tags = { a = \"\", b = \"\", c = \"\", d = \"\", e = \"\", f = \"\", g = \"\", \
                 h = \"\", i = \"\", j = \"\", k = \"\" }",
                "at most 10 tags",
            ),
        ];
        for (rule, extra, needle) in cases {
            let k = keyring();
            let e = seed(&k, dir.path(), &key(extra)).await.expect_err(rule);
            assert!(e.contains(UUID) && e.contains(needle), "{rule}: {e}");
            assert_eq!(k.key_count(), 0, "{rule}: nothing stored");
        }
        let e = seed(&keyring(), dir.path(), "version = 2\n")
            .await
            .unwrap_err();
        assert!(e.contains("format version 2"), "{e}");
    }

    #[tokio::test]
    async fn seeding_is_idempotent_and_a_contradicting_seed_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let k = keyring();
        let pinned = key(&format!(
            "alias = \"pinned\"\nstate = \"disabled\"\ncreated_at = \"2027-01-01T00:00:00Z\"\n\
             current_version = 2\n[[keys.versions]]\nversion = 2\nmaterial_hex = \"{MATERIAL}\""
        ));
        let created = seed(&k, dir.path(), &pinned).await.unwrap();
        assert_eq!(created.len(), 1);
        let rec = &created[0];
        assert_eq!(
            (rec.state, rec.current_version, rec.versions.len()),
            (KeyState::Disabled, 2, 2)
        );
        assert_eq!(rec.created_at_ms, 1_798_761_600_000);
        assert_eq!(
            hex::encode(k.version_material(rec, 2).unwrap().expose()),
            MATERIAL
        );
        assert!(
            seed(&k, dir.path(), &pinned).await.unwrap().is_empty(),
            "seeding twice creates nothing"
        );
        let other_material = "ff".repeat(32);
        // (rule, the same key described otherwise, the message names)
        let cases = [
            (
                "another alias",
                key("alias = \"renamed\""),
                "alias \"pinned\"",
            ),
            (
                "other material",
                key(&format!(
                    "alias = \"pinned\"\ncurrent_version = 2\n[[keys.versions]]\nversion = 2\nmaterial_hex = \"{other_material}\""
                )),
                "version 2's material differs",
            ),
            (
                "a version the store lacks",
                key(&format!(
                    "alias = \"pinned\"\ncurrent_version = 3\n[[keys.versions]]\nversion = 3\nmaterial_hex = \"{MATERIAL}\""
                )),
                "no version 3",
            ),
            (
                "another domain",
                format!("[[keys]]\ndomain_id = \"d2\"\nkey_id = \"{UUID}\"\nalias = \"pinned\"\n"),
                "another domain or region",
            ),
            (
                "a service key now",
                key("creator = \"service\"\nservice = \"obs\""),
                "another creator",
            ),
        ];
        for (rule, text, needle) in cases {
            let e = seed(&k, dir.path(), &text).await.expect_err(rule);
            assert!(e.contains(UUID) && e.contains(needle), "{rule}: {e}");
        }
    }

    #[tokio::test]
    async fn a_default_key_is_pinned_once_and_its_slot_is_defended() {
        let dir = tempfile::tempdir().unwrap();
        let k = keyring();
        let obs = key("creator = \"service\"\nservice = \"obs\"");
        let created = seed(&k, dir.path(), &obs).await.unwrap();
        assert_eq!(created[0].alias, "obs/default");
        let caller = Caller {
            domain: DomainId::parse("d1").unwrap(),
            region: RegionId::parse("region").unwrap(),
        };
        let default = k.default_key(&caller, "obs").await.unwrap();
        assert_eq!(
            default.uuid.to_string(),
            UUID,
            "GetDefaultKey answers the seeded key"
        );
        let other = "[[keys]]\ndomain_id = \"d1\"\nkey_id = \"622d6070-5ad3-4765-9737-9312ddc72cdb\"\n\
             creator = \"service\"\nservice = \"obs\"";
        let e = seed(&k, dir.path(), other).await.unwrap_err();
        assert!(e.contains(&format!("is already key {UUID}")), "{e}");
    }

    #[tokio::test]
    async fn an_exported_seed_gives_another_keyring_the_same_keys() {
        let dir = tempfile::tempdir().unwrap();
        let a = keyring();
        let caller = Caller {
            domain: DomainId::parse("d1").unwrap(),
            region: RegionId::parse("region").unwrap(),
        };
        let options = crate::keyring::KeyOptions {
            rotation_days: Some(90),
            policy: KeyPolicy {
                context_required: true,
                deletion_allowed: true,
            },
        };
        let key = a
            .create_key_with(&caller, "exported", options)
            .await
            .unwrap();
        a.rotate(&caller, &key.uuid.to_string()).await.unwrap();
        let tags = crate::store::Tags::from([("team".to_owned(), "storage".to_owned())]);
        a.edit_tags(
            &caller,
            &key.uuid.to_string(),
            crate::keyring::TagEdit::Set(tags.clone()),
        )
        .await
        .unwrap();
        let plain = a.create_key(&caller, "plain", "").await.unwrap();
        let ctx: crate::keyring::Context = [("bucket".to_owned(), "b".to_owned())].into();
        let sealed = a
            .encrypt(&caller, &key.uuid.to_string(), b"hi", &ctx)
            .unwrap();
        let without = export(&a, false).unwrap();
        assert!(!without.contains("material_hex"), "{}", *without);
        let with = export(&a, true).unwrap();
        let b = Keyring::open(
            Arc::new(MemoryStore::default()),
            RootKey::from_bytes([9; 32]),
        )
        .unwrap();
        assert_eq!(seed(&b, dir.path(), &with).await.unwrap().len(), 2);
        let opened = b.decrypt(&caller, &sealed.blob, &ctx, "").unwrap();
        assert_eq!(&opened.plaintext[..], b"hi");
        assert_eq!(opened.version, 2);
        // The schedule and the policy come along; a key without them stays without.
        let (theirs, mine) = (
            b.find(&caller, &key.uuid.to_string()).unwrap(),
            a.find(&caller, &key.uuid.to_string()).unwrap(),
        );
        assert_eq!(
            (theirs.rotation.enabled, theirs.rotation.interval_days),
            (true, 90)
        );
        // Versions' times are not in the format: the schedule counts from the key's creation.
        let day_ms = 86_400_000;
        assert_eq!(
            theirs.next_rotation_ms(),
            Some(mine.created_at_ms + 90 * day_ms)
        );
        assert_eq!((&theirs.policy, &theirs.tags), (&mine.policy, &tags));
        let plain = b.find(&caller, &plain.uuid.to_string()).unwrap();
        assert!(
            !plain.rotation.enabled
                && plain.policy == KeyPolicy::default()
                && plain.tags.is_empty()
        );
        assert!(!without.contains("tags = {}"), "{}", *without);
        assert!(
            !without.contains("context_required = false"),
            "{}",
            *without
        );
        // Re-seeding the first keyring with its own export is a no-op.
        assert!(seed(&a, dir.path(), &with).await.unwrap().is_empty());
    }
}
