//! The audit writer's file side: appending whole lines, syncing, rotating, reopening, and what
//! happens when a write fails.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{AuditFailure, AuditOptions, RETAIN_BYTES, Shared};

/// How often a failing log says so again at error level.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// Serialized lines not yet written: the bytes, and where each line ends.
#[derive(Default)]
struct Pending {
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl Pending {
    fn lines(&self) -> u64 {
        u64::try_from(self.ends.len()).unwrap_or(u64::MAX)
    }

    fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }

    /// Drops the first `lines` lines (`bytes` bytes), written.
    fn consume(&mut self, lines: usize, bytes: usize) {
        self.data.drain(..bytes);
        self.ends.drain(..lines);
        for e in &mut self.ends {
            *e -= bytes;
        }
    }
}

/// The open log file and what the writer knows about it.
pub(super) struct Writer {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    on_failure: AuditFailure,
    /// `None` after a failed open; opened again on the next write.
    file: Option<File>,
    pending: Pending,
    shared: Arc<Shared>,
    /// Since when writes fail, while they do.
    failing_since: Option<Instant>,
    /// The last failure was opening the file, not writing it: opening it is enough to recover.
    open_failed: bool,
    last_report: Instant,
    lost_at_report: u64,
}

fn open(path: &Path) -> std::io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// Whether the file open as `open` is no longer the log at `path`: the path names another file
/// (logrotate created a new one, a symlink was re-pointed), or the open file was removed. A file
/// that was moved away and not replaced keeps receiving lines until SIGHUP, as logrotate expects.
#[cfg(unix)]
fn replaced(path: &Path, open: &File) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let o = open.metadata()?;
    Ok(match std::fs::metadata(path) {
        Ok(p) => (p.dev(), p.ino()) != (o.dev(), o.ino()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => o.nlink() == 0,
        Err(_) => false,
    })
}

#[cfg(not(unix))]
fn replaced(_path: &Path, _open: &File) -> std::io::Result<bool> {
    Ok(false)
}

/// `path.n`: `audit.jsonl.1`.
fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn remove_if_there(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn rename_if_there(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Appends `chunk`; on a failed or short write, cuts the file back to `size` so that it ends with
/// a whole line.
fn append(file: &mut File, chunk: &[u8], size: u64) -> std::io::Result<()> {
    if let Err(e) = file.write_all(chunk) {
        if file.metadata().is_ok_and(|m| m.len() > size) {
            let _ = file.set_len(size);
        }
        return Err(e);
    }
    Ok(())
}

impl Writer {
    pub(super) fn open(
        path: &Path,
        options: &AuditOptions,
        shared: Arc<Shared>,
    ) -> std::io::Result<Self> {
        Ok(Self {
            path: path.to_owned(),
            max_bytes: options.max_bytes,
            keep: options.keep,
            on_failure: options.on_failure,
            file: Some(open(path)?),
            pending: Pending::default(),
            shared,
            failing_since: None,
            open_failed: false,
            last_report: Instant::now(),
            lost_at_report: 0,
        })
    }

    /// Adds one line (with its `\n`) to what the next write writes. While the log is failing, a
    /// line past the 16 MiB kept in memory is lost (and counted).
    pub(super) fn push(&mut self, line: &[u8]) {
        if self.failing_since.is_some() && self.pending.data.len() >= RETAIN_BYTES {
            self.lose(1);
            return;
        }
        self.pending.data.extend_from_slice(line);
        self.pending.ends.push(self.pending.data.len());
    }

    fn lose(&self, lines: u64) {
        self.shared.lost.fetch_add(lines, Ordering::Relaxed);
    }

    /// Writes and syncs every pending line (also, while the log is failing, to find out whether it
    /// can be written again). `true` when every pending line is on disk.
    pub(super) fn write_pending(&mut self) -> bool {
        if self.pending.ends.is_empty() {
            // After a failed write only a line written shows that writes work again (writing
            // nothing succeeds even on a full disk); after a failed open, opening does.
            if self.failing_since.is_none() || !self.open_failed {
                return self.failing_since.is_none();
            }
        }
        match self.try_write() {
            Ok(()) => {
                self.pending.clear();
                if self.failing_since.is_some() {
                    self.recovered();
                }
                true
            }
            Err(e) => {
                self.failed(&e);
                false
            }
        }
    }

    /// Writes the pending lines, rotating between them by size; on an error the lines written so
    /// far are no longer pending.
    fn try_write(&mut self) -> std::io::Result<()> {
        self.open_failed = false;
        let mut line = 0;
        let mut from = 0;
        let r = self.write_from(&mut line, &mut from);
        if r.is_err() {
            self.pending.consume(line, from);
        }
        r
    }

    fn write_from(&mut self, line: &mut usize, from: &mut usize) -> std::io::Result<()> {
        self.ensure_open()?;
        let mut size = self.current()?.metadata()?.len();
        let n = self.pending.ends.len();
        while *line < n {
            let mut to = n;
            if self.max_bytes > 0 {
                to = *line;
                while to < n
                    && size.saturating_add(byte_len(self.pending.ends[to] - *from))
                        <= self.max_bytes
                {
                    to += 1;
                }
                if to == *line {
                    if size > 0 {
                        self.rotate()?;
                        size = 0;
                        continue;
                    }
                    // A line longer than the limit gets a file of its own.
                    to += 1;
                }
            }
            let end = self.pending.ends[to - 1];
            let chunk = &self.pending.data[*from..end];
            let file = self.file.as_mut().ok_or_else(not_open)?;
            append(file, chunk, size)?;
            file.sync_data()?;
            size += byte_len(end - *from);
            *line = to;
            *from = end;
        }
        Ok(())
    }

    fn current(&self) -> std::io::Result<&File> {
        self.file.as_ref().ok_or_else(not_open)
    }

    /// Opens the path if no file is open, or if the open one is no longer the log there. While
    /// the log is failing, every attempt opens the path afresh (a re-pointed symlink, a fixed
    /// permission, a file that was moved away).
    fn ensure_open(&mut self) -> std::io::Result<()> {
        if self.failing_since.is_some() {
            self.file = None;
        }
        if let Some(f) = &self.file {
            if !replaced(&self.path, f)? {
                return Ok(());
            }
            tracing::warn!(path = %self.path.display(), "the audit log was replaced or removed; reopening it");
            self.file = None;
        }
        self.file = Some(self.open_path()?);
        Ok(())
    }

    fn open_path(&mut self) -> std::io::Result<File> {
        open(&self.path).inspect_err(|_| self.open_failed = true)
    }

    /// `path` becomes `path.1`, `path.1` becomes `path.2`, …, `path.<keep>` is removed; a new
    /// `path` is opened. The file was synced before.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        if self.keep == 0 {
            remove_if_there(&self.path)?;
        } else {
            remove_if_there(&numbered(&self.path, self.keep))?;
            for i in (1..self.keep).rev() {
                rename_if_there(&numbered(&self.path, i), &numbered(&self.path, i + 1))?;
            }
            std::fs::rename(&self.path, numbered(&self.path, 1))?;
        }
        self.file = Some(self.open_path()?);
        // The renames are durable before lines go to the new file.
        #[cfg(unix)]
        if let Some(dir) = self.path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            File::open(dir)?.sync_all()?;
        }
        tracing::debug!(path = %self.path.display(), keep = self.keep, "audit log rotated");
        Ok(())
    }

    /// SIGHUP: the path is opened again (lines queued before were written to the old file).
    pub(super) fn reopen(&mut self) {
        self.file = None;
        self.open_failed = false;
        match self.open_path() {
            Ok(f) => {
                self.file = Some(f);
                tracing::info!(path = %self.path.display(), "audit log reopened");
            }
            Err(e) => self.failed(&e),
        }
    }

    fn failed(&mut self, e: &std::io::Error) {
        if self.on_failure == AuditFailure::Continue {
            self.lose(self.pending.lines());
            self.pending.clear();
        }
        let lost = self.shared.lost.load(Ordering::Relaxed);
        let pending = self.pending.lines();
        if self.failing_since.is_none() {
            self.failing_since = Some(Instant::now());
            self.shared.failing.store(true, Ordering::Relaxed);
            self.shared.writable.send_replace(false);
            self.last_report = Instant::now();
            self.lost_at_report = lost;
            match self.on_failure {
                AuditFailure::Refuse => tracing::error!(
                    error = %e, path = %self.path.display(), lines_kept = pending, lines_lost = lost,
                    "audit log cannot be written: refusing calls (UNAVAILABLE, KMSBOX.0503) and reporting NOT_SERVING until it can"
                ),
                AuditFailure::Continue => tracing::error!(
                    error = %e, path = %self.path.display(), lines_lost = lost,
                    "audit log cannot be written: serving WITHOUT an audit trail (--audit-failure=continue); lines are lost until it can"
                ),
            }
        } else if self.last_report.elapsed() >= REPORT_EVERY {
            tracing::error!(
                error = %e, path = %self.path.display(), lines_kept = pending, lines_lost = lost,
                lost_since_last_report = lost - self.lost_at_report,
                failing_for = ?self.failing_since.map(|t| t.elapsed()),
                "audit log still cannot be written"
            );
            self.last_report = Instant::now();
            self.lost_at_report = lost;
        }
    }

    fn recovered(&mut self) {
        let since = self.failing_since.take();
        self.shared.failing.store(false, Ordering::Relaxed);
        self.shared.writable.send_replace(true);
        tracing::warn!(
            path = %self.path.display(),
            failed_for = ?since.map(|t| t.elapsed()),
            lines_lost = self.shared.lost.load(Ordering::Relaxed),
            "audit log can be written again"
        );
    }

    /// The last write, at shutdown.
    pub(super) fn close(&mut self) {
        if !self.write_pending() && !self.pending.ends.is_empty() {
            let n = self.pending.lines();
            self.lose(n);
            self.pending.clear();
            tracing::error!(
                lines = n,
                lines_lost = self.shared.lost.load(Ordering::Relaxed),
                "audit log closed with lines it could not write"
            );
        }
    }
}

fn byte_len(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn not_open() -> std::io::Error {
    std::io::Error::other("the audit log is not open")
}
