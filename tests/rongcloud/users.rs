//! Users and tokens (reference §2.1), the blacklist (§2.2), hosted friends (§2.3).

use crate::common::*;

#[tokio::test]
async fn get_token_registers_updates_and_every_token_stays_valid_until_expired() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    let v = c
        .ok(
            "user/getToken",
            &[
                ("userId", "alice"),
                ("name", "Alice"),
                ("portraitUri", "https://x/a.png"),
            ],
        )
        .await;
    let first = v["token"].as_str().unwrap().to_string();
    let v = c
        .ok("user/getToken", &[("userId", "alice"), ("name", "Alice B")])
        .await;
    let second = v["token"].as_str().unwrap().to_string();
    assert_ne!(first, second, "every call hands out a new token");
    assert!(h.token_valid("alice", &first) && h.token_valid("alice", &second));
    let v = c.ok("user/info", &[("userId", "alice")]).await;
    assert_eq!(v["userName"], "Alice B", "a new name overwrites");
    assert_eq!(
        v["userPortrait"], "https://x/a.png",
        "no portrait keeps the old one"
    );
    assert!(v["createTime"].as_str().unwrap().len() == 19, "{v}");

    c.ok(
        "user/refresh",
        &[("userId", "alice"), ("portraitUri", "https://x/b.png")],
    )
    .await;
    let v = c.ok("user/info", &[("userId", "alice")]).await;
    assert_eq!(v["userPortrait"], "https://x/b.png");

    // Tokens obtained before `time` are void; a later one works.
    c.ok(
        "user/token/expire",
        &[("userId", "alice"), ("time", &(now_ms() + 1).to_string())],
    )
    .await;
    assert!(!h.token_valid("alice", &first) && !h.token_valid("alice", &second));
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let third = register(&c, &["alice"]).await.remove(0);
    assert!(h.token_valid("alice", &third));

    // The export shows the user, never a token.
    let export = inspect(&h, "export").await;
    assert_eq!(export["users"]["alice"]["name"], "alice");
    assert_eq!(export["users"]["alice"]["portrait"], "https://x/b.png");
    assert_eq!(export["users"]["alice"]["tokens_issued"], 3);
    let text = export.to_string();
    for t in [&first, &second, &third] {
        assert!(!text.contains(t.as_str()), "a token leaked into the export");
    }
}

#[tokio::test]
async fn ids_and_fields_are_refused_with_the_field_and_the_limit() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    let (status, v) = c.call("user/getToken", &[("userId", "a.b")]).await;
    assert_eq!((status, code(&v)), (400, 1002), "{v}");
    assert!(message(&v).contains("'.'"), "{v}");
    let long = "x".repeat(65);
    let (_, v) = c.call("user/getToken", &[("userId", &long)]).await;
    assert_eq!(code(&v), 1005, "{v}");
    assert!(message(&v).contains("at most 64"), "{v}");
    let (_, v) = c
        .call(
            "user/getToken",
            &[("userId", "ok"), ("name", &"n".repeat(129))],
        )
        .await;
    assert_eq!(code(&v), 1005, "{v}");
    assert!(
        message(&v).contains("name is 129 bytes; at most 128"),
        "{v}"
    );
    // Unregistered users.
    let (status, v) = c.call("user/info", &[("userId", "ghost")]).await;
    assert_eq!((status, code(&v)), (400, 1002), "{v}");
    assert!(message(&v).contains("not registered"), "{v}");
    // ≤20 per token/expire.
    let ids: Vec<String> = (0..21).map(|i| format!("u{i}")).collect();
    let mut form: Vec<(&str, &str)> = ids.iter().map(|i| ("userId", i.as_str())).collect();
    form.push(("time", "1"));
    let (_, v) = c.call("user/token/expire", &form).await;
    assert_eq!(code(&v), 1002, "{v}");
    assert!(message(&v).contains("21 entries; at most 20"), "{v}");
}

#[tokio::test]
async fn a_development_app_caps_its_users() {
    let h = sandbox_with(|c| c.dev_user_cap = Some(2)).await;
    let c = Caller::of(&h);
    register(&c, &["a", "b"]).await;
    c.ok("user/getToken", &[("userId", "a")]).await;
    let (status, v) = c.call("user/getToken", &[("userId", "c")]).await;
    assert_eq!((status, code(&v)), (403, 2007), "{v}");
}

#[tokio::test]
async fn the_blacklist_is_one_way_batched_and_paged() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    let ids: Vec<String> = (0..22).map(|i| format!("b{i:02}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    register(&c, &["owner"]).await;
    register(&c, &refs).await;
    let mut form = vec![("userId", "owner")];
    form.extend(refs.iter().map(|b| ("blackUserId", *b)));
    let (status, v) = c.call("user/blacklist/add", &form).await;
    assert_eq!((status, code(&v)), (400, 1002), "{v}");
    assert!(
        message(&v).contains("blackUserId has 22 entries; at most 20"),
        "{v}"
    );
    form.truncate(21);
    c.ok("user/blacklist/add", &form).await;
    c.ok(
        "user/blacklist/add",
        &[("userId", "owner"), ("blackUserId", "b20")],
    )
    .await;
    // Paged: 15, then 6.
    let v = c
        .ok(
            "user/blacklist/query",
            &[("userId", "owner"), ("size", "15")],
        )
        .await;
    assert_eq!(v["users"].as_array().unwrap().len(), 15);
    let next = v["next"].as_str().unwrap().to_string();
    assert_eq!(next, "b14");
    let v = c
        .ok(
            "user/blacklist/query",
            &[("userId", "owner"), ("size", "15"), ("pageToken", &next)],
        )
        .await;
    assert_eq!(v["users"].as_array().unwrap().len(), 6);
    assert_eq!(v["next"], "");
    // One way: b00 blocked nobody.
    let v = c.ok("user/blacklist/query", &[("userId", "b00")]).await;
    assert_eq!(v["users"], serde_json::json!([]));
    c.ok(
        "user/blacklist/remove",
        &[
            ("userId", "owner"),
            ("blackUserId", "b00"),
            ("blackUserId", "zz"),
        ],
    )
    .await;
    let export = inspect(&h, "export").await;
    assert_eq!(export["blacklists"]["owner"].as_array().unwrap().len(), 20);
    // A user never registered.
    let (_, v) = c
        .call(
            "user/blacklist/add",
            &[("userId", "owner"), ("blackUserId", "ghost")],
        )
        .await;
    assert_eq!(code(&v), 1002, "{v}");
    assert!(
        message(&v).contains("blackUserId \"ghost\" is not registered"),
        "{v}"
    );
}

#[tokio::test]
async fn hosted_friends_need_entrust_then_are_mutual() {
    let off = sandbox().await;
    let c = Caller::of(&off);
    register(&c, &["a", "b"]).await;
    let (status, v) = c
        .call("friend/add", &[("userId", "a"), ("targetId", "b")])
        .await;
    assert_eq!((status, code(&v)), (430, 1009), "{v}");

    let h = sandbox_with(|c| c.entrust = true).await;
    let c = Caller::of(&h);
    register(&c, &["a", "b", "c"]).await;
    c.ok(
        "friend/add",
        &[
            ("userId", "a"),
            ("targetId", "b"),
            ("optType", "2"),
            ("extra", "hi"),
        ],
    )
    .await;
    c.ok(
        "friend/add",
        &[("userId", "a"), ("targetId", "c"), ("optType", "2")],
    )
    .await;
    let v = c.ok("friend/get", &[("userId", "b")]).await;
    assert_eq!(v["friendList"][0]["userId"], "a");
    let v = c.ok("friend/get", &[("userId", "a"), ("size", "1")]).await;
    assert_eq!(v["totalCount"], 2);
    assert_eq!(v["pageToken"], "b");
    c.ok("friend/delete", &[("userId", "a"), ("targetIds", "b,c")])
        .await;
    assert_eq!(h.state()["friends"], 0);
}
