//! OBS's object expiry: `x-obs-expires: <days>` on a PUT, an initiated multipart upload, an
//! append that creates an object, a copy or a metadata change gives the object a life of that
//! many whole days from its last modification (OBS: "calculated from the object's creation
//! time"), after which it is deleted. The SDKs' `expires` parameter sends it.
//!
//! Rules kept here (the stricter reading where OBS's documents are vague, README "Object
//! expiry"): the value is a decimal whole number of days from 1 to [`MAX_DAYS`], anything else
//! is refused (400 `InvalidArgument`), never ignored; the object expires exactly that many days
//! after its last modification, not rounded to midnight; from that instant no call finds it
//! (reads, listings, conditions, copies) and its row and file are removed
//! ([`crate::store::Store::expire`]); a copy does not inherit its source's expiry, as a copy
//! is a new object; a metadata change may set an expiry, which must not be already past.

use http::HeaderMap;

/// The request header.
pub const HEADER: &str = "x-obs-expires";

/// A day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// The longest life accepted, in days: OBS types the header as a 32-bit integer.
pub const MAX_DAYS: u32 = i32::MAX as u32;

/// Why an `x-obs-expires` value is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExpiryError {
    /// Not one whole number of days from 1 to [`MAX_DAYS`].
    #[error("x-obs-expires must be a whole number of days from 1 to {MAX_DAYS}, not {0:?}")]
    Invalid(String),
    /// Given more than once.
    #[error("x-obs-expires is given more than once")]
    Repeated,
    /// The object's expiry would already be past (a metadata change on an older object).
    #[error("x-obs-expires of {days} days from the object's last modification is already past")]
    AlreadyPast {
        /// The days asked for.
        days: u32,
    },
}

/// The life in days a request asks for, if it asks.
pub fn days(headers: &HeaderMap) -> Result<Option<u32>, ExpiryError> {
    let mut all = headers.get_all(HEADER).iter();
    let (Some(v), None) = (all.next(), all.next()) else {
        return match headers.contains_key(HEADER) {
            true => Err(ExpiryError::Repeated),
            false => Ok(None),
        };
    };
    parse_days(&String::from_utf8_lossy(v.as_bytes())).map(Some)
}

/// A life in days as the header (or a POST form's `x-obs-expires` field) gives it.
pub fn parse_days(text: &str) -> Result<u32, ExpiryError> {
    match text.parse::<u32>() {
        // `parse` takes a leading '+'; a value is digits only.
        Ok(d) if (1..=MAX_DAYS).contains(&d) && text.bytes().all(|b| b.is_ascii_digit()) => Ok(d),
        _ => Err(ExpiryError::Invalid(text.to_owned())),
    }
}

/// When an object last modified at `modified_ms` with a life of `days` expires.
pub fn expires_ms(modified_ms: i64, days: u32) -> i64 {
    modified_ms.saturating_add(i64::from(days).saturating_mul(DAY_MS))
}

/// The expiry of an object modified at `modified_ms` whose metadata change at `now_ms` asks for
/// `days`: refused when that instant is not after `now_ms`.
pub fn changed_expiry(modified_ms: i64, days: u32, now_ms: i64) -> Result<i64, ExpiryError> {
    let at = expires_ms(modified_ms, days);
    if at <= now_ms {
        return Err(ExpiryError::AlreadyPast { days });
    }
    Ok(at)
}

/// The value of the `x-obs-expiration` / `x-amz-expiration` answer header for an object that
/// expires at `expires_ms`: S3's `expiry-date="<IMF-fixdate>", rule-id="<URL-encoded ID>"`, the
/// rule's ID when a lifecycle rule expires it (none for an object's own expiry).
pub fn expiration_value(expires_ms: i64, rule: Option<&str>) -> String {
    let secs = u64::try_from(expires_ms.div_euclid(1000)).unwrap_or(0);
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    let date = format!("expiry-date=\"{}\"", httpdate::fmt_http_date(at));
    match rule {
        None => date,
        Some(id) => format!(
            "{date}, rule-id=\"{}\"",
            percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_a_whole_number_of_days_from_one() {
        // (rule, values of the header, answer)
        let invalid = |v: &str| Err(ExpiryError::Invalid(v.into()));
        for (rule, values, want) in [
            ("absent: no expiry", vec![], Ok(None)),
            ("one day", vec!["1"], Ok(Some(1))),
            ("thirty days", vec!["30"], Ok(Some(30))),
            ("the largest", vec!["2147483647"], Ok(Some(MAX_DAYS))),
            ("zero is no life", vec!["0"], invalid("0")),
            (
                "past the largest",
                vec!["2147483648"],
                invalid("2147483648"),
            ),
            ("negative", vec!["-1"], invalid("-1")),
            ("a sign", vec!["+3"], invalid("+3")),
            ("a fraction", vec!["1.5"], invalid("1.5")),
            ("blank", vec![""], invalid("")),
            ("spaces", vec![" 3"], invalid(" 3")),
            (
                "a date is not days",
                vec!["2027-01-01"],
                invalid("2027-01-01"),
            ),
            ("twice", vec!["1", "2"], Err(ExpiryError::Repeated)),
        ] {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(HEADER, v.parse().unwrap());
            }
            assert_eq!(days(&h), want, "{rule}");
        }
    }

    #[test]
    fn an_object_expires_whole_days_after_its_last_modification() {
        assert_eq!(expires_ms(1_000, 1), 1_000 + DAY_MS);
        assert_eq!(expires_ms(0, 30), 30 * DAY_MS);
        assert_eq!(expires_ms(i64::MAX - 1, MAX_DAYS), i64::MAX, "saturates");
        // A change may not set an expiry that has already passed, nor one that is now.
        assert_eq!(changed_expiry(0, 2, DAY_MS), Ok(2 * DAY_MS));
        assert_eq!(
            changed_expiry(0, 1, DAY_MS),
            Err(ExpiryError::AlreadyPast { days: 1 })
        );
        assert_eq!(
            changed_expiry(0, 1, 10 * DAY_MS),
            Err(ExpiryError::AlreadyPast { days: 1 })
        );
        assert_eq!(
            expiration_value(1_356_220_800_000, None),
            "expiry-date=\"Sun, 23 Dec 2012 00:00:00 GMT\""
        );
        assert_eq!(
            expiration_value(1_356_220_800_000, Some("old logs")),
            "expiry-date=\"Sun, 23 Dec 2012 00:00:00 GMT\", rule-id=\"old%20logs\""
        );
    }
}
