//! The blocking file side of uploads and downloads: writing a body (plain, sealed, or as a
//! multipart part) to a temporary file with its MD5, fsynced; reading a stored object's
//! plaintext (whole or a range, only authenticated bytes) into the response through a bounded
//! channel.

use std::io::{Read, Seek, SeekFrom, Write};

use bytes::Bytes;
use envelope::multipart::{MultipartObject, PartInfo, PartWriter, Upload};
use envelope::{Backend, ObjectContext, ObjectKey};
use md5::{Digest, Md5};
use tokio::sync::mpsc;

use super::IO_CHUNK;
use crate::checksum::{Algorithm, Checksum};
use crate::store::ObjectFile;

/// How to write an object's plaintext: sealed as a single object, or as one part of an
/// SSE-KMS multipart upload.
pub(super) enum Sealing {
    Single(ObjectKey, ObjectContext),
    Part(std::sync::Arc<Upload>, u32),
}

/// How to read a stored SSE-KMS object: its key checked, and for a multipart object its
/// manifest authenticated.
pub(super) enum Opened {
    Single(ObjectKey, ObjectContext),
    Multipart(Box<MultipartObject>),
}

/// What the writer produced.
#[derive(Debug)]
pub(super) struct Written {
    pub(super) size: u64,
    pub(super) md5_hex: String,
    /// For a part of an SSE-KMS multipart upload: what the manifest needs.
    pub(super) part: Option<PartInfo>,
    /// The additional checksum the body carried, once verified: its header name and value.
    pub(super) checksum: Option<(String, String)>,
}

/// Where an object's plaintext goes: `temp`, sealed or not, with its MD5 and length counted.
/// [`Sink::finish`] seals the last chunk and fsyncs the file.
pub(super) enum SinkOut {
    Plain(std::io::BufWriter<std::fs::File>),
    Sealed(Box<envelope::Encryptor<std::io::BufWriter<std::fs::File>>>),
    Part(Box<PartWriter<std::io::BufWriter<std::fs::File>>>),
}

pub(super) struct Sink {
    out: SinkOut,
    md5: Md5,
    size: u64,
    /// The additional checksum to compute (a copy into a part of an upload that has one).
    checksum: Option<(Algorithm, Checksum)>,
}

pub(super) fn envelope_io(e: envelope::Error) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl Sink {
    fn create(
        temp: &std::path::Path,
        sealing: Option<Sealing>,
        checksum: Option<Algorithm>,
    ) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(temp)?;
        let buffered = std::io::BufWriter::with_capacity(IO_CHUNK, file);
        let out = match sealing {
            None => SinkOut::Plain(buffered),
            Some(Sealing::Single(key, ctx)) => SinkOut::Sealed(Box::new(
                envelope::Encryptor::new(&key, &ctx, buffered, Backend::fastest())
                    .map_err(envelope_io)?,
            )),
            Some(Sealing::Part(upload, number)) => SinkOut::Part(Box::new(
                upload.part_writer(number, buffered).map_err(envelope_io)?,
            )),
        };
        Ok(Self {
            out,
            md5: Md5::new(),
            size: 0,
            checksum: checksum.map(|alg| (alg, Checksum::new(alg))),
        })
    }

    fn finish(self) -> std::io::Result<Written> {
        let (buffered, part) = match self.out {
            SinkOut::Plain(b) => (b, None),
            SinkOut::Sealed(e) => (e.finish().map_err(envelope_io)?, None),
            SinkOut::Part(p) => {
                let (b, info) = p.finish().map_err(envelope_io)?;
                (b, Some(info))
            }
        };
        let file = buffered.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(Written {
            size: self.size,
            md5_hex: hex::encode(self.md5.finalize()),
            part,
            checksum: self
                .checksum
                .map(|(alg, c)| (alg.header().to_owned(), c.finish())),
        })
    }
}

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.md5.update(data);
        if let Some((_, c)) = &mut self.checksum {
            c.update(data);
        }
        self.size += data.len() as u64;
        match &mut self.out {
            SinkOut::Plain(w) => w.write_all(data)?,
            SinkOut::Sealed(w) => w.write_all(data)?,
            SinkOut::Part(w) => w.write_all(data)?,
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes the body's pieces from `rx` to `temp`. Ends when the sender goes away; the caller
/// decides whether the body was complete and removes the file on any error.
pub(super) fn write_body(
    temp: &std::path::Path,
    sealing: Option<Sealing>,
    mut rx: mpsc::Receiver<Bytes>,
) -> std::io::Result<Written> {
    let mut sink = Sink::create(temp, sealing, None)?;
    while let Some(b) = rx.blocking_recv() {
        sink.write_all(&b)?;
    }
    sink.finish()
}

/// Copies `span` of an object's plaintext (decrypting with `opening`) into `temp` (sealing with
/// `sealing`), computing the `checksum` algorithm's value of it when one is given.
pub(super) fn copy_range_file(
    source: ObjectFile,
    opening: Option<Opened>,
    span: std::ops::Range<u64>,
    whole: bool,
    temp: &std::path::Path,
    (sealing, checksum): (Option<Sealing>, Option<Algorithm>),
) -> std::io::Result<Written> {
    let mut sink = Sink::create(temp, sealing, checksum)?;
    copy_plaintext(source, opening, span, whole, &mut sink)?;
    sink.finish()
}

/// Copies an object's whole plaintext (decrypting with `opening`) into `temp` (sealing with
/// `sealing`), computing the `checksum` algorithm's value of it when one is given.
pub(super) fn copy_object_file(
    source: ObjectFile,
    opening: Option<Opened>,
    size: u64,
    temp: &std::path::Path,
    sealing: (Option<Sealing>, Option<Algorithm>),
) -> std::io::Result<Written> {
    copy_range_file(source, opening, 0..size, true, temp, sealing)
}

/// Writes `span` of the object's plaintext to `w`; only authenticated bytes reach `w`.
pub(super) fn copy_plaintext<W: Write>(
    mut f: ObjectFile,
    opening: Option<Opened>,
    span: std::ops::Range<u64>,
    whole: bool,
    w: &mut W,
) -> std::io::Result<()> {
    match opening {
        None => {
            f.seek(SeekFrom::Start(span.start))?;
            std::io::copy(&mut f.take(span.end - span.start), w)?;
        }
        Some(Opened::Single(key, ctx)) if whole => {
            f.seek(SeekFrom::Start(key.header().len() as u64))?;
            let input = std::io::BufReader::with_capacity(IO_CHUNK, f);
            envelope::Decryptor::with_key(&key, &ctx, input, Backend::fastest())
                .map_err(envelope_io)?
                .copy_to(w)
                .map_err(envelope_io)?;
        }
        Some(Opened::Single(key, ctx)) => {
            envelope::open_range_with_key(&key, &ctx, &mut f, span, w, Backend::fastest())
                .map_err(envelope_io)?;
        }
        Some(Opened::Multipart(m)) if whole => {
            f.seek(SeekFrom::Start(0))?;
            let input = std::io::BufReader::with_capacity(IO_CHUNK, f);
            m.copy_to(input, w).map_err(envelope_io)?;
        }
        Some(Opened::Multipart(m)) => {
            m.read_range(&mut f, span, w).map_err(envelope_io)?;
        }
    }
    Ok(())
}

/// A `Write` that hands the bytes to the response body in [`IO_CHUNK`] pieces.
pub(super) struct ChannelWriter {
    buf: Vec<u8>,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let b = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(IO_CHUNK),
        ));
        self.tx.blocking_send(Ok(b)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= IO_CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// Streams `span` of the object's plaintext into `tx`; an error goes down the channel, which
/// aborts the response (never a wrong byte: the decryptor releases only authenticated chunks).
pub(super) fn read_body(
    file: ObjectFile,
    what: &str,
    opening: Option<Opened>,
    span: std::ops::Range<u64>,
    whole: bool,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let mut w = ChannelWriter {
        buf: Vec::with_capacity(IO_CHUNK),
        tx: tx.clone(),
    };
    let result = copy_plaintext(file, opening, span, whole, &mut w).and_then(|()| w.flush());
    if let Err(e) = result {
        tracing::error!(object = %what, error = %e, "reading an object failed; the response is aborted");
        let _ = tx.blocking_send(Err(e));
    }
}
