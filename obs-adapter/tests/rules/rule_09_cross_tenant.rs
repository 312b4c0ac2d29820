use super::*;

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
    let denied = refused(403, "AccessDenied", "only to the tenant that owns them");
    struct Case<'a> {
        name: &'a str,
        op: Operation,
        who: &'a str,
        h: Vec<(&'a str, &'a str)>,
        stored: Option<&'a StoredObject>,
        want: Want<'a>,
    }
    let cases = vec![
        Case {
            name: "GET by other tenant",
            op: Operation::GetObject,
            who: OTHER,
            h: vec![],
            stored: Some(&kms_obj),
            want: denied,
        },
        Case {
            name: "HEAD by other tenant",
            op: Operation::HeadObject,
            who: OTHER,
            h: vec![],
            stored: Some(&kms_obj),
            want: denied,
        },
        Case {
            name: "copy source of other tenant",
            op: Operation::CopyObject,
            who: OTHER,
            h: vec![copy],
            stored: Some(&kms_obj),
            want: denied,
        },
        Case {
            name: "part of other tenant's upload",
            op: Operation::UploadPart,
            who: OTHER,
            h: vec![],
            stored: Some(&kms_obj),
            want: denied,
        },
        Case {
            name: "append to other tenant's SSE-KMS object",
            op: Operation::AppendObject,
            who: OTHER,
            h: vec![],
            stored: Some(&kms_obj),
            want: denied,
        },
        Case {
            name: "SSE-KMS append creating an object in other tenant's bucket",
            op: Operation::AppendObject,
            who: OTHER,
            h: vec![(SSE, "kms")],
            stored: None,
            want: denied,
        },
        Case {
            name: "complete other tenant's upload",
            op: Operation::CompleteMultipartUpload,
            who: OTHER,
            h: vec![],
            stored: Some(&kms_obj),
            want: denied,
        },
        Case {
            name: "SSE-KMS PUT into other tenant's bucket",
            op: Operation::PutObject,
            who: OTHER,
            h: vec![(SSE, "kms")],
            stored: None,
            want: denied,
        },
        Case {
            name: "plain PUT into other tenant's bucket: ACL's call",
            op: Operation::PutObject,
            who: OTHER,
            h: vec![],
            stored: None,
            want: Want::Plaintext,
        },
        Case {
            name: "GET plaintext object by other tenant: ACL's call",
            op: Operation::GetObject,
            who: OTHER,
            h: vec![],
            stored: Some(&plain_obj),
            want: Want::Plaintext,
        },
        Case {
            name: "GET by owner",
            op: Operation::GetObject,
            who: OWNER,
            h: vec![],
            stored: Some(&kms_obj),
            want: Want::Kms("default"),
        },
    ];
    for Case {
        name,
        op,
        who,
        h,
        stored,
        want,
    } in cases
    {
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
