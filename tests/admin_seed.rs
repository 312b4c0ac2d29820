//! Seeds that pin key material (kms-server/FORMATS.md §5) against the real daemon: a committed
//! ciphertext decrypts on a daemon seeded with its key, two daemons seeded alike open each other's
//! objects, a contradicting seed stops the start-up, `ExportSeed` round-trips, and a seeded
//! deletion date passes on the virtual clock.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use http::{HeaderMap, HeaderName, HeaderValue};
use kms_proto::ErrorCode;
use kms_proto::admin as apb;
use kms_proto::admin::admin_client::AdminClient;
use kms_proto::key_id::{DomainId, RegionId};
use kms_proto::v1 as pb;
use kmsbox_tests::{TestDaemon, assert_refused};
use obs_adapter::{BucketFacts, Caller, GrpcKeyService, ObsAdapter, ObsRequest, Operation};
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

/// The committed known-answer blob, made by an independent implementation (kms-server/tests/kat).
const KAT: &str = include_str!("../kms-server/tests/kat/blob_v1.json");
const TENANT: &str = "783fc6652cf246c096ea836694f71855";
const KAT_KEY: &str = "522d6070-5ad3-4765-9737-9312ddc72cdb";
const OBS_DEFAULT: &str = "0b8f4f4e-8c1c-4f43-9d43-6a4c6d1e2f30";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/kat_blob_v1.toml")
}

async fn seeded(seed: PathBuf) -> TestDaemon {
    TestDaemon::start_with(move |c, _| c.seed = Some(seed)).await
}

async fn connect(d: &TestDaemon) -> Channel {
    Endpoint::from_shared(d.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn bucket() -> BucketFacts {
    BucketFacts::new(
        "examplebucket",
        RegionId::parse("region").unwrap(),
        DomainId::parse(TENANT).unwrap(),
    )
}

/// A committed ciphertext still decrypts on a fresh daemon seeded with its key.
#[tokio::test]
async fn a_committed_ciphertext_decrypts_on_a_daemon_seeded_with_its_key() {
    let kat: serde_json::Value = serde_json::from_str(KAT).unwrap();
    let d = seeded(fixture()).await;
    let mut t = d.tenant(TENANT).await;
    let context: HashMap<String, String> =
        serde_json::from_value(kat["encryption_context"].clone()).unwrap();
    let r = t
        .client
        .decrypt(t.req(pb::DecryptRequest {
            ciphertext_blob: hex::decode(kat["blob"].as_str().unwrap()).unwrap(),
            encryption_context: context,
            key_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        hex::encode(&r.plaintext),
        kat["plaintext"].as_str().unwrap()
    );
    assert_eq!(r.key_version, 3);
    assert_eq!(r.key_id, format!("region:{TENANT}:key/{KAT_KEY}"));
    // The pinned key is the one the seed describes: alias, creation date, current version.
    let m = t.describe(KAT_KEY).await.unwrap();
    assert_eq!((m.alias.as_str(), m.current_version), ("kat-blob-v1", 3));
    assert_eq!(m.created_at.unwrap().seconds, 1_796_083_200);
}

/// The OBS adapter on two daemons started from one seed file: the tenant's default key is the
/// pinned one on both, and a data key made on one opens on the other.
#[tokio::test]
async fn two_daemons_from_one_seed_open_each_others_objects() {
    let (a, b) = (seeded(fixture()).await, seeded(fixture()).await);
    let on_a = ObsAdapter::new(GrpcKeyService::new(connect(&a).await));
    let on_b = ObsAdapter::new(GrpcKeyService::new(connect(&b).await));
    let c = Caller::new(DomainId::parse(TENANT).unwrap());
    let mut h = HeaderMap::new();
    h.insert(
        HeaderName::from_static("x-obs-server-side-encryption"),
        HeaderValue::from_static("kms"),
    );
    for (made, opened) in [(&on_a, &on_b), (&on_b, &on_a)] {
        let put = made
            .decide(&ObsRequest::new(
                Operation::PutObject,
                &c,
                &bucket(),
                "obj",
                &h,
            ))
            .await
            .unwrap();
        let key = put.encryption.key_id().unwrap().clone();
        assert_eq!(key.uuid.to_string(), OBS_DEFAULT, "the pinned default key");
        let dk = made
            .generate_data_key(&c, &bucket(), "obj", &put.encryption)
            .await
            .unwrap()
            .unwrap();
        let stored = obs_adapter::StoredObject::kms(DomainId::parse(TENANT).unwrap(), key);
        let back = opened
            .decrypt_data_key(&c, &bucket(), "obj", &stored, &dk.ciphertext_blob)
            .await
            .unwrap();
        assert_eq!(back.expose(), dk.plaintext.expose());
    }
    // The root keys differ: the material is the same, not the stored bytes.
    let root = |d: &TestDaemon| std::fs::read(d.data_dir().join("root.key")).unwrap();
    assert_ne!(root(&a), root(&b));
}

/// A seed that contradicts the store stops the start-up, naming the key; the same seed again is
/// a no-op.
#[tokio::test]
async fn a_seed_that_contradicts_the_store_stops_the_start_up() {
    let mut d = seeded(fixture()).await;
    d.shut_down().await;
    let text = std::fs::read_to_string(fixture()).unwrap();
    // (rule, the fixture changed, the message names)
    let cases = [
        (
            "other material for version 3",
            text.replace("000102030405", "ff0102030405"),
            format!("key {KAT_KEY}: version 3's material differs"),
        ),
        (
            "another alias",
            text.replace("alias = \"kat-blob-v1\"", "alias = \"renamed\""),
            format!("key {KAT_KEY}: the store holds it with alias \"kat-blob-v1\""),
        ),
        (
            "another key as the OBS default",
            text.replace(OBS_DEFAULT, "1b8f4f4e-8c1c-4f43-9d43-6a4c6d1e2f30"),
            format!("is already key {OBS_DEFAULT}"),
        ),
    ];
    for (rule, changed, needle) in cases {
        let p = d.dir().join("changed.toml");
        std::fs::write(&p, changed).unwrap();
        let mut config = kms_server::server::Config::local(&d.data_dir());
        config.seed = Some(p);
        let e = kms_server::server::start(config)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains(&needle), "{rule}: {e}");
    }
    d.restart().await;
    let mut t = d.tenant(TENANT).await;
    let keys = t
        .client
        .list_keys(t.req(pb::ListKeysRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert_eq!(keys.len(), 2, "seeding again created nothing");
}

/// `ExportSeed` writes the keys as a seed file: without material by default; with it, a daemon
/// seeded from the export decrypts the first one's ciphertexts, and its keys keep their states.
#[tokio::test]
async fn an_exported_seed_recreates_the_keys_elsewhere() {
    let a = seeded(fixture()).await;
    let mut t = a.tenant(TENANT).await;
    let admin = AdminClient::new(connect(&a).await);
    let key = t
        .client
        .create_key(t.req(pb::CreateKeyRequest {
            alias: "rotated".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .metadata
        .unwrap()
        .key_id;
    t.client
        .rotate_key(t.req(pb::RotateKeyRequest {
            key_id: key.clone(),
        }))
        .await
        .unwrap();
    let blob = t
        .client
        .encrypt(t.req(pb::EncryptRequest {
            key_id: key.clone(),
            plaintext: b"moved".to_vec(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .ciphertext_blob;
    t.client
        .disable_key(t.req(pb::DisableKeyRequest {
            key_id: KAT_KEY.into(),
        }))
        .await
        .unwrap();
    let export = |include_material| {
        let mut admin = admin.clone();
        async move {
            admin
                .export_seed(apb::ExportSeedRequest { include_material })
                .await
                .unwrap()
                .into_inner()
                .seed_toml
        }
    };
    let metadata_only = export(false).await;
    assert!(metadata_only.contains(KAT_KEY) && metadata_only.contains("state = \"disabled\""));
    assert!(!metadata_only.contains("material"), "{metadata_only}");
    let with_material = export(true).await;
    let file = a.dir().join("exported.toml");
    std::fs::write(&file, &with_material).unwrap();

    let b = seeded(file).await;
    let mut tb = b.tenant(TENANT).await;
    let opened = tb
        .client
        .decrypt(tb.req(pb::DecryptRequest {
            ciphertext_blob: blob,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (opened.plaintext.as_slice(), opened.key_version),
        (&b"moved"[..], 2)
    );
    let r = tb
        .client
        .encrypt(tb.req(pb::EncryptRequest {
            key_id: KAT_KEY.into(),
            plaintext: b"x".to_vec(),
            ..Default::default()
        }))
        .await;
    assert_refused(
        r,
        Code::FailedPrecondition,
        ErrorCode::KeyDisabled,
        "disabled",
    );
    let lines = {
        a.server().flush_audit().await;
        std::fs::read_to_string(a.data_dir().join("audit.jsonl")).unwrap()
    };
    assert!(
        lines.contains("\"Admin.ExportSeedWithMaterial\""),
        "{lines}"
    );
    assert!(lines.contains("\"Admin.ExportSeed\""), "{lines}");
}

/// The start of the virtual clock in the seeded-date tests.
const CLOCK_START: &str = "2027-01-01T00:00:00Z";

/// A daemon on a virtual clock from [`CLOCK_START`], seeded with one key of the KAT key's ID and
/// `fields`; and that start.
async fn seeded_on_the_virtual_clock(fields: &str) -> (TestDaemon, prost_types::Timestamp) {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.toml");
    std::fs::write(
        &seed,
        format!("[[keys]]\ndomain_id = \"{TENANT}\"\nkey_id = \"{KAT_KEY}\"\n{fields}\n"),
    )
    .unwrap();
    let start: prost_types::Timestamp = CLOCK_START.parse().unwrap();
    let d = TestDaemon::start_with(move |c, _| {
        c.seed = Some(seed);
        c.clock = kms_server::server::ClockConfig::Virtual {
            start_ms: Some(start.seconds * 1000),
        };
    })
    .await;
    // The seed file is read at start-up; the folder may go.
    drop(dir);
    (d, start)
}

/// A key seeded pending deletion is purged once the virtual clock passes its deletion date.
#[tokio::test]
async fn a_seeded_deletion_date_passes_on_the_virtual_clock() {
    let (d, start) = seeded_on_the_virtual_clock(
        "state = \"pending_deletion\"\ndeletion_date = \"2027-01-08T00:00:00Z\"",
    )
    .await;
    let t = d.tenant(TENANT).await;
    let m = t.describe(KAT_KEY).await.unwrap();
    assert_eq!(m.state, pb::KeyState::PendingDeletion as i32);
    assert_eq!(m.deletion_date.unwrap().seconds, start.seconds + 7 * 86_400);
    let moved = d.advance_clock_days(7).await;
    assert_eq!(moved.purged_keys, 1);
    assert_refused(
        t.describe(KAT_KEY).await,
        Code::NotFound,
        ErrorCode::KeyNotFound,
        "not found",
    );
}

/// A seeded rotation schedule and policy are the key's: it rotates on the virtual clock once its
/// interval has passed since `created_at`, and refuses a call without an encryption context.
#[tokio::test]
async fn a_seeded_schedule_rotates_on_the_virtual_clock_and_a_seeded_policy_holds() {
    let (d, start) = seeded_on_the_virtual_clock(&format!(
        "created_at = \"{CLOCK_START}\"\nrotation_interval_days = 30\ncontext_required = true\n\
         tags = {{ team = \"storage\" }}"
    ))
    .await;
    let mut t = d.tenant(TENANT).await;
    let m = t.describe(KAT_KEY).await.unwrap();
    assert!(m.rotation_enabled && m.context_required, "{m:?}");
    assert_eq!(
        m.tags,
        std::collections::BTreeMap::from([("team".to_owned(), "storage".to_owned())]),
        "seeded tags, over gRPC"
    );
    assert_eq!(m.rotation_interval_days, 30);
    assert_eq!(
        m.next_rotation_time.unwrap().seconds,
        start.seconds + 30 * 86_400
    );
    let bare = t
        .client
        .encrypt(t.req(pb::EncryptRequest {
            key_id: KAT_KEY.into(),
            plaintext: b"x".to_vec(),
            encryption_context: HashMap::new(),
        }))
        .await;
    assert_refused(
        bare,
        Code::InvalidArgument,
        ErrorCode::InvalidArgument,
        "requires an encryption context",
    );
    let moved = d.advance_clock_days(30).await;
    assert_eq!(moved.rotated_keys, 1, "{moved:?}");
}
