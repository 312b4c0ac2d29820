#![doc = include_str!("../RULES.md")]
#![forbid(unsafe_code)]

pub mod decision;
pub mod default_encryption;
pub mod error;
pub mod facts;
pub mod fake;
pub mod grpc;
pub mod key_service;
pub mod policy;
pub mod sse_headers;

pub use decision::{
    AdapterConfig, Decision, KeyPolicy, ObsAdapter, ObsRequest, encryption_context,
    response_headers,
};
pub use default_encryption::DefaultEncryption;
pub use error::{AdapterError, ObsError, Place};
pub use facts::{BucketFacts, Caller, Encryption, Operation, StoredObject};
pub use fake::FakeKeyService;
pub use grpc::GrpcKeyService;
pub use key_service::{
    DataKey, EncryptionContext, KeyCreator, KeyInfo, KeyService, KeyServiceError, KeyState,
    SecretBytes, Tenancy,
};
pub use policy::{BucketPolicy, PolicyError, PolicyVerdict};
