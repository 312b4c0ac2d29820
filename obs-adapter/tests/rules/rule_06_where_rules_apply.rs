use super::*;

#[tokio::test]
async fn rule_06_where_the_rules_apply() {
    let env = Env::new();
    let key = env.seed_default_key();
    let k = key.to_string();
    let plain_src = StoredObject::plaintext(domain(OWNER));
    let kms_src = StoredObject::kms(domain(OWNER), key.clone());
    let copy = ("x-obs-copy-source", "/bucket/srcobject1");
    let ks: &str = &k;
    struct Case<'a> {
        name: &'a str,
        op: Operation,
        h: Vec<(&'a str, &'a str)>,
        form: Vec<(&'a str, &'a str)>,
        query: Vec<(&'a str, &'a str)>,
        stored: Option<&'a StoredObject>,
        want: Want<'a>,
    }
    let cases = vec![
        Case {
            name: "PUT header",
            op: Operation::PutObject,
            h: vec![(SSE, "kms")],
            form: vec![],
            query: vec![],
            stored: None,
            want: Want::Kms(ks),
        },
        Case {
            name: "PUT form field refused",
            op: Operation::PutObject,
            h: vec![],
            form: vec![(SSE, "kms")],
            query: vec![],
            stored: None,
            want: refused(400, "InvalidArgument", "only POST uploads"),
        },
        Case {
            name: "POST form fields",
            op: Operation::PostObject,
            h: vec![],
            form: vec![(SSE, "kms"), (KEY, ks)],
            query: vec![],
            stored: None,
            want: Want::Kms(ks),
        },
        Case {
            name: "POST form field names in any case",
            op: Operation::PostObject,
            h: vec![],
            form: vec![("X-Obs-Server-Side-Encryption", "kms")],
            query: vec![],
            stored: None,
            want: Want::Kms(ks),
        },
        Case {
            name: "POST form field twice",
            op: Operation::PostObject,
            h: vec![],
            form: vec![(SSE, "kms"), ("X-OBS-SERVER-SIDE-ENCRYPTION", "kms")],
            query: vec![],
            stored: None,
            want: refused(400, "InvalidArgument", "given once"),
        },
        Case {
            name: "POST header refused",
            op: Operation::PostObject,
            h: vec![(SSE, "kms")],
            form: vec![],
            query: vec![],
            stored: None,
            want: refused(
                400,
                "InvalidArgument",
                "POST uploads take it as a form field",
            ),
        },
        Case {
            name: "POST query refused",
            op: Operation::PostObject,
            h: vec![],
            form: vec![],
            query: vec![(SSE, "kms")],
            stored: None,
            want: refused(400, "InvalidArgument", "query parameter"),
        },
        Case {
            name: "POST form AES256",
            op: Operation::PostObject,
            h: vec![],
            form: vec![(SSE, "AES256")],
            query: vec![],
            stored: None,
            want: refused(400, "InvalidEncryptionAlgorithmError", "form field"),
        },
        Case {
            name: "copy plain source to SSE-KMS target",
            op: Operation::CopyObject,
            h: vec![copy, (SSE, "kms"), (KEY, ks)],
            form: vec![],
            query: vec![],
            stored: Some(&plain_src),
            want: Want::Kms(ks),
        },
        Case {
            name: "copy SSE-KMS source to plain target",
            op: Operation::CopyObject,
            h: vec![copy],
            form: vec![],
            query: vec![],
            stored: Some(&kms_src),
            want: Want::Plaintext,
        },
        Case {
            name: "copy without x-obs-copy-source",
            op: Operation::CopyObject,
            h: vec![(SSE, "kms")],
            form: vec![],
            query: vec![],
            stored: Some(&plain_src),
            want: refused(400, "InvalidArgument", "x-obs-copy-source"),
        },
        Case {
            name: "copy without source facts",
            op: Operation::CopyObject,
            h: vec![copy],
            form: vec![],
            query: vec![],
            stored: None,
            want: refused(500, "InternalError", "copy source"),
        },
        Case {
            name: "initiate multipart",
            op: Operation::InitiateMultipartUpload,
            h: vec![(SSE, "kms")],
            form: vec![],
            query: vec![],
            stored: None,
            want: Want::Kms(ks),
        },
        Case {
            name: "upload part inherits",
            op: Operation::UploadPart,
            h: vec![],
            form: vec![],
            query: vec![],
            stored: Some(&kms_src),
            want: Want::Kms(ks),
        },
        Case {
            name: "upload part of plain upload",
            op: Operation::UploadPart,
            h: vec![],
            form: vec![],
            query: vec![],
            stored: Some(&plain_src),
            want: Want::Plaintext,
        },
        Case {
            name: "upload part with SSE header",
            op: Operation::UploadPart,
            h: vec![(SSE, "kms")],
            form: vec![],
            query: vec![],
            stored: Some(&kms_src),
            want: refused(400, "InvalidArgument", "inherit the encryption"),
        },
        Case {
            name: "upload part with key header",
            op: Operation::UploadPart,
            h: vec![(KEY, ks)],
            form: vec![],
            query: vec![],
            stored: Some(&kms_src),
            want: refused(400, "InvalidArgument", "UploadPart does not accept"),
        },
        Case {
            name: "append that creates the object takes headers",
            op: Operation::AppendObject,
            h: vec![(SSE, "kms")],
            form: vec![],
            query: vec![],
            stored: None,
            want: Want::Kms(ks),
        },
        Case {
            name: "append that creates the object refuses form fields",
            op: Operation::AppendObject,
            h: vec![],
            form: vec![(SSE, "kms")],
            query: vec![],
            stored: None,
            want: refused(400, "InvalidArgument", "only POST uploads"),
        },
        Case {
            name: "later append inherits",
            op: Operation::AppendObject,
            h: vec![],
            form: vec![],
            query: vec![],
            stored: Some(&kms_src),
            want: Want::Kms(ks),
        },
        Case {
            name: "later append may repeat its object's encryption",
            op: Operation::AppendObject,
            h: vec![(SSE, "kms"), (KEY, ks)],
            form: vec![],
            query: vec![],
            stored: Some(&kms_src),
            want: Want::Kms(ks),
        },
        Case {
            name: "later append of a plain object inherits",
            op: Operation::AppendObject,
            h: vec![],
            form: vec![],
            query: vec![],
            stored: Some(&plain_src),
            want: Want::Plaintext,
        },
        Case {
            name: "later append asking SSE-KMS of a plain object",
            op: Operation::AppendObject,
            h: vec![(SSE, "kms")],
            form: vec![],
            query: vec![],
            stored: Some(&plain_src),
            want: refused(400, "InvalidArgument", "inherits the encryption"),
        },
        Case {
            name: "later append naming another key",
            op: Operation::AppendObject,
            h: vec![(SSE, "kms"), (KEY, "0d0466b0-e727-4d9c-b35d-f84bb474a37f")],
            form: vec![],
            query: vec![],
            stored: Some(&kms_src),
            want: refused(400, "InvalidArgument", "inherits the encryption"),
        },
        Case {
            name: "complete inherits",
            op: Operation::CompleteMultipartUpload,
            h: vec![],
            form: vec![],
            query: vec![],
            stored: Some(&kms_src),
            want: Want::Kms(ks),
        },
        Case {
            name: "complete with SSE header",
            op: Operation::CompleteMultipartUpload,
            h: vec![(SSE, "kms")],
            form: vec![],
            query: vec![],
            stored: Some(&kms_src),
            want: refused(
                400,
                "InvalidArgument",
                "CompleteMultipartUpload does not accept",
            ),
        },
        Case {
            name: "presigned query",
            op: Operation::PutObject,
            h: vec![],
            form: vec![],
            query: vec![(SSE, "kms")],
            stored: None,
            want: Want::Kms(ks),
        },
        Case {
            name: "presigned query with key",
            op: Operation::PutObject,
            h: vec![],
            form: vec![],
            query: vec![(SSE, "kms"), (KEY, ks)],
            stored: None,
            want: Want::Kms(ks),
        },
        Case {
            name: "presigned query, other case",
            op: Operation::PutObject,
            h: vec![],
            form: vec![],
            query: vec![("X-Obs-Server-Side-Encryption", "kms")],
            stored: None,
            want: Want::Kms(ks),
        },
        Case {
            name: "query and header agree",
            op: Operation::PutObject,
            h: vec![(SSE, "kms")],
            form: vec![],
            query: vec![(SSE, "kms")],
            stored: None,
            want: Want::Kms(ks),
        },
        Case {
            name: "query and header conflict",
            op: Operation::PutObject,
            h: vec![(SSE, "kms")],
            form: vec![],
            query: vec![(SSE, "AES256")],
            stored: None,
            want: refused(400, "InvalidArgument", "different values"),
        },
        Case {
            name: "query key without SSE",
            op: Operation::PutObject,
            h: vec![],
            form: vec![],
            query: vec![(KEY, ks)],
            stored: None,
            want: refused(400, "InvalidArgument", "query parameter"),
        },
        Case {
            name: "query twice",
            op: Operation::PutObject,
            h: vec![],
            form: vec![],
            query: vec![(SSE, "kms"), (SSE, "kms")],
            stored: None,
            want: refused(400, "InvalidArgument", "given once"),
        },
        Case {
            name: "GET with SSE header",
            op: Operation::GetObject,
            h: vec![(SSE, "kms")],
            form: vec![],
            query: vec![],
            stored: Some(&kms_src),
            want: refused(
                400,
                "InvalidArgument",
                "read with the key it was stored under",
            ),
        },
        Case {
            name: "HEAD with key query",
            op: Operation::HeadObject,
            h: vec![],
            form: vec![],
            query: vec![(KEY, ks)],
            stored: Some(&kms_src),
            want: refused(400, "InvalidArgument", "HeadObject does not accept"),
        },
        Case {
            name: "GET reads object's key",
            op: Operation::GetObject,
            h: vec![],
            form: vec![],
            query: vec![],
            stored: Some(&kms_src),
            want: Want::Kms(ks),
        },
        Case {
            name: "GET without object facts",
            op: Operation::GetObject,
            h: vec![],
            form: vec![],
            query: vec![],
            stored: None,
            want: refused(500, "InternalError", "object"),
        },
    ];
    for Case {
        name,
        op,
        h,
        form,
        query,
        stored,
        want,
    } in cases
    {
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
