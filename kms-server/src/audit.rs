//! The audit log: every key-management and cryptographic call, as JSON lines, written off the
//! request path.
//!
//! Handlers hand a record to a bounded channel; one writer (a blocking task of the server's
//! [`TaskTracker`]) drains it every 10 ms, appends the batch to the log file and syncs it, so that
//! auditing costs a request a channel send, not a disk write nor a thread wake-up.
//! [`AuditLog::flush`] waits until everything sent before it is on disk; [`AuditLog::close`] has the
//! writer write what is queued and stop. The log is the daemon's own file, apart from the key store, so that daemons sharing one
//! store each keep their own log and the data path never writes to the store.
//!
//! One line per call, never with key material or plaintext:
//!
//! ```json
//! {"time":"2026-11-27T12:00:00.123Z","domain":"d1","region":"region","operation":"Decrypt",
//!  "key_id":"region:d1:key/522d6070-5ad3-4765-9737-9312ddc72cdb","outcome":"ok","request_id":"..."}
//! ```
//!
//! `outcome` is `ok` or the error code; `key_id` is the key in full form, or for a refused call the
//! key as the request named it (at most 256 characters).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;

use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;

/// Records queued before senders wait for the writer.
const QUEUE: usize = 65_536;
/// Most records in one write.
const BATCH: usize = 4_096;
/// How long the writer sleeps between batches.
const TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// One audit-log entry. Holds no key material and no plaintext.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditRecord {
    /// When, in milliseconds since the Unix epoch (written as RFC 3339 UTC).
    #[serde(rename = "time", serialize_with = "rfc3339_ms")]
    pub time_ms: i64,
    /// The caller's domain, when known.
    pub domain: String,
    /// The caller's region, when known.
    pub region: String,
    /// The RPC name, for example `GenerateDataKey`.
    pub operation: &'static str,
    /// The key concerned (full form), or as the request named it; empty when none.
    pub key_id: String,
    /// `ok`, or the error code.
    pub outcome: &'static str,
    /// The request ID.
    pub request_id: String,
}

fn rfc3339_ms<S: serde::Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_rfc3339_ms(*ms))
}

/// `2026-11-27T12:00:00.123Z` for milliseconds since the Unix epoch.
pub fn format_rfc3339_ms(ms: i64) -> String {
    let (secs, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant, "chrono-compatible low-level date
    // algorithms").
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

enum Msg {
    Record(AuditRecord),
    Flush(oneshot::Sender<()>),
    Close,
}

/// A handle to the audit writer. Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditLog(..)")
    }
}

fn write_batch(out: &mut BufWriter<File>, batch: &[AuditRecord]) -> std::io::Result<()> {
    for r in batch {
        serde_json::to_writer(&mut *out, r)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    out.get_ref().sync_data()
}

impl AuditLog {
    /// Opens (appending; creating with mode 0600) the log file and starts the writer as a blocking
    /// task of `tasks`. The writer stops after [`AuditLog::close`], or once every handle is gone.
    pub fn start(path: &Path, tasks: &TaskTracker) -> std::io::Result<Self> {
        let mut opts = OpenOptions::new();
        opts.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut out = BufWriter::with_capacity(1 << 20, opts.open(path)?);
        let (tx, mut rx) = mpsc::channel::<Msg>(QUEUE);
        tasks.spawn_blocking(move || {
                let mut batch = Vec::with_capacity(BATCH);
                let mut waiting = Vec::new();
                loop {
                    // Drain without registering a waker: senders never have to wake this thread,
                    // so a busy request path pays no system call for auditing.
                    let mut closed = false;
                    while batch.len() < BATCH {
                        match rx.try_recv() {
                            Ok(Msg::Record(r)) => batch.push(r),
                            Ok(Msg::Flush(ack)) => waiting.push(ack),
                            Err(mpsc::error::TryRecvError::Empty) => break,
                            Ok(Msg::Close) | Err(mpsc::error::TryRecvError::Disconnected) => {
                                closed = true;
                                break;
                            }
                        }
                    }
                    if !batch.is_empty() {
                        if let Err(e) = write_batch(&mut out, &batch) {
                            tracing::error!(error = %e, records = batch.len(), "audit log write failed");
                        }
                        batch.clear();
                    }
                    for ack in waiting.drain(..) {
                        let _ = ack.send(());
                    }
                    if closed {
                        return;
                    }
                    std::thread::sleep(TICK);
                }
            });
        Ok(Self { tx })
    }

    /// Queues one record; waits only when the writer is 65,536 records behind.
    pub async fn record(&self, r: AuditRecord) {
        if self.tx.send(Msg::Record(r)).await.is_err() {
            tracing::error!("audit writer has stopped; record lost");
        }
    }

    /// Waits until every record queued before this call is written.
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Flush(ack)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Has the writer write every record queued before this call and stop; records sent after it
    /// are lost (and logged as such). The server's task tracker sees the writer finish.
    pub async fn close(&self) {
        let _ = self.tx.send(Msg::Close).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (1_795_782_600_123, "2026-11-27T12:30:00.123Z"),
            (4_107_542_399_999, "2100-02-28T23:59:59.999Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
        ];
        for (ms, want) in cases {
            assert_eq!(format_rfc3339_ms(ms), want, "{ms}");
        }
    }

    #[tokio::test]
    async fn close_writes_what_is_queued_and_ends_the_writer_task() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let tasks = TaskTracker::new();
        let log = AuditLog::start(&path, &tasks).unwrap();
        for i in 0..3 {
            log.record(AuditRecord {
                time_ms: i,
                domain: "d".into(),
                region: "r".into(),
                operation: "Encrypt",
                key_id: String::new(),
                outcome: "ok",
                request_id: format!("req-{i}"),
            })
            .await;
        }
        log.close().await;
        tasks.close();
        tokio::time::timeout(std::time::Duration::from_secs(10), tasks.wait())
            .await
            .expect("the writer ends after close");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        // A handle used after close loses the record without blocking.
        log.flush().await;
    }
}
