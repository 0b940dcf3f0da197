//! 全量消息路由 (reference §3): what app users send is posted to the app server, signed
//! `SHA1(AppSecret + nonce + signTimestamp)` in the query, as a form; server-API sends only
//! with the switch on; retries and duplicates. And the sandbox as the provider starts it.

use crate::common::*;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use imshift::providers::rongcloud::sandbox::{parse_form, RongcloudSandbox, SandboxHandle};
use imshift::providers::{RunningSandbox, Sandbox, StartOptions};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One routed request: its query and its form fields.
#[derive(Debug, Clone)]
struct Routed {
    query: HashMap<String, String>,
    form: HashMap<String, String>,
    content_type: String,
}

#[derive(Clone, Default)]
struct Hook {
    got: Arc<Mutex<Vec<Routed>>>,
    /// Answer HTTP 500 to this many requests first.
    fail_first: Arc<Mutex<u32>>,
}

async fn receive(
    State(hook): State<Hook>,
    Query(query): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> StatusCode {
    {
        let mut f = hook.fail_first.lock().unwrap();
        if *f > 0 {
            *f -= 1;
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    let content_type = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let form = parse_form(&body).unwrap().into_iter().collect();
    hook.got.lock().unwrap().push(Routed {
        query,
        form,
        content_type,
    });
    StatusCode::OK
}

/// A local app server; its routing URL.
async fn app_server(hook: Hook) -> String {
    let app = axum::Router::new()
        .route("/rc/route", axum::routing::post(receive))
        .with_state(hook);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/rc/route")
}

async fn wait_for(hook: &Hook, n: usize) -> Vec<Routed> {
    for _ in 0..100 {
        if hook.got.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    hook.got.lock().unwrap().clone()
}

async fn routed_sandbox(
    hook: &Hook,
    f: impl FnOnce(&mut imshift::providers::rongcloud::sandbox::SandboxConfig),
) -> SandboxHandle {
    let url = app_server(hook.clone()).await;
    sandbox_with(|c| {
        c.route.url = Some(url);
        c.route.retry_delay_ms = 10;
        f(c);
    })
    .await
}

async fn user_message(h: &SandboxHandle, body: serde_json::Value) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/_sandbox/user_message", h.root_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn a_users_message_is_routed_as_a_signed_form() {
    let hook = Hook::default();
    let h = routed_sandbox(&hook, |_| {}).await;
    let (status, v) = user_message(&h, json!({"from": "alice", "to": "bob", "text": "hi"})).await;
    assert_eq!(status, 200, "{v}");
    let uid = v["id"].as_str().unwrap().to_string();
    let got = wait_for(&hook, 1).await;
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert!(
        r.content_type
            .starts_with("application/x-www-form-urlencoded"),
        "{r:?}"
    );
    let (nonce, ts, sig) = (
        &r.query["nonce"],
        &r.query["signTimestamp"],
        &r.query["signature"],
    );
    assert!(nonce.len() <= 18);
    assert_eq!(sig, &sign(SECRET, nonce, ts));
    assert!(
        ts.parse::<u64>().unwrap() > now_ms() - 60_000,
        "milliseconds"
    );
    let f = &r.form;
    assert_eq!(f["fromUserId"], "alice");
    assert_eq!(f["toUserId"], "bob");
    assert_eq!(f["objectName"], "RC:TxtMsg");
    assert_eq!(f["channelType"], "PERSON");
    assert_eq!(f["msgUID"], uid);
    assert_eq!(f["source"], "Android");
    assert_eq!(f["sensitiveType"], "0");
    let content: serde_json::Value = serde_json::from_str(&f["content"]).unwrap();
    assert_eq!(content["content"], "hi");
    assert!(f["msgTimestamp"].parse::<u64>().is_ok());
    // The app user was registered as the app's sign-up would, and the message stored.
    assert_eq!(h.state()["users"], 2);
    assert_eq!(h.one_to_one_texts().unwrap(), ["hi"]);
}

#[tokio::test]
async fn a_group_message_from_a_member_is_routed_with_the_group_as_target() {
    let hook = Hook::default();
    let h = routed_sandbox(&hook, |_| {}).await;
    let c = Caller::of(&h);
    register(&c, &["a", "b"]).await;
    create_group(&c, "g1", &["a", "b"]).await;
    let (status, v) = user_message(
        &h,
        json!({"from": "x", "to": "g1", "group": true, "text": "t"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(v["error"].as_str().unwrap().contains("not in group"), "{v}");
    h.user_message("a", "g1", true, "to all").await.unwrap();
    let got = wait_for(&hook, 1).await;
    assert_eq!(got[0].form["channelType"], "GROUP");
    assert_eq!(got[0].form["toUserId"], "g1");
}

#[tokio::test]
async fn server_api_sends_are_routed_only_with_the_switch_on() {
    let hook = Hook::default();
    let h = routed_sandbox(&hook, |_| {}).await;
    let c = Caller::of(&h);
    register(&c, &["a", "b"]).await;
    let content = text("from the server");
    let form = [
        ("fromUserId", "a"),
        ("toUserId", "b"),
        ("objectName", "RC:TxtMsg"),
        ("content", content.as_str()),
    ];
    c.ok("message/private/publish", &form).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(hook.got.lock().unwrap().is_empty(), "off by default");
    let v: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/_sandbox/route", h.root_url()))
        .json(&json!({"route_api_messages": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["route_api_messages"], true);
    c.ok("message/private/publish", &form).await;
    let got = wait_for(&hook, 1).await;
    assert_eq!(got[0].form["source"], "Server");
    assert_eq!(got[0].form["clientIp"], "");
}

#[tokio::test]
async fn failures_are_retried_and_duplicates_can_be_injected() {
    let hook = Hook::default();
    *hook.fail_first.lock().unwrap() = 2;
    let h = routed_sandbox(&hook, |c| c.route.duplicate = true).await;
    h.user_message("a", "b", false, "twice").await.unwrap();
    let got = wait_for(&hook, 2).await;
    assert_eq!(got.len(), 2, "delivered twice");
    assert_eq!(
        got[0].form["msgUID"], got[1].form["msgUID"],
        "the same message"
    );
    assert_ne!(
        got[0].query["nonce"], got[1].query["nonce"],
        "each try signed anew"
    );
    let route = h.state()["route"].clone();
    assert_eq!(route["delivered"], 2, "{route}");
    assert_eq!(route["failed_tries"], 2, "{route}");
}

#[tokio::test]
async fn the_provider_starts_it_with_the_connections_keys_and_hook() {
    let hook = Hook::default();
    let url = app_server(hook.clone()).await;
    let started = RongcloudSandbox
        .start(
            None,
            StartOptions {
                hook_url: Some(url),
                ..StartOptions::default()
            },
        )
        .await
        .unwrap();
    let p = &started.public;
    assert_eq!(p["data_centre"], "custom");
    let base = p["base_url"].as_str().unwrap();
    assert_eq!(base, format!("http://{}", started.sandbox.addr()));
    let app_key = p["app_key"].as_str().unwrap();
    assert_eq!(app_key.len(), 13);
    let (field, secret) = &started.secrets[0];
    assert_eq!(field, "app_secret");
    // A call signed with what it handed out.
    let secret = secrecy::ExposeSecret::expose_secret(secret).to_string();
    let nonce = "77";
    let ts = now_ms().to_string();
    let r = reqwest::Client::new()
        .post(format!("{base}/user/getToken.json"))
        .header("App-Key", app_key)
        .header("Nonce", nonce)
        .header("Timestamp", &ts)
        .header("Signature", sign(&secret, nonce, &ts))
        .form(&[("userId", "u1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    started
        .sandbox
        .user_message("u1", "u2", false, "hello")
        .await
        .unwrap();
    let got = wait_for(&hook, 1).await;
    assert_eq!(
        got[0].query["signature"],
        sign(
            &secret,
            &got[0].query["nonce"],
            &got[0].query["signTimestamp"]
        )
    );
    assert_eq!(started.sandbox.throttled(), Some(0));
}
