//! gRPC's message framing for unary calls, read and written by hand: a request body must be
//! exactly one uncompressed length-prefixed message no larger than the limit, and a response is
//! one message frame followed by `grpc-status: 0` trailers.
//!
//! tonic's generic unary path (a streaming decoder, an encoder stream and their state machines)
//! costs about an eighth of a bare RPC per call for what is, on this service, one small message
//! each way; this module does the same work directly.

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::Body as _;
use prost::bytes::{Buf, BufMut, Bytes, BytesMut};
use tonic::Status;
use tonic::body::Body;

/// The length of a message frame's prefix: the compressed flag and the big-endian length.
const PREFIX_LEN: usize = 5;

/// Why a request body is not one unary message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(super) enum Unframed {
    /// The body ended before any message.
    #[error("the request carries no message")]
    Missing,
    /// The body ended inside the message.
    #[error("the request message is cut short: {got} of {announced} bytes arrived")]
    Truncated { got: usize, announced: usize },
    /// Bytes follow the message: a second message, or garbage.
    #[error("a unary call carries one message; the request body goes on past it")]
    Extra,
    /// The frame is flagged compressed (the service accepts no `grpc-encoding`), or its flag is
    /// neither 0 nor 1.
    #[error(
        "the message frame's flag is {0}; this service takes uncompressed messages only (flag 0)"
    )]
    Flag(u8),
    /// The frame announces more bytes than the limit.
    #[error("the message is {announced} bytes, over the limit of {limit} bytes")]
    TooLarge { announced: usize, limit: usize },
}

/// How the request body failed to give one message: the body's own error (a reset stream, a
/// transport failure) or the bytes it carried.
pub(super) enum ReadError {
    Body(Status),
    Unframed(Unframed),
}

/// Reads `body` to its end and returns its one message, checking the frame's prefix as soon as it
/// arrives so that an oversized message is refused before its bytes are read. A message that came
/// in one DATA frame is returned without a copy. Request trailers are read and ignored: every
/// piece of metadata this service reads is a header.
pub(super) async fn read_unary(mut body: Body, limit: usize) -> Result<Bytes, ReadError> {
    let mut received = Received::default();
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        match frame {
            None => break,
            Some(Err(status)) => return Err(ReadError::Body(status)),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    received.push(data);
                    received.check(limit).map_err(ReadError::Unframed)?;
                }
            }
        }
    }
    received.message().map_err(ReadError::Unframed)
}

/// The bytes of a request body so far.
#[derive(Default)]
enum Received {
    #[default]
    Nothing,
    /// One chunk, kept as the transport handed it over.
    One(Bytes),
    /// Several chunks, joined.
    Joined(BytesMut),
}

impl Received {
    fn push(&mut self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        *self = match std::mem::take(self) {
            Self::Nothing => Self::One(data),
            Self::One(first) => {
                let mut joined = BytesMut::with_capacity(first.len() + data.len());
                joined.extend_from_slice(&first);
                joined.extend_from_slice(&data);
                Self::Joined(joined)
            }
            Self::Joined(mut joined) => {
                joined.extend_from_slice(&data);
                Self::Joined(joined)
            }
        };
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Self::Nothing => &[],
            Self::One(b) => b,
            Self::Joined(b) => b,
        }
    }

    /// The frame's announced message length, once its prefix is in, checked against `limit`,
    /// and no bytes past the message.
    fn check(&self, limit: usize) -> Result<Option<usize>, Unframed> {
        let bytes = self.bytes();
        let Some(prefix) = bytes.get(..PREFIX_LEN) else {
            return Ok(None);
        };
        let mut prefix = prefix;
        let flag = prefix.get_u8();
        if flag != 0 {
            return Err(Unframed::Flag(flag));
        }
        let announced = usize::try_from(prefix.get_u32()).unwrap_or(usize::MAX);
        if announced > limit {
            return Err(Unframed::TooLarge { announced, limit });
        }
        if bytes.len() - PREFIX_LEN > announced {
            return Err(Unframed::Extra);
        }
        Ok(Some(announced))
    }

    /// The message, once the body has ended.
    fn message(self) -> Result<Bytes, Unframed> {
        let announced = self.check(usize::MAX)?;
        let body = match self {
            Self::Nothing => return Err(Unframed::Missing),
            Self::One(b) => b,
            Self::Joined(b) => b.freeze(),
        };
        let Some(announced) = announced else {
            return Err(Unframed::Truncated {
                got: body.len(),
                announced: PREFIX_LEN,
            });
        };
        let got = body.len() - PREFIX_LEN;
        if got < announced {
            return Err(Unframed::Truncated { got, announced });
        }
        Ok(body.slice(PREFIX_LEN..))
    }
}

/// `message` as one uncompressed gRPC message frame.
pub(super) fn frame(message: &impl prost::Message) -> Result<Bytes, Status> {
    let len = message.encoded_len();
    let announced = u32::try_from(len)
        .map_err(|_| Status::internal("the response message is too large to frame"))?;
    let mut buf = BytesMut::with_capacity(PREFIX_LEN + len);
    buf.put_u8(0);
    buf.put_u32(announced);
    message
        .encode(&mut buf)
        .map_err(|e| Status::internal(format!("the response message does not encode: {e}")))?;
    Ok(buf.freeze())
}

/// A unary response's body: the message frame, then the `grpc-status: 0` trailers.
pub(super) struct UnaryBody {
    frame: Option<Bytes>,
    done: bool,
}

impl UnaryBody {
    pub(super) fn new(frame: Bytes) -> Self {
        Self {
            frame: Some(frame),
            done: false,
        }
    }
}

impl http_body::Body for UnaryBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
        if let Some(frame) = self.frame.take() {
            return Poll::Ready(Some(Ok(http_body::Frame::data(frame))));
        }
        if self.done {
            return Poll::Ready(None);
        }
        self.done = true;
        let mut trailers = http::HeaderMap::with_capacity(1);
        trailers.insert(Status::GRPC_STATUS, http::HeaderValue::from_static("0"));
        Poll::Ready(Some(Ok(http_body::Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    // No exact size hint: hyper would turn it into a `content-length` header, which gRPC does not
    // send and which would cost every response a header field.
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(flag: u8, announced: u32, message: &[u8]) -> Vec<u8> {
        let mut f = vec![flag];
        f.extend_from_slice(&announced.to_be_bytes());
        f.extend_from_slice(message);
        f
    }

    /// `body` read as [`read_unary`] reads it, delivered in pieces cut at `cuts` (ascending).
    fn read(body: &[u8], cuts: &[usize], limit: usize) -> Result<Bytes, Unframed> {
        let mut r = Received::default();
        let mut at = 0;
        for &cut in cuts.iter().chain([&body.len()]) {
            r.push(Bytes::copy_from_slice(&body[at..cut]));
            r.check(limit)?;
            at = cut;
        }
        r.message()
    }

    #[test]
    fn a_body_is_exactly_one_uncompressed_message_under_the_limit() {
        let limit = 16;
        /// What reading a body gives.
        type Read<'a> = Result<&'a [u8], Unframed>;
        // (rule, body, where the transport cut it, what reading it gives)
        let cases: [(&str, Vec<u8>, &[usize], Read<'_>); 11] = [
            ("one frame", framed(0, 3, b"abc"), &[], Ok(b"abc")),
            (
                "cut inside the prefix",
                framed(0, 3, b"abc"),
                &[2],
                Ok(b"abc"),
            ),
            (
                "cut in every byte",
                framed(0, 3, b"abc"),
                &[1, 2, 3, 4, 5, 6, 7],
                Ok(b"abc"),
            ),
            ("an empty message", framed(0, 0, b""), &[], Ok(b"")),
            ("no bytes at all", Vec::new(), &[], Err(Unframed::Missing)),
            (
                "a prefix cut short",
                vec![0, 0, 0],
                &[],
                Err(Unframed::Truncated {
                    got: 3,
                    announced: 5,
                }),
            ),
            (
                "a message cut short",
                framed(0, 3, b"ab"),
                &[],
                Err(Unframed::Truncated {
                    got: 2,
                    announced: 3,
                }),
            ),
            (
                "a second message",
                [framed(0, 1, b"a"), framed(0, 1, b"b")].concat(),
                &[6],
                Err(Unframed::Extra),
            ),
            (
                "compressed",
                framed(1, 3, b"abc"),
                &[],
                Err(Unframed::Flag(1)),
            ),
            (
                "an unknown flag",
                framed(7, 3, b"abc"),
                &[],
                Err(Unframed::Flag(7)),
            ),
            (
                "over the limit",
                framed(0, 17, b""),
                &[],
                Err(Unframed::TooLarge {
                    announced: 17,
                    limit: 16,
                }),
            ),
        ];
        for (rule, body, cuts, want) in cases {
            let got = read(&body, cuts, limit);
            assert_eq!(got.as_deref(), want.as_deref(), "{rule}");
        }
    }

    #[test]
    fn where_the_transport_cuts_a_body_does_not_change_what_it_reads_as() {
        use proptest::collection::vec;
        use proptest::prelude::*;
        let flag = prop_oneof![Just(0u8), Just(1u8), any::<u8>()];
        proptest::proptest!(|(
            flag in flag,
            message in vec(any::<u8>(), 0..40),
            announced_off_by in -3i64..=3,
            extra in vec(any::<u8>(), 0..3),
            mut cuts in vec(0usize..60, 0..6),
        )| {
            let len = i64::try_from(message.len()).unwrap_or(0);
            let announced = u32::try_from((len + announced_off_by).max(0)).unwrap_or(0);
            let body = [framed(flag, announced, &message), extra].concat();
            cuts.retain(|&c| c <= body.len());
            cuts.sort_unstable();
            let whole = read(&body, &[], 32);
            prop_assert_eq!(&read(&body, &cuts, 32), &whole);
            if let Ok(m) = &whole {
                prop_assert_eq!(&m[..], &body[PREFIX_LEN..], "the message is the rest of the body");
                prop_assert_eq!(m.len(), usize::try_from(announced).unwrap_or(usize::MAX));
                prop_assert!(flag == 0 && m.len() <= 32);
            }
        });
    }

    #[test]
    fn an_oversized_message_is_refused_once_its_prefix_is_in() {
        // Only the prefix has arrived: the limit is checked on what it announces.
        assert_eq!(
            read(&framed(0, 1 << 30, b""), &[], 4 << 20),
            Err(Unframed::TooLarge {
                announced: 1 << 30,
                limit: 4 << 20
            }),
            "refused before the message's bytes are read"
        );
    }

    #[test]
    fn a_message_in_one_chunk_is_not_copied() {
        let chunk = Bytes::from(framed(0, 3, b"abc"));
        let start = chunk.as_ptr();
        let mut r = Received::default();
        r.push(chunk);
        let message = r.message().expect("one message");
        assert_eq!(message.as_ptr(), start.wrapping_add(PREFIX_LEN));
    }

    #[test]
    fn a_response_is_one_frame_then_ok_trailers() {
        let message = kms_proto::v1::GenerateRandomResponse { random: vec![9; 3] };
        let f = frame(&message).expect("encodes");
        assert_eq!(&f[..], &[0, 0, 0, 0, 5, 0x0a, 3, 9, 9, 9][..]);
        let mut body = UnaryBody::new(f.clone());
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut next = || match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(frame) => frame.map(|f| f.expect("no error")),
            Poll::Pending => panic!("a unary body never waits"),
        };
        assert_eq!(next().and_then(|f| f.into_data().ok()), Some(f));
        let trailers = next()
            .and_then(|f| f.into_trailers().ok())
            .expect("trailers");
        assert_eq!(
            trailers.get("grpc-status").map(|v| v.as_bytes()),
            Some(&b"0"[..])
        );
        assert_eq!(trailers.len(), 1);
        assert!(next().is_none());
        assert!(body.is_end_stream());
    }
}
