//! The inbound door of coexistence sync, over HTTP: `POST /hooks/{id}/{side}` takes a
//! self-built system's signed relay batches and Tencent's signed callbacks without a session,
//! stores each event once before answering, and refuses (and counts) everything else.

use crate::common::*;
use imshift::providers::{self_built, tencent::callbacks};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;

const OUTBOUND: &str = "relay-outbound-secret-51f0c2";
const INBOUND: &str = "relay-inbound-secret-9d3e77";
const TOKEN: &str = "callback-token-for-tests";

async fn migration(app: &TestApp) -> (Browser, String) {
    let owner = app.owner().await;
    let id = owner
        .new_migration("sync", "coexistence", "self_built", "tencent")
        .await;
    (owner, id)
}

/// Connects the migration's old side: a relay (never reached) with the tests' secrets.
async fn connect_relay(owner: &Browser, id: &str) {
    imshift::providers::outbound::register_sandbox("127.0.0.1:9".parse().unwrap());
    let r = owner
        .api(
            Method::PUT,
            &format!("/api/v1/migrations/{id}/connections/source"),
            Some(json!({"fields": {"relay_url": "http://127.0.0.1:9/relay", "outbound_secret": OUTBOUND, "inbound_secret": INBOUND}})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn stored(app: &TestApp, id: &str, side: &str) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT key, kind FROM sync_inbound WHERE migration_id = $1::uuid AND side = $2 ORDER BY key",
    )
    .bind(id)
    .bind(side)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

async fn counts(app: &TestApp, id: &str, side: &str) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT outcome, sum(n)::bigint FROM sync_inbound_counts
         WHERE migration_id = $1::uuid AND side = $2 GROUP BY outcome ORDER BY outcome",
    )
    .bind(id)
    .bind(side)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

fn relay_event(id: &str) -> Value {
    json!({"id": id, "type": "message.sent", "at": 1_764_000_000_000i64,
           "data": {"id": id, "conv": "c2c:alice:bob", "from": "alice", "to": "bob"}, "origin": "old-im"})
}

/// Posts a relay batch signed with the migration's inbound secret.
async fn post_signed(app: &TestApp, id: &str, body: &str) -> reqwest::Response {
    let signature = self_built::signature(INBOUND, now(), body.as_bytes());
    post_relay(app, id, body, Some(signature)).await
}

/// Posts a relay batch without a session or Origin, as a self-built system would.
async fn post_relay(
    app: &TestApp,
    id: &str,
    body: &str,
    signature: Option<String>,
) -> reqwest::Response {
    let mut rb = app
        .anon()
        .post(format!("{}/hooks/{id}/source", app.base))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(s) = signature {
        rb = rb.header("Imshift-Signature", s);
    }
    rb.send().await.unwrap()
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_relay_batch_is_stored_once_and_refusals_are_counted_not_stored(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, id) = migration(&app).await;

    // No connection yet: the hook says so.
    let r = post_relay(&app, &id, "{}", None).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = post_relay(&app, "00000000-0000-4000-8000-000000000001", "{}", None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    connect_relay(&owner, &id).await;

    let body =
        json!({"events": [relay_event("e1"), relay_event("e2"), relay_event("e3")]}).to_string();
    let r = post_signed(&app, &id, &body).await;
    assert_eq!(r.status(), StatusCode::OK);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(
        answer,
        json!({"accepted": 3, "duplicates": 0, "rejected": []})
    );

    // A redelivery is acknowledged as duplicates, not stored again.
    let r = post_signed(&app, &id, &body).await;
    assert_eq!(r.status(), StatusCode::OK);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["accepted"], 0);
    assert_eq!(answer["duplicates"], 3);
    let rows = stored(&app, &id, "source").await;
    assert_eq!(
        rows,
        ["e1", "e2", "e3"].map(|k| (k.to_string(), "message.sent".to_string()))
    );

    // Refused deliveries, each with its reason; none of their events is stored.
    let other = json!({"events": [relay_event("x1")]}).to_string();
    let r = post_relay(&app, &id, &other, None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("Imshift-Signature"));
    let r = post_relay(
        &app,
        &id,
        &other,
        Some(self_built::signature(
            "another-secret-entirely",
            now(),
            other.as_bytes(),
        )),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("does not match"));
    let r = post_relay(
        &app,
        &id,
        &other,
        Some(self_built::signature(
            INBOUND,
            now() - 301,
            other.as_bytes(),
        )),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"]["code"], "stale");
    assert!(
        err["error"]["message"].as_str().unwrap().contains("stale"),
        "{err}"
    );
    let mut broken = relay_event("x3");
    broken.as_object_mut().unwrap().remove("id");
    let malformed =
        json!({"events": [relay_event("x1"), relay_event("x2"), relay_event("x4"), broken]})
            .to_string();
    let r = post_relay(
        &app,
        &id,
        &malformed,
        Some(self_built::signature(INBOUND, now(), malformed.as_bytes())),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"]["message"], "events[3]: no \"id\"");
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(1024 * 1024 + 1));
    let r = post_relay(
        &app,
        &id,
        &huge,
        Some(self_built::signature(INBOUND, now(), huge.as_bytes())),
    )
    .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    assert_eq!(stored(&app, &id, "source").await.len(), 3);
    let c = counts(&app, &id, "source").await;
    let n = |o: &str| c.iter().find(|(k, _)| k == o).map_or(0, |(_, n)| *n);
    assert_eq!(n("accepted"), 3, "{c:?}");
    assert_eq!(n("duplicate"), 3, "{c:?}");
    assert_eq!(n("bad_signature"), 2, "{c:?}");
    assert_eq!(n("stale"), 1, "{c:?}");
    assert_eq!(n("malformed"), 1, "{c:?}");
    assert_eq!(n("too_large"), 1, "{c:?}");

    // The same outcomes as a metric (the recorder is process-wide, so only its presence).
    let metrics = app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("imshift_sync_inbound_total")
                && l.contains("side=\"source\"")
                && l.contains("outcome=\"stale\"")),
        "{metrics}"
    );
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn tencent_callbacks_are_checked_stored_once_and_failed_sends_are_not_relayed(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, id) = migration(&app).await;
    let path = format!("/api/v1/migrations/{id}/connections/target");
    let r = owner
        .api(Method::POST, &format!("{path}/sandbox"), None)
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let view: Value = r.json().await.unwrap();
    let values = &view["values"];
    let sdkappid = values["sdkappid"].as_i64().unwrap();
    // The token joins the sandbox's fields; the secret key already stored is kept.
    let r = owner
        .api(
            Method::PUT,
            &path,
            Some(json!({"fields": {
                "sdkappid": sdkappid, "region": values["region"], "base_url": values["base_url"],
                "admin_identifier": values["admin_identifier"], "callback_token": TOKEN,
            }})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());

    let c2c = |result: i64, key: &str| {
        json!({"CallbackCommand": "C2C.CallbackAfterSendMsg", "From_Account": "alice", "To_Account": "bob",
               "MsgSeq": 1, "MsgRandom": 2, "MsgTime": 1_764_000_000, "MsgKey": key,
               "SendMsgResult": result, "ErrorInfo": "", "UnreadMsgNum": 1,
               "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi"}}],
               "EventTime": 1_764_000_000_123i64})
        .to_string()
    };
    let post = |app_id: i64, sign: String, t: i64, body: String| {
        let url = format!(
            "{}/hooks/{id}/target?SdkAppid={app_id}&CallbackCommand=C2C.CallbackAfterSendMsg&contenttype=json&ClientIP=127.0.0.1&OptPlatform=iOS&Sign={sign}&RequestTime={t}",
            app.base
        );
        let client = app.anon();
        async move {
            client
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let ok = json!({"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0});

    let t = now();
    answered_ok(
        post(
            sdkappid,
            callbacks::sign(TOKEN, t),
            t,
            c2c(0, "1_2_1764000000"),
        )
        .await,
        &ok,
    )
    .await;
    // Redelivered: acknowledged the same way, stored once.
    answered_ok(
        post(
            sdkappid,
            callbacks::sign(TOKEN, t),
            t,
            c2c(0, "1_2_1764000000"),
        )
        .await,
        &ok,
    )
    .await;
    assert_eq!(
        stored(&app, &id, "target").await,
        [("c2c:1_2_1764000000".to_string(), "message.sent".to_string())]
    );

    // A send that failed is answered OK and never relayed.
    answered_ok(
        post(
            sdkappid,
            callbacks::sign(TOKEN, t),
            t,
            c2c(20006, "3_4_1764000000"),
        )
        .await,
        &ok,
    )
    .await;

    // Another app's callback, a bad Sign, a stale one: refused.
    let r = post(
        sdkappid + 1,
        callbacks::sign(TOKEN, t),
        t,
        c2c(0, "5_6_1764000000"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("SDKAppID"));
    let r = post(
        sdkappid,
        callbacks::sign("not-the-token", t),
        t,
        c2c(0, "5_6_1764000000"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = post(
        sdkappid,
        callbacks::sign(TOKEN, t - 120),
        t - 120,
        c2c(0, "5_6_1764000000"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    assert_eq!(stored(&app, &id, "target").await.len(), 1);
    let c = counts(&app, &id, "target").await;
    let n = |o: &str| c.iter().find(|(k, _)| k == o).map_or(0, |(_, n)| *n);
    assert_eq!(
        (
            n("accepted"),
            n("duplicate"),
            n("ignored"),
            n("bad_signature"),
            n("stale")
        ),
        (1, 1, 1, 2, 1),
        "{c:?}"
    );
}

/// Tencent's OK, as a callback that was taken (or deliberately not relayed) gets.
async fn answered_ok(r: reqwest::Response, ok: &Value) {
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(&r.json::<Value>().await.unwrap(), ok);
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn without_a_callback_token_only_the_app_id_is_checked(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, id) = migration(&app).await;
    let view = owner
        .json(
            Method::POST,
            &format!("/api/v1/migrations/{id}/connections/target/sandbox"),
            None,
        )
        .await;
    let sdkappid = view["values"]["sdkappid"].as_i64().unwrap();
    assert!(view["secrets"].get("callback_token").is_none());
    let body = json!({"CallbackCommand": "C2C.CallbackAfterSendMsg", "From_Account": "alice",
        "To_Account": "bob", "MsgSeq": 1, "MsgRandom": 2, "MsgTime": 1_764_000_000,
        "MsgKey": "9_9_1764000000", "SendMsgResult": 0, "ErrorInfo": "", "UnreadMsgNum": 1,
        "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi"}}]})
    .to_string();
    let deliver = |app_id: i64| {
        app.anon()
            .post(format!(
                "{}/hooks/{id}/target?SdkAppid={app_id}&CallbackCommand=C2C.CallbackAfterSendMsg",
                app.base
            ))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
    };
    assert_eq!(
        deliver(sdkappid + 1).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(deliver(sdkappid).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        stored(&app, &id, "target").await,
        [("c2c:9_9_1764000000".to_string(), "message.sent".to_string())]
    );
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn during_a_rotation_both_inbound_secrets_are_accepted_until_the_old_one_is_cleared(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let (owner, id) = migration(&app).await;
    imshift::providers::outbound::register_sandbox("127.0.0.1:9".parse().unwrap());
    let path = format!("/api/v1/migrations/{id}/connections/source");
    let put = |fields: Value| owner.api(Method::PUT, &path, Some(json!({ "fields": fields })));
    let r = put(json!({"relay_url": "http://127.0.0.1:9/relay", "outbound_secret": OUTBOUND, "inbound_secret": INBOUND})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let signed = |secret: &str, n: &str| {
        let body = json!({"events": [relay_event(n)]}).to_string();
        let sig = self_built::signature(secret, now(), body.as_bytes());
        (body, sig)
    };

    // A new inbound secret, the old one kept as previous: both sign acceptably.
    const NEW: &str = "the-next-inbound-secret-77aa";
    let r = put(json!({"relay_url": "http://127.0.0.1:9/relay", "inbound_secret": NEW, "previous_inbound_secret": INBOUND})).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    for (secret, n) in [(INBOUND, "r1"), (NEW, "r2")] {
        let (body, sig) = signed(secret, n);
        let r = post_relay(&app, &id, &body, Some(sig)).await;
        assert_eq!(r.status(), StatusCode::OK, "signed with {secret}");
    }
    let (body, sig) = signed("neither-of-the-two-secrets", "r3");
    assert_eq!(
        post_relay(&app, &id, &body, Some(sig)).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // The rotation ends: the previous secret is cleared (null) and no longer accepted.
    let view: Value =
        put(json!({"relay_url": "http://127.0.0.1:9/relay", "previous_inbound_secret": null}))
            .await
            .json()
            .await
            .unwrap();
    assert!(
        view["secrets"].get("previous_inbound_secret").is_none(),
        "{view:#}"
    );
    assert!(view["secrets"].get("inbound_secret").is_some());
    let (body, sig) = signed(INBOUND, "r4");
    assert_eq!(
        post_relay(&app, &id, &body, Some(sig)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let (body, sig) = signed(NEW, "r5");
    assert_eq!(
        post_relay(&app, &id, &body, Some(sig)).await.status(),
        StatusCode::OK
    );
    let audit = owner
        .json(
            Method::GET,
            "/api/v1/audit?action=migration.keys_set&limit=10",
            None,
        )
        .await;
    assert!(
        audit
            .to_string()
            .contains("\"previous_inbound_secret\":\"cleared\""),
        "{audit:#}"
    );
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_secret_rotated_in_one_console_process_is_in_force_at_anothers_door_within_seconds(
    pool: PgPool,
) {
    use imshift::secrets::MasterKey;
    const KEY: [u8; 32] = [0x17; 32];
    let a = TestApp::spawn_keyed(pool.clone(), |_| {}, MasterKey::from_bytes(KEY)).await;
    let b = TestApp::spawn_keyed(pool, |_| {}, MasterKey::from_bytes(KEY)).await;
    let (owner, id) = migration(&a).await;
    connect_relay(&owner, &id).await;
    let signed = |secret: &str, n: &str| {
        let body = json!({"events": [relay_event(n)]}).to_string();
        let sig = self_built::signature(secret, now(), body.as_bytes());
        (body, sig)
    };
    // B's door opens the side's connection on its first delivery and keeps it a while.
    let (body, sig) = signed(INBOUND, "k1");
    assert_eq!(
        post_relay(&b, &id, &body, Some(sig)).await.status(),
        StatusCode::OK
    );
    // The secret is replaced through A, with no overlap.
    const NEW: &str = "a-brand-new-inbound-secret-3c9d";
    let r = owner
        .api(
            Method::PUT,
            &format!("/api/v1/migrations/{id}/connections/source"),
            Some(
                json!({"fields": {"relay_url": "http://127.0.0.1:9/relay", "inbound_secret": NEW}}),
            ),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    // B's door reads it again in the background once what it opened is 3 s old, deliveries
    // meanwhile answered with what it had: the new secret is accepted within seconds, and
    // from then on the old one is not.
    let mut n = 0;
    eventually("the new secret accepted at B", || {
        n += 1;
        let (body, sig) = signed(NEW, &format!("n{n}"));
        let b = &b;
        let id = &id;
        async move {
            let r = post_relay(b, id, &body, Some(sig)).await;
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            (r.status() == StatusCode::OK).then_some(())
        }
    })
    .await;
    let (body, sig) = signed(INBOUND, "k2");
    assert_eq!(
        post_relay(&b, &id, &body, Some(sig)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // A side quiet for a while: B does not check the next delivery against what it opened
    // then, and a provider that does not send again loses nothing.
    tokio::time::sleep(std::time::Duration::from_secs(7)).await;
    const NEWER: &str = "the-newest-inbound-secret-81fe";
    let r = owner
        .api(
            Method::PUT,
            &format!("/api/v1/migrations/{id}/connections/source"),
            Some(json!({"fields": {"relay_url": "http://127.0.0.1:9/relay", "inbound_secret": NEWER}})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let (body, sig) = signed(NEWER, "q1");
    assert_eq!(
        post_relay(&b, &id, &body, Some(sig)).await.status(),
        StatusCode::OK,
        "the first delivery after a quiet spell"
    );
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn the_event_table_gets_planner_statistics_as_it_grows_without_waiting_for_autovacuum(
    pool: PgPool,
) {
    // Until its first ANALYZE the planner takes the events table for a tiny one and reads
    // every event of a side to find one by key; autovacuum may not come for minutes.
    let app = TestApp::spawn(pool).await;
    let (owner, id) = migration(&app).await;
    connect_relay(&owner, &id).await;
    let analyzed = || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'sync_inbound'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    assert!(!analyzed().await, "a new database has no statistics yet");

    for batch in 0..7 {
        let events: Vec<Value> = (0..100)
            .map(|i| relay_event(&format!("b{batch}-e{i}")))
            .collect();
        let body = json!({ "events": events }).to_string();
        let r = post_signed(&app, &id, &body).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    poll_for(
        "the console to analyze sync_inbound",
        std::time::Duration::from_secs(60),
        || async { analyzed().await.then_some(()) },
    )
    .await;
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_burst_of_concurrent_deliveries_stores_each_event_once_and_answers_each_delivery_for_itself(
    pool: PgPool,
) {
    // Deliveries that arrive together are written in one statement; each must still be
    // answered with its own counts, and a key two of them carry is stored once.
    let app = TestApp::spawn(pool).await;
    let (owner, id) = migration(&app).await;
    connect_relay(&owner, &id).await;

    const N: usize = 60;
    // Delivery i carries e{i} and e{i+1}: every inner key arrives twice at the same moment.
    let answers = futures_util::future::join_all((0..N).map(|i| {
        let body =
            json!({"events": [relay_event(&format!("e{i:02}")), relay_event(&format!("e{:02}", i + 1))]})
                .to_string();
        let (app, id) = (&app, &id);
        async move {
            let r = post_signed(app, id, &body).await;
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.unwrap()
        }
    }))
    .await;
    let sum = |k: &str| answers.iter().map(|a| a[k].as_i64().unwrap()).sum::<i64>();
    assert_eq!(sum("accepted"), N as i64 + 1, "{answers:?}");
    assert_eq!(sum("duplicates"), N as i64 - 1, "{answers:?}");
    assert!(answers
        .iter()
        .all(|a| a["accepted"].as_i64().unwrap() + a["duplicates"].as_i64().unwrap() == 2));
    assert_eq!(stored(&app, &id, "source").await.len(), N + 1);
    let c = counts(&app, &id, "source").await;
    assert_eq!(
        c,
        vec![
            ("accepted".into(), N as i64 + 1),
            ("duplicate".into(), N as i64 - 1)
        ]
    );

    // A NUL character (which PostgreSQL cannot store) refuses its delivery with where it is,
    // and costs nothing to the deliveries beside it.
    let bad = json!({"events": [relay_event("ok-1"), {"id": "nul", "type": "message.sent",
        "at": 1_764_000_000_000i64, "data": {"id": "nul", "conv": "c2c:alice:bob", "from": "alice",
        "to": "bob", "text": "a\u{0}b"}, "origin": "old-im"}]})
    .to_string();
    let good = json!({"events": [relay_event("ok-2")]}).to_string();
    let (bad, good) = tokio::join!(post_signed(&app, &id, &bad), post_signed(&app, &id, &good));
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let err: Value = bad.json().await.unwrap();
    assert_eq!(
        err["error"]["message"],
        "events[1]: has a NUL character (\\u0000), which cannot be stored"
    );
    assert_eq!(good.status(), StatusCode::OK);
    let keys: Vec<String> = stored(&app, &id, "source")
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(keys.contains(&"ok-2".to_string()) && !keys.contains(&"ok-1".to_string()));
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_delivery_the_database_refuses_fails_alone_when_written_with_others(pool: PgPool) {
    use imshift::sync::commit::{Delivery, GroupCommit};
    let app = TestApp::spawn(pool).await;
    let (_owner, id) = migration(&app).await;
    let id: imshift::model::MigrationId = id.parse().unwrap();
    let event = |key: &str, text: &str| imshift::providers::InboundEvent {
        key: key.into(),
        kind: "message.sent".into(),
        at_ms: 1_764_000_000_000,
        data: json!({"id": key, "conv": "c2c:alice:bob", "from": "alice", "to": "bob", "text": text}),
        origin: None,
        alias: None,
    };
    let writer = GroupCommit::default();
    // Past the door's own check, as a provider module that forgot it would hand it over.
    let results = futures_util::future::join_all((0..20).map(|i| {
        let text = if i == 7 { "a\u{0}b" } else { "fine" };
        let delivery = Delivery {
            id,
            side: imshift::model::Side::Source,
            events: vec![event(&format!("m{i}"), text)],
            hold: std::time::Duration::ZERO,
        };
        let (writer, pool) = (&writer, &app.pool);
        async move { writer.store(pool, delivery).await }
    }))
    .await;
    for (i, r) in results.iter().enumerate() {
        match r {
            Err(e) if i == 7 => assert!(e.contains("Unicode"), "{e}"),
            Ok(s) if i != 7 => assert_eq!(s.new, 1, "delivery {i}"),
            other => panic!("delivery {i}: {other:?}"),
        }
    }
    assert_eq!(stored(&app, &id.to_string(), "source").await.len(), 19);
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn an_event_whose_conversation_has_nothing_waiting_goes_to_the_sender_and_the_rest_wait(
    pool: PgPool,
) {
    use imshift::model::Side;
    use imshift::sync::commit::{Delivery, GroupCommit, Handoff, Stored};
    use std::sync::Arc;
    use std::time::Duration;
    let app = TestApp::spawn(pool).await;
    let (_owner, id) = migration(&app).await;
    let id: imshift::model::MigrationId = id.parse().unwrap();
    // The direction on (the switch itself wants both sides connected: not this test's
    // subject).
    sqlx::query("INSERT INTO sync_directions (migration_id, from_side, enabled) VALUES ($1, 'source', true)")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    let mut at = 1_764_000_000_000;
    let mut event = |key: &str, from: &str, to: &str| {
        at += 1;
        imshift::providers::InboundEvent {
            key: key.into(),
            kind: "message.sent".into(),
            at_ms: at,
            data: json!({"id": key, "conv": "c2c", "from": from, "to": to, "text": key}),
            origin: None,
            alias: None,
        }
    };
    let delivery = |events, hold| Delivery {
        id,
        side: Side::Source,
        events,
        hold,
    };
    // A sender with room for three events at once.
    let slots = Arc::new(tokio::sync::Semaphore::new(3));
    let (inbox, mut handed) = tokio::sync::mpsc::unbounded_channel();
    let writer = GroupCommit::default();
    writer.hand_to(Handoff {
        slots: slots.clone(),
        inbox,
    });
    let mut taken = |n: usize| {
        let mut keys = vec![];
        let mut permits = vec![];
        while let Ok((ready, p)) = handed.try_recv() {
            assert_eq!(p.num_permits(), ready.len(), "a slot per event");
            keys.extend(ready.into_iter().map(|r| r.event.key));
            permits.push(p);
        }
        assert_eq!(keys.len(), n, "{keys:?}");
        keys.sort();
        (keys, permits)
    };
    let store = |d| writer.store(&app.pool, d);

    // Four chats' first messages and a second one in the first chat: the second waits for
    // the first, and with three slots the fourth chat waits for the claim.
    let s = store(delivery(
        vec![
            event("a1", "alice", "bob"),
            event("a2", "bob", "alice"),
            event("b1", "carol", "dave"),
            event("c1", "erin", "frank"),
            event("d1", "gina", "hal"),
        ],
        Duration::ZERO,
    ))
    .await
    .unwrap();
    assert_eq!(
        s,
        Stored {
            new: 5,
            queued: 2,
            handed: 3,
            echo: 0
        }
    );
    let (keys, permits) = taken(3);
    assert_eq!(keys, ["a1", "b1", "c1"]);
    assert_eq!(slots.available_permits(), 0);
    // No room left: a new chat's message waits in the queue.
    let s = store(delivery(vec![event("e1", "ivan", "judy")], Duration::ZERO))
        .await
        .unwrap();
    assert_eq!((s.queued, s.handed), (1, 0));
    drop(permits);
    // A chat with one in flight and a chat with one waiting: both wait their turn.
    for (key, from, to) in [("a3", "alice", "bob"), ("d2", "gina", "hal")] {
        let s = store(delivery(vec![event(key, from, to)], Duration::ZERO))
            .await
            .unwrap();
        assert_eq!((s.queued, s.handed), (1, 0), "{key}");
    }
    // A side with a reorder window: its events wait out the window.
    let s = store(delivery(
        vec![event("f1", "kim", "lee")],
        Duration::from_secs(2),
    ))
    .await
    .unwrap();
    assert_eq!((s.queued, s.handed), (1, 0));
    // A redelivery of a handed event is a duplicate, and a new chat goes at once again.
    let s = store(delivery(
        vec![event("b1", "carol", "dave"), event("g1", "mia", "ned")],
        Duration::ZERO,
    ))
    .await
    .unwrap();
    assert_eq!((s.new, s.handed), (1, 1));
    assert_eq!(taken(1).0, ["g1"]);
    // What was handed is leased like a claimed event, so no other sender takes it meanwhile.
    let leased: Vec<String> = sqlx::query_scalar(
        "SELECT key FROM sync_inbound
         WHERE migration_id = $1 AND key IN ('a1', 'b1', 'c1', 'g1')
           AND state = 'sending' AND lease_until > now() + interval '30 seconds'
         ORDER BY key",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(leased, ["a1", "b1", "c1", "g1"]);

    // An event older than one in flight that arrives after it (concurrent posts) is the head by
    // its time, but the console's sender does not take it while its successor is in flight.
    let late = imshift::providers::InboundEvent {
        at_ms: 1_764_000_000_000,
        ..event("g0", "mia", "ned")
    };
    let s = store(delivery(vec![late], Duration::ZERO)).await.unwrap();
    assert_eq!((s.queued, s.handed), (1, 0));
    // Taken, it would fail at once (the new side is not connected) and count an attempt.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (state, attempts): (String, i32) = sqlx::query_as(
        "SELECT state, attempts FROM sync_inbound WHERE migration_id = $1 AND key = 'g0'",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((state.as_str(), attempts), ("queued", 0));
}
