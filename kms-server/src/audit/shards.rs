//! Lines waiting for the writer: a buffer per group of threads, each line numbered with its
//! place in the log.
//!
//! A handler writes its line as JSON, from borrowed fields, straight into its thread's shard
//! under that shard's lock (uncontended but for the writer's brief swap), and takes the next
//! sequence number under the same lock. The writer reads the counter, then swaps every shard's
//! buffer out: any line numbered below what it read is then in the buffers it holds, because its
//! number was taken while the lock it has since taken was held. The writer merges the buffers by
//! number and keeps lines numbered at or past what it read for its next round, so that the file
//! holds lines in the order their calls recorded them, as a single queue would.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{AuditLine, SecondCache};

/// Bytes of lines all shards together hold before recorders wait for the writer: about 70,000
/// lines, 16 MiB of memory (and as much again in the writer's spare buffers).
pub(super) const BUFFERED_BYTES: usize = 16 << 20;

/// Serialized lines, each ending with `\n`, with their sequence numbers in increasing order.
#[derive(Debug, Default)]
pub(super) struct Lines {
    data: Vec<u8>,
    /// Each line's sequence number and where it ends in `data`.
    ends: Vec<(u64, usize)>,
}

impl Lines {
    /// Appends one line (with its `\n`).
    pub(super) fn push(&mut self, seq: u64, line: &[u8]) {
        self.data.extend_from_slice(line);
        self.ends.push((seq, self.data.len()));
    }

    /// Line `i`: its sequence number and bytes.
    fn line(&self, i: usize) -> Option<(u64, &[u8])> {
        let &(seq, end) = self.ends.get(i)?;
        let start = i.checked_sub(1).map_or(0, |p| self.ends[p].1);
        Some((seq, &self.data[start..end]))
    }

    fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }
}

struct Shard {
    lines: Lines,
    /// The text of the last second written into this shard.
    times: SecondCache,
}

/// The shards and the sequence counter.
pub(super) struct Shards {
    shards: Box<[Mutex<Shard>]>,
    /// Bytes of lines one shard holds before it refuses more.
    shard_bytes: usize,
    next: AtomicU64,
}

impl std::fmt::Debug for Shards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Shards({})", self.shards.len())
    }
}

/// Each thread's shard index before the modulo, handed out in turn at a thread's first line.
fn thread_slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: Cell<Option<usize>> = const { Cell::new(None) };
    }
    SLOT.with(|s| {
        s.get().unwrap_or_else(|| {
            let slot = NEXT.fetch_add(1, Ordering::Relaxed);
            s.set(Some(slot));
            slot
        })
    })
}

impl Shards {
    /// `n` shards (at least one), holding `bytes` of lines between them.
    pub(super) fn new(n: usize, bytes: usize) -> Self {
        let n = n.max(1);
        Self {
            shard_bytes: bytes / n,
            shards: (0..n)
                .map(|_| {
                    Mutex::new(Shard {
                        lines: Lines::default(),
                        times: SecondCache::default(),
                    })
                })
                .collect(),
            next: AtomicU64::new(0),
        }
    }

    /// As many shards as the machine runs threads at once, twice over so that two threads
    /// seldom share one.
    pub(super) fn for_this_machine() -> Self {
        let n = std::thread::available_parallelism().map_or(4, std::num::NonZero::get);
        Self::new(n.saturating_mul(2).min(64), BUFFERED_BYTES)
    }

    pub(super) fn len(&self) -> usize {
        self.shards.len()
    }

    fn lock(&self, i: usize) -> MutexGuard<'_, Shard> {
        self.shards[i % self.shards.len()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `line` into the calling thread's shard with the next sequence number; `false`,
    /// writing nothing, while that shard holds its share of [`BUFFERED_BYTES`] or more.
    pub(super) fn push(
        &self,
        line: &AuditLine<'_>,
        virtual_time_ms: Option<i64>,
        daemon: Option<&str>,
    ) -> bool {
        let mut guard = self.lock(thread_slot());
        let shard = &mut *guard;
        if shard.lines.data.len() >= self.shard_bytes {
            return false;
        }
        // Taken under the lock: see the module's comment.
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        line.write_json(
            &mut shard.lines.data,
            &mut shard.times,
            virtual_time_ms,
            daemon,
        );
        shard.lines.data.push(b'\n');
        let end = shard.lines.data.len();
        shard.lines.ends.push((seq, end));
        true
    }

    /// The number the next line gets. Once it is read, every line numbered below it is in its
    /// shard, or is as soon as that shard's lock is free.
    pub(super) fn next(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }

    /// Swaps shard `i`'s lines with `spare`, which must be empty.
    pub(super) fn take(&self, i: usize, spare: &mut Lines) {
        debug_assert!(spare.ends.is_empty());
        std::mem::swap(&mut self.lock(i).lines, spare);
    }
}

/// Calls `emit` with every line of `sources` numbered below `upto`, in number order, starting
/// from and advancing each source's cursor in `at`. Each source is in number order already.
pub(super) fn merge(
    sources: &[Lines],
    at: &mut [usize],
    upto: u64,
    mut emit: impl FnMut(u64, &[u8]),
) {
    loop {
        let mut least: Option<(u64, usize)> = None;
        for (i, s) in sources.iter().enumerate() {
            if let Some(&(seq, _)) = s.ends.get(at[i])
                && seq < upto
                && least.is_none_or(|(l, _)| seq < l)
            {
                least = Some((seq, i));
            }
        }
        let Some((_, i)) = least else { return };
        if let Some((seq, bytes)) = sources[i].line(at[i]) {
            emit(seq, bytes);
        }
        at[i] += 1;
    }
}

/// What the writer holds between rounds: the buffers swapped out of the shards, and the lines it
/// keeps for its next round.
#[derive(Debug)]
pub(super) struct Gathered {
    /// `sources[0]`: lines kept from the last round; `sources[1 + i]`: shard `i`'s lines.
    sources: Vec<Lines>,
    at: Vec<usize>,
    next_carry: Lines,
}

impl Gathered {
    pub(super) fn new(shards: &Shards) -> Self {
        Self {
            sources: (0..=shards.len()).map(|_| Lines::default()).collect(),
            at: vec![0; shards.len() + 1],
            next_carry: Lines::default(),
        }
    }

    /// Takes every shard's lines and calls `emit` with each line recorded before this call,
    /// in order; lines recorded while it runs wait for the next round.
    pub(super) fn round(&mut self, shards: &Shards, emit: impl FnMut(&[u8])) {
        let upto = shards.next();
        for (i, spare) in self.sources[1..].iter_mut().enumerate() {
            shards.take(i, spare);
        }
        self.at.fill(0);
        let mut emit = emit;
        merge(&self.sources, &mut self.at, upto, |_, line| emit(line));
        let carry = &mut self.next_carry;
        merge(&self.sources, &mut self.at, u64::MAX, |seq, line| {
            carry.push(seq, line);
        });
        for s in &mut self.sources {
            s.clear();
        }
        std::mem::swap(&mut self.sources[0], &mut self.next_carry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(items: &[(u64, &str)]) -> Lines {
        let mut l = Lines::default();
        for (seq, text) in items {
            l.push(*seq, text.as_bytes());
        }
        l
    }

    #[test]
    fn merge_emits_lines_below_the_bound_in_number_order() {
        let sources = [
            lines(&[(1, "b"), (4, "e"), (9, "j")]),
            lines(&[(0, "a"), (2, "c"), (3, "d")]),
            lines(&[]),
            lines(&[(5, "f"), (6, "g")]),
        ];
        let mut at = [0; 4];
        let mut out = Vec::new();
        merge(&sources, &mut at, 6, |seq, l| {
            out.push((seq, String::from_utf8(l.to_vec()).unwrap()));
        });
        let want: Vec<_> = ["a", "b", "c", "d", "e", "f"]
            .iter()
            .enumerate()
            .map(|(i, s)| (i as u64, (*s).to_owned()))
            .collect();
        assert_eq!(out, want);
        // The rest is still there for a second pass.
        let mut rest = Vec::new();
        merge(&sources, &mut at, u64::MAX, |seq, _| rest.push(seq));
        assert_eq!(rest, [6, 9]);
    }

    fn line(request_id: &str) -> AuditLine<'_> {
        AuditLine {
            time_ms: 0,
            domain: "d",
            region: "r",
            operation: "Encrypt",
            key_id: "",
            outcome: "ok",
            request_id,
            injected: None,
        }
    }

    fn ids(gathered: &mut Gathered, shards: &Shards) -> Vec<String> {
        let mut out = Vec::new();
        gathered.round(shards, |l| {
            let v: serde_json::Value = serde_json::from_slice(l).unwrap();
            assert!(l.ends_with(b"\n"));
            out.push(v["request_id"].as_str().unwrap().to_owned());
        });
        out
    }

    /// Threads recording at once, each into whichever shard it lands on: the rounds together give
    /// every line once, and each thread's lines in the order it recorded them.
    #[test]
    fn lines_from_many_threads_come_out_once_each_in_each_threads_order() {
        const THREADS: usize = 6;
        const PER_THREAD: usize = 2_000;
        let shards = Shards::new(3, BUFFERED_BYTES);
        let mut gathered = Gathered::new(&shards);
        let mut seen = Vec::new();
        std::thread::scope(|s| {
            let writers: Vec<_> = (0..THREADS)
                .map(|t| {
                    let shards = &shards;
                    s.spawn(move || {
                        for i in 0..PER_THREAD {
                            assert!(shards.push(&line(&format!("{t}-{i}")), None, None));
                        }
                    })
                })
                .collect();
            while writers.iter().any(|w| !w.is_finished()) {
                seen.extend(ids(&mut gathered, &shards));
            }
        });
        seen.extend(ids(&mut gathered, &shards));
        seen.extend(ids(&mut gathered, &shards));
        assert_eq!(seen.len(), THREADS * PER_THREAD);
        for t in 0..THREADS {
            let mine: Vec<_> = seen
                .iter()
                .filter(|id| id.starts_with(&format!("{t}-")))
                .cloned()
                .collect();
            let want: Vec<_> = (0..PER_THREAD).map(|i| format!("{t}-{i}")).collect();
            assert_eq!(mine, want, "thread {t}");
        }
    }

    #[test]
    fn a_full_shard_refuses_until_the_writer_takes_its_lines() {
        // 4 shards of 64 KiB: lines go in while the shard holds less than that.
        let shards = Shards::new(4, 256 << 10);
        let mut one = Vec::new();
        line("x").write_json(&mut one, &mut SecondCache::default(), None, None);
        let per_line = one.len() + 1;
        let mut gathered = Gathered::new(&shards);
        let mut n = 0;
        while shards.push(&line("x"), None, None) {
            n += 1;
        }
        assert_eq!(n, (64usize << 10).div_ceil(per_line));
        assert_eq!(ids(&mut gathered, &shards).len(), n);
        assert!(shards.push(&line("y"), None, None));
        assert_eq!(ids(&mut gathered, &shards), ["y"]);
    }
}
