//! One test module per rule of the crate docs (RULES.md), named after the rule; each rule's tests
//! are named after it too. The tables are named case structs, one row per case.
#![allow(clippy::unwrap_used)]
#![allow(
    clippy::disallowed_methods,
    reason = "tests may spawn tasks; the workspace bans tokio::spawn outside tests"
)]

#[path = "../common/mod.rs"]
mod common;

mod data_keys;
mod rule_01_sse_header;
mod rule_02_key_id_forms;
mod rule_03_default_key;
mod rule_04_service_keys;
mod rule_05_key_states;
mod rule_06_where_rules_apply;
mod rule_07_bucket_default;
mod rule_08_bucket_policies;
mod rule_09_cross_tenant;
mod rule_10_response_headers;
mod rule_11_error_documents;

use std::sync::Arc;

use common::*;
use http::{HeaderMap, HeaderValue};
use kms_proto::key_id::FullKeyId;
use obs_adapter::{
    AdapterConfig, AdapterError, BucketFacts, BucketPolicy, Decision, DefaultEncryption,
    Encryption, FakeKeyService, KeyPolicy, KeyState, ObsAdapter, ObsRequest, Operation,
    PolicyVerdict, StoredObject,
};

const SSE: &str = "x-obs-server-side-encryption";
const KEY: &str = "x-obs-server-side-encryption-kms-key-id";

/// What a case expects of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want<'a> {
    /// Accepted, stored in plaintext, no SSE response headers.
    Plaintext,
    /// Accepted as SSE-KMS under this full key ID (`"default"`: the case's default key), with
    /// both SSE response headers.
    Kms(&'a str),
    /// Refused with this HTTP status and OBS code, the message containing `part`.
    Refused {
        status: u16,
        code: &'static str,
        part: &'a str,
    },
}

/// [`Want::Refused`], short for the tables.
fn refused<'a>(status: u16, code: &'static str, part: &'a str) -> Want<'a> {
    Want::Refused { status, code, part }
}

/// Checks a decision against the case's expectation.
fn check(name: &str, got: &Result<Decision, AdapterError>, want: &Want<'_>, default_key: &str) {
    match (got, want) {
        (Ok(d), Want::Plaintext) => {
            assert_eq!(d.encryption, Encryption::Plaintext, "{name}");
            assert!(d.response_headers.is_empty(), "{name}");
        }
        (Ok(d), Want::Kms(key)) => {
            let key = if *key == "default" { default_key } else { key };
            assert_eq!(
                d.encryption.key_id().map(ToString::to_string).as_deref(),
                Some(key),
                "{name}"
            );
            assert_eq!(header_key_id(d).as_deref(), Some(key), "{name}");
            assert_eq!(d.response_headers.get(SSE).unwrap(), "kms", "{name}");
        }
        (
            Err(e),
            Want::Refused {
                status,
                code: c,
                part,
            },
        ) => {
            assert_eq!(code(e), (*status, *c), "{name}: {e}");
            assert!(e.to_string().contains(part), "{name}: {e:?} lacks {part:?}");
        }
        (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
    }
}
