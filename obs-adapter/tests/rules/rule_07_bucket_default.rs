use super::*;

#[tokio::test]
async fn rule_07_bucket_default_encryption_applies_unless_the_request_says_otherwise() {
    let env = Env::new();
    let default = env.seed_default_key();
    let t = scope(OWNER, REGION);
    let other_obs = env.fake.create_service_key(&t, "obs");
    let customer = env.fake.create_customer_key(&t);
    let d = default.to_string();
    let o = other_obs.to_string();
    let ds: &str = &d;
    let os: &str = &o;
    let cfg = |key: Option<&str>| DefaultEncryption::parse("kms", key).unwrap();
    struct Case<'a> {
        name: &'a str,
        de: DefaultEncryption,
        h: Vec<(&'a str, &'a str)>,
        want: Want<'a>,
    }
    let cases = vec![
        Case {
            name: "no default, no header",
            de: DefaultEncryption::None,
            h: vec![],
            want: Want::Plaintext,
        },
        Case {
            name: "kms default, no header: default key",
            de: cfg(None),
            h: vec![],
            want: Want::Kms(ds),
        },
        Case {
            name: "kms default with key, no header",
            de: cfg(Some(&o)),
            h: vec![],
            want: Want::Kms(os),
        },
        Case {
            name: "kms default with bare key",
            de: cfg(Some(&other_obs.uuid.to_string())),
            h: vec![],
            want: Want::Kms(os),
        },
        Case {
            name: "request header wins over default key",
            de: cfg(Some(&o)),
            h: vec![(SSE, "kms")],
            want: Want::Kms(ds),
        },
        Case {
            name: "request key wins over default key",
            de: cfg(None),
            h: vec![(SSE, "kms"), (KEY, os)],
            want: Want::Kms(os),
        },
        Case {
            name: "default with customer key: rule 4",
            de: cfg(Some(&customer.to_string())),
            h: vec![],
            want: refused(400, "InvalidArgument", "created by customers"),
        },
        Case {
            name: "request's bad header is not rescued by the default",
            de: cfg(None),
            h: vec![(SSE, "AES256")],
            want: refused(400, "InvalidEncryptionAlgorithmError", "AES256"),
        },
    ];
    for Case { name, de, h, want } in cases {
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
