use super::*;

#[tokio::test]
async fn rule_05_disabled_pending_and_unknown_keys_give_distinct_errors() {
    struct Case<'a> {
        name: &'a str,
        state: Option<KeyState>,
        want: Option<(u16, &'a str, &'a str)>,
    }
    let cases = vec![
        Case {
            name: "enabled",
            state: Some(KeyState::Enabled),
            want: None,
        },
        Case {
            name: "disabled",
            state: Some(KeyState::Disabled),
            want: Some((400, "KMS.DisabledException", "is disabled")),
        },
        Case {
            name: "pending deletion",
            state: Some(KeyState::PendingDeletion),
            want: Some((400, "KMS.KMSInvalidStateException", "pending deletion")),
        },
        Case {
            name: "unknown",
            state: None,
            want: Some((400, "KMS.NotFoundException", "does not exist")),
        },
    ];
    for Case { name, state, want } in cases {
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

/// Issue 16, point 5: a key pending deletion answers `KMS.KMSInvalidStateException` (400), the
/// code S3 uses for a key whose state forbids its use (`KMS.PendingDeletionException` is no code
/// OBS or S3 is known to use), with a message that says pending deletion.
#[tokio::test]
async fn rule_05_pending_deletion_answers_kms_invalid_state_exception() {
    let env = Env::new();
    let key = env.seed_default_key();
    assert!(env.fake.set_state(&key, KeyState::PendingDeletion));
    let full = key.to_string();
    for h in [vec![(SSE, "kms")], vec![(SSE, "kms"), (KEY, full.as_str())]] {
        let err = env.put(&h).await.unwrap_err();
        let doc = err.to_obs_error("R1");
        assert_eq!(
            (doc.status.as_u16(), doc.code),
            (400, "KMS.KMSInvalidStateException")
        );
        assert!(doc.message.contains("pending deletion"), "{}", doc.message);
        assert!(doc.message.contains(&full), "{}", doc.message);
    }
    let obj = StoredObject::kms(domain(OWNER), key);
    let get = env
        .decide(
            Operation::GetObject,
            OWNER,
            &bucket(),
            &headers(&[]),
            Some(&obj),
        )
        .await;
    assert_eq!(
        code(&get.unwrap_err()),
        (400, "KMS.KMSInvalidStateException")
    );
}
