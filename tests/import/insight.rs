//! What the Import tab and the REST status say about a run is true: time left from the rate
//! measured, per-phase times and the preflight's error, throughput samples that add up to what
//! the target counted, Pause and Cancel settled only once the answers in flight are in, a
//! relaunch that sends only what failed or is new, and skipped records with their reasons.

use crate::common::*;
use crate::harness::*;
use imshift::dumps::fixtures::Spec;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use std::time::{Duration, Instant};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

fn phase<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == name)
        .unwrap_or_else(|| panic!("no phase {name} in {run:#}"))
}

fn at(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(v.as_str().unwrap(), &Rfc3339).unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn time_left_follows_the_rate_measured_not_the_quota(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    // Answers take a second: even with every worker keeping its requests in flight (8 workers,
    // up to 32 each) the run achieves far less than the 2,000 a second it may send.
    let sb = sandbox(|c| c.latency_ms = 1000).await;
    let m = migration(&app, &sb, 2000).await;
    let spec = Spec {
        accounts: 100,
        friends: 1,
        groups: 2,
        members: 3,
        messages: 6000,
        ..Spec::default()
    };
    stage(&app, &m, dump(&spec)).await;
    let run = launch(&app, &m).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let r = loop {
        let r = get(&app, &m, &format!("/imports/{run}")).await;
        let c2c = phase(&r, "c2c_history");
        if c2c["state"] == "running" && c2c["estimate"] == "measured" && f(&c2c["secs_left"]) > 0.0
        {
            break r;
        }
        assert!(Instant::now() < deadline, "never measured: {r:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let c2c = phase(&r, "c2c_history");
    let pending = f(&c2c["pending"]);
    let worked = f(&c2c["sent"]) + f(&c2c["failed"]) + f(&c2c["skipped"]);
    // At the phase's own pace: its recent rate, near its average over its working time.
    let average = pending * f(&c2c["elapsed_secs"]) / worked;
    let left = f(&c2c["secs_left"]);
    assert!(
        left > average / 2.0 && left < average * 2.0,
        "time left {left} s, {average} s at the phase's average rate: {c2c:#}"
    );
    // What the quota alone would have said (a message a request at 2,000 a second).
    let at_quota = pending / 2000.0;
    assert!(
        f(&c2c["secs_left"]) > 3.0 * at_quota,
        "the quota says {at_quota} s, the measured rate {}: {c2c:#}",
        c2c["secs_left"]
    );
    // The run's time left is its longest branch, not a sum of phases.
    let longest = r["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| f(&p["secs_left"]))
        .fold(0.0, f64::max);
    let sum: f64 = r["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| f(&p["secs_left"]))
        .sum();
    assert!(f(&r["secs_left"]) >= longest - 0.01, "{r:#}");
    assert!(f(&r["secs_left"]) <= sum + 0.01, "{r:#}");
    post(&app, &m, &format!("/imports/{run}/cancel")).await;
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn the_summary_has_each_phase_s_times_and_the_preflight_s_error(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let sb = sandbox(|_| {}).await;
    let m = migration(&app, &sb, 300).await;
    let spec = Spec {
        accounts: 200,
        friends: 2,
        groups: 20,
        members: 10,
        messages: 3000,
        ..Spec::default()
    };
    stage(&app, &m, dump(&spec)).await;
    let pre = get(&app, &m, "/imports/preflight").await;
    let run = launch(&app, &m).await;
    let done = wait_for(&app, &m, &run, &["done"], 300).await;
    let said = f(&pre["estimate_secs"]);
    assert!((f(&done["preflight_secs"]) - said).abs() < 1e-6, "{done:#}");
    let took = f(&done["elapsed_secs"]);
    let error = f(&done["preflight_error_pct"]);
    assert!(
        (error - (took - said) / said * 100.0).abs() < 0.01,
        "{error} for {took} s against {said} s"
    );
    eprintln!("preflight {said:.1} s, took {took:.1} s: {error:+.1} %");
    let run_start = at(&done["created_at"]);
    let run_end = at(&done["finished_at"]);
    for p in done["phases"].as_array().unwrap() {
        if p["state"] == "skipped" {
            continue;
        }
        let (a, b) = (at(&p["started_at"]), at(&p["finished_at"]));
        assert!(run_start <= a && a <= b && b <= run_end, "{p:#}");
        let span = (b - a).as_seconds_f64();
        assert!(
            (f(&p["elapsed_secs"]) - span).abs() < 0.05,
            "the duration is from start to end (no pause here): {p:#}"
        );
        assert!(f(&p["preflight_secs"]) >= 0.0);
    }
    // One-to-one history ran beside the group branch, and says so.
    let c2c = phase(&done, "c2c_history");
    let alongside: Vec<&str> = c2c["alongside"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        alongside.contains(&"Groups") || alongside.contains(&"Group members"),
        "{c2c:#}"
    );
    assert!(
        !alongside.contains(&"Accounts"),
        "accounts came first: {c2c:#}"
    );
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn throughput_samples_add_up_to_the_requests_the_target_counted(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let sb = sandbox(|_| {}).await;
    let m = migration(&app, &sb, 400).await;
    let spec = Spec {
        accounts: 300,
        friends: 3,
        groups: 10,
        members: 8,
        messages: 2500,
        ..Spec::default()
    };
    stage(&app, &m, dump(&spec)).await;
    let run = launch(&app, &m).await;
    // Read in the middle of the run, as a page reloaded then would.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let t = get(&app, &m, &format!("/imports/{run}/throughput")).await;
        if t["series"].as_array().is_some_and(|s| !s.is_empty()) {
            break;
        }
        assert!(Instant::now() < deadline, "no samples while running: {t:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let done = wait_for(&app, &m, &run, &["done"], 300).await;
    let t = get(&app, &m, &format!("/imports/{run}/throughput")).await;
    let apis = sb.state()["apis"].clone();
    let series = t["series"].as_array().unwrap();
    assert!(series.len() >= 5, "{t:#}");
    let bucket = t["bucket_secs"].as_i64().unwrap();
    for s in series {
        let api = s["api"].as_str().unwrap();
        let points: i64 = s["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["requests"].as_i64().unwrap())
            .sum();
        assert_eq!(points, s["requests"].as_i64().unwrap());
        assert_eq!(
            points,
            apis[api]["calls"].as_i64().unwrap(),
            "{api}: the samples and the sandbox disagree"
        );
        let phases: i64 = done["phases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["api"] == api)
            .map(|p| p["requests"].as_i64().unwrap())
            .sum();
        assert_eq!(points, phases, "{api}");
        assert_eq!(f(&s["qps"]), 400.0, "{api}: the quota in force");
        for p in s["points"].as_array().unwrap() {
            let a = p["at"].as_i64().unwrap();
            assert!(a % bucket == 0 && a >= 0 && a < t["span_secs"].as_i64().unwrap());
        }
    }
    // A run this migration does not have is refused.
    let r = app
        .with_token(
            reqwest::Method::GET,
            &m.path(&format!("/imports/{}/throughput", uuid::Uuid::new_v4())),
            &m.token,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// Polls until the run is `state` with nothing in flight, noting whether it was seen settling.
async fn settled(
    app: &TestApp,
    m: &Migration,
    run: &str,
    state: &str,
    settling: &str,
) -> (Value, bool) {
    let mut seen = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = get(app, m, &format!("/imports/{run}")).await;
        assert_eq!(r["state"], state, "{r:#}");
        if r["settling"] == settling {
            assert!(r["in_flight"].as_i64().unwrap() > 0, "{r:#}");
            seen = true;
        } else {
            assert!(r["settling"].is_null(), "{r:#}");
            assert_eq!(r["in_flight"], 0, "{r:#}");
            return (r, seen);
        }
        assert!(Instant::now() < deadline, "still {settling}: {r:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn paused_and_cancelled_only_once_the_answers_in_flight_are_in(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    // Every answer takes 1.5 s: after Pause, requests already out still land.
    let sb = sandbox(|c| c.latency_ms = 1500).await;
    let m = migration(&app, &sb, 200).await;
    let spec = Spec {
        accounts: 50,
        messages: 3000,
        ..Spec::default()
    };
    stage(&app, &m, dump(&spec)).await;
    let run = launch(&app, &m).await;
    // Until some requests beyond `n` went out.
    let wait_sending = |n: i64| {
        let (app, m, run) = (&app, &m, &run);
        async move {
            loop {
                let r = get(app, m, &format!("/imports/{run}")).await;
                if r["state"] == "running"
                    && phase(&r, "c2c_history")["requests"].as_i64().unwrap() > n + 20
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    wait_sending(0).await;
    let r = post(&app, &m, &format!("/imports/{run}/pause")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let (paused, seen) = settled(&app, &m, &run, "paused", "pausing").await;
    assert!(
        seen,
        "requests were out when Pause was pressed: it said pausing first"
    );
    // Once it says paused, nothing more arrives and nothing more is counted.
    let landed = sb.state()["c2c_messages"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(sb.state()["c2c_messages"].as_u64().unwrap(), landed);
    let later = get(&app, &m, &format!("/imports/{run}")).await;
    assert_eq!(later["sent"], paused["sent"]);
    assert_eq!(
        phase(&later, "c2c_history")["requests"],
        phase(&paused, "c2c_history")["requests"]
    );
    // A paused run's working time stands still.
    assert!((f(&later["elapsed_secs"]) - f(&paused["elapsed_secs"])).abs() < 0.01);

    let r = post(&app, &m, &format!("/imports/{run}/resume")).await;
    assert_eq!(r.status(), StatusCode::OK);
    wait_sending(phase(&later, "c2c_history")["requests"].as_i64().unwrap()).await;
    let r = post(&app, &m, &format!("/imports/{run}/cancel")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let (cancelled, seen) = settled(&app, &m, &run, "cancelled", "cancelling").await;
    assert!(seen, "it said cancelling first");
    let landed = sb.state()["c2c_messages"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(sb.state()["c2c_messages"].as_u64().unwrap(), landed);
    let later = get(&app, &m, &format!("/imports/{run}")).await;
    assert_eq!(later["sent"], cancelled["sent"]);
}

async fn upload(app: &TestApp, m: &Migration, name: &str, lines: &[String]) {
    let before = get(app, m, "/dumps").await.as_array().unwrap().len();
    let r = app
        .anon()
        .post(format!(
            "{}{}",
            app.base,
            m.path(&format!("/dumps?file_name={name}"))
        ))
        .bearer_auth(&m.token)
        .body(lines.join("\n") + "\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = get(app, m, "/dumps").await;
        let report = get(app, m, "/dumps/report").await;
        let all = list.as_array().unwrap();
        if all.len() > before
            && all.iter().all(|u| u["state"] == "staged")
            && report["state"] == "current"
        {
            return;
        }
        assert!(Instant::now() < deadline, "{list:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_relaunch_can_send_only_what_failed_or_is_new(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let sb = sandbox(|_| {}).await;
    let m = migration(&app, &sb, 3000).await;
    let t = 1_700_000_000_000i64;
    let long = "a very long group name that Tencent IM refuses";
    let mut first = vec![
        r#"{"kind":"account","id":"u1"}"#.to_string(),
        r#"{"kind":"account","id":"u2"}"#.to_string(),
        format!(r#"{{"kind":"group","id":"g1","name":"{long}","owner":"u1","created_at":{t}}}"#),
    ];
    for i in 0..5 {
        first.push(format!(
            r#"{{"kind":"message","id":"c{i}","conv":"c2c","from":"u1","to":"u2","sent_at":{},"body":{{"type":"text","text":"hi {i}"}}}}"#,
            t + 1000 * (i + 1)
        ));
    }
    upload(&app, &m, "first.jsonl", &first).await;
    let run1 = launch(&app, &m).await;
    let one = wait_for(&app, &m, &run1, &["done"], 120).await;
    assert_eq!(one["sent"], 7, "{one:#}");
    assert_eq!(one["failed"], 1, "{one:#}");
    // The first launch had nothing to choose.
    assert!(one["resend"].is_null());

    // New records arrive: an account and a message from an account sent before.
    upload(
        &app,
        &m,
        "second.jsonl",
        &[
            r#"{"kind":"account","id":"u3"}"#.to_string(),
            format!(
                r#"{{"kind":"message","id":"c9","conv":"c2c","from":"u1","to":"u3","sent_at":{},"body":{{"type":"text","text":"new"}}}}"#,
                t + 60_000
            ),
        ],
    )
    .await;
    let pre = get(&app, &m, "/imports/preflight").await;
    let earlier = &pre["earlier"];
    assert_eq!(earlier["last_run"], run1.as_str(), "{pre:#}");
    assert_eq!(earlier["sent_before"], 7, "{pre:#}");
    assert_eq!(earlier["failed_or_new"], 3, "the group, u3 and c9: {pre:#}");
    assert!(
        pre["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("sends everything again")),
        "{pre:#}"
    );
    let bad = post(&app, &m, "/imports?resend=some").await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let calls = |api: &str| sb.state()["apis"][api]["calls"].as_i64().unwrap_or(0);
    let (accounts, messages) = (
        calls("im_open_login_svc/multiaccount_import"),
        calls("openim/importmsg"),
    );
    let r = post(&app, &m, "/imports?resend=failed_or_new").await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let run2 = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let two = wait_for(&app, &m, &run2, &["done", "failed"], 120).await;
    assert_eq!(two["state"], "done", "{two:#}");
    assert_eq!(two["resend"], "failed_or_new");
    // u3 and c9 sent; the group tried again (and refused again); the rest left out.
    assert_eq!(two["sent"], 2, "{two:#}");
    assert_eq!(two["failed"], 1, "{two:#}");
    let acc = phase(&two, "accounts");
    assert_eq!(acc["sent"], 1, "{acc:#}");
    assert_eq!(acc["skipped"], 2, "{acc:#}");
    let reason = acc["skip_reasons"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("earlier run"), "{acc:#}");
    assert_eq!(acc["skip_reasons"][0]["count"], 2);
    assert_eq!(phase(&two, "c2c_history")["skipped"], 5, "{two:#}");
    assert_eq!(phase(&two, "groups")["failed"], 1, "{two:#}");
    // Only the new account and the new message went out.
    assert_eq!(calls("im_open_login_svc/multiaccount_import"), accounts + 1);
    assert_eq!(calls("openim/importmsg"), messages + 1);
    let export = sb.export();
    assert!(export["accounts"].as_object().unwrap().contains_key("u3"));
    // The choice is audited.
    let details: Vec<Value> = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'import.launched' ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        details.last().unwrap()["resend"],
        "failed_or_new",
        "{details:#?}"
    );
    assert_eq!(details.last().unwrap()["left_out"], 7);

    // Launching under it again without a choice sends everything, and says so in the audit.
    let run3 = launch(&app, &m).await;
    let three = wait_for(&app, &m, &run3, &["done"], 120).await;
    assert_eq!(three["resend"], "all");
    assert_eq!(three["sent"], 9, "{three:#}");
    let last: Value = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'import.launched' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(last["resend"], "all");
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn every_skipped_count_says_why_and_leads_to_the_records(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let sb = sandbox(|_| {}).await;
    let m = migration(&app, &sb, 3000).await;
    let t = 1_700_000_000_000i64;
    let lines = vec![
        r#"{"kind":"account","id":"u1"}"#.to_string(),
        r#"{"kind":"account","id":"u2"}"#.to_string(),
        format!(
            r#"{{"kind":"group","id":"g1","type":"private","name":"Team","owner":"u1","created_at":{t}}}"#
        ),
        // The owner's own membership: Tencent made it with the group.
        format!(
            r#"{{"kind":"member","group":"g1","account":"u1","role":"owner","joined_at":{t}}}"#
        ),
        format!(
            r#"{{"kind":"member","group":"g1","account":"u2","role":"member","joined_at":{}}}"#,
            t + 1
        ),
        format!(r#"{{"kind":"conversation","owner":"u1","conv":"c2c","peer":"u2","last_at":{t}}}"#),
    ];
    upload(&app, &m, "dump.jsonl", &lines).await;
    let run = launch(&app, &m).await;
    let done = wait_for(&app, &m, &run, &["done"], 120).await;
    for p in done["phases"].as_array().unwrap() {
        let skipped = p["skipped"].as_i64().unwrap();
        let explained: i64 = p["skip_reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                assert!(!r["reason"].as_str().unwrap().is_empty(), "{p:#}");
                r["count"].as_i64().unwrap()
            })
            .sum();
        assert_eq!(
            explained, skipped,
            "every skipped record has its reason: {p:#}"
        );
    }
    let members = phase(&done, "members");
    assert_eq!(members["skipped"], 1, "{done:#}");
    assert!(
        members["skip_reasons"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("owner joined with the group"),
        "{members:#}"
    );
    // The records behind the count.
    let page = get(
        &app,
        &m,
        &format!("/imports/{run}/failures?phase=members&state=skipped"),
    )
    .await;
    let list = page["failures"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{page:#}");
    assert_eq!(list[0]["line"], 4);
    assert!(list[0]["record"].as_str().unwrap().contains("owner"));
    let bad = app
        .with_token(
            reqwest::Method::GET,
            &m.path(&format!("/imports/{run}/failures?state=lost")),
            &m.token,
            None,
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
}
