//! Where `seal` and `open` write: standard output, or a file that appears only once it is whole.
//!
//! A file named by `--out` is written as a hidden temporary file in the same folder
//! (`.<name>.kmsctl-XXXXXX`, mode 0600), synced, and renamed over `--out` only after the whole
//! stream has been sealed or authenticated. Until then an existing `--out` stays as it was; on an
//! error, or on SIGINT/SIGTERM (see `main`), the temporary file is removed when its
//! [`Staged`] is dropped. Only SIGKILL (or a crash of the machine) can leave the temporary file
//! behind; never a partial `--out`.
//!
//! An `--out` that exists and is not a regular file (`/dev/null`, a FIFO, a terminal) is written
//! in place, like standard output: renaming a file over it would replace the device.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::TempPath;

use crate::error::CliError;

/// The `--out` of `seal` or `open`.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// `-`: standard output; bytes are written as they are produced.
    Stdout,
    /// An existing file that is not a regular file (a device or a FIFO), written in place.
    Stream(PathBuf),
    /// A regular file (existing or not), replaced whole or not at all.
    File(PathBuf),
}

impl Target {
    /// The target that `--out path` names.
    pub(crate) fn of(path: &Path) -> Target {
        if path == Path::new("-") {
            return Target::Stdout;
        }
        match fs::metadata(path) {
            Ok(m) if !m.is_file() && !m.is_dir() => Target::Stream(path.to_owned()),
            // Replace what a symbolic link points to, not the link.
            _ => Target::File(fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())),
        }
    }

    /// Opens the sink: for [`Target::File`], a fresh temporary file next to it, and the
    /// [`Staged`] that renames it into place or removes it.
    pub(crate) fn open(&self) -> Result<(Sink, Option<Staged>), CliError> {
        match self {
            Target::Stdout => Ok((Sink::Stdout(stdout_handle()?), None)),
            Target::Stream(path) => {
                let f = fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| CliError::io("--out", path, e))?;
                Ok((Sink::Stream(f), None))
            }
            Target::File(dest) => {
                let dir = folder_of(dest);
                let mut prefix = OsString::from(".");
                prefix.push(dest.file_name().unwrap_or_default());
                prefix.push(".kmsctl-");
                // tempfile creates it with O_EXCL and mode 0600.
                let temp = tempfile::Builder::new()
                    .prefix(&prefix)
                    .tempfile_in(dir)
                    .map_err(|e| CliError::io("--out", dest, e))?;
                let (file, path) = temp.into_parts();
                Ok((
                    Sink::Staged(file),
                    Some(Staged {
                        temp: path,
                        dest: dest.clone(),
                    }),
                ))
            }
        }
    }
}

/// The folder that holds `path` (`.` for a bare file name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Standard output as a plain file handle: `io::Stdout` is line-buffered, which on sealed (binary)
/// bytes means a newline search over every byte and many short writes. Nothing else of kmsctl
/// writes to standard output while a stream goes there.
#[cfg(unix)]
type StdoutHandle = File;
#[cfg(not(unix))]
type StdoutHandle = io::Stdout;

#[cfg(unix)]
fn stdout_handle() -> Result<StdoutHandle, CliError> {
    use std::os::fd::AsFd;
    io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .map_err(|e| CliError::io("--out", Path::new("-"), e))
}

#[cfg(not(unix))]
fn stdout_handle() -> Result<StdoutHandle, CliError> {
    Ok(io::stdout())
}

/// The writer behind `--out`.
#[derive(Debug)]
pub(crate) enum Sink {
    /// Standard output.
    Stdout(StdoutHandle),
    /// A device or FIFO.
    Stream(File),
    /// The temporary file of a [`Staged`] output.
    Staged(File),
}

impl Sink {
    /// Flushes, and makes a staged file durable before it is renamed into place.
    pub(crate) fn finish(self) -> io::Result<()> {
        match self {
            Sink::Stdout(mut s) => s.flush(),
            Sink::Stream(mut f) => f.flush(),
            Sink::Staged(f) => f.sync_all(),
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Stdout(s) => s.write(buf),
            Sink::Stream(f) | Sink::Staged(f) => f.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Sink::Stdout(s) => s.write_vectored(bufs),
            Sink::Stream(f) | Sink::Staged(f) => f.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stdout(s) => s.flush(),
            Sink::Stream(f) | Sink::Staged(f) => f.flush(),
        }
    }
}

/// A temporary file that becomes `--out` by [`Staged::commit`], and is removed when dropped
/// without it (on an error, or when `main` drops the command on a signal).
#[derive(Debug)]
pub(crate) struct Staged {
    temp: TempPath,
    dest: PathBuf,
}

impl Staged {
    /// Renames the complete, synced temporary file over `--out`, then syncs the folder so that
    /// the rename is durable too.
    pub(crate) fn commit(self) -> Result<(), CliError> {
        let Staged { temp, dest } = self;
        temp.persist(&dest)
            .map_err(|e| CliError::io("--out", &dest, e.error))?;
        let dir = folder_of(&dest);
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| CliError::io("--out", dir, e))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn names_in(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_staged_file_is_private_and_hidden_until_committed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("plain.txt");
        let (mut sink, staged) = Target::of(&out).open().unwrap();
        sink.write_all(b"all of it").unwrap();
        let names = names_in(dir.path());
        assert_eq!(names.len(), 1);
        assert!(names[0].starts_with(".plain.txt.kmsctl-"), "{names:?}");
        let mode = fs::metadata(dir.path().join(&names[0]))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        sink.finish().unwrap();
        staged.unwrap().commit().unwrap();
        assert_eq!(names_in(dir.path()), ["plain.txt"]);
        assert_eq!(fs::read(&out).unwrap(), b"all of it");
    }

    #[test]
    fn a_dropped_staged_file_leaves_an_existing_out_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("keep.txt");
        fs::write(&out, b"old").unwrap();
        let (mut sink, staged) = Target::of(&out).open().unwrap();
        sink.write_all(b"half").unwrap();
        drop(staged);
        assert_eq!(names_in(dir.path()), ["keep.txt"]);
        assert_eq!(fs::read(&out).unwrap(), b"old");
    }

    #[test]
    fn devices_are_written_in_place_and_links_are_followed() {
        assert!(matches!(
            Target::of(Path::new("/dev/null")),
            Target::Stream(_)
        ));
        assert!(matches!(Target::of(Path::new("-")), Target::Stdout));
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs::write(&real, b"x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let Target::File(dest) = Target::of(&link) else {
            panic!("a link to a file is a file")
        };
        assert_eq!(dest, fs::canonicalize(&real).unwrap());
    }
}
