//! `--seed FILE`: keys with given IDs and aliases, created at start-up if missing (idempotent).
//!
//! ```toml
//! [[keys]]
//! domain_id = "783fc6652cf246c096ea836694f71855"
//! region = "region"                              # optional: the daemon's --region
//! key_id = "522d6070-5ad3-4765-9737-9312ddc72cdb"
//! alias = "seeded"                               # optional
//! description = "a key for reproducible tests"   # optional
//! ```

use std::path::Path;
use std::sync::Arc;

use kms_proto::key_id::{DomainId, RegionId, parse_key_uuid};

use crate::error::{ConfigError, KmsError};
use crate::keyring::{Caller, Keyring};
use crate::store::KeyRecord;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedFile {
    #[serde(default)]
    keys: Vec<SeedKey>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedKey {
    domain_id: String,
    region: Option<String>,
    key_id: String,
    #[serde(default)]
    alias: String,
    #[serde(default)]
    description: String,
}

/// Creates every key of the seed file that does not exist yet. Returns the keys it created (for
/// the audit log).
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
    let id = |source| ConfigError::Id {
        what: WHAT,
        path: path.to_owned(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        action: "reading",
        what: WHAT,
        path: path.to_owned(),
        source,
    })?;
    let file: SeedFile = toml::from_str(&text).map_err(|e| ConfigError::Toml {
        what: WHAT,
        path: path.to_owned(),
        source: Box::new(e),
    })?;
    let mut created = Vec::new();
    for k in file.keys {
        let caller = Caller {
            domain: DomainId::parse(&k.domain_id).map_err(id)?,
            region: match &k.region {
                Some(r) => RegionId::parse(r).map_err(id)?,
                None => default_region.clone(),
            },
        };
        let uuid = parse_key_uuid(&k.key_id).map_err(id)?;
        match keyring.find(&caller, &k.key_id) {
            Ok(existing) if existing.alias == k.alias => continue,
            Ok(existing) => {
                return Err(bad(format!(
                    "key {} exists with alias {:?}, not {:?}",
                    k.key_id, existing.alias, k.alias
                )));
            }
            Err(KmsError::KeyNotFound(_)) => {}
            Err(e) => return Err(bad(format!("key {}: {e}", k.key_id))),
        }
        let key = keyring
            .create_customer_key_with_id(&caller, uuid, &k.alias, &k.description)
            .await
            .map_err(|e| bad(format!("key {}: {e}", k.key_id)))?;
        created.push(key);
    }
    Ok(created)
}
