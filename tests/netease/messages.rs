//! Messages and history: server-stamped ids and times, team membership, both directions.

use crate::common::*;
use serde_json::Value;

async fn send(c: &Caller, from: &str, ope: &str, to: &str, text: &str) -> Value {
    let body = serde_json::json!({ "msg": text }).to_string();
    c.call(
        "msg/sendMsg",
        &[
            ("from", from),
            ("ope", ope),
            ("to", to),
            ("type", "0"),
            ("body", &body),
        ],
    )
    .await
}

fn texts(v: &Value) -> Vec<(String, String)> {
    v["msgs"]
        .as_array()
        .unwrap_or_else(|| panic!("no msgs in {v}"))
        .iter()
        .map(|m| {
            (
                m["from"].as_str().unwrap().to_string(),
                m["body"]["msg"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_non_member_sending_to_a_team_is_804_and_nothing_is_stored() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    create_accounts(&c, &["own", "m1", "out"]).await;
    let tid = create_team(&c, "own", &["m1"], &[]).await;
    let v = send(&c, "out", "1", &tid, "let me in").await;
    assert_eq!(code(&v), 804, "{v}");
    assert_eq!(h.state()["messages"], 0);
    let v = send(&c, "m1", "1", &tid, "hello team").await;
    assert_eq!(code(&v), 200, "{v}");
    let v = send(&c, "m1", "1", "424242", "nobody home").await;
    assert_eq!(code(&v), 803, "{v}");
    // A kicked member can no longer send.
    c.call(
        "team/kick",
        &[("tid", &tid), ("owner", "own"), ("member", "m1")],
    )
    .await;
    let v = send(&c, "m1", "1", &tid, "still here?").await;
    assert_eq!(code(&v), 804, "{v}");
    assert_eq!(h.state()["team_messages"], 1);
}

#[tokio::test]
async fn send_msg_checks_ope_type_and_body_and_that_both_accounts_exist() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    create_accounts(&c, &["a", "b"]).await;
    let long = format!("{{\"msg\":\"{}\"}}", "x".repeat(4991));
    assert!(long.chars().count() > 5000);
    let fit = format!("{{\"msg\":\"{}\"}}", "界".repeat(4990));
    assert!(fit.chars().count() <= 5000, "characters, not bytes");
    let cases: [(&str, &str, &str, &str, &str, i64); 9] = [
        ("a", "0", "b", "5", "{\"msg\":\"n\"}", 414),
        ("a", "0", "b", "7", "{\"msg\":\"n\"}", 414),
        ("a", "2", "b", "0", "{\"msg\":\"n\"}", 414),
        ("a", "0", "b", "0", "not json", 414),
        ("a", "0", "b", "0", &long, 414),
        ("ghost", "0", "b", "0", "{\"msg\":\"n\"}", 404),
        ("a", "0", "ghost", "0", "{\"msg\":\"n\"}", 404),
        ("a", "0", "b", "100", "{\"any\":[1,2]}", 200),
        ("a", "0", "B", "0", &fit, 200),
    ];
    for (from, ope, to, t, body, want) in cases {
        let v = c
            .call(
                "msg/sendMsg",
                &[
                    ("from", from),
                    ("ope", ope),
                    ("to", to),
                    ("type", t),
                    ("body", body),
                ],
            )
            .await;
        assert_eq!(
            code(&v),
            want,
            "from {from} ope {ope} to {to} type {t}: {v}"
        );
    }
    let v = c
        .call(
            "msg/sendMsg",
            &[
                ("from", "a"),
                ("ope", "0"),
                ("to", "b"),
                ("type", "0"),
                ("body", "{}"),
                ("option", "route=false"),
            ],
        )
        .await;
    assert_eq!(code(&v), 414, "option must be JSON: {v}");
    assert_eq!(h.state()["messages"], 2);
}

#[tokio::test]
async fn messages_get_increasing_ids_server_times_and_keep_their_route_flag() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    create_accounts(&c, &["a", "b"]).await;
    let before = now_ms();
    let v1 = send(&c, "a", "0", "b", "one").await;
    let v2 = c
        .call(
            "msg/sendMsg",
            &[
                ("from", "a"),
                ("ope", "0"),
                ("to", "b"),
                ("type", "0"),
                ("body", "{\"msg\":\"two\"}"),
                ("option", "{\"route\":false,\"push\":false}"),
                // Not a sendMsg parameter: a client cannot backdate a message.
                ("sendtime", "1000"),
            ],
        )
        .await;
    let after = now_ms();
    let (id1, id2) = (
        v1["data"]["msgid"].as_u64().unwrap(),
        v2["data"]["msgid"].as_u64().unwrap(),
    );
    assert!(id2 > id1, "{v1} {v2}");
    let (t1, t2) = (
        v1["data"]["timetag"].as_u64().unwrap(),
        v2["data"]["timetag"].as_u64().unwrap(),
    );
    assert!(
        before <= t1 && t1 <= t2 && t2 <= after,
        "{before} {t1} {t2} {after}"
    );
    let stored = inspect(&h, "messages").await;
    assert_eq!(stored[0]["route"], true);
    assert_eq!(stored[1]["route"], false);
    assert_eq!(stored[1]["fromclienttype"], 32);
    assert_eq!(stored[1]["timetag"], t2);
}

#[tokio::test]
async fn session_history_returns_both_directions_in_either_order_within_its_window() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    create_accounts(&c, &["a", "b", "c"]).await;
    let begin = (now_ms() - 1000).to_string();
    send(&c, "a", "0", "b", "1").await;
    send(&c, "b", "0", "a", "2").await;
    send(&c, "a", "0", "c", "elsewhere").await;
    send(&c, "a", "0", "b", "3").await;
    let end = (now_ms() + 1000).to_string();
    let query = |from: &'static str,
                 to: &'static str,
                 limit: &'static str,
                 reverse: Option<&'static str>| {
        let mut form = vec![
            ("from", from.to_string()),
            ("to", to.to_string()),
            ("begintime", begin.clone()),
            ("endtime", end.clone()),
            ("limit", limit.to_string()),
        ];
        if let Some(r) = reverse {
            form.push(("reverse", r.to_string()));
        }
        let c = &c;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            c.call("history/querySessionMsg", &form).await
        }
    };
    let own = |f: &str, t: &str| (f.to_string(), t.to_string());
    let v = query("b", "a", "100", Some("1")).await;
    assert_eq!(code(&v), 200, "{v}");
    assert_eq!(v["size"], 3);
    assert_eq!(texts(&v), [own("a", "1"), own("b", "2"), own("a", "3")]);
    let v = query("a", "b", "100", None).await;
    assert_eq!(
        texts(&v),
        [own("a", "3"), own("b", "2"), own("a", "1")],
        "newest first by default"
    );
    let v = query("a", "b", "2", Some("1")).await;
    assert_eq!(texts(&v), [own("a", "1"), own("b", "2")]);
    for (limit, reverse) in [("0", None), ("101", None), ("10", Some("3"))] {
        let v = query("a", "b", limit, reverse).await;
        assert_eq!(code(&v), 414, "limit {limit} reverse {reverse:?}: {v}");
    }
    // A window that is empty or backwards.
    let v = c
        .call(
            "history/querySessionMsg",
            &[
                ("from", "a"),
                ("to", "b"),
                ("begintime", &end),
                ("endtime", &begin),
                ("limit", "10"),
            ],
        )
        .await;
    assert_eq!(code(&v), 414, "{v}");
    assert_eq!(desc(&v), "bad time");
    let v = c
        .call(
            "history/querySessionMsg",
            &[
                ("from", "a"),
                ("to", "b"),
                ("begintime", "0"),
                ("endtime", &begin),
                ("limit", "10"),
            ],
        )
        .await;
    assert_eq!(v["size"], 0, "{v}");
}

#[tokio::test]
async fn team_history_is_for_members_and_former_ones_who_ask_without_the_check() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    create_accounts(&c, &["own", "m1", "out"]).await;
    let tid = create_team(&c, "own", &["m1"], &[]).await;
    send(&c, "own", "1", &tid, "first").await;
    send(&c, "m1", "1", &tid, "second").await;
    let end = (now_ms() + 1000).to_string();
    let q = |accid: &str, check: &str| {
        vec![
            ("tid", tid.clone()),
            ("accid", accid.to_string()),
            ("begintime", "0".to_string()),
            ("endtime", end.clone()),
            ("limit", "100".to_string()),
            ("reverse", "1".to_string()),
            ("checkTeamValid", check.to_string()),
        ]
    };
    let run = |form: Vec<(&'static str, String)>| {
        let c = &c;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            c.call("history/queryTeamMsg", &form).await
        }
    };
    let v = run(q("m1", "true")).await;
    assert_eq!(code(&v), 200, "{v}");
    let own = |f: &str, t: &str| (f.to_string(), t.to_string());
    assert_eq!(texts(&v), [own("own", "first"), own("m1", "second")]);
    assert_eq!(code(&run(q("out", "true")).await), 804);
    c.call(
        "team/kick",
        &[("tid", &tid), ("owner", "own"), ("member", "m1")],
    )
    .await;
    assert_eq!(code(&run(q("m1", "true")).await), 804);
    assert_eq!(run(q("m1", "false")).await["size"], 2);
    assert_eq!(code(&run(q("out", "false")).await), 804, "never a member");
}
