//! The KMS provider against an in-process stand-in for the kmsbox daemon (a tonic server on
//! 127.0.0.1:0 implementing `GenerateDataKey` and `Decrypt`): tenancy metadata and encryption
//! context reach the server, and a sealed object round-trips through the KMS path. The real daemon
//! is tested by its own crate; this checks the client side only.
#![allow(
    clippy::disallowed_methods,
    reason = "the mock daemon and concurrent callers live as long as each test"
)]
#![cfg(feature = "kms")]

use envelope::provider::{BlockingKmsProvider, KmsProvider, Tenancy};
use envelope::{
    Backend, Decryptor, Encryptor, Error, Header, KeyProvider, ObjectContext, ObjectKey,
    ObjectKind, WrapScheme,
};
use kms_proto::v1::key_management_service_server::{
    KeyManagementService, KeyManagementServiceServer,
};
use kms_proto::v1::*;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tonic::{Request, Response, Status};

const KEY: &str =
    "region1:0123456789abcdef0123456789abcdef:key/4f1cd4de-ab64-4807-920a-47fc42e7f0d0";

/// A data key the mock issued: its plaintext and the encryption context it is bound to.
type Issued = (Vec<u8>, HashMap<String, String>);

#[derive(Default)]
struct State {
    /// blob -> issued key
    blobs: HashMap<Vec<u8>, Issued>,
    /// (domain, region, authorization) of every request.
    seen: Vec<(String, String, String)>,
    /// Report this key ID from Decrypt instead of the real one.
    lie_about_key: bool,
}

#[derive(Clone, Default)]
struct Mock(Arc<Mutex<State>>);

fn md<T>(r: &Request<T>, name: &str) -> String {
    r.metadata()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

impl Mock {
    fn record<T>(&self, r: &Request<T>) {
        let seen = (
            md(r, kms_proto::metadata::DOMAIN_ID),
            md(r, kms_proto::metadata::REGION),
            md(r, kms_proto::metadata::AUTHORIZATION),
        );
        self.0.lock().expect("lock").seen.push(seen);
    }
}

fn no<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("not in the mock"))
}

#[tonic::async_trait]
impl KeyManagementService for Mock {
    async fn create_key(
        &self,
        _: Request<CreateKeyRequest>,
    ) -> Result<Response<CreateKeyResponse>, Status> {
        no()
    }
    async fn describe_key(
        &self,
        _: Request<DescribeKeyRequest>,
    ) -> Result<Response<DescribeKeyResponse>, Status> {
        no()
    }
    async fn enable_key(
        &self,
        _: Request<EnableKeyRequest>,
    ) -> Result<Response<EnableKeyResponse>, Status> {
        no()
    }
    async fn disable_key(
        &self,
        _: Request<DisableKeyRequest>,
    ) -> Result<Response<DisableKeyResponse>, Status> {
        no()
    }
    async fn schedule_key_deletion(
        &self,
        _: Request<ScheduleKeyDeletionRequest>,
    ) -> Result<Response<ScheduleKeyDeletionResponse>, Status> {
        no()
    }
    async fn cancel_key_deletion(
        &self,
        _: Request<CancelKeyDeletionRequest>,
    ) -> Result<Response<CancelKeyDeletionResponse>, Status> {
        no()
    }
    async fn list_keys(
        &self,
        _: Request<ListKeysRequest>,
    ) -> Result<Response<ListKeysResponse>, Status> {
        no()
    }
    async fn rotate_key(
        &self,
        _: Request<RotateKeyRequest>,
    ) -> Result<Response<RotateKeyResponse>, Status> {
        no()
    }
    async fn get_default_key(
        &self,
        _: Request<GetDefaultKeyRequest>,
    ) -> Result<Response<GetDefaultKeyResponse>, Status> {
        no()
    }
    async fn generate_data_key_without_plaintext(
        &self,
        _: Request<GenerateDataKeyRequest>,
    ) -> Result<Response<GenerateDataKeyWithoutPlaintextResponse>, Status> {
        no()
    }
    async fn encrypt(
        &self,
        _: Request<EncryptRequest>,
    ) -> Result<Response<EncryptResponse>, Status> {
        no()
    }
    async fn re_encrypt(
        &self,
        _: Request<ReEncryptRequest>,
    ) -> Result<Response<ReEncryptResponse>, Status> {
        no()
    }

    async fn generate_data_key(
        &self,
        r: Request<GenerateDataKeyRequest>,
    ) -> Result<Response<GenerateDataKeyResponse>, Status> {
        self.record(&r);
        let req = r.into_inner();
        if req.key_id != KEY || req.number_of_bytes != 32 {
            return Err(Status::invalid_argument("unexpected key or size"));
        }
        let mut st = self.0.lock().expect("lock");
        let n = st.blobs.len().to_le_bytes()[0];
        let plaintext = vec![0xA0 ^ n; 32];
        let blob = format!("blob-{n}").into_bytes();
        st.blobs
            .insert(blob.clone(), (plaintext.clone(), req.encryption_context));
        Ok(Response::new(GenerateDataKeyResponse {
            key_id: KEY.into(),
            plaintext,
            ciphertext_blob: blob,
            key_version: 1,
        }))
    }

    async fn decrypt(
        &self,
        r: Request<DecryptRequest>,
    ) -> Result<Response<DecryptResponse>, Status> {
        self.record(&r);
        let req = r.into_inner();
        let st = self.0.lock().expect("lock");
        let Some((plaintext, ctx)) = st.blobs.get(&req.ciphertext_blob) else {
            return Err(Status::invalid_argument("unknown blob"));
        };
        if *ctx != req.encryption_context {
            return Err(Status::invalid_argument("encryption context mismatch"));
        }
        let key_id = if st.lie_about_key {
            KEY.replace("4f1cd4de", "00000000")
        } else {
            KEY.into()
        };
        Ok(Response::new(DecryptResponse {
            key_id,
            plaintext: plaintext.clone(),
            key_version: 1,
        }))
    }
    async fn update_key_alias(
        &self,
        _: Request<UpdateKeyAliasRequest>,
    ) -> Result<Response<UpdateKeyAliasResponse>, Status> {
        no()
    }
    async fn update_key_description(
        &self,
        _: Request<UpdateKeyDescriptionRequest>,
    ) -> Result<Response<UpdateKeyDescriptionResponse>, Status> {
        no()
    }
    async fn enable_key_rotation(
        &self,
        _: Request<EnableKeyRotationRequest>,
    ) -> Result<Response<EnableKeyRotationResponse>, Status> {
        no()
    }
    async fn disable_key_rotation(
        &self,
        _: Request<DisableKeyRotationRequest>,
    ) -> Result<Response<DisableKeyRotationResponse>, Status> {
        no()
    }
    async fn update_key_rotation_interval(
        &self,
        _: Request<UpdateKeyRotationIntervalRequest>,
    ) -> Result<Response<UpdateKeyRotationIntervalResponse>, Status> {
        no()
    }
    async fn get_key_rotation_status(
        &self,
        _: Request<GetKeyRotationStatusRequest>,
    ) -> Result<Response<GetKeyRotationStatusResponse>, Status> {
        no()
    }
    async fn generate_random(
        &self,
        _: Request<GenerateRandomRequest>,
    ) -> Result<Response<GenerateRandomResponse>, Status> {
        no()
    }
}

async fn start(mock: Mock) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(KeyManagementServiceServer::new(mock))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .expect("serve");
    });
    format!("http://{addr}")
}

fn ctx(obj: &str) -> ObjectContext {
    ObjectContext::from_pairs([("bucket", "b"), ("object-key", obj)]).expect("ctx")
}

#[tokio::test]
async fn seal_and_open_through_the_kms() {
    let mock = Mock::default();
    let endpoint = start(mock.clone()).await;
    let tenancy = Tenancy::for_domain("0123456789abcdef0123456789abcdef")
        .and_then(|t| t.with_region("region1"))
        .and_then(|t| t.with_token("tok"))
        .expect("tenancy");
    let kms = KmsProvider::connect(endpoint, tenancy)
        .await
        .expect("connect");

    // Seal: GenerateDataKey, then the synchronous streaming API.
    let g = kms
        .generate_data_key(KEY, &ctx("o"))
        .await
        .expect("generate");
    assert_eq!(g.key_id, KEY);
    assert_eq!(g.wrapped.scheme, WrapScheme::Kms);
    let key = ObjectKey::new(ObjectKind::Single, g.data_key, &g.key_id, g.wrapped).expect("key");
    let mut enc = Encryptor::new(&key, &ctx("o"), Vec::new(), Backend::default()).expect("enc");
    let pt: Vec<u8> = (0..50_000u32).map(|i| i.to_le_bytes()[0]).collect();
    enc.write_all(&pt).expect("write");
    let sealed = enc.finish().expect("finish");

    // Open: parse the header, Decrypt with the header's key ID, check the header, stream.
    let mut input = &sealed[..];
    let h = Header::read_from(&mut input).expect("header");
    assert_eq!(h.key_id(), KEY);
    let dk = kms
        .decrypt_data_key(h.key_id(), h.wrapped_key(), &ctx("o"))
        .await
        .expect("decrypt");
    let key = ObjectKey::open(h.clone(), dk).expect("header tag");
    let mut out = Vec::new();
    Decryptor::with_key(&key, &ctx("o"), input, Backend::default())
        .expect("dec")
        .copy_to(&mut out)
        .expect("open");
    assert!(out == pt);

    // The daemon saw the tenancy and the context.
    {
        let st = mock.0.lock().expect("lock");
        assert_eq!(st.seen.len(), 2);
        for (domain, region, auth) in &st.seen {
            assert_eq!(domain, "0123456789abcdef0123456789abcdef");
            assert_eq!(region, "region1");
            assert_eq!(auth, "Bearer tok");
        }
        let (_, stored_ctx) = st.blobs.values().next().expect("blob");
        assert_eq!(stored_ctx.get("object-key").map(String::as_str), Some("o"));
    }

    // Another context: the KMS refuses to unwrap.
    let err = kms
        .decrypt_data_key(h.key_id(), h.wrapped_key(), &ctx("other"))
        .await
        .expect_err("context mismatch");
    assert!(matches!(err, Error::Kms(_)), "{err:?}");

    // A KMS answer naming another key is rejected.
    mock.0.lock().expect("lock").lie_about_key = true;
    let err = kms
        .decrypt_data_key(h.key_id(), h.wrapped_key(), &ctx("o"))
        .await
        .expect_err("other key");
    assert!(matches!(err, Error::WrongKey), "{err:?}");
}

/// The daemon behind the synchronous `KeyProvider` trait: `seal`/`open` take it like a local KEK;
/// inside a tokio runtime it answers with an error instead of blocking (or panicking), and it can
/// be dropped there.
#[test]
fn blocking_provider_is_a_key_provider() {
    let server = tokio::runtime::Runtime::new().expect("server runtime");
    let mock = Mock::default();
    let endpoint = server.block_on(start(mock.clone()));
    let tenancy = Tenancy::for_domain("0123456789abcdef0123456789abcdef").expect("tenancy");
    let kms = BlockingKmsProvider::connect(endpoint, tenancy).expect("connect");

    let pt: Vec<u8> = (0..40_000u32).map(|i| (i * 7).to_le_bytes()[0]).collect();
    let mut sealed = Vec::new();
    envelope::seal(
        &kms,
        KEY,
        &ctx("o"),
        &pt[..],
        &mut sealed,
        Backend::default(),
    )
    .expect("seal");
    let mut input = &sealed[..];
    let h = Header::read_from(&mut input).expect("header");
    assert_eq!(h.key_id(), KEY);
    assert_eq!(h.wrapped_key().scheme, WrapScheme::Kms);
    let mut out = Vec::new();
    envelope::open(&kms, &ctx("o"), &sealed[..], &mut out, Backend::default()).expect("open");
    assert!(out == pt);
    assert_eq!(
        mock.0.lock().expect("lock").seen.len(),
        2,
        "one call each way"
    );

    // The daemon refuses another context; the error comes back typed, nothing is written.
    let mut out = Vec::new();
    let err = envelope::open(
        &kms,
        &ctx("other"),
        &sealed[..],
        &mut out,
        Backend::default(),
    )
    .expect_err("context mismatch");
    assert!(matches!(err, Error::Kms(_) | Error::WrongKey), "{err:?}");
    assert!(out.is_empty());

    // Inside a runtime: a clear error, no call, no panic; dropping it there is fine too.
    let err = server
        .block_on(async { kms.generate_data_key(KEY, &ctx("o")) })
        .expect_err("inside a runtime");
    assert!(err.to_string().contains("inside a tokio runtime"), "{err}");
    assert_eq!(
        mock.0.lock().expect("lock").seen.len(),
        3,
        "no call from inside a runtime"
    );
    server.block_on(async move { drop(kms) });
}

/// The tokio APIs take the async provider directly: seal with `ObjectKey::generate_async` and an
/// `AsyncEncryptor`, open with `AsyncDecryptor::new` and `open_range_async`, each asking the
/// daemon; the futures are `Send` (they run on a spawned task); another context is refused.
#[tokio::test]
async fn tokio_apis_take_the_kms_provider() {
    use envelope::tokio_io::{AsyncDecryptor, AsyncEncryptor, open_range_async};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mock = Mock::default();
    let endpoint = start(mock.clone()).await;
    let tenancy = Tenancy::for_domain("0123456789abcdef0123456789abcdef").expect("tenancy");
    let kms = KmsProvider::connect(endpoint, tenancy)
        .await
        .expect("connect");
    let pt: Vec<u8> = (0..70_000u32).map(|i| (i * 13).to_le_bytes()[0]).collect();

    let key = ObjectKey::generate_async(&kms, KEY, &ctx("o"), ObjectKind::Single)
        .await
        .expect("generate");
    let mut enc =
        AsyncEncryptor::new(&key, &ctx("o"), Vec::new(), Backend::default()).expect("encryptor");
    enc.write_all(&pt).await.expect("write");
    enc.shutdown().await.expect("shutdown");
    let sealed = enc.into_inner();

    let (k, s) = (kms.clone(), sealed.clone());
    let opened = tokio::spawn(async move {
        let mut dec = AsyncDecryptor::new(&k, &ctx("o"), &s[..], Backend::default()).await?;
        let mut out = Vec::new();
        dec.read_to_end(&mut out).await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(out)
    })
    .await
    .expect("task")
    .expect("open");
    assert!(opened == pt);

    let mut range = Vec::new();
    let mut source = std::io::Cursor::new(sealed.clone());
    let len = open_range_async(
        &kms,
        &ctx("o"),
        &mut source,
        20_000..50_000,
        &mut range,
        Backend::default(),
    )
    .await
    .expect("range");
    assert_eq!(len, pt.len() as u64);
    assert!(range == pt[20_000..50_000]);
    assert_eq!(mock.0.lock().expect("lock").seen.len(), 3, "one call each");

    let err = AsyncDecryptor::new(&kms, &ctx("other"), &sealed[..], Backend::default())
        .await
        .err()
        .expect("context mismatch");
    assert!(matches!(err, Error::Kms(_)), "{err:?}");
}
