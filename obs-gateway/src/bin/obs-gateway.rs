//! `obs-gateway`: flags only; see the crate documentation.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use obs_gateway::clock::AdminToken;
use obs_gateway::server::{Config, run};

/// A local OBS (and S3) endpoint with SSE-KMS from the kmsbox daemon.
#[derive(Debug, Parser)]
#[command(name = "obs-gateway", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "OBS_GATEWAY_LISTEN", default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// Folder for objects and metadata.
    #[arg(long, env = "OBS_GATEWAY_DATA_DIR", default_value = "./obs-data")]
    data_dir: PathBuf,
    /// The kmsbox daemon's gRPC endpoint.
    #[arg(
        long,
        env = "OBS_GATEWAY_KMS_ENDPOINT",
        default_value = "http://127.0.0.1:50051"
    )]
    kms_endpoint: String,
    /// Region of the gateway's buckets (the daemon's default region by default).
    #[arg(long, env = "OBS_GATEWAY_REGION", default_value = "region")]
    region: String,
    /// TOML file of [[credentials]] access_key, secret_key, domain_id (and kms_token). Without it,
    /// <data-dir>/credentials.toml is created with one random pair, and only loopback is allowed.
    #[arg(long, env = "OBS_GATEWAY_CREDENTIALS")]
    credentials: Option<PathBuf>,
    /// Admit keys created by customers for SSE-KMS (the seed allows only OBS's own keys).
    #[arg(long, env = "OBS_GATEWAY_ALLOW_CUSTOMER_KEYS")]
    allow_customer_keys: bool,
    /// Virtual-hosted style addressing: Host: {bucket}.{host-suffix}.
    #[arg(long, env = "OBS_GATEWAY_HOST_SUFFIX", default_value = "obs.localhost")]
    host_suffix: String,
    /// Follow the daemon's clock (read through its admin API at every request) instead of the
    /// wall clock, so that moving a daemon's --virtual-clock moves object dates and expiry too.
    /// For tests.
    #[arg(long, env = "OBS_GATEWAY_KMS_CLOCK")]
    kms_clock: bool,
    /// The daemon's admin token, when --kms-clock reads a daemon started with --admin-token.
    #[arg(long, env = "OBS_GATEWAY_KMS_ADMIN_TOKEN", hide_env_values = true)]
    kms_admin_token: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = Config {
        listen: args.listen,
        data_dir: args.data_dir,
        kms_endpoint: args.kms_endpoint,
        region: args.region,
        credentials: args.credentials,
        allow_customer_keys: args.allow_customer_keys,
        host_suffix: args.host_suffix,
        kms_clock: args.kms_clock,
        kms_admin_token: args.kms_admin_token.map(AdminToken::new),
    };
    let on_listening = |addr: SocketAddr, created: Option<&str>, path: &std::path::Path| {
        if let Some(ak) = created {
            println!(
                "obs-gateway created the default tenant's access key {ak} in {}",
                path.display()
            );
        }
        println!("obs-gateway listening on {addr}");
    };
    match run(config, on_listening, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("obs-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
