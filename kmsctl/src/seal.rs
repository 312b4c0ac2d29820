//! `kmsctl seal` and `kmsctl open`: envelope encryption of files and pipes, in constant memory,
//! with data keys from the daemon or from a local key-encryption key.
//!
//! The key work (reading the KEK, asking the daemon) runs on the async task; each blocking stream
//! step runs in `spawn_blocking`, so that `main` keeps listening for SIGINT/SIGTERM while a pipe
//! is read or a file written. The output is a [`Target`]: a file named by `--out` appears only
//! once the whole stream is sealed or authenticated (see `output`).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, IoSlice, IoSliceMut, IsTerminal, Read, Seek, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use envelope::chunked::{CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE};
use envelope::header::ObjectKind;
use envelope::provider::{KmsProvider, Tenancy};
use envelope::{
    Backend, Decryptor, Encryptor, Header, KeyProvider, LocalKek, ObjectContext, ObjectKey,
};
use zeroize::Zeroizing;

use crate::error::CliError;
use crate::output::{Sink, Target};
use crate::rpc;

/// Where data keys come from.
pub(crate) enum Keys {
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

impl Keys {
    async fn daemon(endpoint: &str, tenancy: &Tenancy) -> Result<KmsProvider, CliError> {
        Ok(KmsProvider::new(
            rpc::connect(endpoint).await?,
            tenancy.clone(),
        ))
    }
}

/// I/O buffer size; the envelope streams hold one 16 KiB chunk on top of it.
const BUF: usize = 64 * 1024;

/// Chunk slots per block of a whole-stream seal or open: 64 chunks (1 MiB of plaintext) per read
/// and per write, sealed and opened where they lie (the chunk-block API), so that the only copies
/// are the kernel's (why: BENCHMARKS.md, kmsctl against age).
const SLOTS: usize = 64;

/// The backend of every seal and open: a program may use the fastest one the build has.
fn backend() -> Backend {
    Backend::fastest()
}

/// Reads plaintext straight into the chunk slots of `block` (the first [`CHUNK_SIZE`] bytes of
/// each [`ENCRYPTED_CHUNK_SIZE`] slot), with vectored reads, until every slot is full or the input
/// ends; returns the plaintext bytes read.
fn read_slots<R: Read + ?Sized>(r: &mut R, block: &mut [u8]) -> io::Result<usize> {
    let want = block.len() / ENCRYPTED_CHUNK_SIZE * CHUNK_SIZE;
    let mut got = 0;
    while got < want {
        let (first, at) = (got / CHUNK_SIZE, got % CHUNK_SIZE);
        let mut slices: Vec<IoSliceMut<'_>> = block[first * ENCRYPTED_CHUNK_SIZE..]
            .chunks_mut(ENCRYPTED_CHUNK_SIZE)
            .enumerate()
            .map(|(i, slot)| IoSliceMut::new(&mut slot[if i == 0 { at } else { 0 }..CHUNK_SIZE]))
            .collect();
        match r.read_vectored(&mut slices) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Writes every piece of `bufs`, in order, with vectored writes.
fn write_all_vectored<W: Write + ?Sized>(
    w: &mut W,
    mut bufs: &mut [IoSlice<'_>],
) -> io::Result<()> {
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match w.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A blocking reader that can move to the blocking thread.
type Input = Box<dyn Read + Send>;

fn open_in(path: &Path) -> Result<Input, CliError> {
    if path == Path::new("-") {
        Ok(Box::new(BufReader::with_capacity(BUF, io::stdin())))
    } else {
        let f = File::open(path).map_err(|e| CliError::io("--in", path, e))?;
        Ok(Box::new(BufReader::with_capacity(BUF, f)))
    }
}

fn read_kek(path: &Path) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let raw =
        Zeroizing::new(std::fs::read(path).map_err(|e| CliError::io("--local-kek", path, e))?);
    let text = std::str::from_utf8(&raw).ok().map(str::trim);
    if let Some(hexed) = text.filter(|t| t.len() == 64)
        && let Ok(k) = hex::decode(hexed)
    {
        return Ok(Zeroizing::new(k));
    }
    if raw.len() == 32 {
        return Ok(raw);
    }
    Err(CliError::KekFormat {
        path: path.to_owned(),
    })
}

/// Runs a blocking step on tokio's blocking pool and waits for it.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CliError> + Send + 'static,
) -> Result<T, CliError> {
    tokio::task::spawn_blocking(f).await?
}

/// Counts bytes through a writer, remembers whether the writer failed, and shows progress on a
/// terminal's standard error.
struct Progress<W: Write> {
    inner: W,
    done: u64,
    failed: bool,
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
            failed: false,
            started: now,
            last: now,
            show: io::stderr().is_terminal(),
            verb,
        }
    }

    fn count(&mut self, n: usize) {
        self.done = self
            .done
            .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        if self.show && self.last.elapsed() > Duration::from_millis(250) {
            self.last = Instant::now();
            self.report(false);
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
        let n = self.inner.write(buf).inspect_err(|_| self.failed = true)?;
        self.count(n);
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let n = self
            .inner
            .write_vectored(bufs)
            .inspect_err(|_| self.failed = true)?;
        self.count(n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().inspect_err(|_| self.failed = true)
    }
}

/// The buffered, counted writer of one output.
type Out = Progress<BufWriter<Sink>>;

fn out_writer(sink: Sink, verb: &'static str) -> Out {
    Progress::new(BufWriter::with_capacity(BUF, sink), verb)
}

/// Flushes and syncs `out` once the stream is whole; returns the bytes written.
fn finish_out(mut out: Out, output: &Path) -> Result<u64, CliError> {
    let done = out.done;
    out.report(true);
    out.inner
        .into_inner()
        .map_err(io::IntoInnerError::into_error)
        .and_then(Sink::finish)
        .map_err(|e| CliError::io("--out", output, e))?;
    Ok(done)
}

/// An error of an envelope stream: an I/O error is the output's if the output failed, else the
/// input's; anything else is the envelope's own (a tampered chunk, a wrong key).
fn stream_error(e: envelope::Error, out_failed: bool, input: &Path, output: &Path) -> CliError {
    match e {
        envelope::Error::Io(io) if out_failed => CliError::io("--out", output, io),
        envelope::Error::Io(io) => CliError::io("--in", input, io),
        other => CliError::Envelope(other),
    }
}

/// Seals `input` into `output` under `key_id`, bound to `context`.
pub(crate) async fn seal(
    keys: &Keys,
    key_id: Option<&str>,
    context: &ObjectContext,
    input: &Path,
    output: &Path,
) -> Result<serde_json::Value, CliError> {
    let key = match keys {
        Keys::Daemon { endpoint, tenancy } => {
            let key_id = key_id.ok_or(CliError::Usage("seal through the daemon needs --key-id"))?;
            let kms = Keys::daemon(endpoint, tenancy).await?;
            ObjectKey::generate_async(&kms, key_id, context, ObjectKind::Single).await?
        }
        Keys::Local(path) => {
            let id = key_id.unwrap_or("local-kek");
            let kek = LocalKek::aes_kw(id, &read_kek(path)?)?;
            ObjectKey::generate(&kek, id, context, ObjectKind::Single)?
        }
    };
    let key_id = key.header().key_id().to_owned();
    let reader = open_in(input)?;
    let (sink, staged) = Target::of(output).open()?;
    let (context, input, output) = (context.clone(), input.to_owned(), output.to_owned());
    let (n, sealed) = blocking(move || {
        let mut reader = reader;
        let out = out_writer(sink, "sealed");
        let mut enc = Encryptor::new(&key, &context, out, backend())?;
        let to_cli = |e: envelope::Error| match e {
            envelope::Error::Io(io) => CliError::io("--out", &output, io),
            other => CliError::Envelope(other),
        };
        // Plaintext is read into the chunk slots and sealed there; the block is wiped on drop.
        let mut block = Zeroizing::new(vec![0u8; SLOTS * ENCRYPTED_CHUNK_SIZE]);
        let mut n: u64 = 0;
        loop {
            let got =
                read_slots(&mut reader, &mut block).map_err(|e| CliError::io("--in", &input, e))?;
            n = n.saturating_add(u64::try_from(got).unwrap_or(u64::MAX));
            let full = got / CHUNK_SIZE;
            enc.seal_chunks(&mut block[..full * ENCRYPTED_CHUNK_SIZE])
                .map_err(to_cli)?;
            if got < SLOTS * CHUNK_SIZE {
                // The input ended: the rest is the final, short chunk.
                let start = full * ENCRYPTED_CHUNK_SIZE;
                enc.write_all(&block[start..start + got % CHUNK_SIZE])
                    .map_err(|e| to_cli(envelope::Error::from_io(e)))?;
                break;
            }
        }
        let out = enc.finish().map_err(to_cli)?;
        Ok((n, finish_out(out, &output)?))
    })
    .await?;
    if let Some(staged) = staged {
        staged.commit()?;
    }
    Ok(serde_json::json!({ "key_id": key_id, "plaintext_bytes": n, "sealed_bytes": sealed }))
}

/// Parses `START-END` (inclusive, as an HTTP range) into a half-open range.
pub(crate) fn parse_range(s: &str) -> Result<Range<u64>, String> {
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
) -> Result<ObjectKey, CliError> {
    match keys {
        Keys::Daemon { endpoint, tenancy } => {
            let kms = Keys::daemon(endpoint, tenancy).await?;
            Ok(ObjectKey::unwrap_with_async(&kms, header, context).await?)
        }
        Keys::Local(path) => {
            let id = key_id.unwrap_or(header.key_id()).to_owned();
            let kek = LocalKek::aes_kw(id.clone(), &read_kek(path)?)?;
            let dk = kek.decrypt_data_key(&id, header.wrapped_key(), context)?;
            Ok(ObjectKey::open(header, dk)?)
        }
    }
}

/// Reads the header at the start of `reader` on the blocking pool.
async fn read_header<R: Read + Send + 'static>(
    mut reader: R,
    input: &Path,
) -> Result<(Header, R), CliError> {
    let input = input.to_owned();
    blocking(move || {
        let header =
            Header::read_from(&mut reader).map_err(|e| stream_error(e, false, &input, &input))?;
        Ok((header, reader))
    })
    .await
}

/// Opens `input` (all of it, or a plaintext byte range) into `output`.
pub(crate) async fn open(
    keys: &Keys,
    key_id: Option<&str>,
    context: &ObjectContext,
    input: &Path,
    output: &Path,
    range: Option<Range<u64>>,
) -> Result<serde_json::Value, CliError> {
    match range {
        None => {
            let (header, reader) = read_header(open_in(input)?, input).await?;
            let key = unwrap_key(keys, key_id, header, context).await?;
            let id = key.header().key_id().to_owned();
            let (sink, staged) = Target::of(output).open()?;
            let (context, input, output) = (context.clone(), input.to_owned(), output.to_owned());
            let n = blocking(move || {
                let mut dec = Decryptor::with_key(&key, &context, reader, backend())
                    .map_err(|e| stream_error(e, false, &input, &output))?;
                let mut out = out_writer(sink, "opened");
                // Chunks are read into the block's slots and opened there; each block's plaintext
                // leaves in one vectored write. The block is wiped on drop.
                let mut block = Zeroizing::new(vec![0u8; SLOTS * ENCRYPTED_CHUNK_SIZE]);
                let mut n: u64 = 0;
                loop {
                    let opened = dec
                        .open_chunks(&mut block)
                        .map_err(|e| stream_error(e, false, &input, &output))?;
                    if opened.is_empty() {
                        break;
                    }
                    let mut pieces: Vec<IoSlice<'_>> =
                        opened.slices(&block).map(IoSlice::new).collect();
                    write_all_vectored(&mut out, &mut pieces)
                        .map_err(|e| CliError::io("--out", &output, e))?;
                    n = n.saturating_add(u64::try_from(opened.len()).unwrap_or(u64::MAX));
                }
                finish_out(out, &output)?;
                Ok(n)
            })
            .await?;
            if let Some(staged) = staged {
                staged.commit()?;
            }
            Ok(serde_json::json!({ "key_id": id, "plaintext_bytes": n }))
        }
        Some(range) => {
            if input == Path::new("-") {
                return Err(CliError::Usage(
                    "--range needs a seekable --in file, not standard input",
                ));
            }
            let f = File::open(input).map_err(|e| CliError::io("--in", input, e))?;
            let (header, source) = read_header(BufReader::with_capacity(BUF, f), input).await?;
            let key = unwrap_key(keys, key_id, header, context).await?;
            let id = key.header().key_id().to_owned();
            let (sink, staged) = Target::of(output).open()?;
            let (context, input, output) = (context.clone(), input.to_owned(), output.to_owned());
            let (r, range_for_json) = (range.clone(), range);
            let (total, written) = blocking(move || {
                let mut source = source;
                source
                    .rewind()
                    .map_err(|e| CliError::io("--in", &input, e))?;
                let mut out = out_writer(sink, "opened");
                let total = envelope::open_range_with_key(
                    &key,
                    &context,
                    &mut source,
                    r,
                    &mut out,
                    backend(),
                )
                .map_err(|e| stream_error(e, out.failed, &input, &output))?;
                Ok((total, finish_out(out, &output)?))
            })
            .await?;
            if let Some(staged) = staged {
                staged.commit()?;
            }
            Ok(serde_json::json!({
                "key_id": id,
                "object_plaintext_bytes": total,
                "range": [range_for_json.start, range_for_json.end - 1],
                "bytes_written": written,
            }))
        }
    }
}
