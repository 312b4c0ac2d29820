//! Key providers: where data keys come from and how they are wrapped.
//!
//! * [`LocalKek`]: a local key-encryption key, AES key wrap (RFC 3394) or key wrap with padding
//!   (RFC 5649), for offline use.
//! * `KmsProvider` (feature `kms`): the kmsbox daemon's `GenerateDataKey` / `Decrypt` over gRPC.
//!   It is asynchronous; use its methods to obtain a data key, then
//!   [`ObjectKey::new`](crate::ObjectKey::new) / [`ObjectKey::open`](crate::ObjectKey::open).
//! * `BlockingKmsProvider` (feature `kms`): the same daemon behind the synchronous
//!   [`KeyProvider`] trait, for callers without an async runtime.
//!
//! The tokio APIs take an [`AsyncKeyProvider`]: `KmsProvider`, and every [`KeyProvider`].

mod local;
pub use local::LocalKek;

#[cfg(feature = "kms")]
mod kms;
#[cfg(feature = "kms")]
pub use kms::{BlockingKmsProvider, KmsProvider, Tenancy, TenancyError};

use crate::context::ObjectContext;
use crate::error::Result;
use crate::header::WrappedKey;
use crate::key::DataKey;

/// A freshly generated data key together with its wrapped form.
#[derive(Debug)]
pub struct GeneratedKey {
    /// The plaintext data key.
    pub data_key: DataKey,
    /// The key ID to record in the header (for a KMS, the full key ID it resolved).
    pub key_id: String,
    /// The data key wrapped under that key.
    pub wrapped: WrappedKey,
}

/// A synchronous source of data keys.
pub trait KeyProvider {
    /// Generate a data key under `key_id`, bound to `context` where the provider supports it.
    fn generate_data_key(&self, key_id: &str, context: &ObjectContext) -> Result<GeneratedKey>;

    /// Unwrap the data key of an object whose header names `key_id`. A key the provider does not
    /// hold, or a wrapped key that does not verify, is [`Error::WrongKey`](crate::Error::WrongKey).
    fn decrypt_data_key(
        &self,
        key_id: &str,
        wrapped: &WrappedKey,
        context: &ObjectContext,
    ) -> Result<DataKey>;
}

/// An asynchronous source of data keys, which the tokio APIs take (feature `tokio`:
/// `tokio_io::AsyncDecryptor::new`, `tokio_io::open_range_async`), as do
/// [`ObjectKey::generate_async`] and [`ObjectKey::unwrap_with_async`].
///
/// Every synchronous [`KeyProvider`] is one (its calls complete at once), and so is the daemon's
/// `KmsProvider` (feature `kms`). The methods have their own names so that a type with both
/// traits in scope is never ambiguous.
///
/// [`ObjectKey::generate_async`]: crate::ObjectKey::generate_async
/// [`ObjectKey::unwrap_with_async`]: crate::ObjectKey::unwrap_with_async
pub trait AsyncKeyProvider {
    /// [`KeyProvider::generate_data_key`], awaited.
    fn generate_data_key_async(
        &self,
        key_id: &str,
        context: &ObjectContext,
    ) -> impl Future<Output = Result<GeneratedKey>> + Send;

    /// [`KeyProvider::decrypt_data_key`], awaited.
    fn decrypt_data_key_async(
        &self,
        key_id: &str,
        wrapped: &WrappedKey,
        context: &ObjectContext,
    ) -> impl Future<Output = Result<DataKey>> + Send;
}

impl<P: KeyProvider + Sync + ?Sized> AsyncKeyProvider for P {
    fn generate_data_key_async(
        &self,
        key_id: &str,
        context: &ObjectContext,
    ) -> impl Future<Output = Result<GeneratedKey>> + Send {
        std::future::ready(self.generate_data_key(key_id, context))
    }

    fn decrypt_data_key_async(
        &self,
        key_id: &str,
        wrapped: &WrappedKey,
        context: &ObjectContext,
    ) -> impl Future<Output = Result<DataKey>> + Send {
        std::future::ready(self.decrypt_data_key(key_id, wrapped, context))
    }
}
