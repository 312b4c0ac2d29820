//! The daemon's RPCs: one subcommand each, answered as JSON that `main` prints as JSON or a table.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use jiff::{SignedDuration, civil};
use kms_proto::Tenancy;
use kms_proto::v1 as pb;
use kms_proto::v1::key_management_service_client::KeyManagementServiceClient;
use serde_json::{Value, json};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::Command;
use crate::error::CliError;

/// How often an idle connection to the daemon is probed (TCP keep-alive).
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// Connects to the daemon at `endpoint`, with TCP_NODELAY (small unary calls are not held back by
/// Nagle's algorithm) and TCP keep-alive.
pub(crate) async fn connect(endpoint: &str) -> Result<Channel, CliError> {
    Endpoint::from_shared(endpoint.to_owned())
        .map_err(|source| CliError::Endpoint {
            endpoint: endpoint.to_owned(),
            source,
        })?
        .tcp_nodelay(true)
        .tcp_keepalive(Some(TCP_KEEPALIVE))
        .connect()
        .await
        .map_err(|source| CliError::Connect {
            endpoint: endpoint.to_owned(),
            source,
        })
}

/// The tenancy metadata of every call, from `--domain`, `--region` and `--token`.
pub(crate) fn tenancy(
    domain: Option<&str>,
    region: Option<&str>,
    token: Option<&str>,
) -> Result<Tenancy, CliError> {
    let mut t = Tenancy::none();
    if let Some(d) = domain {
        t = t
            .with_domain(d)
            .map_err(|e| CliError::argument("--domain", e))?;
    }
    if let Some(r) = region {
        t = t
            .with_region(r)
            .map_err(|e| CliError::argument("--region", e))?;
    }
    if let Some(tok) = token {
        t = t
            .with_token(tok)
            .map_err(|e| CliError::argument("--token", e))?;
    }
    Ok(t)
}

fn ctx(pairs: Vec<(String, String)>) -> HashMap<String, String> {
    pairs.into_iter().collect()
}

fn decode_blob(b64: &str) -> Result<Vec<u8>, CliError> {
    B64.decode(b64.trim())
        .map_err(|e| CliError::argument("ciphertext blob is not base64", e))
}

/// A timestamp of the daemon as RFC 3339 in UTC with milliseconds, as the audit log writes it
/// (`2023-11-14T22:13:20.123Z`); one outside the years 0000 to 9999 as its millisecond count.
pub(crate) fn rfc3339_ms(t: &prost_types::Timestamp) -> String {
    const EPOCH: civil::DateTime = civil::date(1970, 1, 1).at(0, 0, 0, 0);
    let ms = t
        .seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(t.nanos / 1_000_000));
    // Civil time in UTC (no leap seconds), which covers the years 0000 to 9999 whole.
    match EPOCH.checked_add(SignedDuration::from_millis(ms)) {
        Ok(dt) if dt.year() >= 0 => format!("{dt:.3}Z"),
        _ => format!("{ms} ms since 1970-01-01T00:00:00Z"),
    }
}

fn meta_json(m: Option<pb::KeyMetadata>) -> Value {
    let Some(m) = m else { return Value::Null };
    let ts = |t: Option<prost_types::Timestamp>| t.as_ref().map(rfc3339_ms);
    json!({
        "key_id": m.key_id,
        "key_uuid": m.key_uuid,
        "region": m.region,
        "domain_id": m.domain_id,
        "alias": m.alias,
        "description": m.description,
        "state": pb::KeyState::try_from(m.state).map_or("unknown", |s| match s {
            pb::KeyState::Enabled => "enabled",
            pb::KeyState::Disabled => "disabled",
            pb::KeyState::PendingDeletion => "pending_deletion",
            pb::KeyState::Unspecified => "unspecified",
        }),
        "creator": pb::KeyCreator::try_from(m.creator).map_or("unknown", |c| match c {
            pb::KeyCreator::Customer => "customer",
            pb::KeyCreator::Service => "service",
            pb::KeyCreator::Unspecified => "unspecified",
        }),
        "service": m.service,
        "created_at": ts(m.created_at),
        "deletion_date": ts(m.deletion_date),
        "current_version": m.current_version,
        "rotation_enabled": m.rotation_enabled,
        "rotation_interval_days": m.rotation_interval_days,
        "next_rotation_time": ts(m.next_rotation_time),
        "context_required": m.context_required,
        "tags": m.tags,
    })
}

/// Runs one RPC subcommand against the daemon at `endpoint`, speaking for `tenancy`.
pub(crate) async fn call(
    endpoint: &str,
    tenancy: Tenancy,
    command: Command,
) -> Result<Value, CliError> {
    // Checked before connecting, so that a usage error does not wait for the network.
    let plaintext = match &command {
        Command::Encrypt {
            plaintext,
            plaintext_base64,
            ..
        } => Some(match (plaintext, plaintext_base64) {
            (Some(t), _) => t.clone().into_bytes(),
            (None, Some(b)) => B64
                .decode(b.trim())
                .map_err(|e| CliError::argument("--plaintext-base64", e))?,
            (None, None) => return Err(CliError::Usage("give --plaintext or --plaintext-base64")),
        }),
        _ => None,
    };
    let channel = connect(endpoint).await?;
    let mut c: KeyManagementServiceClient<InterceptedService<Channel, Tenancy>> =
        KeyManagementServiceClient::with_interceptor(channel, tenancy);
    // The RPCs that answer with a key's metadata.
    macro_rules! metadata_call {
        ($method:ident, $request:expr) => {
            meta_json(c.$method($request).await?.into_inner().metadata)
        };
    }
    let v = match command {
        Command::CreateKey { alias, description } => {
            metadata_call!(create_key, pb::CreateKeyRequest { alias, description })
        }
        Command::DescribeKey { key_id } => {
            metadata_call!(describe_key, pb::DescribeKeyRequest { key_id })
        }
        Command::ListKeys {
            page_size,
            page_token,
        } => {
            let page = c
                .list_keys(pb::ListKeysRequest {
                    page_size,
                    page_token,
                })
                .await?
                .into_inner();
            json!({
                "keys": page.keys.into_iter().map(|k| meta_json(Some(k))).collect::<Vec<_>>(),
                "next_page_token": page.next_page_token,
            })
        }
        Command::EnableKey { key_id } => {
            metadata_call!(enable_key, pb::EnableKeyRequest { key_id })
        }
        Command::DisableKey { key_id } => {
            metadata_call!(disable_key, pb::DisableKeyRequest { key_id })
        }
        Command::ScheduleKeyDeletion {
            key_id,
            pending_window_days,
        } => {
            metadata_call!(
                schedule_key_deletion,
                pb::ScheduleKeyDeletionRequest {
                    key_id,
                    pending_window_days,
                }
            )
        }
        Command::CancelKeyDeletion { key_id } => {
            metadata_call!(cancel_key_deletion, pb::CancelKeyDeletionRequest { key_id })
        }
        Command::RotateKey { key_id } => {
            metadata_call!(rotate_key, pb::RotateKeyRequest { key_id })
        }
        Command::UpdateKeyAlias { key_id, alias } => {
            metadata_call!(
                update_key_alias,
                pb::UpdateKeyAliasRequest { key_id, alias }
            )
        }
        Command::UpdateKeyDescription {
            key_id,
            description,
        } => {
            metadata_call!(
                update_key_description,
                pb::UpdateKeyDescriptionRequest {
                    key_id,
                    description
                }
            )
        }
        Command::EnableKeyRotation { key_id } => {
            metadata_call!(enable_key_rotation, pb::EnableKeyRotationRequest { key_id })
        }
        Command::DisableKeyRotation { key_id } => {
            metadata_call!(
                disable_key_rotation,
                pb::DisableKeyRotationRequest { key_id }
            )
        }
        Command::UpdateKeyRotationInterval { key_id, days } => {
            metadata_call!(
                update_key_rotation_interval,
                pb::UpdateKeyRotationIntervalRequest {
                    key_id,
                    rotation_interval_days: days,
                }
            )
        }
        Command::GetKeyRotationStatus { key_id } => {
            let r = c
                .get_key_rotation_status(pb::GetKeyRotationStatusRequest { key_id })
                .await?
                .into_inner();
            let ts = |t: Option<prost_types::Timestamp>| t.as_ref().map(rfc3339_ms);
            json!({
                "key_id": r.key_id,
                "rotation_enabled": r.rotation_enabled,
                "rotation_interval_days": r.rotation_interval_days,
                "last_rotation_time": ts(r.last_rotation_time),
                "number_of_rotations": r.number_of_rotations,
                "next_rotation_time": ts(r.next_rotation_time),
            })
        }
        Command::GenerateRandom { number_of_bytes } => {
            let r = c
                .generate_random(pb::GenerateRandomRequest { number_of_bytes })
                .await?
                .into_inner();
            json!({ "random_base64": B64.encode(r.random) })
        }
        Command::GetDefaultKey { service } => {
            metadata_call!(get_default_key, pb::GetDefaultKeyRequest { service })
        }
        Command::GenerateDataKey {
            key_id,
            number_of_bytes,
            context,
            without_plaintext,
        } => {
            let msg = pb::GenerateDataKeyRequest {
                key_id,
                number_of_bytes,
                encryption_context: ctx(context),
            };
            if without_plaintext {
                let r = c
                    .generate_data_key_without_plaintext(msg)
                    .await?
                    .into_inner();
                json!({
                    "key_id": r.key_id,
                    "key_version": r.key_version,
                    "ciphertext_blob": B64.encode(r.ciphertext_blob),
                })
            } else {
                let r = c.generate_data_key(msg).await?.into_inner();
                json!({
                    "key_id": r.key_id,
                    "key_version": r.key_version,
                    "plaintext_base64": B64.encode(&r.plaintext),
                    "ciphertext_blob": B64.encode(r.ciphertext_blob),
                })
            }
        }
        Command::Encrypt {
            key_id, context, ..
        } => {
            let r = c
                .encrypt(pb::EncryptRequest {
                    key_id,
                    plaintext: plaintext.unwrap_or_default(),
                    encryption_context: ctx(context),
                })
                .await?
                .into_inner();
            json!({
                "key_id": r.key_id,
                "key_version": r.key_version,
                "ciphertext_blob": B64.encode(r.ciphertext_blob),
            })
        }
        Command::Decrypt {
            ciphertext_blob,
            context,
            key_id,
        } => {
            let r = c
                .decrypt(pb::DecryptRequest {
                    ciphertext_blob: decode_blob(&ciphertext_blob)?,
                    encryption_context: ctx(context),
                    key_id,
                })
                .await?
                .into_inner();
            let mut v = json!({
                "key_id": r.key_id,
                "key_version": r.key_version,
                "plaintext_base64": B64.encode(&r.plaintext),
            });
            if let Ok(text) = std::str::from_utf8(&r.plaintext) {
                v["plaintext"] = Value::String(text.to_owned());
            }
            v
        }
        Command::ReEncrypt {
            ciphertext_blob,
            destination_key_id,
            source_context,
            destination_context,
            source_key_id,
        } => {
            let r = c
                .re_encrypt(pb::ReEncryptRequest {
                    ciphertext_blob: decode_blob(&ciphertext_blob)?,
                    source_encryption_context: ctx(source_context),
                    source_key_id,
                    destination_key_id,
                    destination_encryption_context: ctx(destination_context),
                })
                .await?
                .into_inner();
            json!({
                "source_key_id": r.source_key_id,
                "key_id": r.key_id,
                "key_version": r.key_version,
                "ciphertext_blob": B64.encode(r.ciphertext_blob),
            })
        }
        Command::Seal { .. } | Command::Open { .. } | Command::Admin(_) => {
            return Err(CliError::Usage(
                "seal, open and admin are handled before connecting",
            ));
        }
    };
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same strings as `kms_server::audit::format_rfc3339_ms` printed for these instants.
    #[test]
    fn timestamps_print_as_the_audit_log_writes_them() {
        for (seconds, nanos, want) in [
            (0, 0, "1970-01-01T00:00:00.000Z"),
            (1_700_000_000, 123_456_789, "2023-11-14T22:13:20.123Z"),
            (1_700_000_000, 999_999_999, "2023-11-14T22:13:20.999Z"),
            (-1, 500_000_000, "1969-12-31T23:59:59.500Z"),
            (951_782_400, 1_000_000, "2000-02-29T00:00:00.001Z"),
            (253_402_300_799, 999_000_000, "9999-12-31T23:59:59.999Z"),
            (-62_135_596_800, 0, "0001-01-01T00:00:00.000Z"),
            (-62_135_596_801, 999_000_000, "0000-12-31T23:59:59.999Z"),
        ] {
            let t = prost_types::Timestamp { seconds, nanos };
            assert_eq!(rfc3339_ms(&t), want, "{seconds}s {nanos}ns");
        }
    }

    #[test]
    fn timestamps_outside_the_calendar_print_as_milliseconds() {
        for (seconds, want) in [
            (
                253_402_300_800,
                "253402300800000 ms since 1970-01-01T00:00:00Z",
            ),
            (
                -62_167_219_201,
                "-62167219201000 ms since 1970-01-01T00:00:00Z",
            ),
        ] {
            let t = prost_types::Timestamp { seconds, nanos: 0 };
            assert_eq!(rfc3339_ms(&t), want);
        }
    }

    #[test]
    fn tenancy_values_that_cannot_travel_name_their_flag() {
        let e = tenancy(Some("d\n1"), None, None).unwrap_err();
        assert_eq!(e.to_string(), "--domain: domain ID must be visible ASCII");
        let e = tenancy(None, None, Some("é")).unwrap_err();
        assert!(e.to_string().starts_with("--token: "), "{e}");
        assert!(tenancy(None, None, None).is_ok());
    }
}
