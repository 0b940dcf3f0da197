//! Findings of vendor formats show the user's own line beside the canonical record it became
//! (issue 11): the message names canonical fields (`from`, `body.lat`), the user's file has
//! Easemob's (`payload.from`, `bodies[0].lat`). In `imshift validate`'s JSON and in the
//! console's report and REST findings, for line findings and for findings across records.

use super::{cli, scratch, write};
use imshift::auth::Actor;
use imshift::dumps::bench::ingest_file;
use imshift::dumps::report::{findings, report, FindingFilter};
use imshift::dumps::validate::validate_files;
use imshift::dumps::Limits;
use imshift::model::Role;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// A text message between accounts the dump never defines (two `ref.account_missing` across
/// records), then a location whose latitude is off the globe (`field.value` on its line).
const TEXT: &str = r#"{"msg_id":"1240318411839211108","timestamp":1710489612482,"direction":"outgoing","to":"1102240315112233#chatdemo_bob@easemob.com","from":"1102240315112233#chatdemo_alice@easemob.com","chat_type":"chat","payload":{"bodies":[{"msg":"早上好 Bob","type":"txt"}],"ext":{},"from":"alice","meta":{},"to":"bob","type":"chat"}}"#;
const SWAPPED: &str = r#"{"msg_id":"1240319001178457956","timestamp":1710489749703,"direction":"outgoing","to":"1102240315112233#chatdemo_bob@easemob.com","from":"1102240315112233#chatdemo_alice@easemob.com","chat_type":"chat","payload":{"bodies":[{"addr":"经纬度写反了","lat":116.36302,"lng":39.9053,"type":"loc"}],"ext":{},"from":"alice","meta":{},"to":"bob","type":"chat"}}"#;

fn owner() -> Actor {
    Actor {
        user_id: Uuid::new_v4(),
        email: "owner@example.com".into(),
        role: Role::Owner,
        token_id: None,
        ip: None,
    }
}

fn dump() -> String {
    format!("{TEXT}\n{SWAPPED}\n")
}

/// The canonical message a line became, as a finding carries it.
fn canonical(converted: &str) -> Value {
    serde_json::from_str(converted.lines().next().unwrap())
        .unwrap_or_else(|e| panic!("{converted:?}: {e}"))
}

#[test]
fn validate_shows_the_easemob_line_beside_its_canonical_record() {
    let dir = scratch();
    let f = write(&dir, "history.jsonl", &dump());
    let r = validate_files(&[&f], None, None).unwrap();
    let missing = r
        .findings
        .iter()
        .find(|f| f.code == "ref.account_missing" && f.line == 1)
        .expect("a finding across records on line 1");
    assert_eq!(missing.excerpt, TEXT, "the user's line, as in the file");
    let c = canonical(missing.converted.as_deref().unwrap());
    assert_eq!(
        (c["kind"].as_str(), c["from"].as_str()),
        (Some("message"), Some("alice"))
    );
    let off = r
        .findings
        .iter()
        .find(|f| f.code == "field.value" && f.line == 2)
        .expect("the location off the globe");
    assert_eq!(off.excerpt, SWAPPED);
    assert_eq!(
        canonical(off.converted.as_deref().unwrap())["body"]["type"],
        "location"
    );

    // `imshift validate` prints both; a canonical line prints neither (it is its record).
    let (_, out) = cli(&[f.to_str().unwrap()]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let first = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "ref.account_missing")
        .unwrap();
    assert_eq!(first["line_text"], TEXT);
    assert!(first["converted"]
        .as_str()
        .unwrap()
        .contains(r#""kind":"message""#));
    let plain = write(
        &dir,
        "plain.jsonl",
        "{\"kind\":\"friend\",\"owner\":\"u1\",\"friend\":\"ghost\"}\n",
    );
    let (_, out) = cli(&[plain.to_str().unwrap()]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(v["findings"][0].get("converted").is_none(), "{out}");
    assert!(v["findings"][0].get("line_text").is_none(), "{out}");
}

#[test]
fn a_very_long_vendor_line_is_shown_cut_at_a_character() {
    let dir = scratch();
    let long = TEXT.replace("早上好 Bob", &"早".repeat(5000));
    let f = write(&dir, "long.jsonl", &format!("{long}\n"));
    let r = validate_files(&[&f], None, None).unwrap();
    let missing = r.findings.iter().find(|f| f.line == 1).unwrap();
    assert!(
        missing.excerpt.len() <= 4096 + 3,
        "{}",
        missing.excerpt.len()
    );
    assert!(
        missing.excerpt.ends_with('…') && long.starts_with(missing.excerpt.trim_end_matches('…'))
    );
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn the_console_keeps_the_users_line_with_findings_of_a_converted_dump(pool: PgPool) {
    let dir = scratch();
    let f = write(&dir, "history.jsonl", &dump());
    let o = ingest_file(&pool, &f, &dir, Limits::default())
        .await
        .unwrap();
    assert_eq!(o.state, "staged", "{:?}", o.error);

    // The staged record keeps the line it came from.
    let raw: Option<String> =
        sqlx::query_scalar("SELECT raw FROM staged_messages WHERE upload_id = $1 AND line = 1")
            .bind(o.upload)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(raw.as_deref(), Some(TEXT));

    let r = report(&pool, &owner(), o.migration).await.unwrap();
    let rule = |code: &str| r.rules.iter().find(|x| x.code == code).unwrap().clone();
    let across = rule("ref.account_missing").examples[0].clone();
    assert_eq!((across.line, across.excerpt.as_str()), (1, TEXT));
    let c = canonical(across.converted.as_deref().expect("the canonical record"));
    assert_eq!(
        (c["from"].as_str(), c["to"].as_str()),
        (Some("alice"), Some("bob"))
    );
    let on_line = rule("field.value").examples[0].clone();
    assert_eq!((on_line.line, on_line.excerpt.as_str()), (2, SWAPPED));
    assert_eq!(
        canonical(on_line.converted.as_deref().unwrap())["body"]["type"],
        "location"
    );

    // The REST findings carry the same.
    let page = findings(&pool, &owner(), o.migration, &FindingFilter::default())
        .await
        .unwrap();
    assert!(
        page.findings.iter().all(|f| f.converted.is_some()),
        "{page:?}"
    );

    // A canonical dump's findings show the line itself and nothing converted.
    let plain = write(
        &dir,
        "plain.jsonl",
        "{\"kind\":\"friend\",\"owner\":\"u1\",\"friend\":\"ghost\"}\nnot json\n",
    );
    let o = ingest_file(&pool, &plain, &dir, Limits::default())
        .await
        .unwrap();
    let page = findings(&pool, &owner(), o.migration, &FindingFilter::default())
        .await
        .unwrap();
    assert!(!page.findings.is_empty());
    assert!(
        page.findings.iter().all(|f| f.converted.is_none()),
        "{page:?}"
    );
    let raw: Option<String> =
        sqlx::query_scalar("SELECT raw FROM staged_friends WHERE upload_id = $1")
            .bind(o.upload)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(raw, None);
}
