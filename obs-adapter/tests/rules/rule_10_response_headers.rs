use super::*;

#[tokio::test]
async fn rule_10_every_sse_kms_success_carries_both_headers_with_the_full_key_id() {
    let env = Env::new();
    let key = env.seed_default_key();
    let full = key.to_string();
    let kms_obj = StoredObject::kms(domain(OWNER), key.clone());
    let plain_obj = StoredObject::plaintext(domain(OWNER));
    let bare = key.uuid.to_string();
    let copy = ("x-obs-copy-source", "/b/o");
    // kms: whether SSE-KMS is expected.
    struct Case<'a> {
        op: Operation,
        h: Vec<(&'a str, &'a str)>,
        form: Vec<(&'a str, &'a str)>,
        stored: Option<&'a StoredObject>,
        kms: bool,
    }
    let cases = vec![
        Case {
            op: Operation::PutObject,
            h: vec![(SSE, "kms")],
            form: vec![],
            stored: None,
            kms: true,
        },
        Case {
            op: Operation::PutObject,
            h: vec![(SSE, "kms"), (KEY, &bare)],
            form: vec![],
            stored: None,
            kms: true,
        },
        Case {
            op: Operation::PutObject,
            h: vec![],
            form: vec![],
            stored: None,
            kms: false,
        },
        Case {
            op: Operation::PostObject,
            h: vec![],
            form: vec![(SSE, "kms"), (KEY, &bare)],
            stored: None,
            kms: true,
        },
        Case {
            op: Operation::PostObject,
            h: vec![],
            form: vec![],
            stored: None,
            kms: false,
        },
        Case {
            op: Operation::CopyObject,
            h: vec![copy, (SSE, "kms")],
            form: vec![],
            stored: Some(&plain_obj),
            kms: true,
        },
        Case {
            op: Operation::CopyObject,
            h: vec![copy],
            form: vec![],
            stored: Some(&kms_obj),
            kms: false,
        },
        Case {
            op: Operation::InitiateMultipartUpload,
            h: vec![(SSE, "kms"), (KEY, &bare)],
            form: vec![],
            stored: None,
            kms: true,
        },
        Case {
            op: Operation::UploadPart,
            h: vec![],
            form: vec![],
            stored: Some(&kms_obj),
            kms: true,
        },
        Case {
            op: Operation::CompleteMultipartUpload,
            h: vec![],
            form: vec![],
            stored: Some(&kms_obj),
            kms: true,
        },
        Case {
            op: Operation::CompleteMultipartUpload,
            h: vec![],
            form: vec![],
            stored: Some(&plain_obj),
            kms: false,
        },
        Case {
            op: Operation::GetObject,
            h: vec![],
            form: vec![],
            stored: Some(&kms_obj),
            kms: true,
        },
        Case {
            op: Operation::HeadObject,
            h: vec![],
            form: vec![],
            stored: Some(&kms_obj),
            kms: true,
        },
        Case {
            op: Operation::HeadObject,
            h: vec![],
            form: vec![],
            stored: Some(&plain_obj),
            kms: false,
        },
    ];
    for Case {
        op,
        h,
        form,
        stored,
        kms,
    } in cases
    {
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
