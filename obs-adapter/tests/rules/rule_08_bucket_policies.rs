use super::*;

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
    let key_id = key.to_string();
    let k: &str = &key_id;
    let kms_upload = StoredObject::kms(domain(OWNER), key.clone());
    let plain_upload = StoredObject::plaintext(domain(OWNER));
    let copy = ("x-obs-copy-source", "/b/o");
    let denied = refused(403, "AccessDenied", "DenyUnEncryptedObjectUploads");
    struct Case<'a> {
        name: &'a str,
        default_on: bool,
        op: Operation,
        h: Vec<(&'a str, &'a str)>,
        form: Vec<(&'a str, &'a str)>,
        query: Vec<(&'a str, &'a str)>,
        stored: Option<&'a StoredObject>,
        want: Want<'a>,
    }
    let cases = vec![
        Case {
            name: "PUT without header",
            default_on: false,
            op: Operation::PutObject,
            h: vec![],
            form: vec![],
            query: vec![],
            stored: None,
            want: denied,
        },
        Case {
            name: "PUT without header, bucket default would encrypt",
            default_on: true,
            op: Operation::PutObject,
            h: vec![],
            form: vec![],
            query: vec![],
            stored: None,
            want: denied,
        },
        Case {
            name: "PUT with kms",
            default_on: false,
            op: Operation::PutObject,
            h: vec![(SSE, "kms")],
            form: vec![],
            query: vec![],
            stored: None,
            want: Want::Kms(k),
        },
        Case {
            name: "PUT with kms and key",
            default_on: true,
            op: Operation::PutObject,
            h: vec![(SSE, "kms"), (KEY, k)],
            form: vec![],
            query: vec![],
            stored: None,
            want: Want::Kms(k),
        },
        Case {
            name: "POST without field",
            default_on: true,
            op: Operation::PostObject,
            h: vec![],
            form: vec![],
            query: vec![],
            stored: None,
            want: denied,
        },
        Case {
            name: "POST with field",
            default_on: false,
            op: Operation::PostObject,
            h: vec![],
            form: vec![(SSE, "kms")],
            query: vec![],
            stored: None,
            want: Want::Kms(k),
        },
        Case {
            name: "presigned with query",
            default_on: false,
            op: Operation::PutObject,
            h: vec![],
            form: vec![],
            query: vec![(SSE, "kms")],
            stored: None,
            want: Want::Kms(k),
        },
        Case {
            name: "copy without header",
            default_on: true,
            op: Operation::CopyObject,
            h: vec![copy],
            form: vec![],
            query: vec![],
            stored: Some(&plain_upload),
            want: denied,
        },
        Case {
            name: "copy with header",
            default_on: false,
            op: Operation::CopyObject,
            h: vec![copy, (SSE, "kms")],
            form: vec![],
            query: vec![],
            stored: Some(&plain_upload),
            want: Want::Kms(k),
        },
        Case {
            name: "initiate without header",
            default_on: true,
            op: Operation::InitiateMultipartUpload,
            h: vec![],
            form: vec![],
            query: vec![],
            stored: None,
            want: denied,
        },
        Case {
            name: "initiate with header",
            default_on: false,
            op: Operation::InitiateMultipartUpload,
            h: vec![(SSE, "kms")],
            form: vec![],
            query: vec![],
            stored: None,
            want: Want::Kms(k),
        },
        Case {
            name: "part of SSE-KMS upload",
            default_on: false,
            op: Operation::UploadPart,
            h: vec![],
            form: vec![],
            query: vec![],
            stored: Some(&kms_upload),
            want: Want::Kms(k),
        },
        Case {
            name: "part of plaintext upload",
            default_on: false,
            op: Operation::UploadPart,
            h: vec![],
            form: vec![],
            query: vec![],
            stored: Some(&plain_upload),
            want: denied,
        },
        Case {
            name: "later append to an SSE-KMS object, without the header",
            default_on: false,
            op: Operation::AppendObject,
            h: vec![],
            form: vec![],
            query: vec![],
            stored: Some(&kms_upload),
            want: Want::Kms(k),
        },
        Case {
            name: "later append to a plaintext object",
            default_on: false,
            op: Operation::AppendObject,
            h: vec![],
            form: vec![],
            query: vec![],
            stored: Some(&plain_upload),
            want: denied,
        },
        Case {
            name: "append that creates an object without the header",
            default_on: false,
            op: Operation::AppendObject,
            h: vec![],
            form: vec![],
            query: vec![],
            stored: None,
            want: denied,
        },
        Case {
            name: "complete SSE-KMS upload",
            default_on: false,
            op: Operation::CompleteMultipartUpload,
            h: vec![],
            form: vec![],
            query: vec![],
            stored: Some(&kms_upload),
            want: Want::Kms(k),
        },
        Case {
            name: "GET is not PutObject",
            default_on: false,
            op: Operation::GetObject,
            h: vec![],
            form: vec![],
            query: vec![],
            stored: Some(&plain_upload),
            want: Want::Plaintext,
        },
    ];
    for Case {
        name,
        default_on,
        op,
        h,
        form,
        query,
        stored,
        want,
    } in cases
    {
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
    // want: the expected verdict, "deny", "allow" or "none".
    struct Case<'a> {
        name: &'a str,
        json: String,
        user: Option<&'a str>,
        h: Vec<(&'a str, &'a str)>,
        object_key: &'a str,
        want: &'a str,
    }
    let cases = vec![
        Case {
            name: "principal *",
            json: policy(&[stmt(
                "Deny",
                "\"*\"",
                "\"PutObject\"",
                "\"examplebucket/*\"",
                "",
            )]),
            user: None,
            h: vec![],
            object_key: "obj",
            want: "deny",
        },
        Case {
            name: "principal other domain",
            json: policy(&[stmt(
                "Deny",
                &other_principal,
                "\"PutObject\"",
                "\"examplebucket/*\"",
                "",
            )]),
            user: None,
            h: vec![],
            object_key: "obj",
            want: "none",
        },
        Case {
            name: "principal own domain",
            json: policy(&[stmt(
                "Deny",
                &owner_principal,
                "\"PutObject\"",
                "\"examplebucket/*\"",
                "",
            )]),
            user: None,
            h: vec![],
            object_key: "obj",
            want: "deny",
        },
        Case {
            name: "principal user, matching",
            json: policy(&[stmt(
                "Deny",
                &owner_user,
                "\"PutObject\"",
                "\"examplebucket/*\"",
                "",
            )]),
            user: Some("alice"),
            h: vec![],
            object_key: "obj",
            want: "deny",
        },
        Case {
            name: "principal user, other user",
            json: policy(&[stmt(
                "Deny",
                &owner_user,
                "\"PutObject\"",
                "\"examplebucket/*\"",
                "",
            )]),
            user: Some("bob"),
            h: vec![],
            object_key: "obj",
            want: "none",
        },
        Case {
            name: "principal user, unknown user",
            json: policy(&[stmt(
                "Deny",
                &owner_user,
                "\"PutObject\"",
                "\"examplebucket/*\"",
                "",
            )]),
            user: None,
            h: vec![],
            object_key: "obj",
            want: "none",
        },
        Case {
            name: "principal user *",
            json: policy(&[stmt(
                "Deny",
                &any_user,
                "\"PutObject\"",
                "\"examplebucket/*\"",
                "",
            )]),
            user: Some("bob"),
            h: vec![],
            object_key: "obj",
            want: "deny",
        },
        Case {
            name: "action list",
            json: policy(&[stmt(
                "Deny",
                "\"*\"",
                "[\"GetObject\",\"PutObject\"]",
                "\"examplebucket/*\"",
                "",
            )]),
            user: None,
            h: vec![],
            object_key: "obj",
            want: "deny",
        },
        Case {
            name: "action wildcard",
            json: policy(&[stmt("Deny", "\"*\"", "\"Put*\"", "\"examplebucket/*\"", "")]),
            user: None,
            h: vec![],
            object_key: "obj",
            want: "deny",
        },
        Case {
            name: "action prefix obs:object:",
            json: policy(&[stmt(
                "Deny",
                "\"*\"",
                "\"obs:object:PutObject\"",
                "\"examplebucket/*\"",
                "",
            )]),
            user: None,
            h: vec![],
            object_key: "obj",
            want: "deny",
        },
        Case {
            name: "action *",
            json: policy(&[stmt("Deny", "\"*\"", "\"*\"", "\"examplebucket/*\"", "")]),
            user: None,
            h: vec![],
            object_key: "obj",
            want: "deny",
        },
        Case {
            name: "action other",
            json: policy(&[stmt(
                "Deny",
                "\"*\"",
                "\"GetObject\"",
                "\"examplebucket/*\"",
                "",
            )]),
            user: None,
            h: vec![],
            object_key: "obj",
            want: "none",
        },
        Case {
            name: "resource prefix, inside",
            json: policy(&[stmt(
                "Deny",
                "\"*\"",
                "\"PutObject\"",
                "\"examplebucket/private/*\"",
                "",
            )]),
            user: None,
            h: vec![],
            object_key: "private/a/b",
            want: "deny",
        },
        Case {
            name: "resource prefix, outside",
            json: policy(&[stmt(
                "Deny",
                "\"*\"",
                "\"PutObject\"",
                "\"examplebucket/private/*\"",
                "",
            )]),
            user: None,
            h: vec![],
            object_key: "public/a",
            want: "none",
        },
        Case {
            name: "resource list and ?",
            json: policy(&[stmt(
                "Deny",
                "\"*\"",
                "\"PutObject\"",
                "[\"examplebucket/x\",\"examplebucket/o?j\"]",
                "",
            )]),
            user: None,
            h: vec![],
            object_key: "obj",
            want: "deny",
        },
        Case {
            name: "StringEquals matches",
            json: policy(&[stmt(
                "Deny",
                "\"*\"",
                "\"PutObject\"",
                "\"examplebucket/*\"",
                r#"{"StringEquals":{"x-obs-server-side-encryption":"kms"}}"#,
            )]),
            user: None,
            h: vec![(SSE, "kms")],
            object_key: "obj",
            want: "deny",
        },
        Case {
            name: "StringEquals absent key",
            json: policy(&[stmt(
                "Deny",
                "\"*\"",
                "\"PutObject\"",
                "\"examplebucket/*\"",
                r#"{"StringEquals":{"x-obs-server-side-encryption":"kms"}}"#,
            )]),
            user: None,
            h: vec![],
            object_key: "obj",
            want: "none",
        },
        Case {
            name: "StringNotEquals value list",
            json: policy(&[stmt(
                "Deny",
                "\"*\"",
                "\"PutObject\"",
                "\"examplebucket/*\"",
                r#"{"StringNotEquals":{"x-obs-server-side-encryption":["kms","other"]}}"#,
            )]),
            user: None,
            h: vec![(SSE, "kms")],
            object_key: "obj",
            want: "none",
        },
        Case {
            name: "Null true, key absent",
            json: policy(&[stmt(
                "Deny",
                "\"*\"",
                "\"PutObject\"",
                "\"examplebucket/*\"",
                r#"{"Null":{"x-obs-server-side-encryption-kms-key-id":"true"}}"#,
            )]),
            user: None,
            h: vec![(SSE, "kms")],
            object_key: "obj",
            want: "deny",
        },
        Case {
            name: "Null true, key present",
            json: policy(&[stmt(
                "Deny",
                "\"*\"",
                "\"PutObject\"",
                "\"examplebucket/*\"",
                r#"{"Null":{"x-obs-server-side-encryption-kms-key-id":true}}"#,
            )]),
            user: None,
            h: vec![(SSE, "kms"), (KEY, SEED_KEY_UUID)],
            object_key: "obj",
            want: "none",
        },
        Case {
            name: "Null false, key present",
            json: policy(&[stmt(
                "Deny",
                "\"*\"",
                "\"PutObject\"",
                "\"examplebucket/*\"",
                r#"{"Null":{"obs:x-obs-server-side-encryption":"false"}}"#,
            )]),
            user: None,
            h: vec![(SSE, "kms")],
            object_key: "obj",
            want: "deny",
        },
        Case {
            name: "StringLike on key ID",
            json: policy(&[stmt(
                "Deny",
                "\"*\"",
                "\"PutObject\"",
                "\"examplebucket/*\"",
                r#"{"StringLike":{"x-obs-server-side-encryption-kms-key-id":"522d6070-*"}}"#,
            )]),
            user: None,
            h: vec![(SSE, "kms"), (KEY, SEED_KEY_UUID)],
            object_key: "obj",
            want: "deny",
        },
        Case {
            name: "two operators: all must hold",
            json: policy(&[stmt(
                "Deny",
                "\"*\"",
                "\"PutObject\"",
                "\"examplebucket/*\"",
                r#"{"StringEquals":{"x-obs-server-side-encryption":"kms"},"Null":{"x-obs-server-side-encryption-kms-key-id":"true"}}"#,
            )]),
            user: None,
            h: vec![(SSE, "kms"), (KEY, SEED_KEY_UUID)],
            object_key: "obj",
            want: "none",
        },
        Case {
            name: "allow only",
            json: policy(&[stmt(
                "Allow",
                "\"*\"",
                "\"PutObject\"",
                "\"examplebucket/*\"",
                "",
            )]),
            user: None,
            h: vec![],
            object_key: "obj",
            want: "allow",
        },
        Case {
            name: "explicit deny wins over allow",
            json: policy(&[
                stmt("Allow", "\"*\"", "\"*\"", "\"examplebucket/*\"", ""),
                stmt("Deny", "\"*\"", "\"PutObject\"", "\"examplebucket/*\"", ""),
            ]),
            user: None,
            h: vec![],
            object_key: "obj",
            want: "deny",
        },
    ];
    for Case {
        name,
        json,
        user,
        h,
        object_key,
        want,
    } in cases
    {
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
    struct Case<'a> {
        name: &'a str,
        json: String,
        part: &'a str,
    }
    let cases = vec![Case {name: "not JSON", json: "{".into(), part: "invalid JSON"},
Case {name: "seed text verbatim", json: SEED_POLICY_VERBATIM.replace("YourBucket", BUCKET), part: "invalid JSON"},
Case {name: "not an object", json: "[]".into(), part: "JSON object"},
Case {name: "no Statement", json: "{}".into(), part: "Statement is required"},
Case {name: "empty Statement", json: r#"{"Statement":[]}"#.into(), part: "empty"},
Case {name: "duplicate member", json: format!(r#"{{"Statement":[{{{ok},"Effect":"Allow"}}]}}"#), part: "given twice"},
Case {name: "unknown top member", json: format!(r#"{{"Foo":1,"Statement":[{{{ok}}}]}}"#), part: "unknown member \"Foo\""},
Case {name: "bad Version", json: format!(r#"{{"Version":"2020-01-01","Statement":[{{{ok}}}]}}"#), part: "Version"},
Case {name: "Effect lower case", json: r#"{"Statement":{"Effect":"deny","Principal":"*","Action":"PutObject","Resource":"examplebucket/*"}}"#.into(), part: "\"deny\" is not"},
Case {name: "missing Effect", json: r#"{"Statement":{"Principal":"*","Action":"PutObject","Resource":"examplebucket/*"}}"#.into(), part: "Effect is required"},
Case {name: "missing Principal", json: r#"{"Statement":{"Effect":"Deny","Action":"PutObject","Resource":"examplebucket/*"}}"#.into(), part: "Principal is required"},
Case {name: "missing Action", json: r#"{"Statement":{"Effect":"Deny","Principal":"*","Resource":"examplebucket/*"}}"#.into(), part: "Action is required"},
Case {name: "missing Resource", json: r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"PutObject"}}"#.into(), part: "Resource is required"},
Case {name: "unknown statement member", json: with(r#","Foo":"x""#), part: "unknown member"},
Case {name: "NotAction", json: with(r#","NotAction":"GetObject""#), part: "NotAction is not supported"},
Case {name: "Principal string", json: r#"{"Statement":{"Effect":"Deny","Principal":"someone","Action":"PutObject","Resource":"examplebucket/*"}}"#.into(), part: "Principal"},
Case {name: "Principal AWS role", json: r#"{"Statement":{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::783fc6652cf246c096ea836694f71855:role/x"},"Action":"PutObject","Resource":"examplebucket/*"}}"#.into(), part: "is not \"*\", \"arn:aws:iam::"},
Case {name: "Principal AWS not an ARN", json: r#"{"Statement":{"Effect":"Deny","Principal":{"AWS":"783fc6652cf246c096ea836694f71855"},"Action":"PutObject","Resource":"examplebucket/*"}}"#.into(), part: "is not \"*\", \"arn:aws:iam::"},
Case {name: "Principal ID and AWS", json: r#"{"Statement":{"Effect":"Deny","Principal":{"ID":"*","AWS":"*"},"Action":"PutObject","Resource":"examplebucket/*"}}"#.into(), part: "S3's {\"AWS\""},
Case {name: "S3 action OBS does not know", json: r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"s3:GetObjectTagging","Resource":"examplebucket/*"}}"#.into(), part: "matches no known OBS action"},
Case {name: "another bucket's ARN", json: r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"PutObject","Resource":"arn:aws:s3:::other/*"}}"#.into(), part: "of this bucket"},
Case {name: "S3's SecureTransport", json: with(r#","Condition":{"Bool":{"aws:SecureTransport":"false"}}"#), part: "operator \"Bool\" is not supported"},
Case {name: "another S3 condition key", json: with(r#","Condition":{"StringEquals":{"s3:x-amz-acl":"private"}}"#), part: "condition key"},
Case {name: "Principal bad id", json: r#"{"Statement":{"Effect":"Deny","Principal":{"ID":["user/x"]},"Action":"PutObject","Resource":"examplebucket/*"}}"#.into(), part: "is not \"*\""},
Case {name: "Principal bad domain", json: r#"{"Statement":{"Effect":"Deny","Principal":{"ID":["domain/a_b"]},"Action":"PutObject","Resource":"examplebucket/*"}}"#.into(), part: "domain ID"},
Case {name: "misspelt action", json: r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"PutObjcet","Resource":"examplebucket/*"}}"#.into(), part: "matches no known OBS action"},
Case {name: "empty action list", json: r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":[],"Resource":"examplebucket/*"}}"#.into(), part: "empty list"},
Case {name: "action not a string", json: r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":[1],"Resource":"examplebucket/*"}}"#.into(), part: "must be a string"},
Case {name: "other bucket", json: r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"PutObject","Resource":"YourBucket/*"}}"#.into(), part: "of this bucket"},
Case {name: "bucket-name prefix", json: r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"PutObject","Resource":"examplebucket2/*"}}"#.into(), part: "of this bucket"},
Case {name: "resource *", json: r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"PutObject","Resource":"*"}}"#.into(), part: "of this bucket"},
Case {name: "unknown operator", json: with(r#","Condition":{"StringEqualz":{"x-obs-server-side-encryption":"kms"}}"#), part: "operator \"StringEqualz\" is not supported"},
Case {name: "IfExists operator", json: with(r#","Condition":{"StringEqualsIfExists":{"x-obs-server-side-encryption":"kms"}}"#), part: "not supported"},
Case {name: "ForAnyValue operator", json: with(r#","Condition":{"ForAnyValue:StringEquals":{"x-obs-server-side-encryption":"kms"}}"#), part: "not supported"},
Case {name: "unknown condition key", json: with(r#","Condition":{"StringNotEquals":{"x-obs-server-side-encryptoin":"kms"}}"#), part: "condition key"},
Case {name: "empty condition", json: with(r#","Condition":{}"#), part: "must not be empty"},
Case {name: "empty operator", json: with(r#","Condition":{"StringEquals":{}}"#), part: "must not be empty"},
Case {name: "Null with a word", json: with(r#","Condition":{"Null":{"x-obs-server-side-encryption":"yes"}}"#), part: "true or false"},
Case {name: "number value", json: with(r#","Condition":{"StringEquals":{"x-obs-server-side-encryption":1}}"#), part: "string"},
Case {name: "too big", json: big, part: "more than 20480"},
    ];
    for Case { name, json, part } in cases {
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

/// S3's spelling of a policy (what boto3's `put_bucket_policy` sets through OBS's S3-compatible
/// interface) reads as the same rules as OBS's: each S3-spelled policy parses to the policy its
/// OBS spelling does, and the classic "deny unencrypted uploads" policy of S3 refuses a plaintext
/// upload and lets an SSE-KMS one through.
#[tokio::test]
async fn rule_08_s3_spelled_policies_read_as_the_obs_rules() {
    let d = "783fc6652cf246c096ea836694f71855";
    let statement = |principal: &str, action: &str, resource: &str, condition: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Principal":{principal},"Action":{action},"Resource":{resource}{condition}}}]}}"#
        )
    };
    // (rule, S3's spelling, OBS's spelling)
    let cases = [
        (
            "every caller",
            statement(
                r#"{"AWS":"*"}"#,
                r#""s3:PutObject""#,
                r#""arn:aws:s3:::examplebucket/*""#,
                "",
            ),
            statement(r#""*""#, r#""PutObject""#, r#""examplebucket/*""#, ""),
        ),
        (
            "a tenant and a user of it",
            statement(
                &format!(r#"{{"AWS":["arn:aws:iam::{d}:root","arn:aws:iam::{d}:user/alice"]}}"#),
                r#"["s3:GetObject","s3:ListBucket"]"#,
                r#"["arn:aws:s3:::examplebucket","arn:aws:s3:::examplebucket/logs/*"]"#,
                "",
            ),
            statement(
                &format!(r#"{{"ID":["domain/{d}","domain/{d}:user/alice"]}}"#),
                r#"["GetObject","ListBucket"]"#,
                r#"["examplebucket","examplebucket/logs/*"]"#,
                "",
            ),
        ),
        (
            "every action",
            statement(
                r#""*""#,
                r#""s3:*""#,
                r#""arn:aws:s3:::examplebucket/*""#,
                "",
            ),
            statement(r#""*""#, r#""*""#, r#""examplebucket/*""#, ""),
        ),
        (
            "S3's algorithm condition: aws:kms is OBS's kms",
            statement(
                r#""*""#,
                r#""s3:PutObject""#,
                r#""arn:aws:s3:::examplebucket/*""#,
                r#","Condition":{"StringNotEquals":{"s3:x-amz-server-side-encryption":"aws:kms"}}"#,
            ),
            statement(
                r#""*""#,
                r#""PutObject""#,
                r#""examplebucket/*""#,
                r#","Condition":{"StringNotEquals":{"x-obs-server-side-encryption":"kms"}}"#,
            ),
        ),
        (
            "S3's key condition",
            statement(
                r#""*""#,
                r#""s3:PutObject""#,
                r#""arn:aws:s3:::examplebucket/*""#,
                r#","Condition":{"Null":{"s3:x-amz-server-side-encryption-aws-kms-key-id":"true"}}"#,
            ),
            statement(
                r#""*""#,
                r#""PutObject""#,
                r#""examplebucket/*""#,
                r#","Condition":{"Null":{"x-obs-server-side-encryption-kms-key-id":"true"}}"#,
            ),
        ),
    ];
    for (rule, s3, obs) in cases {
        assert_eq!(
            BucketPolicy::parse(BUCKET, &s3).expect(rule),
            BucketPolicy::parse(BUCKET, &obs).expect(rule),
            "{rule}"
        );
    }
    // S3's deny-unencrypted-uploads policy, as S3's documents write it, over the adapter.
    let policy = BucketPolicy::parse(
        BUCKET,
        r#"{"Version":"2012-10-17","Id":"PutObjPolicy","Statement":[{"Sid":"DenyUnencryptedUploads","Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::examplebucket/*","Condition":{"StringNotEquals":{"s3:x-amz-server-side-encryption":"aws:kms"}}}]}"#,
    )
    .unwrap();
    let env = Env::new();
    env.seed_default_key();
    let facts = bucket().with_policy(policy);
    let plain = env
        .decide(Operation::PutObject, OWNER, &facts, &headers(&[]), None)
        .await;
    assert_eq!(
        plain.map(|_| ()).map_err(|e| code(&e)),
        Err((403, "AccessDenied")),
        "a plaintext upload is refused"
    );
    let sse = headers(&[("x-obs-server-side-encryption", "kms")]);
    let kms = env
        .decide(Operation::PutObject, OWNER, &facts, &sse, None)
        .await;
    assert!(kms.is_ok(), "an SSE-KMS upload goes through: {kms:?}");
}

/// Issue 16, point 1: a condition on the key ID compares the canonical full key ID (lower case,
/// in the caller's domain and the bucket's region) on both sides, so every spelling of one key
/// compares equal: a Deny cannot be sidestepped by writing the key another way, and a required key
/// is not refused for its spelling.
#[tokio::test]
async fn rule_08_key_id_conditions_compare_every_spelling_of_a_key() {
    let env = Env::new();
    let key = env.seed_default_key();
    let other = env.fake.create_service_key(&scope(OWNER, REGION), "obs");
    let full = key.to_string();
    let spellings = |k: &FullKeyId| {
        let full = k.to_string();
        let bare = k.uuid.hyphenated().to_string();
        let upper_hex = format!(
            "{}:{}:key/{}",
            k.region,
            k.domain,
            bare.to_ascii_uppercase()
        );
        let upper_domain = format!(
            "{}:{}:key/{bare}",
            k.region,
            k.domain.as_str().to_ascii_uppercase()
        );
        vec![
            ("full", full),
            ("bare", bare.clone()),
            ("bare upper case", bare.to_ascii_uppercase()),
            ("full upper-case hex", upper_hex),
            ("full upper-case domain", upper_domain),
        ]
    };
    let deny = |operator: &str, value: &str| {
        let json = format!(
            r#"{{"Statement":[{{"Sid":"keys","Effect":"Deny","Principal":"*","Action":"PutObject","Resource":"examplebucket/*","Condition":{{"{operator}":{{"x-obs-server-side-encryption-kms-key-id":"{value}"}}}}}}]}}"#
        );
        bucket().with_policy(BucketPolicy::parse(BUCKET, &json).unwrap())
    };
    let denied = refused(403, "AccessDenied", "\"keys\"");

    struct Case<'a> {
        name: String,
        bucket: BucketFacts,
        h: Vec<(&'a str, &'a str)>,
        want: Want<'a>,
    }
    let key_spellings = spellings(&key);
    let other_spellings = spellings(&other);
    let other_full = other.to_string();
    let mut cases = Vec::new();
    for (cond_name, cond) in &key_spellings {
        for (req_name, req) in &key_spellings {
            // Deny StringEquals <key>: refused however either side spells the key.
            cases.push(Case {
                name: format!("Deny StringEquals {cond_name}, request {req_name}"),
                bucket: deny("StringEquals", cond),
                h: vec![(SSE, "kms"), (KEY, req.as_str())],
                want: denied,
            });
            // Deny StringNotEquals <key> (require the key): accepted however spelt.
            cases.push(Case {
                name: format!("Deny StringNotEquals {cond_name}, request {req_name}"),
                bucket: deny("StringNotEquals", cond),
                h: vec![(SSE, "kms"), (KEY, req.as_str())],
                want: Want::Kms(&full),
            });
        }
        for (req_name, req) in &other_spellings {
            // Another key: not denied by StringEquals, denied when one key is required.
            cases.push(Case {
                name: format!("Deny StringEquals {cond_name}, other key {req_name}"),
                bucket: deny("StringEquals", cond),
                h: vec![(SSE, "kms"), (KEY, req.as_str())],
                want: Want::Kms(&other_full),
            });
            cases.push(Case {
                name: format!("Deny StringNotEquals {cond_name}, other key {req_name}"),
                bucket: deny("StringNotEquals", cond),
                h: vec![(SSE, "kms"), (KEY, req.as_str())],
                want: denied,
            });
        }
        // The bucket default supplying the key (in every spelling): conditions read the request
        // (rule 8), which names no key, so the outcome does not depend on the default's spelling
        // either: StringEquals does not apply, StringNotEquals does.
        for (default_name, default_key) in &key_spellings {
            let with_default = |b: BucketFacts| {
                b.with_default_encryption(
                    DefaultEncryption::parse("kms", Some(default_key)).unwrap(),
                )
            };
            cases.push(Case {
                name: format!("Deny StringEquals {cond_name}, default key {default_name}"),
                bucket: with_default(deny("StringEquals", cond)),
                h: vec![],
                want: Want::Kms(&full),
            });
            cases.push(Case {
                name: format!("Deny StringNotEquals {cond_name}, default key {default_name}"),
                bucket: with_default(deny("StringNotEquals", cond)),
                h: vec![],
                want: denied,
            });
        }
        // IgnoreCase operators read key IDs the same way.
        cases.push(Case {
            name: format!("Deny StringEqualsIgnoreCase {cond_name}, request bare"),
            bucket: deny("StringEqualsIgnoreCase", cond),
            h: vec![(SSE, "kms"), (KEY, key_spellings[1].1.as_str())],
            want: denied,
        });
    }
    // StringLike matches any spelling of the request's key, without regard to ASCII case.
    let pattern = format!("*:key/{}*", &key.uuid.hyphenated().to_string()[..8]);
    for (req_name, req) in &key_spellings {
        cases.push(Case {
            name: format!("Deny StringLike {pattern}, request {req_name}"),
            bucket: deny("StringLike", &pattern),
            h: vec![(SSE, "kms"), (KEY, req.as_str())],
            want: denied,
        });
        cases.push(Case {
            name: format!("Deny StringNotLike {pattern}, request {req_name}"),
            bucket: deny("StringNotLike", &pattern),
            h: vec![(SSE, "kms"), (KEY, req.as_str())],
            want: Want::Kms(&full),
        });
    }
    assert!(cases.len() > 100);
    for Case {
        name,
        bucket,
        h,
        want,
    } in cases
    {
        let got = env
            .decide(Operation::PutObject, OWNER, &bucket, &headers(&h), None)
            .await;
        check(&name, &got, &want, &full);
    }
}

/// A policy is public when an Allow statement grants every caller (`"*"`, or the ID `"*"`), its
/// encryption conditions notwithstanding; under the bucket's `RestrictPublicBuckets` a public
/// policy grants other tenants nothing, by any statement, while its Deny statements still hold
/// and the owner's own statements still apply.
#[tokio::test]
async fn rule_08_a_public_policy_grants_other_tenants_nothing_under_restrict_public_buckets() {
    let stmt = |effect: &str, principal: &str, cond: &str| {
        format!(
            r#"{{"Sid":"s","Effect":"{effect}","Principal":{principal},"Action":"PutObject","Resource":"examplebucket/*"{cond}}}"#
        )
    };
    let policy = |stmts: &[String]| format!(r#"{{"Statement":[{}]}}"#, stmts.join(","));
    let other = format!(r#"{{"ID":"domain/{OTHER}"}}"#);
    let owner = format!(r#"{{"ID":"domain/{OWNER}"}}"#);
    let sse = r#","Condition":{"StringEquals":{"x-obs-server-side-encryption":"kms"}}"#;
    // (rule, policy, public)
    let publicity = [
        (
            "Allow to \"*\"",
            policy(&[stmt("Allow", "\"*\"", "")]),
            true,
        ),
        (
            "Allow to the ID \"*\"",
            policy(&[stmt("Allow", r#"{"ID":"*"}"#, "")]),
            true,
        ),
        (
            "Allow to \"*\" on a condition about encryption",
            policy(&[stmt("Allow", "\"*\"", sse)]),
            true,
        ),
        ("Deny to \"*\"", policy(&[stmt("Deny", "\"*\"", "")]), false),
        (
            "Allow to a tenant",
            policy(&[stmt("Allow", &other, "")]),
            false,
        ),
    ];
    for (rule, json, public) in &publicity {
        let p = BucketPolicy::parse(BUCKET, json).unwrap();
        assert_eq!(p.is_public(), *public, "{rule}");
    }
    let public = policy(&[stmt("Allow", "\"*\"", "")]);
    // (rule, policy, restrict, caller, the verdict: "allow", "none" or "deny")
    let cases = [
        (
            "public, not restricted: another tenant",
            &public,
            false,
            OTHER,
            "allow",
        ),
        (
            "public, restricted: another tenant",
            &public,
            true,
            OTHER,
            "none",
        ),
        (
            "public, restricted: the owner",
            &public,
            true,
            OWNER,
            "allow",
        ),
        (
            "public and naming the tenant, restricted: no statement grants it",
            &policy(&[stmt("Allow", "\"*\"", ""), stmt("Allow", &other, "")]),
            true,
            OTHER,
            "none",
        ),
        (
            "not public, restricted: the tenant it names",
            &policy(&[stmt("Allow", &other, "")]),
            true,
            OTHER,
            "allow",
        ),
        (
            "public, restricted: a Deny still holds",
            &policy(&[stmt("Allow", "\"*\"", ""), stmt("Deny", &other, "")]),
            true,
            OTHER,
            "deny",
        ),
        (
            "public, restricted: the owner's own Deny",
            &policy(&[stmt("Allow", "\"*\"", ""), stmt("Deny", &owner, "")]),
            true,
            OWNER,
            "deny",
        ),
    ];
    for (name, json, restrict, who, want) in cases {
        let env = Env::new();
        env.seed_default_key();
        let p = BucketPolicy::parse(BUCKET, json).unwrap();
        let b = bucket()
            .with_policy(p)
            .with_restrict_public_buckets(restrict);
        let c = caller(who);
        let h = headers(&[]);
        let got = env
            .adapter
            .decide(&ObsRequest::new(Operation::PutObject, &c, &b, "obj", &h))
            .await;
        match (want, got) {
            ("deny", Err(e)) => assert_eq!(code(&e), (403, "AccessDenied"), "{name}"),
            ("allow", Ok(d)) => assert!(
                matches!(d.policy, PolicyVerdict::Allow { .. }),
                "{name}: {:?}",
                d.policy
            ),
            ("none", Ok(d)) => assert_eq!(d.policy, PolicyVerdict::NoMatch, "{name}"),
            (want, got) => panic!("{name}: want {want}, got {got:?}"),
        }
    }
}
