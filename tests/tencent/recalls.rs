//! What sync uses to apply the old system's recalls and friend changes, against the sandbox:
//! friend_add and friend_delete both ways, admin_msgwithdraw by the MsgKey a message imported
//! from a canonical one has, group_msg_recall by MsgSeq, and the read-back marking what was
//! recalled (MsgFlagBits 8, IsPlaceMsg 2), with Tencent's refusals for what is not there.

use crate::common::*;
use imshift::providers::tencent::client::{
    AddFriendItem, AdminGetRoamMsgRequest, CheckType, CreateGroupRequest, CreateMember,
    FriendAddRequest, FriendDeleteRequest, GroupBase, GroupMsgGetSimpleRequest,
    GroupMsgRecallRequest, MsgElement, MsgSeqItem, MsgWithdrawRequest, SendGroupMsgRequest,
    RELATION_BOTH_WAY, RELATION_NONE,
};
use imshift::providers::tencent::convert::{self, CanonicalMessage};
use imshift::providers::tencent::sync::c2c_msg_key;
use serde_json::json;

#[tokio::test]
async fn friends_are_added_and_deleted_both_ways_and_deleting_a_stranger_answers_31704() {
    let h = sandbox().await;
    let c = client(&h);
    import_users(&c, &["a", "b"]).await;
    let add = FriendAddRequest {
        from_account: "a".into(),
        add_friend_item: vec![AddFriendItem {
            to_account: "b".into(),
            add_source: "AddSource_Type_imshift".into(),
            remark: None,
            group_name: None,
            add_wording: None,
        }],
        add_type: Some("Add_Type_Both".into()),
        force_add_flags: Some(1),
    };
    let r = c.friend_add(&add).await.unwrap();
    assert_eq!(r.result_item[0].result_code, 0, "{r:?}");
    let rel = |r: imshift::providers::tencent::client::FriendCheckResponse| {
        r.info_item[0].relation.clone()
    };
    let both = c
        .friend_check("a", &["b".into()], CheckType::Both)
        .await
        .unwrap();
    assert_eq!(rel(both), RELATION_BOTH_WAY);

    let delete = FriendDeleteRequest {
        from_account: "a".into(),
        to_account: vec!["b".into()],
        delete_type: Some("Delete_Type_Both".into()),
    };
    let r = c.friend_delete(&delete).await.unwrap();
    assert_eq!(r.result_item[0].result_code, 0, "{r:?}");
    let none = c
        .friend_check("b", &["a".into()], CheckType::Both)
        .await
        .unwrap();
    assert_eq!(rel(none), RELATION_NONE, "gone from both lists");
    let again = c.friend_delete(&delete).await.unwrap();
    assert_eq!(again.result_item[0].result_code, 31704);
    assert_eq!(again.fail_account, vec!["b".to_string()]);
    assert_eq!(h.state()["friends"], 0);
}

#[tokio::test]
async fn a_one_to_one_message_is_recalled_by_the_msgkey_its_identity_gives() {
    let h = sandbox().await;
    let c = client(&h);
    import_users(&c, &["alice", "bob"]).await;
    let msg: CanonicalMessage = serde_json::from_value(json!({
        "id": "old-1", "conv": "c2c", "from": "alice", "to": "bob",
        "sent_at": 1_700_000_000_123i64, "body": {"type": "text", "text": "oops"}
    }))
    .unwrap();
    c.importmsg(&convert::import_c2c(&msg, true).unwrap())
        .await
        .unwrap();
    let key = c2c_msg_key(&msg.identity()).unwrap();
    let req = AdminGetRoamMsgRequest {
        operator_account: "bob".into(),
        peer_account: "alice".into(),
        max_cnt: 100,
        min_time: 0,
        max_time: u32::MAX as u64,
        last_msg_key: None,
    };
    let roam = || c.admin_getroammsg(&req);
    let before = roam().await.unwrap();
    assert_eq!(
        before.msg_list[0].msg_key, key,
        "the same key Tencent keeps"
    );
    assert_eq!(before.msg_list[0].msg_flag_bits, 0);

    let withdraw = |key: &str| MsgWithdrawRequest {
        from_account: "alice".into(),
        to_account: "bob".into(),
        msg_key: key.into(),
    };
    c.admin_msgwithdraw(&withdraw(&key)).await.unwrap();
    let after = roam().await.unwrap();
    assert_eq!(after.msg_list.len(), 1);
    assert_eq!(after.msg_list[0].msg_flag_bits, 8, "read back as recalled");

    let code = |r: Result<(), imshift::providers::tencent::TencentError>| r.unwrap_err().code();
    assert_eq!(
        code(c.admin_msgwithdraw(&withdraw(&key)).await),
        Some(20023)
    );
    assert_eq!(
        code(c.admin_msgwithdraw(&withdraw("1_2_3")).await),
        Some(20022),
        "no such message"
    );
    assert_eq!(
        code(c.admin_msgwithdraw(&withdraw("not-a-key")).await),
        Some(90054)
    );
}

#[tokio::test]
async fn a_group_message_is_recalled_by_its_seq_and_an_unknown_seq_answers_10030() {
    let h = sandbox().await;
    let c = client(&h);
    import_users(&c, &["alice", "bob"]).await;
    let gid = c
        .create_group(&CreateGroupRequest {
            base: GroupBase {
                owner_account: Some("alice".into()),
                group_type: "Private".into(),
                group_id: Some("g1".into()),
                name: "Team".into(),
                ..Default::default()
            },
            member_list: vec![CreateMember {
                member_account: "bob".into(),
                role: None,
            }],
        })
        .await
        .unwrap();
    let sent = c
        .send_group_msg(&SendGroupMsgRequest {
            group_id: gid.clone(),
            from_account: Some("alice".into()),
            random: 7,
            msg_body: vec![MsgElement::text("oops")],
            cloud_custom_data: None,
            online_only_flag: None,
            forbid_callback_control: vec![],
        })
        .await
        .unwrap();
    let recall = |seqs: &[u64]| GroupMsgRecallRequest {
        group_id: gid.clone(),
        msg_seq_list: seqs.iter().map(|s| MsgSeqItem { msg_seq: *s }).collect(),
    };
    let r = c
        .group_msg_recall(&recall(&[sent.msg_seq, 999]))
        .await
        .unwrap();
    let ret = |seq: u64| {
        r.recall_ret_list
            .iter()
            .find(|x| x.msg_seq == seq)
            .unwrap()
            .ret_code
    };
    assert_eq!(ret(sent.msg_seq), 0);
    assert_eq!(ret(999), 10030);
    let history = c
        .group_msg_get_simple(&GroupMsgGetSimpleRequest {
            group_id: gid.clone(),
            req_msg_number: 20,
            req_msg_seq: None,
        })
        .await
        .unwrap();
    assert_eq!(history.rsp_msg_list.len(), 1);
    assert_eq!(
        history.rsp_msg_list[0].is_place_msg, 2,
        "read back as recalled"
    );
    // More than 10 seqs in one request is refused before it is sent.
    let eleven: Vec<u64> = (1..=11).collect();
    assert!(c.group_msg_recall(&recall(&eleven)).await.is_err());
}
