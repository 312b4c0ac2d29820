//! A key provider backed by the kmsbox daemon: `GenerateDataKey` and `Decrypt` over gRPC.
//!
//! The tonic client is asynchronous, so [`KmsProvider`] offers `async` methods: obtain the key
//! there, then build an [`ObjectKey`](crate::ObjectKey) with
//! [`ObjectKey::new`](crate::ObjectKey::new) or [`ObjectKey::open`](crate::ObjectKey::open).
//! [`BlockingKmsProvider`] implements the synchronous [`KeyProvider`](super::KeyProvider) trait
//! over it, for callers without a runtime. The object context travels to the daemon as the KMS
//! encryption context, so the daemon itself refuses to unwrap under another context.
//!
//! ```no_run
//! # async fn demo() -> Result<(), envelope::Error> {
//! use envelope::provider::{KmsProvider, Tenancy};
//! use envelope::{Backend, Decryptor, Encryptor, Header, ObjectContext, ObjectKey, ObjectKind};
//! use std::io::Write;
//! let tenancy = Tenancy { domain_id: "0123456789abcdef0123456789abcdef".into(), region: None, token: None };
//! let kms = KmsProvider::connect("http://127.0.0.1:7443".into(), tenancy).await?;
//! let ctx = ObjectContext::new().with("bucket", "b")?.with("object-key", "k")?;
//! let key_id = "region1:0123456789abcdef0123456789abcdef:key/4f1cd4de-ab64-4807-920a-47fc42e7f0d0";
//!
//! // Seal.
//! let g = kms.generate_data_key(key_id, &ctx).await?;
//! let key = ObjectKey::new(ObjectKind::Single, g.data_key, &g.key_id, g.wrapped)?;
//! let mut enc = Encryptor::new(&key, &ctx, Vec::new(), Backend::default())?;
//! enc.write_all(b"data")?;
//! let sealed = enc.finish()?;
//!
//! // Open: read the header, ask the daemon for the data key, check the header, stream the body.
//! let mut input = &sealed[..];
//! let header = Header::read_from(&mut input)?;
//! let dk = kms.decrypt_data_key(header.key_id(), header.wrapped_key(), &ctx).await?;
//! let key = ObjectKey::open(header, dk)?;
//! let mut plain = Vec::new();
//! Decryptor::with_key(&key, &ctx, input, Backend::default())?.copy_to(&mut plain)?;
//! # Ok(()) }
//! ```

use super::GeneratedKey;
use crate::context::ObjectContext;
use crate::error::{Error, Result};
use crate::header::{WrapScheme, WrappedKey};
use crate::key::{DATA_KEY_LEN, DataKey};
use kms_proto::key_id::FullKeyId;
use kms_proto::metadata;
use kms_proto::v1::key_management_service_client::KeyManagementServiceClient;
use kms_proto::v1::{
    DecryptRequest, DecryptResponse, GenerateDataKeyRequest, GenerateDataKeyResponse,
};
use std::fmt;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use zeroize::Zeroize;

/// Who the provider acts for: sent as request metadata on every call.
#[derive(Clone, PartialEq, Eq)]
pub struct Tenancy {
    /// `x-kms-domain-id`: the tenant's domain ID.
    pub domain_id: String,
    /// `x-kms-region`; the daemon's own region when `None`.
    pub region: Option<String>,
    /// `authorization: Bearer <token>`, when the daemon runs with a tenants file.
    pub token: Option<String>,
}

impl fmt::Debug for Tenancy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tenancy")
            .field("domain_id", &self.domain_id)
            .field("region", &self.region)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The kmsbox daemon as a source of data keys.
#[derive(Debug, Clone)]
pub struct KmsProvider {
    client: KeyManagementServiceClient<Channel>,
    tenancy: Tenancy,
}

fn kms_err(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Kms(Box::new(e))
}

impl KmsProvider {
    /// A provider over an existing channel.
    pub fn new(channel: Channel, tenancy: Tenancy) -> KmsProvider {
        KmsProvider {
            client: KeyManagementServiceClient::new(channel),
            tenancy,
        }
    }

    /// Connect to the daemon at `endpoint` (e.g. `http://127.0.0.1:7443`).
    pub async fn connect(endpoint: String, tenancy: Tenancy) -> Result<KmsProvider> {
        let channel = Channel::from_shared(endpoint)
            .map_err(kms_err)?
            .connect()
            .await
            .map_err(kms_err)?;
        Ok(KmsProvider::new(channel, tenancy))
    }

    /// `GenerateDataKey` for 32 bytes under `key_id`, with `context` as encryption context.
    pub async fn generate_data_key(
        &self,
        key_id: &str,
        context: &ObjectContext,
    ) -> Result<GeneratedKey> {
        let req = request(&self.tenancy, generate_request(key_id, context))?;
        let resp = self
            .client
            .clone()
            .generate_data_key(req)
            .await
            .map_err(kms_err)?;
        generated_key(resp.into_inner())
    }

    /// `Decrypt` of a header's wrapped key; `key_id` (from the header) must be the key the daemon
    /// reports having used.
    pub async fn decrypt_data_key(
        &self,
        key_id: &str,
        wrapped: &WrappedKey,
        context: &ObjectContext,
    ) -> Result<DataKey> {
        let req = request(&self.tenancy, decrypt_request(key_id, wrapped, context)?)?;
        let resp = self.client.clone().decrypt(req).await.map_err(kms_err)?;
        decrypted_key(key_id, resp.into_inner())
    }
}

impl super::AsyncKeyProvider for KmsProvider {
    fn generate_data_key_async(
        &self,
        key_id: &str,
        context: &ObjectContext,
    ) -> impl Future<Output = Result<GeneratedKey>> + Send {
        self.generate_data_key(key_id, context)
    }

    fn decrypt_data_key_async(
        &self,
        key_id: &str,
        wrapped: &WrappedKey,
        context: &ObjectContext,
    ) -> impl Future<Output = Result<DataKey>> + Send {
        self.decrypt_data_key(key_id, wrapped, context)
    }
}

/// The daemon as a synchronous [`KeyProvider`](super::KeyProvider), for storage engines and tools
/// without an async runtime: [`seal`](crate::seal), [`open`](crate::open),
/// [`Decryptor::new`](crate::Decryptor::new), [`open_range`](crate::open_range) and
/// [`ObjectKey::generate`](crate::ObjectKey::generate) take it like a [`LocalKek`](super::LocalKek).
///
/// It owns a single-threaded tokio runtime and blocks on each call. Called from inside a tokio
/// runtime it does not block (that would stall the runtime): it returns [`Error::Kms`], and async
/// code should use [`KmsProvider`]'s methods instead.
///
/// ```no_run
/// use envelope::provider::{BlockingKmsProvider, Tenancy};
/// use envelope::{Backend, ObjectContext};
/// let tenancy = Tenancy { domain_id: "0123456789abcdef0123456789abcdef".into(), region: None, token: None };
/// let kms = BlockingKmsProvider::connect("http://127.0.0.1:7443", tenancy)?;
/// let ctx = ObjectContext::new().with("bucket", "b")?.with("object-key", "k")?;
/// let key_id = "region1:0123456789abcdef0123456789abcdef:key/4f1cd4de-ab64-4807-920a-47fc42e7f0d0";
/// let mut sealed = Vec::new();
/// envelope::seal(&kms, key_id, &ctx, &b"data"[..], &mut sealed, Backend::default())?;
/// let mut plain = Vec::new();
/// envelope::open(&kms, &ctx, &sealed[..], &mut plain, Backend::default())?;
/// # Ok::<(), envelope::Error>(())
/// ```
#[derive(Debug)]
pub struct BlockingKmsProvider {
    /// Always `Some` until drop, which takes it out to shut it down without blocking.
    runtime: Option<tokio::runtime::Runtime>,
    inner: KmsProvider,
}

impl BlockingKmsProvider {
    /// Connect to the daemon at `endpoint` (e.g. `http://127.0.0.1:7443`).
    pub fn connect(endpoint: impl Into<String>, tenancy: Tenancy) -> Result<BlockingKmsProvider> {
        refuse_inside_runtime()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(kms_err)?;
        let inner = runtime.block_on(KmsProvider::connect(endpoint.into(), tenancy))?;
        Ok(BlockingKmsProvider {
            runtime: Some(runtime),
            inner,
        })
    }

    fn block_on<T>(&self, call: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        refuse_inside_runtime()?;
        match &self.runtime {
            Some(rt) => rt.block_on(call),
            None => Err(Error::Kms("the provider's runtime has shut down".into())),
        }
    }
}

/// Blocking a runtime's thread on another runtime panics in tokio; refuse with an error instead.
fn refuse_inside_runtime() -> Result<()> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::Kms(
            "BlockingKmsProvider called from inside a tokio runtime; use KmsProvider's async methods"
                .into(),
        ));
    }
    Ok(())
}

impl super::KeyProvider for BlockingKmsProvider {
    fn generate_data_key(&self, key_id: &str, context: &ObjectContext) -> Result<GeneratedKey> {
        self.block_on(self.inner.generate_data_key(key_id, context))
    }

    fn decrypt_data_key(
        &self,
        key_id: &str,
        wrapped: &WrappedKey,
        context: &ObjectContext,
    ) -> Result<DataKey> {
        self.block_on(self.inner.decrypt_data_key(key_id, wrapped, context))
    }
}

impl Drop for BlockingKmsProvider {
    /// Dropping a runtime blocks until its tasks stop, which tokio refuses (panics) inside another
    /// runtime; shutting it down in the background never blocks.
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Wrap a message with the tenancy metadata.
fn request<T>(tenancy: &Tenancy, msg: T) -> Result<tonic::Request<T>> {
    let mut req = tonic::Request::new(msg);
    let md = req.metadata_mut();
    let value = |s: &str| -> Result<MetadataValue<_>> {
        s.parse()
            .map_err(|_| Error::Kms("tenancy value is not valid metadata".into()))
    };
    md.insert(metadata::DOMAIN_ID, value(&tenancy.domain_id)?);
    if let Some(region) = &tenancy.region {
        md.insert(metadata::REGION, value(region)?);
    }
    if let Some(token) = &tenancy.token {
        md.insert(metadata::AUTHORIZATION, value(&format!("Bearer {token}"))?);
    }
    Ok(req)
}

fn generate_request(key_id: &str, context: &ObjectContext) -> GenerateDataKeyRequest {
    GenerateDataKeyRequest {
        key_id: key_id.to_owned(),
        number_of_bytes: DATA_KEY_LEN as u32,
        encryption_context: context
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    }
}

fn decrypt_request(
    key_id: &str,
    wrapped: &WrappedKey,
    context: &ObjectContext,
) -> Result<DecryptRequest> {
    if wrapped.scheme != WrapScheme::Kms {
        return Err(Error::WrongKey);
    }
    Ok(DecryptRequest {
        ciphertext_blob: wrapped.bytes.clone(),
        encryption_context: context
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        key_id: key_id.to_owned(),
    })
}

/// Check a `GenerateDataKey` answer: a full key ID, 32 plaintext bytes, a blob.
fn generated_key(mut resp: GenerateDataKeyResponse) -> Result<GeneratedKey> {
    let result = (|| {
        resp.key_id.parse::<FullKeyId>().map_err(kms_err)?;
        if resp.ciphertext_blob.is_empty() {
            return Err(Error::Kms("empty ciphertext blob".into()));
        }
        let data_key = DataKey::from_slice(&resp.plaintext)?;
        Ok(GeneratedKey {
            data_key,
            key_id: std::mem::take(&mut resp.key_id),
            wrapped: WrappedKey {
                scheme: WrapScheme::Kms,
                bytes: std::mem::take(&mut resp.ciphertext_blob),
            },
        })
    })();
    resp.plaintext.zeroize();
    result
}

/// Check a `Decrypt` answer: the key the daemon used must be the header's.
fn decrypted_key(key_id: &str, mut resp: DecryptResponse) -> Result<DataKey> {
    let result = if resp.key_id != key_id {
        Err(Error::WrongKey)
    } else {
        DataKey::from_slice(&resp.plaintext).map_err(|_| Error::WrongKey)
    };
    resp.plaintext.zeroize();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "region1:0123456789abcdef0123456789abcdef:key/4f1cd4de-ab64-4807-920a-47fc42e7f0d0";

    #[test]
    fn requests_carry_tenancy_and_context() {
        let ctx = ObjectContext::from_pairs([("bucket", "b"), ("tenant", "t")]).expect("ctx");
        let t = Tenancy {
            domain_id: "dom".into(),
            region: Some("region1".into()),
            token: Some("secret".into()),
        };
        let req = request(&t, generate_request(KEY, &ctx)).expect("request");
        assert_eq!(
            req.metadata().get(metadata::DOMAIN_ID).expect("domain"),
            "dom"
        );
        assert_eq!(
            req.metadata().get(metadata::REGION).expect("region"),
            "region1"
        );
        assert_eq!(
            req.metadata().get(metadata::AUTHORIZATION).expect("auth"),
            "Bearer secret"
        );
        let msg = req.into_inner();
        assert_eq!(msg.number_of_bytes, 32);
        assert_eq!(msg.key_id, KEY);
        assert_eq!(msg.encryption_context.len(), 2);
        assert_eq!(msg.encryption_context["bucket"], "b");
        assert!(!format!("{t:?}").contains("secret"));
        let no_region = Tenancy {
            domain_id: "dom".into(),
            region: None,
            token: None,
        };
        let req = request(&no_region, ()).expect("request");
        assert!(req.metadata().get(metadata::REGION).is_none());
        assert!(req.metadata().get(metadata::AUTHORIZATION).is_none());
    }

    #[test]
    fn decrypt_request_requires_a_kms_blob() {
        let ctx = ObjectContext::new();
        let kw = WrappedKey {
            scheme: WrapScheme::AesKw,
            bytes: vec![1; 40],
        };
        assert!(matches!(
            decrypt_request(KEY, &kw, &ctx),
            Err(Error::WrongKey)
        ));
        let blob = WrappedKey {
            scheme: WrapScheme::Kms,
            bytes: vec![1; 90],
        };
        let req = decrypt_request(KEY, &blob, &ctx).expect("request");
        assert_eq!(req.key_id, KEY);
        assert_eq!(req.ciphertext_blob, vec![1; 90]);
    }

    #[test]
    fn responses_are_validated() {
        let good = GenerateDataKeyResponse {
            key_id: KEY.into(),
            plaintext: vec![5; 32],
            ciphertext_blob: vec![6; 80],
            key_version: 1,
        };
        let g = generated_key(good.clone()).expect("good");
        assert_eq!(g.key_id, KEY);
        assert_eq!(g.wrapped.scheme, WrapScheme::Kms);
        let short = GenerateDataKeyResponse {
            plaintext: vec![5; 16],
            ..good.clone()
        };
        assert!(generated_key(short).is_err());
        let bad_id = GenerateDataKeyResponse {
            key_id: "not-a-key".into(),
            ..good.clone()
        };
        assert!(generated_key(bad_id).is_err());
        let no_blob = GenerateDataKeyResponse {
            ciphertext_blob: vec![],
            ..good
        };
        assert!(generated_key(no_blob).is_err());

        let ok = DecryptResponse {
            key_id: KEY.into(),
            plaintext: vec![5; 32],
            key_version: 1,
        };
        assert!(decrypted_key(KEY, ok.clone()).is_ok());
        let other = DecryptResponse {
            key_id:
                "region1:0123456789abcdef0123456789abcdef:key/00000000-ab64-4807-920a-47fc42e7f0d0"
                    .into(),
            ..ok
        };
        assert!(matches!(decrypted_key(KEY, other), Err(Error::WrongKey)));
    }
}
