//! The audit log: every key-management and cryptographic call, as JSON lines, written off the
//! request path.
//!
//! A handler writes its line as JSON, from the call's borrowed fields, into a buffer its thread
//! shares with few others (a shard, see `shards`); one writer (a blocking task of the server's
//! [`TaskTracker`]) takes every shard's lines every 10 ms, merges them into the order the calls
//! recorded them, appends them to the log file and syncs it. So auditing a data-path call costs
//! it the line's text and an uncontended lock: no copied strings, no channel message, no disk
//! write, no thread wake-up. A handler waits only while its shard holds its share of 16 MiB that the
//! writer has not taken. The line of a key-lifecycle call is durable before its reply:
//! [`AuditLog::record_durable`] wakes the writer and waits until the line is written and synced
//! (lines that arrive together share one sync). [`AuditLog::flush`] waits until everything
//! recorded before it is on disk (or its write has failed); [`AuditLog::close`] has the writer
//! write what is recorded and stop. The log is the daemon's own file, apart from the key store,
//! so that daemons sharing one store each keep their own log and the data path never writes to
//! the store.
//!
//! One line per call, never with key material or plaintext:
//!
//! ```json
//! {"time":"2026-11-27T12:00:00.123Z","domain":"d1","region":"region","operation":"Decrypt",
//!  "key_id":"region:d1:key/522d6070-5ad3-4765-9737-9312ddc72cdb","outcome":"ok","request_id":"..."}
//! ```
//!
//! `outcome` is `ok` or the error code (`hang` for a call a fault rule hangs); `key_id` is the key in full form, or for a refused call the
//! key as the request named it (at most 256 characters).
//!
//! Rotation: [`AuditLog::reopen`] (SIGHUP) reopens the path, for logrotate's move-then-signal; with
//! [`AuditOptions::max_bytes`] the writer rotates by size itself, keeping `path.1` (newest) to
//! `path.N`. Rotation happens between lines, after a sync, so that no line is split or lost.
//!
//! A write that fails (disk full, file removed, permissions) makes the log *failing* until a write
//! succeeds again, and [`AuditFailure`] says what the daemon does meanwhile.

mod shards;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio_util::task::TaskTracker;

/// Requests to the writer (durable lines, flushes, reopens) queued before senders wait.
const QUEUE: usize = 4_096;
/// Most requests the writer takes in one round.
const BATCH: usize = 4_096;
/// How long the writer sleeps between batches (unless a durable record wakes it).
const TICK: Duration = Duration::from_millis(10);
/// Bytes of lines kept in memory while the log cannot be written (refuse mode); lines beyond it
/// are lost and counted.
const RETAIN_BYTES: usize = 16 << 20;

/// What the daemon does while the audit log cannot be written (`--audit-failure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuditFailure {
    /// Refuse every call with UNAVAILABLE (`KMSBOX.0503`) and report NOT_SERVING until a write
    /// succeeds again; lines not yet written are kept in memory (up to 16 MiB) and written then.
    #[default]
    Refuse,
    /// Keep serving; lines that cannot be written are dropped, counted
    /// ([`AuditLog::lines_lost`]) and logged at error level.
    Continue,
}

impl AuditFailure {
    /// `refuse` or `continue`, as the flag spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditFailure::Refuse => "refuse",
            AuditFailure::Continue => "continue",
        }
    }
}

/// How the audit log rotates and what happens when it cannot be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditOptions {
    /// Rotate before a line would take the file past this many bytes (a single longer line gets a
    /// file of its own); 0 never rotates (rotation left to logrotate and SIGHUP).
    pub max_bytes: u64,
    /// Rotated files kept by size rotation: `path.1` (newest) to `path.<keep>`; 0 keeps none.
    pub keep: u32,
    /// What happens while the log cannot be written.
    pub on_failure: AuditFailure,
}

impl Default for AuditOptions {
    /// No size rotation, 5 rotated files when it is turned on, refuse calls on failure.
    fn default() -> Self {
        Self {
            max_bytes: 0,
            keep: 5,
            on_failure: AuditFailure::Refuse,
        }
    }
}

/// One audit-log entry, owned: the line's fields as `serde_json` writes them (the form the tests
/// and offline tools hold lines in). Holds no key material and no plaintext.
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
    /// `ok`, or the error code (`hang` for a call a fault rule hangs).
    pub outcome: &'static str,
    /// The request ID.
    pub request_id: String,
    /// On a virtual clock (`--virtual-clock`), its time when the line was recorded (written as
    /// RFC 3339 UTC, `virtual_time`), beside the wall-clock `time`; stamped by [`AuditLog`].
    #[serde(
        rename = "virtual_time",
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_rfc3339_ms"
    )]
    pub virtual_time_ms: Option<i64>,
    /// What a fault rule injected into the call (`fail KMS.0209 (rule f1)`,
    /// `latency 120ms (rule f2)`, `hang (rule f3)`); absent for a call no rule touched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub injected: Option<String>,
    /// In a fleet, the ID of the daemon that wrote the line (`--daemon-id`); stamped by
    /// [`AuditLog`], absent for a daemon alone on SQLite.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_shared_str"
    )]
    pub daemon: Option<Arc<str>>,
}

fn opt_shared_str<S: serde::Serializer>(v: &Option<Arc<str>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(v),
        None => s.serialize_none(),
    }
}

fn rfc3339_ms<S: serde::Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_rfc3339_ms(*ms))
}

fn opt_rfc3339_ms<S: serde::Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => rfc3339_ms(ms, s),
        None => s.serialize_none(),
    }
}

/// `2026-11-27T12:00:00.123Z` for milliseconds since the Unix epoch; an instant outside the years
/// jiff represents (about ±9999) as its millisecond count, as kmsctl prints it.
pub fn format_rfc3339_ms(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => format!("{t:.3}"),
        Err(_) => format!("{ms} ms since 1970-01-01T00:00:00Z"),
    }
}

/// One audit-log entry as a handler knows it, borrowed from the call: what [`AuditLog::record`]
/// takes. The log adds `virtual_time` and `daemon` itself.
#[derive(Debug, Clone, Copy)]
pub struct AuditLine<'a> {
    /// When, in milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The caller's domain, when known.
    pub domain: &'a str,
    /// The caller's region, when known.
    pub region: &'a str,
    /// The RPC name, for example `GenerateDataKey`.
    pub operation: &'static str,
    /// The key concerned (full form), or as the request named it; empty when none.
    pub key_id: &'a str,
    /// `ok`, or the error code (`hang` for a call a fault rule hangs).
    pub outcome: &'static str,
    /// The request ID.
    pub request_id: &'a str,
    /// What a fault rule injected into the call; `None` for a call no rule touched.
    pub injected: Option<&'a str>,
}

impl AuditLine<'_> {
    /// Appends the line as one JSON object, byte for byte what `serde_json` writes for the same
    /// [`AuditRecord`] (a test holds the two equal), without its per-field machinery, which cost
    /// a twentieth of a data-path call.
    pub fn write_json(
        &self,
        out: &mut Vec<u8>,
        times: &mut SecondCache,
        virtual_time_ms: Option<i64>,
        daemon: Option<&str>,
    ) {
        // One reservation for a line with nothing to escape; each field's head is one constant
        // copy (its comma, quotes and name), which the compiler writes inline.
        out.reserve(
            LINE_HEADS_LEN
                + self.domain.len()
                + self.region.len()
                + self.operation.len()
                + self.key_id.len()
                + self.outcome.len()
                + self.request_id.len(),
        );
        out.extend_from_slice(b"{\"time\":\"");
        times.write(out, self.time_ms);
        string_field(out, b"\",\"domain\":\"", self.domain);
        string_field(out, b"\",\"region\":\"", self.region);
        constant_field(out, b"\",\"operation\":\"", self.operation);
        string_field(out, b"\",\"key_id\":\"", self.key_id);
        constant_field(out, b"\",\"outcome\":\"", self.outcome);
        string_field(out, b"\",\"request_id\":\"", self.request_id);
        if let Some(ms) = virtual_time_ms {
            string_field(out, b"\",\"virtual_time\":\"", &format_rfc3339_ms(ms));
        }
        if let Some(injected) = self.injected {
            string_field(out, b"\",\"injected\":\"", injected);
        }
        if let Some(daemon) = daemon {
            string_field(out, b"\",\"daemon\":\"", daemon);
        }
        out.extend_from_slice(b"\"}");
    }
}

/// The bytes of an audit line besides its string values: the heads of its seven fields, the
/// closing quote and brace (91), and the time (24 for years 0 to 9999).
const LINE_HEADS_LEN: usize = 91 + 24;

/// Closes the previous string value and appends the next field: `head` is `","name":"`.
#[inline]
fn string_field(out: &mut Vec<u8>, head: &'static [u8], value: &str) {
    out.extend_from_slice(head);
    crate::json::escaped(out, value);
}

/// As [`string_field`], for a value the code names (an operation, an outcome): nothing to escape,
/// so it is copied without the scan.
#[inline]
fn constant_field(out: &mut Vec<u8>, head: &'static [u8], value: &'static str) {
    debug_assert!(
        !crate::json::needs_escape(value.as_bytes()),
        "{value:?} needs escaping"
    );
    out.extend_from_slice(head);
    out.extend_from_slice(value.as_bytes());
}

impl AuditRecord {
    /// The record as a borrowed line.
    pub fn line(&self) -> AuditLine<'_> {
        AuditLine {
            time_ms: self.time_ms,
            domain: &self.domain,
            region: &self.region,
            operation: self.operation,
            key_id: &self.key_id,
            outcome: self.outcome,
            request_id: &self.request_id,
            injected: self.injected.as_deref(),
        }
    }

    /// Appends the record as one JSON object, as [`AuditLine::write_json`] does.
    pub fn write_json(&self, out: &mut Vec<u8>, times: &mut SecondCache) {
        self.line()
            .write_json(out, times, self.virtual_time_ms, self.daemon.as_deref());
    }
}

impl AuditLog {
    /// Records the automatic rotations of [`crate::keyring::due::DueWork`], each as a `RotateKey` by
    /// the daemon itself (request ID `scheduled-rotation`), on disk before it returns like every
    /// lifecycle line.
    pub async fn record_scheduled_rotations(
        &self,
        rotated: &[std::sync::Arc<crate::store::KeyRecord>],
        time_ms: i64,
    ) {
        for k in rotated {
            tracing::info!(key = %k.full_id(), version = k.current_version, "rotated on schedule");
            let key_id = k.full_id_string();
            let line = AuditLine {
                time_ms,
                domain: k.domain.as_str(),
                region: k.region.as_str(),
                operation: "RotateKey",
                key_id: &key_id,
                outcome: "ok",
                request_id: "scheduled-rotation",
                injected: None,
            };
            if self.record_durable(line).await.is_err() {
                tracing::error!(key = %k.full_id(), "the audit line of a scheduled rotation is not yet written");
            }
        }
    }
}

/// The text of the last second an audit time fell in: consecutive lines mostly share it, and
/// formatting a date costs more than the rest of a line.
#[derive(Debug, Default)]
pub struct SecondCache {
    /// The second (milliseconds since the epoch, floored to a second) and its text up to the `.`.
    last: Option<(i64, String)>,
}

impl SecondCache {
    /// Appends [`format_rfc3339_ms`]'s text for `ms`.
    fn write(&mut self, out: &mut Vec<u8>, ms: i64) {
        let millis = ms.rem_euclid(1000);
        let Some(second) = ms.checked_sub(millis) else {
            crate::json::escaped(out, &format_rfc3339_ms(ms));
            return;
        };
        if self.last.as_ref().is_none_or(|(s, _)| *s != second) {
            let text = format_rfc3339_ms(second);
            // Only a time jiff renders as `...:SS.000Z` splits at its fraction.
            let Some(prefix) = text.strip_suffix(".000Z") else {
                crate::json::escaped(out, &format_rfc3339_ms(ms));
                return;
            };
            self.last = Some((second, prefix.to_owned()));
        }
        if let Some((_, prefix)) = &self.last {
            out.extend_from_slice(prefix.as_bytes());
            let m = u16::try_from(millis).unwrap_or(0);
            let digit = |d: u16| b'0' + u8::try_from(d % 10).unwrap_or(0);
            out.extend_from_slice(&[b'.', digit(m / 100), digit(m / 10), digit(m), b'Z']);
        }
    }
}

/// At most this many characters of a key ID, as a request gave it, go into an audit line.
pub const AUDIT_KEY_CHARS: usize = 256;

/// The first [`AUDIT_KEY_CHARS`] characters of a key ID (or transit name) as a request gave it:
/// what the audit line of a refused call names.
pub fn requested_key_prefix(key: &str) -> &str {
    // A string has at least as many bytes as characters.
    if key.len() <= AUDIT_KEY_CHARS {
        return key;
    }
    key.char_indices()
        .nth(AUDIT_KEY_CHARS)
        .map_or(key, |(end, _)| &key[..end])
}

/// The audit log cannot be written and the daemon refuses calls it cannot audit
/// ([`AuditFailure::Refuse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the audit log cannot be written")]
pub struct AuditUnavailable;

/// What handles ask of the writer besides lines, which go through [`shards::Shards`].
enum Msg {
    /// The sender's line is in its shard and the sender waits until it is synced: `true` once it
    /// is, `false` if the write failed.
    Durable(oneshot::Sender<bool>),
    Flush(oneshot::Sender<()>),
    Reopen(oneshot::Sender<()>),
    Close,
}

/// What the handles and the writer share.
#[derive(Debug)]
struct Shared {
    on_failure: AuditFailure,
    /// The last write failed; cleared by the next one that succeeds.
    failing: AtomicBool,
    /// Lines dropped since start.
    lost: AtomicU64,
    /// `true` while the log can be written; the server's health follows it.
    writable: watch::Sender<bool>,
    /// Set to wake the writer before its tick.
    urgent: Mutex<bool>,
    wake: Condvar,
    /// Lines not yet taken by the writer.
    shards: shards::Shards,
    /// The writer has taken the shards' lines: recorders waiting for room try again.
    drained: Notify,
    /// The writer has stopped: lines recorded now are lost.
    stopped: AtomicBool,
}

impl Shared {
    fn wake(&self) {
        *self.urgent.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.wake.notify_one();
    }

    /// Sleeps for `tick`, or until [`Shared::wake`].
    fn sleep(&self, tick: Duration) {
        let urgent = self.urgent.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut urgent, _) = self
            .wake
            .wait_timeout_while(urgent, tick, |u| !*u)
            .unwrap_or_else(PoisonError::into_inner);
        *urgent = false;
    }
}

/// A handle to the audit writer. Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
    /// A virtual clock whose time each record gets beside the wall time.
    clock: Option<Arc<crate::clock::Clock>>,
    /// The daemon's ID each record gets, in a fleet.
    daemon: Option<Arc<str>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditLog(..)")
    }
}

impl AuditLog {
    /// Opens (appending; creating with mode 0600) the log file and starts the writer as a blocking
    /// task of `tasks`. The writer stops after [`AuditLog::close`], or once every handle is gone.
    pub fn start(
        path: &Path,
        options: &AuditOptions,
        tasks: &TaskTracker,
    ) -> std::io::Result<Self> {
        let (writable, _) = watch::channel(true);
        let shared = Arc::new(Shared {
            on_failure: options.on_failure,
            failing: AtomicBool::new(false),
            lost: AtomicU64::new(0),
            writable,
            urgent: Mutex::new(false),
            wake: Condvar::new(),
            shards: shards::Shards::for_this_machine(),
            drained: Notify::new(),
            stopped: AtomicBool::new(false),
        });
        let mut w = writer::Writer::open(path, options, Arc::clone(&shared))?;
        let (tx, mut rx) = mpsc::channel::<Msg>(QUEUE);
        let s = Arc::clone(&shared);
        tasks.spawn_blocking(move || {
            let mut gathered = shards::Gathered::new(&s.shards);
            let mut durable = Vec::new();
            let mut waiting = Vec::new();
            loop {
                let mut closed = false;
                let mut reopen = None;
                let mut n = 0;
                while n < BATCH {
                    match rx.try_recv() {
                        Ok(Msg::Durable(ack)) => durable.push(ack),
                        Ok(Msg::Flush(ack)) => waiting.push(ack),
                        Ok(Msg::Reopen(ack)) => {
                            // Lines recorded before it go to the old file.
                            reopen = Some(ack);
                            break;
                        }
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Ok(Msg::Close) | Err(mpsc::error::TryRecvError::Disconnected) => {
                            closed = true;
                            break;
                        }
                    }
                    n += 1;
                }
                if closed {
                    // Lines recorded from now on are lost; the round below takes the rest.
                    s.stopped.store(true, Ordering::Relaxed);
                }
                // After the messages: every line recorded before a message was sent is taken.
                gathered.round(&s.shards, |line| w.push(line));
                s.drained.notify_waiters();
                let written = w.write_pending();
                for ack in durable.drain(..) {
                    let _ = ack.send(written);
                }
                for ack in waiting.drain(..) {
                    let _ = ack.send(());
                }
                if let Some(ack) = reopen {
                    w.reopen();
                    let _ = ack.send(());
                    continue;
                }
                if closed {
                    w.close();
                    return;
                }
                if n < BATCH {
                    s.sleep(TICK);
                }
            }
        });
        Ok(Self {
            tx,
            shared,
            clock: None,
            daemon: None,
        })
    }

    /// Records one line; waits only while the writer is behind by this thread's share of the
    /// lines held in memory (16 MiB in all). For data-path calls: the line is written within
    /// about 10 ms, after the reply.
    pub async fn record(&self, line: AuditLine<'_>) {
        let pushed = match self.try_push(&line) {
            Some(pushed) => pushed,
            // Boxed: the waiting is rare, and its state would otherwise enlarge every handler's
            // future, which is moved (copied) several times per call.
            None => Box::pin(self.push_waiting(&line)).await,
        };
        if !pushed {
            tracing::error!("audit writer has stopped; record lost");
        }
    }

    /// Writes `line` into this thread's shard, stamped with the virtual time and the daemon's
    /// ID: `Some(true)` once written, `Some(false)` when the writer has stopped, `None` when the
    /// shard is full.
    fn try_push(&self, line: &AuditLine<'_>) -> Option<bool> {
        if self.shared.stopped.load(Ordering::Relaxed) {
            return Some(false);
        }
        let virtual_time_ms = self.clock.as_ref().and_then(|c| c.virtual_now_ms());
        self.shared
            .shards
            .push(line, virtual_time_ms, self.daemon.as_deref())
            .then_some(true)
    }

    /// [`AuditLog::try_push`], waiting for the writer's rounds while the shard is full; `false`
    /// when the writer has stopped.
    async fn push_waiting(&self, line: &AuditLine<'_>) -> bool {
        loop {
            // Registered before trying again, so that a round cannot slip between the try and
            // the wait.
            let drained = self.shared.drained.notified();
            let mut drained = std::pin::pin!(drained);
            drained.as_mut().enable();
            if let Some(pushed) = self.try_push(line) {
                return pushed;
            }
            drained.await;
        }
    }

    /// Writes one line and syncs it before returning, for calls whose line must be on disk
    /// before the reply (the key lifecycle). `Err` means the call must not be acknowledged: the
    /// line could not be written and the daemon refuses what it cannot audit. Under
    /// [`AuditFailure::Continue`] it is always `Ok`; a line that could not be written is counted
    /// in [`AuditLog::lines_lost`].
    pub async fn record_durable(&self, line: AuditLine<'_>) -> Result<(), AuditUnavailable> {
        let pushed = match self.try_push(&line) {
            Some(pushed) => pushed,
            None => self.push_waiting(&line).await,
        };
        let written = if pushed {
            let (ack, done) = oneshot::channel();
            if self.tx.send(Msg::Durable(ack)).await.is_ok() {
                self.shared.wake();
                done.await.unwrap_or(false)
            } else {
                false
            }
        } else {
            false
        };
        if !written && self.shared.stopped.load(Ordering::Relaxed) {
            tracing::error!("audit writer has stopped; record lost");
        }
        match (written, self.shared.on_failure) {
            (true, _) | (false, AuditFailure::Continue) => Ok(()),
            (false, AuditFailure::Refuse) => Err(AuditUnavailable),
        }
    }

    /// The log with every record stamped with `clock`'s time (`virtual_time`) when it is
    /// virtual.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<crate::clock::Clock>) -> Self {
        self.clock = clock.is_virtual().then_some(clock);
        self
    }

    /// The log with every record stamped with the daemon's ID (`daemon`), for a fleet.
    #[must_use]
    pub fn with_daemon_id(mut self, id: Option<Arc<str>>) -> Self {
        self.daemon = id;
        self
    }

    /// Whether calls are to be refused now: the log cannot be written and the daemon runs with
    /// [`AuditFailure::Refuse`].
    pub fn refusing(&self) -> bool {
        self.shared.on_failure == AuditFailure::Refuse
            && self.shared.failing.load(Ordering::Relaxed)
    }

    /// Lines dropped because they could not be written, since start.
    pub fn lines_lost(&self) -> u64 {
        self.shared.lost.load(Ordering::Relaxed)
    }

    /// What the daemon does while the log cannot be written.
    pub fn on_failure(&self) -> AuditFailure {
        self.shared.on_failure
    }

    /// `true` while the log can be written, `false` while writes fail; changes as they do.
    pub fn writable(&self) -> watch::Receiver<bool> {
        self.shared.writable.subscribe()
    }

    /// Waits until every record queued before this call is written, or its write has failed.
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Flush(ack)).await.is_ok() {
            self.shared.wake();
            let _ = done.await;
        }
    }

    /// Reopens the log's path (creating it), after writing every record queued before this call
    /// to the file open until now: logrotate's move-then-signal (SIGHUP). Returns once reopened.
    pub async fn reopen(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Reopen(ack)).await.is_ok() {
            self.shared.wake();
            let _ = done.await;
        }
    }

    /// Has the writer write every record queued before this call and stop; records sent after it
    /// are lost (and logged as such). The server's task tracker sees the writer finish.
    pub async fn close(&self) {
        if self.tx.send(Msg::Close).await.is_ok() {
            self.shared.wake();
        }
    }
}

#[cfg(test)]
mod tests;
