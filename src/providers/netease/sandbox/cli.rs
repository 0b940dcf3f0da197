//! `imshift sandbox netease [ARGS]`: the NetEase Yunxin sandbox as a process of its own.

use super::{default_limits, spawn, Faults, SandboxConfig};
use clap::Parser;
use std::net::SocketAddr;

/// The environment variable `--secret` is read from.
pub const SECRET_ENV: &str = "IMSHIFT_SANDBOX_NETEASE_SECRET";

fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("{s:?} is not a fraction from 0 to 1")),
    }
}

/// Emulate NetEase Yunxin's V1 server API (`/nimserver/*.action`) in memory until Ctrl-C /
/// SIGTERM.
#[derive(Parser, Debug)]
#[command(
    name = "netease",
    bin_name = "imshift sandbox netease",
    no_binary_name = true
)]
pub struct SandboxArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9400")]
    listen: SocketAddr,
    /// The app key it accepts (the `AppKey` header).
    #[arg(long)]
    appkey: String,
    /// The app secret `CheckSum`s are made with.
    #[arg(long, env = SECRET_ENV, hide_env_values = true)]
    secret: String,
    /// Every API's quota, in calls per second (default: 100/s each).
    #[arg(long)]
    qps: Option<u32>,
    /// Fraction of calls answered HTTP 502 without being applied (0 to 1).
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    bad_gateway_rate: f64,
    /// Fraction of calls answered code 416, 500, 503 or 431 without being applied (0 to 1).
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    fault_rate: f64,
    /// Fraction of calls applied whose answer is then lost, the connection cut (0 to 1).
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    lost_answer_rate: f64,
    /// Seed for the random faults, to replay a run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Delay added to every call, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// The app's largest team, owner included.
    #[arg(long, default_value_t = 200)]
    team_member_max: u32,
}

impl SandboxArgs {
    /// Where to listen and the configuration these flags describe.
    pub fn config(&self) -> (SocketAddr, SandboxConfig) {
        let mut config = SandboxConfig::new(&self.appkey, &self.secret);
        if let Some(q) = self.qps {
            config.limits = default_limits().with_all_qps(q);
        }
        config.faults = Faults {
            bad_gateway_rate: self.bad_gateway_rate,
            code_rate: self.fault_rate,
            lost_answer_rate: self.lost_answer_rate,
            ..Faults::default()
        };
        config.seed = self.seed;
        config.latency_ms = self.latency_ms;
        config.team_member_max = self.team_member_max;
        (self.listen, config)
    }
}

/// Parses `args` (the words after `imshift sandbox netease`) and serves until Ctrl-C / SIGTERM.
pub async fn serve(args: Vec<String>) -> Result<(), String> {
    // A bad flag or `--help` ends the process as any other imshift command does.
    let args = SandboxArgs::try_parse_from(args).unwrap_or_else(|e| e.exit());
    let (listen, config) = args.config();
    let handle = spawn(config, listen)
        .await
        .map_err(|e| format!("cannot start the NetEase Yunxin sandbox on {listen}: {e}"))?;
    tracing::info!(
        "NetEase Yunxin sandbox on {} (AppKey {}; state at {}/_sandbox/state)",
        handle.base_url(),
        handle.app_key(),
        handle.root_url()
    );
    crate::cli::shutdown_signal().await;
    handle.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}
