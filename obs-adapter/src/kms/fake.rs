//! An in-memory [`KeyService`] for tests: it behaves like the kmsbox daemon where the adapter can
//! tell the difference.
//!
//! - Keys belong to one domain and region; a key of another tenant (or another region) is answered
//!   exactly like an unknown key, [`KeyServiceError::NotFound`] with the key ID as asked.
//! - [`KeyService::get_default_key`] creates `<service>/default` on first use, exactly once per
//!   domain, region and service, also when many calls race (the check and the insert happen under
//!   one lock). [`FakeKeyService::with_latency`] makes every call wait first, like a round trip, so
//!   that racing calls are really in flight together.
//! - Disabled and pending-deletion keys refuse to generate or decrypt data keys.
//! - Data keys are random; a ciphertext blob is an opaque handle into the fake's memory (nothing
//!   here is cryptography) and decrypts only under the same tenant, key and encryption context.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kms_proto::key_id::{FullKeyId, KeyRef};
use uuid::Uuid;

use super::{
    DataKey, EncryptionContext, KeyCreator, KeyInfo, KeyScope, KeyService, KeyServiceError,
    KeyState, SecretBytes,
};

const BLOB_PREFIX: &[u8] = b"fake-kms-blob:";

struct StoredBlob {
    key: Uuid,
    context: EncryptionContext,
    plaintext: SecretBytes,
}

#[derive(Default)]
struct State {
    keys: HashMap<Uuid, KeyInfo>,
    defaults: HashMap<(KeyScope, String), Uuid>,
    blobs: HashMap<Vec<u8>, StoredBlob>,
    default_key_creations: usize,
    outage: Option<KeyServiceError>,
}

impl State {
    /// Adds an enabled key with a fresh UUID in the scope.
    fn insert(&mut self, scope: &KeyScope, creator: KeyCreator, service: &str) -> KeyInfo {
        let key_id = FullKeyId::new(scope.region.clone(), scope.domain.clone(), Uuid::new_v4());
        let info = KeyInfo {
            key_id,
            state: KeyState::Enabled,
            creator,
            service: service.to_owned(),
        };
        self.keys.insert(info.key_id.uuid, info.clone());
        info
    }
}

/// The in-memory key service. Cheap to share behind an `Arc`.
#[derive(Default)]
pub struct FakeKeyService {
    state: Mutex<State>,
    calls: AtomicUsize,
    latency: Option<Duration>,
}

impl std::fmt::Debug for FakeKeyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeKeyService")
            .field("calls", &self.calls.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl FakeKeyService {
    /// An empty key service.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty key service whose every call first waits `latency`, like a round trip to a
    /// daemon, so that concurrent calls really are in flight together.
    pub fn with_latency(latency: Duration) -> Self {
        Self {
            latency: Some(latency),
            ..Self::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic in another test thread must not hide this test's result.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(&self, scope: &KeyScope, creator: KeyCreator, service: &str) -> FullKeyId {
        self.lock().insert(scope, creator, service).key_id
    }

    /// Creates an enabled customer key (as `CreateKey` does) in the scope.
    pub fn create_customer_key(&self, scope: &KeyScope) -> FullKeyId {
        self.insert(scope, KeyCreator::Customer, "")
    }

    /// Creates an enabled service-created key of `service` that is not the service's default key.
    pub fn create_service_key(&self, scope: &KeyScope, service: &str) -> FullKeyId {
        self.insert(scope, KeyCreator::Service, service)
    }

    /// Registers a default key of `service` with a chosen UUID, as if `get_default_key` had created
    /// it earlier (to replay documented responses that name a particular key). Returns `None` when
    /// the scope already has a default key for the service.
    pub fn import_default_key(
        &self,
        scope: &KeyScope,
        service: &str,
        uuid: Uuid,
    ) -> Option<FullKeyId> {
        let mut st = self.lock();
        let slot = (scope.clone(), service.to_owned());
        if st.defaults.contains_key(&slot) || st.keys.contains_key(&uuid) {
            return None;
        }
        let key_id = FullKeyId::new(scope.region.clone(), scope.domain.clone(), uuid);
        let info = KeyInfo {
            key_id: key_id.clone(),
            state: KeyState::Enabled,
            creator: KeyCreator::Service,
            service: service.to_owned(),
        };
        st.keys.insert(uuid, info);
        st.defaults.insert(slot, uuid);
        Some(key_id)
    }

    /// Sets a key's state; returns `false` when there is no such key.
    pub fn set_state(&self, key: &FullKeyId, state: KeyState) -> bool {
        let mut st = self.lock();
        match st.keys.get_mut(&key.uuid) {
            Some(info) if info.key_id == *key => {
                info.state = state;
                true
            }
            _ => false,
        }
    }

    /// Makes every later call fail with `error` (`None` ends the outage).
    pub fn set_outage(&self, error: Option<KeyServiceError>) {
        self.lock().outage = error;
    }

    /// How many keys exist, over all tenants.
    pub fn key_count(&self) -> usize {
        self.lock().keys.len()
    }

    /// How many default keys `get_default_key` has created.
    pub fn default_key_creations(&self) -> usize {
        self.lock().default_key_creations
    }

    /// How many calls the [`KeyService`] methods have received.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    async fn enter(&self) -> Result<(), KeyServiceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match self.latency {
            Some(d) => tokio::time::sleep(d).await,
            None => tokio::task::yield_now().await,
        }
        match &self.lock().outage {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

/// Finds a key the scope may see, else `NotFound` with the key ID as asked.
fn visible<'a>(
    st: &'a State,
    scope: &KeyScope,
    key: &KeyRef,
) -> Result<&'a KeyInfo, KeyServiceError> {
    let asked = match key {
        KeyRef::Full(full) => full.clone(),
        KeyRef::Bare(uuid) => FullKeyId::new(scope.region.clone(), scope.domain.clone(), *uuid),
    };
    match st.keys.get(&asked.uuid) {
        Some(info)
            if info.key_id == asked
                && info.key_id.domain == scope.domain
                && info.key_id.region == scope.region =>
        {
            Ok(info)
        }
        _ => Err(KeyServiceError::NotFound(asked.to_string())),
    }
}

fn usable(info: &KeyInfo) -> Result<(), KeyServiceError> {
    match info.state {
        KeyState::Enabled => Ok(()),
        KeyState::Disabled => Err(KeyServiceError::Disabled(info.key_id.to_string())),
        KeyState::PendingDeletion => Err(KeyServiceError::PendingDeletion(info.key_id.to_string())),
    }
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 16);
    while out.len() < n {
        out.extend_from_slice(Uuid::new_v4().as_bytes());
    }
    out.truncate(n);
    out
}

impl KeyService for FakeKeyService {
    async fn get_default_key(
        &self,
        scope: &KeyScope,
        service: &str,
    ) -> Result<KeyInfo, KeyServiceError> {
        self.enter().await?;
        let mut st = self.lock();
        let slot = (scope.clone(), service.to_owned());
        if let Some(info) = st.defaults.get(&slot).and_then(|uuid| st.keys.get(uuid)) {
            return Ok(info.clone());
        }
        let info = st.insert(scope, KeyCreator::Service, service);
        st.defaults.insert(slot, info.key_id.uuid);
        st.default_key_creations += 1;
        Ok(info)
    }

    async fn describe_key(
        &self,
        scope: &KeyScope,
        key: &KeyRef,
    ) -> Result<KeyInfo, KeyServiceError> {
        self.enter().await?;
        let st = self.lock();
        visible(&st, scope, key).cloned()
    }

    async fn generate_data_key(
        &self,
        scope: &KeyScope,
        key: &FullKeyId,
        context: &EncryptionContext,
    ) -> Result<DataKey, KeyServiceError> {
        self.enter().await?;
        let mut st = self.lock();
        let info = visible(&st, scope, &KeyRef::Full(key.clone()))?;
        usable(info)?;
        let key_id = info.key_id.clone();
        let plaintext = random_bytes(32);
        let mut blob = BLOB_PREFIX.to_vec();
        blob.extend_from_slice(Uuid::new_v4().hyphenated().to_string().as_bytes());
        st.blobs.insert(
            blob.clone(),
            StoredBlob {
                key: key_id.uuid,
                context: context.clone(),
                plaintext: SecretBytes::new(plaintext.clone()),
            },
        );
        Ok(DataKey {
            key_id,
            plaintext: SecretBytes::new(plaintext),
            ciphertext_blob: blob,
            key_version: 1,
        })
    }

    async fn decrypt(
        &self,
        scope: &KeyScope,
        key: &FullKeyId,
        ciphertext_blob: &[u8],
        context: &EncryptionContext,
    ) -> Result<SecretBytes, KeyServiceError> {
        self.enter().await?;
        let st = self.lock();
        let info = visible(&st, scope, &KeyRef::Full(key.clone()))?;
        usable(info)?;
        let Some(blob) = st.blobs.get(ciphertext_blob) else {
            return Err(KeyServiceError::InvalidRequest(
                "invalid ciphertext blob".to_owned(),
            ));
        };
        if blob.key != info.key_id.uuid {
            return Err(KeyServiceError::InvalidRequest(format!(
                "key_id {key} does not match the key the ciphertext blob was encrypted under"
            )));
        }
        if blob.context != *context {
            return Err(KeyServiceError::InvalidRequest(
                "ciphertext blob failed authentication: wrong encryption context".to_owned(),
            ));
        }
        Ok(SecretBytes::new(blob.plaintext.expose().to_vec()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use kms_proto::key_id::{DomainId, RegionId};

    fn t(d: &str, r: &str) -> KeyScope {
        KeyScope::new(DomainId::parse(d).unwrap(), RegionId::parse(r).unwrap())
    }

    #[tokio::test]
    async fn keys_are_isolated_per_tenant_and_region() {
        let fake = FakeKeyService::new();
        let a = t("a", "r1");
        let key = fake.create_customer_key(&a);
        let full = KeyRef::Full(key.clone());
        let bare = KeyRef::Bare(key.uuid);
        // (scope, key ref, visible)
        let cases = [
            (t("a", "r1"), full.clone(), true),
            (t("a", "r1"), bare.clone(), true),
            (t("b", "r1"), full.clone(), false),
            (t("b", "r1"), bare.clone(), false),
            (t("a", "r2"), full.clone(), false),
            (t("a", "r2"), bare.clone(), false),
        ];
        for (scope, key_ref, visible) in cases {
            let got = fake.describe_key(&scope, &key_ref).await;
            assert_eq!(got.is_ok(), visible, "{scope:?} {key_ref}");
            if let Err(e) = got {
                assert!(matches!(e, KeyServiceError::NotFound(_)), "{e}");
            }
        }
        let ctx = EncryptionContext::new();
        let foreign = fake.generate_data_key(&t("b", "r1"), &key, &ctx).await;
        assert!(matches!(foreign, Err(KeyServiceError::NotFound(_))));
    }

    #[tokio::test]
    async fn default_keys_are_created_once_per_tenancy_and_service() {
        let fake = FakeKeyService::new();
        let a = t("a", "r1");
        let k1 = fake.get_default_key(&a, "obs").await.unwrap();
        let k2 = fake.get_default_key(&a, "obs").await.unwrap();
        assert_eq!(k1, k2);
        assert_eq!(k1.creator, KeyCreator::Service);
        assert_eq!(k1.service, "obs");
        let k3 = fake.get_default_key(&a, "evs").await.unwrap();
        let k4 = fake.get_default_key(&t("b", "r1"), "obs").await.unwrap();
        assert_ne!(k1.key_id, k3.key_id);
        assert_ne!(k1.key_id, k4.key_id);
        assert_eq!(fake.default_key_creations(), 3);
        assert!(fake.import_default_key(&a, "obs", Uuid::new_v4()).is_none());
    }

    #[tokio::test]
    async fn key_states_gate_data_keys() {
        let fake = FakeKeyService::new();
        let a = t("a", "r1");
        let key = fake.create_service_key(&a, "obs");
        let ctx = EncryptionContext::from([("k".to_owned(), "v".to_owned())]);
        let dk = fake.generate_data_key(&a, &key, &ctx).await.unwrap();
        assert_eq!(
            fake.decrypt(&a, &key, &dk.ciphertext_blob, &ctx)
                .await
                .unwrap()
                .expose(),
            dk.plaintext.expose()
        );
        let wrong_ctx = EncryptionContext::new();
        assert!(matches!(
            fake.decrypt(&a, &key, &dk.ciphertext_blob, &wrong_ctx)
                .await,
            Err(KeyServiceError::InvalidRequest(_))
        ));
        let other = fake.create_service_key(&a, "obs");
        assert!(matches!(
            fake.decrypt(&a, &other, &dk.ciphertext_blob, &ctx).await,
            Err(KeyServiceError::InvalidRequest(_))
        ));
        assert!(fake.set_state(&key, KeyState::Disabled));
        assert!(matches!(
            fake.generate_data_key(&a, &key, &ctx).await,
            Err(KeyServiceError::Disabled(_))
        ));
        assert!(matches!(
            fake.decrypt(&a, &key, &dk.ciphertext_blob, &ctx).await,
            Err(KeyServiceError::Disabled(_))
        ));
        assert!(fake.set_state(&key, KeyState::PendingDeletion));
        assert!(matches!(
            fake.generate_data_key(&a, &key, &ctx).await,
            Err(KeyServiceError::PendingDeletion(_))
        ));
        // Still described, with its state.
        let info = fake
            .describe_key(&a, &KeyRef::Full(key.clone()))
            .await
            .unwrap();
        assert_eq!(info.state, KeyState::PendingDeletion);
        assert!(!format!("{:?}", dk.plaintext).contains(&format!("{:?}", dk.plaintext.expose())));
    }
}
