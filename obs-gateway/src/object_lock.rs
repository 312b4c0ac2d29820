//! Object Lock (S3's; OBS calls it WORM): a bucket's lock configuration and default retention,
//! an object version's retention and legal hold, the documents that set and answer them, and
//! when a version is protected from deletion. No I/O: the handler reads and answers the
//! documents, the store keeps the values and refuses what they protect.
//!
//! Rules, as S3's: a bucket with Object Lock has versioning enabled for good; a version under
//! a legal hold, or retained until a time not yet reached, cannot be removed (a delete naming no
//! version still adds a delete marker). A `GOVERNANCE` retention is lifted or shortened only by a
//! caller that says `x-amz-bypass-governance-retention: true`; a `COMPLIANCE` one by nobody, and
//! it can only be lengthened. The bucket's default retention applies to every version written
//! without one of its own, from the time it is written.

use serde::{Deserialize, Serialize};

use crate::expiry::DAY_MS;
use crate::xml;

/// A retention's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockMode {
    /// Lifted or shortened by a caller that bypasses governance retention.
    Governance,
    /// Lifted or shortened by nobody.
    Compliance,
}

impl LockMode {
    /// The mode as S3 spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Governance => "GOVERNANCE",
            Self::Compliance => "COMPLIANCE",
        }
    }

    /// The mode S3's name spells.
    pub fn parse(name: &str) -> Result<Self, LockError> {
        match name {
            "GOVERNANCE" => Ok(Self::Governance),
            "COMPLIANCE" => Ok(Self::Compliance),
            other => Err(LockError::Malformed(format!(
                "the retention mode is GOVERNANCE or COMPLIANCE, not {other:?}"
            ))),
        }
    }
}

/// A version's retention: kept until `until_ms` (milliseconds since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// The mode.
    pub mode: LockMode,
    /// Until when.
    pub until_ms: i64,
}

/// What protects a version: its retention and its legal hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObjectLock {
    /// The retention, if it has one (expired ones included: they protect nothing).
    pub retention: Option<Retention>,
    /// The legal hold: `None` if it was never set (GetObjectLegalHold answers 404, as S3 does),
    /// else ON (`true`) or OFF.
    pub legal_hold: Option<bool>,
}

impl ObjectLock {
    /// Whether the version cannot be removed at `now_ms` by a caller that does
    /// (`bypass_governance`) or does not bypass governance retention.
    pub fn protects(&self, now_ms: i64, bypass_governance: bool) -> bool {
        self.legal_hold == Some(true)
            || self.retention.is_some_and(|r| {
                r.until_ms > now_ms && !(r.mode == LockMode::Governance && bypass_governance)
            })
    }
}

/// A default retention's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Period {
    /// This many days.
    Days(u32),
    /// This many calendar years (UTC).
    Years(u32),
}

/// A bucket's default retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultRetention {
    /// The mode of the retention it gives.
    pub mode: LockMode,
    /// How long from the write.
    pub period: Period,
}

impl DefaultRetention {
    /// The retention of a version written at `written_ms`.
    pub fn retention(&self, written_ms: i64) -> Retention {
        let until_ms = match self.period {
            Period::Days(d) => written_ms.saturating_add(i64::from(d).saturating_mul(DAY_MS)),
            Period::Years(y) => jiff::Timestamp::from_millisecond(written_ms)
                .ok()
                .and_then(|t| {
                    let years = jiff::Span::new().try_years(i64::from(y)).ok()?;
                    t.to_zoned(jiff::tz::TimeZone::UTC).checked_add(years).ok()
                })
                .map_or(i64::MAX, |z| z.timestamp().as_millisecond()),
        };
        Retention {
            mode: self.mode,
            until_ms,
        }
    }
}

/// A bucket's Object Lock configuration: it is on, with or without a default retention.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockConfig {
    /// The default retention, if one is set.
    pub default: Option<DefaultRetention>,
}

/// Why a document or header is refused; each has its S3 code (status 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    /// `MalformedXML`: not the document's shape.
    #[error("{0}")]
    Malformed(String),
    /// `InvalidArgument`: a value S3 does not take.
    #[error("{0}")]
    Invalid(String),
}

impl LockError {
    /// The error code S3 answers.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "MalformedXML",
            Self::Invalid(_) => "InvalidArgument",
        }
    }
}

fn text(doc: &str, name: &str) -> Option<String> {
    xml::element(doc, name, 0).map(|(t, _)| t)
}

/// The count `name` holds, from 1 to `max`, if `doc` has it.
fn count(doc: &str, what: &str, name: &str, max: u32) -> Option<Result<u32, LockError>> {
    let t = text(doc, name)?;
    Some(match t.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(LockError::Invalid(format!(
            "the default retention's {what} is a whole number from 1 to {max}"
        ))),
    })
}

/// The longest default retention S3 takes: 100 years.
const MAX_YEARS: u32 = 100;
const MAX_DAYS: u32 = 36_500;

/// Reads an `ObjectLockConfiguration` (PutObjectLockConfiguration).
pub fn parse_config(doc: &str) -> Result<LockConfig, LockError> {
    if !doc.contains("<ObjectLockConfiguration") {
        return Err(LockError::Malformed(
            "the body is not an ObjectLockConfiguration document".into(),
        ));
    }
    if text(doc, "ObjectLockEnabled").as_deref() != Some("Enabled") {
        return Err(LockError::Malformed(
            "ObjectLockEnabled is Enabled: Object Lock cannot be turned off".into(),
        ));
    }
    let Some((rule, _)) = xml::element(doc, "DefaultRetention", 0) else {
        return Ok(LockConfig::default());
    };
    let mode = LockMode::parse(&text(&rule, "Mode").unwrap_or_default())?;
    let period = match (
        count(&rule, "days", "Days", MAX_DAYS).transpose()?,
        count(&rule, "years", "Years", MAX_YEARS).transpose()?,
    ) {
        (Some(d), None) => Period::Days(d),
        (None, Some(y)) => Period::Years(y),
        _ => {
            return Err(LockError::Malformed(
                "a default retention has Days or Years, one of them".into(),
            ));
        }
    };
    Ok(LockConfig {
        default: Some(DefaultRetention { mode, period }),
    })
}

/// The `ObjectLockConfiguration` document GetObjectLockConfiguration answers.
pub fn config_document(config: &LockConfig) -> String {
    let rule = config
        .default
        .map(|d| {
            let period = match d.period {
                Period::Days(n) => format!("<Days>{n}</Days>"),
                Period::Years(n) => format!("<Years>{n}</Years>"),
            };
            format!(
                "<Rule><DefaultRetention><Mode>{}</Mode>{period}</DefaultRetention></Rule>",
                d.mode.name()
            )
        })
        .unwrap_or_default();
    format!(
        "{}<ObjectLockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><ObjectLockEnabled>Enabled</ObjectLockEnabled>{rule}</ObjectLockConfiguration>",
        xml::DECL
    )
}

/// A retain-until date as S3 takes it (ISO 8601) or OBS (milliseconds since the Unix epoch),
/// in milliseconds since the Unix epoch; a time past the calendar's end (year 9999) is refused,
/// since it could not be answered.
pub fn parse_until(date: &str) -> Result<i64, LockError> {
    let date = date.trim();
    if !date.is_empty() && date.bytes().all(|b| b.is_ascii_digit()) {
        return date
            .parse::<i64>()
            .ok()
            .filter(|ms| jiff::Timestamp::from_millisecond(*ms).is_ok())
            .ok_or_else(|| LockError::Invalid(format!("{date:?} is not a time")));
    }
    date.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|_| LockError::Invalid(format!("{date:?} is not an ISO 8601 date")))
}

/// Reads a `Retention` document (PutObjectRetention): a mode and a date, or neither (which lifts
/// the retention).
pub fn parse_retention(doc: &str) -> Result<Option<Retention>, LockError> {
    if !doc.contains("<Retention") {
        return Err(LockError::Malformed(
            "the body is not a Retention document".into(),
        ));
    }
    match (text(doc, "Mode"), text(doc, "RetainUntilDate")) {
        (None, None) => Ok(None),
        (Some(mode), Some(date)) => Ok(Some(Retention {
            mode: LockMode::parse(&mode)?,
            until_ms: parse_until(&date)?,
        })),
        _ => Err(LockError::Malformed(
            "a retention has a Mode and a RetainUntilDate, or neither".into(),
        )),
    }
}

/// The `Retention` document GetObjectRetention answers.
pub fn retention_document(r: &Retention) -> String {
    format!(
        "{}<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>{}</Mode><RetainUntilDate>{}</RetainUntilDate></Retention>",
        xml::DECL,
        r.mode.name(),
        xml::iso_time(r.until_ms)
    )
}

/// A legal hold's status (`ON` or `OFF`), from a `LegalHold` document or the header.
pub fn parse_hold(status: &str) -> Result<bool, LockError> {
    match status.trim() {
        "ON" => Ok(true),
        "OFF" => Ok(false),
        other => Err(LockError::Malformed(format!(
            "a legal hold's status is ON or OFF, not {other:?}"
        ))),
    }
}

/// Reads a `LegalHold` document (PutObjectLegalHold).
pub fn parse_legal_hold(doc: &str) -> Result<bool, LockError> {
    if !doc.contains("<LegalHold") {
        return Err(LockError::Malformed(
            "the body is not a LegalHold document".into(),
        ));
    }
    parse_hold(&text(doc, "Status").unwrap_or_default())
}

/// The `LegalHold` document GetObjectLegalHold answers.
pub fn legal_hold_document(on: bool) -> String {
    format!(
        "{}<LegalHold xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>{}</Status></LegalHold>",
        xml::DECL,
        if on { "ON" } else { "OFF" }
    )
}

/// Whether a version's retention `old` may become `new` at `now_ms`: lengthening (same mode, or
/// from GOVERNANCE to COMPLIANCE) always; anything else only when `old` no longer holds, or is
/// GOVERNANCE and the caller bypasses governance retention.
pub fn change_allowed(
    old: Option<&Retention>,
    new: Option<&Retention>,
    now_ms: i64,
    bypass_governance: bool,
) -> bool {
    let Some(old) = old.filter(|o| o.until_ms > now_ms) else {
        return true;
    };
    let lengthens = new.is_some_and(|n| {
        n.until_ms >= old.until_ms && (n.mode == old.mode || n.mode == LockMode::Compliance)
    });
    lengthens || (old.mode == LockMode::Governance && bypass_governance)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = DAY_MS;

    fn retained(mode: LockMode, until_ms: i64) -> Option<Retention> {
        Some(Retention { mode, until_ms })
    }

    #[test]
    fn a_version_is_protected_by_its_hold_and_a_retention_not_yet_reached() {
        use LockMode::{Compliance, Governance};
        // (rule, lock, bypassing governance, protected at day 10)
        let cases = [
            ("nothing", ObjectLock::default(), false, false),
            (
                "a legal hold, bypass or not",
                ObjectLock {
                    retention: None,
                    legal_hold: Some(true),
                },
                true,
                true,
            ),
            (
                "governance until later",
                ObjectLock {
                    retention: retained(Governance, 11 * DAY),
                    legal_hold: None,
                },
                false,
                true,
            ),
            (
                "governance bypassed",
                ObjectLock {
                    retention: retained(Governance, 11 * DAY),
                    legal_hold: None,
                },
                true,
                false,
            ),
            (
                "compliance is not bypassed",
                ObjectLock {
                    retention: retained(Compliance, 11 * DAY),
                    legal_hold: None,
                },
                true,
                true,
            ),
            (
                "a retention that has passed",
                ObjectLock {
                    retention: retained(Compliance, 10 * DAY),
                    legal_hold: None,
                },
                false,
                false,
            ),
        ];
        for (rule, lock, bypass, want) in cases {
            assert_eq!(lock.protects(10 * DAY, bypass), want, "{rule}");
        }
    }

    #[test]
    fn a_retention_is_lengthened_freely_and_shortened_only_in_governance_with_bypass() {
        use LockMode::{Compliance, Governance};
        let now = 10 * DAY;
        // (rule, old, new, bypass, allowed)
        let cases = [
            (
                "none to any",
                None,
                retained(Compliance, 20 * DAY),
                false,
                true,
            ),
            (
                "lengthened",
                retained(Compliance, 20 * DAY),
                retained(Compliance, 30 * DAY),
                false,
                true,
            ),
            (
                "compliance shortened",
                retained(Compliance, 20 * DAY),
                retained(Compliance, 15 * DAY),
                true,
                false,
            ),
            (
                "compliance lifted",
                retained(Compliance, 20 * DAY),
                None,
                true,
                false,
            ),
            (
                "compliance to governance",
                retained(Compliance, 20 * DAY),
                retained(Governance, 30 * DAY),
                true,
                false,
            ),
            (
                "governance to compliance",
                retained(Governance, 20 * DAY),
                retained(Compliance, 20 * DAY),
                false,
                true,
            ),
            (
                "governance shortened without bypass",
                retained(Governance, 20 * DAY),
                retained(Governance, 15 * DAY),
                false,
                false,
            ),
            (
                "governance lifted with bypass",
                retained(Governance, 20 * DAY),
                None,
                true,
                true,
            ),
            (
                "a passed compliance retention",
                retained(Compliance, 5 * DAY),
                None,
                false,
                true,
            ),
        ];
        for (rule, old, new, bypass, want) in cases {
            assert_eq!(
                change_allowed(old.as_ref(), new.as_ref(), now, bypass),
                want,
                "{rule}"
            );
        }
    }

    #[test]
    fn configurations_read_back_and_wrong_ones_are_refused() {
        let doc = |rule: &str| {
            format!(
                "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled>{rule}</ObjectLockConfiguration>"
            )
        };
        for rule in [
            "",
            "<Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>3</Days></DefaultRetention></Rule>",
            "<Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Years>1</Years></DefaultRetention></Rule>",
        ] {
            let config = parse_config(&doc(rule)).unwrap();
            assert_eq!(parse_config(&config_document(&config)).unwrap(), config);
        }
        // (rule, document, code)
        for (rule, d, code) in [
            ("another document", "<Tagging/>".to_owned(), "MalformedXML"),
            (
                "not enabled",
                "<ObjectLockConfiguration><ObjectLockEnabled>Disabled</ObjectLockEnabled></ObjectLockConfiguration>".to_owned(),
                "MalformedXML",
            ),
            (
                "days and years",
                doc("<Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>1</Days><Years>1</Years></DefaultRetention></Rule>"),
                "MalformedXML",
            ),
            (
                "zero days",
                doc("<Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>0</Days></DefaultRetention></Rule>"),
                "InvalidArgument",
            ),
            (
                "over a hundred years",
                doc("<Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Years>101</Years></DefaultRetention></Rule>"),
                "InvalidArgument",
            ),
            (
                "over 36,500 days",
                doc("<Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>36501</Days></DefaultRetention></Rule>"),
                "InvalidArgument",
            ),
            (
                "another mode",
                doc("<Rule><DefaultRetention><Mode>LEGAL</Mode><Days>1</Days></DefaultRetention></Rule>"),
                "MalformedXML",
            ),
        ] {
            assert_eq!(parse_config(&d).map_err(|e| e.code()), Err(code), "{rule}");
        }
    }

    /// Any body, cut anywhere or with its parts swapped, is taken or refused, never a panic.
    #[test]
    fn a_cut_or_jumbled_document_is_refused_without_a_panic() {
        let docs = [
            "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Years>2</Years></DefaultRetention></Rule></ObjectLockConfiguration>",
            "<Retention><Mode>COMPLIANCE</Mode><RetainUntilDate>2027-01-03T00:00:00.000Z</RetainUntilDate></Retention>",
            "<LegalHold><Status>ON</Status></LegalHold>",
        ];
        for whole in docs {
            for (at, _) in whole.char_indices() {
                for d in [
                    whole[..at].to_owned(),
                    format!("{}{}", &whole[at..], &whole[..at]),
                ] {
                    let _ = parse_config(&d);
                    let _ = parse_retention(&d);
                    let _ = parse_legal_hold(&d);
                }
            }
        }
        for huge in [
            "99999999999999999999999",
            "9223372036854775807",
            "-1",
            "2027-13-45T00:00:00Z",
            "",
        ] {
            assert!(parse_until(huge).is_err(), "{huge:?}");
        }
        let far = DefaultRetention {
            mode: LockMode::Compliance,
            period: Period::Years(u32::MAX),
        };
        assert_eq!(
            far.retention(0).until_ms,
            i64::MAX,
            "past the calendar: forever"
        );
    }

    #[test]
    fn a_default_retention_runs_from_the_write_in_days_or_calendar_years() {
        let days = DefaultRetention {
            mode: LockMode::Governance,
            period: Period::Days(2),
        };
        assert_eq!(days.retention(DAY).until_ms, 3 * DAY);
        // 2028 is a leap year: a year from 2027-03-01 is 366 days.
        let start = parse_until("2027-03-01T00:00:00Z").unwrap();
        let years = DefaultRetention {
            mode: LockMode::Compliance,
            period: Period::Years(1),
        };
        assert_eq!(years.retention(start).until_ms, start + 366 * DAY);
        assert_eq!(
            parse_retention(&retention_document(&years.retention(start))).unwrap(),
            Some(years.retention(start))
        );
        assert_eq!(parse_retention("<Retention/>").unwrap(), None);
        assert_eq!(
            parse_until("1798934400000").unwrap(),
            parse_until("2027-01-03T00:00:00Z").unwrap(),
            "OBS's milliseconds, S3's ISO 8601"
        );
        assert!(parse_legal_hold(&legal_hold_document(true)).unwrap());
        assert!(parse_legal_hold("<LegalHold><Status>on</Status></LegalHold>").is_err());
    }
}
