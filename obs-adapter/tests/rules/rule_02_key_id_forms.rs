use super::*;

#[tokio::test]
async fn rule_02_key_id_forms_region_and_tenant() {
    let env = Env::new();
    let seed = env.seed_default_key().to_string();
    let own_obs_key = env
        .fake
        .create_service_key(&scope(OWNER, REGION), "obs")
        .to_string();
    let own_uuid = own_obs_key.rsplit('/').next().unwrap().to_owned();
    let own_upper = own_uuid.to_ascii_uppercase();
    let foreign = env.fake.create_service_key(&scope(OTHER, REGION), "obs");
    let foreign_str = foreign.to_string();
    let foreign_bare = foreign.uuid.to_string();
    let other_region_key = env
        .fake
        .create_service_key(&scope(OWNER, OTHER_REGION), "obs")
        .to_string();
    let unknown_own = format!("region:{OWNER}:key/00000000-0000-4000-8000-000000000000");
    let unknown_foreign = format!("region:{OTHER}:key/00000000-0000-4000-8000-000000000000");

    struct Case<'a> {
        name: &'a str,
        key: &'a str,
        want: Want<'a>,
    }
    let cases = vec![
        Case {
            name: "full form, own",
            key: &own_obs_key,
            want: Want::Kms(&own_obs_key),
        },
        Case {
            name: "bare form resolves to own",
            key: &own_uuid,
            want: Want::Kms(&own_obs_key),
        },
        Case {
            name: "bare upper-case hex",
            key: &own_upper,
            want: Want::Kms(&own_obs_key),
        },
        Case {
            name: "seed full form",
            key: &seed,
            want: Want::Kms(&seed),
        },
        Case {
            name: "six groups",
            key: "522d6070-5ad3-4765-43a7-a7d1-ab21f498482d",
            want: refused(400, "InvalidArgument", "malformed key ID"),
        },
        Case {
            name: "32 digits",
            key: "522d60705ad3476597379312ddc72cdb",
            want: refused(400, "InvalidArgument", "malformed"),
        },
        Case {
            name: "braces",
            key: "{522d6070-5ad3-4765-9737-9312ddc72cdb}",
            want: refused(400, "InvalidArgument", "malformed"),
        },
        Case {
            name: "alias form",
            key: "region:783fc6652cf246c096ea836694f71855:alias/obs/default",
            want: refused(400, "InvalidArgument", "malformed"),
        },
        Case {
            name: "empty",
            key: "",
            want: refused(400, "InvalidArgument", "malformed"),
        },
        Case {
            name: "urn",
            key: "urn:uuid:522d6070-5ad3-4765-9737-9312ddc72cdb",
            want: refused(400, "InvalidArgument", "malformed"),
        },
        Case {
            name: "other region, own key",
            key: &other_region_key,
            want: refused(400, "InvalidArgument", "must be in the bucket's region"),
        },
        Case {
            name: "foreign key, full form",
            key: &foreign_str,
            want: refused(400, "KMS.NotFoundException", "does not exist"),
        },
        Case {
            name: "foreign key, bare form",
            key: &foreign_bare,
            want: refused(400, "KMS.NotFoundException", "does not exist"),
        },
        Case {
            name: "unknown own key",
            key: &unknown_own,
            want: refused(400, "KMS.NotFoundException", "does not exist"),
        },
        Case {
            name: "unknown foreign key",
            key: &unknown_foreign,
            want: refused(400, "KMS.NotFoundException", "does not exist"),
        },
    ];
    for Case { name, key, want } in cases {
        let got = env.put(&[(SSE, "kms"), (KEY, key)]).await;
        check(name, &got, &want, &seed);
    }

    // A foreign key is answered exactly as an unknown one: same status, code and message once the
    // key ID is blanked, and without a KMS call for the full form.
    let before = env.fake.calls();
    let e_foreign = env
        .put(&[(SSE, "kms"), (KEY, &foreign_str)])
        .await
        .unwrap_err();
    assert_eq!(
        env.fake.calls(),
        before,
        "a foreign full key ID is refused locally"
    );
    let e_unknown = env
        .put(&[(SSE, "kms"), (KEY, &unknown_own)])
        .await
        .unwrap_err();
    let blank = |e: &AdapterError, k: &str| {
        let doc = e.to_obs_error("r");
        (
            doc.status,
            doc.code,
            doc.message.replace(k, "<key>"),
            doc.to_xml().replace(k, "<key>"),
        )
    };
    assert_eq!(
        blank(&e_foreign, &foreign_str),
        blank(&e_unknown, &unknown_own)
    );
    let e_foreign_bare = env
        .put(&[(SSE, "kms"), (KEY, &foreign_bare)])
        .await
        .unwrap_err();
    let resolved_bare = format!("region:{OWNER}:key/{foreign_bare}");
    assert_eq!(
        blank(&e_foreign_bare, &resolved_bare),
        blank(&e_unknown, &unknown_own)
    );
}

/// Issue 16, point 3: the key-ID grammar accepts upper-case letters in a domain ID; the adapter
/// reads a domain ID that equals the caller's own without regard to ASCII case as the caller's
/// domain (and answers the canonical lower-case ID), so a tenant's own key is found however its
/// domain is cased. Another tenant's domain, in any case, stays another tenant's.
#[tokio::test]
async fn rule_02_upper_case_domain_in_a_full_key_id_names_the_callers_domain() {
    let env = Env::new();
    let key = env.seed_default_key();
    let full = key.to_string();
    let upper_domain = format!(
        "{REGION}:{}:key/{}",
        OWNER.to_ascii_uppercase(),
        key.uuid.hyphenated()
    );
    let mixed = format!(
        "{REGION}:{}{}:key/{}",
        OWNER[..4].to_ascii_uppercase(),
        &OWNER[4..],
        key.uuid.hyphenated().to_string().to_ascii_uppercase()
    );
    let foreign = env.fake.create_service_key(&scope(OTHER, REGION), "obs");
    let foreign_upper = format!(
        "{REGION}:{}:key/{}",
        OTHER.to_ascii_uppercase(),
        foreign.uuid.hyphenated()
    );
    struct Case<'a> {
        name: &'a str,
        key: &'a str,
        want: Want<'a>,
    }
    let cases = vec![
        Case {
            name: "own domain upper case",
            key: &upper_domain,
            want: Want::Kms(&full),
        },
        Case {
            name: "own domain mixed case, upper-case hex",
            key: &mixed,
            want: Want::Kms(&full),
        },
        Case {
            name: "another tenant's domain upper case",
            key: &foreign_upper,
            want: refused(400, "KMS.NotFoundException", "does not exist"),
        },
    ];
    for Case { name, key, want } in cases {
        // By header.
        let got = env.put(&[(SSE, "kms"), (KEY, key)]).await;
        check(name, &got, &want, &full);
        // Through the bucket default.
        let b =
            bucket().with_default_encryption(DefaultEncryption::parse("kms", Some(key)).unwrap());
        let got = env
            .decide(Operation::PutObject, OWNER, &b, &headers(&[]), None)
            .await;
        check(name, &got, &want, &full);
    }
    // Another tenant's key is refused without asking the KMS, however its domain is cased.
    let before = env.fake.calls();
    env.put(&[(SSE, "kms"), (KEY, &foreign_upper)])
        .await
        .unwrap_err();
    assert_eq!(env.fake.calls(), before);
}
