//! Uncertain answers and honest words: friends whose answer was lost, or imported again, end
//! as sent (friend_check tells), not as failures Retry could never fix; and the words of
//! what failed say what happened and what happens next, consistent with the TRIES column.

use crate::common::*;
use crate::expect::sandbox_holds_exactly;
use crate::harness::*;
use imshift::dumps::fixtures::Spec;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::PgPool;

fn phase<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == name)
        .unwrap_or_else(|| panic!("no phase {name} in {run:#}"))
}

fn spec() -> Spec {
    Spec {
        accounts: 120,
        friends: 6,
        groups: 4,
        members: 6,
        messages: 300,
        seed: 21,
        ..Spec::default()
    }
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn friends_whose_answers_were_lost_are_found_not_failed(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    // Every other friend_import is carried out and its answer cut off.
    let sb = sandbox(|c| {
        c.lost_answer_rate = 0.5;
        c.lost_answer_apis = vec!["sns/friend_import".into()];
        c.seed = 4;
    })
    .await;
    let m = migration(&app, &sb, 2000).await;
    let bytes = dump(&spec());
    stage(&app, &m, bytes.clone()).await;
    let run = launch(&app, &m).await;
    let done = wait_for(&app, &m, &run, &["done"], 300).await;
    assert_eq!(done["failed"], 0, "{done:#}");
    let friends = phase(&done, "friends");
    assert_eq!(friends["sent"], friends["total"], "{friends:#}");
    let state = sb.state();
    let lost = state["apis"]["sns/friend_import"]["lost"].as_u64().unwrap();
    assert!(lost > 0, "answers were lost: {state:#}");
    assert!(
        state["apis"]["sns/friend_check"]["calls"].as_u64().unwrap() > 0,
        "imshift asked the target instead of guessing: {state:#}"
    );
    // Every edge once, nothing else.
    sandbox_holds_exactly(&bytes, &sb.export());
    let found: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM import_results WHERE phase = 'friends' AND state = 'sent'
           AND sent->>'note' LIKE '%friend_check%'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(
        found > 0,
        "some friends were found on the target, not sent twice"
    );
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn importing_the_same_friends_again_fails_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let sb = sandbox(|_| {}).await;
    let m = migration(&app, &sb, 2000).await;
    let bytes = dump(&spec());
    stage(&app, &m, bytes.clone()).await;
    let first = launch(&app, &m).await;
    let done = wait_for(&app, &m, &first, &["done"], 300).await;
    assert_eq!(done["failed"], 0, "{done:#}");
    // The whole migration again (as after a crash of everything, or a team starting over):
    // Tencent refuses each friend already there with 30001.
    let again = launch(&app, &m).await;
    let done = wait_for(&app, &m, &again, &["done"], 300).await;
    assert_eq!(done["failed"], 0, "{done:#}");
    let friends = phase(&done, "friends");
    assert_eq!(friends["sent"], friends["total"], "{friends:#}");
    let codes = &sb.state()["apis"]["sns/friend_import"]["codes"];
    assert!(
        codes.get("30001").is_none(),
        "whole requests are not refused: {codes}"
    );
    let repeats: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM import_results WHERE run_id = $1::uuid AND phase = 'friends'
           AND sent->>'note' LIKE 'already on the friend list%'",
    )
    .bind(&again)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        repeats,
        friends["total"].as_i64().unwrap(),
        "each friend was found already there"
    );
    sandbox_holds_exactly(&bytes, &sb.export());
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_flaky_target_is_described_as_it_was_in_failures_csv_and_test_connection(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    // Every request fails with a transient error.
    let sb = sandbox(|c| {
        c.fault_rate = 1.0;
        c.seed = 2;
    })
    .await;
    let m = migration(&app, &sb, 2000).await;

    // Test connection sends one request; nothing sends it again.
    let r = app
        .with_token(Method::POST, &m.path("/keys/test"), &m.token, None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let check: Value = r.json().await.unwrap();
    assert_eq!(check["ok"], false, "{check:#}");
    let words = check["message"].as_str().unwrap();
    assert!(words.contains("Nothing was retried"), "{words}");
    assert!(!words.contains("will be retried"), "{words}");

    stage(
        &app,
        &m,
        br#"{"kind":"account","id":"u1","nick":"One"}
"#
        .to_vec(),
    )
    .await;
    let run = launch(&app, &m).await;
    let done = wait_for(&app, &m, &run, &["done"], 300).await;
    assert_eq!(done["failed"], 1, "{done:#}");
    let f = get(&app, &m, &format!("/imports/{run}/failures")).await;
    let failure = &f["failures"][0];
    let message = failure["message"].as_str().unwrap();
    let tries = failure["attempts"].as_i64().unwrap();
    // The words and the TRIES column tell the same story.
    assert_eq!(tries, 8, "{failure:#}");
    assert!(
        message.starts_with(
            "sent 8 times, failing every time; imshift waited and sent it again 7 times ("
        ),
        "{message}"
    );
    assert!(
        message.ends_with("this run does not send it again: Retry sends it again"),
        "{message}"
    );
    for promise in ["will be retried", "imshift retries", "waits and retries"] {
        assert!(!message.contains(promise), "{message}");
    }
    let csv = app
        .with_token(
            Method::GET,
            &m.path(&format!("/imports/{run}/failures.csv")),
            &m.token,
            None,
        )
        .await
        .text()
        .await
        .unwrap();
    let line = csv.lines().nth(1).unwrap();
    assert!(line.contains("sent 8 times, failing every time"), "{csv}");
    assert!(line.contains("Retry sends it again"), "{csv}");
    assert!(line.contains(",8,"), "TRIES is 8 in the CSV too: {csv}");
    assert!(!csv.contains("will be retried"), "{csv}");
}
