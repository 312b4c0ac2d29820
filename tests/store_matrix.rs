//! The store is a parameter of the harness: the integration tests that start their daemons through
//! [`kmsbox_tests::TestDaemon`] run once on SQLite (as their own test targets) and once more here,
//! on PostgreSQL (`KMSBOX_TEST_STORE=postgres`: each daemon on a throwaway server of its own), so
//! that both stores keep the same behaviour. One run of `cargo test` drives both.

use std::process::Command;

use kmsbox_tests::StoreUnderTest;

/// The test targets run again on PostgreSQL.
const TARGETS: &[&str] = &["kms_api", "admin_api", "envelope_kms", "obs_adapter"];

/// Tests about the SQLite file itself, which a PostgreSQL store does not have, each with why.
const SQLITE_ONLY: &[(&str, &str)] = &[(
    "every_call_is_audited_without_key_material",
    "reads kms.sqlite3 and its WAL for key material",
)];

#[test]
fn the_integration_tests_pass_on_postgresql_too() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut c = Command::new(cargo);
    c.args(["test", "-q", "-p", "kmsbox-tests"]);
    for t in TARGETS {
        c.args(["--test", t]);
    }
    c.args(["--", "--test-threads=2"]);
    for (name, _why) in SQLITE_ONLY {
        c.args(["--skip", name]);
    }
    let out = c
        .env(StoreUnderTest::VAR, "postgres")
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the integration tests fail on PostgreSQL:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every target ran, and ran tests.
    let runs = stdout.matches("test result: ok.").count();
    assert_eq!(runs, TARGETS.len(), "{stdout}");
    assert!(!stdout.contains("test result: ok. 0 passed"), "{stdout}");
}
