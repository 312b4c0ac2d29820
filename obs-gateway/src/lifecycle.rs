//! Bucket lifecycle: the rules a bucket keeps (S3's and OBS's `LifecycleConfiguration`) and when
//! they make an object expire or an unfinished multipart upload end. No I/O: the handler reads
//! and answers the document, the store applies [`object_expiry`] and [`upload_expiry`].
//!
//! The actions kept are those that need no storage class: `Expiration` (`Days` after the
//! object's last modification, or a `Date`; with versioning on, it adds a delete marker, as a
//! delete does; or `ExpiredObjectDeleteMarker`, which removes a delete marker left as its key's
//! only version), `NoncurrentVersionExpiration` (`NoncurrentDays` after a version stopped being
//! current, past the `NewerNoncurrentVersions` newest) and `AbortIncompleteMultipartUpload`
//! (`DaysAfterInitiation`). Transitions (storage classes other than STANDARD are not served)
//! are refused with 501 rather than kept and never done. As S3: a rule names its objects by a
//! `Filter` (a prefix, a tag, object sizes, or `And` of them) or, in the older shape the OBS SDK
//! sends, by a `Prefix` of its own; `Days` expire at the first midnight UTC at or after the
//! object's last modification plus that many days, a `Date` (which must be a midnight UTC) at that
//! instant; of several matching rules the earliest expiry counts. As OBS: an object's own
//! `x-obs-expires` takes precedence over every rule ([`crate::expiry`]).

use serde::{Deserialize, Serialize};

use crate::expiry::DAY_MS;
use crate::xml;

/// The most rules a configuration holds (S3's limit).
pub const MAX_RULES: usize = 1000;
/// The most characters of a rule's ID.
const MAX_ID: usize = 255;

/// One `Rule`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// `ID`: given, or made when the rule has none (S3 makes one too).
    pub id: String,
    /// `Status`: `Enabled`, or `Disabled` (kept, applied to nothing).
    pub enabled: bool,
    /// Whether the rule named its objects by a `Prefix` of its own (the older shape, which the OBS
    /// SDK sends and reads) rather than by a `Filter`; answered in the shape it came in.
    pub rule_prefix: bool,
    /// Which objects the rule applies to.
    pub filter: Filter,
    /// `Expiration`.
    pub expiration: Option<Expiration>,
    /// `AbortIncompleteMultipartUpload`'s `DaysAfterInitiation`.
    pub abort_after_days: Option<u32>,
    /// `NoncurrentVersionExpiration`.
    #[serde(default)]
    pub noncurrent_expiration: Option<NoncurrentExpiration>,
    /// `Expiration`'s `ExpiredObjectDeleteMarker`: a delete marker that is the only version of
    /// its key left is removed.
    #[serde(default)]
    pub expired_delete_markers: bool,
}

/// When a rule's noncurrent versions expire (`NoncurrentVersionExpiration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoncurrentExpiration {
    /// `NoncurrentDays`: this many days after the version became noncurrent, at the next
    /// midnight UTC.
    pub days: u32,
    /// `NewerNoncurrentVersions`: the newest this many noncurrent versions of a key are kept.
    pub newer_versions: Option<u32>,
}

/// The objects a rule applies to: every condition holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// The key starts with this.
    pub prefix: String,
    /// The object has each of these tags.
    pub tags: Vec<(String, String)>,
    /// `ObjectSizeGreaterThan`: the object is larger.
    pub larger_than: Option<u64>,
    /// `ObjectSizeLessThan`: the object is smaller.
    pub smaller_than: Option<u64>,
}

/// When a rule's objects expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expiration {
    /// This many days after the last modification, at the next midnight UTC.
    Days(u32),
    /// At this instant (a midnight UTC), milliseconds since the Unix epoch.
    Date(i64),
}

/// Why a `LifecycleConfiguration` is refused; each has its S3 code and status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    /// 400 `MalformedXML`: not the document's shape.
    #[error("{0}")]
    Malformed(String),
    /// 400 `InvalidArgument`: a value S3 does not take.
    #[error("{0}")]
    Invalid(String),
    /// 400 `InvalidRequest`: a combination S3 does not take.
    #[error("{0}")]
    InvalidRequest(String),
    /// 501 `NotImplemented`: an action the gateway does not do.
    #[error("{0}")]
    NotImplemented(String),
}

impl LifecycleError {
    /// The error code S3 and OBS answer.
    pub fn code(&self) -> &'static str {
        match self {
            LifecycleError::Malformed(_) => "MalformedXML",
            LifecycleError::Invalid(_) => "InvalidArgument",
            LifecycleError::InvalidRequest(_) => "InvalidRequest",
            LifecycleError::NotImplemented(_) => "NotImplemented",
        }
    }
}

/// Reads and checks a `LifecycleConfiguration` document; `new_id` names a rule without an ID.
pub fn parse(doc: &str, mut new_id: impl FnMut() -> String) -> Result<Vec<Rule>, LifecycleError> {
    if !doc.contains("<LifecycleConfiguration") {
        return Err(malformed(
            "the body is not a LifecycleConfiguration document",
        ));
    }
    let raw = xml::raw_elements(doc, "Rule");
    if raw.is_empty() {
        return Err(malformed(
            "a lifecycle configuration holds at least one Rule",
        ));
    }
    if raw.len() > MAX_RULES {
        return Err(malformed(&format!(
            "a lifecycle configuration holds at most {MAX_RULES} rules"
        )));
    }
    let rules = raw
        .into_iter()
        .map(|r| rule(r, &mut new_id))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, r) in rules.iter().enumerate() {
        if rules[..i].iter().any(|o| o.id == r.id) {
            return Err(LifecycleError::Invalid(format!(
                "Rule ID must be unique. Found same ID for more than one rule: {}",
                r.id
            )));
        }
    }
    Ok(rules)
}

fn malformed(m: &str) -> LifecycleError {
    LifecycleError::Malformed(m.to_owned())
}

/// `doc` without its first `<name>...</name>` element (or `<name/>`), and that element's content
/// (empty for `<name/>`).
fn take<'d>(doc: &'d str, name: &str) -> (String, Option<&'d str>) {
    for empty in [format!("<{name}/>"), format!("<{name} />")] {
        if let Some(at) = doc.find(&empty) {
            return (
                format!("{}{}", &doc[..at], &doc[at + empty.len()..]),
                Some(""),
            );
        }
    }
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    if let Some(start) = doc.find(&open)
        && let Some(len) = doc[start..].find(&close)
    {
        let inner = &doc[start + open.len()..start + len];
        return (
            format!("{}{}", &doc[..start], &doc[start + len + close.len()..]),
            Some(inner),
        );
    }
    (doc.to_owned(), None)
}

fn text(doc: &str, name: &str) -> Option<String> {
    xml::element(doc, name, 0).map(|(t, _)| t)
}

/// Whether `doc` holds a `<name>` element, an empty one (`<name/>`, `<name />`, as ElementTree
/// writes it for boto3 and the OBS SDK) included.
fn has(doc: &str, name: &str) -> bool {
    [
        format!("<{name}>"),
        format!("<{name}/>"),
        format!("<{name} />"),
    ]
    .iter()
    .any(|e| doc.contains(e.as_str()))
}

/// A prefix: the element's text, empty for an empty element.
fn prefix(doc: &str) -> Option<String> {
    text(doc, "Prefix").or_else(|| has(doc, "Prefix").then(String::new))
}

fn rule(doc: &str, new_id: &mut impl FnMut() -> String) -> Result<Rule, LifecycleError> {
    for (element, why) in [
        (
            "Transition",
            "storage classes other than STANDARD are not served",
        ),
        (
            "NoncurrentVersionTransition",
            "storage classes other than STANDARD are not served",
        ),
    ] {
        if has(doc, element) {
            return Err(LifecycleError::NotImplemented(format!(
                "the lifecycle action {element} is not done by the gateway: {why}"
            )));
        }
    }
    // The actions first, so that what is left names the rule's objects.
    let (rest, expiration) = take(doc, "Expiration");
    let (rest, noncurrent) = take(&rest, "NoncurrentVersionExpiration");
    let (rest, abort) = take(&rest, "AbortIncompleteMultipartUpload");
    let (rest, filter) = take(&rest, "Filter");
    let id = match text(&rest, "ID") {
        Some(id) if id.chars().count() > MAX_ID => {
            return Err(LifecycleError::Invalid(format!(
                "a rule ID is at most {MAX_ID} characters"
            )));
        }
        Some(id) if !id.is_empty() => id,
        _ => new_id(),
    };
    let enabled = match text(&rest, "Status").as_deref() {
        Some("Enabled") => true,
        Some("Disabled") => false,
        _ => {
            return Err(malformed("each rule has a Status of Enabled or Disabled"));
        }
    };
    let rule_prefix = prefix(&rest);
    let filter = match (filter, rule_prefix.as_ref()) {
        (Some(_), Some(_)) => {
            return Err(malformed(
                "a rule names its objects by Filter or by Prefix, not both",
            ));
        }
        (None, None) => return Err(malformed("each rule has a Filter or a Prefix")),
        (None, Some(p)) => Filter {
            prefix: p.clone(),
            ..Filter::default()
        },
        (Some(f), None) => filter_of(f)?,
    };
    let expired_delete_markers = match expiration.map(|e| text(e, "ExpiredObjectDeleteMarker")) {
        Some(Some(v)) if v == "true" || v == "false" => {
            if has(expiration.unwrap_or_default(), "Days")
                || has(expiration.unwrap_or_default(), "Date")
            {
                return Err(LifecycleError::Invalid(
                    "ExpiredObjectDeleteMarker cannot be specified with Days or Date in a Lifecycle Expiration Policy".into(),
                ));
            }
            v == "true"
        }
        Some(Some(v)) => {
            return Err(malformed(&format!(
                "ExpiredObjectDeleteMarker is true or false, not {v:?}"
            )));
        }
        _ => false,
    };
    let expiration = match expiration {
        Some(e) if !has(e, "ExpiredObjectDeleteMarker") => Some(expiration_of(e)?),
        _ => None,
    };
    if expired_delete_markers
        && (!filter.tags.is_empty()
            || filter.larger_than.is_some()
            || filter.smaller_than.is_some())
    {
        return Err(LifecycleError::InvalidRequest(
            "ExpiredObjectDeleteMarker cannot be specified with Tags or object sizes".into(),
        ));
    }
    let noncurrent_expiration = noncurrent.map(noncurrent_of).transpose()?;
    let abort_after_days = abort
        .map(|a| positive_days(text(a, "DaysAfterInitiation"), "DaysAfterInitiation"))
        .transpose()?;
    if expiration.is_none()
        && abort_after_days.is_none()
        && noncurrent_expiration.is_none()
        && !expired_delete_markers
    {
        return Err(LifecycleError::InvalidRequest(
            "At least one action needs to be specified in a rule".into(),
        ));
    }
    if abort_after_days.is_some()
        && (!filter.tags.is_empty()
            || filter.larger_than.is_some()
            || filter.smaller_than.is_some())
    {
        return Err(LifecycleError::InvalidRequest(
            "AbortIncompleteMultipartUpload cannot be specified with Tags or object sizes".into(),
        ));
    }
    Ok(Rule {
        id,
        enabled,
        rule_prefix: rule_prefix.is_some(),
        filter,
        expiration,
        abort_after_days,
        noncurrent_expiration,
        expired_delete_markers,
    })
}

fn noncurrent_of(doc: &str) -> Result<NoncurrentExpiration, LifecycleError> {
    let days = positive_days(text(doc, "NoncurrentDays"), "NoncurrentDays")?;
    let newer_versions = text(doc, "NewerNoncurrentVersions")
        .map(|n| match n.parse::<u32>() {
            Ok(v @ 1..=100) if n.bytes().all(|b| b.is_ascii_digit()) => Ok(v),
            _ => Err(LifecycleError::Invalid(format!(
                "NewerNoncurrentVersions must be 1 to 100, not {n:?}"
            ))),
        })
        .transpose()?;
    Ok(NoncurrentExpiration {
        days,
        newer_versions,
    })
}

fn filter_of(doc: &str) -> Result<Filter, LifecycleError> {
    let (rest, and) = take(doc, "And");
    let one = |doc: &str| -> Result<Filter, LifecycleError> {
        let size = |name: &str| {
            text(doc, name)
                .map(|t| {
                    t.parse::<u64>().map_err(|_| {
                        LifecycleError::Invalid(format!("{name} {t:?} is not a number of bytes"))
                    })
                })
                .transpose()
        };
        let tags = xml::raw_elements(doc, "Tag")
            .into_iter()
            .map(|t| match (text(t, "Key"), text(t, "Value")) {
                (Some(k), Some(v)) if !k.is_empty() => Ok((k, v)),
                _ => Err(malformed("each Tag of a filter has a Key and a Value")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Filter {
            prefix: prefix(doc).unwrap_or_default(),
            tags,
            larger_than: size("ObjectSizeGreaterThan")?,
            smaller_than: size("ObjectSizeLessThan")?,
        })
    };
    let outside = one(&rest)?;
    let conditions = |f: &Filter| {
        usize::from(has(&rest, "Prefix"))
            + f.tags.len()
            + usize::from(f.larger_than.is_some())
            + usize::from(f.smaller_than.is_some())
    };
    let filter = match and {
        Some(_) if conditions(&outside) > 0 => {
            return Err(malformed("a Filter holds And or one condition, not both"));
        }
        Some(and) => one(and)?,
        None if conditions(&outside) > 1 => {
            return Err(malformed("a Filter holds one condition; several go in And"));
        }
        None => outside,
    };
    if let (Some(gt), Some(lt)) = (filter.larger_than, filter.smaller_than)
        && gt >= lt
    {
        return Err(LifecycleError::Invalid(
            "ObjectSizeGreaterThan must be less than ObjectSizeLessThan".into(),
        ));
    }
    Ok(filter)
}

fn positive_days(t: Option<String>, name: &str) -> Result<u32, LifecycleError> {
    let t = t.ok_or_else(|| malformed(&format!("{name} is missing")))?;
    match t.parse::<u32>() {
        Ok(d) if d > 0 && t.bytes().all(|b| b.is_ascii_digit()) => Ok(d),
        _ => Err(LifecycleError::Invalid(format!(
            "'{name}' must be a positive integer, not {t:?}"
        ))),
    }
}

fn expiration_of(doc: &str) -> Result<Expiration, LifecycleError> {
    match (text(doc, "Days"), text(doc, "Date")) {
        (Some(d), None) => Ok(Expiration::Days(positive_days(Some(d), "Days")?)),
        (None, Some(date)) => {
            let at: jiff::Timestamp = date.parse().map_err(|_| {
                LifecycleError::Invalid(format!("'Date' {date:?} is not an ISO 8601 date"))
            })?;
            let ms = at.as_millisecond();
            if ms.rem_euclid(DAY_MS) != 0 {
                return Err(LifecycleError::Invalid(
                    "'Date' must be at midnight GMT".into(),
                ));
            }
            Ok(Expiration::Date(ms))
        }
        _ => Err(malformed("an Expiration holds Days or Date, one of them")),
    }
}

/// The first midnight UTC at or after `ms`.
fn midnight_at_or_after(ms: i64) -> i64 {
    ms.saturating_add(DAY_MS - 1).div_euclid(DAY_MS) * DAY_MS
}

impl Rule {
    /// Whether the rule applies to an object under `key` of `size` bytes with `tags`.
    pub fn applies_to(&self, key: &str, size: u64, tags: &[(String, String)]) -> bool {
        let f = &self.filter;
        self.enabled
            && key.starts_with(&f.prefix)
            && f.tags.iter().all(|t| tags.contains(t))
            && f.larger_than.is_none_or(|n| size > n)
            && f.smaller_than.is_none_or(|n| size < n)
    }
}

/// When the first of `rules` to expire an object modified at `modified_ms` does, and its ID.
pub fn object_expiry<'r>(
    rules: &'r [Rule],
    key: &str,
    size: u64,
    tags: &[(String, String)],
    modified_ms: i64,
) -> Option<(i64, &'r str)> {
    rules
        .iter()
        .filter(|r| r.applies_to(key, size, tags))
        .filter_map(|r| {
            let at = match r.expiration? {
                Expiration::Days(d) => midnight_at_or_after(
                    modified_ms.saturating_add(i64::from(d).saturating_mul(DAY_MS)),
                ),
                Expiration::Date(at) => at,
            };
            Some((at, r.id.as_str()))
        })
        .min_by_key(|(at, _)| *at)
}

/// When the first of `rules` expires a noncurrent version of `key` (of `size` bytes, with `tags`)
/// that has been noncurrent since `noncurrent_ms` and has `newer` noncurrent versions of its key
/// newer than it.
pub fn noncurrent_expiry(
    rules: &[Rule],
    key: &str,
    size: u64,
    tags: &[(String, String)],
    noncurrent_ms: i64,
    newer: usize,
) -> Option<i64> {
    rules
        .iter()
        .filter(|r| r.applies_to(key, size, tags))
        .filter_map(|r| {
            let n = r.noncurrent_expiration?;
            if n.newer_versions
                .is_some_and(|keep| newer < usize::try_from(keep).unwrap_or(usize::MAX))
            {
                return None;
            }
            Some(midnight_at_or_after(
                noncurrent_ms.saturating_add(i64::from(n.days).saturating_mul(DAY_MS)),
            ))
        })
        .min()
}

/// Whether one of `rules` removes a delete marker under `key` that is its key's only version.
pub fn removes_expired_marker(rules: &[Rule], key: &str) -> bool {
    rules
        .iter()
        .any(|r| r.enabled && r.expired_delete_markers && key.starts_with(&r.filter.prefix))
}

/// When the first of `rules` ends an upload of `key` initiated at `created_ms`.
pub fn upload_expiry(rules: &[Rule], key: &str, created_ms: i64) -> Option<i64> {
    rules
        .iter()
        .filter(|r| r.enabled && key.starts_with(&r.filter.prefix))
        .filter_map(|r| {
            r.abort_after_days.map(|d| {
                midnight_at_or_after(created_ms.saturating_add(i64::from(d).saturating_mul(DAY_MS)))
            })
        })
        .min()
}

/// The `LifecycleConfiguration` document of `rules`, as GetBucketLifecycleConfiguration (and
/// OBS's getBucketLifecycle) answers it: each rule in the shape it was set in.
pub fn document(rules: &[Rule]) -> String {
    fn put(s: &mut String, name: &str, value: &str) {
        s.push_str(&format!("<{name}>{}</{name}>", xml::escape(value)));
    }
    let mut s = format!(
        "{}<LifecycleConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
        xml::DECL
    );
    for r in rules {
        s.push_str("<Rule>");
        put(&mut s, "ID", &r.id);
        let f = &r.filter;
        if r.rule_prefix {
            put(&mut s, "Prefix", &f.prefix);
        } else {
            let mut conditions = String::new();
            let mut n = 0;
            if !f.prefix.is_empty()
                || (f.tags.is_empty() && f.larger_than.is_none() && f.smaller_than.is_none())
            {
                put(&mut conditions, "Prefix", &f.prefix);
                n += 1;
            }
            for (k, v) in &f.tags {
                conditions.push_str(&format!(
                    "<Tag><Key>{}</Key><Value>{}</Value></Tag>",
                    xml::escape(k),
                    xml::escape(v)
                ));
                n += 1;
            }
            for (name, size) in [
                ("ObjectSizeGreaterThan", f.larger_than),
                ("ObjectSizeLessThan", f.smaller_than),
            ] {
                if let Some(size) = size {
                    put(&mut conditions, name, &size.to_string());
                    n += 1;
                }
            }
            match n {
                1 => s.push_str(&format!("<Filter>{conditions}</Filter>")),
                _ => s.push_str(&format!("<Filter><And>{conditions}</And></Filter>")),
            }
        }
        put(
            &mut s,
            "Status",
            if r.enabled { "Enabled" } else { "Disabled" },
        );
        match r.expiration {
            Some(Expiration::Days(d)) => {
                s.push_str(&format!("<Expiration><Days>{d}</Days></Expiration>"));
            }
            Some(Expiration::Date(at)) => s.push_str(&format!(
                "<Expiration><Date>{}</Date></Expiration>",
                xml::iso_time(at)
            )),
            None if r.expired_delete_markers => s.push_str(
                "<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>",
            ),
            None => {}
        }
        if let Some(n) = r.noncurrent_expiration {
            s.push_str(&format!(
                "<NoncurrentVersionExpiration><NoncurrentDays>{}</NoncurrentDays>",
                n.days
            ));
            if let Some(keep) = n.newer_versions {
                s.push_str(&format!(
                    "<NewerNoncurrentVersions>{keep}</NewerNoncurrentVersions>"
                ));
            }
            s.push_str("</NoncurrentVersionExpiration>");
        }
        if let Some(d) = r.abort_after_days {
            s.push_str(&format!(
                "<AbortIncompleteMultipartUpload><DaysAfterInitiation>{d}</DaysAfterInitiation></AbortIncompleteMultipartUpload>"
            ));
        }
        s.push_str("</Rule>");
    }
    s.push_str("</LifecycleConfiguration>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(rules: &str) -> String {
        format!("<LifecycleConfiguration>{rules}</LifecycleConfiguration>")
    }

    fn ids() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("made-{n}")
        }
    }

    const DAY: &str = "<Expiration><Days>1</Days></Expiration>";

    #[test]
    fn a_configuration_is_refused_unless_each_rule_is_one_s3_and_obs_take() {
        let malformed = "MalformedXML";
        let invalid = "InvalidArgument";
        let request = "InvalidRequest";
        let unserved = "NotImplemented";
        let on = "<Status>Enabled</Status>";
        // (rule, the rules, the refusal)
        let cases: Vec<(&str, String, &str)> = vec![
            ("another document", "<Tagging/>".into(), malformed),
            ("no rule", doc(""), malformed),
            (
                "no status",
                doc(&format!("<Rule><Prefix>a</Prefix>{DAY}</Rule>")),
                malformed,
            ),
            (
                "a status S3 does not take",
                doc(&format!(
                    "<Rule><Prefix>a</Prefix><Status>On</Status>{DAY}</Rule>"
                )),
                malformed,
            ),
            (
                "neither Filter nor Prefix",
                doc(&format!("<Rule>{on}{DAY}</Rule>")),
                malformed,
            ),
            (
                "both Filter and Prefix",
                doc(&format!(
                    "<Rule><Prefix>a</Prefix><Filter><Prefix>b</Prefix></Filter>{on}{DAY}</Rule>"
                )),
                malformed,
            ),
            (
                "two conditions outside And",
                doc(&format!(
                    "<Rule><Filter><Prefix>a</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></Filter>{on}{DAY}</Rule>"
                )),
                malformed,
            ),
            (
                "a condition beside And",
                doc(&format!(
                    "<Rule><Filter><Prefix>a</Prefix><And><Prefix>b</Prefix></And></Filter>{on}{DAY}</Rule>"
                )),
                malformed,
            ),
            (
                "no action",
                doc(&format!("<Rule><Prefix>a</Prefix>{on}</Rule>")),
                request,
            ),
            (
                "zero days",
                doc(&format!(
                    "<Rule><Prefix>a</Prefix>{on}<Expiration><Days>0</Days></Expiration></Rule>"
                )),
                invalid,
            ),
            (
                "days and a date",
                doc(&format!(
                    "<Rule><Prefix>a</Prefix>{on}<Expiration><Days>1</Days><Date>2027-01-01T00:00:00Z</Date></Expiration></Rule>"
                )),
                malformed,
            ),
            (
                "a date not at midnight",
                doc(&format!(
                    "<Rule><Prefix>a</Prefix>{on}<Expiration><Date>2027-01-01T12:00:00Z</Date></Expiration></Rule>"
                )),
                invalid,
            ),
            (
                "a date that is not one",
                doc(&format!(
                    "<Rule><Prefix>a</Prefix>{on}<Expiration><Date>soon</Date></Expiration></Rule>"
                )),
                invalid,
            ),
            (
                "the same ID twice",
                doc(&format!(
                    "<Rule><ID>x</ID><Prefix>a</Prefix>{on}{DAY}</Rule><Rule><ID>x</ID><Prefix>b</Prefix>{on}{DAY}</Rule>"
                )),
                invalid,
            ),
            (
                "an ID over 255 characters",
                doc(&format!(
                    "<Rule><ID>{}</ID><Prefix>a</Prefix>{on}{DAY}</Rule>",
                    "i".repeat(256)
                )),
                invalid,
            ),
            (
                "sizes the wrong way round",
                doc(&format!(
                    "<Rule><Filter><And><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan><ObjectSizeLessThan>5</ObjectSizeLessThan></And></Filter>{on}{DAY}</Rule>"
                )),
                invalid,
            ),
            (
                "ending uploads by tag",
                doc(&format!(
                    "<Rule><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>{on}<AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>"
                )),
                request,
            ),
            (
                "a transition",
                doc(&format!(
                    "<Rule><Prefix>a</Prefix>{on}<Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition></Rule>"
                )),
                unserved,
            ),
            (
                "a noncurrent version's transition",
                doc(&format!(
                    "<Rule><Prefix>a</Prefix>{on}<NoncurrentVersionTransition><NoncurrentDays>1</NoncurrentDays><StorageClass>GLACIER</StorageClass></NoncurrentVersionTransition></Rule>"
                )),
                unserved,
            ),
            (
                "noncurrent versions kept for no days",
                doc(&format!(
                    "<Rule><Prefix>a</Prefix>{on}<NoncurrentVersionExpiration><NoncurrentDays>0</NoncurrentDays></NoncurrentVersionExpiration></Rule>"
                )),
                invalid,
            ),
            (
                "noncurrent versions without days",
                doc(&format!(
                    "<Rule><Prefix>a</Prefix>{on}<NoncurrentVersionExpiration><NewerNoncurrentVersions>2</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>"
                )),
                malformed,
            ),
            (
                "over 100 newer noncurrent versions kept",
                doc(&format!(
                    "<Rule><Prefix>a</Prefix>{on}<NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays><NewerNoncurrentVersions>101</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>"
                )),
                invalid,
            ),
            (
                "expired delete markers with days",
                doc(&format!(
                    "<Rule><Prefix>a</Prefix>{on}<Expiration><Days>1</Days><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>"
                )),
                invalid,
            ),
            (
                "expired delete markers by tag",
                doc(&format!(
                    "<Rule><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>{on}<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>"
                )),
                request,
            ),
            (
                "expired delete markers neither true nor false",
                doc(&format!(
                    "<Rule><Prefix>a</Prefix>{on}<Expiration><ExpiredObjectDeleteMarker>yes</ExpiredObjectDeleteMarker></Expiration></Rule>"
                )),
                malformed,
            ),
        ];
        for (rule, d, code) in cases {
            let got = parse(&d, ids()).map_err(|e| e.code());
            assert_eq!(got, Err(code), "{rule}");
        }
    }

    #[test]
    fn a_kept_configuration_reads_back_as_it_was_set() {
        let set = doc(concat!(
            "<Rule><ID>logs</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status>",
            "<Expiration><Days>1</Days></Expiration></Rule>",
            "<Rule><Filter><And><Prefix>tmp/</Prefix><Tag><Key>temp</Key><Value>yes</Value></Tag>",
            "<ObjectSizeGreaterThan>1</ObjectSizeGreaterThan></And></Filter>",
            "<Status>Disabled</Status><Expiration><Date>2027-01-03T00:00:00.000Z</Date></Expiration></Rule>",
            "<Rule><ID>obs</ID><Prefix>a &amp; b</Prefix><Status>Enabled</Status>",
            "<AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>",
            "<Rule><ID>all</ID><Filter/><Status>Enabled</Status><Expiration><Days>9</Days></Expiration></Rule>",
            "<Rule><ID>empty</ID><Filter><Prefix /></Filter><Status>Enabled</Status><Expiration><Days>9</Days></Expiration></Rule>",
            "<Rule><ID>obs-empty</ID><Prefix /><Status>Enabled</Status><Expiration><Days>9</Days></Expiration></Rule>",
            "<Rule><ID>old</ID><Filter><Prefix>v/</Prefix></Filter><Status>Enabled</Status>",
            "<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>",
            "<NoncurrentVersionExpiration><NoncurrentDays>3</NoncurrentDays><NewerNoncurrentVersions>2</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>",
        ));
        let rules = parse(&set, ids()).unwrap();
        assert_eq!(rules[1].id, "made-1", "a rule without an ID gets one");
        assert_eq!(
            rules[1].filter,
            Filter {
                prefix: "tmp/".into(),
                tags: vec![("temp".into(), "yes".into())],
                larger_than: Some(1),
                smaller_than: None,
            }
        );
        assert_eq!(
            rules[1].expiration,
            Some(Expiration::Date(1_798_934_400_000))
        );
        assert!(rules[2].rule_prefix && rules[2].filter.prefix == "a & b");
        assert_eq!(rules[3].filter, Filter::default());
        assert_eq!(
            rules[4].filter,
            Filter::default(),
            "an empty Prefix element"
        );
        assert!(rules[5].rule_prefix && rules[5].filter == Filter::default());
        assert!(rules[6].expired_delete_markers && rules[6].expiration.is_none());
        assert_eq!(
            rules[6].noncurrent_expiration,
            Some(NoncurrentExpiration {
                days: 3,
                newer_versions: Some(2)
            })
        );
        let answered = document(&rules);
        assert_eq!(parse(&answered, ids()).unwrap(), rules, "{answered}");
        assert!(answered.contains("<Prefix>a &amp; b</Prefix><Status>"));
    }

    /// Any body, cut anywhere or with its elements shuffled, is taken or refused, never a panic.
    #[test]
    fn a_cut_or_jumbled_document_is_refused_without_a_panic() {
        let whole = doc(concat!(
            "<Rule><ID>é-ü</ID><Filter><And><Prefix>p/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag>",
            "<ObjectSizeGreaterThan>1</ObjectSizeGreaterThan></And></Filter><Status>Enabled</Status>",
            "<Expiration><Date>2027-01-03T00:00:00Z</Date></Expiration>",
            "<AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>",
        ));
        for (at, _) in whole.char_indices() {
            let _ = parse(&whole[..at], ids());
            let _ = parse(&format!("{}{}", &whole[at..], &whole[..at]), ids());
        }
        for odd in [
            "<LifecycleConfiguration><Rule><Filter/><Filter />",
            "<LifecycleConfiguration><Rule></Filter><Filter>",
            "<LifecycleConfiguration><Rule><Prefix /><Prefix>",
        ] {
            assert!(parse(odd, ids()).is_err(), "{odd}");
        }
    }

    #[test]
    fn objects_expire_at_the_first_rule_midnight_and_uploads_end_by_prefix() {
        let rules = parse(
            &doc(concat!(
                "<Rule><ID>day</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>",
                "<Rule><ID>dated</ID><Filter><Prefix>logs/old</Prefix></Filter><Status>Enabled</Status><Expiration><Date>1970-01-02T00:00:00Z</Date></Expiration></Rule>",
                "<Rule><ID>tagged</ID><Filter><And><Tag><Key>t</Key><Value>1</Value></Tag><ObjectSizeLessThan>10</ObjectSizeLessThan></And></Filter><Status>Enabled</Status><Expiration><Days>3</Days></Expiration></Rule>",
                "<Rule><ID>off</ID><Filter><Prefix></Prefix></Filter><Status>Disabled</Status><Expiration><Days>1</Days></Expiration></Rule>",
                "<Rule><ID>uploads</ID><Prefix>up/</Prefix><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>",
            )),
            ids(),
        )
        .unwrap();
        let hour = 3_600_000;
        let tag = vec![("t".to_owned(), "1".to_owned())];
        // (rule, key, size, tags, modified, expiry)
        for (rule, key, size, tags, modified, want) in [
            (
                "days end at the next midnight",
                "logs/a",
                5,
                vec![],
                8 * hour,
                Some((2 * DAY_MS, "day")),
            ),
            (
                "a day from midnight is the next midnight",
                "logs/a",
                5,
                vec![],
                0,
                Some((DAY_MS, "day")),
            ),
            (
                "the earliest rule counts",
                "logs/old",
                5,
                vec![],
                8 * hour,
                Some((DAY_MS, "dated")),
            ),
            ("no rule for the key", "data/a", 5, vec![], 0, None),
            (
                "all of a filter's conditions",
                "data/a",
                5,
                tag.clone(),
                0,
                Some((3 * DAY_MS, "tagged")),
            ),
            (
                "too large for the filter",
                "data/a",
                10,
                tag.clone(),
                0,
                None,
            ),
            (
                "missing the tag",
                "data/a",
                5,
                vec![("t".to_owned(), "2".to_owned())],
                0,
                None,
            ),
        ] {
            assert_eq!(
                object_expiry(&rules, key, size, &tags, modified)
                    .map(|(at, id)| (at, id.to_owned())),
                want.map(|(at, id)| (at, id.to_owned())),
                "{rule}"
            );
        }
        assert_eq!(upload_expiry(&rules, "up/x", hour), Some(3 * DAY_MS));
        assert_eq!(
            upload_expiry(&rules, "logs/x", hour),
            None,
            "no abort rule for it"
        );
    }

    #[test]
    fn noncurrent_versions_expire_days_after_they_stop_being_current_past_the_newest_kept() {
        let rules = parse(
            &doc(concat!(
                "<Rule><ID>keep-2</ID><Filter><Prefix>v/</Prefix></Filter><Status>Enabled</Status>",
                "<NoncurrentVersionExpiration><NoncurrentDays>2</NoncurrentDays><NewerNoncurrentVersions>2</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>",
                "<Rule><ID>markers</ID><Filter><Prefix>m/</Prefix></Filter><Status>Enabled</Status>",
                "<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>",
            )),
            ids(),
        )
        .unwrap();
        let hour = 3_600_000;
        // (rule, key, noncurrent since, newer noncurrent versions, when it expires)
        for (rule, key, since, newer, want) in [
            ("one of the newest two kept", "v/a", 0, 1, None),
            (
                "past the newest two: the midnight two days on",
                "v/a",
                hour,
                2,
                Some(3 * DAY_MS),
            ),
            ("no rule for the key", "x/a", 0, 5, None),
            ("a marker rule expires no versions", "m/a", 0, 5, None),
        ] {
            assert_eq!(
                noncurrent_expiry(&rules, key, 1, &[], since, newer),
                want,
                "{rule}"
            );
        }
        assert!(removes_expired_marker(&rules, "m/a"));
        assert!(!removes_expired_marker(&rules, "v/a"));
    }
}
