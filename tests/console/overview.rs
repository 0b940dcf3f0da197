//! The Overview's state and next step through a migration's life, the pulse the pages poll,
//! and quotas edited one API at a time from the Keys tab (audited, refused to viewers).

use crate::common::*;
use crate::dumps::{post_dump, report, settled};
use imshift::model::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::time::Duration;

async fn new_migration(b: &Browser, name: &str) -> String {
    b.new_migration(name, "forced_upgrade", "self_built", "tencent")
        .await
}

async fn json_of(r: reqwest::Response) -> Value {
    let status = r.status();
    let text = r.text().await.unwrap();
    assert!(status.is_success(), "{status}: {text}");
    serde_json::from_str(&text).unwrap()
}

fn limit<'a>(limits: &'a Value, api: &str) -> &'a Value {
    limits
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["api"] == api)
        .unwrap_or_else(|| panic!("{api} in {limits}"))
}

/// The audit details of every `migration.limits_set`, oldest first.
async fn limit_audits(app: &TestApp) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'migration.limits_set' ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

const IMPORTMSG: &str = "openim/importmsg";
const MEMBERS: &str = "group_open_http_svc/import_group_member";

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn one_api_quota_is_edited_reset_and_audited_with_old_and_new_values(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let id = new_migration(&owner, "quotas").await;
    let set = |api: &'static str, form: Vec<(&'static str, &'static str)>| {
        let (b, id) = (&owner, id.clone());
        async move {
            let mut f = vec![("id", id.as_str()), ("api", api)];
            f.extend(form);
            b.call("set_limit", &f).await
        }
    };

    // The rate of one API, as typed in its row.
    let limits = json_of(set(IMPORTMSG, vec![("qps", "50")]).await).await;
    assert_eq!(limit(&limits, IMPORTMSG)["qps"], 50);
    assert_eq!(limit(&limits, IMPORTMSG)["overridden"], true);
    // Another API's batch size; the first override stays.
    let limits = json_of(set(MEMBERS, vec![("batch", "100")]).await).await;
    assert_eq!(limit(&limits, MEMBERS)["batch"], 100);
    assert_eq!(limit(&limits, IMPORTMSG)["qps"], 50);
    // The quota a client of this migration applies is the new one (a running import reads it
    // again within seconds).
    let uid: imshift::model::MigrationId = id.parse().unwrap();
    let used = imshift::migration::limits::effective(
        &app.pool,
        &imshift::providers::Registry::builtin(),
        uid,
    )
    .await
    .unwrap();
    assert_eq!(used.qps(IMPORTMSG), Some(50));
    assert_eq!(used.batch(MEMBERS), Some(100));

    let audits = limit_audits(&app).await;
    assert_eq!(audits.len(), 2, "{audits:?}");
    assert_eq!(
        audits[0]["changes"],
        json!({ IMPORTMSG: { "qps": { "from": 200, "to": 50 } } })
    );
    assert_eq!(
        audits[1]["changes"][MEMBERS]["batch"],
        json!({ "from": 20, "to": 100 })
    );

    // Reset to default: back to the table's value, the other override untouched, audited.
    let limits = json_of(set(IMPORTMSG, vec![("reset", "true")]).await).await;
    assert_eq!(limit(&limits, IMPORTMSG)["qps"], 200);
    assert_eq!(limit(&limits, IMPORTMSG)["overridden"], false);
    assert_eq!(limit(&limits, MEMBERS)["batch"], 100);
    let audits = limit_audits(&app).await;
    assert_eq!(
        audits[2]["changes"],
        json!({ IMPORTMSG: { "qps": { "from": 50, "to": 200 } } })
    );
    // Saving the values in force changes nothing and audits nothing.
    json_of(set(MEMBERS, vec![("batch", "100")]).await).await;
    assert_eq!(limit_audits(&app).await.len(), 3);

    // Bad input: a clear error naming the API and what is wrong, nothing stored.
    for (api, form, says) in [
        (
            IMPORTMSG,
            vec![("qps", "fast")],
            "`fast` is not a whole number",
        ),
        (IMPORTMSG, vec![("qps", "0")], "qps 0: use 1 to"),
        (IMPORTMSG, vec![("qps", "100001")], "qps 100001"),
        (IMPORTMSG, vec![("batch", "5")], "one item per request"),
        (MEMBERS, vec![("batch", "-3")], "`-3` is not a whole number"),
        ("openim/nosuch", vec![("qps", "5")], "not a Tencent IM API"),
    ] {
        let r = set(api, form).await;
        assert!(r.status().is_client_error(), "{says}: {}", r.status());
        let body = r.text().await.unwrap();
        assert!(body.contains(says), "{says}: {body}");
        assert!(body.contains(api), "the error names {api}: {body}");
    }
    assert_eq!(limit_audits(&app).await.len(), 3);
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_viewer_sees_the_quotas_but_may_not_change_them(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let id = new_migration(&owner, "quotas").await;
    let viewer = app.member("viewer@example.com", Role::Viewer).await;

    let r = viewer
        .call(
            "set_limit",
            &[("id", id.as_str()), ("api", IMPORTMSG), ("qps", "1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = viewer
        .call(
            "set_limit",
            &[("id", id.as_str()), ("api", IMPORTMSG), ("reset", "true")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let path = format!("/api/v1/migrations/{id}/limits");
    let r = viewer
        .api(Method::PUT, &path, Some(json!({ IMPORTMSG: { "qps": 1 } })))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(r).await, "forbidden");

    let limits = json_of(viewer.api(Method::GET, &path, None).await).await;
    assert_eq!(limit(&limits, IMPORTMSG)["qps"], 200);
    assert!(limit_audits(&app).await.is_empty());
}

/// Accounts, a friendship, a group with a member, and messages; `bad` adds a record validation
/// keeps aside (an account id Tencent refuses).
fn dump(bad: bool) -> Vec<u8> {
    let mut lines = vec![];
    for i in 1..=4 {
        lines.push(json!({"kind": "account", "id": format!("u{i}"), "nick": format!("User {i}")}));
    }
    lines.push(json!({"kind": "friend", "owner": "u1", "friend": "u2"}));
    for i in 0..6 {
        lines.push(json!({"kind": "message", "id": format!("m{i}"), "conv": "c2c", "from": "u1", "to": "u2",
            "sent_at": 1_600_000_000_000i64 + i * 1000, "body": {"type": "text", "text": format!("hi {i}")}}));
    }
    if bad {
        lines.push(json!({"kind": "account", "id": "x".repeat(40)}));
    }
    let mut out = String::new();
    for l in lines {
        out.push_str(&l.to_string());
        out.push('\n');
    }
    out.into_bytes()
}

async fn overview(b: &Browser, id: &str) -> Value {
    json_of(
        b.api(
            Method::GET,
            &format!("/api/v1/migrations/{id}/overview"),
            None,
        )
        .await,
    )
    .await
}

async fn stage(app: &TestApp, token: &str, id: &str, name: &str, bytes: Vec<u8>) {
    let r = post_dump(app, token, id, name, "", bytes).await;
    let upload = id_of(r, StatusCode::ACCEPTED).await;
    assert_eq!(settled(app, token, id, &upload).await["state"], "staged");
    report(app, token, id).await;
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn the_overview_names_the_next_step_through_a_migrations_life(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let token = app.token(&owner).await;
    let viewer = app.member("viewer@example.com", Role::Viewer).await;
    let id = new_migration(&owner, "life").await;

    let o = overview(&owner, &id).await;
    assert_eq!(o["next"], "set_keys");
    assert_eq!(o["pulse"]["state"], "draft");
    assert_eq!(o["pulse"]["run"], Value::Null);

    let r = owner
        .api(
            Method::POST,
            &format!("/api/v1/migrations/{id}/sandbox"),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let o = overview(&owner, &id).await;
    assert_eq!(o["next"], "upload_dumps");
    assert_eq!(o["pulse"]["state"], "ready");
    assert_eq!(o["sandbox"], true);

    stage(&app, &token, &id, "first.jsonl", dump(true)).await;
    let o = overview(&owner, &id).await;
    assert_eq!(o["next"], "review_errors", "{o}");
    assert_eq!(o["staged_uploads"], 1);
    assert!(o["kept_aside"].as_i64().unwrap() >= 1, "{o}");
    assert_eq!(o["staged"]["account"], 4, "{o}");
    // A viewer reads the same overview.
    assert_eq!(overview(&viewer, &id).await["next"], "review_errors");

    let r = owner
        .api(
            Method::POST,
            &format!("/api/v1/migrations/{id}/imports"),
            None,
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let run = r.json::<Value>().await.unwrap()["id"].clone();
    // The pulse the list and the badge poll follows the run to its end.
    let mut seen = vec![];
    let pulse = loop {
        let pulses = json_of(owner.call("pulses", &[]).await).await;
        let p = pulses
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id.as_str())
            .unwrap()
            .clone();
        assert_eq!(p["run"]["id"], run);
        let state = p["state"].as_str().unwrap().to_string();
        if seen.last() != Some(&state) {
            seen.push(state.clone());
        }
        if state != "importing" {
            break p;
        }
        assert!(seen.len() < 3, "{seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(pulse["state"], "done", "{pulse}");
    assert_eq!(pulse["run"]["state"], "done");
    let total = pulse["run"]["total"].as_i64().unwrap();
    assert!(total > 0);
    let dealt = ["sent", "failed", "skipped"]
        .iter()
        .map(|k| pulse["run"][k].as_i64().unwrap())
        .sum::<i64>();
    assert_eq!(dealt, total, "{pulse}");
    let o = overview(&owner, &id).await;
    assert_eq!(o["pulse"], pulse);
    let failed = pulse["run"]["failed"].as_i64().unwrap();
    assert_eq!(
        o["next"],
        if failed > 0 { "retry_failures" } else { "done" },
        "{o}"
    );

    // A dump staged after the run is the next thing to import.
    stage(&app, &token, &id, "more.jsonl", dump(false)).await;
    let o = overview(&owner, &id).await;
    assert_eq!(o["staged_since_run"], 1, "{o}");
    assert_eq!(o["next"], "launch", "{o}");

    // Archived: the list's pulses leave it out, its own pulse says so, the next step restores.
    let r = owner
        .api(
            Method::POST,
            &format!("/api/v1/migrations/{id}/archive"),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(overview(&owner, &id).await["next"], "restore");
    let live = json_of(owner.call("pulses", &[]).await).await;
    assert!(live.as_array().unwrap().is_empty(), "{live}");
    let one = json_of(owner.call("pulses", &[("id", id.as_str())]).await).await;
    assert_eq!(one[0]["state"], "archived");
}
