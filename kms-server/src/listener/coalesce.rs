//! Answers that leave a connection together, as Netty's `FlushConsolidationHandler` sends them.
//!
//! An HTTP/2 connection is served by one task, and each of its calls by a task of its own. A call
//! that finishes wakes the connection's task, and tokio runs a task woken that way next, ahead of
//! the calls already waiting to run. So with many calls in flight on one connection, every answer
//! left in a `writev` of its own, and woke the peer once per answer: on loopback that cost the
//! daemon more than all of a call's own work (BENCHMARKS.md, issue 13).
//!
//! [`Coalescer`] counts the requests that arrive (HTTP/2 `HEADERS` frames, from the frame heads of
//! the bytes read) and, when more than one has arrived since the connection last wrote, has the
//! connection's task yield to the scheduler once before it writes: the calls waiting to run then
//! finish first, and their answers leave with this one. A lone call, or one request at a time,
//! writes at once, since yielding would only cost another pass through the connection's task. It
//! only chooses when a write happens, never what is written: a count thrown off by bytes it does
//! not understand costs at most that one pass per write. A connection that does not open with
//! HTTP/2's preface (HTTP/1.1) is never held.

use std::task::Context;

/// What an HTTP/2 client sends first (RFC 9113, section 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The length of an HTTP/2 frame's head: length (24 bits), type, flags, stream (RFC 9113, 4.1).
const FRAME_HEAD: usize = 9;

/// The type of a `HEADERS` frame, which opens each request (RFC 9113, 6.2).
const HEADERS: u8 = 0x1;

/// One connection's count of requests read and its choice of when to write.
#[derive(Debug)]
pub(super) struct Coalescer {
    /// Where the reader is in the bytes the peer sends.
    reading: Reading,
    /// Requests read since the connection last wrote.
    requests: u32,
    /// The connection's task has yielded once before the write it is now making.
    yielded: bool,
}

#[derive(Debug)]
enum Reading {
    /// The preface's bytes matched so far.
    Preface(usize),
    /// A frame head's bytes read so far.
    Head([u8; FRAME_HEAD], usize),
    /// A frame's payload bytes still to skip.
    Payload(usize),
    /// Not HTTP/2: nothing is counted, no write is held.
    Off,
}

impl Default for Coalescer {
    fn default() -> Self {
        Self {
            reading: Reading::Preface(0),
            requests: 0,
            yielded: false,
        }
    }
}

impl Coalescer {
    /// Follows `bytes`, the next bytes read from the peer, counting the requests they open.
    pub(super) fn read(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match &mut self.reading {
                Reading::Off => return,
                Reading::Preface(matched) => {
                    let expected = &PREFACE[*matched..];
                    let n = expected.len().min(bytes.len());
                    if bytes[..n] != expected[..n] {
                        self.reading = Reading::Off;
                        return;
                    }
                    *matched += n;
                    bytes = &bytes[n..];
                    if *matched == PREFACE.len() {
                        self.reading = Reading::Head([0; FRAME_HEAD], 0);
                    }
                }
                Reading::Head(head, have) => {
                    let n = (FRAME_HEAD - *have).min(bytes.len());
                    head[*have..*have + n].copy_from_slice(&bytes[..n]);
                    *have += n;
                    bytes = &bytes[n..];
                    if *have == FRAME_HEAD {
                        if head[3] == HEADERS {
                            self.requests = self.requests.saturating_add(1);
                        }
                        let length = usize::from(head[0]) << 16
                            | usize::from(head[1]) << 8
                            | usize::from(head[2]);
                        self.reading = Reading::Payload(length);
                    }
                }
                Reading::Payload(left) => {
                    let n = (*left).min(bytes.len());
                    *left -= n;
                    bytes = &bytes[n..];
                    if *left == 0 {
                        self.reading = Reading::Head([0; FRAME_HEAD], 0);
                    }
                }
            }
        }
    }

    /// Before a write: `true` when the connection's task is to yield first (it has been woken
    /// again, and the write is to be tried on its next pass); `false` to write now.
    pub(super) fn hold(&mut self, cx: &Context<'_>) -> bool {
        if std::mem::take(&mut self.yielded) || self.requests < 2 {
            self.requests = 0;
            return false;
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};

    use super::*;

    /// A frame: its head and `payload` bytes of zeros.
    fn frame(kind: u8, payload: usize) -> Vec<u8> {
        let len = u32::try_from(payload).unwrap().to_be_bytes();
        let mut f = vec![len[1], len[2], len[3], kind, 0x4, 0, 0, 0, 1];
        f.resize(FRAME_HEAD + payload, 0);
        f
    }

    /// A gRPC request as a client sends it: a `HEADERS` frame and a `DATA` frame.
    fn request() -> Vec<u8> {
        [frame(HEADERS, 40), frame(0x0, 70)].concat()
    }

    #[derive(Default)]
    struct CountWakes(AtomicUsize);

    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether the write after `bytes` were read is held, and the wakes that cost.
    fn held_after(bytes: &[&[u8]]) -> (bool, usize) {
        let wakes = Arc::new(CountWakes::default());
        let waker = Waker::from(Arc::clone(&wakes));
        let mut c = Coalescer::default();
        for b in bytes {
            c.read(b);
        }
        let held = c.hold(&Context::from_waker(&waker));
        (held, wakes.0.load(Ordering::Relaxed))
    }

    #[test]
    fn a_write_is_held_once_when_several_requests_arrived_since_the_last() {
        let settings = frame(0x4, 6);
        let two = [PREFACE.as_slice(), &settings, &request(), &request()].concat();
        let one = [PREFACE.as_slice(), &settings, &request()].concat();
        let headers_head = frame(HEADERS, 0);
        let cases: [(&str, Vec<&[u8]>, bool); 6] = [
            ("two requests in one read", vec![&two], true),
            (
                "two requests split across reads at every byte",
                two.chunks(1).collect(),
                true,
            ),
            ("one request", vec![&one], false),
            ("nothing read", vec![], false),
            (
                "HTTP/1.1",
                vec![b"POST /v1.0/x/kms/create-datakey HTTP/1.1\r\n"],
                false,
            ),
            // A payload that looks like frame heads is skipped, not counted.
            (
                "HEADERS-like bytes inside a DATA payload",
                vec![
                    PREFACE,
                    &[0, 0, 18, 0, 1, 0, 0, 0, 1],
                    &headers_head,
                    &headers_head,
                ],
                false,
            ),
        ];
        for (name, reads, held) in cases {
            let (was_held, wakes) = held_after(&reads);
            assert_eq!(was_held, held, "{name}");
            assert_eq!(
                wakes,
                usize::from(held),
                "{name}: the task wakes itself when it yields"
            );
        }
    }

    #[test]
    fn the_write_after_a_yield_goes_out_and_the_count_starts_again() {
        let wakes = Arc::new(CountWakes::default());
        let waker = Waker::from(Arc::clone(&wakes));
        let cx = Context::from_waker(&waker);
        let mut c = Coalescer::default();
        c.read(&[PREFACE.as_slice(), &request(), &request(), &request()].concat());
        assert!(c.hold(&cx), "held before the first write");
        assert!(!c.hold(&cx), "the write after the yield is never held");
        assert!(
            !c.hold(&cx),
            "nothing read since: a further write goes out at once"
        );
        c.read(&request());
        assert!(!c.hold(&cx), "one request since the last write");
        c.read(&[request(), request()].concat());
        assert!(c.hold(&cx), "two since the last write");
        assert_eq!(wakes.0.load(Ordering::Relaxed), 2);
    }
}
