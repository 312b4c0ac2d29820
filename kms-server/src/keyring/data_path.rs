//! The data path: data keys, encryption, decryption and re-encryption under a key. Reads the cache
//! only; never the store, never the disk.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::lifecycle::usable;
use super::validate::{
    Context, MAX_DATA_KEY, data_key_len, validate_blob_len, validate_context, validate_plaintext,
};
use super::{Caller, Keyring};
use crate::blob::{self, BlobBinding, BlobHeader};
use crate::error::{KmsError, Result};
use crate::store::KeyRecord;
use kms_proto::key_id::KeyRef;

/// A data key: plaintext (wiped on drop) and blob.
pub struct DataKey {
    /// The key it is encrypted under.
    pub key: Arc<KeyRecord>,
    /// The version used.
    pub version: u32,
    /// The plaintext data key.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The ciphertext blob.
    pub blob: Vec<u8>,
}

/// The result of an encryption.
#[derive(Debug, Clone)]
pub struct Encrypted {
    /// The key it is encrypted under.
    pub key: Arc<KeyRecord>,
    /// The version used.
    pub version: u32,
    /// The ciphertext blob.
    pub blob: Vec<u8>,
}

/// The result of a decryption.
pub struct Decrypted {
    /// The key the blob was encrypted under.
    pub key: Arc<KeyRecord>,
    /// The version.
    pub version: u32,
    /// The plaintext, wiped on drop.
    pub plaintext: Zeroizing<Vec<u8>>,
}

/// The result of a re-encryption. The plaintext in between is wiped before it returns.
#[derive(Debug, Clone)]
pub struct ReEncrypted {
    /// The key the blob was encrypted under.
    pub source_key: Arc<KeyRecord>,
    /// The version of the source key it was encrypted with.
    pub source_version: u32,
    /// The new encryption.
    pub encrypted: Encrypted,
}

impl Keyring {
    fn seal(
        &self,
        rec: &KeyRecord,
        context: &Context,
        plaintext: &[u8],
        nonce: [u8; 12],
    ) -> Result<Vec<u8>> {
        let state = self.version_state(rec, rec.current_version)?;
        // The one place a version's nonces are used: count before the blob exists.
        self.count_nonce(rec, rec.current_version, &state.nonces)?;
        blob::seal(
            &state.cipher,
            rec.uuid,
            rec.current_version,
            nonce,
            &binding(rec, context),
            plaintext,
        )
    }

    /// A fresh data key of `number_of_bytes` (0 means 32), encrypted under a key.
    pub fn generate_data_key(
        &self,
        caller: &Caller,
        key_id: &str,
        number_of_bytes: u32,
        context: &Context,
    ) -> Result<DataKey> {
        let n = data_key_len(number_of_bytes)?;
        validate_context("encryption_context", context)?;
        let rec = self.find(caller, key_id)?;
        usable(&rec)?;
        context_given(&rec, "encryption_context", context)?;
        // One draw from the OS for the data key and the blob's nonce.
        let mut plaintext = crate::crypto::random_bytes(n + 12)?;
        let nonce = nonce_from(&plaintext[n..])?;
        plaintext.truncate(n);
        let blob = self.seal(&rec, context, &plaintext, nonce)?;
        Ok(DataKey {
            version: rec.current_version,
            key: rec,
            plaintext,
            blob,
        })
    }

    /// Encrypts at most 4096 bytes under a key.
    pub fn encrypt(
        &self,
        caller: &Caller,
        key_id: &str,
        plaintext: &[u8],
        context: &Context,
    ) -> Result<Encrypted> {
        validate_plaintext(plaintext)?;
        validate_context("encryption_context", context)?;
        let rec = self.find(caller, key_id)?;
        usable(&rec)?;
        context_given(&rec, "encryption_context", context)?;
        let blob = self.seal(&rec, context, plaintext, fresh_nonce()?)?;
        Ok(Encrypted {
            version: rec.current_version,
            key: rec,
            blob,
        })
    }

    /// Authenticates and decrypts a ciphertext blob; `key_id`, when not empty, must name its key.
    pub fn decrypt(
        &self,
        caller: &Caller,
        blob: &[u8],
        context: &Context,
        key_id: &str,
    ) -> Result<Decrypted> {
        validate_blob_len(blob)?;
        validate_context("encryption_context", context)?;
        let expected = if key_id.is_empty() {
            None
        } else {
            Some(
                key_id
                    .parse::<KeyRef>()?
                    .resolve(caller.region.as_str(), caller.domain.as_str())?,
            )
        };
        let header = BlobHeader::parse(blob)?;
        let rec = self.find_uuid(caller, header.key_uuid)?;
        if let Some(e) = expected
            && e != rec.full_id()
        {
            return Err(KmsError::KeyIdMismatch {
                given: key_id.to_owned(),
            });
        }
        usable(&rec)?;
        context_given(&rec, "encryption_context", context)?;
        let state = self.version_state(&rec, header.key_version)?;
        let plaintext = blob::open(&state.cipher, &header, &binding(&rec, context), blob)?;
        Ok(Decrypted {
            key: rec,
            version: header.key_version,
            plaintext,
        })
    }

    /// `number_of_bytes` (1 to 1024) random bytes from the operating system's generator.
    pub fn generate_random(&self, number_of_bytes: u32) -> Result<Zeroizing<Vec<u8>>> {
        if !(1..=MAX_DATA_KEY).contains(&number_of_bytes) {
            return Err(KmsError::Invalid {
                code: kms_proto::ErrorCode::InvalidRandomLength,
                field: "number_of_bytes",
                reason: format!(
                    "{number_of_bytes} is out of range: it must be 1 to {MAX_DATA_KEY}"
                ),
            });
        }
        crate::crypto::random_bytes(usize::try_from(number_of_bytes).unwrap_or(0))
    }

    /// Decrypts a blob and encrypts its plaintext under `destination_key_id` and context.
    pub fn re_encrypt(
        &self,
        caller: &Caller,
        blob: &[u8],
        source_context: &Context,
        source_key_id: &str,
        destination_key_id: &str,
        destination_context: &Context,
    ) -> Result<ReEncrypted> {
        validate_context("destination_encryption_context", destination_context)?;
        let dest = self.find(caller, destination_key_id)?;
        usable(&dest)?;
        context_given(&dest, "destination_encryption_context", destination_context)?;
        let source = self.decrypt(caller, blob, source_context, source_key_id)?;
        let out = self.seal(
            &dest,
            destination_context,
            &source.plaintext,
            fresh_nonce()?,
        )?;
        Ok(ReEncrypted {
            source_key: source.key,
            source_version: source.version,
            encrypted: Encrypted {
                version: dest.current_version,
                key: dest,
                blob: out,
            },
        })
    }
}

/// Refuses a call without an encryption context under a key whose policy requires one.
fn context_given(rec: &KeyRecord, field: &'static str, context: &Context) -> Result<()> {
    if rec.policy.context_required && context.is_empty() {
        return Err(KmsError::InvalidArgument {
            field,
            reason: format!(
                "key {} requires an encryption context on every call (it was created as a \
                 derived key over Vault transit)",
                rec.full_id_string()
            ),
        });
    }
    Ok(())
}

fn fresh_nonce() -> Result<[u8; 12]> {
    let mut n = [0u8; 12];
    crate::crypto::fill_random(&mut n)?;
    Ok(n)
}

fn nonce_from(bytes: &[u8]) -> Result<[u8; 12]> {
    bytes
        .try_into()
        .map_err(|_| KmsError::Internal("nonce length".into()))
}

fn binding<'a>(rec: &'a KeyRecord, context: &'a Context) -> BlobBinding<'a> {
    BlobBinding {
        domain: rec.domain.as_str(),
        region: rec.region.as_str(),
        context,
    }
}
