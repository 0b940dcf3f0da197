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
