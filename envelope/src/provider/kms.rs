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
//! let tenancy = Tenancy::for_domain("0123456789abcdef0123456789abcdef")?;
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
use kms_proto::ErrorCode;
use kms_proto::key_id::FullKeyId;
pub use kms_proto::tenancy::{Tenancy, TenancyError};
use kms_proto::v1::key_management_service_client::KeyManagementServiceClient;
use kms_proto::v1::{
    DecryptRequest, DecryptResponse, GenerateDataKeyRequest, GenerateDataKeyResponse,
};
use tonic::transport::Channel;
use zeroize::Zeroize;

/// The kmsbox daemon as a source of data keys.
#[derive(Debug, Clone)]
pub struct KmsProvider {
    client: KeyManagementServiceClient<Channel>,
    /// Put on every call ([`Tenancy::request`]).
    tenancy: Tenancy,
}

fn kms_err(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Kms(Box::new(e))
}

/// A tenancy value that cannot travel as metadata is an [`Error::Kms`].
impl From<TenancyError> for Error {
    fn from(e: TenancyError) -> Error {
        kms_err(e)
    }
}

impl Error {
    /// The daemon's stable error code (`x-kms-error-code`) when this is an [`Error::Kms`] for a
    /// call the daemon refused with one.
    pub fn kms_error_code(&self) -> Option<ErrorCode> {
        match self {
            Error::Kms(e) => e
                .downcast_ref::<tonic::Status>()
                .and_then(ErrorCode::of_status),
            _ => None,
        }
    }
}

impl KmsProvider {
    /// A provider over an existing channel; `tenancy` goes on every call.
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
        let req = self.tenancy.request(generate_request(key_id, context));
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
        let req = self
            .tenancy
            .request(decrypt_request(key_id, wrapped, context)?);
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
/// let tenancy = Tenancy::for_domain("0123456789abcdef0123456789abcdef")?;
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

/// [`DATA_KEY_LEN`] as the request's field.
const DATA_KEY_BYTES: u32 = {
    assert!(DATA_KEY_LEN <= u32::MAX as usize);
    #[allow(clippy::cast_possible_truncation, reason = "checked just above")]
    let n = DATA_KEY_LEN as u32;
    n
};

fn generate_request(key_id: &str, context: &ObjectContext) -> GenerateDataKeyRequest {
    GenerateDataKeyRequest {
        key_id: key_id.to_owned(),
        number_of_bytes: DATA_KEY_BYTES,
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
    use kms_proto::metadata;

    const KEY: &str =
        "region1:0123456789abcdef0123456789abcdef:key/4f1cd4de-ab64-4807-920a-47fc42e7f0d0";

    #[test]
    fn requests_carry_tenancy_and_context() {
        let ctx = ObjectContext::from_pairs([("bucket", "b"), ("tenant", "t")]).expect("ctx");
        let t = Tenancy::for_domain("dom")
            .and_then(|t| t.with_region("region1"))
            .and_then(|t| t.with_token("secret"))
            .expect("tenancy");
        let req = t.request(generate_request(KEY, &ctx));
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
        let no_region = Tenancy::for_domain("dom").expect("tenancy");
        let req = no_region.request(());
        assert!(req.metadata().get(metadata::REGION).is_none());
        assert!(req.metadata().get(metadata::AUTHORIZATION).is_none());
    }

    #[test]
    fn refusals_keep_the_daemons_error_code() {
        let refused = kms_err(ErrorCode::KeyDisabled.status("key is disabled"));
        assert!(matches!(refused, Error::Kms(_)));
        assert_eq!(refused.kms_error_code(), Some(ErrorCode::KeyDisabled));
        assert_eq!(
            refused.kms_error_code().map(ErrorCode::as_str),
            Some("KMS.0209")
        );
        assert!(refused.to_string().contains("is disabled"), "{refused}");
        assert_eq!(
            kms_err(tonic::Status::unavailable("down")).kms_error_code(),
            None
        );
        assert_eq!(Error::WrongKey.kms_error_code(), None);
        let bad: Error = Tenancy::for_domain("d\n1")
            .expect_err("not metadata")
            .into();
        assert!(matches!(bad, Error::Kms(_)), "{bad:?}");
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
