//! Dumps through the REST API and the workers: upload, staging, the validation report,
//! findings, CSV, resuming, replacing, discarding, and each way an upload can be broken.

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::io::Write;
use std::time::Duration;

/// A small canonical dump with a problem of each family. Line numbers matter below.
const DUMP: &str = concat!(
    r#"{"kind":"account","id":"u1","nick":"Alice"}"#,
    "\n", // 1
    r#"{"kind":"account","id":"u2","nick":"Bob","created_at":"1513685265"}"#,
    "\n", // 2 seconds, as a string
    r#"{"kind":"friend","owner":"u1","friend":"ghost"}"#,
    "\n",                 // 3 ghost is no account
    "this is not json\n", // 4
    r#"{"kind":"message","id":"m1","conv":"c2c","from":"u1","to":"u2","sent_at":1513685265481,"body":{"type":"text","text":"hi"}}"#,
    "\n", // 5
    r#"{"kind":"message","id":"m2","conv":"group","from":"u2","to":"g1","sent_at":1513685266000,"body":{"type":"text","text":"yo"}}"#,
    "\n", // 6 u2 is no member
    r#"{"kind":"group","id":"g1","type":"private","name":"Team","owner":"u1","created_at":1513685200000}"#,
    "\n", // 7
    r#"{"kind":"account","id":"u1","nick":"Alice again"}"#,
    "\n", // 8 duplicate: this one wins
);

pub async fn migration(app: &TestApp, token: &str) -> String {
    let r = app
        .with_token(
            Method::POST,
            "/api/v1/migrations",
            token,
            Some(json!({"name": "dumps", "strategy": "forced_upgrade", "source": "self_built", "target": "tencent"})),
        )
        .await;
    id_of(r, StatusCode::CREATED).await
}

pub async fn post_dump(
    app: &TestApp,
    token: &str,
    mid: &str,
    name: &str,
    query: &str,
    bytes: Vec<u8>,
) -> reqwest::Response {
    app.anon()
        .post(format!(
            "{}/api/v1/migrations/{mid}/dumps?file_name={name}{query}",
            app.base
        ))
        .bearer_auth(token)
        .body(bytes)
        .send()
        .await
        .unwrap()
}

pub async fn get(app: &TestApp, token: &str, path: &str) -> Value {
    let r = app.with_token(Method::GET, path, token, None).await;
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.unwrap()
}

/// Waits for an upload to leave uploading/queued/ingesting.
pub async fn settled(app: &TestApp, token: &str, mid: &str, upload: &str) -> Value {
    for _ in 0..300 {
        let u = get(
            app,
            token,
            &format!("/api/v1/migrations/{mid}/uploads/{upload}"),
        )
        .await;
        if !["uploading", "queued", "ingesting"].contains(&u["state"].as_str().unwrap()) {
            return u;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("upload {upload} never settled");
}

/// Waits for the report to be current after every queued validation.
pub async fn report(app: &TestApp, token: &str, mid: &str) -> Value {
    for _ in 0..300 {
        let busy: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs WHERE migration_id = $1::uuid AND state IN ('queued', 'running')",
        )
        .bind(mid)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        let r = get(
            app,
            token,
            &format!("/api/v1/migrations/{mid}/dumps/report"),
        )
        .await;
        if busy == 0 && r["state"] == "current" {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the report never became current");
}

fn rule<'a>(report: &'a Value, code: &str) -> &'a Value {
    report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["code"] == code)
        .unwrap_or_else(|| panic!("no rule {code} in {report:#}"))
}

async fn staged_rows(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn an_upload_is_staged_and_its_report_says_what_and_where(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let token = app.token(&owner).await;
    let mid = migration(&app, &token).await;

    let r = post_dump(
        &app,
        &token,
        &mid,
        "dump.jsonl",
        "",
        DUMP.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let up: Value = r.json().await.unwrap();
    assert_eq!(up["received_bytes"], DUMP.len() as i64);
    let up = settled(&app, &token, &mid, up["id"].as_str().unwrap()).await;
    assert_eq!(up["state"], "staged", "{up:#}");
    assert_eq!(up["records"], 7);
    assert_eq!(up["rejected"], 1);
    assert_eq!(up["counts"]["message.c2c"], 1);
    assert_eq!(up["counts"]["message.group"], 1);
    assert_eq!(up["counts"]["message.text"], 2);
    assert_eq!(up["files"][0]["format"], "canonical");
    // Once staged, the file's bytes leave the disk; the records live in PostgreSQL.
    let left: Vec<_> = std::fs::read_dir(app.data_dir.join("uploads"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");

    let rep = report(&app, &token, &mid).await;
    assert_eq!(rep["counts"]["account"], 3);
    assert_eq!(rep["accepted"]["account"], 2, "{rep:#}");
    assert_eq!(rep["superseded"]["account"], 1);
    assert_eq!(rep["accepted"]["friend"], 0);
    assert_eq!(rep["rejected"]["friend"], 1);
    assert_eq!(rep["rejected"]["unreadable_lines"], 1);
    // A warning does not block: the group message is still accepted.
    assert_eq!(rep["accepted"]["message"], 2);

    let missing = rule(&rep, "ref.account_missing");
    assert_eq!(missing["severity"], "error");
    assert_eq!(missing["count"], 1);
    assert!(missing["explanation"]
        .as_str()
        .unwrap()
        .contains("add the account"));
    let ex = &missing["examples"][0];
    assert_eq!(
        (ex["file"].as_str().unwrap(), ex["line"].as_i64().unwrap()),
        ("dump.jsonl", 3)
    );
    assert!(ex["message"].as_str().unwrap().contains("ghost"));
    assert!(
        ex["excerpt"]
            .as_str()
            .unwrap()
            .contains(r#""friend":"ghost""#),
        "{ex}"
    );

    let syntax = &rule(&rep, "json.syntax")["examples"][0];
    assert_eq!(syntax["line"], 4);
    assert_eq!(syntax["excerpt"], "this is not json");
    assert_eq!(
        rule(&rep, "message.sender_not_member")["examples"][0]["line"],
        6
    );
    assert_eq!(rule(&rep, "account.duplicate")["examples"][0]["line"], 8);
    assert_eq!(rule(&rep, "time.seconds")["examples"][0]["line"], 2);
    assert_eq!(rep["errors"], 2);

    // The record kept aside is the earlier duplicate and the dangling friend; the seconds
    // were written back as milliseconds.
    let created: i64 = sqlx::query_scalar(
        "SELECT (record->>'created_at')::bigint FROM staged_accounts WHERE account_id = 'u2'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(created, 1_513_685_265_000);
    let held: Vec<(String, String)> =
        sqlx::query_as("SELECT kind, code FROM staged_holds ORDER BY kind")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        held,
        vec![
            ("account".to_string(), "account.duplicate".to_string()),
            ("friend".to_string(), "ref.account_missing".to_string())
        ]
    );

    // Findings page by page, filtered, and as CSV.
    let page = get(
        &app,
        &token,
        &format!("/api/v1/migrations/{mid}/dumps/findings?severity=error&limit=1"),
    )
    .await;
    assert_eq!(page["findings"].as_array().unwrap().len(), 1);
    let next = page["next"].as_i64().expect("a second page");
    let page2 = get(
        &app,
        &token,
        &format!("/api/v1/migrations/{mid}/dumps/findings?severity=error&limit=1&after={next}"),
    )
    .await;
    assert_eq!(page2["findings"].as_array().unwrap().len(), 1);
    assert!(page2["next"].is_null());
    assert_ne!(page["findings"][0]["code"], page2["findings"][0]["code"]);
    let by_code = get(
        &app,
        &token,
        &format!("/api/v1/migrations/{mid}/dumps/findings?code=json.syntax"),
    )
    .await;
    assert_eq!(by_code["findings"].as_array().unwrap().len(), 1);
    let bad = app
        .with_token(
            Method::GET,
            &format!("/api/v1/migrations/{mid}/dumps/findings?severity=fatal"),
            &token,
            None,
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let csv = app
        .with_token(
            Method::GET,
            &format!("/api/v1/migrations/{mid}/dumps/findings.csv"),
            &token,
            None,
        )
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    let csv = csv.text().await.unwrap();
    let mut rows = csv.lines();
    assert_eq!(rows.next(), Some("code,severity,file,line,message,excerpt"));
    assert_eq!(
        rows.count() as i64,
        rep["errors"].as_i64().unwrap() + rep["warnings"].as_i64().unwrap()
    );
    assert!(csv.contains("json.syntax,error,dump.jsonl,4,"));

    let actions = app.audit_actions().await;
    assert!(actions.contains(&"dump.upload_started".to_string()));
    assert!(actions.contains(&"dump.uploaded".to_string()));
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn an_interrupted_upload_resumes_from_what_the_server_has(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let token = app.token(&owner).await;
    let mid = migration(&app, &token).await;
    let bytes = DUMP.as_bytes();
    let r = app
        .with_token(
            Method::POST,
            &format!("/api/v1/migrations/{mid}/uploads"),
            &token,
            Some(json!({"file_name": "C:\\exports\\dump.jsonl", "size_bytes": bytes.len()})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let up: Value = r.json().await.unwrap();
    // Only the file's own name is kept.
    assert_eq!(up["file_name"], "dump.jsonl");
    let uid = up["id"].as_str().unwrap().to_string();
    let put = |offset: usize, part: &'static [u8]| {
        let (app, token, mid, uid) = (&app, &token, &mid, &uid);
        async move {
            app.anon()
                .put(format!(
                    "{}/api/v1/migrations/{mid}/uploads/{uid}?offset={offset}",
                    app.base
                ))
                .bearer_auth(token)
                .body(part)
                .send()
                .await
                .unwrap()
        }
    };
    let half = bytes.len() / 2;
    let r = put(0, &bytes[..half]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let now = get(
        &app,
        &token,
        &format!("/api/v1/migrations/{mid}/uploads/{uid}"),
    )
    .await;
    assert_eq!(now["received_bytes"], half as i64);
    assert_eq!(now["state"], "uploading");
    // A piece from the wrong place is refused with where to continue.
    let r = put(3, &bytes[3..]).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let msg = r.json::<Value>().await.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains(&format!("offset {half}")), "{msg}");
    let r = put(half, &bytes[half..]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let done = settled(&app, &token, &mid, &uid).await;
    assert_eq!(done["state"], "staged");
    assert_eq!(done["records"], 7);
    // A complete upload takes no more bytes.
    let r = put(bytes.len(), b"{}").await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_corrected_file_replaces_or_adds_and_a_discard_removes(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let token = app.token(&owner).await;
    let mid = migration(&app, &token).await;
    let first: Value = post_dump(
        &app,
        &token,
        &mid,
        "dump.jsonl",
        "",
        DUMP.as_bytes().to_vec(),
    )
    .await
    .json()
    .await
    .unwrap();
    settled(&app, &token, &mid, first["id"].as_str().unwrap()).await;
    // Add: the missing account arrives in its own file and the friend is fixed.
    let ghost = r#"{"kind":"account","id":"ghost"}"#.to_string() + "\n";
    let second: Value = post_dump(
        &app,
        &token,
        &mid,
        "ghost.jsonl",
        "&mode=add",
        ghost.into_bytes(),
    )
    .await
    .json()
    .await
    .unwrap();
    settled(&app, &token, &mid, second["id"].as_str().unwrap()).await;
    let rep = report(&app, &token, &mid).await;
    assert_eq!(rep["accepted"]["friend"], 1, "{rep:#}");
    assert_eq!(rep["accepted"]["account"], 3);
    assert!(rep["rules"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["code"] != "ref.account_missing"));

    // Replace: only the new file's records remain.
    let fixed = r#"{"kind":"account","id":"solo"}"#.to_string() + "\n";
    let third: Value = post_dump(
        &app,
        &token,
        &mid,
        "fixed.jsonl",
        "&mode=replace",
        fixed.into_bytes(),
    )
    .await
    .json()
    .await
    .unwrap();
    settled(&app, &token, &mid, third["id"].as_str().unwrap()).await;
    let rep = report(&app, &token, &mid).await;
    assert_eq!(rep["counts"], json!({"account": 1}));
    assert_eq!(rep["rules"], json!([]));
    let list = get(&app, &token, &format!("/api/v1/migrations/{mid}/dumps")).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(staged_rows(&app, "staged_messages").await, 0);

    // Discard the last one: nothing staged is left.
    let r = app
        .with_token(
            Method::DELETE,
            &format!(
                "/api/v1/migrations/{mid}/uploads/{}",
                third["id"].as_str().unwrap()
            ),
            &token,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["state"], "discarded");
    let rep = report(&app, &token, &mid).await;
    assert_eq!(rep["counts"], json!({}));
    assert_eq!(staged_rows(&app, "staged_accounts").await, 0);
    let actions = app.audit_actions().await;
    assert!(
        actions.contains(&"dump.replaced".to_string()),
        "{actions:?}"
    );
    assert!(actions.contains(&"dump.deleted".to_string()));
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn broken_uploads_get_a_clear_error_and_stage_nothing_half(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| c.max_upload_bytes = 64 * 1024).await;
    let owner = app.owner().await;
    let token = app.token(&owner).await;
    let mid = migration(&app, &token).await;

    // A gzip cut short: refused whole, with what happened.
    let mut big = String::new();
    for i in 0..2000 {
        big.push_str(&format!(
            "{{\"kind\":\"account\",\"id\":\"user-{i}\",\"nick\":\"n{i}\"}}\n"
        ));
    }
    let gz = gzip(big.as_bytes());
    assert!(gz.len() < 64 * 1024);
    let cut = gz[..gz.len() * 2 / 3].to_vec();
    let up: Value = post_dump(&app, &token, &mid, "cut.jsonl.gz", "", cut)
        .await
        .json()
        .await
        .unwrap();
    let up = settled(&app, &token, &mid, up["id"].as_str().unwrap()).await;
    assert_eq!(up["state"], "failed");
    let err = up["error"].as_str().unwrap();
    assert!(
        err.contains("damaged") && err.contains("nothing of this upload was staged"),
        "{err}"
    );
    assert_eq!(staged_rows(&app, "staged_accounts").await, 0);

    // The same file whole is fine (and gzip is told from its content).
    let up: Value = post_dump(&app, &token, &mid, "ok.gz", "", gz)
        .await
        .json()
        .await
        .unwrap();
    let up = settled(&app, &token, &mid, up["id"].as_str().unwrap()).await;
    assert_eq!(up["state"], "staged");
    assert_eq!(up["records"], 2000);

    // Invalid UTF-8 and bad JSON: those lines are kept aside with their finding, the rest staged.
    let mut mixed = b"{\"kind\":\"account\",\"id\":\"a\"}\n".to_vec();
    mixed.extend_from_slice(b"{\"kind\":\"account\",\"id\":\"caf\xe9\"}\n");
    mixed.extend_from_slice(b"{\"kind\":\"account\",\"id\":\n");
    let up: Value = post_dump(&app, &token, &mid, "mixed.jsonl", "", mixed)
        .await
        .json()
        .await
        .unwrap();
    let up = settled(&app, &token, &mid, up["id"].as_str().unwrap()).await;
    assert_eq!(
        (up["records"].as_i64(), up["rejected"].as_i64()),
        (Some(1), Some(2))
    );
    let rep = report(&app, &token, &mid).await;
    assert_eq!(rule(&rep, "utf8.invalid")["examples"][0]["line"], 2);
    assert_eq!(
        rule(&rep, "json.syntax")["examples"][0]["file"],
        "mixed.jsonl"
    );

    // A zip entry that climbs out of the archive is skipped and said so; its sibling is read.
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    zip.start_file("../../etc/evil.jsonl", opts).unwrap();
    zip.write_all(b"{\"kind\":\"account\",\"id\":\"evil\"}\n")
        .unwrap();
    zip.start_file("good/part.jsonl", opts).unwrap();
    zip.write_all(b"{\"kind\":\"account\",\"id\":\"zipped\"}\n")
        .unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    let up: Value = post_dump(&app, &token, &mid, "export.zip", "", bytes)
        .await
        .json()
        .await
        .unwrap();
    let up = settled(&app, &token, &mid, up["id"].as_str().unwrap()).await;
    assert_eq!(up["records"], 1);
    assert_eq!(up["files"][0]["name"], "export.zip!good/part.jsonl");
    let rep = report(&app, &token, &mid).await;
    let unsafe_name = &rule(&rep, "zip.unsafe_name")["examples"][0];
    assert!(unsafe_name["message"]
        .as_str()
        .unwrap()
        .contains("../../etc/evil.jsonl"));
    let evil: i64 =
        sqlx::query_scalar("SELECT count(*) FROM staged_accounts WHERE account_id = 'evil'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(evil, 0);

    // Far over the size limit: refused before a byte is stored.
    let r = post_dump(&app, &token, &mid, "huge.jsonl", "", vec![b' '; 200 * 1024]).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let msg = r.json::<Value>().await.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("huge.jsonl") && msg.contains("at most 65536 bytes"),
        "{msg}"
    );
    // More bytes than announced: refused, and the upload is dropped.
    let r = app
        .with_token(
            Method::POST,
            &format!("/api/v1/migrations/{mid}/uploads"),
            &token,
            Some(json!({"file_name": "liar.jsonl", "size_bytes": 10})),
        )
        .await;
    let liar: Value = r.json().await.unwrap();
    let r = app
        .anon()
        .put(format!(
            "{}/api/v1/migrations/{mid}/uploads/{}?offset=0",
            app.base,
            liar["id"].as_str().unwrap()
        ))
        .bearer_auth(&token)
        .body(vec![b'x'; 100])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let liar = get(
        &app,
        &token,
        &format!(
            "/api/v1/migrations/{mid}/uploads/{}",
            liar["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(liar["state"], "failed");
    assert_eq!(staged_rows(&app, "staged_accounts").await, 2000 + 1 + 1);
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn vendor_formats_are_converted_on_the_way_in(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let token = app.token(&owner).await;
    let mid = migration(&app, &token).await;
    let csv = "accid,nickname\nalice,Alice\nbob,Bob\n";
    let up: Value = post_dump(
        &app,
        &token,
        &mid,
        "accounts.csv",
        "",
        csv.as_bytes().to_vec(),
    )
    .await
    .json()
    .await
    .unwrap();
    let up = settled(&app, &token, &mid, up["id"].as_str().unwrap()).await;
    assert_eq!(up["files"][0]["format"], "csv");
    assert_eq!(up["records"], 2);
    let easemob = concat!(
        r#"{"msg_id":"1001","timestamp":1513685265481,"from":"alice","to":"bob","chat_type":"chat","payload":{"bodies":[{"type":"txt","msg":"hello"}]}}"#,
        "\n"
    );
    let up: Value = post_dump(
        &app,
        &token,
        &mid,
        "2017121912",
        "",
        gzip(easemob.as_bytes()),
    )
    .await
    .json()
    .await
    .unwrap();
    let up = settled(&app, &token, &mid, up["id"].as_str().unwrap()).await;
    assert_eq!(up["files"][0]["format"], "easemob");
    assert_eq!(up["files"][0]["format_label"], "Easemob export");
    assert_eq!(up["format_label"], "Tell from the content");
    assert_eq!(up["counts"]["message.c2c"], 1);
    // What an upload may name comes from the registry: auto, canonical, each vendor export, CSV.
    let formats = get(&app, &token, "/api/v1/dump-formats").await;
    let ids: Vec<&str> = formats
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["auto", "canonical", "netease", "easemob", "csv"]);
    assert_eq!(formats[2]["label"], "NetEase Yunxin migration lines");
    let rep = report(&app, &token, &mid).await;
    assert_eq!(rep["accepted"]["message"], 1, "{rep:#}");
    assert_eq!(rule(&rep, "csv.mapping")["severity"], "warning");
}

fn count(report: &Value, code: &str) -> i64 {
    report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["code"] == code)
        .map_or(0, |r| r["count"].as_i64().unwrap())
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn checks_across_uploads_follow_every_change(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let token = app.token(&owner).await;
    let mid = migration(&app, &token).await;
    let up = |name: &'static str, text: String| {
        let (app, token, mid) = (&app, &token, &mid);
        async move {
            let u: Value = post_dump(app, token, mid, name, "", text.into_bytes())
                .await
                .json()
                .await
                .unwrap();
            let u = settled(app, token, mid, u["id"].as_str().unwrap()).await;
            assert_eq!(u["state"], "staged", "{u:#}");
            report(app, token, mid).await
        }
    };
    let m1 = r#"{"kind":"message","id":"m1","conv":"c2c","from":"u1","to":"u2","sent_at":1600000000000,"body":{"type":"text","text":"a"}}"#;
    let m2 = r#"{"kind":"message","id":"m2","conv":"group","from":"u2","to":"g1","sent_at":1600000001000,"body":{"type":"text","text":"b"}}"#;
    let m3 = r#"{"kind":"message","id":"m3","conv":"group","from":"u1","to":"g1","sent_at":1600000002000,"body":{"type":"text","text":"c"}}"#;

    // Messages before their accounts: every reference is missing, and m1 is there twice.
    let rep = up("messages.jsonl", format!("{m1}\n{m2}\n{m3}\n{m1}\n")).await;
    // m1 twice (from and to), m2 and m3 (their sender).
    assert_eq!(count(&rep, "ref.account_missing"), 6, "{rep:#}");
    assert_eq!(count(&rep, "ref.group_missing"), 2);
    assert_eq!(count(&rep, "message.duplicate"), 1);
    assert_eq!(rep["accepted"]["message"], 0);

    // The accounts and the group arrive: the messages are fine now, the duplicate stays.
    let people = concat!(
        r#"{"kind":"account","id":"u1"}"#,
        "\n",
        r#"{"kind":"account","id":"u2"}"#,
        "\n",
        r#"{"kind":"group","id":"g1","name":"G","owner":"u1","created_at":1590000000000}"#,
        "\n",
        r#"{"kind":"member","group":"g1","account":"u2","joined_at":1590000001000}"#,
        "\n",
    );
    let rep = up("people.jsonl", people.to_string()).await;
    assert_eq!(count(&rep, "ref.account_missing"), 0, "{rep:#}");
    assert_eq!(count(&rep, "ref.group_missing"), 0);
    assert_eq!(count(&rep, "message.sender_not_member"), 0);
    assert_eq!(count(&rep, "message.duplicate"), 1);
    assert_eq!(
        (
            rep["accepted"]["message"].as_i64(),
            rep["superseded"]["message"].as_i64()
        ),
        (Some(3), Some(1))
    );

    // The same group message in another file: a duplicate across uploads, the later wins.
    let rep = up("again.jsonl", format!("{m2}\n")).await;
    assert_eq!(count(&rep, "message.duplicate"), 2);
    assert_eq!(rep["superseded"]["message"], 2);
    let ex = rule(&rep, "message.duplicate")["examples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["file"] == "again.jsonl")
        .cloned()
        .expect("the later line carries the finding");
    assert!(
        ex["message"].as_str().unwrap().contains("messages.jsonl:2"),
        "{ex}"
    );

    // The group defined again with another owner: u1 owned it (and so could write in it)
    // and now is not even a member; staging's earlier verdict on m3 is taken back.
    let regroup = concat!(
        r#"{"kind":"account","id":"u3"}"#,
        "\n",
        r#"{"kind":"group","id":"g1","name":"G","owner":"u3","created_at":1590000000000}"#,
        "\n",
    );
    let rep = up("regroup.jsonl", regroup.to_string()).await;
    assert_eq!(count(&rep, "group.duplicate"), 1);
    assert_eq!(count(&rep, "message.sender_not_member"), 1, "{rep:#}");
    assert_eq!(
        rule(&rep, "message.sender_not_member")["examples"][0]["line"],
        3
    );
}

// ---- Uploads in the shared store, quota, disk, expiry, and the races around staging --------

async fn announce(app: &TestApp, token: &str, mid: &str, body: Value) -> reqwest::Response {
    app.with_token(
        Method::POST,
        &format!("/api/v1/migrations/{mid}/uploads"),
        token,
        Some(body),
    )
    .await
}

async fn put_piece(
    app: &TestApp,
    token: &str,
    mid: &str,
    uid: &str,
    offset: usize,
    bytes: Vec<u8>,
) -> reqwest::Response {
    app.anon()
        .put(format!(
            "{}/api/v1/migrations/{mid}/uploads/{uid}?offset={offset}",
            app.base
        ))
        .bearer_auth(token)
        .body(bytes)
        .send()
        .await
        .unwrap()
}

fn accounts(n: usize, prefix: &str) -> Vec<u8> {
    let mut out = String::new();
    for i in 0..n {
        out.push_str(&format!(
            "{{\"kind\":\"account\",\"id\":\"{prefix}{i}\",\"nick\":\"n{i}\"}}\n"
        ));
    }
    out.into_bytes()
}

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap()
}

/// Backends of this test's database waiting for a lock another holds.
async fn lock_waiters(app: &TestApp) -> i64 {
    scalar(
        app,
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .await
}

async fn wait_for_waiters(app: &TestApp, n: i64) {
    let start = std::time::Instant::now();
    while lock_waiters(app).await < n {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never {n} waiting"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn pieces_sent_alternately_to_two_consoles_are_staged_exactly_once(pool: PgPool) {
    // Two console processes on one database, as behind a load balancer without sticky sessions.
    let a = TestApp::spawn(pool.clone()).await;
    let b = TestApp::spawn(pool).await;
    let owner = a.owner().await;
    let token = a.token(&owner).await;
    let mid = migration(&a, &token).await;
    let bytes = accounts(3000, "user-");
    let up: Value = announce(
        &a,
        &token,
        &mid,
        json!({"file_name": "people.jsonl", "size_bytes": bytes.len()}),
    )
    .await
    .json()
    .await
    .unwrap();
    let uid = up["id"].as_str().unwrap().to_string();
    let step = bytes.len() / 5 + 1;
    for (i, at) in (0..bytes.len()).step_by(step).enumerate() {
        let app = if i % 2 == 0 { &a } else { &b };
        let end = (at + step).min(bytes.len());
        let r = put_piece(app, &token, &mid, &uid, at, bytes[at..end].to_vec()).await;
        assert_eq!(r.status(), StatusCode::OK, "piece {i} to console {}", i % 2);
    }
    // Either console tells where the upload stands.
    let seen = get(
        &b,
        &token,
        &format!("/api/v1/migrations/{mid}/uploads/{uid}"),
    )
    .await;
    assert_eq!(seen["received_bytes"], bytes.len() as i64);
    let done = settled(&a, &token, &mid, &uid).await;
    assert_eq!(done["state"], "staged", "{done:#}");
    assert_eq!(done["records"], 3000);
    report(&a, &token, &mid).await;
    assert_eq!(
        scalar(&a, "SELECT count(*) FROM staged_accounts").await,
        3000
    );
    assert_eq!(
        scalar(&a, "SELECT count(DISTINCT account_id) FROM staged_accounts").await,
        3000
    );
    assert_eq!(
        scalar(&a, "SELECT count(*) FROM jobs WHERE kind = 'dump.ingest'").await,
        1
    );
    assert_eq!(
        scalar(
            &a,
            "SELECT count(*) FROM audit_log WHERE action = 'dump.uploaded'"
        )
        .await,
        1
    );
    // Staged: its bytes left the database with the same commit.
    assert_eq!(
        scalar(&a, "SELECT count(*) FROM dump_upload_pieces").await,
        0
    );
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_one_shot_upload_waits_in_the_database_in_pieces_of_8_mb_on_no_disk(pool: PgPool) {
    // An API-only process: nothing stages here, so what it stored is what stays.
    let app = TestApp::spawn_with(pool, |c| c.workers = 0).await;
    let owner = app.owner().await;
    let token = app.token(&owner).await;
    let mid = migration(&app, &token).await;
    let mut bytes = accounts(1, "x");
    bytes.resize(9 << 20, b'\n');
    let r = post_dump(&app, &token, &mid, "big.jsonl", "", bytes.clone()).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let up: Value = r.json().await.unwrap();
    assert_eq!(up["state"], "queued");
    assert_eq!(up["received_bytes"], bytes.len() as i64);
    let pieces: Vec<(i64, i32)> = sqlx::query_as(
        "SELECT byte_offset, length(data) FROM dump_upload_pieces ORDER BY byte_offset",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(pieces, vec![(0, 8 << 20), (8 << 20, 1 << 20)]);
    let stored: Vec<u8> = sqlx::query_scalar(
        "SELECT string_agg(data, ''::bytea ORDER BY byte_offset) FROM dump_upload_pieces",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(stored == bytes, "the pieces hold the file byte for byte");
    // Nothing of it on this process's disk; the directory it would use is private.
    use std::os::unix::fs::PermissionsExt;
    let dir = app.data_dir.join("uploads");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "uploads directory mode {mode:o}");
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn an_upload_is_refused_beyond_the_quota_or_the_free_disk(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| {
        c.upload_quota_bytes = 1000;
        c.max_upload_bytes = u64::MAX;
    })
    .await;
    let owner = app.owner().await;
    let token = app.token(&owner).await;
    let mid = migration(&app, &token).await;
    let first = announce(
        &app,
        &token,
        &mid,
        json!({"file_name": "a.jsonl", "size_bytes": 600}),
    )
    .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    // The quota counts what unfinished uploads announced.
    let r = announce(
        &app,
        &token,
        &mid,
        json!({"file_name": "b.jsonl", "size_bytes": 600}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::INSUFFICIENT_STORAGE);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "insufficient_storage");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("600 B of the 1000 B upload quota")
            && msg.contains("400 B is free")
            && msg.contains("b.jsonl needs 600 B"),
        "{msg}"
    );
    // A discard gives its share back.
    let r = app
        .with_token(
            Method::DELETE,
            &format!(
                "/api/v1/migrations/{mid}/uploads/{}",
                first["id"].as_str().unwrap()
            ),
            &token,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = announce(
        &app,
        &token,
        &mid,
        json!({"file_name": "b.jsonl", "size_bytes": 600}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // More than the disk holds: refused before a byte, saying what is free and what is needed.
    let r = announce(
        &app,
        &token,
        &mid,
        json!({"file_name": "huge.jsonl", "size_bytes": 1i64 << 55}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::INSUFFICIENT_STORAGE);
    let v: Value = r.json().await.unwrap();
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("Not enough free disk for huge.jsonl")
            && msg.contains(" free; staging this file needs 32768.0 TB"),
        "{msg}"
    );
    assert_eq!(
        scalar(
            &app,
            "SELECT count(*) FROM dump_uploads WHERE file_name = 'huge.jsonl'"
        )
        .await,
        0
    );
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn an_abandoned_upload_shows_when_it_expires_and_then_expires(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| c.upload_expiry = Duration::from_secs(3)).await;
    let owner = app.owner().await;
    let token = app.token(&owner).await;
    let mid = migration(&app, &token).await;
    let bytes = accounts(10, "u");
    let up: Value = announce(
        &app,
        &token,
        &mid,
        json!({"file_name": "left.jsonl", "size_bytes": bytes.len()}),
    )
    .await
    .json()
    .await
    .unwrap();
    let uid = up["id"].as_str().unwrap().to_string();
    let first = time::OffsetDateTime::parse(
        up["expires_at"]
            .as_str()
            .expect("the list shows when it expires"),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // A piece moves the expiry on.
    let half = bytes.len() / 2;
    let r = put_piece(&app, &token, &mid, &uid, 0, bytes[..half].to_vec()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let list = get(&app, &token, &format!("/api/v1/migrations/{mid}/dumps")).await;
    let later = time::OffsetDateTime::parse(
        list[0]["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(
        later - first >= time::Duration::milliseconds(900),
        "{first} → {later}"
    );
    // Then nothing more arrives: the workers' sweep discards it.
    let start = std::time::Instant::now();
    let gone = loop {
        let u = get(
            &app,
            &token,
            &format!("/api/v1/migrations/{mid}/uploads/{uid}"),
        )
        .await;
        if u["state"] != "uploading" {
            break u;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(gone["state"], "discarded");
    assert!(
        gone["error"].as_str().unwrap().starts_with("Expired"),
        "{gone}"
    );
    assert!(gone["expires_at"].is_null());
    let list = get(&app, &token, &format!("/api/v1/migrations/{mid}/dumps")).await;
    assert_eq!(list.as_array().unwrap().len(), 0);
    assert_eq!(
        scalar(&app, "SELECT count(*) FROM dump_upload_pieces").await,
        0
    );
    let (action, who, details): (String, String, Value) = sqlx::query_as(
        "SELECT action, actor, details FROM audit_log WHERE action = 'dump.expired'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((action.as_str(), who.as_str()), ("dump.expired", "imshift"));
    assert_eq!(details["upload"], uid.as_str());
    assert_eq!(details["received_bytes"], half as i64);
    // Resuming it is refused with why.
    let r = put_piece(&app, &token, &mid, &uid, half, bytes[half..].to_vec()).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn an_upload_completed_under_a_paused_import_is_refused_and_replaces_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let token = app.token(&owner).await;
    let mid = migration(&app, &token).await;
    let r = app
        .with_token(
            Method::POST,
            &format!("/api/v1/migrations/{mid}/sandbox"),
            &token,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    // Slow one-to-one history, so the run is still going when it is paused.
    let r = app
        .with_token(
            Method::PUT,
            &format!("/api/v1/migrations/{mid}/limits"),
            &token,
            Some(json!({"openim/importmsg": {"qps": 1}})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut dump = accounts(2, "p");
    for i in 0..60 {
        dump.extend_from_slice(format!(
            "{{\"kind\":\"message\",\"id\":\"m{i}\",\"conv\":\"c2c\",\"from\":\"p0\",\"to\":\"p1\",\"sent_at\":{},\"body\":{{\"type\":\"text\",\"text\":\"hi\"}}}}\n",
            1_600_000_000_000i64 + i * 1000
        ).as_bytes());
    }
    let first: Value = post_dump(&app, &token, &mid, "first.jsonl", "", dump)
        .await
        .json()
        .await
        .unwrap();
    let first_id = first["id"].as_str().unwrap().to_string();
    assert_eq!(
        settled(&app, &token, &mid, &first_id).await["state"],
        "staged"
    );
    report(&app, &token, &mid).await;

    // The issue's reproduction: announce a replacement, launch and pause, then send its bytes.
    let fix = accounts(1, "solo");
    let second: Value = announce(
        &app,
        &token,
        &mid,
        json!({"file_name": "fixed.jsonl", "size_bytes": fix.len(), "mode": "replace"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let second_id = second["id"].as_str().unwrap().to_string();
    let r = app
        .with_token(
            Method::POST,
            &format!("/api/v1/migrations/{mid}/imports"),
            &token,
            None,
        )
        .await;
    let run = id_of(r, StatusCode::CREATED).await;
    let r = app
        .with_token(
            Method::POST,
            &format!("/api/v1/migrations/{mid}/imports/{run}/pause"),
            &token,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let r = put_piece(&app, &token, &mid, &second_id, 0, fix).await;
    assert_eq!(r.status(), StatusCode::OK);

    let refused = settled(&app, &token, &mid, &second_id).await;
    assert_eq!(refused["state"], "failed", "{refused:#}");
    let why = refused["error"].as_str().unwrap();
    assert!(
        why.contains("import of this migration is paused")
            && why.contains("nothing staged was replaced"),
        "{why}"
    );
    // The earlier upload and everything the paused run takes are still there.
    let kept = get(
        &app,
        &token,
        &format!("/api/v1/migrations/{mid}/uploads/{first_id}"),
    )
    .await;
    assert_eq!(kept["state"], "staged");
    assert_eq!(
        scalar(&app, "SELECT count(*) FROM staged_messages").await,
        60
    );
    assert_eq!(
        scalar(&app, "SELECT count(*) FROM staged_accounts").await,
        2
    );
    assert_eq!(
        scalar(
            &app,
            "SELECT count(*) FROM audit_log WHERE action = 'dump.replaced'"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(&app, "SELECT count(*) FROM dump_upload_pieces").await,
        0
    );
    let r = app
        .with_token(
            Method::POST,
            &format!("/api/v1/migrations/{mid}/imports/{run}/cancel"),
            &token,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_discard_racing_an_ingest_commit_leaves_nothing_of_the_upload(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let token = app.token(&owner).await;
    let mid = migration(&app, &token).await;
    let base: Value = post_dump(&app, &token, &mid, "base.jsonl", "", accounts(5, "b"))
        .await
        .json()
        .await
        .unwrap();
    settled(&app, &token, &mid, base["id"].as_str().unwrap()).await;
    report(&app, &token, &mid).await;

    // The ingest's commit waits on the report row the test holds (a slow moment)...
    let mut hold = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM dump_reports WHERE migration_id = $1::uuid FOR UPDATE")
        .bind(&mid)
        .execute(&mut *hold)
        .await
        .unwrap();
    let late: Value = post_dump(&app, &token, &mid, "late.jsonl", "", accounts(7, "l"))
        .await
        .json()
        .await
        .unwrap();
    let late_id = late["id"].as_str().unwrap().to_string();
    wait_for_waiters(&app, 1).await;
    // ...when the discard arrives.
    let discard = {
        let (http, url, token) = (
            app.anon(),
            format!("{}/api/v1/migrations/{mid}/uploads/{late_id}", app.base),
            token.clone(),
        );
        tokio::spawn(async move { http.delete(url).bearer_auth(token).send().await.unwrap() })
    };
    wait_for_waiters(&app, 2).await;
    hold.commit().await.unwrap();
    let r = discard.await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["state"], "discarded");
    // Whichever came first, the discard wins in the end and nothing of the upload is left.
    report(&app, &token, &mid).await;
    let u = get(
        &app,
        &token,
        &format!("/api/v1/migrations/{mid}/uploads/{late_id}"),
    )
    .await;
    assert_eq!(u["state"], "discarded");
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM staged_accounts WHERE upload_id = $1::uuid")
            .bind(&late_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(left, 0, "a discarded upload keeps no staged rows");
    assert_eq!(
        scalar(&app, "SELECT count(*) FROM staged_accounts").await,
        5
    );
    let rep = report(&app, &token, &mid).await;
    assert_eq!(rep["counts"], json!({"account": 5}));
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_validation_that_panics_midway_does_not_block_the_next(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let token = app.token(&owner).await;
    let mid = migration(&app, &token).await;
    let up: Value = post_dump(&app, &token, &mid, "a.jsonl", "", accounts(3, "v"))
        .await
        .json()
        .await
        .unwrap();
    settled(&app, &token, &mid, up["id"].as_str().unwrap()).await;
    report(&app, &token, &mid).await;
    // A staged row the validator cannot read makes it panic half way (as a bug would).
    sqlx::query("ALTER TABLE staged_accounts ALTER COLUMN account_id DROP NOT NULL")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE staged_accounts SET account_id = NULL WHERE account_id = 'v1'")
        .execute(&app.pool)
        .await
        .unwrap();
    let job = imshift::jobs::enqueue(
        &app.pool,
        &imshift::jobs::NewJob {
            kind: imshift::dumps::jobs::VALIDATE,
            migration_id: Some(mid.parse().unwrap()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let start = std::time::Instant::now();
    loop {
        let error: Option<String> = sqlx::query_scalar("SELECT last_error FROM jobs WHERE id = $1")
            .bind(job)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        if error.is_some_and(|e| e.contains("panicked")) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the validation never ran"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The lock one validation holds is free again: another process could take it now.
    use sqlx::Connection;
    let mut other = sqlx::PgConnection::connect_with(&app.pool.connect_options())
        .await
        .unwrap();
    let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(format!("validate:{mid}"))
        .fetch_one(&mut other)
        .await
        .unwrap();
    assert!(free, "the panicked validation still holds its lock");
    other.close().await.unwrap();
    // Fixed, the next attempt runs through.
    sqlx::query("UPDATE staged_accounts SET account_id = 'v1' WHERE account_id IS NULL")
        .execute(&app.pool)
        .await
        .unwrap();
    let rep = report(&app, &token, &mid).await;
    assert_eq!(rep["accepted"]["account"], 3);
}

// ---- The report's state, the import sizes it stores, the cross-record findings cap --------

/// Polls the report as a script would, until `current` or `failed`.
async fn settled_report(app: &TestApp, token: &str, mid: &str) -> Value {
    let path = format!("/api/v1/migrations/{mid}/dumps/report");
    for _ in 0..600 {
        let r = get(app, token, &path).await;
        if r["state"] == "current" || r["state"] == "failed" {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the report never settled");
}

async fn staged(app: &TestApp, token: &str, mid: &str, name: &str, text: &str) -> String {
    let u: Value = post_dump(app, token, mid, name, "", text.as_bytes().to_vec())
        .await
        .json()
        .await
        .unwrap();
    let id = u["id"].as_str().unwrap().to_string();
    assert_eq!(settled(app, token, mid, &id).await["state"], "staged");
    id
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn the_report_says_pending_validating_current_stale_or_failed_and_why(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let token = app.token(&owner).await;
    let mid = migration(&app, &token).await;
    let path = format!("/api/v1/migrations/{mid}/dumps/report");

    // Nothing checked yet: not "current with empty counts".
    let r = get(&app, &token, &path).await;
    assert_eq!(r["state"], "pending", "{r:#}");
    assert!(r["validated_at"].is_null());

    // Staged, its check waiting (the test holds the validation's lock): validating.
    use sqlx::Connection;
    let mut lock = sqlx::PgConnection::connect_with(&app.pool.connect_options())
        .await
        .unwrap();
    let key = format!("validate:{mid}");
    sqlx::query("SELECT pg_advisory_lock(hashtextextended($1, 0))")
        .bind(&key)
        .execute(&mut lock)
        .await
        .unwrap();
    let a = String::from_utf8(accounts(3, "a")).unwrap();
    staged(&app, &token, &mid, "a.jsonl", &a).await;
    assert_eq!(get(&app, &token, &path).await["state"], "validating");
    sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
        .bind(&key)
        .execute(&mut lock)
        .await
        .unwrap();
    let r = settled_report(&app, &token, &mid).await;
    assert_eq!(r["state"], "current", "{r:#}");
    assert_eq!(r["accepted"]["account"], 3);
    assert!(r["error"].is_null());

    // Another upload being staged (its commit waits on the report row the test holds): the
    // numbers are stale, still the last check's.
    let mut hold = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM dump_reports WHERE migration_id = $1::uuid FOR UPDATE")
        .bind(&mid)
        .execute(&mut *hold)
        .await
        .unwrap();
    let b: Value = post_dump(&app, &token, &mid, "b.jsonl", "", accounts(2, "b"))
        .await
        .json()
        .await
        .unwrap();
    wait_for_waiters(&app, 1).await;
    let r = get(&app, &token, &path).await;
    assert_eq!(r["state"], "stale", "{r:#}");
    assert_eq!(r["accepted"]["account"], 3);
    hold.commit().await.unwrap();
    settled(&app, &token, &mid, b["id"].as_str().unwrap()).await;
    let r = settled_report(&app, &token, &mid).await;
    assert_eq!(r["state"], "current", "{r:#}");
    assert_eq!(r["accepted"]["account"], 5);

    // A check that gives up (a staged row it cannot read makes it panic; one attempt) says so
    // and why, instead of validating forever.
    sqlx::query("ALTER TABLE staged_accounts ALTER COLUMN account_id DROP NOT NULL")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE staged_accounts SET account_id = NULL WHERE account_id = 'a1'")
        .execute(&app.pool)
        .await
        .unwrap();
    let m: imshift::model::MigrationId = mid.parse().unwrap();
    let mut tx = app.pool.begin().await.unwrap();
    imshift::dumps::jobs::enqueue_validate(&mut tx, m, false)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE jobs SET max_attempts = 1 WHERE migration_id = $1 AND kind = 'dump.validate' AND state = 'queued'",
    )
    .bind(m)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let r = settled_report(&app, &token, &mid).await;
    assert_eq!(r["state"], "failed", "{r:#}");
    let why = r["error"].as_str().unwrap();
    assert!(
        why.contains("1 attempt") && why.contains("panicked"),
        "{why}"
    );
    assert_eq!(r["accepted"]["account"], 5, "the last good numbers stay");
    let p = get(
        &app,
        &token,
        &format!("/api/v1/migrations/{mid}/imports/preflight"),
    )
    .await;
    assert!(
        p["blockers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b.as_str().unwrap().contains("Checking the dumps failed")),
        "{p:#}"
    );
    // The Overview says why too, and once the keys are set (they come first) names checking
    // again as the next step instead of offering a launch.
    let overview = format!("/api/v1/migrations/{mid}/overview");
    let o = get(&app, &token, &overview).await;
    assert_eq!(o["next"], "set_keys", "{o:#}");
    assert!(
        o["check_error"].as_str().unwrap().contains("panicked"),
        "{o:#}"
    );
    let r = app
        .with_token(
            Method::POST,
            &format!("/api/v1/migrations/{mid}/connections/target/sandbox"),
            &token,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(get(&app, &token, &overview).await["next"], "check_failed");

    // Fixed, the next change is checked through: current again, no error.
    sqlx::query("UPDATE staged_accounts SET account_id = 'a1' WHERE account_id IS NULL")
        .execute(&app.pool)
        .await
        .unwrap();
    let c = String::from_utf8(accounts(1, "c")).unwrap();
    staged(&app, &token, &mid, "c.jsonl", &c).await;
    let r = settled_report(&app, &token, &mid).await;
    assert_eq!(r["state"], "current", "{r:#}");
    assert!(r["error"].is_null());
    assert_eq!(r["accepted"]["account"], 6);
    let o = get(&app, &token, &format!("/api/v1/migrations/{mid}/overview")).await;
    assert!(o["check_error"].is_null(), "{o:#}");
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn import_sizes_are_stored_by_validation_and_equal_a_cold_count(pool: PgPool) {
    use imshift::import::plan::{self, Phase};
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let token = app.token(&owner).await;
    let mid = migration(&app, &token).await;
    let m: imshift::model::MigrationId = mid.parse().unwrap();
    let msg = |id: &str, conv: &str, from: &str, to: &str, t: i64| {
        format!(
            r#"{{"kind":"message","id":"{id}","conv":"{conv}","from":"{from}","to":"{to}","sent_at":{t},"body":{{"type":"text","text":"x"}}}}"#
        )
    };
    let mut first = vec![
        r#"{"kind":"account","id":"u1","nick":"A","gender":"female"}"#.to_string(),
        r#"{"kind":"account","id":"u2","nick":"B"}"#.to_string(),
        r#"{"kind":"account","id":"u3","signature":"hi"}"#.to_string(),
        r#"{"kind":"friend","owner":"u1","friend":"u2"}"#.to_string(),
        r#"{"kind":"friend","owner":"u1","friend":"u3"}"#.to_string(),
        r#"{"kind":"friend","owner":"u2","friend":"ghost"}"#.to_string(),
        r#"{"kind":"block","owner":"u3","blocked":"u1"}"#.to_string(),
        r#"{"kind":"group","id":"g1","name":"G","owner":"u1","created_at":1590000000000}"#
            .to_string(),
        r#"{"kind":"member","group":"g1","account":"u2","unread":4}"#.to_string(),
        r#"{"kind":"member","group":"g1","account":"u3"}"#.to_string(),
        r#"{"kind":"conversation","owner":"u1","conv":"c2c","peer":"u2"}"#.to_string(),
    ];
    for i in 0..7 {
        first.push(msg(&format!("c{i}"), "c2c", "u1", "u2", 1600000000000 + i));
    }
    for i in 0..5 {
        first.push(msg(
            &format!("g{i}"),
            "group",
            "u2",
            "g1",
            1600000100000 + i,
        ));
    }
    first.push(msg("x1", "c2c", "u2", "ghost", 1600000200000));
    let a = staged(&app, &token, &mid, "a.jsonl", &first.join("\n")).await;
    // More of the same keys, a duplicate of a message of the first file, a held group message.
    let second = [
        r#"{"kind":"account","id":"u4","location":"x"}"#.to_string(),
        r#"{"kind":"friend","owner":"u1","friend":"u4"}"#.to_string(),
        msg("c0", "c2c", "u1", "u2", 1600000000000),
        msg("c9", "c2c", "u4", "u1", 1600000300000),
        msg("g9", "group", "u3", "g1", 1600000400000),
        msg("g8", "group", "u2", "g404", 1600000400001),
    ];
    staged(&app, &token, &mid, "b.jsonl", &second.join("\n")).await;

    let exact = |why: &'static str| {
        let pool = app.pool.clone();
        async move {
            let uploads = plan::staged_uploads(&pool, m).await.unwrap();
            let stored = plan::cached_sizes(&pool, m, &uploads).await.unwrap();
            let cold = plan::sizes(&pool, &uploads).await.unwrap();
            assert_eq!(stored, cold, "{why}");
            stored
        }
    };
    report(&app, &token, &mid).await;
    // Stored by the validation itself, before any page asked.
    let kept: Option<Value> =
        sqlx::query_scalar("SELECT import_sizes FROM dump_reports WHERE migration_id = $1")
            .bind(m)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(kept.is_some(), "the validation stores the sizes");
    let s = exact("after staging").await;
    // The duplicate c0 and the message to ghost are not sent; c9 and g9 are.
    assert_eq!(s[&Phase::C2cHistory].records, 8);
    assert_eq!(s[&Phase::C2cHistory].keys, 2);
    assert_eq!(s[&Phase::GroupHistory].per_key, vec![(6, 1)]);
    assert_eq!(s[&Phase::Friends].per_key, vec![(3, 1)]);
    assert_eq!(s[&Phase::Profiles].records, 3);
    assert_eq!(s[&Phase::Unread].records, 1);

    // The preflight reads what is stored: it does not count the staged rows.
    sqlx::query("ALTER TABLE staged_messages RENAME TO staged_messages_away")
        .execute(&app.pool)
        .await
        .unwrap();
    let uploads = plan::staged_uploads(&app.pool, m).await.unwrap();
    assert_eq!(plan::cached_sizes(&app.pool, m, &uploads).await.unwrap(), s);
    sqlx::query("ALTER TABLE staged_messages_away RENAME TO staged_messages")
        .execute(&app.pool)
        .await
        .unwrap();

    // The first upload discarded: only the second's records, checked again.
    let r = app
        .with_token(
            Method::DELETE,
            &format!("/api/v1/migrations/{mid}/uploads/{a}"),
            &token,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    report(&app, &token, &mid).await;
    let s = exact("after a discard").await;
    assert_eq!(
        s[&Phase::C2cHistory].records,
        0,
        "u1, u2 are gone with a.jsonl"
    );
    assert_eq!(s[&Phase::Accounts].records, 1);

    // Re-validated (every message again) and re-added: still exact.
    let mut tx = app.pool.begin().await.unwrap();
    imshift::dumps::jobs::enqueue_validate(&mut tx, m, true)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    report(&app, &token, &mid).await;
    exact("after a re-validation").await;
    staged(&app, &token, &mid, "a2.jsonl", &first.join("\n")).await;
    report(&app, &token, &mid).await;
    let s = exact("after adding the first file again").await;
    assert_eq!(s[&Phase::Accounts].records, 4);
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn cross_record_findings_are_capped_per_rule_and_the_rest_counted(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| c.dump_limits.findings_per_rule = 2).await;
    let owner = app.owner().await;
    let token = app.token(&owner).await;
    let mid = migration(&app, &token).await;
    let mut lines = vec![r#"{"kind":"account","id":"u1"}"#.to_string()];
    for i in 0..7 {
        lines.push(format!(
            r#"{{"kind":"friend","owner":"u1","friend":"ghost{i}"}}"#
        ));
    }
    staged(&app, &token, &mid, "f.jsonl", &lines.join("\n")).await;
    let rep = report(&app, &token, &mid).await;
    let r = rule(&rep, "ref.account_missing");
    assert_eq!(r["count"], 7, "{rep:#}");
    assert_eq!(r["not_kept"], 5);
    assert_eq!(rep["errors"], 7);
    // Every one is still kept aside; only two are stored with their line.
    assert_eq!(rep["rejected"]["friend"], 7);
    assert_eq!(
        scalar(
            &app,
            "SELECT count(*) FROM dump_findings WHERE code = 'ref.account_missing'"
        )
        .await,
        2
    );
    // Checked again, the counts are rewritten, not added to.
    let mut tx = app.pool.begin().await.unwrap();
    imshift::dumps::jobs::enqueue_validate(&mut tx, mid.parse().unwrap(), true)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let rep = report(&app, &token, &mid).await;
    assert_eq!(rule(&rep, "ref.account_missing")["count"], 7, "{rep:#}");
    // Three of the ghosts arrive: four findings left, two of them counted only.
    let ghosts: Vec<String> = (0..3)
        .map(|i| format!(r#"{{"kind":"account","id":"ghost{i}"}}"#))
        .collect();
    staged(&app, &token, &mid, "g.jsonl", &ghosts.join("\n")).await;
    let rep = report(&app, &token, &mid).await;
    let r = rule(&rep, "ref.account_missing");
    assert_eq!(
        (r["count"].as_i64(), r["not_kept"].as_i64()),
        (Some(4), Some(2)),
        "{rep:#}"
    );
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_validation_overtaken_by_a_change_does_not_end_current(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let token = app.token(&owner).await;
    let mid = migration(&app, &token).await;
    let m: imshift::model::MigrationId = mid.parse().unwrap();
    let dump = concat!(
        r#"{"kind":"account","id":"u1"}"#,
        "\n",
        r#"{"kind":"friend","owner":"u1","friend":"ghost"}"#,
        "\n"
    );
    staged(&app, &token, &mid, "a.jsonl", dump).await;
    assert_eq!(settled_report(&app, &token, &mid).await["state"], "current");

    // A validation that has read the data stops at the holds it rewrites (the test holds them)...
    let mut hold = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM staged_holds FOR UPDATE")
        .execute(&mut *hold)
        .await
        .unwrap();
    let mut tx = app.pool.begin().await.unwrap();
    imshift::dumps::jobs::enqueue_validate(&mut tx, m, false)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    wait_for_waiters(&app, 1).await;
    let job: i64 = sqlx::query_scalar(
        "SELECT id FROM jobs WHERE migration_id = $1 AND kind = 'dump.validate' AND state = 'running'",
    )
    .bind(m)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    // ...when the staged data changes (what enqueue_validate does to the report).
    sqlx::query("UPDATE dump_reports SET generation = generation + 1 WHERE migration_id = $1")
        .bind(m)
        .execute(&app.pool)
        .await
        .unwrap();
    hold.commit().await.unwrap();
    let start = std::time::Instant::now();
    while scalar(
        &app,
        &format!("SELECT count(*) FROM jobs WHERE id = {job} AND state = 'done'"),
    )
    .await
        == 0
    {
        assert!(start.elapsed() < Duration::from_secs(30), "never done");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Its numbers are stored, but it does not claim to be current: a script keeps waiting.
    let r = get(
        &app,
        &token,
        &format!("/api/v1/migrations/{mid}/dumps/report"),
    )
    .await;
    assert_eq!(r["state"], "validating", "{r:#}");
    assert!(!r["validated_at"].is_null());
    // The next validation (queued with every change) ends current.
    let mut tx = app.pool.begin().await.unwrap();
    imshift::dumps::jobs::enqueue_validate(&mut tx, m, false)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(settled_report(&app, &token, &mid).await["state"], "current");
}
