//! Injected faults: what a client's retry logic meets, and the ambiguity of an answer lost
//! after the call was applied.

use crate::common::*;
use imshift::providers::netease::sandbox::{Fault, Faults};
use serde_json::json;

async fn set_faults(
    h: &imshift::providers::netease::sandbox::SandboxHandle,
    body: serde_json::Value,
) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/_sandbox/faults", h.root_url()))
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn an_injected_502_is_not_applied_and_the_retry_goes_through() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    assert_eq!(set_faults(&h, json!({"next": ["bad_gateway"]})).await, 200);
    let r = c.send("user/create", &[("accid", "u1")]).await;
    assert_eq!(r.status().as_u16(), 502);
    assert_eq!(
        h.state()["accounts"],
        0,
        "a 502 before the call changes nothing"
    );
    let v = c.call("user/create", &[("accid", "u1")]).await;
    assert_eq!(code(&v), 200, "{v}");
    let state = h.state();
    assert_eq!(state["injected"], 1);
    assert_eq!(state["apis"]["user/create"]["bad_gateway"], 1);
}

#[tokio::test]
async fn a_lost_answer_was_applied_so_the_blind_retry_of_a_create_is_414() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    assert_eq!(
        set_faults(&h, json!({"next": ["lost_answer_bad_gateway"]})).await,
        200
    );
    let r = c.send("user/create", &[("accid", "u1")]).await;
    assert_eq!(r.status().as_u16(), 502);
    assert_eq!(
        h.state()["accounts"],
        1,
        "applied although the caller saw a 502"
    );
    let v = c.call("user/create", &[("accid", "u1")]).await;
    assert_eq!(code(&v), 414, "{v}");
    assert!(desc(&v).contains("already registered"), "{v}");
    // The other way to lose it: the connection is cut in the middle of the answer (the
    // caller sees an error before or while reading the body).
    assert_eq!(set_faults(&h, json!({"next": ["lost_answer"]})).await, 200);
    let whole = match c.try_send("user/create", &[("accid", "u2")]).await {
        Err(_) => false,
        Ok(r) => match r.text().await {
            Err(_) => false,
            Ok(text) => serde_json::from_str::<serde_json::Value>(&text).is_ok(),
        },
    };
    assert!(!whole, "the answer must not arrive whole");
    assert_eq!(h.state()["accounts"], 2);
    assert_eq!(h.state()["apis"]["user/create"]["lost"], 2);
}

#[tokio::test]
async fn an_injected_body_code_is_not_applied_and_faults_hit_only_the_apis_named() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    let faults = Faults {
        apis: vec!["msg/sendMsg".into()],
        next: [Fault::Code(503), Fault::Code(416)].into(),
        ..Faults::default()
    };
    h.set_faults(faults).unwrap();
    create_accounts(&c, &["a", "b"]).await;
    let send = || {
        c.call(
            "msg/sendMsg",
            &[
                ("from", "a"),
                ("ope", "0"),
                ("to", "b"),
                ("type", "0"),
                ("body", "{\"msg\":\"x\"}"),
            ],
        )
    };
    assert_eq!(code(&send().await), 503);
    assert_eq!(code(&send().await), 416);
    assert_eq!(h.state()["messages"], 0);
    assert_eq!(
        h.state()["throttled"],
        0,
        "an injected 416 is not the quota's"
    );
    assert_eq!(code(&send().await), 200);
}

#[tokio::test]
async fn random_faults_follow_their_rate() {
    let h = sandbox_with(|c| c.faults.bad_gateway_rate = 1.0).await;
    let c = Caller::of(&h);
    for i in 0..3 {
        let r = c.send("user/create", &[("accid", &format!("u{i}"))]).await;
        assert_eq!(r.status().as_u16(), 502);
    }
    assert_eq!(
        set_faults(&h, json!({"code_rate": 1.0, "codes": [500]})).await,
        200
    );
    let v = c.call("user/create", &[("accid", "u1")]).await;
    assert_eq!(code(&v), 500, "{v}");
    assert_eq!(set_faults(&h, json!({})).await, 200);
    let v = c.call("user/create", &[("accid", "u1")]).await;
    assert_eq!(code(&v), 200, "{v}");
    assert_eq!(h.state()["accounts"], 1);
}

#[tokio::test]
async fn fault_settings_that_make_no_sense_are_refused() {
    let h = sandbox().await;
    for body in [
        json!({"code_rate": 1.5}),
        json!({"next": [{"code": 200}]}),
        json!({"code_rate": 0.5, "codes": []}),
        json!({"no_such_field": 1}),
    ] {
        assert_eq!(set_faults(&h, body.clone()).await, 400, "{body}");
    }
}
