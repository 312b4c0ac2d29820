//! Hardening (issue 9), request side: repeated tenancy metadata, reserved aliases, undecodable and
//! oversized requests, the messages of every RPC cut and retyped, and the per-connection resource
//! limits of the daemon.

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
    /// The response's DATA, the message frame of an answered call.
    data: Vec<u8>,
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
    raw_call_with(addr, path, domain, &[], vec![body]).await
}

/// One gRPC call over a fresh HTTP/2 connection, with `extra` headers and the body sent as
/// `chunks`, one DATA frame each.
async fn raw_call_with(
    addr: std::net::SocketAddr,
    path: &str,
    domain: &str,
    extra: Headers<'_>,
    chunks: Vec<Vec<u8>>,
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
    let mut req = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("x-kms-domain-id", domain)
        .header("x-kms-request-id", "raw-call-1");
    for (name, value) in extra {
        req = req.header(*name, *value);
    }
    let req = req.body(()).expect("request");
    let (resp, mut send) = client.send_request(req, false).expect("send");
    let last = chunks.len().saturating_sub(1);
    if chunks.is_empty() {
        send.send_data(Vec::new().into(), true).expect("body");
    }
    for (i, chunk) in chunks.into_iter().enumerate() {
        send.send_data(chunk.into(), i == last).expect("body");
        tokio::task::yield_now().await;
    }
    let resp = resp.await.expect("response");
    let (parts, mut recv) = resp.into_parts();
    let mut data = Vec::new();
    while let Some(chunk) = recv.data().await {
        let chunk = chunk.expect("data");
        let _ = recv.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    let trailers = recv.trailers().await.expect("trailers").unwrap_or_default();
    driver.abort();
    RawAnswer {
        headers: parts.headers,
        trailers,
        data,
    }
}

/// A gRPC message frame: uncompressed flag, big-endian length, the bytes.
fn frame(message: &[u8]) -> Vec<u8> {
    let mut f = vec![0];
    f.extend_from_slice(&u32::try_from(message.len()).expect("small").to_be_bytes());
    f.extend_from_slice(message);
    f
}

/// A frame's prefix announcing 5 MiB, over the default 4 MiB limit, and nothing behind it.
fn oversized_prefix() -> Vec<u8> {
    let mut prefix = vec![0];
    prefix.extend_from_slice(&(5u32 << 20).to_be_bytes());
    prefix
}

/// Extra request headers.
type Headers<'a> = &'a [(&'a str, &'a str)];

#[tokio::test]
async fn undecodable_and_oversized_requests_get_stable_codes_and_are_audited() {
    let d = TestDaemon::start().await;
    let addr = d.server().local_addr();
    let oversized = oversized_prefix();
    let mut compressed = frame(&[0x0a, 0x01, b'a']);
    compressed[0] = 1;
    let mut unknown_flag = frame(&[0x0a, 0x01, b'a']);
    unknown_flag[0] = 0x80;
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
            "a frame cut short",
            frame(&[0x0a, 0x01, b'a'])[..6].to_vec(),
            ErrorCode::InvalidArgument,
        ),
        (
            "a second message after the first",
            [frame(&[0x0a, 0x01, b'a']), frame(&[0x0a, 0x01, b'b'])].concat(),
            ErrorCode::InvalidArgument,
        ),
        (
            "a message flagged compressed",
            compressed,
            ErrorCode::InvalidArgument,
        ),
        (
            "a frame flag that is neither 0 nor 1",
            unknown_flag,
            ErrorCode::InvalidArgument,
        ),
        (
            "a frame announcing 5 MiB, over the 4 MiB limit",
            oversized,
            ErrorCode::PayloadTooLarge,
        ),
    ];
    // A management RPC and a data-path one: every RPC of the service is framed the same way.
    let rpcs = [("CreateKey", "alice"), ("GenerateDataKey", "bob")];
    for (rpc, domain) in rpcs {
        let path = format!("/kms.v1.KeyManagementService/{rpc}");
        for (rule, body, want) in &cases {
            let a = raw_call(addr, &path, domain, body.clone()).await;
            let status = a.get("grpc-status");
            assert_eq!(
                status,
                Some("3"),
                "{rpc}, {rule}: INVALID_ARGUMENT; message {:?}",
                a.get("grpc-message")
            );
            assert_eq!(
                a.get("x-kms-error-code"),
                Some(want.as_str()),
                "{rpc}, {rule}"
            );
            assert_eq!(
                a.get("x-kms-request-id"),
                Some("raw-call-1"),
                "{rpc}, {rule}"
            );
            assert!(a.data.is_empty(), "{rpc}, {rule}: no message in a refusal");
        }
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
    let want: Vec<(&str, &str, &str)> = rpcs
        .iter()
        .flat_map(|(rpc, domain)| {
            cases
                .iter()
                .map(move |(_, _, code)| (*domain, *rpc, code.as_str()))
        })
        .collect();
    assert_eq!(got, want, "every refusal is audited");
    assert_eq!(d.server().keyring().key_count(), 0, "nothing was created");
    // A well-formed request on the same path still works.
    let ok = raw_call(
        addr,
        "/kms.v1.KeyManagementService/CreateKey",
        "alice",
        frame(&[0x0a, 0x01, b'a']),
    )
    .await;
    assert_eq!(ok.get("grpc-status"), Some("0"));
}

/// The admin API (`kms.admin.v1.Admin`) reads its requests by the same rules, after its token.
#[tokio::test]
async fn undecodable_admin_requests_are_refused_and_audited_after_the_admin_token() {
    const TOKEN: &str = "admin-secret-token-0001";
    let d = TestDaemon::start_with(|c, _| {
        c.admin_token = Some(kms_server::admin::AdminToken::new(TOKEN.into()).expect("token"));
    })
    .await;
    let addr = d.server().local_addr();
    let bearer = format!("Bearer {TOKEN}");
    let admin: Headers<'_> = &[("authorization", &bearer)];
    let stranger: Headers<'_> = &[("authorization", "Bearer not-the-admin-token-01")];
    let oversized = oversized_prefix();
    // (rule, extra headers, body, grpc-status, error code)
    let cases: [(&str, Headers<'_>, Vec<u8>, &str, ErrorCode); 7] = [
        (
            "a varint longer than ten bytes",
            admin,
            frame(&[0x80; 11]),
            "3",
            ErrorCode::InvalidArgument,
        ),
        (
            "a varint where the rule (a message) is expected",
            admin,
            frame(&[0x08, 0x01]),
            "3",
            ErrorCode::InvalidArgument,
        ),
        (
            "a second message after the first",
            admin,
            [frame(&[]), frame(&[])].concat(),
            "3",
            ErrorCode::InvalidArgument,
        ),
        (
            "no message at all",
            admin,
            Vec::new(),
            "3",
            ErrorCode::InvalidArgument,
        ),
        (
            "a frame announcing 5 MiB, over the 4 MiB limit",
            admin,
            oversized,
            "3",
            ErrorCode::PayloadTooLarge,
        ),
        (
            "no token: the token's refusal, not the message's",
            &[],
            frame(&[0x80; 11]),
            "16",
            ErrorCode::Unauthenticated,
        ),
        (
            "a wrong token: the token's refusal",
            stranger,
            frame(&[0x80; 11]),
            "16",
            ErrorCode::Unauthenticated,
        ),
    ];
    for (rule, extra, body, status, code) in &cases {
        let a = raw_call_with(
            addr,
            "/kms.admin.v1.Admin/AddFault",
            "",
            extra,
            vec![body.clone()],
        )
        .await;
        assert_eq!(
            a.get("grpc-status"),
            Some(*status),
            "{rule}: message {:?}",
            a.get("grpc-message")
        );
        assert_eq!(a.get("x-kms-error-code"), Some(code.as_str()), "{rule}");
        assert!(a.data.is_empty(), "{rule}: no message in a refusal");
    }
    d.server().flush_audit().await;
    let got: Vec<(String, String)> = audit_rows(&d)
        .iter()
        .map(|r| {
            (
                r["operation"].as_str().unwrap_or_default().to_owned(),
                r["outcome"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = cases
        .iter()
        .map(|(_, _, _, _, code)| ("Admin.AddFault".to_owned(), code.as_str().to_owned()))
        .collect();
    assert_eq!(got, want, "every refusal is audited");
    // Nothing was added, and a well-formed call still works: no rules to list.
    let listed = raw_call_with(
        addr,
        "/kms.admin.v1.Admin/ListFaults",
        "",
        admin,
        vec![frame(&[])],
    )
    .await;
    assert_eq!(listed.get("grpc-status"), Some("0"));
    assert_eq!(listed.data, frame(&[]), "an empty list of rules");
}

#[tokio::test]
async fn a_message_split_over_data_frames_is_one_request() {
    let d = TestDaemon::start().await;
    let addr = d.server().local_addr();
    // GenerateRandom { number_of_bytes: 32 }, its frame cut inside the prefix and the message.
    let whole = frame(&[0x08, 32]);
    let chunks = vec![
        whole[..2].to_vec(),
        whole[2..6].to_vec(),
        whole[6..].to_vec(),
    ];
    let a = raw_call_with(
        addr,
        "/kms.v1.KeyManagementService/GenerateRandom",
        "alice",
        &[],
        chunks,
    )
    .await;
    assert_eq!(
        a.get("grpc-status"),
        Some("0"),
        "{:?}",
        a.get("grpc-message")
    );
    assert_eq!(
        a.headers.get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/grpc"[..])
    );
    assert_eq!(a.get("x-kms-request-id"), Some("raw-call-1"));
    // One frame: uncompressed, its length, and the response message (field 1, 32 bytes).
    assert_eq!(a.data.len(), 5 + 2 + 32);
    assert_eq!(&a.data[..7], &[0, 0, 0, 0, 34, 0x0a, 32]);
}

#[tokio::test]
async fn compressed_requests_and_unknown_methods_are_unimplemented() {
    let d = TestDaemon::start().await;
    let addr = d.server().local_addr();
    let body = frame(&[0x08, 32]);
    // (rule, path, extra headers, grpc-status)
    let cases: [(&str, &str, Headers<'_>, &str); 5] = [
        (
            "gzip, which the service does not accept",
            "/kms.v1.KeyManagementService/GenerateRandom",
            &[("grpc-encoding", "gzip")],
            "12",
        ),
        (
            "identity, which is no compression",
            "/kms.v1.KeyManagementService/GenerateRandom",
            &[("grpc-encoding", "identity")],
            "0",
        ),
        (
            "a method the service does not have",
            "/kms.v1.KeyManagementService/Nope",
            &[],
            "12",
        ),
        (
            "a method named in the wrong case",
            "/kms.v1.KeyManagementService/generateRandom",
            &[],
            "12",
        ),
        (
            "a method the admin service does not have",
            "/kms.admin.v1.Admin/Nope",
            &[],
            "12",
        ),
    ];
    for (rule, path, extra, want) in cases {
        let a = raw_call_with(addr, path, "alice", extra, vec![body.clone()]).await;
        assert_eq!(
            a.get("grpc-status"),
            Some(want),
            "{rule}: {:?}",
            a.get("grpc-message")
        );
    }
    let gzip = raw_call_with(
        addr,
        "/kms.v1.KeyManagementService/GenerateRandom",
        "alice",
        &[("grpc-encoding", "gzip")],
        vec![body],
    )
    .await;
    assert_eq!(gzip.get("grpc-accept-encoding"), Some("identity"));
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

/// The top-level fields of an encoded protobuf message: (field number, wire type, value bytes:
/// the varint's bytes or the length-delimited field's contents). `None` if it does not parse.
fn wire_fields(mut m: &[u8]) -> Option<Vec<(u64, u8, Vec<u8>)>> {
    fn varint(m: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = m.split_first()?;
            *m = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    let mut fields = Vec::new();
    while !m.is_empty() {
        let key = varint(&mut m)?;
        let wire = u8::try_from(key & 7).ok()?;
        let value = match wire {
            0 => varint(&mut m)?.to_le_bytes().to_vec(),
            2 => {
                let n = usize::try_from(varint(&mut m)?).ok()?;
                let (v, rest) = (m.get(..n)?, m.get(n..)?);
                m = rest;
                v.to_vec()
            }
            _ => return None,
        };
        fields.push((key >> 3, wire, value));
    }
    Some(fields)
}

/// `fields` encoded again, with field `index`'s value replaced: a length-delimited field by
/// `bytes`, a varint by `number`.
fn with_field(fields: &[(u64, u8, Vec<u8>)], index: usize, bytes: &[u8], number: u64) -> Vec<u8> {
    fn put_varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push(u8::try_from(v & 0x7f).expect("7 bits") | 0x80);
            v >>= 7;
        }
        out.push(u8::try_from(v).expect("under 0x80"));
    }
    let mut out = Vec::new();
    for (i, (number_of_field, wire, value)) in fields.iter().enumerate() {
        put_varint(&mut out, (number_of_field << 3) | u64::from(*wire));
        if *wire == 0 {
            let v = if i == index {
                number
            } else {
                u64::from_le_bytes(value.as_slice().try_into().expect("8 bytes"))
            };
            put_varint(&mut out, v);
        } else {
            let v = if i == index { bytes } else { value.as_slice() };
            put_varint(&mut out, v.len() as u64);
            out.extend_from_slice(v);
        }
    }
    out
}

/// Bad input of every shape gets a stable code, never INTERNAL or UNKNOWN, and a refusal stores
/// nothing: each RPC's valid message cut at about 20 places, rotated at as many, and each of
/// its top-level fields given other values (a string: multibyte text over every limit, NUL,
/// empty, 64 KiB, invalid UTF-8; a number: 0, 1, 2^31, 2^32, u64::MAX). Every refusal carries a
/// code of the table in `x-kms-error-code`; a refused call leaves the tenant's keys as they
/// were (aliases, states, versions, rotation).
#[tokio::test]
async fn cut_rotated_and_retyped_messages_of_every_rpc_get_stable_codes_and_store_nothing() {
    use tonic_prost::prost::Message as _;
    let d = TestDaemon::start().await;
    let addr = d.server().local_addr();
    let mut t = d.tenant("alice").await;
    let made = t
        .client
        .create_key(t.req(pb::CreateKeyRequest {
            alias: "sweep".into(),
            description: "d".into(),
        }))
        .await
        .expect("a key")
        .into_inner();
    let key = made.metadata.expect("metadata").key_id;
    let ctx = || std::collections::HashMap::from([("bucket".to_owned(), "b".to_owned())]);
    let sealed = t
        .client
        .encrypt(t.req(pb::EncryptRequest {
            key_id: key.clone(),
            plaintext: b"hello".to_vec(),
            encryption_context: ctx(),
        }))
        .await
        .expect("sealed")
        .into_inner()
        .ciphertext_blob;
    let k = || key.clone();
    let rpcs: Vec<(&str, Vec<u8>)> = vec![
        (
            "DescribeKey",
            pb::DescribeKeyRequest { key_id: k() }.encode_to_vec(),
        ),
        (
            "ListKeys",
            pb::ListKeysRequest {
                page_size: 10,
                page_token: String::new(),
            }
            .encode_to_vec(),
        ),
        (
            "GetDefaultKey",
            pb::GetDefaultKeyRequest {
                service: "obs".into(),
            }
            .encode_to_vec(),
        ),
        (
            "GenerateDataKey",
            pb::GenerateDataKeyRequest {
                key_id: k(),
                number_of_bytes: 32,
                encryption_context: ctx(),
            }
            .encode_to_vec(),
        ),
        (
            "GenerateDataKeyWithoutPlaintext",
            pb::GenerateDataKeyRequest {
                key_id: k(),
                number_of_bytes: 16,
                encryption_context: ctx(),
            }
            .encode_to_vec(),
        ),
        (
            "Encrypt",
            pb::EncryptRequest {
                key_id: k(),
                plaintext: b"hello".to_vec(),
                encryption_context: ctx(),
            }
            .encode_to_vec(),
        ),
        (
            "Decrypt",
            pb::DecryptRequest {
                ciphertext_blob: sealed.clone(),
                encryption_context: ctx(),
                key_id: k(),
            }
            .encode_to_vec(),
        ),
        (
            "ReEncrypt",
            pb::ReEncryptRequest {
                ciphertext_blob: sealed.clone(),
                source_encryption_context: ctx(),
                source_key_id: k(),
                destination_key_id: k(),
                destination_encryption_context: ctx(),
            }
            .encode_to_vec(),
        ),
        (
            "GenerateRandom",
            pb::GenerateRandomRequest {
                number_of_bytes: 32,
            }
            .encode_to_vec(),
        ),
        (
            "UpdateKeyAlias",
            pb::UpdateKeyAliasRequest {
                key_id: k(),
                alias: "swept".into(),
            }
            .encode_to_vec(),
        ),
        (
            "UpdateKeyDescription",
            pb::UpdateKeyDescriptionRequest {
                key_id: k(),
                description: "e".into(),
            }
            .encode_to_vec(),
        ),
        (
            "EnableKeyRotation",
            pb::EnableKeyRotationRequest { key_id: k() }.encode_to_vec(),
        ),
        (
            "UpdateKeyRotationInterval",
            pb::UpdateKeyRotationIntervalRequest {
                key_id: k(),
                rotation_interval_days: 90,
            }
            .encode_to_vec(),
        ),
        (
            "GetKeyRotationStatus",
            pb::GetKeyRotationStatusRequest { key_id: k() }.encode_to_vec(),
        ),
        (
            "DisableKeyRotation",
            pb::DisableKeyRotationRequest { key_id: k() }.encode_to_vec(),
        ),
        (
            "RotateKey",
            pb::RotateKeyRequest { key_id: k() }.encode_to_vec(),
        ),
        (
            "CreateKey",
            pb::CreateKeyRequest {
                alias: "made".into(),
                description: "d".into(),
            }
            .encode_to_vec(),
        ),
        (
            "DisableKey",
            pb::DisableKeyRequest { key_id: k() }.encode_to_vec(),
        ),
        (
            "EnableKey",
            pb::EnableKeyRequest { key_id: k() }.encode_to_vec(),
        ),
        (
            "ScheduleKeyDeletion",
            pb::ScheduleKeyDeletionRequest {
                key_id: k(),
                pending_window_days: 7,
            }
            .encode_to_vec(),
        ),
        (
            "CancelKeyDeletion",
            pb::CancelKeyDeletionRequest { key_id: k() }.encode_to_vec(),
        ),
    ];
    let strings: Vec<Vec<u8>> = vec![
        "\u{e9}".repeat(300).into_bytes(),
        b"a\0b".to_vec(),
        Vec::new(),
        vec![b'x'; 64 * 1024],
        vec![0xff, 0xfe, 0xfd],
    ];
    let numbers = [0, 1, 1 << 31, 1 << 32, u64::MAX];
    let keys = |t: &mut Tenant| {
        let req = t.req(pb::ListKeysRequest {
            page_size: 0,
            page_token: String::new(),
        });
        let mut client = t.client.clone();
        async move {
            let mut keys: Vec<String> = client
                .list_keys(req)
                .await
                .expect("lists")
                .into_inner()
                .keys
                .iter()
                .map(|m| {
                    format!(
                        "{} {} {} {:?} {}",
                        m.key_id, m.alias, m.state, m.description, m.current_version
                    )
                })
                .collect();
            keys.sort();
            keys
        }
    };
    let mut sent = 0;
    for (rpc, valid) in &rpcs {
        let path = format!("/kms.v1.KeyManagementService/{rpc}");
        let mut messages = kmsbox_tests::mutations::cut_and_rotated(valid, 20);
        let fields = wire_fields(valid).expect("a valid message parses");
        for (i, (_, wire, _)) in fields.iter().enumerate() {
            if *wire == 0 {
                messages.extend(numbers.iter().map(|&n| with_field(&fields, i, &[], n)));
            } else {
                messages.extend(strings.iter().map(|s| with_field(&fields, i, s, 0)));
            }
        }
        for message in messages {
            let before = keys(&mut t).await;
            let a = raw_call(addr, &path, "alice", frame(&message)).await;
            sent += 1;
            let status = a.get("grpc-status").unwrap_or("none").to_owned();
            assert!(
                !["none", "2", "13", "15"].contains(&status.as_str()),
                "{rpc} {message:02x?}: grpc-status {status}, {:?}",
                a.get("grpc-message")
            );
            if status != "0" {
                let code = a.get("x-kms-error-code").unwrap_or_default();
                assert!(
                    code.parse::<ErrorCode>().is_ok(),
                    "{rpc}: {status} {code:?}"
                );
                assert_eq!(
                    keys(&mut t).await,
                    before,
                    "{rpc}: a refusal changed the keys"
                );
            }
        }
    }
    assert!(sent > 700, "{sent} messages sent");
}
