//! Accounts and relationships: the rules an importer's ids and retries meet.

use crate::common::*;
use serde_json::Value;

#[tokio::test]
async fn an_accid_is_stored_lower_case_and_registering_it_again_in_any_case_is_414() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    let v = c
        .call("user/create", &[("accid", "Alice.B"), ("name", "Alice")])
        .await;
    assert_eq!(code(&v), 200, "{v}");
    assert_eq!(v["info"]["accid"], "alice.b");
    assert_eq!(v["info"]["name"], "Alice");
    let token = v["info"]["token"].as_str().unwrap();
    assert!(!token.is_empty(), "a token is made when none is given");
    let v = c.call("user/create", &[("accid", "ALICE.b")]).await;
    assert_eq!(code(&v), 414, "{v}");
    assert!(desc(&v).contains("already registered"), "{v}");
    // Read back under any case.
    let v = c
        .call("user/getUinfos", &[("accids", r#"["ALICE.B"]"#)])
        .await;
    assert_eq!(code(&v), 200, "{v}");
    assert_eq!(v["uinfos"][0]["accid"], "alice.b");
    assert_eq!(v["uinfos"][0]["name"], "Alice");
    assert_eq!(h.state()["accounts"], 1);
}

#[tokio::test]
async fn an_accid_with_other_characters_or_over_32_is_414_and_gender_is_0_1_or_2() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    let long = "a".repeat(33);
    for bad in ["bad name", "a/b", "名字", "a+b", long.as_str()] {
        let v = c.call("user/create", &[("accid", bad)]).await;
        assert_eq!(code(&v), 414, "{bad:?}: {v}");
    }
    let v = c.call("user/create", &[]).await;
    assert_eq!(code(&v), 414, "no accid: {v}");
    let v = c
        .call("user/create", &[("accid", "g1"), ("gender", "3")])
        .await;
    assert_eq!(code(&v), 414, "{v}");
    assert_eq!(h.state()["accounts"], 0);
    let ok32 = "A_b@c.d-".repeat(4);
    let v = c
        .call("user/create", &[("accid", &ok32), ("gender", "2")])
        .await;
    assert_eq!(code(&v), 200, "{v}");
    assert_eq!(v["info"]["accid"], ok32.to_lowercase());
}

#[tokio::test]
async fn a_given_token_is_kept_and_refresh_token_replaces_it() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    let v = c
        .call("user/create", &[("accid", "t1"), ("token", "my-token")])
        .await;
    assert_eq!(v["info"]["token"], "my-token");
    let v = c.call("user/refreshToken", &[("accid", "T1")]).await;
    assert_eq!(code(&v), 200, "{v}");
    let fresh = v["info"]["token"].as_str().unwrap();
    assert!(!fresh.is_empty() && fresh != "my-token");
    let v = c.call("user/refreshToken", &[("accid", "nobody")]).await;
    assert_eq!(code(&v), 404, "{v}");
}

#[tokio::test]
async fn get_uinfos_takes_at_most_200_accids_as_a_json_array() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    create_accounts(&c, &["x1"]).await;
    let ids: Vec<String> = (0..201).map(|i| format!("x{i}")).collect();
    let v = c
        .call(
            "user/getUinfos",
            &[("accids", &serde_json::to_string(&ids).unwrap())],
        )
        .await;
    assert_eq!(code(&v), 414, "{v}");
    let v = c
        .call(
            "user/getUinfos",
            &[("accids", &serde_json::to_string(&ids[..200]).unwrap())],
        )
        .await;
    assert_eq!(code(&v), 200, "{v}");
    // Only accounts that exist come back.
    assert_eq!(v["uinfos"].as_array().unwrap().len(), 1);
    for bad in ["x1", "[\"x1\"", "[1]", "{\"a\":1}"] {
        let v = c.call("user/getUinfos", &[("accids", bad)]).await;
        assert_eq!(code(&v), 414, "{bad}: {v}");
    }
}

#[tokio::test]
async fn update_uinfo_sets_fields_empty_strings_included() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    c.call(
        "user/create",
        &[("accid", "p1"), ("name", "Old"), ("sign", "hi")],
    )
    .await;
    let v = c
        .call(
            "user/updateUinfo",
            &[
                ("accid", "p1"),
                ("name", "New"),
                ("sign", ""),
                ("ex", "{\"k\":1}"),
            ],
        )
        .await;
    assert_eq!(code(&v), 200, "{v}");
    let v = c.call("user/getUinfos", &[("accids", "[\"p1\"]")]).await;
    let u = &v["uinfos"][0];
    assert_eq!(u["name"], "New");
    assert_eq!(u["sign"], "");
    assert_eq!(u["ex"], "{\"k\":1}");
    let v = c
        .call(
            "user/updateUinfo",
            &[("accid", "p1"), ("name", &"n".repeat(65))],
        )
        .await;
    assert_eq!(code(&v), 414, "{v}");
    let v = c.call("user/updateUinfo", &[("accid", "ghost")]).await;
    assert_eq!(code(&v), 404, "{v}");
}

fn faccids(v: &Value) -> Vec<(String, bool)> {
    v["friends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["faccid"].as_str().unwrap().to_string(),
                f["bidirection"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn friend_add_type_1_befriends_both_sides_and_needs_both_accounts() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    create_accounts(&c, &["a", "b"]).await;
    for t in ["0", "5", "x"] {
        let v = c
            .call(
                "friend/add",
                &[("accid", "a"), ("faccid", "b"), ("type", t)],
            )
            .await;
        assert_eq!(code(&v), 414, "type {t}: {v}");
    }
    let v = c
        .call(
            "friend/add",
            &[("accid", "a"), ("faccid", "zed"), ("type", "1")],
        )
        .await;
    assert_eq!(code(&v), 404, "{v}");
    let v = c
        .call(
            "friend/add",
            &[("accid", "A"), ("faccid", "b"), ("type", "1")],
        )
        .await;
    assert_eq!(code(&v), 200, "{v}");
    for (me, other) in [("a", "b"), ("b", "a")] {
        let v = c
            .call("friend/get", &[("accid", me), ("updatetime", "0")])
            .await;
        assert_eq!(code(&v), 200, "{v}");
        assert_eq!(v["size"], 1);
        assert_eq!(faccids(&v), [(other.to_string(), true)]);
    }
    // Only friends updated since the time asked for.
    let later = (now_ms() + 60_000).to_string();
    let v = c
        .call("friend/get", &[("accid", "a"), ("updatetime", &later)])
        .await;
    assert_eq!(v["size"], 0, "{v}");
    let v = c
        .call("friend/delete", &[("accid", "b"), ("faccid", "a")])
        .await;
    assert_eq!(code(&v), 200, "{v}");
    assert_eq!(h.state()["friends"], 0);
}

#[tokio::test]
async fn with_one_way_friends_type_1_stores_one_direction() {
    let h = sandbox_with(|c| c.mutual_friends = false).await;
    let c = Caller::of(&h);
    create_accounts(&c, &["a", "b"]).await;
    c.call(
        "friend/add",
        &[("accid", "a"), ("faccid", "b"), ("type", "1")],
    )
    .await;
    let v = c
        .call("friend/get", &[("accid", "a"), ("updatetime", "0")])
        .await;
    assert_eq!(faccids(&v), [("b".to_string(), false)]);
    let v = c
        .call("friend/get", &[("accid", "b"), ("updatetime", "0")])
        .await;
    assert_eq!(v["size"], 0);
}

#[tokio::test]
async fn a_friend_request_is_agreed_only_when_it_was_made() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    create_accounts(&c, &["a", "b"]).await;
    let v = c
        .call(
            "friend/add",
            &[("accid", "b"), ("faccid", "a"), ("type", "3")],
        )
        .await;
    assert_eq!(code(&v), 404, "{v}");
    c.call(
        "friend/add",
        &[("accid", "a"), ("faccid", "b"), ("type", "2")],
    )
    .await;
    assert_eq!(h.state()["friends"], 0);
    let v = c
        .call(
            "friend/add",
            &[("accid", "b"), ("faccid", "a"), ("type", "3")],
        )
        .await;
    assert_eq!(code(&v), 200, "{v}");
    assert_eq!(h.state()["friends"], 2);
}

#[tokio::test]
async fn special_relations_take_type_1_or_2_and_value_0_or_1() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    create_accounts(&c, &["a", "b", "c"]).await;
    let set = |target: &'static str, rel: &'static str, value: &'static str| {
        [
            ("accid", "a"),
            ("targetAcc", target),
            ("relationType", rel),
            ("value", value),
        ]
    };
    for form in [set("b", "3", "1"), set("b", "1", "2")] {
        let v = c.call("user/setSpecialRelation", &form).await;
        assert_eq!(code(&v), 414, "{form:?}: {v}");
    }
    let v = c
        .call("user/setSpecialRelation", &set("nobody", "1", "1"))
        .await;
    assert_eq!(code(&v), 404, "{v}");
    for form in [
        set("b", "1", "1"),
        set("c", "2", "1"),
        set("c", "1", "1"),
        set("c", "1", "0"),
    ] {
        let v = c.call("user/setSpecialRelation", &form).await;
        assert_eq!(code(&v), 200, "{form:?}: {v}");
    }
    let v = c.call("user/listBlackAndMuteList", &[("accid", "a")]).await;
    assert_eq!(code(&v), 200, "{v}");
    assert_eq!(v["blacklist"], serde_json::json!(["b"]));
    assert_eq!(v["mutelist"], serde_json::json!(["c"]));
}
