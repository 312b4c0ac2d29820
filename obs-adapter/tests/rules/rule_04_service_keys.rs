use super::*;

#[tokio::test]
async fn rule_04_only_service_created_obs_keys_unless_switched() {
    // want_err: a part of the expected InvalidArgument message, or None for success.
    #[derive(Clone, Copy, Debug)]
    enum Kind {
        Default,
        ObsServiceKey,
        Customer,
        OtherServiceKey,
    }
    struct Case<'a> {
        name: &'a str,
        kind: Kind,
        key_policy: KeyPolicy,
        want_err: Option<&'a str>,
    }
    let cases = vec![
        Case {
            name: "default key, ban",
            kind: Kind::Default,
            key_policy: KeyPolicy::ServiceKeysOnly,
            want_err: None,
        },
        Case {
            name: "obs service key, ban",
            kind: Kind::ObsServiceKey,
            key_policy: KeyPolicy::ServiceKeysOnly,
            want_err: None,
        },
        Case {
            name: "customer key, ban",
            kind: Kind::Customer,
            key_policy: KeyPolicy::ServiceKeysOnly,
            want_err: Some("keys created by customers"),
        },
        Case {
            name: "evs service key, ban",
            kind: Kind::OtherServiceKey,
            key_policy: KeyPolicy::ServiceKeysOnly,
            want_err: Some("\"evs\", not by OBS"),
        },
        Case {
            name: "default key, allowed",
            kind: Kind::Default,
            key_policy: KeyPolicy::AllowCustomerKeys,
            want_err: None,
        },
        Case {
            name: "customer key, allowed",
            kind: Kind::Customer,
            key_policy: KeyPolicy::AllowCustomerKeys,
            want_err: None,
        },
        Case {
            name: "evs service key, allowed",
            kind: Kind::OtherServiceKey,
            key_policy: KeyPolicy::AllowCustomerKeys,
            want_err: Some("not by OBS"),
        },
    ];
    assert_eq!(
        AdapterConfig::default().key_policy,
        KeyPolicy::ServiceKeysOnly
    );
    for Case {
        name,
        kind,
        key_policy,
        want_err,
    } in cases
    {
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
