//! Bucket default encryption (rule 7), validated when it is set.

use kms_proto::key_id::KeyRef;

use crate::error::{AdapterError, Place};

/// A bucket's default-encryption configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DefaultEncryption {
    /// No default encryption: requests without SSE parameters store plaintext.
    #[default]
    None,
    /// SSE-KMS by default, under the named key or (when `None`) the caller's OBS default key.
    Kms {
        /// The configured key, full or bare.
        key: Option<KeyRef>,
    },
}

impl DefaultEncryption {
    /// Validates a configuration as an engine receives it when the bucket owner sets it:
    /// `algorithm` must be `kms`, and `key_id` (when given) must follow the key-ID grammar.
    ///
    /// Whether the key exists, is enabled and is allowed is checked on every upload that uses it
    /// (rules 2, 4 and 5), as keys change state after the configuration is set.
    pub fn parse(algorithm: &str, key_id: Option<&str>) -> Result<Self, AdapterError> {
        if algorithm != "kms" {
            return Err(AdapterError::UnsupportedAlgorithm {
                value: algorithm.to_owned(),
                place: Place::BucketDefault,
            });
        }
        let key = key_id
            .map(|k| {
                k.parse::<KeyRef>()
                    .map_err(|source| AdapterError::MalformedKeyId {
                        place: Place::BucketDefault,
                        source,
                    })
            })
            .transpose()?;
        Ok(DefaultEncryption::Kms { key })
    }
}
