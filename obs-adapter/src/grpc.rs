//! [`KeyService`] over the kmsbox daemon's gRPC API.
//!
//! Every call carries the tenancy as request metadata (`x-kms-domain-id`, `x-kms-region`) and, when a
//! bearer token was registered for the domain, `authorization: Bearer <token>`. Key IDs are always
//! sent in the full form. Failed calls are mapped once, in [`map_status`]: the `x-kms-error-code`
//! metadata decides where present (`KMS.0205` malformed, `KMS.0207` not found, `KMS.0209` disabled,
//! `KMS.0210` pending deletion), else the gRPC status code.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use obs_adapter::{GrpcKeyService, ObsAdapter};
//! let channel = tonic::transport::Channel::from_static("http://127.0.0.1:50051").connect().await?;
//! let adapter = ObsAdapter::new(GrpcKeyService::new(channel));
//! # let _ = adapter; Ok(()) }
//! ```

use std::collections::HashMap;

use kms_proto::key_id::{DomainId, FullKeyId, KeyRef};
use kms_proto::metadata;
use kms_proto::v1 as pb;
use kms_proto::v1::key_management_service_client::KeyManagementServiceClient;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use crate::key_service::{
    DataKey, EncryptionContext, KeyCreator, KeyInfo, KeyService, KeyServiceError, KeyState,
    SecretBytes, Tenancy,
};

/// The daemon-backed key service. Cloning is cheap (the channel is shared).
#[derive(Clone)]
pub struct GrpcKeyService {
    client: KeyManagementServiceClient<Channel>,
    tokens: HashMap<DomainId, String>,
}

impl std::fmt::Debug for GrpcKeyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcKeyService")
            .field("domains_with_tokens", &self.tokens.len())
            .finish_non_exhaustive()
    }
}

impl GrpcKeyService {
    /// A key service over a connected (or lazily connecting) tonic channel.
    pub fn new(channel: Channel) -> Self {
        Self::from_client(KeyManagementServiceClient::new(channel))
    }

    /// A key service over an existing generated client.
    pub fn from_client(client: KeyManagementServiceClient<Channel>) -> Self {
        Self {
            client,
            tokens: HashMap::new(),
        }
    }

    /// Sends `authorization: Bearer <token>` on every call made for `domain` (for daemons that run
    /// with a tenants file).
    pub fn with_token(mut self, domain: DomainId, token: impl Into<String>) -> Self {
        self.tokens.insert(domain, token.into());
        self
    }

    fn request<T>(&self, tenancy: &Tenancy, message: T) -> Result<Request<T>, KeyServiceError> {
        let mut req = Request::new(message);
        let md = req.metadata_mut();
        let value = |s: &str| {
            MetadataValue::try_from(s)
                .map_err(|_| KeyServiceError::Internal(format!("invalid metadata value {s:?}")))
        };
        md.insert(metadata::DOMAIN_ID, value(tenancy.domain.as_str())?);
        md.insert(metadata::REGION, value(tenancy.region.as_str())?);
        if let Some(token) = self.tokens.get(&tenancy.domain) {
            md.insert(metadata::AUTHORIZATION, value(&format!("Bearer {token}"))?);
        }
        Ok(req)
    }
}

/// Maps a failed call's status to the adapter's error, preferring the `x-kms-error-code` metadata.
pub fn map_status(status: &Status) -> KeyServiceError {
    let message = status.message().to_owned();
    let code = status
        .metadata()
        .get(metadata::ERROR_CODE)
        .and_then(|v| v.to_str().ok());
    match code {
        Some("KMS.0205") => return KeyServiceError::MalformedKeyId(message),
        Some("KMS.0207") => return KeyServiceError::NotFound(message),
        Some("KMS.0209") => return KeyServiceError::Disabled(message),
        Some("KMS.0210") => return KeyServiceError::PendingDeletion(message),
        _ => {}
    }
    match status.code() {
        Code::NotFound => KeyServiceError::NotFound(message),
        Code::Unauthenticated | Code::PermissionDenied => KeyServiceError::AccessDenied(message),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            KeyServiceError::InvalidRequest(message)
        }
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Cancelled => {
            KeyServiceError::Unavailable(message)
        }
        _ => KeyServiceError::Internal(format!("{:?}: {message}", status.code())),
    }
}

/// Converts the daemon's key metadata.
fn key_info(md: Option<pb::KeyMetadata>) -> Result<KeyInfo, KeyServiceError> {
    let md = md.ok_or_else(|| KeyServiceError::Internal("response without key metadata".into()))?;
    let key_id: FullKeyId = md.key_id.parse().map_err(|e| {
        KeyServiceError::Internal(format!("daemon answered a malformed key ID: {e}"))
    })?;
    let state = match pb::KeyState::try_from(md.state) {
        Ok(pb::KeyState::Enabled) => KeyState::Enabled,
        Ok(pb::KeyState::Disabled) => KeyState::Disabled,
        Ok(pb::KeyState::PendingDeletion) => KeyState::PendingDeletion,
        _ => {
            return Err(KeyServiceError::Internal(format!(
                "key {key_id} has an unknown state {}",
                md.state
            )));
        }
    };
    let creator = match pb::KeyCreator::try_from(md.creator) {
        Ok(pb::KeyCreator::Customer) => KeyCreator::Customer,
        Ok(pb::KeyCreator::Service) => KeyCreator::Service,
        _ => {
            return Err(KeyServiceError::Internal(format!(
                "key {key_id} has an unknown creator {}",
                md.creator
            )));
        }
    };
    Ok(KeyInfo {
        key_id,
        state,
        creator,
        service: md.service,
    })
}

fn context_map(context: &EncryptionContext) -> HashMap<String, String> {
    context
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl KeyService for GrpcKeyService {
    async fn get_default_key(
        &self,
        tenancy: &Tenancy,
        service: &str,
    ) -> Result<KeyInfo, KeyServiceError> {
        let req = self.request(
            tenancy,
            pb::GetDefaultKeyRequest {
                service: service.to_owned(),
            },
        )?;
        let resp = self
            .client
            .clone()
            .get_default_key(req)
            .await
            .map_err(|s| map_status(&s))?;
        key_info(resp.into_inner().metadata)
    }

    async fn describe_key(
        &self,
        tenancy: &Tenancy,
        key: &KeyRef,
    ) -> Result<KeyInfo, KeyServiceError> {
        let req = self.request(
            tenancy,
            pb::DescribeKeyRequest {
                key_id: key.to_string(),
            },
        )?;
        let resp = self
            .client
            .clone()
            .describe_key(req)
            .await
            .map_err(|s| map_status(&s))?;
        key_info(resp.into_inner().metadata)
    }

    async fn generate_data_key(
        &self,
        tenancy: &Tenancy,
        key: &FullKeyId,
        context: &EncryptionContext,
    ) -> Result<DataKey, KeyServiceError> {
        let req = self.request(
            tenancy,
            pb::GenerateDataKeyRequest {
                key_id: key.to_string(),
                number_of_bytes: 32,
                encryption_context: context_map(context),
            },
        )?;
        let resp = self
            .client
            .clone()
            .generate_data_key(req)
            .await
            .map_err(|s| map_status(&s))?
            .into_inner();
        let plaintext = SecretBytes::new(resp.plaintext);
        let key_id: FullKeyId = resp.key_id.parse().map_err(|e| {
            KeyServiceError::Internal(format!("daemon answered a malformed key ID: {e}"))
        })?;
        Ok(DataKey {
            key_id,
            plaintext,
            ciphertext_blob: resp.ciphertext_blob,
            key_version: resp.key_version,
        })
    }

    async fn decrypt(
        &self,
        tenancy: &Tenancy,
        key: &FullKeyId,
        ciphertext_blob: &[u8],
        context: &EncryptionContext,
    ) -> Result<SecretBytes, KeyServiceError> {
        let req = self.request(
            tenancy,
            pb::DecryptRequest {
                ciphertext_blob: ciphertext_blob.to_vec(),
                encryption_context: context_map(context),
                key_id: key.to_string(),
            },
        )?;
        let resp = self
            .client
            .clone()
            .decrypt(req)
            .await
            .map_err(|s| map_status(&s))?
            .into_inner();
        Ok(SecretBytes::new(resp.plaintext))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: Code, error_code: Option<&'static str>) -> Status {
        let mut s = Status::new(code, "why");
        if let Some(c) = error_code {
            s.metadata_mut()
                .insert(metadata::ERROR_CODE, MetadataValue::from_static(c));
        }
        s
    }

    #[test]
    fn statuses_map_to_typed_errors_preferring_the_error_code() {
        let w = || "why".to_owned();
        let cases = [
            (
                Code::InvalidArgument,
                Some("KMS.0205"),
                KeyServiceError::MalformedKeyId(w()),
            ),
            (
                Code::NotFound,
                Some("KMS.0207"),
                KeyServiceError::NotFound(w()),
            ),
            (
                Code::FailedPrecondition,
                Some("KMS.0209"),
                KeyServiceError::Disabled(w()),
            ),
            (
                Code::FailedPrecondition,
                Some("KMS.0210"),
                KeyServiceError::PendingDeletion(w()),
            ),
            (Code::NotFound, None, KeyServiceError::NotFound(w())),
            (
                Code::Unauthenticated,
                Some("KMSBOX.0401"),
                KeyServiceError::AccessDenied(w()),
            ),
            (
                Code::PermissionDenied,
                None,
                KeyServiceError::AccessDenied(w()),
            ),
            (
                Code::InvalidArgument,
                Some("KMSBOX.0421"),
                KeyServiceError::InvalidRequest(w()),
            ),
            (Code::Unavailable, None, KeyServiceError::Unavailable(w())),
            (
                Code::DeadlineExceeded,
                None,
                KeyServiceError::Unavailable(w()),
            ),
            (
                Code::Internal,
                Some("KMSBOX.0500"),
                KeyServiceError::Internal("Internal: why".into()),
            ),
        ];
        for (code, error_code, want) in cases {
            assert_eq!(
                map_status(&status(code, error_code)),
                want,
                "{code:?} {error_code:?}"
            );
        }
    }

    #[test]
    fn key_metadata_converts_and_refuses_unknown_enums() {
        let md = pb::KeyMetadata {
            key_id: "r1:d1:key/4f1cd4de-ab64-4807-920a-47fc42e7f0d0".into(),
            state: pb::KeyState::Disabled as i32,
            creator: pb::KeyCreator::Service as i32,
            service: "obs".into(),
            ..Default::default()
        };
        let info = key_info(Some(md.clone())).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(info.state, KeyState::Disabled);
        assert_eq!(info.creator, KeyCreator::Service);
        assert_eq!(info.service, "obs");
        let mut bad = md.clone();
        bad.state = 0;
        assert!(key_info(Some(bad)).is_err());
        let mut bad = md;
        bad.key_id = "not-a-key".into();
        assert!(key_info(Some(bad)).is_err());
        assert!(key_info(None).is_err());
    }
}
