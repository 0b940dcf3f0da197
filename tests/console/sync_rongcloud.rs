//! Coexistence sync with RongCloud end to end over HTTP: a migration rehearses a self-built
//! old system (the relay sandbox) beside RongCloud (its sandbox, which routes its users'
//! messages (全量消息路由) to the console's door, signed with the App Secret), turns both
//! directions on, and messages and group changes travel each way exactly once, with no echo
//! whichever guard is left, through a RongCloud outage and a lost answer, with a dead letter
//! replayable once its cause is fixed; and between Tencent IM and RongCloud.

use crate::common::*;
use imshift::providers::EchoGuards;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::time::Duration;

struct Sides {
    id: String,
    /// The relay sandbox's address (ends with `/`).
    relay: String,
    /// Where the RongCloud sandbox's `/_sandbox/*` lives.
    rongcloud: String,
}

async fn sandboxes(owner: &Browser, id: &str) -> Vec<Value> {
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
    values
}

async fn coexisting(owner: &Browser) -> Sides {
    let id = owner
        .new_migration(
            "coexist-rongcloud",
            "coexistence",
            "self_built",
            "rongcloud",
        )
        .await;
    let values = sandboxes(owner, &id).await;
    let relay = values[0]["values"]["relay_url"]
        .as_str()
        .expect("relay_url")
        .to_string();
    let rongcloud = values[1]["values"]["base_url"]
        .as_str()
        .expect("base_url")
        .trim_end_matches('/')
        .to_string();
    Sides {
        id,
        relay,
        rongcloud,
    }
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

async fn post(url: String, body: Value) -> Value {
    let r = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{v}");
    v
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
    let v = post(format!("{}send", sides.relay), json!({ "events": events })).await;
    assert_eq!(v["status"], 200, "imshift's answer: {v}");
}

/// Sends as a user of the RongCloud app (routed to the console as a phone's send would be).
async fn new_app_user_sends(rongcloud: &str, from: &str, to: &str, group: bool, text: &str) {
    post(
        format!("{rongcloud}/_sandbox/user_message"),
        json!({"from": from, "to": to, "group": group, "text": text}),
    )
    .await;
}

/// RongCloud's group `id` as its sandbox holds it.
async fn group(sides: &Sides, id: &str) -> Option<Value> {
    let export = get(format!("{}/_sandbox/export", sides.rongcloud)).await;
    export["groups"].get(id).cloned()
}

fn members(g: &Value) -> Vec<String> {
    g["members"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// One message RongCloud stored.
#[derive(Debug, Clone, PartialEq)]
struct Stored {
    channel: String,
    from: String,
    to: String,
    text: String,
    /// `Server` for what came through the server API, else the app platform.
    source: String,
    /// The content's `extra`.
    extra: String,
}

async fn messages(rongcloud: &str) -> Vec<Stored> {
    get(format!("{rongcloud}/_sandbox/messages"))
        .await
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let c: Value = serde_json::from_str(m["content"].as_str().unwrap_or("{}")).unwrap();
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            Stored {
                channel: s(&m["channelType"]),
                from: s(&m["fromUserId"]),
                to: s(&m["to"]),
                text: s(&c["content"]),
                source: s(&m["source"]),
                extra: s(&c["extra"]),
            }
        })
        .collect()
}

async fn route(rongcloud: &str, body: Value) -> Value {
    post(format!("{rongcloud}/_sandbox/route"), body).await
}

async fn faults(rongcloud: &str, body: Value) {
    post(format!("{rongcloud}/_sandbox/faults"), body).await;
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
async fn with_rongcloud_a_message_each_way_in_each_conversation_kind_arrives_once_with_no_echo(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let sides = coexisting(&owner).await;
    let id = sides.id.clone();
    both_on(&owner, &id).await;

    // Old → RongCloud: a group (made under its own id: RongCloud keeps the app's ids) with
    // its first message, and a one-to-one message. None of the accounts is on RongCloud yet.
    old_system_sends(
        &sides,
        vec![
            group_created("g1", "alice", &["alice", "bob"]),
            text(
                "old-g-1",
                "group",
                "alice",
                "g1",
                "hello group from the old app",
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
    let g = eventually("the group and both messages in RongCloud", || async {
        let g = group(&sides, "g1").await?;
        (messages(&sides.rongcloud).await.len() == 2).then_some(g)
    })
    .await;
    assert_eq!(g["name"], "Team");
    let mut m = members(&g);
    m.sort();
    assert_eq!(m, ["alice", "bob"]);
    let sent = messages(&sides.rongcloud).await;
    let group_msg = sent.iter().find(|m| m.channel == "GROUP").unwrap();
    assert_eq!(
        (group_msg.from.as_str(), group_msg.to.as_str()),
        ("alice", "g1")
    );
    assert_eq!(group_msg.text, "hello group from the old app");
    // Through the server API (RongCloud does not route it back), tagged.
    assert_eq!(group_msg.source, "Server");
    assert!(group_msg.extra.contains("old-g-1"), "{group_msg:?}");
    let c2c = sent.iter().find(|m| m.channel == "PERSON").unwrap();
    assert_eq!(
        (c2c.from.as_str(), c2c.to.as_str(), c2c.text.as_str()),
        ("alice", "bob", "hello bob from the old app")
    );

    // RongCloud → old: bob answers in the group and one to one; RongCloud routes both.
    new_app_user_sends(
        &sides.rongcloud,
        "bob",
        "g1",
        true,
        "hi group from the new app",
    )
    .await;
    new_app_user_sends(
        &sides.rongcloud,
        "bob",
        "alice",
        false,
        "hi alice from the new app",
    )
    .await;
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
        .expect("the group answer");
    assert_eq!(group_answer["data"]["to"], "g1", "{group_answer}");
    assert_eq!(group_answer["data"]["from"], "bob");
    assert_eq!(
        group_answer["data"]["body"],
        json!({"type": "text", "text": "hi group from the new app"})
    );
    let c2c = received
        .iter()
        .find(|e| e["data"]["conv"] == "c2c")
        .unwrap();
    assert_eq!(c2c["data"]["from"], "bob");
    assert_eq!(c2c["data"]["to"], "alice");
    assert_eq!(c2c["data"]["client"], "android");
    assert!(received.iter().all(|e| e["origin"] == "imshift"));
    assert_eq!(
        messages(&sides.rongcloud).await.len(),
        4,
        "nothing went in twice"
    );
    let old_to_new = health(&owner, &id, "source").await;
    assert_eq!(old_to_new["sent_total"], 3, "{old_to_new}");
    assert_eq!(old_to_new["status"], "healthy");
    assert_eq!(health(&owner, &id, "target").await["sent_total"], 2);

    // Group changes from the old system: carol (new to RongCloud) joins, bob leaves, the
    // name changes; then the group is dismissed.
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
                json!({"group": "g1", "by": "alice", "changes": {"name": "Renamed", "notice": "kept by the app server"}}),
            ),
        ],
    )
    .await;
    let g = eventually("carol in, bob out, renamed", || async {
        let g = group(&sides, "g1").await?;
        (g["name"] == "Renamed").then_some(g)
    })
    .await;
    let mut m = members(&g);
    m.sort();
    assert_eq!(m, ["alice", "carol"], "{g}");
    old_system_sends(
        &sides,
        vec![group_event(
            "group.dismissed",
            "old-d-1",
            json!({"group": "g1", "by": "alice"}),
        )],
    )
    .await;
    eventually("the group dismissed", || async {
        group(&sides, "g1").await.is_none().then_some(())
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

/// A run with the given guards and RongCloud routing server-API sends or not: answers the
/// echoes counted at the RongCloud side's door and what RongCloud routed.
async fn echo_guard_run(pool: PgPool, guards: EchoGuards, route_api_messages: bool) -> (i64, u64) {
    let app = TestApp::spawn_with(pool, |c| c.sync_guards = guards).await;
    let owner = app.owner().await;
    let sides = coexisting(&owner).await;
    // Routing lags the API's answer, as the real service's queue does: the id map learns the
    // messageUID from the answer before the routed copy comes (a copy coming first is the
    // race the other two guards are for).
    route(
        &sides.rongcloud,
        json!({ "route_api_messages": route_api_messages, "delay_ms": 300 }),
    )
    .await;
    both_on(&owner, &sides.id).await;
    old_system_sends(
        &sides,
        vec![
            group_created("g1", "alice", &["alice", "bob"]),
            text("old-g-1", "group", "alice", "g1", "to the group"),
            text("old-c-1", "c2c", "alice", "bob", "to bob"),
        ],
    )
    .await;
    eventually("both messages in RongCloud", || async {
        (messages(&sides.rongcloud).await.len() >= 2).then_some(())
    })
    .await;
    let echoes = if route_api_messages {
        eventually("the echoes counted", || async {
            let n = health(&owner, &sides.id, "target").await["echo_filtered"]
                .as_i64()
                .unwrap();
            (n >= 2).then_some(n)
        })
        .await
    } else {
        tokio::time::sleep(Duration::from_secs(2)).await;
        health(&owner, &sides.id, "target").await["echo_filtered"]
            .as_i64()
            .unwrap()
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        relay_received(&sides).await.is_empty(),
        "an echo travelled back"
    );
    let sent = messages(&sides.rongcloud).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    let routed = route(&sides.rongcloud, json!({})).await["posted"]
        .as_u64()
        .unwrap();
    (echoes, routed)
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn with_rongcloud_not_routing_server_api_sends_nothing_comes_back(pool: PgPool) {
    // The provider's own guard alone: RongCloud's default, no tag.
    let guards = EchoGuards {
        provider_flags: true,
        origin_tag: false,
    };
    assert_eq!(echo_guard_run(pool, guards, false).await, (0, 0));
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn with_rongcloud_routing_imshifts_sends_the_origin_tag_stops_the_echo(pool: PgPool) {
    let guards = EchoGuards {
        provider_flags: false,
        origin_tag: true,
    };
    assert_eq!(echo_guard_run(pool, guards, true).await, (2, 2));
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn with_rongcloud_routing_and_no_tag_the_id_map_stops_the_echo(pool: PgPool) {
    let guards = EchoGuards {
        provider_flags: false,
        origin_tag: false,
    };
    assert_eq!(echo_guard_run(pool, guards, true).await, (2, 2));
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn while_rongcloud_fails_every_call_messages_wait_and_then_arrive_in_order_once(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let sides = coexisting(&owner).await;
    both_on(&owner, &sides.id).await;
    // RongCloud answers 502 to every call (nothing applied) for a while.
    faults(
        &sides.rongcloud,
        json!({"http_rate": 1.0, "http_statuses": [502]}),
    )
    .await;
    let texts: Vec<String> = (1..=6).map(|i| format!("message {i}")).collect();
    for (i, t) in texts.iter().enumerate() {
        old_system_sends(
            &sides,
            vec![text(&format!("old-{i}"), "c2c", "alice", "bob", t)],
        )
        .await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(messages(&sides.rongcloud).await.is_empty());
    let h = health(&owner, &sides.id, "source").await;
    assert!(h["backlog"].as_i64().unwrap() >= 6, "{h}");
    assert_eq!(h["dead"], 0, "a 502 is not a reason to give up: {h}");
    // RongCloud is back.
    faults(&sides.rongcloud, json!({})).await;
    let got = poll_for("all six in RongCloud", Duration::from_secs(90), || async {
        let m = messages(&sides.rongcloud).await;
        (m.len() >= 6).then_some(m)
    })
    .await;
    let got: Vec<String> = got.into_iter().map(|m| m.text).collect();
    assert_eq!(got, texts, "in order, each once");
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_message_whose_answer_rongcloud_lost_is_found_in_its_history_not_sent_twice(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let sides = coexisting(&owner).await;
    both_on(&owner, &sides.id).await;
    // The accounts exist on RongCloud (registered by a first message).
    old_system_sends(
        &sides,
        vec![text("old-0", "c2c", "alice", "bob", "warm up")],
    )
    .await;
    eventually("the first message in RongCloud", || async {
        (messages(&sides.rongcloud).await.len() == 1).then_some(())
    })
    .await;
    // The next publish is applied and its answer lost; the history read right after fails
    // too, so the next try must look before it sends.
    faults(
        &sides.rongcloud,
        json!({"apis": ["message/private/publish", "v3/message/private/query"],
               "next": ["lost_answer", {"http": 502}]}),
    )
    .await;
    old_system_sends(
        &sides,
        vec![
            text("old-1", "c2c", "alice", "bob", "sent once"),
            text("old-2", "c2c", "alice", "bob", "and then this"),
        ],
    )
    .await;
    let h = poll_for("all delivered", Duration::from_secs(60), || async {
        let h = health(&owner, &sides.id, "source").await;
        (h["sent_total"] == 3).then_some(h)
    })
    .await;
    assert_eq!(h["dead"], 0, "{h}");
    let texts: Vec<String> = messages(&sides.rongcloud)
        .await
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(
        texts,
        ["warm up", "sent once", "and then this"],
        "once each, in order"
    );
    let state = get(format!("{}/_sandbox/state", sides.rongcloud)).await;
    assert_eq!(state["injected"], 2, "both faults were met: {state}");
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_message_for_a_group_rongcloud_lacks_is_a_dead_letter_until_the_group_exists(
    pool: PgPool,
) {
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
        why.contains("g9") && why.contains("import") && why.contains("1002"),
        "says which group, what to do and RongCloud's code: {log} {h}"
    );
    // The group comes into being (its creation on the old side, relayed), then a replay.
    old_system_sends(
        &sides,
        vec![group_created("g9", "alice", &["alice", "bob"])],
    )
    .await;
    eventually("the group made", || async {
        group(&sides, "g9").await.map(|_| ())
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
    eventually("the replayed message in the group", || async {
        let m = messages(&sides.rongcloud).await;
        m.iter()
            .any(|m| m.text == "into the void" && m.to == "g9")
            .then_some(())
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

/// Tencent and RongCloud side by side (either the old one): a message each way arrives once,
/// with no echo.
async fn tencent_and_rongcloud_exchange(pool: PgPool, rongcloud_is_old: bool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let (source, target) = if rongcloud_is_old {
        ("rongcloud", "tencent")
    } else {
        ("tencent", "rongcloud")
    };
    let id = owner
        .new_migration("tencent-and-rongcloud", "coexistence", source, target)
        .await;
    let values = sandboxes(&owner, &id).await;
    let (t, r) = if rongcloud_is_old { (1, 0) } else { (0, 1) };
    let tencent = values[t]["values"]["base_url"]
        .as_str()
        .unwrap()
        .to_string();
    let rongcloud = values[r]["values"]["base_url"]
        .as_str()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    both_on(&owner, &id).await;

    // A Tencent user writes; the callback comes to the console, which sends into RongCloud.
    post(
        format!("{tencent}/_sandbox/user_message"),
        json!({"from": "alice", "to": "bob", "group": false, "text": "from Tencent"}),
    )
    .await;
    eventually("the message in RongCloud", || async {
        (!messages(&rongcloud).await.is_empty()).then_some(())
    })
    .await;
    // A RongCloud user answers; routing brings it to the console, which sends it to Tencent.
    new_app_user_sends(&rongcloud, "bob", "alice", false, "from RongCloud").await;
    eventually("the answer in Tencent", || async {
        (tencent_texts(&tencent).await.len() == 2).then_some(())
    })
    .await;
    // Any echo would have come round by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut t = tencent_texts(&tencent).await;
    t.sort();
    assert_eq!(t, ["from RongCloud", "from Tencent"]);
    let r = messages(&rongcloud).await;
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(r
        .iter()
        .any(|m| m.to == "bob" && m.text == "from Tencent" && m.source == "Server"));
    assert!(r
        .iter()
        .any(|m| m.to == "alice" && m.text == "from RongCloud" && m.source == "Android"));
    for from in ["source", "target"] {
        let h = health(&owner, &id, from).await;
        assert_eq!(h["sent_total"], 1, "{from}: {h}");
        assert_eq!(h["dead"], 0, "{from}: {h}");
    }
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn between_tencent_and_rongcloud_a_message_each_way_arrives_once_with_no_echo(pool: PgPool) {
    tencent_and_rongcloud_exchange(pool, false).await;
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn with_rongcloud_as_the_old_side_a_message_each_way_arrives_once_with_no_echo(pool: PgPool) {
    tencent_and_rongcloud_exchange(pool, true).await;
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn with_rongcloud_the_test_message_and_the_canary_go_round_each_direction(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| {
        c.sync_canary_every = Duration::from_secs(1);
    })
    .await;
    let owner = app.owner().await;
    let sides = coexisting(&owner).await;
    let id = sides.id.clone();
    both_on(&owner, &id).await;
    // The Sync tab says what to paste into RongCloud's console.
    let view = owner
        .json(Method::GET, &format!("/api/v1/migrations/{id}/sync"), None)
        .await;
    let setup = view.to_string();
    assert!(setup.contains("全量消息路由"), "{setup}");
    assert!(setup.contains("Route server API messages"), "{setup}");
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
    // The test messages and canaries arrived at each side: at RongCloud through the server
    // API, at the old system as relayed events.
    let r = messages(&sides.rongcloud).await;
    assert!(r
        .iter()
        .any(|m| m.source == "Server" && m.text.starts_with("imshift test message")));
    assert!(r.iter().any(|m| m.source == "Server"
        && m.from == "imshift_canary_a"
        && m.text.starts_with("imshift canary")));
    let relayed = relay_received(&sides).await;
    assert!(relayed
        .iter()
        .any(|e| e["data"]["from"] == "imshift_canary_a"));
    assert!(relayed.iter().any(|e| e["data"]["body"]["text"]
        .as_str()
        .unwrap_or_default()
        .starts_with("imshift test message")));
}
