//! `imshift sandbox rongcloud [ARGS]`: the RongCloud sandbox as a process of its own.

use super::{default_limits, spawn, Faults, SandboxConfig};
use clap::Parser;
use std::net::SocketAddr;

/// The environment variable `--secret` is read from.
pub const SECRET_ENV: &str = "IMSHIFT_SANDBOX_RONGCLOUD_SECRET";

fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("{s:?} is not a fraction from 0 to 1")),
    }
}

/// Emulate RongCloud's IM Server API (`POST /<path>.json`) in memory until Ctrl-C / SIGTERM.
#[derive(Parser, Debug)]
#[command(
    name = "rongcloud",
    bin_name = "imshift sandbox rongcloud",
    no_binary_name = true
)]
pub struct SandboxArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9300")]
    listen: SocketAddr,
    /// The app key it accepts (the `App-Key` header).
    #[arg(long)]
    appkey: String,
    /// The App Secret `Signature`s (and routing signatures) are made with.
    #[arg(long, env = SECRET_ENV, hide_env_values = true)]
    secret: String,
    /// Every API's quota, in calls per second (default: RongCloud's documented ones).
    #[arg(long)]
    qps: Option<u32>,
    /// Where to route (全量消息路由) the messages app users send.
    #[arg(long)]
    route_url: Option<String>,
    /// Route messages sent through the server API too.
    #[arg(long)]
    route_api_messages: bool,
    /// Deliver every routed message twice.
    #[arg(long)]
    route_duplicate: bool,
    /// Enable 信息托管 (hosted friends, `/friend/*`); without it they answer 1009.
    #[arg(long)]
    entrust: bool,
    /// Enable the hourly history log (`/message/history.json`); without it, 1009.
    #[arg(long)]
    history_log: bool,
    /// Accept users that never got a token in sends, groups and blacklists.
    #[arg(long)]
    allow_unregistered: bool,
    /// A development app's cap on registered users (2007 past it).
    #[arg(long)]
    dev_user_cap: Option<usize>,
    /// How far `Timestamp` may be from the sandbox's clock, in seconds.
    #[arg(long, default_value_t = 300)]
    timestamp_window_secs: u64,
    /// Fraction of calls answered HTTP 500, 502 or 504 without being applied (0 to 1).
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    http_error_rate: f64,
    /// Fraction of calls answered code 1000, 1050 or 1008 without being applied (0 to 1).
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
    /// The largest group.
    #[arg(long, default_value_t = 3000)]
    group_member_max: usize,
}

impl SandboxArgs {
    /// Where to listen and the configuration these flags describe.
    pub fn config(&self) -> (SocketAddr, SandboxConfig) {
        let mut config = SandboxConfig::new(&self.appkey, &self.secret);
        if let Some(q) = self.qps {
            config.limits = default_limits().with_all_qps(q);
        }
        config.faults = Faults {
            http_rate: self.http_error_rate,
            code_rate: self.fault_rate,
            lost_answer_rate: self.lost_answer_rate,
            ..Faults::default()
        };
        config.seed = self.seed;
        config.latency_ms = self.latency_ms;
        config.group_member_max = self.group_member_max;
        config.timestamp_window_secs = self.timestamp_window_secs;
        config.entrust = self.entrust;
        config.history_log = self.history_log;
        config.require_registered = !self.allow_unregistered;
        config.dev_user_cap = self.dev_user_cap;
        config.route.url = self.route_url.clone();
        config.route.route_api_messages = self.route_api_messages;
        config.route.duplicate = self.route_duplicate;
        (self.listen, config)
    }
}

/// Parses `args` (the words after `imshift sandbox rongcloud`) and serves until Ctrl-C /
/// SIGTERM.
pub async fn serve(args: Vec<String>) -> Result<(), String> {
    // A bad flag or `--help` ends the process as any other imshift command does.
    let args = SandboxArgs::try_parse_from(args).unwrap_or_else(|e| e.exit());
    let (listen, config) = args.config();
    let handle = spawn(config, listen)
        .await
        .map_err(|e| format!("cannot start the RongCloud sandbox on {listen}: {e}"))?;
    tracing::info!(
        "RongCloud sandbox on {} (App-Key {}; state at {}/_sandbox/state)",
        handle.base_url(),
        handle.app_key(),
        handle.root_url()
    );
    crate::cli::shutdown_signal().await;
    handle.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_make_the_config() {
        let args = SandboxArgs::try_parse_from([
            "--listen",
            "127.0.0.1:9300",
            "--appkey",
            "K",
            "--secret",
            "S",
            "--qps",
            "7",
            "--route-url",
            "http://127.0.0.1:1/hook",
            "--entrust",
        ])
        .unwrap();
        let (listen, config) = args.config();
        assert_eq!(listen.port(), 9300);
        assert_eq!(config.app_key, "K");
        assert_eq!(config.limits.qps("message/group/publish"), Some(7));
        assert_eq!(config.route.url.as_deref(), Some("http://127.0.0.1:1/hook"));
        assert!(config.entrust && config.require_registered);
    }
}
