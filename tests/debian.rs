//! Debian packages the tests install when a client or server they drive is absent: nothing is
//! skipped, so without root (or without the package) the test fails and says what to install.

use std::process::Command;
use std::sync::OnceLock;

/// Whether the tests run as root (and so may install packages).
pub fn as_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
    })
}

/// Installs Debian's `package` with apt-get (refreshing the package lists once if the first
/// try fails).
///
/// # Panics
/// When the tests do not run as root, or apt-get fails: `what` names what was missing.
pub fn install(package: &str, what: &str) {
    // One apt-get at a time: two tests of one binary installing at once would race for dpkg's lock.
    static APT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = APT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    assert!(
        as_root(),
        "{what} is not installed and the tests do not run as root to install it: install \
         Debian's `{package}` package"
    );
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    let ok = apt(&["install", "-y", "-q", package])
        || (apt(&["update", "-q"]) && apt(&["install", "-y", "-q", package]));
    assert!(ok, "apt-get install {package} failed");
}
