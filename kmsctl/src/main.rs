//! `kmsctl`: the kmsbox daemon's command-line client, one subcommand per RPC, plus `seal` and
//! `open` for envelope encryption of files and pipes.
#![forbid(unsafe_code)]
mod seal;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use clap::{Parser, Subcommand, ValueEnum};
use kms_proto::metadata::{AUTHORIZATION, DOMAIN_ID, ERROR_CODE, REGION};
use kms_proto::v1 as pb;
use kms_proto::v1::key_management_service_client::KeyManagementServiceClient;
use serde_json::{Value, json};
use tonic::transport::Channel;

/// Command-line client of the kmsbox key management daemon.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// The daemon's address.
    #[arg(
        long,
        env = "KMSCTL_ENDPOINT",
        default_value = "http://127.0.0.1:50051"
    )]
    endpoint: String,
    /// The tenant (domain ID) to speak for; with a token, the token decides it.
    #[arg(long, env = "KMSCTL_DOMAIN")]
    domain: Option<String>,
    /// The region; default: the daemon's --region.
    #[arg(long, env = "KMSCTL_REGION")]
    region: Option<String>,
    /// Bearer token, for a daemon started with --tenants.
    #[arg(long, env = "KMSCTL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Output::Table)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a customer master key.
    CreateKey {
        #[arg(long, default_value = "")]
        alias: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Show a key's metadata.
    DescribeKey { key_id: String },
    /// List keys, page by page.
    ListKeys {
        #[arg(long, default_value_t = 0)]
        page_size: u32,
        #[arg(long, default_value = "")]
        page_token: String,
    },
    /// Enable a disabled key.
    EnableKey { key_id: String },
    /// Disable a key.
    DisableKey { key_id: String },
    /// Schedule a key's deletion after 7 to 1096 days (default 30).
    ScheduleKeyDeletion {
        key_id: String,
        #[arg(long, default_value_t = 0)]
        pending_window_days: u32,
    },
    /// Cancel a scheduled deletion (the key comes back disabled).
    CancelKeyDeletion { key_id: String },
    /// Add a key version.
    RotateKey { key_id: String },
    /// The default key of a service (created on first use).
    GetDefaultKey { service: String },
    /// A fresh data key, in plaintext (base64) and encrypted.
    GenerateDataKey {
        key_id: String,
        #[arg(long, default_value_t = 0)]
        number_of_bytes: u32,
        /// Encryption context entry `key=value`; repeatable.
        #[arg(long = "context", value_parser = parse_pair)]
        context: Vec<(String, String)>,
        /// Leave the plaintext out (GenerateDataKeyWithoutPlaintext).
        #[arg(long)]
        without_plaintext: bool,
    },
    /// Encrypt up to 4096 bytes.
    Encrypt {
        key_id: String,
        /// The plaintext, as text.
        #[arg(
            long,
            conflicts_with = "plaintext_base64",
            required_unless_present = "plaintext_base64"
        )]
        plaintext: Option<String>,
        /// The plaintext, base64.
        #[arg(long)]
        plaintext_base64: Option<String>,
        #[arg(long = "context", value_parser = parse_pair)]
        context: Vec<(String, String)>,
    },
    /// Decrypt a ciphertext blob (base64).
    Decrypt {
        ciphertext_blob: String,
        #[arg(long = "context", value_parser = parse_pair)]
        context: Vec<(String, String)>,
        /// Require the blob to be under this key.
        #[arg(long, default_value = "")]
        key_id: String,
    },
    /// Envelope-encrypt a file or pipe (`-`) in constant memory, under a data key from the daemon
    /// (or from --local-kek).
    Seal {
        /// The CMK (through the daemon), or the ID recorded for --local-kek.
        #[arg(long)]
        key_id: Option<String>,
        /// Object context entry `key=value`, bound into the ciphertext; repeatable.
        #[arg(long = "context", value_parser = parse_pair)]
        context: Vec<(String, String)>,
        /// Input file, or `-` for standard input.
        #[arg(long = "in")]
        input: PathBuf,
        /// Output file, or `-` for standard output.
        #[arg(long = "out")]
        output: PathBuf,
        /// A local 32-byte AES key-encryption key file instead of the daemon (offline use).
        #[arg(long)]
        local_kek: Option<PathBuf>,
    },
    /// Decrypt what `seal` wrote, whole or a plaintext byte range.
    Open {
        /// The same context entries as at sealing; repeatable.
        #[arg(long = "context", value_parser = parse_pair)]
        context: Vec<(String, String)>,
        /// Input file, or `-` for standard input (not with --range).
        #[arg(long = "in")]
        input: PathBuf,
        /// Output file, or `-` for standard output.
        #[arg(long = "out")]
        output: PathBuf,
        /// Plaintext bytes START-END, inclusive.
        #[arg(long, value_parser = seal::parse_range)]
        range: Option<std::ops::Range<u64>>,
        /// A local AES key-encryption key file instead of the daemon.
        #[arg(long)]
        local_kek: Option<PathBuf>,
        /// With --local-kek: the key ID the object must name (default: whatever it names).
        #[arg(long)]
        key_id: Option<String>,
    },
    /// Re-encrypt a ciphertext blob (base64) under another key or context.
    ReEncrypt {
        ciphertext_blob: String,
        #[arg(long)]
        destination_key_id: String,
        #[arg(long = "source-context", value_parser = parse_pair)]
        source_context: Vec<(String, String)>,
        #[arg(long = "destination-context", value_parser = parse_pair)]
        destination_context: Vec<(String, String)>,
        #[arg(long, default_value = "")]
        source_key_id: String,
    },
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?} is not key=value"))
}

fn ctx(pairs: Vec<(String, String)>) -> HashMap<String, String> {
    pairs.into_iter().collect()
}

fn decode_blob(b64: &str) -> Result<Vec<u8>, String> {
    B64.decode(b64.trim())
        .map_err(|e| format!("ciphertext blob is not base64: {e}"))
}

struct Client {
    inner: KeyManagementServiceClient<Channel>,
    domain: Option<String>,
    region: Option<String>,
    token: Option<String>,
}

impl Client {
    fn req<T>(&self, msg: T) -> Result<tonic::Request<T>, String> {
        let mut r = tonic::Request::new(msg);
        let md = r.metadata_mut();
        let bad = |what: &str| format!("{what} must be visible ASCII");
        if let Some(d) = &self.domain {
            md.insert(DOMAIN_ID, d.parse().map_err(|_| bad("--domain"))?);
        }
        if let Some(x) = &self.region {
            md.insert(REGION, x.parse().map_err(|_| bad("--region"))?);
        }
        if let Some(t) = &self.token {
            md.insert(
                AUTHORIZATION,
                format!("Bearer {t}").parse().map_err(|_| bad("--token"))?,
            );
        }
        Ok(r)
    }
}

fn meta_json(m: Option<pb::KeyMetadata>) -> Value {
    let Some(m) = m else { return Value::Null };
    // RFC 3339 in UTC, as the audit log writes it.
    let ts = |t: Option<prost_types::Timestamp>| {
        t.map(|t| {
            kms_server::audit::format_rfc3339_ms(
                t.seconds.saturating_mul(1000) + i64::from(t.nanos / 1_000_000),
            )
        })
    };
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
    })
}

fn status_error(s: &tonic::Status) -> String {
    let code = s
        .metadata()
        .get(ERROR_CODE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if code.is_empty() {
        format!("{:?}: {}", s.code(), s.message())
    } else {
        format!("{code} ({:?}): {}", s.code(), s.message())
    }
}

fn object_context(pairs: Vec<(String, String)>) -> Result<envelope::ObjectContext, String> {
    envelope::ObjectContext::from_pairs(pairs).map_err(|e| format!("--context: {e}"))
}

/// Runs the command; the flag says the summary must go to standard error, because standard output
/// carries data.
async fn run(cli: Cli) -> Result<(Value, bool), String> {
    let keys = |local: Option<PathBuf>| match local {
        Some(p) => seal::Keys::Local(p),
        None => seal::Keys::Daemon {
            endpoint: cli.endpoint.clone(),
            tenancy: envelope::provider::Tenancy {
                domain_id: cli.domain.clone().unwrap_or_default(),
                region: cli.region.clone(),
                token: cli.token.clone(),
            },
        },
    };
    match cli.command {
        Command::Seal {
            key_id,
            context,
            input,
            output,
            local_kek,
        } => {
            let ctx = object_context(context)?;
            let to_stderr = output.as_os_str() == "-";
            return seal::seal(&keys(local_kek), key_id.as_deref(), &ctx, &input, &output)
                .await
                .map(|v| (v, to_stderr));
        }
        Command::Open {
            context,
            input,
            output,
            range,
            local_kek,
            key_id,
        } => {
            let ctx = object_context(context)?;
            let to_stderr = output.as_os_str() == "-";
            return seal::open(
                &keys(local_kek),
                key_id.as_deref(),
                &ctx,
                &input,
                &output,
                range,
            )
            .await
            .map(|v| (v, to_stderr));
        }
        _ => {}
    }
    let channel = tonic::transport::Endpoint::from_shared(cli.endpoint.clone())
        .map_err(|e| format!("--endpoint {}: {e}", cli.endpoint))?
        .connect()
        .await
        .map_err(|e| format!("cannot reach {}: {e}", cli.endpoint))?;
    let mut c = Client {
        inner: KeyManagementServiceClient::new(channel),
        domain: cli.domain,
        region: cli.region,
        token: cli.token,
    };
    let e = |s: tonic::Status| status_error(&s);
    // The RPCs that answer with a key's metadata.
    macro_rules! metadata_call {
        ($method:ident, $request:expr) => {
            meta_json(
                c.inner
                    .$method(c.req($request)?)
                    .await
                    .map_err(e)?
                    .into_inner()
                    .metadata,
            )
        };
    }
    let v = match cli.command {
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
            let r = c.req(pb::ListKeysRequest {
                page_size,
                page_token,
            })?;
            let page = c.inner.list_keys(r).await.map_err(e)?.into_inner();
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
                    .inner
                    .generate_data_key_without_plaintext(c.req(msg)?)
                    .await
                    .map_err(e)?
                    .into_inner();
                json!({
                    "key_id": r.key_id,
                    "key_version": r.key_version,
                    "ciphertext_blob": B64.encode(r.ciphertext_blob),
                })
            } else {
                let r = c
                    .inner
                    .generate_data_key(c.req(msg)?)
                    .await
                    .map_err(e)?
                    .into_inner();
                json!({
                    "key_id": r.key_id,
                    "key_version": r.key_version,
                    "plaintext_base64": B64.encode(&r.plaintext),
                    "ciphertext_blob": B64.encode(r.ciphertext_blob),
                })
            }
        }
        Command::Encrypt {
            key_id,
            plaintext,
            plaintext_base64,
            context,
        } => {
            let plaintext = match (plaintext, plaintext_base64) {
                (Some(t), _) => t.into_bytes(),
                (None, Some(b)) => B64
                    .decode(b.trim())
                    .map_err(|e| format!("--plaintext-base64: {e}"))?,
                (None, None) => return Err("give --plaintext or --plaintext-base64".into()),
            };
            let r = c.req(pb::EncryptRequest {
                key_id,
                plaintext,
                encryption_context: ctx(context),
            })?;
            let r = c.inner.encrypt(r).await.map_err(e)?.into_inner();
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
            let blob = decode_blob(&ciphertext_blob)?;
            let r = c.req(pb::DecryptRequest {
                ciphertext_blob: blob,
                encryption_context: ctx(context),
                key_id,
            })?;
            let r = c.inner.decrypt(r).await.map_err(e)?.into_inner();
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
            let blob = decode_blob(&ciphertext_blob)?;
            let r = c.req(pb::ReEncryptRequest {
                ciphertext_blob: blob,
                source_encryption_context: ctx(source_context),
                source_key_id,
                destination_key_id,
                destination_encryption_context: ctx(destination_context),
            })?;
            let r = c.inner.re_encrypt(r).await.map_err(e)?.into_inner();
            json!({
                "source_key_id": r.source_key_id,
                "key_id": r.key_id,
                "key_version": r.key_version,
                "ciphertext_blob": B64.encode(r.ciphertext_blob),
            })
        }
        Command::Seal { .. } | Command::Open { .. } => {
            return Err("seal and open are handled before connecting".into());
        }
    };
    Ok((v, false))
}

fn render_table(v: &Value) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(keys)) = map.get("keys") {
                let _ = writeln!(
                    s,
                    "{:<80}  {:<16}  {:<8}  {:<24}",
                    "KEY ID", "STATE", "CREATOR", "ALIAS"
                );
                for k in keys {
                    let _ = writeln!(
                        s,
                        "{:<80}  {:<16}  {:<8}  {:<24}",
                        k["key_id"].as_str().unwrap_or(""),
                        k["state"].as_str().unwrap_or(""),
                        k["creator"].as_str().unwrap_or(""),
                        k["alias"].as_str().unwrap_or(""),
                    );
                }
                if let Some(t) = map.get("next_page_token").and_then(Value::as_str)
                    && !t.is_empty()
                {
                    let _ = writeln!(s, "next page: --page-token {t}");
                }
                return s;
            }
            let width = map.keys().map(String::len).max().unwrap_or(0);
            for (k, val) in map {
                let shown = match val {
                    Value::String(s) => s.clone(),
                    Value::Null => "-".into(),
                    other => other.to_string(),
                };
                let _ = writeln!(s, "{k:<width$}  {shown}");
            }
        }
        other => {
            let _ = writeln!(s, "{other}");
        }
    }
    s
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let output = cli.output;
    match run(cli).await {
        Ok((v, to_stderr)) => {
            let text = match output {
                Output::Json => format!("{v:#}\n"),
                Output::Table => render_table(&v),
            };
            if to_stderr {
                eprint!("{text}");
            } else {
                print!("{text}");
            }
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("kmsctl: {msg}");
            ExitCode::FAILURE
        }
    }
}
