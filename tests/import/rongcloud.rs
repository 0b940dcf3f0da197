//! Imports into RongCloud, end to end over HTTP: the console moves a generated dump into the
//! RongCloud sandbox, which must then hold exactly its accounts, blacklists, groups (under
//! their old ids, the id map empty) and members (joined 1000 a call), friends only when the
//! app uses RongCloud's hosted friends, and no message at all: history is skipped in words.

use crate::common::*;
use crate::harness::{dump, get, launch, stage, wait_for, Migration};
use imshift::dumps::fixtures::Spec;
use imshift::providers::outbound::Policy;
use imshift::providers::rongcloud::sandbox::{self, Fault, Faults, SandboxConfig, SandboxHandle};
use imshift::providers::rongcloud::{RongcloudClient, RongcloudConfig};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::{BTreeMap, BTreeSet};

const KEY: &str = "uwd1c0sxdlx2";
const SECRET: &str = "rongcloud-import-secret-77a1";

async fn rongcloud(tweak: impl FnOnce(&mut SandboxConfig)) -> SandboxHandle {
    let mut c = SandboxConfig::new(KEY, SECRET);
    for l in c.limits.apis.values_mut() {
        l.qps = 5000;
    }
    tweak(&mut c);
    sandbox::spawn(c, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// A self-built → RongCloud migration whose target connection points at `sb`.
async fn migration(app: &TestApp, sb: &SandboxHandle, friends: &str) -> Migration {
    let owner = app.owner().await;
    let token = app.token(&owner).await;
    let r = app
        .with_token(Method::POST, "/api/v1/migrations", &token, Some(json!({
            "name": "into rongcloud", "strategy": "forced_upgrade", "source": "self_built", "target": "rongcloud"
        })))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let m = Migration { id, token };
    let r = app
        .with_token(
            Method::PUT,
            &m.path("/connections/target"),
            &m.token,
            Some(json!({ "fields": {
                "app_key": KEY, "data_centre": "custom", "base_url": sb.base_url(),
                "app_secret": SECRET, "friends": friends
            }})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    // The quotas the sandbox was given, so the test is not paced at 90/s.
    let limits: serde_json::Map<String, Value> = imshift::providers::rongcloud::LIMITS
        .iter()
        .map(|(a, _, _)| (a.to_string(), json!({"qps": 3000})))
        .collect();
    let r = app
        .with_token(
            Method::PUT,
            &m.path("/limits"),
            &m.token,
            Some(Value::Object(limits)),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    m
}

/// Groups larger than one `group/join` (1000), so members go in two calls each.
fn spec() -> Spec {
    Spec {
        accounts: 1_200,
        friends: 2,
        groups: 3,
        members: 1_100,
        messages: 600,
        seed: 23,
        ..Spec::default()
    }
}

/// What the dump says RongCloud must hold.
#[derive(Default)]
struct Expected {
    /// id → nick
    accounts: BTreeMap<String, Option<String>>,
    /// owner → blocked
    blocks: BTreeMap<String, BTreeSet<String>>,
    friends: usize,
    /// group → members (owner included)
    groups: BTreeMap<String, BTreeSet<String>>,
    messages: usize,
}

fn expected(bytes: &[u8]) -> Expected {
    let mut e = Expected::default();
    let s = |v: &Value| v.as_str().unwrap().to_string();
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let r: Value = serde_json::from_slice(line).unwrap();
        match r["kind"].as_str().unwrap() {
            "account" => {
                e.accounts
                    .insert(s(&r["id"]), r["nick"].as_str().map(str::to_string));
            }
            "block" => {
                e.blocks
                    .entry(s(&r["owner"]))
                    .or_default()
                    .insert(s(&r["blocked"]));
            }
            "friend" => e.friends += 1,
            "group" => {
                e.groups
                    .entry(s(&r["id"]))
                    .or_default()
                    .insert(s(&r["owner"]));
            }
            "member" => {
                e.groups
                    .entry(s(&r["group"]))
                    .or_default()
                    .insert(s(&r["account"]));
            }
            "message" => e.messages += 1,
            _ => {}
        }
    }
    e
}

/// A client of the sandbox, as the product makes one (plain http to 127.0.0.1 is allowed).
fn client(sb: &SandboxHandle) -> RongcloudClient {
    RongcloudClient::with_policy(
        RongcloudConfig::new(&sb.base_url(), KEY, SecretString::from(SECRET.to_string())),
        Policy::default(),
    )
    .unwrap()
}

/// RongCloud holds exactly what the dump says, read back through its own APIs.
async fn rongcloud_holds_exactly(sb: &SandboxHandle, e: &Expected, friends: usize) {
    let state = sb.state();
    assert_eq!(state["users"], e.accounts.len(), "{state:#}");
    assert_eq!(state["groups"], e.groups.len(), "{state:#}");
    assert_eq!(
        state["blacklist"],
        e.blocks.values().map(BTreeSet::len).sum::<usize>(),
        "{state:#}"
    );
    assert_eq!(state["friends"], friends, "{state:#}");
    assert_eq!(state["messages"], 0, "no history is sent as live messages");
    let c = client(sb);
    for (g, members) in &e.groups {
        let got: BTreeSet<String> = c.group_members(g).await.unwrap().into_iter().collect();
        assert_eq!(&got, members, "members of {g}");
    }
    for (owner, blocked) in e.blocks.iter().take(20) {
        let got: BTreeSet<String> = c.blacklist(owner).await.unwrap().into_iter().collect();
        assert_eq!(&got, blocked, "blacklist of {owner}");
    }
    for (id, nick) in e.accounts.iter().take(20) {
        let info = c.user_info(id).await.unwrap();
        assert_eq!(
            info["userName"].as_str(),
            Some(nick.as_deref().unwrap_or(id)),
            "{info}"
        );
    }
}

fn phase(p: &Value, name: &str) -> Value {
    p["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["phase"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no phase {name}: {p:#}"))
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_dump_lands_in_rongcloud_and_history_is_skipped_in_words(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let sb = rongcloud(|_| {}).await;
    let m = migration(&app, &sb, "app_server").await;
    let bytes = dump(&spec());
    let e = expected(&bytes);
    assert!(e.messages > 0 && !e.blocks.is_empty());
    stage(&app, &m, bytes.clone()).await;

    let pre = get(&app, &m, "/imports/preflight").await;
    assert_eq!(pre["blockers"], json!([]), "{pre:#}");
    assert_eq!(phase(&pre, "accounts")["api"], "user/getToken");
    assert_eq!(phase(&pre, "blocks")["api"], "user/blacklist/add");
    assert_eq!(phase(&pre, "groups")["api"], "group/create");
    let members = phase(&pre, "members");
    assert_eq!(members["api"], "group/join");
    assert_eq!(members["batch"], 1000);
    // Each group's 1100 member records (owner included) take two joins.
    assert_eq!(members["requests"], 2 * e.groups.len(), "{members:#}");
    for h in ["c2c_history", "group_history"] {
        let note = phase(&pre, h)["note"].as_str().unwrap().to_string();
        assert!(
            note.starts_with("RongCloud has no server API to import history"),
            "{note}"
        );
    }
    let friends = phase(&pre, "friends")["note"].as_str().unwrap().to_string();
    assert!(friends.contains("app server"), "{friends}");
    assert!(phase(&pre, "profiles")["note"].is_string());

    let run = launch(&app, &m).await;
    let done = wait_for(&app, &m, &run, &["done"], 300).await;
    assert_eq!(done["failed"], 0, "{done:#}");
    assert_eq!(done["pending"], 0, "{done:#}");
    for p in ["c2c_history", "group_history", "friends"] {
        assert_eq!(phase(&done, p)["state"], "skipped", "{done:#}");
    }
    rongcloud_holds_exactly(&sb, &e, 0).await;

    // Old ids are kept: nothing in the id map.
    let map = get(&app, &m, "/id-map?kind=group&limit=10").await;
    assert_eq!(map["total"], 0, "{map:#}");
    // Tokens were dropped: no result holds one, and each account says why.
    let (tokens, noted): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE sent::jsonb ? 'token'),
                count(*) FILTER (WHERE sent->>'note' LIKE '%token RongCloud answered was dropped%')
         FROM import_results WHERE phase = 'accounts'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(tokens, 0);
    assert_eq!(noted, e.accounts.len() as i64);
    // A group's result says what stays with the app server.
    let note: String = sqlx::query_scalar(
        "SELECT sent->>'note' FROM import_results WHERE phase = 'groups' LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(note.contains("stay with your app server"), "{note}");
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn hosted_friends_go_in_and_a_lost_group_answer_is_found_not_resent_blind(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    // Hosted friends on; the first three group/create calls are applied and their answers
    // lost (a cut connection, a 504 / 1050, a cut connection).
    let sb = rongcloud(|c| {
        c.entrust = true;
        c.faults = Faults {
            apis: vec!["group/create".into()],
            next: [
                Fault::LostAnswer,
                Fault::LostAnswerTimeout,
                Fault::LostAnswer,
            ]
            .into(),
            ..Faults::default()
        };
    })
    .await;
    let m = migration(&app, &sb, "hosted").await;
    let spec = Spec {
        accounts: 200,
        friends: 4,
        groups: 12,
        members: 10,
        messages: 300,
        seed: 5,
        ..Spec::default()
    };
    let bytes = dump(&spec);
    let e = expected(&bytes);
    stage(&app, &m, bytes).await;
    let pre = get(&app, &m, "/imports/preflight").await;
    assert_eq!(phase(&pre, "friends")["api"], "friend/add", "{pre:#}");
    let run = launch(&app, &m).await;
    let done = wait_for(&app, &m, &run, &["done"], 300).await;
    assert_eq!(done["failed"], 0, "{done:#}");
    assert_eq!(sb.state()["injected"], 3, "the faults happened");
    rongcloud_holds_exactly(&sb, &e, e.friends).await;
    let found: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM import_results WHERE phase = 'groups' AND sent->>'note' LIKE '%answer was lost%'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(found, 3, "each lost group was found with its owner");
}

/// RongCloud takes no history, so it goes into bundles for the new app: built through REST
/// after an import, an account's file holds exactly its one-to-one messages (both sides, each
/// from its side), a group's file its messages, stickers are kept aside with why and group
/// events are not carried.
#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn history_bundles_carry_each_accounts_conversations(pool: PgPool) {
    use imshift::providers::rongcloud::history_bundles::{file_name, message_uid, FileKind};
    use sha2::Digest;

    let app = TestApp::spawn(pool).await;
    let sb = rongcloud(|_| {}).await;
    let m = migration(&app, &sb, "app_server").await;
    let spec = Spec {
        accounts: 40,
        friends: 2,
        groups: 3,
        members: 8,
        messages: 500,
        seed: 31,
        ..Spec::default()
    };
    let bytes = dump(&spec);
    stage(&app, &m, bytes.clone()).await;
    let pre = get(&app, &m, "/imports/preflight").await;
    assert_eq!(
        pre["hand_over"]["label"], "RongCloud history bundles",
        "{pre:#}"
    );
    assert_eq!(
        pre["hand_over"]["phases"],
        json!(["c2c_history", "group_history"])
    );
    let note = phase(&pre, "c2c_history")["note"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        note.contains("build the history bundles on the Import tab"),
        "{note}"
    );
    let run = launch(&app, &m).await;
    let done = wait_for(&app, &m, &run, &["done"], 300).await;
    assert_eq!(done["failed"], 0, "{done:#}");
    assert_eq!(sb.state()["messages"], 0, "nothing is sent to RongCloud");

    // What the dump says the bundles hold: per file, (UID, target, direction).
    type Lines = BTreeSet<(String, String, Option<u64>)>;
    let mut want: BTreeMap<String, Lines> = BTreeMap::new();
    let (mut messages, mut faces, mut events) = (0u64, 0u64, 0u64);
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let r: Value = serde_json::from_slice(line).unwrap();
        if r["kind"] == "group_event" {
            events += 1;
        }
        if r["kind"] != "message" {
            continue;
        }
        if r["body"]["type"] == "face" {
            faces += 1;
            continue;
        }
        messages += 1;
        let (from, to) = (r["from"].as_str().unwrap(), r["to"].as_str().unwrap());
        let conv = r["conv"].as_str().unwrap();
        let uid = message_uid(
            conv,
            r["id"].as_str().unwrap(),
            from,
            to,
            r["sent_at"].as_i64().unwrap(),
        );
        if conv == "group" {
            want.entry(file_name(FileKind::Group, to))
                .or_default()
                .insert((uid, to.into(), None));
        } else {
            want.entry(file_name(FileKind::User, from))
                .or_default()
                .insert((uid.clone(), to.into(), Some(1)));
            if from != to {
                want.entry(file_name(FileKind::User, to))
                    .or_default()
                    .insert((uid, from.into(), Some(2)));
            }
        }
    }
    assert!(
        faces > 0 && events > 0,
        "the dump has stickers and group events"
    );

    let none = get(&app, &m, "/hand-over").await;
    assert_eq!(none["state"], "none");
    let r = crate::harness::post(&app, &m, "/hand-over").await;
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "{}",
        r.text().await.unwrap()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let b = loop {
        let b = get(&app, &m, "/hand-over").await;
        if b["state"] != "building" {
            break b;
        }
        assert!(std::time::Instant::now() < deadline, "{b:#}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(b["state"], "ready", "{b:#}");
    assert_eq!(b["written"], messages, "{b:#}");
    assert_eq!(b["kept_aside"], faces, "{b:#}");
    let manifest = &b["manifest"];
    assert_eq!(manifest["server_import"], false);
    assert_eq!(manifest["totals"]["messages"], messages);
    assert_eq!(manifest["not_carried"]["group_event"], events);
    let files = manifest["files"].as_array().unwrap();
    let names: BTreeSet<&str> = files.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, want.keys().map(String::as_str).collect());

    // The busiest account's bundle and a group's, downloaded as the app server would fetch
    // them.
    let busiest = want
        .iter()
        .filter(|(n, _)| n.starts_with("user"))
        .max_by_key(|(_, l)| l.len())
        .map(|(n, _)| n.clone())
        .unwrap();
    let a_group = want
        .keys()
        .find(|n| n.starts_with("group"))
        .unwrap()
        .clone();
    let build = b["id"].as_str().unwrap();
    for name in [&busiest, &a_group] {
        let entry = files.iter().find(|f| f["name"] == name.as_str()).unwrap();
        let r = app
            .with_token(
                Method::GET,
                &m.path(&format!("/hand-over/{build}/{name}")),
                &m.token,
                None,
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let body = r.bytes().await.unwrap();
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&body)),
            entry["sha256"].as_str().unwrap()
        );
        let mut got = BTreeSet::new();
        let mut last = 0;
        for l in std::str::from_utf8(&body).unwrap().lines() {
            let l: Value = serde_json::from_str(l).unwrap();
            let t = l["sentTime"].as_i64().unwrap();
            assert!(t >= last, "{name} in time order");
            last = t;
            assert!(l["objectName"].as_str().unwrap().contains(':'), "{l}");
            assert!(l["content"].is_object(), "{l}");
            got.insert((
                l["messageUId"].as_str().unwrap().to_string(),
                l["targetId"].as_str().unwrap().to_string(),
                l["messageDirection"].as_u64(),
            ));
        }
        assert_eq!(&got, &want[name.as_str()], "{name}");
        assert_eq!(entry["lines"], got.len());
    }
    let r = app
        .with_token(
            Method::GET,
            &m.path(&format!("/hand-over/{build}/kept_aside.jsonl")),
            &m.token,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let aside = r.text().await.unwrap();
    assert_eq!(aside.lines().count() as u64, faces);
    assert!(
        aside.contains("no built-in message type for a face"),
        "{aside}"
    );
    assert!(app
        .audit_actions()
        .await
        .contains(&"hand_over.downloaded".to_string()));
}
