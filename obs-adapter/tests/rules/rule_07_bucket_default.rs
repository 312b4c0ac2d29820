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
    // Also for POST, copy targets, multipart initiation and the append that creates an object.
    let b = bucket().with_default_encryption(cfg(None));
    let src = StoredObject::plaintext(domain(OWNER));
    for (op, h, stored) in [
        (Operation::PostObject, vec![], Some(&src)),
        (
            Operation::CopyObject,
            vec![("x-obs-copy-source", "/b/o")],
            Some(&src),
        ),
        (Operation::InitiateMultipartUpload, vec![], Some(&src)),
        (Operation::AppendObject, vec![], None),
    ] {
        let got = env
            .decide(op, OWNER, &b, &headers(&h), stored)
            .await
            .unwrap();
        assert_eq!(got.encryption.key_id(), Some(&default), "{op}");
    }
    // A later append keeps its object's encryption: a plaintext object made before the default
    // was set stays plaintext.
    let got = env
        .decide(
            Operation::AppendObject,
            OWNER,
            &b,
            &headers(&[]),
            Some(&src),
        )
        .await
        .unwrap();
    assert_eq!(got.encryption.key_id(), None, "a later append");
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

/// Issue 16, point 2: the bucket default applies to uploads without encryption parameters. An
/// upload that carries SSE-C parameters (and no SSE-KMS parameter) into a bucket whose default is
/// SSE-KMS is refused (400 `InvalidArgument`, naming SSE-C), before the policy and without a KMS
/// call: it neither silently becomes SSE-KMS nor is stored in plaintext. The adapter does not
/// provide SSE-C.
#[tokio::test]
async fn rule_07_sse_c_upload_into_an_sse_kms_default_bucket_is_refused() {
    const ALG: &str = "x-obs-server-side-encryption-customer-algorithm";
    const CKEY: &str = "x-obs-server-side-encryption-customer-key";
    const MD5: &str = "x-obs-server-side-encryption-customer-key-MD5";
    let sse_c = [
        (ALG, "AES256"),
        (CKEY, "K7QkYpBkM5+hcs27fsNkUnNVaobncnLht/rCB2o/9Cw="),
        (MD5, "4XvB3tbNTN+tIEVa0/fGaQ=="),
    ];
    let copy = ("x-obs-copy-source", "/examplebucket/src");
    let src = StoredObject::plaintext(domain(OWNER));
    struct Case<'a> {
        name: &'a str,
        op: Operation,
        h: Vec<(&'a str, &'a str)>,
        form: Vec<(&'a str, &'a str)>,
        query: Vec<(&'a str, &'a str)>,
    }
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut v = extra.to_vec();
        v.extend_from_slice(&sse_c);
        v
    };
    let cases = vec![
        Case {
            name: "PUT, SSE-C headers",
            op: Operation::PutObject,
            h: with(&[]),
            form: vec![],
            query: vec![],
        },
        Case {
            name: "PUT, SSE-C algorithm header only",
            op: Operation::PutObject,
            h: vec![sse_c[0]],
            form: vec![],
            query: vec![],
        },
        Case {
            name: "PUT, SSE-C key header only",
            op: Operation::PutObject,
            h: vec![sse_c[1]],
            form: vec![],
            query: vec![],
        },
        Case {
            name: "PUT presigned, SSE-C query parameters",
            op: Operation::PutObject,
            h: vec![],
            form: vec![],
            query: with(&[]),
        },
        Case {
            name: "POST, SSE-C form fields",
            op: Operation::PostObject,
            h: vec![],
            form: with(&[]),
            query: vec![],
        },
        Case {
            name: "copy target, SSE-C headers",
            op: Operation::CopyObject,
            h: with(&[copy]),
            form: vec![],
            query: vec![],
        },
        Case {
            name: "multipart initiation, SSE-C headers",
            op: Operation::InitiateMultipartUpload,
            h: with(&[]),
            form: vec![],
            query: vec![],
        },
    ];
    for default in [
        DefaultEncryption::Kms { key: None },
        DefaultEncryption::parse("kms", Some(SEED_KEY_UUID)).unwrap(),
    ] {
        for Case {
            name,
            op,
            h,
            form,
            query,
        } in &cases
        {
            let env = Env::new();
            let b = bucket().with_default_encryption(default.clone());
            let c = caller(OWNER);
            let h = headers(h);
            let form = pairs(form);
            let query = pairs(query);
            let req = ObsRequest::new(*op, &c, &b, "obj", &h)
                .with_form_fields(&form)
                .with_query(&query)
                .with_stored(&src);
            let got = env.adapter.decide(&req).await;
            check(
                name,
                &got,
                &refused(400, "InvalidArgument", "SSE-C"),
                "default",
            );
            assert!(
                got.unwrap_err()
                    .to_string()
                    .contains("default encryption (SSE-KMS) applies only to uploads without"),
                "{name}"
            );
            assert_eq!(env.fake.calls(), 0, "{name}: no KMS call");
        }
    }
    // Unchanged elsewhere: with SSE-KMS parameters SSE-C is a conflict (rule 1), and without a
    // bucket default the adapter does not encrypt (the engine's SSE-C is not the adapter's).
    let env = Env::new();
    let b = bucket().with_default_encryption(DefaultEncryption::Kms { key: None });
    let h = headers(&with(&[(SSE, "kms")]));
    let got = env.decide(Operation::PutObject, OWNER, &b, &h, None).await;
    check(
        "SSE-KMS with SSE-C",
        &got,
        &refused(400, "InvalidArgument", "cannot be combined with SSE-C"),
        "default",
    );
    let h = headers(&with(&[]));
    let got = env
        .decide(Operation::PutObject, OWNER, &bucket(), &h, None)
        .await;
    check(
        "SSE-C, no bucket default",
        &got,
        &Want::Plaintext,
        "default",
    );
}
