//! Streamed reads of a whole completed object: the I/O-free [`WholeRead`] walk that the
//! `std::io` [`MultipartReader`] and the tokio readers drive.

use super::object::MultipartObject;
use crate::chunked::{BodyReader, ChunkKeys, Failure, PREFIX_SIZE, read_prefix};
use crate::error::{Error, ManifestError, Result};
use std::io::{self, Read};

/// A `Read` over a completed multipart object; see [`MultipartObject::reader`].
pub struct MultipartReader<'a, R: Read> {
    object: &'a MultipartObject,
    walk: WholeRead<BodyReader<io::Take<R>>>,
    /// The source between parts (inside the part's `BodyReader` while a part is read).
    source: Option<R>,
}

/// A failure a whole read keeps reporting.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Sticky {
    Manifest(ManifestError),
    Body(Failure),
    TrailingData,
}

impl Sticky {
    fn of(e: &Error) -> Sticky {
        match e {
            Error::Manifest(m) => Sticky::Manifest(*m),
            Error::TrailingData => Sticky::TrailingData,
            other => Sticky::Body(Failure::of(other)),
        }
    }

    pub(crate) fn error(self) -> Error {
        match self {
            Sticky::Manifest(m) => Error::Manifest(m),
            Sticky::Body(f) => f.error(),
            Sticky::TrailingData => Error::TrailingData,
        }
    }
}

/// Where a streamed read of a whole completed object stands, and the checks between its steps:
/// the state machine that [`MultipartReader`] (`std::io`) and the tokio reads
/// (`MultipartAsyncReader`, `copy_to_async`) share. It does no I/O: the reader reads what
/// [`WholeRead::phase_mut`] asks for and reports it back.
///
/// Part after part: the salt and commitment ([`PREFIX_SIZE`] bytes, checked against the manifest
/// by [`WholeRead::start_part`]), then the part's chunks, read by `B` (a `BodyReader` over
/// `Read::take(rest)` for `std::io`, a `tokio_multipart::PartChunks` for tokio) and counted with
/// [`WholeRead::count`], then [`WholeRead::end_part`] once its final chunk has authenticated (its
/// plaintext length must be the manifest's). After the last part the source must end
/// ([`WholeRead::end`]). A failure recorded with [`WholeRead::fail`] is reported again by every
/// later step.
pub(crate) struct WholeRead<B> {
    /// Parts started so far: while in [`Phase::Part`], the current part is `started - 1`.
    started: usize,
    /// Plaintext bytes of the current part released so far.
    released: u64,
    phase: Phase<B>,
}

/// What a [`WholeRead`] expects next.
pub(crate) enum Phase<B> {
    /// The next part's salt and commitment: [`PREFIX_SIZE`] bytes, fewer is [`Error::Truncated`].
    Prefix,
    /// The current part's chunks, read by `B`.
    Part(B),
    /// The end of the source, after the last part: a byte there is [`Error::TrailingData`].
    End,
    /// The whole object has been read and checked.
    Done,
    /// A step failed: every later one fails again.
    Failed(Sticky),
}

impl<B> WholeRead<B> {
    /// At the first part's salt and commitment (a manifest lists at least one part).
    pub(crate) fn new() -> WholeRead<B> {
        WholeRead {
            started: 0,
            released: 0,
            phase: Phase::Prefix,
        }
    }

    /// What the read expects next (with the current part's reader).
    pub(crate) fn phase_mut(&mut self) -> &mut Phase<B> {
        &mut self.phase
    }

    /// The failure recorded by [`WholeRead::fail`], if any.
    pub(crate) fn failure(&self) -> Option<Error> {
        match self.phase {
            Phase::Failed(f) => Some(f.error()),
            _ => None,
        }
    }

    /// Check the next part's salt and commitment against the manifest (before any of its chunks
    /// is read) and read its chunks with `body(keys, rest)`, where `rest` is the part's stored
    /// length after its prefix.
    pub(crate) fn start_part(
        &mut self,
        object: &MultipartObject,
        prefix: &[u8; PREFIX_SIZE],
        body: impl FnOnce(ChunkKeys, u64) -> B,
    ) -> Result<()> {
        debug_assert!(matches!(self.phase, Phase::Prefix));
        let i = self.started;
        let keys = object.part_keys(i, prefix)?;
        let rest = object.part_rest(i)?;
        self.phase = Phase::Part(body(keys, rest));
        self.started += 1;
        self.released = 0;
        Ok(())
    }

    /// Count `n` plaintext bytes of the current part as released (they have authenticated).
    pub(crate) fn count(&mut self, n: usize) {
        self.released += n as u64;
    }

    /// The current part's final chunk has authenticated: check that the part held the plaintext
    /// length the manifest lists, and move on to the next part (or the end of the source).
    /// Returns the part's reader.
    pub(crate) fn end_part(&mut self, object: &MultipartObject) -> Result<B> {
        object.check_part_len(self.started - 1, self.released)?;
        let next = if self.started == object.manifest().entries().len() {
            Phase::End
        } else {
            Phase::Prefix
        };
        match std::mem::replace(&mut self.phase, next) {
            Phase::Part(b) => Ok(b),
            _ => unreachable!("end_part outside a part"),
        }
    }

    /// After the last part, a read of the source got `extra` bytes: any is
    /// [`Error::TrailingData`].
    pub(crate) fn end(&mut self, extra: usize) -> Result<()> {
        if extra != 0 {
            return Err(Error::TrailingData);
        }
        self.phase = Phase::Done;
        Ok(())
    }

    /// Record a failure (dropping the current part's reader and keys): every later step reports
    /// it again. An I/O error is reported once; later steps fail with [`Error::Poisoned`].
    pub(crate) fn fail(&mut self, e: &Error) {
        self.phase = Phase::Failed(Sticky::of(e));
    }
}

impl<'a, R: Read> MultipartReader<'a, R> {
    pub(super) fn new(object: &'a MultipartObject, source: R) -> Self {
        MultipartReader {
            object,
            walk: WholeRead::new(),
            source: Some(source),
        }
    }

    fn read_inner(&mut self, out: &mut [u8]) -> Result<usize> {
        loop {
            match self.walk.phase_mut() {
                Phase::Done => return Ok(0),
                Phase::Failed(f) => return Err(f.error()),
                Phase::Part(body) => {
                    let n = body.read(out).map_err(Error::from_io)?;
                    if n > 0 {
                        self.walk.count(n);
                        return Ok(n);
                    }
                    // The part's final chunk has authenticated.
                    let body = self.walk.end_part(self.object)?;
                    self.source = Some(body.into_inner().into_inner());
                }
                Phase::Prefix => {
                    let Some(mut source) = self.source.take() else {
                        return Err(Error::Poisoned);
                    };
                    let prefix = read_prefix(&mut source)?;
                    self.walk.start_part(self.object, &prefix, |keys, rest| {
                        BodyReader::from_parts(source.take(rest), keys)
                    })?;
                }
                Phase::End => {
                    let Some(source) = self.source.as_mut() else {
                        return Err(Error::Poisoned);
                    };
                    let mut probe = [0u8; 1];
                    let extra = crate::fill::read_up_to(source, &mut probe)?;
                    self.walk.end(extra)?;
                }
            }
        }
    }
}

impl<R: Read> Read for MultipartReader<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.walk.failure() {
            return Err(e.into());
        }
        if out.is_empty() {
            return Ok(0);
        }
        match self.read_inner(out) {
            Ok(n) => Ok(n),
            Err(e) => {
                // Sticky: report a failure again on every later call.
                self.walk.fail(&e);
                self.source = None;
                Err(e.into())
            }
        }
    }
}
