//! The seed document's four sample requests, replayed through the adapter, with its responses'
//! SSE headers compared (texts copied verbatim from `obs-sse-kms.rst`).
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use http::HeaderMap;
use obs_adapter::{Encryption, ObsRequest, Operation, StoredObject};

const REQUEST_1: &str = "PUT /encryp1 HTTP/1.1
User-Agent: curl/7.29.0
Host: examplebucket.obs.region.example.com
Accept: */*
Date: Wed, 06 Jun 2018 09:08:21 GMT
Authorization: OBS H4IPJX0TQTHTHEBQQCEC:f3/7eS6MFbW3JO4+7I5AtyAQENU=
x-obs-server-side-encryption:kms
Content-Length: 5242
Expect: 100-continue
";

const RESPONSE_1: &str = "HTTP/1.1 200 OK
Server: OBS
x-obs-request-id: 8DF400000163D45AA81D038B6AE4C482
ETag: \"d8bffdfbab5345d91ac05141789d2477\"
x-obs-server-side-encryption: kms
x-obs-server-side-encryption-kms-key-id: region:783fc6652cf246c096ea836694f71855:key/522d6070-5ad3-4765-9737-9312ddc72cdb
x-obs-id-2: 32AAAUJAIAABAAAQAAEAABAAAQAAEAABCTv7cHmAnGfBAGXUHeibUsiETTNqlCqC
Date: Wed, 06 Jun 2018 09:08:21 GMT
Content-Length: 0
";

const REQUEST_2: &str = "PUT /encryp1 HTTP/1.1
User-Agent: curl/7.29.0
Host: examplebucket.obs.region.example.com
Accept: */*
Date: Wed, 06 Jun 2018 09:08:50 GMT
Authorization: OBS H4IPJX0TQTHTHEBQQCEC:f3/PWjkXYTYGs5lPOctTNEI2QENU=
x-obs-server-side-encryption:kms
x-obs-server-side-encryption-kms-key-id: 522d6070-5ad3-4765-43a7-a7d1-ab21f498482d
Content-Length: 5242
Expect: 100-continue
";

const REQUEST_3: &str = "PUT /destobject HTTP/1.1
User-Agent: curl/7.29.0
Host: examplebucket.obs.region.example.com
x-obs-server-side-encryption:kms
x-obs-server-side-encryption-kms-key-id: region:783fc6652cf246c096ea836694f71855:key/522d6070-5ad3-4765-9737-9312ddc72cdb
Accept: */*
Date: Wed, 06 Jun 2018 09:10:29 GMT
Authorization: OBS H4IPJX0TQTHTHEBQQCEC:SH3uTrElaGWarVI1uTq325kTVCI=
x-obs-copy-source: /bucket/srcobject1
";

const RESPONSE_3: &str = "HTTP/1.1 200 OK
Server: OBS
x-obs-request-id: BB78000001648480AF3900CED7F15155
ETag: \"d8bffdfbab5345d91ac05141789d2477\"
x-obs-server-side-encryption: kms
x-obs-server-side-encryption-kms-key-id: region:783fc6652cf246c096ea836694f71855:key/522d6070-5ad3-4765-9737-9312ddc72cdb
x-obs-id-2: oRAXhgwdaLc9wKVHqTLSmQB7I35D+32AAAUJAIAABAAAQAAEAABAAAQAAEAABCS
Date: Wed, 06 Jun 2018 09:10:29 GMT
Content-Length: 0
";

const REQUEST_4: &str = "PUT /destobject?AccessKeyId=UI3SN1SRUQE14OYBKTZB&Expires=1534152518&x-obs-server-side-encryption=kms&Signature=chvmG7%2FDA%2FDCQmTRJu3xngldJpg%3D HTTP/1.1
User-Agent: curl/7.29.0
Host: examplebucket.obs.region.example.com
Accept: */*
Date: Wed, 06 Jun 2018 09:10:29 GMT
";

const RESPONSE_4: &str = RESPONSE_3;

/// A request as the engine would hand it over: operation, object key, headers, query.
struct Parsed {
    operation: Operation,
    object_key: String,
    headers: HeaderMap,
    query: Vec<(String, String)>,
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn parse_request(text: &str) -> Parsed {
    let mut lines = text.lines();
    let request_line = lines.next().unwrap();
    let mut parts = request_line.split(' ');
    assert_eq!(parts.next(), Some("PUT"));
    let target = parts.next().unwrap();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    let mut pairs_ = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (k, v) = line.split_once(':').unwrap();
        pairs_.push((k.trim(), v.trim()));
    }
    let headers = headers(&pairs_);
    let operation = if headers.contains_key("x-obs-copy-source") {
        Operation::CopyObject
    } else {
        Operation::PutObject
    };
    Parsed {
        operation,
        object_key: path.trim_start_matches('/').to_owned(),
        headers,
        query,
    }
}

/// The SSE headers of a sample response.
fn sse_headers_of(response: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = response
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| {
            k.to_ascii_lowercase()
                .starts_with("x-obs-server-side-encryption")
        })
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    out.sort();
    out
}

fn sse_headers_of_decision(h: &HeaderMap) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = h
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect();
    out.sort();
    out
}

async fn replay(
    env: &Env,
    request: &str,
) -> Result<obs_adapter::Decision, obs_adapter::AdapterError> {
    let p = parse_request(request);
    let c = caller(OWNER);
    let b = bucket();
    let source = StoredObject::plaintext(domain(OWNER));
    let mut req =
        ObsRequest::new(p.operation, &c, &b, &p.object_key, &p.headers).with_query(&p.query);
    if p.operation == Operation::CopyObject {
        req = req.with_stored(&source);
    }
    env.adapter.decide(&req).await
}

#[tokio::test]
async fn seed_sample_1_default_key_put_answers_the_documented_headers() {
    let env = Env::new();
    env.seed_default_key();
    let d = replay(&env, REQUEST_1).await.unwrap();
    assert_eq!(
        sse_headers_of_decision(&d.response_headers),
        sse_headers_of(RESPONSE_1)
    );
    // And on a fresh KMS the default key is created by this first upload.
    let env = Env::new();
    let d = replay(&env, REQUEST_1).await.unwrap();
    assert_eq!(env.fake.default_key_creations(), 1);
    let key = header_key_id(&d).unwrap();
    assert!(
        key.starts_with("region:783fc6652cf246c096ea836694f71855:key/"),
        "{key}"
    );
}

#[tokio::test]
async fn seed_sample_2_six_group_key_id_is_refused_as_malformed() {
    // Decision: `522d6070-5ad3-4765-43a7-a7d1-ab21f498482d` has six groups and is no UUID. The
    // seed's response 2 echoes it inside a full key ID, but kms_proto's one key-ID grammar refuses
    // it, so the adapter answers 400 InvalidArgument naming the value, and asks the KMS nothing.
    let env = Env::new();
    env.seed_default_key();
    let err = replay(&env, REQUEST_2).await.unwrap_err();
    assert_eq!(code(&err), (400, "InvalidArgument"));
    let doc = err.to_obs_error("8DF400000163D45AA81D038B6AE4C482");
    assert!(
        doc.message
            .contains("522d6070-5ad3-4765-43a7-a7d1-ab21f498482d"),
        "{}",
        doc.message
    );
    assert!(
        doc.message
            .contains("x-obs-server-side-encryption-kms-key-id")
    );
    assert_eq!(env.fake.calls(), 0);
}

#[tokio::test]
async fn seed_sample_3_copy_plain_source_to_named_key_answers_the_documented_headers() {
    let env = Env::new();
    env.seed_default_key();
    let d = replay(&env, REQUEST_3).await.unwrap();
    assert_eq!(
        sse_headers_of_decision(&d.response_headers),
        sse_headers_of(RESPONSE_3)
    );
    assert_eq!(d.source_encryption, Some(Encryption::Plaintext));
}

#[tokio::test]
async fn seed_sample_4_presigned_url_query_parameter_selects_sse_kms() {
    let env = Env::new();
    env.seed_default_key();
    let d = replay(&env, REQUEST_4).await.unwrap();
    assert_eq!(
        sse_headers_of_decision(&d.response_headers),
        sse_headers_of(RESPONSE_4)
    );
}

#[test]
fn sample_parser_reads_the_presigned_query() {
    let p = parse_request(REQUEST_4);
    assert_eq!(p.object_key, "destobject");
    assert!(p.query.contains(&(
        "Signature".to_owned(),
        "chvmG7/DA/DCQmTRJu3xngldJpg=".to_owned()
    )));
}
