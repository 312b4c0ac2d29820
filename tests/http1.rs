//! Raw HTTP/1.1 exchanges with the daemon's JSON APIs (Huawei REST, Vault transit), as a storage
//! engine's HTTP client makes them: for what the real clients cannot send.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

/// One HTTP/1.1 exchange on a fresh connection, as a storage engine's HTTP client makes it.
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The status line and headers, as received.
    pub headers: String,
    /// The body as JSON (`null` when empty).
    pub body: Value,
}

impl Reply {
    /// Vault's `errors` list, asserted to be a non-empty list of strings.
    #[track_caller]
    pub fn errors(&self) -> String {
        let errors = self.body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no errors list in {}", self.body));
        assert!(!errors.is_empty() && errors.iter().all(Value::is_string));
        errors
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// A header's value (the first of that name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// Vault's `data`, asserted to come with a 200.
    #[track_caller]
    pub fn data(&self) -> &Value {
        assert_eq!(self.status, 200, "{}", self.body);
        &self.body["data"]
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`); the reply's body must be JSON
/// or empty.
///
/// # Panics
/// When the daemon does not answer in 10 s or answers no HTTP.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let framing = format!("Connection: close\r\nContent-Length: {}\r\n", body.len());
    let mut request = request_head(addr, method, path, &framing, headers).into_bytes();
    request.extend_from_slice(body);
    exchange(addr, &request, &format!("{method} {path}"))
}

/// A POST whose chunked body breaks off in a malformed chunk: a body the daemon cannot read.
///
/// # Panics
/// As [`http()`].
pub fn malformed_chunked(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    let framing = "Connection: close\r\nTransfer-Encoding: chunked\r\n";
    let mut head = request_head(addr, "POST", path, framing, headers);
    head.push_str("5\r\n{\"a\":XX\r\n");
    exchange(addr, head.as_bytes(), &format!("POST {path}"))
}

/// A keep-alive POST of `body` to `path` whose head is sent first, its body only after the
/// daemon's reply (or half a second without one), as a client does whose body is slow to come;
/// then the same request once more on that connection. The first reply, and whether the second
/// was answered (`false` when the daemon had closed the connection).
///
/// # Panics
/// When the daemon does not answer the first request in 10 s or answers no HTTP.
pub fn head_then_body(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (Reply, bool) {
    let framing = format!("Content-Length: {}\r\n", body.len());
    let head = request_head(addr, "POST", path, &framing, headers);
    let mut s = TcpStream::connect(addr).expect("connects");
    s.write_all(head.as_bytes()).expect("the head is sent");
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("a read timeout");
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    // A reply before the body is a refusal of the head alone.
    if let Ok(n) = s.read(&mut buf) {
        raw.extend_from_slice(&buf[..n]);
    }
    let sent_body = s.write_all(body).is_ok();
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    let first = read_reply(&mut s, raw, &format!("POST {path}"));
    let mut again = head.into_bytes();
    again.extend_from_slice(body);
    let answered = sent_body
        && s.write_all(&again).is_ok()
        && s.read(&mut buf)
            .is_ok_and(|n| buf[..n].starts_with(b"HTTP/1.1 "));
    (first, answered)
}

/// Reads one reply whose first bytes are `raw`: its head, then a `Content-Length` body.
fn read_reply(s: &mut TcpStream, mut raw: Vec<u8>, what: &str) -> Reply {
    let mut buf = [0u8; 4096];
    let end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = s.read(&mut buf).unwrap_or(0);
        assert!(
            n > 0,
            "no HTTP response to {what}: {:?}",
            String::from_utf8_lossy(&raw)
        );
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while raw.len() < end + 4 + length {
        let n = s.read(&mut buf).unwrap_or(0);
        assert!(n > 0, "{what}: the reply's body ended early");
        raw.extend_from_slice(&buf[..n]);
    }
    let mut text = head;
    text.push_str("\r\n\r\n");
    text.push_str(&String::from_utf8_lossy(&raw[end + 4..end + 4 + length]));
    parse_reply(&text, what)
}

/// A request's head: the request line, `Host`, the `framing` lines (each ending in CRLF), the
/// `headers`, and the blank line that ends it.
fn request_head(
    addr: SocketAddr,
    method: &str,
    path: &str,
    framing: &str,
    headers: &[(&str, &str)],
) -> String {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{framing}");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// Sends `request` on a fresh connection and reads the reply to its end.
fn exchange(addr: SocketAddr, request: &[u8], what: &str) -> Reply {
    let mut s = TcpStream::connect(addr).expect("connects");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    // A refusal may come before the whole body is read (413): the write can then fail.
    let _ = s.write_all(request);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_reply(&String::from_utf8_lossy(&raw), what)
}

/// A reply's status, head and JSON body.
fn parse_reply(text: &str, what: &str) -> Reply {
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response to {what}: {text:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"))
    };
    Reply {
        status,
        headers: head.to_owned(),
        body,
    }
}
