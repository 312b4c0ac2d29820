//! Test-only helpers shared by the workspace's test suites, as `rustls-test` is for rustls. Never a
//! normal dependency of a shipped crate.
//!
//! [`scanning_alloc`]: a global allocator that scans every freed block for key bytes, for the
//! key-wipe tests of `envelope` and `kms-server`. [`sockets`]: the options of a socket that a server
//! running in the test's process accepted. [`nonce_grants`]: the race of several stores for one key
//! version's nonces, for the SQLite and PostgreSQL stores' tests.

pub mod nonce_grants;
pub mod scanning_alloc;
pub mod sockets;
