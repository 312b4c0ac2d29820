//! A real full disk for the tests of what the daemon does when it cannot write (its audit log):
//! a small tmpfs, mounted by the test (as root) and filled to the last byte.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test's failure"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of 1 MiB mounted on a temporary folder; unmounted when dropped. Fails the test if it
/// cannot be mounted: the fault must be real.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts it.
    pub fn mount() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "this test needs to mount a tmpfs (run as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the file system to the last byte; returns the filler file.
    pub fn fill(&self) -> PathBuf {
        let filler = self.path().join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        for chunk in [65_536, 4_096, 1] {
            let buf = vec![0u8; chunk];
            while matches!(f.write(&buf), Ok(n) if n > 0) {}
        }
        assert!(
            f.write(b"x").is_err(),
            "the tmpfs must be full: the fault was not set up"
        );
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
