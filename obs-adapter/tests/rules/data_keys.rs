use super::*;

#[tokio::test]
async fn data_keys_round_trip_through_the_adapter() {
    let env = Env::new();
    let d = env.put(&[(SSE, "kms")]).await.unwrap();
    let dk = env
        .adapter
        .generate_data_key(&caller(OWNER), &bucket(), "obj", &d.encryption)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dk.plaintext.len(), 32);
    assert!(!format!("{dk:?}").contains(&format!("{:?}", dk.plaintext.expose())));
    let obj = StoredObject {
        owner: domain(OWNER),
        encryption: d.encryption.clone(),
    };
    let pt = env
        .adapter
        .decrypt_data_key(&caller(OWNER), &bucket(), "obj", &obj, &dk.ciphertext_blob)
        .await
        .unwrap();
    assert_eq!(pt.expose(), dk.plaintext.expose());
    // Plaintext decisions need no data key.
    let none = env
        .adapter
        .generate_data_key(&caller(OWNER), &bucket(), "obj", &Encryption::Plaintext)
        .await
        .unwrap();
    assert!(none.is_none());
    let _ = ObsAdapter::new(Arc::clone(&env.fake));
}
