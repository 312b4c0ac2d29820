//! Seal or open standard input to standard output with a local KEK, in constant memory:
//! `pipe seal KEKFILE < plain > sealed`, `pipe open KEKFILE < sealed > plain`. KEKFILE holds 32
//! raw bytes. A demonstration of the library's streaming API (the real CLI is `kmsctl`).

use envelope::{Backend, Error, LocalKek, ObjectContext};
use std::io::{self, BufWriter};

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let (mode, kek_file) = match args.as_slice() {
        [_, mode, file] => (mode.as_str(), file.as_str()),
        _ => {
            eprintln!("usage: pipe seal|open KEKFILE");
            std::process::exit(2);
        }
    };
    let kek = LocalKek::aes_kw("pipe-kek", &std::fs::read(kek_file)?)?;
    let ctx = ObjectContext::new().with("purpose", "pipe-example")?;
    let stdin = io::stdin().lock();
    let stdout = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    let n = match mode {
        "seal" => envelope::seal(&kek, "pipe-kek", &ctx, stdin, stdout, Backend::default())?,
        "open" => envelope::open(&kek, &ctx, stdin, stdout, Backend::default())?,
        _ => {
            eprintln!("usage: pipe seal|open KEKFILE");
            std::process::exit(2);
        }
    };
    eprintln!("{mode}: {n} plaintext bytes");
    Ok(())
}
