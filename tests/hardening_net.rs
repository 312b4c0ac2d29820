//! Hardening (issue 9), request side: repeated tenancy metadata, reserved aliases, undecodable and
//! oversized requests, and the per-connection resource limits of the daemon.

use kms_proto::ErrorCode;
use kms_proto::v1 as pb;
use kmsbox_tests::{Tenant, TestDaemon, assert_refused};
use tonic::Code;
use tonic::metadata::MetadataValue;

const TENANTS: &str = "[[tenants]]\ndomain_id = \"alice\"\ntoken = \"alice-secret-token-1\"\n\
                       [[tenants]]\ndomain_id = \"bob\"\ntoken = \"bob-secret-token-22\"\n";

async fn with_tenants() -> TestDaemon {
    TestDaemon::start_with(|c, dir| {
        let p = dir.join("tenants.toml");
        std::fs::write(&p, TENANTS).expect("tenants file written");
        c.tenants = Some(p);
    })
    .await
}

fn audit_rows(d: &TestDaemon) -> Vec<serde_json::Value> {
    std::fs::read_to_string(d.data_dir().join("audit.jsonl"))
        .expect("audit log readable")
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
        .collect()
}

#[tokio::test]
async fn repeated_tenancy_metadata_is_refused_and_audited() {
    let d = with_tenants().await;
    let ep = d.endpoint();
    let alice = Tenant::connect(&ep, "", None, Some("alice-secret-token-1")).await;
    // (rule, header, the two values)
    let cases = [
        (
            "domain header twice: A then B",
            "x-kms-domain-id",
            "alice",
            "bob",
        ),
        (
            "authorization twice",
            "authorization",
            "Bearer alice-secret-token-1",
            "Bearer bob-secret-token-22",
        ),
        ("region twice", "x-kms-region", "r1", "r2"),
        ("request ID twice", "x-kms-request-id", "req-a", "req-b"),
    ];
    for (rule, header, first, second) in cases {
        eprintln!("case: {rule}");
        let mut c = alice.clone();
        let mut req = tonic::Request::new(pb::CreateKeyRequest::default());
        if header != "authorization" {
            req.metadata_mut().append(
                "authorization",
                MetadataValue::from_static("Bearer alice-secret-token-1"),
            );
        }
        req.metadata_mut()
            .append(header, first.parse().expect("metadata"));
        req.metadata_mut()
            .append(header, second.parse().expect("metadata"));
        let r = c.client.create_key(req).await;
        assert_refused(
            r,
            Code::InvalidArgument,
            ErrorCode::InvalidArgument,
            "repeated",
        );
    }
    d.server().flush_audit().await;
    let rows = audit_rows(&d);
    assert_eq!(
        rows.len(),
        cases.len(),
        "every refusal is audited: {rows:?}"
    );
    for r in &rows {
        assert_eq!(r["operation"], "CreateKey");
        assert_eq!(r["outcome"], ErrorCode::InvalidArgument.as_str());
    }
    assert!(
        d.server().keyring().key_count() == 0,
        "no key was created by any of them"
    );
}

#[tokio::test]
async fn default_alias_suffix_is_reserved_whatever_its_case_or_trailing_slash() {
    let d = TestDaemon::start().await;
    let mut t = d.tenant("alice").await;
    // (rule, alias)
    let cases = [
        ("upper case", "OBS/DEFAULT"),
        ("mixed case", "obs/Default"),
        ("trailing slash", "obs/default/"),
        ("doubled slash", "obs//default"),
        ("leading slash", "/obs/default"),
    ];
    for (rule, alias) in cases {
        eprintln!("case: {rule}");
        let r = t
            .client
            .create_key(t.req(pb::CreateKeyRequest {
                alias: alias.into(),
                ..Default::default()
            }))
            .await;
        assert_refused(
            r,
            Code::InvalidArgument,
            ErrorCode::InvalidArgument,
            "alias",
        );
    }
    let def = t
        .client
        .get_default_key(t.req(pb::GetDefaultKeyRequest {
            service: "obs".into(),
        }))
        .await
        .expect("default key")
        .into_inner()
        .metadata
        .expect("metadata");
    assert_eq!(def.alias, "obs/default");
    assert_eq!(d.server().keyring().key_count(), 1, "only the default key");
}
