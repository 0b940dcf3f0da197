//! What the sandbox must hold after importing a dump, checked piece by piece.

use imshift::providers::tencent::convert::{msg_body, CanonicalBody, CanonicalMessage};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

fn lines(dump: &[u8]) -> Vec<Value> {
    dump.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_string()
}

fn body_of(m: &Value) -> String {
    let b: CanonicalBody = serde_json::from_value(m["body"].clone()).unwrap();
    // Through Value, so keys come in the same (sorted) order as the sandbox's.
    serde_json::to_value(msg_body(&b)).unwrap().to_string()
}

/// Compares the sandbox's export with the dump: every record exactly once, contents and
/// times as sent, group history in order. Panics with what differs.
pub fn sandbox_holds_exactly(dump: &[u8], export: &Value) {
    let recs = lines(dump);
    let of = |kind: &'static str| recs.iter().filter(move |r| r["kind"] == kind);

    // Accounts, with their nick and the profile tags set from gender.
    let accounts = export["accounts"].as_object().unwrap();
    let want: BTreeSet<String> = of("account").map(|a| s(a, "id")).collect();
    let have: BTreeSet<String> = accounts.keys().cloned().collect();
    assert_eq!(have, want, "accounts");
    for a in of("account") {
        let got = &accounts[&s(a, "id")];
        assert_eq!(got["nick"], a["nick"], "nick of {}", a["id"]);
        if let Some(g) = a["gender"].as_str() {
            let tag = &got["profile"]["Tag_Profile_IM_Gender"];
            assert!(
                tag.as_str().unwrap().to_lowercase().ends_with(g),
                "gender of {}: {tag}",
                a["id"]
            );
        }
    }

    // Friends and blocks: the same edges.
    let edges = |field: &str, kind: &'static str, other: &str| {
        let want: BTreeSet<(String, String)> =
            of(kind).map(|f| (s(f, "owner"), s(f, other))).collect();
        let have: BTreeSet<(String, String)> = export[field]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(o, set)| {
                set.as_array()
                    .unwrap()
                    .iter()
                    .map(move |t| (o.clone(), t.as_str().unwrap().to_string()))
            })
            .collect();
        assert_eq!(have.len(), want.len(), "{kind} count");
        assert_eq!(have, want, "{kind}");
    };
    edges("friends", "friend", "friend");
    edges("blocks", "block", "blocked");

    // Groups, members and roles.
    let groups = export["groups"].as_object().unwrap();
    let want: BTreeSet<String> = of("group").map(|g| s(g, "id")).collect();
    assert_eq!(
        groups.keys().cloned().collect::<BTreeSet<_>>(),
        want,
        "groups"
    );
    for g in of("group") {
        let got = &groups[&s(g, "id")];
        assert_eq!(got["owner"], g["owner"]);
        assert_eq!(got["name"], g["name"]);
        let ty = match g["type"].as_str().unwrap() {
            "private" => "Private",
            "public" => "Public",
            _ => "ChatRoom",
        };
        assert_eq!(got["group_type"], ty);
    }
    let mut members: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for m in of("member") {
        let role = match m["role"].as_str().unwrap_or("member") {
            "owner" => "Owner",
            "admin" => "Admin",
            _ => "Member",
        };
        members
            .entry(s(m, "group"))
            .or_default()
            .insert(s(m, "account"), role.into());
    }
    for (g, want) in &members {
        let have: BTreeMap<String, String> = groups[g]["members"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(a, m)| (a.clone(), m["role"].as_str().unwrap().to_string()))
            .collect();
        assert_eq!(&have, want, "members of {g}");
    }

    // One-to-one history: every message once, with its time (seconds), its random and body.
    let mut want: Vec<(String, String, u64, u64, String)> = of("message")
        .filter(|m| m["conv"] == "c2c")
        .map(|m| {
            let c: CanonicalMessage = serde_json::from_value(m.clone()).unwrap();
            let id = c.identity();
            (
                s(m, "from"),
                s(m, "to"),
                (c.sent_at / 1000) as u64,
                id.random() as u64,
                body_of(m),
            )
        })
        .collect();
    let mut have: Vec<(String, String, u64, u64, String)> = export["c2c"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|msgs| msgs.as_array().unwrap().clone())
        .map(|m| {
            (
                s(&m, "from"),
                s(&m, "to"),
                m["time"].as_u64().unwrap(),
                m["random"].as_u64().unwrap(),
                serde_json::to_string(&m["body"]).unwrap(),
            )
        })
        .collect();
    want.sort();
    have.sort();
    assert_eq!(
        have.len(),
        want.len(),
        "one-to-one messages: none lost, none twice"
    );
    if let Some((h, w)) = have.iter().zip(&want).find(|(h, w)| h != w) {
        panic!("one-to-one messages differ:\n have {h:?}\n want {w:?}");
    }

    // Group history: per group, the same bodies in the same order, at strictly increasing
    // times no earlier than each message's own second.
    let mut by_group: BTreeMap<String, Vec<(i64, u64, String)>> = BTreeMap::new();
    for (ord, m) in recs
        .iter()
        .enumerate()
        .filter(|(_, m)| m["kind"] == "message" && m["conv"] == "group")
    {
        by_group.entry(s(m, "to")).or_default().push((
            m["sent_at"].as_i64().unwrap(),
            ord as u64,
            body_of(m),
        ));
    }
    let mut total = 0;
    for (g, mut want) in by_group {
        want.sort();
        let have = groups[&g]["messages"].as_array().unwrap();
        assert_eq!(
            have.len(),
            want.len(),
            "messages of group {g}: none lost, none twice"
        );
        let mut last = 0u64;
        for (h, (sent_at, _, body)) in have.iter().zip(&want) {
            let t = h["time"].as_u64().unwrap();
            assert!(t > last, "group {g}: times strictly increase");
            assert!(
                t >= (*sent_at / 1000) as u64,
                "group {g}: no message moves back in time"
            );
            assert!(
                t <= (*sent_at / 1000) as u64 + want.len() as u64,
                "group {g}: moved by more than needed"
            );
            assert_eq!(
                &serde_json::to_string(&h["body"]).unwrap(),
                body,
                "group {g}: same order"
            );
            last = t;
        }
        let seqs: Vec<u64> = have.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
        assert_eq!(
            seqs,
            (1..=have.len() as u64).collect::<Vec<_>>(),
            "group {g}: seq from 1"
        );
        total += have.len();
        // Unread counts were set after the history (importing it zeroes them).
        for m in of("member").filter(|m| m["group"] == g.as_str()) {
            let unread = m["unread"].as_u64().unwrap_or(0);
            let ty = &groups[&g]["group_type"];
            if unread > 0 && ty != "ChatRoom" {
                let got = groups[&g]["members"][s(m, "account")]["unread"]
                    .as_u64()
                    .unwrap();
                assert_eq!(
                    got,
                    unread.min(have.len() as u64),
                    "unread of {} in {g}",
                    m["account"]
                );
            }
        }
    }
    assert!(total > 0, "the dump has group history");
}
