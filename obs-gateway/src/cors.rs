//! Bucket CORS: the rules a bucket keeps (S3's and OBS's `CORSConfiguration` document) and which
//! of them, if any, lets a browser's request from an origin through. No I/O: the handler reads the
//! document and the request's headers, and writes what [`Allowed`] says.
//!
//! The rules are S3's, which OBS shares: a rule allows a request when one of its origins matches
//! the request's `Origin` (an origin may hold one `*`, matching any run of characters), its
//! methods name the method (a preflight's `Access-Control-Request-Method`, every one when the OBS
//! SDK sends several), and, for a preflight, each header named in
//! `Access-Control-Request-Headers` matches one of its headers (case-insensitive, one `*` each).
//! The first rule that allows the request answers it.

use serde::{Deserialize, Serialize};

use crate::xml;

/// The most rules a bucket keeps (S3's and OBS's limit).
pub const MAX_RULES: usize = 100;
/// The most characters of a rule's ID.
const MAX_ID: usize = 255;
/// The methods a rule may name.
const METHODS: [&str; 5] = ["GET", "PUT", "HEAD", "POST", "DELETE"];

/// One `CORSRule`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    /// `ID`, optional.
    pub id: Option<String>,
    /// `AllowedMethod`: at least one, of `GET PUT HEAD POST DELETE`.
    pub methods: Vec<String>,
    /// `AllowedOrigin`: at least one, each with at most one `*`.
    pub origins: Vec<String>,
    /// `AllowedHeader`: request headers a preflight may name, each with at most one `*`.
    pub headers: Vec<String>,
    /// `MaxAgeSeconds`: how long a browser may keep a preflight's answer.
    pub max_age: Option<u32>,
    /// `ExposeHeader`: response headers a page's script may read.
    pub expose: Vec<String>,
}

/// Why a `CORSConfiguration` document is refused: each is `400` with its own code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CorsError {
    /// `MalformedXML`: not a CORS document, or a rule without a method or an origin.
    #[error("{0}")]
    Malformed(String),
    /// `InvalidRequest`: a method S3 and OBS do not take, an origin or header with two `*`.
    #[error("{0}")]
    Invalid(String),
}

impl CorsError {
    /// The error code S3 and OBS answer.
    pub fn code(&self) -> &'static str {
        match self {
            CorsError::Malformed(_) => "MalformedXML",
            CorsError::Invalid(_) => "InvalidRequest",
        }
    }
}

/// Reads and checks a `CORSConfiguration` document.
pub fn parse(doc: &str) -> Result<Vec<CorsRule>, CorsError> {
    let malformed = |m: &str| CorsError::Malformed(m.to_owned());
    if !doc.contains("<CORSConfiguration") {
        return Err(malformed("the body is not a CORSConfiguration document"));
    }
    let raw = xml::raw_elements(doc, "CORSRule");
    if raw.is_empty() {
        return Err(malformed(
            "a CORS configuration holds at least one CORSRule",
        ));
    }
    if raw.len() > MAX_RULES {
        return Err(malformed(&format!(
            "a CORS configuration holds at most {MAX_RULES} rules"
        )));
    }
    raw.into_iter().map(rule).collect()
}

fn texts(doc: &str, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some((text, next)) = xml::element(doc, name, at) {
        out.push(text);
        at = next;
    }
    out
}

fn rule(doc: &str) -> Result<CorsRule, CorsError> {
    let invalid = |m: String| Err(CorsError::Invalid(m));
    let rule = CorsRule {
        id: xml::element(doc, "ID", 0).map(|(t, _)| t),
        methods: texts(doc, "AllowedMethod"),
        origins: texts(doc, "AllowedOrigin"),
        headers: texts(doc, "AllowedHeader"),
        max_age: match xml::element(doc, "MaxAgeSeconds", 0) {
            None => None,
            Some((t, _)) => Some(t.parse().map_err(|_| {
                CorsError::Malformed(format!("MaxAgeSeconds {t:?} is not a number of seconds"))
            })?),
        },
        expose: texts(doc, "ExposeHeader"),
    };
    if rule.methods.is_empty() || rule.origins.is_empty() {
        return Err(CorsError::Malformed(
            "each CORSRule names at least one AllowedMethod and one AllowedOrigin".into(),
        ));
    }
    if let Some(id) = &rule.id
        && id.chars().count() > MAX_ID
    {
        return invalid(format!("a CORSRule ID is at most {MAX_ID} characters"));
    }
    if let Some(m) = rule.methods.iter().find(|m| !METHODS.contains(&m.as_str())) {
        return invalid(format!(
            "Found unsupported HTTP method in CORS config. Unsupported method is {m}"
        ));
    }
    for (what, patterns) in [
        ("AllowedOrigin", &rule.origins),
        ("AllowedHeader", &rule.headers),
    ] {
        if let Some(p) = patterns.iter().find(|p| p.matches('*').count() > 1) {
            return invalid(format!(
                "{what} \"{p}\" can not have more than one wildcard."
            ));
        }
    }
    if let Some(h) = rule.expose.iter().find(|h| h.contains('*')) {
        return invalid(format!("ExposeHeader \"{h}\" contains a wildcard"));
    }
    Ok(rule)
}

/// The `CORSConfiguration` document of `rules`, as GetBucketCors answers it.
pub fn document(rules: &[CorsRule]) -> String {
    fn put(s: &mut String, name: &str, value: &str) {
        s.push_str(&format!("<{name}>{}</{name}>", xml::escape(value)));
    }
    let mut s = format!(
        "{}<CORSConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
        xml::DECL
    );
    for r in rules {
        s.push_str("<CORSRule>");
        if let Some(id) = &r.id {
            put(&mut s, "ID", id);
        }
        for m in &r.methods {
            put(&mut s, "AllowedMethod", m);
        }
        for o in &r.origins {
            put(&mut s, "AllowedOrigin", o);
        }
        for h in &r.headers {
            put(&mut s, "AllowedHeader", h);
        }
        if let Some(age) = r.max_age {
            put(&mut s, "MaxAgeSeconds", &age.to_string());
        }
        for h in &r.expose {
            put(&mut s, "ExposeHeader", h);
        }
        s.push_str("</CORSRule>");
    }
    s.push_str("</CORSConfiguration>");
    s
}

/// What a browser asks: its origin, the methods it will use and, for a preflight, the request
/// headers it will send (lower-case names).
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// `Origin`.
    pub origin: &'a str,
    /// The method of the request, or of the request a preflight announces.
    pub methods: &'a [&'a str],
    /// A preflight's `Access-Control-Request-Headers`; none for the request itself.
    pub headers: &'a [String],
}

/// The headers a matching rule puts on the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    /// `Access-Control-Allow-Origin`: `*` for a rule that allows every origin, else the request's.
    pub origin: String,
    /// `Access-Control-Allow-Methods`.
    pub methods: String,
    /// `Access-Control-Allow-Headers`: the preflight's headers, when it named any.
    pub headers: Option<String>,
    /// `Access-Control-Expose-Headers`, when the rule names any.
    pub expose: Option<String>,
    /// `Access-Control-Max-Age`, when the rule sets it.
    pub max_age: Option<u32>,
    /// `Access-Control-Allow-Credentials: true`: for a named origin only (browsers refuse it
    /// with `*`).
    pub credentials: bool,
}

/// The first rule of `rules` that allows `ask`, as the headers to answer with.
pub fn allow(rules: &[CorsRule], ask: &Ask<'_>) -> Option<Allowed> {
    rules.iter().find_map(|r| {
        let origin = r.origins.iter().find(|o| wildcard(o, ask.origin, false))?;
        if ask.methods.is_empty()
            || !ask.methods.iter().all(|m| r.methods.iter().any(|x| x == m))
            || !ask
                .headers
                .iter()
                .all(|h| r.headers.iter().any(|p| wildcard(p, h, true)))
        {
            return None;
        }
        let every_origin = origin == "*";
        Some(Allowed {
            origin: if every_origin { "*" } else { ask.origin }.to_owned(),
            methods: r.methods.join(", "),
            headers: (!ask.headers.is_empty()).then(|| ask.headers.join(", ")),
            expose: (!r.expose.is_empty()).then(|| r.expose.join(", ")),
            max_age: r.max_age,
            credentials: !every_origin,
        })
    })
}

/// Whether `value` matches `pattern`, whose one `*` (if any) matches any run of characters.
fn wildcard(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let eq = |a: &str, b: &str| {
        if ignore_case {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    match pattern.split_once('*') {
        None => eq(pattern, value),
        Some((head, tail)) => {
            value.len() >= head.len() + tail.len()
                && value.is_char_boundary(head.len())
                && value.is_char_boundary(value.len() - tail.len())
                && eq(&value[..head.len()], head)
                && eq(&value[value.len() - tail.len()..], tail)
        }
    }
}

/// The header names of an `Access-Control-Request-Headers` value (comma-separated), lower-case.
pub fn header_names(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(rules: &str) -> String {
        format!("<CORSConfiguration>{rules}</CORSConfiguration>")
    }

    #[test]
    fn a_configuration_is_refused_unless_each_rule_is_one_s3_and_obs_take() {
        let ok = "<AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin>";
        let many = format!("<CORSRule>{ok}</CORSRule>").repeat(MAX_RULES + 1);
        // (rule, document, the refusal's code or None)
        let cases: Vec<(&str, String, Option<&str>)> = vec![
            ("a rule", doc(&format!("<CORSRule>{ok}</CORSRule>")), None),
            (
                "every field",
                doc(
                    "<CORSRule><ID>web</ID><AllowedMethod>PUT</AllowedMethod><AllowedMethod>POST</AllowedMethod><AllowedOrigin>https://*.example.com</AllowedOrigin><AllowedHeader>x-amz-*</AllowedHeader><MaxAgeSeconds>300</MaxAgeSeconds><ExposeHeader>ETag</ExposeHeader></CORSRule>",
                ),
                None,
            ),
            (
                "a hundred rules",
                doc(&format!("<CORSRule>{ok}</CORSRule>").repeat(MAX_RULES)),
                None,
            ),
            ("a hundred and one rules", doc(&many), Some("MalformedXML")),
            (
                "another document",
                "<Tagging/>".into(),
                Some("MalformedXML"),
            ),
            ("no rule", doc(""), Some("MalformedXML")),
            (
                "a rule without a method",
                doc("<CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule>"),
                Some("MalformedXML"),
            ),
            (
                "a rule without an origin",
                doc("<CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule>"),
                Some("MalformedXML"),
            ),
            (
                "a method S3 does not take",
                doc(
                    "<CORSRule><AllowedMethod>PATCH</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule>",
                ),
                Some("InvalidRequest"),
            ),
            (
                "a method in lower case",
                doc(
                    "<CORSRule><AllowedMethod>get</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule>",
                ),
                Some("InvalidRequest"),
            ),
            (
                "an origin with two wildcards",
                doc(
                    "<CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>https://*.*.com</AllowedOrigin></CORSRule>",
                ),
                Some("InvalidRequest"),
            ),
            (
                "a header with two wildcards",
                doc(&format!(
                    "<CORSRule>{ok}<AllowedHeader>*-*</AllowedHeader></CORSRule>"
                )),
                Some("InvalidRequest"),
            ),
            (
                "a wildcard in an exposed header",
                doc(&format!(
                    "<CORSRule>{ok}<ExposeHeader>x-*</ExposeHeader></CORSRule>"
                )),
                Some("InvalidRequest"),
            ),
            (
                "a max age that is not a number",
                doc(&format!(
                    "<CORSRule>{ok}<MaxAgeSeconds>soon</MaxAgeSeconds></CORSRule>"
                )),
                Some("MalformedXML"),
            ),
            (
                "an ID of 256 characters",
                doc(&format!(
                    "<CORSRule><ID>{}</ID>{ok}</CORSRule>",
                    "i".repeat(256)
                )),
                Some("InvalidRequest"),
            ),
        ];
        for (rule, document, want) in cases {
            let got = parse(&document).err().map(|e| e.code());
            assert_eq!(got, want, "{rule}");
        }
    }

    #[test]
    fn a_kept_configuration_reads_back_as_it_was_set() {
        let rules = parse(&doc("<CORSRule><ID>a&amp;b</ID><AllowedMethod>GET</AllowedMethod><AllowedMethod>HEAD</AllowedMethod><AllowedOrigin>https://app.example</AllowedOrigin><AllowedHeader>*</AllowedHeader><MaxAgeSeconds>60</MaxAgeSeconds><ExposeHeader>ETag</ExposeHeader><ExposeHeader>x-amz-request-id</ExposeHeader></CORSRule><CORSRule><AllowedMethod>PUT</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule>")).unwrap();
        assert_eq!(rules[0].id.as_deref(), Some("a&b"));
        assert_eq!(parse(&document(&rules)).unwrap(), rules);
        assert_eq!(
            document(&rules[1..]),
            format!(
                "{}<CORSConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><CORSRule><AllowedMethod>PUT</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>",
                xml::DECL
            )
        );
    }

    #[test]
    fn the_first_rule_that_allows_the_origin_the_methods_and_every_header_answers() {
        let rules = parse(&doc("<CORSRule><AllowedMethod>PUT</AllowedMethod><AllowedMethod>POST</AllowedMethod><AllowedOrigin>https://*.example.com</AllowedOrigin><AllowedHeader>x-amz-*</AllowedHeader><AllowedHeader>Content-Type</AllowedHeader><MaxAgeSeconds>300</MaxAgeSeconds><ExposeHeader>ETag</ExposeHeader></CORSRule><CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule>")).unwrap();
        let names = |h: &str| header_names(h);
        // (rule, origin, methods, requested headers, the answer's origin or None)
        type Case<'a> = (
            &'a str,
            &'a str,
            &'a [&'a str],
            Vec<String>,
            Option<&'a str>,
        );
        let cases: Vec<Case> = vec![
            (
                "a subdomain's PUT with allowed headers (any case) meets the first rule",
                "https://app.example.com",
                &["PUT"],
                names("Content-Type, X-Amz-Meta-A"),
                Some("https://app.example.com"),
            ),
            (
                "every method the OBS SDK names must be allowed",
                "https://app.example.com",
                &["PUT", "POST"],
                vec![],
                Some("https://app.example.com"),
            ),
            (
                "a GET from there meets the second rule, every origin",
                "https://app.example.com",
                &["GET"],
                vec![],
                Some("*"),
            ),
            (
                "one method of two not allowed",
                "https://app.example.com",
                &["PUT", "DELETE"],
                vec![],
                None,
            ),
            (
                "a header no rule names",
                "https://app.example.com",
                &["PUT"],
                names("authorization"),
                None,
            ),
            (
                "a GET with a header falls to a rule without headers",
                "https://other.test",
                &["GET"],
                names("x-amz-date"),
                None,
            ),
            (
                "the wildcard needs the suffix",
                "https://example.com.evil.test",
                &["PUT"],
                vec![],
                None,
            ),
            (
                "origins compare with their case",
                "HTTPS://APP.EXAMPLE.COM",
                &["PUT"],
                vec![],
                None,
            ),
            ("no method", "https://app.example.com", &[], vec![], None),
        ];
        for (rule, origin, methods, headers, want) in cases {
            let ask = Ask {
                origin,
                methods,
                headers: &headers,
            };
            let got = allow(&rules, &ask);
            assert_eq!(got.as_ref().map(|a| a.origin.as_str()), want, "{rule}");
        }
        let ask = Ask {
            origin: "https://app.example.com",
            methods: &["PUT"],
            headers: &names("content-type,x-amz-acl"),
        };
        assert_eq!(
            allow(&rules, &ask),
            Some(Allowed {
                origin: "https://app.example.com".into(),
                methods: "PUT, POST".into(),
                headers: Some("content-type, x-amz-acl".into()),
                expose: Some("ETag".into()),
                max_age: Some(300),
                credentials: true,
            })
        );
    }
}
