//! `kmsctl`: the kmsbox daemon's command-line client, one subcommand per RPC, plus `seal` and
//! `open` for envelope encryption of files and pipes.
//!
//! Every failure is a [`error::CliError`], printed once by `main` as `kmsctl: <message>` with exit
//! status 1. SIGINT and SIGTERM end a command at once with status 130 and 143, after removing
//! the temporary file of an unfinished `--out` (see `output`).
#![forbid(unsafe_code)]
mod admin;
mod error;
mod output;
mod rpc;
mod seal;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::Value;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::error::CliError;

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
        /// The key's alias, unique in the tenant's region (default: none).
        #[arg(long, default_value = "", hide_default_value = true)]
        alias: String,
        /// A description of at most 255 characters (default: none).
        #[arg(long, default_value = "", hide_default_value = true)]
        description: String,
    },
    /// Show a key's metadata.
    DescribeKey {
        /// The key: its full key ID, or its UUID in the caller's domain and region.
        key_id: String,
    },
    /// List keys, page by page.
    ListKeys {
        /// Keys per page, at most 1000 (default: the daemon's, 100).
        #[arg(long, default_value_t = 0, hide_default_value = true)]
        page_size: u32,
        /// Where to go on: the next page token an earlier page printed (default: the first page).
        #[arg(long, default_value = "", hide_default_value = true)]
        page_token: String,
    },
    /// Enable a disabled key.
    EnableKey {
        /// The key: its full key ID, or its UUID in the caller's domain and region.
        key_id: String,
    },
    /// Disable a key.
    DisableKey {
        /// The key: its full key ID, or its UUID in the caller's domain and region.
        key_id: String,
    },
    /// Schedule a key's deletion after 7 to 1096 days (default 30).
    ScheduleKeyDeletion {
        /// The key: its full key ID, or its UUID in the caller's domain and region.
        key_id: String,
        /// Days until the key is deleted, 7 to 1096 (default: 30).
        #[arg(long, default_value_t = 0, hide_default_value = true)]
        pending_window_days: u32,
    },
    /// Cancel a scheduled deletion (the key comes back disabled).
    CancelKeyDeletion {
        /// The key: its full key ID, or its UUID in the caller's domain and region.
        key_id: String,
    },
    /// Add a key version.
    RotateKey {
        /// The key: its full key ID, or its UUID in the caller's domain and region.
        key_id: String,
    },
    /// Rename a key.
    UpdateKeyAlias {
        /// The key: its full key ID, or its UUID in the caller's domain and region.
        key_id: String,
        /// The new alias.
        alias: String,
    },
    /// Set a key's description (empty clears it).
    UpdateKeyDescription {
        /// The key: its full key ID, or its UUID in the caller's domain and region.
        key_id: String,
        /// The new description, at most 255 characters.
        description: String,
    },
    /// Turn a key's automatic rotation on (every 365 days until the interval is set).
    EnableKeyRotation {
        /// The key: its full key ID, or its UUID in the caller's domain and region.
        key_id: String,
    },
    /// Turn a key's automatic rotation off.
    DisableKeyRotation {
        /// The key: its full key ID, or its UUID in the caller's domain and region.
        key_id: String,
    },
    /// Set the interval of a key's automatic rotation, 30 to 365 days.
    UpdateKeyRotationInterval {
        /// The key: its full key ID, or its UUID in the caller's domain and region.
        key_id: String,
        /// Days between automatic rotations, 30 to 365.
        #[arg(long)]
        days: u32,
    },
    /// Show a key's rotation schedule and history.
    GetKeyRotationStatus {
        /// The key: its full key ID, or its UUID in the caller's domain and region.
        key_id: String,
    },
    /// Random bytes (base64) from the daemon, 1 to 1024.
    GenerateRandom {
        /// How many bytes, 1 to 1024.
        #[arg(long)]
        number_of_bytes: u32,
    },
    /// The default key of a service (created on first use).
    GetDefaultKey {
        /// The service whose default key it is (`obs`, ...).
        service: String,
    },
    /// A fresh data key, in plaintext (base64) and encrypted.
    GenerateDataKey {
        /// The key: its full key ID, or its UUID in the caller's domain and region.
        key_id: String,
        /// The data key's length in bytes, 1 to 1024 (default: 32, an AES-256 key).
        #[arg(long, default_value_t = 0, hide_default_value = true)]
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
        /// The key: its full key ID, or its UUID in the caller's domain and region.
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
        /// Encryption context entry `key=value`, needed again to decrypt; repeatable.
        #[arg(long = "context", value_parser = parse_pair)]
        context: Vec<(String, String)>,
    },
    /// Decrypt a ciphertext blob (base64).
    Decrypt {
        /// The ciphertext blob, base64, as `encrypt` printed it.
        ciphertext_blob: String,
        /// The encryption context entries given at encryption; repeatable.
        #[arg(long = "context", value_parser = parse_pair)]
        context: Vec<(String, String)>,
        /// Require the blob to be under this key (default: any key).
        #[arg(long, default_value = "", hide_default_value = true)]
        key_id: String,
    },
    /// Envelope-encrypt a file or pipe (`-`) in constant memory, under a data key from the daemon
    /// (or from --local-kek).
    ///
    /// An --out file is written as a hidden temporary file (mode 0600) next to it and renamed into
    /// place only once the whole input is sealed: on an error, SIGINT or SIGTERM no partial file is
    /// left and an existing --out is not touched.
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
    ///
    /// An --out file is written as a hidden temporary file (mode 0600) next to it and renamed into
    /// place only once every chunk (of the range) has authenticated: on a tampered, truncated or
    /// foreign object, another error, SIGINT or SIGTERM no partial plaintext is left and an existing
    /// --out is not touched.
    ///
    /// With `--out -` the plaintext streams to standard output chunk by chunk: the chunks that
    /// authenticated before a later chunk fails have already been written. kmsctl then exits
    /// non-zero, naming the failing chunk; discard what it wrote.
    Open {
        /// The same context entries as at sealing; repeatable.
        #[arg(long = "context", value_parser = parse_pair)]
        context: Vec<(String, String)>,
        /// Input file, or `-` for standard input (not with --range).
        #[arg(long = "in")]
        input: PathBuf,
        /// Output file, replaced only once all of it has authenticated; or `-` for standard output,
        /// which receives each chunk as it authenticates (see above).
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
    /// The test control plane: fault rules injected into the KMS API, and the daemon's clock
    /// (`admin faults add|list|remove`, `admin clock get|advance|set`).
    Admin(admin::Admin),
    /// Re-encrypt a ciphertext blob (base64) under another key or context.
    ReEncrypt {
        /// The ciphertext blob, base64.
        ciphertext_blob: String,
        /// The key to encrypt under: full key ID or UUID.
        #[arg(long)]
        destination_key_id: String,
        /// The blob's encryption context entry `key=value`; repeatable.
        #[arg(long = "source-context", value_parser = parse_pair)]
        source_context: Vec<(String, String)>,
        /// The new blob's encryption context entry `key=value`; repeatable.
        #[arg(long = "destination-context", value_parser = parse_pair)]
        destination_context: Vec<(String, String)>,
        /// Require the blob to be under this key (default: any key).
        #[arg(long, default_value = "", hide_default_value = true)]
        source_key_id: String,
    },
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?} is not key=value"))
}

fn object_context(pairs: Vec<(String, String)>) -> Result<envelope::ObjectContext, CliError> {
    envelope::ObjectContext::from_pairs(pairs).map_err(|e| CliError::argument("--context", e))
}

/// Runs the command; the flag says the summary must go to standard error, because standard output
/// carries data.
async fn run(cli: Cli) -> Result<(Value, bool), CliError> {
    let keys = |local: Option<PathBuf>| -> Result<seal::Keys, CliError> {
        Ok(match local {
            Some(p) => seal::Keys::Local(p),
            None => seal::Keys::Daemon {
                endpoint: cli.endpoint.clone(),
                tenancy: rpc::tenancy(
                    cli.domain.as_deref(),
                    cli.region.as_deref(),
                    cli.token.as_deref(),
                )?,
            },
        })
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
            seal::seal(&keys(local_kek)?, key_id.as_deref(), &ctx, &input, &output)
                .await
                .map(|v| (v, to_stderr))
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
            seal::open(
                &keys(local_kek)?,
                key_id.as_deref(),
                &ctx,
                &input,
                &output,
                range,
            )
            .await
            .map(|v| (v, to_stderr))
        }
        Command::Admin(a) => admin::call(&cli.endpoint, a).await,
        command => {
            let tenancy = rpc::tenancy(
                cli.domain.as_deref(),
                cli.region.as_deref(),
                cli.token.as_deref(),
            )?;
            Ok((rpc::call(&cli.endpoint, tenancy, command).await?, false))
        }
    }
}

/// SIGINT and SIGTERM, listened for from the start of `main`.
struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    fn listen() -> std::io::Result<Self> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// The next signal's name and the exit status that reports it (128 + its number).
    async fn recv(&mut self) -> (&'static str, u8) {
        tokio::select! {
            _ = self.interrupt.recv() => ("SIGINT", 130),
            _ = self.terminate.recv() => ("SIGTERM", 143),
        }
    }
}

/// How a command ended.
enum Outcome {
    Done(Result<(Value, bool), CliError>),
    Signalled(&'static str, u8),
}

fn render_table(v: &Value) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(faults)) = map.get("faults") {
                let _ = writeln!(
                    s,
                    "{:<4}  {:<32}  {:<24}  {:<12}  {:<6}  {:<6}  {:<5}  MATCHING",
                    "ID", "OPERATION", "ACTION", "PROBABILITY", "COUNT", "HITS", "LIVE"
                );
                for f in faults {
                    let matching: Vec<String> = ["domain_id", "region", "key_id"]
                        .iter()
                        .filter_map(|k| {
                            f[*k]
                                .as_str()
                                .filter(|v| !v.is_empty())
                                .map(|v| format!("{k}={v}"))
                        })
                        .collect();
                    let line = format!(
                        "{:<4}  {:<32}  {:<24}  {:<12}  {:<6}  {:<6}  {:<5}  {}",
                        f["id"].as_str().unwrap_or(""),
                        f["operation"].as_str().unwrap_or(""),
                        f["action"].as_str().unwrap_or(""),
                        // serde_json's numbers ignore a width: pad their text.
                        f["probability"].to_string(),
                        f["count"].to_string(),
                        f["hits"].to_string(),
                        if f["retired"] == true { "no" } else { "yes" },
                        matching.join(" "),
                    );
                    let _ = writeln!(s, "{}", line.trim_end());
                }
                return s;
            }
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
    let mut signals = match Signals::listen() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kmsctl: cannot listen for signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = {
        let command = run(cli);
        tokio::pin!(command);
        tokio::select! {
            biased;
            (name, status) = signals.recv() => Outcome::Signalled(name, status),
            r = &mut command => Outcome::Done(r),
        }
        // The command, with the temporary file of an unfinished --out, is dropped here.
    };
    match outcome {
        Outcome::Done(Ok((v, to_stderr))) => {
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
        Outcome::Done(Err(e)) => {
            eprintln!("kmsctl: {e}");
            ExitCode::FAILURE
        }
        Outcome::Signalled(name, status) => {
            eprintln!("kmsctl: interrupted by {name}");
            // Not a return: that would wait for a blocking step still reading a pipe.
            std::process::exit(i32::from(status))
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every subcommand, flag and argument says in `--help` what it is.
    #[test]
    fn every_command_and_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.get_help().is_none() && !["help", "version"].contains(&id) {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(path.clone());
                }
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "kmsctl", &mut missing);
        assert!(missing.is_empty(), "without help: {missing:?}");
    }
}
