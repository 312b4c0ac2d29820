#![doc = include_str!("../RULES.md")]
#![forbid(unsafe_code)]

pub mod decision;
pub mod default_encryption;
pub mod error;
pub mod facts;
pub mod kms;
pub mod policy;
pub mod sse_headers;
pub mod vocab;

pub use decision::{
    AdapterConfig, Decision, KeyPolicy, ObsAdapter, ObsRequest, encryption_context,
    response_headers,
};
pub use default_encryption::DefaultEncryption;
pub use error::{AdapterError, ObsError, Place};
pub use facts::{BucketFacts, Encryption, StoredObject};
#[cfg(feature = "test-support")]
pub use kms::fake::FakeKeyService;
pub use kms::grpc::GrpcKeyService;
pub use kms::{
    DataKey, EncryptionContext, KeyCreator, KeyInfo, KeyScope, KeyService, KeyServiceError,
    KeyState, SecretBytes,
};
pub use policy::{BucketPolicy, PolicyError, PolicyVerdict};
pub use vocab::{Caller, Operation};
