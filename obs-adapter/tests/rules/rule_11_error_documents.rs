use super::*;

#[test]
fn rule_11_every_error_maps_to_an_obs_error_document() {
    use obs_adapter::Place;
    let key = format!("region:{OWNER}:key/{SEED_KEY_UUID}");
    let malformed = "x".parse::<kms_proto::key_id::KeyRef>().unwrap_err();
    let policy_err = BucketPolicy::parse(BUCKET, "{").unwrap_err();
    // Every code the adapter can return.
    struct Case<'a> {
        err: AdapterError,
        status: u16,
        c: &'a str,
    }
    let cases = vec![
        Case {
            err: AdapterError::UnsupportedAlgorithm {
                value: "AES256".into(),
                place: Place::Header,
            },
            status: 400,
            c: "InvalidEncryptionAlgorithmError",
        },
        Case {
            err: AdapterError::KeyIdWithoutSse {
                place: Place::Header,
            },
            status: 400,
            c: "InvalidArgument",
        },
        Case {
            err: AdapterError::MalformedKeyId {
                place: Place::Header,
                source: malformed,
            },
            status: 400,
            c: "InvalidArgument",
        },
        Case {
            err: AdapterError::InvalidParameter {
                name: "x-obs-server-side-encryption",
                place: Place::Header,
            },
            status: 400,
            c: "InvalidArgument",
        },
        Case {
            err: AdapterError::ConflictingParameter {
                name: "x-obs-server-side-encryption",
            },
            status: 400,
            c: "InvalidArgument",
        },
        Case {
            err: AdapterError::SseNotAllowed {
                operation: Operation::UploadPart,
                name: "x-obs-server-side-encryption",
                place: Place::Header,
                hint: "",
            },
            status: 400,
            c: "InvalidArgument",
        },
        Case {
            err: AdapterError::SseCustomerConflict {
                name: "x-obs-server-side-encryption-customer-key",
            },
            status: 400,
            c: "InvalidArgument",
        },
        Case {
            err: AdapterError::SseCustomerWithKmsDefault {
                name: "x-obs-server-side-encryption-customer-algorithm",
            },
            status: 400,
            c: "InvalidArgument",
        },
        Case {
            err: AdapterError::AppendEncryptionMismatch {
                stored: "no server-side encryption".into(),
            },
            status: 400,
            c: "InvalidArgument",
        },
        Case {
            err: AdapterError::MissingCopySource,
            status: 400,
            c: "InvalidArgument",
        },
        Case {
            err: AdapterError::KeyRegionMismatch {
                key: key.clone(),
                key_region: "a".into(),
                bucket_region: "b".into(),
            },
            status: 400,
            c: "InvalidArgument",
        },
        Case {
            err: AdapterError::CustomerKeyNotAllowed { key: key.clone() },
            status: 400,
            c: "InvalidArgument",
        },
        Case {
            err: AdapterError::ForeignServiceKey {
                key: key.clone(),
                service: "evs".into(),
            },
            status: 400,
            c: "InvalidArgument",
        },
        Case {
            err: AdapterError::KeyNotFound { key: key.clone() },
            status: 400,
            c: "KMS.NotFoundException",
        },
        Case {
            err: AdapterError::KeyDisabled { key: key.clone() },
            status: 400,
            c: "KMS.DisabledException",
        },
        Case {
            err: AdapterError::KeyPendingDeletion { key: key.clone() },
            status: 400,
            c: "KMS.KMSInvalidStateException",
        },
        Case {
            err: AdapterError::PolicyDenied {
                sid: Some("DenyUnEncryptedObjectUploads".into()),
            },
            status: 403,
            c: "AccessDenied",
        },
        Case {
            err: AdapterError::CrossTenant,
            status: 403,
            c: "AccessDenied",
        },
        Case {
            err: AdapterError::KmsAccessDenied("token".into()),
            status: 500,
            c: "InternalError",
        },
        Case {
            err: AdapterError::MalformedPolicy(policy_err),
            status: 400,
            c: "MalformedPolicy",
        },
        Case {
            err: AdapterError::KmsUnavailable("connection refused 10.0.0.1".into()),
            status: 503,
            c: "ServiceUnavailable",
        },
        Case {
            err: AdapterError::MissingStoredObject {
                operation: Operation::GetObject,
                what: "object",
            },
            status: 500,
            c: "InternalError",
        },
        Case {
            err: AdapterError::Internal("secret detail".into()),
            status: 500,
            c: "InternalError",
        },
    ];
    for Case { err, status, c } in cases {
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
    struct Case<'a> {
        kms_err: K,
        want: (u16, &'a str),
    }
    let cases = vec![
        Case {
            kms_err: K::Unavailable("down".into()),
            want: (503, "ServiceUnavailable"),
        },
        Case {
            kms_err: K::AccessDenied("bad token".into()),
            want: (500, "InternalError"),
        },
        Case {
            kms_err: K::Internal("boom".into()),
            want: (500, "InternalError"),
        },
        Case {
            kms_err: K::Disabled("k".into()),
            want: (400, "KMS.DisabledException"),
        },
        Case {
            kms_err: K::PendingDeletion("k".into()),
            want: (400, "KMS.KMSInvalidStateException"),
        },
        Case {
            kms_err: K::NotFound("k".into()),
            want: (400, "KMS.NotFoundException"),
        },
    ];
    for Case { kms_err, want } in cases {
        let env = Env::new();
        env.fake.set_outage(Some(kms_err.clone()));
        let err = env.put(&[(SSE, "kms")]).await.unwrap_err();
        assert_eq!(code(&err), want, "{kms_err:?}");
    }
}

/// Issue 16, point 4: when the KMS refuses the adapter's own credentials (UNAUTHENTICATED or
/// PERMISSION_DENIED from the daemon), the client gets 500 `InternalError` with a message that
/// names the server's KMS credentials, not 403 `AccessDenied`, which would blame the caller.
#[tokio::test]
async fn rule_11_kms_refusing_the_adapters_credentials_is_a_server_error() {
    let env = Env::new();
    env.seed_default_key();
    env.fake
        .set_outage(Some(obs_adapter::KeyServiceError::AccessDenied(
            "unknown bearer token".into(),
        )));
    for h in [vec![(SSE, "kms")], vec![(SSE, "kms"), (KEY, SEED_KEY_UUID)]] {
        let err = env.put(&h).await.unwrap_err();
        assert_eq!(code(&err), (500, "InternalError"), "{err}");
        assert!(err.to_string().contains("adapter's credentials"), "{err}");
        let doc = err.to_obs_error("R1");
        assert_eq!(doc.status.as_u16(), 500);
        assert!(
            doc.message.contains("credentials") && doc.message.contains("not the caller's"),
            "{}",
            doc.message
        );
        // The KMS's own words stay in the log, not in the client's document.
        assert!(!doc.message.contains("bearer token"), "{}", doc.message);
        assert!(!doc.to_xml().contains("AccessDenied"));
    }
    // Through the gRPC key service's mapping: both daemon codes.
    for status in [
        kms_proto::ErrorCode::Unauthenticated.status("no credentials"),
        kms_proto::ErrorCode::PermissionDenied.status("domain disagrees with the token"),
    ] {
        let err = AdapterError::from(obs_adapter::kms::grpc::map_status(&status));
        assert_eq!(code(&err), (500, "InternalError"), "{status:?}");
    }
}
