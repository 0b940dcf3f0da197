//! Friends after an uncertain answer: friend_import refuses a friend already on the list with
//! 30001, friend_check says who is on a list (with the real service's batch cap, check types
//! and errors), and a lost answer leaves the request done but the caller uncertain.

use crate::common::*;
use imshift::providers::tencent::client::{
    CheckType, FriendImportRequest, ImportFriendItem, RELATION_A_WITH_B, RELATION_BOTH_WAY,
    RELATION_B_WITH_A, RELATION_NONE,
};
use imshift::providers::tencent::TencentError;
use imshift::providers::ErrorClass;
use serde_json::json;

fn friend(to: &str) -> ImportFriendItem {
    ImportFriendItem {
        to_account: to.into(),
        add_source: "AddSource_Type_Import".into(),
        remark: None,
        remark_time: None,
        group_name: vec![],
        add_wording: None,
        add_time: None,
        custom_item: vec![],
    }
}

fn import(from: &str, to: &[&str]) -> FriendImportRequest {
    FriendImportRequest {
        from_account: from.into(),
        add_friend_item: to.iter().map(|t| friend(t)).collect(),
    }
}

#[tokio::test]
async fn a_repeated_friend_import_is_refused_with_30001_and_friend_check_tells_why() {
    let h = sandbox().await;
    let c = client(&h);
    import_users(&c, &["a", "b", "c", "d"]).await;
    let r = c.friend_import(&import("a", &["b", "c"])).await.unwrap();
    assert!(r.result_item.iter().all(|x| x.result_code == 0), "{r:?}");
    c.friend_import(&import("d", &["a"])).await.unwrap();
    // The same friends again, as after a lost answer: refused one by one with 30001.
    let again = c.friend_import(&import("a", &["b", "d"])).await.unwrap();
    let code = |to: &str| {
        again
            .result_item
            .iter()
            .find(|x| x.to_account == to)
            .unwrap()
            .result_code
    };
    assert_eq!(code("b"), 30001);
    assert_eq!(code("d"), 0, "a new friend in the same request is added");
    assert_eq!(again.fail_account, vec!["b".to_string()]);
    assert_eq!(h.state()["friends"], 4, "nothing doubled");

    let to: Vec<String> = ["b", "c", "d", "nobody"].map(String::from).to_vec();
    let single = c.friend_check("a", &to, CheckType::Single).await.unwrap();
    let rel = |r: &imshift::providers::tencent::client::FriendCheckResponse, to: &str| {
        r.info_item
            .iter()
            .find(|x| x.to_account == to)
            .unwrap()
            .relation
            .clone()
    };
    assert_eq!(rel(&single, "b"), RELATION_A_WITH_B);
    assert_eq!(
        rel(&single, "d"),
        RELATION_A_WITH_B,
        "one way: d's own list is not read"
    );
    assert_eq!(rel(&single, "nobody"), RELATION_NONE);
    let both = c.friend_check("a", &to, CheckType::Both).await.unwrap();
    assert_eq!(rel(&both, "b"), RELATION_A_WITH_B);
    assert_eq!(rel(&both, "d"), RELATION_BOTH_WAY);
    let back = c
        .friend_check("b", &["a".to_string(), "c".to_string()], CheckType::Both)
        .await
        .unwrap();
    assert_eq!(rel(&back, "a"), RELATION_B_WITH_A);
    assert_eq!(rel(&back, "c"), RELATION_NONE);
    assert!(single.info_item.iter().all(|x| x.result_code == 0));
}

#[tokio::test]
async fn friend_check_enforces_what_the_service_enforces() {
    let h = sandbox().await;
    let c = client(&h);
    import_users(&c, &["a"]).await;
    let code = |r: Result<_, TencentError>| match r {
        Err(e) => e,
        Ok(v) => panic!("expected an error, got {v:?}"),
    };
    // The client splits nothing itself: over 1000 is refused before sending.
    let many: Vec<String> = (0..1001).map(|i| format!("u{i}")).collect();
    let e = code(c.friend_check("a", &many, CheckType::Single).await);
    assert!(matches!(e, TencentError::Invalid { .. }), "{e}");
    assert!(e.to_string().contains("at most 1000"), "{e}");
    // The sandbox refuses it too, and wrong check types and unknown owners, as Tencent does.
    let q = good_query();
    let body =
        json!({"From_Account": "a", "To_Account": many, "CheckType": "CheckResult_Type_Single"});
    let (_, v) = raw(
        &h,
        reqwest::Method::POST,
        "/v4/sns/friend_check",
        &q,
        &body.to_string(),
    )
    .await;
    assert_eq!(code_of(&v), 30001, "{v}");
    let body =
        json!({"From_Account": "a", "To_Account": ["b"], "CheckType": "CheckResult_Type_Mutual"});
    let (_, v) = raw(
        &h,
        reqwest::Method::POST,
        "/v4/sns/friend_check",
        &q,
        &body.to_string(),
    )
    .await;
    assert_eq!(code_of(&v), 30001, "{v}");
    assert!(
        v["ErrorInfo"].as_str().unwrap().contains("CheckType"),
        "{v}"
    );
    let body = json!({"From_Account": "a", "To_Account": ["b"]});
    let (_, v) = raw(
        &h,
        reqwest::Method::POST,
        "/v4/sns/friend_check",
        &q,
        &body.to_string(),
    )
    .await;
    assert_eq!(code_of(&v), 30001, "a missing CheckType: {v}");
    let e = code(
        c.friend_check("ghost", &["a".to_string()], CheckType::Single)
            .await,
    );
    assert_eq!(e.code(), Some(30003), "{e}");
    let e = code(c.friend_check("a", &[], CheckType::Single).await);
    assert!(matches!(e, TencentError::Invalid { .. }), "{e}");
}

fn code_of(v: &serde_json::Value) -> i64 {
    code(v)
}

#[tokio::test]
async fn a_lost_answer_leaves_the_request_done_and_the_caller_uncertain() {
    let h = sandbox_with(|c| {
        c.lost_answer_rate = 1.0;
        c.lost_answer_apis = vec!["sns/friend_import".into()];
    })
    .await;
    let c = client(&h);
    // Other APIs answer.
    import_users(&c, &["a", "b"]).await;
    let e = c.friend_import(&import("a", &["b"])).await.unwrap_err();
    assert!(matches!(e, TencentError::Transport { .. }), "{e}");
    assert_eq!(e.class(), ErrorClass::Retryable);
    // It happened all the same.
    assert_eq!(h.state()["friends"], 1);
    assert_eq!(h.state()["apis"]["sns/friend_import"]["lost"], 1);
    let r = c
        .friend_check("a", &["b".to_string()], CheckType::Single)
        .await
        .unwrap();
    assert!(r.info_item[0].on_from_list());
}
