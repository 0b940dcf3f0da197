//! `imshift bench import`: a long import against the target provider's sandbox (the
//! registry's first provider that takes imports and has one) running in its own process with
//! the quota set, through the console's real path (staged dump → launch → jobs → pacer →
//! HTTP). Reports the achieved request rate as a share of the quota, the sandbox's throttle
//! answers, and this process's CPU use.

use crate::auth::Actor;
use crate::dumps::fixtures::{self, Spec};
use crate::model::{
    ConnectionInput, MigrationId, MigrationInput, Role, RunId, Side, Strategy, UploadId,
};
use crate::secrets::MasterKey;
use crate::web::{self, Config};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};
use uuid::Uuid;

pub struct Figures {
    /// The API measured: the target's one-to-one history API.
    pub api: String,
    pub qps: u32,
    pub seconds: f64,
    pub requests: i64,
    pub rate: f64,
    pub throttled: u64,
    /// CPU seconds of this process (the console and its workers) per wall-clock second.
    pub cpu: f64,
    pub records_sent: i64,
}

/// CPU seconds this process has used (shared by the benchmarks).
pub(crate) fn cpu_secs() -> f64 {
    // utime and stime of /proc/self/stat, in clock ticks (100 a second on Linux).
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0)
}

/// Writes the dump `spec` describes as a received upload of migration `m` and queues its
/// ingest, as an upload through the console would end.
async fn queue_dump(
    state: &web::AppState,
    m: MigrationId,
    spec: &Spec,
    name: &str,
) -> Result<UploadId, Box<dyn std::error::Error>> {
    let upload = UploadId::new_v4();
    let path = state.uploads_dir().join(format!("{upload}.part"));
    {
        let mut out = BufWriter::new(std::fs::File::create(&path)?);
        fixtures::generate(spec, &mut out)?;
        out.flush()?;
    }
    let size = std::fs::metadata(&path)?.len() as i64;
    sqlx::query(
        "INSERT INTO dump_uploads (id, migration_id, file_name, size_bytes, received_bytes, state)
         VALUES ($1, $2, $3, $4, $4, 'queued')",
    )
    .bind(upload)
    .bind(m)
    .bind(name)
    .bind(size)
    .execute(&state.pool)
    .await?;
    crate::jobs::enqueue(
        &state.pool,
        &crate::jobs::NewJob {
            kind: crate::dumps::jobs::INGEST,
            migration_id: Some(m),
            node: Some(state.node.clone()),
            payload: json!({ "upload_id": upload }),
            ..Default::default()
        },
    )
    .await?;
    Ok(upload)
}

async fn sandbox_state(base: &str) -> Value {
    match reqwest::get(format!("{base}/_sandbox/state")).await {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

pub async fn run(
    pool: PgPool,
    minutes: f64,
    qps: u32,
    dir: &Path,
) -> Result<Figures, Box<dyn std::error::Error>> {
    // The sandbox in its own process, so the CPU figure is the console's alone.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let registry = crate::providers::Registry::builtin();
    let target = bench_target(&registry)?;
    let launch = target
        .sandbox()
        .and_then(|sb| sb.standalone(([127, 0, 0, 1], port).into(), qps))
        .ok_or("the target's sandbox cannot run as a process of its own")?;
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command
        .args(["sandbox", target.id()])
        .args(&launch.args)
        .env("IMSHIFT_LOG", "warn");
    for (name, value) in &launch.env {
        command.env(name, value.expose_secret());
    }
    let mut sandbox = command.spawn()?;
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if reqwest::get(format!("{base}/_sandbox/state")).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let result = async {
        let mut config = Config::for_url("http://127.0.0.1:0");
        config.data_dir = dir.to_path_buf();
        std::fs::create_dir_all(dir.join("uploads"))?;
        let leptos = leptos::config::LeptosOptions::builder()
            .output_name("imshift")
            .site_root("target/site")
            .site_pkg_dir("pkg")
            .build();
        let (_, state) =
            web::build_with_state(pool.clone(), config, leptos, MasterKey::generate()).await?;
        let workers = web::workers::start(&state).await?;
        let (actor, m) =
            admin_and_migration(&state, "bench import", Strategy::ForcedUpgrade).await?;
        connect(
            &state,
            &actor,
            m.id,
            Side::Target,
            &launch.public,
            &launch.secrets,
        )
        .await?;
        // Enough one-to-one history to keep its API at its quota for the whole run.
        let messages = (qps as f64 * minutes * 60.0 * 1.1) as u64;
        let spec = Spec {
            accounts: 2000,
            friends: 6,
            groups: 20,
            members: 10,
            messages,
            group_share: 0.0,
            ..Spec::default()
        };
        queue_dump(&state, m.id, &spec, "bench.jsonl").await?;
        let pre = loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let p = crate::import::preflight(&state, &actor, m.id).await?;
            if p.blockers.is_empty() {
                break p;
            }
        };
        // The API the target takes one-to-one history through, at the quota measured.
        let api = pre
            .phases
            .iter()
            .find(|p| p.phase == "c2c_history" && !p.api.is_empty())
            .map(|p| p.api.clone())
            .ok_or("the target takes no one-to-one history")?;
        set_quotas(&state, &actor, m.id, [(api.clone(), qps)]).await?;
        let run = crate::import::launch(&state, &actor, m.id).await?;
        // Measure the one-to-one API once it runs: requests sent between two looks.
        let requests = |pool: PgPool, run: RunId| async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT requests FROM import_phases WHERE run_id = $1 AND phase = 'c2c_history'",
            )
            .bind(run)
            .fetch_one(&pool)
            .await
        };
        while requests(pool.clone(), run.id).await? == 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Let the first second settle, then measure the steady state.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (r0, t0, c0) = (
            requests(pool.clone(), run.id).await?,
            Instant::now(),
            cpu_secs(),
        );
        let before = sandbox_state(&base).await;
        tokio::time::sleep(Duration::from_secs_f64(minutes * 60.0)).await;
        let (r1, secs, c1) = (
            requests(pool.clone(), run.id).await?,
            t0.elapsed().as_secs_f64(),
            cpu_secs(),
        );
        let after = sandbox_state(&base).await;
        let throttles = |s: &Value| {
            target
                .sandbox()
                .and_then(|sb| sb.throttled_in(s))
                .unwrap_or(0)
        };
        let status = crate::import::status(&state, &actor, m.id, run.id).await?;
        crate::import::cancel(&state, &actor, m.id, run.id).await?;
        if let Some(w) = workers {
            w.shutdown().await;
        }
        Ok::<_, Box<dyn std::error::Error>>(Figures {
            api,
            qps,
            seconds: secs,
            requests: r1 - r0,
            rate: (r1 - r0) as f64 / secs,
            throttled: throttles(&after).saturating_sub(throttles(&before)),
            cpu: (c1 - c0) / secs,
            records_sent: status.sent,
        })
    }
    .await;
    let _ = sandbox.kill();
    let _ = sandbox.wait();
    result
}

/// The mixed migration of issue 11: 1,911 accounts, 5,477 friend edges, 87 groups with 6,627
/// members, 27,339 one-to-one and 16,264 group messages (the generator's nearest shape).
pub fn mixed_spec() -> Spec {
    Spec {
        accounts: 1911,
        // Mutual: about three friend records an account.
        friends: 3,
        groups: 87,
        members: 76,
        messages: 27_339 + 16_264,
        group_share: 16_264.0 / (27_339.0 + 16_264.0),
        seed: 11,
        ..Spec::default()
    }
}

/// An error with its causes (the console's internal errors say only "internal error").
fn chain(e: crate::service::AppError) -> String {
    let mut s = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        s.push_str(&format!(": {c}"));
        cause = c.source();
    }
    s
}

fn load_average() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut f = s.split_whitespace().map(|x| x.parse().unwrap_or(0.0));
    (f.next().unwrap_or(0.0), f.next().unwrap_or(0.0))
}

/// One phase of a whole migration, as measured.
pub struct PhaseFigures {
    pub phase: String,
    pub api: String,
    pub records: i64,
    pub requests: i64,
    pub throttled: i64,
    pub qps: f64,
    /// What its quota alone needs (the preflight's figure).
    pub bound_secs: f64,
    /// Seconds after launch it started and ended.
    pub start: f64,
    pub end: f64,
}

pub struct MixedFigures {
    /// The machine's load average over the last minute and five, at the end (other work on
    /// the machine slows the console down: the figure says how busy it was).
    pub load: (f64, f64),
    pub seconds: f64,
    /// The longest chain of phases, each at its API's quota (the preflight's estimate).
    pub bound: f64,
    pub phases: Vec<PhaseFigures>,
    pub sent: i64,
    pub failed: i64,
    /// Over-quota answers of the sandbox over the whole run.
    pub throttles: u64,
    pub workers: usize,
    /// At a share of the run (0.1 = a tenth in), how far elapsed + the time left it said then
    /// was from its real length, in %.
    pub time_left: Vec<(f64, f64)>,
}

/// `imshift bench import --mixed`: the whole mixed migration into the target provider's
/// sandbox in this process, whose quotas are the provider's documented ones times `scale`
/// (imshift is told the same), from launch to done; its time against the quota bound.
pub async fn run_mixed(
    pool: PgPool,
    scale: f64,
    workers: usize,
    dir: &Path,
) -> Result<MixedFigures, Box<dyn std::error::Error>> {
    let registry = crate::providers::Registry::builtin();
    let target = bench_target(&registry)?;
    let limits = target.limits().scaled(scale);
    let apis: Vec<&'static str> = limits.apis.keys().copied().collect();
    let started = target
        .sandbox()
        .ok_or("the target has no sandbox")?
        .start(
            None,
            crate::providers::StartOptions {
                limits: Some(limits.clone()),
                ..Default::default()
            },
        )
        .await?;
    let sb = started.sandbox;
    crate::providers::outbound::register_sandbox(sb.addr());
    let mut config = Config::for_url("http://127.0.0.1:0");
    config.data_dir = dir.to_path_buf();
    config.workers = workers;
    std::fs::create_dir_all(dir.join("uploads"))?;
    let leptos = leptos::config::LeptosOptions::builder()
        .output_name("imshift")
        .site_root("target/site")
        .site_pkg_dir("pkg")
        .build();
    let (_, state) =
        web::build_with_state(pool.clone(), config, leptos, MasterKey::generate()).await?;
    let running = web::workers::start(&state).await?;
    let (actor, m) = admin_and_migration(&state, "bench mixed", Strategy::ForcedUpgrade).await?;
    connect(
        &state,
        &actor,
        m.id,
        Side::Target,
        &started.public,
        &started.secrets,
    )
    .await?;
    // imshift is told the quotas the sandbox enforces.
    let quotas = apis
        .iter()
        .map(|a| (a.to_string(), limits.qps(a).unwrap_or(1)));
    set_quotas(&state, &actor, m.id, quotas).await?;
    queue_dump(&state, m.id, &mixed_spec(), "mixed.jsonl").await?;
    // The preflight may fail while the ingest and validation still hold the upload.
    let staged = Instant::now();
    let pre = loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        match crate::import::preflight(&state, &actor, m.id).await {
            Ok(p) if p.blockers.is_empty() => break p,
            Ok(p) if staged.elapsed() > Duration::from_secs(300) => {
                return Err(format!("not ready after 5 minutes: {}", p.blockers.join(" ")).into())
            }
            Err(e) if staged.elapsed() > Duration::from_secs(300) => return Err(chain(e).into()),
            _ => {}
        }
    };
    let t0 = Instant::now();
    let run = crate::import::launch(&state, &actor, m.id)
        .await
        .map_err(chain)?;
    // Watched through its state ten times a second; the full status (what the Import tab shows,
    // with its time left) every five seconds only, as it reads every result of the run and
    // would slow the run it measures.
    let mut said = vec![];
    let mut asked = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let run_state: String = sqlx::query_scalar("SELECT state FROM import_runs WHERE id = $1")
            .bind(run.id)
            .fetch_one(&pool)
            .await?;
        if !crate::import::decode::<crate::model::RunState>(&run_state)?.live() {
            break;
        }
        if asked.elapsed() >= Duration::from_secs(5) {
            asked = Instant::now();
            let s = crate::import::status(&state, &actor, m.id, run.id)
                .await
                .map_err(chain)?;
            said.push((t0.elapsed().as_secs_f64(), s.secs_left));
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    // What the run said of its end (elapsed + time left) at each share of it, against the end.
    let time_left = [0.1, 0.25, 0.5, 0.75, 0.9]
        .into_iter()
        .filter_map(|share| {
            let (at, left) = said.iter().find(|(at, _)| *at >= share * seconds)?;
            Some((share, (at + left - seconds) / seconds * 100.0))
        })
        .collect();
    let load = load_average();
    let status = crate::import::status(&state, &actor, m.id, run.id)
        .await
        .map_err(chain)?;
    // Phase times from the database clock, relative to the run's creation.
    #[allow(clippy::type_complexity)]
    let rows: Vec<(String, Option<String>, i64, i64, Option<f64>, Option<f64>)> = sqlx::query_as(
        "SELECT p.phase, p.api, p.requests, p.throttled,
                extract(epoch FROM p.started_at - r.created_at)::float8,
                extract(epoch FROM p.finished_at - r.created_at)::float8
         FROM import_phases p JOIN import_runs r ON r.id = p.run_id
         WHERE p.run_id = $1 ORDER BY p.position",
    )
    .bind(run.id)
    .fetch_all(&pool)
    .await?;
    let phases = rows
        .into_iter()
        .filter_map(|(phase, api, requests, throttled, start, end)| {
            let plan = pre.phases.iter().find(|p| p.phase == phase)?;
            api.as_ref()?;
            Some(PhaseFigures {
                phase,
                api: api.unwrap_or_default(),
                records: plan.records,
                requests,
                throttled,
                qps: plan.qps,
                bound_secs: plan.secs,
                start: start.unwrap_or(0.0),
                end: end.unwrap_or(0.0),
            })
        })
        .collect();
    let throttles = sb.throttled().unwrap_or(0);
    if status.state != crate::model::RunState::Done {
        return Err(format!("the run ended {}: {:?}", status.state, status.error).into());
    }
    if let Some(w) = running {
        w.shutdown().await;
    }
    drop(sb);
    Ok(MixedFigures {
        load,
        seconds,
        bound: pre.estimate_secs,
        phases,
        sent: status.sent,
        failed: status.failed,
        throttles,
        workers,
        time_left,
    })
}

/// The provider the benchmarks import into: the registry's first that takes imports and has
/// a sandbox.
pub(crate) fn bench_target(
    registry: &crate::providers::Registry,
) -> Result<std::sync::Arc<dyn crate::providers::Provider>, Box<dyn std::error::Error>> {
    registry
        .all()
        .find(|p| p.can_be(Side::Target) && p.capabilities().import && p.sandbox().is_some())
        .cloned()
        .ok_or_else(|| "no provider of this build takes imports and has a sandbox".into())
}

/// Stores a side's connection from a sandbox's answer: its public fields and its secrets.
pub(crate) async fn connect(
    state: &crate::service::Services,
    actor: &Actor,
    id: MigrationId,
    side: Side,
    public: &serde_json::Map<String, Value>,
    secrets: &[(String, secrecy::SecretString)],
) -> Result<(), Box<dyn std::error::Error>> {
    let mut fields: std::collections::BTreeMap<String, Value> =
        public.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for (field, value) in secrets {
        fields.insert(field.clone(), value.expose_secret().into());
    }
    crate::migration::connections::set(state, actor, id, side, &ConnectionInput { fields }).await?;
    Ok(())
}

/// A bench admin and a new self-built → target migration of `strategy` (shared by the
/// benchmarks).
pub(crate) async fn admin_and_migration(
    state: &crate::service::Services,
    name: &str,
    strategy: Strategy,
) -> Result<(Actor, crate::model::Migration), Box<dyn std::error::Error>> {
    let email = format!("bench-{}@example.com", &Uuid::new_v4().to_string()[..8]);
    let user = crate::auth::users::create_from_cli(
        &state.pool,
        &email,
        Role::Admin,
        "bench password 1234",
    )
    .await?;
    let actor = Actor {
        user_id: user.id,
        email,
        role: Role::Admin,
        token_id: None,
        ip: None,
    };
    let m = crate::migration::create(
        &state.pool,
        &state.config.providers,
        &actor,
        &MigrationInput {
            name: format!("{name} {}", Uuid::new_v4()),
            strategy,
            source: "self_built".into(),
            target: bench_target(&state.config.providers)?.id().into(),
            notes: String::new(),
        },
    )
    .await?;
    Ok((actor, m))
}

/// Sets the migration's quota (requests a second) of each API, as a benchmark tells imshift
/// what its sandbox enforces.
pub(crate) async fn set_quotas(
    state: &crate::service::Services,
    actor: &Actor,
    id: MigrationId,
    quotas: impl IntoIterator<Item = (String, u32)>,
) -> crate::service::AppResult<()> {
    let overrides = quotas
        .into_iter()
        .map(|(api, qps)| {
            let o = crate::model::LimitOverride {
                qps: Some(qps),
                batch: None,
            };
            (api, o)
        })
        .collect();
    crate::migration::limits::set(state, actor, id, overrides).await?;
    Ok(())
}
