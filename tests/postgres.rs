//! A throwaway PostgreSQL server for the fleet tests: `initdb` into a temporary folder, trust
//! authentication, a free loopback port, stopped when dropped.
//!
//! The server binaries are taken from `/usr/lib/postgresql/<newest>/bin`, else from `pg_config
//! --bindir` on `PATH`; when neither exists and the tests run as root (CI's fresh Debian machine),
//! `apt-get install -y postgresql` installs them. Nothing is skipped: when PostgreSQL cannot be
//! started, the test that asked for it fails, saying why.
//!
//! PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user (which the
//! Debian package creates) through `runuser`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A PostgreSQL server of its own, on loopback, for one test.
pub struct PgServer {
    bin: PathBuf,
    /// Holds the cluster's folder; removed on drop.
    dir: tempfile::TempDir,
    port: u16,
    running: bool,
}

impl PgServer {
    /// Initialises a cluster in a temporary folder and starts it on a free loopback port.
    ///
    /// # Panics
    /// When PostgreSQL cannot be found, installed or started: the fleet tests never skip.
    pub fn start() -> Self {
        let bin = server_bin_dir().clone();
        let dir = tempfile::tempdir().expect("temp dir");
        let pgdata = dir.path().join("pgdata");
        std::fs::create_dir(&pgdata).expect("cluster folder");
        if crate::debian::as_root() {
            // The `postgres` user must reach the folder and own the cluster.
            set_mode(dir.path(), 0o755);
            let (uid, gid) = postgres_ids();
            std::os::unix::fs::chown(&pgdata, Some(uid), Some(gid)).expect("chown cluster folder");
        }
        let out = run_as_server_user(
            Command::new(bin.join("initdb"))
                .args([
                    "--auth=trust",
                    "--username=postgres",
                    "--encoding=UTF8",
                    "-D",
                ])
                .arg(&pgdata),
        );
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pg = Self {
            bin,
            dir,
            port: free_port(),
            running: false,
        };
        pg.start_again();
        pg
    }

    fn pgdata(&self) -> PathBuf {
        self.dir.path().join("pgdata")
    }

    /// The connection URL of the `postgres` database, as `--store` takes it.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?connect_timeout=2",
            self.port
        )
    }

    /// The port it listens on (the same across [`Self::stop`] and [`Self::start_again`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts the stopped server again on its port, waiting until it accepts connections.
    ///
    /// # Panics
    /// When it does not start.
    pub fn start_again(&mut self) {
        let pgdata = self.pgdata();
        let log = self.dir.path().join("server.log");
        if crate::debian::as_root() && !log.exists() {
            std::fs::write(&log, b"").expect("log file");
            let (uid, gid) = postgres_ids();
            std::os::unix::fs::chown(&log, Some(uid), Some(gid)).expect("chown log");
        }
        // The Unix socket goes in the cluster folder: /var/run/postgresql may not exist.
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=200",
            self.port,
            pgdata.display()
        );
        let out = run_as_server_user(
            Command::new(self.bin.join("pg_ctl"))
                .args(["-w", "-t", "60", "-D"])
                .arg(&pgdata)
                .arg("-l")
                .arg(&log)
                .args(["-o", &opts, "start"]),
        );
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        self.running = true;
        let until = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < until, "PostgreSQL does not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (fast shutdown: open connections are closed), keeping its data.
    pub fn stop(&mut self) {
        self.pg_ctl_stop("fast");
    }

    fn pg_ctl_stop(&mut self, mode: &str) {
        if !self.running {
            return;
        }
        let out = run_as_server_user(
            Command::new(self.bin.join("pg_ctl"))
                .args(["-w", "-D"])
                .arg(self.pgdata())
                .args(["-m", mode, "stop"]),
        );
        assert!(
            out.status.success(),
            "pg_ctl stop failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.running = false;
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.running {
            let _ = run_as_server_user(
                Command::new(self.bin.join("pg_ctl"))
                    .args(["-w", "-D"])
                    .arg(self.pgdata())
                    .args(["-m", "immediate", "stop"]),
            );
        }
    }
}

fn postgres_ids() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("id runs");
        assert!(
            out.status.success(),
            "running as root, PostgreSQL needs the `postgres` user, which does not exist"
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("numeric id")
    };
    (id("-u"), id("-g"))
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Runs `cmd`, as the `postgres` user when the tests run as root.
fn run_as_server_user(cmd: &mut Command) -> Output {
    let cmd = if crate::debian::as_root() {
        let mut wrapped = Command::new("runuser");
        wrapped
            .args(["-u", "postgres", "--"])
            .arg(cmd.get_program())
            .args(cmd.get_args());
        wrapped.output()
    } else {
        cmd.output()
    };
    cmd.expect("PostgreSQL command runs")
}

/// The folder of `initdb` and `pg_ctl`, installing PostgreSQL once if it is absent.
fn server_bin_dir() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(found) = find_bin_dir() {
            return found;
        }
        crate::debian::install(
            "postgresql",
            "PostgreSQL's server binaries (initdb, pg_ctl)",
        );
        find_bin_dir().expect("initdb and pg_ctl after installing postgresql")
    })
}

fn find_bin_dir() -> Option<PathBuf> {
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").exists() && bin.join("pg_ctl").exists()).then_some((v, bin))
        })
        .collect();
    debian.sort();
    if let Some((_, bin)) = debian.pop() {
        return Some(bin);
    }
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    (out.status.success() && bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .then_some(bin)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free loopback port")
        .port()
}
