use super::*;

#[tokio::test]
async fn rule_03_default_key_is_created_on_first_upload_per_tenant_and_region() {
    let env = Env::new();
    assert_eq!(env.fake.key_count(), 0);
    // Plaintext uploads create nothing.
    env.put(&[]).await.unwrap();
    assert_eq!(env.fake.default_key_creations(), 0);
    let first = env.put(&[(SSE, "kms")]).await.unwrap();
    let second = env.put(&[(SSE, "kms")]).await.unwrap();
    assert_eq!(first.encryption, second.encryption);
    assert_eq!(env.fake.default_key_creations(), 1);
    let key = first.encryption.key_id().unwrap().clone();
    assert_eq!(key.domain, domain(OWNER));
    assert_eq!(key.region, region(REGION));

    // Another region: another default key. Another tenant (in its own bucket): another.
    let b2 = BucketFacts::new("b2", region(OTHER_REGION), domain(OWNER));
    let h = headers(&[(SSE, "kms")]);
    let d2 = env
        .decide(Operation::PutObject, OWNER, &b2, &h, None)
        .await
        .unwrap();
    assert_eq!(d2.encryption.key_id().unwrap().region, region(OTHER_REGION));
    let b3 = BucketFacts::new("b3", region(REGION), domain(OTHER));
    let d3 = env
        .decide(Operation::PutObject, OTHER, &b3, &h, None)
        .await
        .unwrap();
    assert_eq!(d3.encryption.key_id().unwrap().domain, domain(OTHER));
    assert_eq!(env.fake.default_key_creations(), 3);
    assert_ne!(d2.encryption, first.encryption);
    assert_ne!(d3.encryption, first.encryption);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rule_03_concurrent_first_uploads_create_exactly_one_default_key() {
    const UPLOADS: usize = 128;
    // Every KMS call takes 2 ms, so the uploads' calls overlap.
    let env = Arc::new(Env::from_fake(
        FakeKeyService::with_latency(std::time::Duration::from_millis(2)),
        AdapterConfig::default(),
    ));
    let start = Arc::new(tokio::sync::Barrier::new(UPLOADS));
    let mut tasks = Vec::new();
    for i in 0..UPLOADS {
        let env = Arc::clone(&env);
        let start = Arc::clone(&start);
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            // Half by header, half through bucket default encryption.
            let (b, h) = if i % 2 == 0 {
                (bucket(), headers(&[(SSE, "kms")]))
            } else {
                (
                    bucket().with_default_encryption(DefaultEncryption::Kms { key: None }),
                    headers(&[]),
                )
            };
            env.decide(Operation::PutObject, OWNER, &b, &h, None)
                .await
                .map(|d| d.encryption)
        }));
    }
    let mut keys = std::collections::HashSet::new();
    for t in tasks {
        keys.insert(t.await.unwrap().unwrap());
    }
    assert_eq!(keys.len(), 1, "every upload got the same key");
    assert_eq!(env.fake.default_key_creations(), 1);
    assert_eq!(env.fake.key_count(), 1);
}
