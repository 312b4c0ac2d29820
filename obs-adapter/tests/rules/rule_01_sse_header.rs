use super::*;

#[tokio::test]
async fn rule_01_sse_header_selects_kms_and_refuses_everything_else() {
    struct Case<'a> {
        name: &'a str,
        h: Vec<(&'a str, &'a str)>,
        want: Want<'a>,
    }
    let cases = vec![
        Case {
            name: "no header: plaintext",
            h: vec![],
            want: Want::Plaintext,
        },
        Case {
            name: "kms",
            h: vec![(SSE, "kms")],
            want: Want::Kms("default"),
        },
        Case {
            name: "AES256 refused, named",
            h: vec![(SSE, "AES256")],
            want: refused(400, "InvalidEncryptionAlgorithmError", "\"AES256\""),
        },
        Case {
            name: "upper case KMS refused",
            h: vec![(SSE, "KMS")],
            want: refused(400, "InvalidEncryptionAlgorithmError", "\"KMS\""),
        },
        Case {
            name: "empty value refused",
            h: vec![(SSE, "")],
            want: refused(400, "InvalidEncryptionAlgorithmError", "\"\""),
        },
        Case {
            name: "padded value refused",
            h: vec![(SSE, "kms ")],
            want: refused(400, "InvalidEncryptionAlgorithmError", "\"kms \""),
        },
        Case {
            name: "key ID without SSE header",
            h: vec![(KEY, SEED_KEY_UUID)],
            want: refused(
                400,
                "InvalidArgument",
                "requires x-obs-server-side-encryption: kms",
            ),
        },
        Case {
            name: "key ID with another algorithm",
            h: vec![(SSE, "AES256"), (KEY, SEED_KEY_UUID)],
            want: refused(400, "InvalidEncryptionAlgorithmError", "AES256"),
        },
        Case {
            name: "SSE-KMS with SSE-C",
            h: vec![
                (SSE, "kms"),
                ("x-obs-server-side-encryption-customer-algorithm", "AES256"),
            ],
            want: refused(400, "InvalidArgument", "cannot be combined with SSE-C"),
        },
        Case {
            name: "SSE header twice",
            h: vec![(SSE, "kms"), (SSE, "kms")],
            want: refused(400, "InvalidArgument", "must be given once"),
        },
        Case {
            name: "key ID header twice",
            h: vec![(SSE, "kms"), (KEY, SEED_KEY_UUID), (KEY, SEED_KEY_UUID)],
            want: refused(400, "InvalidArgument", "must be given once"),
        },
    ];
    for Case { name, h, want } in cases {
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

/// Issue 16, point 5: `x-obs-server-side-encryption: AES256` is OBS's own SSE-OBS, which this
/// service does not provide: still 400 `InvalidEncryptionAlgorithmError`, with a message that says
/// SSE-OBS is out of scope rather than calling the value unknown. Other values are unchanged.
#[tokio::test]
async fn rule_01_aes256_is_sse_obs_and_out_of_scope() {
    let env = Env::new();
    let err = env.put(&[(SSE, "AES256")]).await.unwrap_err();
    let form = pairs(&[(SSE, "AES256")]);
    let c = caller(OWNER);
    let b = bucket();
    let none = headers(&[]);
    let post = env
        .adapter
        .decide(
            &ObsRequest::new(Operation::PostObject, &c, &b, "obj", &none).with_form_fields(&form),
        )
        .await
        .unwrap_err();
    let default = DefaultEncryption::parse("AES256", None).unwrap_err();
    for e in [err, post, default] {
        assert_eq!(code(&e), (400, "InvalidEncryptionAlgorithmError"), "{e}");
        let message = e.to_obs_error("R1").message;
        assert!(message.contains("\"AES256\""), "{message}");
        assert!(message.contains("SSE-OBS"), "{message}");
        assert!(message.contains("out of scope"), "{message}");
    }
    let other = env.put(&[(SSE, "aws:kms")]).await.unwrap_err();
    assert!(!other.to_string().contains("SSE-OBS"), "{other}");
}
