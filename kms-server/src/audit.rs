//! The audit log: every key-management and cryptographic call, written off the request path.
//!
//! Handlers hand a record to a bounded channel; one writer thread drains it every 10 ms and
//! appends whole batches to the store in one transaction each, so that auditing costs a request a
//! channel send, not a disk write nor a thread wake-up. [`AuditLog::flush`] waits until everything sent before it is on disk.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::store::{AuditRecord, KeyStore};

/// Records queued before senders wait for the writer.
const QUEUE: usize = 65_536;
/// Most records in one transaction.
const BATCH: usize = 4_096;
/// How long the writer sleeps between batches.
const TICK: std::time::Duration = std::time::Duration::from_millis(10);

enum Msg {
    Record(AuditRecord),
    Flush(oneshot::Sender<()>),
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

impl AuditLog {
    /// Starts the writer thread.
    pub fn start(store: Arc<dyn KeyStore>) -> std::io::Result<Self> {
        let (tx, mut rx) = mpsc::channel::<Msg>(QUEUE);
        std::thread::Builder::new()
            .name("kms-audit".into())
            .spawn(move || {
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
                            Err(mpsc::error::TryRecvError::Disconnected) => {
                                closed = true;
                                break;
                            }
                        }
                    }
                    if !batch.is_empty() {
                        if let Err(e) = store.append_audit(&batch) {
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
            })?;
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
}
