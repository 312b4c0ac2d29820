//! Reading "until the buffer is full or the source ends", the one I/O primitive every reader of
//! the crate drives its I/O-free decoders with (header, chunk opener, multipart walk).
//!
//! `io::ErrorKind::Interrupted` is retried everywhere, as `std::io::Read::read_exact` does, by the
//! `std::io` and the tokio readers alike.

use crate::error::{Error, Result};
use std::io::{self, Read};

/// Read until `buf` is full or EOF; returns the bytes read.
pub(crate) fn read_up_to<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Fill `buf` exactly; EOF first is [`Error::Truncated`].
pub(crate) fn read_exact_or_truncated<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> Result<()> {
    if read_up_to(r, buf)? == buf.len() {
        Ok(())
    } else {
        Err(Error::Truncated)
    }
}

#[cfg(feature = "tokio")]
pub(crate) use self::async_fill::{poll_fill, read_exact_or_truncated_async, read_up_to_async};

#[cfg(feature = "tokio")]
mod async_fill {
    use crate::error::{Error, Result};
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll, ready};
    use tokio::io::{AsyncRead, ReadBuf};

    /// The poll form of [`read_up_to`](super::read_up_to): read into `buf[*filled..]` until it is
    /// full or the source ends, keeping the count in `filled` across `Pending`; returns the bytes
    /// `buf` holds. The caller resets `filled` for its next step.
    pub(crate) fn poll_fill<R: AsyncRead + Unpin + ?Sized>(
        r: &mut R,
        cx: &mut Context<'_>,
        buf: &mut [u8],
        filled: &mut usize,
    ) -> Poll<io::Result<usize>> {
        while *filled < buf.len() {
            let mut rb = ReadBuf::new(&mut buf[*filled..]);
            match ready!(Pin::new(&mut *r).poll_read(cx, &mut rb)) {
                Ok(()) => {
                    let n = rb.filled().len();
                    if n == 0 {
                        break;
                    }
                    *filled += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(*filled))
    }

    /// The async [`read_up_to`](super::read_up_to).
    pub(crate) async fn read_up_to_async<R: AsyncRead + Unpin + ?Sized>(
        r: &mut R,
        buf: &mut [u8],
    ) -> io::Result<usize> {
        let mut filled = 0;
        std::future::poll_fn(|cx| poll_fill(r, cx, buf, &mut filled)).await
    }

    /// The async [`read_exact_or_truncated`](super::read_exact_or_truncated).
    pub(crate) async fn read_exact_or_truncated_async<R: AsyncRead + Unpin + ?Sized>(
        r: &mut R,
        buf: &mut [u8],
    ) -> Result<()> {
        if read_up_to_async(r, buf).await? == buf.len() {
            Ok(())
        } else {
            Err(Error::Truncated)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out one byte per call, with an `Interrupted` error before each.
    struct Stutter<'a> {
        data: &'a [u8],
        interrupt: bool,
    }

    impl Read for Stutter<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = self.data.len().min(buf.len()).min(1);
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn interrupted_is_retried_and_eof_is_truncated() {
        let mut r = Stutter {
            data: b"abcdef",
            interrupt: false,
        };
        let mut buf = [0u8; 4];
        assert_eq!(read_up_to(&mut r, &mut buf).expect("read"), 4);
        assert_eq!(&buf, b"abcd");
        let mut rest = [0u8; 4];
        assert!(matches!(
            read_exact_or_truncated(&mut r, &mut rest),
            Err(Error::Truncated)
        ));
    }
}
