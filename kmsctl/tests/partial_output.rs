//! Issue 17: `kmsctl seal` and `kmsctl open` never leave a partial `--out` file behind.
//!
//! Every case runs the built binary offline (`--local-kek`, no daemon) in a fresh folder and
//! checks the same rule: a failed, interrupted or killed command exits non-zero, creates no file at
//! `--out`, leaves an existing `--out` byte for byte as it was, and leaves no temporary file
//! (except after SIGKILL, where no handler can run: then only a hidden `.<out>.kmsctl-*` file may
//! remain, never a partial `--out`).

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

const KMSCTL: &str = env!("CARGO_BIN_EXE_kmsctl");
/// The plaintext chunk size of the envelope format.
const CHUNK: usize = 16 * 1024;
/// What an existing `--out` holds before a command that must not touch it.
const OLD: &[u8] = b"an existing file that a failed command must leave alone\n";

/// A folder with a KEK, a 200,000-byte plaintext and its sealed form.
struct Fixture {
    dir: tempfile::TempDir,
    plain: Vec<u8>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let plain: Vec<u8> = (0..200_000u32)
            .map(|i| u8::try_from(i % 251).expect("below 251"))
            .collect();
        std::fs::write(dir.path().join("kek"), [7u8; 32]).expect("kek");
        std::fs::write(dir.path().join("plain"), &plain).expect("plain");
        let f = Fixture { dir, plain };
        let out = f.run(&[
            "seal",
            "--local-kek",
            "kek",
            "--in",
            "plain",
            "--out",
            "sealed",
        ]);
        assert!(out.status.success(), "seal: {}", stderr(&out));
        f
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn sealed(&self) -> Vec<u8> {
        std::fs::read(self.path("sealed")).expect("sealed")
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.path(name), bytes).expect("write");
    }

    /// Runs kmsctl in the fixture's folder.
    fn run(&self, args: &[&str]) -> Output {
        Command::new(KMSCTL)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("kmsctl runs")
    }

    fn names(&self) -> BTreeSet<String> {
        std::fs::read_dir(self.dir.path())
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the rule of issue 17 for one failed command: exit status 1, `want` in the message,
/// and the folder exactly as before (so no file at `--out` and no temporary file), with an
/// existing `--out` unchanged.
fn assert_failed_cleanly(f: &Fixture, case: &str, args: &[&str], out_name: &str, want: &str) {
    for existing in [false, true] {
        if existing {
            f.write(out_name, OLD);
        } else {
            let _ = std::fs::remove_file(f.path(out_name));
        }
        let before = f.names();
        let out = f.run(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{case}: {err}");
        assert!(
            err.starts_with("kmsctl: ") && err.contains(want),
            "{case}: wanted {want:?} in {err:?}"
        );
        assert_eq!(f.names(), before, "{case} (existing --out: {existing})");
        if existing {
            assert_eq!(std::fs::read(f.path(out_name)).expect("out"), OLD, "{case}");
        }
    }
}

/// A sealed object with one byte flipped in its middle.
fn tampered(sealed: &[u8]) -> Vec<u8> {
    let mut b = sealed.to_vec();
    let mid = b.len() / 2;
    b[mid] ^= 1;
    b
}

#[test]
fn open_leaves_no_partial_plaintext_for_any_bad_object() {
    let f = Fixture::new();
    let sealed = f.sealed();
    let mut extended = sealed.clone();
    extended.extend_from_slice(&[0u8; 100]);
    let cases: [(&str, Vec<u8>, &str); 6] = [
        (
            "a_tampered_chunk_fails",
            tampered(&sealed),
            "tampered chunk",
        ),
        (
            "a_truncated_object_fails",
            sealed[..sealed.len() - 1000].to_vec(),
            "final chunk",
        ),
        (
            "an_object_cut_inside_the_header_fails",
            sealed[..20].to_vec(),
            "truncated ciphertext",
        ),
        ("an_extended_object_fails", extended, "final chunk"),
        (
            "a_file_that_is_no_envelope_object_fails",
            f.plain.clone(),
            "bad magic",
        ),
        ("an_empty_file_fails", Vec::new(), "truncated ciphertext"),
    ];
    for (case, bytes, want) in cases {
        f.write("input", &bytes);
        let args = [
            "open",
            "--local-kek",
            "kek",
            "--in",
            "input",
            "--out",
            "out",
        ];
        assert_failed_cleanly(&f, case, &args, "out", want);
    }
}

#[test]
fn open_leaves_nothing_when_the_key_or_context_is_wrong() {
    let f = Fixture::new();
    f.write("kek2", &[8u8; 32]);
    f.write("short-kek", &[1u8; 31]);
    let cases: [(&str, Vec<&str>, &str); 4] = [
        (
            "a_missing_kek_file_fails",
            vec!["--local-kek", "no-such-kek"],
            "--local-kek no-such-kek: ",
        ),
        (
            "a_kek_file_of_the_wrong_size_fails",
            vec!["--local-kek", "short-kek"],
            "expected 32 raw bytes or 64 hex digits",
        ),
        (
            "another_kek_fails",
            vec!["--local-kek", "kek2"],
            "wrong key",
        ),
        (
            "another_context_fails",
            vec!["--local-kek", "kek", "--context", "bucket=b"],
            "commitment mismatch",
        ),
    ];
    for (case, extra, want) in cases {
        let mut args = vec!["open", "--in", "sealed", "--out", "out"];
        args.extend(extra);
        assert_failed_cleanly(&f, case, &args, "out", want);
    }
}

#[test]
fn a_range_open_leaves_no_partial_range() {
    let f = Fixture::new();
    let bad = tampered(&f.sealed());
    f.write("input", &bad);
    // The whole object: the tampered chunk lies inside the range, after chunks that authenticate.
    let args = [
        "open",
        "--local-kek",
        "kek",
        "--in",
        "input",
        "--out",
        "out",
        "--range",
        "0-199999",
    ];
    assert_failed_cleanly(
        &f,
        "a_range_over_a_tampered_chunk_fails",
        &args,
        "out",
        "tampered chunk",
    );
    // A range outside the object.
    let args = [
        "open",
        "--local-kek",
        "kek",
        "--in",
        "sealed",
        "--out",
        "out",
        "--range",
        "199999-200000",
    ];
    assert_failed_cleanly(
        &f,
        "a_range_past_the_end_fails",
        &args,
        "out",
        "outside an object",
    );
}

#[test]
fn seal_leaves_nothing_when_it_fails() {
    let f = Fixture::new();
    let cases: [(&str, Vec<&str>, &str); 2] = [
        (
            "sealing_with_a_missing_kek_file_fails",
            vec!["--local-kek", "no-such-kek", "--in", "plain"],
            "--local-kek no-such-kek: ",
        ),
        (
            "sealing_a_missing_input_fails",
            vec!["--local-kek", "kek", "--in", "no-such-input"],
            "--in no-such-input: ",
        ),
    ];
    for (case, extra, want) in cases {
        let mut args = vec!["seal", "--out", "out"];
        args.extend(extra);
        assert_failed_cleanly(&f, case, &args, "out", want);
    }
}

#[test]
fn a_good_object_replaces_an_existing_out_whole_and_privately() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    f.write("out", OLD);
    let before = f.names();
    let out = f.run(&[
        "open",
        "--local-kek",
        "kek",
        "--in",
        "sealed",
        "--out",
        "out",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(f.path("out")).expect("out"), f.plain);
    assert_eq!(f.names(), before, "no temporary file is left");
    let mode = std::fs::metadata(f.path("out"))
        .expect("out")
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the plaintext is readable by its owner only"
    );
    let out = f.run(&[
        "open",
        "--local-kek",
        "kek",
        "--in",
        "sealed",
        "--out",
        "range",
        "--range",
        "16000-17000",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(f.path("range")).expect("range"),
        &f.plain[16000..=17000]
    );
}

#[test]
fn open_to_stdout_exits_non_zero_naming_the_failing_chunk() {
    let f = Fixture::new();
    let sealed = f.sealed();
    f.write("input", &tampered(&sealed));
    let out = f.run(&["open", "--local-kek", "kek", "--in", "input", "--out", "-"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let index: usize = err
        .trim()
        .strip_prefix("kmsctl: tampered chunk ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the message names the chunk: {err:?}"));
    // What came before the failing chunk had authenticated, and is all that was written.
    assert_eq!(out.stdout.len(), index * CHUNK);
    assert_eq!(out.stdout, f.plain[..index * CHUNK]);
}

#[test]
fn open_help_warns_that_stdout_may_hold_chunks_before_a_failure() {
    let out = Command::new(KMSCTL)
        .args(["open", "--help"])
        .output()
        .expect("kmsctl runs");
    let help = String::from_utf8_lossy(&out.stdout).replace('\n', " ");
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        help.contains(
            "the chunks that authenticated before a later chunk fails have already been written"
        ),
        "{help}"
    );
}

/// Waits for `child` to end, at most 20 s.
fn wait_bounded(child: &mut Child) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("kmsctl did not end within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The hidden temporary files of `--out out_name` in `dir`.
fn temp_files(dir: &Path, out_name: &str) -> Vec<PathBuf> {
    let prefix = format!(".{out_name}.kmsctl-");
    std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
        })
        .collect()
}

/// Starts kmsctl with `args` (`--in -`, `--out out_name`) on a pipe that this test holds open,
/// feeds it `feed`, and returns once half a MiB has reached the temporary file: the command is
/// then mid-stream, waiting for more input.
fn mid_stream(
    f: &Fixture,
    args: &[&str],
    out_name: &str,
    feed: &[u8],
) -> (Child, std::process::ChildStdin) {
    let mut child = Command::new(KMSCTL)
        .args(args)
        .current_dir(f.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kmsctl starts");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(feed).expect("feed");
    stdin.flush().expect("flush");
    let start = Instant::now();
    loop {
        let written: u64 = temp_files(f.dir.path(), out_name)
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        if written >= 512 * 1024 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "kmsctl did not write half a MiB within 20 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    (child, stdin)
}

/// `kmsctl seal --in - --out big.sealed`, mid-stream after 1 MiB.
fn seal_mid_stream(f: &Fixture) -> (Child, std::process::ChildStdin) {
    let args = [
        "seal",
        "--local-kek",
        "kek",
        "--in",
        "-",
        "--out",
        "big.sealed",
    ];
    mid_stream(f, &args, "big.sealed", &vec![0x5a; 1 << 20])
}

fn send(child: &Child, signal: &str) {
    let ok = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "kill {signal}");
}

#[test]
fn a_signal_in_the_middle_of_a_seal_leaves_no_file() {
    for (case, signal, status) in [
        ("sigterm_removes_the_temporary_file", "-TERM", 143),
        ("sigint_removes_the_temporary_file", "-INT", 130),
    ] {
        for existing in [false, true] {
            let f = Fixture::new();
            if existing {
                f.write("big.sealed", OLD);
            }
            let before = f.names();
            let (mut child, stdin) = seal_mid_stream(&f);
            send(&child, signal);
            let exit = wait_bounded(&mut child);
            drop(stdin);
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
                .expect("stderr");
            assert_eq!(exit.code(), Some(status), "{case}: {err}");
            assert!(err.contains("interrupted by SIG"), "{case}: {err}");
            assert_eq!(f.names(), before, "{case} (existing --out: {existing})");
            if existing {
                assert_eq!(std::fs::read(f.path("big.sealed")).expect("out"), OLD);
            }
        }
    }
}

#[test]
fn sigterm_in_the_middle_of_an_open_leaves_no_plaintext() {
    let f = Fixture::new();
    f.write("big", &vec![0xa5; 2 << 20]);
    let out = f.run(&[
        "seal",
        "--local-kek",
        "kek",
        "--in",
        "big",
        "--out",
        "big.env",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let sealed = std::fs::read(f.path("big.env")).expect("sealed");
    f.write("big.out", OLD);
    let before = f.names();
    let args = [
        "open",
        "--local-kek",
        "kek",
        "--in",
        "-",
        "--out",
        "big.out",
    ];
    // Half the object: the first MiB of plaintext authenticates and waits for the rest.
    let (mut child, stdin) = mid_stream(&f, &args, "big.out", &sealed[..1 << 20]);
    send(&child, "-TERM");
    let exit = wait_bounded(&mut child);
    drop(stdin);
    assert_eq!(exit.code(), Some(143));
    assert_eq!(f.names(), before);
    assert_eq!(std::fs::read(f.path("big.out")).expect("out"), OLD);
}

/// SIGKILL runs no handler: the hidden temporary file stays (nothing can remove it), but `--out`
/// is never created or changed, because only a complete stream is renamed into place.
#[test]
fn sigkill_in_the_middle_of_a_seal_leaves_out_untouched_and_only_a_hidden_temp_file() {
    for existing in [false, true] {
        let f = Fixture::new();
        if existing {
            f.write("big.sealed", OLD);
        }
        let before = f.names();
        let (mut child, stdin) = seal_mid_stream(&f);
        child.kill().expect("SIGKILL");
        let exit = wait_bounded(&mut child);
        drop(stdin);
        assert_eq!(exit.signal(), Some(9));
        if existing {
            assert_eq!(std::fs::read(f.path("big.sealed")).expect("out"), OLD);
        } else {
            assert!(!f.path("big.sealed").exists(), "no --out after SIGKILL");
        }
        let left: BTreeSet<String> = f.names().difference(&before).cloned().collect();
        assert_eq!(left.len(), 1, "{left:?}");
        assert!(
            left.iter().all(|n| n.starts_with(".big.sealed.kmsctl-")),
            "only the hidden temporary file remains: {left:?}"
        );
    }
}
