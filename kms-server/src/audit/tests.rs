use std::path::Path;
use std::time::Duration;

use super::*;

#[test]
fn rfc3339_dates() {
    let cases = [
        (0, "1970-01-01T00:00:00.000Z"),
        (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        (1_795_782_600_123, "2026-11-27T12:30:00.123Z"),
        (4_107_542_399_999, "2100-02-28T23:59:59.999Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (253_402_207_199_999, "9999-12-30T21:59:59.999Z"),
        (
            i64::MAX,
            "9223372036854775807 ms since 1970-01-01T00:00:00Z",
        ),
    ];
    for (ms, want) in cases {
        assert_eq!(format_rfc3339_ms(ms), want, "{ms}");
    }
}

fn rec(i: usize) -> AuditRecord {
    AuditRecord {
        time_ms: 1_795_782_600_123,
        domain: "d".into(),
        region: "r".into(),
        operation: "Encrypt",
        key_id: String::new(),
        outcome: "ok",
        request_id: format!("req-{i:04}"),
        virtual_time_ms: None,
        daemon: None,
        injected: None,
    }
}

/// The request IDs of a log file's lines, every line whole JSON.
fn ids(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    assert!(text.is_empty() || text.ends_with('\n'), "{text:?}");
    text.lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}"));
            v["request_id"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn numbered(path: &Path, n: u32) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("{}.{n}", path.display()))
}

async fn stop(log: &AuditLog, tasks: &TaskTracker) {
    log.close().await;
    tasks.close();
    tokio::time::timeout(Duration::from_secs(10), tasks.wait())
        .await
        .expect("the writer ends after close");
}

#[tokio::test]
async fn close_writes_what_is_queued_and_ends_the_writer_task() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let tasks = TaskTracker::new();
    let log = AuditLog::start(&path, &AuditOptions::default(), &tasks).unwrap();
    for i in 0..3 {
        log.record(rec(i).line()).await;
    }
    stop(&log, &tasks).await;
    assert_eq!(ids(&path), ["req-0000", "req-0001", "req-0002"]);
    // A handle used after close loses the record without blocking.
    log.flush().await;
    assert_eq!(
        log.record_durable(rec(9).line()).await,
        Err(AuditUnavailable)
    );
}

#[tokio::test]
async fn a_durable_record_is_on_disk_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let tasks = TaskTracker::new();
    let log = AuditLog::start(&path, &AuditOptions::default(), &tasks).unwrap();
    log.record(rec(0).line()).await;
    log.record_durable(rec(1).line()).await.unwrap();
    // No flush: the batched line before it went with it, in order.
    assert_eq!(ids(&path), ["req-0000", "req-0001"]);
    stop(&log, &tasks).await;
}

#[tokio::test]
async fn size_rotation_keeps_n_files_of_whole_lines_under_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let line = serde_json::to_string(&rec(0)).unwrap().len() + 1;
    let options = AuditOptions {
        max_bytes: u64::try_from(line * 3 + line / 2).unwrap(),
        keep: 2,
        on_failure: AuditFailure::Refuse,
    };
    let tasks = TaskTracker::new();
    let log = AuditLog::start(&path, &options, &tasks).unwrap();
    for i in 0..20 {
        log.record(rec(i).line()).await;
        if i % 4 == 0 {
            log.flush().await;
        }
    }
    stop(&log, &tasks).await;
    // 20 lines, 3 a file: the newest 2 lines in the file, 3 each in .1 and .2, and no .3.
    assert_eq!(ids(&path), ["req-0018", "req-0019"]);
    assert_eq!(
        ids(&numbered(&path, 1)),
        ["req-0015", "req-0016", "req-0017"]
    );
    assert_eq!(
        ids(&numbered(&path, 2)),
        ["req-0012", "req-0013", "req-0014"]
    );
    assert!(!numbered(&path, 3).exists());
    for p in [path.clone(), numbered(&path, 1), numbered(&path, 2)] {
        assert!(std::fs::metadata(&p).unwrap().len() <= options.max_bytes);
    }
}

#[tokio::test]
async fn size_rotation_with_keep_0_keeps_only_the_current_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let line = serde_json::to_string(&rec(0)).unwrap().len() + 1;
    let options = AuditOptions {
        max_bytes: u64::try_from(line * 2).unwrap(),
        keep: 0,
        on_failure: AuditFailure::Refuse,
    };
    let tasks = TaskTracker::new();
    let log = AuditLog::start(&path, &options, &tasks).unwrap();
    for i in 0..5 {
        log.record(rec(i).line()).await;
    }
    stop(&log, &tasks).await;
    assert_eq!(ids(&path), ["req-0004"]);
    assert!(!numbered(&path, 1).exists());
}

#[tokio::test]
async fn reopen_after_a_move_sends_later_lines_to_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let moved = dir.path().join("audit.jsonl.old");
    let tasks = TaskTracker::new();
    let log = AuditLog::start(&path, &AuditOptions::default(), &tasks).unwrap();
    log.record(rec(0).line()).await;
    log.flush().await;
    std::fs::rename(&path, &moved).unwrap();
    // Moved, not replaced: lines keep going to the moved file until the reopen.
    log.record(rec(1).line()).await;
    log.reopen().await;
    log.record(rec(2).line()).await;
    stop(&log, &tasks).await;
    assert_eq!(ids(&moved), ["req-0000", "req-0001"]);
    assert_eq!(ids(&path), ["req-0002"]);
}

#[tokio::test]
async fn a_removed_log_is_created_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let tasks = TaskTracker::new();
    let log = AuditLog::start(&path, &AuditOptions::default(), &tasks).unwrap();
    log.record(rec(0).line()).await;
    log.flush().await;
    std::fs::remove_file(&path).unwrap();
    log.record(rec(1).line()).await;
    stop(&log, &tasks).await;
    assert_eq!(ids(&path), ["req-0001"]);
}

/// `path` as a symlink to `/dev/full`, where every write fails with ENOSPC.
#[cfg(unix)]
fn full_disk(path: &Path) {
    assert!(
        Path::new("/dev/full").exists(),
        "this test needs /dev/full to fail writes"
    );
    let _ = std::fs::remove_file(path);
    std::os::unix::fs::symlink("/dev/full", path).unwrap();
}

/// Re-points the symlink `path` to the real file `target`.
#[cfg(unix)]
fn heal(path: &Path, target: &Path) {
    let tmp = path.with_extension("tmp-link");
    std::os::unix::fs::symlink(target, &tmp).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn refuse_keeps_the_lines_and_writes_them_once_it_can() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let real = dir.path().join("real.jsonl");
    full_disk(&path);
    let tasks = TaskTracker::new();
    let log = AuditLog::start(&path, &AuditOptions::default(), &tasks).unwrap();
    let mut writable = log.writable();
    assert!(!log.refusing());
    log.record(rec(0).line()).await;
    assert_eq!(
        log.record_durable(rec(1).line()).await,
        Err(AuditUnavailable)
    );
    assert!(log.refusing());
    assert!(!*writable.borrow_and_update());
    heal(&path, &real);
    tokio::time::timeout(Duration::from_secs(10), writable.wait_for(|w| *w))
        .await
        .expect("recovers by itself")
        .unwrap();
    assert!(!log.refusing());
    log.record_durable(rec(2).line()).await.unwrap();
    assert_eq!(ids(&real), ["req-0000", "req-0001", "req-0002"]);
    assert_eq!(log.lines_lost(), 0);
    stop(&log, &tasks).await;
}

#[cfg(unix)]
#[tokio::test]
async fn continue_serves_and_counts_the_lines_it_loses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let real = dir.path().join("real.jsonl");
    full_disk(&path);
    let options = AuditOptions {
        on_failure: AuditFailure::Continue,
        ..AuditOptions::default()
    };
    let tasks = TaskTracker::new();
    let log = AuditLog::start(&path, &options, &tasks).unwrap();
    log.record(rec(0).line()).await;
    assert_eq!(log.record_durable(rec(1).line()).await, Ok(()));
    assert!(!log.refusing(), "continue never refuses");
    assert_eq!(log.lines_lost(), 2);
    heal(&path, &real);
    log.record_durable(rec(2).line()).await.unwrap();
    assert_eq!(ids(&real), ["req-0002"]);
    assert!(*log.writable().borrow());
    assert_eq!(log.lines_lost(), 2);
    stop(&log, &tasks).await;
}

#[cfg(unix)]
#[tokio::test]
async fn lines_still_unwritten_at_close_are_counted_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    full_disk(&path);
    let tasks = TaskTracker::new();
    let log = AuditLog::start(&path, &AuditOptions::default(), &tasks).unwrap();
    log.record(rec(0).line()).await;
    log.record(rec(1).line()).await;
    log.flush().await;
    assert!(log.refusing());
    assert_eq!(log.lines_lost(), 0, "kept, not lost, while running");
    stop(&log, &tasks).await;
    assert_eq!(log.lines_lost(), 2);
}

#[tokio::test]
async fn a_failed_reopen_refuses_until_the_path_can_be_opened_again() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let path = logs.join("audit.jsonl");
    let tasks = TaskTracker::new();
    let log = AuditLog::start(&path, &AuditOptions::default(), &tasks).unwrap();
    let mut writable = log.writable();
    log.record(rec(0).line()).await;
    log.flush().await;
    std::fs::rename(&logs, dir.path().join("logs.old")).unwrap();
    log.reopen().await;
    assert!(log.refusing(), "the folder is gone");
    std::fs::create_dir(&logs).unwrap();
    // No line needs writing: opening the path is enough.
    tokio::time::timeout(Duration::from_secs(10), writable.wait_for(|w| *w))
        .await
        .expect("recovers by itself")
        .unwrap();
    log.record(rec(1).line()).await;
    stop(&log, &tasks).await;
    assert_eq!(ids(&path), ["req-0001"]);
    assert_eq!(ids(&dir.path().join("logs.old/audit.jsonl")), ["req-0000"]);
}

/// The hand-written line is byte for byte what `serde_json` writes for the record, escapes and
/// all, so that readers of the log see no change.
#[test]
fn an_audit_line_is_what_serde_json_writes() {
    let awkward = [
        "",
        "plain",
        "quote \" backslash \\ slash /",
        "controls \u{0}\u{1}\u{8}\u{9}\u{a}\u{c}\u{d}\u{1f} del \u{7f}",
        "unicode é ✓ 🔑 \u{2028}",
        "\\\"\n",
    ];
    // One cache for every line, as the writer keeps it: seconds repeat, jump back and forth.
    let mut times = SecondCache::default();
    for (i, s) in awkward.iter().enumerate() {
        for time_ms in [
            0,
            1_795_782_600_123,
            1_795_782_600_999,
            1_795_782_600_007,
            1_795_782_601_000,
            1_795_782_600_456,
            -1,
            -1_001,
            253_402_300_799_999,
            253_402_300_800_000,
            i64::MIN,
            i64::MAX,
        ] {
            let r = AuditRecord {
                time_ms,
                domain: (*s).to_owned(),
                region: format!("r{s}"),
                operation: "Encrypt",
                key_id: s.repeat(2),
                outcome: "KMS.0308",
                request_id: format!("{s}-{i}"),
                virtual_time_ms: (i % 2 == 0).then_some(time_ms),
                daemon: (i % 4 < 2).then(|| std::sync::Arc::from(format!("d{s}"))),
                injected: (i % 3 != 0).then(|| format!("fail {s}")),
            };
            let mut ours = Vec::new();
            r.write_json(&mut ours, &mut times);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&r).unwrap(),
                "case {i}, time {time_ms}"
            );
        }
    }
}

/// Lines are written in the order their calls recorded them, whatever threads recorded them: a
/// baton passed between tasks on a multi-threaded runtime makes each line's record happen after
/// the previous one's, from a thread (and so a shard) of the scheduler's choosing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lines_recorded_one_after_another_on_any_thread_are_written_in_that_order() {
    const TASKS: usize = 4;
    const LINES: usize = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let tasks = TaskTracker::new();
    let log = AuditLog::start(&path, &AuditOptions::default(), &tasks).unwrap();
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..TASKS)
        .map(|_| tokio::sync::mpsc::unbounded_channel::<usize>())
        .unzip();
    let mut handles = tokio::task::JoinSet::new();
    for (t, mut rx) in rxs.into_iter().enumerate() {
        let next = txs[(t + 1) % TASKS].clone();
        let log = log.clone();
        handles.spawn(async move {
            while let Some(i) = rx.recv().await {
                if i == LINES {
                    return;
                }
                log.record(rec(i).line()).await;
                // Some batons wait a little, so that lines fall on both sides of the writer's
                // rounds.
                if i % 97 == 0 {
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
                let _ = next.send(i + 1);
            }
        });
    }
    txs[0].send(0).unwrap();
    drop(txs);
    tokio::time::timeout(Duration::from_secs(60), handles.join_all())
        .await
        .expect("the baton goes round");
    log.flush().await;
    let want: Vec<_> = (0..LINES).map(|i| format!("req-{i:04}")).collect();
    assert_eq!(ids(&path), want);
    stop(&log, &tasks).await;
}
