//! `io::ErrorKind::Interrupted` from the source is retried by every reader, `std::io` and tokio
//! alike (as `std::io::Read::read_exact` does): headers, single objects whole and by range, and
//! multipart objects whole, streamed and by range all decrypt through a source that interrupts
//! every other call and hands out a few bytes at a time.
#![cfg(feature = "tokio")]

use envelope::multipart::{MultipartObject, Upload};
use envelope::tokio_io::{AsyncDecryptor, open_range_async, read_header};
use envelope::{Backend, Decryptor, Header, LocalKek, ObjectContext, ObjectKey, ObjectKind};
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeek, ReadBuf};

/// Fails every other read with `Interrupted` (the first one, and the first after each seek), and
/// reads at most `step` bytes at a time.
struct Interrupting {
    inner: Cursor<Vec<u8>>,
    step: usize,
    interrupt: bool,
    interruptions: usize,
}

impl Interrupting {
    fn new(data: &[u8], step: usize) -> Interrupting {
        Interrupting {
            inner: Cursor::new(data.to_vec()),
            step,
            interrupt: false,
            interruptions: 0,
        }
    }

    fn tick(&mut self) -> bool {
        self.interrupt = !self.interrupt;
        self.interruptions += usize::from(self.interrupt);
        self.interrupt
    }
}

impl Read for Interrupting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.tick() {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = buf.len().min(self.step);
        Read::read(&mut self.inner, &mut buf[..n])
    }
}

impl Seek for Interrupting {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        // The first read after a seek is interrupted.
        self.interrupt = false;
        self.inner.seek(pos)
    }
}

impl AsyncRead for Interrupting {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.tick() {
            return Poll::Ready(Err(io::ErrorKind::Interrupted.into()));
        }
        let n = buf.remaining().min(this.step);
        let mut piece = vec![0u8; n];
        let got = Read::read(&mut this.inner, &mut piece)?;
        buf.put_slice(&piece[..got]);
        Poll::Ready(Ok(()))
    }
}

impl AsyncSeek for Interrupting {
    fn start_seek(self: Pin<&mut Self>, pos: SeekFrom) -> io::Result<()> {
        let this = self.get_mut();
        this.interrupt = false;
        this.inner.seek(pos).map(|_| ())
    }

    fn poll_complete(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Poll::Ready(Ok(self.get_mut().inner.position()))
    }
}

fn kek() -> LocalKek {
    LocalKek::aes_kw("kek", &[6u8; 32]).expect("kek")
}

fn ctx() -> ObjectContext {
    ObjectContext::new()
        .with("object-key", "intr")
        .expect("ctx")
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 241).to_le_bytes()[0]).collect()
}

fn sealed(pt: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    envelope::seal(&kek(), "kek", &ctx(), pt, &mut out, Backend::default()).expect("seal");
    out
}

#[test]
fn std_readers_retry_interrupted() {
    let pt = data(40_000);
    let obj = sealed(&pt);
    for step in [1000, 20_000] {
        let mut src = Interrupting::new(&obj, step);
        let h = Header::read_from(&mut src).expect("header");
        assert_eq!(h.key_id(), "kek");
        let mut src = Interrupting::new(&obj, step);
        let mut dec = Decryptor::new(&kek(), &ctx(), &mut src, Backend::default()).expect("dec");
        let mut out = Vec::new();
        Read::read_to_end(&mut dec, &mut out).expect("read");
        assert!(out == pt, "step {step}");
        assert!(src.interruptions > 2);

        let mut src = Interrupting::new(&obj, step);
        let mut out = Vec::new();
        envelope::open_range(
            &kek(),
            &ctx(),
            &mut src,
            10_000..30_000,
            &mut out,
            Backend::default(),
        )
        .expect("range");
        assert!(out == pt[10_000..30_000]);
    }
}

#[tokio::test]
async fn async_readers_retry_interrupted() {
    let pt = data(40_000);
    let obj = sealed(&pt);
    for step in [1000, 20_000] {
        let mut src = Interrupting::new(&obj, step);
        let h = read_header(&mut src).await.expect("header");
        assert_eq!(h.key_id(), "kek");
        let src = Interrupting::new(&obj, step);
        let mut dec = AsyncDecryptor::new(&kek(), &ctx(), src, Backend::default())
            .await
            .expect("dec");
        let mut out = Vec::new();
        dec.read_to_end(&mut out).await.expect("read");
        assert!(out == pt, "step {step}");

        let mut src = Interrupting::new(&obj, step);
        let mut out = Vec::new();
        open_range_async(
            &kek(),
            &ctx(),
            &mut src,
            10_000..30_000,
            &mut out,
            Backend::default(),
        )
        .await
        .expect("range");
        assert!(out == pt[10_000..30_000]);
    }
}

fn multipart() -> (MultipartObject, Vec<u8>, Vec<u8>) {
    let key = ObjectKey::generate(&kek(), "kek", &ctx(), ObjectKind::Multipart).expect("key");
    let header = key.header().clone();
    let upload = Upload::new(key, ctx(), Backend::default()).expect("upload");
    let (mut stored, mut pt, mut infos) = (Vec::new(), Vec::new(), Vec::new());
    for (n, len) in [(1u32, 20_000usize), (2, 5)] {
        let part = data(len);
        let mut w = upload.part_writer(n, Vec::new()).expect("part");
        w.write_all(&part).expect("write");
        let (body, info) = w.finish().expect("finish");
        stored.extend_from_slice(&body);
        pt.extend_from_slice(&part);
        infos.push(info);
    }
    let manifest = upload.complete(&infos).expect("manifest");
    let key = ObjectKey::unwrap_with(&kek(), header, &ctx()).expect("unwrap");
    let object =
        MultipartObject::open(key, ctx(), manifest.as_bytes(), Backend::default()).expect("open");
    (object, stored, pt)
}

#[tokio::test]
async fn multipart_readers_retry_interrupted() {
    let (object, stored, pt) = multipart();
    let len = u64::try_from(pt.len()).expect("len");
    let range = 100..len - 1;
    let expected = &pt[100..pt.len() - 1];
    for step in [700, 20_000] {
        let mut out = Vec::new();
        object
            .copy_to(Interrupting::new(&stored, step), &mut out)
            .expect("copy_to");
        assert!(out == pt);
        let mut out = Vec::new();
        Read::read_to_end(
            &mut object.reader(Interrupting::new(&stored, step)),
            &mut out,
        )
        .expect("reader");
        assert!(out == pt);
        let mut out = Vec::new();
        object
            .read_range(
                &mut Interrupting::new(&stored, step),
                range.clone(),
                &mut out,
            )
            .expect("read_range");
        assert!(out == expected);

        let mut out = Vec::new();
        object
            .copy_to_async(Interrupting::new(&stored, step), &mut out)
            .await
            .expect("copy_to_async");
        assert!(out == pt);
        let mut out = Vec::new();
        object
            .reader_async(Interrupting::new(&stored, step))
            .read_to_end(&mut out)
            .await
            .expect("reader_async");
        assert!(out == pt);
        let mut out = Vec::new();
        object
            .read_range_async(
                &mut Interrupting::new(&stored, step),
                range.clone(),
                &mut out,
            )
            .await
            .expect("read_range_async");
        assert!(out == expected);
    }
}
