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
            ErrorCode::InvalidKeyAlias,
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

/// The response headers and trailers of one raw gRPC call (trailers-only answers have none).
struct RawAnswer {
    headers: http::HeaderMap,
    trailers: http::HeaderMap,
}

impl RawAnswer {
    /// A status or error-code field, from the trailers or a trailers-only answer's headers.
    fn get(&self, name: &str) -> Option<&str> {
        self.trailers
            .get(name)
            .or_else(|| self.headers.get(name))
            .and_then(|v| v.to_str().ok())
    }
}

/// One gRPC call with a hand-made request body, over a fresh HTTP/2 connection.
async fn raw_call(
    addr: std::net::SocketAddr,
    path: &str,
    domain: &str,
    body: Vec<u8>,
) -> RawAnswer {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let (client, conn) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    #[allow(
        clippy::disallowed_methods,
        reason = "the connection task of a test client, dropped with the test"
    )]
    let driver = tokio::spawn(conn);
    let mut client = client.ready().await.expect("ready");
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("x-kms-domain-id", domain)
        .header("x-kms-request-id", "raw-call-1")
        .body(())
        .expect("request");
    let (resp, mut send) = client.send_request(req, false).expect("send");
    send.send_data(body.into(), true).expect("body");
    let resp = resp.await.expect("response");
    let (parts, mut recv) = resp.into_parts();
    while let Some(chunk) = recv.data().await {
        let chunk = chunk.expect("data");
        let _ = recv.flow_control().release_capacity(chunk.len());
    }
    let trailers = recv.trailers().await.expect("trailers").unwrap_or_default();
    driver.abort();
    RawAnswer {
        headers: parts.headers,
        trailers,
    }
}

/// A gRPC message frame: uncompressed flag, big-endian length, the bytes.
fn frame(message: &[u8]) -> Vec<u8> {
    let mut f = vec![0];
    f.extend_from_slice(&u32::try_from(message.len()).expect("small").to_be_bytes());
    f.extend_from_slice(message);
    f
}

#[tokio::test]
async fn undecodable_and_oversized_requests_get_stable_codes_and_are_audited() {
    let d = TestDaemon::start().await;
    let addr = d.server().local_addr();
    let path = "/kms.v1.KeyManagementService/CreateKey";
    let mut oversized = vec![0];
    oversized.extend_from_slice(&(5u32 << 20).to_be_bytes());
    // (rule, body, expected code)
    let cases = [
        (
            "invalid UTF-8 in a string field",
            frame(&[0x0a, 0x02, 0xff, 0xfe]),
            ErrorCode::InvalidArgument,
        ),
        (
            "a varint longer than ten bytes",
            frame(&[0x80; 11]),
            ErrorCode::InvalidArgument,
        ),
        (
            "a truncated length-delimited field",
            frame(&[0x0a, 0x05, b'a']),
            ErrorCode::InvalidArgument,
        ),
        (
            "a varint where a string is expected",
            frame(&[0x08, 0x01]),
            ErrorCode::InvalidArgument,
        ),
        ("no message at all", Vec::new(), ErrorCode::InvalidArgument),
        (
            "a frame announcing 5 MiB, over the 4 MiB limit",
            oversized,
            ErrorCode::PayloadTooLarge,
        ),
    ];
    for (rule, body, want) in &cases {
        let a = raw_call(addr, path, "alice", body.clone()).await;
        let status = a.get("grpc-status");
        assert_eq!(
            status,
            Some("3"),
            "{rule}: INVALID_ARGUMENT; message {:?}",
            a.get("grpc-message")
        );
        assert_eq!(a.get("x-kms-error-code"), Some(want.as_str()), "{rule}");
        assert_eq!(a.get("x-kms-request-id"), Some("raw-call-1"), "{rule}");
    }
    d.server().flush_audit().await;
    let rows = audit_rows(&d);
    let got: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["domain"].as_str().unwrap_or_default(),
                r["operation"].as_str().unwrap_or_default(),
                r["outcome"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    let want: Vec<(&str, &str, &str)> = cases
        .iter()
        .map(|(_, _, code)| ("alice", "CreateKey", code.as_str()))
        .collect();
    assert_eq!(got, want, "every refusal is audited");
    // A well-formed request on the same path still works.
    let ok = raw_call(addr, path, "alice", frame(&[0x0a, 0x01, b'a'])).await;
    assert_eq!(ok.get("grpc-status"), Some("0"));
}

/// Pins the 16 KiB header list limit (hyper's default was the same before it was set explicitly).
/// The refusal is HTTP 431 from the HTTP/2 layer: no handler, no error code, no audit entry.
#[tokio::test]
async fn request_headers_over_the_header_list_limit_are_not_served() {
    let d = TestDaemon::start().await;
    let mut t = d.tenant("alice").await;
    // Under the 16 KiB limit: served.
    let mut ok = t.req(pb::ListKeysRequest::default());
    ok.metadata_mut()
        .insert("x-padding", "a".repeat(8 * 1024).parse().expect("metadata"));
    t.client
        .list_keys(ok)
        .await
        .expect("8 KiB of headers is served");
    // Over it: refused before any handler runs, and the daemon goes on serving.
    let mut big = t.req(pb::ListKeysRequest::default());
    big.metadata_mut().insert(
        "x-padding",
        "a".repeat(20 * 1024).parse().expect("metadata"),
    );
    let e = t
        .client
        .list_keys(big)
        .await
        .expect_err("20 KiB of headers is refused");
    eprintln!("over the limit: {e:?}");
    let mut again = d.tenant("alice").await;
    again
        .client
        .list_keys(again.req(pb::ListKeysRequest::default()))
        .await
        .expect("served afterwards");
}
