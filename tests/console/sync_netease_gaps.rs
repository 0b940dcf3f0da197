//! Coexistence sync's gap filling with NetEase Yunxin: what its users wrote while every console
//! process was down (their message copies (抄送) lost) is read back from NetEase's history
//! when a process starts again, and reaches the old system once each, in order.

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const APP_KEY: &str = "0123456789abcdef0123456789abcdef";
const SECRET: &str = "gap-netease-secret";

async fn get(url: String) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// Stands between NetEase's copies and the console: forwards each (its signature headers
/// too) to whichever console process is up, and fails it (503) while none is.
async fn copy_door(to: Arc<Mutex<Option<String>>>) -> String {
    async fn forward(
        axum::extract::State(to): axum::extract::State<Arc<Mutex<Option<String>>>>,
        req: axum::extract::Request,
    ) -> axum::http::StatusCode {
        let Some(base) = to.lock().unwrap().clone() else {
            return axum::http::StatusCode::SERVICE_UNAVAILABLE;
        };
        let uri = req
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default();
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in req.headers() {
            if !matches!(k.as_str(), "host" | "content-length") {
                if let (Ok(k), Ok(v)) = (
                    reqwest::header::HeaderName::from_bytes(k.as_str().as_bytes()),
                    reqwest::header::HeaderValue::from_bytes(v.as_bytes()),
                ) {
                    headers.insert(k, v);
                }
            }
        }
        let body = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .unwrap();
        let r = reqwest::Client::new()
            .post(format!("{base}{uri}"))
            .headers(headers)
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

/// Sends as a user of NetEase's app (copied to the console as a phone's send would be).
async fn new_app_user_sends(netease: &str, from: &str, to: &str, group: bool, text: &str) {
    let r = reqwest::Client::new()
        .post(format!("{netease}/_sandbox/user_message"))
        .json(&json!({"from": from, "to": to, "group": group, "text": text}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
}

/// What the relay sandbox (the old system) received from imshift, as (conv, to, text).
async fn received(relay: &str) -> Vec<(String, String, String)> {
    get(format!("{relay}events")).await["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let d = &e["data"];
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (s(&d["conv"]), s(&d["to"]), s(&d["body"]["text"]))
        })
        .collect()
}

/// The texts of one kind of conversation the old system received, in the order received.
fn texts_of(got: &[(String, String, String)], conv: &str) -> Vec<String> {
    got.iter()
        .filter(|(c, _, _)| c == conv)
        .map(|(_, _, t)| t.clone())
        .collect()
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn with_netease_messages_sent_while_every_console_process_was_down_are_read_back_once(
    pool: PgPool,
) {
    use imshift::providers::netease::sandbox::{spawn, SandboxConfig};
    use imshift::secrets::MasterKey;
    const KEY: [u8; 32] = [0x24; 32];
    let quick = |c: &mut imshift::web::Config| c.sync_gap_after = Duration::from_secs(1);
    let mut first = TestApp::spawn_keyed(pool.clone(), quick, MasterKey::from_bytes(KEY)).await;
    let owner = first.owner().await;
    let id = owner
        .new_migration("gap-netease", "coexistence", "self_built", "netease")
        .await;

    // The old system: the relay sandbox.
    let source = owner
        .json(
            Method::POST,
            &format!("/api/v1/migrations/{id}/connections/source/sandbox"),
            None,
        )
        .await;
    let relay = source["values"]["relay_url"]
        .as_str()
        .expect("relay_url")
        .to_string();
    // The new system: a NetEase sandbox whose copies reach whichever console is up, and give
    // up soon when none is (NetEase's own retries are UNCONFIRMED).
    let up = Arc::new(Mutex::new(Some(first.base.clone())));
    let door = copy_door(up.clone()).await;
    let mut config = SandboxConfig::new(APP_KEY, SECRET);
    config.copy.hook_url = Some(format!("{door}/hooks/{id}/target"));
    config.copy.retries = 1;
    config.copy.retry_delay_ms = 100;
    let sandbox = spawn(config, ([127, 0, 0, 1], 0).into()).await.unwrap();
    let netease = sandbox.root_url();
    let r = owner
        .api(
            Method::PUT,
            &format!("/api/v1/migrations/{id}/connections/target"),
            Some(
                json!({"fields": {"app_key": APP_KEY, "data_centre": "custom",
                                   "base_url": sandbox.base_url(), "app_secret": SECRET}}),
            ),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    for side in ["source", "target"] {
        let r = owner
            .api(
                Method::PUT,
                &format!("/api/v1/migrations/{id}/sync/{side}"),
                Some(json!({ "enabled": true })),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    }

    // One message each way works: the old system makes a team and writes in it and one to
    // one; NetEase's users answer one to one only, so NetEase's team is known to imshift by
    // the old system's id of it alone.
    let members = [
        json!({"group": "g1", "account": "alice", "role": "owner"}),
        json!({"group": "g1", "account": "bob", "role": "member"}),
    ];
    let r = reqwest::Client::new()
        .post(format!("{relay}send"))
        .json(&json!({"events": [
            {"type": "group.created", "at": now_ms(),
             "data": {"id": "g1", "type": "private", "name": "Team", "owner": "alice", "members": members}},
            {"id": "old-g-1", "type": "message.sent", "at": now_ms(),
             "data": {"id": "old-g-1", "conv": "group", "from": "alice", "to": "g1", "sent_at": now_ms(),
                      "body": {"type": "text", "text": "to the team from the old app"}}},
            {"id": "old-c-1", "type": "message.sent", "at": now_ms(),
             "data": {"id": "old-c-1", "conv": "c2c", "from": "alice", "to": "bob", "sent_at": now_ms(),
                      "body": {"type": "text", "text": "from the old app"}}},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let tid = poll_for(
        "the team and both messages in NetEase",
        Duration::from_secs(30),
        || async {
            let teams = sandbox.teams();
            let tid = teams.as_array()?.first()?["tid"].as_str()?.to_string();
            (sandbox.messages().as_array()?.len() == 2).then_some(tid)
        },
    )
    .await;
    new_app_user_sends(&netease, "bob", "alice", false, "before").await;
    poll_for(
        "the answer at the old system",
        Duration::from_secs(30),
        || async { (received(&relay).await.len() == 1).then_some(()) },
    )
    .await;

    // Every console process goes down; NetEase's users keep writing, more than one history
    // page (100) in their one-to-one chat, and every copy is lost.
    first._workers.take().unwrap().shutdown().await;
    *up.lock().unwrap() = None;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let during: Vec<String> = (1..=105).map(|i| format!("during {i}")).collect();
    for (i, t) in during.iter().enumerate() {
        let (from, to) = if i % 2 == 0 {
            ("alice", "bob")
        } else {
            ("bob", "alice")
        };
        new_app_user_sends(&netease, from, to, false, t).await;
    }
    let team_during = ["team during 1", "team during 2", "team during 3"];
    for (i, t) in team_during.iter().enumerate() {
        let from = if i % 2 == 0 { "bob" } else { "alice" };
        new_app_user_sends(&netease, from, &tid, true, t).await;
    }
    let lost = (during.len() + team_during.len()) as u64;
    poll_for(
        "every copy given up on",
        Duration::from_secs(30),
        || async {
            let c = get(format!("{netease}/_sandbox/copy")).await;
            (c["given_up"].as_u64() == Some(lost)).then_some(())
        },
    )
    .await;
    assert_eq!(
        received(&relay).await.len(),
        1,
        "nothing arrives while down"
    );

    // A process starts again: it finds the silence, reads both chats back, and sends what was
    // lost, once, in order.
    let second = TestApp::spawn_keyed(pool.clone(), quick, MasterKey::from_bytes(KEY)).await;
    *up.lock().unwrap() = Some(second.base.clone());
    poll_for(
        "the lost messages at the old system",
        Duration::from_secs(90),
        || async { (received(&relay).await.len() as u64 > lost).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = received(&relay).await;
    let mut want_c2c = vec!["before".to_string()];
    want_c2c.extend(during.iter().cloned());
    assert_eq!(texts_of(&got, "c2c"), want_c2c, "each once, in order");
    assert_eq!(texts_of(&got, "group"), team_during, "each once, in order");
    assert!(
        got.iter()
            .filter(|(c, _, _)| c == "group")
            .all(|(_, to, _)| to == "g1"),
        "the old system hears of its own group: {got:?}"
    );
    assert_eq!(got.len() as u64, 1 + lost);

    // The Sync tab shows the gap filled: what was recovered, from how many conversations (the
    // one-to-one chat, the old system's id of the team and NetEase's, read under the latter),
    // and nothing it could not read. The first process still answers pages.
    let gap: (String, i64) = sqlx::query_as("SELECT state, recovered FROM sync_gaps")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(gap, ("filled".to_string(), lost as i64));
    let view = owner
        .json(Method::GET, &format!("/api/v1/migrations/{id}/sync"), None)
        .await;
    let g = &view["gaps"][0];
    assert_eq!(g["recovered"], lost, "{view}");
    assert_eq!(g["conversations"], 3, "{view}");
    assert_eq!(g["problems"], json!([]), "{view}");
    // imshift's own sends into NetEase were read back too, and known for what they are.
    let echoes: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sync_inbound WHERE side = 'target' AND state = 'echo'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(echoes, 2);

    // Live messages after the restart still arrive through the copy.
    new_app_user_sends(&netease, "bob", "alice", false, "after").await;
    poll_for("the next message", Duration::from_secs(30), || async {
        let got = received(&relay).await;
        (texts_of(&got, "c2c").last().map(String::as_str) == Some("after")).then_some(())
    })
    .await;
    assert_eq!(received(&relay).await.len() as u64, 2 + lost);
}
