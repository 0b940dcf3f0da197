//! Every typed client call, end to end against the sandbox.

use crate::common::*;
use imshift::providers::tencent::client::*;
use imshift::providers::tencent::convert::{self, CanonicalBody, CanonicalMessage};
use serde_json::json;

#[tokio::test]
async fn accounts() {
    let h = sandbox().await;
    let c = client(&h);
    c.account_import(&AccountImportRequest {
        user_id: "alice".into(),
        nick: Some("Alice".into()),
        face_url: Some("https://img.example/a.png".into()),
    })
    .await
    .unwrap();
    let failed = c
        .multiaccount_import(&[
            AccountItem {
                user_id: "bob".into(),
                nick: None,
                face_url: None,
            },
            AccountItem {
                user_id: "x".repeat(33),
                nick: None,
                face_url: None,
            },
        ])
        .await
        .unwrap();
    assert_eq!(failed, vec!["x".repeat(33)]);
    let check = c
        .account_check(&["alice".into(), "bob".into(), "carol".into()])
        .await
        .unwrap();
    let status: Vec<_> = check
        .iter()
        .map(|r| (r.user_id.as_str(), r.account_status))
        .collect();
    assert_eq!(
        status,
        vec![
            ("alice", AccountStatus::Imported),
            ("bob", AccountStatus::Imported),
            ("carol", AccountStatus::NotImported)
        ]
    );
    assert_eq!(h.state()["accounts"], 2);
    // Re-importing is idempotent.
    import_users(&c, &["alice", "bob"]).await;
    assert_eq!(h.state()["accounts"], 2);
}

#[tokio::test]
async fn profiles() {
    let h = sandbox_with(|c| c.custom_profile_tags = vec!["Level".into()]).await;
    let c = client(&h);
    import_users(&c, &["alice"]).await;
    c.portrait_set(&PortraitSetRequest {
        from_account: "alice".into(),
        profile_item: vec![
            TagValue {
                tag: "Tag_Profile_IM_Nick".into(),
                value: json!("Queen Alice"),
            },
            TagValue {
                tag: "Tag_Profile_Custom_Level".into(),
                value: json!("gold"),
            },
        ],
    })
    .await
    .unwrap();
    let got = c
        .portrait_get(&PortraitGetRequest {
            to_account: vec!["alice".into(), "ghost".into()],
            tag_list: vec![
                "Tag_Profile_IM_Nick".into(),
                "Tag_Profile_Custom_Level".into(),
            ],
        })
        .await
        .unwrap();
    assert_eq!(got.fail_account, vec!["ghost".to_string()]);
    let alice = &got.user_profile_item[0];
    assert_eq!(alice.profile_item[0].value, json!("Queen Alice"));
    assert_eq!(alice.profile_item[1].value, json!("gold"));
    assert_eq!(got.user_profile_item[1].result_code, 40003);
}

#[tokio::test]
async fn relationships() {
    let h = sandbox().await;
    let c = client(&h);
    import_users(&c, &["a", "b", "c"]).await;
    let r = c
        .friend_import(&FriendImportRequest {
            from_account: "a".into(),
            add_friend_item: vec![
                ImportFriendItem {
                    to_account: "b".into(),
                    add_source: "AddSource_Type_Import".into(),
                    remark: Some("Bob".into()),
                    remark_time: None,
                    group_name: vec!["Work".into()],
                    add_wording: None,
                    add_time: Some(1_513_685_265),
                    custom_item: vec![],
                },
                ImportFriendItem {
                    to_account: "nobody".into(),
                    add_source: "AddSource_Type_Import".into(),
                    remark: None,
                    remark_time: None,
                    group_name: vec![],
                    add_wording: None,
                    add_time: None,
                    custom_item: vec![],
                },
            ],
        })
        .await
        .unwrap();
    assert_eq!(r.fail_account, vec!["nobody".to_string()]);
    assert_eq!(r.result_item[0].result_code, 0);
    assert_eq!(r.result_item[1].result_code, 30003);
    let r = c
        .friend_add(&FriendAddRequest {
            from_account: "b".into(),
            add_friend_item: vec![AddFriendItem {
                to_account: "c".into(),
                add_source: "AddSource_Type_Import".into(),
                remark: None,
                group_name: None,
                add_wording: None,
            }],
            add_type: Some("Add_Type_Both".into()),
            force_add_flags: Some(1),
        })
        .await
        .unwrap();
    assert!(r.fail_account.is_empty());
    let r = c
        .black_list_add(&BlackListAddRequest {
            from_account: "a".into(),
            to_account: vec!["c".into()],
        })
        .await
        .unwrap();
    assert_eq!(r.result_item[0].result_code, 0);
    let s = h.state();
    assert_eq!(s["friends"], 3, "{s}");
    assert_eq!(s["blocks"], 1);
}

fn canonical(id: &str, from: &str, to: &str, sent_at: i64, text: &str) -> CanonicalMessage {
    CanonicalMessage {
        id: id.into(),
        conv: "c2c".into(),
        from: from.into(),
        to: to.into(),
        sent_at,
        body: CanonicalBody::Text { text: text.into() },
        ext: Some(format!("src:{id}")),
    }
}

#[tokio::test]
async fn c2c_import_send_and_read_back() {
    let h = sandbox().await;
    let c = client(&h);
    import_users(&c, &["u1", "u2"]).await;
    let base = 1_700_000_000_000i64;
    for i in 0..5 {
        let (from, to) = if i % 2 == 0 {
            ("u1", "u2")
        } else {
            ("u2", "u1")
        };
        let m = canonical(
            &format!("m{i}"),
            from,
            to,
            base + i * 400,
            &format!("hello {i}"),
        );
        c.importmsg(&convert::import_c2c(&m, false).unwrap())
            .await
            .unwrap();
    }
    let sent = c
        .sendmsg(&SendMsgRequest {
            sync_other_machine: Some(2),
            from_account: Some("u1".into()),
            to_account: "u2".into(),
            msg_life_time: None,
            msg_seq: Some(42),
            msg_random: 4242,
            forbid_callback_control: vec![FORBID_BEFORE_SEND.into(), FORBID_AFTER_SEND.into()],
            send_msg_control: vec![],
            msg_body: vec![MsgElement::text("live")],
            cloud_custom_data: None,
        })
        .await
        .unwrap();
    assert_eq!(sent.msg_key, format!("42_4242_{}", sent.msg_time));

    // Page through the history two at a time, newest first.
    let mut seen = Vec::new();
    let mut req = AdminGetRoamMsgRequest {
        operator_account: "u2".into(),
        peer_account: "u1".into(),
        max_cnt: 2,
        min_time: 0,
        max_time: u32::MAX as u64,
        last_msg_key: None,
    };
    for _ in 0..10 {
        let page = c.admin_getroammsg(&req).await.unwrap();
        assert_eq!(page.msg_cnt as usize, page.msg_list.len());
        seen.extend(page.msg_list.iter().map(|m| {
            m.msg_body[0].msg_content["Text"]
                .as_str()
                .unwrap()
                .to_string()
        }));
        if page.complete == 1 {
            break;
        }
        req.max_time = page.last_msg_time;
        req.last_msg_key = Some(page.last_msg_key);
    }
    assert_eq!(
        seen,
        vec!["live", "hello 4", "hello 3", "hello 2", "hello 1", "hello 0"]
    );
    let first = c
        .admin_getroammsg(&AdminGetRoamMsgRequest {
            max_cnt: 100,
            last_msg_key: None,
            max_time: u32::MAX as u64,
            ..req
        })
        .await
        .unwrap();
    let m0 = first.msg_list.last().unwrap();
    assert_eq!(m0.cloud_custom_data.as_deref(), Some("src:m0"));
    assert_eq!(
        m0.msg_key,
        format!("{}_{}_{}", m0.msg_seq, m0.msg_random, m0.msg_time_stamp)
    );
    assert_eq!(h.state()["c2c_messages"], 6);
}

#[tokio::test]
async fn group_import_and_read_back() {
    let h = sandbox().await;
    let c = client(&h);
    import_users(&c, &["owner", "m1", "m2"]).await;
    let created = now() - 100_000;
    let gid = c
        .import_group(&ImportGroupRequest {
            base: GroupBase {
                owner_account: Some("owner".into()),
                group_type: convert::group_type("public").unwrap().into(),
                group_id: Some("team-1".into()),
                name: "Team".into(),
                introduction: Some("intro".into()),
                apply_join_option: convert::apply_join_option("need_permission").map(Into::into),
                ..Default::default()
            },
            create_time: Some(created),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(gid, "team-1");
    let msgs: Vec<GroupMsgItem> = (0..7)
        .map(|i| GroupMsgItem {
            from_account: if i % 2 == 0 { "owner" } else { "m1" }.into(),
            send_time: created + 10 + i,
            random: Some(1000 + i as u32),
            msg_body: vec![MsgElement::text(&format!("g{i}"))],
            cloud_custom_data: None,
        })
        .collect();
    let res = c
        .import_group_msg(&ImportGroupMsgRequest {
            group_id: gid.clone(),
            recent_contact_flag: Some(1),
            msg_list: msgs,
        })
        .await
        .unwrap();
    assert_eq!(
        res.iter().map(|r| r.msg_seq).collect::<Vec<_>>(),
        (1..=7).collect::<Vec<_>>()
    );
    assert!(res.iter().all(|r| r.result == 0));
    let members = c
        .import_group_member(&ImportGroupMemberRequest {
            group_id: gid.clone(),
            member_list: vec![
                ImportMember {
                    member_account: "m1".into(),
                    role: Some("Admin".into()),
                    join_time: Some(created + 1),
                    unread_msg_num: Some(3),
                },
                ImportMember {
                    member_account: "m2".into(),
                    role: None,
                    join_time: Some(created + 2),
                    unread_msg_num: None,
                },
            ],
        })
        .await
        .unwrap();
    assert!(members.iter().all(|m| m.result == 1), "{members:?}");
    c.set_unread_msg_num(&SetUnreadMsgNumRequest {
        group_id: gid.clone(),
        member_account: "m2".into(),
        unread_msg_num: 2,
    })
    .await
    .unwrap();

    let page = c
        .group_msg_get_simple(&GroupMsgGetSimpleRequest {
            group_id: gid.clone(),
            req_msg_number: 5,
            req_msg_seq: None,
        })
        .await
        .unwrap();
    assert_eq!(page.is_finished, 0);
    assert_eq!(
        page.rsp_msg_list
            .iter()
            .map(|m| m.msg_seq)
            .collect::<Vec<_>>(),
        vec![7, 6, 5, 4, 3]
    );
    let rest = c
        .group_msg_get_simple(&GroupMsgGetSimpleRequest {
            group_id: gid.clone(),
            req_msg_number: 5,
            req_msg_seq: Some(2),
        })
        .await
        .unwrap();
    assert_eq!(rest.is_finished, 1);
    assert_eq!(rest.rsp_msg_list[1].msg_body[0].msg_content["Text"], "g0");
    let s = h.state();
    assert_eq!(
        (
            s["groups"].as_u64(),
            s["members"].as_u64(),
            s["group_messages"].as_u64()
        ),
        (Some(1), Some(3), Some(7))
    );
}

#[tokio::test]
async fn live_group_operations() {
    let h = sandbox().await;
    let c = client(&h);
    import_users(&c, &["owner", "m1", "m2", "m3"]).await;
    let gid = c
        .create_group(&CreateGroupRequest {
            base: GroupBase {
                owner_account: Some("owner".into()),
                group_type: "Private".into(),
                name: "Live".into(),
                ..Default::default()
            },
            member_list: vec![CreateMember {
                member_account: "m1".into(),
                role: None,
            }],
        })
        .await
        .unwrap();
    assert!(gid.starts_with("@TGS#"), "{gid}");
    c.modify_group_base_info(&ModifyGroupBaseInfoRequest {
        group_id: gid.clone(),
        name: Some("Renamed".into()),
        notification: Some("hello".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let added = c
        .add_group_member(&AddGroupMemberRequest {
            group_id: gid.clone(),
            silence: Some(1),
            member_list: vec![
                MemberAccountItem {
                    member_account: "m1".into(),
                },
                MemberAccountItem {
                    member_account: "m2".into(),
                },
                MemberAccountItem {
                    member_account: "m3".into(),
                },
            ],
        })
        .await
        .unwrap();
    assert_eq!(
        added.iter().map(|m| m.result).collect::<Vec<_>>(),
        vec![2, 1, 1]
    );
    c.delete_group_member(&DeleteGroupMemberRequest {
        group_id: gid.clone(),
        silence: Some(1),
        reason: None,
        member_to_del_account: vec!["m3".into(), "never-there".into()],
    })
    .await
    .unwrap();
    let sent = c
        .send_group_msg(&SendGroupMsgRequest {
            group_id: gid.clone(),
            from_account: Some("m1".into()),
            random: 77,
            msg_body: vec![MsgElement::text("live")],
            cloud_custom_data: Some("mirror:1".into()),
            online_only_flag: None,
            forbid_callback_control: vec![FORBID_AFTER_SEND.into()],
        })
        .await
        .unwrap();
    assert_eq!(sent.msg_seq, 1);
    assert_eq!(h.state()["members"], 3);
    c.destroy_group(&gid).await.unwrap();
    let e = c.destroy_group(&gid).await.unwrap_err();
    assert_eq!(e.code(), Some(10010));
    assert_eq!(h.state()["groups"], 0);
}
