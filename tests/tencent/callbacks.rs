//! Callbacks the sandbox posts to the app: which operations fire them, their query string and
//! Sign, and ForbidCallbackControl.

use crate::common::*;
use axum::extract::{Query, State};
use axum::routing::post;
use axum::{Json, Router};
use imshift::providers::tencent::callbacks::{self, CallbackEvent};
use imshift::providers::tencent::client::*;
use secrecy::SecretString;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Seen = Arc<Mutex<Vec<(HashMap<String, String>, Value)>>>;

async fn receiver() -> (String, Seen) {
    let seen: Seen = Arc::default();
    async fn take(
        State(seen): State<Seen>,
        Query(q): Query<HashMap<String, String>>,
        Json(body): Json<Value>,
    ) -> Json<Value> {
        seen.lock().unwrap().push((q, body));
        Json(callbacks::ok_response())
    }
    let app = Router::new()
        .route("/im", post(take))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/im"), seen)
}

async fn wait_for(seen: &Seen, n: usize) -> Vec<(HashMap<String, String>, Value)> {
    for _ in 0..100 {
        if seen.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Give stray (unexpected) callbacks a moment to arrive too.
    tokio::time::sleep(Duration::from_millis(100)).await;
    seen.lock().unwrap().clone()
}

#[tokio::test]
async fn callbacks_follow_tencent_rules() {
    let (url, seen) = receiver().await;
    let h = sandbox_with(|c| {
        c.callback_url = Some(url);
        c.callback_token = Some(SecretString::from("cb-token".to_string()));
    })
    .await;
    let c = client(&h);
    import_users(&c, &["a", "b"]).await;
    // Imports never call back.
    c.importmsg(&ImportMsgRequest {
        sync_from_old_system: 2,
        from_account: "a".into(),
        to_account: "b".into(),
        msg_seq: Some(1),
        msg_random: 1,
        msg_time_stamp: 1_600_000_000,
        msg_body: vec![MsgElement::text("old")],
        cloud_custom_data: None,
    })
    .await
    .unwrap();
    c.import_group(&ImportGroupRequest {
        base: GroupBase {
            owner_account: Some("a".into()),
            group_type: "Public".into(),
            group_id: Some("imp".into()),
            name: "I".into(),
            ..Default::default()
        },
        create_time: Some(now() - 100),
        ..Default::default()
    })
    .await
    .unwrap();
    // Forbidden after-callback: none.
    let send = SendMsgRequest {
        sync_other_machine: None,
        from_account: Some("a".into()),
        to_account: "b".into(),
        msg_life_time: None,
        msg_seq: Some(5),
        msg_random: 6,
        forbid_callback_control: vec![FORBID_AFTER_SEND.into()],
        send_msg_control: vec![],
        msg_body: vec![MsgElement::text("mirrored")],
        cloud_custom_data: None,
    };
    c.sendmsg(&send).await.unwrap();
    // These fire, in this order.
    c.sendmsg(&SendMsgRequest {
        forbid_callback_control: vec![],
        msg_random: 7,
        msg_body: vec![MsgElement::text("typed by a person")],
        ..send.clone()
    })
    .await
    .unwrap();
    let gid = c
        .create_group(&CreateGroupRequest {
            base: GroupBase {
                owner_account: Some("a".into()),
                group_type: "Public".into(),
                name: "Live".into(),
                ..Default::default()
            },
            ..Default::default()
        })
        .await
        .unwrap();
    c.add_group_member(&AddGroupMemberRequest {
        group_id: gid.clone(),
        silence: None,
        member_list: vec![MemberAccountItem {
            member_account: "b".into(),
        }],
    })
    .await
    .unwrap();
    c.send_group_msg(&SendGroupMsgRequest {
        group_id: gid.clone(),
        from_account: Some("b".into()),
        random: 1,
        msg_body: vec![MsgElement::text("hi all")],
        cloud_custom_data: None,
        online_only_flag: None,
        forbid_callback_control: vec![],
    })
    .await
    .unwrap();
    c.send_group_msg(&SendGroupMsgRequest {
        group_id: gid.clone(),
        from_account: Some("b".into()),
        random: 2,
        msg_body: vec![MsgElement::text("mirror")],
        cloud_custom_data: None,
        online_only_flag: None,
        forbid_callback_control: vec![FORBID_AFTER_SEND.into()],
    })
    .await
    .unwrap();
    c.modify_group_base_info(&ModifyGroupBaseInfoRequest {
        group_id: gid.clone(),
        name: Some("New".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    c.delete_group_member(&DeleteGroupMemberRequest {
        group_id: gid.clone(),
        silence: None,
        reason: None,
        member_to_del_account: vec!["b".into()],
    })
    .await
    .unwrap();
    c.destroy_group(&gid).await.unwrap();
    // friend_import is an import: silent. friend_add calls back.
    let friend = |to: &str| ImportFriendItem {
        to_account: to.into(),
        add_source: "AddSource_Type_Import".into(),
        remark: None,
        remark_time: None,
        group_name: vec![],
        add_wording: None,
        add_time: None,
        custom_item: vec![],
    };
    c.friend_import(&FriendImportRequest {
        from_account: "a".into(),
        add_friend_item: vec![friend("b")],
    })
    .await
    .unwrap();
    c.friend_add(&FriendAddRequest {
        from_account: "b".into(),
        add_friend_item: vec![AddFriendItem {
            to_account: "a".into(),
            add_source: "AddSource_Type_Import".into(),
            remark: None,
            group_name: None,
            add_wording: None,
        }],
        add_type: None,
        force_add_flags: Some(1),
    })
    .await
    .unwrap();

    let got = wait_for(&seen, 8).await;
    let mut commands: Vec<String> = got
        .iter()
        .map(|(q, _)| q["CallbackCommand"].clone())
        .collect();
    commands.sort();
    let mut want = vec![
        "C2C.CallbackAfterSendMsg",
        "Group.CallbackAfterCreateGroup",
        "Group.CallbackAfterNewMemberJoin",
        "Group.CallbackAfterSendMsg",
        "Group.CallbackAfterGroupInfoChanged",
        "Group.CallbackAfterMemberExit",
        "Group.CallbackAfterGroupDestroyed",
        "Sns.CallbackFriendAdd",
    ];
    want.sort();
    assert_eq!(commands, want);
    for (q, body) in &got {
        assert_eq!(q["SdkAppid"], APP.to_string());
        assert_eq!(q["OptPlatform"], "RESTAPI");
        assert_eq!(q["contenttype"], "json");
        assert!(q.contains_key("ClientIP"));
        callbacks::verify(
            "cb-token",
            q.get("Sign").map(String::as_str),
            q.get("RequestTime").map(String::as_str),
            now() as i64,
        )
        .unwrap();
        assert_eq!(body["CallbackCommand"], q["CallbackCommand"].as_str());
        let event: CallbackEvent = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(event.command(), q["CallbackCommand"]);
        match event {
            CallbackEvent::C2cAfterSendMsg(e) => {
                assert_eq!(e.msg_body[0]["MsgContent"]["Text"], "typed by a person");
                assert_eq!(e.msg_key, format!("5_7_{}", e.msg_time));
            }
            CallbackEvent::GroupAfterSendMsg(e) => assert_eq!(e.random, 1),
            CallbackEvent::GroupAfterMemberExit(e) => assert_eq!(e.exit_type, "Kicked"),
            CallbackEvent::GroupAfterNewMemberJoin(e) => {
                assert_eq!(e.new_member_list[0].member_account, "b")
            }
            CallbackEvent::GroupAfterInfoChanged(e) => assert_eq!(e.name.as_deref(), Some("New")),
            CallbackEvent::SnsFriendAdd(e) => {
                assert_eq!(e.client_cmd, "friend_add");
                assert_eq!(e.admin_account.as_deref(), Some(ADMIN));
                assert_eq!(e.pair_list[0].from_account, "b");
            }
            _ => {}
        }
    }
    assert_eq!(h.state()["callbacks_sent"], 8);
}

#[tokio::test]
async fn router_can_be_served_by_the_caller() {
    use imshift::providers::tencent::sandbox::{router, SandboxConfig};
    let app = router(SandboxConfig::new(APP, KEY, ADMIN));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let c = imshift::providers::tencent::TencentClient::new(
        imshift::providers::tencent::TencentConfig {
            base_url: format!("http://{addr}"),
            sdkappid: APP,
            admin: ADMIN.into(),
            secret: SecretString::from(KEY.to_string()),
            usersig_ttl_secs: 3600,
        },
    )
    .unwrap();
    let r = c.account_check(&[ADMIN.to_string()]).await.unwrap();
    assert_eq!(r[0].account_status, AccountStatus::Imported);
}
