//! `kmsctl seal` and `kmsctl open`: envelope encryption of files and pipes, in constant memory,
//! with data keys from the daemon or from a local key-encryption key.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, IsTerminal, Read, Seek, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use envelope::header::ObjectKind;
use envelope::provider::{KmsProvider, Tenancy};
use envelope::{
    Backend, Decryptor, Encryptor, Header, KeyProvider, LocalKek, ObjectContext, ObjectKey,
};
use zeroize::Zeroizing;

/// Where data keys come from.
pub enum Keys {
    /// The daemon, for this tenant.
    Daemon {
        /// The daemon's address.
        endpoint: String,
        /// Who we speak for.
        tenancy: Tenancy,
    },
    /// A local AES key-encryption key file (32 raw bytes, or 64 hex digits).
    Local(PathBuf),
}

/// I/O buffer size; the envelope streams hold one 16 KiB chunk on top of it.
const BUF: usize = 64 * 1024;

fn open_in(path: &Path) -> Result<Box<dyn Read>, String> {
    if path == Path::new("-") {
        Ok(Box::new(io::stdin().lock()))
    } else {
        let f = File::open(path).map_err(|e| format!("--in {}: {e}", path.display()))?;
        Ok(Box::new(BufReader::with_capacity(BUF, f)))
    }
}

fn open_out(path: &Path) -> Result<Box<dyn Write>, String> {
    if path == Path::new("-") {
        Ok(Box::new(BufWriter::with_capacity(BUF, io::stdout().lock())))
    } else {
        let f = File::create(path).map_err(|e| format!("--out {}: {e}", path.display()))?;
        Ok(Box::new(BufWriter::with_capacity(BUF, f)))
    }
}

fn read_kek(path: &Path) -> Result<Zeroizing<Vec<u8>>, String> {
    let raw = Zeroizing::new(
        std::fs::read(path).map_err(|e| format!("--local-kek {}: {e}", path.display()))?,
    );
    let text = std::str::from_utf8(&raw).ok().map(str::trim);
    if let Some(hexed) = text.filter(|t| t.len() == 64)
        && let Ok(k) = hex::decode(hexed)
    {
        return Ok(Zeroizing::new(k));
    }
    if raw.len() == 32 {
        return Ok(raw);
    }
    Err(format!(
        "--local-kek {}: expected 32 raw bytes or 64 hex digits",
        path.display()
    ))
}

/// Counts bytes through a writer and shows progress on a terminal's standard error.
struct Progress<W: Write> {
    inner: W,
    done: u64,
    started: Instant,
    last: Instant,
    show: bool,
    verb: &'static str,
}

impl<W: Write> Progress<W> {
    fn new(inner: W, verb: &'static str) -> Self {
        let now = Instant::now();
        Self {
            inner,
            done: 0,
            started: now,
            last: now,
            show: io::stderr().is_terminal(),
            verb,
        }
    }

    fn report(&mut self, last: bool) {
        if !self.show {
            return;
        }
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let mib = self.done as f64 / (1024.0 * 1024.0);
        eprint!("\r{} {mib:.1} MiB ({:.1} MiB/s)", self.verb, mib / secs);
        if last {
            eprintln!();
        }
    }
}

impl<W: Write> Write for Progress<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.done += n as u64;
        if self.show && self.last.elapsed() > Duration::from_millis(250) {
            self.last = Instant::now();
            self.report(false);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn env_err(e: envelope::Error) -> String {
    e.to_string()
}

/// Seals `input` into `output` under `key_id`, bound to `context`.
pub async fn seal(
    keys: &Keys,
    key_id: Option<&str>,
    context: &ObjectContext,
    input: &Path,
    output: &Path,
) -> Result<serde_json::Value, String> {
    let key = match keys {
        Keys::Daemon { endpoint, tenancy } => {
            let key_id = key_id.ok_or("seal through the daemon needs --key-id")?;
            let kms = KmsProvider::connect(endpoint.clone(), tenancy.clone())
                .await
                .map_err(env_err)?;
            ObjectKey::generate_async(&kms, key_id, context, ObjectKind::Single)
                .await
                .map_err(env_err)?
        }
        Keys::Local(path) => {
            let id = key_id.unwrap_or("local-kek");
            let kek = LocalKek::aes_kw(id, &read_kek(path)?).map_err(env_err)?;
            ObjectKey::generate(&kek, id, context, ObjectKind::Single).map_err(env_err)?
        }
    };
    let key_id = key.header().key_id().to_owned();
    let mut reader = open_in(input)?;
    let sink = Progress::new(open_out(output)?, "sealed");
    let mut enc = Encryptor::new(&key, context, sink, Backend::default()).map_err(env_err)?;
    let n = io::copy(&mut reader, &mut enc).map_err(|e| format!("sealing: {e}"))?;
    let mut sink = enc.finish().map_err(env_err)?;
    sink.flush().map_err(|e| format!("writing --out: {e}"))?;
    sink.report(true);
    Ok(serde_json::json!({ "key_id": key_id, "plaintext_bytes": n, "sealed_bytes": sink.done }))
}

/// Parses `START-END` (inclusive, as an HTTP range) into a half-open range.
pub fn parse_range(s: &str) -> Result<Range<u64>, String> {
    let bad = || format!("--range {s:?}: expected START-END, inclusive byte offsets");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let start: u64 = a.parse().map_err(|_| bad())?;
    let end: u64 = b.parse().map_err(|_| bad())?;
    if end < start {
        return Err(bad());
    }
    Ok(start..end.checked_add(1).ok_or_else(bad)?)
}

async fn unwrap_key(
    keys: &Keys,
    key_id: Option<&str>,
    header: Header,
    context: &ObjectContext,
) -> Result<ObjectKey, String> {
    match keys {
        Keys::Daemon { endpoint, tenancy } => {
            let kms = KmsProvider::connect(endpoint.clone(), tenancy.clone())
                .await
                .map_err(env_err)?;
            ObjectKey::unwrap_with_async(&kms, header, context)
                .await
                .map_err(env_err)
        }
        Keys::Local(path) => {
            let id = key_id.unwrap_or(header.key_id()).to_owned();
            let kek = LocalKek::aes_kw(id.clone(), &read_kek(path)?).map_err(env_err)?;
            let dk = kek
                .decrypt_data_key(&id, header.wrapped_key(), context)
                .map_err(env_err)?;
            ObjectKey::open(header, dk).map_err(env_err)
        }
    }
}

/// Opens `input` (all of it, or a plaintext byte range) into `output`.
pub async fn open(
    keys: &Keys,
    key_id: Option<&str>,
    context: &ObjectContext,
    input: &Path,
    output: &Path,
    range: Option<Range<u64>>,
) -> Result<serde_json::Value, String> {
    let sink = Progress::new(open_out(output)?, "opened");
    match range {
        None => {
            let mut reader = open_in(input)?;
            let header = Header::read_from(&mut reader).map_err(env_err)?;
            let key = unwrap_key(keys, key_id, header, context).await?;
            let id = key.header().key_id().to_owned();
            let mut dec =
                Decryptor::with_key(&key, context, reader, Backend::default()).map_err(env_err)?;
            let mut sink = sink;
            let n = dec.copy_to(&mut sink).map_err(env_err)?;
            sink.flush().map_err(|e| format!("writing --out: {e}"))?;
            sink.report(true);
            Ok(serde_json::json!({ "key_id": id, "plaintext_bytes": n }))
        }
        Some(range) => {
            if input == Path::new("-") {
                return Err("--range needs a seekable --in file, not standard input".into());
            }
            let f = File::open(input).map_err(|e| format!("--in {}: {e}", input.display()))?;
            let mut source = BufReader::with_capacity(BUF, f);
            let header = Header::read_from(&mut source).map_err(env_err)?;
            let key = unwrap_key(keys, key_id, header, context).await?;
            let id = key.header().key_id().to_owned();
            source.rewind().map_err(|e| format!("--in: {e}"))?;
            let mut sink = sink;
            let total = envelope::open_range_with_key(
                &key,
                context,
                &mut source,
                range.clone(),
                &mut sink,
                Backend::default(),
            )
            .map_err(env_err)?;
            sink.flush().map_err(|e| format!("writing --out: {e}"))?;
            Ok(serde_json::json!({
                "key_id": id,
                "object_plaintext_bytes": total,
                "range": [range.start, range.end - 1],
                "bytes_written": sink.done,
            }))
        }
    }
}
