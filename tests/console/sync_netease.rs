//! Coexistence sync with NetEase Yunxin end to end over HTTP: a migration rehearses a
//! self-built old system (the relay sandbox) beside NetEase (its sandbox, which copies its
//! users' messages (抄送) to the console's door, signed), turns both directions on, and
//! messages and team changes travel each way exactly once, with no echo whichever guard is
//! left, through a NetEase outage, with a dead letter replayable once its cause is fixed.

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::time::Duration;

struct Sides {
    id: String,
    /// The relay sandbox's address (ends with `/`).
    relay: String,
    /// Where the NetEase sandbox's `/_sandbox/*` lives.
    netease: String,
}

async fn coexisting(owner: &Browser) -> Sides {
    let id = owner
        .new_migration("coexist-netease", "coexistence", "self_built", "netease")
        .await;
    let mut values = vec![];
    for side in ["source", "target"] {
        values.push(
            owner
                .json(
                    Method::POST,
                    &format!("/api/v1/migrations/{id}/connections/{side}/sandbox"),
                    None,
                )
                .await,
        );
    }
    let relay = values[0]["values"]["relay_url"]
        .as_str()
        .expect("relay_url")
        .to_string();
    let base = values[1]["values"]["base_url"]
        .as_str()
        .expect("base_url")
        .to_string();
    let netease = base.trim_end_matches("/nimserver").to_string();
    Sides { id, relay, netease }
}

async fn both_on(owner: &Browser, id: &str) {
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
}

async fn get(url: String) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// What the relay sandbox (the old system) received from imshift.
async fn relay_received(sides: &Sides) -> Vec<Value> {
    get(format!("{}events", sides.relay)).await["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Sends events as the old system, through the relay sandbox (it signs them).
async fn old_system_sends(sides: &Sides, events: Vec<Value>) {
    let r = reqwest::Client::new()
        .post(format!("{}send", sides.relay))
        .json(&json!({ "events": events }))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["status"], 200, "imshift's answer: {v}");
}

/// Sends as a user of NetEase's app (copied to the console as a phone's send would be).
async fn new_app_user_sends(sides: &Sides, from: &str, to: &str, group: bool, text: &str) {
    let r = reqwest::Client::new()
        .post(format!("{}/_sandbox/user_message", sides.netease))
        .json(&json!({"from": from, "to": to, "group": group, "text": text}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
}

async fn teams(sides: &Sides) -> Vec<Value> {
    get(format!("{}/_sandbox/teams", sides.netease))
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The team NetEase holds for old group `group` (by the source id in its `custom`).
async fn team_for(sides: &Sides, group: &str) -> Option<Value> {
    teams(sides).await.into_iter().find(|t| {
        serde_json::from_str::<Value>(t["custom"].as_str().unwrap_or("{}"))
            .map(|c| c["imshift_source_group"] == group)
            .unwrap_or(false)
    })
}

/// NetEase's stored messages as (ope, to, text, route).
async fn messages(sides: &Sides) -> Vec<(i64, String, String, bool)> {
    get(format!("{}/_sandbox/messages", sides.netease))
        .await
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let body: Value = serde_json::from_str(m["body"].as_str().unwrap_or("{}")).unwrap();
            (
                m["ope"].as_i64().unwrap(),
                m["to"].as_str().unwrap_or_default().to_string(),
                body["msg"].as_str().unwrap_or_default().to_string(),
                m["route"].as_bool().unwrap(),
            )
        })
        .collect()
}

async fn health(owner: &Browser, id: &str, from: &str) -> Value {
    let v = owner
        .json(Method::GET, &format!("/api/v1/migrations/{id}/sync"), None)
        .await;
    v["directions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["from"] == from)
        .unwrap()["health"]
        .clone()
}

fn group_created(group: &str, owner: &str, members: &[&str]) -> Value {
    let members: Vec<Value> = members
        .iter()
        .map(|a| json!({"group": group, "account": a, "role": if *a == owner { "owner" } else { "member" }}))
        .collect();
    json!({"type": "group.created", "at": now_ms(),
           "data": {"id": group, "type": "private", "name": "Team", "owner": owner, "members": members}})
}

fn group_event(kind: &str, id: &str, data: Value) -> Value {
    json!({"id": id, "type": kind, "at": now_ms(), "data": data})
}

fn text(id: &str, conv: &str, from: &str, to: &str, body: &str) -> Value {
    json!({"id": id, "type": "message.sent", "at": now_ms(),
           "data": {"id": id, "conv": conv, "from": from, "to": to, "sent_at": now_ms(),
                    "body": {"type": "text", "text": body}}})
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn with_netease_a_message_each_way_in_each_conversation_kind_arrives_once_with_no_echo(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let sides = coexisting(&owner).await;
    let id = sides.id.clone();
    both_on(&owner, &id).await;

    // Old → NetEase: a group made a team with its first message, and a one-to-one message.
    old_system_sends(
        &sides,
        vec![
            group_created("g1", "alice", &["alice", "bob"]),
            text(
                "old-g-1",
                "group",
                "alice",
                "g1",
                "hello team from the old app",
            ),
            text(
                "old-c-1",
                "c2c",
                "alice",
                "bob",
                "hello bob from the old app",
            ),
        ],
    )
    .await;
    let team = eventually("the team and both messages in NetEase", || async {
        let t = team_for(&sides, "g1").await?;
        (messages(&sides).await.len() == 2).then_some(t)
    })
    .await;
    let tid = team["tid"].as_str().unwrap().to_string();
    assert_eq!(team["owner"], "alice");
    let mut members: Vec<&str> = team["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    members.sort();
    assert_eq!(members, ["alice", "bob"]);
    let sent = messages(&sides).await;
    assert!(
        sent.contains(&(1, tid.clone(), "hello team from the old app".into(), false)),
        "the team message goes in with route off: {sent:?}"
    );
    assert!(sent.contains(&(0, "bob".into(), "hello bob from the old app".into(), false)));

    // NetEase → old: bob answers in the team and one to one; NetEase copies both.
    new_app_user_sends(&sides, "bob", &tid, true, "hi team from the new app").await;
    new_app_user_sends(&sides, "bob", "alice", false, "hi alice from the new app").await;
    eventually("both answers at the old system", || async {
        (relay_received(&sides).await.len() >= 2).then_some(())
    })
    .await;
    // Let any echo that was going to come back come back.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received = relay_received(&sides).await;
    assert_eq!(received.len(), 2, "{received:?}");
    let group_answer = received
        .iter()
        .find(|e| e["data"]["conv"] == "group")
        .expect("the team answer");
    // The old system hears of its own group, not of NetEase's number for it.
    assert_eq!(group_answer["data"]["to"], "g1", "{group_answer}");
    assert_eq!(
        group_answer["data"]["body"]["text"],
        "hi team from the new app"
    );
    let c2c = received
        .iter()
        .find(|e| e["data"]["conv"] == "c2c")
        .unwrap();
    assert_eq!(c2c["data"]["from"], "bob");
    assert_eq!(c2c["data"]["to"], "alice");
    assert!(received.iter().all(|e| e["origin"] == "imshift"));
    assert_eq!(messages(&sides).await.len(), 4, "nothing went in twice");

    let old_to_new = health(&owner, &id, "source").await;
    assert_eq!(old_to_new["sent_total"], 3, "{old_to_new}");
    assert_eq!(old_to_new["status"], "healthy");
    assert_eq!(health(&owner, &id, "target").await["sent_total"], 2);

    // Team changes from the old system: a member joins, another leaves, the name changes,
    // and the team is dismissed, in that order.
    old_system_sends(
        &sides,
        vec![
            group_event(
                "group.members_joined",
                "old-j-1",
                json!({"group": "g1", "by": "alice", "accounts": ["carol"]}),
            ),
            group_event(
                "group.members_left",
                "old-l-1",
                json!({"group": "g1", "by": "bob", "accounts": ["bob"], "kicked": false}),
            ),
            group_event(
                "group.updated",
                "old-u-1",
                json!({"group": "g1", "by": "alice", "changes": {"name": "Renamed", "notice": "read me"}}),
            ),
        ],
    )
    .await;
    let team = eventually("carol in, bob out, renamed", || async {
        let t = team_for(&sides, "g1").await?;
        (t["tname"] == "Renamed").then_some(t)
    })
    .await;
    let mut members: Vec<&str> = team["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    members.sort();
    assert_eq!(members, ["alice", "carol"], "{team}");
    assert_eq!(team["announcement"], "read me");
    old_system_sends(
        &sides,
        vec![group_event(
            "group.dismissed",
            "old-d-1",
            json!({"group": "g1", "by": "alice"}),
        )],
    )
    .await;
    eventually("the team dismissed", || async {
        team_for(&sides, "g1").await.is_none().then_some(())
    })
    .await;
    // The side applied it; its record follows the answer.
    let h = eventually("all seven recorded as sent", || async {
        let h = health(&owner, &id, "source").await;
        (h["sent_total"] == 7).then_some(h)
    })
    .await;
    assert_eq!(h["dead"], 0, "{h}");
}

/// A run with some echo guards switched off: imshift's sends to NetEase are copied back (no
/// `route=false`), and what is left must stop them. Answers the echoes counted.
/// `late_ms`: NetEase answers imshift's sends this late, after its copy has gone out.
async fn echo_guard_run(pool: PgPool, guards: imshift::providers::EchoGuards, late_ms: u64) -> i64 {
    let app = TestApp::spawn_with(pool, |c| c.sync_guards = guards).await;
    let owner = app.owner().await;
    let sides = coexisting(&owner).await;
    both_on(&owner, &sides.id).await;
    let r = reqwest::Client::new()
        .post(format!("{}/_sandbox/faults", sides.netease))
        .json(&json!({"answer_delay_ms": late_ms, "apis": ["msg/sendMsg"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    old_system_sends(
        &sides,
        vec![
            group_created("g1", "alice", &["alice", "bob"]),
            text("old-g-1", "group", "alice", "g1", "to the team"),
            text("old-c-1", "c2c", "alice", "bob", "to bob"),
        ],
    )
    .await;
    let echoes = eventually("the echoes counted", || async {
        let n = health(&owner, &sides.id, "target").await["echo_filtered"]
            .as_i64()
            .unwrap();
        (n >= 2).then_some(n)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        relay_received(&sides).await.is_empty(),
        "an echo travelled back"
    );
    let sent = messages(&sides).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(
        sent.iter().all(|m| m.3),
        "route left on: NetEase copies them"
    );
    echoes
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn with_netease_copying_imshifts_sends_the_origin_tag_stops_the_echo(pool: PgPool) {
    let guards = imshift::providers::EchoGuards {
        provider_flags: false,
        origin_tag: true,
    };
    assert_eq!(echo_guard_run(pool, guards, 0).await, 2);
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn with_netease_and_no_flag_or_tag_the_id_map_stops_the_echo(pool: PgPool) {
    let guards = imshift::providers::EchoGuards {
        provider_flags: false,
        origin_tag: false,
    };
    // NetEase's copy of imshift's send arrives a second before NetEase's answer, which holds
    // the id the copy is known by: the copy waits for the answer rather than going back.
    assert_eq!(echo_guard_run(pool, guards, 1_000).await, 2);
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn while_netease_fails_every_call_messages_wait_and_then_arrive_in_order_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let sides = coexisting(&owner).await;
    both_on(&owner, &sides.id).await;
    // NetEase answers 502 to every call (nothing applied) for a while.
    let r = reqwest::Client::new()
        .post(format!("{}/_sandbox/faults", sides.netease))
        .json(&json!({"bad_gateway_rate": 1.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let texts: Vec<String> = (1..=6).map(|i| format!("message {i}")).collect();
    for (i, t) in texts.iter().enumerate() {
        old_system_sends(
            &sides,
            vec![text(&format!("old-{i}"), "c2c", "alice", "bob", t)],
        )
        .await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(messages(&sides).await.is_empty());
    let h = health(&owner, &sides.id, "source").await;
    assert!(h["backlog"].as_i64().unwrap() >= 6, "{h}");
    assert_eq!(h["dead"], 0, "a 502 is not a reason to give up: {h}");
    // NetEase is back.
    reqwest::Client::new()
        .post(format!("{}/_sandbox/faults", sides.netease))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let got = poll_for("all six in NetEase", Duration::from_secs(90), || async {
        let m = messages(&sides).await;
        (m.len() >= 6).then_some(m)
    })
    .await;
    let got: Vec<String> = got.into_iter().map(|m| m.2).collect();
    assert_eq!(got, texts, "in order, each once");
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_message_for_a_team_netease_lacks_is_a_dead_letter_until_the_team_exists(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let sides = coexisting(&owner).await;
    let id = sides.id.clone();
    both_on(&owner, &id).await;
    // g9 was never imported or created through sync.
    old_system_sends(
        &sides,
        vec![text("old-g9-1", "group", "alice", "g9", "into the void")],
    )
    .await;
    let h = eventually("a dead letter", || async {
        let h = health(&owner, &id, "source").await;
        (h["dead"] == 1).then_some(h)
    })
    .await;
    let log = dead_letters(&owner, &id).await;
    let why = log[0]["error"].as_str().unwrap_or_default();
    assert!(
        why.contains("g9") && why.contains("import"),
        "says which group and what to do: {log} {h}"
    );
    // The team comes into being (its creation on the old side, relayed), then a replay.
    old_system_sends(
        &sides,
        vec![group_created("g9", "alice", &["alice", "bob"])],
    )
    .await;
    eventually("the team made", || async {
        team_for(&sides, "g9").await.map(|_| ())
    })
    .await;
    let r = owner
        .json(
            Method::POST,
            &format!("/api/v1/migrations/{id}/sync/replay"),
            Some(json!({"all": true, "side": "source"})),
        )
        .await;
    assert_eq!(r["replayed"], 1, "{r}");
    eventually("the replayed message in the team", || async {
        let m = messages(&sides).await;
        m.iter().any(|m| m.2 == "into the void").then_some(())
    })
    .await;
    assert_eq!(health(&owner, &id, "source").await["dead"], 0);
}

/// Tencent IM's users' one-to-one texts, as its sandbox exports them.
async fn tencent_texts(tencent: &str) -> Vec<String> {
    let export = get(format!("{tencent}/_sandbox/export")).await;
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

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn between_tencent_and_netease_a_message_each_way_arrives_once_with_no_echo(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let id = owner
        .new_migration("tencent-to-netease", "coexistence", "tencent", "netease")
        .await;
    let mut values = vec![];
    for side in ["source", "target"] {
        values.push(
            owner
                .json(
                    Method::POST,
                    &format!("/api/v1/migrations/{id}/connections/{side}/sandbox"),
                    None,
                )
                .await,
        );
    }
    let tencent = values[0]["values"]["base_url"]
        .as_str()
        .unwrap()
        .to_string();
    let netease = values[1]["values"]["base_url"]
        .as_str()
        .unwrap()
        .trim_end_matches("/nimserver")
        .to_string();
    let sides = Sides {
        id: id.clone(),
        relay: String::new(),
        netease,
    };
    both_on(&owner, &id).await;

    // A Tencent user writes; the callback comes to the console, which sends into NetEase.
    let r = reqwest::Client::new()
        .post(format!("{tencent}/_sandbox/user_message"))
        .json(&json!({"from": "alice", "to": "bob", "group": false, "text": "from Tencent"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    eventually("the message in NetEase", || async {
        (!messages(&sides).await.is_empty()).then_some(())
    })
    .await;
    // A NetEase user answers; the copy comes to the console, which imports it into Tencent.
    new_app_user_sends(&sides, "bob", "alice", false, "from NetEase").await;
    eventually("the answer in Tencent", || async {
        (tencent_texts(&tencent).await.len() == 2).then_some(())
    })
    .await;
    // Any echo would have come round by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut t = tencent_texts(&tencent).await;
    t.sort();
    assert_eq!(t, ["from NetEase", "from Tencent"]);
    let n: Vec<(i64, String, String, bool)> = messages(&sides).await;
    assert_eq!(n.len(), 2, "{n:?}");
    assert!(n.contains(&(0, "bob".into(), "from Tencent".into(), false)));
    assert!(n.contains(&(0, "alice".into(), "from NetEase".into(), true)));
    for from in ["source", "target"] {
        let h = health(&owner, &id, from).await;
        assert_eq!(h["sent_total"], 1, "{from}: {h}");
        assert_eq!(h["dead"], 0, "{from}: {h}");
    }
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_message_whose_answer_netease_lost_is_found_in_its_history_not_sent_twice(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let sides = coexisting(&owner).await;
    both_on(&owner, &sides.id).await;
    // The first sendMsg is applied and its answer lost; the history read right after fails
    // too, so the next try must look before it sends.
    let r = reqwest::Client::new()
        .post(format!("{}/_sandbox/faults", sides.netease))
        .json(&json!({"apis": ["msg/sendMsg", "history/querySessionMsg"],
                      "next": ["lost_answer_bad_gateway", "bad_gateway"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    old_system_sends(
        &sides,
        vec![
            text("old-1", "c2c", "alice", "bob", "sent once"),
            text("old-2", "c2c", "alice", "bob", "and then this"),
        ],
    )
    .await;
    let h = poll_for("both delivered", Duration::from_secs(60), || async {
        let h = health(&owner, &sides.id, "source").await;
        (h["sent_total"] == 2).then_some(h)
    })
    .await;
    assert_eq!(h["dead"], 0, "{h}");
    let texts: Vec<String> = messages(&sides).await.into_iter().map(|m| m.2).collect();
    assert_eq!(texts, ["sent once", "and then this"], "once each, in order");
    let state = get(format!("{}/_sandbox/state", sides.netease)).await;
    assert_eq!(state["injected"], 2, "both faults were met: {state}");
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn with_netease_the_test_message_and_the_canary_go_round_each_direction(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| {
        c.sync_canary_every = Duration::from_secs(1);
    })
    .await;
    let owner = app.owner().await;
    let sides = coexisting(&owner).await;
    let id = sides.id.clone();
    both_on(&owner, &id).await;
    // The Sync tab says what to paste into NetEase's console.
    let view = owner
        .json(Method::GET, &format!("/api/v1/migrations/{id}/sync"), None)
        .await;
    let setup = view.to_string();
    assert!(setup.contains("消息抄送"), "{setup}");
    assert!(setup.contains(&format!("/hooks/{id}/target")), "{setup}");
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
    let view = eventually("a canary back through both directions", || async {
        let v = owner
            .json(Method::GET, &format!("/api/v1/migrations/{id}/sync"), None)
            .await;
        let back =
            |from: &str| {
                v["directions"].as_array().unwrap().iter().any(|d| {
                    d["from"] == from && d["health"]["canary"]["round_trip_ms"].is_number()
                })
            };
        (back("source") && back("target")).then_some(v)
    })
    .await;
    for d in view["directions"].as_array().unwrap() {
        assert!(d["health"]["canary"]["error"].is_null(), "{d}");
    }
    // The test messages and canaries arrived at each side: at NetEase as sends with route off,
    // at the old system as relayed events.
    assert!(messages(&sides).await.iter().any(|m| !m.3));
    assert!(relay_received(&sides)
        .await
        .iter()
        .any(|e| e["data"]["from"] == "imshift_canary_a"));
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn messages_kept_while_the_direction_was_off_are_served_to_neteases_importer_once(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let sides = coexisting(&owner).await;
    let id = sides.id.clone();
    // The direction into NetEase is off: the old system's messages are kept, not sent.
    old_system_sends(
        &sides,
        vec![
            text("old-1", "c2c", "alice", "bob", "first, while off"),
            text("old-2", "c2c", "bob", "alice", "second, while off"),
            text(
                "old-3",
                "group",
                "alice",
                "g7",
                "to a group NetEase has no team for",
            ),
        ],
    )
    .await;
    // Served once they have settled (an insert still committing must not be passed).
    tokio::time::sleep(Duration::from_secs(6)).await;
    let pull = |cursor: Option<String>| {
        let owner = &owner;
        let id = &id;
        async move {
            let q = cursor.map(|c| format!("?cursor={c}")).unwrap_or_default();
            owner
                .json(
                    Method::GET,
                    &format!("/api/v1/migrations/{id}/hand-over/increments{q}"),
                    None,
                )
                .await
        }
    };
    let page = pull(None).await;
    assert_eq!(page["code"], 200, "{page}");
    let texts: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["data"]["body"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(texts, ["first, while off", "second, while off"], "{page}");
    // The group message waits aside, saying why, until the team exists.
    let aside = page["kept_aside"].as_array().unwrap();
    assert_eq!(aside.len(), 1, "{page}");
    assert_eq!(aside[0]["sync_event"], "old-3");
    assert!(aside[0]["why"].as_str().unwrap().contains("g7"), "{page}");
    // The next pull (no cursor: from where the last ended) has nothing new.
    let again = pull(None).await;
    assert_eq!(again["data"], json!([]), "{again}");
    // The same cursor answers the same page.
    let first_cursor = page["next"].as_str().unwrap().to_string();
    assert!(first_cursor.matches(':').count() == 2, "{first_cursor}");

    // Once on, sync sends the old system's messages itself; the interface does not serve
    // them again.
    both_on(&owner, &id).await;
    old_system_sends(
        &sides,
        vec![text("old-4", "c2c", "alice", "bob", "sent live")],
    )
    .await;
    eventually("sent live", || async {
        messages(&sides)
            .await
            .iter()
            .any(|m| m.2 == "sent live")
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let later = pull(None).await;
    assert_eq!(later["data"], json!([]), "{later}");
    // The kept messages were never sent live.
    let live: Vec<String> = messages(&sides).await.into_iter().map(|m| m.2).collect();
    assert_eq!(live, ["sent live"]);
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_netease_users_message_does_not_wait_for_sends_into_netease_that_wait_on_its_quota(
    pool: PgPool,
) {
    // Sends into NetEase paced at one a second over 100 chats: the sender holds many of them
    // waiting on the quota. A NetEase user's message (whose copy might be one of imshift's own
    // coming back) waits only for the sends actually under way, not for those still waiting.
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let sides = coexisting(&owner).await;
    let id = sides.id.clone();
    let r = owner
        .api(
            Method::PUT,
            &format!("/api/v1/migrations/{id}/limits"),
            Some(json!({"msg/sendMsg": {"qps": 1}})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    both_on(&owner, &id).await;
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
    old_system_sends(&sides, events).await;
    eventually("the old side's backlog under way", || async {
        (!messages(&sides).await.is_empty()).then_some(())
    })
    .await;

    new_app_user_sends(&sides, "zoe", "user000", false, "from the new app").await;
    poll_for(
        "the NetEase user's message at the old system",
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
    let moved = messages(&sides).await.len();
    assert!(
        moved < CHATS / 2,
        "the old side's backlog was mostly through ({moved} of {CHATS}) before the NetEase user's message went"
    );
}
