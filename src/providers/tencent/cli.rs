//! `imshift sandbox tencent [ARGS]`: the Tencent IM sandbox as a process of its own, for
//! rehearsals and tests outside the console.

use super::sandbox::{self, SandboxConfig};
use clap::Parser;
use std::net::SocketAddr;

/// Emulate the Tencent IM REST API in memory until Ctrl-C / SIGTERM.
#[derive(Parser)]
#[command(
    name = "tencent",
    bin_name = "imshift sandbox tencent",
    no_binary_name = true
)]
pub struct SandboxArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9100")]
    listen: SocketAddr,
    /// The SDKAppID the sandbox accepts.
    #[arg(long)]
    sdkappid: u64,
    /// The app secret key UserSigs must be signed with.
    #[arg(long, env = "IMSHIFT_SANDBOX_KEY", hide_env_values = true)]
    key: String,
    /// App admin identifier (repeat for several).
    #[arg(long = "admin", required = true)]
    admins: Vec<String>,
    /// Fraction of requests answered with a retryable error (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    fault_rate: f64,
    /// Delay added to every request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Seed for fault injection, to replay a run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Post Tencent-format callbacks to this URL.
    #[arg(long, requires = "callback_token")]
    callback_url: Option<String>,
    /// Callback auth token (Sign = sha256(token + RequestTime)).
    #[arg(long, env = "IMSHIFT_SANDBOX_CALLBACK_TOKEN", hide_env_values = true)]
    callback_token: Option<String>,
    /// Fraction (0..=1) of callbacks never sent, as when Tencent's one attempt fails.
    #[arg(long, default_value_t = 0.0)]
    lost_callback_rate: f64,
    /// Keep the sandbox's data in this JSON file across restarts.
    #[arg(long)]
    state_file: Option<std::path::PathBuf>,
    /// Every API's quota, in requests per second (default: Tencent's documented ones).
    #[arg(long)]
    qps: Option<u32>,
}

/// Parses `args` (the words after `imshift sandbox tencent`) and serves until Ctrl-C / SIGTERM.
pub async fn serve(args: Vec<String>) -> Result<(), String> {
    // A bad flag or `--help` ends the process as any other imshift command does (usage, exit 2
    // or 0), not as a failed run.
    let args = SandboxArgs::try_parse_from(args).unwrap_or_else(|e| e.exit());
    let mut config = SandboxConfig::new(args.sdkappid, &args.key, &args.admins[0]);
    config.admins = args.admins;
    config.fault_rate = args.fault_rate;
    config.latency_ms = args.latency_ms;
    config.seed = args.seed;
    config.callback_url = args.callback_url;
    config.callback_token = args.callback_token.map(secrecy::SecretString::from);
    config.state_file = args.state_file;
    config.lost_callback_rate = args.lost_callback_rate;
    if let Some(q) = args.qps {
        config.limits = super::Limits::default().with_all_qps(q);
    }
    let handle = sandbox::spawn(config, args.listen).await.map_err(|e| {
        format!(
            "cannot start the Tencent IM sandbox on {}: {e}",
            args.listen
        )
    })?;
    tracing::info!(
        "Tencent IM sandbox on {} (SDKAppID {}; state at {}/_sandbox/state)",
        handle.base_url(),
        args.sdkappid,
        handle.base_url()
    );
    crate::cli::shutdown_signal().await;
    handle.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_standalone_launch_a_benchmark_makes_parses_as_these_flags() {
        use crate::providers::Sandbox;
        let launch = super::super::provider::Tencent
            .standalone("127.0.0.1:9300".parse().unwrap(), 7)
            .expect("Tencent's sandbox runs standalone");
        // The key travels in the environment variable the --key flag reads.
        let key_env = SandboxArgs::command()
            .get_arguments()
            .find(|a| a.get_id() == "key")
            .and_then(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned());
        assert_eq!(key_env.as_deref(), Some(launch.env[0].0.as_str()));
        let mut args = launch.args.clone();
        args.extend(["--key".to_string(), "K".to_string()]);
        let a = SandboxArgs::try_parse_from(args).unwrap();
        assert_eq!(a.listen.port(), 9300);
        assert_eq!(a.qps, Some(7));
        assert_eq!(launch.public["base_url"], "http://127.0.0.1:9300");
        assert_eq!(
            a.sdkappid as i64,
            launch.public["sdkappid"].as_i64().unwrap()
        );
    }

    #[test]
    fn the_flags_parse_as_imshift_sandbox_tencent_took_them() {
        SandboxArgs::command().debug_assert();
        let a = SandboxArgs::try_parse_from([
            "--listen",
            "127.0.0.1:9200",
            "--sdkappid",
            "1400000000",
            "--key",
            "K",
            "--admin",
            "a",
            "--admin",
            "b",
            "--qps",
            "5",
        ])
        .unwrap();
        assert_eq!(a.listen.port(), 9200);
        assert_eq!(a.sdkappid, 1_400_000_000);
        assert_eq!(a.admins, ["a", "b"]);
        assert_eq!(a.qps, Some(5));
        let Err(help) = SandboxArgs::try_parse_from(["--help"]) else {
            panic!("--help parsed as a run");
        };
        assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
        assert!(help.to_string().contains("imshift sandbox tencent"));
        assert!(help.to_string().contains("--sdkappid"));
    }
}
