//! Real Python clients for the wire-compatibility tests: a virtual environment per client set,
//! created under the build's target folder and filled from PyPI with pinned versions. A client
//! that cannot be installed fails the test that needs it; nothing is skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Creates (once) the virtual environment `venv` and installs `requirements` into it (pip makes
/// this a no-op when they are already there); returns its `python`.
///
/// Call it once per test binary (behind a `OnceLock`): two processes filling one environment at
/// once would race, so each client set gets its own folder.
///
/// # Panics
/// When `python3` is missing or pip cannot install a requirement.
pub fn venv_python(venv: &Path, requirements: &[&str]) -> PathBuf {
    let python = venv.join("bin").join("python");
    if !python.exists() {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(venv)
            .status()
            .expect("python3 runs (the tests need Python 3)")
            .success();
        assert!(
            ok,
            "creating the virtual environment {} failed",
            venv.display()
        );
    }
    let ok = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(requirements)
        .status()
        .expect("pip runs")
        .success();
    assert!(ok, "installing {requirements:?} from PyPI failed");
    python
}

/// Runs `script` (a file under `tests/python/`) with `args`, and returns its standard output;
/// panics with its standard error when it fails.
pub fn run_script(python: &Path, script: &str, args: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(script);
    let out = Command::new(python)
        .arg(&path)
        .args(args)
        .output()
        .expect("the script runs");
    assert!(
        out.status.success(),
        "{script} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
