//! The OBS adapter against the real kmsbox daemon (started in-process on loopback), through
//! `GrpcKeyService`: the default-key race, cross-tenant refusal, key states, copies, multipart, and
//! object bytes through the envelope crate.

#![allow(clippy::unwrap_used)]
#![allow(
    clippy::disallowed_methods,
    reason = "tests may spawn tasks; the workspace bans tokio::spawn outside tests"
)]

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};
use kms_proto::Tenancy;
use kms_proto::key_id::{DomainId, FullKeyId, RegionId};
use kms_proto::v1 as pb;
use kms_proto::v1::key_management_service_client::KeyManagementServiceClient;
use kmsbox_tests::TestDaemon;
use obs_adapter::{
    AdapterConfig, AdapterError, BucketFacts, Caller, Decision, Encryption, GrpcKeyService,
    KeyPolicy, ObsAdapter, ObsRequest, Operation, StoredObject,
};
use tonic::transport::Channel;

const SSE: &str = "x-obs-server-side-encryption";
const KEY: &str = "x-obs-server-side-encryption-kms-key-id";
const REGION: &str = "region";

/// A fresh daemon and a channel to it; the daemon lives as long as the returned guard.
async fn channel() -> (TestDaemon, Channel) {
    let d = TestDaemon::start().await;
    let ch = Channel::from_shared(d.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    (d, ch)
}

fn domain(s: &str) -> DomainId {
    DomainId::parse(s).unwrap()
}

fn region(s: &str) -> RegionId {
    RegionId::parse(s).unwrap()
}

fn caller(d: &str) -> Caller {
    Caller::new(domain(d))
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

/// HTTP status and OBS code of an error.
fn code(e: &AdapterError) -> (u16, &'static str) {
    let (s, c) = e.status_and_code();
    (s.as_u16(), c)
}

/// The key ID in a decision's response headers.
fn header_key_id(d: &Decision) -> Option<String> {
    d.response_headers
        .get("x-obs-server-side-encryption-kms-key-id")
        .map(|v| v.to_str().unwrap().to_owned())
}

fn fresh_domain() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A raw client call as `domain` in `REGION`.
fn as_tenant<T>(domain: &str, msg: T) -> tonic::Request<T> {
    Tenancy::for_domain(domain)
        .and_then(|t| t.with_region(REGION))
        .unwrap()
        .request(msg)
}

async fn decide(
    adapter: &ObsAdapter<GrpcKeyService>,
    op: Operation,
    who: &str,
    b: &BucketFacts,
    h: &[(&str, &str)],
    stored: Option<&StoredObject>,
) -> Result<Decision, obs_adapter::AdapterError> {
    let c = caller(who);
    let h = headers(h);
    let mut req = ObsRequest::new(op, &c, b, "obj", &h);
    if let Some(s) = stored {
        req = req.with_stored(s);
    }
    adapter.decide(&req).await
}

fn bucket_of(owner: &str) -> BucketFacts {
    BucketFacts::new("examplebucket", region(REGION), domain(owner))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_uploads_create_exactly_one_default_key() {
    let (_daemon, ch) = channel().await;
    let adapter = Arc::new(ObsAdapter::new(GrpcKeyService::new(ch.clone())));
    let owner = fresh_domain();
    let mut tasks = Vec::new();
    for _ in 0..128 {
        let adapter = Arc::clone(&adapter);
        let owner = owner.clone();
        tasks.push(tokio::spawn(async move {
            let b = bucket_of(&owner);
            decide(
                &adapter,
                Operation::PutObject,
                &owner,
                &b,
                &[(SSE, "kms")],
                None,
            )
            .await
            .map(|d| d.encryption)
        }));
    }
    let mut keys = std::collections::HashSet::new();
    for t in tasks {
        keys.insert(t.await.unwrap().unwrap());
    }
    assert_eq!(keys.len(), 1);
    let listed = KeyManagementServiceClient::new(ch)
        .list_keys(as_tenant(&owner, pb::ListKeysRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].service, "obs");
}

#[tokio::test]
async fn cross_tenant_keys_and_objects_are_refused() {
    let (_daemon, ch) = channel().await;
    let adapter = ObsAdapter::new(GrpcKeyService::new(ch));
    let (a, b) = (fresh_domain(), fresh_domain());
    let d = decide(
        &adapter,
        Operation::PutObject,
        &a,
        &bucket_of(&a),
        &[(SSE, "kms")],
        None,
    )
    .await
    .unwrap();
    let a_key = d.encryption.key_id().unwrap().clone();
    // B names A's key, full and bare, in B's own bucket: not found, as an unknown key.
    let full = a_key.to_string();
    let bare = a_key.uuid.to_string();
    for k in [full.as_str(), bare.as_str()] {
        let e = decide(
            &adapter,
            Operation::PutObject,
            &b,
            &bucket_of(&b),
            &[(SSE, "kms"), (KEY, k)],
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(code(&e), (400, "KMS.NotFoundException"), "{k}");
    }
    // B reads A's object: refused.
    let obj = StoredObject::kms(domain(&a), a_key);
    let e = decide(
        &adapter,
        Operation::GetObject,
        &b,
        &bucket_of(&a),
        &[],
        Some(&obj),
    )
    .await
    .unwrap_err();
    assert_eq!(code(&e), (403, "AccessDenied"));
}

#[tokio::test]
async fn disabled_and_pending_keys_are_refused() {
    let (_daemon, ch) = channel().await;
    // The daemon cannot disable default keys; use customer keys with the switch on.
    let adapter = ObsAdapter::with_config(
        GrpcKeyService::new(ch.clone()),
        AdapterConfig {
            key_policy: KeyPolicy::AllowCustomerKeys,
        },
    );
    let banning = ObsAdapter::new(GrpcKeyService::new(ch.clone()));
    let owner = fresh_domain();
    let mut client = KeyManagementServiceClient::new(ch);
    let create = || {
        let mut client = client.clone();
        let owner = owner.clone();
        async move {
            client
                .create_key(as_tenant(&owner, pb::CreateKeyRequest::default()))
                .await
                .unwrap()
                .into_inner()
                .metadata
                .unwrap()
                .key_id
        }
    };
    let enabled = create().await;
    let disabled = create().await;
    let pending = create().await;
    client
        .disable_key(as_tenant(
            &owner,
            pb::DisableKeyRequest {
                key_id: disabled.clone(),
            },
        ))
        .await
        .unwrap();
    client
        .schedule_key_deletion(as_tenant(
            &owner,
            pb::ScheduleKeyDeletionRequest {
                key_id: pending.clone(),
                pending_window_days: 7,
            },
        ))
        .await
        .unwrap();
    let b = bucket_of(&owner);
    let ok = decide(
        &adapter,
        Operation::PutObject,
        &owner,
        &b,
        &[(SSE, "kms"), (KEY, &enabled)],
        None,
    )
    .await
    .unwrap();
    assert_eq!(ok.encryption.key_id().unwrap().to_string(), enabled);
    let e = decide(
        &banning,
        Operation::PutObject,
        &owner,
        &b,
        &[(SSE, "kms"), (KEY, &enabled)],
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(code(&e), (400, "InvalidArgument"));
    let e = decide(
        &adapter,
        Operation::PutObject,
        &owner,
        &b,
        &[(SSE, "kms"), (KEY, &disabled)],
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(code(&e), (400, "KMS.DisabledException"));
    let e = decide(
        &adapter,
        Operation::PutObject,
        &owner,
        &b,
        &[(SSE, "kms"), (KEY, &pending)],
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(code(&e), (400, "KMS.KMSInvalidStateException"));
}

#[tokio::test]
async fn copy_to_plain_and_back_and_multipart() {
    let (_daemon, ch) = channel().await;
    let adapter = ObsAdapter::new(GrpcKeyService::new(ch));
    let owner = fresh_domain();
    let b = bucket_of(&owner);
    let c = caller(&owner);
    // Upload SSE-KMS, with a data key.
    let put = decide(
        &adapter,
        Operation::PutObject,
        &owner,
        &b,
        &[(SSE, "kms")],
        None,
    )
    .await
    .unwrap();
    let key: FullKeyId = put.encryption.key_id().unwrap().clone();
    let dk = adapter
        .generate_data_key(&c, &b, "obj", &put.encryption)
        .await
        .unwrap()
        .unwrap();
    let obj = StoredObject::kms(domain(&owner), key.clone());
    // Copy to a plain target: the source's data key opens, the target is plaintext.
    let copy = ("x-obs-copy-source", "/examplebucket/obj");
    let to_plain = decide(
        &adapter,
        Operation::CopyObject,
        &owner,
        &b,
        &[copy],
        Some(&obj),
    )
    .await
    .unwrap();
    assert_eq!(to_plain.encryption, Encryption::Plaintext);
    assert!(to_plain.response_headers.is_empty());
    let opened = adapter
        .decrypt_data_key(&c, &b, "obj", &obj, &dk.ciphertext_blob)
        .await
        .unwrap();
    assert_eq!(opened.expose(), dk.plaintext.expose());
    // And back to SSE-KMS.
    let plain = StoredObject::plaintext(domain(&owner));
    let back = decide(
        &adapter,
        Operation::CopyObject,
        &owner,
        &b,
        &[copy, (SSE, "kms")],
        Some(&plain),
    )
    .await
    .unwrap();
    assert_eq!(back.encryption.key_id(), Some(&key));
    assert_eq!(
        header_key_id(&back).as_deref(),
        Some(key.to_string().as_str())
    );
    // Multipart: initiate with SSE-KMS, parts and completion inherit.
    let init = decide(
        &adapter,
        Operation::InitiateMultipartUpload,
        &owner,
        &b,
        &[(SSE, "kms")],
        None,
    )
    .await
    .unwrap();
    let upload = StoredObject {
        owner: domain(&owner),
        encryption: init.encryption.clone(),
    };
    for _ in 0..3 {
        let part = decide(
            &adapter,
            Operation::UploadPart,
            &owner,
            &b,
            &[],
            Some(&upload),
        )
        .await
        .unwrap();
        assert_eq!(part.encryption, init.encryption);
        let pdk = adapter
            .generate_data_key(&c, &b, "obj", &part.encryption)
            .await
            .unwrap()
            .unwrap();
        let back = adapter
            .decrypt_data_key(&c, &b, "obj", &upload, &pdk.ciphertext_blob)
            .await
            .unwrap();
        assert_eq!(back.expose(), pdk.plaintext.expose());
    }
    let e = decide(
        &adapter,
        Operation::UploadPart,
        &owner,
        &b,
        &[(SSE, "kms")],
        Some(&upload),
    )
    .await
    .unwrap_err();
    assert_eq!(code(&e), (400, "InvalidArgument"));
    let done = decide(
        &adapter,
        Operation::CompleteMultipartUpload,
        &owner,
        &b,
        &[],
        Some(&upload),
    )
    .await
    .unwrap();
    assert_eq!(
        header_key_id(&done).as_deref(),
        Some(key.to_string().as_str())
    );
    // Another object key's context does not open the data key.
    let e = adapter
        .decrypt_data_key(&c, &b, "other", &obj, &dk.ciphertext_blob)
        .await
        .unwrap_err();
    assert_eq!(code(&e), (500, "InternalError"));
}

/// The whole path of an SSE-KMS object: PUT decided by the adapter, data key from the real daemon,
/// body sealed by the envelope crate; GET decided by the adapter, data key decrypted, body opened,
/// and a range GET. Another tenant, or the object under another name, opens nothing.
#[tokio::test]
async fn object_bytes_round_trip_through_the_envelope_crate() {
    use envelope::header::ObjectKind;
    use envelope::{
        Backend, Decryptor, Encryptor, Header, ObjectContext, ObjectKey, WrapScheme, WrappedKey,
    };

    let (_daemon, ch) = channel().await;
    let adapter = ObsAdapter::new(GrpcKeyService::new(ch));
    let owner = fresh_domain();
    let b = bucket_of(&owner);
    let c = caller(&owner);
    let body: Vec<u8> = (0..100_000u32).map(|i| (i * 7).to_le_bytes()[0]).collect();
    let object_ctx = |name: &str| {
        ObjectContext::new()
            .with("tenant", owner.as_str())
            .unwrap()
            .with("bucket", "examplebucket")
            .unwrap()
            .with("object-key", name)
            .unwrap()
    };

    // PUT: the adapter decides SSE-KMS with the default key; the engine seals the body.
    let put = decide(
        &adapter,
        Operation::PutObject,
        &owner,
        &b,
        &[(SSE, "kms")],
        None,
    )
    .await
    .unwrap();
    let key_id = put.encryption.key_id().unwrap().clone();
    let dk = adapter
        .generate_data_key(&c, &b, "obj", &put.encryption)
        .await
        .unwrap()
        .unwrap();
    let data_key = envelope::DataKey::from_slice(dk.plaintext.expose()).unwrap();
    let wrapped = WrappedKey {
        scheme: WrapScheme::Kms,
        bytes: dk.ciphertext_blob.clone(),
    };
    let okey = ObjectKey::new(ObjectKind::Single, data_key, &key_id.to_string(), wrapped).unwrap();
    let mut enc =
        Encryptor::new(&okey, &object_ctx("obj"), Vec::new(), Backend::default()).unwrap();
    std::io::Write::write_all(&mut enc, &body).unwrap();
    let stored_bytes = enc.finish().unwrap();
    assert!(!stored_bytes.windows(32).any(|w| w == &body[1000..1032]));
    let stored = StoredObject::kms(domain(&owner), key_id.clone());

    // GET: the adapter allows the owner and names the key; the engine opens the body.
    let get = decide(
        &adapter,
        Operation::GetObject,
        &owner,
        &b,
        &[],
        Some(&stored),
    )
    .await
    .unwrap();
    assert_eq!(
        header_key_id(&get).as_deref(),
        Some(key_id.to_string().as_str())
    );
    let mut src = &stored_bytes[..];
    let header = Header::read_from(&mut src).unwrap();
    assert_eq!(header.key_id(), key_id.to_string());
    let plain_key = adapter
        .decrypt_data_key(&c, &b, "obj", &stored, &header.wrapped_key().bytes)
        .await
        .unwrap();
    let okey = ObjectKey::open(
        header,
        envelope::DataKey::from_slice(plain_key.expose()).unwrap(),
    )
    .unwrap();
    let mut out = Vec::new();
    Decryptor::with_key(&okey, &object_ctx("obj"), src, Backend::default())
        .unwrap()
        .copy_to(&mut out)
        .unwrap();
    assert_eq!(out, body);

    // A range GET across a chunk boundary reads the same bytes.
    let mut range_out = Vec::new();
    envelope::open_range_with_key(
        &okey,
        &object_ctx("obj"),
        &mut std::io::Cursor::new(&stored_bytes),
        16_000..40_000,
        &mut range_out,
        Backend::default(),
    )
    .unwrap();
    assert_eq!(range_out, &body[16_000..40_000]);

    // The same bytes presented as another object do not open.
    let moved = Decryptor::with_key(
        &okey,
        &object_ctx("other"),
        &stored_bytes[okey.header().len()..],
        Backend::default(),
    );
    assert!(
        moved.is_err(),
        "a body moved to another object name must fail its commitment"
    );
    // Another tenant cannot get the data key, whatever it claims.
    let mallory = caller(&fresh_domain());
    let e = adapter
        .decrypt_data_key(&mallory, &b, "obj", &stored, &dk.ciphertext_blob)
        .await
        .unwrap_err();
    assert_eq!(code(&e).0, 403);
}

/// Issue 16, point 3, against the real daemon (which compares domain IDs exactly): a tenant's own
/// key named with its domain ID in upper case is found, and answered in the canonical form.
#[tokio::test]
async fn upper_case_domain_in_a_key_id_finds_the_tenants_own_key() {
    let (_daemon, ch) = channel().await;
    let adapter = ObsAdapter::new(GrpcKeyService::new(ch));
    let owner = fresh_domain();
    let b = bucket_of(&owner);
    let d = decide(
        &adapter,
        Operation::PutObject,
        &owner,
        &b,
        &[(SSE, "kms")],
        None,
    )
    .await
    .unwrap();
    let key = d.encryption.key_id().unwrap().clone();
    let upper = format!(
        "{REGION}:{}:key/{}",
        owner.to_ascii_uppercase(),
        key.uuid.hyphenated().to_string().to_ascii_uppercase()
    );
    assert_ne!(upper, key.to_string());
    let d = decide(
        &adapter,
        Operation::PutObject,
        &owner,
        &b,
        &[(SSE, "kms"), (KEY, &upper)],
        None,
    )
    .await
    .unwrap();
    assert_eq!(d.encryption.key_id(), Some(&key));
    assert_eq!(header_key_id(&d), Some(key.to_string()));
}

/// Issue 16, point 4, against the real daemon with a tenants file: when the daemon refuses the
/// adapter's own credentials (no token, or a token of another domain), the client gets 500
/// `InternalError` naming the server's credentials, not 403 `AccessDenied`.
#[tokio::test]
async fn kms_refusing_the_adapters_credentials_is_a_server_error() {
    let daemon = TestDaemon::start_with(|c, dir| {
        let p = dir.join("tenants.toml");
        std::fs::write(
            &p,
            "[[tenants]]\ndomain_id = \"alice\"\ntoken = \"alice-secret-token-1\"\n\
             [[tenants]]\ndomain_id = \"bob\"\ntoken = \"bob-secret-token-22\"\n",
        )
        .unwrap();
        c.tenants = Some(p);
    })
    .await;
    let ch = Channel::from_shared(daemon.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let bucket = bucket_of("alice");
    let b = &bucket;
    let put = |adapter: ObsAdapter<GrpcKeyService>| async move {
        decide(
            &adapter,
            Operation::PutObject,
            "alice",
            b,
            &[(SSE, "kms")],
            None,
        )
        .await
    };
    // The right token: accepted.
    let good = GrpcKeyService::new(ch.clone()).with_token(domain("alice"), "alice-secret-token-1");
    assert!(put(ObsAdapter::new(good)).await.is_ok());
    // No token (UNAUTHENTICATED), and bob's token for alice (PERMISSION_DENIED).
    let none = GrpcKeyService::new(ch.clone());
    let wrong = GrpcKeyService::new(ch).with_token(domain("alice"), "bob-secret-token-22");
    for (name, service) in [("no token", none), ("another domain's token", wrong)] {
        let e = put(ObsAdapter::new(service)).await.unwrap_err();
        assert_eq!(code(&e), (500, "InternalError"), "{name}: {e}");
        let doc = e.to_obs_error("R1");
        assert!(
            doc.message.contains("credentials"),
            "{name}: {}",
            doc.message
        );
    }
}
