//! Import runs in the in-process workers: a full import, pause and resume, faults, retries.

use crate::common::*;
use crate::expect::sandbox_holds_exactly;
use crate::harness::*;
use imshift::dumps::fixtures::Spec;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_full_import_lands_exactly_the_dump(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let sb = sandbox(|_| {}).await;
    let m = migration(&app, &sb, 3000).await;
    let spec = small_spec();
    let bytes = dump(&spec);
    stage(&app, &m, bytes.clone()).await;

    let pre = get(&app, &m, "/imports/preflight").await;
    assert_eq!(pre["blockers"], serde_json::json!([]), "{pre:#}");
    assert!(pre["records"].as_i64().unwrap() > 20_000, "{pre:#}");
    assert!(pre["estimate_secs"].as_f64().unwrap() > 0.0);
    let c2c = pre["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == "c2c_history")
        .unwrap();
    assert_eq!(c2c["api"], "openim/importmsg");
    assert!(pre["phases"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["phase"] == "conversations" && p["note"].is_string()));

    let run = launch(&app, &m).await;
    // One run at a time.
    let again = post(&app, &m, "/imports").await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let done = wait_for(&app, &m, &run, &["done"], 600).await;
    assert_eq!(done["failed"], 0, "{done:#}");
    assert_eq!(done["pending"], 0);
    for p in done["phases"].as_array().unwrap() {
        assert!(p["state"] == "done" || p["state"] == "skipped", "{p:#}");
    }
    let skipped: i64 = done["phases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["state"] == "skipped")
        .map(|p| p["skipped"].as_i64().unwrap())
        .sum();
    assert!(
        skipped > 0,
        "conversations and group events are recorded as skipped"
    );
    sandbox_holds_exactly(&bytes, &sb.export());

    // Each record's result says what was sent.
    let (seq, random): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT (sent->>'MsgSeq')::bigint, (sent->>'MsgRandom')::bigint FROM import_results
         WHERE phase = 'c2c_history' AND state = 'sent' LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(seq.is_some() && random.is_some());
    let actions = app.audit_actions().await;
    assert!(actions.contains(&"import.launched".to_string()));
    assert!(actions.contains(&"import.finished".to_string()));
    let mig = get(&app, &m, "").await;
    assert_eq!(mig["state"], "done");
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn pause_stops_sending_and_resume_finishes_without_duplicates(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let sb = sandbox(|_| {}).await;
    // Slow enough to catch it in the middle.
    let m = migration(&app, &sb, 200).await;
    let spec = Spec {
        accounts: 300,
        friends: 4,
        groups: 10,
        members: 10,
        messages: 3000,
        ..Spec::default()
    };
    let bytes = dump(&spec);
    stage(&app, &m, bytes.clone()).await;
    let run = launch(&app, &m).await;
    // Wait until history is moving, then pause.
    loop {
        let r = get(&app, &m, &format!("/imports/{run}")).await;
        let c2c = r["phases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["phase"] == "c2c_history")
            .unwrap()
            .clone();
        if c2c["sent"].as_i64().unwrap() > 100 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let r = post(&app, &m, &format!("/imports/{run}/pause")).await;
    assert_eq!(r.status(), StatusCode::OK);
    // Within a couple of seconds nothing more arrives.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let before = sb.state()["c2c_messages"].as_u64().unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        sb.state()["c2c_messages"].as_u64().unwrap(),
        before,
        "paused means no sends"
    );
    let paused = get(&app, &m, &format!("/imports/{run}")).await;
    assert_eq!(paused["state"], "paused");
    assert!(paused["pending"].as_i64().unwrap() > 0);
    // What the run takes stays as it was while it lasts.
    let r = app
        .anon()
        .post(format!(
            "{}{}",
            app.base,
            m.path("/dumps?file_name=more.jsonl")
        ))
        .bearer_auth(&m.token)
        .body(r#"{"kind":"account","id":"late"}"#.to_string() + "\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("import of this migration is paused"),
        "{v}"
    );
    let r = post(&app, &m, &format!("/imports/{run}/resume")).await;
    assert_eq!(r.status(), StatusCode::OK);
    wait_for(&app, &m, &run, &["done"], 300).await;
    sandbox_holds_exactly(&bytes, &sb.export());
    let actions = app.audit_actions().await;
    assert!(actions.contains(&"import.paused".to_string()));
    assert!(actions.contains(&"import.resumed".to_string()));
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn faults_throttles_and_latency_lose_nothing_and_duplicate_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    // The sandbox fails 15 % of requests, answers slowly, and allows less than imshift is
    // told it may send, so it throttles too.
    let sb = sandbox(|c| {
        c.fault_rate = 0.15;
        c.seed = 11;
        c.latency_ms = 5;
        c.limits = imshift::providers::tencent::Limits::default().with_all_qps(150);
    })
    .await;
    let m = migration(&app, &sb, 400).await;
    let spec = Spec {
        accounts: 300,
        friends: 4,
        groups: 12,
        members: 10,
        messages: 2500,
        seed: 3,
        ..Spec::default()
    };
    let bytes = dump(&spec);
    stage(&app, &m, bytes.clone()).await;
    let run = launch(&app, &m).await;
    let done = wait_for(&app, &m, &run, &["done"], 600).await;
    assert_eq!(done["failed"], 0, "{done:#}");
    let throttled: i64 = done["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["throttled"].as_i64().unwrap())
        .sum();
    assert!(
        throttled > 0,
        "the sandbox throttled and imshift slowed down: {done:#}"
    );
    let state = sb.state();
    let faults: u64 = state["apis"]
        .as_object()
        .unwrap()
        .values()
        .map(|a| {
            a["codes"].as_object().map_or(0, |c| {
                c.iter()
                    .filter(|(k, _)| *k != "60007")
                    .map(|(_, v)| v.as_u64().unwrap())
                    .sum()
            })
        })
        .sum();
    assert!(faults > 0, "faults were injected: {state:#}");
    sandbox_holds_exactly(&bytes, &sb.export());
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn refused_records_are_explained_and_can_be_retried(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let sb = sandbox(|_| {}).await;
    let m = migration(&app, &sb, 3000).await;
    // A group whose name Tencent refuses (over 30 bytes) and whose history cannot follow.
    let long = "a very long group name that Tencent IM refuses";
    let text = format!(
        "{}\n{}\n{}\n{}\n",
        r#"{"kind":"account","id":"u1"}"#,
        r#"{"kind":"account","id":"u2"}"#,
        format_args!(
            r#"{{"kind":"group","id":"g1","name":"{long}","owner":"u1","created_at":1600000000000}}"#
        ),
        r#"{"kind":"message","id":"m1","conv":"group","from":"u1","to":"g1","sent_at":1600000100000,"body":{"type":"text","text":"hi"}}"#,
    );
    stage(&app, &m, text.into_bytes()).await;
    let run = launch(&app, &m).await;
    let done = wait_for(&app, &m, &run, &["done"], 120).await;
    assert_eq!(done["sent"], 2, "{done:#}");
    assert_eq!(done["failed"], 2);
    let f = get(&app, &m, &format!("/imports/{run}/failures")).await;
    let list = f["failures"].as_array().unwrap();
    let group = list.iter().find(|x| x["phase"] == "groups").unwrap();
    assert!(
        group["message"]
            .as_str()
            .unwrap()
            .contains("Tencent takes 1 to 30"),
        "{group:#}"
    );
    assert_eq!(
        (group["file"].as_str(), group["line"].as_i64()),
        (Some("dump.jsonl"), Some(3))
    );
    assert!(group["record"].as_str().unwrap().contains(long));
    let msg = list.iter().find(|x| x["phase"] == "group_history").unwrap();
    assert!(
        msg["message"]
            .as_str()
            .unwrap()
            .contains("was not imported"),
        "{msg:#}"
    );
    let only = get(&app, &m, &format!("/imports/{run}/failures?phase=groups")).await;
    assert_eq!(only["failures"].as_array().unwrap().len(), 1);
    let csv = app
        .with_token(
            reqwest::Method::GET,
            &m.path(&format!("/imports/{run}/failures.csv")),
            &m.token,
            None,
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("phase,file,line,code,message,attempts,record\n"));
    assert_eq!(csv.lines().count(), 3);

    // Retrying sends them again (and they fail again, the same way, counted once each).
    let r = post(&app, &m, &format!("/imports/{run}/retry?phase=groups")).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let done = wait_for(&app, &m, &run, &["done"], 120).await;
    assert_eq!(done["failed"], 2, "{done:#}");
    let attempts: i32 =
        sqlx::query_scalar("SELECT attempts FROM import_results WHERE phase = 'groups'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    // `attempts` counts the requests that carried a record: this one is refused by imshift's
    // own check of Tencent's rules, before any request, however often it is retried.
    assert_eq!(attempts, 0);
    let none = post(&app, &m, &format!("/imports/{run}/retry?phase=accounts")).await;
    assert_eq!(none.status(), StatusCode::CONFLICT);
    let v: Value = none.json().await.unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no failed records"));
}

/// The phases of a run and their times, from the status.
fn phase<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == name)
        .unwrap_or_else(|| panic!("no phase {name} in {run:#}"))
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn the_target_counts_the_requests_the_preflight_promised(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let sb = sandbox(|_| {}).await;
    let m = migration(&app, &sb, 3000).await;
    let bytes = dump(&small_spec());
    stage(&app, &m, bytes.clone()).await;
    let pre = get(&app, &m, "/imports/preflight").await;
    let run = launch(&app, &m).await;
    wait_for(&app, &m, &run, &["done"], 600).await;
    sandbox_holds_exactly(&bytes, &sb.export());
    let apis = sb.state()["apis"].clone();
    for p in pre["phases"].as_array().unwrap() {
        let api = p["api"].as_str().unwrap();
        if api.is_empty() {
            continue;
        }
        let promised = p["requests"].as_f64().unwrap();
        let counted = apis[api]["calls"].as_f64().unwrap_or(0.0);
        assert!(
            (counted - promised).abs() <= (promised * 0.02).max(1.0),
            "{}: the preflight promised {promised} requests to {api}, the target counted {counted}",
            p["phase"]
        );
    }
    // Accounts go a hundred to a request, not one.
    let accounts = pre["phases"][0]["records"].as_f64().unwrap();
    let calls = apis["im_open_login_svc/multiaccount_import"]["calls"]
        .as_f64()
        .unwrap();
    assert!(
        calls <= (accounts / 100.0).ceil() + 1.0,
        "{calls} requests for {accounts} accounts"
    );
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn independent_phases_run_side_by_side(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let sb = sandbox(|_| {}).await;
    // Slow enough that one-to-one history takes several seconds on its own.
    let m = migration(&app, &sb, 300).await;
    let spec = Spec {
        accounts: 100,
        friends: 2,
        groups: 20,
        members: 10,
        messages: 3000,
        ..Spec::default()
    };
    stage(&app, &m, dump(&spec)).await;
    let run = launch(&app, &m).await;
    wait_for(&app, &m, &run, &["done"], 600).await;
    let times: Vec<(String, f64, f64)> = sqlx::query_as(
        "SELECT phase, extract(epoch FROM started_at)::float8, extract(epoch FROM finished_at)::float8
         FROM import_phases WHERE run_id = $1::uuid AND started_at IS NOT NULL",
    )
    .bind(&run)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let at = |name: &str| times.iter().find(|t| t.0 == name).cloned().unwrap();
    let c2c = at("c2c_history");
    let members = at("members");
    // The group branch does not wait for one-to-one history to drain.
    assert!(
        members.2 < c2c.2,
        "members finished at {} but one-to-one history only at {}: {times:?}",
        members.2,
        c2c.2
    );
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn cancel_ends_every_phase_and_frees_the_migration(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let sb = sandbox(|_| {}).await;
    let m = migration(&app, &sb, 100).await;
    let spec = Spec {
        accounts: 200,
        messages: 3000,
        ..Spec::default()
    };
    stage(&app, &m, dump(&spec)).await;
    let run = launch(&app, &m).await;
    assert_eq!(get(&app, &m, "").await["state"], "importing");
    loop {
        let r = get(&app, &m, &format!("/imports/{run}")).await;
        if phase(&r, "c2c_history")["sent"].as_i64().unwrap() > 50 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let r = post(&app, &m, &format!("/imports/{run}/cancel")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = get(&app, &m, &format!("/imports/{run}")).await;
    assert_eq!(r["state"], "cancelled");
    for p in r["phases"].as_array().unwrap() {
        assert!(
            !["running", "waiting"].contains(&p["state"].as_str().unwrap()),
            "a cancelled run leaves no phase going: {p:#}"
        );
        assert_eq!(p["secs_left"], 0.0, "{p:#}");
    }
    assert_eq!(get(&app, &m, "").await["state"], "ready");
    // The migration is free: a new run starts.
    let again = launch(&app, &m).await;
    assert_ne!(again, run);
    post(&app, &m, &format!("/imports/{again}/cancel")).await;
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_run_whose_records_vanish_fails_instead_of_ending_done(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let sb = sandbox(|_| {}).await;
    let m = migration(&app, &sb, 100).await;
    let spec = Spec {
        accounts: 50,
        messages: 2000,
        ..Spec::default()
    };
    stage(&app, &m, dump(&spec)).await;
    let run = launch(&app, &m).await;
    post(&app, &m, &format!("/imports/{run}/pause")).await;
    assert_eq!(get(&app, &m, "").await["state"], "paused");
    // Whatever path takes staged rows away under a paused run (the console refuses every one
    // it knows), the run must not end `done` with records pending.
    sqlx::query("DELETE FROM staged_messages")
        .execute(&app.pool)
        .await
        .unwrap();
    let r = post(&app, &m, &format!("/imports/{run}/resume")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let end = wait_for(&app, &m, &run, &["done", "failed"], 300).await;
    assert_eq!(end["state"], "failed", "{end:#}");
    assert!(
        end["error"].as_str().unwrap().contains("no longer staged"),
        "{end:#}"
    );
    assert_eq!(get(&app, &m, "").await["state"], "ready");
    assert!(app
        .audit_actions()
        .await
        .contains(&"import.failed".to_string()));
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn records_that_need_what_was_not_imported_fail_here_not_at_the_target(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let sb = sandbox(|_| {}).await;
    let m = migration(&app, &sb, 3000).await;
    let t = 1_700_000_000_000i64;
    let lines = [
        r#"{"kind":"account","id":"u1"}"#.to_string(),
        r#"{"kind":"account","id":"u2"}"#.to_string(),
        // Tencent cannot import a broadcast group (AVChatRoom).
        r#"{"kind":"group","id":"gb","type":"broadcast","name":"Live","owner":"u1"}"#.to_string(),
        r#"{"kind":"group","id":"gp","type":"private","name":"Team","owner":"u1"}"#.to_string(),
        format!(
            r#"{{"kind":"member","group":"gb","account":"u2","role":"member","joined_at":{t}}}"#
        ),
        format!(
            r#"{{"kind":"member","group":"gp","account":"u2","role":"member","joined_at":{t}}}"#
        ),
    ];
    // Staged with the validation error it has (the broadcast group is kept aside).
    let r = app
        .anon()
        .post(format!(
            "{}{}",
            app.base,
            m.path("/dumps?file_name=dump.jsonl")
        ))
        .bearer_auth(&m.token)
        .body(lines.join("\n") + "\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    loop {
        let list = get(&app, &m, "/dumps").await;
        let report = get(&app, &m, "/dumps/report").await;
        if list[0]["state"] == "staged" && report["state"] == "current" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let run = launch(&app, &m).await;
    let end = wait_for(&app, &m, &run, &["done", "failed"], 120).await;
    let members = phase(&end, "members");
    assert_eq!(members["sent"], 1, "{end:#}");
    let page = get(&app, &m, &format!("/imports/{run}/failures?phase=members")).await;
    let f = &page["failures"][0];
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("needs the group `gb`"),
        "{page:#}"
    );
    assert_eq!(f["attempts"], 0, "decided without a request: {f:#}");
    // Nothing went out for it: the target refused no member.
    let apis = sb.state()["apis"].clone();
    assert_eq!(
        apis["group_open_http_svc/import_group_member"]["rejected"]
            .as_u64()
            .unwrap_or(0),
        0,
        "{apis:#}"
    );
}
