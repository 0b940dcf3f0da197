//! Coexistence sync with NetEase Yunxin without the console: the message copy (抄送) door's
//! signature check and parsing through the provider, the sink sending into the sandbox with
//! `route=false` and imshift's tag (and nothing copied back), and a user's message copied to
//! a hook with headers the door accepts.

use crate::common::*;
use axum::body::Bytes;
use axum::http::HeaderMap;
use imshift::model::{MigrationId, Side};
use imshift::providers::netease::provider::provider;
use imshift::providers::netease::sandbox::SandboxHandle;
use imshift::providers::netease::{callbacks, sign};
use imshift::providers::{
    CallbackRequest, Connection, Delivered, EchoGuards, RunningSandbox, SyncEvent, ORIGIN,
};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CC_SECRET: &str = "copy-secret-for-tests-3e1";

fn conn(base_url: &str, cc_secret: Option<&str>) -> Connection {
    let mut c = Connection::empty(MigrationId::new_v4(), Side::Target);
    c.public.insert("app_key".into(), APP_KEY.into());
    c.public.insert("data_centre".into(), "custom".into());
    c.public.insert("base_url".into(), base_url.into());
    c.secrets
        .insert("app_secret".into(), SecretString::from(SECRET.to_string()));
    if let Some(s) = cc_secret {
        c.secrets
            .insert("cc_secret".into(), SecretString::from(s.to_string()));
    }
    c
}

/// A copy's headers as NetEase makes them: signed with `secret` at `cur_ms`, the MD5 given.
fn headers(secret: &str, app_key: Option<&str>, md5: &str, cur_ms: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(k) = app_key {
        h.insert("AppKey", k.parse().unwrap());
    }
    let cur = cur_ms.to_string();
    h.insert("CurTime", cur.parse().unwrap());
    h.insert("MD5", md5.parse().unwrap());
    h.insert(
        "CheckSum",
        sign::checksum(secret, md5, &cur).parse().unwrap(),
    );
    h
}

fn check(c: &Connection, h: &HeaderMap, body: &[u8]) -> Result<(), String> {
    let query = HashMap::new();
    let req = CallbackRequest {
        query: &query,
        headers: h,
        body,
        now: (now_ms() / 1000) as i64,
    };
    provider().verify_callback(c, &req)
}

fn parse(body: &Value) -> Result<Vec<imshift::providers::InboundEvent>, String> {
    let query = HashMap::new();
    let h = HeaderMap::new();
    let bytes = body.to_string();
    let req = CallbackRequest {
        query: &query,
        headers: &h,
        body: bytes.as_bytes(),
        now: 0,
    };
    provider().inbound(&conn("http://127.0.0.1:1/nimserver", None), &req)
}

fn text_copy() -> Value {
    json!({"attach":"","body":"hello","convType":"PERSON","eventType":"1","fromAccount":"111",
           "fromClientType":"IOS","fromDeviceId":"d","fromNick":"mike","msgTimestamp":"1441977355557",
           "msgType":"TEXT","msgidClient":"1234567","msgidServer":"3456789","resendFlag":"0","to":"222"})
}

#[test]
fn a_signed_copy_verifies_and_bad_ones_are_refused_with_reasons() {
    let body = text_copy().to_string();
    let md5 = sign::body_md5(body.as_bytes());
    let now = now_ms();
    let plain = conn("http://127.0.0.1:1/nimserver", None);
    // Signed with the App Secret, with and without AppKey.
    check(
        &plain,
        &headers(SECRET, Some(APP_KEY), &md5, now),
        body.as_bytes(),
    )
    .unwrap();
    check(&plain, &headers(SECRET, None, &md5, now), body.as_bytes()).unwrap();
    // A copy secret, when set, is the one.
    let cc = conn("http://127.0.0.1:1/nimserver", Some(CC_SECRET));
    check(
        &cc,
        &headers(CC_SECRET, Some(APP_KEY), &md5, now),
        body.as_bytes(),
    )
    .unwrap();
    let e = check(
        &cc,
        &headers(SECRET, Some(APP_KEY), &md5, now),
        body.as_bytes(),
    )
    .unwrap_err();
    assert!(e.contains("CheckSum does not match"), "{e}");

    // The body changed on the way: its MD5 is not the header's.
    let e = check(
        &plain,
        &headers(SECRET, Some(APP_KEY), &md5, now),
        body.replace("hello", "hullo").as_bytes(),
    )
    .unwrap_err();
    assert!(e.contains("MD5"), "{e}");
    // Wrong secret.
    let e = check(
        &plain,
        &headers("another-secret", Some(APP_KEY), &md5, now),
        body.as_bytes(),
    )
    .unwrap_err();
    assert!(e.contains("CheckSum does not match"), "{e}");
    // Six minutes old: stale (the door counts it as a replay).
    let e = check(
        &plain,
        &headers(SECRET, Some(APP_KEY), &md5, now - 360_000),
        body.as_bytes(),
    )
    .unwrap_err();
    assert!(e.starts_with("stale"), "{e}");
    assert!(
        callbacks::MAX_SKEW_SECS == 300 && e.contains("300 s"),
        "{e}"
    );
    // Another app.
    let e = check(
        &plain,
        &headers(SECRET, Some("ffffffffffffffffffffffffffffffff"), &md5, now),
        body.as_bytes(),
    )
    .unwrap_err();
    assert!(e.contains("App Key"), "{e}");
    // No signature at all.
    let e = check(&plain, &HeaderMap::new(), body.as_bytes()).unwrap_err();
    assert!(e.contains("CurTime, MD5, CheckSum"), "{e}");
}

#[test]
fn person_and_team_copies_become_canonical_messages() {
    let ev = parse(&text_copy()).unwrap();
    assert_eq!(ev.len(), 1);
    let e = &ev[0];
    assert_eq!(e.key, "3456789");
    assert_eq!(e.kind, "message.sent");
    assert_eq!(e.at_ms, 1_441_977_355_557);
    assert_eq!(e.origin, None);
    assert_eq!(
        e.data,
        json!({"id":"3456789","conv":"c2c","from":"111","to":"222","sent_at":1_441_977_355_557i64,
               "client":"ios","body":{"type":"text","text":"hello"}})
    );

    // A picture in a team, its file in `attach`.
    let mut pic = text_copy();
    pic["convType"] = "TEAM".into();
    pic["to"] = "10001".into();
    pic["msgType"] = "PICTURE".into();
    pic["body"] = "".into();
    pic["attach"] = json!({"name":"a.jpg","md5":"x","url":"https://nos/a.jpg","ext":"jpg","w":60,"h":20,"size":388})
        .to_string()
        .into();
    let e = &parse(&pic).unwrap()[0];
    assert_eq!(e.data["conv"], "group");
    assert_eq!(e.data["to"], "10001");
    assert_eq!(
        e.data["body"],
        json!({"type":"image","url":"https://nos/a.jpg","name":"a.jpg","size":388,"width":60,"height":20,"format":"jpg"})
    );

    // A custom message carrying imshift's tag in ext: its origin, the app's ext kept.
    let mut custom = text_copy();
    custom["msgType"] = "CUSTOM".into();
    custom["attach"] = r#"{"card":7}"#.into();
    custom["fromClientType"] = "REST".into();
    custom["ext"] = json!({"imshift":"old-1","mine":true}).to_string().into();
    let e = &parse(&custom).unwrap()[0];
    assert_eq!(e.origin.as_deref(), Some(ORIGIN));
    assert_eq!(e.data["body"], json!({"type":"custom","data":{"card":7}}));
    assert_eq!(e.data["ext"], r#"{"mine":true}"#);
    assert_eq!(e.data["client"], "server");
    // A team custom copy parses the same way.
    custom["convType"] = "TEAM".into();
    assert_eq!(parse(&custom).unwrap()[0].data["conv"], "group");

    // Not relayed: other events, notifications; malformed: said where.
    assert!(parse(&json!({"eventType":"2","accid":"a"}))
        .unwrap()
        .is_empty());
    let mut note = text_copy();
    note["msgType"] = "NOTIFICATION".into();
    assert!(parse(&note).unwrap().is_empty());
    let mut broken = text_copy();
    broken.as_object_mut().unwrap().remove("msgidServer");
    let err = parse(&broken).unwrap_err();
    assert!(err.contains("msgidServer"), "{err}");
    let mut bad_time = text_copy();
    bad_time["msgTimestamp"] = "yesterday".into();
    assert!(parse(&bad_time).unwrap_err().contains("msgTimestamp"));
}

/// A hook that keeps what it is sent and answers 200.
struct Hook {
    url: String,
    got: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
}

async fn hook() -> Hook {
    let got: Arc<Mutex<Vec<(HeaderMap, Bytes)>>> = Arc::default();
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |h: HeaderMap, b: Bytes| {
            let keep = keep.clone();
            async move {
                keep.lock().unwrap().push((h, b));
                axum::Json(json!({"code": 200}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Hook {
        url: format!("http://{addr}/hook"),
        got,
    }
}

async fn sandbox_to(hook: &Hook) -> SandboxHandle {
    let url = hook.url.clone();
    let h = sandbox_with(move |c| c.copy.hook_url = Some(url)).await;
    imshift::providers::outbound::register_sandbox(h.addr);
    h
}

fn sent(key: &str, conv: &str, from: &str, to: &str, body: Value) -> SyncEvent {
    SyncEvent {
        key: key.into(),
        kind: "message.sent".into(),
        at_ms: 1,
        data: json!({"id": key, "conv": conv, "from": from, "to": to, "sent_at": 1, "body": body}),
        original: None,
        attempts: 0,
    }
}

#[tokio::test]
async fn the_sink_sends_with_route_off_and_the_tag_and_nothing_is_copied_back() {
    let hook = hook().await;
    let h = sandbox_to(&hook).await;
    let c = Caller::of(&h);
    create_accounts(&c, &["carol"]).await;
    let tid = create_team(
        &c,
        "carol",
        &[],
        &[("custom", r#"{"imshift_source_group":"g1"}"#)],
    )
    .await;
    let p = provider();
    let sink = p
        .sync_sink(
            &conn(&h.base_url(), None),
            p.limits(),
            EchoGuards::default(),
        )
        .unwrap();
    let events = [
        // Accounts NetEase does not have yet are registered on the way.
        sent(
            "old-1",
            "c2c",
            "Alice",
            "bob",
            json!({"type":"text","text":"hi bob"}),
        ),
        sent(
            "old-2",
            "group",
            "carol",
            "g1",
            json!({"type":"text","text":"hi team"}),
        ),
        sent(
            "old-3",
            "group",
            "carol",
            "g-unknown",
            json!({"type":"text","text":"lost"}),
        ),
    ];
    let mut out = vec![];
    for e in &events {
        out.extend(sink.deliver(std::slice::from_ref(e)).await);
    }
    let msgs = inspect(&h, "messages").await;
    let msgs = msgs.as_array().unwrap();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    for ((m, d), key) in msgs.iter().zip(&out).zip(["old-1", "old-2"]) {
        let Delivered::Applied { made: Some(made) } = d else {
            panic!("{d:?}")
        };
        assert_eq!(m["msgid"].to_string(), *made);
        assert_eq!(m["route"], false);
        assert_eq!(m["fromclienttype"], 32);
        let ext: Value = serde_json::from_str(m["ext"].as_str().unwrap()).unwrap();
        assert_eq!(ext["imshift"], key);
    }
    assert_eq!(msgs[0]["from"], "alice");
    assert_eq!(msgs[0]["to"], "bob");
    assert_eq!(msgs[0]["body"], r#"{"msg":"hi bob"}"#);
    assert_eq!(msgs[1]["ope"], 1);
    assert_eq!(msgs[1]["to"], tid.as_str());
    let Delivered::Failed { class, message, .. } = &out[2] else {
        panic!("{:?}", out[2])
    };
    assert_eq!(*class, imshift::providers::ErrorClass::Permanent);
    assert!(message.contains("g-unknown"), "{message}");
    // Paced with the import's key of the message category.
    let (key, qps) = sink.pace(&events[0]).unwrap();
    assert_eq!(key, format!("netease:{APP_KEY}:message"));
    assert!(qps > 0.0);
    // Other kinds say so.
    let mut other = events[0].clone();
    other.kind = "friend.added".into();
    let d = sink.deliver(&[other]).await;
    assert!(
        matches!(&d[0], Delivered::Failed { message, .. } if message.contains("friend.added")),
        "{d:?}"
    );

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        hook.got.lock().unwrap().is_empty(),
        "route=false was copied"
    );
}

#[tokio::test]
async fn a_users_message_is_copied_to_the_hook_with_headers_the_door_accepts() {
    let hook = hook().await;
    let h = sandbox_to(&hook).await;
    let id = h
        .user_message("Dave", "erin", false, "from a phone")
        .await
        .unwrap();
    // With the provider flags off, imshift's own sends are copied too (tagged).
    let p = provider();
    let sink = p
        .sync_sink(
            &conn(&h.base_url(), None),
            p.limits(),
            EchoGuards {
                provider_flags: false,
                origin_tag: true,
            },
        )
        .unwrap();
    let d = sink
        .deliver(&[sent(
            "old-9",
            "c2c",
            "erin",
            "dave",
            json!({"type":"text","text":"back"}),
        )])
        .await;
    assert!(matches!(d[0], Delivered::Applied { .. }), "{d:?}");

    let got = {
        let mut waited = 0;
        loop {
            let got = hook.got.lock().unwrap().clone();
            if got.len() >= 2 || waited > 50 {
                break got;
            }
            waited += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    assert_eq!(got.len(), 2, "{got:?}");
    let c = conn(&h.base_url(), None);
    let mut by_key = HashMap::new();
    for (headers, body) in &got {
        assert_eq!(headers["AppKey"], APP_KEY);
        assert!(headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        check(&c, headers, body).unwrap();
        let v: Value = serde_json::from_slice(body).unwrap();
        assert!(v.as_object().unwrap().values().all(Value::is_string), "{v}");
        let e = parse(&v).unwrap().remove(0);
        by_key.insert(e.key.clone(), (v, e));
    }
    let (v, e) = &by_key[&id];
    assert_eq!(v["fromClientType"], "AOS");
    assert_eq!(e.data["from"], "dave");
    assert_eq!(e.data["body"]["text"], "from a phone");
    assert_eq!(e.origin, None);
    let (v, e) = by_key.values().find(|(_, e)| e.key != id).unwrap();
    assert_eq!(v["fromClientType"], "REST");
    assert_eq!(e.origin.as_deref(), Some(ORIGIN));
    assert_eq!(inspect(&h, "state").await["copies"]["delivered"], 2);
}

#[tokio::test]
async fn copies_are_retried_and_can_be_delivered_twice() {
    // A hook that is down: retried, then given up.
    let h = sandbox_with(|c| {
        c.copy.hook_url = Some("http://127.0.0.1:9/down".into());
        c.copy.retries = 2;
        c.copy.retry_delay_ms = 10;
    })
    .await;
    h.user_message("a", "b", false, "x").await.unwrap();
    let mut state = Value::Null;
    for _ in 0..50 {
        state = inspect(&h, "state").await;
        if state["copies"]["given_up"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state["copies"]["failed_tries"], 3, "{state}");
    assert_eq!(state["copies"]["given_up"], 1, "{state}");

    // The duplicate switch, set at run time.
    let hook = hook().await;
    let h = sandbox_to(&hook).await;
    let r: Value = reqwest::Client::new()
        .post(format!("{}/_sandbox/copy", h.root_url()))
        .json(&json!({"duplicate": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["duplicate"], true);
    h.user_message("a", "b", false, "twice").await.unwrap();
    for _ in 0..50 {
        if hook.got.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = hook.got.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].1, got[1].1, "the same copy twice");
}
