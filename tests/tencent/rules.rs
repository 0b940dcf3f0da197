//! Each sandbox rule: send the bad request, get the real Tencent error code.

use crate::common::*;
use imshift::providers::tencent::client::*;
use imshift::providers::tencent::{usersig, Limits, TencentClient, TencentError};
use imshift::providers::ErrorClass;
use reqwest::Method;
use secrecy::SecretString;

fn api_code(r: Result<impl std::fmt::Debug, TencentError>) -> i64 {
    match r {
        Err(e) => e.code().unwrap_or_else(|| panic!("not an API error: {e}")),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

fn text_msg(from: &str, to: &str, seq: u32, random: u32, ts: u32) -> ImportMsgRequest {
    ImportMsgRequest {
        sync_from_old_system: 2,
        from_account: from.into(),
        to_account: to.into(),
        msg_seq: Some(seq),
        msg_random: random,
        msg_time_stamp: ts,
        msg_body: vec![MsgElement::text("hi")],
        cloud_custom_data: None,
    }
}

#[tokio::test]
async fn credentials() {
    let h = sandbox().await;
    // Wrong key.
    let mut cfg = config(&h);
    cfg.secret = SecretString::from("not-the-key".to_string());
    let bad = TencentClient::new(cfg).unwrap();
    let e = bad.account_check(&["a".into()]).await.unwrap_err();
    assert_eq!(e.code(), Some(70009));
    assert_eq!(e.class(), ErrorClass::Auth);
    assert!(e.to_string().contains("copy the key again"), "{e}");
    // Unknown SDKAppID.
    let mut cfg = config(&h);
    cfg.sdkappid = 1_400_999_999;
    assert_eq!(
        api_code(
            TencentClient::new(cfg)
                .unwrap()
                .account_check(&["a".into()])
                .await
        ),
        70020
    );
    // A valid signature for someone who is not an admin.
    let mut cfg = config(&h);
    cfg.admin = "bob".into();
    let e = TencentClient::new(cfg)
        .unwrap()
        .account_check(&["a".into()])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(60010));
    assert!(e.to_string().contains("not an app admin"));
    // Expired: the sandbox clock runs two days ahead; the client regenerates once, still expired.
    h.clock().advance(2 * 86_400);
    assert_eq!(
        api_code(client(&h).account_check(&["a".into()]).await),
        70001
    );
    h.clock().advance(-2 * 86_400);
    client(&h).account_check(&["a".into()]).await.unwrap();
}

#[tokio::test]
async fn signature_details_over_raw_http() {
    let h = sandbox().await;
    let path = "/v4/im_open_login_svc/account_check";
    let body = r#"{"CheckItem":[{"UserID":"a"}]}"#;
    let with = |name: &str, value: String| {
        let mut q = good_query();
        q.iter_mut().find(|(k, _)| *k == name).unwrap().1 = value;
        q
    };
    let (status, v) = raw(&h, Method::POST, path, &good_query(), body).await;
    assert_eq!((status, code(&v)), (200, 0));
    // Expired (strict >): issued long ago.
    let old = usersig::generate(APP, KEY, ADMIN, 60, now() - 61);
    assert_eq!(
        code(
            &raw(&h, Method::POST, path, &with("usersig", old), body)
                .await
                .1
        ),
        70001
    );
    // Sig for another identifier than the URL's.
    let other = usersig::generate(APP, KEY, "someone", 600, now());
    assert_eq!(
        code(
            &raw(&h, Method::POST, path, &with("usersig", other), body)
                .await
                .1
        ),
        70013
    );
    // Sig for another SDKAppID.
    let other = usersig::generate(APP + 1, KEY, ADMIN, 600, now());
    assert_eq!(
        code(
            &raw(&h, Method::POST, path, &with("usersig", other), body)
                .await
                .1
        ),
        70014
    );
    // Garbage.
    assert_eq!(
        code(
            &raw(
                &h,
                Method::POST,
                path,
                &with("usersig", "garbage".into()),
                body
            )
            .await
            .1
        ),
        70003
    );
    // Query parameters.
    let mut q = good_query();
    q.retain(|(k, _)| *k != "sdkappid");
    assert_eq!(code(&raw(&h, Method::POST, path, &q, body).await.1), 60012);
    let mut q = good_query();
    q.retain(|(k, _)| *k != "random");
    assert_eq!(code(&raw(&h, Method::POST, path, &q, body).await.1), 60002);
    assert_eq!(
        code(
            &raw(
                &h,
                Method::POST,
                path,
                &with("contenttype", "xml".into()),
                body
            )
            .await
            .1
        ),
        60002
    );
    assert_eq!(
        code(
            &raw(&h, Method::POST, path, &with("random", "-1".into()), body)
                .await
                .1
        ),
        60002
    );
}

#[tokio::test]
async fn http_shape() {
    let h = sandbox().await;
    let path = "/v4/im_open_login_svc/account_check";
    // GET is refused, still over HTTP 200.
    let (status, v) = raw(&h, Method::GET, path, &good_query(), "").await;
    assert_eq!((status, code(&v)), (200, 60002));
    assert_eq!(v["ActionStatus"], "FAIL");
    // Unknown APIs and paths.
    assert_eq!(
        code(
            &raw(&h, Method::POST, "/v4/openim/nope", &good_query(), "{}")
                .await
                .1
        ),
        60009
    );
    assert_eq!(
        code(
            &raw(&h, Method::POST, "/elsewhere", &good_query(), "{}")
                .await
                .1
        ),
        60009
    );
    // Bad and empty JSON.
    assert_eq!(
        code(
            &raw(&h, Method::POST, path, &good_query(), "{not json")
                .await
                .1
        ),
        60003
    );
    assert_eq!(
        code(&raw(&h, Method::POST, path, &good_query(), "").await.1),
        60003
    );
    assert_eq!(
        code(&raw(&h, Method::POST, path, &good_query(), "[1]").await.1),
        60003
    );
    // Per-API counts, also over HTTP.
    let s: serde_json::Value = reqwest::get(format!("{}/_sandbox/state", h.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        s["apis"]["im_open_login_svc/account_check"]["rejected"], 4,
        "{s}"
    );
    assert_eq!(s["apis"]["unknown"]["calls"], 2, "{s}");
}

#[tokio::test]
async fn qps_limit() {
    let h = sandbox_with(|c| {
        c.limits.set_qps("im_open_login_svc/account_check", 2);
    })
    .await;
    let c = client(&h);
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(
            c.account_check(&["a".into()])
                .await
                .err()
                .and_then(|e| e.code())
                .unwrap_or(0),
        );
    }
    assert_eq!(codes.iter().filter(|c| **c == 0).count(), 2, "{codes:?}");
    assert_eq!(
        codes.iter().filter(|c| **c == 60007).count(),
        3,
        "{codes:?}"
    );
    assert_eq!(
        imshift::providers::tencent::classify(60007),
        ErrorClass::RateLimited
    );
    // Other APIs have their own bucket.
    import_users(&c, &["a"]).await;
}

#[tokio::test]
async fn batch_limits() {
    let h = sandbox().await;
    let c = client(&h);
    let many: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
    // Client-side refusal, nothing sent.
    let e = c.account_check(&many).await.unwrap_err();
    assert!(matches!(e, TencentError::Invalid { .. }), "{e}");
    assert!(e.to_string().contains("at most 100"));
    assert_eq!(
        h.state()["apis"]["im_open_login_svc/account_check"]["calls"],
        serde_json::Value::Null
    );
    // A client configured for the old 300 cap meets the sandbox's current 20 → 10005.
    let loose = client(&h).with_limits(Limits::default().with_import_group_member_batch(300));
    import_users(&c, &["owner"]).await;
    let members: Vec<AccountItem> = (0..21)
        .map(|i| AccountItem {
            user_id: format!("m{i}"),
            nick: None,
            face_url: None,
        })
        .collect();
    assert!(c.multiaccount_import(&members).await.unwrap().is_empty());
    c.import_group(&ImportGroupRequest {
        base: GroupBase {
            owner_account: Some("owner".into()),
            group_type: "Public".into(),
            group_id: Some("g".into()),
            name: "G".into(),
            ..Default::default()
        },
        create_time: Some(now() - 1000),
        ..Default::default()
    })
    .await
    .unwrap();
    let req = ImportGroupMemberRequest {
        group_id: "g".into(),
        member_list: members
            .iter()
            .map(|m| ImportMember {
                member_account: m.user_id.clone(),
                role: None,
                join_time: Some(now() - 10),
                unread_msg_num: None,
            })
            .collect(),
    };
    assert_eq!(api_code(loose.import_group_member(&req).await), 10005);
    assert!(matches!(
        c.import_group_member(&req).await,
        Err(TencentError::Invalid { .. })
    ));
    // The sandbox takes the old cap when configured so.
    let h2 =
        sandbox_with(|c| c.limits = Limits::default().with_import_group_member_batch(100)).await;
    let c2 = client(&h2).with_limits(Limits::default().with_import_group_member_batch(100));
    import_users(&c2, &["owner"]).await;
    assert!(c2.multiaccount_import(&members).await.unwrap().is_empty());
    c2.import_group(&ImportGroupRequest {
        base: GroupBase {
            owner_account: Some("owner".into()),
            group_type: "Public".into(),
            group_id: Some("g".into()),
            name: "G".into(),
            ..Default::default()
        },
        create_time: Some(now() - 1000),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(c2
        .import_group_member(&req)
        .await
        .unwrap()
        .iter()
        .all(|m| m.result == 1));
}

#[tokio::test]
async fn unknown_accounts() {
    let h = sandbox().await;
    let c = client(&h);
    import_users(&c, &["a"]).await;
    assert_eq!(
        api_code(
            c.importmsg(&text_msg("ghost", "a", 1, 1, 1_600_000_000))
                .await
        ),
        90048
    );
    assert_eq!(
        api_code(
            c.importmsg(&text_msg("a", "ghost", 1, 1, 1_600_000_000))
                .await
        ),
        90012
    );
    let send = SendMsgRequest {
        sync_other_machine: None,
        from_account: Some("a".into()),
        to_account: "ghost".into(),
        msg_life_time: None,
        msg_seq: None,
        msg_random: 1,
        forbid_callback_control: vec![],
        send_msg_control: vec![],
        msg_body: vec![MsgElement::text("x")],
        cloud_custom_data: None,
    };
    assert_eq!(api_code(c.sendmsg(&send).await), 20003);
    let p = PortraitSetRequest {
        from_account: "ghost".into(),
        profile_item: vec![TagValue {
            tag: "Tag_Profile_IM_Nick".into(),
            value: "n".into(),
        }],
    };
    assert_eq!(api_code(c.portrait_set(&p).await), 40003);
    let f = FriendImportRequest {
        from_account: "ghost".into(),
        add_friend_item: vec![ImportFriendItem {
            to_account: "a".into(),
            add_source: "AddSource_Type_X".into(),
            remark: None,
            remark_time: None,
            group_name: vec![],
            add_wording: None,
            add_time: None,
            custom_item: vec![],
        }],
    };
    assert_eq!(api_code(c.friend_import(&f).await), 30003);
    let gid = c
        .create_group(&CreateGroupRequest {
            base: GroupBase {
                group_type: "Public".into(),
                name: "G".into(),
                ..Default::default()
            },
            ..Default::default()
        })
        .await
        .unwrap();
    let add = AddGroupMemberRequest {
        group_id: gid.clone(),
        silence: None,
        member_list: vec![MemberAccountItem {
            member_account: "ghost".into(),
        }],
    };
    assert_eq!(api_code(c.add_group_member(&add).await), 10019);
    let owner = ImportGroupRequest {
        base: GroupBase {
            owner_account: Some("ghost".into()),
            group_type: "Public".into(),
            name: "G".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(api_code(c.import_group(&owner).await), 10019);
    // Profile values and custom tags.
    let long = PortraitSetRequest {
        from_account: "a".into(),
        profile_item: vec![TagValue {
            tag: "Tag_Profile_IM_Nick".into(),
            value: "x".repeat(501).into(),
        }],
    };
    assert_eq!(api_code(c.portrait_set(&long).await), 40601);
    let unreg = PortraitSetRequest {
        from_account: "a".into(),
        profile_item: vec![TagValue {
            tag: "Tag_Profile_Custom_Nope".into(),
            value: "x".into(),
        }],
    };
    assert_eq!(api_code(c.portrait_set(&unreg).await), 40009);
}

#[tokio::test]
async fn group_rules() {
    let h = sandbox().await;
    let c = client(&h);
    import_users(&c, &["owner", "m"]).await;
    let created = now() - 10_000;
    let g = |id: &str, ty: &str| ImportGroupRequest {
        base: GroupBase {
            owner_account: Some("owner".into()),
            group_type: ty.into(),
            group_id: Some(id.into()),
            name: "G".into(),
            ..Default::default()
        },
        create_time: Some(created),
        ..Default::default()
    };
    assert_eq!(
        api_code(c.import_group(&g("@TGS#mine", "Public")).await),
        10015
    );
    assert_eq!(
        api_code(c.import_group(&g(&"g".repeat(49), "Public")).await),
        10015
    );
    assert_eq!(
        api_code(c.import_group(&g("caf\u{e9}", "Public")).await),
        10015
    );
    assert_eq!(
        api_code(c.import_group(&g("live", "AVChatRoom")).await),
        10007
    );
    assert_eq!(
        api_code(c.import_group(&g("comm", "Community")).await),
        10015
    );
    assert_eq!(
        c.import_group(&g("@TGS#_comm", "Community")).await.unwrap(),
        "@TGS#_comm"
    );
    c.import_group(&g("grp", "Public")).await.unwrap();
    let e = c.import_group(&g("grp", "Public")).await.unwrap_err();
    assert_eq!(e.code(), Some(10021));
    assert_eq!(e.class(), ErrorClass::Permanent);
    let missing = ImportGroupMsgRequest {
        group_id: "nope".into(),
        recent_contact_flag: None,
        msg_list: vec![GroupMsgItem {
            from_account: "m".into(),
            send_time: created + 1,
            random: None,
            msg_body: vec![MsgElement::text("x")],
            cloud_custom_data: None,
        }],
    };
    assert_eq!(api_code(c.import_group_msg(&missing).await), 10010);
    // AVChatRoom made with create_group still refuses imports.
    let av = c
        .create_group(&CreateGroupRequest {
            base: GroupBase {
                group_type: "AVChatRoom".into(),
                group_id: Some("av".into()),
                name: "AV".into(),
                ..Default::default()
            },
            ..Default::default()
        })
        .await
        .unwrap();
    let mem = ImportGroupMemberRequest {
        group_id: av.clone(),
        member_list: vec![ImportMember {
            member_account: "m".into(),
            role: None,
            join_time: None,
            unread_msg_num: None,
        }],
    };
    assert_eq!(api_code(c.import_group_member(&mem).await), 10007);

    // Member join times: before creation → 0, fine → 1, again → 2.
    let members = ImportGroupMemberRequest {
        group_id: "grp".into(),
        member_list: vec![ImportMember {
            member_account: "m".into(),
            role: None,
            join_time: Some(created - 1),
            unread_msg_num: None,
        }],
    };
    assert_eq!(c.import_group_member(&members).await.unwrap()[0].result, 0);
    let mut ok = members.clone();
    ok.member_list[0].join_time = Some(created + 5);
    assert_eq!(c.import_group_member(&ok).await.unwrap()[0].result, 1);
    assert_eq!(c.import_group_member(&ok).await.unwrap()[0].result, 2);
    let future = ImportGroupMemberRequest {
        group_id: "grp".into(),
        member_list: vec![ImportMember {
            member_account: "owner".into(),
            role: None,
            join_time: Some(now() + 100),
            unread_msg_num: None,
        }],
    };
    assert_eq!(c.import_group_member(&future).await.unwrap()[0].result, 2);
}

#[tokio::test]
async fn group_message_ordering_and_dedupe() {
    let h = sandbox().await;
    let c = client(&h);
    import_users(&c, &["owner"]).await;
    let created = now() - 10_000;
    c.import_group(&ImportGroupRequest {
        base: GroupBase {
            owner_account: Some("owner".into()),
            group_type: "Private".into(),
            group_id: Some("g".into()),
            name: "G".into(),
            ..Default::default()
        },
        create_time: Some(created),
        ..Default::default()
    })
    .await
    .unwrap();
    let item = |t: u64, r: u32| GroupMsgItem {
        from_account: "owner".into(),
        send_time: t,
        random: Some(r),
        msg_body: vec![MsgElement::text(&format!("t{t}"))],
        cloud_custom_data: None,
    };
    let req = |items: Vec<GroupMsgItem>| ImportGroupMsgRequest {
        group_id: "g".into(),
        recent_contact_flag: None,
        msg_list: items,
    };
    // Before creation, descending, future: each refused with 10004; the good ones get seqs 1, 2.
    let res = c
        .import_group_msg(&req(vec![
            item(created - 5, 1),
            item(created + 20, 2),
            item(created + 10, 3),
            item(created + 30, 4),
            item(now() + 60, 5),
        ]))
        .await
        .unwrap();
    assert_eq!(
        res.iter().map(|r| r.result).collect::<Vec<_>>(),
        vec![10004, 0, 10004, 0, 10004]
    );
    assert_eq!((res[1].msg_seq, res[3].msg_seq), (1, 2));
    // Not after the latest message in the group.
    let res = c
        .import_group_msg(&req(vec![item(created + 30, 6)]))
        .await
        .unwrap();
    assert_eq!(res[0].result, 10004);
    // A replay (same Random) within 5 minutes is dropped, not duplicated.
    let res = c
        .import_group_msg(&req(vec![
            item(created + 20, 2),
            item(created + 30, 4),
            item(created + 40, 7),
        ]))
        .await
        .unwrap();
    assert_eq!(
        res.iter()
            .map(|r| (r.result, r.msg_seq))
            .collect::<Vec<_>>(),
        vec![(0, 1), (0, 2), (0, 3)]
    );
    assert_eq!(h.state()["group_messages"], 3);
    // More than 7 per request is refused client-side.
    let eight: Vec<GroupMsgItem> = (0..8)
        .map(|i| item(created + 100 + i, 100 + i as u32))
        .collect();
    assert!(matches!(
        c.import_group_msg(&req(eight)).await,
        Err(TencentError::Invalid { .. })
    ));
    // > 8000 bytes.
    let mut big = item(created + 50, 9);
    big.msg_body = vec![MsgElement::text(&"x".repeat(8100))];
    assert_eq!(
        c.import_group_msg(&req(vec![big])).await.unwrap()[0].result,
        80002
    );
    // send_group_msg: same Random and content within 5 minutes → one message.
    let send = SendGroupMsgRequest {
        group_id: "g".into(),
        from_account: None,
        random: 5,
        msg_body: vec![MsgElement::text("x")],
        cloud_custom_data: None,
        online_only_flag: None,
        forbid_callback_control: vec![],
    };
    let a = c.send_group_msg(&send).await.unwrap();
    let b = c.send_group_msg(&send).await.unwrap();
    assert_eq!(a.msg_seq, b.msg_seq);
    h.clock().advance(301);
    let later = c.send_group_msg(&send).await.unwrap();
    assert_eq!(later.msg_seq, a.msg_seq + 1);
    let mut huge = send.clone();
    huge.random = 6;
    huge.msg_body = vec![MsgElement::text(&"x".repeat(8100))];
    assert_eq!(api_code(c.send_group_msg(&huge).await), 80002);
}

#[tokio::test]
async fn c2c_dedupe_and_validation() {
    let h = sandbox().await;
    let c = client(&h);
    import_users(&c, &["a", "b"]).await;
    let m = text_msg("a", "b", 7, 99, 1_600_000_000);
    c.importmsg(&m).await.unwrap();
    c.importmsg(&m).await.unwrap();
    // Same triple, other direction, other content: still the same message; first write wins.
    let mut swapped = text_msg("b", "a", 7, 99, 1_600_000_000);
    swapped.msg_body = vec![MsgElement::text("changed")];
    c.importmsg(&swapped).await.unwrap();
    assert_eq!(h.state()["c2c_messages"], 1);
    c.importmsg(&text_msg("a", "b", 8, 99, 1_600_000_000))
        .await
        .unwrap();
    assert_eq!(h.state()["c2c_messages"], 2);
    let roam = c
        .admin_getroammsg(&AdminGetRoamMsgRequest {
            operator_account: "a".into(),
            peer_account: "b".into(),
            max_cnt: 10,
            min_time: 0,
            max_time: 2_000_000_000,
            last_msg_key: None,
        })
        .await
        .unwrap();
    assert!(roam
        .msg_list
        .iter()
        .all(|m| m.msg_body[0].msg_content["Text"] == "hi"));

    let mut bad = text_msg("a", "b", 9, 1, 1_600_000_000);
    bad.sync_from_old_system = 3;
    assert_eq!(api_code(c.importmsg(&bad).await), 90030);
    let mut big = text_msg("a", "b", 9, 1, 1_600_000_000);
    big.msg_body = vec![MsgElement::text(&"x".repeat(9000))];
    assert_eq!(api_code(c.importmsg(&big).await), 93000);
    let mut flag = text_msg("a", "b", 9, 1, 1_600_000_000);
    flag.msg_body = vec![MsgElement {
        msg_type: "TIMFileElem".into(),
        msg_content: serde_json::json!({"Url": "https://x/f", "UUID": "u", "Download_Flag": 1}),
    }];
    assert_eq!(api_code(c.importmsg(&flag).await), 90010);
    // MsgBody not an array, and SyncFromOldSystem missing: raw JSON the typed client cannot send.
    let path = "/v4/openim/importmsg";
    let body = r#"{"SyncFromOldSystem":2,"From_Account":"a","To_Account":"b","MsgRandom":1,"MsgTimeStamp":1,"MsgBody":{"MsgType":"TIMTextElem"}}"#;
    assert_eq!(
        code(&raw(&h, Method::POST, path, &good_query(), body).await.1),
        90002
    );
    let body =
        r#"{"From_Account":"a","To_Account":"b","MsgRandom":1,"MsgTimeStamp":1,"MsgBody":[]}"#;
    assert_eq!(
        code(&raw(&h, Method::POST, path, &good_query(), body).await.1),
        90030
    );

    // sendmsg: same sender, seq, random and content within 120 s → one message.
    let send = SendMsgRequest {
        sync_other_machine: None,
        from_account: Some("a".into()),
        to_account: "b".into(),
        msg_life_time: Some(604_801),
        msg_seq: Some(1),
        msg_random: 2,
        forbid_callback_control: vec![],
        send_msg_control: vec![],
        msg_body: vec![MsgElement::text("x")],
        cloud_custom_data: None,
    };
    assert_eq!(api_code(c.sendmsg(&send).await), 90026);
    let send = SendMsgRequest {
        msg_life_time: None,
        ..send
    };
    let first = c.sendmsg(&send).await.unwrap();
    assert_eq!(c.sendmsg(&send).await.unwrap(), first);
    assert_eq!(h.state()["c2c_messages"], 3);
    h.clock().advance(121);
    c.sendmsg(&send).await.unwrap();
    assert_eq!(h.state()["c2c_messages"], 4);
}

async fn fault_run(seed: u64) -> Vec<i64> {
    let h = sandbox_with(|c| {
        c.fault_rate = 0.4;
        c.seed = seed;
    })
    .await;
    let c = client(&h);
    let mut codes = Vec::new();
    for _ in 0..30 {
        codes.push(match c.account_check(&["a".into()]).await {
            Ok(_) => 0,
            Err(e) => {
                assert_eq!(e.class(), ErrorClass::Retryable, "{e}");
                e.code().unwrap()
            }
        });
    }
    codes
}

#[tokio::test]
async fn fault_injection_is_reproducible() {
    let a = fault_run(7).await;
    assert_eq!(a, fault_run(7).await);
    assert_ne!(a, fault_run(8).await);
    let faults = a.iter().filter(|c| **c != 0).count();
    assert!((3..=27).contains(&faults), "{a:?}");
    assert!(
        a.iter().all(|c| [0, 70500, 10002, 90992].contains(c)),
        "{a:?}"
    );
}

#[tokio::test]
async fn latency_is_added() {
    let h = sandbox_with(|c| c.latency_ms = 150).await;
    let start = std::time::Instant::now();
    client(&h).account_check(&["a".into()]).await.unwrap();
    assert!(start.elapsed() >= std::time::Duration::from_millis(150));
}

#[tokio::test]
async fn secrets_stay_out_of_debug_and_answers() {
    let h = sandbox().await;
    let c = client(&h);
    let debug = format!("{c:?} {:?} {h:?}", config(&h));
    assert!(!debug.contains(KEY), "{debug}");
    // Error text from the sandbox never echoes the key.
    let mut cfg = config(&h);
    cfg.secret = SecretString::from("other-key".to_string());
    let e = TencentClient::new(cfg)
        .unwrap()
        .account_check(&["a".into()])
        .await
        .unwrap_err();
    assert!(!e.to_string().contains("other-key") && !format!("{e:?}").contains("other-key"));
    // http:// only for loopback.
    let mut cfg = config(&h);
    cfg.base_url = "http://console.tim.qq.com".into();
    assert!(matches!(
        TencentClient::new(cfg),
        Err(TencentError::Config(_))
    ));
}

#[tokio::test]
async fn state_file_survives_restart() {
    let dir =
        std::env::temp_dir().join(format!("imshift-tencent-{}-{}", std::process::id(), now()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("state.json");
    let h = sandbox_with(|c| c.state_file = Some(file.clone())).await;
    let c = client(&h);
    import_users(&c, &["a", "b"]).await;
    c.importmsg(&text_msg("a", "b", 1, 1, 1_600_000_000))
        .await
        .unwrap();
    h.shutdown().await;
    let h = sandbox_with(|c| c.state_file = Some(file.clone())).await;
    let c = client(&h);
    assert_eq!(h.state()["accounts"], 2);
    // The dedupe index is rebuilt from the file.
    c.importmsg(&text_msg("a", "b", 1, 1, 1_600_000_000))
        .await
        .unwrap();
    assert_eq!(h.state()["c2c_messages"], 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn retries_ride_out_injected_faults() {
    let h = sandbox_with(|c| {
        c.fault_rate = 0.5;
        c.seed = 11;
    })
    .await;
    let c = client(&h);
    let policy = RetryPolicy {
        max_retries: 20,
        min_delay: std::time::Duration::from_millis(1),
        max_delay: std::time::Duration::from_millis(5),
        rate_limit_min_delay: std::time::Duration::from_millis(5),
    };
    for i in 0..10 {
        let req = AccountImportRequest {
            user_id: format!("u{i}"),
            nick: None,
            face_url: None,
        };
        with_retry(policy, || c.account_import(&req)).await.unwrap();
    }
    let s = h.state();
    assert_eq!(s["accounts"], 10);
    assert!(
        s["apis"]["im_open_login_svc/account_import"]["rejected"]
            .as_u64()
            .unwrap()
            > 0
    );
    // Permanent errors are not retried.
    let before = h.state()["apis"]["group_open_http_svc/destroy_group"]["calls"].as_u64();
    assert_eq!(before, None);
    let mut attempts = 0;
    let e = with_retry(policy, || {
        attempts += 1;
        let c = &c;
        async move {
            // A fault may come first; the final answer must be 10010, asked only until then.
            c.destroy_group("missing").await
        }
    })
    .await
    .unwrap_err();
    assert_eq!(e.code(), Some(10010));
    let calls = h.state()["apis"]["group_open_http_svc/destroy_group"]["calls"]
        .as_u64()
        .unwrap();
    assert_eq!(calls, attempts);
}
