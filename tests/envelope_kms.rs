//! The envelope crate's synchronous KMS provider (`BlockingKmsProvider`) against a real daemon on
//! loopback: objects sealed through it open for their tenant only, under their own context, and a
//! disabled key issues no new data keys.

use envelope::provider::{BlockingKmsProvider, Tenancy};
use envelope::{Backend, Error, ObjectContext};
use kms_proto::v1 as pb;
use kmsbox_tests::TestDaemon;

const ALICE: &str = "0123456789abcdef0123456789abcdef";
const BOB: &str = "fedcba9876543210fedcba9876543210";

fn provider(endpoint: &str, domain: &str) -> BlockingKmsProvider {
    let tenancy = Tenancy::for_domain(domain).expect("tenancy");
    BlockingKmsProvider::connect(endpoint, tenancy).expect("connect")
}

fn ctx(object: &str) -> ObjectContext {
    ObjectContext::from_pairs([("bucket", "b"), ("object-key", object)]).expect("ctx")
}

#[test]
fn blocking_provider_against_the_daemon_keeps_tenants_and_contexts_apart() {
    // The daemon runs on its own runtime; the provider blocks on another, from this thread.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let daemon = rt.block_on(TestDaemon::start());
    let endpoint = daemon.endpoint();
    let mut admin = rt.block_on(daemon.tenant(ALICE));
    let key_id = rt
        .block_on(admin.client.create_key(admin.req(pb::CreateKeyRequest {
            alias: "objects".into(),
            description: "envelope test".into(),
        })))
        .expect("CreateKey")
        .into_inner()
        .metadata
        .expect("metadata")
        .key_id;

    let alice = provider(&endpoint, ALICE);
    let plaintext: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut sealed = Vec::new();
    envelope::seal(
        &alice,
        &key_id,
        &ctx("o"),
        &plaintext[..],
        &mut sealed,
        Backend::default(),
    )
    .expect("seal");
    let mut out = Vec::new();
    envelope::open(&alice, &ctx("o"), &sealed[..], &mut out, Backend::default()).expect("open");
    assert!(out == plaintext, "round trip");

    // Refusals: nothing is written to the output.
    let bob = provider(&endpoint, BOB);
    let cases: [(&str, &BlockingKmsProvider, ObjectContext, &str); 2] = [
        (
            "another tenant cannot unwrap the data key",
            &bob,
            ctx("o"),
            "not found",
        ),
        (
            "the object's context is bound to the data key",
            &alice,
            ctx("moved"),
            "failed authentication",
        ),
    ];
    for (rule, who, context, says) in cases {
        let mut out = Vec::new();
        let err = envelope::open(who, &context, &sealed[..], &mut out, Backend::default())
            .expect_err(rule);
        assert!(matches!(err, Error::Kms(_)), "{rule}: {err:?}");
        assert!(err.to_string().contains(says), "{rule}: {err}");
        assert!(out.is_empty(), "{rule}: no output");
    }

    // A disabled key issues no new data keys.
    rt.block_on(admin.client.disable_key(admin.req(pb::DisableKeyRequest {
        key_id: key_id.clone(),
    })))
    .expect("DisableKey");
    let mut again = Vec::new();
    let err = envelope::seal(
        &alice,
        &key_id,
        &ctx("o2"),
        &b"x"[..],
        &mut again,
        Backend::default(),
    )
    .expect_err("disabled key");
    assert!(matches!(err, Error::Kms(_)), "{err:?}");
    assert!(err.to_string().contains("is disabled"), "{err}");
    assert!(again.is_empty(), "no header written for a refused key");

    drop((alice, bob));
    rt.block_on(daemon.stop());
}
