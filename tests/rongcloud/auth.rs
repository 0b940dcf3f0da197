//! The request envelope (reference §1.2, §1.3, §5.1–2): the four headers in either spelling,
//! seconds or milliseconds, the clock window, form bodies, unknown paths.

use crate::common::*;

#[tokio::test]
async fn a_signed_call_passes_with_seconds_or_milliseconds_and_either_header_spelling() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    // Milliseconds (the docs, Python SDK).
    let v = c
        .ok("user/getToken", &[("userId", "u1"), ("name", "One")])
        .await;
    assert_eq!(v["userId"], "u1");
    // Seconds (Java, Go SDKs), and an upper-case signature.
    let ts = (now_ms() / 1000).to_string();
    let sig = Sig {
        app_key: APP_KEY.into(),
        nonce: "1234567890123456789".into(), // 19 digits, as the Go SDK may send
        signature: sign(SECRET, "1234567890123456789", &ts).to_uppercase(),
        timestamp: ts,
    };
    let (status, v) = answer(c.send_signed("user/info", &sig, &[("userId", "u1")]).await).await;
    assert_eq!((status, code(&v)), (200, 200), "{v}");
    assert_eq!(v["userName"], "One");
    // The RC- names for platforms that strip custom headers, in lower case.
    let sig = Sig::now(SECRET);
    let r = c
        .http
        .post(format!("{}/user/info.json", c.base))
        .header("rc-app-key", &sig.app_key)
        .header("rc-nonce", &sig.nonce)
        .header("rc-timestamp", &sig.timestamp)
        .header("rc-signature", &sig.signature)
        .form(&[("userId", "u1")])
        .send()
        .await
        .unwrap();
    let (status, v) = answer(r).await;
    assert_eq!((status, code(&v)), (200, 200), "{v}");
}

#[tokio::test]
async fn bad_signatures_keys_and_clocks_are_401_with_the_reason() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    let form = [("userId", "u1")];

    let mut sig = Sig::now("another-secret");
    let (status, v) = answer(c.send_signed("user/getToken", &sig, &form).await).await;
    assert_eq!((status, code(&v)), (401, 1004), "{v}");
    assert!(message(&v).contains("Signature does not match"), "{v}");

    sig = Sig::now(SECRET);
    sig.app_key = "otherapp".into();
    let (status, v) = answer(c.send_signed("user/getToken", &sig, &form).await).await;
    assert_eq!((status, code(&v)), (401, 1001), "{v}");
    assert!(message(&v).contains("otherapp"), "{v}");

    // Ten minutes old, correctly signed.
    let ts = (now_ms() - 600_000).to_string();
    let sig = Sig {
        app_key: APP_KEY.into(),
        nonce: "42".into(),
        signature: sign(SECRET, "42", &ts),
        timestamp: ts,
    };
    let (status, v) = answer(c.send_signed("user/getToken", &sig, &form).await).await;
    assert_eq!((status, code(&v)), (401, 1004), "{v}");
    assert!(message(&v).contains("from the server's clock"), "{v}");

    // No Signature at all.
    let r = c
        .http
        .post(format!("{}/user/getToken.json", c.base))
        .header("App-Key", APP_KEY)
        .header("Nonce", "1")
        .header("Timestamp", now_ms().to_string())
        .form(&form)
        .send()
        .await
        .unwrap();
    let (status, v) = answer(r).await;
    assert_eq!((status, code(&v)), (401, 1004), "{v}");
    assert!(message(&v).contains("Signature header is missing"), "{v}");
    assert_eq!(h.state()["users"], 0, "nothing refused was applied");
}

#[tokio::test]
async fn a_nonce_limit_applies_only_when_set() {
    let h = sandbox_with(|c| c.max_nonce_chars = Some(18)).await;
    let c = Caller::of(&h);
    let ts = now_ms().to_string();
    let nonce = "1234567890123456789";
    let sig = Sig {
        app_key: APP_KEY.into(),
        nonce: nonce.into(),
        signature: sign(SECRET, nonce, &ts),
        timestamp: ts,
    };
    let (status, v) = answer(
        c.send_signed("user/getToken", &sig, &[("userId", "u1")])
            .await,
    )
    .await;
    assert_eq!((status, code(&v)), (401, 1004), "{v}");
    assert!(message(&v).contains("at most 18"), "{v}");
}

#[tokio::test]
async fn bodies_must_be_forms_and_paths_must_exist() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    let sig = Sig::now(SECRET);
    let r = c
        .http
        .post(format!("{}/user/getToken.json", c.base))
        .header("App-Key", &sig.app_key)
        .header("Nonce", &sig.nonce)
        .header("Timestamp", &sig.timestamp)
        .header("Signature", &sig.signature)
        .json(&serde_json::json!({"userId": "u1"}))
        .send()
        .await
        .unwrap();
    let (status, v) = answer(r).await;
    assert_eq!((status, code(&v)), (400, 1002), "{v}");
    assert!(
        message(&v).contains("application/x-www-form-urlencoded"),
        "{v}"
    );

    let (status, v) = c.call("user/getToken", &[]).await;
    assert_eq!((status, code(&v)), (400, 1003), "{v}");

    let (status, v) = c.call("user/getToken", &[("name", "x")]).await;
    assert_eq!((status, code(&v)), (400, 1002), "{v}");
    assert_eq!(message(&v), "userId is required");

    let (status, v) = c.call("user/nothing", &[("userId", "u1")]).await;
    assert_eq!(status, 404, "{v}");
    assert!(message(&v).contains("/user/nothing.json"), "{v}");

    let r = c
        .http
        .get(format!("{}/user/getToken.json", c.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    // A JSON API refuses a form.
    let (status, v) = c
        .call("v3/message/private/query", &[("userId", "u1")])
        .await;
    assert_eq!((status, code(&v)), (400, 1002), "{v}");
    assert!(message(&v).contains("application/json"), "{v}");
}

#[tokio::test]
async fn each_api_has_its_own_quota_answered_429_1008() {
    let h = sandbox_with(|c| {
        c.limits = imshift::providers::rongcloud::sandbox::default_limits().with_all_qps(2);
    })
    .await;
    let c = Caller::of(&h);
    register(&c, &["u1", "u2"]).await;
    let (status, v) = c.call("user/getToken", &[("userId", "u3")]).await;
    assert_eq!((status, code(&v)), (429, 1008), "{v}");
    assert!(message(&v).contains("user/getToken"), "{v}");
    // Another API's bucket is untouched.
    c.ok("user/info", &[("userId", "u1")]).await;
    let state = h.state();
    assert_eq!(state["throttled"], 1);
    assert_eq!(state["apis"]["user/getToken"]["codes"]["1008"], 1);
    assert_eq!(state["apis"]["user/getToken"]["codes"]["200"], 2);
}
