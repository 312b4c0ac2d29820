//! `aws-chunked` request bodies: `hex-size[;chunk-signature=sig]\r\n data \r\n`, ending with a
//! zero-size chunk, then (the `...-TRAILER` forms) trailing headers and an empty line.
//!
//! For `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]` every chunk's signature chains from the
//! request's signature and is checked when the chunk is complete, and the trailer's signature
//! when the trailer is; `STREAMING-UNSIGNED-PAYLOAD-TRAILER` is only decoded. The decoder holds
//! one header line (at most [`MAX_LINE`] bytes) and a hash state, whatever the chunk size.

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::signatures_match;
use super::v4::{hmac, sha256_hex};

/// The longest chunk header or trailer line accepted.
pub const MAX_LINE: usize = 4096;

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Whether the chunks are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkSigning {
    /// Each chunk signed; with `trailer`, trailing headers signed too.
    Signed {
        /// Whether a signed trailer follows the last chunk.
        trailer: bool,
    },
    /// Not signed; trailing headers may follow.
    Unsigned,
}

/// What checking the chunk signatures needs from the request's signature.
#[derive(Clone)]
pub struct ChunkContext {
    /// Signed or not.
    pub signing: ChunkSigning,
    /// The request's V4 signing key.
    pub key: Zeroizing<[u8; 32]>,
    /// `x-amz-date`.
    pub amz_date: String,
    /// The credential scope.
    pub scope: String,
    /// The request's (seed) signature.
    pub seed_signature: String,
}

impl std::fmt::Debug for ChunkContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkContext")
            .field("signing", &self.signing)
            .finish_non_exhaustive()
    }
}

/// A malformed or wrongly signed chunked body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The framing is wrong.
    #[error("malformed aws-chunked body: {0}")]
    Malformed(&'static str),
    /// A chunk or trailer signature does not match.
    #[error("an aws-chunked chunk signature does not match")]
    Signature,
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    Header,
    Data,
    DataEnd,
    Trailer,
    Done,
}

/// The streaming decoder.
#[derive(Debug)]
pub struct ChunkDecoder {
    ctx: ChunkContext,
    prev: String,
    state: State,
    line: Vec<u8>,
    chunk_sig: Option<String>,
    remaining: u64,
    hasher: Sha256,
    trailer: String,
    trailer_sig: Option<String>,
    decoded: u64,
}

impl ChunkDecoder {
    /// A decoder for a request with this context.
    pub fn new(ctx: ChunkContext) -> Self {
        Self {
            prev: ctx.seed_signature.clone(),
            ctx,
            state: State::Header,
            line: Vec::new(),
            chunk_sig: None,
            remaining: 0,
            hasher: Sha256::new(),
            trailer: String::new(),
            trailer_sig: None,
            decoded: 0,
        }
    }

    /// The decoded bytes so far.
    pub fn decoded_len(&self) -> u64 {
        self.decoded
    }

    /// The trailing headers received (lower-case name, value), once the body is complete.
    pub fn trailers(&self) -> Vec<(String, String)> {
        self.trailer
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
    }

    fn signed(&self) -> bool {
        matches!(self.ctx.signing, ChunkSigning::Signed { .. })
    }

    fn check_chunk(&mut self, data_hash: &str) -> Result<(), ChunkError> {
        if !self.signed() {
            return Ok(());
        }
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{EMPTY_SHA256}\n{data_hash}",
            self.ctx.amz_date, self.ctx.scope, self.prev
        );
        let expected = hex::encode(hmac(&self.ctx.key[..], sts.as_bytes()));
        let given = self.chunk_sig.take().ok_or(ChunkError::Signature)?;
        if !signatures_match(&expected, &given) {
            return Err(ChunkError::Signature);
        }
        self.prev = expected;
        Ok(())
    }

    /// Takes one line (without CRLF) from `input` into `self.line`; `true` when complete.
    fn take_line(&mut self, input: &mut &[u8]) -> Result<bool, ChunkError> {
        while let Some((&b, rest)) = input.split_first() {
            *input = rest;
            if b == b'\n' {
                if self.line.last() != Some(&b'\r') {
                    return Err(ChunkError::Malformed("line without CRLF"));
                }
                self.line.pop();
                return Ok(true);
            }
            self.line.push(b);
            if self.line.len() > MAX_LINE {
                return Err(ChunkError::Malformed("line too long"));
            }
        }
        Ok(false)
    }

    /// Decodes `input`, appending the payload bytes to `out`.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), ChunkError> {
        while !input.is_empty() {
            match self.state {
                State::Header => {
                    if !self.take_line(&mut input)? {
                        continue;
                    }
                    let line = String::from_utf8(std::mem::take(&mut self.line))
                        .map_err(|_| ChunkError::Malformed("chunk header is not text"))?;
                    let (size, ext) = match line.split_once(';') {
                        Some((s, e)) => (s, Some(e)),
                        None => (line.as_str(), None),
                    };
                    let size = u64::from_str_radix(size.trim(), 16)
                        .map_err(|_| ChunkError::Malformed("chunk size is not hex"))?;
                    self.chunk_sig = ext
                        .and_then(|e| e.trim().strip_prefix("chunk-signature="))
                        .map(str::to_owned);
                    if self.signed() && self.chunk_sig.is_none() {
                        return Err(ChunkError::Signature);
                    }
                    if size == 0 {
                        self.check_chunk(EMPTY_SHA256)?;
                        self.state = State::Trailer;
                    } else {
                        self.remaining = size;
                        self.hasher = Sha256::new();
                        self.state = State::Data;
                    }
                }
                State::Data => {
                    let n = usize::try_from(self.remaining)
                        .unwrap_or(usize::MAX)
                        .min(input.len());
                    let (data, rest) = input.split_at(n);
                    self.hasher.update(data);
                    out.extend_from_slice(data);
                    self.decoded += n as u64;
                    self.remaining -= n as u64;
                    input = rest;
                    if self.remaining == 0 {
                        let hash = hex::encode(std::mem::take(&mut self.hasher).finalize());
                        self.check_chunk(&hash)?;
                        self.state = State::DataEnd;
                    }
                }
                State::DataEnd => {
                    if !self.take_line(&mut input)? {
                        continue;
                    }
                    if !std::mem::take(&mut self.line).is_empty() {
                        return Err(ChunkError::Malformed("chunk data longer than its size"));
                    }
                    self.state = State::Header;
                }
                State::Trailer => {
                    if !self.take_line(&mut input)? {
                        continue;
                    }
                    let line = String::from_utf8(std::mem::take(&mut self.line))
                        .map_err(|_| ChunkError::Malformed("trailer is not text"))?;
                    if line.is_empty() {
                        self.check_trailer()?;
                        self.state = State::Done;
                    } else if let Some(sig) = line.strip_prefix("x-amz-trailer-signature:") {
                        self.trailer_sig = Some(sig.trim().to_owned());
                    } else {
                        let (name, value) = line
                            .split_once(':')
                            .ok_or(ChunkError::Malformed("trailer line without ':'"))?;
                        self.trailer.push_str(&format!(
                            "{}:{}\n",
                            name.trim().to_ascii_lowercase(),
                            value.trim()
                        ));
                    }
                }
                State::Done => return Err(ChunkError::Malformed("bytes after the last chunk")),
            }
        }
        Ok(())
    }

    fn check_trailer(&mut self) -> Result<(), ChunkError> {
        if self.ctx.signing != (ChunkSigning::Signed { trailer: true }) {
            return Ok(());
        }
        let sts = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
            self.ctx.amz_date,
            self.ctx.scope,
            self.prev,
            sha256_hex(self.trailer.as_bytes())
        );
        let expected = hex::encode(hmac(&self.ctx.key[..], sts.as_bytes()));
        match &self.trailer_sig {
            Some(given) if signatures_match(&expected, given) => Ok(()),
            _ => Err(ChunkError::Signature),
        }
    }

    /// Ends the body: `Err` unless the last chunk (and trailer) arrived.
    pub fn finish(&self) -> Result<(), ChunkError> {
        if self.state == State::Done {
            Ok(())
        } else {
            Err(ChunkError::Malformed(
                "the body ended before its last chunk",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::v4::signing_key;

    fn ctx(signing: ChunkSigning) -> ChunkContext {
        ChunkContext {
            signing,
            key: signing_key(
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "20130524",
                "us-east-1",
                "s3",
            ),
            amz_date: "20130524T000000Z".into(),
            scope: "20130524/us-east-1/s3/aws4_request".into(),
            seed_signature: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
                .into(),
        }
    }

    /// AWS's documented streaming example (S3 API reference, "Signature calculation:
    /// transferring payload in multiple chunks"): 65536 + 1024 bytes of 'a', with the
    /// documented chunk signatures.
    #[test]
    fn the_aws_documented_chunk_signatures_verify_and_a_changed_byte_does_not() {
        let sigs = [
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
        ];
        let mut body = Vec::new();
        for (size, sig) in [(65536usize, sigs[0]), (1024, sigs[1]), (0, sigs[2])] {
            body.extend_from_slice(format!("{size:x};chunk-signature={sig}\r\n").as_bytes());
            body.extend(std::iter::repeat_n(b'a', size));
            body.extend_from_slice(b"\r\n");
        }
        let mut d = ChunkDecoder::new(ctx(ChunkSigning::Signed { trailer: false }));
        let mut out = Vec::new();
        // Fed in small pieces: framing may split anywhere.
        for piece in body.chunks(777) {
            d.feed(piece, &mut out).unwrap();
        }
        d.finish().unwrap();
        assert_eq!(out.len(), 66560);
        let mut tampered = body.clone();
        let at = tampered.len() / 2;
        tampered[at] = b'b';
        let mut d = ChunkDecoder::new(ctx(ChunkSigning::Signed { trailer: false }));
        assert_eq!(
            d.feed(&tampered, &mut Vec::new()),
            Err(ChunkError::Signature)
        );
    }

    #[test]
    fn unsigned_trailer_bodies_decode_and_truncated_bodies_are_refused() {
        let body = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n";
        let mut d = ChunkDecoder::new(ctx(ChunkSigning::Unsigned));
        let mut out = Vec::new();
        d.feed(body, &mut out).unwrap();
        d.finish().unwrap();
        assert_eq!(out, b"hello");
        assert_eq!(
            d.trailers(),
            vec![("x-amz-checksum-crc32".to_owned(), "NhCmhg==".to_owned())]
        );
        let mut d = ChunkDecoder::new(ctx(ChunkSigning::Unsigned));
        d.feed(&body[..12], &mut Vec::new()).unwrap();
        assert!(d.finish().is_err());
    }
}
