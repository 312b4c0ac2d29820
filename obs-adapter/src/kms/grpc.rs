//! [`KeyService`] over the kmsbox daemon's gRPC API.
//!
//! Every call carries the call's [`KeyScope`] as a [`kms_proto::Tenancy`] (`x-kms-domain-id`,
//! `x-kms-region`) and, when a bearer token was registered for the domain,
//! `authorization: Bearer <token>`. Key IDs are always sent in the full form. Failed calls are
//! mapped once, in [`map_status`]: the [`ErrorCode`] in the `x-kms-error-code` trailer decides where
//! present ([`ErrorCode::MalformedKeyId`], [`ErrorCode::KeyNotFound`], [`ErrorCode::KeyDisabled`],
//! [`ErrorCode::KeyPendingDeletion`]), else the gRPC status code.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use obs_adapter::{GrpcKeyService, ObsAdapter};
//! let channel = tonic::transport::Channel::from_static("http://127.0.0.1:50051").connect().await?;
//! let adapter = ObsAdapter::new(GrpcKeyService::new(channel));
//! # let _ = adapter; Ok(()) }
//! ```

use std::collections::HashMap;

use kms_proto::ErrorCode;
use kms_proto::key_id::{DomainId, FullKeyId, KeyRef};
use kms_proto::v1 as pb;
use kms_proto::v1::key_management_service_client::KeyManagementServiceClient;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use super::{
    DataKey, EncryptionContext, KeyCreator, KeyInfo, KeyScope, KeyService, KeyServiceError,
    KeyState, SecretBytes,
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

    /// `message` as a request in `scope`, with the domain's bearer token when one is registered.
    fn request<T>(&self, scope: &KeyScope, message: T) -> Result<Request<T>, KeyServiceError> {
        let mut tenancy = scope.tenancy();
        if let Some(token) = self.tokens.get(&scope.domain) {
            tenancy = tenancy.and_then(|t| t.with_token(token));
        }
        let tenancy = tenancy.map_err(|e| KeyServiceError::Internal(e.to_string()))?;
        Ok(tenancy.request(message))
    }
}

/// Maps a failed call's status to the adapter's error, preferring the [`ErrorCode`] trailer.
pub fn map_status(status: &Status) -> KeyServiceError {
    let message = status.message().to_owned();
    match ErrorCode::of_status(status) {
        Some(ErrorCode::MalformedKeyId) => return KeyServiceError::MalformedKeyId(message),
        Some(ErrorCode::KeyNotFound) => return KeyServiceError::NotFound(message),
        Some(ErrorCode::KeyDisabled) => return KeyServiceError::Disabled(message),
        Some(ErrorCode::KeyPendingDeletion) => return KeyServiceError::PendingDeletion(message),
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
        scope: &KeyScope,
        service: &str,
    ) -> Result<KeyInfo, KeyServiceError> {
        let req = self.request(
            scope,
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
        scope: &KeyScope,
        key: &KeyRef,
    ) -> Result<KeyInfo, KeyServiceError> {
        let req = self.request(
            scope,
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
        scope: &KeyScope,
        key: &FullKeyId,
        context: &EncryptionContext,
    ) -> Result<DataKey, KeyServiceError> {
        let req = self.request(
            scope,
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
        scope: &KeyScope,
        key: &FullKeyId,
        ciphertext_blob: &[u8],
        context: &EncryptionContext,
    ) -> Result<SecretBytes, KeyServiceError> {
        let req = self.request(
            scope,
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

    /// A refusal with the gRPC `code` and, when given, `error_code` in the trailer.
    fn status(code: Code, error_code: Option<ErrorCode>) -> Status {
        match error_code {
            Some(c) => {
                let s = c.status("why");
                Status::with_metadata(code, "why", s.metadata().clone())
            }
            None => Status::new(code, "why"),
        }
    }

    #[test]
    fn statuses_map_to_typed_errors_preferring_the_error_code() {
        let w = || "why".to_owned();
        let cases = [
            (
                Code::InvalidArgument,
                Some(ErrorCode::MalformedKeyId),
                KeyServiceError::MalformedKeyId(w()),
            ),
            (
                Code::NotFound,
                Some(ErrorCode::KeyNotFound),
                KeyServiceError::NotFound(w()),
            ),
            (
                Code::FailedPrecondition,
                Some(ErrorCode::KeyDisabled),
                KeyServiceError::Disabled(w()),
            ),
            (
                Code::FailedPrecondition,
                Some(ErrorCode::KeyPendingDeletion),
                KeyServiceError::PendingDeletion(w()),
            ),
            (Code::NotFound, None, KeyServiceError::NotFound(w())),
            (
                Code::Unauthenticated,
                Some(ErrorCode::Unauthenticated),
                KeyServiceError::AccessDenied(w()),
            ),
            (
                Code::PermissionDenied,
                None,
                KeyServiceError::AccessDenied(w()),
            ),
            (
                Code::InvalidArgument,
                Some(ErrorCode::CiphertextAuthFailed),
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
                Some(ErrorCode::Internal),
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
