//! Hardening of the data folder (issue 9), against the real `kms-server` binary: one daemon per
//! data folder, the store and the root key knowing each other, file modes, a second signal.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Path of the `kms-server` binary, built once per test run.
fn bin() -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "-q", "-p", "kms-server", "--bins"])
            .status()
            .expect("cargo runs")
            .success();
        assert!(ok, "building the kms-server binary failed");
    });
    let exe = std::env::current_exe().expect("test exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("kms-server")
}

fn command(data_dir: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env("RUST_LOG", "warn");
    c
}

/// A running `kms-server` child process.
struct Daemon {
    child: Child,
    #[allow(dead_code, reason = "used by the signal test")]
    endpoint: String,
}

impl Daemon {
    fn spawn(data_dir: &Path, extra: &[&str]) -> Self {
        let mut child = command(data_dir, extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("kms-server starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reads the banner");
        let addr = line
            .trim()
            .strip_prefix("kms-server listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected banner {line:?}"))
            .to_owned();
        Self {
            child,
            endpoint: format!("http://{addr}"),
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill {sig}");
    }

    fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s;
            }
            assert!(
                start.elapsed() < limit,
                "daemon did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, and waits for the graceful exit.
    fn stop(mut self) {
        self.signal("-TERM");
        let s = self.wait_exit(Duration::from_secs(30));
        assert!(s.success(), "{s:?}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the daemon expecting it to refuse to start; returns its standard error.
fn refused(data_dir: &Path, extra: &[&str]) -> String {
    let mut child = command(data_dir, extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kms-server starts");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "kms-server did not refuse to start: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!status.success(), "exit {status:?}; stderr {stderr}");
    assert!(
        !stdout.contains("listening"),
        "it started: {stdout}; {stderr}"
    );
    stderr
}

#[test]
fn a_second_daemon_on_the_same_data_folder_refuses_to_start_and_names_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let first = Daemon::spawn(dir.path(), &[]);
    let err = refused(dir.path(), &[]);
    assert!(err.contains("in use by another kms-server"), "{err}");
    assert!(
        err.contains(&format!("(PID {})", first.child.id())),
        "{err}"
    );
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
    // The first daemon is unharmed, and once it is gone the folder is free again.
    first.stop();
    Daemon::spawn(dir.path(), &[]).stop();
}
