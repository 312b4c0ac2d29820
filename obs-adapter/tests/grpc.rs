//! `GrpcKeyService` against an in-process stand-in for the daemon on 127.0.0.1:0: the tenancy
//! metadata it sends, and how daemon errors come back through the adapter.
#![allow(clippy::unwrap_used)]
#![allow(
    clippy::disallowed_methods,
    reason = "tests may spawn tasks; the workspace bans tokio::spawn outside tests"
)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::*;
use kms_proto::v1 as pb;
use kms_proto::v1::key_management_service_server::{
    KeyManagementService, KeyManagementServiceServer,
};
use kms_proto::{ErrorCode, metadata};
use obs_adapter::{
    Encryption, GrpcKeyService, KeyService, ObsAdapter, ObsRequest, Operation, StoredObject,
};
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

const SSE: &str = "x-obs-server-side-encryption";
const KEY: &str = "x-obs-server-side-encryption-kms-key-id";
const DISABLED: &str = "11111111-1111-4111-8111-111111111111";
const PENDING: &str = "22222222-2222-4222-8222-222222222222";

/// Records (method, domain, region, authorization) of every call.
type Seen = Arc<Mutex<Vec<(String, String, String, String)>>>;

#[derive(Default)]
struct Daemon {
    seen: Seen,
    defaults: Mutex<HashMap<(String, String), String>>,
}

fn md<T>(req: &Request<T>, name: &str) -> String {
    req.metadata()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// A refusal as the daemon sends it: the code's gRPC status and its trailer.
fn err(code: ErrorCode, msg: String) -> Status {
    code.status(msg)
}

impl Daemon {
    fn record<T>(&self, method: &str, req: &Request<T>) -> (String, String) {
        let d = md(req, metadata::DOMAIN_ID);
        let r = md(req, metadata::REGION);
        self.seen.lock().unwrap().push((
            method.to_owned(),
            d.clone(),
            r.clone(),
            md(req, metadata::AUTHORIZATION),
        ));
        (d, r)
    }

    fn meta(key_id: &str, state: pb::KeyState, service: &str) -> pb::KeyMetadata {
        pb::KeyMetadata {
            key_id: key_id.to_owned(),
            state: state as i32,
            creator: pb::KeyCreator::Service as i32,
            service: service.to_owned(),
            ..Default::default()
        }
    }
}

#[tonic::async_trait]
impl KeyManagementService for Daemon {
    async fn create_key(
        &self,
        _: Request<pb::CreateKeyRequest>,
    ) -> Result<Response<pb::CreateKeyResponse>, Status> {
        Err(Status::unimplemented("create_key"))
    }
    async fn describe_key(
        &self,
        req: Request<pb::DescribeKeyRequest>,
    ) -> Result<Response<pb::DescribeKeyResponse>, Status> {
        let (d, _) = self.record("describe_key", &req);
        let key_id = req.into_inner().key_id;
        let state = if key_id.ends_with(DISABLED) {
            pb::KeyState::Disabled
        } else if key_id.ends_with(PENDING) {
            pb::KeyState::PendingDeletion
        } else if self.defaults.lock().unwrap().values().any(|k| *k == key_id)
            && key_id.contains(&d)
        {
            pb::KeyState::Enabled
        } else {
            return Err(err(
                ErrorCode::KeyNotFound,
                format!("key {key_id} not found"),
            ));
        };
        Ok(Response::new(pb::DescribeKeyResponse {
            metadata: Some(Self::meta(&key_id, state, "obs")),
        }))
    }
    async fn enable_key(
        &self,
        _: Request<pb::EnableKeyRequest>,
    ) -> Result<Response<pb::EnableKeyResponse>, Status> {
        Err(Status::unimplemented("enable_key"))
    }
    async fn disable_key(
        &self,
        _: Request<pb::DisableKeyRequest>,
    ) -> Result<Response<pb::DisableKeyResponse>, Status> {
        Err(Status::unimplemented("disable_key"))
    }
    async fn schedule_key_deletion(
        &self,
        _: Request<pb::ScheduleKeyDeletionRequest>,
    ) -> Result<Response<pb::ScheduleKeyDeletionResponse>, Status> {
        Err(Status::unimplemented("schedule_key_deletion"))
    }
    async fn cancel_key_deletion(
        &self,
        _: Request<pb::CancelKeyDeletionRequest>,
    ) -> Result<Response<pb::CancelKeyDeletionResponse>, Status> {
        Err(Status::unimplemented("cancel_key_deletion"))
    }
    async fn list_keys(
        &self,
        _: Request<pb::ListKeysRequest>,
    ) -> Result<Response<pb::ListKeysResponse>, Status> {
        Err(Status::unimplemented("list_keys"))
    }
    async fn rotate_key(
        &self,
        _: Request<pb::RotateKeyRequest>,
    ) -> Result<Response<pb::RotateKeyResponse>, Status> {
        Err(Status::unimplemented("rotate_key"))
    }
    async fn get_default_key(
        &self,
        req: Request<pb::GetDefaultKeyRequest>,
    ) -> Result<Response<pb::GetDefaultKeyResponse>, Status> {
        let (d, r) = self.record("get_default_key", &req);
        let service = req.into_inner().service;
        let key_id = self
            .defaults
            .lock()
            .unwrap()
            .entry((d.clone(), r.clone()))
            .or_insert_with(|| format!("{r}:{d}:key/{}", uuid::Uuid::new_v4()))
            .clone();
        Ok(Response::new(pb::GetDefaultKeyResponse {
            metadata: Some(Self::meta(&key_id, pb::KeyState::Enabled, &service)),
        }))
    }
    async fn generate_data_key(
        &self,
        req: Request<pb::GenerateDataKeyRequest>,
    ) -> Result<Response<pb::GenerateDataKeyResponse>, Status> {
        self.record("generate_data_key", &req);
        let req = req.into_inner();
        if req.key_id.ends_with(DISABLED) {
            return Err(err(
                ErrorCode::KeyDisabled,
                format!("key {} is disabled", req.key_id),
            ));
        }
        let mut blob = b"blob:".to_vec();
        blob.extend_from_slice(req.encryption_context.get("obs:object").unwrap().as_bytes());
        Ok(Response::new(pb::GenerateDataKeyResponse {
            key_id: req.key_id,
            plaintext: vec![7; 32],
            ciphertext_blob: blob,
            key_version: 1,
        }))
    }
    async fn generate_data_key_without_plaintext(
        &self,
        _: Request<pb::GenerateDataKeyRequest>,
    ) -> Result<Response<pb::GenerateDataKeyWithoutPlaintextResponse>, Status> {
        Err(Status::unimplemented("generate_data_key_without_plaintext"))
    }
    async fn encrypt(
        &self,
        _: Request<pb::EncryptRequest>,
    ) -> Result<Response<pb::EncryptResponse>, Status> {
        Err(Status::unimplemented("encrypt"))
    }
    async fn decrypt(
        &self,
        req: Request<pb::DecryptRequest>,
    ) -> Result<Response<pb::DecryptResponse>, Status> {
        self.record("decrypt", &req);
        let req = req.into_inner();
        let mut want = b"blob:".to_vec();
        want.extend_from_slice(req.encryption_context.get("obs:object").unwrap().as_bytes());
        if req.ciphertext_blob != want {
            return Err(err(
                ErrorCode::CiphertextAuthFailed,
                "ciphertext blob failed authentication".into(),
            ));
        }
        Ok(Response::new(pb::DecryptResponse {
            key_id: req.key_id,
            plaintext: vec![7; 32],
            key_version: 1,
        }))
    }
    async fn re_encrypt(
        &self,
        _: Request<pb::ReEncryptRequest>,
    ) -> Result<Response<pb::ReEncryptResponse>, Status> {
        Err(Status::unimplemented("re_encrypt"))
    }
    async fn update_key_alias(
        &self,
        _: Request<pb::UpdateKeyAliasRequest>,
    ) -> Result<Response<pb::UpdateKeyAliasResponse>, Status> {
        Err(Status::unimplemented("update_key_alias"))
    }
    async fn update_key_description(
        &self,
        _: Request<pb::UpdateKeyDescriptionRequest>,
    ) -> Result<Response<pb::UpdateKeyDescriptionResponse>, Status> {
        Err(Status::unimplemented("update_key_description"))
    }
    async fn enable_key_rotation(
        &self,
        _: Request<pb::EnableKeyRotationRequest>,
    ) -> Result<Response<pb::EnableKeyRotationResponse>, Status> {
        Err(Status::unimplemented("enable_key_rotation"))
    }
    async fn disable_key_rotation(
        &self,
        _: Request<pb::DisableKeyRotationRequest>,
    ) -> Result<Response<pb::DisableKeyRotationResponse>, Status> {
        Err(Status::unimplemented("disable_key_rotation"))
    }
    async fn update_key_rotation_interval(
        &self,
        _: Request<pb::UpdateKeyRotationIntervalRequest>,
    ) -> Result<Response<pb::UpdateKeyRotationIntervalResponse>, Status> {
        Err(Status::unimplemented("update_key_rotation_interval"))
    }
    async fn get_key_rotation_status(
        &self,
        _: Request<pb::GetKeyRotationStatusRequest>,
    ) -> Result<Response<pb::GetKeyRotationStatusResponse>, Status> {
        Err(Status::unimplemented("get_key_rotation_status"))
    }
    async fn generate_random(
        &self,
        _: Request<pb::GenerateRandomRequest>,
    ) -> Result<Response<pb::GenerateRandomResponse>, Status> {
        Err(Status::unimplemented("generate_random"))
    }
}

async fn start() -> (tonic::transport::Channel, Seen) {
    let daemon = Daemon::default();
    let seen = Arc::clone(&daemon.seen);
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = incoming.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(KeyManagementServiceServer::new(daemon))
            .serve_with_incoming(incoming),
    );
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    (channel, seen)
}

#[tokio::test]
async fn grpc_key_service_sends_tenancy_and_maps_daemon_errors() {
    let (channel, seen) = start().await;
    let kms = GrpcKeyService::new(channel).with_token(domain(OWNER), "secret-token");
    let adapter = ObsAdapter::new(kms);
    let c = caller(OWNER);
    let b = bucket();

    // Default key through GetDefaultKey, with the tenancy in the metadata.
    let h = headers(&[(SSE, "kms")]);
    let d = adapter
        .decide(&ObsRequest::new(Operation::PutObject, &c, &b, "obj", &h))
        .await
        .unwrap();
    let key = d.encryption.key_id().unwrap().clone();
    assert_eq!(key.domain, domain(OWNER));
    assert_eq!(key.region, region(REGION));
    {
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen[0],
            (
                "get_default_key".to_owned(),
                OWNER.to_owned(),
                REGION.to_owned(),
                "Bearer secret-token".to_owned()
            )
        );
    }
    // The same key named by its bare UUID: described in full form, accepted.
    let bare = key.uuid.to_string();
    let h = headers(&[(SSE, "kms"), (KEY, &bare)]);
    let d2 = adapter
        .decide(&ObsRequest::new(Operation::PutObject, &c, &b, "obj", &h))
        .await
        .unwrap();
    assert_eq!(d2.encryption, d.encryption);

    // Daemon errors, by their x-kms-error-code.
    let cases = [
        (DISABLED, (400, "KMS.DisabledException")),
        (PENDING, (400, "KMS.KMSInvalidStateException")),
        (
            "33333333-3333-4333-8333-333333333333",
            (400, "KMS.NotFoundException"),
        ),
    ];
    for (uuid, want) in cases {
        let h = headers(&[(SSE, "kms"), (KEY, uuid)]);
        let e = adapter
            .decide(&ObsRequest::new(Operation::PutObject, &c, &b, "obj", &h))
            .await
            .unwrap_err();
        assert_eq!(code(&e), want, "{uuid}");
    }

    // Data keys round trip; the context binds the object key.
    let dk = adapter
        .generate_data_key(&c, &b, "obj", &d.encryption)
        .await
        .unwrap()
        .unwrap();
    let obj = StoredObject::kms(domain(OWNER), key.clone());
    let pt = adapter
        .decrypt_data_key(&c, &b, "obj", &obj, &dk.ciphertext_blob)
        .await
        .unwrap();
    assert_eq!(pt.expose(), dk.plaintext.expose());
    let e = adapter
        .decrypt_data_key(&c, &b, "other", &obj, &dk.ciphertext_blob)
        .await
        .unwrap_err();
    assert_eq!(code(&e), (500, "InternalError"));
    let disabled: kms_proto::key_id::FullKeyId =
        format!("{REGION}:{OWNER}:key/{DISABLED}").parse().unwrap();
    let e = adapter
        .generate_data_key(&c, &b, "obj", &Encryption::Kms { key_id: disabled })
        .await
        .unwrap_err();
    assert_eq!(code(&e), (400, "KMS.DisabledException"));

    // Every call carried the tenancy and the token.
    for (method, d, r, auth) in seen.lock().unwrap().iter() {
        assert_eq!((d.as_str(), r.as_str()), (OWNER, REGION), "{method}");
        assert_eq!(auth, "Bearer secret-token", "{method}");
    }
    // No token registered for another domain: none sent.
    let other = caller(OTHER);
    let ob = obs_adapter::BucketFacts::new("b", region(REGION), domain(OTHER));
    let h = headers(&[(SSE, "kms")]);
    adapter
        .decide(&ObsRequest::new(
            Operation::PutObject,
            &other,
            &ob,
            "obj",
            &h,
        ))
        .await
        .unwrap();
    let last = seen.lock().unwrap().last().unwrap().clone();
    assert_eq!((last.1.as_str(), last.3.as_str()), (OTHER, ""));
}

#[tokio::test]
async fn grpc_key_service_reports_an_unreachable_daemon_as_unavailable() {
    // Bind and drop a listener to get a port nobody serves.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let kms = GrpcKeyService::new(channel);
    let t = scope(OWNER, REGION);
    let e = kms.get_default_key(&t, "obs").await.unwrap_err();
    let adapter_error = obs_adapter::AdapterError::from(e);
    assert_eq!(code(&adapter_error), (503, "ServiceUnavailable"));
}
