//! obs-gateway: a local OBS (and S3) HTTP endpoint. Unmodified OBS SDKs, boto3 and curl talk to
//! it; SSE-KMS requests are decided by `obs-adapter` against the kmsbox daemon, and SSE-KMS
//! objects are stored only as `envelope` ciphertext under a fresh data key per object.
//!
//! Modules: [`credentials`] (the access-key file), [`cors`] (bucket CORS rules), [`public_access`] (a bucket's public access block), [`auth`] (Signature V2 and V4), [`store`]
//! (files and SQLite metadata), [`xml`] (response documents), [`sse`] (the two SSE header
//! dialects), [`expiry`] (OBS's object expiry), [`lifecycle`] (bucket lifecycle rules), [`clock`] (the gateway's time: the wall's or the
//! daemon's), [`handler`] (the operations), [`server`] (accepting connections, wiring).
#![forbid(unsafe_code)]

pub mod auth;
pub mod checksum;
pub mod clock;
pub mod cors;
pub mod credentials;
pub mod expiry;
pub mod handler;
pub mod lifecycle;
pub mod object_lock;
pub mod public_access;
pub mod server;
pub mod sse;
pub mod store;
pub mod xml;
