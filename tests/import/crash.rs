//! Console processes from the built binary doing the import, killed for real (SIGKILL) in the
//! middle and started again; and two of them sharing one database and one quota.

use crate::common::*;
use crate::expect::sandbox_holds_exactly;
use crate::harness::*;
use imshift::dumps::fixtures::Spec;
use sqlx::PgPool;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MASTER: [u8; 32] = [7; 32];

/// This test's database, for the child processes.
async fn database_url(pool: &PgPool) -> String {
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    let base = std::env::var("DATABASE_URL").unwrap();
    let base = base.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap();
    format!("{base}/{name}")
}

/// A console process with workers and nothing else to do: no port anyone uses, a short
/// lease so a killed one's work is taken back within seconds.
fn console(db: &str, data_dir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_imshift"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "8",
            "--job-lease-secs",
            "3",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .env("DATABASE_URL", db)
        .env("IMSHIFT_MASTER_KEY", hex::encode(MASTER))
        .env("IMSHIFT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the imshift binary starts")
}

async fn results(pool: &PgPool, phase: Option<&str>) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM import_results WHERE $1::text IS NULL OR phase = $1")
        .bind(phase)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn until(pool: &PgPool, phase: Option<&str>, n: i64, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while results(pool, phase).await < n {
        assert!(
            Instant::now() < deadline,
            "fewer than {n} results in {phase:?} after {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn kill(c: &mut Child) {
    c.kill().unwrap();
    c.wait().unwrap();
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn killing_the_worker_process_mid_run_loses_and_repeats_nothing(pool: PgPool) {
    // The console in this test serves the API only; the work happens in child processes.
    let app = TestApp::spawn_keyed(
        pool,
        |c| c.workers = 0,
        imshift::secrets::MasterKey::from_bytes(MASTER),
    )
    .await;
    let data_dir = app.data_dir.clone();
    let db = database_url(&app.pool).await;
    let sb = sandbox(|_| {}).await;
    let m = migration(&app, &sb, 1000).await;
    let spec = Spec {
        accounts: 400,
        friends: 4,
        groups: 16,
        members: 12,
        messages: 4000,
        seed: 5,
        ..Spec::default()
    };
    let bytes = dump(&spec);
    let mut child = console(&db, &data_dir);
    stage(&app, &m, bytes.clone()).await;
    let run = launch(&app, &m).await;

    // Killed in accounts, in one-to-one history and in group history; restarted each time.
    for (phase, n) in [
        (Some("accounts"), 1),
        (Some("c2c_history"), 800),
        (Some("group_history"), 200),
        (None, 6000),
    ] {
        until(&app.pool, phase, n, 300).await;
        kill(&mut child);
        let now = get(&app, &m, &format!("/imports/{run}")).await;
        assert_eq!(
            now["state"], "running",
            "killed in the middle of the run, not after it"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        child = console(&db, &data_dir);
    }
    let done = wait_for(&app, &m, &run, &["done"], 600).await;
    kill(&mut child);
    assert_eq!(done["failed"], 0, "{done:#}");
    assert_eq!(done["pending"], 0);
    sandbox_holds_exactly(&bytes, &sb.export());
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn two_processes_share_the_work_and_the_quota(pool: PgPool) {
    let app = TestApp::spawn_keyed(
        pool,
        |c| c.workers = 0,
        imshift::secrets::MasterKey::from_bytes(MASTER),
    )
    .await;
    let data_dir = app.data_dir.clone();
    let db = database_url(&app.pool).await;
    // The sandbox allows exactly the quota imshift is given: going over it shows as 60007.
    let qps = 150;
    let sb =
        sandbox(|c| c.limits = imshift::providers::tencent::Limits::default().with_all_qps(qps))
            .await;
    let m = migration(&app, &sb, qps).await;
    let spec = Spec {
        accounts: 200,
        friends: 4,
        groups: 8,
        members: 10,
        messages: 2400,
        seed: 9,
        ..Spec::default()
    };
    let bytes = dump(&spec);
    let mut a = console(&db, &data_dir);
    let mut b = console(&db, &data_dir);
    stage(&app, &m, bytes.clone()).await;
    let run = launch(&app, &m).await;
    let done = wait_for(&app, &m, &run, &["done"], 600).await;
    kill(&mut a);
    kill(&mut b);
    // Both took part, and no task ran twice to the end.
    let owners: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT split_part(ran_by, ':', 2)) FROM jobs WHERE kind = 'import.task'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(owners, 2, "both processes ran import tasks");
    assert_eq!(done["failed"], 0, "{done:#}");
    sandbox_holds_exactly(&bytes, &sb.export());
    // The quota held in total: the sandbox never had to say "too fast", and the busiest
    // phase ran at the quota, not twice it.
    let state = sb.state();
    for (api, s) in state["apis"].as_object().unwrap() {
        assert!(
            s["codes"].get("60007").is_none(),
            "{api} was throttled: {s}"
        );
    }
    let c2c = done["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == "c2c_history")
        .unwrap();
    let rate = c2c["rate"].as_f64().unwrap();
    assert!(
        rate <= qps as f64 * 1.05,
        "achieved {rate}/s against a quota of {qps}/s"
    );
    assert!(
        rate >= qps as f64 * 0.5,
        "two processes kept the quota busy: {rate}/s"
    );
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_console_killed_after_netease_made_a_team_finds_it_instead_of_making_another(
    pool: PgPool,
) {
    use crate::netease as ne;
    let app = TestApp::spawn_keyed(
        pool,
        |c| c.workers = 0,
        imshift::secrets::MasterKey::from_bytes(MASTER),
    )
    .await;
    let data_dir = app.data_dir.clone();
    let db = database_url(&app.pool).await;
    // NetEase makes each team at once and answers two seconds later: the console is killed in
    // between, when the team exists and imshift has not written its id down.
    let sb = ne::netease(|c| {
        c.slow_answers.insert("team/create".into(), 2000);
    })
    .await;
    let m = ne::migration(&app, &sb).await;
    let bytes = dump(&ne::spec());
    let mut child = console(&db, &data_dir);
    stage(&app, &m, bytes.clone()).await;
    let run = launch(&app, &m).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while sb.state()["teams"].as_u64().unwrap() == 0 {
        assert!(Instant::now() < deadline, "no team was made");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill(&mut child);
    // What the dead console had sent is applied by now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let made = sb.state()["teams"].as_u64().unwrap();
    assert_eq!(
        results(&app.pool, Some("groups")).await,
        0,
        "killed before any team was recorded"
    );
    child = console(&db, &data_dir);
    let done = wait_for(&app, &m, &run, &["done"], 600).await;
    kill(&mut child);
    assert_eq!(done["failed"], 0, "{done:#}");
    ne::netease_holds_exactly(&app, &m, &sb, &ne::expected(&bytes)).await;
    let found: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM import_results WHERE phase = 'groups' AND sent->>'note' LIKE '%answer was lost%'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        found as u64, made,
        "every team made before the kill was found again"
    );
}
