//! Imports into NetEase Yunxin, end to end over HTTP: the console moves a generated dump into
//! the NetEase sandbox, which must then hold exactly its accounts, friendships, teams (one per
//! old group, found again after a lost answer instead of made twice) and members, with every
//! team id in the id map; history is left for NetEase's staff, and the run says so.

use crate::common::*;
use crate::harness::{dump, get, launch, stage, wait_for, Migration};
use imshift::dumps::fixtures::Spec;
use imshift::providers::netease::sandbox::{self, Fault, Faults, SandboxConfig, SandboxHandle};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::{BTreeMap, BTreeSet};

const KEY: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const SECRET: &str = "netease-import-secret-5d1f";

pub async fn netease(tweak: impl FnOnce(&mut SandboxConfig)) -> SandboxHandle {
    let mut c = SandboxConfig::new(KEY, SECRET);
    for l in c.limits.apis.values_mut() {
        l.qps = 5000;
    }
    tweak(&mut c);
    sandbox::spawn(c, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// A self-built → NetEase migration whose target connection points at `sb`.
pub async fn migration(app: &TestApp, sb: &SandboxHandle) -> Migration {
    let owner = app.owner().await;
    let token = app.token(&owner).await;
    let r = app
        .with_token(Method::POST, "/api/v1/migrations", &token, Some(json!({
            "name": "into netease", "strategy": "forced_upgrade", "source": "self_built", "target": "netease"
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
                "app_secret": SECRET
            }})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    // The quotas the sandbox was given, so the test is not paced at 100/s.
    let limits: serde_json::Map<String, Value> = imshift::providers::netease::LIMITS
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

pub fn spec() -> Spec {
    Spec {
        accounts: 300,
        friends: 4,
        groups: 25,
        members: 12,
        messages: 2_000,
        seed: 11,
        ..Spec::default()
    }
}

/// What the dump says NetEase must hold: accounts, unordered friend pairs, and per old group
/// its owner, members (owner included) and managers.
pub struct Expected {
    accounts: BTreeSet<String>,
    friends: BTreeSet<(String, String)>,
    groups: BTreeMap<String, (String, BTreeSet<String>, BTreeSet<String>)>,
}

pub fn expected(bytes: &[u8]) -> Expected {
    let mut e = Expected {
        accounts: BTreeSet::new(),
        friends: BTreeSet::new(),
        groups: BTreeMap::new(),
    };
    let lower = |v: &Value| v.as_str().unwrap().to_lowercase();
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let r: Value = serde_json::from_slice(line).unwrap();
        match r["kind"].as_str().unwrap() {
            "account" => {
                e.accounts.insert(lower(&r["id"]));
            }
            "friend" => {
                let (a, b) = (lower(&r["owner"]), lower(&r["friend"]));
                e.friends.insert(if a < b { (a, b) } else { (b, a) });
            }
            "group" => {
                let g = e
                    .groups
                    .entry(r["id"].as_str().unwrap().into())
                    .or_default();
                g.0 = lower(&r["owner"]);
                g.1.insert(lower(&r["owner"]));
            }
            "member" => {
                let g = e
                    .groups
                    .entry(r["group"].as_str().unwrap().into())
                    .or_default();
                g.1.insert(lower(&r["account"]));
                if r["role"] == "admin" {
                    g.2.insert(lower(&r["account"]));
                }
            }
            _ => {}
        }
    }
    e
}

/// NetEase holds exactly what the dump says, each old group as one team whose id the map
/// gives.
pub async fn netease_holds_exactly(app: &TestApp, m: &Migration, sb: &SandboxHandle, e: &Expected) {
    let data = sb.export();
    let accounts: BTreeSet<String> = data["accounts"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(accounts, e.accounts);
    let mut friends = BTreeSet::new();
    for (a, list) in data["friends"].as_object().unwrap() {
        for b in list.as_object().unwrap().keys() {
            friends.insert(if a < b {
                (a.clone(), b.clone())
            } else {
                (b.clone(), a.clone())
            });
        }
    }
    assert_eq!(friends, e.friends);

    let map = get(app, m, "/id-map?kind=group&limit=1000").await;
    assert_eq!(map["total"], e.groups.len(), "{map:#}");
    let tids: BTreeMap<String, String> = map["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["old_id"].as_str().unwrap().into(),
                x["new_id"].as_str().unwrap().into(),
            )
        })
        .collect();
    let teams = sb.teams();
    let teams = teams.as_array().unwrap();
    assert_eq!(teams.len(), e.groups.len(), "one team per old group");
    for (old, (owner, members, managers)) in &e.groups {
        let tid = &tids[old];
        let t = teams.iter().find(|t| &t["tid"] == tid).unwrap();
        let custom: Value = serde_json::from_str(t["custom"].as_str().unwrap()).unwrap();
        assert_eq!(custom["imshift_source_group"], old.as_str());
        assert_eq!(&t["owner"], owner);
        let got: BTreeSet<String> = t["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().into())
            .collect();
        assert_eq!(&got, members, "members of {old} (team {tid})");
        let got: BTreeSet<String> = t["managers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().into())
            .collect();
        assert_eq!(&got, managers, "managers of {old}");
    }
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_dump_lands_in_netease_with_every_team_in_the_id_map(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let sb = netease(|_| {}).await;
    let m = migration(&app, &sb).await;
    let bytes = dump(&spec());
    stage(&app, &m, bytes.clone()).await;

    let pre = get(&app, &m, "/imports/preflight").await;
    assert_eq!(pre["blockers"], json!([]), "{pre:#}");
    let phase = |p: &Value, name: &str| {
        p["phases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["phase"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(phase(&pre, "accounts")["api"], "user/create");
    assert_eq!(phase(&pre, "groups")["api"], "team/create");
    assert!(
        phase(&pre, "c2c_history")["note"]
            .as_str()
            .unwrap()
            .contains("migration files"),
        "{pre:#}"
    );

    // The history goes to NetEase's staff, apart from what its API takes.
    let (mut by_api, mut files) = (0, 0);
    for p in pre["phases"].as_array().unwrap() {
        let n = p["records"].as_i64().unwrap();
        match p["phase"].as_str().unwrap() {
            "c2c_history" | "group_history" | "group_events" => files += n,
            _ if p["note"].is_null() => by_api += n,
            _ => {}
        }
    }
    assert!(files > 0 && by_api > 0, "{pre:#}");
    assert_eq!(pre["by_api"], by_api, "{pre:#}");
    assert_eq!(pre["hand_over"]["records"], files, "{pre:#}");
    assert_eq!(pre["hand_over"]["label"], "NetEase history files");
    // Messages linking to the old system's files are counted and the team is told they travel
    // as links.
    let media = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .filter(|r| {
            r["kind"] == "message"
                && ["image", "audio", "video", "file"]
                    .contains(&r["body"]["type"].as_str().unwrap_or(""))
        })
        .count() as i64;
    assert!(media > 0, "the dump has media messages");
    assert_eq!(pre["media_links"], media, "{pre:#}");
    assert!(pre["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("sent as links, not copied")));

    let run = launch(&app, &m).await;
    let done = wait_for(&app, &m, &run, &["done"], 300).await;
    assert_eq!(done["failed"], 0, "{done:#}");
    assert_eq!(
        done["hand_over"]["records"], files,
        "the finished run says the same: {done:#}"
    );
    assert_eq!(done["pending"], 0);
    let history = done["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == "c2c_history")
        .unwrap()
        .clone();
    assert_eq!(history["state"], "skipped", "{history:#}");
    netease_holds_exactly(&app, &m, &sb, &expected(&bytes)).await;
    assert_eq!(
        sb.state()["messages"],
        0,
        "no history is sent as live messages"
    );

    // The map is searchable and exported.
    let (old, tid) = {
        let map = get(&app, &m, "/id-map?kind=group&limit=1").await;
        let e = &map["entries"][0];
        (
            e["old_id"].as_str().unwrap().to_string(),
            e["new_id"].as_str().unwrap().to_string(),
        )
    };
    let found = get(&app, &m, &format!("/id-map?q={tid}")).await;
    assert!(found["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["old_id"] == old.as_str()));
    let r = app
        .with_token(
            Method::GET,
            &m.path("/id-map.csv?kind=group"),
            &m.token,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let csv = r.text().await.unwrap();
    assert!(csv.starts_with("kind,old_id,new_id,run_id,at\n"));
    assert_eq!(csv.lines().count(), 1 + spec().groups as usize);
    assert!(csv.contains(&format!("group,{old},{tid},")));

    hand_over_carries_the_history(&app, &m, &bytes, &tids_of(&app, &m).await).await;
    let pulled = increments_are_pulled_once_each(&app, &m, &bytes).await;
    neteases_importer_pulls_it_all(&app, &m, &sb, pulled).await;
}

/// The sandbox pulls the interface as NetEase's importer would (from the start, page by page,
/// passing back each `next`, with the importer's token) and takes every line, once.
async fn neteases_importer_pulls_it_all(
    app: &TestApp,
    m: &Migration,
    sb: &SandboxHandle,
    expected: usize,
) {
    let r: Value = reqwest::Client::new()
        .post(format!("{}/_sandbox/pull", sb.root_url()))
        .json(&json!({
            "url": format!("{}{}", app.base, m.path("/hand-over/increments")),
            "token": m.token, "cursor": "0:-1", "limit": 250,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["lines"], expected, "{r}");
    assert!(r["pages"].as_u64().unwrap() > 2, "{r}");
    let lines: Vec<Value> = reqwest::get(format!("{}/_sandbox/pulled", sb.root_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let distinct: BTreeSet<String> = lines.iter().map(|l| l.to_string()).collect();
    assert_eq!(distinct.len(), expected, "each line once");
    assert_eq!(sb.state()["pulled"], expected);
}

/// NetEase's importer pulls the history as it would, page by page to the end, gets every
/// record once, then only what is new.
async fn increments_are_pulled_once_each(app: &TestApp, m: &Migration, bytes: &[u8]) -> usize {
    let (mut expected, mut faces) = (0usize, 0usize);
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let r: Value = serde_json::from_slice(line).unwrap();
        if r["kind"] == "message" && r["body"]["type"] == "face" {
            faces += 1;
        } else if r["kind"] == "message" || r["kind"] == "group_event" {
            expected += 1;
        }
    }
    let mut seen = BTreeSet::new();
    let (mut lines, mut aside, mut pages) = (0, 0, 0);
    let mut cursor = String::new();
    loop {
        let page = get(
            app,
            m,
            &format!("/hand-over/increments?limit=300&cursor={cursor}"),
        )
        .await;
        assert_eq!(page["code"], 200);
        pages += 1;
        for l in page["data"].as_array().unwrap() {
            lines += 1;
            let recs = imshift::providers::netease::dump::convert_line(&l.to_string()).unwrap();
            let key = (
                recs[0]["kind"].to_string(),
                recs[0]["id"].to_string(),
                recs[0]["sent_at"].to_string(),
                recs[0]["at"].to_string(),
            );
            assert!(seen.insert(key), "a line twice: {l}");
        }
        aside += page["kept_aside"].as_array().unwrap().len();
        if page["more"] == false {
            break;
        }
        cursor = page["next"].as_str().unwrap().to_string();
    }
    assert_eq!((lines, aside), (expected, faces));
    assert!(pages > 2, "paged: {pages}");
    // Asked again with no cursor: nothing is new.
    let again = get(app, m, "/hand-over/increments").await;
    assert_eq!(again["data"], json!([]), "{again:#}");
    // A delta dump uploaded later: the next pull answers exactly it.
    let delta = [
        json!({"kind":"message","id":"late-1","conv":"c2c","from":"u0000001","to":"u0000002","sent_at":1_790_000_000_000i64,"body":{"type":"text","text":"after the cut"}}),
        json!({"kind":"message","id":"late-2","conv":"c2c","from":"u0000002","to":"u0000001","sent_at":1_790_000_001_000i64,"body":{"type":"text","text":"and again"}}),
    ];
    let body: String = delta.iter().map(|v| format!("{v}\n")).collect();
    stage(app, m, body.into_bytes()).await;
    let new = get(app, m, "/hand-over/increments").await;
    let data = new["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{new:#}");
    assert_eq!(data[0]["data"]["body"], "after the cut");
    assert_eq!(data[0]["type"], 0);
    assert!(app
        .audit_actions()
        .await
        .contains(&"hand_over.pulled".to_string()));
    lines + data.len()
}

async fn tids_of(app: &TestApp, m: &Migration) -> BTreeMap<String, String> {
    get(app, m, "/id-map?kind=group&limit=1000").await["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["old_id"].as_str().unwrap().into(),
                x["new_id"].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// The history NetEase's staff import: built from the staged records, every line read back by
/// imshift's own NetEase reader, each message once, group lines under their team id.
async fn hand_over_carries_the_history(
    app: &TestApp,
    m: &Migration,
    bytes: &[u8],
    tids: &BTreeMap<String, String>,
) {
    let none = get(app, m, "/hand-over").await;
    assert_eq!(none["state"], "none");
    assert_eq!(none["label"], "NetEase history files");
    let r = app
        .with_token(Method::POST, &m.path("/hand-over"), &m.token, None)
        .await;
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "{}",
        r.text().await.unwrap()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let b = loop {
        let b = get(app, m, "/hand-over").await;
        if b["state"] != "building" {
            break b;
        }
        assert!(std::time::Instant::now() < deadline, "{b:#}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(b["state"], "ready", "{b:#}");
    let mut messages: BTreeSet<(String, String)> = BTreeSet::new();
    // NetEase's line format has no sticker type: those messages are kept aside, with why.
    let (mut expected, mut faces) = (0, 0);
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let r: Value = serde_json::from_slice(line).unwrap();
        if r["kind"] == "message" && r["body"]["type"] == "face" {
            faces += 1;
        } else if r["kind"] == "message" || r["kind"] == "group_event" {
            expected += 1;
        }
    }
    assert!(faces > 0, "the generated dump has stickers");
    assert_eq!(b["written"], expected, "{b:#}");
    assert_eq!(b["kept_aside"], faces, "{b:#}");
    let build = b["id"].as_str().unwrap();
    let files = b["manifest"]["files"].as_array().unwrap().clone();
    assert!(!files.is_empty());
    let mut lines = 0;
    for f in &files {
        let name = f["name"].as_str().unwrap();
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
        use sha2::Digest;
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&body)),
            f["sha256"].as_str().unwrap()
        );
        for (n, line) in std::str::from_utf8(&body).unwrap().lines().enumerate() {
            lines += 1;
            let recs = imshift::providers::netease::dump::convert_line(line)
                .unwrap_or_else(|e| panic!("{name}:{}: {e:?}", n + 1));
            for r in recs {
                if r["kind"] == "message" && r["conv"] == "group" {
                    let to = r["to"].as_str().unwrap();
                    assert!(
                        tids.values().any(|t| t == to),
                        "{name}:{}: group {to} is a team id",
                        n + 1
                    );
                }
                if r["kind"] == "message" {
                    assert!(
                        messages.insert((
                            r["id"].as_str().unwrap().into(),
                            r["from"].as_str().unwrap().into()
                        )),
                        "{name}:{}: a message twice",
                        n + 1
                    );
                }
            }
        }
    }
    assert_eq!(lines, expected);
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
    assert_eq!(aside.lines().count(), faces as usize);
    let first: Value = serde_json::from_str(aside.lines().next().unwrap()).unwrap();
    assert_eq!(first["file"], "dump.jsonl");
    assert!(first["line"].as_i64().unwrap() > 0);
    assert!(
        first["why"].as_str().unwrap().contains("body.type"),
        "{first:#}"
    );
    // Everything in one download: each file, the manifest and what was kept aside.
    let r = app
        .with_token(
            Method::GET,
            &m.path(&format!("/hand-over/{build}/all-files.zip")),
            &m.token,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let zipped = r.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zipped.to_vec())).unwrap();
    let mut names: Vec<String> = zip.file_names().map(str::to_string).collect();
    names.sort();
    let mut want: Vec<String> = files
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .chain(["kept_aside.jsonl".to_string(), "manifest.json".to_string()])
        .collect();
    want.sort();
    assert_eq!(names, want);
    let mut first_file = String::new();
    std::io::Read::read_to_string(
        &mut zip.by_name(files[0]["name"].as_str().unwrap()).unwrap(),
        &mut first_file,
    )
    .unwrap();
    assert_eq!(
        first_file.lines().count() as i64,
        files[0]["lines"].as_i64().unwrap(),
        "the zipped file is the file"
    );
    // A viewer sees the build but may not take the history.
    let viewer = app
        .member("viewer@example.com", imshift::model::Role::Viewer)
        .await;
    let r = viewer
        .api(
            Method::GET,
            &m.path(&format!(
                "/hand-over/{build}/{}",
                files[0]["name"].as_str().unwrap()
            )),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = viewer
        .api(
            Method::GET,
            &m.path(&format!("/hand-over/{build}/..%2F..%2Fsecret")),
            None,
        )
        .await;
    assert_ne!(r.status(), StatusCode::OK);
    let r = app
        .with_token(
            Method::GET,
            &m.path(&format!("/hand-over/{build}/..%2Fmanifest.json")),
            &m.token,
            None,
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "only names the build wrote are served"
    );
    assert!(app
        .audit_actions()
        .await
        .contains(&"hand_over.downloaded".to_string()));
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_team_whose_answer_was_lost_is_found_again_not_made_twice(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    // The first three team/create calls are applied and their answers lost (a 502 after the
    // team exists, then a connection cut, then a 502): a blind repeat would make three extra
    // teams.
    let sb = netease(|c| {
        c.faults = Faults {
            apis: vec!["team/create".into()],
            next: [
                Fault::LostAnswerBadGateway,
                Fault::LostAnswer,
                Fault::LostAnswerBadGateway,
            ]
            .into(),
            ..Faults::default()
        };
    })
    .await;
    let m = migration(&app, &sb).await;
    let bytes = dump(&spec());
    stage(&app, &m, bytes.clone()).await;
    let run = launch(&app, &m).await;
    let done = wait_for(&app, &m, &run, &["done"], 300).await;
    assert_eq!(done["failed"], 0, "{done:#}");
    assert_eq!(sb.state()["injected"], 3, "the faults happened");
    netease_holds_exactly(&app, &m, &sb, &expected(&bytes)).await;
    let found: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM import_results WHERE phase = 'groups' AND sent->>'note' LIKE '%answer was lost%'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(found, 3, "each lost team was found among its owner's teams");
}
