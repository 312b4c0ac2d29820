//! `kmsctl seal` and `kmsctl open` over standard input and output: whatever the input's length
//! and however the pipe hands it over, `open` gives back the sealed bytes exactly, and the object
//! kmsctl writes (with the fastest backend of its build) is the format every backend opens.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use envelope::chunked::CHUNK_SIZE;
use envelope::{Backend, LocalKek, ObjectContext};

const KMSCTL: &str = env!("CARGO_BIN_EXE_kmsctl");
const KEK: [u8; 32] = [7u8; 32];

/// Runs kmsctl with `args` in `dir`, writing `input` to its standard input in pieces of `step`
/// bytes (a pipe that delivers little at a time), and returns its standard output.
fn run_piped(dir: &std::path::Path, args: &[&str], input: &[u8], step: usize) -> Vec<u8> {
    let mut child = Command::new(KMSCTL)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kmsctl starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    // A scoped thread feeds the pipe while this one drains the output (both could fill).
    let out = std::thread::scope(|scope| {
        scope.spawn(move || {
            for piece in input.chunks(step.max(1)) {
                stdin.write_all(piece).expect("feed");
                stdin.flush().expect("flush");
            }
        });
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).expect("stdout");
        out
    });
    let status = child.wait().expect("wait");
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("stderr");
    assert!(status.success(), "kmsctl {args:?}: {err}");
    out
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + i / 7).to_le_bytes()[0]).collect()
}

#[test]
fn seal_and_open_through_pipes_round_trip_every_length() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("kek"), KEK).expect("kek");
    let seal = [
        "seal",
        "--local-kek",
        "kek",
        "--key-id",
        "k1",
        "--in",
        "-",
        "--out",
        "-",
    ];
    let open = ["open", "--local-kek", "kek", "--in", "-", "--out", "-"];
    // Around the chunk and around kmsctl's 64-chunk block.
    for n in [
        0,
        1,
        CHUNK_SIZE - 1,
        CHUNK_SIZE,
        CHUNK_SIZE + 1,
        64 * CHUNK_SIZE - 1,
        64 * CHUNK_SIZE,
        64 * CHUNK_SIZE + 1,
        130 * CHUNK_SIZE + 12345,
    ] {
        let plain = data(n);
        for step in [usize::MAX, 65536, 7000] {
            let sealed = run_piped(dir.path(), &seal, &plain, step);
            let opened = run_piped(dir.path(), &open, &sealed, step);
            assert!(opened == plain, "n={n} step={step}: round trip");
            // Every backend of the library opens what kmsctl sealed.
            let kek = LocalKek::aes_kw("k1", &KEK).expect("kek");
            for &backend in Backend::all() {
                let mut got = Vec::new();
                envelope::open(&kek, &ObjectContext::new(), &sealed[..], &mut got, backend)
                    .unwrap_or_else(|e| panic!("n={n} {backend:?}: {e}"));
                assert!(got == plain, "n={n} {backend:?}");
            }
        }
    }
}
