//! Seeded keys (`--seed`, FORMATS.md §5): keys with given IDs, states, dates and, optionally, key
//! material, created at start-up when missing and checked against the store when present.

use std::collections::BTreeMap;
use std::sync::Arc;

use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::validate::{
    validate_alias, validate_description, validate_rotation_interval, validate_service,
};
use super::{Caller, Keyring, wrap_ctx};
use crate::crypto::{SecretKey, WRAP_SCHEME_V1};
use crate::error::{KmsError, Result};
use crate::store::{Conflict, Creator, KeyPolicy, KeyRecord, KeyState, StoreError, WrappedVersion};

/// One key as a seed file describes it, checked for grammar but not yet against the store.
#[derive(Debug)]
pub struct SeedSpec {
    /// The owner and region.
    pub caller: Caller,
    /// The key's UUID.
    pub uuid: Uuid,
    /// Alias (for a service key, `<service>/default` or empty).
    pub alias: String,
    /// Description.
    pub description: String,
    /// Customer or service key.
    pub creator: Creator,
    /// For a service key, the service.
    pub service: String,
    /// The state it is created in.
    pub state: KeyState,
    /// With [`KeyState::PendingDeletion`], when it is purged.
    pub deletion_date_ms: Option<i64>,
    /// Creation date; `None` for the clock's now.
    pub created_at_ms: Option<i64>,
    /// The version new encryptions use; `None` for the highest listed, else 1.
    pub current_version: Option<u32>,
    /// Automatic rotation from the key's creation, every so many days (30 to 365); `None`: off.
    pub rotation_days: Option<u32>,
    /// The key's policy.
    pub policy: KeyPolicy,
    /// The key's tags.
    pub tags: crate::store::Tags,
    /// Given material by version.
    pub materials: BTreeMap<u32, SecretKey>,
}

/// What seeding one key did.
#[derive(Debug)]
pub enum Seeded {
    /// Created it.
    Created(Arc<KeyRecord>),
    /// It was there already, as the seed describes it.
    Present,
}

/// A seed that contradicts itself or the store; the message names what.
fn contradiction(reason: String) -> KmsError {
    KmsError::InvalidArgument {
        field: "seed",
        reason,
    }
}

impl Keyring {
    /// Every key of every tenant, oldest first (`export-seed`).
    pub fn all_keys(&self) -> Vec<Arc<KeyRecord>> {
        let mut keys: Vec<Arc<KeyRecord>> = self.read_cache().values().cloned().collect();
        keys.sort_by_key(|r| (r.created_at_ms, r.uuid));
        keys
    }

    /// One version's material, unwrapped (`export-seed --include-material`).
    pub fn version_material(&self, rec: &KeyRecord, version: u32) -> Result<SecretKey> {
        let w = rec.version(version).ok_or_else(|| {
            KmsError::Internal(format!("key {} has no version {version}", rec.uuid))
        })?;
        self.root.unwrap(&wrap_ctx(rec, version), &w.wrapped)
    }

    /// Creates the key `spec` describes unless it exists; checks an existing one against it.
    pub async fn seed_key(&self, spec: SeedSpec) -> Result<Seeded> {
        let highest = spec.materials.keys().next_back().copied();
        let current = spec.current_version.or(highest).unwrap_or(1);
        if current == 0 || spec.materials.contains_key(&0) {
            return Err(contradiction("key versions start at 1".into()));
        }
        if let Some(h) = highest.filter(|&h| h > current) {
            return Err(contradiction(format!(
                "version {h} is listed, above current_version {current}"
            )));
        }
        match (spec.creator, spec.state, spec.deletion_date_ms) {
            (Creator::Service, KeyState::Enabled, None) => {}
            (Creator::Service, ..) => {
                return Err(contradiction(
                    "a service default key is always enabled, without a deletion date".into(),
                ));
            }
            (_, KeyState::PendingDeletion, None) => {
                return Err(contradiction(
                    "state pending_deletion needs a deletion_date".into(),
                ));
            }
            (_, KeyState::Enabled | KeyState::Disabled, Some(_)) => {
                return Err(contradiction(
                    "only a key pending deletion has a deletion_date".into(),
                ));
            }
            _ => {}
        }
        if spec.creator == Creator::Service
            && (spec.rotation_days.is_some()
                || spec.policy != KeyPolicy::default()
                || !spec.tags.is_empty())
        {
            return Err(contradiction(
                "a service default key neither rotates by itself nor has a policy or tags".into(),
            ));
        }
        super::validate::validate_tags(&spec.tags)?;
        if let Some(days) = spec.rotation_days {
            validate_rotation_interval(days)?;
        }
        let default_alias = format!("{}/default", spec.service);
        let alias = match spec.creator {
            Creator::Customer => {
                validate_alias(&spec.alias)?;
                spec.alias.clone()
            }
            Creator::Service => {
                validate_service(&spec.service)?;
                if !spec.alias.is_empty() && spec.alias != default_alias {
                    return Err(contradiction(format!(
                        "a service key's alias is {default_alias:?}, not {:?}",
                        spec.alias
                    )));
                }
                default_alias
            }
        };
        validate_description(&spec.description)?;

        let _w = self.writes.lock().await;
        let existing = self.read_cache().get(&spec.uuid).cloned();
        if let Some(rec) = existing {
            self.check_seeded(&rec, &spec, &alias)?;
            return Ok(Seeded::Present);
        }
        let mut rec = KeyRecord {
            uuid: spec.uuid,
            domain: spec.caller.domain.clone(),
            region: spec.caller.region.clone(),
            alias,
            description: spec.description.clone(),
            state: spec.state,
            creator: spec.creator,
            service: match spec.creator {
                Creator::Customer => String::new(),
                Creator::Service => spec.service.clone(),
            },
            created_at_ms: spec.created_at_ms.unwrap_or_else(|| self.clock.now_ms()),
            deletion_date_ms: spec.deletion_date_ms,
            current_version: current,
            versions: Vec::new(),
            mac: None,
            rotation: crate::store::Rotation::default(),
            policy: spec.policy,
            tags: spec.tags.clone(),
        };
        let created_at_ms = rec.created_at_ms;
        if let Some(days) = spec.rotation_days {
            rec.rotation = crate::store::Rotation {
                enabled: true,
                interval_days: days,
                since_ms: created_at_ms,
            };
        }
        for version in 1..=current {
            let generated;
            let material = match spec.materials.get(&version) {
                Some(m) => m,
                None => {
                    generated = SecretKey::generate()?;
                    &generated
                }
            };
            let wrapped = self.root.wrap(&wrap_ctx(&rec, version), material)?;
            rec.versions.push(WrappedVersion {
                version,
                scheme: WRAP_SCHEME_V1,
                wrapped: wrapped.to_vec(),
                nonces_reserved: 0,
                created_at_ms: rec.created_at_ms,
            });
        }
        let rec = self.with_mac(rec)?;
        let store_mac = self.store_mac_after(Some(&rec), None)?;
        let stored = rec.clone();
        let rec = match rec.creator {
            Creator::Customer => {
                self.blocking(move |s| s.insert_key(&stored, &store_mac))
                    .await
                    .map_err(|e| match e {
                        KmsError::Store(StoreError::Conflict(Conflict::Alias)) => {
                            contradiction(format!("alias {:?} is another key's", rec.alias))
                        }
                        KmsError::Store(StoreError::Conflict(Conflict::Uuid)) => {
                            contradiction("the key ID is taken in another domain or region".into())
                        }
                        other => other,
                    })?;
                rec
            }
            Creator::Service => {
                let kept = self
                    .blocking(move |s| s.insert_default_key(&stored, &store_mac))
                    .await
                    .map_err(|e| match e {
                        KmsError::Store(StoreError::Conflict(Conflict::Uuid)) => {
                            contradiction("the key ID is taken in another domain or region".into())
                        }
                        other => other,
                    })?;
                if kept.uuid != rec.uuid {
                    return Err(contradiction(format!(
                        "the default key of service {} in domain {} and region {} is already key {}",
                        rec.service, rec.domain, rec.region, kept.uuid
                    )));
                }
                kept
            }
        };
        let rec = Arc::new(rec);
        self.put_cache(Arc::clone(&rec));
        Ok(Seeded::Created(rec))
    }

    /// A key that exists already must be the one the seed describes.
    fn check_seeded(&self, rec: &KeyRecord, spec: &SeedSpec, alias: &str) -> Result<()> {
        if !spec.caller.owns(rec) {
            return Err(contradiction(
                "the key ID is taken in another domain or region".into(),
            ));
        }
        if rec.creator != spec.creator
            || (spec.creator == Creator::Service && rec.service != spec.service)
        {
            return Err(contradiction(
                "the store holds it with another creator or service".into(),
            ));
        }
        if rec.alias != alias {
            return Err(contradiction(format!(
                "the store holds it with alias {:?}, not {alias:?}",
                rec.alias
            )));
        }
        for (&version, given) in &spec.materials {
            if rec.version(version).is_none() {
                return Err(contradiction(format!(
                    "the store has no version {version} of it"
                )));
            }
            let stored = self.version_material(rec, version)?;
            if !bool::from(stored.expose().ct_eq(given.expose())) {
                return Err(contradiction(format!(
                    "version {version}'s material differs from the store's"
                )));
            }
        }
        Ok(())
    }
}
