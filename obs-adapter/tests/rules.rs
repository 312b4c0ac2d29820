//! One table-driven test per rule of the crate docs, named after the rule.
#![allow(clippy::unwrap_used)]
// The rule tables are tuples on purpose: one row per case, readable in place.
#![allow(clippy::type_complexity)]

mod common;

use std::sync::Arc;

use common::*;
use http::{HeaderMap, HeaderValue};
use kms_proto::key_id::FullKeyId;
use obs_adapter::{
    AdapterConfig, AdapterError, BucketFacts, BucketPolicy, DefaultEncryption, Encryption,
    FakeKeyService, KeyPolicy, KeyState, ObsAdapter, ObsRequest, Operation, PolicyVerdict,
    StoredObject,
};

const SSE: &str = "x-obs-server-side-encryption";
const KEY: &str = "x-obs-server-side-encryption-kms-key-id";

type Want = Result<Option<&'static str>, (u16, &'static str, &'static str)>;

/// Checks a decision against the table's expectation: `Ok(None)` plaintext, `Ok(Some("default"))`
/// or `Ok(Some(<key id>))` SSE-KMS, `Err((status, code, message part))`.
fn check(
    name: &str,
    got: &Result<obs_adapter::Decision, AdapterError>,
    want: &Want,
    default_key: &str,
) {
    match (got, want) {
        (Ok(d), Ok(None)) => {
            assert_eq!(d.encryption, Encryption::Plaintext, "{name}");
            assert!(d.response_headers.is_empty(), "{name}");
        }
        (Ok(d), Ok(Some(key))) => {
            let key = if *key == "default" { default_key } else { key };
            assert_eq!(
                d.encryption.key_id().map(ToString::to_string).as_deref(),
                Some(key),
                "{name}"
            );
            assert_eq!(header_key_id(d).as_deref(), Some(key), "{name}");
            assert_eq!(d.response_headers.get(SSE).unwrap(), "kms", "{name}");
        }
        (Err(e), Err((status, c, part))) => {
            assert_eq!(code(e), (*status, *c), "{name}: {e}");
            assert!(e.to_string().contains(part), "{name}: {e:?} lacks {part:?}");
        }
        (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
    }
}

#[tokio::test]
async fn rule_01_sse_header_selects_kms_and_refuses_everything_else() {
    let cases: Vec<(&str, Vec<(&str, &str)>, Want)> = vec![
        ("no header: plaintext", vec![], Ok(None)),
        ("kms", vec![(SSE, "kms")], Ok(Some("default"))),
        (
            "AES256 refused, named",
            vec![(SSE, "AES256")],
            Err((400, "InvalidEncryptionAlgorithmError", "\"AES256\"")),
        ),
        (
            "upper case KMS refused",
            vec![(SSE, "KMS")],
            Err((400, "InvalidEncryptionAlgorithmError", "\"KMS\"")),
        ),
        (
            "empty value refused",
            vec![(SSE, "")],
            Err((400, "InvalidEncryptionAlgorithmError", "\"\"")),
        ),
        (
            "padded value refused",
            vec![(SSE, "kms ")],
            Err((400, "InvalidEncryptionAlgorithmError", "\"kms \"")),
        ),
        (
            "key ID without SSE header",
            vec![(KEY, SEED_KEY_UUID)],
            Err((
                400,
                "InvalidArgument",
                "requires x-obs-server-side-encryption: kms",
            )),
        ),
        (
            "key ID with another algorithm",
            vec![(SSE, "AES256"), (KEY, SEED_KEY_UUID)],
            Err((400, "InvalidEncryptionAlgorithmError", "AES256")),
        ),
        (
            "SSE-KMS with SSE-C",
            vec![
                (SSE, "kms"),
                ("x-obs-server-side-encryption-customer-algorithm", "AES256"),
            ],
            Err((400, "InvalidArgument", "cannot be combined with SSE-C")),
        ),
        (
            "SSE header twice",
            vec![(SSE, "kms"), (SSE, "kms")],
            Err((400, "InvalidArgument", "must be given once")),
        ),
        (
            "key ID header twice",
            vec![(SSE, "kms"), (KEY, SEED_KEY_UUID), (KEY, SEED_KEY_UUID)],
            Err((400, "InvalidArgument", "must be given once")),
        ),
    ];
    for (name, h, want) in cases {
        let env = Env::new();
        let default = env.seed_default_key().to_string();
        let got = env.put(&h).await;
        check(name, &got, &want, &default);
    }
    // A value that is not text.
    let env = Env::new();
    let mut h = HeaderMap::new();
    h.insert(SSE, HeaderValue::from_bytes(b"km\xffs").unwrap());
    let err = env
        .decide(Operation::PutObject, OWNER, &bucket(), &h, None)
        .await
        .unwrap_err();
    assert_eq!(code(&err), (400, "InvalidArgument"));
}

#[tokio::test]
async fn rule_02_key_id_forms_region_and_tenant() {
    let env = Env::new();
    let seed = env.seed_default_key().to_string();
    let own_obs_key = env
        .fake
        .create_service_key(&scope(OWNER, REGION), "obs")
        .to_string();
    let own_uuid = own_obs_key.rsplit('/').next().unwrap().to_owned();
    let own_upper = own_uuid.to_ascii_uppercase();
    let foreign = env.fake.create_service_key(&scope(OTHER, REGION), "obs");
    let foreign_str = foreign.to_string();
    let foreign_bare = foreign.uuid.to_string();
    let other_region_key = env
        .fake
        .create_service_key(&scope(OWNER, OTHER_REGION), "obs")
        .to_string();
    let unknown_own = format!("region:{OWNER}:key/00000000-0000-4000-8000-000000000000");
    let unknown_foreign = format!("region:{OTHER}:key/00000000-0000-4000-8000-000000000000");

    let leak = |s: &str| -> &'static str { Box::leak(s.to_owned().into_boxed_str()) };
    let cases: Vec<(&str, &str, Want)> = vec![
        (
            "full form, own",
            leak(&own_obs_key),
            Ok(Some(leak(&own_obs_key))),
        ),
        (
            "bare form resolves to own",
            leak(&own_uuid),
            Ok(Some(leak(&own_obs_key))),
        ),
        (
            "bare upper-case hex",
            leak(&own_upper),
            Ok(Some(leak(&own_obs_key))),
        ),
        ("seed full form", leak(&seed), Ok(Some(leak(&seed)))),
        (
            "six groups",
            "522d6070-5ad3-4765-43a7-a7d1-ab21f498482d",
            Err((400, "InvalidArgument", "malformed key ID")),
        ),
        (
            "32 digits",
            "522d60705ad3476597379312ddc72cdb",
            Err((400, "InvalidArgument", "malformed")),
        ),
        (
            "braces",
            "{522d6070-5ad3-4765-9737-9312ddc72cdb}",
            Err((400, "InvalidArgument", "malformed")),
        ),
        (
            "alias form",
            "region:783fc6652cf246c096ea836694f71855:alias/obs/default",
            Err((400, "InvalidArgument", "malformed")),
        ),
        ("empty", "", Err((400, "InvalidArgument", "malformed"))),
        (
            "urn",
            "urn:uuid:522d6070-5ad3-4765-9737-9312ddc72cdb",
            Err((400, "InvalidArgument", "malformed")),
        ),
        (
            "other region, own key",
            leak(&other_region_key),
            Err((400, "InvalidArgument", "must be in the bucket's region")),
        ),
        (
            "foreign key, full form",
            leak(&foreign_str),
            Err((400, "KMS.NotFoundException", "does not exist")),
        ),
        (
            "foreign key, bare form",
            leak(&foreign_bare),
            Err((400, "KMS.NotFoundException", "does not exist")),
        ),
        (
            "unknown own key",
            leak(&unknown_own),
            Err((400, "KMS.NotFoundException", "does not exist")),
        ),
        (
            "unknown foreign key",
            leak(&unknown_foreign),
            Err((400, "KMS.NotFoundException", "does not exist")),
        ),
    ];
    for (name, key, want) in cases {
        let got = env.put(&[(SSE, "kms"), (KEY, key)]).await;
        check(name, &got, &want, &seed);
    }

    // A foreign key is answered exactly as an unknown one: same status, code and message once the
    // key ID is blanked, and without a KMS call for the full form.
    let before = env.fake.calls();
    let e_foreign = env
        .put(&[(SSE, "kms"), (KEY, &foreign_str)])
        .await
        .unwrap_err();
    assert_eq!(
        env.fake.calls(),
        before,
        "a foreign full key ID is refused locally"
    );
    let e_unknown = env
        .put(&[(SSE, "kms"), (KEY, &unknown_own)])
        .await
        .unwrap_err();
    let blank = |e: &AdapterError, k: &str| {
        let doc = e.to_obs_error("r");
        (
            doc.status,
            doc.code,
            doc.message.replace(k, "<key>"),
            doc.to_xml().replace(k, "<key>"),
        )
    };
    assert_eq!(
        blank(&e_foreign, &foreign_str),
        blank(&e_unknown, &unknown_own)
    );
    let e_foreign_bare = env
        .put(&[(SSE, "kms"), (KEY, &foreign_bare)])
        .await
        .unwrap_err();
    let resolved_bare = format!("region:{OWNER}:key/{foreign_bare}");
    assert_eq!(
        blank(&e_foreign_bare, &resolved_bare),
        blank(&e_unknown, &unknown_own)
    );
}

#[tokio::test]
async fn rule_03_default_key_is_created_on_first_upload_per_tenant_and_region() {
    let env = Env::new();
    assert_eq!(env.fake.key_count(), 0);
    // Plaintext uploads create nothing.
    env.put(&[]).await.unwrap();
    assert_eq!(env.fake.default_key_creations(), 0);
    let first = env.put(&[(SSE, "kms")]).await.unwrap();
    let second = env.put(&[(SSE, "kms")]).await.unwrap();
    assert_eq!(first.encryption, second.encryption);
    assert_eq!(env.fake.default_key_creations(), 1);
    let key = first.encryption.key_id().unwrap().clone();
    assert_eq!(key.domain, domain(OWNER));
    assert_eq!(key.region, region(REGION));

    // Another region: another default key. Another tenant (in its own bucket): another.
    let b2 = BucketFacts::new("b2", region(OTHER_REGION), domain(OWNER));
    let h = headers(&[(SSE, "kms")]);
    let d2 = env
        .decide(Operation::PutObject, OWNER, &b2, &h, None)
        .await
        .unwrap();
    assert_eq!(d2.encryption.key_id().unwrap().region, region(OTHER_REGION));
    let b3 = BucketFacts::new("b3", region(REGION), domain(OTHER));
    let d3 = env
        .decide(Operation::PutObject, OTHER, &b3, &h, None)
        .await
        .unwrap();
    assert_eq!(d3.encryption.key_id().unwrap().domain, domain(OTHER));
    assert_eq!(env.fake.default_key_creations(), 3);
    assert_ne!(d2.encryption, first.encryption);
    assert_ne!(d3.encryption, first.encryption);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rule_03_concurrent_first_uploads_create_exactly_one_default_key() {
    const UPLOADS: usize = 128;
    // Every KMS call takes 2 ms, so the uploads' calls overlap.
    let env = Arc::new(Env::from_fake(
        FakeKeyService::with_latency(std::time::Duration::from_millis(2)),
        AdapterConfig::default(),
    ));
    let start = Arc::new(tokio::sync::Barrier::new(UPLOADS));
    let mut tasks = Vec::new();
    for i in 0..UPLOADS {
        let env = Arc::clone(&env);
        let start = Arc::clone(&start);
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            // Half by header, half through bucket default encryption.
            let (b, h) = if i % 2 == 0 {
                (bucket(), headers(&[(SSE, "kms")]))
            } else {
                (
                    bucket().with_default_encryption(DefaultEncryption::Kms { key: None }),
                    headers(&[]),
                )
            };
            env.decide(Operation::PutObject, OWNER, &b, &h, None)
                .await
                .map(|d| d.encryption)
        }));
    }
    let mut keys = std::collections::HashSet::new();
    for t in tasks {
        keys.insert(t.await.unwrap().unwrap());
    }
    assert_eq!(keys.len(), 1, "every upload got the same key");
    assert_eq!(env.fake.default_key_creations(), 1);
    assert_eq!(env.fake.key_count(), 1);
}

#[tokio::test]
async fn rule_04_only_service_created_obs_keys_unless_switched() {
    // (name, key kind, adapter key policy, expected code or None for success)
    #[derive(Clone, Copy, Debug)]
    enum Kind {
        Default,
        ObsServiceKey,
        Customer,
        OtherServiceKey,
    }
    let cases = [
        (
            "default key, ban",
            Kind::Default,
            KeyPolicy::ServiceKeysOnly,
            None,
        ),
        (
            "obs service key, ban",
            Kind::ObsServiceKey,
            KeyPolicy::ServiceKeysOnly,
            None,
        ),
        (
            "customer key, ban",
            Kind::Customer,
            KeyPolicy::ServiceKeysOnly,
            Some("keys created by customers"),
        ),
        (
            "evs service key, ban",
            Kind::OtherServiceKey,
            KeyPolicy::ServiceKeysOnly,
            Some("\"evs\", not by OBS"),
        ),
        (
            "default key, allowed",
            Kind::Default,
            KeyPolicy::AllowCustomerKeys,
            None,
        ),
        (
            "customer key, allowed",
            Kind::Customer,
            KeyPolicy::AllowCustomerKeys,
            None,
        ),
        (
            "evs service key, allowed",
            Kind::OtherServiceKey,
            KeyPolicy::AllowCustomerKeys,
            Some("not by OBS"),
        ),
    ];
    assert_eq!(
        AdapterConfig::default().key_policy,
        KeyPolicy::ServiceKeysOnly
    );
    for (name, kind, key_policy, want_err) in cases {
        let env = Env::with_config(AdapterConfig { key_policy });
        let t = scope(OWNER, REGION);
        let key: FullKeyId = match kind {
            Kind::Default => env.seed_default_key(),
            Kind::ObsServiceKey => env.fake.create_service_key(&t, "obs"),
            Kind::Customer => env.fake.create_customer_key(&t),
            Kind::OtherServiceKey => env.fake.create_service_key(&t, "evs"),
        };
        let key_s = key.to_string();
        // By header, and through the bucket default: the same rule.
        let by_header = env.put(&[(SSE, "kms"), (KEY, &key_s)]).await;
        let b = bucket().with_default_encryption(DefaultEncryption::Kms {
            key: Some(kms_proto::key_id::KeyRef::Full(key.clone())),
        });
        let by_default = env
            .decide(Operation::PutObject, OWNER, &b, &headers(&[]), None)
            .await;
        for got in [by_header, by_default] {
            match (got, want_err) {
                (Ok(d), None) => assert_eq!(d.encryption.key_id(), Some(&key), "{name}"),
                (Err(e), Some(part)) => {
                    assert_eq!(code(&e), (400, "InvalidArgument"), "{name}");
                    assert!(e.to_string().contains(part), "{name}: {e}");
                }
                (got, want) => panic!("{name}: got {got:?}, want error {want:?}"),
            }
        }
    }
}

#[tokio::test]
async fn rule_05_disabled_pending_and_unknown_keys_give_distinct_errors() {
    let cases = [
        ("enabled", Some(KeyState::Enabled), None),
        (
            "disabled",
            Some(KeyState::Disabled),
            Some((400, "KMS.DisabledException", "is disabled")),
        ),
        (
            "pending deletion",
            Some(KeyState::PendingDeletion),
            Some((400, "KMS.PendingDeletionException", "pending deletion")),
        ),
        (
            "unknown",
            None,
            Some((400, "KMS.NotFoundException", "does not exist")),
        ),
    ];
    for (name, state, want) in cases {
        for by_default_key in [false, true] {
            let env = Env::new();
            let key = env.seed_default_key();
            let mut h = vec![(SSE, "kms")];
            let unknown = format!("region:{OWNER}:key/11111111-2222-4333-8444-555555555555");
            let named = match state {
                Some(s) => {
                    assert!(env.fake.set_state(&key, s));
                    key.to_string()
                }
                None => unknown,
            };
            if !by_default_key {
                h.push((KEY, &named));
            } else if state.is_none() {
                continue; // The default key always exists.
            }
            let got = env.put(&h).await;
            match (got, want) {
                (Ok(d), None) => assert_eq!(d.encryption.key_id(), Some(&key), "{name}"),
                (Err(e), Some((status, c, part))) => {
                    assert_eq!(code(&e), (status, c), "{name} default={by_default_key}");
                    assert!(e.to_string().contains(part), "{name}: {e}");
                }
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    // Reading an object whose key was disabled: GET refused, HEAD still answers its metadata.
    let env = Env::new();
    let key = env.seed_default_key();
    let obj = StoredObject::kms(domain(OWNER), key.clone());
    env.fake.set_state(&key, KeyState::Disabled);
    let none = headers(&[]);
    let get = env
        .decide(Operation::GetObject, OWNER, &bucket(), &none, Some(&obj))
        .await;
    assert_eq!(code(&get.unwrap_err()), (400, "KMS.DisabledException"));
    let head = env
        .decide(Operation::HeadObject, OWNER, &bucket(), &none, Some(&obj))
        .await;
    assert!(head.is_ok());
    // A part of an upload whose key was disabled: refused, nothing stored.
    let part = env
        .decide(Operation::UploadPart, OWNER, &bucket(), &none, Some(&obj))
        .await;
    assert_eq!(code(&part.unwrap_err()), (400, "KMS.DisabledException"));
    // Data keys under a disabled key: refused by the KMS, mapped the same way.
    let dk = env
        .adapter
        .generate_data_key(
            &caller(OWNER),
            &bucket(),
            "obj",
            &Encryption::Kms { key_id: key },
        )
        .await;
    assert_eq!(code(&dk.unwrap_err()), (400, "KMS.DisabledException"));
}

#[tokio::test]
async fn rule_06_where_the_rules_apply() {
    let env = Env::new();
    let key = env.seed_default_key();
    let k = key.to_string();
    let plain_src = StoredObject::plaintext(domain(OWNER));
    let kms_src = StoredObject::kms(domain(OWNER), key.clone());
    let copy = ("x-obs-copy-source", "/bucket/srcobject1");
    let ks: &'static str = Box::leak(k.clone().into_boxed_str());
    // (name, operation, headers, form fields, query, stored, expected)
    let cases: Vec<(
        &str,
        Operation,
        Vec<(&str, &str)>,
        Vec<(&str, &str)>,
        Vec<(&str, &str)>,
        Option<&StoredObject>,
        Want,
    )> = vec![
        (
            "PUT header",
            Operation::PutObject,
            vec![(SSE, "kms")],
            vec![],
            vec![],
            None,
            Ok(Some(ks)),
        ),
        (
            "PUT form field refused",
            Operation::PutObject,
            vec![],
            vec![(SSE, "kms")],
            vec![],
            None,
            Err((400, "InvalidArgument", "only POST uploads")),
        ),
        (
            "POST form fields",
            Operation::PostObject,
            vec![],
            vec![(SSE, "kms"), (KEY, ks)],
            vec![],
            None,
            Ok(Some(ks)),
        ),
        (
            "POST form field names in any case",
            Operation::PostObject,
            vec![],
            vec![("X-Obs-Server-Side-Encryption", "kms")],
            vec![],
            None,
            Ok(Some(ks)),
        ),
        (
            "POST form field twice",
            Operation::PostObject,
            vec![],
            vec![(SSE, "kms"), ("X-OBS-SERVER-SIDE-ENCRYPTION", "kms")],
            vec![],
            None,
            Err((400, "InvalidArgument", "given once")),
        ),
        (
            "POST header refused",
            Operation::PostObject,
            vec![(SSE, "kms")],
            vec![],
            vec![],
            None,
            Err((
                400,
                "InvalidArgument",
                "POST uploads take it as a form field",
            )),
        ),
        (
            "POST query refused",
            Operation::PostObject,
            vec![],
            vec![],
            vec![(SSE, "kms")],
            None,
            Err((400, "InvalidArgument", "query parameter")),
        ),
        (
            "POST form AES256",
            Operation::PostObject,
            vec![],
            vec![(SSE, "AES256")],
            vec![],
            None,
            Err((400, "InvalidEncryptionAlgorithmError", "form field")),
        ),
        (
            "copy plain source to SSE-KMS target",
            Operation::CopyObject,
            vec![copy, (SSE, "kms"), (KEY, ks)],
            vec![],
            vec![],
            Some(&plain_src),
            Ok(Some(ks)),
        ),
        (
            "copy SSE-KMS source to plain target",
            Operation::CopyObject,
            vec![copy],
            vec![],
            vec![],
            Some(&kms_src),
            Ok(None),
        ),
        (
            "copy without x-obs-copy-source",
            Operation::CopyObject,
            vec![(SSE, "kms")],
            vec![],
            vec![],
            Some(&plain_src),
            Err((400, "InvalidArgument", "x-obs-copy-source")),
        ),
        (
            "copy without source facts",
            Operation::CopyObject,
            vec![copy],
            vec![],
            vec![],
            None,
            Err((500, "InternalError", "copy source")),
        ),
        (
            "initiate multipart",
            Operation::InitiateMultipartUpload,
            vec![(SSE, "kms")],
            vec![],
            vec![],
            None,
            Ok(Some(ks)),
        ),
        (
            "upload part inherits",
            Operation::UploadPart,
            vec![],
            vec![],
            vec![],
            Some(&kms_src),
            Ok(Some(ks)),
        ),
        (
            "upload part of plain upload",
            Operation::UploadPart,
            vec![],
            vec![],
            vec![],
            Some(&plain_src),
            Ok(None),
        ),
        (
            "upload part with SSE header",
            Operation::UploadPart,
            vec![(SSE, "kms")],
            vec![],
            vec![],
            Some(&kms_src),
            Err((400, "InvalidArgument", "inherit the encryption")),
        ),
        (
            "upload part with key header",
            Operation::UploadPart,
            vec![(KEY, ks)],
            vec![],
            vec![],
            Some(&kms_src),
            Err((400, "InvalidArgument", "UploadPart does not accept")),
        ),
        (
            "complete inherits",
            Operation::CompleteMultipartUpload,
            vec![],
            vec![],
            vec![],
            Some(&kms_src),
            Ok(Some(ks)),
        ),
        (
            "complete with SSE header",
            Operation::CompleteMultipartUpload,
            vec![(SSE, "kms")],
            vec![],
            vec![],
            Some(&kms_src),
            Err((
                400,
                "InvalidArgument",
                "CompleteMultipartUpload does not accept",
            )),
        ),
        (
            "presigned query",
            Operation::PutObject,
            vec![],
            vec![],
            vec![(SSE, "kms")],
            None,
            Ok(Some(ks)),
        ),
        (
            "presigned query with key",
            Operation::PutObject,
            vec![],
            vec![],
            vec![(SSE, "kms"), (KEY, ks)],
            None,
            Ok(Some(ks)),
        ),
        (
            "presigned query, other case",
            Operation::PutObject,
            vec![],
            vec![],
            vec![("X-Obs-Server-Side-Encryption", "kms")],
            None,
            Ok(Some(ks)),
        ),
        (
            "query and header agree",
            Operation::PutObject,
            vec![(SSE, "kms")],
            vec![],
            vec![(SSE, "kms")],
            None,
            Ok(Some(ks)),
        ),
        (
            "query and header conflict",
            Operation::PutObject,
            vec![(SSE, "kms")],
            vec![],
            vec![(SSE, "AES256")],
            None,
            Err((400, "InvalidArgument", "different values")),
        ),
        (
            "query key without SSE",
            Operation::PutObject,
            vec![],
            vec![],
            vec![(KEY, ks)],
            None,
            Err((400, "InvalidArgument", "query parameter")),
        ),
        (
            "query twice",
            Operation::PutObject,
            vec![],
            vec![],
            vec![(SSE, "kms"), (SSE, "kms")],
            None,
            Err((400, "InvalidArgument", "given once")),
        ),
        (
            "GET with SSE header",
            Operation::GetObject,
            vec![(SSE, "kms")],
            vec![],
            vec![],
            Some(&kms_src),
            Err((
                400,
                "InvalidArgument",
                "read with the key it was stored under",
            )),
        ),
        (
            "HEAD with key query",
            Operation::HeadObject,
            vec![],
            vec![],
            vec![(KEY, ks)],
            Some(&kms_src),
            Err((400, "InvalidArgument", "HeadObject does not accept")),
        ),
        (
            "GET reads object's key",
            Operation::GetObject,
            vec![],
            vec![],
            vec![],
            Some(&kms_src),
            Ok(Some(ks)),
        ),
        (
            "GET without object facts",
            Operation::GetObject,
            vec![],
            vec![],
            vec![],
            None,
            Err((500, "InternalError", "object")),
        ),
    ];
    for (name, op, h, form, query, stored, want) in cases {
        let c = caller(OWNER);
        let b = bucket();
        let h = headers(&h);
        let form = pairs(&form);
        let query = pairs(&query);
        let mut req = ObsRequest::new(op, &c, &b, "obj", &h)
            .with_form_fields(&form)
            .with_query(&query);
        if let Some(s) = stored {
            req = req.with_stored(s);
        }
        let got = env.adapter.decide(&req).await;
        check(name, &got, &want, &k);
    }

    // Copy: the source is read with its own key, the target gets the request's.
    let h = headers(&[copy, (SSE, "kms")]);
    let d = env
        .decide(Operation::CopyObject, OWNER, &bucket(), &h, Some(&kms_src))
        .await
        .unwrap();
    assert_eq!(d.source_encryption, Some(kms_src.encryption.clone()));
    // Copy from a source in another region (under that region's key) into this bucket.
    let far_key =
        obs_adapter::KeyService::get_default_key(&*env.fake, &scope(OWNER, OTHER_REGION), "obs")
            .await
            .unwrap()
            .key_id;
    let far_src = StoredObject::kms(domain(OWNER), far_key.clone());
    let h = headers(&[copy, (SSE, "kms")]);
    let d = env
        .decide(Operation::CopyObject, OWNER, &bucket(), &h, Some(&far_src))
        .await
        .unwrap();
    assert_eq!(d.source_encryption, Some(far_src.encryption.clone()));
    assert_eq!(d.encryption.key_id(), Some(&key));
    // Copy from a source whose key is disabled: refused before anything is stored.
    let env2 = Env::new();
    let key2 = env2.seed_default_key();
    env2.fake.set_state(&key2, KeyState::Disabled);
    let src2 = StoredObject::kms(domain(OWNER), key2);
    let err = env2
        .decide(
            Operation::CopyObject,
            OWNER,
            &bucket(),
            &headers(&[copy]),
            Some(&src2),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), (400, "KMS.DisabledException"));
}

#[tokio::test]
async fn rule_07_bucket_default_encryption_applies_unless_the_request_says_otherwise() {
    let env = Env::new();
    let default = env.seed_default_key();
    let t = scope(OWNER, REGION);
    let other_obs = env.fake.create_service_key(&t, "obs");
    let customer = env.fake.create_customer_key(&t);
    let d = default.to_string();
    let o = other_obs.to_string();
    let ds: &'static str = Box::leak(d.clone().into_boxed_str());
    let os: &'static str = Box::leak(o.clone().into_boxed_str());
    let cfg = |key: Option<&str>| DefaultEncryption::parse("kms", key).unwrap();
    let cases: Vec<(&str, DefaultEncryption, Vec<(&str, &str)>, Want)> = vec![
        (
            "no default, no header",
            DefaultEncryption::None,
            vec![],
            Ok(None),
        ),
        (
            "kms default, no header: default key",
            cfg(None),
            vec![],
            Ok(Some(ds)),
        ),
        (
            "kms default with key, no header",
            cfg(Some(&o)),
            vec![],
            Ok(Some(os)),
        ),
        (
            "kms default with bare key",
            cfg(Some(&other_obs.uuid.to_string())),
            vec![],
            Ok(Some(os)),
        ),
        (
            "request header wins over default key",
            cfg(Some(&o)),
            vec![(SSE, "kms")],
            Ok(Some(ds)),
        ),
        (
            "request key wins over default key",
            cfg(None),
            vec![(SSE, "kms"), (KEY, os)],
            Ok(Some(os)),
        ),
        (
            "default with customer key: rule 4",
            cfg(Some(&customer.to_string())),
            vec![],
            Err((400, "InvalidArgument", "created by customers")),
        ),
        (
            "request's bad header is not rescued by the default",
            cfg(None),
            vec![(SSE, "AES256")],
            Err((400, "InvalidEncryptionAlgorithmError", "AES256")),
        ),
    ];
    for (name, de, h, want) in cases {
        let b = bucket().with_default_encryption(de);
        let got = env
            .decide(Operation::PutObject, OWNER, &b, &headers(&h), None)
            .await;
        check(name, &got, &want, &d);
    }
    // Also for POST, copy targets and multipart initiation.
    let b = bucket().with_default_encryption(cfg(None));
    let src = StoredObject::plaintext(domain(OWNER));
    for (op, h) in [
        (Operation::PostObject, vec![]),
        (Operation::CopyObject, vec![("x-obs-copy-source", "/b/o")]),
        (Operation::InitiateMultipartUpload, vec![]),
    ] {
        let got = env
            .decide(op, OWNER, &b, &headers(&h), Some(&src))
            .await
            .unwrap();
        assert_eq!(got.encryption.key_id(), Some(&default), "{op}");
    }
    // The configuration is validated when set.
    let bad = [
        (
            DefaultEncryption::parse("AES256", None),
            (400, "InvalidEncryptionAlgorithmError"),
        ),
        (
            DefaultEncryption::parse("kms", Some("522d6070-5ad3-4765-43a7-a7d1-ab21f498482d")),
            (400, "InvalidArgument"),
        ),
        (
            DefaultEncryption::parse("kms", Some("")),
            (400, "InvalidArgument"),
        ),
    ];
    for (got, want) in bad {
        let e = got.unwrap_err();
        assert_eq!(code(&e), want, "{e}");
        assert!(e.to_string().contains("bucket default encryption"), "{e}");
    }
}

/// The seed's policy, verbatim: it lacks the `]` that closes `Statement`.
const SEED_POLICY_VERBATIM: &str = r#"{
"Statement":[{
"Sid":"DenyUnEncryptedObjectUploads",
"Effect":"Deny",
"Principal":"*",
"Action":"PutObject",
"Resource":"YourBucket/*",
"Condition":{
"StringNotEquals":{
"x-obs-server-side-encryption":"kms"
}
}
}
}"#;

/// The seed's policy with the `]` restored and its bucket placeholder filled in.
const SEED_POLICY: &str = r#"{
"Statement":[{
"Sid":"DenyUnEncryptedObjectUploads",
"Effect":"Deny",
"Principal":"*",
"Action":"PutObject",
"Resource":"examplebucket/*",
"Condition":{
"StringNotEquals":{
"x-obs-server-side-encryption":"kms"
}
}
}]
}"#;

#[tokio::test]
async fn rule_08_seed_policy_denies_uploads_whose_request_lacks_sse_kms() {
    // The verbatim seed text is not JSON: refused when set.
    let err = BucketPolicy::parse("YourBucket", SEED_POLICY_VERBATIM).unwrap_err();
    let e = AdapterError::from(err);
    assert_eq!(code(&e), (400, "MalformedPolicy"));
    assert!(e.to_string().contains("invalid JSON"), "{e}");

    let policy = BucketPolicy::parse(BUCKET, SEED_POLICY).unwrap();
    let env = Env::new();
    let key = env.seed_default_key();
    let k: &'static str = Box::leak(key.to_string().into_boxed_str());
    let kms_upload = StoredObject::kms(domain(OWNER), key.clone());
    let plain_upload = StoredObject::plaintext(domain(OWNER));
    let copy = ("x-obs-copy-source", "/b/o");
    let denied: Want = Err((403, "AccessDenied", "DenyUnEncryptedObjectUploads"));
    // (name, default encryption on, operation, headers, form, query, stored, expected)
    let cases: Vec<(
        &str,
        bool,
        Operation,
        Vec<(&str, &str)>,
        Vec<(&str, &str)>,
        Vec<(&str, &str)>,
        Option<&StoredObject>,
        Want,
    )> = vec![
        (
            "PUT without header",
            false,
            Operation::PutObject,
            vec![],
            vec![],
            vec![],
            None,
            denied,
        ),
        (
            "PUT without header, bucket default would encrypt",
            true,
            Operation::PutObject,
            vec![],
            vec![],
            vec![],
            None,
            denied,
        ),
        (
            "PUT with kms",
            false,
            Operation::PutObject,
            vec![(SSE, "kms")],
            vec![],
            vec![],
            None,
            Ok(Some(k)),
        ),
        (
            "PUT with kms and key",
            true,
            Operation::PutObject,
            vec![(SSE, "kms"), (KEY, k)],
            vec![],
            vec![],
            None,
            Ok(Some(k)),
        ),
        (
            "POST without field",
            true,
            Operation::PostObject,
            vec![],
            vec![],
            vec![],
            None,
            denied,
        ),
        (
            "POST with field",
            false,
            Operation::PostObject,
            vec![],
            vec![(SSE, "kms")],
            vec![],
            None,
            Ok(Some(k)),
        ),
        (
            "presigned with query",
            false,
            Operation::PutObject,
            vec![],
            vec![],
            vec![(SSE, "kms")],
            None,
            Ok(Some(k)),
        ),
        (
            "copy without header",
            true,
            Operation::CopyObject,
            vec![copy],
            vec![],
            vec![],
            Some(&plain_upload),
            denied,
        ),
        (
            "copy with header",
            false,
            Operation::CopyObject,
            vec![copy, (SSE, "kms")],
            vec![],
            vec![],
            Some(&plain_upload),
            Ok(Some(k)),
        ),
        (
            "initiate without header",
            true,
            Operation::InitiateMultipartUpload,
            vec![],
            vec![],
            vec![],
            None,
            denied,
        ),
        (
            "initiate with header",
            false,
            Operation::InitiateMultipartUpload,
            vec![(SSE, "kms")],
            vec![],
            vec![],
            None,
            Ok(Some(k)),
        ),
        (
            "part of SSE-KMS upload",
            false,
            Operation::UploadPart,
            vec![],
            vec![],
            vec![],
            Some(&kms_upload),
            Ok(Some(k)),
        ),
        (
            "part of plaintext upload",
            false,
            Operation::UploadPart,
            vec![],
            vec![],
            vec![],
            Some(&plain_upload),
            denied,
        ),
        (
            "complete SSE-KMS upload",
            false,
            Operation::CompleteMultipartUpload,
            vec![],
            vec![],
            vec![],
            Some(&kms_upload),
            Ok(Some(k)),
        ),
        (
            "GET is not PutObject",
            false,
            Operation::GetObject,
            vec![],
            vec![],
            vec![],
            Some(&plain_upload),
            Ok(None),
        ),
    ];
    for (name, default_on, op, h, form, query, stored, want) in cases {
        let mut b = bucket().with_policy(policy.clone());
        if default_on {
            b = b.with_default_encryption(DefaultEncryption::Kms { key: None });
        }
        let c = caller(OWNER);
        let h = headers(&h);
        let form = pairs(&form);
        let query = pairs(&query);
        let mut req = ObsRequest::new(op, &c, &b, "obj", &h)
            .with_form_fields(&form)
            .with_query(&query);
        if let Some(s) = stored {
            req = req.with_stored(s);
        }
        let calls = env.fake.calls();
        let got = env.adapter.decide(&req).await;
        if got.is_err() {
            assert_eq!(
                env.fake.calls(),
                calls,
                "{name}: the policy is checked before the KMS"
            );
        }
        check(name, &got, &want, k);
    }
}

#[tokio::test]
async fn rule_08_policy_elements_and_explicit_deny() {
    let stmt = |effect: &str, principal: &str, action: &str, resource: &str, cond: &str| {
        let cond = if cond.is_empty() {
            String::new()
        } else {
            format!(",\"Condition\":{cond}")
        };
        format!(
            r#"{{"Sid":"s","Effect":"{effect}","Principal":{principal},"Action":{action},"Resource":{resource}{cond}}}"#
        )
    };
    let policy = |stmts: &[String]| {
        format!(
            r#"{{"Version":"2008-10-17","Statement":[{}]}}"#,
            stmts.join(",")
        )
    };
    let other_principal = format!(r#"{{"ID":["domain/{OTHER}"]}}"#);
    let owner_principal = format!(r#"{{"ID":"domain/{OWNER}"}}"#);
    let owner_user = format!(r#"{{"ID":["domain/{OWNER}:user/alice"]}}"#);
    let any_user = format!(r#"{{"ID":["domain/{OWNER}:user/*"]}}"#);
    // (name, policy, caller user, headers, object key, expected verdict: "deny", "allow", "none")
    let cases: Vec<(&str, String, Option<&str>, Vec<(&str, &str)>, &str, &str)> = vec![
        (
            "principal *",
            policy(&[stmt(
                "Deny",
                "\"*\"",
                "\"PutObject\"",
                "\"examplebucket/*\"",
                "",
            )]),
            None,
            vec![],
            "obj",
            "deny",
        ),
        (
            "principal other domain",
            policy(&[stmt(
                "Deny",
                &other_principal,
                "\"PutObject\"",
                "\"examplebucket/*\"",
                "",
            )]),
            None,
            vec![],
            "obj",
            "none",
        ),
        (
            "principal own domain",
            policy(&[stmt(
                "Deny",
                &owner_principal,
                "\"PutObject\"",
                "\"examplebucket/*\"",
                "",
            )]),
            None,
            vec![],
            "obj",
            "deny",
        ),
        (
            "principal user, matching",
            policy(&[stmt(
                "Deny",
                &owner_user,
                "\"PutObject\"",
                "\"examplebucket/*\"",
                "",
            )]),
            Some("alice"),
            vec![],
            "obj",
            "deny",
        ),
        (
            "principal user, other user",
            policy(&[stmt(
                "Deny",
                &owner_user,
                "\"PutObject\"",
                "\"examplebucket/*\"",
                "",
            )]),
            Some("bob"),
            vec![],
            "obj",
            "none",
        ),
        (
            "principal user, unknown user",
            policy(&[stmt(
                "Deny",
                &owner_user,
                "\"PutObject\"",
                "\"examplebucket/*\"",
                "",
            )]),
            None,
            vec![],
            "obj",
            "none",
        ),
        (
            "principal user *",
            policy(&[stmt(
                "Deny",
                &any_user,
                "\"PutObject\"",
                "\"examplebucket/*\"",
                "",
            )]),
            Some("bob"),
            vec![],
            "obj",
            "deny",
        ),
        (
            "action list",
            policy(&[stmt(
                "Deny",
                "\"*\"",
                "[\"GetObject\",\"PutObject\"]",
                "\"examplebucket/*\"",
                "",
            )]),
            None,
            vec![],
            "obj",
            "deny",
        ),
        (
            "action wildcard",
            policy(&[stmt("Deny", "\"*\"", "\"Put*\"", "\"examplebucket/*\"", "")]),
            None,
            vec![],
            "obj",
            "deny",
        ),
        (
            "action prefix obs:object:",
            policy(&[stmt(
                "Deny",
                "\"*\"",
                "\"obs:object:PutObject\"",
                "\"examplebucket/*\"",
                "",
            )]),
            None,
            vec![],
            "obj",
            "deny",
        ),
        (
            "action *",
            policy(&[stmt("Deny", "\"*\"", "\"*\"", "\"examplebucket/*\"", "")]),
            None,
            vec![],
            "obj",
            "deny",
        ),
        (
            "action other",
            policy(&[stmt(
                "Deny",
                "\"*\"",
                "\"GetObject\"",
                "\"examplebucket/*\"",
                "",
            )]),
            None,
            vec![],
            "obj",
            "none",
        ),
        (
            "resource prefix, inside",
            policy(&[stmt(
                "Deny",
                "\"*\"",
                "\"PutObject\"",
                "\"examplebucket/private/*\"",
                "",
            )]),
            None,
            vec![],
            "private/a/b",
            "deny",
        ),
        (
            "resource prefix, outside",
            policy(&[stmt(
                "Deny",
                "\"*\"",
                "\"PutObject\"",
                "\"examplebucket/private/*\"",
                "",
            )]),
            None,
            vec![],
            "public/a",
            "none",
        ),
        (
            "resource list and ?",
            policy(&[stmt(
                "Deny",
                "\"*\"",
                "\"PutObject\"",
                "[\"examplebucket/x\",\"examplebucket/o?j\"]",
                "",
            )]),
            None,
            vec![],
            "obj",
            "deny",
        ),
        (
            "StringEquals matches",
            policy(&[stmt(
                "Deny",
                "\"*\"",
                "\"PutObject\"",
                "\"examplebucket/*\"",
                r#"{"StringEquals":{"x-obs-server-side-encryption":"kms"}}"#,
            )]),
            None,
            vec![(SSE, "kms")],
            "obj",
            "deny",
        ),
        (
            "StringEquals absent key",
            policy(&[stmt(
                "Deny",
                "\"*\"",
                "\"PutObject\"",
                "\"examplebucket/*\"",
                r#"{"StringEquals":{"x-obs-server-side-encryption":"kms"}}"#,
            )]),
            None,
            vec![],
            "obj",
            "none",
        ),
        (
            "StringNotEquals value list",
            policy(&[stmt(
                "Deny",
                "\"*\"",
                "\"PutObject\"",
                "\"examplebucket/*\"",
                r#"{"StringNotEquals":{"x-obs-server-side-encryption":["kms","other"]}}"#,
            )]),
            None,
            vec![(SSE, "kms")],
            "obj",
            "none",
        ),
        (
            "Null true, key absent",
            policy(&[stmt(
                "Deny",
                "\"*\"",
                "\"PutObject\"",
                "\"examplebucket/*\"",
                r#"{"Null":{"x-obs-server-side-encryption-kms-key-id":"true"}}"#,
            )]),
            None,
            vec![(SSE, "kms")],
            "obj",
            "deny",
        ),
        (
            "Null true, key present",
            policy(&[stmt(
                "Deny",
                "\"*\"",
                "\"PutObject\"",
                "\"examplebucket/*\"",
                r#"{"Null":{"x-obs-server-side-encryption-kms-key-id":true}}"#,
            )]),
            None,
            vec![(SSE, "kms"), (KEY, SEED_KEY_UUID)],
            "obj",
            "none",
        ),
        (
            "Null false, key present",
            policy(&[stmt(
                "Deny",
                "\"*\"",
                "\"PutObject\"",
                "\"examplebucket/*\"",
                r#"{"Null":{"obs:x-obs-server-side-encryption":"false"}}"#,
            )]),
            None,
            vec![(SSE, "kms")],
            "obj",
            "deny",
        ),
        (
            "StringLike on key ID",
            policy(&[stmt(
                "Deny",
                "\"*\"",
                "\"PutObject\"",
                "\"examplebucket/*\"",
                r#"{"StringLike":{"x-obs-server-side-encryption-kms-key-id":"522d6070-*"}}"#,
            )]),
            None,
            vec![(SSE, "kms"), (KEY, SEED_KEY_UUID)],
            "obj",
            "deny",
        ),
        (
            "two operators: all must hold",
            policy(&[stmt(
                "Deny",
                "\"*\"",
                "\"PutObject\"",
                "\"examplebucket/*\"",
                r#"{"StringEquals":{"x-obs-server-side-encryption":"kms"},"Null":{"x-obs-server-side-encryption-kms-key-id":"true"}}"#,
            )]),
            None,
            vec![(SSE, "kms"), (KEY, SEED_KEY_UUID)],
            "obj",
            "none",
        ),
        (
            "allow only",
            policy(&[stmt(
                "Allow",
                "\"*\"",
                "\"PutObject\"",
                "\"examplebucket/*\"",
                "",
            )]),
            None,
            vec![],
            "obj",
            "allow",
        ),
        (
            "explicit deny wins over allow",
            policy(&[
                stmt("Allow", "\"*\"", "\"*\"", "\"examplebucket/*\"", ""),
                stmt("Deny", "\"*\"", "\"PutObject\"", "\"examplebucket/*\"", ""),
            ]),
            None,
            vec![],
            "obj",
            "deny",
        ),
    ];
    for (name, json, user, h, object_key, want) in cases {
        let env = Env::new();
        env.seed_default_key();
        let p = BucketPolicy::parse(BUCKET, &json).unwrap_or_else(|e| panic!("{name}: {e}"));
        let b = bucket().with_policy(p);
        let mut c = caller(OWNER);
        if let Some(u) = user {
            c = c.with_user(u);
        }
        let h = headers(&h);
        let got = env
            .adapter
            .decide(&ObsRequest::new(
                Operation::PutObject,
                &c,
                &b,
                object_key,
                &h,
            ))
            .await;
        match (want, got) {
            ("deny", Err(e)) => assert_eq!(code(&e), (403, "AccessDenied"), "{name}"),
            ("allow", Ok(d)) => assert_eq!(
                d.policy,
                PolicyVerdict::Allow {
                    sid: Some("s".into())
                },
                "{name}"
            ),
            ("none", Ok(d)) => assert_eq!(d.policy, PolicyVerdict::NoMatch, "{name}"),
            (want, got) => panic!("{name}: want {want}, got {got:?}"),
        }
    }
}

#[test]
fn rule_08_malformed_policies_are_refused_when_set() {
    let ok = r#""Effect":"Deny","Principal":"*","Action":"PutObject","Resource":"examplebucket/*""#;
    let with = |extra: &str| format!(r#"{{"Statement":[{{{ok}{extra}}}]}}"#);
    let big = format!(
        r#"{{"Id":"{}","Statement":[{{{ok}}}]}}"#,
        "x".repeat(21_000)
    );
    // (name, policy, part of the message)
    let cases: Vec<(&str, String, &str)> = vec![
        ("not JSON", "{".into(), "invalid JSON"),
        ("seed text verbatim", SEED_POLICY_VERBATIM.replace("YourBucket", BUCKET), "invalid JSON"),
        ("not an object", "[]".into(), "JSON object"),
        ("no Statement", "{}".into(), "Statement is required"),
        ("empty Statement", r#"{"Statement":[]}"#.into(), "empty"),
        ("duplicate member", format!(r#"{{"Statement":[{{{ok},"Effect":"Allow"}}]}}"#), "given twice"),
        ("unknown top member", format!(r#"{{"Foo":1,"Statement":[{{{ok}}}]}}"#), "unknown member \"Foo\""),
        ("bad Version", format!(r#"{{"Version":"2020-01-01","Statement":[{{{ok}}}]}}"#), "Version"),
        ("Effect lower case", r#"{"Statement":{"Effect":"deny","Principal":"*","Action":"PutObject","Resource":"examplebucket/*"}}"#.into(), "\"deny\" is not"),
        ("missing Effect", r#"{"Statement":{"Principal":"*","Action":"PutObject","Resource":"examplebucket/*"}}"#.into(), "Effect is required"),
        ("missing Principal", r#"{"Statement":{"Effect":"Deny","Action":"PutObject","Resource":"examplebucket/*"}}"#.into(), "Principal is required"),
        ("missing Action", r#"{"Statement":{"Effect":"Deny","Principal":"*","Resource":"examplebucket/*"}}"#.into(), "Action is required"),
        ("missing Resource", r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"PutObject"}}"#.into(), "Resource is required"),
        ("unknown statement member", with(r#","Foo":"x""#), "unknown member"),
        ("NotAction", with(r#","NotAction":"GetObject""#), "NotAction is not supported"),
        ("Principal string", r#"{"Statement":{"Effect":"Deny","Principal":"someone","Action":"PutObject","Resource":"examplebucket/*"}}"#.into(), "Principal"),
        ("Principal AWS", r#"{"Statement":{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"PutObject","Resource":"examplebucket/*"}}"#.into(), "unknown member \"AWS\""),
        ("Principal bad id", r#"{"Statement":{"Effect":"Deny","Principal":{"ID":["user/x"]},"Action":"PutObject","Resource":"examplebucket/*"}}"#.into(), "is not \"*\""),
        ("Principal bad domain", r#"{"Statement":{"Effect":"Deny","Principal":{"ID":["domain/a_b"]},"Action":"PutObject","Resource":"examplebucket/*"}}"#.into(), "domain ID"),
        ("misspelt action", r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"PutObjcet","Resource":"examplebucket/*"}}"#.into(), "matches no known OBS action"),
        ("empty action list", r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":[],"Resource":"examplebucket/*"}}"#.into(), "empty list"),
        ("action not a string", r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":[1],"Resource":"examplebucket/*"}}"#.into(), "must be a string"),
        ("other bucket", r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"PutObject","Resource":"YourBucket/*"}}"#.into(), "of this bucket"),
        ("bucket-name prefix", r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"PutObject","Resource":"examplebucket2/*"}}"#.into(), "of this bucket"),
        ("resource *", r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"PutObject","Resource":"*"}}"#.into(), "of this bucket"),
        ("unknown operator", with(r#","Condition":{"StringEqualz":{"x-obs-server-side-encryption":"kms"}}"#), "operator \"StringEqualz\" is not supported"),
        ("IfExists operator", with(r#","Condition":{"StringEqualsIfExists":{"x-obs-server-side-encryption":"kms"}}"#), "not supported"),
        ("ForAnyValue operator", with(r#","Condition":{"ForAnyValue:StringEquals":{"x-obs-server-side-encryption":"kms"}}"#), "not supported"),
        ("unknown condition key", with(r#","Condition":{"StringNotEquals":{"x-obs-server-side-encryptoin":"kms"}}"#), "condition key"),
        ("empty condition", with(r#","Condition":{}"#), "must not be empty"),
        ("empty operator", with(r#","Condition":{"StringEquals":{}}"#), "must not be empty"),
        ("Null with a word", with(r#","Condition":{"Null":{"x-obs-server-side-encryption":"yes"}}"#), "true or false"),
        ("number value", with(r#","Condition":{"StringEquals":{"x-obs-server-side-encryption":1}}"#), "string"),
        ("too big", big, "more than 20480"),
    ];
    for (name, json, part) in cases {
        let err = BucketPolicy::parse(BUCKET, &json).expect_err(name);
        let e = AdapterError::from(err);
        assert_eq!(code(&e), (400, "MalformedPolicy"), "{name}");
        assert!(e.to_string().contains(part), "{name}: {e}");
        assert!(
            e.to_string().starts_with("malformed bucket policy: "),
            "{name}: {e}"
        );
    }
}

#[tokio::test]
async fn rule_09_no_cross_tenant_access_to_sse_kms_objects() {
    let env = Env::new();
    let key = env.seed_default_key();
    let kms_obj = StoredObject::kms(domain(OWNER), key.clone());
    let plain_obj = StoredObject::plaintext(domain(OWNER));
    // A policy that grants everything to everyone.
    let allow_all = BucketPolicy::parse(
        BUCKET,
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":["examplebucket","examplebucket/*"]}]}"#,
    )
    .unwrap();
    let open = bucket().with_policy(allow_all);
    let copy = ("x-obs-copy-source", "/examplebucket/obj");
    let denied: Want = Err((403, "AccessDenied", "only to the tenant that owns them"));
    // (name, operation, caller, headers, stored, expected)
    let cases: Vec<(
        &str,
        Operation,
        &str,
        Vec<(&str, &str)>,
        Option<&StoredObject>,
        Want,
    )> = vec![
        (
            "GET by other tenant",
            Operation::GetObject,
            OTHER,
            vec![],
            Some(&kms_obj),
            denied,
        ),
        (
            "HEAD by other tenant",
            Operation::HeadObject,
            OTHER,
            vec![],
            Some(&kms_obj),
            denied,
        ),
        (
            "copy source of other tenant",
            Operation::CopyObject,
            OTHER,
            vec![copy],
            Some(&kms_obj),
            denied,
        ),
        (
            "part of other tenant's upload",
            Operation::UploadPart,
            OTHER,
            vec![],
            Some(&kms_obj),
            denied,
        ),
        (
            "complete other tenant's upload",
            Operation::CompleteMultipartUpload,
            OTHER,
            vec![],
            Some(&kms_obj),
            denied,
        ),
        (
            "SSE-KMS PUT into other tenant's bucket",
            Operation::PutObject,
            OTHER,
            vec![(SSE, "kms")],
            None,
            denied,
        ),
        (
            "plain PUT into other tenant's bucket: ACL's call",
            Operation::PutObject,
            OTHER,
            vec![],
            None,
            Ok(None),
        ),
        (
            "GET plaintext object by other tenant: ACL's call",
            Operation::GetObject,
            OTHER,
            vec![],
            Some(&plain_obj),
            Ok(None),
        ),
        (
            "GET by owner",
            Operation::GetObject,
            OWNER,
            vec![],
            Some(&kms_obj),
            Ok(Some("default")),
        ),
    ];
    for (name, op, who, h, stored, want) in cases {
        let calls = env.fake.calls();
        let got = env.decide(op, who, &open, &headers(&h), stored).await;
        if got.is_err() {
            assert_eq!(
                env.fake.calls(),
                calls,
                "{name}: refused without asking the KMS"
            );
        }
        check(name, &got, &want, &key.to_string());
    }
    // Bucket default encryption does not let another tenant write SSE-KMS objects into the bucket.
    let b = bucket().with_default_encryption(DefaultEncryption::Kms { key: None });
    let err = env
        .decide(Operation::PutObject, OTHER, &b, &headers(&[]), None)
        .await
        .unwrap_err();
    assert_eq!(code(&err), (403, "AccessDenied"));
    // Inconsistent facts (object owned by OTHER under OWNER's key) are refused for both.
    let odd = StoredObject::kms(domain(OTHER), key.clone());
    for who in [OWNER, OTHER] {
        let err = env
            .decide(
                Operation::GetObject,
                who,
                &bucket(),
                &headers(&[]),
                Some(&odd),
            )
            .await
            .unwrap_err();
        assert_eq!(code(&err), (403, "AccessDenied"), "{who}");
    }
    // Data keys: another tenant cannot decrypt, even with the blob in hand.
    let dk = env
        .adapter
        .generate_data_key(&caller(OWNER), &bucket(), "obj", &kms_obj.encryption)
        .await
        .unwrap()
        .unwrap();
    let err = env
        .adapter
        .decrypt_data_key(
            &caller(OTHER),
            &bucket(),
            "obj",
            &kms_obj,
            &dk.ciphertext_blob,
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), (403, "AccessDenied"));
    let back = env
        .adapter
        .decrypt_data_key(
            &caller(OWNER),
            &bucket(),
            "obj",
            &kms_obj,
            &dk.ciphertext_blob,
        )
        .await
        .unwrap();
    assert_eq!(back.expose(), dk.plaintext.expose());
    // The blob is bound to its object: another object key does not decrypt it.
    let err = env
        .adapter
        .decrypt_data_key(
            &caller(OWNER),
            &bucket(),
            "other",
            &kms_obj,
            &dk.ciphertext_blob,
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), (500, "InternalError"));
}

#[tokio::test]
async fn rule_10_every_sse_kms_success_carries_both_headers_with_the_full_key_id() {
    let env = Env::new();
    let key = env.seed_default_key();
    let full = key.to_string();
    let kms_obj = StoredObject::kms(domain(OWNER), key.clone());
    let plain_obj = StoredObject::plaintext(domain(OWNER));
    let bare = key.uuid.to_string();
    let copy = ("x-obs-copy-source", "/b/o");
    // (operation, headers, form fields, stored, SSE-KMS expected)
    let cases: Vec<(
        Operation,
        Vec<(&str, &str)>,
        Vec<(&str, &str)>,
        Option<&StoredObject>,
        bool,
    )> = vec![
        (Operation::PutObject, vec![(SSE, "kms")], vec![], None, true),
        (
            Operation::PutObject,
            vec![(SSE, "kms"), (KEY, &bare)],
            vec![],
            None,
            true,
        ),
        (Operation::PutObject, vec![], vec![], None, false),
        (
            Operation::PostObject,
            vec![],
            vec![(SSE, "kms"), (KEY, &bare)],
            None,
            true,
        ),
        (Operation::PostObject, vec![], vec![], None, false),
        (
            Operation::CopyObject,
            vec![copy, (SSE, "kms")],
            vec![],
            Some(&plain_obj),
            true,
        ),
        (
            Operation::CopyObject,
            vec![copy],
            vec![],
            Some(&kms_obj),
            false,
        ),
        (
            Operation::InitiateMultipartUpload,
            vec![(SSE, "kms"), (KEY, &bare)],
            vec![],
            None,
            true,
        ),
        (Operation::UploadPart, vec![], vec![], Some(&kms_obj), true),
        (
            Operation::CompleteMultipartUpload,
            vec![],
            vec![],
            Some(&kms_obj),
            true,
        ),
        (
            Operation::CompleteMultipartUpload,
            vec![],
            vec![],
            Some(&plain_obj),
            false,
        ),
        (Operation::GetObject, vec![], vec![], Some(&kms_obj), true),
        (Operation::HeadObject, vec![], vec![], Some(&kms_obj), true),
        (
            Operation::HeadObject,
            vec![],
            vec![],
            Some(&plain_obj),
            false,
        ),
    ];
    for (op, h, form, stored, kms) in cases {
        let c = caller(OWNER);
        let b = bucket();
        let h = headers(&h);
        let form = pairs(&form);
        let mut req = ObsRequest::new(op, &c, &b, "obj", &h).with_form_fields(&form);
        if let Some(s) = stored {
            req = req.with_stored(s);
        }
        let d = env
            .adapter
            .decide(&req)
            .await
            .unwrap_or_else(|e| panic!("{op}: {e}"));
        if kms {
            assert_eq!(d.response_headers.len(), 2, "{op}");
            assert_eq!(d.response_headers.get(SSE).unwrap(), "kms", "{op}");
            assert_eq!(d.response_headers.get(KEY).unwrap(), full.as_str(), "{op}");
        } else {
            assert!(
                d.response_headers.is_empty(),
                "{op}: {:?}",
                d.response_headers
            );
        }
    }
}

#[test]
fn rule_11_every_error_maps_to_an_obs_error_document() {
    use obs_adapter::Place;
    let key = format!("region:{OWNER}:key/{SEED_KEY_UUID}");
    let malformed = "x".parse::<kms_proto::key_id::KeyRef>().unwrap_err();
    let policy_err = BucketPolicy::parse(BUCKET, "{").unwrap_err();
    // (error, status, code): every code the adapter can return.
    let cases: Vec<(AdapterError, u16, &str)> = vec![
        (
            AdapterError::UnsupportedAlgorithm {
                value: "AES256".into(),
                place: Place::Header,
            },
            400,
            "InvalidEncryptionAlgorithmError",
        ),
        (
            AdapterError::KeyIdWithoutSse {
                place: Place::Header,
            },
            400,
            "InvalidArgument",
        ),
        (
            AdapterError::MalformedKeyId {
                place: Place::Header,
                source: malformed,
            },
            400,
            "InvalidArgument",
        ),
        (
            AdapterError::InvalidParameter {
                name: "x-obs-server-side-encryption",
                place: Place::Header,
            },
            400,
            "InvalidArgument",
        ),
        (
            AdapterError::ConflictingParameter {
                name: "x-obs-server-side-encryption",
            },
            400,
            "InvalidArgument",
        ),
        (
            AdapterError::SseNotAllowed {
                operation: Operation::UploadPart,
                name: "x-obs-server-side-encryption",
                place: Place::Header,
                hint: "",
            },
            400,
            "InvalidArgument",
        ),
        (
            AdapterError::SseCustomerConflict {
                name: "x-obs-server-side-encryption-customer-key",
            },
            400,
            "InvalidArgument",
        ),
        (AdapterError::MissingCopySource, 400, "InvalidArgument"),
        (
            AdapterError::KeyRegionMismatch {
                key: key.clone(),
                key_region: "a".into(),
                bucket_region: "b".into(),
            },
            400,
            "InvalidArgument",
        ),
        (
            AdapterError::CustomerKeyNotAllowed { key: key.clone() },
            400,
            "InvalidArgument",
        ),
        (
            AdapterError::ForeignServiceKey {
                key: key.clone(),
                service: "evs".into(),
            },
            400,
            "InvalidArgument",
        ),
        (
            AdapterError::KeyNotFound { key: key.clone() },
            400,
            "KMS.NotFoundException",
        ),
        (
            AdapterError::KeyDisabled { key: key.clone() },
            400,
            "KMS.DisabledException",
        ),
        (
            AdapterError::KeyPendingDeletion { key: key.clone() },
            400,
            "KMS.PendingDeletionException",
        ),
        (
            AdapterError::PolicyDenied {
                sid: Some("DenyUnEncryptedObjectUploads".into()),
            },
            403,
            "AccessDenied",
        ),
        (AdapterError::CrossTenant, 403, "AccessDenied"),
        (
            AdapterError::KmsAccessDenied("token".into()),
            403,
            "AccessDenied",
        ),
        (
            AdapterError::MalformedPolicy(policy_err),
            400,
            "MalformedPolicy",
        ),
        (
            AdapterError::KmsUnavailable("connection refused 10.0.0.1".into()),
            503,
            "ServiceUnavailable",
        ),
        (
            AdapterError::MissingStoredObject {
                operation: Operation::GetObject,
                what: "object",
            },
            500,
            "InternalError",
        ),
        (
            AdapterError::Internal("secret detail".into()),
            500,
            "InternalError",
        ),
    ];
    for (err, status, c) in cases {
        let doc = err.to_obs_error("8DF400000163D45AA81D038B6AE4C482");
        assert_eq!((doc.status.as_u16(), doc.code), (status, c), "{err:?}");
        assert!(!doc.message.is_empty());
        let xml = doc.to_xml();
        assert!(
            xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>"),
            "{xml}"
        );
        assert!(xml.contains(&format!("<Code>{c}</Code>")), "{xml}");
        assert!(
            xml.contains("<RequestId>8DF400000163D45AA81D038B6AE4C482</RequestId>"),
            "{xml}"
        );
        assert!(xml.ends_with("</Error>"), "{xml}");
        // KMS internals are not shown to clients.
        assert!(
            !doc.message.contains("secret detail") && !doc.message.contains("10.0.0.1"),
            "{}",
            doc.message
        );
    }
    // The exact document for a disabled key.
    let doc = AdapterError::KeyDisabled { key: key.clone() }.to_obs_error("R1");
    assert_eq!(
        doc.to_xml(),
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>KMS.DisabledException</Code><Message>the key {key} is disabled</Message><RequestId>R1</RequestId></Error>"
        )
    );
    // Values from requests are escaped.
    let doc = AdapterError::UnsupportedAlgorithm {
        value: "<a&b>".into(),
        place: Place::Header,
    }
    .to_obs_error("R&2");
    let xml = doc.to_xml();
    assert!(xml.contains("&quot;&lt;a&amp;b&gt;&quot;"), "{xml}");
    assert!(xml.contains("<RequestId>R&amp;2</RequestId>"), "{xml}");
}

#[tokio::test]
async fn rule_11_kms_failures_map_to_obs_errors() {
    use obs_adapter::KeyServiceError as K;
    let cases = [
        (K::Unavailable("down".into()), (503, "ServiceUnavailable")),
        (K::AccessDenied("bad token".into()), (403, "AccessDenied")),
        (K::Internal("boom".into()), (500, "InternalError")),
        (K::Disabled("k".into()), (400, "KMS.DisabledException")),
        (
            K::PendingDeletion("k".into()),
            (400, "KMS.PendingDeletionException"),
        ),
        (K::NotFound("k".into()), (400, "KMS.NotFoundException")),
    ];
    for (kms_err, want) in cases {
        let env = Env::new();
        env.fake.set_outage(Some(kms_err.clone()));
        let err = env.put(&[(SSE, "kms")]).await.unwrap_err();
        assert_eq!(code(&err), want, "{kms_err:?}");
    }
}

#[tokio::test]
async fn data_keys_round_trip_through_the_adapter() {
    let env = Env::new();
    let d = env.put(&[(SSE, "kms")]).await.unwrap();
    let dk = env
        .adapter
        .generate_data_key(&caller(OWNER), &bucket(), "obj", &d.encryption)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dk.plaintext.len(), 32);
    assert!(!format!("{dk:?}").contains(&format!("{:?}", dk.plaintext.expose())));
    let obj = StoredObject {
        owner: domain(OWNER),
        encryption: d.encryption.clone(),
    };
    let pt = env
        .adapter
        .decrypt_data_key(&caller(OWNER), &bucket(), "obj", &obj, &dk.ciphertext_blob)
        .await
        .unwrap();
    assert_eq!(pt.expose(), dk.plaintext.expose());
    // Plaintext decisions need no data key.
    let none = env
        .adapter
        .generate_data_key(&caller(OWNER), &bucket(), "obj", &Encryption::Plaintext)
        .await
        .unwrap();
    assert!(none.is_none());
    let _ = ObsAdapter::new(Arc::clone(&env.fake));
}
