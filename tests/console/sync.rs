//! Coexistence sync end to end over HTTP: a migration rehearses both sides in sandboxes (the
//! relay sandbox standing in for a self-built old system, the Tencent IM sandbox for the new
//! one), turns both directions on, and messages and group changes travel each way exactly
//! once, with no echo, in order, through faults and outages, with dead letters replayable.

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::time::Duration;

struct Sides {
    id: String,
    /// The relay sandbox's address (ends with `/`).
    relay: String,
    /// The Tencent sandbox's base URL.
    tencent: String,
}

async fn coexisting(owner: &Browser) -> Sides {
    let id = owner
        .new_migration("coexist", "coexistence", "self_built", "tencent")
        .await;
    let source = owner
        .json(
            Method::POST,
            &format!("/api/v1/migrations/{id}/connections/source/sandbox"),
            None,
        )
        .await;
    let target = owner
        .json(
            Method::POST,
            &format!("/api/v1/migrations/{id}/connections/target/sandbox"),
            None,
        )
        .await;
    let relay = source["values"]["relay_url"]
        .as_str()
        .expect("relay_url")
        .to_string();
    let tencent = target["values"]["base_url"]
        .as_str()
        .expect("base_url")
        .to_string();
    Sides { id, relay, tencent }
}

async fn switch(owner: &Browser, id: &str, side: &str, on: bool) -> reqwest::Response {
    owner
        .api(
            Method::PUT,
            &format!("/api/v1/migrations/{id}/sync/{side}"),
            Some(json!({ "enabled": on })),
        )
        .await
}

/// What the relay sandbox received from imshift.
async fn relay_received(sides: &Sides) -> Vec<Value> {
    let v: Value = reqwest::get(format!("{}events", sides.relay))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["events"].as_array().cloned().unwrap_or_default()
}

/// Sends events as the old system, through the relay sandbox (it signs them).
async fn old_system_sends(sides: &Sides, body: Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{}send", sides.relay))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["status"], 200, "imshift's answer: {v}");
    v
}

async fn tencent_export(sides: &Sides) -> Value {
    reqwest::get(format!("{}/_sandbox/export", sides.tencent))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn c2c_texts(export: &Value) -> Vec<String> {
    export["c2c"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .flat_map(|l| l.as_array().cloned().unwrap_or_default())
        .map(|m| {
            m["body"][0]["MsgContent"]["Text"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

fn group_texts(export: &Value, group: &str) -> Vec<String> {
    export["groups"][group]["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            m["body"][0]["MsgContent"]["Text"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

async fn sync_view(owner: &Browser, id: &str) -> Value {
    owner
        .json(Method::GET, &format!("/api/v1/migrations/{id}/sync"), None)
        .await
}

fn direction<'a>(view: &'a Value, from: &str) -> &'a Value {
    view["directions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["from"] == from)
        .unwrap()
}

fn group_created(group: &str, owner: &str, members: &[&str]) -> Value {
    let members: Vec<Value> = members
        .iter()
        .map(|a| json!({"group": group, "account": a, "role": if *a == owner { "owner" } else { "member" }}))
        .collect();
    json!({"type": "group.created", "at": now_ms(),
           "data": {"id": group, "type": "private", "name": "Team", "owner": owner, "members": members}})
}

fn text(id: &str, conv: &str, from: &str, to: &str, body: &str) -> Value {
    json!({"id": id, "type": "message.sent", "at": now_ms(),
           "data": {"id": id, "conv": conv, "from": from, "to": to, "sent_at": now_ms(),
                    "body": {"type": "text", "text": body}}})
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_message_each_way_in_each_conversation_kind_arrives_once_with_no_echo(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let sides = coexisting(&owner).await;
    let id = sides.id.clone();

    // Off by default: what arrives is kept, not sent.
    let view = sync_view(&owner, &id).await;
    assert_eq!(direction(&view, "source")["health"]["status"], "off");
    assert!(direction(&view, "source")["blocked"].is_null(), "{view}");
    for side in ["source", "target"] {
        assert_eq!(
            switch(&owner, &id, side, true).await.status(),
            StatusCode::OK
        );
    }
    assert!(app
        .audit_actions()
        .await
        .contains(&"sync.enabled".to_string()));

    // Old → new: a group with its first message, and a one-to-one message.
    old_system_sends(
        &sides,
        json!({"events": [
            group_created("g1", "alice", &["alice", "bob"]),
            text("old-g-1", "group", "alice", "g1", "hello group from the old app"),
            text("old-c-1", "c2c", "alice", "bob", "hello bob from the old app"),
        ]}),
    )
    .await;
    let export = eventually("both messages in Tencent", || async {
        let e = tencent_export(&sides).await;
        (group_texts(&e, "g1").len() == 1 && c2c_texts(&e).len() == 1).then_some(e)
    })
    .await;
    assert_eq!(group_texts(&export, "g1"), ["hello group from the old app"]);
    assert_eq!(c2c_texts(&export), ["hello bob from the old app"]);
    // The id map holds what Tencent answered for the group message, under the old id.
    eventually("the group message in the id map", || async {
        let pairs = owner
            .json(
                Method::GET,
                &format!("/api/v1/migrations/{id}/sync/id-map?q=old-g-1"),
                None,
            )
            .await;
        pairs
            .as_array()
            .unwrap()
            .iter()
            .any(|p| {
                p["via"] == "sync"
                    && p["old_id"] == "old-g-1"
                    && p["new_id"].as_str().unwrap().starts_with("group:g1:")
            })
            .then_some(())
    })
    .await;

    // New → old: bob answers from the new app, in the group and one to one.
    for (group, body) in [
        (true, "hi group from the new app"),
        (false, "hi alice from the new app"),
    ] {
        let to = if group { "g1" } else { "alice" };
        new_app_user_sends(&sides, "bob", to, group, body).await;
    }
    let received = eventually("both answers at the old system", || async {
        let r = relay_received(&sides).await;
        (r.len() >= 2).then_some(r)
    })
    .await;
    // Let any echo that was going to come back come back.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received = {
        let again = relay_received(&sides).await;
        assert_eq!(again.len(), received.len(), "more arrived later: {again:?}");
        again
    };
    let texts: Vec<&str> = received
        .iter()
        .map(|e| e["data"]["body"]["text"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(received.len(), 2, "{received:?}");
    assert!(texts.contains(&"hi group from the new app"), "{texts:?}");
    assert!(texts.contains(&"hi alice from the new app"), "{texts:?}");
    assert!(received.iter().all(|e| e["origin"] == "imshift"));
    // Nothing travelled twice into Tencent either.
    let export = tencent_export(&sides).await;
    assert_eq!(group_texts(&export, "g1").len(), 2, "{export}");
    assert_eq!(c2c_texts(&export).len(), 2);

    let view = sync_view(&owner, &id).await;
    let old_to_new = &direction(&view, "source")["health"];
    assert_eq!(old_to_new["sent_total"], 3, "{view}");
    assert_eq!(old_to_new["status"], "healthy");
    assert_eq!(
        direction(&view, "target")["health"]["sent_total"],
        2,
        "{view}"
    );
    // The event log finds an account's events on both sides, each with its path.
    let log = owner
        .json(
            Method::GET,
            &format!("/api/v1/migrations/{id}/sync/events?q=bob"),
            None,
        )
        .await;
    let states: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert!(
        states.len() >= 3 && states.iter().all(|s| *s == "sent"),
        "{log}"
    );

    // The test message of each sandbox side goes round through the console's own door.
    for side in ["source", "target"] {
        let r = owner
            .api(
                Method::POST,
                &format!("/api/v1/migrations/{id}/sync/{side}/test"),
                None,
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    }
    eventually("both test messages applied", || async {
        let v = sync_view(&owner, &id).await;
        (direction(&v, "source")["health"]["sent_total"] == 4
            && direction(&v, "target")["health"]["sent_total"] == 3)
            .then_some(())
    })
    .await;
    assert!(app
        .audit_actions()
        .await
        .contains(&"sync.test_sent".to_string()));
}

/// Sends as a user of the Tencent sandbox (callbacks fire as for a phone's send).
async fn new_app_user_sends(sides: &Sides, from: &str, to: &str, group: bool, body: &str) {
    let r = reqwest::Client::new()
        .post(format!("{}/_sandbox/user_message", sides.tencent))
        .json(&json!({"from": from, "to": to, "group": group, "text": body}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
}

async fn echo_guard_run(pool: PgPool, guards: imshift::providers::EchoGuards) -> i64 {
    let app = TestApp::spawn_with(pool, |c| c.sync_guards = guards).await;
    let owner = app.owner().await;
    let sides = coexisting(&owner).await;
    for side in ["source", "target"] {
        assert_eq!(
            switch(&owner, &sides.id, side, true).await.status(),
            StatusCode::OK
        );
    }
    old_system_sends(
        &sides,
        json!({"events": [
            group_created("g1", "alice", &["alice", "bob"]),
            text("old-g-1", "group", "alice", "g1", "to the group"),
            text("old-c-1", "c2c", "alice", "bob", "to bob"),
        ]}),
    )
    .await;
    // With a guard off, Tencent reports imshift's own sends back; the next guard keeps
    // them from travelling back to the old system.
    let echoes = eventually("the echoes counted", || async {
        let view = sync_view(&owner, &sides.id).await;
        let h = &direction(&view, "target")["health"];
        let n = h["echo_filtered"].as_i64().unwrap();
        (n >= 3).then_some(n)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        relay_received(&sides).await.is_empty(),
        "an echo travelled back"
    );
    let export = tencent_export(&sides).await;
    assert_eq!(group_texts(&export, "g1"), ["to the group"]);
    assert_eq!(c2c_texts(&export), ["to bob"]);
    echoes
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn with_callbacks_not_suppressed_the_origin_tag_stops_the_echo(pool: PgPool) {
    let guards = imshift::providers::EchoGuards {
        provider_flags: false,
        origin_tag: true,
    };
    // The group's creation and both messages come back; none goes on.
    assert_eq!(echo_guard_run(pool, guards).await, 3);
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn without_flags_or_tag_the_id_map_stops_the_echo(pool: PgPool) {
    let guards = imshift::providers::EchoGuards {
        provider_flags: false,
        origin_tag: false,
    };
    assert_eq!(echo_guard_run(pool, guards).await, 3);
}

const OUTBOUND: &str = "relay-outbound-secret-for-sync";
const INBOUND: &str = "relay-inbound-secret-for-sync";

/// A relay of the test's own on `port` (0: any), as the old system's server.
async fn own_relay(
    app: &TestApp,
    id: &str,
    port: u16,
    reject: &[&str],
) -> imshift::providers::self_built::sandbox::RelayHandle {
    use imshift::providers::self_built::sandbox::{spawn, RelayConfig};
    let config = RelayConfig {
        verify_secret: OUTBOUND.into(),
        send_secret: Some(INBOUND.into()),
        hook_url: Some(format!("{}/hooks/{id}/source", app.base)),
        reject_accounts: reject.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    // The port of a relay just stopped is free again once its last connection closes.
    for _ in 0..100 {
        match spawn(config.clone(), ([127, 0, 0, 1], port).into()).await {
            Ok(r) => return r,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("{e}"),
        }
    }
    panic!("port {port} stayed in use");
}

async fn point_source_at(owner: &Browser, id: &str, url: &str) {
    let r = owner
        .api(
            Method::PUT,
            &format!("/api/v1/migrations/{id}/connections/source"),
            Some(json!({"fields": {"relay_url": url, "outbound_secret": OUTBOUND, "inbound_secret": INBOUND}})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn while_the_old_system_is_down_events_wait_and_then_arrive_in_order_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let sides = coexisting(&owner).await;
    let id = sides.id.clone();
    let relay = own_relay(&app, &id, 0, &[]).await;
    let addr = relay.addr;
    point_source_at(&owner, &id, &relay.base_url()).await;
    assert_eq!(
        switch(&owner, &id, "target", true).await.status(),
        StatusCode::OK
    );
    // The old system goes down.
    drop(relay);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent: Vec<String> = (1..=5).map(|i| format!("message {i}")).collect();
    for (i, t) in sent.iter().enumerate() {
        new_app_user_sends(&sides, "bob", "alice", false, t).await;
        new_app_user_sends(&sides, "carol", "dave", false, &format!("{t} (other chat)")).await;
        // Each pair's callbacks in before the next are sent: Tencent's callbacks may overtake
        // each other, and an earlier event arriving late becomes its conversation's head (and
        // is tried too); this test is about the sender, not about callbacks racing.
        let want = 2 * (i as i64 + 1);
        eventually("the callbacks received", || async {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM sync_inbound WHERE migration_id = $1::uuid",
            )
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
            (n >= want).then_some(())
        })
        .await;
    }
    let view = eventually("the direction failing with its backlog", || async {
        let v = sync_view(&owner, &id).await;
        let h = direction(&v, "target")["health"].clone();
        (h["status"] == "failing" && h["backlog"] == 10).then_some(h)
    })
    .await;
    assert_eq!(view["errors"][0]["code"], "unreachable", "{view}");
    // One conversation never has more than one event in flight: the rest wait untried.
    let tried: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sync_inbound WHERE migration_id = $1::uuid AND attempts > 0",
    )
    .bind(&id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(tried, 2, "only each conversation's head is tried");
    // A scraper sees the same: ten waiting, the oldest for a while, nothing dead.
    assert_eq!(
        gauge(&app, "imshift_sync_backlog", &id, "target").await,
        Some(10.0)
    );
    assert!(gauge(&app, "imshift_sync_oldest_waiting_seconds", &id, "target").await > Some(0.0));
    assert_eq!(
        gauge(&app, "imshift_sync_dead_letters", &id, "target").await,
        Some(0.0)
    );
    assert_eq!(
        gauge(&app, "imshift_sync_enabled", &id, "target").await,
        Some(1.0)
    );

    // It comes back on the same address: everything arrives, in order, once.
    let relay = own_relay(&app, &id, addr.port(), &[]).await;
    let got = eventually("all ten at the old system", || async {
        let r = relay.received();
        (r.len() >= 10).then_some(r)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(relay.received().len(), 10, "nothing twice");
    let chat = |peer: &str| -> Vec<String> {
        got.iter()
            .filter(|e| e["data"]["from"] == peer)
            .map(|e| e["data"]["body"]["text"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(chat("bob"), sent);
    assert_eq!(chat("carol").len(), 5);
    let view = sync_view(&owner, &id).await;
    assert_eq!(direction(&view, "target")["health"]["backlog"], 0);
    assert_eq!(
        gauge(&app, "imshift_sync_backlog", &id, "target").await,
        Some(0.0)
    );
    assert!(gauge(&app, "imshift_sync_apply_lag_p99_seconds", &id, "target").await > Some(0.0));
}

/// A sync gauge of one direction as `/metrics` serves it.
async fn gauge(app: &TestApp, name: &str, id: &str, from: &str) -> Option<f64> {
    let text = app.metrics().await;
    text.lines().find_map(|l| {
        let (key, value) = l.rsplit_once(' ')?;
        let labels = key.strip_prefix(name)?.strip_prefix('{')?;
        (labels.contains(&format!("migration=\"{id}\""))
            && labels.contains(&format!("from=\"{from}\"")))
        .then(|| value.parse().unwrap())
    })
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_refused_event_is_a_dead_letter_with_its_reason_and_can_be_replayed(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let sides = coexisting(&owner).await;
    let id = sides.id.clone();
    // The old system does not know mallory yet.
    let relay = own_relay(&app, &id, 0, &["mallory"]).await;
    let addr = relay.addr;
    point_source_at(&owner, &id, &relay.base_url()).await;
    assert_eq!(
        switch(&owner, &id, "target", true).await.status(),
        StatusCode::OK
    );
    new_app_user_sends(&sides, "mallory", "alice", false, "hello from mallory").await;
    new_app_user_sends(&sides, "bob", "alice", false, "hello from bob").await;
    let dead = eventually("one dead letter, the other sent", || async {
        let v = sync_view(&owner, &id).await;
        let h = direction(&v, "target")["health"].clone();
        (h["dead"] == 1 && h["sent_total"] == 1).then_some(h)
    })
    .await;
    assert_eq!(dead["errors"][0]["code"], "unknown_account", "{dead}");
    assert_eq!(
        dead["errors"][0]["dead"], 1,
        "replayable by its code: {dead}"
    );
    assert!(dead["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("mallory"));
    let log = dead_letters(&owner, &id).await;
    assert_eq!(log.as_array().unwrap().len(), 1, "{log}");
    assert_eq!(log[0]["actor"], "mallory");

    // A viewer may look, not replay.
    let viewer = app
        .member("viewer@example.com", imshift::model::Role::Viewer)
        .await;
    let r = viewer
        .api(
            Method::POST,
            &format!("/api/v1/migrations/{id}/sync/replay"),
            Some(json!({"all": true})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // The old system learns mallory; the operator replays.
    drop(relay);
    let relay = own_relay(&app, &id, addr.port(), &[]).await;
    let r = owner
        .json(
            Method::POST,
            &format!("/api/v1/migrations/{id}/sync/replay"),
            Some(json!({"all": true, "side": "target", "error_code": "no_such_code"})),
        )
        .await;
    assert_eq!(r["replayed"], 0, "another code's dead letters stay");
    let r = owner
        .json(
            Method::POST,
            &format!("/api/v1/migrations/{id}/sync/replay"),
            Some(json!({"all": true, "side": "target", "error_code": "unknown_account"})),
        )
        .await;
    assert_eq!(r["replayed"], 1);
    eventually("the replayed letter at the old system", || async {
        relay
            .received()
            .iter()
            .any(|e| e["data"]["from"] == "mallory")
            .then_some(())
    })
    .await;
    assert!(app
        .audit_actions()
        .await
        .contains(&"sync.replayed".to_string()));
}

/// Stands between the Tencent sandbox and the console: forwards callbacks to whichever
/// console process is up, and loses them (as Tencent does, with no retry) while none is.
async fn callback_relay(to: std::sync::Arc<std::sync::Mutex<Option<String>>>) -> String {
    use axum::extract::{Request, State};
    async fn forward(
        State(to): State<std::sync::Arc<std::sync::Mutex<Option<String>>>>,
        req: Request,
    ) -> axum::http::StatusCode {
        let Some(base) = to.lock().unwrap().clone() else {
            return axum::http::StatusCode::SERVICE_UNAVAILABLE;
        };
        let uri = req
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default();
        let body = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .unwrap();
        let r = reqwest::Client::new()
            .post(format!("{base}{uri}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        match r {
            Ok(r) => axum::http::StatusCode::from_u16(r.status().as_u16()).unwrap(),
            Err(_) => axum::http::StatusCode::BAD_GATEWAY,
        }
    }
    let app = axum::Router::new().fallback(forward).with_state(to);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn messages_sent_while_every_console_process_was_down_are_read_back_and_arrive_once(
    pool: PgPool,
) {
    use imshift::providers::tencent::sandbox::{spawn, SandboxConfig};
    use imshift::secrets::MasterKey;
    const KEY: [u8; 32] = [0x42; 32];
    let quick = |c: &mut imshift::web::Config| c.sync_gap_after = Duration::from_secs(1);
    let mut first = TestApp::spawn_keyed(pool.clone(), quick, MasterKey::from_bytes(KEY)).await;
    let owner = first.owner().await;
    let id = owner
        .new_migration("gap", "coexistence", "self_built", "tencent")
        .await;

    // The new system: a Tencent sandbox whose callbacks reach whichever console is up.
    let up = std::sync::Arc::new(std::sync::Mutex::new(Some(first.base.clone())));
    let door = callback_relay(up.clone()).await;
    let mut config = SandboxConfig::new(1_400_000_777, "gap-test-secret-key", "administrator");
    config.callback_url = Some(format!("{door}/hooks/{id}/target"));
    let tencent = spawn(config, ([127, 0, 0, 1], 0).into()).await.unwrap();
    let r = owner
        .api(
            Method::PUT,
            &format!("/api/v1/migrations/{id}/connections/target"),
            Some(
                json!({"fields": {"sdkappid": "1400000777", "region": "custom",
                "base_url": tencent.base_url(), "admin_identifier": "administrator",
                "secret_key": "gap-test-secret-key"}}),
            ),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    // The old system.
    let relay = own_relay(&first, &id, 0, &[]).await;
    point_source_at(&owner, &id, &relay.base_url()).await;
    assert_eq!(
        switch(&owner, &id, "target", true).await.status(),
        StatusCode::OK
    );

    let texts = |relay: &imshift::providers::self_built::sandbox::RelayHandle| -> Vec<String> {
        relay
            .received()
            .iter()
            .map(|e| {
                e["data"]["body"]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    };
    tencent
        .user_message("bob", "alice", false, "before")
        .unwrap();
    eventually("the first message at the old system", || async {
        (texts(&relay).len() == 1).then_some(())
    })
    .await;

    // Every console process goes down; the new app's users keep writing, and their
    // callbacks are lost.
    first._workers.take().unwrap().shutdown().await;
    *up.lock().unwrap() = None;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    tencent
        .user_message("bob", "alice", false, "during 1")
        .unwrap();
    tencent
        .user_message("alice", "bob", false, "during 2")
        .unwrap();
    // A chat that begins during the gap: imshift has never seen carol.
    tencent
        .user_message("carol", "bob", false, "new chat during")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(texts(&relay), ["before"], "nothing can arrive while down");

    // A process starts again: it finds the silence, reads the chats back (bob's list of
    // conversations names the new one), and sends what was lost, once, in order.
    let second = TestApp::spawn_keyed(pool.clone(), quick, MasterKey::from_bytes(KEY)).await;
    *up.lock().unwrap() = Some(second.base.clone());
    eventually("the lost messages at the old system", || async {
        (texts(&relay).len() >= 4).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = texts(&relay);
    let alice_and_bob: Vec<&String> = got.iter().filter(|t| !t.starts_with("new")).collect();
    assert_eq!(alice_and_bob, ["before", "during 1", "during 2"], "{got:?}");
    assert_eq!(got.len(), 4, "each once: {got:?}");
    assert!(got.contains(&"new chat during".to_string()), "{got:?}");
    let gap: (String, i64) = sqlx::query_as("SELECT state, recovered FROM sync_gaps")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(gap, ("filled".to_string(), 3));
    // The Sync tab's figures show it (the first process still answers pages).
    let view = sync_view(&owner, &id).await;
    assert_eq!(view["gaps"][0]["recovered"], 3, "{view}");
    assert_eq!(view["gaps"][0]["conversations"], 2);
    // Another migration of the console sees the gap with its own figures: nothing of its own.
    let other = owner
        .new_migration("other", "coexistence", "self_built", "tencent")
        .await;
    let view = sync_view(&owner, &other).await;
    assert_eq!(view["gaps"][0]["state"], "filled", "{view}");
    assert_eq!(view["gaps"][0]["recovered"], 0, "{view}");
    assert_eq!(view["gaps"][0]["conversations"], 0, "{view}");
    // Live events after the restart still arrive through callbacks.
    tencent
        .user_message("bob", "alice", false, "after")
        .unwrap();
    eventually("the next message", || async {
        (texts(&relay).len() == 5).then_some(())
    })
    .await;
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_canary_goes_through_each_direction_and_its_round_trip_is_shown(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| {
        c.sync_canary_every = Duration::from_secs(1);
    })
    .await;
    let owner = app.owner().await;
    let sides = coexisting(&owner).await;
    for side in ["source", "target"] {
        assert_eq!(
            switch(&owner, &sides.id, side, true).await.status(),
            StatusCode::OK
        );
    }
    let view = eventually("a canary back through both directions", || async {
        let v = sync_view(&owner, &sides.id).await;
        let back =
            |from: &str| direction(&v, from)["health"]["canary"]["round_trip_ms"].is_number();
        (back("source") && back("target")).then_some(v)
    })
    .await;
    for from in ["source", "target"] {
        let c = &direction(&view, from)["health"]["canary"];
        assert!(c["error"].is_null(), "{c}");
        assert!(c["received_ms"].as_f64().unwrap() <= c["round_trip_ms"].as_f64().unwrap());
        // A scraper sees the canary come through (one lost or still on its way reads -1;
        // one goes every second here, so the latest may be on its way).
        eventually("the canary gauge", || async {
            gauge(
                &app,
                "imshift_sync_canary_round_trip_seconds",
                &sides.id,
                from,
            )
            .await
            .filter(|t| *t >= 0.0)
        })
        .await;
    }
    // The canary is a message between imshift's own accounts, at the old system too.
    assert!(relay_received(&sides)
        .await
        .iter()
        .any(|e| e["data"]["from"] == "imshift_canary_a"
            && e["data"]["body"]["text"]
                .as_str()
                .unwrap()
                .starts_with("imshift canary ")));
}

/// The one-to-one texts a Tencent sandbox holds, by sender, in the order it stored them.
fn c2c_by_sender(export: &Value) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for list in export["c2c"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        for m in list.as_array().into_iter().flatten() {
            out.entry(m["from"].as_str().unwrap_or_default().to_string())
                .or_default()
                .push(
                    m["body"][0]["MsgContent"]["Text"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                );
        }
    }
    out
}

/// Polls `f` for up to two minutes (retries back off exponentially from 200 ms, and a
/// throttle halves the pace for a while).
async fn within_minutes<T, F, Fut>(what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    poll_for(what, Duration::from_secs(120), f).await
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn into_a_failing_throttling_then_stopped_new_system_every_event_arrives_once_in_order(
    pool: PgPool,
) {
    use imshift::providers::tencent::sandbox::{spawn, SandboxConfig, SandboxHandle};
    use imshift::providers::tencent::Limits;
    const APP: u64 = 1_400_000_555;
    const SECRET: &str = "faulty-tencent-secret-key";
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let sides = coexisting(&owner).await;
    let id = sides.id.clone();
    // The new system: a Tencent of the test's own that fails 20 % of calls with a retryable
    // error and allows 5 calls a second per API.
    let start = |port: u16, fault_rate: f64| async move {
        let mut c = SandboxConfig::new(APP, SECRET, "administrator");
        c.fault_rate = fault_rate;
        c.seed = 11;
        c.limits = Limits::default().with_all_qps(5);
        for _ in 0..100 {
            match spawn(c.clone(), ([127, 0, 0, 1], port).into()).await {
                Ok(h) => return h,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        panic!("port {port} stayed in use");
    };
    let tencent: SandboxHandle = start(0, 0.2).await;
    let port = tencent.addr.port();
    let r = owner
        .api(
            Method::PUT,
            &format!("/api/v1/migrations/{id}/connections/target"),
            Some(
                json!({"fields": {"sdkappid": APP.to_string(), "region": "custom",
                "base_url": tencent.base_url(), "admin_identifier": "administrator",
                "secret_key": SECRET}}),
            ),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    // imshift paces one-to-one messages a little faster than this Tencent allows, so it meets
    // throttles without collapsing its rate (each halves it for a while).
    let r = owner
        .api(
            Method::PUT,
            &format!("/api/v1/migrations/{id}/limits"),
            Some(json!({"openim/importmsg": {"qps": 8}})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(
        switch(&owner, &id, "source", true).await.status(),
        StatusCode::OK
    );

    // Old → new: 6 chats, one message each per batch, the batch numbered `n`.
    const CHATS: usize = 6;
    let said = |chat: usize, n: usize| format!("chat {chat} message {n}");
    let send_round = |n: usize| {
        let events: Vec<Value> = (1..=CHATS)
            .map(|chat| {
                let from = format!("user{chat}");
                text(
                    &format!("f-{chat}-{n}"),
                    "c2c",
                    &from,
                    "zoe",
                    &said(chat, n),
                )
            })
            .collect();
        old_system_sends(&sides, json!({ "events": events }))
    };
    // Every chat's messages of rounds `n`, in order.
    let want = |n: std::ops::RangeInclusive<usize>| {
        (1..=CHATS)
            .map(|chat| {
                (
                    format!("user{chat}"),
                    n.clone().map(|i| said(chat, i)).collect(),
                )
            })
            .collect::<std::collections::BTreeMap<String, Vec<String>>>()
    };
    let landed = |t: &SandboxHandle| {
        c2c_by_sender(&t.export())
            .values()
            .map(Vec::len)
            .sum::<usize>()
    };
    for n in 1..=3 {
        send_round(n).await;
    }
    within_minutes("18 messages in Tencent", || async {
        (landed(&tencent) >= 18).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        c2c_by_sender(&tencent.export()),
        want(1..=3),
        "each once, in order"
    );
    let retried: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sync_inbound WHERE migration_id = $1::uuid AND attempts > 0",
    )
    .bind(&id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(
        retried > 0,
        "the faults and throttles were met (and retried)"
    );

    // The new system stops: what the old one sends waits, and shows.
    drop(tencent);
    for n in 4..=5 {
        send_round(n).await;
    }
    let health = within_minutes("the direction failing", || async {
        let v = sync_view(&owner, &id).await;
        let h = direction(&v, "source")["health"].clone();
        (h["status"] == "failing" && h["backlog"] == 12).then_some(h)
    })
    .await;
    assert_eq!(health["errors"][0]["code"], "unreachable", "{health}");

    // It comes back (empty: a new instance) on the same address; the 12 arrive, in order.
    let tencent = start(port, 0.0).await;
    within_minutes("12 messages in the new Tencent", || async {
        (landed(&tencent) >= 12).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(c2c_by_sender(&tencent.export()), want(4..=5));
    let view = sync_view(&owner, &id).await;
    assert_eq!(direction(&view, "source")["health"]["backlog"], 0);
}

/// A relay event of `kind` with its own id.
fn event(kind: &str, id: &str, data: Value) -> Value {
    json!({"id": id, "type": kind, "at": now_ms(), "data": data})
}

/// The accounts on `owner`'s friend list in the Tencent sandbox.
fn friends_of(export: &Value, owner: &str) -> Vec<String> {
    export["friends"][owner]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect()
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn friend_changes_from_the_old_system_apply_both_ways_and_tencents_callback_is_an_echo(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let sides = coexisting(&owner).await;
    let id = sides.id.clone();
    for side in ["source", "target"] {
        assert_eq!(
            switch(&owner, &id, side, true).await.status(),
            StatusCode::OK
        );
    }
    // Neither account is in Tencent yet: both are registered on the way.
    let pair = json!({"owner": "alice", "friend": "bob"});
    old_system_sends(
        &sides,
        json!({"events": [event("friend.added", "f-1", pair.clone())]}),
    )
    .await;
    eventually("alice and bob friends both ways in Tencent", || async {
        let e = tencent_export(&sides).await;
        (friends_of(&e, "alice") == ["bob"] && friends_of(&e, "bob") == ["alice"]).then_some(())
    })
    .await;
    // friend_add fires Sns.CallbackFriendAdd with no opt-out: it arrives and is kept as an
    // echo by the pair's fingerprint.
    eventually("the friend_add callback kept as an echo", || async {
        let v = sync_view(&owner, &id).await;
        (direction(&v, "target")["health"]["echo_filtered"] == 1).then_some(())
    })
    .await;

    old_system_sends(
        &sides,
        json!({"events": [event("friend.removed", "f-2", pair)]}),
    )
    .await;
    eventually("alice and bob no longer friends", || async {
        let e = tencent_export(&sides).await;
        (friends_of(&e, "alice").is_empty() && friends_of(&e, "bob").is_empty()).then_some(())
    })
    .await;
    // Let anything that was going to travel back travel.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        relay_received(&sides).await.is_empty(),
        "something travelled back to the old system"
    );
    let view = sync_view(&owner, &id).await;
    let old_to_new = &direction(&view, "source")["health"];
    assert_eq!(old_to_new["sent_total"], 2, "{view}");
    assert_eq!(old_to_new["dead"], 0, "{view}");
    let new_to_old = &direction(&view, "target")["health"];
    assert_eq!(new_to_old["sent_total"], 0, "{view}");
    // friend_delete fires Sns.CallbackFriendDelete too: an echo by the same fingerprint.
    assert_eq!(new_to_old["echo_filtered"], 2, "{view}");
}

fn message_at(id: &str, conv: &str, from: &str, to: &str, body: &str, sent_at: i64) -> Value {
    json!({"id": id, "type": "message.sent", "at": sent_at,
           "data": {"id": id, "conv": conv, "from": from, "to": to, "sent_at": sent_at,
                    "body": {"type": "text", "text": body}}})
}

fn recall(id: &str, message: &str, conv: &str, from: &str, to: &str, sent_at: i64) -> Value {
    event(
        "message.recalled",
        id,
        json!({"id": message, "conv": conv, "from": from, "to": to, "sent_at": sent_at,
               "by": from}),
    )
}

/// Whether each stored message (one-to-one, then group `g1`'s) is marked recalled.
fn recalled(export: &Value) -> (Vec<bool>, Vec<bool>) {
    let flag = |m: &Value| m["recalled"].as_bool().unwrap_or(false);
    let c2c = export["c2c"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .flat_map(|l| l.as_array().cloned().unwrap_or_default())
        .map(|m| flag(&m))
        .collect();
    let group = export["groups"]["g1"]["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(flag)
        .collect();
    (c2c, group)
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn recalls_from_the_old_system_recall_the_message_in_tencent_and_an_unknown_one_is_a_dead_letter(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let sides = coexisting(&owner).await;
    let id = sides.id.clone();
    for side in ["source", "target"] {
        assert_eq!(
            switch(&owner, &id, side, true).await.status(),
            StatusCode::OK
        );
    }
    // Sent a moment ago: the group was made before.
    let at = now_ms() - 1_234;
    let mut created = group_created("g1", "alice", &["alice", "bob"]);
    created["at"] = json!(at - 1_000);
    old_system_sends(
        &sides,
        json!({"events": [
            created,
            message_at("old-g-1", "group", "alice", "g1", "oops, group", at),
            message_at("old-c-1", "c2c", "alice", "bob", "oops", at),
        ]}),
    )
    .await;
    eventually("both messages in Tencent", || async {
        let e = tencent_export(&sides).await;
        (recalled(&e) == (vec![false], vec![false])).then_some(())
    })
    .await;

    old_system_sends(
        &sides,
        json!({"events": [
            recall("r-g-1", "old-g-1", "group", "alice", "g1", at),
            recall("r-c-1", "old-c-1", "c2c", "alice", "bob", at),
        ]}),
    )
    .await;
    // Tencent's roaming history keeps them, marked recalled (admin_getroammsg answers
    // MsgFlagBits 8, group_msg_get_simple IsPlaceMsg 2: tests/tencent/recalls.rs).
    eventually("both recalled in Tencent", || async {
        let e = tencent_export(&sides).await;
        (recalled(&e) == (vec![true], vec![true])).then_some(())
    })
    .await;

    // Recalls of messages that never reached Tencent: dead letters saying so.
    old_system_sends(
        &sides,
        json!({"events": [
            recall("r-g-2", "old-g-404", "group", "alice", "g1", at),
            recall("r-c-2", "old-c-404", "c2c", "bob", "alice", at),
        ]}),
    )
    .await;
    eventually("two dead letters", || async {
        let v = sync_view(&owner, &id).await;
        (direction(&v, "source")["health"]["dead"] == 2).then_some(())
    })
    .await;
    let log = dead_letters(&owner, &id).await;
    let dead: Vec<(String, String)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["key"].as_str().unwrap().to_string(),
                e["error"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(dead.len(), 2, "{log}");
    let why = |key: &str| dead.iter().find(|(k, _)| k == key).unwrap().1.clone();
    let group = why("r-g-2");
    assert!(
        group.contains("old-g-404") && group.contains("never synced"),
        "{group}"
    );
    let c2c = why("r-c-2");
    assert!(
        c2c.contains("old-c-404") && c2c.contains("never synced"),
        "{c2c}"
    );
    let export = tencent_export(&sides).await;
    assert_eq!(
        recalled(&export),
        (vec![true], vec![true]),
        "nothing else touched"
    );
    // Tencent reported both recalls back: echoes (with the group's creation), not relayed.
    assert!(relay_received(&sides).await.is_empty());
    assert_eq!(
        direction(&sync_view(&owner, &id).await, "target")["health"]["echo_filtered"],
        3
    );
    assert_eq!(
        direction(&sync_view(&owner, &id).await, "source")["health"]["sent_total"],
        5
    );
}

/// Sends as a user of the Tencent sandbox and answers the message's id there (a `MsgKey`, or
/// `{group}:{seq}`).
async fn new_app_user_sends_id(
    sides: &Sides,
    from: &str,
    to: &str,
    group: bool,
    body: &str,
) -> String {
    let r = reqwest::Client::new()
        .post(format!("{}/_sandbox/user_message", sides.tencent))
        .json(&json!({"from": from, "to": to, "group": group, "text": body}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// A user of the Tencent sandbox recalls a message or ends a friendship, from a phone.
async fn new_app_user_does(sides: &Sides, action: Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/_sandbox/user_action", sides.tencent))
        .json(&action)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
}

/// The `MsgKey` of the one-to-one message whose text is `body`, in the Tencent sandbox.
fn c2c_key_of(export: &Value, body: &str) -> String {
    export["c2c"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .flat_map(|l| l.as_array().cloned().unwrap_or_default())
        .find(|m| m["body"][0]["MsgContent"]["Text"] == body)
        .map(|m| format!("{}_{}_{}", m["seq"], m["random"], m["time"]))
        .unwrap_or_else(|| panic!("no message {body:?} in {export}"))
}

fn group_seq_of(export: &Value, group: &str, body: &str) -> u64 {
    export["groups"][group]["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["body"][0]["MsgContent"]["Text"] == body)
        .and_then(|m| m["seq"].as_u64())
        .unwrap_or_else(|| panic!("no message {body:?} in group {group}: {export}"))
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn recalls_and_unfriending_in_tencent_reach_the_old_system_by_its_own_ids_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let sides = coexisting(&owner).await;
    let id = sides.id.clone();
    assert_eq!(
        switch(&owner, &id, "source", true).await.status(),
        StatusCode::OK
    );
    let at = now_ms() - 1_000;
    let mut created = group_created("g1", "alice", &["alice", "bob"]);
    created["at"] = json!(at - 1_000);
    old_system_sends(
        &sides,
        json!({"events": [
            created,
            message_at("old-g-1", "group", "alice", "g1", "old group text", at),
            message_at("old-c-1", "c2c", "alice", "bob", "old c2c text", at),
            event("friend.added", "f-1", json!({"owner": "alice", "friend": "bob"})),
        ]}),
    )
    .await;
    let export = eventually(
        "the old system's messages and friendship in Tencent",
        || async {
            let e = tencent_export(&sides).await;
            (c2c_texts(&e).len() == 1
                && group_texts(&e, "g1").len() == 1
                && friends_of(&e, "bob") == ["alice"])
            .then_some(e)
        },
    )
    .await;
    let old_c2c_key = c2c_key_of(&export, "old c2c text");
    let old_group_seq = group_seq_of(&export, "g1", "old group text");

    // Sent in Tencent while the new → old direction is off: kept, never relayed.
    let unrelayed = new_app_user_sends_id(&sides, "bob", "alice", false, "before sync").await;
    assert_eq!(
        switch(&owner, &id, "target", true).await.status(),
        StatusCode::OK
    );
    let new_c2c = new_app_user_sends_id(&sides, "bob", "alice", false, "new c2c text").await;
    let new_group = new_app_user_sends_id(&sides, "bob", "g1", true, "new group text").await;
    let second = new_app_user_sends_id(&sides, "bob", "alice", false, "second").await;
    eventually("the new app's three messages at the old system", || async {
        (relay_received(&sides).await.len() == 3).then_some(())
    })
    .await;

    // The new app's users recall four messages: two of their own, two the old system sent.
    let new_group_seq: u64 = new_group.rsplit(':').next().unwrap().parse().unwrap();
    for action in [
        json!({"from": "bob", "to": "alice", "key": new_c2c}),
        json!({"by": "bob", "group": "g1", "seq": new_group_seq}),
        json!({"from": "alice", "to": "bob", "key": old_c2c_key}),
        json!({"by": "alice", "group": "g1", "seq": old_group_seq}),
        json!({"from": "bob", "to": "alice", "key": unrelayed}),
        json!({"unfriend": true, "from": "bob", "to": "alice"}),
    ] {
        new_app_user_does(&sides, action).await;
    }
    // The old system recalls the new app's "second" by the id it received it with.
    old_system_sends(
        &sides,
        json!({"events": [recall("r-old-1", &second, "c2c", "bob", "alice", now_ms())]}),
    )
    .await;
    eventually("second recalled in Tencent", || async {
        let e = tencent_export(&sides).await;
        let (c2c, _) = recalled(&e);
        (c2c.iter().filter(|r| **r).count() == 4).then_some(())
    })
    .await;
    let received = eventually(
        "four recalls and the unfriending at the old system",
        || async {
            let r = relay_received(&sides).await;
            (r.len() >= 8).then_some(r)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again = relay_received(&sides).await;
    assert_eq!(again.len(), received.len(), "more arrived later: {again:?}");

    let recalls: Vec<(String, String, String)> = received
        .iter()
        .filter(|e| e["type"] == "message.recalled")
        .map(|e| {
            assert!(e["data"].get("refs").is_none(), "{e}");
            let s = |k: &str| e["data"][k].as_str().unwrap_or_default().to_string();
            (s("id"), s("conv"), s("from"))
        })
        .collect();
    let mut want = vec![
        (new_c2c.clone(), "c2c".to_string(), "bob".to_string()),
        (new_group.clone(), "group".into(), "bob".into()),
        // The old system's own messages come back under its own ids.
        ("old-c-1".into(), "c2c".into(), "alice".into()),
        ("old-g-1".into(), "group".into(), "alice".into()),
    ];
    let mut got = recalls.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "{received:?}");
    let removed: Vec<&Value> = received
        .iter()
        .filter(|e| e["type"] == "friend.removed")
        .collect();
    assert_eq!(removed.len(), 1, "{received:?}");
    // bob ended it: the friendship of bob and alice, from bob's list.
    assert_eq!(
        removed[0]["data"],
        json!({"owner": "bob", "friend": "alice"})
    );

    // The recall of a message never relayed is a dead letter that says why; imshift's own
    // writes into Tencent (the group, the friendship, the recall of "second") came back as
    // echoes.
    let view = eventually("one dead letter", || async {
        let v = sync_view(&owner, &id).await;
        (direction(&v, "target")["health"]["dead"] == 1).then_some(v)
    })
    .await;
    let new_to_old = &direction(&view, "target")["health"];
    assert_eq!(new_to_old["echo_filtered"], 3, "{view}");
    assert_eq!(new_to_old["sent_total"], 8, "{view}");
    let log = dead_letters(&owner, &id).await;
    let why = log[0]["error"].as_str().unwrap_or_default();
    assert!(
        why.contains(&unrelayed) && why.contains("never relayed"),
        "{log}"
    );
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn profile_changes_travel_both_ways_with_every_field_and_no_echo(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let sides = coexisting(&owner).await;
    let id = sides.id.clone();
    for side in ["source", "target"] {
        assert_eq!(
            switch(&owner, &id, side, true).await.status(),
            StatusCode::OK
        );
    }
    // Old → new: nick and avatar with the account, the rest through portrait_set.
    old_system_sends(
        &sides,
        json!({"events": [event("account.upserted", "a-1", json!({
            "id": "alice", "nick": "Alice", "avatar": "https://old.example/a.png",
            "gender": "female", "birthday": "1990-04-01", "signature": "moved"}))]}),
    )
    .await;
    let export = eventually("alice's profile in Tencent", || async {
        let e = tencent_export(&sides).await;
        (e["accounts"]["alice"]["profile"]["Tag_Profile_IM_SelfSignature"] == "moved").then_some(e)
    })
    .await;
    let alice = &export["accounts"]["alice"];
    assert_eq!(alice["nick"], "Alice", "{alice}");
    assert_eq!(alice["face_url"], "https://old.example/a.png");
    assert_eq!(
        alice["profile"]["Tag_Profile_IM_Gender"],
        "Gender_Type_Female"
    );
    assert_eq!(alice["profile"]["Tag_Profile_IM_BirthDay"], 19_900_401);

    // New → old: bob changes his profile in the new app.
    new_app_user_sends(&sides, "bob", "alice", false, "hello").await;
    new_app_user_does(
        &sides,
        json!({"from": "bob", "profile": [
            {"Tag": "Tag_Profile_IM_Nick", "Value": "Bobby"},
            {"Tag": "Tag_Profile_IM_Gender", "Value": "Gender_Type_Male"},
            {"Tag": "Tag_Profile_IM_BirthDay", "Value": 19_851_224},
        ]}),
    )
    .await;
    let received = eventually("bob's message and profile at the old system", || async {
        let r = relay_received(&sides).await;
        (r.len() >= 2).then_some(r)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(relay_received(&sides).await.len(), 2, "{received:?}");
    let profile = received
        .iter()
        .find(|e| e["type"] == "account.upserted")
        .unwrap_or_else(|| panic!("{received:?}"));
    assert_eq!(
        profile["data"],
        json!({"id": "bob", "nick": "Bobby", "gender": "male", "birthday": "1985-12-24"})
    );
    // imshift's own portrait_set for alice came back: an echo by the account's fingerprint.
    let view = sync_view(&owner, &id).await;
    assert_eq!(
        direction(&view, "target")["health"]["echo_filtered"],
        1,
        "{view}"
    );
    assert_eq!(
        direction(&view, "target")["health"]["sent_total"],
        2,
        "{view}"
    );
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn messages_the_import_moved_can_be_recalled_from_the_old_system(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let sides = coexisting(&owner).await;
    let id = sides.id.clone();
    let at = now_ms() - 3_600_000;
    let dump = [
        json!({"kind": "account", "id": "alice", "nick": "Alice"}),
        json!({"kind": "account", "id": "bob", "nick": "Bob"}),
        json!({"kind": "group", "id": "g1", "type": "private", "name": "Team", "owner": "alice",
               "created_at": at - 60_000}),
        json!({"kind": "member", "group": "g1", "account": "alice", "role": "owner"}),
        json!({"kind": "member", "group": "g1", "account": "bob", "role": "member"}),
        json!({"kind": "message", "id": "m-1", "conv": "group", "from": "alice", "to": "g1",
               "sent_at": at, "body": {"type": "text", "text": "imported group text"}}),
        json!({"kind": "message", "id": "m-2", "conv": "group", "from": "bob", "to": "g1",
               "sent_at": at + 1_000, "body": {"type": "text", "text": "kept"}}),
        json!({"kind": "message", "id": "c-1", "conv": "c2c", "from": "alice", "to": "bob",
               "sent_at": at, "body": {"type": "text", "text": "imported c2c text"}}),
    ]
    .iter()
    .map(|l| format!("{l}\n"))
    .collect::<String>();
    stage_dump(&app, &owner, &id, "dump.jsonl", dump).await;
    let run = owner
        .json(
            Method::POST,
            &format!("/api/v1/migrations/{id}/imports"),
            None,
        )
        .await;
    let run = run["id"].as_str().expect("a run").to_string();
    poll_for("the import done", Duration::from_secs(120), || async {
        let r = owner
            .json(
                Method::GET,
                &format!("/api/v1/migrations/{id}/imports/{run}"),
                None,
            )
            .await;
        assert!(
            !["failed", "cancelled"].contains(&r["state"].as_str().unwrap()),
            "{r}"
        );
        (r["state"] == "done").then_some(())
    })
    .await;
    // The seq Tencent gave each group message is in the id map, under group and message id.
    let map = owner
        .json(
            Method::GET,
            &format!("/api/v1/migrations/{id}/id-map?kind=message"),
            None,
        )
        .await;
    let olds: Vec<&str> = map["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["old_id"].as_str().unwrap())
        .collect();
    assert_eq!(olds, ["g1:m-1", "g1:m-2"], "{map}");

    assert_eq!(
        switch(&owner, &id, "source", true).await.status(),
        StatusCode::OK
    );
    old_system_sends(
        &sides,
        json!({"events": [
            recall("r-1", "m-1", "group", "alice", "g1", at),
            recall("r-2", "c-1", "c2c", "alice", "bob", at),
        ]}),
    )
    .await;
    eventually("both imported messages recalled in Tencent", || async {
        let e = tencent_export(&sides).await;
        (recalled(&e) == (vec![true], vec![true, false])).then_some(())
    })
    .await;
    let view = sync_view(&owner, &id).await;
    assert_eq!(direction(&view, "source")["health"]["dead"], 0, "{view}");
    // The Sync tab's id map finds it by the old system's id.
    let pairs = owner
        .json(
            Method::GET,
            &format!("/api/v1/migrations/{id}/sync/id-map?q=m-1"),
            None,
        )
        .await;
    let pairs = pairs.as_array().unwrap();
    assert_eq!(pairs.len(), 1, "{pairs:?}");
    assert_eq!(pairs[0]["kind"], "message");
    assert_eq!(pairs[0]["via"], "import");
    assert_eq!(pairs[0]["old_id"], "g1:m-1");
    assert!(
        pairs[0]["new_id"]
            .as_str()
            .unwrap()
            .starts_with("group:g1:"),
        "{pairs:?}"
    );
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn with_a_reorder_window_a_callback_that_was_overtaken_still_goes_first(pool: PgPool) {
    use imshift::providers::tencent::callbacks::sign;
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let sides = coexisting(&owner).await;
    let id = sides.id.clone();
    let path = format!("/api/v1/migrations/{id}/connections/target");
    let view = owner.json(Method::GET, &path, None).await;
    let values = &view["values"];
    let mut fields = json!({
        "sdkappid": values["sdkappid"], "region": values["region"], "base_url": values["base_url"],
        "admin_identifier": values["admin_identifier"], "callback_token": "reorder-token",
        "reorder_ms": 99_999,
    });
    // Past ten seconds a window costs more than it fixes: refused, saying so.
    let r = owner
        .api(Method::PUT, &path, Some(json!({ "fields": fields })))
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("reorder window"));
    fields["reorder_ms"] = json!(2_000);
    let r = owner
        .api(Method::PUT, &path, Some(json!({ "fields": fields })))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let saved = owner.json(Method::GET, &path, None).await;
    assert_eq!(saved["values"]["reorder_ms"], 2_000, "{saved}");
    assert_eq!(
        switch(&owner, &id, "target", true).await.status(),
        StatusCode::OK
    );

    // Bob's second message reaches imshift before his first (Tencent's callbacks overtake).
    let t = now_ms() / 1000 - 5;
    let callback = |n: i64, text: &str| {
        json!({"CallbackCommand": "C2C.CallbackAfterSendMsg", "From_Account": "bob",
               "To_Account": "alice", "MsgSeq": n, "MsgRandom": n, "MsgTime": t + n,
               "MsgKey": format!("{n}_{n}_{}", t + n), "SendMsgResult": 0, "ErrorInfo": "",
               "UnreadMsgNum": 1, "EventTime": (t + n) * 1000,
               "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}]})
        .to_string()
    };
    let sdkappid = values["sdkappid"].as_i64().unwrap();
    let post = |body: String| {
        let now = now_ms() / 1000;
        let url = format!(
            "{}/hooks/{id}/target?SdkAppid={sdkappid}&CallbackCommand=C2C.CallbackAfterSendMsg&contenttype=json&ClientIP=127.0.0.1&OptPlatform=iOS&Sign={}&RequestTime={now}",
            app.base,
            sign("reorder-token", now)
        );
        let client = app.anon();
        async move {
            let r = client
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        }
    };
    post(callback(2, "second")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    post(callback(1, "first")).await;
    let received = eventually("both at the old system", || async {
        let r = relay_received(&sides).await;
        (r.len() == 2).then_some(r)
    })
    .await;
    let texts: Vec<&str> = received
        .iter()
        .map(|e| e["data"]["body"]["text"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(texts, ["first", "second"], "in the order they were sent");
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn with_a_reorder_window_an_old_systems_overtaken_post_still_goes_first(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let sides = coexisting(&owner).await;
    let id = sides.id.clone();
    let path = format!("/api/v1/migrations/{id}/connections/source");
    let view = owner.json(Method::GET, &path, None).await;
    let mut fields = json!({"relay_url": view["values"]["relay_url"], "reorder_ms": "soon"});
    let r = owner
        .api(Method::PUT, &path, Some(json!({ "fields": fields })))
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("reorder window"));
    fields["reorder_ms"] = json!("800");
    let r = owner
        .api(Method::PUT, &path, Some(json!({ "fields": fields })))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let saved = owner.json(Method::GET, &path, None).await;
    assert_eq!(saved["values"]["reorder_ms"], 800, "{saved}");
    assert_eq!(saved["complete"], true, "the secrets were kept: {saved}");
    assert_eq!(
        switch(&owner, &id, "source", true).await.status(),
        StatusCode::OK
    );

    // Two of the old system's workers post one chat's messages; the later one lands first.
    let at = now_ms() - 5_000;
    let said = |id: &str, n: i64, body: &str| {
        let mut e = text(id, "c2c", "alice", "bob", body);
        e["at"] = json!(at + n);
        e["data"]["sent_at"] = json!(at + n);
        e
    };
    old_system_sends(&sides, json!({"events": [said("r-2", 2, "second")]})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    old_system_sends(&sides, json!({"events": [said("r-1", 1, "first")]})).await;
    let texts = eventually("both in Tencent", || async {
        let t = c2c_texts(&tencent_export(&sides).await);
        (t.len() == 2).then_some(t)
    })
    .await;
    assert_eq!(texts, ["first", "second"], "in the order they were sent");
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_direction_waiting_on_its_quota_does_not_hold_up_the_other(pool: PgPool) {
    // The sender has a fixed number of events in flight. Old → new paced at one message a
    // second over more chats than that: its sends wait on the quota, and the new app's message
    // must still reach the old system at once, not after the old side's backlog.
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let sides = coexisting(&owner).await;
    let id = sides.id.clone();
    let r = owner
        .api(
            Method::PUT,
            &format!("/api/v1/migrations/{id}/limits"),
            Some(json!({"openim/importmsg": {"qps": 1}})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    for side in ["source", "target"] {
        assert_eq!(
            switch(&owner, &id, side, true).await.status(),
            StatusCode::OK
        );
    }
    const CHATS: usize = 100;
    let events: Vec<Value> = (0..CHATS)
        .map(|i| {
            text(
                &format!("backlog-{i:03}"),
                "c2c",
                &format!("user{i:03}"),
                "zoe",
                &format!("old message {i}"),
            )
        })
        .collect();
    old_system_sends(&sides, json!({ "events": events })).await;
    eventually("the old side's backlog under way", || async {
        (!c2c_texts(&tencent_export(&sides).await).is_empty()).then_some(())
    })
    .await;

    new_app_user_sends(&sides, "zoe", "user000", false, "from the new app").await;
    poll_for(
        "the new app's message at the old system",
        Duration::from_secs(10),
        || async {
            relay_received(&sides)
                .await
                .iter()
                .any(|e| e["data"]["body"]["text"] == "from the new app")
                .then_some(())
        },
    )
    .await;
    let moved = c2c_texts(&tencent_export(&sides).await).len();
    assert!(
        moved < CHATS / 2,
        "the old side's backlog was mostly through ({moved} of {CHATS}) before the new app's message went"
    );
}
