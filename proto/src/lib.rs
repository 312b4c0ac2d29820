//! Wire types of the kmsbox `kms.v1` gRPC API, the key-ID grammar, the caller's tenancy metadata
//! and the table of error codes.
//!
//! Everything that talks to the kmsbox daemon (the daemon itself, `kmsctl`, the envelope crate's KMS
//! provider, the OBS adapter) depends on this crate, so that the API and the one key-ID parser live
//! in a single place.
//!
//! ```
//! use kms_proto::key_id::KeyRef;
//! let k: KeyRef = "4f1cd4de-ab64-4807-920a-47fc42e7f0d0".parse().unwrap();
//! let full = k.resolve("region", "domainiddomainiddomainiddoma0001").unwrap();
//! assert_eq!(
//!     full.to_string(),
//!     "region:domainiddomainiddomainiddoma0001:key/4f1cd4de-ab64-4807-920a-47fc42e7f0d0"
//! );
//! ```
#![forbid(unsafe_code)]

pub mod codec;
pub mod error_code;
pub mod key_id;
pub mod metadata;
pub mod tenancy;

pub use error_code::ErrorCode;
pub use tenancy::Tenancy;

/// Generated code for package `kms.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("kms.v1");
}

/// Generated code for package `kms.admin.v1`: the test control plane (faults, the clock).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod admin {
    tonic::include_proto!("kms.admin.v1");
}

/// Generated code for package `kms.bench.v1`: the echo baseline of the benchmarks.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod bench {
    tonic::include_proto!("kms.bench.v1");
}

/// The encoded `FileDescriptorSet` of every service here, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/kms_descriptor.bin"));
