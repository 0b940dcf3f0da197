//! `imshift bench sync`: the coexistence sync under load. A console in this process with a
//! `coexistence` migration self-built → the benchmark's target (its provider from the
//! registry), both sides sandboxes in this process, both directions on. Old → new: relay
//! batches posted to the console's hook, signed as the old system would. New → old: users of
//! the target's sandbox send, its signed callbacks reach the hook.
//! Reported: offered and accepted events, the hook's answer time, imshift's added latency
//! (`sent_at - received_at`), lost, duplicated and out-of-order events at the destinations,
//! CPU; with `--outage-secs` the old system stops for a while and comes back.

use crate::model::{MigrationId, Side, Strategy};
use crate::providers::self_built::sandbox::{self as relay, RelayConfig, RelayHandle};
use crate::providers::{RunningSandbox, StartOptions};
use crate::secrets::MasterKey;
use crate::web::{self, AppState, Config};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Conversations per direction (one-to-one, between two accounts each).
const CONVS: u64 = 200;
/// Events per relay batch posted by the old system.
const BATCH: usize = 10;
const OUTBOUND: &str = "bench-sync-relay-outbound";
const INBOUND: &str = "bench-sync-relay-inbound";

/// `imshift bench sync`'s flags.
#[derive(clap::Args)]
pub struct Options {
    /// Events a second, both directions together (half each way).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    #[arg(long, default_value_t = 10.0)]
    pub minutes: f64,
    /// After the steady load (or alone when MINUTES is 0): the old system down this long.
    #[arg(long, default_value_t = 0)]
    pub outage_secs: u64,
    /// Instead of the steady load: steps from RATE up (×1.5 each) until one loses an event,
    /// with the providers' documented quotas; reports the highest rate taken and the drain
    /// of what is queued.
    #[arg(long)]
    pub find_peak: bool,
    /// Seconds per step of --find-peak.
    #[arg(long, default_value_t = 20.0)]
    pub step_secs: f64,
    /// The old system's reorder window (its connection's `reorder_ms`): its relay batches are
    /// posted side by side, so a later event of a chat can reach the console first.
    #[arg(long, default_value_t = 0)]
    pub reorder_ms: u64,
    #[arg(long, default_value = "/tmp/imshift-bench-sync")]
    pub dir: PathBuf,
}

#[derive(Debug, Default, Serialize)]
pub struct Figures {
    /// `debug` or `release`: the figures of a debug build are not the product's.
    pub build: &'static str,
    pub rate: f64,
    /// The old system's reorder window.
    pub reorder_ms: u64,
    pub seconds: f64,
    /// Achieved offered events per second, per direction.
    pub offered_old_to_new: f64,
    pub offered_new_to_old: f64,
    pub sent_old_to_new: u64,
    pub sent_new_to_old: u64,
    /// Events the console stored (echoes left out).
    pub accepted_old_to_new: i64,
    pub accepted_new_to_old: i64,
    /// Relay POSTs not answered 200, and messages the new system's sandbox refused from its users.
    pub send_errors: u64,
    /// Events sent to the console that it never stored: lost before it could take them.
    pub never_stored: i64,
    /// The hook's answer to a relay batch, client side.
    pub inbound_p50_ms: f64,
    pub inbound_p99_ms: f64,
    /// The hook's answer to every delivery (relay batches and the new system's callbacks),
    /// timed in the console from request to response.
    pub door_p50_ms: f64,
    pub door_p99_ms: f64,
    pub door_deliveries: usize,
    /// `sent_at - received_at`, both directions; the goal is p99 ≤ 20 ms.
    pub added_p50_ms: f64,
    pub added_p99_ms: f64,
    pub added_p99_old_to_new_ms: f64,
    pub added_p99_new_to_old_ms: f64,
    /// From the end of the load until nothing waits.
    pub drain_secs: f64,
    pub check: Check,
    /// CPU seconds of this process (console, workers and both sandboxes) per wall second.
    pub cpu: f64,
    pub outage: Option<Outage>,
    pub peak: Option<Peak>,
}

/// `--find-peak`: the highest rate the console took with nothing lost, and the drain after.
#[derive(Debug, Default, Serialize)]
pub struct Peak {
    pub steps: Vec<PeakStep>,
    /// The highest step's rate with every event sent stored, none refused, and the rate
    /// offered within 5 % of the step's.
    pub highest_ok: f64,
    /// Waiting when the load stopped, the time until nothing waited, and the rate in between
    /// (the target's documented quota bounds it).
    pub queued_after: i64,
    pub drain_secs: f64,
    pub drain_per_sec: f64,
    pub check: Check,
}

#[derive(Debug, Default, Serialize, Clone)]
pub struct PeakStep {
    pub rate: f64,
    pub offered_per_sec: f64,
    pub sent: u64,
    pub never_stored: i64,
    pub send_errors: u64,
    pub door_p50_ms: f64,
    pub door_p99_ms: f64,
}

impl PeakStep {
    fn ok(&self) -> bool {
        self.never_stored == 0 && self.send_errors == 0 && self.offered_per_sec >= 0.95 * self.rate
    }
}

/// What arrived at the destinations against what the console accepted.
#[derive(Debug, Default, Serialize, Clone)]
pub struct Check {
    /// Accepted but not at the destination (after the drain wait).
    pub lost: usize,
    /// The same event at a destination twice (under different ids).
    pub duplicated: usize,
    /// Deliveries to the relay repeated with the same id (idempotent by protocol, not a
    /// duplicate).
    pub resent_same_id: usize,
    /// Conversations whose sequence numbers do not increase at the destination.
    pub convs_out_of_order: usize,
    /// Accepted but still waiting or dead in the console at the end.
    pub not_sent: i64,
}

#[derive(Debug, Default, Serialize)]
pub struct Outage {
    pub secs: u64,
    pub sent_new_to_old: u64,
    pub peak_queued: i64,
    /// From the old system's return until nothing waits.
    pub drain_secs: f64,
    pub check: Check,
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Event `k` of a direction: its conversation and its number within it.
fn slot(k: u64) -> (u64, u64) {
    (k % CONVS, k / CONVS)
}

/// The text an event carries: direction, conversation, sequence number.
fn text(prefix: char, k: u64) -> String {
    let (c, n) = slot(k);
    format!("{prefix}:{c}:{n}")
}

fn parse_text(t: &str) -> Option<(char, u64, u64)> {
    let mut p = t.splitn(3, ':');
    let d = p.next()?.chars().next()?;
    Some((d, p.next()?.parse().ok()?, p.next()?.parse().ok()?))
}

struct Bench {
    state: AppState,
    id: MigrationId,
    hook_source: String,
    /// The new system: the target provider's sandbox.
    target: Arc<dyn RunningSandbox>,
    relay: Option<RelayHandle>,
    relay_addr: SocketAddr,
    /// What relays stopped earlier received.
    relay_earlier: Vec<Value>,
    http: reqwest::Client,
    /// The next event number of each direction; numbers go on across phases.
    next_old: u64,
    next_new: u64,
    door: DoorTimes,
}

/// The console's answer time to each delivery at its hooks, in ms.
#[derive(Clone, Default)]
struct DoorTimes(Arc<std::sync::Mutex<Vec<f64>>>);

impl DoorTimes {
    fn take(&self) -> Vec<f64> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

async fn time_door(
    axum::extract::State(door): axum::extract::State<DoorTimes>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if !request.uri().path().starts_with("/hooks/") {
        return next.run(request).await;
    }
    let t0 = Instant::now();
    let response = next.run(request).await;
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    door.0.lock().unwrap_or_else(|p| p.into_inner()).push(ms);
    response
}

pub async fn run(pool: sqlx::PgPool, o: &Options) -> Res<Figures> {
    std::fs::create_dir_all(o.dir.join("uploads"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let console = format!("http://{}", listener.local_addr()?);
    let mut config = Config::for_url(&console);
    config.data_dir = o.dir.clone();
    let leptos = leptos::config::LeptosOptions::builder()
        .output_name("imshift")
        .site_root("target/site")
        .site_pkg_dir("pkg")
        .build();
    let (app, state) = web::build_with_state(pool, config, leptos, MasterKey::generate()).await?;
    let door = DoorTimes::default();
    let app = app.layer(axum::middleware::from_fn_with_state(
        door.clone(),
        time_door,
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let serve = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        if let Err(e) = serve.await {
            tracing::error!("bench console stopped: {e}");
        }
    });
    let workers = web::workers::start(&state).await?;
    let mut b = Bench::set_up(state, &console, o, door).await?;
    let mut f = Figures {
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        rate: o.rate,
        reorder_ms: o.reorder_ms,
        ..Figures::default()
    };
    if o.find_peak {
        f.peak = Some(b.find_peak(o.rate, o.step_secs).await?);
    } else if o.minutes > 0.0 {
        b.steady(o.rate, o.minutes * 60.0, &mut f).await?;
    }
    if o.outage_secs > 0 {
        f.outage = Some(b.outage(o.rate, o.outage_secs).await?);
    }
    if let Some(w) = workers {
        w.shutdown().await;
    }
    let _ = stop.send(());
    std::fs::write(o.dir.join("figures.json"), serde_json::to_vec_pretty(&f)?)?;
    Ok(f)
}

impl Bench {
    /// With `--find-peak`, the providers' own quotas, not quotas raised above the load.
    async fn set_up(state: AppState, console: &str, o: &Options, door: DoorTimes) -> Res<Bench> {
        let (rate, documented) = (o.rate, o.find_peak);
        let (actor, m) =
            crate::import::bench::admin_and_migration(&state, "bench sync", Strategy::Coexistence)
                .await?;
        let hook = |side| crate::sync::inbound::hook_url(console, m.id, side);
        // Neither side's quota may be what limits the run: both get twice the whole rate.
        let qps = ((rate * 2.0).ceil() as u32).max(200);
        let provider = state
            .config
            .providers
            .get(&m.target)
            .ok_or("the migration's target is not a provider of this build")?
            .clone();
        let sandbox = provider
            .sandbox()
            .ok_or("the migration's target has no sandbox")?;
        let started = sandbox
            .start(
                None,
                StartOptions {
                    hook_url: Some(hook(Side::Target)),
                    limits: Some(if documented {
                        provider.limits()
                    } else {
                        provider.limits().with_all_qps(qps)
                    }),
                    sign_hooks: true,
                    ..StartOptions::default()
                },
            )
            .await?;
        let target: Arc<dyn RunningSandbox> = Arc::from(started.sandbox);
        let hook_source = hook(Side::Source);
        let relay = relay::spawn(relay_config(&hook_source), "127.0.0.1:0".parse()?).await?;
        for addr in [target.addr(), relay.addr] {
            crate::providers::outbound::register_sandbox(addr);
        }
        // The connections that reach them, secrets included, as the sandboxes answered them.
        use crate::import::bench::connect;
        connect(
            &state,
            &actor,
            m.id,
            Side::Target,
            &started.public,
            &started.secrets,
        )
        .await?;
        let relay_fields = json!({"relay_url": relay.base_url(), "reorder_ms": o.reorder_ms});
        let relay_secrets = [
            ("outbound_secret".to_string(), OUTBOUND.to_string().into()),
            ("inbound_secret".to_string(), INBOUND.to_string().into()),
        ];
        let relay_fields = relay_fields.as_object().expect("an object");
        connect(
            &state,
            &actor,
            m.id,
            Side::Source,
            relay_fields,
            &relay_secrets,
        )
        .await?;
        let apis: Vec<String> = provider
            .limits()
            .apis
            .keys()
            .map(|a| a.to_string())
            .collect();
        if !documented {
            let quotas = apis.into_iter().map(|a| (a, qps));
            crate::import::bench::set_quotas(&state, &actor, m.id, quotas).await?;
        }
        for side in [Side::Source, Side::Target] {
            crate::sync::control::set_direction(&state, &actor, m.id, side, true).await?;
        }
        Ok(Bench {
            state,
            id: m.id,
            hook_source,
            relay_addr: relay.addr,
            relay: Some(relay),
            relay_earlier: vec![],
            target,
            http: reqwest::Client::builder().no_proxy().build()?,
            next_old: 0,
            next_new: 0,
            door,
        })
    }

    /// Half of `rate` each way for `secs`: the old system's relay batches and the new app's
    /// users, numbered on from the previous load.
    async fn load(&mut self, rate: f64, secs: f64) -> Res<(Sent, Sent)> {
        let (old, new) = tokio::join!(
            old_system_sends(
                &self.http,
                &self.hook_source,
                self.next_old,
                rate / 2.0,
                secs
            ),
            new_app_sends(self.target.clone(), self.next_new, rate / 2.0, secs),
        );
        let (old, new) = (old?, new?);
        self.next_old += old.sent;
        self.next_new += new.sent;
        Ok((old, new))
    }

    /// Both directions at `rate` together for `secs`, then the drain and the checks.
    async fn steady(&mut self, rate: f64, secs: f64, f: &mut Figures) -> Res<()> {
        let since = self.db_now().await?;
        self.door.take();
        let (c0, t0) = (crate::import::bench::cpu_secs(), Instant::now());
        let (old, new) = self.load(rate, secs).await?;
        let end = Instant::now();
        f.seconds = old.secs.max(new.secs);
        f.offered_old_to_new = old.sent as f64 / old.secs;
        f.offered_new_to_old = new.sent as f64 / new.secs;
        f.sent_old_to_new = old.sent;
        f.sent_new_to_old = new.sent;
        f.send_errors = old.errors + new.errors;
        let mut lat = old.latencies_ms;
        lat.sort_by(f64::total_cmp);
        f.inbound_p50_ms = percentile(&lat, 0.5);
        f.inbound_p99_ms = percentile(&lat, 0.99);
        let mut door = self.door.take();
        door.sort_by(f64::total_cmp);
        f.door_p50_ms = percentile(&door, 0.5);
        f.door_p99_ms = percentile(&door, 0.99);
        f.door_deliveries = door.len();
        // A backlog is not a loss: it may take as long again as the load to drain.
        self.drain(None, Duration::from_secs_f64((2.0 * secs).max(60.0) + 30.0))
            .await?;
        f.drain_secs = end.elapsed().as_secs_f64();
        f.cpu = (crate::import::bench::cpu_secs() - c0) / t0.elapsed().as_secs_f64();
        f.accepted_old_to_new = self.accepted(Side::Source, since).await?;
        f.accepted_new_to_old = self.accepted(Side::Target, since).await?;
        // Sent but never stored: a relay batch refused, or a callback the door answered after
        // the provider gave up on it (callbacks are not retried).
        f.never_stored = (old.sent as i64 - f.accepted_old_to_new).max(0)
            + (new.sent as i64 - f.accepted_new_to_old).max(0);
        (f.added_p50_ms, f.added_p99_ms) = self.added(None, since).await?;
        f.added_p99_old_to_new_ms = self.added(Some(Side::Source), since).await?.1;
        f.added_p99_new_to_old_ms = self.added(Some(Side::Target), since).await?.1;
        f.check = self.check(since, true).await?;
        Ok(())
    }

    /// Steps of load both ways from `rate` up (×1.5 each, at most 8), `secs` each, until a
    /// step loses an event or the load cannot be offered; then the drain of the backlog.
    async fn find_peak(&mut self, rate: f64, secs: f64) -> Res<Peak> {
        let start = self.db_now().await?;
        let mut peak = Peak::default();
        let mut rate = rate;
        for _ in 0..8 {
            let since = self.db_now().await?;
            self.door.take();
            let (old, new) = self.load(rate, secs).await?;
            // Callbacks still on their way (a provider waits 2 s at most for an answer).
            tokio::time::sleep(Duration::from_secs(3)).await;
            let stored = self.accepted(Side::Source, since).await?
                + self.accepted(Side::Target, since).await?;
            let mut door = self.door.take();
            door.sort_by(f64::total_cmp);
            let sent = old.sent + new.sent;
            let step = PeakStep {
                rate,
                offered_per_sec: sent as f64 / old.secs.max(new.secs),
                sent,
                never_stored: (sent as i64 - stored).max(0),
                send_errors: old.errors + new.errors,
                door_p50_ms: percentile(&door, 0.5),
                door_p99_ms: percentile(&door, 0.99),
            };
            tracing::warn!(?step, "bench sync: peak step");
            let ok = step.ok();
            if ok {
                peak.highest_ok = rate;
            }
            peak.steps.push(step);
            if !ok {
                break;
            }
            rate *= 1.5;
        }
        peak.queued_after = backlog(&self.state.pool, self.id, None).await?;
        let t0 = Instant::now();
        self.drain(None, Duration::from_secs(1800)).await?;
        peak.drain_secs = t0.elapsed().as_secs_f64();
        peak.drain_per_sec = peak.queued_after as f64 / peak.drain_secs.max(0.001);
        peak.check = self.check(start, true).await?;
        Ok(peak)
    }

    /// The old system down for `secs` while the new app's users keep sending, then back on
    /// the same address.
    async fn outage(&mut self, rate: f64, secs: u64) -> Res<Outage> {
        let since = self.db_now().await?;
        if let Some(r) = self.relay.take() {
            self.relay_earlier.extend(r.received());
        }
        let peak = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let watch = {
            let (pool, id, peak) = (self.state.pool.clone(), self.id, peak.clone());
            tokio::spawn(async move {
                loop {
                    if let Ok(n) = backlog(&pool, id, Some(Side::Target)).await {
                        peak.fetch_max(n, std::sync::atomic::Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
        };
        let sent =
            new_app_sends(self.target.clone(), self.next_new, rate / 2.0, secs as f64).await?;
        self.next_new += sent.sent;
        let mut relay = None;
        // The port is free again once the stopped relay's last connection closes.
        for _ in 0..100 {
            match relay::spawn(relay_config(&self.hook_source), self.relay_addr).await {
                Ok(r) => {
                    relay = Some(r);
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.relay = Some(relay.ok_or("the relay's port stayed in use")?);
        let back = Instant::now();
        // The sender backs off up to a minute between tries of a side that is down.
        let wait = Duration::from_secs((2 * secs).max(60) + 30);
        self.drain(Some(Side::Target), wait).await?;
        let drain_secs = back.elapsed().as_secs_f64();
        watch.abort();
        Ok(Outage {
            secs,
            sent_new_to_old: sent.sent,
            peak_queued: peak.load(std::sync::atomic::Ordering::Relaxed),
            drain_secs,
            check: self.check(since, false).await?,
        })
    }

    async fn db_now(&self) -> Res<OffsetDateTime> {
        Ok(sqlx::query_scalar("SELECT now()")
            .fetch_one(&self.state.pool)
            .await?)
    }

    /// Waits until nothing waits and nothing new arrives (callbacks in flight), up to `max`.
    async fn drain(&self, side: Option<Side>, max: Duration) -> Res<()> {
        let t0 = Instant::now();
        let mut last = -1;
        while t0.elapsed() < max {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let total: i64 =
                sqlx::query_scalar("SELECT count(*) FROM sync_inbound WHERE migration_id = $1")
                    .bind(self.id)
                    .fetch_one(&self.state.pool)
                    .await?;
            if backlog(&self.state.pool, self.id, side).await? == 0 && total == last {
                return Ok(());
            }
            last = total;
        }
        Ok(())
    }

    /// The load's own events the console stored (the console's canaries left out).
    async fn accepted(&self, side: Side, since: OffsetDateTime) -> Res<i64> {
        let prefix = match side {
            Side::Source => "o:%",
            Side::Target => "n:%",
        };
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM sync_inbound
             WHERE migration_id = $1 AND side = $2 AND state <> 'echo' AND received_at >= $3
               AND data->'body'->>'text' LIKE $4",
        )
        .bind(self.id)
        .bind(side.as_str())
        .bind(since)
        .bind(prefix)
        .fetch_one(&self.state.pool)
        .await?)
    }

    /// imshift's added latency, p50 and p99 in ms.
    async fn added(&self, side: Option<Side>, since: OffsetDateTime) -> Res<(f64, f64)> {
        let (p50, p99): (Option<f64>, Option<f64>) = sqlx::query_as(
            "SELECT percentile_cont(0.5) WITHIN GROUP
                        (ORDER BY extract(epoch FROM sent_at - received_at) * 1000),
                    percentile_cont(0.99) WITHIN GROUP
                        (ORDER BY extract(epoch FROM sent_at - received_at) * 1000)
             FROM sync_inbound
             WHERE migration_id = $1 AND state = 'sent' AND received_at >= $3
               AND ($2::text IS NULL OR side = $2)",
        )
        .bind(self.id)
        .bind(side.map(|s| s.as_str()))
        .bind(since)
        .fetch_one(&self.state.pool)
        .await?;
        Ok((p50.unwrap_or(0.0), p99.unwrap_or(0.0)))
    }

    /// The accepted events since `since` against both destinations (only the relay's when
    /// `both` is false).
    async fn check(&self, since: OffsetDateTime, both: bool) -> Res<Check> {
        let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT side, state, data->'body'->>'text' FROM sync_inbound
             WHERE migration_id = $1 AND state <> 'echo' AND received_at >= $2",
        )
        .bind(self.id)
        .bind(since)
        .fetch_all(&self.state.pool)
        .await?;
        let mut c = Check {
            not_sent: rows.iter().filter(|r| r.1 != "sent").count() as i64,
            ..Check::default()
        };
        // Old → new: the new system's one-to-one histories, in the order they were stored.
        if both {
            let texts = self.target.one_to_one_texts()?.into_iter();
            let expected = rows.iter().filter(|r| r.0 == "source");
            tally(&mut c, 'o', expected.filter_map(|r| r.2.clone()), texts);
        }
        // New → old: what every relay received, a repeat of an id counted apart.
        let mut received = self.relay_earlier.clone();
        received.extend(
            self.relay
                .as_ref()
                .map(RelayHandle::received)
                .unwrap_or_default(),
        );
        let mut ids = HashSet::new();
        let mut texts = vec![];
        for e in received {
            if !ids.insert(e["id"].as_str().unwrap_or_default().to_string()) {
                c.resent_same_id += 1;
                continue;
            }
            if let Some(t) = e["data"]["body"]["text"].as_str() {
                texts.push(t.to_string());
            }
        }
        let expected = rows.iter().filter(|r| r.0 == "target");
        tally(
            &mut c,
            'n',
            expected.filter_map(|r| r.2.clone()),
            texts.into_iter(),
        );
        Ok(c)
    }
}

fn relay_config(hook: &str) -> RelayConfig {
    RelayConfig {
        verify_secret: OUTBOUND.into(),
        send_secret: Some(INBOUND.into()),
        hook_url: Some(hook.to_string()),
        ..RelayConfig::default()
    }
}

/// Events waiting or in flight (of one side, or both).
async fn backlog(
    pool: &sqlx::PgPool,
    id: MigrationId,
    side: Option<Side>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM sync_inbound
         WHERE migration_id = $1 AND state IN ('queued', 'sending')
           AND ($2::text IS NULL OR side = $2)",
    )
    .bind(id)
    .bind(side.map(|s| s.as_str()))
    .fetch_one(pool)
    .await
}

/// Adds to `c` what arrived (`arrived`, in arrival order) of the `expected` texts of
/// direction `dir`: missing ones, ones twice, conversations out of order.
fn tally(
    c: &mut Check,
    dir: char,
    expected: impl Iterator<Item = String>,
    arrived: impl Iterator<Item = String>,
) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut last: BTreeMap<u64, u64> = BTreeMap::new();
    let mut disordered = HashSet::new();
    for t in arrived {
        let Some((d, conv, n)) = parse_text(&t) else {
            continue;
        };
        if d != dir {
            continue;
        }
        *seen.entry(t).or_default() += 1;
        if last.get(&conv).is_some_and(|prev| *prev >= n) {
            disordered.insert(conv);
        }
        last.insert(conv, n);
    }
    c.duplicated += seen.values().map(|n| n - 1).sum::<usize>();
    // Only the load's own texts: the console's canaries travel the same direction (and are
    // skipped on arrival above), so expecting them would count them lost.
    c.lost += expected
        .filter(|t| parse_text(t).is_some_and(|(d, _, _)| d == dir) && !seen.contains_key(t))
        .count();
    c.convs_out_of_order += disordered.len();
}

/// What one direction's load did.
struct Sent {
    sent: u64,
    errors: u64,
    secs: f64,
    latencies_ms: Vec<f64>,
}

/// How many events are due `elapsed` into a run at `rate`.
fn due(start: Instant, rate: f64) -> u64 {
    (start.elapsed().as_secs_f64() * rate) as u64
}

/// The old system: signed relay batches of [`BATCH`] events to the console's hook, at
/// `rate` events a second for `secs`, numbered from `first`. Every POST is timed.
async fn old_system_sends(
    http: &reqwest::Client,
    hook: &str,
    first: u64,
    rate: f64,
    secs: f64,
) -> Res<Sent> {
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut posts = tokio::task::JoinSet::new();
    let mut k = 0;
    loop {
        tick.tick().await;
        let done = start.elapsed().as_secs_f64() >= secs;
        let due = if done {
            (secs * rate) as u64
        } else {
            due(start, rate)
        };
        while due - k >= BATCH as u64 || (done && due > k) {
            let n = (due - k).min(BATCH as u64);
            let events: Vec<Value> = (k..k + n).map(|i| old_event(first + i)).collect();
            k += n;
            let body = serde_json::to_vec(&json!({ "events": events }))?;
            let t = OffsetDateTime::now_utc().unix_timestamp();
            let request = http
                .post(hook)
                .header("content-type", "application/json")
                .header(
                    "Imshift-Signature",
                    crate::providers::self_built::signature(INBOUND, t, &body),
                )
                .body(body);
            posts.spawn(async move {
                let t0 = Instant::now();
                let ok = matches!(request.send().await, Ok(r) if r.status().is_success());
                (t0.elapsed().as_secs_f64() * 1000.0, ok)
            });
        }
        if done {
            break;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let mut s = Sent {
        sent: k,
        errors: 0,
        secs,
        latencies_ms: vec![],
    };
    while let Some(r) = posts.join_next().await {
        let (ms, ok) = r?;
        s.latencies_ms.push(ms);
        s.errors += u64::from(!ok);
    }
    Ok(s)
}

fn old_event(k: u64) -> Value {
    let (c, _) = slot(k);
    let id = format!("bench-old-{k}");
    let at = now_ms();
    json!({"id": id, "type": "message.sent", "at": at, "origin": "bench",
           "data": {"id": id, "conv": "c2c", "from": format!("old_a{c}"),
                    "to": format!("old_b{c}"), "sent_at": at,
                    "body": {"type": "text", "text": text('o', k)}}})
}

/// The new app's users: one-to-one messages sent in the new system's sandbox (its callbacks
/// go to the console), at `rate` a second for `secs`, numbered from `first`.
async fn new_app_sends(
    target: Arc<dyn RunningSandbox>,
    first: u64,
    rate: f64,
    secs: f64,
) -> Res<Sent> {
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let (mut k, mut errors) = (0, 0);
    let total = (secs * rate) as u64;
    while k < total {
        tick.tick().await;
        let due = due(start, rate).min(total);
        while k < due {
            let (c, _) = slot(first + k);
            let (from, to) = (format!("new_a{c}"), format!("new_b{c}"));
            if target
                .user_message(&from, &to, false, &text('n', first + k))
                .await
                .is_err()
            {
                errors += 1;
            }
            k += 1;
        }
    }
    Ok(Sent {
        sent: k,
        errors,
        secs: start.elapsed().as_secs_f64(),
        latencies_ms: vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_twice_and_out_of_order_are_counted_per_direction() {
        let mut c = Check::default();
        let expected = ["o:1:0", "o:1:1", "o:2:0", "o:2:1"].map(String::from);
        // o:2:0 lost, o:1:1 twice, conversation 1 goes back; the other direction ignored.
        let arrived = ["o:1:0", "o:1:1", "n:1:0", "o:2:1", "o:1:1"].map(String::from);
        tally(&mut c, 'o', expected.into_iter(), arrived.into_iter());
        assert_eq!((c.lost, c.duplicated, c.convs_out_of_order), (1, 1, 1));
        assert_eq!(parse_text(&text('n', 405)), Some(('n', 5, 2)));
        // A canary in the same direction is neither expected nor lost.
        let mut c = Check::default();
        let expected = ["o:1:0", "imshift canary 1"].map(String::from);
        tally(
            &mut c,
            'o',
            expected.into_iter(),
            ["o:1:0".to_string()].into_iter(),
        );
        assert_eq!(c.lost, 0);
    }
}
