//! `kms-server rotate-root-key` against the real binary (issue 19, point 2): every key version is
//! re-wrapped under a new root key in one transaction, the old key is kept, and a `kill -9` at any
//! point leaves a store that the next start serves, wholly under the old key or the new one, with
//! every ciphertext made before still decrypting.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test's failure"
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use kms_proto::v1 as pb;
use kmsbox_tests::Tenant;
use kmsbox_tests::process::{Daemon, bin, kms_server};

/// A ciphertext made before the rotation, with what it must decrypt to.
struct Sealed {
    blob: Vec<u8>,
    plaintext: Vec<u8>,
    /// The encryption context's one value.
    context: String,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A stopped daemon's data folder with `keys` keys (every fifth rotated once, so that it has two
/// versions) and one ciphertext per key version.
fn make_store(data: &Path, keys: usize) -> Vec<Sealed> {
    let d = Daemon::spawn(data, &[]);
    let rt = runtime();
    let sealed = rt.block_on(async {
        let mut t = Tenant::connect(&d.endpoint, "alice", None, None).await;
        let mut sealed = Vec::new();
        for i in 0..keys {
            let id = t
                .client
                .create_key(t.req(pb::CreateKeyRequest {
                    alias: format!("k{i}"),
                    description: String::new(),
                }))
                .await
                .expect("CreateKey")
                .into_inner()
                .metadata
                .expect("metadata")
                .key_id;
            let rounds = if i % 5 == 0 { 2 } else { 1 };
            for round in 0..rounds {
                if round > 0 {
                    t.client
                        .rotate_key(t.req(pb::RotateKeyRequest { key_id: id.clone() }))
                        .await
                        .expect("RotateKey");
                }
                let plaintext = format!("secret {i}.{round}").into_bytes();
                let blob = t
                    .client
                    .encrypt(t.req(pb::EncryptRequest {
                        key_id: id.clone(),
                        plaintext: plaintext.clone(),
                        encryption_context: [("n".to_owned(), i.to_string())].into(),
                    }))
                    .await
                    .expect("Encrypt")
                    .into_inner()
                    .ciphertext_blob;
                sealed.push(Sealed {
                    blob,
                    plaintext,
                    context: i.to_string(),
                });
            }
        }
        sealed
    });
    drop(rt);
    d.stop();
    sealed
}

/// Starts the daemon on `data` and checks that every ciphertext decrypts to its plaintext.
fn every_ciphertext_decrypts(data: &Path, sealed: &[Sealed]) {
    let d = Daemon::spawn(data, &[]);
    let rt = runtime();
    rt.block_on(async {
        let mut t = Tenant::connect(&d.endpoint, "alice", None, None).await;
        for (n, s) in sealed.iter().enumerate() {
            let out = t
                .client
                .decrypt(t.req(pb::DecryptRequest {
                    ciphertext_blob: s.blob.clone(),
                    encryption_context: [("n".to_owned(), s.context.clone())].into(),
                    key_id: String::new(),
                }))
                .await
                .unwrap_or_else(|e| panic!("ciphertext {n} does not decrypt: {e}"));
            assert_eq!(out.into_inner().plaintext, s.plaintext, "ciphertext {n}");
        }
    });
    drop(rt);
    d.stop();
}

/// `kms-server rotate-root-key --data-dir <data>`, run to its end.
fn rotate(data: &Path) -> Output {
    rotate_command(data, None)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("kms-server runs")
}

fn rotate_command(data: &Path, pause_at: Option<&str>) -> Command {
    let mut c = Command::new(bin("kms-server"));
    c.arg("rotate-root-key")
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn");
    if let Some(p) = pause_at {
        c.env("KMS_ROTATE_ROOT_KEY_PAUSE_AT", p);
    }
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Copies the flat data folder `from` to a new folder `to` (0700), file modes included.
fn copy_dir(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700)).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn with_suffix(p: &Path, s: &str) -> PathBuf {
    let mut n = p.as_os_str().to_owned();
    n.push(s);
    PathBuf::from(n)
}

/// Runs the daemon expecting it to refuse to start; returns its standard error.
fn refused_start(data: &Path, extra: &[&str]) -> String {
    let out = kms_server(data, extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("kms-server runs");
    assert!(!out.status.success(), "it started: {}", text(&out.stdout));
    text(&out.stderr)
}

#[test]
fn a_rotation_rewraps_every_key_keeps_the_old_key_and_every_ciphertext_still_decrypts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sealed = make_store(&data, 6);
    let key = data.join("root.key");
    let old = read(&key);
    let db_before = read(&data.join("kms.sqlite3"));

    // Not while a daemon serves the folder.
    let running = Daemon::spawn(&data, &[]);
    let out = rotate(&data);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("in use by another kms-server"),
        "{}",
        text(&out.stderr)
    );
    running.stop();

    let out = rotate(&data);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("8 key versions of 6 keys re-wrapped"),
        "{said}"
    );
    let new = read(&key);
    assert_ne!(new, old, "root.key holds the new key");
    assert_eq!(new.len(), 32);
    assert_eq!(read(&with_suffix(&key, ".old")), old, "the old key is kept");
    assert!(!with_suffix(&key, ".new").exists());
    assert_ne!(read(&data.join("kms.sqlite3")), db_before);
    let audit = std::fs::read_to_string(data.join("audit.jsonl")).unwrap();
    assert!(
        audit
            .lines()
            .last()
            .is_some_and(|l| l.contains("\"operation\":\"RotateRootKey\"")),
        "{audit}"
    );

    every_ciphertext_decrypts(&data, &sealed);

    // The old key does not open the store any more.
    let err = refused_start(
        &data,
        &[
            "--root-key-file",
            with_suffix(&key, ".old").to_str().unwrap(),
        ],
    );
    assert!(err.contains("another root key"), "{err}");

    // A second rotation waits until the operator removed the old key.
    let out = rotate(&data);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("root.key.old"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_file(with_suffix(&key, ".old")).unwrap();
    let out = rotate(&data);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(read(&with_suffix(&key, ".old")), new);
    every_ciphertext_decrypts(&data, &sealed);
}

/// Starts `command`, waits for `paused at <point>` on its standard error, and kills it with
/// SIGKILL there.
fn kill_9_at(mut command: Command, point: &str) {
    let mut child: Child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kms-server starts");
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut line = String::new();
        let n = err.read_line(&mut line).expect("reads stderr");
        assert!(n > 0, "exited before pausing at {point}: {seen}");
        seen.push_str(&line);
        if line.contains(&format!("paused at {point}")) {
            break;
        }
        assert!(Instant::now() < deadline, "no pause at {point}: {seen}");
    }
    child.kill().expect("kill -9");
    child.wait().expect("wait");
}

/// `kill -9` at each step of a rotation (the test seam's pause points): the next start serves the
/// store under the old key (before the commit) or the new one (from the commit on), finishing or
/// discarding the interrupted rotation, and every ciphertext made before decrypts.
#[test]
fn kill_9_at_each_step_of_a_rotation_leaves_the_store_wholly_under_the_old_or_the_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("pristine");
    let sealed = make_store(&pristine, 4);
    let old = read(&pristine.join("root.key"));
    // (pause point, whether the store is under the new key afterwards)
    let steps = [
        ("new-key-written", false),
        ("before-commit", false),
        ("committed", true),
        ("old-key-kept", true),
    ];
    for (point, committed) in steps {
        let data = dir.path().join(point);
        copy_dir(&pristine, &data);
        let key = data.join("root.key");
        kill_9_at(rotate_command(&data, Some(point)), point);
        assert!(
            with_suffix(&key, ".new").exists(),
            "{point}: the new key was written before the kill"
        );
        // The next start finishes or discards the rotation by itself.
        every_ciphertext_decrypts(&data, &sealed);
        assert!(!with_suffix(&key, ".new").exists(), "{point}");
        let audited = std::fs::read_to_string(data.join("audit.jsonl"))
            .unwrap()
            .contains("\"operation\":\"RotateRootKey\"");
        assert_eq!(
            audited, committed,
            "{point}: the finished rotation is audited"
        );
        if committed {
            assert_ne!(read(&key), old, "{point}: the new key is in place");
            assert_eq!(
                read(&with_suffix(&key, ".old")),
                old,
                "{point}: old key kept"
            );
        } else {
            assert_eq!(read(&key), old, "{point}: the old key stays");
            assert!(!with_suffix(&key, ".old").exists(), "{point}");
        }
    }
}

/// `kill -9` at moments nobody chose, through a rotation of a few hundred keys: whatever the moment,
/// the next start serves the store and every ciphertext made before decrypts.
#[test]
fn kill_9_at_any_moment_of_a_long_rotation_leaves_a_store_that_serves_every_ciphertext() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("pristine");
    let sealed = make_store(&pristine, 300);
    let old = read(&pristine.join("root.key"));
    // How long a whole rotation takes here, to spread the kills over it.
    let probe = dir.path().join("probe");
    copy_dir(&pristine, &probe);
    let start = Instant::now();
    assert!(rotate(&probe).status.success());
    let whole = start.elapsed();
    let mut outcomes = (0, 0);
    // From the start of the process to past the end of a whole rotation.
    for step in 0..8u32 {
        let data = dir.path().join(format!("kill-{step}"));
        copy_dir(&pristine, &data);
        let mut child = rotate_command(&data, None)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("kms-server starts");
        std::thread::sleep(whole * step / 5);
        let _ = child.kill();
        child.wait().expect("wait");
        every_ciphertext_decrypts(&data, &sealed);
        let key = data.join("root.key");
        assert!(!with_suffix(&key, ".new").exists(), "kill {step}");
        if read(&key) == old {
            outcomes.0 += 1;
        } else {
            assert_eq!(read(&with_suffix(&key, ".old")), old, "kill {step}");
            outcomes.1 += 1;
        }
    }
    eprintln!(
        "a rotation of 300 keys took {whole:?}; killed runs left {} stores under the old key, {} \
         under the new",
        outcomes.0, outcomes.1
    );
}
