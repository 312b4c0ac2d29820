//! Injected faults: rules that make matching calls fail, slow down or hang, so that a test can see
//! what a storage engine does when its KMS misbehaves.
//!
//! Every front-end asks [`Faults::intercept`] once per call, after it knows the caller and before
//! the call reaches the keyring, with the call's [`Operation`] (one vocabulary across the gRPC
//! methods, the REST operations and the transit paths), the caller and the key the call names.
//! The answer says how long to wait first and whether to fail or hang instead of running the call;
//! the front-end marks what was injected in the call's audit line.
//!
//! Rules are tried in the order they were added. A latency rule that fires adds its delay and the
//! next rules are still tried; a failure or a hang that fires ends the search. Each rule fires with
//! its probability, drawn from its own generator, seeded from the daemon's fault seed and the
//! rule's number: the same seed and the same rules give the same outcomes for the same sequence of
//! calls, whatever other rules do. A rule with a count retires after firing that many times (it
//! stays listed, with its hits). Rules live in memory only; `--faults FILE` adds rules at start-up:
//!
//! ```toml
//! seed = 42                                # optional; --fault-seed overrides it
//!
//! [[faults]]
//! operation = "GenerateDataKey"            # a kms.v1 method name, or "*" for every operation
//! domain_id = "783fc6652cf246c096ea836694f71855"   # optional, like region and key_id
//! fail = { error_code = "KMSBOX.0429" }    # or latency = { min_ms = 50, max_ms = 200 }, or hang = {}
//! probability = 0.5                        # optional, default 1
//! count = 3                                # optional: retire after firing 3 times
//! ```

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use kms_proto::ErrorCode;
use kms_proto::key_id::{DomainId, KeyRef, RegionId};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::error::ConfigError;
use crate::keyring::Caller;

macro_rules! operations {
    ($($(#[$doc:meta])* $variant:ident,)*) => {
        /// An operation of the KMS API, named after its `kms.v1` gRPC method. The REST
        /// operations and transit paths map onto the same names, so that one fault rule covers a
        /// call however it arrives.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Operation {
            $($(#[$doc])* $variant,)*
        }

        impl Operation {
            /// Every operation.
            pub const ALL: &'static [Operation] = &[$(Operation::$variant,)*];

            /// The name, as the gRPC method and the audit log spell it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Operation::$variant => stringify!($variant),)*
                }
            }
        }
    };
}

operations! {
    /// `CreateKey`.
    CreateKey,
    /// `DescribeKey`.
    DescribeKey,
    /// `EnableKey`.
    EnableKey,
    /// `DisableKey`.
    DisableKey,
    /// `ScheduleKeyDeletion`.
    ScheduleKeyDeletion,
    /// `CancelKeyDeletion`.
    CancelKeyDeletion,
    /// `ListKeys`.
    ListKeys,
    /// `RotateKey`.
    RotateKey,
    /// `GetDefaultKey`.
    GetDefaultKey,
    /// `GenerateDataKey`.
    GenerateDataKey,
    /// `GenerateDataKeyWithoutPlaintext`.
    GenerateDataKeyWithoutPlaintext,
    /// `Encrypt`.
    Encrypt,
    /// `Decrypt`.
    Decrypt,
    /// `ReEncrypt`.
    ReEncrypt,
    /// `GenerateRandom`.
    GenerateRandom,
    /// `UpdateKeyAlias`.
    UpdateKeyAlias,
    /// `UpdateKeyDescription`.
    UpdateKeyDescription,
    /// `EnableKeyRotation`.
    EnableKeyRotation,
    /// `DisableKeyRotation`.
    DisableKeyRotation,
    /// `UpdateKeyRotationInterval`.
    UpdateKeyRotationInterval,
    /// `GetKeyRotationStatus`.
    GetKeyRotationStatus,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Operation {
    type Err = FaultRuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Operation::ALL
            .iter()
            .copied()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| FaultRuleError(format!("unknown operation {s:?}")))
    }
}

/// A fault rule that cannot be used; the message says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FaultRuleError(pub String);

/// What a rule does to a call it fires on.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Refuse the call with this code; an empty message gets a default naming the injection.
    Fail {
        /// The code (its gRPC code comes from the table).
        code: ErrorCode,
        /// The status message.
        message: String,
    },
    /// Wait, then run the call: `min` exactly when `max == min`, else uniform in `min..=max`.
    Latency {
        /// The least delay.
        min: Duration,
        /// The greatest delay.
        max: Duration,
    },
    /// Answer nothing until the caller's deadline passes (or the daemon stops).
    Hang,
}

/// One fault rule: which calls it matches (`None` matches any), what it does, how often.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// The operation; `None` for every operation (`*`).
    pub operation: Option<Operation>,
    /// The caller's domain.
    pub domain: Option<DomainId>,
    /// The call's region.
    pub region: Option<RegionId>,
    /// The key the call names, by UUID.
    pub key: Option<Uuid>,
    /// What it does.
    pub action: Action,
    /// The chance it fires on a matching call, in (0, 1].
    pub probability: f64,
    /// Retire after firing this many times; `None` never.
    pub count: Option<u64>,
}

/// The most rules held at once: every matching call walks them under one lock.
pub const MAX_RULES: usize = 1024;

/// The longest injected latency: an hour, far beyond any sane client deadline.
pub const MAX_LATENCY: Duration = Duration::from_secs(3600);

/// A rule as a file or a request spells it, before it is checked.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// A kms.v1 method name, or `*`.
    pub operation: String,
    /// Empty or absent for any.
    #[serde(default)]
    pub domain_id: Option<String>,
    /// Empty or absent for any.
    #[serde(default)]
    pub region: Option<String>,
    /// Empty or absent for any; bare UUID or full form.
    #[serde(default)]
    pub key_id: Option<String>,
    /// Refuse the call.
    #[serde(default)]
    pub fail: Option<FailSpec>,
    /// Delay the call.
    #[serde(default)]
    pub latency: Option<LatencySpec>,
    /// Hang the call.
    #[serde(default)]
    pub hang: Option<HangSpec>,
    /// In (0, 1]; absent or 0 for 1.
    #[serde(default)]
    pub probability: Option<f64>,
    /// Absent or 0 for never retiring.
    #[serde(default)]
    pub count: Option<u64>,
}

/// `fail = { error_code = "KMS.0209", message = "..." }`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailSpec {
    /// A code of the error table.
    pub error_code: String,
    /// Optional status message.
    #[serde(default)]
    pub message: String,
}

/// `latency = { min_ms = 50, max_ms = 200 }` (`max_ms` absent: fixed).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencySpec {
    /// The delay, or the least of a range.
    pub min_ms: u64,
    /// The greatest delay of a range.
    #[serde(default)]
    pub max_ms: Option<u64>,
}

/// `hang = {}`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HangSpec {}

fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

impl RuleSpec {
    /// Checks the rule: a known operation, well-formed IDs, exactly one action, a probability
    /// in (0, 1], a latency range within [`MAX_LATENCY`].
    pub fn check(&self) -> Result<FaultRule, FaultRuleError> {
        let bad = |m: String| FaultRuleError(m);
        let operation = match self.operation.as_str() {
            "*" => None,
            "" => {
                return Err(bad(
                    "operation is missing (a kms.v1 method name, or *)".into()
                ));
            }
            op => Some(op.parse()?),
        };
        let domain = nonempty(&self.domain_id)
            .map(DomainId::parse)
            .transpose()
            .map_err(|e| bad(format!("domain_id: {e}")))?;
        let region = nonempty(&self.region)
            .map(RegionId::parse)
            .transpose()
            .map_err(|e| bad(format!("region: {e}")))?;
        let key = nonempty(&self.key_id)
            .map(|k| k.parse::<KeyRef>().map(|r| key_uuid(&r)))
            .transpose()
            .map_err(|e| bad(format!("key_id: {e}")))?;
        let action = match (&self.fail, &self.latency, &self.hang) {
            (Some(f), None, None) => Action::Fail {
                code: f
                    .error_code
                    .parse()
                    .map_err(|e| bad(format!("fail: {e}")))?,
                message: f.message.clone(),
            },
            (None, Some(l), None) => {
                let min = Duration::from_millis(l.min_ms);
                let max = Duration::from_millis(l.max_ms.unwrap_or(l.min_ms));
                if max < min {
                    return Err(bad(format!(
                        "latency: max {} ms is below min {} ms",
                        max.as_millis(),
                        min.as_millis()
                    )));
                }
                if max > MAX_LATENCY {
                    return Err(bad(format!("latency: at most {} s", MAX_LATENCY.as_secs())));
                }
                Action::Latency { min, max }
            }
            (None, None, Some(_)) => Action::Hang,
            _ => return Err(bad("a rule needs exactly one of fail, latency, hang".into())),
        };
        let probability = match self.probability {
            None | Some(0.0) => 1.0,
            Some(p) if p > 0.0 && p <= 1.0 => p,
            Some(p) => return Err(bad(format!("probability {p} is not in (0, 1]"))),
        };
        Ok(FaultRule {
            operation,
            domain,
            region,
            key,
            action,
            probability,
            count: self.count.filter(|&c| c > 0),
        })
    }
}

fn key_uuid(r: &KeyRef) -> Uuid {
    match r {
        KeyRef::Bare(u) => *u,
        KeyRef::Full(f) => f.uuid,
    }
}

/// The key a request names, by UUID, for matching rules; `None` when it names none (or names it
/// badly: the call itself then refuses it).
pub fn named_key(key_id: &str) -> Option<Uuid> {
    key_id.parse::<KeyRef>().ok().map(|r| key_uuid(&r))
}

/// The faults file (`--faults FILE`): an optional seed and rules.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsFile {
    /// The seed of the rules' generators, unless `--fault-seed` gives one.
    #[serde(default)]
    pub seed: Option<u64>,
    /// The rules, in order.
    #[serde(default)]
    pub faults: Vec<RuleSpec>,
}

impl FaultsFile {
    /// Reads and checks a faults file; an unusable rule is refused with its position.
    pub fn load(path: &Path) -> Result<(Option<u64>, Vec<FaultRule>), ConfigError> {
        const WHAT: &str = "faults file";
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            action: "reading",
            what: WHAT,
            path: path.to_owned(),
            source,
        })?;
        let file: FaultsFile = toml::from_str(&text).map_err(|e| ConfigError::Toml {
            what: WHAT,
            path: path.to_owned(),
            source: Box::new(e),
        })?;
        let rules = file
            .faults
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                spec.check().map_err(|e| ConfigError::Invalid {
                    what: WHAT,
                    path: path.to_owned(),
                    reason: format!("fault {} ({}): {e}", i + 1, spec.operation),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((file.seed, rules))
    }
}

/// What the front-end does to a call instead of, or before, running it.
#[derive(Debug, Clone, PartialEq)]
pub struct Injected {
    /// Wait this long first (the sum of the latency rules that fired).
    pub delay: Duration,
    /// Then fail or hang instead of running the call; `None` runs it.
    pub outcome: Option<Outcome>,
    /// What was injected, for the audit line: `latency 120ms (rule f2); fail KMS.0209 (rule f1)`.
    pub note: String,
}

/// A call that does not run.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Refuse it.
    Fail {
        /// With this code.
        code: ErrorCode,
        /// And this message.
        message: String,
    },
    /// Answer nothing ([`Faults::hang`]).
    Hang,
}

/// A rule as listed: its ID, the rule, how often it fired, whether it retired.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleStatus {
    /// `f1`, `f2`, ...
    pub id: String,
    /// The rule.
    pub rule: FaultRule,
    /// Times it fired.
    pub hits: u64,
    /// It fired `count` times and no longer applies.
    pub retired: bool,
}

struct Live {
    number: u64,
    rule: FaultRule,
    rng: SplitMix64,
    hits: u64,
}

impl Live {
    fn id(&self) -> String {
        format!("f{}", self.number)
    }

    fn retired(&self) -> bool {
        self.rule.count.is_some_and(|c| self.hits >= c)
    }

    fn matches(&self, op: Operation, caller: &Caller, key: Option<Uuid>) -> bool {
        let r = &self.rule;
        r.operation.is_none_or(|o| o == op)
            && r.domain.as_ref().is_none_or(|d| *d == caller.domain)
            && r.region.as_ref().is_none_or(|g| *g == caller.region)
            && r.key.is_none_or(|k| Some(k) == key)
    }
}

struct Rules {
    rules: Vec<Live>,
    next_number: u64,
}

/// The daemon's fault rules.
pub struct Faults {
    seed: u64,
    rules: Mutex<Rules>,
    /// Rules not retired: the data path takes no lock while there are none.
    live: AtomicUsize,
    /// Cancelled when the daemon stops: hanging calls end then.
    stop: CancellationToken,
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Faults")
            .field("seed", &self.seed)
            .field("live", &self.live.load(Ordering::Relaxed))
            .finish()
    }
}

impl Faults {
    /// No rules; generators seeded from `seed`; hangs end when `stop` is cancelled.
    pub fn new(seed: u64, stop: CancellationToken) -> Self {
        Self {
            seed,
            rules: Mutex::new(Rules {
                rules: Vec::new(),
                next_number: 1,
            }),
            live: AtomicUsize::new(0),
            stop,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Rules> {
        self.rules.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn recount(&self, rules: &Rules) {
        let live = rules.rules.iter().filter(|r| !r.retired()).count();
        self.live.store(live, Ordering::Relaxed);
    }

    /// Adds a rule, tried after those already there. Returns its ID; refused once
    /// [`MAX_RULES`] rules (retired ones included) are held.
    pub fn add(&self, rule: FaultRule) -> Result<String, FaultRuleError> {
        let mut rules = self.lock();
        if rules.rules.len() >= MAX_RULES {
            return Err(FaultRuleError(format!(
                "at most {MAX_RULES} fault rules are held; remove some first"
            )));
        }
        let number = rules.next_number;
        rules.next_number += 1;
        let live = Live {
            number,
            rule,
            // Each rule its own stream: its outcomes do not depend on other rules' draws.
            rng: SplitMix64(self.seed ^ number.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            hits: 0,
        };
        let id = live.id();
        rules.rules.push(live);
        self.recount(&rules);
        Ok(id)
    }

    /// Every rule, in the order they are tried.
    pub fn list(&self) -> Vec<RuleStatus> {
        self.lock()
            .rules
            .iter()
            .map(|l| RuleStatus {
                id: l.id(),
                rule: l.rule.clone(),
                hits: l.hits,
                retired: l.retired(),
            })
            .collect()
    }

    /// Removes a rule; `false` when there is none with that ID.
    pub fn remove(&self, id: &str) -> bool {
        let mut rules = self.lock();
        let before = rules.rules.len();
        rules.rules.retain(|l| l.id() != id);
        let removed = rules.rules.len() < before;
        self.recount(&rules);
        removed
    }

    /// Whether any rule can still fire (checked without a lock, on every call).
    pub fn active(&self) -> bool {
        self.live.load(Ordering::Relaxed) > 0
    }

    /// What the rules do to a call of `op` by `caller` naming `key`; `None` when no rule fires.
    pub fn intercept(&self, op: Operation, caller: &Caller, key: Option<Uuid>) -> Option<Injected> {
        if !self.active() {
            return None;
        }
        let mut rules = self.lock();
        let mut delay = Duration::ZERO;
        let mut outcome = None;
        let mut notes = Vec::new();
        for l in rules.rules.iter_mut() {
            if l.retired() || !l.matches(op, caller, key) {
                continue;
            }
            if !l.rng.chance(l.rule.probability) {
                continue;
            }
            l.hits += 1;
            let id = l.id();
            match &l.rule.action {
                Action::Latency { min, max } => {
                    let d = l.rng.between(*min, *max);
                    delay += d;
                    notes.push(format!("latency {}ms (rule {id})", d.as_millis()));
                }
                Action::Fail { code, message } => {
                    let message = if message.is_empty() {
                        format!("{op} refused by fault rule {id} ({code})")
                    } else {
                        message.clone()
                    };
                    notes.push(format!("fail {code} (rule {id})"));
                    outcome = Some(Outcome::Fail {
                        code: *code,
                        message,
                    });
                    break;
                }
                Action::Hang => {
                    notes.push(format!("hang (rule {id})"));
                    outcome = Some(Outcome::Hang);
                    break;
                }
            }
        }
        self.recount(&rules);
        (!notes.is_empty()).then(|| Injected {
            delay,
            outcome,
            note: notes.join("; "),
        })
    }

    /// A hung call's wait: until the daemon stops. The caller's deadline ends it sooner (the
    /// transport drops the call when its `grpc-timeout` passes).
    pub async fn hang(&self) {
        self.stop.cancelled().await;
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, fast generator whose whole state is one word, so
/// that every rule's stream follows from the seed alone. Not for secrets.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `true` with probability `p`; draws once even when `p` is 1, so that a rule's stream does
    /// not depend on its probability.
    fn chance(&mut self, p: f64) -> bool {
        // The top 53 bits, as a fraction in [0, 1).
        #[allow(clippy::cast_precision_loss, reason = "53 bits fit an f64 exactly")]
        let x = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        x < p
    }

    /// A duration uniform in `min..=max`, to the millisecond.
    fn between(&mut self, min: Duration, max: Duration) -> Duration {
        let lo = u64::try_from(min.as_millis()).unwrap_or(u64::MAX);
        let hi = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
        let span = hi.saturating_sub(lo);
        let draw = self.next();
        if span == 0 {
            return min;
        }
        Duration::from_millis(lo + draw % (span + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(domain: &str, region: &str) -> Caller {
        Caller {
            domain: DomainId::parse(domain).unwrap(),
            region: RegionId::parse(region).unwrap(),
        }
    }

    fn spec(toml_text: &str) -> RuleSpec {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn every_operation_round_trips_through_its_name() {
        for &op in Operation::ALL {
            assert_eq!(op.as_str().parse::<Operation>(), Ok(op));
        }
        assert!("generateDataKey".parse::<Operation>().is_err());
    }

    #[test]
    fn a_rule_is_checked_before_it_is_used() {
        // (rule, spec, the refusal names)
        let refused = [
            (
                "no operation",
                r#"operation = ""
fail = { error_code = "KMS.0209" }"#,
                "operation is missing",
            ),
            (
                "unknown operation",
                r#"operation = "Frobnicate"
hang = {}"#,
                "unknown operation",
            ),
            ("no action", r#"operation = "Decrypt""#, "exactly one of"),
            (
                "two actions",
                r#"operation = "Decrypt"
hang = {}
latency = { min_ms = 1 }"#,
                "exactly one of",
            ),
            (
                "unknown code",
                r#"operation = "Decrypt"
fail = { error_code = "KMS.9999" }"#,
                "unknown error code",
            ),
            (
                "bad domain",
                r#"operation = "*"
domain_id = "not a domain"
hang = {}"#,
                "domain_id",
            ),
            (
                "bad key",
                r#"operation = "*"
key_id = "nope"
hang = {}"#,
                "key_id",
            ),
            (
                "range upside down",
                r#"operation = "*"
latency = { min_ms = 10, max_ms = 5 }"#,
                "below min",
            ),
            (
                "latency beyond an hour",
                r#"operation = "*"
latency = { min_ms = 3600001 }"#,
                "at most",
            ),
            (
                "probability above 1",
                r#"operation = "*"
hang = {}
probability = 1.5"#,
                "not in (0, 1]",
            ),
            (
                "negative probability",
                r#"operation = "*"
hang = {}
probability = -0.1"#,
                "not in (0, 1]",
            ),
        ];
        for (rule, text, needle) in refused {
            let e = spec(text).check().expect_err(rule);
            assert!(e.0.contains(needle), "{rule}: {e}");
        }
        let ok = spec(
            r#"operation = "*"
key_id = "region:d1:key/522d6070-5ad3-4765-9737-9312ddc72cdb"
latency = { min_ms = 5 }
count = 0"#,
        )
        .check()
        .unwrap();
        assert_eq!(ok.operation, None);
        assert_eq!(ok.key, "522d6070-5ad3-4765-9737-9312ddc72cdb".parse().ok());
        assert_eq!(ok.probability, 1.0);
        assert_eq!(ok.count, None, "a count of 0 never retires");
        assert_eq!(
            ok.action,
            Action::Latency {
                min: Duration::from_millis(5),
                max: Duration::from_millis(5)
            }
        );
    }

    #[test]
    fn rules_match_by_operation_domain_region_and_key() {
        let key: Uuid = "522d6070-5ad3-4765-9737-9312ddc72cdb".parse().unwrap();
        let other: Uuid = "622d6070-5ad3-4765-9737-9312ddc72cdb".parse().unwrap();
        let f = Faults::new(7, CancellationToken::new());
        f.add(
            spec(
                r#"operation = "GenerateDataKey"
domain_id = "d1"
region = "r1"
key_id = "522d6070-5ad3-4765-9737-9312ddc72cdb"
fail = { error_code = "KMS.0209" }"#,
            )
            .check()
            .unwrap(),
        )
        .unwrap();
        // (rule, operation, caller, key, fires)
        let cases = [
            (
                "all match",
                Operation::GenerateDataKey,
                caller("d1", "r1"),
                Some(key),
                true,
            ),
            (
                "other operation",
                Operation::Encrypt,
                caller("d1", "r1"),
                Some(key),
                false,
            ),
            (
                "other domain",
                Operation::GenerateDataKey,
                caller("d2", "r1"),
                Some(key),
                false,
            ),
            (
                "other region",
                Operation::GenerateDataKey,
                caller("d1", "r2"),
                Some(key),
                false,
            ),
            (
                "other key",
                Operation::GenerateDataKey,
                caller("d1", "r1"),
                Some(other),
                false,
            ),
            (
                "no key named",
                Operation::GenerateDataKey,
                caller("d1", "r1"),
                None,
                false,
            ),
        ];
        for (rule, op, c, k, fires) in cases {
            let got = f.intercept(op, &c, k);
            assert_eq!(got.is_some(), fires, "{rule}");
            if let Some(i) = got {
                assert_eq!(
                    i.outcome,
                    Some(Outcome::Fail {
                        code: ErrorCode::KeyDisabled,
                        message: "GenerateDataKey refused by fault rule f1 (KMS.0209)".into()
                    }),
                    "{rule}"
                );
                assert_eq!(i.note, "fail KMS.0209 (rule f1)");
            }
        }
        assert_eq!(f.list()[0].hits, 1);
    }

    #[test]
    fn latency_adds_up_and_a_failure_ends_the_search() {
        let f = Faults::new(0, CancellationToken::new());
        for text in [
            "operation = \"*\"\nlatency = { min_ms = 10 }",
            "operation = \"Decrypt\"\nlatency = { min_ms = 20, max_ms = 30 }",
            "operation = \"Decrypt\"\nfail = { error_code = \"KMSBOX.0429\" }",
            "operation = \"Decrypt\"\nlatency = { min_ms = 1000 }",
        ] {
            f.add(spec(text).check().unwrap()).unwrap();
        }
        let i = f
            .intercept(Operation::Decrypt, &caller("d", "r"), None)
            .unwrap();
        assert!((30..=40).contains(&i.delay.as_millis()), "{:?}", i.delay);
        assert!(matches!(
            i.outcome,
            Some(Outcome::Fail {
                code: ErrorCode::Throttled,
                ..
            })
        ));
        let hits: Vec<u64> = f.list().iter().map(|s| s.hits).collect();
        assert_eq!(
            hits,
            [1, 1, 1, 0],
            "the rule after the failure is not tried"
        );
        let i = f
            .intercept(Operation::Encrypt, &caller("d", "r"), None)
            .unwrap();
        assert_eq!((i.delay, i.outcome), (Duration::from_millis(10), None));
    }

    #[test]
    fn a_rule_with_a_count_retires_and_removal_forgets_it() {
        let f = Faults::new(0, CancellationToken::new());
        let id = f
            .add(
                spec("operation = \"Encrypt\"\nhang = {}\ncount = 2")
                    .check()
                    .unwrap(),
            )
            .unwrap();
        let c = caller("d", "r");
        let fired: Vec<bool> = (0..4)
            .map(|_| f.intercept(Operation::Encrypt, &c, None).is_some())
            .collect();
        assert_eq!(fired, [true, true, false, false]);
        let s = &f.list()[0];
        assert_eq!((s.hits, s.retired), (2, true));
        assert!(f.remove(&id));
        assert!(!f.remove(&id), "removed once");
        assert!(f.list().is_empty());
    }

    #[test]
    fn at_most_max_rules_are_held() {
        let f = Faults::new(0, CancellationToken::new());
        let rule = spec("operation = \"Encrypt\"\nhang = {}\ncount = 1")
            .check()
            .unwrap();
        for _ in 0..MAX_RULES {
            f.add(rule.clone()).unwrap();
        }
        let e = f.add(rule.clone()).unwrap_err();
        assert!(e.0.contains("at most 1024"), "{e}");
        assert!(f.remove("f1"));
        assert_eq!(f.add(rule).unwrap(), format!("f{}", MAX_RULES + 1));
    }

    fn outcomes(seed: u64) -> Vec<Option<String>> {
        let f = Faults::new(seed, CancellationToken::new());
        f.add(
            spec("operation = \"Decrypt\"\nfail = { error_code = \"KMSBOX.0502\" }\nprobability = 0.3")
                .check()
                .unwrap(),
        ).unwrap();
        f.add(
            spec("operation = \"*\"\nlatency = { min_ms = 1, max_ms = 100 }\nprobability = 0.5")
                .check()
                .unwrap(),
        )
        .unwrap();
        let c = caller("d", "r");
        (0..200)
            .map(|i| {
                let op = if i % 3 == 0 {
                    Operation::Encrypt
                } else {
                    Operation::Decrypt
                };
                f.intercept(op, &c, None).map(|i| i.note)
            })
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_outcomes() {
        let a = outcomes(42);
        assert_eq!(a, outcomes(42));
        assert_ne!(a, outcomes(43), "another seed, other outcomes");
        let fails = a.iter().flatten().filter(|n| n.contains("fail")).count();
        // 133 Decrypt calls at 0.3: far from none and from all.
        assert!((20..=70).contains(&fails), "{fails} failures");
    }
}
