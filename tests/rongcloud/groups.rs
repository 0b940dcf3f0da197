//! Classic groups (reference §2.4, §5.7): membership only.

use crate::common::*;

#[tokio::test]
async fn create_join_quit_query_refresh_and_dismiss() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    register(&c, &["a", "b", "c", "d"]).await;
    create_group(&c, "g1", &["a", "b"]).await;
    c.ok(
        "group/join",
        &[("groupId", "g1"), ("userId", "c"), ("userId", "a")],
    )
    .await;
    let v = c.ok("group/user/query", &[("groupId", "g1")]).await;
    assert_eq!(
        v["users"],
        serde_json::json!([{"id":"a"},{"id":"b"},{"id":"c"}])
    );
    c.ok("group/quit", &[("groupId", "g1"), ("userId", "b")])
        .await;
    c.ok(
        "group/refresh",
        &[("groupId", "g1"), ("groupName", "Renamed")],
    )
    .await;
    // Sync puts d in g1 and a new g2.
    c.ok(
        "group/sync",
        &[
            ("userId", "d"),
            ("group[g1]", "Renamed"),
            ("group[g2]", "Two"),
        ],
    )
    .await;
    c.ok(
        "group/user/gag/add",
        &[("groupId", "g1"), ("userId", "c"), ("minute", "60")],
    )
    .await;
    let export = inspect(&h, "export").await;
    let g1 = &export["groups"]["g1"];
    assert_eq!(g1["name"], "Renamed");
    let members: Vec<&String> = g1["members"].as_object().unwrap().keys().collect();
    assert_eq!(members, ["a", "c", "d"]);
    assert!(g1["gagged"]["c"].as_u64().unwrap() > now_ms());
    assert_eq!(export["groups"]["g2"]["name"], "Two");

    c.ok("group/dismiss", &[("groupId", "g1"), ("userId", "a")])
        .await;
    // Gone: dismissing again is 1015 "does not exist", over HTTP 200.
    let (status, v) = c
        .call("group/dismiss", &[("groupId", "g1"), ("userId", "a")])
        .await;
    assert_eq!((status, code(&v)), (200, 1015), "{v}");
    let (status, v) = c.call("group/user/query", &[("groupId", "g1")]).await;
    assert_eq!((status, code(&v)), (400, 1002), "{v}");
    assert!(message(&v).contains("does not exist"), "{v}");
    assert_eq!(h.state()["groups"], 1);
}

#[tokio::test]
async fn ids_batches_and_the_member_cap_are_enforced() {
    let h = sandbox_with(|c| {
        c.group_member_max = 3;
        c.require_registered = false;
    })
    .await;
    let c = Caller::of(&h);
    let (_, v) = c
        .call(
            "group/create",
            &[("groupId", "g_1"), ("groupName", "x"), ("userId", "a")],
        )
        .await;
    assert_eq!(code(&v), 1002, "{v}");
    assert!(message(&v).contains("only letters and digits"), "{v}");
    let (_, v) = c
        .call(
            "group/create",
            &[
                ("groupId", "g1"),
                ("groupName", &"名".repeat(65)),
                ("userId", "a"),
            ],
        )
        .await;
    assert_eq!(code(&v), 1005, "{v}");
    assert!(message(&v).contains("65 characters; at most 64"), "{v}");
    let (_, v) = c
        .call("group/create", &[("groupId", "g1"), ("groupName", "x")])
        .await;
    assert_eq!(code(&v), 1002, "{v}");
    assert_eq!(message(&v), "userId is required");

    create_group(&c, "g1", &["a", "b", "c"]).await;
    let (status, v) = c
        .call("group/join", &[("groupId", "g1"), ("userId", "d")])
        .await;
    assert_eq!((status, code(&v)), (405, 1002), "{v}");
    assert!(message(&v).contains("4 members; at most 3"), "{v}");

    // More than 1000 userIds in a call.
    let ids: Vec<String> = (0..1001).map(|i| format!("u{i}")).collect();
    let mut form = vec![("groupId", "g2"), ("groupName", "big")];
    form.extend(ids.iter().map(|i| ("userId", i.as_str())));
    let (_, v) = c.call("group/create", &form).await;
    assert_eq!(code(&v), 1002, "{v}");
    assert!(
        message(&v).contains("userId has 1001 entries; at most 1000"),
        "{v}"
    );
}

#[tokio::test]
async fn members_must_be_registered_unless_the_sandbox_allows_it() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    register(&c, &["a"]).await;
    let (_, v) = c
        .call(
            "group/create",
            &[
                ("groupId", "g1"),
                ("groupName", "x"),
                ("userId", "a"),
                ("userId", "ghost"),
            ],
        )
        .await;
    assert_eq!(code(&v), 1002, "{v}");
    assert!(message(&v).contains("\"ghost\" is not registered"), "{v}");
    assert_eq!(h.state()["groups"], 0, "refused whole");
}
