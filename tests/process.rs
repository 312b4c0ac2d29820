//! The real binaries as child processes, for the tests that are about the process (signals,
//! `kill -9`, descriptor limits, files on disk).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Path of the `kms-server` or `kmsctl` binary, both built once per test run.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "-q", "-p", "kms-server", "-p", "kmsctl", "--bins"])
            .status()
            .expect("cargo runs")
            .success();
        assert!(ok, "building the kms-server and kmsctl binaries failed");
    });
    // target/<profile>/deps/<this test> -> target/<profile>/<name>
    let exe = std::env::current_exe().expect("test exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join(name)
}

/// `kms-server` on a free loopback port with `data_dir`, then `extra` flags.
pub fn kms_server(data_dir: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(bin("kms-server"));
    c.args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env("RUST_LOG", "warn");
    c
}

/// A running `kms-server` child process; killed when dropped.
#[derive(Debug)]
pub struct Daemon {
    /// The process.
    pub child: Child,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// `http://<addr>`.
    pub endpoint: String,
    /// The line it printed once listening.
    pub banner: String,
}

impl Daemon {
    /// Starts `kms-server` (see [`kms_server()`]) and waits until it listens.
    pub fn spawn(data_dir: &Path, extra: &[&str]) -> Self {
        Self::spawn_command(kms_server(data_dir, extra))
    }

    /// Starts `command`, a `kms-server` however launched (through `sh` for a `ulimit`, say: keep
    /// the daemon's PID with `exec`), and waits for its banner.
    pub fn spawn_command(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("kms-server starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut banner = String::new();
        BufReader::new(stdout)
            .read_line(&mut banner)
            .expect("reads the banner");
        let addr: SocketAddr = banner
            .trim()
            .strip_prefix("kms-server listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected banner {banner:?}"))
            .parse()
            .expect("address");
        Self {
            child,
            addr,
            endpoint: format!("http://{addr}"),
            banner,
        }
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal with `kill` (`sig` as `-TERM`, `-INT`, `-HUP`, `-KILL`).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill {sig}");
    }

    /// SIGTERM, and waits (30 s at most) for a graceful, successful exit.
    pub fn stop(mut self) {
        self.signal("-TERM");
        let s = self.wait_exit(Duration::from_secs(30));
        assert!(s.success(), "{s:?}");
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
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
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
