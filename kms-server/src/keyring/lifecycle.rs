//! Key lifecycle: create, look up, enable and disable, schedule and cancel deletion, rotate, list,
//! service default keys and the purge of keys past their deletion date. Every change is written to
//! the store before the cache, under the keyring's write lock, with the key's new record MAC and
//! the new store MAC (FORMATS.md §3).

use std::sync::{Arc, PoisonError};

use uuid::Uuid;

use super::validate::{
    DELETION_WINDOW, PAGE_SIZE, PageCursor, validate_alias, validate_description,
    validate_rotation_interval, validate_service,
};
use super::{Caller, DefaultSlot, Keyring, wrap_ctx};
use crate::crypto::{SecretKey, WRAP_SCHEME_V1};
use crate::error::{KmsError, Result};
use crate::store::{
    Attributes, Conflict, Creator, KeyPolicy, KeyRecord, KeyState, Rotation, StoreError, Tags,
    WrappedVersion,
};

const DAY_MS: i64 = 86_400_000;

/// One page of `ListKeys`.
#[derive(Debug, Clone)]
pub struct KeyPage {
    /// The caller's keys on this page, oldest first.
    pub keys: Vec<Arc<KeyRecord>>,
    /// The token of the next page; empty on the last one.
    pub next_page_token: String,
}

/// What a new key is: who made it, what it is called.
struct NewKey<'a> {
    uuid: Uuid,
    alias: &'a str,
    description: &'a str,
    creator: Creator,
    service: &'a str,
}

/// How a customer key is made beyond its alias ([`Keyring::create_key_with`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyOptions {
    /// Automatic rotation from the start, every so many days (30 to 365); `None`: off.
    pub rotation_days: Option<u32>,
    /// The key's policy.
    pub policy: KeyPolicy,
}

/// A change of a key's options ([`Keyring::configure`]); each `None` leaves its option as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Configure {
    /// Turns automatic rotation on or off.
    pub rotation_enabled: Option<bool>,
    /// The rotation interval, 30 to 365 days.
    pub rotation_days: Option<u32>,
    /// Whether Vault's `DELETE transit/keys/:name` may schedule the key's deletion.
    pub deletion_allowed: Option<bool>,
}

/// A change to one key, decided under the write lock and then persisted.
pub(super) enum Change {
    None,
    State {
        state: KeyState,
        deletion_date_ms: Option<i64>,
    },
    Version(WrappedVersion),
    /// What a caller may change besides state and versions, all as it will be.
    Attributes(Attributes),
}

impl Change {
    fn state(state: KeyState) -> Self {
        Change::State {
            state,
            deletion_date_ms: None,
        }
    }
}

impl Keyring {
    fn new_record(&self, caller: &Caller, new: &NewKey<'_>) -> Result<KeyRecord> {
        let mut rec = KeyRecord {
            uuid: new.uuid,
            domain: caller.domain.clone(),
            region: caller.region.clone(),
            alias: new.alias.to_owned(),
            description: new.description.to_owned(),
            state: KeyState::Enabled,
            creator: new.creator,
            service: new.service.to_owned(),
            created_at_ms: self.clock.now_ms(),
            deletion_date_ms: None,
            current_version: 1,
            versions: Vec::new(),
            mac: None,
            rotation: Rotation::default(),
            policy: KeyPolicy::default(),
            tags: Tags::new(),
        };
        let material = SecretKey::generate()?;
        let wrapped = self.root.wrap(&wrap_ctx(&rec, 1), &material)?;
        rec.versions.push(WrappedVersion {
            version: 1,
            scheme: WRAP_SCHEME_V1,
            wrapped: wrapped.to_vec(),
            nonces_reserved: 0,
            created_at_ms: rec.created_at_ms,
        });
        self.with_mac(rec)
    }

    /// Creates a customer key.
    pub async fn create_key(
        &self,
        caller: &Caller,
        alias: &str,
        description: &str,
    ) -> Result<Arc<KeyRecord>> {
        self.insert_customer_key(
            caller,
            alias,
            description,
            Rotation::default(),
            KeyPolicy::default(),
        )
        .await
    }

    /// Creates a customer key with a rotation schedule or policy from its creation (Vault's
    /// create options): one write, so that no key is ever stored without what was asked for.
    pub async fn create_key_with(
        &self,
        caller: &Caller,
        alias: &str,
        options: KeyOptions,
    ) -> Result<Arc<KeyRecord>> {
        let mut rotation = Rotation::default();
        if let Some(days) = options.rotation_days {
            validate_rotation_interval(days)?;
            rotation = Rotation {
                enabled: true,
                interval_days: days,
                since_ms: self.clock.now_ms(),
            };
        }
        self.insert_customer_key(caller, alias, "", rotation, options.policy)
            .await
    }

    /// Creates a customer key with the given rotation schedule and policy.
    async fn insert_customer_key(
        &self,
        caller: &Caller,
        alias: &str,
        description: &str,
        rotation: Rotation,
        policy: KeyPolicy,
    ) -> Result<Arc<KeyRecord>> {
        validate_alias(alias)?;
        validate_description(description)?;
        let uuid = Uuid::new_v4();
        let mut rec = self.new_record(
            caller,
            &NewKey {
                uuid,
                alias,
                description,
                creator: Creator::Customer,
                service: "",
            },
        )?;
        // Not bound by the record MAC (FORMATS.md §3), so set after it.
        rec.rotation = rotation;
        rec.policy = policy;
        let _w = self.writes.lock().await;
        let store_mac = self.store_mac_after(Some(&rec), None)?;
        let stored = rec.clone();
        self.blocking(move |s| s.insert_key(&stored, &store_mac))
            .await
            .map_err(|e| match e {
                KmsError::Store(StoreError::Conflict(Conflict::Alias)) => {
                    KmsError::AliasExists(alias.to_owned())
                }
                KmsError::Store(StoreError::Conflict(Conflict::Uuid)) => {
                    KmsError::InvalidArgument {
                        field: "key_id",
                        reason: format!("key {uuid} already exists"),
                    }
                }
                other => other,
            })?;
        let rec = Arc::new(rec);
        self.put_cache(Arc::clone(&rec));
        Ok(rec)
    }

    /// The caller's default key for `service` in the caller's region, created on first use,
    /// exactly once.
    pub async fn default_key(&self, caller: &Caller, service: &str) -> Result<Arc<KeyRecord>> {
        validate_service(service)?;
        if let Some(k) = self.cached_default(caller, service) {
            return Ok(k);
        }
        // Boxed: made once per tenant, region and service, its state would otherwise enlarge the
        // future of every call that finds the key cached.
        Box::pin(self.create_default(caller, service)).await
    }

    /// Makes `service`'s default key for `caller`, unless another call made it first.
    async fn create_default(&self, caller: &Caller, service: &str) -> Result<Arc<KeyRecord>> {
        let _w = self.writes.lock().await;
        // Whoever held the lock before us may have created it.
        if let Some(k) = self.cached_default(caller, service) {
            return Ok(k);
        }
        let rec = self.new_record(
            caller,
            &NewKey {
                uuid: Uuid::new_v4(),
                alias: &format!("{service}/default"),
                description: &format!("Default key of service {service}"),
                creator: Creator::Service,
                service,
            },
        )?;
        // The store keeps one per (domain, region, service). The cache holds every key the store
        // does (the keyring is its one writer), so a default key found there was put there
        // behind the keyring's back.
        let store_mac = self.store_mac_after(Some(&rec), None)?;
        let uuid = rec.uuid;
        let stored = self
            .blocking(move |s| s.insert_default_key(&rec, &store_mac))
            .await?;
        // In a fleet another daemon may have won the race: its key is the default key.
        if stored.uuid != uuid && !self.store.is_shared() {
            return Err(KmsError::StoreIntegrity(format!(
                "the key database holds default key {} of service {service}, which this daemon \
                 did not load at start-up nor write: it was added behind the daemon's back",
                stored.full_id()
            )));
        }
        crate::integrity::check_record(&self.root, &stored)?;
        let stored = Arc::new(stored);
        self.put_cache(Arc::clone(&stored));
        Ok(stored)
    }

    fn cached_default(&self, caller: &Caller, service: &str) -> Option<Arc<KeyRecord>> {
        let slot = DefaultSlot {
            domain: caller.domain.clone(),
            region: caller.region.clone(),
            service: service.to_owned(),
        };
        let uuid = *self
            .defaults
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&slot)?;
        self.read_cache().get(&uuid).cloned()
    }

    /// Enables a disabled key.
    pub async fn enable(&self, caller: &Caller, key_id: &str) -> Result<Arc<KeyRecord>> {
        self.change(caller, key_id, |r| match r.state {
            KeyState::Enabled => Err(KmsError::NotDisabled(r.full_id().to_string())),
            KeyState::Disabled => Ok(Change::state(KeyState::Enabled)),
            KeyState::PendingDeletion => Err(KmsError::KeyPendingDeletion(r.full_id().to_string())),
        })
        .await
    }

    /// Disables a key.
    pub async fn disable(&self, caller: &Caller, key_id: &str) -> Result<Arc<KeyRecord>> {
        self.change(caller, key_id, |r| {
            refuse_default(r, "disabled")?;
            match r.state {
                KeyState::Enabled => Ok(Change::state(KeyState::Disabled)),
                KeyState::Disabled => Err(KmsError::NotEnabled(r.full_id().to_string())),
                KeyState::PendingDeletion => {
                    Err(KmsError::KeyPendingDeletion(r.full_id().to_string()))
                }
            }
        })
        .await
    }

    /// Schedules a key for deletion after `days` (0 means the default).
    pub async fn schedule_deletion(
        &self,
        caller: &Caller,
        key_id: &str,
        days: u32,
    ) -> Result<Arc<KeyRecord>> {
        let days = DELETION_WINDOW.days(days)?;
        self.change(caller, key_id, |r| {
            refuse_default(r, "scheduled for deletion")?;
            match r.state {
                KeyState::PendingDeletion => {
                    Err(KmsError::AlreadyPendingDeletion(r.full_id().to_string()))
                }
                _ => Ok(Change::State {
                    state: KeyState::PendingDeletion,
                    deletion_date_ms: Some(self.clock.now_ms() + i64::from(days) * DAY_MS),
                }),
            }
        })
        .await
    }

    /// Cancels a scheduled deletion; the key comes back disabled.
    pub async fn cancel_deletion(&self, caller: &Caller, key_id: &str) -> Result<Arc<KeyRecord>> {
        self.change(caller, key_id, |r| match r.state {
            KeyState::PendingDeletion => Ok(Change::state(KeyState::Disabled)),
            s => Err(KmsError::NotPendingDeletion {
                key: r.full_id().to_string(),
                state: s.as_str(),
            }),
        })
        .await
    }

    /// Adds a key version and makes it current.
    pub async fn rotate(&self, caller: &Caller, key_id: &str) -> Result<Arc<KeyRecord>> {
        Ok(self.rotate_if(caller, key_id, None).await?.0)
    }

    /// Rotates a key; with `due_at`, only if its schedule says it is due then (decided again on
    /// the key as stored when another daemon of a fleet changed it first, so that a due key is
    /// rotated once across the fleet).
    async fn rotate_if(
        &self,
        caller: &Caller,
        key_id: &str,
        due_at: Option<i64>,
    ) -> Result<(Arc<KeyRecord>, bool)> {
        // Whether the last decision (there may be two, see `change`) rotated.
        let rotates = std::sync::atomic::AtomicBool::new(false);
        let rec = self
            .change(caller, key_id, |r| {
                rotates.store(false, std::sync::atomic::Ordering::Relaxed);
                if let Some(now) = due_at
                    && !(r.state == KeyState::Enabled
                        && r.next_rotation_ms().is_some_and(|t| t <= now))
                {
                    return Ok(Change::None);
                }
                refuse_default(r, "rotated")?;
                usable(r)?;
                let version = r
                    .current_version
                    .checked_add(1)
                    .ok_or_else(|| KmsError::Internal("key version overflow".into()))?;
                let material = SecretKey::generate()?;
                let wrapped = self.root.wrap(&wrap_ctx(r, version), &material)?;
                let version = Change::Version(WrappedVersion {
                    version,
                    scheme: WRAP_SCHEME_V1,
                    wrapped: wrapped.to_vec(),
                    nonces_reserved: 0,
                    created_at_ms: self.clock.now_ms(),
                });
                rotates.store(true, std::sync::atomic::Ordering::Relaxed);
                Ok(version)
            })
            .await?;
        Ok((rec, rotates.into_inner()))
    }

    /// Renames a key. Default keys keep their alias; a key pending deletion is not renamed.
    pub async fn update_alias(
        &self,
        caller: &Caller,
        key_id: &str,
        alias: &str,
    ) -> Result<Arc<KeyRecord>> {
        validate_alias(alias)?;
        if alias.is_empty() {
            return Err(KmsError::Invalid {
                code: kms_proto::ErrorCode::InvalidKeyAlias,
                field: "alias",
                reason: "empty".into(),
            });
        }
        self.change(caller, key_id, |r| {
            refuse_default(r, "renamed")?;
            not_pending(r)?;
            Ok(Change::Attributes(Attributes {
                alias: alias.to_owned(),
                ..r.attributes()
            }))
        })
        .await
    }

    /// Sets a key's description. Default keys keep theirs; a key pending deletion is not changed.
    pub async fn update_description(
        &self,
        caller: &Caller,
        key_id: &str,
        description: &str,
    ) -> Result<Arc<KeyRecord>> {
        validate_description(description)?;
        self.change(caller, key_id, |r| {
            refuse_default(r, "described anew")?;
            not_pending(r)?;
            Ok(Change::Attributes(Attributes {
                description: description.to_owned(),
                ..r.attributes()
            }))
        })
        .await
    }

    /// Turns a key's automatic rotation on or off, and sets its interval (30 to 365 days) when
    /// given. Turning it on or setting the interval starts the interval anew from now. Default
    /// keys do not rotate; a key pending deletion is not changed.
    pub async fn set_rotation(
        &self,
        caller: &Caller,
        key_id: &str,
        enabled: Option<bool>,
        interval_days: Option<u32>,
    ) -> Result<Arc<KeyRecord>> {
        let change = Configure {
            rotation_enabled: enabled,
            rotation_days: interval_days,
            deletion_allowed: None,
        };
        self.configure(caller, key_id, change).await
    }

    /// Changes a key's rotation schedule (as [`Keyring::set_rotation`]) and whether Vault's
    /// `DELETE` may schedule its deletion, in one write (Vault's `keys/:name/config`). A key
    /// pending deletion is not changed.
    pub async fn configure(
        &self,
        caller: &Caller,
        key_id: &str,
        change: Configure,
    ) -> Result<Arc<KeyRecord>> {
        if let Some(days) = change.rotation_days {
            validate_rotation_interval(days)?;
        }
        self.change(caller, key_id, |r| {
            let mut next = r.attributes();
            if change.rotation_enabled.is_some() || change.rotation_days.is_some() {
                refuse_default(r, "rotated")?;
                let rotation = &mut next.rotation;
                let restart = (change.rotation_enabled == Some(true) && !rotation.enabled)
                    || change.rotation_days.is_some();
                if let Some(e) = change.rotation_enabled {
                    rotation.enabled = e;
                }
                if let Some(days) = change.rotation_days {
                    rotation.interval_days = days;
                }
                if restart {
                    rotation.since_ms = self.clock.now_ms();
                }
            }
            if let Some(allowed) = change.deletion_allowed {
                next.policy.deletion_allowed = allowed;
            }
            not_pending(r)?;
            if next == r.attributes() {
                return Ok(Change::None);
            }
            Ok(Change::Attributes(next))
        })
        .await
    }

    /// Rotates every enabled key whose scheduled rotation time is at or before `now_ms`; returns
    /// the keys rotated. A disabled key waits until it is enabled again.
    pub async fn rotate_due(&self, now_ms: i64) -> Result<Vec<Arc<KeyRecord>>> {
        let due: Vec<(Caller, String)> = self
            .read_cache()
            .values()
            .filter(|r| {
                r.state == KeyState::Enabled
                    && r.creator == Creator::Customer
                    && r.next_rotation_ms().is_some_and(|t| t <= now_ms)
            })
            .map(|r| {
                let caller = Caller {
                    domain: r.domain.clone(),
                    region: r.region.clone(),
                };
                (caller, r.uuid.hyphenated().to_string())
            })
            .collect();
        let mut rotated = Vec::with_capacity(due.len());
        for (caller, id) in due {
            // A key disabled or scheduled for deletion since the scan is skipped, not an error.
            match self.rotate_if(&caller, &id, Some(now_ms)).await {
                Ok((k, true)) => rotated.push(k),
                // Rotated by another daemon of the fleet meanwhile: not rotated here.
                Ok((_, false)) => {}
                Err(e) if e.is_internal() => return Err(e),
                Err(e) => tracing::debug!(key = %id, error = %e, "scheduled rotation skipped"),
            }
        }
        Ok(rotated)
    }

    /// Applies the change `decide` makes of a key. In a fleet, when another daemon changed the key
    /// first (the store refuses the write as made from a stale copy), the key is read again from
    /// the store and `decide` runs once more on it.
    pub(super) async fn change(
        &self,
        caller: &Caller,
        key_id: &str,
        decide: impl Fn(&KeyRecord) -> Result<Change>,
    ) -> Result<Arc<KeyRecord>> {
        match self.change_once(caller, key_id, &decide).await {
            Err(KmsError::Store(StoreError::Stale(uuid))) => {
                self.reload_key(uuid).await?;
                self.change_once(caller, key_id, &decide).await
            }
            other => other,
        }
    }

    async fn change_once(
        &self,
        caller: &Caller,
        key_id: &str,
        decide: &impl Fn(&KeyRecord) -> Result<Change>,
    ) -> Result<Arc<KeyRecord>> {
        let _w = self.writes.lock().await;
        let rec = self.find(caller, key_id)?;
        let change = decide(&rec)?;
        let mut next = (*rec).clone();
        let uuid = rec.uuid;
        match &change {
            Change::None => return Ok(rec),
            Change::State {
                state,
                deletion_date_ms,
            } => {
                next.state = *state;
                next.deletion_date_ms = *deletion_date_ms;
            }
            Change::Attributes(a) => {
                next.alias.clone_from(&a.alias);
                next.description.clone_from(&a.description);
                next.rotation = a.rotation;
                next.policy = a.policy;
                next.tags.clone_from(&a.tags);
            }
            Change::Version(v) => {
                next.current_version = v.version;
                next.versions.push(v.clone());
            }
        }
        let mac = crate::integrity::record_mac(&self.root, &next)?;
        next.mac = Some(mac);
        let store_mac = self.store_mac_after(Some(&next), None)?;
        match change {
            Change::None => {}
            Change::State {
                state,
                deletion_date_ms,
            } => {
                self.blocking(move |s| {
                    s.set_state(uuid, state, deletion_date_ms, &mac, &store_mac)
                })
                .await?;
            }
            Change::Version(v) => {
                self.blocking(move |s| s.add_version(uuid, &v, &mac, &store_mac))
                    .await?;
            }
            Change::Attributes(a) => {
                let taken = a.alias.clone();
                self.blocking(move |s| s.set_attributes(uuid, &a, &mac, &store_mac))
                    .await
                    .map_err(|e| match e {
                        KmsError::Store(StoreError::Conflict(Conflict::Alias)) => {
                            KmsError::AliasExists(taken)
                        }
                        other => other,
                    })?;
            }
        }
        let next = Arc::new(next);
        self.put_cache(Arc::clone(&next));
        Ok(next)
    }

    /// One page of the caller's keys in the caller's region, oldest first.
    pub fn list(&self, caller: &Caller, page_size: u32, page_token: &str) -> Result<KeyPage> {
        self.list_where(caller, page_size, page_token, |_| true)
    }

    /// One page of the caller's keys in the caller's region that `keep` keeps, oldest first (the
    /// Huawei API's `key_state` filter); the page token continues after the last key kept.
    pub fn list_where(
        &self,
        caller: &Caller,
        page_size: u32,
        page_token: &str,
        keep: impl Fn(&KeyRecord) -> bool,
    ) -> Result<KeyPage> {
        let size = PAGE_SIZE.size(page_size)?;
        let after = PageCursor::parse(page_token)?;
        let cursor = |r: &KeyRecord| PageCursor {
            created_at_ms: r.created_at_ms,
            uuid: r.uuid,
        };
        let mut keys: Vec<Arc<KeyRecord>> = self
            .read_cache()
            .values()
            .filter(|r| caller.owns(r) && keep(r))
            .filter(|r| after.is_none_or(|a| cursor(r) > a))
            .cloned()
            .collect();
        keys.sort_by_key(|r| cursor(r));
        let next_page_token = if keys.len() > size {
            keys.truncate(size);
            keys.last().map(|r| cursor(r).token()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(KeyPage {
            keys,
            next_page_token,
        })
    }

    /// How many of the caller's keys in the caller's region `keep` keeps (the Huawei API's
    /// `total`).
    pub fn count_where(&self, caller: &Caller, keep: impl Fn(&KeyRecord) -> bool) -> usize {
        self.read_cache()
            .values()
            .filter(|r| caller.owns(r) && keep(r))
            .count()
    }

    /// Deletes, for good, every key whose pending window has passed. Returns how many.
    pub async fn purge_expired(&self, now_ms: i64) -> Result<usize> {
        let _w = self.writes.lock().await;
        let due: Vec<Uuid> = self
            .read_cache()
            .values()
            .filter(|r| {
                r.state == KeyState::PendingDeletion
                    && r.deletion_date_ms.is_some_and(|d| d <= now_ms)
            })
            .map(|r| r.uuid)
            .collect();
        let mut purged = 0;
        for uuid in &due {
            let u = *uuid;
            let store_mac = self.store_mac_after(None, Some(u))?;
            match self.blocking(move |s| s.delete_key(u, &store_mac)).await {
                Ok(()) => {
                    self.remove_cache(uuid);
                    purged += 1;
                }
                // In a fleet: purged, or its deletion cancelled, by another daemon first.
                Err(KmsError::Store(StoreError::Stale(_))) => self.reload_key_locked(u).await?,
                Err(e) => return Err(e),
            }
        }
        Ok(purged)
    }
}

/// A key the data path may use: enabled.
pub(super) fn usable(rec: &KeyRecord) -> Result<()> {
    match rec.state {
        KeyState::Enabled => Ok(()),
        KeyState::Disabled => Err(KmsError::KeyDisabled(rec.full_id().to_string())),
        KeyState::PendingDeletion => Err(KmsError::KeyPendingDeletion(rec.full_id().to_string())),
    }
}

/// A key pending deletion keeps its attributes until it is cancelled.
pub(super) fn not_pending(rec: &KeyRecord) -> Result<()> {
    if rec.state == KeyState::PendingDeletion {
        return Err(KmsError::KeyPendingDeletion(rec.full_id().to_string()));
    }
    Ok(())
}

/// Default keys cannot be disabled, scheduled for deletion or rotated.
pub(super) fn refuse_default(rec: &KeyRecord, action: &'static str) -> Result<()> {
    if rec.creator == Creator::Service {
        return Err(KmsError::DefaultKeyImmutable {
            key: rec.full_id().to_string(),
            action,
        });
    }
    Ok(())
}
