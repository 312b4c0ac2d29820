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
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    exchange(addr, &request, &format!("{method} {path}"))
}

/// A POST whose chunked body breaks off in a malformed chunk: a body the daemon cannot read.
///
/// # Panics
/// As [`http()`].
pub fn malformed_chunked(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n"
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n5\r\n{\"a\":XX\r\n");
    exchange(addr, head.as_bytes(), &format!("POST {path}"))
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
    let text = String::from_utf8_lossy(&raw).into_owned();
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
