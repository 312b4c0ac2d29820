//! Preconditions: of a read (`If-Match`, `If-None-Match`, `If-Modified-Since`,
//! `If-Unmodified-Since`), of a copy's source (`x-amz-copy-source-if-*`, `x-obs-copy-source-if-*`)
//! of a write (`If-None-Match: *`, `If-Match`), evaluated as RFC 9110 §13.2.2 orders them, and
//! of a delete (`If-Match`, `x-amz-if-match-size`, `x-amz-if-match-last-modified-time`, or a
//! batch delete's `ETag`, `Size` and `LastModifiedTime`), checked in the store's transaction that
//! deletes ([`crate::store::DeleteCondition`]).
//!
//! A write's condition is checked once before the body is read (to refuse early) and again in the
//! store's transaction that replaces the object ([`crate::store::WriteCondition`]), so two
//! writers that both asked for an absent key cannot both win.

use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderMap, StatusCode, header};

use super::{ApiError, Ctx};
use crate::store::{DeleteCondition, WriteCondition, etag_matches};
use crate::xml;

/// What a read's conditions decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Serve the object.
    Serve,
    /// `304 Not Modified` (a read), `412` for a copy's source.
    NotModified,
    /// `412 Precondition Failed`.
    Failed,
}

/// The four conditions of a read, as sent under some names.
struct ReadConditions {
    if_match: Option<String>,
    if_none_match: Option<String>,
    if_modified_since: Option<String>,
    if_unmodified_since: Option<String>,
}

/// A condition header's value. The OBS SDK percent-encodes header values (`If-None-Match:
/// %22abc%22`); an ETag or a date holds no `%` of its own, so decoding is safe for every client.
fn value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(crate::auth::decode)
}

/// [`value`] of a write's or a delete's condition header, refused when it is not text: ignored,
/// the condition would not hold back the write or the delete.
fn text_value(headers: &HeaderMap, name: &str) -> Result<Option<String>, ApiError> {
    match headers.get(name) {
        Some(v) if v.to_str().is_err() => Err(ApiError::bad(format!("{name} must be text"))),
        _ => Ok(value(headers, name)),
    }
}

impl ReadConditions {
    fn named(headers: &HeaderMap, names: [&str; 4]) -> Self {
        let get = |n: &str| value(headers, n);
        Self {
            if_match: get(names[0]),
            if_none_match: get(names[1]),
            if_modified_since: get(names[2]),
            if_unmodified_since: get(names[3]),
        }
    }

    /// RFC 9110 §13.2.2: `If-Match`, else `If-Unmodified-Since`; then `If-None-Match`, else
    /// `If-Modified-Since`. A date that does not parse is no condition.
    fn verdict(&self, etag: &str, modified_ms: i64) -> Verdict {
        let modified = last_modified_secs(modified_ms);
        match (
            self.if_match.as_deref(),
            self.if_unmodified_since.as_deref().and_then(date_secs),
        ) {
            (Some(m), _) if !etag_matches(m, etag) => return Verdict::Failed,
            (None, Some(t)) if modified > t => return Verdict::Failed,
            _ => {}
        }
        match (
            self.if_none_match.as_deref(),
            self.if_modified_since.as_deref().and_then(date_secs),
        ) {
            (Some(m), _) if etag_matches(m, etag) => Verdict::NotModified,
            (None, Some(t)) if modified <= t => Verdict::NotModified,
            _ => Verdict::Serve,
        }
    }
}

/// The conditions of a GET or HEAD, against the object's ETag (without quotes) and time.
pub(super) fn read(headers: &HeaderMap, etag: &str, modified_ms: i64) -> Verdict {
    ReadConditions::named(
        headers,
        [
            header::IF_MATCH.as_str(),
            header::IF_NONE_MATCH.as_str(),
            header::IF_MODIFIED_SINCE.as_str(),
            header::IF_UNMODIFIED_SINCE.as_str(),
        ],
    )
    .verdict(etag, modified_ms)
}

/// Whether a GET's `Range` applies: always without `If-Range`; with it, only while the object is
/// the one it names (RFC 9110 §13.1.5: the same strong ETag, or the `Last-Modified` date
/// exactly), else the whole object is sent, so that a resumed download never joins two objects.
pub(super) fn range_applies(headers: &HeaderMap, etag: &str, modified_ms: i64) -> bool {
    let Some(validator) = value(headers, header::IF_RANGE.as_str()) else {
        return true;
    };
    let validator = validator.trim();
    if validator.starts_with('"') {
        validator.trim_matches('"') == etag
    } else if validator.starts_with("W/") {
        false
    } else {
        date_secs(validator) == Some(last_modified_secs(modified_ms))
    }
}

/// The conditions on a copy's source, in either dialect: any that does not hold is `412`.
/// `etag` (without quotes) and `modified_ms` are the source's.
pub(super) fn copy_source(
    headers: &HeaderMap,
    etag: &str,
    modified_ms: i64,
) -> Result<(), ApiError> {
    for prefix in ["x-amz-", "x-obs-"] {
        let names = [
            "if-match",
            "if-none-match",
            "if-modified-since",
            "if-unmodified-since",
        ]
        .map(|c| format!("{prefix}copy-source-{c}"));
        let conditions = ReadConditions::named(headers, names.each_ref().map(String::as_str));
        if conditions.verdict(etag, modified_ms) != Verdict::Serve {
            return Err(failed());
        }
    }
    Ok(())
}

/// A write's condition: `If-None-Match: *` (the key must be free) or `If-Match` (the stored
/// object must have one of these ETags). Another `If-None-Match` is not served.
pub(super) fn write(headers: &HeaderMap) -> Result<WriteCondition, ApiError> {
    match (
        text_value(headers, header::IF_NONE_MATCH.as_str())?.as_deref(),
        text_value(headers, header::IF_MATCH.as_str())?,
    ) {
        (Some(_), Some(_)) => Err(ApiError::bad(
            "If-None-Match and If-Match cannot both condition a write",
        )),
        (Some(m), None) if m.trim() == "*" => Ok(WriteCondition::Absent),
        (Some(_), None) => Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "a write's If-None-Match may only be *",
        )),
        (None, Some(m)) => Ok(WriteCondition::Matches(m)),
        (None, None) => Ok(WriteCondition::Any),
    }
}

impl Ctx<'_> {
    /// The request's write condition on `bucket`/`key`, refused at once when it does not hold
    /// now (before a body is read); the store checks it again as it commits.
    pub(super) fn write_condition(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<WriteCondition, ApiError> {
        let condition = write(self.headers)?;
        if condition != WriteCondition::Any {
            let stored = self.gw.store.object(bucket, key)?;
            if !condition.holds(stored.as_ref().map(|o| o.etag.as_str())) {
                return Err(not_met(stored.is_some()));
            }
        }
        Ok(condition)
    }
}

/// A delete's condition from its headers: S3's conditional delete. Ignored, it would delete an
/// object the caller meant to keep (another writer's newer one).
pub(super) fn delete_condition(headers: &HeaderMap) -> Result<DeleteCondition, ApiError> {
    if headers.contains_key(header::IF_NONE_MATCH) {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "a delete takes If-Match, not If-None-Match",
        ));
    }
    delete_parts(
        text_value(headers, "if-match")?,
        text_value(headers, "x-amz-if-match-size")?.as_deref(),
        text_value(headers, "x-amz-if-match-last-modified-time")?.as_deref(),
    )
}

/// One `<Object>` of a batch delete's conditions (`ETag`, `Size`, `LastModifiedTime`).
pub(super) fn batch_delete_condition(object: &str) -> Result<DeleteCondition, ApiError> {
    let text = |name: &str| xml::element(object, name, 0).map(|(t, _)| t);
    delete_parts(
        text("ETag"),
        text("Size").as_deref(),
        text("LastModifiedTime").as_deref(),
    )
}

fn delete_parts(
    etag: Option<String>,
    size: Option<&str>,
    modified: Option<&str>,
) -> Result<DeleteCondition, ApiError> {
    Ok(DeleteCondition {
        etag,
        size: size
            .map(|s| {
                s.trim()
                    .parse()
                    .map_err(|_| ApiError::bad(format!("the size condition {s:?} is not a size")))
            })
            .transpose()?,
        modified_secs: modified
            .map(|d| {
                date_secs(d.trim())
                    .and_then(|t| i64::try_from(t).ok())
                    .ok_or_else(|| {
                        ApiError::bad(format!(
                            "the last-modified condition {d:?} is not an HTTP date"
                        ))
                    })
            })
            .transpose()?,
    })
}

/// A write condition that does not hold: `412`, or `404 NoSuchKey` for `If-Match` on a key
/// with no object (as S3 answers).
pub(super) fn not_met(found: bool) -> ApiError {
    if found { failed() } else { ApiError::no_key() }
}

/// `412 PreconditionFailed`, as S3 and OBS word it.
pub(super) fn failed() -> ApiError {
    ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        "PreconditionFailed",
        "at least one of the preconditions you specified did not hold",
    )
}

/// AbortMultipartUpload's `x-amz-if-match-initiated-time` (S3's, for directory buckets): the
/// upload initiated at `initiated_ms` is aborted only when it was initiated at that time, in
/// whole seconds (`412` otherwise); a value that is no HTTP date is 400. A condition a client
/// sends is held, not ignored.
pub(super) fn abort(headers: &HeaderMap, initiated_ms: i64) -> Result<(), ApiError> {
    let Some(v) = headers.get("x-amz-if-match-initiated-time") else {
        return Ok(());
    };
    let secs = v.to_str().ok().and_then(date_secs).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "x-amz-if-match-initiated-time is not an HTTP date",
        )
    })?;
    if secs == last_modified_secs(initiated_ms) {
        Ok(())
    } else {
        Err(failed())
    }
}

/// `Last-Modified` in whole seconds, as the header shows it and dates compare.
fn last_modified_secs(modified_ms: i64) -> u64 {
    u64::try_from(modified_ms / 1000).unwrap_or(0)
}

/// An HTTP date in seconds since the Unix epoch; `None` when it does not parse.
fn date_secs(value: &str) -> Option<u64> {
    let t = httpdate::parse_http_date(value).ok()?;
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// `Last-Modified` of an object modified at `modified_ms`.
pub(super) fn http_date(modified_ms: i64) -> String {
    httpdate::fmt_http_date(
        UNIX_EPOCH + Duration::from_millis(u64::try_from(modified_ms).unwrap_or(0)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_is_aborted_only_when_initiated_at_the_time_named() {
        let initiated_ms = 1_767_225_600_500; // 2026-01-01T00:00:00.5Z
        for (value, want) in [
            (None, Ok(())),
            (Some("Thu, 01 Jan 2026 00:00:00 GMT"), Ok(())),
            (Some("Thu, 01 Jan 2026 00:00:01 GMT"), Err(412)),
            (Some("Wed, 31 Dec 2025 23:59:59 GMT"), Err(412)),
            (Some("2026-01-01T00:00:00Z"), Err(400)),
        ] {
            let mut headers = HeaderMap::new();
            if let Some(v) = value {
                headers.insert(
                    "x-amz-if-match-initiated-time",
                    http::HeaderValue::from_static(v),
                );
            }
            let got = abort(&headers, initiated_ms).map_err(|e| e.status.as_u16());
            assert_eq!(got, want, "{value:?}");
        }
    }

    #[test]
    fn a_delete_removes_only_an_object_that_meets_every_condition_it_names() {
        let stored = Some((ETAG, 10, MODIFIED_MS));
        let header_date = "Thu, 01 Jan 2026 00:00:00 GMT";
        // (rule, If-Match, size, last-modified, holds over the object, holds over no object)
        let cases = [
            ("no condition", None, None, None, true, true),
            ("its ETag", Some("\"abc\""), None, None, true, false),
            (
                "one of a list",
                Some("\"x\", \"abc\""),
                None,
                None,
                true,
                false,
            ),
            ("any object", Some("*"), None, None, true, false),
            ("another ETag", Some("\"x\""), None, None, false, false),
            ("its size", None, Some("10"), None, true, false),
            ("another size", None, Some("11"), None, false, false),
            (
                "its last modification, to the second",
                None,
                None,
                Some(header_date),
                true,
                false,
            ),
            (
                "a second later",
                None,
                None,
                Some("Thu, 01 Jan 2026 00:00:01 GMT"),
                false,
                false,
            ),
            (
                "all three",
                Some("\"abc\""),
                Some("10"),
                Some(header_date),
                true,
                false,
            ),
            (
                "all but one",
                Some("\"abc\""),
                Some("9"),
                Some(header_date),
                false,
                false,
            ),
        ];
        for (rule, etag, size, modified, over_object, over_none) in cases {
            let mut h = HeaderMap::new();
            for (name, v) in [
                ("if-match", etag),
                ("x-amz-if-match-size", size),
                ("x-amz-if-match-last-modified-time", modified),
            ] {
                if let Some(v) = v {
                    h.insert(name, http::HeaderValue::from_str(v).unwrap());
                }
            }
            let c = delete_condition(&h).unwrap();
            assert_eq!(c.holds(stored), over_object, "{rule}");
            assert_eq!(c.holds(None), over_none, "{rule}, no object");
        }
        let batch = batch_delete_condition(
            "<Key>k</Key><ETag>&quot;abc&quot;</ETag><Size>10</Size><LastModifiedTime>Thu, 01 Jan 2026 00:00:00 GMT</LastModifiedTime>",
        )
        .unwrap();
        assert!(batch.holds(stored));
        assert!(!batch.holds(Some(("other", 10, MODIFIED_MS))));
        for (name, bad) in [
            ("x-amz-if-match-size", "ten"),
            ("x-amz-if-match-last-modified-time", "yesterday"),
            ("if-none-match", "*"),
        ] {
            let mut h = HeaderMap::new();
            h.insert(name, http::HeaderValue::from_static(bad));
            assert!(delete_condition(&h).is_err(), "{name}: {bad}");
        }
        // A condition that is not text is refused, never ignored (the delete would then run).
        let mut h = HeaderMap::new();
        h.insert(
            "if-match",
            http::HeaderValue::from_bytes(b"\"\xff\"").unwrap(),
        );
        assert!(delete_condition(&h).is_err(), "If-Match that is not text");
    }

    const ETAG: &str = "abc";
    /// 2026-01-01T00:00:00.500Z: the header says 00:00:00.
    const MODIFIED_MS: i64 = 1_767_225_600_500;
    const BEFORE: &str = "Wed, 31 Dec 2025 23:59:59 GMT";
    const AT: &str = "Thu, 01 Jan 2026 00:00:00 GMT";
    const AFTER: &str = "Thu, 01 Jan 2026 00:00:01 GMT";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.insert(*n, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn reads_follow_rfc_9110_order() {
        use Verdict::*;
        let cases: &[(&[(&str, &str)], Verdict)] = &[
            (&[], Serve),
            (&[("if-match", "\"abc\"")], Serve),
            (&[("if-match", "\"x\", \"abc\"")], Serve),
            (&[("if-match", "*")], Serve),
            (&[("if-match", "\"x\"")], Failed),
            (&[("if-unmodified-since", AT)], Serve),
            (&[("if-unmodified-since", BEFORE)], Failed),
            // If-Match decides; If-Unmodified-Since is not looked at.
            (
                &[("if-match", "\"abc\""), ("if-unmodified-since", BEFORE)],
                Serve,
            ),
            (&[("if-none-match", "\"abc\"")], NotModified),
            (&[("if-none-match", "W/\"abc\"")], NotModified),
            // As the OBS SDK sends it.
            (&[("if-none-match", "%22abc%22")], NotModified),
            (&[("if-match", "%22x%22")], Failed),
            (&[("if-none-match", "\"x\"")], Serve),
            (&[("if-modified-since", AT)], NotModified),
            (&[("if-modified-since", AFTER)], NotModified),
            (&[("if-modified-since", BEFORE)], Serve),
            // If-None-Match decides; If-Modified-Since is not looked at.
            (
                &[("if-none-match", "\"x\""), ("if-modified-since", AFTER)],
                Serve,
            ),
            // A failed If-Match wins over a matching If-None-Match.
            (
                &[("if-match", "\"x\""), ("if-none-match", "\"abc\"")],
                Failed,
            ),
            // A date that does not parse is no condition.
            (&[("if-unmodified-since", "yesterday")], Serve),
            (&[("if-modified-since", "tomorrow")], Serve),
        ];
        for (pairs, want) in cases {
            assert_eq!(read(&headers(pairs), ETAG, MODIFIED_MS), *want, "{pairs:?}");
        }
    }

    #[test]
    fn a_range_applies_only_to_the_object_if_range_names() {
        let cases: &[(&[(&str, &str)], bool)] = &[
            (&[], true),
            (&[("if-range", "\"abc\"")], true),
            (&[("if-range", "\"other\"")], false),
            // Weak tags never match for a range.
            (&[("if-range", "W/\"abc\"")], false),
            (&[("if-range", AT)], true),
            (&[("if-range", BEFORE)], false),
            (&[("if-range", AFTER)], false),
            (&[("if-range", "not a date")], false),
        ];
        for (pairs, want) in cases {
            assert_eq!(
                range_applies(&headers(pairs), ETAG, MODIFIED_MS),
                *want,
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn a_copy_source_condition_that_does_not_hold_fails_the_copy_in_either_dialect() {
        let cases: &[(&[(&str, &str)], bool)] = &[
            (&[], true),
            (&[("x-amz-copy-source-if-match", "\"abc\"")], true),
            (&[("x-amz-copy-source-if-match", "\"x\"")], false),
            (&[("x-obs-copy-source-if-match", "\"x\"")], false),
            (&[("x-amz-copy-source-if-match", "%22abc%22")], true),
            (&[("x-amz-copy-source-if-none-match", "\"abc\"")], false),
            (&[("x-obs-copy-source-if-none-match", "\"x\"")], true),
            (&[("x-amz-copy-source-if-modified-since", AFTER)], false),
            (&[("x-obs-copy-source-if-unmodified-since", BEFORE)], false),
            (&[("x-amz-copy-source-if-unmodified-since", AT)], true),
        ];
        for (pairs, ok) in cases {
            let got = copy_source(&headers(pairs), ETAG, MODIFIED_MS);
            assert_eq!(got.is_ok(), *ok, "{pairs:?}");
            if let Err(e) = got {
                assert_eq!((e.status.as_u16(), e.code), (412, "PreconditionFailed"));
            }
        }
    }

    #[test]
    fn a_write_condition_holds_only_for_the_object_it_names() {
        use WriteCondition::*;
        let parsed = |pairs: &[(&'static str, &str)]| write(&headers(pairs));
        assert_eq!(parsed(&[]).unwrap(), Any);
        assert_eq!(parsed(&[("if-none-match", "*")]).unwrap(), Absent);
        assert_eq!(
            parsed(&[("if-match", "\"abc\"")]).unwrap(),
            Matches("\"abc\"".into())
        );
        let e = parsed(&[("if-none-match", "\"abc\"")]).unwrap_err();
        assert_eq!(e.status.as_u16(), 501);
        let e = parsed(&[("if-none-match", "*"), ("if-match", "\"abc\"")]).unwrap_err();
        assert_eq!(e.status.as_u16(), 400);

        let cases: &[(WriteCondition, Option<&str>, bool)] = &[
            (Any, None, true),
            (Any, Some(ETAG), true),
            (Absent, None, true),
            (Absent, Some(ETAG), false),
            (Matches("\"abc\"".into()), Some(ETAG), true),
            (Matches("\"x\"".into()), Some(ETAG), false),
            (Matches("*".into()), Some(ETAG), true),
            (Matches("\"abc\"".into()), None, false),
            (Matches("*".into()), None, false),
        ];
        for (condition, stored, want) in cases {
            assert_eq!(condition.holds(*stored), *want, "{condition:?} {stored:?}");
        }
    }
}
