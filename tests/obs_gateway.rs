//! obs-gateway end to end: the real `kms-server` and `obs-gateway` binaries on loopback, driven by
//! unmodified clients installed from PyPI with pinned versions (boto3 with its default SigV4 and
//! with `signature_version='s3'`; Huawei's esdk-obs-python with its default client mode, which
//! signs V2 in the x-amz dialect for an IP endpoint, with `client_mode='workflow'`, which signs
//! with the OBS scheme and x-obs- headers, and with `signature='v4'`). Each test starts its own
//! daemon and gateway.
// The expected documents of the larger tests nest past serde_json::json!'s default depth.
#![recursion_limit = "256"]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use kmsbox_tests::process::{Daemon, bin};
use kmsbox_tests::python::{run_script, venv_python};
use serde_json::Value;

/// The clients, pinned.
const REQUIREMENTS: &[&str] = &[
    "boto3==1.44.5",
    "botocore==1.44.5",
    "esdk-obs-python==3.26.6",
];

/// Two tenants, as a user writes the credentials file.
const DOMAIN_1: &str = "783fc6652cf246c096ea836694f71855";
const DOMAIN_2: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const CREDENTIALS: &str = r#"[[credentials]]
access_key = "AK1EXAMPLE"
secret_key = "sk-one"
domain_id = "783fc6652cf246c096ea836694f71855"

[[credentials]]
access_key = "AK2EXAMPLE"
secret_key = "sk-two"
domain_id = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
"#;
const T1: (&str, &str) = ("AK1EXAMPLE", "sk-one");
const T2: (&str, &str) = ("AK2EXAMPLE", "sk-two");

/// boto3 with the AWS common runtime, botocore's optional dependency for CRC-64/NVME (the
/// version botocore's `crt` extra pins).
fn crt_python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("obs-crt");
            venv_python(
                &venv,
                &["boto3==1.44.5", "botocore==1.44.5", "awscrt==0.38.0"],
            )
        })
        .clone()
}

fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("obs-clients");
            venv_python(&venv, REQUIREMENTS)
        })
        .clone()
}

fn gateway_bin() -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "-q", "-p", "obs-gateway", "--bins"])
            .status()
            .expect("cargo runs")
            .success();
        assert!(ok, "building obs-gateway failed");
    });
    // `bin` builds the daemon and kmsctl, and names a binary of the target folder.
    bin("obs-gateway")
}

/// A running `obs-gateway`; killed when dropped.
struct Gateway {
    child: Child,
    endpoint: String,
}

impl Gateway {
    fn spawn(data_dir: &Path, kms: &str, credentials: &Path, extra: &[&str]) -> Self {
        let mut c = Command::new(gateway_bin());
        c.arg("--credentials").arg(credentials).args(extra);
        Self::spawn_with(c, data_dir, kms).0
    }

    /// Starts `command` (the gateway binary with its own flags) on a free loopback port; returns
    /// it and the lines it printed up to its banner.
    fn spawn_with(mut command: Command, data_dir: &Path, kms: &str) -> (Self, Vec<String>) {
        let mut child = command
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(["--kms-endpoint", kms])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("obs-gateway starts");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut lines = Vec::new();
        let addr: SocketAddr = loop {
            let mut line = String::new();
            let n = out.read_line(&mut line).expect("reads the banner");
            assert!(n > 0, "obs-gateway exited before listening: {lines:?}");
            if let Some(rest) = line.trim().strip_prefix("obs-gateway listening on ") {
                break rest.parse().expect("address");
            }
            lines.push(line.trim().to_owned());
        };
        (
            Self {
                child,
                endpoint: format!("http://{addr}"),
            },
            lines,
        )
    }

    /// SIGTERM, and a successful exit within 30 s.
    fn stop(mut self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok);
        let start = std::time::Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                assert!(s.success(), "{s:?}");
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "no exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A daemon, a gateway over it, and their folders.
struct Env {
    dir: tempfile::TempDir,
    daemon: Daemon,
    gw: Option<Gateway>,
    extra: Vec<String>,
}

impl Env {
    fn start(extra: &[&str]) -> Self {
        Self::start_with(extra, CREDENTIALS, None, &[])
    }

    /// A gateway with `extra` flags and this credentials file, over a daemon started with
    /// `--tenants` (this TOML) when given and `daemon_extra` flags.
    fn start_with(
        extra: &[&str],
        credentials: &str,
        tenants: Option<&str>,
        daemon_extra: &[&str],
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("kms")).expect("kms dir");
        std::fs::write(dir.path().join("credentials.toml"), credentials).expect("credentials");
        let tenants_file = dir.path().join("tenants.toml");
        let mut daemon_flags = Vec::new();
        if let Some(t) = tenants {
            std::fs::write(&tenants_file, t).expect("tenants");
            daemon_flags = vec!["--tenants".to_owned(), tenants_file.display().to_string()];
        }
        let flags: Vec<&str> = daemon_flags
            .iter()
            .map(String::as_str)
            .chain(daemon_extra.iter().copied())
            .collect();
        let daemon = Daemon::spawn(&dir.path().join("kms"), &flags);
        let mut env = Self {
            dir,
            daemon,
            gw: None,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        env.gw = Some(env.spawn_gateway());
        env
    }

    fn spawn_gateway(&self) -> Gateway {
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        Gateway::spawn(
            &self.data(),
            &self.daemon.endpoint,
            &self.dir.path().join("credentials.toml"),
            &extra,
        )
    }

    /// Stops the gateway (SIGTERM, clean exit) and starts a new one on the same folders.
    fn restart_gateway(&mut self) {
        if let Some(gw) = self.gw.take() {
            gw.stop();
        }
        self.gw = Some(self.spawn_gateway());
    }

    fn endpoint(&self) -> &str {
        &self.gw.as_ref().expect("a running gateway").endpoint
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("gw")
    }

    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).expect("write");
        p.to_string_lossy().into_owned()
    }

    fn out(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    fn kmsctl(&self, domain: &str, args: &[&str]) -> Value {
        let out = Command::new(bin("kmsctl"))
            .args([
                "--endpoint",
                &self.daemon.endpoint,
                "--domain",
                domain,
                "-o",
                "json",
            ])
            .args(args)
            .output()
            .expect("kmsctl runs");
        assert!(
            out.status.success(),
            "kmsctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }
}

/// The four client configurations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    Boto3SigV4,
    Boto3SigV2,
    /// boto3 with `signature_version='s3v4'`: presigned URLs in V4 too (the default presigns V2).
    Boto3S3v4,
    EsdkDefault,
    EsdkWorkflow,
    /// esdk-obs-python with `signature='v4'`.
    EsdkV4,
}

const ALL: [Client; 5] = [
    Client::Boto3SigV4,
    Client::Boto3SigV2,
    Client::EsdkDefault,
    Client::EsdkWorkflow,
    Client::EsdkV4,
];

impl Client {
    fn run(self, env: &Env, who: (&str, &str), args: &[&str]) -> Value {
        let (script, mode) = match self {
            Client::Boto3SigV4 => ("obs_boto3.py", "default"),
            Client::Boto3SigV2 => ("obs_boto3.py", "s3"),
            Client::Boto3S3v4 => ("obs_boto3.py", "s3v4"),
            Client::EsdkDefault => ("obs_esdk.py", "default"),
            Client::EsdkWorkflow => ("obs_esdk.py", "workflow"),
            Client::EsdkV4 => ("obs_esdk.py", "v4"),
        };
        let mut all = vec![env.endpoint(), who.0, who.1, mode];
        all.extend_from_slice(args);
        let out = run_script(&python(), script, &all);
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{script} {args:?}: {e}: {out}"))
    }

    /// The SSE headers' dialect the client's requests speak: x-obs (`kms`) or x-amz (`aws:kms`).
    fn algorithm(self) -> &'static str {
        match self {
            Client::EsdkWorkflow => "kms",
            _ => "aws:kms",
        }
    }

    /// The SSE algorithm and key ID the client reports from a response.
    fn sse(self, v: &Value) -> (String, String) {
        let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        match self {
            Client::Boto3SigV4 | Client::Boto3SigV2 | Client::Boto3S3v4 => (
                s(&v["headers"]["x-amz-server-side-encryption"]),
                s(&v["headers"]["x-amz-server-side-encryption-aws-kms-key-id"]),
            ),
            Client::EsdkDefault | Client::EsdkWorkflow | Client::EsdkV4 => {
                (s(&v["sseKms"]), s(&v["sseKmsKey"]))
            }
        }
    }
}

fn status(v: &Value) -> u64 {
    v["status"].as_u64().unwrap_or(0)
}

fn error(v: &Value) -> &str {
    v["error"].as_str().unwrap_or("")
}

/// Object bytes that name themselves: any copy of them in the data folder is found by grep.
fn marked(marker: &str, len: usize) -> Vec<u8> {
    let line = format!("{marker} plaintext line\n");
    line.bytes().cycle().take(len).collect()
}

/// Every file under `dir` (recursively) that contains `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p)
                .expect("read")
                .windows(needle.len())
                .any(|w| w == needle)
            {
                found.push(p);
            }
        }
    }
    found
}

fn object_files(env: &Env) -> Vec<PathBuf> {
    std::fs::read_dir(env.data().join("objects"))
        .expect("objects dir")
        .map(|e| e.expect("entry").path())
        .collect()
}

fn key_id_of_tenant(key: &str, domain: &str) -> bool {
    key.strip_prefix(&format!("region:{domain}:key/"))
        .is_some_and(|u| u.len() == 36)
}

/// Rules 1 to 3 and 10 with every client: SSE-KMS with and without a key ID, whole and range
/// GETs, HEAD, answers in the request's dialect with the full key ID; on disk only ciphertext.
#[test]
fn every_client_stores_and_reads_sse_kms_objects_in_its_own_dialect() {
    let env = Env::start(&[]);
    let created = Client::Boto3SigV4.run(&env, T1, &["create-bucket", "bucket-one"]);
    assert_eq!(status(&created), 200, "{created}");
    let mut markers = Vec::new();
    for client in ALL {
        let marker = format!("SECRET-{client:?}-{}", uuid::Uuid::new_v4().simple());
        let body = marked(&marker, 100_000);
        let src = env.file(&format!("{client:?}.src"), &body);
        // Without a key ID: the tenant's OBS default key.
        let put = client.run(
            &env,
            T1,
            &[
                "put",
                "bucket-one",
                &format!("{client:?}/a"),
                &src,
                "-",
                "kms",
            ],
        );
        assert_eq!(status(&put), 200, "{client:?} {put}");
        let (alg, key) = client.sse(&put);
        assert_eq!(alg, client.algorithm(), "{client:?} {put}");
        assert!(
            key_id_of_tenant(&key, DOMAIN_1),
            "{client:?} full key ID: {put}"
        );
        // With the key ID, in its full form: the same key.
        let put = client.run(
            &env,
            T1,
            &[
                "put",
                "bucket-one",
                &format!("{client:?}/b"),
                &src,
                &key,
                "kms",
            ],
        );
        assert_eq!(status(&put), 200, "{client:?} {put}");
        assert_eq!(client.sse(&put).1, key, "{client:?}");
        for name in ["a", "b"] {
            let out = env.out(&format!("{client:?}.{name}.out"));
            let got = client.run(
                &env,
                T1,
                &["get", "bucket-one", &format!("{client:?}/{name}"), &out],
            );
            assert_eq!(status(&got), 200, "{client:?} {got}");
            assert_eq!(
                client.sse(&got),
                (client.algorithm().to_owned(), key.clone()),
                "{client:?}"
            );
            assert!(
                std::fs::read(&out).expect("out") == body,
                "{client:?}: GET returns the bytes put"
            );
        }
        let range = match client {
            Client::Boto3SigV4 | Client::Boto3SigV2 | Client::Boto3S3v4 => "bytes=70000-70099",
            _ => "70000-70099",
        };
        let out = env.out(&format!("{client:?}.range"));
        let got = client.run(
            &env,
            T1,
            &["get", "bucket-one", &format!("{client:?}/a"), &out, range],
        );
        assert_eq!(status(&got), 206, "{client:?} {got}");
        assert_eq!(
            std::fs::read(&out).expect("out"),
            body[70_000..70_100],
            "{client:?}"
        );
        let head = client.run(&env, T1, &["head", "bucket-one", &format!("{client:?}/a")]);
        assert_eq!(status(&head), 200, "{client:?} {head}");
        assert_eq!(
            client.sse(&head),
            (client.algorithm().to_owned(), key.clone()),
            "{client:?}"
        );
        markers.push(marker);
    }
    // A plaintext object is stored as is: the search below finds what is there.
    let plain = marked("PLAIN-MARKER-KMSBOX", 10_000);
    let src = env.file("plain.src", &plain);
    let put = Client::Boto3SigV4.run(&env, T1, &["put", "bucket-one", "plain", &src]);
    assert_eq!(status(&put), 200, "{put}");
    assert!(
        put["headers"].get("x-amz-server-side-encryption").is_none(),
        "{put}"
    );
    assert_eq!(
        files_containing(&env.data(), b"PLAIN-MARKER-KMSBOX").len(),
        1
    );
    for marker in markers {
        assert_eq!(
            files_containing(&env.data(), marker.as_bytes()),
            Vec::<PathBuf>::new(),
            "plaintext of an SSE-KMS object in the data folder"
        );
    }
}

/// A refused SSE parameter is named as the client sent it: an S3 client (boto3, the OBS SDK in
/// its AWS modes) reads `x-amz-server-side-encryption-aws-kms-key-id`, the OBS SDK in its own
/// mode `x-obs-server-side-encryption-kms-key-id`, and a bucket's default encryption names its
/// document's `KMSMasterKeyID`. (The adapter reads, and named, only the OBS parameters, so S3
/// clients were told about headers they never sent.) Nothing is stored by a refusal.
#[test]
fn refusals_name_the_sse_parameters_as_the_client_sent_them() {
    let env = Env::start(&[]);
    let bucket = "sse-names";
    Client::Boto3SigV4.run(&env, T1, &["create-bucket", bucket]);
    let src = env.file("names.src", b"a source object");
    let put = Client::Boto3SigV4.run(&env, T1, &["put", bucket, "src", &src]);
    assert_eq!(status(&put), 200, "{put}");
    let malformed = "malformed key ID \"not-a-key\": a key UUID has 36 characters: 8-4-4-4-12 hexadecimal digits";
    for client in ALL {
        let name = if client.algorithm() == "kms" {
            "x-obs-server-side-encryption-kms-key-id"
        } else {
            "x-amz-server-side-encryption-aws-kms-key-id"
        };
        let want = serde_json::json!([
            400,
            "InvalidArgument",
            format!("the header {name} is invalid: {malformed}")
        ]);
        let seen = |v: &Value| serde_json::json!([status(v), error(v), v["message"]]);
        let key = format!("{client:?}");
        let put = client.run(&env, T1, &["put", bucket, &key, &src, "not-a-key", "kms"]);
        assert_eq!(seen(&put), want, "{client:?} put {put}");
        let copy = client.run(
            &env,
            T1,
            &["copy", bucket, &key, bucket, "src", "not-a-key", "kms"],
        );
        assert_eq!(seen(&copy), want, "{client:?} copy {copy}");
        let default = client.run(&env, T1, &["put-encryption", bucket, "not-a-key"]);
        assert_eq!(
            seen(&default),
            serde_json::json!([
                400,
                "InvalidArgument",
                format!("the bucket default encryption's KMSMasterKeyID is invalid: {malformed}")
            ]),
            "{client:?} {default}"
        );
    }
    let listed = Client::Boto3SigV4.run(&env, T1, &["list", bucket]);
    assert_eq!(listed["keys"], serde_json::json!(["src"]), "{listed}");
    let head = Client::Boto3SigV4.run(&env, T1, &["head", bucket, "src"]);
    assert!(
        head["headers"]
            .get("x-amz-server-side-encryption")
            .is_none(),
        "{head}"
    );
}

/// A wrong secret key and an unknown access key are refused with the S3/OBS codes, and the
/// refused uploads store nothing.
#[test]
fn wrong_and_unknown_keys_are_refused_and_store_nothing() {
    let env = Env::start(&[]);
    let created = Client::Boto3SigV4.run(&env, T1, &["create-bucket", "bucket-two"]);
    assert_eq!(status(&created), 200, "{created}");
    let src = env.file("x.src", &marked("REFUSED", 5000));
    for client in ALL {
        let put = client.run(
            &env,
            ("AK1EXAMPLE", "not-the-secret"),
            &["put", "bucket-two", "k", &src, "-", "kms"],
        );
        assert_eq!(
            (status(&put), error(&put)),
            (403, "SignatureDoesNotMatch"),
            "{client:?} {put}"
        );
        let put = client.run(
            &env,
            ("AKUNKNOWN", "sk-one"),
            &["put", "bucket-two", "k", &src],
        );
        assert_eq!(
            (status(&put), error(&put)),
            (403, "InvalidAccessKeyId"),
            "{client:?} {put}"
        );
    }
    let list = Client::Boto3SigV4.run(&env, T1, &["list", "bucket-two"]);
    assert_eq!(list["keys"], serde_json::json!([]), "{list}");
    assert!(object_files(&env).is_empty());
    assert_eq!(
        std::fs::read_dir(env.data().join("tmp"))
            .expect("tmp")
            .count(),
        0
    );
}

/// A changed byte in an SSE-KMS object's file: the GET fails, and no byte that was not put is
/// ever served (a first chunk that fails is an error response; a later one cuts the body). Range
/// GETs decrypt only the chunks they need.
#[test]
fn a_tampered_object_file_serves_no_wrong_byte() {
    let env = Env::start(&[]);
    Client::Boto3SigV4.run(&env, T1, &["create-bucket", "bucket-three"]);
    for (name, len, at) in [("small", 1000usize, 500u64), ("large", 200_000, 150_000)] {
        let body = marked("TAMPER", len);
        let src = env.file(name, &body);
        let put =
            Client::Boto3SigV4.run(&env, T1, &["put", "bucket-three", name, &src, "-", "kms"]);
        assert_eq!(status(&put), 200, "{put}");
        let files = object_files(&env);
        let file = files
            .iter()
            .max_by_key(|p| {
                std::fs::metadata(p)
                    .expect("meta")
                    .modified()
                    .expect("mtime")
            })
            .expect("the object file");
        let mut bytes = std::fs::read(file).expect("read");
        let at = usize::try_from(at).expect("offset");
        bytes[at] ^= 0x01;
        std::fs::write(file, &bytes).expect("tamper");
        let out = env.out(&format!("{name}.out"));
        let got = Client::Boto3SigV4.run(&env, T1, &["get", "bucket-three", name, &out]);
        assert!(
            !error(&got).is_empty(),
            "{name}: a tampered object must not read back: {got}"
        );
        let served = std::fs::read(&out).unwrap_or_default();
        assert!(
            served.len() < body.len() && body.starts_with(&served),
            "{name}: {} bytes served, not a prefix of the object",
            served.len()
        );
        if name == "small" {
            assert_eq!((status(&got), error(&got)), (500, "InternalError"), "{got}");
        } else {
            // A range GET decrypts only the chunks it needs (and the final one): a range far
            // from the damaged chunk still reads, authentic; one over it does not.
            let got = Client::Boto3SigV4.run(
                &env,
                T1,
                &["get", "bucket-three", name, &out, "bytes=0-99"],
            );
            assert_eq!(status(&got), 206, "{got}");
            assert_eq!(std::fs::read(&out).expect("out"), body[..100]);
            let got = Client::Boto3SigV4.run(
                &env,
                T1,
                &["get", "bucket-three", name, &out, "bytes=149000-151000"],
            );
            assert!(!error(&got).is_empty(), "{got}");
        }
    }
}

/// What was written before a restart of the gateway reads back after it.
#[test]
fn objects_survive_a_gateway_restart() {
    let mut env = Env::start(&[]);
    Client::EsdkWorkflow.run(&env, T1, &["create-bucket", "bucket-four"]);
    let body = marked("RESTART", 50_000);
    let src = env.file("r.src", &body);
    let put = Client::EsdkWorkflow.run(&env, T1, &["put", "bucket-four", "r", &src, "-", "kms"]);
    assert_eq!(status(&put), 200, "{put}");
    env.restart_gateway();
    for client in [Client::EsdkWorkflow, Client::Boto3SigV4] {
        let out = env.out(&format!("r.{client:?}"));
        let got = client.run(&env, T1, &["get", "bucket-four", "r", &out]);
        assert_eq!(status(&got), 200, "{client:?} {got}");
        assert!(std::fs::read(&out).expect("out") == body);
    }
}

/// Rule 9: another tenant cannot read an SSE-KMS object, nor upload SSE-KMS objects into a
/// bucket it does not own; a key with no object is AccessDenied to it too (never NoSuchKey).
#[test]
fn tenants_cannot_read_or_write_each_others_sse_kms_objects() {
    let env = Env::start(&[]);
    Client::Boto3SigV4.run(&env, T1, &["create-bucket", "bucket-five"]);
    let src = env.file("t.src", &marked("TENANT", 3000));
    let put = Client::Boto3SigV4.run(&env, T1, &["put", "bucket-five", "t", &src, "-", "kms"]);
    assert_eq!(status(&put), 200, "{put}");
    for client in ALL {
        let out = env.out("t.out");
        let got = client.run(&env, T2, &["get", "bucket-five", "t", &out]);
        assert_eq!(
            (status(&got), error(&got)),
            (403, "AccessDenied"),
            "{client:?} read {got}"
        );
        // A key with no object answers the same: nothing tells what the bucket holds.
        let missing = client.run(&env, T2, &["get", "bucket-five", "no-such-key", &out]);
        assert_eq!(
            (status(&missing), error(&missing)),
            (403, "AccessDenied"),
            "{client:?} read of a missing key {missing}"
        );
        let put = client.run(&env, T2, &["put", "bucket-five", "u", &src, "-", "kms"]);
        assert_eq!(
            (status(&put), error(&put)),
            (403, "AccessDenied"),
            "{client:?} upload {put}"
        );
    }
    let list = Client::Boto3SigV4.run(&env, T1, &["list", "bucket-five"]);
    assert_eq!(list["keys"], serde_json::json!(["t"]), "{list}");
    // The second tenant's own bucket: its own default key.
    Client::Boto3SigV4.run(&env, T2, &["create-bucket", "bucket-five-b"]);
    let own = Client::Boto3SigV4.run(&env, T2, &["put", "bucket-five-b", "t", &src, "-", "kms"]);
    assert_eq!(status(&own), 200, "{own}");
    let key = Client::Boto3SigV4.sse(&own).1;
    assert!(key_id_of_tenant(&key, DOMAIN_2), "{own}");
}

/// Rules 4 and 5: a customer-created key is refused by default; with --allow-customer-keys it
/// is accepted, and once disabled neither new uploads nor reads of its objects go through.
#[test]
fn customer_keys_are_refused_by_default_and_disabled_keys_always() {
    for allow in [false, true] {
        let env = Env::start(if allow {
            &["--allow-customer-keys"]
        } else {
            &[]
        });
        Client::Boto3SigV4.run(&env, T1, &["create-bucket", "bucket-six"]);
        let key = env.kmsctl(DOMAIN_1, &["create-key"])["key_id"]
            .as_str()
            .expect("key_id")
            .to_owned();
        let src = env.file("c.src", &marked("CUSTOMER", 3000));
        let put = Client::Boto3SigV4.run(&env, T1, &["put", "bucket-six", "c", &src, &key, "kms"]);
        if !allow {
            assert_eq!(
                (status(&put), error(&put)),
                (400, "InvalidArgument"),
                "{put}"
            );
            assert!(object_files(&env).is_empty());
            continue;
        }
        assert_eq!(status(&put), 200, "{put}");
        env.kmsctl(DOMAIN_1, &["disable-key", &key]);
        for client in [Client::Boto3SigV4, Client::EsdkWorkflow] {
            let put = client.run(&env, T1, &["put", "bucket-six", "d", &src, &key, "kms"]);
            assert_eq!(
                (status(&put), error(&put)),
                (400, "KMS.DisabledException"),
                "{client:?} {put}"
            );
            let got = client.run(&env, T1, &["get", "bucket-six", "c", &env.out("c.out")]);
            assert_eq!(
                (status(&got), error(&got)),
                (400, "KMS.DisabledException"),
                "{client:?} {got}"
            );
        }
    }
}

/// The raw response's SSE algorithm and key ID, in either dialect.
fn raw_sse(v: &Value) -> (String, String) {
    let h = &v["headers"];
    let s = |n: &str| h[n].as_str().unwrap_or_default().to_owned();
    if h.get("x-obs-server-side-encryption").is_some() {
        (
            s("x-obs-server-side-encryption"),
            s("x-obs-server-side-encryption-kms-key-id"),
        )
    } else {
        (
            s("x-amz-server-side-encryption"),
            s("x-amz-server-side-encryption-aws-kms-key-id"),
        )
    }
}

/// Copies: a plaintext source into an SSE-KMS target (the SSE parameters apply to the target),
/// an SSE-KMS source into a plaintext target, with every client; and no tenant copies another
/// tenant's SSE-KMS object (rule 9).
#[test]
fn copies_encrypt_the_target_and_decrypt_the_source() {
    let env = Env::start(&[]);
    Client::Boto3SigV4.run(&env, T1, &["create-bucket", "bucket-copy"]);
    let body = marked("COPIED", 40_000);
    let src = env.file("copy.src", &body);
    let put = Client::Boto3SigV4.run(&env, T1, &["put", "bucket-copy", "plain", &src]);
    assert_eq!(status(&put), 200, "{put}");
    let put = Client::Boto3SigV4.run(
        &env,
        T1,
        &["put", "bucket-copy", "sealed", &src, "-", "kms"],
    );
    let key = Client::Boto3SigV4.sse(&put).1;
    for client in ALL {
        let to_kms = format!("{client:?}/kms");
        let cp = client.run(
            &env,
            T1,
            &[
                "copy",
                "bucket-copy",
                &to_kms,
                "bucket-copy",
                "plain",
                "-",
                "kms",
            ],
        );
        assert_eq!(status(&cp), 200, "{client:?} {cp}");
        assert_eq!(
            client.sse(&cp),
            (client.algorithm().to_owned(), key.clone()),
            "{client:?} {cp}"
        );
        let to_plain = format!("{client:?}/plain");
        let cp = client.run(
            &env,
            T1,
            &["copy", "bucket-copy", &to_plain, "bucket-copy", "sealed"],
        );
        assert_eq!(status(&cp), 200, "{client:?} {cp}");
        assert_eq!(
            client.sse(&cp).0,
            "",
            "{client:?}: a copy without SSE parameters is plaintext: {cp}"
        );
        for (name, sse) in [(&to_kms, true), (&to_plain, false)] {
            let out = env.out("copy.out");
            let got = Client::Boto3SigV4.run(&env, T1, &["get", "bucket-copy", name, &out]);
            assert_eq!(status(&got), 200, "{got}");
            assert_eq!(
                !Client::Boto3SigV4.sse(&got).0.is_empty(),
                sse,
                "{name}: {got}"
            );
            assert!(std::fs::read(&out).expect("out") == body, "{name}");
        }
    }
    // The CopyObjectResult the SDKs parse carries S3's time format.
    let cp = Client::Boto3SigV4.run(
        &env,
        T1,
        &["copy", "bucket-copy", "again", "bucket-copy", "plain"],
    );
    assert!(
        cp["last_modified"]
            .as_str()
            .is_some_and(|t| t.ends_with("+00:00")),
        "{cp}"
    );
    // Another tenant, into its own bucket.
    Client::Boto3SigV4.run(&env, T2, &["create-bucket", "bucket-copy-2"]);
    for client in ALL {
        let cp = client.run(
            &env,
            T2,
            &[
                "copy",
                "bucket-copy-2",
                "stolen",
                "bucket-copy",
                "sealed",
                "-",
                "kms",
            ],
        );
        assert_eq!(
            (status(&cp), error(&cp)),
            (403, "AccessDenied"),
            "{client:?} {cp}"
        );
    }
    let list = Client::Boto3SigV4.run(&env, T2, &["list", "bucket-copy-2"]);
    assert_eq!(list["keys"], serde_json::json!([]), "{list}");
}

/// Presigned PUTs asking for SSE-KMS in the URL: botocore's V2 URL (the header moved into the
/// query), its V4 URL (a signed header), and the OBS SDK's URL with the SSE parameter as a signed
/// sub-resource (`x-obs-server-side-encryption=kms` with the OBS scheme, its x-amz spelling in
/// the default mode). The same URLs without their SSE parameter no longer verify, and an SSE
/// parameter the signature does not cover (x-obs- in the x-amz dialect) is refused, never
/// honoured or dropped.
#[test]
fn presigned_puts_carry_sse_kms_and_do_not_verify_without_it() {
    let env = Env::start(&[]);
    Client::Boto3SigV4.run(&env, T1, &["create-bucket", "bucket-presign"]);
    let body = marked("PRESIGNED", 20_000);
    let src = env.file("pre.src", &body);
    for client in [
        Client::Boto3SigV4,
        Client::Boto3SigV2,
        Client::Boto3S3v4,
        Client::EsdkDefault,
        Client::EsdkWorkflow,
        Client::EsdkV4,
    ] {
        let name = format!("{client:?}");
        let put = client.run(&env, T1, &["presigned-put", "bucket-presign", &name, &src]);
        assert_eq!(status(&put), 200, "{client:?} {put}");
        let (alg, key) = raw_sse(&put);
        assert!(alg == "kms" || alg == "aws:kms", "{client:?} {put}");
        assert!(key_id_of_tenant(&key, DOMAIN_1), "{client:?} {put}");
        let head = Client::Boto3SigV4.run(&env, T1, &["head", "bucket-presign", &name]);
        assert_eq!(Client::Boto3SigV4.sse(&head).1, key, "{client:?} {head}");
        if client != Client::Boto3S3v4 {
            let put = client.run(
                &env,
                T1,
                &["presigned-put-stripped", "bucket-presign", "stripped", &src],
            );
            assert_eq!(
                (status(&put), error(&put)),
                (403, "SignatureDoesNotMatch"),
                "{client:?} {put}"
            );
        }
    }
    let list = Client::Boto3SigV4.run(&env, T1, &["list", "bucket-presign"]);
    assert!(
        !list["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .any(|k| k == "stripped"),
        "{list}"
    );
}

/// Rule 7: a bucket's default encryption (set by boto3 as `aws:kms`, by the OBS SDK as `kms`)
/// applies to uploads without SSE parameters.
#[test]
fn bucket_default_encryption_applies_to_uploads_without_sse_parameters() {
    let env = Env::start(&[]);
    let src = env.file("d.src", &marked("DEFAULTENC", 5000));
    for (client, bucket) in [
        (Client::Boto3SigV4, "bucket-default-a"),
        (Client::EsdkWorkflow, "bucket-default-b"),
    ] {
        client.run(&env, T1, &["create-bucket", bucket]);
        let set = client.run(&env, T1, &["put-encryption", bucket]);
        assert_eq!(status(&set), 200, "{client:?} {set}");
        for putter in ALL {
            let put = putter.run(&env, T1, &["put", bucket, &format!("{putter:?}"), &src]);
            assert_eq!(status(&put), 200, "{putter:?} {put}");
            let (alg, key) = putter.sse(&put);
            assert_eq!(alg, putter.algorithm(), "{putter:?} into {bucket}: {put}");
            assert!(key_id_of_tenant(&key, DOMAIN_1), "{putter:?} {put}");
        }
    }
    let set = Client::Boto3SigV2.run(&env, T1, &["put-encryption", "bucket-default-a"]);
    assert_eq!(
        set["rule"],
        serde_json::json!({"SSEAlgorithm": "aws:kms"}),
        "{set}"
    );
}

/// Rule 8: the seed's DenyUnEncryptedObjectUploads policy refuses uploads without
/// `x-obs-server-side-encryption: kms` (or its S3 spelling) and stores nothing for them.
#[test]
fn the_seeds_deny_unencrypted_policy_refuses_plain_uploads() {
    let env = Env::start(&[]);
    Client::Boto3SigV4.run(&env, T1, &["create-bucket", "bucket-policy"]);
    let policy = r#"{
"Statement":[{
"Sid":"DenyUnEncryptedObjectUploads",
"Effect":"Deny",
"Principal":"*",
"Action":"PutObject",
"Resource":"bucket-policy/*",
"Condition":{
"StringNotEquals":{
"x-obs-server-side-encryption":"kms"
}
}
}
]
}"#;
    let file = env.file("policy.json", policy.as_bytes());
    let set = Client::Boto3SigV4.run(&env, T1, &["put-policy", "bucket-policy", &file]);
    assert_eq!(status(&set), 204, "{set}");
    let src = env.file("p.src", &marked("POLICY", 5000));
    for client in ALL {
        let put = client.run(
            &env,
            T1,
            &["put", "bucket-policy", &format!("{client:?}/plain"), &src],
        );
        assert_eq!(
            (status(&put), error(&put)),
            (403, "AccessDenied"),
            "{client:?} {put}"
        );
        let put = client.run(
            &env,
            T1,
            &[
                "put",
                "bucket-policy",
                &format!("{client:?}/kms"),
                &src,
                "-",
                "kms",
            ],
        );
        assert_eq!(status(&put), 200, "{client:?} {put}");
    }
    let list = Client::Boto3SigV4.run(&env, T1, &["list", "bucket-policy"]);
    let keys = list["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), ALL.len(), "{list}");
    assert!(
        keys.iter()
            .all(|k| k.as_str().is_some_and(|k| k.ends_with("/kms"))),
        "{list}"
    );
}

/// The seed document, whose sample requests and responses the replay test reads.
fn seed_document() -> String {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../obs-adapter/reference/obs-sse-kms.rst");
    std::fs::read_to_string(path).expect("the seed document")
}

/// The indented block of the section titled `title`: its lines without the 3-space indent.
fn seed_block(doc: &str, title: &str) -> Vec<String> {
    let mut lines = doc.lines().skip_while(|l| l.trim() != title).skip(2);
    // Up to the block's marker (`.. code-block:: text` or `::`), then the blank line after it.
    for l in lines.by_ref() {
        if l.trim_end().ends_with("::") || l.trim_start().starts_with(".. code-block::") {
            break;
        }
    }
    let mut block: Vec<String> = lines
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with("   "))
        .map(|l| l.strip_prefix("   ").unwrap_or(l).to_owned())
        .collect();
    while block.last().is_some_and(String::is_empty) {
        block.pop();
    }
    block
}

/// Checks a replayed response against the seed's sample response, header by header: the same
/// status line, and every header of the sample present with the same value, except what differs
/// by nature (request IDs, dates, the key's UUID) and what `skip` names.
fn check_sample_response(sample: &[String], got: &Value, etag: &str, skip: &[&str]) {
    assert_eq!(got["status_line"], sample[0].as_str(), "{got}");
    let headers = got["headers"].as_array().expect("headers");
    let find = |name: &str| {
        headers
            .iter()
            .find(|h| h[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
            .and_then(|h| h[1].as_str())
            .unwrap_or_else(|| panic!("the response lacks {name}: {got}"))
            .to_owned()
    };
    for line in &sample[1..] {
        let (name, want) = line.split_once(':').expect("a header line");
        let want = want.trim();
        if skip.iter().any(|s| s.eq_ignore_ascii_case(name)) {
            continue;
        }
        let have = find(name);
        match name.to_ascii_lowercase().as_str() {
            "x-obs-request-id" | "x-obs-id-2" => assert!(!have.is_empty(), "{name}"),
            "date" => assert!(
                have.ends_with(" GMT") && have.len() == want.len(),
                "{name}: {have}"
            ),
            "etag" => assert_eq!(have, format!("\"{etag}\""), "{name}"),
            "x-obs-server-side-encryption-kms-key-id" => {
                let prefix = &want[..want.find("key/").expect("a full key ID") + 4];
                assert!(
                    key_id_of_tenant(&have, DOMAIN_1) && have.starts_with(prefix),
                    "{name}: {have}"
                );
            }
            _ => assert_eq!(have, want, "{name}"),
        }
    }
}

/// The seed's four sample requests, replayed on the wire byte for byte (virtual-hosted style,
/// re-signed with the test credentials, re-dated), answer the seed's sample responses header by
/// header. Sample 2's six-group key ID stays refused (obs-adapter/RULES.md, rule 2). Sample 3's
/// copy answers with the CopyObjectResult document the SDKs parse, so its Content-Length is
/// not the sample's 0.
#[test]
fn the_seeds_sample_requests_answer_the_seeds_sample_responses() {
    let env = Env::start(&["--host-suffix", "obs.region.example.com"]);
    let doc = seed_document();
    Client::Boto3SigV4.run(&env, T1, &["create-bucket", "examplebucket"]);
    Client::Boto3SigV4.run(&env, T1, &["create-bucket", "bucket"]);
    let src = env.file("srcobject1", &marked("SAMPLE3", 7000));
    let put = Client::Boto3SigV4.run(&env, T1, &["put", "bucket", "srcobject1", &src]);
    let src_etag = put["headers"]["etag"]
        .as_str()
        .expect("etag")
        .trim_matches('"')
        .to_owned();
    let addr = env.endpoint().trim_start_matches("http://").to_owned();
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let replay = |n: u32, key_uuid: Option<&str>| {
        let request = seed_block(&doc, &format!("Sample Request {n}")).join("\n");
        let file = env.file(&format!("sample{n}.http"), request.as_bytes());
        let mut args = vec![host, port, T1.0, T1.1, file.as_str()];
        args.extend(key_uuid);
        let out = run_script(&python(), "obs_seed_replay.py", &args);
        let got: Value = serde_json::from_str(out.trim()).expect("json");
        (got, seed_block(&doc, &format!("Sample Response {n}")))
    };
    let (got, sample) = replay(1, None);
    let sent = got["sent_md5"].as_str().expect("md5").to_owned();
    check_sample_response(&sample, &got, &sent, &[]);
    let default_key = got["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .find(|h| h[0] == "x-obs-server-side-encryption-kms-key-id")
        .and_then(|h| h[1].as_str())
        .expect("key id")
        .to_owned();
    let uuid = default_key.rsplit('/').next().expect("uuid").to_owned();

    let (got, _) = replay(2, None);
    assert!(
        got["status_line"]
            .as_str()
            .is_some_and(|s| s.starts_with("HTTP/1.1 400")),
        "{got}"
    );
    let body = got["body"].as_str().expect("body");
    assert!(body.contains("<Code>InvalidArgument</Code>"), "{body}");
    assert!(
        body.contains("522d6070-5ad3-4765-43a7-a7d1-ab21f498482d"),
        "{body}"
    );

    let (got, sample) = replay(3, Some(&uuid));
    check_sample_response(&sample, &got, &src_etag, &["Content-Length"]);
    assert!(
        got["body"]
            .as_str()
            .is_some_and(|b| b.contains("<CopyObjectResult")),
        "{got}"
    );

    let (got, sample) = replay(4, None);
    check_sample_response(&sample, &got, "d41d8cd98f00b204e9800998ecf8427e", &[]);
    // Every SSE-KMS object above is under the tenant's default key.
    let list = Client::Boto3SigV4.run(&env, T1, &["list", "examplebucket"]);
    assert_eq!(
        list["keys"],
        serde_json::json!(["destobject", "encryp1"]),
        "{list}"
    );
}

/// Multipart uploads with SSE-KMS: one data key per upload, every part sealed, the manifest
/// completed; the object reads back whole and by ranges that cross parts; its plaintext is not in
/// the data folder; an abort leaves no part behind.
#[test]
fn multipart_uploads_with_sse_kms_read_back_whole_and_by_ranges() {
    let env = Env::start(&[]);
    Client::Boto3SigV4.run(&env, T1, &["create-bucket", "bucket-multipart"]);
    let mut markers = Vec::new();
    let mut bodies = Vec::new();
    for client in ALL {
        let marker = format!("MULTI-{client:?}-{}", uuid::Uuid::new_v4().simple());
        let body = marked(&marker, 250_000);
        let src = env.file(&format!("{client:?}.mp"), &body);
        let name = format!("{client:?}/mp");
        let done = client.run(
            &env,
            T1,
            &[
                "multipart",
                "bucket-multipart",
                &name,
                &src,
                "102400",
                "-",
                "kms",
            ],
        );
        assert_eq!(status(&done), 200, "{client:?} {done}");
        let (alg, key) = client.sse(&done);
        assert_eq!(alg, client.algorithm(), "{client:?} {done}");
        assert!(key_id_of_tenant(&key, DOMAIN_1), "{client:?} {done}");
        if matches!(client, Client::Boto3SigV4 | Client::Boto3SigV2) {
            assert_eq!(done["listed_parts"], serde_json::json!([1, 2, 3]), "{done}");
            assert_eq!(client.sse(&done["initiate"]).1, key, "{done}");
            assert!(
                done["etag"].as_str().is_some_and(|e| e.ends_with("-3\"")),
                "{done}"
            );
        }
        let out = env.out("mp.out");
        let got = client.run(&env, T1, &["get", "bucket-multipart", &name, &out]);
        assert_eq!(status(&got), 200, "{client:?} {got}");
        assert!(std::fs::read(&out).expect("out") == body, "{client:?}");
        let range = match client {
            Client::EsdkDefault | Client::EsdkWorkflow | Client::EsdkV4 => "102390-204809",
            _ => "bytes=102390-204809",
        };
        let got = client.run(&env, T1, &["get", "bucket-multipart", &name, &out, range]);
        assert_eq!(status(&got), 206, "{client:?} {got}");
        assert_eq!(
            std::fs::read(&out).expect("out"),
            body[102_390..204_810],
            "{client:?}"
        );
        markers.push(marker);
        bodies.push(body);
    }
    // boto3's managed copy of a 12 MiB object: a multipart upload of UploadPartCopy ranges, from
    // a plaintext source into SSE-KMS parts.
    let big = marked("MANAGED-COPY", 12 * 1024 * 1024 + 17);
    let src = env.file("big.src", &big);
    let put = Client::Boto3SigV4.run(&env, T1, &["put", "bucket-multipart", "big", &src]);
    assert_eq!(status(&put), 200, "{put}");
    let cp = Client::Boto3SigV4.run(
        &env,
        T1,
        &[
            "managed-copy",
            "bucket-multipart",
            "big-copy",
            "bucket-multipart",
            "big",
        ],
    );
    assert_eq!(status(&cp), 200, "{cp}");
    assert_eq!(Client::Boto3SigV4.sse(&cp).0, "aws:kms", "{cp}");
    assert!(
        cp["headers"]["etag"]
            .as_str()
            .is_some_and(|e| e.ends_with("-3\"")),
        "three part copies: {cp}"
    );
    let out = env.out("big.out");
    let got = Client::Boto3SigV4.run(&env, T1, &["get", "bucket-multipart", "big-copy", &out]);
    assert_eq!(status(&got), 200, "{got}");
    assert!(
        std::fs::read(&out).expect("out") == big,
        "the managed copy reads back whole"
    );
    // A multipart SSE-KMS object copies out whole (into a single-object SSE-KMS target).
    let cp = Client::Boto3SigV4.run(
        &env,
        T1,
        &[
            "copy",
            "bucket-multipart",
            "copied",
            "bucket-multipart",
            "Boto3SigV4/mp",
            "-",
            "kms",
        ],
    );
    assert_eq!(status(&cp), 200, "{cp}");
    let out = env.out("copied.out");
    let got = Client::Boto3SigV4.run(&env, T1, &["get", "bucket-multipart", "copied", &out]);
    assert_eq!(status(&got), 200, "{got}");
    assert!(
        std::fs::read(&out).expect("out") == bodies[0],
        "the copy reads back whole"
    );
    let aborted =
        Client::Boto3SigV2.run(&env, T1, &["abort-multipart", "bucket-multipart", "gone"]);
    assert_eq!(status(&aborted), 204, "{aborted}");
    assert_eq!(
        std::fs::read_dir(env.data().join("parts"))
            .expect("parts")
            .count(),
        0
    );
    for marker in markers {
        assert_eq!(
            files_containing(&env.data(), marker.as_bytes()),
            Vec::<PathBuf>::new()
        );
    }
}

/// Without --credentials the gateway creates `<data-dir>/credentials.toml` (0600) with one random
/// pair for a default tenant, prints the access key and the file's path, and listens on
/// loopback only.
#[test]
fn without_credentials_a_private_default_key_is_created_and_only_loopback_is_served() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("kms")).expect("kms dir");
    let daemon = Daemon::spawn(&dir.path().join("kms"), &[]);
    let data = dir.path().join("gw");
    let (gw, lines) = Gateway::spawn_with(Command::new(gateway_bin()), &data, &daemon.endpoint);
    let file = data.join("credentials.toml");
    let printed = lines.join("\n");
    assert!(printed.contains(&file.display().to_string()), "{printed}");
    let text = std::fs::read_to_string(&file).expect("the created file");
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} = \"")))
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or_else(|| panic!("{name} in {text}"))
            .to_owned()
    };
    let (ak, sk) = (field("access_key"), field("secret_key"));
    assert!(printed.contains(&ak), "{printed}");
    assert!(!printed.contains(&sk), "the secret key is never printed");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let env_like = |args: &[&str]| {
        let mut all = vec![gw.endpoint.as_str(), ak.as_str(), sk.as_str(), "default"];
        all.extend_from_slice(args);
        let out = run_script(&python(), "obs_boto3.py", &all);
        serde_json::from_str::<Value>(out.trim()).expect("json")
    };
    assert_eq!(
        status(&env_like(&["create-bucket", "bucket-default-tenant"])),
        200
    );
    drop(gw);
    // Another address than loopback needs a credentials file.
    let out = Command::new(gateway_bin())
        .args(["--listen", "0.0.0.0:0", "--data-dir"])
        .arg(&data)
        .args(["--kms-endpoint", &daemon.endpoint])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("loopback"),
        "{out:?}"
    );
}

/// `aws-chunked` bodies (what AWS SDKs send over TLS by default, signed here by the test's own
/// V4 implementation over raw HTTP): the signed forms, with and without a signed trailer, and the
/// unsigned-trailer form store SSE-KMS objects that read back; a changed byte is refused (by its
/// chunk signature, or by the CRC-32 trailer when nothing is signed) and stores nothing.
#[test]
fn aws_chunked_bodies_are_decoded_and_every_signature_and_checksum_checked() {
    let env = Env::start(&[]);
    Client::Boto3SigV4.run(&env, T1, &["create-bucket", "bucket-chunked"]);
    let body = marked("CHUNKED", 200_000);
    let src = env.file("chunked.src", &body);
    let raw = |args: &[&str]| {
        let mut all = vec![env.endpoint(), T1.0, T1.1];
        all.extend_from_slice(args);
        let out = run_script(&python(), "obs_raw_chunked.py", &all);
        serde_json::from_str::<Value>(out.trim()).expect("json")
    };
    for (mode, refusal) in [
        ("signed", "SignatureDoesNotMatch"),
        ("signed-trailer", "SignatureDoesNotMatch"),
        ("unsigned-trailer", "BadDigest"),
    ] {
        let put = raw(&[mode, "bucket-chunked", mode, &src]);
        assert_eq!(status(&put), 200, "{mode} {put}");
        assert_eq!(Client::Boto3SigV4.sse(&put).0, "aws:kms", "{mode} {put}");
        let out = env.out("chunked.out");
        let got = Client::Boto3SigV4.run(&env, T1, &["get", "bucket-chunked", mode, &out]);
        assert_eq!(status(&got), 200, "{got}");
        assert!(std::fs::read(&out).expect("out") == body, "{mode}");
        let bad = raw(&[mode, "bucket-chunked", "tampered", &src, "tamper"]);
        assert_eq!(error(&bad), refusal, "{mode} {bad}");
    }
    let list = Client::Boto3SigV4.run(&env, T1, &["list", "bucket-chunked"]);
    assert_eq!(
        list["keys"],
        serde_json::json!(["signed", "signed-trailer", "unsigned-trailer"]),
        "{list}"
    );
}

/// POST form uploads with the SSE fields as form fields: botocore's presigned POST (V2 by
/// default and with `signature_version='s3'`, V4 with 's3v4') and the OBS SDK's
/// createPostSignature in both modes store SSE-KMS objects; a field the policy does not name is
/// refused and stores nothing.
#[test]
fn post_form_uploads_carry_sse_kms_fields() {
    let env = Env::start(&[]);
    Client::Boto3SigV4.run(&env, T1, &["create-bucket", "bucket-post"]);
    let body = marked("POSTED", 30_000);
    let src = env.file("post.src", &body);
    for client in [
        Client::Boto3SigV4,
        Client::Boto3SigV2,
        Client::Boto3S3v4,
        Client::EsdkDefault,
        Client::EsdkWorkflow,
        Client::EsdkV4,
    ] {
        let name = format!("{client:?}");
        let post = client.run(&env, T1, &["post-form", "bucket-post", &name, &src]);
        assert_eq!(status(&post), 204, "{client:?} {post}");
        let (alg, key) = raw_sse(&post);
        assert!(alg == "kms" || alg == "aws:kms", "{client:?} {post}");
        assert!(key_id_of_tenant(&key, DOMAIN_1), "{client:?} {post}");
        let out = env.out("post.out");
        let got = Client::Boto3SigV4.run(&env, T1, &["get", "bucket-post", &name, &out]);
        assert_eq!(Client::Boto3SigV4.sse(&got).1, key, "{got}");
        assert!(std::fs::read(&out).expect("out") == body, "{client:?}");
        if matches!(client, Client::Boto3SigV2 | Client::Boto3S3v4) {
            let post = client.run(
                &env,
                T1,
                &["post-form-uncovered", "bucket-post", "uncovered", &src],
            );
            assert_eq!(
                (status(&post), error(&post)),
                (403, "AccessDenied"),
                "{client:?} {post}"
            );
        }
    }
    // A form's `acl` is an ACL like any other: only the owner's alone is taken.
    let public = Client::Boto3SigV4.run(
        &env,
        T1,
        &["post-form-public", "bucket-post", "public", &src],
    );
    assert_eq!(
        (status(&public), error(&public)),
        (400, "AccessControlListNotSupported"),
        "{public}"
    );
    let list = Client::Boto3SigV4.run(&env, T1, &["list", "bucket-post"]);
    assert_eq!(list["keys"].as_array().expect("keys").len(), 6, "{list}");
    assert!(
        !files_containing(&env.data(), b"POSTED")
            .iter()
            .any(|_| true)
    );
}

/// A write becomes visible only complete: a connection dropped mid-body leaves no object and no
/// file; concurrent writers of one key leave exactly one of their objects, whole.
#[test]
fn dropped_and_concurrent_writes_leave_no_partial_or_mixed_object() {
    let env = Env::start(&[]);
    Client::Boto3SigV4.run(&env, T1, &["create-bucket", "bucket-writes"]);
    let dropped = Client::Boto3SigV2.run(&env, T1, &["dropped-put", "bucket-writes", "dropped"]);
    assert_eq!(dropped["sent"], 100_000, "{dropped}");
    // The gateway notices the hang-up and removes the temporary file.
    let tmp = env.data().join("tmp");
    let start = std::time::Instant::now();
    while std::fs::read_dir(&tmp).expect("tmp").count() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "a temporary file stayed behind"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(object_files(&env).is_empty());
    let race = Client::Boto3SigV4.run(
        &env,
        T1,
        &["concurrent-puts", "bucket-writes", "raced", "8", "300000"],
    );
    assert_eq!(race["statuses"], serde_json::json!(vec![200; 8]), "{race}");
    assert!(
        race["winner"].as_i64().is_some_and(|w| w >= 0),
        "a mixed or missing object: {race}"
    );
    assert_eq!(
        object_files(&env).len(),
        1,
        "the replaced objects' files are gone"
    );
    let list = Client::Boto3SigV4.run(&env, T1, &["list", "bucket-writes"]);
    assert_eq!(list["keys"], serde_json::json!(["raced"]), "{list}");
}

/// The data folder holds no data key: the one SSE-KMS object's data key, unwrapped by the
/// daemon from the object's header (as only the tenant can), occurs nowhere in the folder.
#[test]
fn the_data_folder_holds_no_data_key() {
    let env = Env::start(&[]);
    Client::Boto3SigV4.run(&env, T1, &["create-bucket", "bucket-keys"]);
    let src = env.file("k.src", &marked("KEYS", 10_000));
    let put = Client::Boto3SigV4.run(&env, T1, &["put", "bucket-keys", "k", &src, "-", "kms"]);
    assert_eq!(status(&put), 200, "{put}");
    let files = object_files(&env);
    assert_eq!(files.len(), 1);
    let mut f = std::fs::File::open(&files[0]).expect("object file");
    let header = envelope::Header::read_from(&mut f).expect("an envelope object");
    assert_eq!(header.key_id(), Client::Boto3SigV4.sse(&put).1);
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let blob = b64.encode(&header.wrapped_key().bytes);
    let out = env.kmsctl(
        DOMAIN_1,
        &[
            "decrypt",
            &blob,
            "--context",
            "obs:bucket=bucket-keys",
            "--context",
            "obs:object=k",
        ],
    );
    let data_key = b64
        .decode(out["plaintext_base64"].as_str().expect("plaintext"))
        .expect("base64");
    assert_eq!(data_key.len(), 32);
    assert_eq!(
        files_containing(&env.data(), &data_key),
        Vec::<PathBuf>::new()
    );
    assert_eq!(
        files_containing(&env.data(), b"KEYS plaintext"),
        Vec::<PathBuf>::new()
    );
}

/// The rest of the S3/OBS surface the SDKs use, with boto3 in both signature versions: bucket
/// listing and deletion (only when empty), ListObjects v1 and v2 (prefix, delimiter, marker,
/// continuation, max-keys), user metadata, If-Match / If-None-Match, batch delete.
#[test]
fn buckets_listings_metadata_conditions_and_batch_delete() {
    let env = Env::start(&[]);
    for client in [Client::Boto3SigV4, Client::Boto3SigV2] {
        let bucket = format!(
            "surface-{}",
            if client == Client::Boto3SigV4 {
                "v4"
            } else {
                "v2"
            }
        );
        let seen = client.run(&env, T1, &["api-surface", &bucket]);
        let want = serde_json::json!({
            "v1_prefixes": ["a/", "b/"],
            "v1_keys": ["c"],
            "v1_after_marker": ["b/1", "c"],
            "v2_pages": 2,
            "v2_keys": ["a/1", "a/2", "b/1", "c"],
            "v2_prefix": ["a/1", "a/2"],
            "metadata": {"color": "blue"},
            "if_none_match": "304",
            "if_match_wrong": "PreconditionFailed",
            "if_match_right": "ok",
            "missing_key": "NoSuchKey",
            "listed_buckets": [bucket],
            "delete_full_bucket": "BucketNotEmpty",
            "batch_deleted": ["a/1", "a/2", "b/1", "c"],
            "left": [],
            "delete_empty_bucket": "ok",
            "head_deleted_bucket": "404",
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// S3 and OBS name many operations by a query parameter on the plain object or bucket path
/// (`PUT ?tagging`, `DELETE ?cors`, `PUT ?metadata`). Each one the gateway does not serve is
/// refused with 501 `NotImplemented` and changes nothing: routed as the plain call, it would
/// replace the object with the request's document or delete the bucket. A version other than
/// the current one (`versionId`, also in a copy source and a batch delete) is 400
/// `InvalidArgument`, never the current object; `versionId=null` names it, as in S3 for a
/// bucket without versioning. GET's `response-*` overrides set the answer's headers. A batch
/// delete deletes exactly the keys it names, spaces included.
#[test]
fn sub_resources_the_gateway_does_not_serve_are_refused_and_change_nothing() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::Boto3SigV4, "subres-v4"),
        (Client::Boto3SigV2, "subres-v2"),
    ] {
        let seen = client.run(&env, T1, &["sub-resources", bucket]);
        let want = serde_json::json!({
            "put_object_tagging": "ok",
            "delete_object_tagging": "ok",
            "put_object_acl": "ok",
            "get_object_acl": "ok",
            "delete_bucket_website": "NotImplemented",
            "delete_bucket_lifecycle": "ok",
            "put_bucket_versioning_mfa": "NotImplemented",
            "get_other_version": "InvalidArgument",
            "delete_other_version": "InvalidArgument",
            "copy_other_version": "InvalidArgument",
            "get_null_version": "ok",
            "overrides": ["text/x-test", "attachment; filename=\"k.bin\"", "no-store", "precious k"],
            "batch_deleted": [" k "],
            "batch_refused": [["k2", "InvalidArgument"]],
            "left": {"k": "precious k", "k2": "precious k2"},
            "bucket": "ok",
        });
        assert_eq!(seen, want, "{client:?}");
    }
    let src = env.file("esdk-src", b"precious");
    Client::EsdkDefault.run(&env, T1, &["create-bucket", "subres-esdk"]);
    for client in [Client::EsdkDefault, Client::EsdkWorkflow, Client::EsdkV4] {
        let put = client.run(&env, T1, &["put", "subres-esdk", "k", &src, "-", "kms"]);
        assert_eq!(status(&put), 200, "{client:?} {put}");
        let seen = client.run(&env, T1, &["sub-resources", "subres-esdk", "k"]);
        let want = serde_json::json!({
            "setObjectAcl": "ok",
            "setBucketTagging": "ok",
            "getBucketTagging": [["a", "b"]],
            "deleteBucketTagging": "ok",
            "deleteBucketWebsite": "NotImplemented",
            "otherVersion": "InvalidArgument",
            "imageProcess": "NotImplemented",
            "override": ["text/x-obs", "precious"],
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// A configuration document (a batch delete, a bucket policy, ...) is held to what signed it, as
/// an object's body is: a SigV4 body that is not its signed `x-amz-content-sha256`
/// (`XAmzContentSHA256Mismatch`), a SigV2 body that is not its signed `Content-MD5`, a body that is
/// not its `x-amz-checksum-*` (`BadDigest`) is refused and does nothing. Without these checks a
/// body changed on the way deleted other keys or opened the bucket to everyone.
#[test]
fn configuration_documents_changed_after_signing_are_refused() {
    let env = Env::start(&[]);
    let seen = Client::Boto3SigV4.run(&env, T1, &["tampered-bodies", "tampered"]);
    let want = serde_json::json!({
        "v4 delete": "XAmzContentSHA256Mismatch",
        "v2 delete": "BadDigest",
        "v4 policy": "XAmzContentSHA256Mismatch",
        "crc32 delete": "BadDigest",
        "untampered crc32 delete": 200,
        "left": ["b"],
        "policy": "NoSuchBucketPolicy",
    });
    assert_eq!(seen, want);
}

/// Bad input gets an error in S3's shape and changes nothing: every configuration document the
/// gateway reads (15 of them, bucket and object, a batch delete and a completion among them), cut
/// at about 40 places, rotated at as many, and in hostile forms (empty, not UTF-8, 100,000
/// nested elements, an entity expansion, 2 MiB, trailing garbage, doubled), each signed so that
/// it reaches its parser: no answer is a 5xx but 501, every refusal is an `<Error>` document
/// with a `<Code>`, no refusal changes what the configuration's read (or the listing of
/// versions) answers, and the gateway still serves afterwards.
#[test]
fn cut_rotated_and_hostile_documents_are_refused_in_s3s_shape_and_change_nothing() {
    let env = Env::start(&[]);
    let seen = Client::Boto3SigV4.run(&env, T1, &["mutated-documents", "mutated"]);
    let documents = [
        "lifecycle",
        "cors",
        "bucket tagging",
        "versioning",
        "object lock",
        "policy",
        "encryption",
        "public access block",
        "bucket acl",
        "object tagging",
        "retention",
        "legal hold",
        "object acl",
        "batch delete",
        "completion",
    ];
    for name in documents {
        let got = &seen[name];
        assert!(got["sent"].as_u64().unwrap_or(0) >= 80, "{name}: {got}");
        let want = serde_json::json!({
            "sent": got["sent"],
            "server_errors": [],
            "bad_error_bodies": [],
            "changed_on_refusal": [],
            "refused": true,
        });
        assert_eq!(got, &want, "{name}");
    }
    assert_eq!(seen.as_object().map(|o| o.len()), Some(documents.len() + 1));
    assert_eq!(seen["still_serving"], 1);
}

/// The headers and query parameters the gateway parses itself (28 on a PUT, 8 on a GET and a
/// HEAD, 6 query parameters of a GET, 7 on a copy, 12 of the listings), each given 25 hostile
/// values (empty, 9,000 bytes, negative, huge, not a number, bad percent-encoding, dates that
/// do not exist, malformed ranges, ...), signed: no answer is a 5xx but 501, every refusal but
/// a HEAD's is an S3 error document, no refused PUT or copy changes its target, and each kind
/// both takes some values and refuses others with codes of its own (not only the signature).
#[test]
fn hostile_header_and_parameter_values_are_refused_in_s3s_shape_and_change_nothing() {
    let env = Env::start(&[]);
    let seen = Client::Boto3SigV4.run(&env, T1, &["mutated-headers", "headers"]);
    for (kind, sent) in [
        ("put", 700),
        ("get", 350),
        ("head", 200),
        ("copy", 175),
        ("list", 300),
    ] {
        let got = &seen[kind];
        assert_eq!(got["sent"], sent, "{kind}: {got}");
        for empty in ["server_errors", "bad_error_bodies", "changed_on_refusal"] {
            assert_eq!(got[empty], serde_json::json!([]), "{kind} {empty}: {got}");
        }
        assert!(
            got["answered"].as_u64().is_some_and(|n| n > 0) && got["refused"] == true,
            "{kind}: {got}"
        );
        if kind != "head" {
            let codes = got["codes"].as_array().expect("codes");
            assert!(
                codes.iter().any(|c| c != "SignatureDoesNotMatch"),
                "{kind}: the parsers were reached: {got}"
            );
        }
    }
    assert_eq!(seen["still_serving"], true);
}

/// S3's object tags: set by a PUT, a copy (the source's, or the request's with `REPLACE`), a
/// multipart upload and a form; read (`x-amz-tagging-count` on GET and HEAD), replaced and removed
/// by the bucket's owner without touching the object; S3's limits refused before anything is
/// stored.
#[test]
fn object_tags_are_kept_through_every_write_and_changed_without_touching_the_object() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::Boto3SigV4, "tags-v4"),
        (Client::Boto3SigV2, "tags-v2"),
    ] {
        let seen = client.run(&env, T1, &["tagging", bucket, T2.0, T2.1]);
        let want = serde_json::json!({
            "put": [["team", "storage"], ["cost center", "r+d"]],
            "tag_count": [2, 2],
            "replaced": [["team", "db"], ["成本", "研发"]],
            "object_unchanged": [true, true, "tagged body"],
            "copies": {
                "copied": [["team", "db"], ["成本", "研发"]],
                "replaced": [["a", "b"]],
                "untagged": [],
            },
            "multipart": [["via", "multipart"]],
            "form": [204, [["via", "form"]]],
            "deleted": [[], null],
            "refused": {
                "eleven tags": "BadRequest",
                "a '*' in a key": "InvalidTag",
                "a key given twice": "InvalidTag",
                "a value of 257 characters": "InvalidTag",
                "an absent object": "NoSuchKey",
                "a multipart upload": "InvalidTag",
                "another tenant reads": "AccessDenied",
                "another tenant writes": "AccessDenied",
            },
            "after_refusals": [[], ["copied", "form", "k", "mp", "replaced", "untagged"], 0],
            "bucket": {
                "none yet": "NoSuchTagSet",
                "set": "ok",
                "a key of 37 characters": "InvalidTag",
                "a '/' in a key": "InvalidTag",
                "another tenant reads": "AccessDenied",
                "another tenant deletes": "AccessDenied",
            },
            "bucket_tags": [["cost", "storage"], ["env", "prod"]],
            "bucket_after_delete": "NoSuchTagSet",
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// ACLs as S3 keeps them where the bucket owner owns every object (its default since 2023):
/// GetBucketAcl and GetObjectAcl answer the owner's full control; an ACL that grants the owner
/// alone is taken (canned `private`, `bucket-owner-full-control`, a document or a grant header
/// saying so); any other is refused `AccessControlListNotSupported` (on a new bucket
/// `InvalidBucketAclWithObjectOwnership`) and nothing is stored; another tenant reads and sets
/// none. The OBS SDK sees the same in its own shapes.
#[test]
fn acls_grant_the_bucket_owner_alone_and_any_other_is_refused() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::Boto3SigV4, "acl-v4"),
        (Client::Boto3SigV2, "acl-v2"),
    ] {
        let seen = client.run(&env, T1, &["acls", bucket, T2.0, T2.1]);
        let want = serde_json::json!({
            "create_public": "InvalidBucketAclWithObjectOwnership",
            "after_refused_create": "404",
            "owner": "783fc6652cf246c096ea836694f71855",
            "bucket_grants": [["CanonicalUser", true, "FULL_CONTROL"]],
            "put_private": "ok",
            "put_public": "AccessControlListNotSupported",
            "put_grant_read": "AccessControlListNotSupported",
            "put_full_control_to_owner": "ok",
            "put_full_control_to_another": "AccessControlListNotSupported",
            "multipart_full_control_to_owner": "ok",
            "copy_public": "AccessControlListNotSupported",
            "multipart_public": "AccessControlListNotSupported",
            "keys": ["k", "owned"],
            "uploads": 0,
            "object_grants": [["CanonicalUser", true, "FULL_CONTROL"]],
            "object_owner": true,
            "missing_object_acl": "NoSuchKey",
            "set": {
                "bucket private": "ok",
                "bucket public-read": "AccessControlListNotSupported",
                "bucket owner's document": "ok",
                "bucket everyone's document": "AccessControlListNotSupported",
                "bucket full control to the owner": "ok",
                "object owner-full-control": "ok",
                "object authenticated-read": "AccessControlListNotSupported",
                "absent object": "NoSuchKey",
            },
            "other_tenant": {
                "get bucket acl": "AccessDenied",
                "get object acl": "AccessDenied",
                "put bucket acl": "AccessDenied",
            },
            "unchanged": "mine",
        });
        assert_eq!(seen, want, "{client:?}");
    }
    let src = env.file("acl-src", b"mine");
    for (client, bucket) in [
        (Client::EsdkDefault, "acl-esdk-default"),
        (Client::EsdkWorkflow, "acl-esdk-obs"),
        (Client::EsdkV4, "acl-esdk-v4"),
    ] {
        let seen = client.run(&env, T1, &["acls", bucket, &src]);
        let want = serde_json::json!({
            "owner": "783fc6652cf246c096ea836694f71855",
            "bucket_grants": [["783fc6652cf246c096ea836694f71855", "FULL_CONTROL"]],
            "object_grants": [["783fc6652cf246c096ea836694f71855", "FULL_CONTROL"]],
            "set_private": "ok",
            "set_public": "AccessControlListNotSupported",
            "object_public": "AccessControlListNotSupported",
            "put_public": "AccessControlListNotSupported",
            "keys": ["k"],
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// OBS's AppendObject, through the OBS SDK in each of its modes: an object made by appends grows
/// only at its length (`409 PositionNotEqualToLength` elsewhere, `ObjectNotAppendable` for a
/// normal object); the first append sets its encryption and a later one inherits it (repeating
/// it is allowed, asking for another key or for SSE-KMS of a plaintext object is refused); every
/// append answers its own MD5 and the next position; HEAD and listings say it is appendable; a
/// copy of it and a PUT over it are normal objects. Of appends racing at one position exactly
/// one lands. An SSE-KMS appendable object is sealed: its plaintext is in no file, and it reads
/// whole after the gateway restarts.
#[test]
fn appends_grow_an_object_at_its_length_and_inherit_its_encryption() {
    let mut env = Env::start(&[]);
    let clients = [
        (Client::EsdkWorkflow, "append-obs"),
        (Client::EsdkDefault, "append-default"),
        (Client::EsdkV4, "append-v4"),
    ];
    let md5 = |s: &str| hex::encode(<md5::Md5 as md5::Digest>::digest(s.as_bytes()));
    let first = "first line\n";
    for (client, bucket) in clients {
        let marker = format!("APPEND-MARKER-{bucket}");
        let second = format!("{marker} second line\n");
        let third = format!("{}\n", "x".repeat(70_000));
        let len = |parts: &[&str]| parts.iter().map(|p| p.len()).sum::<usize>();
        let whole = len(&[first, &second, &third]);
        let seen = client.run(&env, T1, &["appends", bucket, &marker]);
        let (alg, key) = (seen["first"]["sse"].clone(), seen["first"]["key"].clone());
        assert_eq!(alg, client.algorithm(), "{client:?}: {seen}");
        assert!(
            key.as_str().is_some_and(|k| k.ends_with(&format!(
                ":783fc6652cf246c096ea836694f71855:key/{}",
                k.rsplit('/').next().unwrap_or_default()
            ))),
            "{client:?}: the full key ID: {seen}"
        );
        let appended = |next: usize, part: &str| serde_json::json!({"next": next, "sse": alg, "key": key, "etag": md5(part)});
        let want = serde_json::json!({
            "first": appended(first.len(), first),
            "second": appended(len(&[first, &second]), &second),
            "third": appended(whole, &third),
            "meta": {"appendable": true, "next": whole, "length": whole, "sse": alg,
                     "etag": seen["meta"]["etag"]},
            "whole": true,
            "across_appends": " line\nAPPEN",
            "refused": {
                "an old position": ["PositionNotEqualToLength", 409],
                "a position past the end": ["PositionNotEqualToLength", 409],
                "a new object at a position": ["PositionNotEqualToLength", 409],
                "another key": ["InvalidArgument", 400],
            },
            "after_refusals": [whole, true],
            "race": [1, ["['PositionNotEqualToLength', 409]"], true],
            "plain": [
                {"next": 1, "sse": null, "key": null, "etag": md5("a")},
                {"next": 3, "sse": null, "key": null, "etag": md5("bc")},
            ],
            "plain_read": ["abc", true],
            "plain_asked_kms": ["InvalidArgument", 400],
            "normal": ["ObjectNotAppendable", 409],
            "listed": [["log", true], ["normal", false], ["plain", true]],
            "copy": "ok",
            "copy_read": [true, false],
            "put_over": "ok",
            "put_over_read": ["replaced", false],
        });
        assert_eq!(seen, want, "{client:?}");
        assert!(
            seen["meta"]["etag"]
                .as_str()
                .is_some_and(|e| e.trim_matches('"').ends_with("-3")),
            "the ETag counts the appends: {seen}"
        );
        assert!(
            files_containing(&env.data(), marker.as_bytes()).is_empty(),
            "an SSE-KMS append is sealed on disk"
        );
    }
    env.restart_gateway();
    for (client, bucket) in clients {
        let out = env.out(&format!("{bucket}.log"));
        let got = client.run(&env, T1, &["get", bucket, "log", &out]);
        assert_eq!(status(&got), 200, "{client:?}: {got}");
        let read = std::fs::read_to_string(&out).expect("read back");
        let second = format!("APPEND-MARKER-{bucket} second line\n");
        let third = format!("{}\n", "x".repeat(70_000));
        let before_race = [first, &second, &third].concat();
        // What was there, then the one racing append that landed (1000 of one digit).
        let raced = read.strip_prefix(&before_race).unwrap_or_default();
        assert!(
            raced.len() == 1000 && raced.chars().all(|c| raced.starts_with(c)),
            "{client:?}: {} bytes after the race",
            read.len()
        );
        // Another tenant can neither read nor extend it.
        let other = client.run(&env, T2, &["get", bucket, "log", &out]);
        assert_eq!(error(&other), "AccessDenied", "{client:?}: {other}");
    }
}

/// OBS's SetObjectMetadata through the OBS SDK in each of its modes: `REPLACE_NEW` (the SDK's
/// default) changes the headers given, keeps the others and replaces the user metadata;
/// `REPLACE` (`removeUnset`) keeps only what the request gives. The body, ETag and encryption
/// are untouched (an SSE-KMS object still reads), an appendable object stays appendable. A
/// website redirect is kept and read back (it was refused as not kept), a malformed one refused;
/// an absent object is refused, and a request without the directive too (the handler's unit
/// table: the SDK always sends one).
#[test]
fn object_metadata_is_changed_in_place_as_the_directive_says() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::EsdkWorkflow, "meta-obs"),
        (Client::EsdkDefault, "meta-default"),
        (Client::EsdkV4, "meta-v4"),
    ] {
        let seen = client.run(&env, T1, &["object-metadata", bucket]);
        let before = &seen["before"];
        assert_eq!(
            before["plain"]["meta"],
            serde_json::json!([["a", "1"], ["b", "2"]]),
            "{client:?}: {seen}"
        );
        assert_eq!(before["sealed"]["sse"], client.algorithm(), "{client:?}");
        assert_eq!(before["log"]["appendable"], true, "{client:?}");
        let mut want = before.clone();
        for key in ["plain", "sealed", "log"] {
            want[key]["language"] = "de".into();
            want[key]["meta"] = serde_json::json!([["c", "3"]]);
        }
        assert_eq!(
            seen["replace_new"],
            serde_json::json!({"plain": "ok", "sealed": "ok", "log": "ok"}),
            "{client:?}"
        );
        assert_eq!(seen["after_replace_new"], want, "{client:?}");
        assert_eq!(seen["replace"], "ok", "{client:?}");
        let mut replaced = before["plain"].clone();
        replaced["type"] = "binary/octet-stream".into();
        replaced["cache"] = "no-cache".into();
        replaced["meta"] = serde_json::json!([]);
        assert_eq!(seen["after_replace"], replaced, "{client:?}");
        // The SDK sends `REPLACE_NEW` also without a header object.
        assert_eq!(seen["without_headers"], "ok", "{client:?}");
        assert_eq!(
            seen["absent"],
            serde_json::json!(["NoSuchKey", 404]),
            "{client:?}"
        );
        assert_eq!(seen["redirect"], "ok", "{client:?}");
        assert_eq!(seen["redirect_read"], "/elsewhere", "{client:?}");
        assert_eq!(
            seen["bad_redirect"],
            serde_json::json!(["InvalidRedirectLocation", 400]),
            "{client:?}"
        );
    }
}

/// ListObjectVersions of a bucket that keeps one version per object, as S3 answers for a bucket
/// that never had versioning: each object is its latest version `null`, pages resume after their
/// key marker (a version marker needs a key marker and can only be `null`), and boto3's resource
/// API empties a bucket through it (`bucket.object_versions.delete()`, a batch delete of the
/// `null` versions) as test suites and tools do before deleting it; the OBS SDK's `listVersions`
/// reads the same listing.
#[test]
fn object_versions_list_each_object_once_and_empty_a_bucket() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::Boto3SigV4, "versions-v4"),
        (Client::Boto3SigV2, "versions-v2"),
    ] {
        let seen = client.run(&env, T1, &["versions", bucket]);
        let want = serde_json::json!({
            "whole": [["a/1", "null", true, 3], ["a/2", "null", true, 3], ["b", "null", true, 1],
                      ["c", "null", true, 1]],
            "delete_markers": [],
            "one_per_page": ["a/", "b", "c"],
            "under_a": ["a/1", "a/2"],
            "after_a_2": ["b", "c"],
            "version_marker_alone": "InvalidArgument",
            "other_version_marker": "InvalidArgument",
            "emptied": ["a/1", "a/2", "b", "c"],
            "left": 0,
            "bucket_deleted": "ok",
        });
        assert_eq!(seen, want, "{client:?}");
    }
    let src = env.file("versions-src", b"one version");
    for (client, bucket) in [
        (Client::EsdkWorkflow, "versions-obs"),
        (Client::EsdkDefault, "versions-default"),
        (Client::EsdkV4, "versions-v4-esdk"),
    ] {
        assert_eq!(
            status(&client.run(&env, T1, &["create-bucket", bucket])),
            200
        );
        for key in ["x", "y/z"] {
            let put = client.run(&env, T1, &["put", bucket, key, &src]);
            assert_eq!(status(&put), 200, "{client:?}: {put}");
        }
        let seen = client.run(&env, T1, &["list-versions", bucket]);
        assert_eq!(
            seen,
            serde_json::json!({"versions": [["x", "null", true], ["y/z", "null", true]],
                               "markers": 0, "truncated": false}),
            "{client:?}"
        );
    }
}

/// The bucket configurations the gateway keeps none of read as S3 and OBS answer for a bucket
/// without them (a 404 with the configuration's own code, or the empty or default document;
/// ownership controls are `BucketOwnerEnforced`, which the ACLs are), to the bucket's owner only,
/// through boto3 and the OBS SDK in their own shapes; setting one stays 501 and sets nothing,
/// except the OBS SDK's default storage class, `STANDARD` (every bucket's) being taken.
#[test]
fn bucket_configurations_the_gateway_does_not_keep_read_as_absent() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::Boto3SigV4, "configs-v4"),
        (Client::Boto3SigV2, "configs-v2"),
    ] {
        let seen = client.run(&env, T1, &["bucket-configs", bucket, T2.0, T2.1]);
        let want = serde_json::json!({
            "lifecycle": ["NoSuchLifecycleConfiguration", 404],
            "website": ["NoSuchWebsiteConfiguration", 404],
            "replication": ["ReplicationConfigurationNotFoundError", 404],
            "object_lock": ["ObjectLockConfigurationNotFoundError", 404],
            "public_access_block": ["NoSuchPublicAccessBlockConfiguration", 404],
            "logging": "none",
            "notification": [],
            "request_payment": "BucketOwner",
            "accelerate": "never set",
            "ownership_controls": ["BucketOwnerEnforced"],
            "other_tenant": ["AccessDenied", 403],
            "set_website": "NotImplemented",
            "website_after_set": ["NoSuchWebsiteConfiguration", 404],
        });
        assert_eq!(seen, want, "{client:?}");
    }
    for (client, bucket) in [
        (Client::EsdkWorkflow, "configs-obs"),
        (Client::EsdkDefault, "configs-default"),
        (Client::EsdkV4, "configs-v4-esdk"),
    ] {
        let seen = client.run(&env, T1, &["bucket-configs", bucket]);
        let want = serde_json::json!({
            "lifecycle": ["NoSuchLifecycleConfiguration", 404],
            "website": ["NoSuchWebsiteConfiguration", 404],
            "public_access_block": ["NoSuchPublicAccessBlockConfiguration", 404],
            "logging": null,
            "notification": [[], []],
            "quota": 0,
            "storage_policy": "STANDARD",
            "request_payment": "BucketOwner",
            "set_standard": "ok",
            "set_warm": "NotImplemented",
            // The SDK sends no class for a name it does not know.
            "set_unknown": "MalformedXML",
            "class_after": "STANDARD",
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// The additional checksum an upload carries (botocore sends CRC32 by default) is verified and
/// now kept: a PUT answers it, and a read of the whole object that asks for it
/// (`ChecksumMode="ENABLED"`, which botocore sends on GetObject by default) gets it with
/// `x-amz-checksum-type: FULL_OBJECT`, so botocore checks the plaintext it reads against what was
/// uploaded (an SSE-KMS object too). A range gets none; a copy keeps its source's; a multipart
/// upload begun without a checksum algorithm makes an object with none (S3's would get its
/// default CRC64NVME; the next test covers uploads begun with one).
#[test]
fn an_uploads_checksum_is_kept_and_answered_to_reads_that_ask() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::Boto3SigV4, "checksums-v4"),
        (Client::Boto3SigV2, "checksums-v2"),
    ] {
        let seen = client.run(&env, T1, &["checksums", bucket]);
        let want = serde_json::json!({
            "put_answers_crc32": true,
            "put_answers_sha256": true,
            "head_asked": [true, "FULL_OBJECT"],
            "get_asked": [true, true],
            "range_answers_none": ["checksumme", false],
            "copy_keeps_it": true,
            "multipart_has_none": [],
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// Multipart uploads keep their checksums as S3 does (they kept none; a full-object value given
/// at completion was even taken for the document's and refused). boto3's managed upload, as it
/// is by default, begins the upload with CRC32 and lists the values the parts echoed: the object
/// answers the composite value (`value-3`) and each part its own, which botocore checks as it
/// reads the part. A full-object CRC given to the managed upload is checked at completion
/// (`BadDigest` when wrong, nothing stored) and botocore checks it over the whole object as it
/// reads. By hand (SHA-256, SSE-KMS): parts of another algorithm refused, values echoed and
/// listed, a completion missing a part's value, with another part's, with a wrong object value
/// or another type refused; GetObjectAttributes answers the object's and the parts' values; a
/// copy, written whole, gets the whole object's, and a copy may ask for another algorithm
/// (`x-amz-checksum-algorithm`, was ignored). UploadPartCopy computes the copied part's value.
/// Values are computed in Python with zlib and hashlib.
#[test]
fn multipart_uploads_keep_and_check_their_parts_checksums() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::Boto3SigV4, "mp-checksums-v4"),
        (Client::Boto3SigV2, "mp-checksums-v2"),
    ] {
        let seen = client.run(&env, T1, &["multipart-checksums", bucket]);
        let want = serde_json::json!({
            "default_upload": [true, "COMPOSITE", true],
            "default_part_2": [true, true, "COMPOSITE"],
            "default_whole_read": true,
            "full_object": [true, "FULL_OBJECT", "aws:kms"],
            "full_object_read": [true, true],
            "full_object_wrong": "BadDigest",
            "full_object_wrong_left_nothing": "404",
            "sha_created": ["SHA256", "COMPOSITE"],
            "sha_parts_echoed": [true, true, true],
            "sha_part_of_another_algorithm": "InvalidRequest",
            "sha_listed": ["SHA256", "COMPOSITE", [true, true, true]],
            "sha_in_uploads": [["sha", "SHA256", "COMPOSITE"]],
            "sha_complete_missing_a_part": "InvalidRequest",
            "sha_complete_wrong_part": "InvalidPart",
            "sha_complete_wrong_object": "BadDigest",
            "sha_complete_other_type": "InvalidRequest",
            "sha_completed": [true, "COMPOSITE"],
            "sha_head": [true, "COMPOSITE"],
            "sha_head_not_asked": [],
            "sha_part_3": [true, true],
            "sha_attributes": [true, "COMPOSITE", [true, true, true]],
            "sha_copy": [true, true, "FULL_OBJECT"],
            "copy_asks_sha256": [true, true, false],
            "copy_asks_sha512": "InvalidRequest",
            "copied_part": true,
            "copied_completed": [true, "FULL_OBJECT"],
            "copied_read": true,
            "refused_at_initiation": {
                "sha256_full_object": "InvalidRequest",
                "sha512": "InvalidRequest",
                "crc64nvme_composite": "InvalidRequest",
            },
            "uploads_left": [],
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// S3 Bucket Keys (`BucketKeyEnabled`) were silently dropped: the object was stored with a data
/// key of its own while the caller asked for a bucket-level key, and the bucket's encryption
/// configuration lost the setting. Asking for one is now 501 by every call that can (PUT, copy,
/// CreateMultipartUpload, a form, PutBucketEncryption), nothing is stored, and `false` is taken.
#[test]
fn bucket_keys_are_refused_not_dropped() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::Boto3SigV4, "bucket-keys-v4"),
        (Client::Boto3SigV2, "bucket-keys-v2"),
    ] {
        let seen = client.run(&env, T1, &["bucket-keys", bucket]);
        let want = serde_json::json!({
            "put": "NotImplemented",
            "put_false": "ok",
            "copy": "NotImplemented",
            "multipart": "NotImplemented",
            "encryption": "NotImplemented",
            "encryption_after": "ServerSideEncryptionConfigurationNotFoundError",
            "encryption_false": "ok",
            "form": 501,
            "keys": ["plain"],
            "uploads": 0,
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// Two parameters that were dropped: a bucket made with `ObjectOwnership` ObjectWriter or
/// BucketOwnerPreferred (ACLs enabled, the writer owning its objects) was made BucketOwnerEnforced
/// without a word; it is now 501 and no bucket is made. An abort with
/// `x-amz-if-match-initiated-time` naming another time aborted the upload anyway; it is now 412
/// and the upload stays, and the upload's own time aborts it.
#[test]
fn bucket_ownership_and_conditional_aborts_are_refused_or_held() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::Boto3SigV4, "late-v4"),
        (Client::Boto3SigV2, "late-v2"),
    ] {
        let seen = client.run(&env, T1, &["late-parameters", bucket]);
        let want = serde_json::json!({
            "ObjectWriter": "NotImplemented",
            "ObjectWriter_exists": "404",
            "BucketOwnerPreferred": "NotImplemented",
            "BucketOwnerPreferred_exists": "404",
            "BucketOwnerEnforced": "ok",
            "BucketOwnerEnforced_exists": "ok",
            "ownership_read": "BucketOwnerEnforced",
            "abort_other_time": "PreconditionFailed",
            "left_after_other_time": 1,
            "abort_its_time": "ok",
            "left_after_its_time": 0,
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// A browser form upload naming `success_action_redirect` got 204 (the field was dropped), so the
/// browser stayed on an empty page: it now gets 303 to that URL with the bucket, key and ETag
/// added, as S3 and OBS send it; a value that is no http(s) URL is ignored (201 from
/// `success_action_status`), and a form whose policy does not cover the field is refused.
#[test]
fn a_form_upload_redirects_where_it_asks() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::Boto3SigV4, "form-redirect-v4"),
        (Client::Boto3SigV2, "form-redirect-v2"),
    ] {
        let seen = client.run(&env, T1, &["form-redirect", bucket]);
        let want = serde_json::json!({
            "redirect": [303, true],
            "not_a_url": [201, false],
            "uncovered": 403,
            "keys": ["not a url", "to redirect"],
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// The OBS SDK's own checksum (`isAttachCrc64`: CRC-64/XZ, OBS's CRC64-ECMA, in decimal) was
/// ignored in its OBS mode (never checked nor kept, so its downloads went unchecked) and
/// refused as an unknown algorithm in its S3 modes (`x-amz-checksum-crc64ecma`). Now, in all
/// three: a PUT's value checked (a wrong one 400 BadDigest, nothing stored), kept and answered
/// (PUT, HEAD, GET, which the SDK checks as it reads), each part's echoed, and the object's stated
/// at completion checked against its parts' values combined (a wrong one BadDigest); a copy keeps
/// it. Expected values are the SDK's own CRC.
#[test]
fn the_obs_sdks_crc64_is_checked_kept_and_combined() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::EsdkDefault, "crc64-default"),
        (Client::EsdkWorkflow, "crc64-workflow"),
        (Client::EsdkV4, "crc64-v4"),
    ] {
        let seen = client.run(&env, T1, &["crc64", bucket]);
        let want = serde_json::json!({
            "put": [200, true],
            "put_wrong": [400, "BadDigest"],
            "head": true,
            "get": [200, true],
            "parts_echoed": [true, true],
            "part_wrong": [400, "BadDigest"],
            "complete_wrong": [400, "BadDigest"],
            "complete": [200, true],
            "mp_head": true,
            "mp_get": [200, true],
            "copy": [200, true],
            "copy_head": true,
            "left": ["copy", "mp", "one"],
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// The OBS SDK's bucket options (`CreateBucketHeader`) were dropped: a bucket asked for across
/// three availability zones, with fusion redundancy, as a parallel file system or in an
/// enterprise project was made a plain bucket without a word. Each is now 501 and no bucket is
/// made; what every bucket is (`CLASSIC`, project `0`) is taken. The SDK's three modes (in its
/// default mode the two options it always names `x-obs-` arrive unsigned and are 403).
#[test]
fn obs_bucket_options_the_gateway_does_not_keep_are_refused() {
    let env = Env::start(&[]);
    for (client, prefix) in [
        (Client::EsdkDefault, "opt-default"),
        (Client::EsdkWorkflow, "opt-workflow"),
        (Client::EsdkV4, "opt-v4"),
    ] {
        let seen = client.run(&env, T1, &["bucket-options", prefix]);
        let refused = serde_json::json!([501, "NotImplemented", 404]);
        // The SDK always names these two `x-obs-`, which its default mode (AWS V2) does not
        // sign: refused before they are read, as every unsigned prefixed header is.
        let obs_named = if client == Client::EsdkDefault {
            serde_json::json!([403, "AccessDenied", 404])
        } else {
            refused.clone()
        };
        let want = serde_json::json!({
            "three-azs": obs_named,
            "fusion": refused,
            "fusion-upgrade": refused,
            "pfs": obs_named,
            "enterprise-project": refused,
            "classic": [200, null, 200],
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// CRC-64/NVME (S3's default checksum since 2025) was refused as an unknown algorithm, so an
/// S3 client set to use it failed on every upload. botocore with awscrt (its optional
/// dependency for CRC-64/NVME) now gets it kept and answered like the other checksums: a PUT's
/// value, a multipart upload's parts combined into the whole object's value (full object, the
/// only type S3 gives it; composite refused above), a part's own value by `partNumber`, a copy
/// asking for it. Expected values are awscrt's.
#[test]
fn crc64nvme_values_are_checked_kept_and_combined() {
    let env = Env::start(&[]);
    for (mode, bucket) in [("default", "crc64-v4"), ("s3", "crc64-v2")] {
        let (ak, sk) = T1;
        let out = run_script(
            &crt_python(),
            "obs_boto3.py",
            &[env.endpoint(), ak, sk, mode, "crc64nvme", bucket],
        );
        let seen: Value = serde_json::from_str(out.trim()).expect("JSON");
        let want = serde_json::json!({
            "botocore_has_crt": true,
            "put_answers_it": true,
            "get_checked": [true, true, "FULL_OBJECT", 200],
            "multipart_whole": [true, "FULL_OBJECT", true],
            "multipart_read": true,
            "multipart_part_2": [true, true],
            "copy_asks_it": true,
        });
        assert_eq!(seen, want, "{mode}");
    }
}

/// A bucket's public access block (was 501 to set): its owner sets, reads and deletes it (boto3's
/// `put_public_access_block`, the OBS SDK's `putBucketPublicAccessBlock`), another tenant can do
/// neither. `BlockPublicPolicy` refuses a public bucket policy (403); `RestrictPublicBuckets`
/// makes a public policy open nothing to another tenant (by any statement) while the owner reads
/// as before, and a policy naming the tenant instead still grants it. The policy's public status
/// is answered (`get_bucket_policy_status`, OBS's two status calls).
#[test]
fn a_public_access_block_refuses_public_policies_and_restricts_public_buckets() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::Boto3SigV4, "public-v4"),
        (Client::Boto3SigV2, "public-v2"),
    ] {
        let seen = client.run(&env, T1, &["public-access", bucket, T2.0, T2.1, DOMAIN_2]);
        let every = serde_json::json!({
            "BlockPublicAcls": true, "IgnorePublicAcls": true,
            "BlockPublicPolicy": true, "RestrictPublicBuckets": true,
        });
        let want = serde_json::json!({
            "before": "NoSuchPublicAccessBlockConfiguration",
            "status_without_policy": "NoSuchBucketPolicy",
            "status_public": true,
            "other_reads_by_public_policy": "shared",
            "set": "ok",
            "read_back": every,
            "other_reads_restricted": "AccessDenied",
            "owner_reads": "shared",
            "public_policy_refused": "AccessDenied",
            "named_policy": "ok",
            "status_named": false,
            "other_reads_by_named_policy": "shared",
            "other_tenant_sets": "AccessDenied",
            "other_tenant_deletes": "AccessDenied",
            "only_restrict": "ok",
            "public_policy_taken": "ok",
            "other_reads_restricted_again": "AccessDenied",
            "deleted": "ok",
            "after_delete": "NoSuchPublicAccessBlockConfiguration",
            "other_reads_after_delete": "shared",
        });
        assert_eq!(seen, want, "{client:?}");
    }
    for (client, bucket) in [
        (Client::EsdkWorkflow, "public-obs"),
        (Client::EsdkDefault, "public-default"),
        (Client::EsdkV4, "public-v4-esdk"),
    ] {
        let seen = client.run(&env, T1, &["public-access", bucket]);
        let want = serde_json::json!({
            "before": "NoSuchPublicAccessBlockConfiguration",
            "policy_status": "NoSuchBucketPolicy",
            "bucket_status": false,
            "set": "ok",
            "read_back": [true, false, true, true],
            "public_policy_refused": "AccessDenied",
            "deleted": "ok",
            "public_policy_taken": "ok",
            "policy_status_public": true,
            "bucket_status_public": true,
            "after_delete": "NoSuchPublicAccessBlockConfiguration",
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// OBS's bucket quota was 501 to set (and read as 0): `setBucketQuota` now keeps it, and a write
/// that would take the bucket's objects past it (a PUT, an append, a copy, a multipart
/// completion; a replaced object counts its new size only; SSE-KMS objects their plaintext size)
/// is 403 `InsufficientStorageSpace` and stores nothing, in each of the SDK's modes. 0 removes
/// the quota; another tenant cannot set it.
#[test]
fn a_bucket_quota_refuses_writes_past_it_and_stores_nothing() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::EsdkWorkflow, "quota-obs"),
        (Client::EsdkDefault, "quota-default"),
        (Client::EsdkV4, "quota-v4"),
    ] {
        let seen = client.run(&env, T1, &["quota", bucket]);
        let full = "InsufficientStorageSpace";
        let want = serde_json::json!({
            "set": "ok",
            "read": 10240,
            "put_6000": "ok",
            "put_another_6000": full,
            "replace_with_8000": "ok",
            "append_3000": full,
            "append_2000": "ok",
            "append_500_more": full,
            "copy": full,
            "multipart": full,
            "used": 10000,
            "log": "e".repeat(2000),
            "unset": "ok",
            "put_after_unset": "ok",
            "bad": "InvalidArgument",
            "read_after": 0,
            "left": ["k1", "k2", "log"],
        });
        assert_eq!(seen, want, "{client:?}");
        let other = client.run(&env, T2, &["set-quota", bucket, "1"]);
        assert_eq!(other, serde_json::json!("AccessDenied"), "{client:?}");
    }
}

/// The OBS SDK's resumable transfers, what its users call for large objects: `uploadFile`
/// (multipart, three threads, a checkpoint file, `checkSum`) of an SSE-KMS object and
/// `downloadFile` (ranged GETs on three threads, a checkpoint file) read it back byte for byte, in
/// each of the SDK's modes; both remove their checkpoints when done; only ciphertext on disk.
#[test]
fn the_obs_sdks_resumable_transfers_carry_an_sse_kms_object_whole() {
    let env = Env::start(&[]);
    let marker = "RESUMABLE-7f3a";
    let src = env.file("resumable-src", &marked(marker, 12 * 1024 * 1024 + 123));
    Client::EsdkWorkflow.run(&env, T1, &["create-bucket", "resumable"]);
    for (client, key) in [
        (Client::EsdkWorkflow, "obs"),
        (Client::EsdkDefault, "default"),
        (Client::EsdkV4, "v4"),
    ] {
        let seen = client.run(&env, T1, &["resumable", "resumable", key, &src]);
        let sse = if client == Client::EsdkWorkflow {
            "kms"
        } else {
            "aws:kms"
        };
        let want = serde_json::json!({
            "upload": 200,
            "download": 200,
            "same": true,
            "parts": "3",
            "sse": sse,
            "checkpoints_left": [],
        });
        assert_eq!(seen, want, "{client:?}");
    }
    assert!(
        files_containing(&env.data(), marker.as_bytes()).is_empty(),
        "no plaintext on disk"
    );
}

/// The gateway does not provide SSE-C (server-side encryption with a customer-provided key):
/// before, an SSE-C PUT was stored in plaintext and answered 200, and a GET without the key read
/// it back. Every object call carrying SSE-C parameters, for the object or a copy's source, as
/// headers or form fields, through boto3 and the OBS SDK, is refused `400 InvalidRequest` (S3's
/// answer to SSE-C over plain HTTP) and stores nothing; the object there was stays as it was.
#[test]
fn sse_c_is_refused_and_stores_nothing() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::Boto3SigV4, "ssec-v4"),
        (Client::Boto3SigV2, "ssec-v2"),
    ] {
        let seen = client.run(&env, T1, &["sse-c", bucket]);
        let want = serde_json::json!({
            "put": "InvalidRequest",
            "put_over_plain": "InvalidRequest",
            "copy_to": "InvalidRequest",
            "copy_from": "InvalidRequest",
            "multipart": "InvalidRequest",
            "get": "InvalidRequest",
            "head": "400",
            "upload_part": "InvalidRequest",
            "form": "InvalidRequest",
            "left": ["plain"],
            "uploads": 0,
            "plain": "plain",
        });
        assert_eq!(seen, want, "{client:?}");
    }
    for (client, bucket) in [
        (Client::EsdkWorkflow, "ssec-obs"),
        (Client::EsdkDefault, "ssec-default"),
        (Client::EsdkV4, "ssec-v4-esdk"),
    ] {
        let seen = client.run(&env, T1, &["sse-c", bucket]);
        let want = serde_json::json!({
            "putContent": "InvalidRequest",
            "appendObject": "InvalidRequest",
            "copyObject": "InvalidRequest",
            "copyObject_source": "InvalidRequest",
            "getObject": "InvalidRequest",
            "getObjectMetadata": 400,
            "initiateMultipartUpload": "InvalidRequest",
            "left": ["plain"],
            "plain": "plain",
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// S3's GetObjectAttributes (boto3's `get_object_attributes`) was 501: it answers the attributes
/// asked for (ETag as HEAD gives it, plaintext size, `STANDARD`, the checksum a PUT kept), a
/// multipart object's parts and their plaintext sizes paged by `MaxParts`/`PartNumberMarker`, to
/// whoever may HEAD the object; a missing key, another tenant, an unknown attribute and another
/// version are refused as for HEAD.
#[test]
fn object_attributes_answer_what_head_knows_and_the_parts() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::Boto3SigV4, "attributes-v4"),
        (Client::Boto3SigV2, "attributes-v2"),
    ] {
        let seen = client.run(&env, T1, &["attributes", bucket, T2.0, T2.1]);
        let mib5 = 5 << 20;
        let want = serde_json::json!({
            "one": {"ObjectSize": 10, "StorageClass": "STANDARD"},
            "one_checksum": [true, "FULL_OBJECT"],
            "one_etag_is_heads": true,
            "mp_first_page": {
                "ObjectSize": 2 * mib5 + 7,
                "ObjectParts": {
                    "TotalPartsCount": 3, "PartNumberMarker": 0, "NextPartNumberMarker": 2,
                    "MaxParts": 2, "IsTruncated": true,
                    "Parts": [{"PartNumber": 1, "Size": mib5}, {"PartNumber": 2, "Size": mib5}],
                },
            },
            "mp_second_page": {
                "ObjectParts": {
                    "TotalPartsCount": 3, "PartNumberMarker": 2, "NextPartNumberMarker": 3,
                    "MaxParts": 2, "IsTruncated": false,
                    "Parts": [{"PartNumber": 3, "Size": 7}],
                },
            },
            "mp_etag_is_heads": true,
            "missing": "NoSuchKey",
            "other_tenant": "AccessDenied",
            "unknown_attribute": "InvalidArgument",
            "other_version": "InvalidArgument",
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// Request parameters that change what a call does, which the gateway ignored: S3 Express's
/// `x-amz-write-offset-bytes` (an append, which as a PUT replaced the object), object-lock event
/// holds (501, also in a bucket with Object Lock); each is refused and makes or changes nothing. A multipart completion's
/// `x-amz-mp-object-size` must be the size the parts make (400 `InvalidRequest` otherwise).
#[test]
fn parameters_the_gateway_does_not_keep_are_refused_not_dropped() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::Boto3SigV4, "unkept-v4"),
        (Client::Boto3SigV2, "unkept-v2"),
    ] {
        let seen = client.run(&env, T1, &["unkept-parameters", bucket]);
        let want = serde_json::json!({
            "write_offset": "NotImplemented",
            "event_hold": "NotImplemented",
            "mpu_its_size": "ok",
            "mpu_other_size": "InvalidRequest",
            "body": "kept",
            "left": ["k", "mpu-right"],
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// S3's conditional deletes were ignored, so a delete meant only for the object the caller had
/// read removed whatever was there: `If-Match`, `x-amz-if-match-size` and
/// `x-amz-if-match-last-modified-time` (boto3's `IfMatch`, `IfMatchSize`,
/// `IfMatchLastModifiedTime`) and a batch delete's `ETag`, `Size` and `LastModifiedTime` per
/// object. A condition that does not hold is 412 `PreconditionFailed` (404 `NoSuchKey` without
/// an object) and deletes nothing; one that holds deletes.
#[test]
fn deletes_conditioned_on_the_object_delete_only_that_object() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::Boto3SigV4, "cond-delete-v4"),
        (Client::Boto3SigV2, "cond-delete-v2"),
    ] {
        let seen = client.run(&env, T1, &["conditional-delete", bucket]);
        let want = serde_json::json!({
            "other_etag": "PreconditionFailed",
            "its_etag": "ok",
            "missing": "NoSuchKey",
            "other_size": "PreconditionFailed",
            "its_size": "ok",
            "other_time": "PreconditionFailed",
            "its_time": "ok",
            "unconditional_missing": "ok",
            "batch_deleted": ["f"],
            "batch_refused": [["a", "PreconditionFailed"], ["c", "PreconditionFailed"]],
            "left": ["a", "c"],
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// `x-amz-expected-bucket-owner` (boto3's `ExpectedBucketOwner`) and, for a copy's source,
/// `x-amz-source-expected-bucket-owner` were ignored: a client stating whose bucket it meant
/// could write into another owner's bucket of that name. A call naming the bucket's owner (its
/// domain ID) runs; one naming another is 403 `AccessDenied` and changes nothing. S3's SSE-KMS
/// encryption context (`SSEKMSEncryptionContext`), which the gateway does not bind a data key
/// to, is refused 501 rather than dropped.
#[test]
fn calls_naming_another_bucket_owner_are_refused() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::Boto3SigV4, "owner-v4"),
        (Client::Boto3SigV2, "owner-v2"),
    ] {
        let seen = client.run(&env, T1, &["expected-owner", bucket, DOMAIN_1, DOMAIN_2]);
        let ok_denied = serde_json::json!(["ok", "AccessDenied"]);
        let want = serde_json::json!({
            "put": ok_denied,
            "get": ok_denied,
            "head": ["ok", "403"],
            "list": ok_denied,
            "bucket_tagging": ok_denied,
            "multipart": ok_denied,
            "copy_source_owner": ok_denied,
            "delete": ok_denied,
            "encryption_context": "NotImplemented",
            "body": "owner's",
            "left": ["k"],
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// A bucket keeps CORS rules as S3 and OBS do: its owner sets, reads and deletes them (boto3's
/// `put_bucket_cors`, the OBS SDK's `setBucketCors`, in each signing mode), another tenant can
/// do neither, and a rule S3 refuses (a method it does not take, an origin with two wildcards)
/// is refused and keeps the rules there were. A browser's preflight (`OPTIONS`, unsigned; the OBS
/// SDK's `optionsBucket`/`optionsObject`, which may name several methods) is answered by the
/// first rule allowing its origin, methods and headers, or refused with 403; the answer to a
/// request carrying an `Origin` carries what the rules allow that origin, so the page can read it.
#[test]
fn buckets_keep_cors_rules_and_answer_browsers_by_them() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::Boto3SigV4, "cors-v4"),
        (Client::Boto3SigV2, "cors-v2"),
    ] {
        let seen = client.run(&env, T1, &["cors", bucket, T2.0, T2.1]);
        let want = serde_json::json!({
            "before": "NoSuchCORSConfiguration",
            "set": "ok",
            "read_back": true,
            "other_tenant_read": "AccessDenied",
            "other_tenant_set": "AccessDenied",
            "bad_method": "InvalidRequest",
            "two_wildcards": "InvalidRequest",
            "kept_after_refusals": true,
            "preflight_put": {
                "Access-Control-Allow-Origin": "https://app.example.com",
                "Access-Control-Allow-Methods": "PUT, POST",
                "Access-Control-Allow-Headers": "content-type, x-amz-meta-owner",
                "Access-Control-Expose-Headers": "ETag",
                "Access-Control-Max-Age": "300",
                "Access-Control-Allow-Credentials": "true",
            },
            "preflight_get_any_origin": {
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Allow-Methods": "GET, HEAD",
            },
            "preflight_unlisted_header": [403, "AccessForbidden"],
            "preflight_other_origin_put": [403, "AccessForbidden"],
            "preflight_delete": [403, "AccessForbidden"],
            "preflight_without_origin": 400,
            "get_with_origin": [200, "hello", "*", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"],
            "delete_with_origin": [204, null],
            "deleted": "ok",
            "after_delete": "NoSuchCORSConfiguration",
            "preflight_after_delete": [403, "AccessForbidden"],
            "preflight_absent_bucket": 403,
        });
        assert_eq!(seen, want, "{client:?}");
    }
    for (client, bucket) in [
        (Client::EsdkWorkflow, "cors-obs"),
        (Client::EsdkDefault, "cors-default"),
        (Client::EsdkV4, "cors-v4-esdk"),
    ] {
        let seen = client.run(&env, T1, &["cors", bucket]);
        let want = serde_json::json!({
            "before": ["NoSuchCORSConfiguration", 404],
            "set": 200,
            "read_back": [
                ["uploads", ["PUT", "POST"], ["https://*.example.com"], ["content-type", "x-obs-*", "x-amz-*"], 300, ["ETag", "x-obs-request-id"]],
                [null, ["GET", "HEAD"], ["*"], [], null, []],
            ],
            "options_bucket": ["https://app.example.com", "PUT, POST", "content-type, x-obs-meta-owner", "ETag, x-obs-request-id", 300],
            "options_object_any_origin": ["*", "GET, HEAD", null, null, null],
            "options_object_one_method_refused": ["AccessForbidden", 403],
            // HEAD of the bucket and of an object with an Origin: the rule allowing HEAD.
            "bucket_metadata": ["*", "GET, HEAD", "region"],
            "object_metadata_origin": "*",
            "bad_rule": "InvalidRequest",
            "deleted": 204,
            "after_delete": ["NoSuchCORSConfiguration", 404],
            "options_after_delete": ["AccessForbidden", 403],
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// Object tags through the OBS SDK's own calls (`setObjectTagging`, `getObjectTagging`,
/// `deleteObjectTagging`) in each of its modes, with OBS's limits where they are stricter than
/// S3's (a value of at most 255 characters; no `=` or `/`); on a new object and a copy by the
/// tagging header of the request's dialect (`x-obs-tagging` in OBS's), counted in HEAD.
#[test]
fn the_obs_sdk_tags_objects_within_obss_limits() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::EsdkWorkflow, "otags-obs"),
        (Client::EsdkDefault, "otags-default"),
        (Client::EsdkV4, "otags-v4"),
    ] {
        let seen = client.run(&env, T1, &["object-tags", bucket]);
        let want = serde_json::json!({
            "none_yet": [],
            "set": "ok",
            "tags": [["env", "prod"], ["team", "storage"]],
            "refused": {
                "eleven tags": ["BadRequest", 400],
                "a key of 129 characters": ["InvalidTag", 400],
                "a value of 256 characters": ["InvalidTag", 400],
                "a '*' in a key": ["InvalidTag", 400],
                "a '|' in a value": ["InvalidTag", 400],
                "a '/' in a value": ["InvalidTag", 400],
                "an absent object": ["NoSuchKey", 404],
            },
            "after_refusals": [["env", "prod"], ["team", "storage"]],
            "at_limits": "ok",
            "deleted": "ok",
            "after_delete": [],
            "put_with_tags": "ok",
            "put_tags": [["a", "1"], ["b", "2"]],
            "count": ["2"],
            "copy_replacing": "ok",
            "copy_tags": [["c", "3"]],
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// Every object is `STANDARD`: a write asking for another storage class that S3 or OBS knows (a
/// PUT, a copy, a multipart upload, a form's field; boto3's and the OBS SDK's own parameters)
/// is 501 and stores nothing, since the object would otherwise be kept as `STANDARD` while the
/// caller believes it archived or cheaper; an unknown class is 400 `InvalidStorageClass`.
/// Asking for `STANDARD` is taken (and is a change for a copy onto itself, as in S3).
#[test]
fn storage_classes_other_than_standard_are_refused_not_dropped() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::Boto3SigV4, "classes-v4"),
        (Client::Boto3SigV2, "classes-v2"),
    ] {
        let seen = client.run(&env, T1, &["storage-classes", bucket]);
        let want = serde_json::json!({
            "put STANDARD": "ok",
            "put GLACIER": "NotImplemented",
            "put STANDARD_IA": "NotImplemented",
            "copy STANDARD_IA": "NotImplemented",
            "copy onto itself as STANDARD": "ok",
            "multipart DEEP_ARCHIVE": "NotImplemented",
            "form GLACIER": "NotImplemented",
            "head": "STANDARD",
            "left": ["standard"],
            "uploads": 0,
        });
        assert_eq!(seen, want, "{client:?}");
    }
    for (client, bucket) in [
        (Client::EsdkWorkflow, "classes-obs"),
        (Client::EsdkDefault, "classes-default"),
    ] {
        let seen = client.run(&env, T1, &["storage-classes", bucket]);
        let want = serde_json::json!({
            "STANDARD": "ok",
            "WARM": ["NotImplemented", 501],
            "COLD": ["NotImplemented", 501],
            "multipart COLD": ["NotImplemented", 501],
            "left": ["standard"],
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// An object read or copied while another client replaces it is served whole, as one version
/// or the other, never an error: the file is opened while its row is read, and a replaced
/// object's file is unlinked only after its row is gone.
#[test]
fn reads_and_copies_of_an_object_being_replaced_are_whole() {
    let env = Env::start(&[]);
    let seen = Client::Boto3SigV4.run(&env, T1, &["read-while-replaced", "hot-bucket"]);
    assert_eq!(
        seen["outcomes"],
        serde_json::json!(["copy whole", "whole"]),
        "{seen}"
    );
    // Enough reads that a window between reading the row and opening its file, if there were
    // one, would be hit several times over (it is hit about once in 70 reads).
    assert!(seen["reads"].as_u64().unwrap_or(0) >= 200, "{seen}");
}

/// Listings paged one entry at a time with a delimiter (boto3's paginators, v1 and v2) list
/// every common prefix and key once: a page that ends on a prefix resumes after all its keys.
/// `max-keys=0` is an empty page that is not truncated. Bucket names follow OBS's rules (no
/// `..`, `-.`, `.-`, no IP address), a bucket is made only in the gateway's region (S3's
/// `LocationConstraint`, OBS's `Location`; another is `InvalidLocationConstraint`), and a key is
/// at most 1024 bytes (`KeyTooLongError`). A bucket with a multipart upload in progress is not
/// empty (409 `BucketNotEmpty`, not a 500). ListBuckets keeps to its `prefix` and
/// `bucket-region` and pages by `max-buckets`; versioning reads as never enabled; OBS's
/// storage information counts a bucket's objects and bytes.
#[test]
fn listings_page_through_common_prefixes_and_names_keep_their_limits() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::Boto3SigV4, "edges-v4"),
        (Client::Boto3SigV2, "edges-v2"),
    ] {
        let seen = client.run(&env, T1, &["listing-edges", bucket]);
        let want = serde_json::json!({
            "v2_one_per_page": ["a/", "b/", "c", "d/"],
            "v2_under_a": ["a/1", "a/2", "a/b/"],
            "v1_one_per_page": ["a/", "b/", "c", "d/"],
            "v1_under_a": ["a/1", "a/2", "a/b/"],
            "max_keys_0": [false, 0],
            "owner_v2": ["none"],
            "owner_v2_fetched": [DOMAIN_1],
            "owner_v1": [DOMAIN_1],
            "bucket_names": {
                "a..b": "InvalidBucketName",
                "a-.b": "InvalidBucketName",
                "192.168.1.1": "InvalidBucketName",
                "ok.name-1": if client == Client::Boto3SigV4 { "ok" } else { "BucketAlreadyOwnedByYou" },
            },
            "bucket_regions": {"region": "ok", "cn-north-4": "InvalidLocationConstraint"},
            "delete_bucket_with_upload": "BucketNotEmpty",
            "delete_bucket_after_abort": "ok",
            "key_1024": "ok",
            "key_1025": "KeyTooLongError",
            "buckets_one_per_page": [[bucket], [format!("{bucket}-region")]],
            "buckets_in_another_region": [],
            "versioning": "never enabled",
        });
        assert_eq!(seen, want, "{client:?}");
    }
    // The OBS SDK asks for a region in its own element (`Location`).
    for (client, bucket, region, want) in [
        (
            Client::EsdkWorkflow,
            "edges-esdk-1",
            "region",
            Value::from(200),
        ),
        (
            Client::EsdkWorkflow,
            "edges-esdk-2",
            "cn-north-4",
            Value::from("InvalidLocationConstraint"),
        ),
        (
            Client::EsdkDefault,
            "edges-esdk-3",
            "cn-north-4",
            Value::from("InvalidLocationConstraint"),
        ),
    ] {
        let got = client.run(&env, T1, &["create-bucket-in", bucket, region]);
        let got = if status(&got) == 200 {
            Value::from(200)
        } else {
            got["error"].clone()
        };
        assert_eq!(got, want, "{client:?} {region}");
    }
    // OBS's storage information counts the objects and their bytes; versioning never enabled.
    let src = env.file("edges.src", &[b'e'; 1234]);
    for key in ["one", "two"] {
        let put = Client::EsdkWorkflow.run(&env, T1, &["put", "edges-esdk-1", key, &src]);
        assert_eq!(status(&put), 200, "{put}");
    }
    for client in [Client::EsdkWorkflow, Client::EsdkDefault] {
        let seen = client.run(&env, T1, &["bucket-info", "edges-esdk-1"]);
        let want = serde_json::json!({"size": 2468, "objects": 2, "versioning": null});
        assert_eq!(seen, want, "{client:?}");
    }
    let other = Client::EsdkWorkflow.run(&env, T2, &["bucket-info", "edges-esdk-1"]);
    assert_eq!(other["error"], "AccessDenied", "{other}");
}

/// GET and HEAD by `partNumber` as S3 answers them (AWS SDK Go v2's transfer manager downloads so):
/// a multipart object's part N is its bytes (206, `Content-Range`, `x-amz-mp-parts-count`),
/// plaintext or SSE-KMS; an object written whole is its part 1; a part past the last is 416
/// `InvalidPartNumber`; a part number with a `Range` is 400 `InvalidRequest`.
#[test]
fn parts_of_multipart_objects_are_read_by_number() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::Boto3SigV4, "parts-v4"),
        (Client::Boto3SigV2, "parts-v2"),
    ] {
        let seen = client.run(&env, T1, &["part-reads", bucket]);
        let parts = serde_json::json!([
            [206, true, "bytes 0-102399/204805", 3],
            [206, true, "bytes 102400-204799/204805", 3],
            [206, true, "bytes 204800-204804/204805", 3],
        ]);
        let head = serde_json::json!([206, 102_400, "bytes 102400-204799/204805", 3]);
        let want = serde_json::json!({
            "plain": parts,
            "plain_head_2": head,
            "plain_part_4": "InvalidPartNumber",
            "kms": parts,
            "kms_head_2": head,
            "kms_part_4": "InvalidPartNumber",
            "whole_part_1": [206, "0123456789", null],
            "whole_part_2": "InvalidPartNumber",
            "part_and_range": "InvalidRequest",
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// ListMultipartUploads as S3 answers it: by key, then initiation time; the paginator's pages
/// (one upload each, with and without a delimiter) list every upload once; a caller that lost its
/// upload IDs finds them there, aborts them, and can then delete the bucket. Another tenant's
/// listing is refused.
#[test]
fn uploads_in_progress_are_listed_in_order_and_can_be_aborted_from_the_listing() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::Boto3SigV4, "uploads-v4"),
        (Client::Boto3SigV2, "uploads-v2"),
    ] {
        let seen = client.run(&env, T1, &["uploads", bucket]);
        let want = serde_json::json!({
            "whole_in_order": true,
            "whole_truncated": false,
            "paged_in_order": true,
            "paged_by_delimiter": ["a/", "b", "c/"],
            "under_a": ["a/1", "a/1", "a/2"],
            "max_uploads_0": false,
            "delete_bucket_with_uploads": "BucketNotEmpty",
            "left": 0,
            "delete_bucket_after_aborts": "ok",
        });
        assert_eq!(seen, want, "{client:?}");
    }
    Client::Boto3SigV4.run(&env, T1, &["create-bucket", "uploads-t1"]);
    let aborted = Client::Boto3SigV4.run(&env, T1, &["abort-multipart", "uploads-t1", "k"]);
    assert_eq!(status(&aborted), 204, "{aborted}");
    let own = Client::Boto3SigV4.run(&env, T1, &["list-uploads", "uploads-t1"]);
    assert_eq!(own, serde_json::json!({"uploads": []}), "{own}");
    let other = Client::Boto3SigV4.run(&env, T2, &["list-uploads", "uploads-t1"]);
    assert_eq!(other["error"], "AccessDenied", "{other}");
}

/// The machine's `binary` (Debian's `package`, which answers `version_arg`), installed from
/// Debian when absent; a tool that still does not run fails the test.
fn debian_tool(package: &str, binary: &str, version_arg: &str) -> Command {
    let present = || {
        Command::new(binary)
            .arg(version_arg)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !present() {
        kmsbox_tests::debian::install(package, binary);
    }
    assert!(present(), "{binary} runs after installing it");
    Command::new(binary)
}

/// The machine's curl, installed from Debian when absent (`--aws-sigv4` needs 7.75 or later).
fn curl() -> Command {
    debian_tool("curl", "curl", "--version")
}

/// README's curl commands work as written: curl signs SigV4 itself, a PUT asking for SSE-KMS
/// is stored encrypted and answered with its key, a GET reads it back. Without
/// `x-amz-content-sha256`, which curl 7.x does not send, the request is refused as S3 refuses it
/// (400 `InvalidRequest`, naming the header).
#[test]
fn curl_signs_puts_and_gets_as_the_readme_shows() {
    let env = Env::start(&[]);
    let made = Client::Boto3SigV4.run(&env, T1, &["create-bucket", "curl-bucket"]);
    assert_eq!(status(&made), 200, "{made}");
    let marker = format!("CURL-SECRET-{}", uuid::Uuid::new_v4().simple());
    let body = marked(&marker, 50_000);
    let src = env.file("curl.src", &body);
    let out = env.out("curl.out");
    let url = format!("{}/curl-bucket/c.bin", env.endpoint());
    let run = |args: &[&str]| {
        let o = curl()
            .args(["-s", "-S", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user"])
            .arg(format!("{}:{}", T1.0, T1.1))
            .args(args)
            .output()
            .expect("curl runs");
        assert!(
            o.status.success(),
            "curl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let unsigned = "x-amz-content-sha256: UNSIGNED-PAYLOAD";
    let put = run(&[
        "-T",
        &src,
        "-H",
        unsigned,
        "-H",
        "x-amz-server-side-encryption: aws:kms",
        "-D",
        "-",
        "-o",
        "/dev/null",
        &url,
    ]);
    // After `100 Continue`: curl sends Expect for a body this size.
    let last_status = put.lines().rev().find(|l| l.starts_with("HTTP/"));
    assert_eq!(last_status, Some("HTTP/1.1 200 OK"), "{put}");
    let put = put.to_ascii_lowercase();
    assert!(
        put.contains("x-amz-server-side-encryption: aws:kms"),
        "{put}"
    );
    assert!(
        put.contains("x-amz-server-side-encryption-aws-kms-key-id: region:"),
        "{put}"
    );
    let got = run(&["-H", unsigned, "-o", &out, "-w", "%{http_code}", &url]);
    assert_eq!(got, "200");
    assert!(
        std::fs::read(&out).expect("out") == body,
        "the body read back"
    );
    assert!(
        files_containing(&env.data(), marker.as_bytes()).is_empty(),
        "no plaintext on disk"
    );
    let refused = run(&["-w", "\n%{http_code}", &url]);
    assert!(
        refused.ends_with("\n400")
            && refused.contains("<Code>InvalidRequest</Code>")
            && refused.contains("x-amz-content-sha256"),
        "{refused}"
    );
}

/// OBS's limits, which client code must meet in the cloud, hold here too: every multipart part
/// but the last is at least 100 KiB (`EntityTooSmall` at completion, and the upload stays open
/// for a corrected part, and is listed), an object's user metadata is at most 8 KiB of names and values
/// (`MetadataTooLarge` before anything is stored, for PUT, initiate and copy), and a copy of an
/// object onto itself must change something (its metadata, by `REPLACE`, or its encryption), as
/// S3 requires (`InvalidRequest`).
#[test]
fn parts_metadata_and_copies_onto_an_object_itself_keep_obs_limits() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::Boto3SigV4, "limits-v4"),
        (Client::Boto3SigV2, "limits-v2"),
    ] {
        let seen = client.run(&env, T1, &["limits", bucket]);
        let want = serde_json::json!({
            "part_under_100_kib": "EntityTooSmall",
            "upload_kept": 2,
            "nothing_stored": "404",
            "part_of_100_kib": "ok",
            "small_size": 100 * 1024 + 10,
            "one_small_part": "ok",
            "metadata_8_kib": "ok",
            "metadata_over_8_kib": "MetadataTooLarge",
            "metadata_over_8_kib_upload": "MetadataTooLarge",
            "metadata_over_8_kib_copy": "MetadataTooLarge",
            "uploads": [],
            "copy_onto_itself": "InvalidRequest",
            "copy_onto_itself_replacing_metadata": "ok",
            "copy_onto_itself_encrypting": "ok",
            "self": ["self", {"a": "2"}, "aws:kms"],
            "left": ["meta", "one", "self", "small"],
        });
        assert_eq!(seen, want, "{client:?}");
    }
    for (client, bucket) in [
        (Client::EsdkWorkflow, "limits-esdk-w"),
        (Client::EsdkDefault, "limits-esdk-d"),
    ] {
        let seen = client.run(&env, T1, &["limits", bucket]);
        let want = serde_json::json!({
            "part_under_100_kib": "EntityTooSmall",
            "listed_uploads": [["small", true]],
            "part_of_100_kib": "ok",
            "metadata_over_8_kib": "MetadataTooLarge",
            "metadata_over_8_kib_upload": "MetadataTooLarge",
            "copy_onto_itself": "InvalidRequest",
            "copy_onto_itself_replacing_metadata": "ok",
            "self_metadata": ["2"],
            "left": ["self", "small"],
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// `Cache-Control`, `Content-Disposition`, `Content-Encoding`, `Content-Language` and `Expires`
/// (with `Content-Type`) as a PUT, a multipart upload and a copy set them (a copy keeps the
/// source's, `REPLACE` takes the request's), answered by HEAD and GET, with boto3 in both
/// signature versions.
#[test]
fn the_headers_a_write_sets_are_answered_by_head_and_get() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::Boto3SigV4, "hdr-v4"),
        (Client::Boto3SigV2, "hdr-v2"),
    ] {
        let seen = client.run(&env, T1, &["stored-headers", bucket]);
        let sent = serde_json::json!([
            "max-age=60",
            "attachment; filename=\"a.txt\"",
            "gzip",
            "de-CH",
            "Tue, 01 Jan 2030 00:00:00 GMT",
            "text/x-a"
        ]);
        let both = |v: Value| serde_json::json!({"head": v.clone(), "get": v});
        let want = serde_json::json!({
            "put": both(sent.clone()),
            "multipart": both(sent.clone()),
            "copy": both(sent),
            "copy_replace": both(serde_json::json!(["no-cache", null, null, null, null, "text/x-b"])),
            "none": both(serde_json::json!([null, null, null, null, null, "binary/octet-stream"])),
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// Conditional requests as S3 and OBS answer them. Writes (PUT, CompleteMultipartUpload, a
/// copy's target): `If-None-Match: *` creates only when the key is free, and of N clients racing
/// to create one key exactly one wins and its body is the one stored; `If-Match` replaces only
/// the ETag it names (404 for a key without object). Reads: `If-Modified-Since`,
/// `If-Unmodified-Since` (304, 412), and `If-Range` (a range of another object is the whole
/// object, so a resumed download never joins two). A copy's source conditions
/// (`x-amz-copy-source-if-*`, and the OBS SDK's, which it sends percent-encoded) fail the copy
/// with 412. Object-lock and tag headers are refused, not dropped. A refused condition stores
/// nothing.
#[test]
fn conditional_writes_reads_and_copies_hold_and_one_racing_creator_wins() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::Boto3SigV4, "cond-v4"),
        (Client::Boto3SigV2, "cond-v2"),
    ] {
        let seen = client.run(&env, T1, &["conditions", bucket]);
        let mut race = vec!["PreconditionFailed"; 7];
        race.push("ok");
        let want = serde_json::json!({
            "create_if_absent": "ok",
            "create_if_absent_again": "PreconditionFailed",
            "replace_if_match_wrong": "PreconditionFailed",
            "replace_if_match": "ok",
            "replace_if_match_old": "PreconditionFailed",
            "if_match_missing_key": "NoSuchKey",
            "k": "four",
            "race": race,
            "race_winner_stored": ["ok"],
            "complete_if_absent": "PreconditionFailed",
            "complete_unconditional": "ok",
            "k_after_complete": "mp",
            "get_modified_since_future": "304",
            "get_modified_since_past": "ok",
            "get_unmodified_since_past": "PreconditionFailed",
            "get_unmodified_since_future": "ok",
            "if_range_same": [206, "p"],
            "if_range_changed": [200, "mp"],
            "copy_source_if_match_wrong": "PreconditionFailed",
            "copy_source_if_none_match": "PreconditionFailed",
            "copy_source_unmodified_since_past": "PreconditionFailed",
            "copy_source_modified_since_past": "ok",
            "copy": "mp",
            "object_lock": "InvalidRequest",
            "tagging": "InvalidTag",
            "left": ["copy", "k", "lock"],
        });
        assert_eq!(seen, want, "{client:?}");
    }
    // Another tenant learns nothing from conditions: every probe of tenant 1's bucket is
    // AccessDenied, whether the key exists or not, whatever the condition.
    Client::Boto3SigV4.run(&env, T2, &["create-bucket", "cond-other"]);
    let seen = Client::Boto3SigV4.run(&env, T2, &["probe-other", "cond-v4", "k", "cond-other"]);
    let denied = serde_json::json!({
        "put_if_absent_existing": "AccessDenied",
        "put_if_absent_missing": "AccessDenied",
        "put_if_match_missing": "AccessDenied",
        "copy_existing_if_match_wrong": "AccessDenied",
        "copy_missing": "AccessDenied",
    });
    assert_eq!(seen, denied);
    let src = env.file("cond-src", b"source");
    Client::EsdkDefault.run(&env, T1, &["create-bucket", "cond-esdk"]);
    for client in [Client::EsdkDefault, Client::EsdkWorkflow, Client::EsdkV4] {
        let put = client.run(&env, T1, &["put", "cond-esdk", "k", &src, "-", "kms"]);
        assert_eq!(status(&put), 200, "{client:?} {put}");
        let seen = client.run(&env, T1, &["copy-conditions", "cond-esdk", "k"]);
        let want = serde_json::json!({
            "if_match": "ok",
            "if_match_wrong": "PreconditionFailed",
            "if_none_match": "PreconditionFailed",
            "if_unmodified_since_past": "PreconditionFailed",
            "get_if_none_match": 304,
            "get_if_unmodified_since_past": 412,
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// A refusal that leaves the request body unread ends the connection (`Connection: close`):
/// hyper would otherwise read the client's next request as that body when the client withheld
/// it after `Expect: 100-continue`, as botocore does, and answer a cut, misread request.
#[test]
fn a_refused_upload_ends_its_connection_so_no_later_request_is_misread() {
    use std::io::{Read, Write};
    let env = Env::start(&[]);
    let addr = env.endpoint().trim_start_matches("http://").to_owned();
    for _ in 0..20 {
        let mut s = std::net::TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(
            b"PUT /bucket/k HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 7\r\n\r\n",
        )
        .expect("write");
        let mut first = [0u8; 4096];
        let n = s.read(&mut first).expect("the refusal");
        let first = String::from_utf8_lossy(&first[..n]).to_ascii_lowercase();
        assert!(first.starts_with("http/1.1 403"), "{first}");
        assert!(first.contains("connection: close"), "{first}");
        // The body withheld, the client's next request: never read as the body.
        let _ = s.write_all(b"GET /bucket/k HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    }
}

/// `HEAD /?apiversion` answers `x-obs-api: 3.0` without authentication, as OBS does (the OBS
/// SDK asks it to choose its dialect); anything else unauthenticated is 403 and carries no data.
#[test]
fn apiversion_answers_unauthenticated_and_nothing_else_does() {
    use std::io::{Read, Write};
    let env = Env::start(&[]);
    let addr = env.endpoint().trim_start_matches("http://").to_owned();
    let raw = |request: &str| {
        let mut s = std::net::TcpStream::connect(&addr).expect("connect");
        s.write_all(request.as_bytes()).expect("write");
        let mut out = String::new();
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let _ = s.read_to_string(&mut out);
        out
    };
    let head =
        raw("HEAD /?apiversion HTTP/1.1\r\nHost: obs.localhost\r\nConnection: close\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("x-obs-api: 3.0"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase().contains("x-obs-request-id: "),
        "{head}"
    );
    let list = raw("GET / HTTP/1.1\r\nHost: obs.localhost\r\nConnection: close\r\n\r\n");
    assert!(list.starts_with("HTTP/1.1 403"), "{list}");
    assert!(
        list.contains("<Code>AccessDenied</Code>") && list.contains("<HostId>"),
        "{list}"
    );
}

/// A daemon that runs with `--tenants`: the gateway sends each tenant's `kms_token` from the
/// credentials file; a tenant without one gets 500 `InternalError` (the KMS refused the
/// gateway, a configuration problem, never the caller's), and nothing is stored.
#[test]
fn kms_tokens_from_the_credentials_file_reach_a_daemon_with_tenants() {
    let tenants = format!(
        "[[tenants]]\ndomain_id = \"{DOMAIN_1}\"\ntoken = \"token-one-0123456789\"\n\
         [[tenants]]\ndomain_id = \"{DOMAIN_2}\"\ntoken = \"token-two-0123456789\"\n"
    );
    let credentials = CREDENTIALS.replacen(
        "domain_id = \"783fc6652cf246c096ea836694f71855\"\n",
        "domain_id = \"783fc6652cf246c096ea836694f71855\"\nkms_token = \"token-one-0123456789\"\n",
        1,
    );
    let env = Env::start_with(&[], &credentials, Some(&tenants), &[]);
    let src = env.file("t.src", &marked("TOKENS", 3000));
    Client::Boto3SigV4.run(&env, T1, &["create-bucket", "bucket-tokens-1"]);
    let put = Client::Boto3SigV4.run(&env, T1, &["put", "bucket-tokens-1", "k", &src, "-", "kms"]);
    assert_eq!(status(&put), 200, "{put}");
    assert!(
        key_id_of_tenant(&Client::Boto3SigV4.sse(&put).1, DOMAIN_1),
        "{put}"
    );
    let got = Client::Boto3SigV4.run(
        &env,
        T1,
        &["get", "bucket-tokens-1", "k", &env.out("t.out")],
    );
    assert_eq!(status(&got), 200, "{got}");
    Client::Boto3SigV4.run(&env, T2, &["create-bucket", "bucket-tokens-2"]);
    let put = Client::Boto3SigV4.run(&env, T2, &["put", "bucket-tokens-2", "k", &src, "-", "kms"]);
    assert_eq!((status(&put), error(&put)), (500, "InternalError"), "{put}");
    assert_eq!(object_files(&env).len(), 1);
}

/// A crash (SIGKILL) in the middle of an upload: the partial body stays only as a temporary
/// file, which the next start removes; the object never appears.
#[test]
fn a_crash_mid_upload_leaves_nothing_after_restart() {
    use std::io::Write;
    let mut env = Env::start(&[]);
    Client::Boto3SigV4.run(&env, T1, &["create-bucket", "bucket-crash"]);
    let url = Client::Boto3SigV2.run(&env, T1, &["presign-url", "bucket-crash", "crashed"]);
    let url = url["url"].as_str().expect("url").to_owned();
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_at(rest.find('/').expect("path"));
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    let head = format!("PUT {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000000\r\n\r\n");
    s.write_all(head.as_bytes()).expect("head");
    s.write_all(&[b'X'; 100_000]).expect("part of the body");
    let tmp = env.data().join("tmp");
    let start = std::time::Instant::now();
    while std::fs::read_dir(&tmp).expect("tmp").count() == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the upload never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut gw = env.gw.take().expect("gateway");
    gw.child.kill().expect("SIGKILL");
    gw.child.wait().expect("reaped");
    drop(s);
    assert_eq!(
        std::fs::read_dir(&tmp).expect("tmp").count(),
        1,
        "the crash left its partial file"
    );
    env.gw = Some(env.spawn_gateway());
    assert_eq!(
        std::fs::read_dir(&tmp).expect("tmp").count(),
        0,
        "removed at start"
    );
    assert!(object_files(&env).is_empty());
    let list = Client::Boto3SigV4.run(&env, T1, &["list", "bucket-crash"]);
    assert_eq!(list["keys"], serde_json::json!([]), "{list}");
}

/// The AWS CLI with its defaults (SigV4; a 20 MiB file goes up as a multipart upload): an
/// SSE-KMS upload reads back whole, and head-object reports SSE-KMS under the tenant's key. Then
/// its everyday workflow: `s3 sync` up (SSE-KMS, a 9 MB file in parts) and back, a changed file
/// synced alone, a stream from standard input (a multipart upload of unknown length) read back
/// to standard output, `s3 mv`, `s3 rm --recursive` and `s3 rb`.
#[test]
fn the_aws_cli_uploads_and_downloads_sse_kms_objects() {
    static AWSCLI: OnceLock<PathBuf> = OnceLock::new();
    let python = AWSCLI
        .get_or_init(|| {
            let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("obs-awscli");
            venv_python(&venv, &["awscli==1.46.3"])
        })
        .clone();
    let env = Env::start(&[]);
    let body = marked("AWSCLI", 20 * 1024 * 1024);
    let src = env.file("cli.src", &body);
    let out = env.out("cli.out");
    let got = run_script(
        &python,
        "obs_awscli.py",
        &[
            env.endpoint(),
            T1.0,
            T1.1,
            "bucket-cli",
            "big.bin",
            &src,
            &out,
        ],
    );
    let got: Value = serde_json::from_str(got.trim()).expect("json");
    assert_eq!(got["head"]["ServerSideEncryption"], "aws:kms", "{got}");
    let key = got["head"]["SSEKMSKeyId"].as_str().unwrap_or_default();
    assert!(key_id_of_tenant(key, DOMAIN_1), "{got}");
    assert!(
        got["head"]["ETag"]
            .as_str()
            .is_some_and(|e| e.contains('-')),
        "a multipart upload: {got}"
    );
    assert!(std::fs::read(&out).expect("out") == body);
    assert_eq!(
        files_containing(&env.data(), b"AWSCLI plaintext"),
        Vec::<PathBuf>::new()
    );
    let big_key = "p/sub/big";
    let workflow = serde_json::json!({
        "first_sync": ["p/f1", "p/f2", "p/f3", big_key],
        "second_sync": ["p/f2"],
        "synced_back": true,
        // s3transfer begins its multipart uploads with CRC32: the object keeps the composite.
        "synced_big": ["aws:kms", "COMPOSITE", true],
        "stdin_round_trip": true,
        "after_move": ["big.bin", "moved", "p/f2", "p/f3", big_key, "stdin"],
        "deleted": ["big.bin", "moved", "p/f2", "p/f3", big_key, "stdin"],
        "bucket_left": false,
    });
    for (name, want) in workflow.as_object().expect("object") {
        assert_eq!(&got[name], want, "{name}: {got}");
    }
}

/// Object keys that need encoding (spaces, `+`, `&`, `=`, `%`, non-ASCII) sign, store, list and
/// read back under every client and signature version.
#[test]
fn keys_that_need_encoding_round_trip_with_every_client() {
    let env = Env::start(&[]);
    Client::Boto3SigV4.run(&env, T1, &["create-bucket", "bucket-keys-enc"]);
    let body = marked("ENCODED", 2000);
    let src = env.file("enc.src", &body);
    let mut names = Vec::new();
    for client in ALL {
        let name = format!("dir/{client:?} a+b&c=d%e ü~.txt");
        let put = client.run(
            &env,
            T1,
            &["put", "bucket-keys-enc", &name, &src, "-", "kms"],
        );
        assert_eq!(status(&put), 200, "{client:?} {put}");
        let out = env.out("enc.out");
        let got = client.run(&env, T1, &["get", "bucket-keys-enc", &name, &out]);
        assert_eq!(status(&got), 200, "{client:?} {got}");
        assert!(std::fs::read(&out).expect("out") == body, "{client:?}");
        names.push(name);
    }
    names.sort();
    let list = Client::Boto3SigV4.run(&env, T1, &["list", "bucket-keys-enc"]);
    assert_eq!(list["keys"], serde_json::json!(names), "{list}");
}

/// A bucket policy that allows another tenant to read opens the bucket's plaintext objects to it
/// (the bucket ACL alone is private), and still not its SSE-KMS objects (rule 9).
#[test]
fn a_policy_allow_opens_plaintext_objects_to_another_tenant_but_never_sse_kms_ones() {
    let env = Env::start(&[]);
    Client::Boto3SigV4.run(&env, T1, &["create-bucket", "bucket-shared"]);
    let body = marked("SHARED", 3000);
    let src = env.file("s.src", &body);
    Client::Boto3SigV4.run(&env, T1, &["put", "bucket-shared", "plain", &src]);
    Client::Boto3SigV4.run(
        &env,
        T1,
        &["put", "bucket-shared", "sealed", &src, "-", "kms"],
    );
    let out = env.out("s.out");
    let before = Client::Boto3SigV4.run(&env, T2, &["get", "bucket-shared", "plain", &out]);
    assert_eq!(
        (status(&before), error(&before)),
        (403, "AccessDenied"),
        "{before}"
    );
    let policy = format!(
        r#"{{"Statement":[{{"Sid":"ShareReads","Effect":"Allow","Principal":{{"ID":["domain/{DOMAIN_2}"]}},"Action":["GetObject"],"Resource":["bucket-shared/*"]}}]}}"#
    );
    let file = env.file("share.json", policy.as_bytes());
    let set = Client::Boto3SigV4.run(&env, T1, &["put-policy", "bucket-shared", &file]);
    assert_eq!(status(&set), 204, "{set}");
    for client in [Client::Boto3SigV4, Client::EsdkWorkflow] {
        let got = client.run(&env, T2, &["get", "bucket-shared", "plain", &out]);
        assert_eq!(status(&got), 200, "{client:?} {got}");
        assert!(std::fs::read(&out).expect("out") == body);
        let got = client.run(&env, T2, &["get", "bucket-shared", "sealed", &out]);
        assert_eq!(
            (status(&got), error(&got)),
            (403, "AccessDenied"),
            "{client:?} {got}"
        );
        // The policy allows reads only.
        let put = client.run(&env, T2, &["put", "bucket-shared", "intruder", &src]);
        assert_eq!(
            (status(&put), error(&put)),
            (403, "AccessDenied"),
            "{client:?} {put}"
        );
    }
}

/// OBS's object expiry (`x-obs-expires`, the SDK's `expires`) was ignored: objects outlived it.
/// Now an object lives that many days from its last modification, on the gateway's clock, which
/// follows the daemon's virtual clock here (`--kms-clock`): once the clock passes an object's
/// expiry no read or listing finds it and its file is gone; objects without one, and a copy (a
/// new object), stay. Bad values are refused and store nothing; a metadata change sets an expiry
/// but not one already past. Both header dialects (the SDK's workflow and V4 modes); the
/// default mode (AWS V2) does not sign the header, and an unsigned header that deletes data is
/// refused like every unsigned `x-obs-`/`x-amz-` header.
#[test]
fn objects_expire_after_the_days_their_upload_gave_them() {
    let env = Env::start_with(&["--kms-clock"], CREDENTIALS, None, &["--virtual-clock"]);
    let advance = |by: &str| {
        env.kmsctl("d1", &["admin", "clock", "advance", by]);
    };
    let clients = [
        (Client::EsdkWorkflow, "expiry-obs"),
        (Client::EsdkV4, "expiry-amz"),
    ];
    let refused = serde_json::json!(["InvalidArgument", 400]);
    let unsigned = Client::EsdkDefault.run(&env, T1, &["expiry", "expiry-v2", "unsigned"]);
    let denied = serde_json::json!(["AccessDenied", 403]);
    assert_eq!(
        unsigned,
        serde_json::json!({
            "put": denied, "initiate": denied,
            "message": "the header x-obs-expires is not covered by the request's signature: sign it, or leave it out",
            "read": "NoSuchKey", "uploads": 0,
        })
    );
    for (client, bucket) in clients {
        let seen = client.run(&env, T1, &["expiry", bucket, "write"]);
        let want = serde_json::json!({
            "day": "ok", "two": "ok", "kept": "ok", "meta": "ok", "mp": "ok", "log": "ok",
            "log_again": "ok", "meta_change": "ok", "copy": "ok", "form": 204, "form_refused": 400,
            "refused": {"0": refused, "-1": refused, "1.5": refused, "soon": refused,
                        "2147483648": refused},
            // Days from Last-Modified to the answered expiry (HTTP dates: whole seconds); the
            // later append moved Last-Modified but kept the expiry.
            "life": {"day": 1.0, "two": 2.0, "mp": 1.0, "log": 1.0, "meta": 2.0, "form": 1.0,
                     "day.copy": null, "kept": null},
        });
        assert_eq!(seen, want, "{client:?}");
    }
    let state = |client: Client, bucket: &str| client.run(&env, T1, &["expiry", bucket, "read"]);
    let read = |listed: &[&str]| {
        let body = |k: &str| match k {
            "day" | "day.copy" => "one day",
            "two" => "two days",
            "kept" => "no expiry",
            "meta" => "set later",
            "mp" => "mmmmmmmmmm",
            "log" => "ab",
            "form" => "a form's day",
            _ => "written late",
        };
        let reads: serde_json::Map<String, Value> = [
            "day", "two", "mp", "log", "meta", "form", "day.copy", "kept", "late", "bad",
        ]
        .iter()
        .map(|k| {
            let v = if listed.contains(k) {
                Value::from(body(k))
            } else {
                Value::from("NoSuchKey")
            };
            ((*k).to_owned(), v)
        })
        .collect();
        serde_json::json!({"listed": listed, "reads": reads})
    };
    // (rule, how far the clock moves first, what is left in each bucket)
    let steps: [(&str, Option<&str>, &[&str]); 4] = [
        (
            "before any expiry, everything is there",
            None,
            &[
                "day", "day.copy", "form", "kept", "log", "meta", "mp", "two",
            ],
        ),
        (
            "a day and an hour on, the one-day objects are gone",
            Some("1d1h"),
            &["day.copy", "kept", "meta", "two"],
        ),
        (
            "two days and a half hour on, the two-day objects are gone, the late one is not",
            Some("23h30m"),
            &["day.copy", "kept", "late"],
        ),
        (
            "an hour later, the late object's day has passed",
            Some("1h"),
            &["day.copy", "kept"],
        ),
    ];
    for (rule, by, left) in steps {
        if let Some(by) = by {
            advance(by);
        }
        for (client, bucket) in clients {
            assert_eq!(state(client, bucket), read(left), "{rule}: {client:?}");
        }
        assert_eq!(
            object_files(&env).len(),
            2 * left.len(),
            "{rule}: expired objects' files are removed"
        );
        if by == Some("1d1h") {
            // Written on the daemon's clock, a day on: its day ends a day after that.
            for (client, bucket) in clients {
                let seen = client.run(&env, T1, &["expiry", bucket, "late"]);
                let want = serde_json::json!({"late": "ok", "past": refused, "life": 1.0});
                assert_eq!(seen, want, "{client:?}");
            }
        }
    }
}

/// Bucket lifecycle (was 501 to set): boto3's `put_bucket_lifecycle_configuration` and the OBS
/// SDK's `setBucketLifecycle` set rules that are read back as set, and applied on the gateway's
/// clock (the daemon's virtual clock here, from 2027-01-01 08:00 UTC): `Days` expire at the
/// midnight UTC after that many days, a `Date` at that date, filters by prefix, tag and size
/// hold, unfinished uploads end, a disabled rule does nothing, a date already past expires its
/// objects at once, an object's own `x-obs-expires` takes precedence; HEAD answers each
/// object's expiry with its rule. Actions the gateway does not do are 501, bad rules 400, and
/// nothing of them is kept.
#[test]
fn lifecycle_rules_expire_objects_and_end_uploads_on_the_gateways_clock() {
    let env = Env::start_with(
        &["--kms-clock"],
        CREDENTIALS,
        None,
        &["--virtual-clock", "--clock-start", "2027-01-01T08:00:00Z"],
    );
    let advance = |by: &str| {
        env.kmsctl("d1", &["admin", "clock", "advance", by]);
    };
    let boto = Client::Boto3SigV4;
    let lifecycle = |phase: &str| boto.run(&env, T1, &["lifecycle", "rules", phase, T2.0, T2.1]);
    let seen = lifecycle("write");
    let date = |weekday: &str, day: u32, rule: &str| {
        format!("expiry-date=\"{weekday}, 0{day} Jan 2027 00:00:00 GMT\", rule-id=\"{rule}\"")
    };
    let want = serde_json::json!({
        "put": "ok",
        "read_back": true,
        "refused": {
            "a transition": "NotImplemented",
            "a date not at midnight": "InvalidArgument",
            "zero days": "InvalidArgument",
            "no action": "InvalidRequest",
            "noncurrent transition": "NotImplemented",
            "another tenant": "AccessDenied",
            "another tenant reads": "AccessDenied",
        },
        "unchanged": true,
        "expiration": {
            "logs/a": date("Sun", 3, "logs"),
            "tmp/t": date("Mon", 4, "temp"),
            "tmp/u": null,
            "dated/d": date("Sun", 3, "dated"),
            "size/small": date("Sun", 3, "small"),
            "keep/k": null,
        },
        "write_answers": [date("Sun", 3, "logs"), date("Sun", 3, "logs"), null],
        // The rule with a date already past expired its object at once.
        "state": {
            "listed": ["dated/d", "keep/k", "logs/a", "logs/b", "size/big", "size/small", "tmp/t", "tmp/u"],
            "uploads": ["other/u", "up/u"],
        },
    });
    assert_eq!(seen, want);
    let obs = Client::EsdkWorkflow.run(&env, T1, &["lifecycle", "obs-rules", "write"]);
    assert_eq!(
        obs,
        serde_json::json!({
            "put": 200,
            // The SDK reads an empty prefix as None.
            "read": [["obs", "logs/", "Enabled", 1], ["uploads", null, "Enabled", null]],
            "expiration": {
                "logs/a": "expiry-date=\"Sun, 03 Jan 2027 00:00:00 GMT\", rule-id=\"obs\"",
                "logs/own": "expiry-date=\"Mon, 04 Jan 2027 08:00:00 GMT\"",
                "keep": null,
            },
        })
    );
    // (rule, how far the clock moves first, what boto3's bucket lists and holds in uploads,
    // what the OBS SDK's bucket lists)
    let steps = [
        (
            "on 2 January nothing has reached its midnight",
            "1d",
            serde_json::json!({
                "listed": ["dated/d", "keep/k", "logs/a", "logs/b", "size/big", "size/small", "tmp/t", "tmp/u"],
                "uploads": ["other/u", "up/u"],
            }),
            serde_json::json!(["keep", "logs/a", "logs/own"]),
        ),
        (
            "on 3 January the one-day rules, the date and the upload rule have run",
            "1d",
            serde_json::json!({
                "listed": ["keep/k", "size/big", "tmp/t", "tmp/u"],
                "uploads": ["other/u"],
            }),
            serde_json::json!(["keep", "logs/own"]),
        ),
        (
            "on 4 January the two-day tag rule has, and the own expiry came first",
            "1d1h",
            serde_json::json!({"listed": ["keep/k", "size/big", "tmp/u"], "uploads": ["other/u"]}),
            serde_json::json!(["keep"]),
        ),
    ];
    for (rule, by, boto_state, obs_listed) in steps {
        advance(by);
        assert_eq!(lifecycle("read"), boto_state, "{rule}");
        assert_eq!(
            Client::EsdkWorkflow.run(&env, T1, &["lifecycle", "obs-rules", "read"]),
            obs_listed,
            "{rule}"
        );
    }
    // Without its rules the bucket keeps what is left.
    let deleted = lifecycle("delete");
    assert_eq!(
        deleted,
        serde_json::json!({
            "delete": "ok",
            "read": "NoSuchLifecycleConfiguration",
            "state": {"listed": ["keep/k", "size/big", "tmp/u"], "uploads": ["other/u"]},
        })
    );
    advance("30d");
    assert_eq!(
        lifecycle("read"),
        serde_json::json!({"listed": ["keep/k", "size/big", "tmp/u"], "uploads": ["other/u"]})
    );
}

/// s3cmd (PyPI's, unmodified), in SigV4 and in V2, as people use it: an SSE-KMS upload of a
/// 20 MiB file (multipart) under the tenant's OBS key reads back whole and reports SSE-KMS;
/// `modify` (a copy onto itself that sends back the headers a HEAD answered) and `sync` with
/// `--delete-removed` work, `expire` sets a lifecycle rule that `getlifecycle` reads back, and
/// no plaintext reaches the disk. Found with it: V2's `x-amz-date` in RFC 2822 form (`+0000`)
/// was refused, and so were the request IDs `modify` sends back unsigned.
#[test]
fn s3cmd_uploads_modifies_syncs_and_sets_lifecycle_in_both_signatures() {
    static S3CMD: OnceLock<PathBuf> = OnceLock::new();
    let python = S3CMD
        .get_or_init(|| {
            let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("obs-s3cmd");
            venv_python(&venv, &["s3cmd==2.4.0"])
        })
        .clone();
    let s3cmd_bin = python.with_file_name("s3cmd");
    let env = Env::start(&[]);
    let key_id = env.kmsctl(DOMAIN_1, &["get-default-key", "obs"])["key_id"]
        .as_str()
        .expect("the default key's ID")
        .to_owned();
    let body = marked("S3CMD", 20 * 1024 * 1024 + 7);
    let src = env.file("s3cmd.src", &body);
    let tree = env.dir.path().join("tree");
    std::fs::create_dir_all(tree.join("a")).expect("tree");
    for name in ["one", "two", "three"] {
        std::fs::write(tree.join("a").join(name), name).expect("tree file");
    }
    let endpoint = env.endpoint().trim_start_matches("http://").to_owned();
    for (signature, v2) in [("v4", "False"), ("v2", "True")] {
        let config = env.file(
            &format!("s3cfg-{signature}"),
            format!(
                "[default]\naccess_key = {}\nsecret_key = {}\nhost_base = {endpoint}\nhost_bucket = {endpoint}\nuse_https = False\nsignature_v2 = {v2}\nbucket_location = us-east-1\n",
                T1.0, T1.1
            )
            .as_bytes(),
        );
        let run = |args: &[&str]| -> String {
            let out = Command::new(&s3cmd_bin)
                .args(["-c", &config])
                .args(args)
                .output()
                .expect("s3cmd runs");
            assert!(
                out.status.success(),
                "s3cmd {signature} {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let bucket = format!("s3cmd-{signature}");
        let url = |key: &str| format!("s3://{bucket}/{key}");
        run(&["mb", &url("")]);
        let kms = format!("--server-side-encryption-kms-id={key_id}");
        run(&["put", &src, &url("big.bin"), &kms]);
        let info = run(&["info", &url("big.bin")]);
        assert!(info.contains("SSE:       aws:kms"), "{signature}: {info}");
        let out = env.out(&format!("s3cmd-{signature}.out"));
        run(&["get", &url("big.bin"), &out, "--force"]);
        assert!(std::fs::read(&out).expect("out") == body, "{signature}");
        let head = Client::Boto3SigV4.run(&env, T1, &["head", &bucket, "big.bin"]);
        assert!(
            head["headers"]["etag"]
                .as_str()
                .is_some_and(|e| e.contains('-')),
            "{signature}: a multipart upload: {head}"
        );
        run(&[
            "modify",
            &url("big.bin"),
            "--add-header=Cache-Control:no-cache",
        ]);
        let head = Client::Boto3SigV4.run(&env, T1, &["head", &bucket, "big.bin"]);
        assert_eq!(
            head["headers"]["cache-control"], "no-cache",
            "{signature}: {head}"
        );
        assert_eq!(
            Client::Boto3SigV4.sse(&head),
            ("aws:kms".to_owned(), key_id.clone()),
            "{signature}: modify keeps SSE-KMS"
        );
        let tree_arg = format!("{}/", tree.display());
        run(&["sync", &tree_arg, &url("tree/")]);
        std::fs::remove_file(tree.join("a").join("two")).expect("remove");
        run(&["sync", &tree_arg, &url("tree/"), "--delete-removed"]);
        std::fs::write(tree.join("a").join("two"), "two").expect("put back");
        let listed = run(&["ls", "-r", &url("")]);
        let keys: Vec<&str> = listed
            .lines()
            .filter_map(|l| l.split_whitespace().last())
            .collect();
        assert_eq!(
            keys,
            [url("big.bin"), url("tree/a/one"), url("tree/a/three")],
            "{signature}: {listed}"
        );
        run(&[
            "expire",
            &url(""),
            "--expiry-days=3",
            "--expiry-prefix=logs/",
        ]);
        let rules = run(&["getlifecycle", &url("")]);
        assert!(
            rules.contains("<Prefix>logs/</Prefix>") && rules.contains("<Days>3</Days>"),
            "{signature}: {rules}"
        );
        run(&["del", "--recursive", "--force", &url("")]);
        run(&["rb", &url("")]);
    }
    assert_eq!(
        files_containing(&env.data(), b"S3CMD plaintext"),
        Vec::<PathBuf>::new()
    );
}

/// A bucket policy written as S3's documents write it (`Principal` `{"AWS": "*"}`, `s3:`
/// actions, `arn:aws:s3:::` resources, `s3:x-amz-server-side-encryption` = `aws:kms`) was
/// refused as malformed; it now reads as the same OBS rules (obs-adapter rule 8): uploads under
/// the prefix it protects need SSE-KMS, everyone may read the prefix it opens, and another
/// tenant still reads no SSE-KMS object (rule 9). boto3 in SigV4 and V2.
#[test]
fn an_s3_spelled_bucket_policy_is_kept_and_enforced() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::Boto3SigV4, "s3-policy-v4"),
        (Client::Boto3SigV2, "s3-policy-v2"),
    ] {
        let seen = client.run(&env, T1, &["s3-policy", bucket, T2.0, T2.1]);
        let want = serde_json::json!({
            "put_policy": "ok",
            "read_back": true,
            "public": true,
            "secure_plain": "AccessDenied",
            "secure_kms": "ok",
            "public_plain": "ok",
            "other_reads_public": "ok",
            "other_reads_secure": "AccessDenied",
            "left": ["public/p", "secure/kms"],
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// restic (Debian's package, unmodified; minio-go underneath), the backup tool many people point
/// at an S3 bucket, against a bucket whose default encryption is SSE-KMS: a repository is made,
/// backed up twice, checked with every pack read back, restored byte for byte, pruned to one
/// snapshot and checked again; every object of the repository is stored under SSE-KMS.
#[test]
fn restic_backs_up_restores_and_prunes_on_an_sse_kms_bucket() {
    debian_tool("restic", "restic", "version");
    let env = Env::start(&[]);
    let bucket = "restic-repo";
    Client::Boto3SigV4.run(&env, T1, &["create-bucket", bucket]);
    let enc = Client::Boto3SigV4.run(&env, T1, &["put-encryption", bucket, "-"]);
    assert_eq!(status(&enc), 200, "{enc}");
    let src = PathBuf::from(env.out("restic-src"));
    std::fs::create_dir_all(src.join("sub")).expect("mkdir");
    std::fs::write(src.join("sub/big"), marked("RESTIC", 3_000_000)).expect("write");
    for i in 0..40 {
        std::fs::write(src.join(format!("f{i}")), format!("file {i}\n")).expect("write");
    }
    let repo = format!("s3:{}/{bucket}", env.endpoint());
    let restic = |args: &[&str]| -> String {
        let out = Command::new("restic")
            .args(["-r", &repo, "--no-cache"])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", T1.0)
            .env("AWS_SECRET_ACCESS_KEY", T1.1)
            .env("RESTIC_PASSWORD", "a test repository's password")
            .output()
            .expect("restic runs");
        assert!(
            out.status.success(),
            "restic {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let snapshots = |restic: &dyn Fn(&[&str]) -> String| -> usize {
        let listed: Value = serde_json::from_str(&restic(&["snapshots", "--json"])).expect("json");
        listed.as_array().map_or(0, Vec::len)
    };
    let src_arg = src.to_string_lossy().into_owned();
    restic(&["init"]);
    restic(&["backup", &src_arg]);
    std::fs::write(src.join("f1"), "changed\n").expect("write");
    restic(&["backup", &src_arg]);
    assert_eq!(snapshots(&restic), 2);
    assert!(restic(&["check", "--read-data"]).contains("no errors were found"));
    let target = env.out("restic-restored");
    restic(&["restore", "latest", "--target", &target]);
    let restored = Path::new(&target).join(src.strip_prefix("/").expect("absolute"));
    for name in ["sub/big", "f1", "f39"] {
        assert_eq!(
            std::fs::read(restored.join(name)).expect("restored"),
            std::fs::read(src.join(name)).expect("source"),
            "{name}"
        );
    }
    restic(&["forget", "--keep-last", "1", "--prune"]);
    assert!(restic(&["check"]).contains("no errors were found"));
    assert_eq!(snapshots(&restic), 1);
    let listed = Client::Boto3SigV4.run(&env, T1, &["list", bucket]);
    let keys: Vec<String> = serde_json::from_value(listed["keys"].clone()).expect("keys");
    assert!(keys.iter().any(|k| k.starts_with("data/")), "{keys:?}");
    assert!(keys.contains(&"config".to_owned()), "{keys:?}");
    for key in &keys {
        let head = Client::Boto3SigV4.run(&env, T1, &["head", bucket, key]);
        assert_eq!(
            head["headers"]["x-amz-server-side-encryption"], "aws:kms",
            "{key}: {head}"
        );
    }
}

/// rclone (Debian's package, unmodified), the S3 client many people sync with: a multipart upload
/// (5 MiB parts, four at once) plain and with SSE-KMS reads back whole, a server-side copy and a
/// move work, and nothing of the plaintext reaches the disk. Found with it: its completion
/// document, written by Go's `encoding/xml`, quotes ETags as `&#34;`, which the gateway did not
/// read, so every multipart upload failed with `InvalidPart`. Its versions commands work on a
/// versioned bucket.
#[test]
fn rclone_uploads_copies_and_moves_multipart_objects() {
    debian_tool("rclone", "rclone", "version");
    let env = Env::start(&[]);
    let config = env.file(
        "rclone.conf",
        format!(
            "[gw]\ntype = s3\nprovider = Other\naccess_key_id = {}\nsecret_access_key = {}\nendpoint = {}\nregion = us-east-1\n",
            T1.0,
            T1.1,
            env.endpoint()
        )
        .as_bytes(),
    );
    let run = |args: &[&str]| -> String {
        let out = Command::new("rclone")
            .args([
                "--config",
                &config,
                "--retries",
                "1",
                "--low-level-retries",
                "1",
            ])
            .args(args)
            // rclone 1.60 cannot build its HTTP client with a CA bundle set for AWS SDKs.
            .env_remove("AWS_CA_BUNDLE")
            .output()
            .expect("rclone runs");
        assert!(
            out.status.success(),
            "rclone {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let body = marked("RCLONE", 17 * 1024 * 1024 + 11);
    let src = env.file("rclone.src", &body);
    let parts = ["--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M"];
    run(&["mkdir", "gw:rclone-bucket"]);
    run(&[&["copyto", &src, "gw:rclone-bucket/plain.bin"], &parts[..]].concat());
    run(&[
        &["copyto", &src, "gw:rclone-bucket/kms.bin"],
        &parts[..],
        &["--s3-server-side-encryption", "aws:kms"],
    ]
    .concat());
    for key in ["plain.bin", "kms.bin"] {
        let head = Client::Boto3SigV4.run(&env, T1, &["head", "rclone-bucket", key]);
        assert!(
            head["headers"]["etag"]
                .as_str()
                .is_some_and(|e| e.ends_with("-4\"")),
            "{key}: four parts: {head}"
        );
        let out = env.out(&format!("rclone-{key}"));
        run(&["copyto", &format!("gw:rclone-bucket/{key}"), &out]);
        assert!(std::fs::read(&out).expect("out") == body, "{key}");
    }
    let head = Client::Boto3SigV4.run(&env, T1, &["head", "rclone-bucket", "kms.bin"]);
    assert_eq!(
        head["headers"]["x-amz-server-side-encryption"], "aws:kms",
        "{head}"
    );
    run(&[
        "copyto",
        "gw:rclone-bucket/kms.bin",
        "gw:rclone-bucket/copy.bin",
    ]);
    run(&[
        "moveto",
        "gw:rclone-bucket/plain.bin",
        "gw:rclone-bucket/moved.bin",
    ]);
    let listed = run(&["lsf", "gw:rclone-bucket"]);
    assert_eq!(listed, "copy.bin\nkms.bin\nmoved.bin\n");
    let out = env.out("rclone-copy");
    run(&["copyto", "gw:rclone-bucket/copy.bin", &out]);
    assert!(std::fs::read(&out).expect("out") == body, "the copy");
    // rclone's server-side copy asks for no encryption: the copy is stored as asked, in
    // plaintext, as S3 stores a copy without SSE parameters in a bucket without a default.
    let head = Client::Boto3SigV4.run(&env, T1, &["head", "rclone-bucket", "copy.bin"]);
    assert_eq!(
        head["headers"]["x-amz-server-side-encryption"],
        Value::Null,
        "{head}"
    );
    run(&["delete", "gw:rclone-bucket/kms.bin"]);
    assert_eq!(
        files_containing(&env.data(), b"RCLONE plaintext").len(),
        2,
        "only the plaintext objects moved.bin and copy.bin hold it"
    );
    // Versions: rclone's `backend versioning`, `--s3-versions` (old versions listed and read
    // under a name with their time), a delete's marker, and `backend cleanup-hidden`, which
    // removes every old version and marker so that the bucket can go.
    let b = "gw:rclone-versions";
    run(&["mkdir", b]);
    assert_eq!(run(&["backend", "versioning", b]), "Unversioned\n");
    assert_eq!(run(&["backend", "versioning", b, "Enabled"]), "Enabled\n");
    for body in ["one\n", "two\n"] {
        let src = env.file("rclone.version", body.as_bytes());
        run(&[
            "copyto",
            "--s3-server-side-encryption",
            "aws:kms",
            &src,
            &format!("{b}/f.txt"),
        ]);
        // rclone names an old version by its time, to the millisecond.
        std::thread::sleep(Duration::from_millis(5));
    }
    let versions = run(&["lsf", "--s3-versions", b]);
    let names: Vec<&str> = versions.lines().collect();
    assert_eq!(names.len(), 2, "{versions}");
    assert!(
        names[0].starts_with("f-v") && names[1] == "f.txt",
        "{versions}"
    );
    assert_eq!(run(&["cat", &format!("{b}/f.txt")]), "two\n");
    assert_eq!(
        run(&["cat", "--s3-versions", &format!("{b}/{}", names[0])]),
        "one\n"
    );
    run(&["delete", &format!("{b}/f.txt")]);
    assert_eq!(
        run(&["lsf", b]),
        "",
        "the current version is a delete marker"
    );
    assert_eq!(run(&["lsf", "--s3-versions", b]).lines().count(), 2);
    run(&["backend", "cleanup-hidden", b]);
    assert_eq!(run(&["lsf", "--s3-versions", b]), "");
    run(&["rmdir", b]);
}

/// Bucket versioning (was 501 when enabled) as S3 and OBS keep it: each write makes a version
/// (an SSE-KMS one stays readable once replaced), a delete adds a delete marker (a read then
/// answers 404 NoSuchKey marked as one; the marker named is 405), versions are read, copied
/// and removed by ID (the next newest becoming current), suspension writes the `null` version,
/// listings of versions page by key and version, a bucket with versions is not empty until
/// boto3's resource API removes them all. MFA delete stays 501, another tenant gets 403, a
/// malformed ID 400 and an unknown one NoSuchVersion; tags are kept per version, and every
/// version's ACL is its owner's alone. The `null` version is answered as `null` once the
/// bucket has had versioning (S3's rule), a bucket that never had it answers no version ID.
/// boto3 in SigV4 and V2, the OBS SDK in its three modes.
#[test]
fn versioning_keeps_every_version_and_delete_markers() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::Boto3SigV4, "versioned-v4"),
        (Client::Boto3SigV2, "versioned-v2"),
    ] {
        let seen = client.run(&env, T1, &["versioning", bucket, T2.0, T2.1]);
        let want = serde_json::json!({
            "before": null,
            "enable": "ok",
            "after": "Enabled",
            "mfa": "NotImplemented",
            "other_tenant": "AccessDenied",
            "still": "Enabled",
            "puts": ["v1", "v2"],
            "current": ["two!", "v2"],
            "by_id": ["one", "v1"],
            "head_by_id": "v1",
            "unknown_version": [404, "NoSuchVersion", null, null],
            "malformed_version": [400, "InvalidArgument", null, null],
            "tag_current_by_id": "ok",
            "tag_noncurrent": "ok",
            "tags_by_version": [[["a", "b"]], [["v", "1"]]],
            "acl_noncurrent": "ok",
            "delete": [true, "v3"],
            "get_after_delete": [404, "NoSuchKey", "true", "v3"],
            "get_marker": [405, "MethodNotAllowed", "true", "v3"],
            "head_marker": [405, "405", "true", "v3"],
            "listed_objects": [],
            "versions": [
                ["version", "k", "v2", false, 4],
                ["version", "k", "v1", false, 3],
                ["marker", "k", "v3", true],
            ],
            "copy_of_v1": ["v1", "one"],
            "part_copy_of_v1": ["v1", "one"],
            "copy_of_marker": "InvalidRequest",
            "copy_of_deleted": "NoSuchKey",
            "remove_marker": [true, "v3"],
            "after_marker_removed": ["two!", "v2"],
            "after_v2_removed": ["one", "v1"],
            "other_tenant_reads_version": "AccessDenied",
            "public_reads": ["ok", "AccessDenied", "AccessDenied"],
            "multipart_version": true,
            "form_version": [204, true],
            "suspend": "ok",
            "unversioned": [null, null, null, null],
            "suspended_put": "null",
            "null_version": ["four", "null"],
            "null_version_answers": ["null", "null", "null", "null"],
            "suspended_versions": [
                ["version", "k", "null", true, 4],
                ["version", "k", "v1", false, 3],
            ],
            "paged": [
                ["big", "v5"],
                ["copy", "v4"],
                ["form", "v6"],
                ["k", "null"],
                ["k", "v1"],
                ["p/1", "null"],
                ["part-of-v1", "v7"]
            ],
            "batch": [["copy", null, true], ["k", "v1", false]],
            "batch_errors": [["k", "InvalidArgument"]],
            "noncurrent_rules_read_back": true,
            "delete_bucket_with_versions": "BucketNotEmpty",
            "left": [],
            "delete_bucket": "ok",
        });
        assert_eq!(seen, want, "{client:?}");
    }
    for (client, bucket) in [
        (Client::EsdkWorkflow, "versioned-obs"),
        (Client::EsdkDefault, "versioned-default"),
        (Client::EsdkV4, "versioned-sdk-v4"),
    ] {
        let seen = client.run(&env, T1, &["versioning", bucket]);
        let want = serde_json::json!({
            "before": null,
            "enable": "ok",
            "after": "Enabled",
            "puts": ["v1", "v2"],
            "current": ["two!", "v2"],
            "by_id": ["one", "v1"],
            "head_by_id": "v1",
            "delete": [true, "v3"],
            "get_after_delete": [404, "NoSuchKey"],
            "get_marker": [405, "MethodNotAllowed"],
            "versions": [
                ["version", "k", "v2", false],
                ["version", "k", "v1", false],
                ["marker", "k", "v3", true],
            ],
            "remove_marker": [true, "v3"],
            "after_marker_removed": ["two!", "v2"],
            "suspend": "ok",
            "still": "Suspended",
            "null_version": ["three", "null"],
            "left": [],
            "delete_bucket": "ok",
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// Object Lock (was 501) as S3 keeps it, with boto3 in SigV4 and V2: a bucket made with it has
/// versioning for good; its default retention (GOVERNANCE, a day) applies to a PUT without one;
/// a PUT's COMPLIANCE retention and legal hold are answered by HEAD and by their own calls; a
/// held or retained version is not removed (403), a delete naming no version still adds a
/// marker, COMPLIANCE is only lengthened, GOVERNANCE gives way to a caller that bypasses it. A
/// lock on a bucket without it is 400; a multipart upload's and a copy's are kept.
/// The OBS SDK's WORM calls in its three modes.
#[test]
fn object_lock_keeps_versions_from_deletion() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::Boto3SigV4, "locked-v4"),
        (Client::Boto3SigV2, "locked-v2"),
    ] {
        let seen = client.run(&env, T1, &["object-lock", bucket]);
        let want = serde_json::json!({
            "lock_on_plain_bucket": "InvalidRequest",
            "config_needs_versioning": "InvalidBucketState",
            "no_config": "ObjectLockConfigurationNotFoundError",
            "versioning": "Enabled",
            "suspend": "InvalidBucketState",
            "config": true,
            "default_retention": ["GOVERNANCE", true],
            "headers": ["COMPLIANCE", true, "ON"],
            "retention": ["COMPLIANCE", true],
            "legal_hold": "ON",
            "legal_hold_lifted": "OFF",
            "legal_hold_never_set": "NoSuchObjectLockConfiguration",
            "legal_hold_read": {"kept": ["OFF", "OFF"], "default": [null, null]},
            "delete_held": "AccessDenied",
            "delete_compliance": "AccessDenied",
            "shorten_compliance": "AccessDenied",
            "lengthen_compliance": "ok",
            "delete_marker_allowed": true,
            "delete_governance": "AccessDenied",
            "delete_governance_bypassed": "ok",
            "past_date": "InvalidArgument",
            "mode_without_date": "InvalidArgument",
            "event_hold": "NotImplemented",
            "form_with_lock": 501,
            "multipart_with_lock": ["GOVERNANCE", true],
            "copy_with_lock": ["GOVERNANCE", "ON"],
            "batch": [["kept", "AccessDenied"]],
            "bucket_delete": "BucketNotEmpty",
        });
        assert_eq!(seen, want, "{client:?}");
    }
    // The OBS SDK's WORM calls, whose retain-until date is OBS's milliseconds.
    for (client, bucket) in [
        (Client::EsdkWorkflow, "locked-obs"),
        (Client::EsdkDefault, "locked-default"),
        (Client::EsdkV4, "locked-sdk-v4"),
    ] {
        let seen = client.run(&env, T1, &["object-lock", bucket]);
        let want = serde_json::json!({
            "before_versioning": "InvalidBucketState",
            "versioning": "ok",
            "lock": "ok",
            "read_back": ["Enabled", "1", "COMPLIANCE"],
            "retention": "ok",
            "shorter": "AccessDenied",
            "delete_version": "AccessDenied",
            "delete_marker": true,
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// `x-amz-website-redirect-location` was dropped on a PUT: it is now kept with the object (as
/// S3 keeps it, website or not) and answered by HEAD and GET, from a PUT, an initiated
/// multipart upload and a form; a copy does not carry its source's (as S3) but takes its own;
/// a value that is neither a path nor an http(s) URL is 400 `InvalidRedirectLocation` and
/// stores nothing. boto3 in SigV4 and V2.
#[test]
fn a_website_redirect_is_kept_with_its_object() {
    let env = Env::start(&[]);
    for (client, bucket) in [
        (Client::Boto3SigV4, "redirect-v4"),
        (Client::Boto3SigV2, "redirect-v2"),
    ] {
        let seen = client.run(&env, T1, &["website-redirect", bucket]);
        let want = serde_json::json!({
            "put": "/next.html",
            "copy": null,
            "copy-given": "https://example.com/",
            "mp": "/mp.html",
            "form": "/form.html",
            "malformed": "InvalidRedirectLocation",
            "left": ["copy", "copy-given", "form", "mp", "put"],
        });
        assert_eq!(seen, want, "{client:?}");
    }
}

/// MinIO's Python SDK (`minio` 7.2.20 from PyPI), which many S3 applications use: small and
/// multipart objects, plain and SSE-KMS (its `SseKMS`), read whole and across a part boundary,
/// stat, copy and compose (UploadPartCopy) server-side, object tags, a presigned GET, a lifecycle
/// rule, both listing versions, a batch delete and the bucket's removal, all as S3 answers them;
/// no plaintext of an SSE-KMS object on disk. Then versioning: objects read by version, listed
/// with their delete marker, removed by version.
#[test]
fn the_minio_sdk_stores_reads_copies_and_removes_sse_kms_objects() {
    static MINIO: OnceLock<PathBuf> = OnceLock::new();
    let python = MINIO
        .get_or_init(|| {
            let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("obs-minio");
            venv_python(&venv, &["minio==7.2.20"])
        })
        .clone();
    let env = Env::start(&[]);
    let key_id = env.kmsctl(DOMAIN_1, &["get-default-key", "obs"])["key_id"]
        .as_str()
        .expect("the default key's ID")
        .to_owned();
    let out = run_script(
        &python,
        "obs_minio.py",
        &[env.endpoint(), T1.0, T1.1, "minio-bucket", &key_id],
    );
    let seen: Value = serde_json::from_str(out.trim()).expect("json");
    let names = serde_json::json!(["big", "big-kms", "composed", "copy", "small", "small-kms"]);
    assert_eq!(
        seen,
        serde_json::json!({
            "exists": true,
            "multipart_etags": ["-3", "-3"],
            // Eight bytes across the first part boundary: 5 MiB - 3 is 17 bytes into a line.
            "reads": ["secret", true, "ine\nmini"],
            "stat": [true, "aws:kms", true],
            "copies": ["secret", true, "aws:kms"],
            "tags": {"team": "storage"},
            "presigned": "hello",
            "lifecycle": [["logs", "logs/", 3]],
            "listed": [names, names],
            "remove_errors": [],
            "exists_after": false,
            "versioning": "Enabled",
            "version_reads": ["one", 3, true],
            // minio-py lists the Version elements, then the DeleteMarker ones.
            "versions_listed": [
                ["k", "second", false, "false"],
                ["k", "first", false, "false"],
                ["k", "marker", true, "true"],
            ],
            "versions_removed": [],
        })
    );
    assert_eq!(
        files_containing(&env.data(), b"minio plaintext"),
        Vec::<PathBuf>::new()
    );
}
