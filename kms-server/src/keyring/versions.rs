//! What the data path keeps per key version once the version is used: its keyed cipher and its
//! blob count, found with one lookup per call.
//!
//! The cipher is the version's material keyed into AES-256-GCM ([`GcmKey`]): unwrapping under the
//! root key (an HKDF derivation and an AES key unwrap) and expanding the AES key would otherwise
//! cost more than the rest of a GenerateDataKey. It stays in memory while the key exists, as an
//! HSM or an unsealed Vault keeps its keys, and is wiped when the key is purged or the keyring is
//! dropped (SECURITY.md). States live beside the record cache, not in it, because a record is
//! replaced on every state change and the counts must survive that.

use std::sync::{Arc, PoisonError};

use uuid::Uuid;

use super::nonces::NonceCounter;
use super::{Keyring, unwrap_version};
use crate::crypto::GcmKey;
use crate::error::{KmsError, Result};
use crate::store::KeyRecord;

/// One key version's data-path state.
#[derive(Debug)]
pub(crate) struct VersionState {
    /// The version's material, keyed.
    pub(crate) cipher: GcmKey,
    /// Blobs sealed under the version.
    pub(crate) nonces: NonceCounter,
}

impl Keyring {
    /// The state of one version of `rec`; on first use its material is unwrapped under the root key
    /// and its count starts with no nonces granted (the first seal asks the store for a block).
    pub(crate) fn version_state(&self, rec: &KeyRecord, version: u32) -> Result<Arc<VersionState>> {
        let key = (rec.uuid, version);
        if let Some(state) = self
            .versions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Ok(Arc::clone(state));
        }
        let stored = rec.version(version).ok_or(KmsError::CiphertextAuthFailed)?;
        let material = unwrap_version(&self.root, rec, stored)?;
        let state = VersionState {
            cipher: GcmKey::new(&material),
            nonces: NonceCounter::new(),
        };
        let mut map = self
            .versions
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        // A racing first use may have inserted one already: keep it, so that one count is shared.
        Ok(Arc::clone(
            map.entry(key).or_insert_with(|| Arc::new(state)),
        ))
    }

    /// Forgets the states of a deleted key (their ciphers are wiped when the last call using them
    /// ends).
    pub(crate) fn forget_versions(&self, uuid: Uuid) {
        self.versions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(u, _), _| *u != uuid);
    }
}
