//! The XML documents the SDKs parse: errors, list results, multipart and copy results.

/// Escapes text for XML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => out.push_str(&format!("&#x{:x};", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// The XML declaration every document starts with.
pub const DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// `<Error><Code/><Message/><RequestId/><HostId/><Resource/></Error>`.
pub fn error(code: &str, message: &str, request_id: &str, host_id: &str, resource: &str) -> String {
    format!(
        "{DECL}<Error><Code>{}</Code><Message>{}</Message><RequestId>{}</RequestId><HostId>{}</HostId><Resource>{}</Resource></Error>",
        escape(code),
        escape(message),
        escape(request_id),
        escape(host_id),
        escape(resource)
    )
}

/// A time as S3 writes it: `2024-01-01T00:00:00.000Z`.
pub fn iso_time(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        Err(_) => "1970-01-01T00:00:00.000Z".to_owned(),
    }
}

/// The text of the first `<name>...</name>` element at or after `from` in `doc`, unescaped and
/// trimmed, and the offset after it. Enough for the small request documents (multipart
/// completion, batch delete, encryption configuration), whose values hold text only.
pub fn element(doc: &str, name: &str, from: usize) -> Option<(String, usize)> {
    let (raw, next) = raw_element(doc, name, from)?;
    Some((unescape(raw).trim().to_owned(), next))
}

/// The text of the first `<name>...</name>` element in `doc`, unescaped and not trimmed: an
/// object key, whose leading and trailing spaces are part of it.
pub fn exact_text(doc: &str, name: &str) -> Option<String> {
    raw_element(doc, name, 0).map(|(raw, _)| unescape(raw))
}

/// Every `<name>...</name>` element's content, in order, as it stands in `doc` (not unescaped):
/// the elements that hold others (`Part`, `Object`), read further with [`element`].
pub fn raw_elements<'d>(doc: &'d str, name: &str) -> Vec<&'d str> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some((raw, next)) = raw_element(doc, name, at) {
        out.push(raw);
        at = next;
    }
    out
}

fn raw_element<'d>(doc: &'d str, name: &str, from: usize) -> Option<(&'d str, usize)> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = doc.get(from..)?.find(&open)? + from + open.len();
    let end = doc.get(start..)?.find(&close)? + start;
    Some((&doc[start..end], end + close.len()))
}

/// Replaces XML's references once: the five named entities and numeric character references
/// (`&#34;`, `&#x22;`), which Go's `encoding/xml` writes (rclone, the AWS SDK for Go: a quoted
/// ETag arrives as `&#34;...&#34;`). A reference that names no character stays as written.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest.find(';').and_then(|end| {
            let c = match &rest[1..end] {
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "amp" => Some('&'),
                name => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .map(|hex| u32::from_str_radix(hex, 16))
                    .or_else(|| name.strip_prefix('#').map(str::parse::<u32>))
                    .and_then(Result::ok)
                    .and_then(char::from_u32),
            }?;
            Some((c, end + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_with_milliseconds_and_elements_read_back() {
        assert_eq!(iso_time(1_704_067_200_000), "2024-01-01T00:00:00.000Z");
        let doc = "<A><O><Key>a&amp;lt;b</Key></O><O><Key> c </Key><V> 1 </V></O></A>";
        let objects = raw_elements(doc, "O");
        assert_eq!(
            objects,
            vec!["<Key>a&amp;lt;b</Key>", "<Key> c </Key><V> 1 </V>"]
        );
        // Unescaped once; a key keeps its spaces, a value is trimmed.
        assert_eq!(exact_text(objects[0], "Key").as_deref(), Some("a&lt;b"));
        assert_eq!(exact_text(objects[1], "Key").as_deref(), Some(" c "));
        assert_eq!(
            element(objects[1], "V", 0),
            Some(("1".to_owned(), objects[1].len()))
        );
        assert!(error("C", "<m>", "r", "h", "/b").contains("&lt;m&gt;"));
    }

    #[test]
    fn named_and_numeric_references_are_replaced_once() {
        // (rule, text as sent, text read)
        for (rule, sent, read) in [
            ("Go's quoted ETag", "&#34;0a1b&#34;", "\"0a1b\""),
            ("hexadecimal", "&#x22;x&#X27;", "\"x'"),
            ("a line feed in a key", "a&#xA;b", "a\nb"),
            ("named", "&lt;&gt;&quot;&apos;&amp;", "<>\"'&"),
            ("once only", "&amp;lt;&amp;#34;", "&lt;&#34;"),
            ("non-ASCII", "&#233;t&#xE9;", "été"),
            ("not a reference", "a & b", "a & b"),
            ("an unknown name", "&nbsp;", "&nbsp;"),
            (
                "no character",
                "&#xD800;&#1114112;&#;",
                "&#xD800;&#1114112;&#;",
            ),
            ("unterminated", "&#34", "&#34"),
        ] {
            assert_eq!(unescape(sent), read, "{rule}");
        }
    }
}
