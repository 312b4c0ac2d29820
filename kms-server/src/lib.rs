//! kmsbox's key management daemon: customer master keys per tenant (domain) and region, kept in
//! SQLite wrapped under a root key, served over gRPC (`kms.v1.KeyManagementService`).
//!
//! Layers, from the inside out:
//! - [`crypto`] and [`blob`]: key material, wrapping under the root key, the ciphertext blob format
//!   (see `FORMATS.md`); no I/O.
//! - [`integrity`]: the key store's record MACs and store MAC under the root key; no I/O.
//! - [`store`]: the [`store::KeyStore`] trait, its SQLite implementation and an in-memory one for
//!   tests.
//! - [`keyring`]: the KMS rules over an in-memory cache of the store: key lifecycle, the data
//!   path, request validation. No transport in it.
//! - [`auth`], [`audit`]: who is calling, and what they did.
//! - [`grpc`]: the gRPC edge, thin handlers over the keyring.
//! - [`http`]: the HTTP APIs served beside gRPC on the same address.
//! - [`caught`]: a handler's panic answered as the API's internal error (the OBS gateway's too).
//! - [`fleet`]: a fleet of daemons over one PostgreSQL store: opening it, following other
//!   daemons' changes.
//! - [`server`]: wiring, start-up and graceful shutdown; `main` only parses flags.
//! - [`admin`], [`faults`], [`clock`]: the test control plane (the `kms.admin.v1` service, injected
//!   faults, the virtual clock).
//! - [`offline`]: the offline commands on a stopped daemon's data folder (`rotate-root-key`,
//!   `add-store-macs`).
//!
//! Tests and embedders start the same server the binary runs:
//!
//! ```no_run
//! # async fn demo() -> Result<(), kms_server::error::StartupError> {
//! let dir = std::env::temp_dir().join("kmsbox-doc");
//! let server = kms_server::server::start(kms_server::server::Config::local(&dir)).await?;
//! println!("listening on {}", server.local_addr());
//! server.shutdown().await;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod admin;
pub mod audit;
pub mod auth;
pub mod blob;
pub mod caught;
pub mod clock;
pub mod crypto;
pub mod error;
pub mod faults;
pub mod fleet;
pub mod grpc;
pub mod http;
pub mod integrity;
pub mod json;
pub mod keyring;
pub mod listener;
pub mod offline;
pub mod seed;
pub mod server;
pub mod store;
