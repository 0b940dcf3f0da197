//! Publishing (reference §2.5), content per objectName (§2.6), history read-back (§2.7),
//! the message quotas (§1.5).

use crate::common::*;
use serde_json::{json, Value};

async fn private(c: &Caller, from: &str, to: &[&str], extra: &[(&str, &str)]) -> (u16, Value) {
    let content = text("hello");
    let mut form = vec![
        ("fromUserId", from),
        ("objectName", "RC:TxtMsg"),
        ("content", content.as_str()),
    ];
    form.extend(to.iter().map(|t| ("toUserId", *t)));
    form.extend_from_slice(extra);
    c.call("message/private/publish", &form).await
}

async fn history(c: &Caller, api: &str, user: &str, target: &str) -> Vec<Value> {
    let (status, v) = c
        .call_json(
            api,
            &json!({"userId": user, "targetId": target, "startTime": 0,
                    "endTime": now_ms() + 1000, "pageSize": 100}),
        )
        .await;
    assert_eq!((status, code(&v)), (200, 200), "{v}");
    v["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_private_message_lands_in_each_recipients_history_and_the_senders_only_if_asked() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    register(&c, &["a", "b", "c"]).await;
    let (status, v) = private(&c, "a", &["b", "c"], &[("sentTime", "1")]).await;
    assert_eq!((status, code(&v)), (200, 200), "{v}");
    let uids = v["messageUIDs"].as_array().unwrap();
    assert_eq!(uids.len(), 2);
    assert_eq!(uids[0]["userId"], "b");
    let uid = uids[0]["messageUID"].as_str().unwrap();
    assert_eq!(uid.len(), 19, "{uid}");

    let got = history(&c, "v3/message/private/query", "b", "a").await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["messageUID"], uid);
    assert_eq!(got[0]["objectName"], "RC:TxtMsg");
    assert_eq!(got[0]["content"], text("hello"));
    let time = got[0]["msgTime"].as_u64().unwrap();
    assert!(
        time > now_ms() - 60_000,
        "the server's time, not the caller's"
    );
    assert!(history(&c, "v3/message/private/query", "a", "b")
        .await
        .is_empty());

    let (_, v) = private(&c, "a", &["b"], &[("isIncludeSender", "1")]).await;
    assert!(v["messageUID"].is_string(), "one recipient: {v}");
    assert_eq!(
        history(&c, "v3/message/private/query", "a", "b")
            .await
            .len(),
        1
    );
    // Not persisted: nobody's history.
    private(
        &c,
        "a",
        &["b"],
        &[("isPersisted", "0"), ("isIncludeSender", "1")],
    )
    .await;
    assert_eq!(
        history(&c, "v3/message/private/query", "b", "a")
            .await
            .len(),
        2
    );
    assert_eq!(h.state()["private_messages"], 4);

    let (_, v) = private(&c, "a", &["b"], &[("isPersisted", "2")]).await;
    assert_eq!(code(&v), 1002);
    assert!(
        message(&v).contains("isPersisted \"2\" must be 0 or 1"),
        "{v}"
    );
    let (_, v) = private(&c, "a", &["ghost"], &[]).await;
    assert!(
        message(&v).contains("toUserId \"ghost\" is not registered"),
        "{v}"
    );
}

#[tokio::test]
async fn history_reads_forwards_or_backwards_a_page_at_a_time() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    register(&c, &["a", "b"]).await;
    for _ in 0..3 {
        private(&c, "a", &["b"], &[]).await;
    }
    let all = history(&c, "v3/message/private/query", "b", "a").await;
    let (status, v) = c
        .call_json(
            "v3/message/private/query",
            &json!({"userId":"b","targetId":"a","startTime": now_ms() + 1000,"endTime":0,"pageSize":2}),
        )
        .await;
    assert_eq!(status, 200);
    let back = v["data"].as_array().unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(back[0]["messageUID"], all[2]["messageUID"], "newest first");
    let (_, v) = c
        .call_json(
            "v3/message/private/query",
            &json!({"userId":"b","targetId":"a","startTime":0,"endTime":1,"pageSize":101}),
        )
        .await;
    assert_eq!(code(&v), 1002);
    assert!(
        message(&v).contains("pageSize 101 must be from 1 to 100"),
        "{v}"
    );
}

#[tokio::test]
async fn content_is_checked_per_object_name() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    register(&c, &["a", "b"]).await;
    let send = |object_name: &'static str, content: String| {
        let c = &c;
        async move {
            c.call(
                "message/private/publish",
                &[
                    ("fromUserId", "a"),
                    ("toUserId", "b"),
                    ("objectName", object_name),
                    ("content", &content),
                ],
            )
            .await
            .1
        }
    };
    let cases = [
        (
            "RC:TxtMsg",
            json!({"text": "x"}).to_string(),
            "needs content",
        ),
        ("RC:TxtMsg", "not json".to_string(), "must be a JSON object"),
        (
            "RC:ImgMsg",
            json!({"content": "", "imageUri": "file:///a.jpg"}).to_string(),
            "imageUri must be an http(s) URL",
        ),
        (
            "RC:FileMsg",
            json!({"name": "a.pdf", "size": "12", "fileUrl": "https://x/a.pdf"}).to_string(),
            "size must be a number",
        ),
        (
            "RC:HQVCMsg",
            json!({"remoteUrl": "https://x/a.aac"}).to_string(),
            "needs duration",
        ),
        ("RC:Nope", "{}".to_string(), "not a built-in type"),
        (
            "RC:TxtMsg",
            json!({"content": "x", "mentionedInfo": {"type": 2}}).to_string(),
            "userIdList",
        ),
    ];
    for (name, content, why) in cases {
        let v = send(name, content).await;
        assert_eq!(code(&v), 1002, "{name}: {v}");
        assert!(message(&v).contains(why), "{name}: {v}");
    }
    let v = send(
        "RC:TxtMsg",
        json!({"content": &"x".repeat(128 * 1024)}).to_string(),
    )
    .await;
    assert_eq!(code(&v), 1005, "{v}");
    assert!(message(&v).contains("at most 131072"), "{v}");
    let v = send("App:ThisNameIsLongerThanThirtyTwo", "x".into()).await;
    assert_eq!(code(&v), 1005, "{v}");
    // What is fine.
    for (name, content) in [
        ("App:Custom", "any text at all".to_string()),
        (
            "RC:ImgMsg",
            json!({"content": "", "imageUri": "https://x/a.jpg", "extra": "{\"sent_at\":1}"})
                .to_string(),
        ),
        (
            "RC:SightMsg",
            json!({"sightUrl": "https://x/a.mp4", "content": "", "duration": 3, "size": 10, "name": "a.mp4"})
                .to_string(),
        ),
        (
            "RC:LBSMsg",
            json!({"content": "", "latitude": 39.9, "longitude": 116.4, "poi": "Beijing"}).to_string(),
        ),
        (
            "RC:TxtMsg",
            json!({"content": "@b", "mentionedInfo": {"type": 2, "userIdList": ["b"]}}).to_string(),
        ),
    ] {
        let v = send(name, content).await;
        assert_eq!(code(&v), 200, "{name}: {v}");
    }
}

#[tokio::test]
async fn group_messages_reach_the_members_and_targeted_ones_only_those_named() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    register(&c, &["a", "b", "c", "out"]).await;
    create_group(&c, "g1", &["a", "b", "c"]).await;
    create_group(&c, "g2", &["a", "b"]).await;
    let content = text("hi all");
    // The sender need not be a member; two groups make two messages.
    let v = c
        .ok(
            "message/group/publish",
            &[
                ("fromUserId", "out"),
                ("toGroupId", "g1"),
                ("toGroupId", "g2"),
                ("objectName", "RC:TxtMsg"),
                ("content", &content),
            ],
        )
        .await;
    assert_eq!(v["messageUIDs"].as_array().unwrap().len(), 2);
    assert_eq!(
        history(&c, "v3/message/group/query", "c", "g1").await.len(),
        1
    );
    assert!(history(&c, "v3/message/group/query", "out", "g1")
        .await
        .is_empty());
    // Targeted at b in g1, with the sender's copy.
    c.ok(
        "message/group/publish",
        &[
            ("fromUserId", "a"),
            ("toGroupId", "g1"),
            ("toUserId", "b"),
            ("isIncludeSender", "1"),
            ("objectName", "RC:TxtMsg"),
            ("content", &content),
        ],
    )
    .await;
    assert_eq!(
        history(&c, "v3/message/group/query", "b", "g1").await.len(),
        2
    );
    assert_eq!(
        history(&c, "v3/message/group/query", "a", "g1").await.len(),
        2
    );
    assert_eq!(
        history(&c, "v3/message/group/query", "c", "g1").await.len(),
        1
    );

    let four = [
        ("fromUserId", "a"),
        ("toGroupId", "g1"),
        ("toGroupId", "g2"),
        ("toGroupId", "g3"),
        ("toGroupId", "g4"),
        ("objectName", "RC:TxtMsg"),
        ("content", content.as_str()),
    ];
    let (_, v) = c.call("message/group/publish", &four).await;
    assert!(
        message(&v).contains("toGroupId has 4 entries; at most 3"),
        "{v}"
    );
    let (_, v) = c
        .call(
            "message/group/publish",
            &[
                ("fromUserId", "a"),
                ("toGroupId", "nope"),
                ("objectName", "RC:TxtMsg"),
                ("content", &content),
            ],
        )
        .await;
    assert!(message(&v).contains("group \"nope\" does not exist"), "{v}");
    let (_, v) = c
        .call(
            "message/group/publish",
            &[
                ("fromUserId", "a"),
                ("toGroupId", "g2"),
                ("toUserId", "c"),
                ("objectName", "RC:TxtMsg"),
                ("content", &content),
            ],
        )
        .await;
    assert!(
        message(&v).contains("toUserId \"c\" is not in group \"g2\""),
        "{v}"
    );
}

#[tokio::test]
async fn the_blacklist_holds_back_a_message_only_with_verify_blacklist() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    register(&c, &["a", "b", "c"]).await;
    c.ok(
        "user/blacklist/add",
        &[("userId", "b"), ("blackUserId", "a")],
    )
    .await;
    let (_, v) = private(&c, "a", &["b", "c"], &[("verifyBlacklist", "1")]).await;
    let to: Vec<&str> = v["messageUIDs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["userId"].as_str().unwrap())
        .collect();
    assert_eq!(to, ["c"], "{v}");
    assert!(history(&c, "v3/message/private/query", "b", "a")
        .await
        .is_empty());
    private(&c, "a", &["b"], &[]).await;
    assert_eq!(
        history(&c, "v3/message/private/query", "b", "a")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn status_messages_are_neither_stored_nor_counted_as_messages() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    register(&c, &["a", "b"]).await;
    c.ok(
        "statusmessage/private/publish",
        &[
            ("fromUserId", "a"),
            ("toUserId", "b"),
            ("objectName", "RC:TypSts"),
            ("content", "{}"),
        ],
    )
    .await;
    let s = h.state();
    assert_eq!(
        (s["messages"].as_u64(), s["status_messages"].as_u64()),
        (Some(0), Some(1))
    );
}

#[tokio::test]
async fn private_publish_counts_recipients_per_minute_and_group_publish_groups_per_second() {
    let h = sandbox_with(|c| {
        // 1 a second: private 60 recipients a minute, group 1 group a second.
        c.limits = imshift::providers::rongcloud::sandbox::default_limits().with_all_qps(1);
        c.require_registered = false;
    })
    .await;
    let c = Caller::of(&h);
    let ids: Vec<String> = (0..60).map(|i| format!("u{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let (status, v) = private(&c, "a", &refs, &[]).await;
    assert_eq!((status, code(&v)), (200, 200), "{v}");
    let (status, v) = private(&c, "a", &["u1"], &[]).await;
    assert_eq!((status, code(&v)), (429, 1008), "{v}");
    assert!(
        message(&v).contains("60 recipient-messages a minute"),
        "{v}"
    );

    // Two groups cost two: more than a second's budget (checked before the groups are).
    let content = text("x");
    let form = [
        ("fromUserId", "a"),
        ("toGroupId", "g1"),
        ("toGroupId", "g2"),
        ("objectName", "RC:TxtMsg"),
        ("content", content.as_str()),
    ];
    let (status, v) = c.call("message/group/publish", &form).await;
    assert_eq!(
        (status, code(&v)),
        (429, 1008),
        "two groups at 1 a second: {v}"
    );
    assert_eq!(h.state()["throttled"], 2);
}

#[tokio::test]
async fn the_history_log_needs_its_switch_and_lists_the_hours_messages() {
    let off = sandbox().await;
    let c = Caller::of(&off);
    let (status, v) = c.call("message/history", &[("date", "2024010210")]).await;
    assert_eq!((status, code(&v)), (430, 1009), "{v}");

    let h = sandbox_with(|c| c.history_log = true).await;
    let c = Caller::of(&h);
    register(&c, &["a", "b"]).await;
    private(&c, "a", &["b"], &[]).await;
    let (_, v) = c.call("message/history", &[("date", "2024013")]).await;
    assert!(message(&v).contains("YYYYMMDDHH"), "{v}");
    // This hour in Beijing.
    let now =
        time::OffsetDateTime::now_utc().to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap());
    let date = format!(
        "{:04}{:02}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour()
    );
    let v = c.ok("message/history", &[("date", &date)]).await;
    let url = v["url"].as_str().unwrap();
    let body = reqwest::get(url).await.unwrap().text().await.unwrap();
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{body}");
    assert_eq!(lines[0]["fromUserId"], "a");
}
