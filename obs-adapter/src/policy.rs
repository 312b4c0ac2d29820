//! Bucket policies (rule 8): a strict parser, run when a policy is set, and an evaluator.
//!
//! # Grammar
//!
//! A policy is a JSON object of at most 20 KiB with the members `Statement` (required: one statement
//! object or a non-empty array of them), `Version` (optional: `"2008-10-17"` or `"2012-10-17"`) and
//! `Id` (optional string). A statement has:
//!
//! - `Sid`: optional string.
//! - `Effect`: `"Allow"` or `"Deny"`.
//! - `Principal`: `"*"` (every caller), or `{"ID": <id or list of ids>}` where an id is `"*"`,
//!   `"domain/<domainID>"` (every user of the tenant), `"domain/<domainID>:user/<userID>"` or
//!   `"domain/<domainID>:user/*"`.
//! - `Action`: an action or a non-empty list of them: `"*"`, or an action name with an optional
//!   `obs:object:` / `obs:bucket:` / `obs:` prefix, with `*` and `?` wildcards, matched without regard
//!   to case. Every action pattern must match at least one known OBS action (see [`KNOWN_ACTIONS`]),
//!   so that a misspelt action in a Deny statement is refused instead of silently matching nothing.
//! - `Resource`: a resource or a non-empty list of them: `"<bucket>"` or `"<bucket>/<key pattern>"`,
//!   where `<bucket>` is exactly the policy's bucket and the key pattern may use `*` (any run of
//!   characters, `/` included) and `?` (one character). Matched with case.
//! - `Condition`: optional; `{ <operator>: { <key>: <value or list of values> } }`. Operators:
//!   `StringEquals`, `StringNotEquals`, `StringEqualsIgnoreCase`, `StringNotEqualsIgnoreCase`,
//!   `StringLike`, `StringNotLike` (with `*` and `?`) and `Null` (`true`: the key is absent;
//!   `false`: it is present). Keys: `x-obs-server-side-encryption` and
//!   `x-obs-server-side-encryption-kms-key-id`, optionally prefixed `obs:`, without regard to case;
//!   they read the request (see rule 8 in the crate docs).
//!
//! # S3's spelling
//!
//! OBS's S3-compatible interface takes policies written for S3, and code written for S3 sets them
//! (boto3's `put_bucket_policy`). Their spelling reads as the same rules: `Principal`
//! `{"AWS": ...}` with `"*"`, `"arn:aws:iam::<domainID>:root"` (the tenant) or
//! `"arn:aws:iam::<domainID>:user/<userID>"`; actions `s3:<name>` (`s3:*` for all), each name
//! still one of OBS's; resources `arn:aws:s3:::<bucket>[/<key pattern>]`; condition keys
//! `s3:x-amz-server-side-encryption` and `s3:x-amz-server-side-encryption-aws-kms-key-id` (the
//! same request parameters as the `x-obs-` keys), where the value `aws:kms` is S3's name of
//! OBS's `kms`. Other S3 condition keys (`aws:SecureTransport`, ...) and operators (`Bool`, ...)
//! are refused like any unknown key.
//!
//! Anything else is refused with [`PolicyError`]: unknown members, `NotPrincipal`, `NotAction`,
//! `NotResource`, `ForAnyValue:`/`ForAllValues:` and `...IfExists` operators, unknown condition keys,
//! empty lists, a JSON member given twice in one object, and non-string values.
//!
//! # Evaluation
//!
//! A statement applies when its principal, action, resource and every condition match. A condition
//! operator with several keys needs all of them; a key with several values needs one of them (for the
//! negated operators: none of them). An absent key makes `StringEquals`, `StringEqualsIgnoreCase`
//! and `StringLike` false, and `StringNotEquals`, `StringNotEqualsIgnoreCase` and `StringNotLike`
//! true. An explicit Deny wins over every Allow.
//!
//! Key IDs (`x-obs-server-side-encryption-kms-key-id`) are compared by the key they name, not by
//! their spelling: for `StringEquals`, `StringNotEquals` and the `IgnoreCase` pair, the request's
//! key ID and every condition value that follows the key-ID grammar are turned into the canonical
//! full key ID ([`crate::vocab::canonical_key_id`]: a bare UUID in the caller's domain and the
//! bucket's region, lower-case hex, the caller's own domain ID however it was cased) before
//! comparing; values that are not key IDs are compared as written. A `StringLike` pattern holds
//! when it matches, without regard to ASCII case, the key ID as written, its canonical full form or
//! its canonical bare UUID.

use std::collections::BTreeMap;
use std::fmt;

use kms_proto::key_id::{DomainId, KeyRef, RegionId};
use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::vocab::{SSE_HEADER, SSE_KEY_ID_HEADER, canonical_key_id};

/// Largest policy accepted, in bytes (OBS's limit).
pub const MAX_POLICY_BYTES: usize = 20 * 1024;

/// The OBS actions a policy may name.
pub const KNOWN_ACTIONS: &[&str] = &[
    "PutObject",
    "GetObject",
    "GetObjectVersion",
    "DeleteObject",
    "DeleteObjectVersion",
    "RestoreObject",
    "PutObjectAcl",
    "PutObjectVersionAcl",
    "GetObjectAcl",
    "GetObjectVersionAcl",
    "ModifyObjectMetaData",
    "ListMultipartUploadParts",
    "AbortMultipartUpload",
    "ListBucket",
    "ListBucketVersions",
    "ListBucketMultipartUploads",
    "HeadBucket",
    "GetBucketPolicy",
    "PutBucketPolicy",
    "DeleteBucketPolicy",
    "GetBucketAcl",
    "PutBucketAcl",
    "GetEncryptionConfiguration",
    "PutEncryptionConfiguration",
    "DeleteBucket",
];

/// The condition keys a policy may use (lower case, without the optional `obs:` prefix).
pub const CONDITION_KEYS: &[&str] = &[SSE_HEADER, SSE_KEY_ID_HEADER];

/// S3's condition keys (lower case) for the same request parameters, and OBS's names of them.
const S3_CONDITION_KEYS: [(&str, &str); 2] = [
    ("s3:x-amz-server-side-encryption", SSE_HEADER),
    (
        "s3:x-amz-server-side-encryption-aws-kms-key-id",
        SSE_KEY_ID_HEADER,
    ),
];

/// Why a policy was refused when it was set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed bucket policy: {at}: {reason}")]
pub struct PolicyError {
    at: String,
    reason: String,
}

impl PolicyError {
    fn new(at: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            at: at.into(),
            reason: reason.into(),
        }
    }

    /// Where in the policy the problem is, such as `Statement[0].Effect`.
    pub fn at(&self) -> &str {
        &self.at
    }

    /// What is wrong.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// Allow or Deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Grants.
    Allow,
    /// Refuses, whatever else grants.
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PrincipalId {
    Any,
    Domain(DomainId),
    User { domain: DomainId, user: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    Null,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Condition {
    operator: Operator,
    key: String,
    values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    sid: Option<String>,
    effect: Effect,
    principals: Vec<PrincipalId>,
    actions: Vec<String>,
    resources: Vec<String>,
    conditions: Vec<Condition>,
}

/// A validated bucket policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketPolicy {
    bucket: String,
    statements: Vec<Statement>,
}

/// The request facts a policy is evaluated against.
#[derive(Debug, Clone)]
pub struct PolicyRequest<'a> {
    /// The authenticated caller's domain (matched by `domain/<domainID>` principals).
    pub domain: &'a DomainId,
    /// The caller's IAM user ID, when known (matched by `domain/<domainID>:user/<userID>`).
    pub user: Option<&'a str>,
    /// The bucket's region: where a bare key UUID (in the request or in a condition) names a key.
    pub region: &'a RegionId,
    /// The action, such as `PutObject`.
    pub action: &'a str,
    /// The object key (the resource is `<bucket>/<object key>`).
    pub object_key: &'a str,
    /// Condition keys (lower case, no prefix) to the request's values.
    pub context: &'a BTreeMap<String, String>,
}

/// The outcome of evaluating a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyVerdict {
    /// An Allow statement applies, and no Deny.
    Allow {
        /// The first applying Allow statement's `Sid`.
        sid: Option<String>,
    },
    /// A Deny statement applies.
    Deny {
        /// The first applying Deny statement's `Sid`.
        sid: Option<String>,
    },
    /// No statement applies (or no policy): the bucket ACL decides.
    NoMatch,
}

/// A JSON value parsed with duplicate object members refused.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = StrictValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Null))
    }
    fn visit_none<E>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrictValue, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(StrictValue(Value::Array(out)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StrictValue, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if out.contains_key(&k) {
                return Err(de::Error::custom(format!("member {k:?} is given twice")));
            }
            let StrictValue(v) = map.next_value()?;
            out.insert(k, v);
        }
        Ok(StrictValue(Value::Object(out)))
    }
}

fn object<'a>(v: &'a Value, at: &str) -> Result<&'a Map<String, Value>, PolicyError> {
    v.as_object()
        .ok_or_else(|| PolicyError::new(at, "must be a JSON object"))
}

fn string<'a>(v: &'a Value, at: &str) -> Result<&'a str, PolicyError> {
    v.as_str()
        .ok_or_else(|| PolicyError::new(at, "must be a string"))
}

/// A string or a non-empty list of strings.
fn strings(v: &Value, at: &str) -> Result<Vec<String>, PolicyError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if items.is_empty() => {
            Err(PolicyError::new(at, "must not be an empty list"))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| string(item, &format!("{at}[{i}]")).map(str::to_owned))
            .collect(),
        _ => Err(PolicyError::new(
            at,
            "must be a string or a list of strings",
        )),
    }
}

fn only_members(map: &Map<String, Value>, at: &str, allowed: &[&str]) -> Result<(), PolicyError> {
    for k in map.keys() {
        if !allowed.contains(&k.as_str()) {
            let reason = if matches!(k.as_str(), "NotPrincipal" | "NotAction" | "NotResource") {
                format!("{k} is not supported")
            } else {
                format!("unknown member {k:?}")
            };
            return Err(PolicyError::new(at, reason));
        }
    }
    Ok(())
}

/// Glob match with `*` (any run) and `?` (one character).
fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let eq = |a: char, b: char| {
        if ignore_case {
            a.to_lowercase().eq(b.to_lowercase())
        } else {
            a == b
        }
    };
    // Iterative matcher with backtracking to the last star: O(len(p) * len(t)).
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && eq(p[pi], t[ti]))) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn parse_principal(v: &Value, at: &str) -> Result<Vec<PrincipalId>, PolicyError> {
    let shape = "must be \"*\", {\"ID\": [...]} or S3's {\"AWS\": [...]}";
    if let Value::String(s) = v {
        return if s == "*" {
            Ok(vec![PrincipalId::Any])
        } else {
            Err(PolicyError::new(at, shape))
        };
    }
    let map = object(v, at)?;
    let (member, ids) = match (map.get("ID"), map.get("AWS"), map.len()) {
        (Some(ids), None, 1) => ("ID", ids),
        (None, Some(ids), 1) => ("AWS", ids),
        _ => return Err(PolicyError::new(at, shape)),
    };
    let at = format!("{at}.{member}");
    strings(ids, &at)?
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let at = format!("{at}[{i}]");
            match member {
                "AWS" => parse_principal_id(&s3_principal_id(id, &at)?, &at),
                _ => parse_principal_id(id, &at),
            }
        })
        .collect()
}

/// An S3 principal (`"*"`, `arn:aws:iam::<domainID>:root`, `arn:aws:iam::<domainID>:user/<user>`)
/// in OBS's spelling.
fn s3_principal_id(id: &str, at: &str) -> Result<String, PolicyError> {
    if id == "*" {
        return Ok(id.to_owned());
    }
    let bad = || {
        PolicyError::new(
            at,
            format!(
                "{id:?} is not \"*\", \"arn:aws:iam::<domainID>:root\" or \"arn:aws:iam::<domainID>:user/<userID>\""
            ),
        )
    };
    let (domain, who) = id
        .strip_prefix("arn:aws:iam::")
        .and_then(|rest| rest.split_once(':'))
        .ok_or_else(bad)?;
    match who {
        "root" => Ok(format!("domain/{domain}")),
        _ => match who.strip_prefix("user/") {
            Some(user) => Ok(format!("domain/{domain}:user/{user}")),
            None => Err(bad()),
        },
    }
}

fn parse_principal_id(id: &str, at: &str) -> Result<PrincipalId, PolicyError> {
    if id == "*" {
        return Ok(PrincipalId::Any);
    }
    let bad = || {
        PolicyError::new(
            at,
            format!(
                "{id:?} is not \"*\", \"domain/<domainID>\" or \"domain/<domainID>:user/<userID>\""
            ),
        )
    };
    let rest = id.strip_prefix("domain/").ok_or_else(bad)?;
    let (domain, user) = match rest.split_once(":user/") {
        Some((d, u)) => (d, Some(u)),
        None => (rest, None),
    };
    let domain = DomainId::parse(domain).map_err(|e| PolicyError::new(at, e.to_string()))?;
    match user {
        None => Ok(PrincipalId::Domain(domain)),
        Some(u)
            if u == "*"
                || (!u.is_empty()
                    && u.len() <= 64
                    && u.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')) =>
        {
            Ok(PrincipalId::User {
                domain,
                user: u.to_owned(),
            })
        }
        Some(_) => Err(bad()),
    }
}

fn parse_action(a: &str, at: &str) -> Result<String, PolicyError> {
    let name = ["obs:object:", "obs:bucket:", "obs:", "s3:"]
        .iter()
        .find_map(|p| a.strip_prefix(p))
        .unwrap_or(a);
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphabetic() || c == '*' || c == '?')
    {
        return Err(PolicyError::new(at, format!("{a:?} is not an action name")));
    }
    if !KNOWN_ACTIONS.iter().any(|k| glob(name, k, true)) {
        return Err(PolicyError::new(
            at,
            format!("{a:?} matches no known OBS action"),
        ));
    }
    Ok(name.to_owned())
}

fn parse_resource(r: &str, bucket: &str, at: &str) -> Result<String, PolicyError> {
    let r = r.strip_prefix("arn:aws:s3:::").unwrap_or(r);
    if r == bucket {
        return Ok(r.to_owned());
    }
    match r
        .strip_prefix(bucket)
        .and_then(|rest| rest.strip_prefix('/'))
    {
        Some(_) => Ok(r.to_owned()),
        None => Err(PolicyError::new(
            at,
            format!("{r:?} is not \"{bucket}\" or \"{bucket}/<key pattern>\" of this bucket"),
        )),
    }
}

fn parse_conditions(v: &Value, at: &str) -> Result<Vec<Condition>, PolicyError> {
    let map = object(v, at)?;
    if map.is_empty() {
        return Err(PolicyError::new(at, "must not be empty"));
    }
    let mut out = Vec::new();
    for (op_name, body) in map {
        let at_op = format!("{at}.{op_name}");
        let operator = match op_name.as_str() {
            "StringEquals" => Operator::StringEquals,
            "StringNotEquals" => Operator::StringNotEquals,
            "StringEqualsIgnoreCase" => Operator::StringEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase" => Operator::StringNotEqualsIgnoreCase,
            "StringLike" => Operator::StringLike,
            "StringNotLike" => Operator::StringNotLike,
            "Null" => Operator::Null,
            other => {
                return Err(PolicyError::new(
                    at,
                    format!("condition operator {other:?} is not supported"),
                ));
            }
        };
        let keys = object(body, &at_op)?;
        if keys.is_empty() {
            return Err(PolicyError::new(at_op, "must not be empty"));
        }
        for (key, values) in keys {
            let at_key = format!("{at_op}.{key}");
            let lower = key.to_ascii_lowercase();
            let s3 = S3_CONDITION_KEYS
                .iter()
                .find(|(s3, _)| *s3 == lower)
                .map(|(_, obs)| *obs);
            let bare = s3.unwrap_or_else(|| lower.strip_prefix("obs:").unwrap_or(&lower));
            if !CONDITION_KEYS.contains(&bare) {
                return Err(PolicyError::new(
                    at_key,
                    format!("condition key {key:?} is not supported"),
                ));
            }
            let values = if operator == Operator::Null {
                match values {
                    Value::Bool(b) => vec![b.to_string()],
                    Value::String(s) if s == "true" || s == "false" => vec![s.clone()],
                    _ => {
                        return Err(PolicyError::new(at_key, "Null takes true or false"));
                    }
                }
            } else {
                let values = strings(values, &at_key)?;
                // S3's name of the algorithm OBS calls `kms`.
                match (s3, bare) {
                    (Some(_), SSE_HEADER) => values
                        .into_iter()
                        .map(|v| if v == "aws:kms" { "kms".to_owned() } else { v })
                        .collect(),
                    _ => values,
                }
            };
            out.push(Condition {
                operator,
                key: bare.to_owned(),
                values,
            });
        }
    }
    Ok(out)
}

fn parse_statement(v: &Value, bucket: &str, at: &str) -> Result<Statement, PolicyError> {
    let map = object(v, at)?;
    only_members(
        map,
        at,
        &[
            "Sid",
            "Effect",
            "Principal",
            "Action",
            "Resource",
            "Condition",
        ],
    )?;
    let required = |name: &str| {
        map.get(name)
            .ok_or_else(|| PolicyError::new(at, format!("{name} is required")))
    };
    let sid = map
        .get("Sid")
        .map(|s| string(s, &format!("{at}.Sid")).map(str::to_owned))
        .transpose()?;
    let effect = match string(required("Effect")?, &format!("{at}.Effect"))? {
        "Allow" => Effect::Allow,
        "Deny" => Effect::Deny,
        other => {
            return Err(PolicyError::new(
                format!("{at}.Effect"),
                format!("{other:?} is not \"Allow\" or \"Deny\""),
            ));
        }
    };
    let principals = parse_principal(required("Principal")?, &format!("{at}.Principal"))?;
    let at_action = format!("{at}.Action");
    let actions = strings(required("Action")?, &at_action)?
        .iter()
        .enumerate()
        .map(|(i, a)| parse_action(a, &format!("{at_action}[{i}]")))
        .collect::<Result<_, _>>()?;
    let at_resource = format!("{at}.Resource");
    let resources = strings(required("Resource")?, &at_resource)?
        .iter()
        .enumerate()
        .map(|(i, r)| parse_resource(r, bucket, &format!("{at_resource}[{i}]")))
        .collect::<Result<_, _>>()?;
    let conditions = map
        .get("Condition")
        .map(|c| parse_conditions(c, &format!("{at}.Condition")))
        .transpose()?
        .unwrap_or_default();
    Ok(Statement {
        sid,
        effect,
        principals,
        actions,
        resources,
        conditions,
    })
}

impl BucketPolicy {
    /// Parses and validates a policy for `bucket`, as an engine must when the policy is set.
    pub fn parse(bucket: &str, json: &str) -> Result<Self, PolicyError> {
        if json.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::new(
                "policy",
                format!("is {} bytes, more than {MAX_POLICY_BYTES}", json.len()),
            ));
        }
        let StrictValue(root) = serde_json::from_str(json)
            .map_err(|e| PolicyError::new("policy", format!("invalid JSON: {e}")))?;
        let map = object(&root, "policy")?;
        only_members(map, "policy", &["Version", "Id", "Statement"])?;
        if let Some(v) = map.get("Version") {
            let v = string(v, "Version")?;
            if v != "2008-10-17" && v != "2012-10-17" {
                return Err(PolicyError::new(
                    "Version",
                    format!("{v:?} is not \"2008-10-17\" or \"2012-10-17\""),
                ));
            }
        }
        if let Some(id) = map.get("Id") {
            string(id, "Id")?;
        }
        let statements = match map.get("Statement") {
            None => return Err(PolicyError::new("policy", "Statement is required")),
            Some(Value::Array(items)) if items.is_empty() => {
                return Err(PolicyError::new("Statement", "must not be an empty list"));
            }
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, s)| parse_statement(s, bucket, &format!("Statement[{i}]")))
                .collect::<Result<_, _>>()?,
            Some(single) => vec![parse_statement(single, bucket, "Statement")?],
        };
        Ok(Self {
            bucket: bucket.to_owned(),
            statements,
        })
    }

    /// The bucket the policy was validated for.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Whether the policy is public: an Allow statement grants every caller (`Principal` `"*"` or
    /// the ID `"*"`). Its conditions read only the request's encryption parameters, which do not
    /// narrow who the caller is, so they do not make a statement less public (S3's rule: only
    /// conditions on fixed values of who or where the caller is do).
    pub fn is_public(&self) -> bool {
        self.statements
            .iter()
            .any(|s| s.effect == Effect::Allow && s.principals.contains(&PrincipalId::Any))
    }

    /// Evaluates the policy: an applying Deny wins, else an applying Allow, else no match.
    pub fn evaluate(&self, req: &PolicyRequest<'_>) -> PolicyVerdict {
        let resource = format!("{}/{}", self.bucket, req.object_key);
        let mut allow = None;
        for s in &self.statements {
            if !applies(s, req, &resource) {
                continue;
            }
            match s.effect {
                Effect::Deny => return PolicyVerdict::Deny { sid: s.sid.clone() },
                Effect::Allow => {
                    if allow.is_none() {
                        allow = Some(s.sid.clone());
                    }
                }
            }
        }
        match allow {
            Some(sid) => PolicyVerdict::Allow { sid },
            None => PolicyVerdict::NoMatch,
        }
    }
}

fn applies(s: &Statement, req: &PolicyRequest<'_>, resource: &str) -> bool {
    let principal = s.principals.iter().any(|p| match p {
        PrincipalId::Any => true,
        PrincipalId::Domain(d) => d == req.domain,
        PrincipalId::User { domain, user } => {
            domain == req.domain && (user == "*" || req.user == Some(user.as_str()))
        }
    });
    principal
        && s.actions
            .iter()
            .any(|a| a == "*" || glob(a, req.action, true))
        && s.resources.iter().any(|r| glob(r, resource, false))
        && s.conditions.iter().all(|c| condition_holds(c, req))
}

/// A key ID as `StringEquals` and its kin compare it: the canonical full form in the caller's
/// domain and the bucket's region when it follows the key-ID grammar, else as written.
fn key_id_as_compared(v: &str, req: &PolicyRequest<'_>) -> String {
    match v.parse::<KeyRef>() {
        Ok(key) => canonical_key_id(&key, req.domain, req.region).to_string(),
        Err(_) => v.to_owned(),
    }
}

/// The spellings a `StringLike` pattern on the key ID is matched against: as written, the canonical
/// full form, and the canonical bare UUID.
fn key_id_spellings(v: &str, req: &PolicyRequest<'_>) -> Vec<String> {
    let mut out = vec![v.to_owned()];
    if let Ok(key) = v.parse::<KeyRef>() {
        let full = canonical_key_id(&key, req.domain, req.region);
        out.push(full.to_string());
        out.push(full.uuid.hyphenated().to_string());
    }
    out
}

fn condition_holds(c: &Condition, req: &PolicyRequest<'_>) -> bool {
    let raw = req.context.get(&c.key);
    // Key IDs: every spelling of one key compares equal (rule 8), on both sides.
    let is_key_id = c.key == SSE_KEY_ID_HEADER;
    let value = raw.map(|v| {
        if is_key_id {
            key_id_as_compared(v, req)
        } else {
            v.clone()
        }
    });
    let value = value.as_deref();
    let any = |f: &dyn Fn(&str, &str) -> bool| match value {
        Some(v) => c.values.iter().any(|want| {
            if is_key_id {
                f(&key_id_as_compared(want, req), v)
            } else {
                f(want, v)
            }
        }),
        None => false,
    };
    // A key-ID pattern holds when it matches any spelling of the request's key, without regard
    // to ASCII case.
    let like = || match raw {
        Some(v) if is_key_id => {
            let spellings = key_id_spellings(v, req);
            c.values
                .iter()
                .any(|p| spellings.iter().any(|s| glob(p, s, true)))
        }
        Some(v) => c.values.iter().any(|p| glob(p, v, false)),
        None => false,
    };
    match c.operator {
        Operator::StringEquals => any(&|w, v| w == v),
        Operator::StringNotEquals => !any(&|w, v| w == v),
        Operator::StringEqualsIgnoreCase => any(&|w, v| w.eq_ignore_ascii_case(v)),
        Operator::StringNotEqualsIgnoreCase => !any(&|w, v| w.eq_ignore_ascii_case(v)),
        Operator::StringLike => like(),
        Operator::StringNotLike => !like(),
        Operator::Null => {
            let want_absent = c.values.first().is_some_and(|v| v == "true");
            want_absent == value.is_none()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_stars_and_question_marks() {
        let cases = [
            ("b/*", "b/x/y", true),
            ("b/*", "b/", true),
            ("b/*", "c/x", false),
            ("b/a?c", "b/abc", true),
            ("b/a?c", "b/ac", false),
            ("b/*.txt", "b/dir/x.txt", true),
            ("b/*.txt", "b/dir/x.txt2", false),
            ("b/**x", "b/x", true),
            ("b", "b", true),
            ("b", "b/x", false),
        ];
        for (p, t, want) in cases {
            assert_eq!(glob(p, t, false), want, "{p} vs {t}");
        }
        assert!(glob("put*", "PutObject", true));
        assert!(!glob("put*", "PutObject", false));
    }
}
