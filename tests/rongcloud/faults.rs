//! Injected faults: what a client's retries and domain switch meet, and the ambiguity of an
//! answer lost after the call was applied.

use crate::common::*;
use imshift::providers::rongcloud::sandbox::{Fault, Faults, SandboxHandle};
use serde_json::json;

async fn set_faults(h: &SandboxHandle, body: serde_json::Value) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/_sandbox/faults", h.root_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn an_injected_5xx_page_or_cut_connection_is_not_applied() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    let (status, _) = set_faults(&h, json!({"next": [{"http": 502}, "disconnect"]})).await;
    assert_eq!(status, 200);
    let r = c.send("user/getToken", &[("userId", "u1")]).await;
    assert_eq!(r.status().as_u16(), 502);
    let whole = match c.try_send("user/getToken", &[("userId", "u1")]).await {
        Err(_) => false,
        Ok(r) => r.text().await.is_ok_and(|t| !t.is_empty()),
    };
    assert!(!whole, "the connection must be cut");
    assert_eq!(h.state()["users"], 0, "neither was applied");
    c.ok("user/getToken", &[("userId", "u1")]).await;
    let s = h.state();
    assert_eq!(s["injected"], 2);
    assert_eq!(s["apis"]["user/getToken"]["http_faults"], 2);
}

#[tokio::test]
async fn injected_codes_come_with_their_http_status() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    set_faults(
        &h,
        json!({"next": [{"code": 1008}, {"code": 1000}, {"code": 1050}]}),
    )
    .await;
    for (status, code_) in [(429, 1008), (500, 1000), (504, 1050)] {
        let (s, v) = c.call("user/getToken", &[("userId", "u1")]).await;
        assert_eq!((s, code(&v)), (status, code_), "{v}");
    }
    assert_eq!(h.state()["users"], 0);
    assert_eq!(
        h.state()["throttled"],
        0,
        "an injected 1008 is not a quota refusal"
    );
}

#[tokio::test]
async fn a_lost_answer_was_applied_so_a_blind_resend_of_a_publish_duplicates() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    register(&c, &["a", "b"]).await;
    h.set_faults(Faults {
        apis: vec!["message/private/publish".into()],
        next: [Fault::LostAnswerTimeout, Fault::LostAnswer].into(),
        ..Faults::default()
    })
    .unwrap();
    let content = text("once?");
    let form = [
        ("fromUserId", "a"),
        ("toUserId", "b"),
        ("objectName", "RC:TxtMsg"),
        ("content", content.as_str()),
    ];
    // Faults hit only the API named.
    c.ok("user/info", &[("userId", "a")]).await;
    let (status, v) = c.call("message/private/publish", &form).await;
    assert_eq!((status, code(&v)), (504, 1050), "{v}");
    assert_eq!(
        h.state()["messages"],
        1,
        "applied although the caller saw a 504"
    );
    let whole = match c.try_send("message/private/publish", &form).await {
        Err(_) => false,
        Ok(r) => match r.text().await {
            Err(_) => false,
            Ok(t) => serde_json::from_str::<serde_json::Value>(&t).is_ok(),
        },
    };
    assert!(!whole, "the answer must not arrive whole");
    assert_eq!(h.state()["messages"], 2);
    assert_eq!(h.state()["apis"]["message/private/publish"]["lost"], 2);
}

#[tokio::test]
async fn bad_fault_settings_are_refused_with_why() {
    let h = sandbox().await;
    let (status, v) = set_faults(&h, json!({"code_rate": 2.0})).await;
    assert_eq!(status, 400);
    assert!(v["error"].as_str().unwrap().contains("code_rate 2"), "{v}");
    let (status, v) = set_faults(&h, json!({"next": [{"http": 200}]})).await;
    assert_eq!(status, 400, "{v}");
    let (status, v) = set_faults(&h, json!({"nonsense": 1})).await;
    assert_eq!(status, 400, "{v}");
    // Random faults with a seed: every call fails while the rate is 1.
    set_faults(&h, json!({"http_rate": 1.0, "http_statuses": [503]})).await;
    let c = Caller::of(&h);
    let r = c.send("user/getToken", &[("userId", "u1")]).await;
    assert_eq!(r.status().as_u16(), 503);
    let faults = inspect(&h, "faults").await;
    assert_eq!(faults["http_rate"], 1.0);
}
