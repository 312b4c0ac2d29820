//! `kmsctl admin ...`: the daemon's test control plane (`kms.admin.v1.Admin`): fault rules, the
//! clock, and `export-seed`. Answers are JSON, printed by `main` as JSON or a table like every other
//! command; `export-seed` writes the seed file itself to standard output or `--out`.

use std::io::Write;
use std::time::Duration;

use clap::{ArgGroup, Args, Subcommand};
use kms_proto::admin as pb;
use kms_proto::admin::admin_client::AdminClient;
use kms_proto::metadata::AUTHORIZATION;
use serde_json::{Value, json};
use tonic::Request;
use zeroize::Zeroizing;

use crate::error::CliError;
use crate::output::Target;
use crate::rpc::{connect, rfc3339_ms};

/// `kmsctl admin`: its token and its command.
#[derive(Args, Debug)]
pub(crate) struct Admin {
    /// The daemon's --admin-token, sent as `authorization: Bearer <token>`.
    #[arg(long, env = "KMSCTL_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Fault rules injected into the KMS API.
    #[command(subcommand)]
    Faults(FaultsCommand),
    /// The daemon's clock (moved only when it runs with --virtual-clock).
    #[command(subcommand)]
    Clock(ClockCommand),
    /// Write every key of the daemon as a seed file for --seed (metadata only by default).
    ExportSeed {
        /// Include every key version's material as hex: the file then holds every key in the
        /// clear. For test fixtures only.
        #[arg(long)]
        include_material: bool,
        /// Write the seed file here (atomically, mode 0600) instead of standard output.
        #[arg(long = "out")]
        output: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum FaultsCommand {
    /// Add a rule; prints its ID.
    #[command(group(ArgGroup::new("action").required(true).args(["fail", "latency", "hang"])))]
    Add {
        /// The operation (a kms.v1 method name such as GenerateDataKey), or `*` for every one.
        #[arg(long)]
        operation: String,
        /// Only calls of this domain.
        #[arg(long)]
        for_domain: Option<String>,
        /// Only calls for this region.
        #[arg(long)]
        for_region: Option<String>,
        /// Only calls naming this key (bare UUID or full form).
        #[arg(long)]
        for_key: Option<String>,
        /// Refuse the call with this code of the error table (KMS.0209, KMSBOX.0429, KMSBOX.0502, ...).
        #[arg(long)]
        fail: Option<String>,
        /// With --fail: the status message.
        #[arg(long, requires = "fail")]
        message: Option<String>,
        /// Delay the call: `200ms`, or a uniform range `100ms..1s`.
        #[arg(long, value_parser = parse_latency)]
        latency: Option<(Duration, Option<Duration>)>,
        /// Answer nothing until the caller's deadline.
        #[arg(long)]
        hang: bool,
        /// The chance the rule fires on a matching call, in (0, 1] (default 1).
        #[arg(long)]
        probability: Option<f64>,
        /// Retire the rule after it fired this many times.
        #[arg(long)]
        count: Option<u64>,
    },
    /// List the rules with how often each fired.
    List,
    /// Remove a rule.
    Remove {
        /// The rule's ID (`f1`, ...).
        id: String,
    },
}

#[derive(Subcommand, Debug)]
enum ClockCommand {
    /// Show the daemon's time.
    Get,
    /// Move a virtual clock forward (`30d`, `12h`, `1d12h`, `90s`, `250ms`), running the work that
    /// came due (the purge of keys past their deletion date) before answering.
    Advance {
        /// How far: `30d`, `12h`, `1d12h`, `90s`, `250ms`.
        #[arg(value_parser = parse_duration)]
        by: Duration,
    },
    /// Set a virtual clock to a later instant (RFC 3339, `2027-01-01T00:00:00Z`).
    Set {
        /// The instant, RFC 3339 (`2027-01-01T00:00:00Z`), later than the clock's.
        #[arg(value_parser = parse_timestamp)]
        to: prost_types::Timestamp,
    },
}

/// `30d`, `12h`, `1d12h`, `90m`, `45s`, `250ms`: numbers each followed by a unit, added up.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err("empty duration: give for example 30d, 12h, 90s or 250ms".into());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("{s:?}: expected a number at {rest:?}"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{s:?}: {:?} is too large", &rest[..digits]))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit_ms: u64 = match &rest[..unit_len] {
            "d" => 86_400_000,
            "h" => 3_600_000,
            "m" => 60_000,
            "s" => 1_000,
            "ms" => 1,
            "" => return Err(format!("{s:?}: {n} needs a unit (d, h, m, s, ms)")),
            u => return Err(format!("{s:?}: unknown unit {u:?} (d, h, m, s, ms)")),
        };
        rest = &rest[unit_len..];
        let ms = n
            .checked_mul(unit_ms)
            .ok_or_else(|| format!("{s:?} is too long"))?;
        total = total
            .checked_add(Duration::from_millis(ms))
            .ok_or_else(|| format!("{s:?} is too long"))?;
    }
    Ok(total)
}

/// `200ms`, or `100ms..1s`.
fn parse_latency(s: &str) -> Result<(Duration, Option<Duration>), String> {
    match s.split_once("..") {
        Some((lo, hi)) => Ok((parse_duration(lo)?, Some(parse_duration(hi)?))),
        None => Ok((parse_duration(s)?, None)),
    }
}

fn parse_timestamp(s: &str) -> Result<prost_types::Timestamp, String> {
    s.parse::<jiff::Timestamp>()
        .map(|t| prost_types::Timestamp {
            seconds: t.as_second(),
            nanos: t.subsec_nanosecond(),
        })
        .map_err(|e| format!("not an RFC 3339 instant: {e}"))
}

fn pb_duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

fn ms_text(d: &prost_types::Duration) -> String {
    let ms = d.seconds.saturating_mul(1000) + i64::from(d.nanos / 1_000_000);
    format!("{ms}ms")
}

fn action_text(a: Option<&pb::fault_rule::Action>) -> String {
    match a {
        Some(pb::fault_rule::Action::Fail(f)) => format!("fail {}", f.error_code),
        Some(pb::fault_rule::Action::Latency(l)) => {
            let min = l.min.as_ref().map(ms_text).unwrap_or_else(|| "0ms".into());
            match &l.max {
                Some(max) => format!("latency {min}..{}", ms_text(max)),
                None => format!("latency {min}"),
            }
        }
        Some(pb::fault_rule::Action::Hang(_)) => "hang".into(),
        None => "none".into(),
    }
}

fn clock_json(c: pb::ClockResponse) -> Value {
    json!({
        "now": c.now.as_ref().map(rfc3339_ms),
        "virtual": c.r#virtual,
        "purged_keys": c.purged_keys,
        "rotated_keys": c.rotated_keys,
    })
}

/// Runs one admin subcommand against the daemon at `endpoint`. The flag says the summary goes to
/// standard error, because standard output carries the seed file.
pub(crate) async fn call(endpoint: &str, admin: Admin) -> Result<(Value, bool), CliError> {
    let bearer = match &admin.admin_token {
        Some(t) => Some(
            format!("Bearer {t}")
                .parse::<tonic::metadata::MetadataValue<_>>()
                .map_err(|e| CliError::argument("--admin-token", e))?,
        ),
        None => None,
    };
    let mut c =
        AdminClient::with_interceptor(connect(endpoint).await?, move |mut r: Request<()>| {
            if let Some(b) = &bearer {
                r.metadata_mut().insert(AUTHORIZATION, b.clone());
            }
            Ok(r)
        });
    Ok((
        match admin.command {
            AdminCommand::Faults(FaultsCommand::Add {
                operation,
                for_domain,
                for_region,
                for_key,
                fail,
                message,
                latency,
                hang,
                probability,
                count,
            }) => {
                let action = match (fail, latency, hang) {
                    (Some(code), _, _) => pb::fault_rule::Action::Fail(pb::Fail {
                        error_code: code,
                        message: message.unwrap_or_default(),
                    }),
                    (None, Some((min, max)), _) => pb::fault_rule::Action::Latency(pb::Latency {
                        min: Some(pb_duration(min)),
                        max: max.map(pb_duration),
                    }),
                    (None, None, _) => pb::fault_rule::Action::Hang(pb::Hang {}),
                };
                let rule = pb::FaultRule {
                    operation,
                    domain_id: for_domain.unwrap_or_default(),
                    region: for_region.unwrap_or_default(),
                    key_id: for_key.unwrap_or_default(),
                    action: Some(action),
                    probability: probability.unwrap_or(0.0),
                    count: count.unwrap_or(0),
                };
                let r = c
                    .add_fault(pb::AddFaultRequest { rule: Some(rule) })
                    .await?
                    .into_inner();
                json!({ "id": r.id })
            }
            AdminCommand::Faults(FaultsCommand::List) => {
                let r = c.list_faults(pb::ListFaultsRequest {}).await?.into_inner();
                let faults: Vec<Value> = r
                    .faults
                    .into_iter()
                    .map(|s| {
                        let rule = s.rule.unwrap_or_default();
                        json!({
                            "id": s.id,
                            "operation": rule.operation,
                            "domain_id": rule.domain_id,
                            "region": rule.region,
                            "key_id": rule.key_id,
                            "action": action_text(rule.action.as_ref()),
                            "probability": rule.probability,
                            "count": rule.count,
                            "hits": s.hits,
                            "retired": s.retired,
                        })
                    })
                    .collect();
                json!({ "faults": faults })
            }
            AdminCommand::Faults(FaultsCommand::Remove { id }) => {
                c.remove_fault(pb::RemoveFaultRequest { id: id.clone() })
                    .await?;
                json!({ "removed": id })
            }
            AdminCommand::Clock(ClockCommand::Get) => {
                clock_json(c.get_clock(pb::GetClockRequest {}).await?.into_inner())
            }
            AdminCommand::Clock(ClockCommand::Advance { by }) => clock_json(
                c.advance_clock(pb::AdvanceClockRequest {
                    by: Some(pb_duration(by)),
                })
                .await?
                .into_inner(),
            ),
            AdminCommand::Clock(ClockCommand::Set { to }) => clock_json(
                c.set_clock(pb::SetClockRequest { to: Some(to) })
                    .await?
                    .into_inner(),
            ),
            AdminCommand::ExportSeed {
                include_material,
                output,
            } => {
                let seed = Zeroizing::new(
                    c.export_seed(pb::ExportSeedRequest { include_material })
                        .await?
                        .into_inner()
                        .seed_toml,
                );
                if include_material {
                    eprintln!(
                        "kmsctl: warning: the seed file holds every key's material in the clear; \
                     keep it to test fixtures"
                    );
                }
                let path = output.unwrap_or_else(|| "-".into());
                let target = Target::of(&path);
                let (mut sink, staged) = target.open()?;
                sink.write_all(seed.as_bytes())
                    .and_then(|()| sink.finish())
                    .map_err(|e| CliError::io("--out", &path, e))?;
                if let Some(s) = staged {
                    s.commit()?;
                }
                let to_stderr = matches!(target, Target::Stdout);
                return Ok((
                    json!({
                        "seed_file": path.display().to_string(),
                        "include_material": include_material,
                    }),
                    to_stderr,
                ));
            }
        },
        false,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_units_added_up() {
        // (text, milliseconds or the refusal's words)
        let cases: [(&str, Result<u64, &str>); 10] = [
            ("30d", Ok(30 * 86_400_000)),
            ("12h", Ok(12 * 3_600_000)),
            ("1d12h", Ok(86_400_000 + 12 * 3_600_000)),
            ("90m", Ok(90 * 60_000)),
            ("45s", Ok(45_000)),
            ("250ms", Ok(250)),
            ("", Err("empty duration")),
            ("30", Err("needs a unit")),
            ("3w", Err("unknown unit")),
            ("d", Err("expected a number")),
        ];
        for (text, want) in cases {
            match (parse_duration(text), want) {
                (Ok(d), Ok(ms)) => assert_eq!(d, Duration::from_millis(ms), "{text}"),
                (Err(e), Err(words)) => assert!(e.contains(words), "{text}: {e}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
        assert!(parse_duration("99999999999999999999d").is_err());
        assert_eq!(
            parse_latency("100ms..1s"),
            Ok((Duration::from_millis(100), Some(Duration::from_secs(1))))
        );
    }
}
