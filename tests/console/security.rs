//! Sign-in and session edges (issue 10 part 4): atomic throttling, the client address behind a
//! trusted proxy, slowing rather than locking out, `next`, counted failure audit rows, token
//! rights, the progress stream re-checking its caller, CSV cells, security headers, /metrics.

use crate::common::*;
use imshift::model::Role;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::time::Duration;

/// A sign-in as the hydrated page sends it, from a client with no session.
async fn sign_in(app: &TestApp, client: &Client, email: &str, password: &str) -> reqwest::Response {
    client
        .post(format!("{}/_fn/login", app.base))
        .header("origin", &app.base)
        .form(&[("email", email), ("password", password), ("next", "/")])
        .send()
        .await
        .unwrap()
}

async fn sign_in_via(app: &TestApp, forwarded_for: &str, email: &str) -> StatusCode {
    app.anon()
        .post(format!("{}/_fn/login", app.base))
        .header("origin", &app.base)
        .header("x-forwarded-for", forwarded_for)
        .form(&[("email", email), ("password", "wrong password!")])
        .send()
        .await
        .unwrap()
        .status()
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn parallel_wrong_passwords_get_at_most_five_checks(pool: PgPool) {
    // A long first wait, so a slow machine cannot open a sixth slot during the burst.
    let app = TestApp::spawn_with(pool, |c| c.login_delay = Duration::from_secs(60)).await;
    app.owner().await;
    let attempts = (0..30).map(|_| {
        let (base, client) = (app.base.clone(), app.anon());
        tokio::spawn(async move {
            client
                .post(format!("{base}/_fn/login"))
                .header("origin", &base)
                .form(&[("email", OWNER), ("password", "wrong password!")])
                .send()
                .await
                .unwrap()
                .status()
        })
    });
    let statuses: Vec<StatusCode> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(
        checked, 5,
        "password checks among 30 parallel attempts: {statuses:?}"
    );
    assert_eq!(refused, 25, "{statuses:?}");
    let r = sign_in(&app, &app.anon(), OWNER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn attempts_slow_down_and_the_right_password_gets_through_after_the_wait(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| {
        c.login_delay = Duration::from_secs(1);
        c.login_window = Duration::from_secs(600);
    })
    .await;
    app.owner().await;
    let client = app.anon();
    for _ in 0..5 {
        let r = sign_in(&app, &client, OWNER, "wrong password!").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // The sixth attempt waits one second, and says so.
    let r = sign_in(&app, &client, OWNER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "1");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = sign_in(&app, &client, OWNER, "wrong password!").await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "checked after the wait"
    );
    // Each further failure doubles the wait.
    let r = sign_in(&app, &client, OWNER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "2");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // The right password is not locked out for the window (ten minutes): it gets in.
    let r = sign_in(&app, &client, OWNER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    // And a success starts the email afresh.
    let r = sign_in(&app, &client, OWNER, "wrong password!").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// The CLI, run as an operator would, against this test's database.
fn imshift_cli(pool: &PgPool, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let db = pool.connect_options().get_database().unwrap().to_string();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_imshift"))
        .args(args)
        .env(
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:5432/{db}"),
        )
        .env("IMSHIFT_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_locked_out_owner_gets_back_in_with_reset_password(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| c.login_delay = Duration::from_secs(600)).await;
    let owner = app.owner().await;
    let token = app.token(&owner).await;
    for _ in 0..6 {
        sign_in(&app, &app.anon(), OWNER, "wrong password!").await;
    }
    assert_eq!(
        sign_in(&app, &app.anon(), OWNER, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    let new = "a brand new passphrase";
    let out = imshift_cli(
        &app.pool,
        &["user", "reset-password", "--email", OWNER],
        &format!("{new}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("1 API token revoked"), "{said}");
    assert!(!said.contains(new) && !String::from_utf8_lossy(&out.stderr).contains(new));

    // In at once with the new password; the old session and the token are gone.
    assert_eq!(
        sign_in(&app, &app.anon(), OWNER, new).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        owner.api(Method::GET, "/api/v1/me", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.with_token(Method::GET, "/api/v1/me", &token, None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let (actor, details): (String, Value) =
        sqlx::query_as("SELECT actor, details FROM audit_log WHERE action = 'auth.password_reset'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(actor, "cli");
    assert_eq!(details, json!({ "tokens_revoked": 1 }));
    assert!(!details.to_string().contains(new));

    let out = imshift_cli(
        &app.pool,
        &["user", "reset-password", "--email", "nobody@example.com"],
        &format!("{new}\n"),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nobody@example.com"));
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_script_gets_its_first_token_from_the_command_line(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.owner().await;
    let out = imshift_cli(
        &app.pool,
        &["token", "create", "--email", OWNER, "--name", "ci"],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(secret.starts_with("imshift_pat_"), "{secret}");
    let me = app
        .with_token(Method::GET, "/api/v1/me", &secret, None)
        .await;
    assert_eq!(me.status(), StatusCode::OK);
    // Without --can-mint-tokens it cannot make more tokens.
    let r = app
        .with_token(
            Method::POST,
            "/api/v1/tokens",
            &secret,
            Some(json!({"name": "more"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (actor, target): (String, String) =
        sqlx::query_as("SELECT actor, target FROM audit_log WHERE action = 'token.created'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(actor, "cli");
    assert!(target.starts_with("token:"));
    let logged: String = sqlx::query_scalar("SELECT string_agg(details::text, ' ') FROM audit_log")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(!logged.contains(&secret[12..]), "the secret is not audited");

    let out = imshift_cli(
        &app.pool,
        &[
            "token",
            "create",
            "--email",
            OWNER,
            "--name",
            "minter",
            "--can-mint-tokens",
        ],
        "",
    );
    let minter = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let r = app
        .with_token(
            Method::POST,
            "/api/v1/tokens",
            &minter,
            Some(json!({"name": "made by a token"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn the_client_address_comes_from_a_trusted_proxy_only(pool: PgPool) {
    // Trusted: the load balancer (here, the test's own loopback) names the client.
    let app = TestApp::spawn_with(pool.clone(), |c| {
        c.login_max_failures = 2;
        c.login_delay = Duration::from_secs(600);
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    app.owner().await;
    // Eight free attempts per address (four times the email's), each with a new email.
    for i in 0..8 {
        let s = sign_in_via(&app, "203.0.113.7", &format!("u{i}@example.com")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    assert_eq!(
        sign_in_via(&app, "203.0.113.7", "u9@example.com").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another client behind the same proxy is not slowed by that one.
    assert_eq!(
        sign_in_via(&app, "198.51.100.1", "u10@example.com").await,
        StatusCode::UNAUTHORIZED
    );
    // A client cannot escape by prepending addresses: the right-most untrusted one counts.
    assert_eq!(
        sign_in_via(&app, "1.2.3.4, 203.0.113.7", "u11@example.com").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    let ips: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT DISTINCT ip FROM audit_log WHERE action = 'auth.login_failed' ORDER BY 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        ips,
        vec![Some("198.51.100.1".into()), Some("203.0.113.7".into())]
    );
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn forwarded_headers_from_an_untrusted_peer_are_ignored(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| {
        c.login_max_failures = 2;
        c.login_delay = Duration::from_secs(600);
    })
    .await;
    app.owner().await;
    // A new made-up address each time does not make a new client.
    for i in 0..8 {
        let s = sign_in_via(&app, &format!("10.9.9.{i}"), &format!("u{i}@example.com")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    assert_eq!(
        sign_in_via(&app, "10.9.9.200", "u9@example.com").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    let ips: Vec<Option<String>> =
        sqlx::query_scalar("SELECT DISTINCT ip FROM audit_log WHERE action = 'auth.login_failed'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(ips, vec![Some("127.0.0.1".into())]);
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn next_after_sign_in_stays_on_this_site(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.owner().await;
    for (next, want) in [
        ("/migrations?tab=keys", "/migrations?tab=keys"),
        ("/\t/evil.example", "/"),
        ("/\n", "/"),
        ("/x\r\nSet-Cookie: a=b", "/"),
        ("//evil", "/"),
        ("/\\evil", "/"),
        ("https://evil", "/"),
        ("/caf\u{e9}", "/caf%C3%A9"),
    ] {
        let r = app
            .browser()
            .call(
                "login",
                &[("email", OWNER), ("password", PASSWORD), ("next", next)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{next:?}");
        assert_eq!(r.headers()["location"], want, "{next:?}");
    }
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn failed_sign_ins_are_audited_once_per_window_with_a_count(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| {
        c.login_window = Duration::from_secs(5);
        c.login_delay = Duration::from_secs(5);
    })
    .await;
    app.owner().await;
    let client = app.anon();
    // Five wrong passwords, then three refused by the throttle: one audit row.
    for _ in 0..8 {
        sign_in(&app, &client, OWNER, "wrong password!").await;
    }
    let rows = |app: &TestApp| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_as::<_, (String, Value)>(
                "SELECT target, details FROM audit_log WHERE action = 'auth.login_failed' ORDER BY id",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    let first = rows(&app).await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].1["attempts"], 1);

    // Once the window has passed, the next sign-in attempt (anyone's) writes the rest of the
    // count, and prunes what the window left behind.
    sqlx::query("INSERT INTO login_throttle (key, failures, last_at) VALUES ('ip:192.0.2.1', 3, now() - interval '1 day')")
        .execute(&app.pool)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5200)).await;
    sign_in(&app, &client, "someone@example.com", "wrong password!").await;
    let all = rows(&app).await;
    let owner_rows: Vec<&Value> = all
        .iter()
        .filter(|(t, _)| t == OWNER)
        .map(|(_, d)| d)
        .collect();
    assert_eq!(owner_rows.len(), 2, "{all:?}");
    assert_eq!(owner_rows[1]["attempts"], 7);
    assert_eq!(owner_rows[1]["wrong_password"], 4);
    assert_eq!(owner_rows[1]["throttled"], 3);
    let stale: i64 =
        sqlx::query_scalar("SELECT count(*) FROM login_throttle WHERE key = 'ip:192.0.2.1'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(stale, 0, "old throttle rows are pruned");
    let reports: i64 =
        sqlx::query_scalar("SELECT count(*) FROM login_failure_reports WHERE email = lower($1)")
            .bind(OWNER)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(reports, 0, "old report rows are pruned");
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn over_long_emails_are_refused_before_the_database(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.owner().await;
    for len in [321, 3000, 100_000] {
        let email = format!("{}@example.com", "a".repeat(len));
        let r = sign_in(&app, &app.anon(), &email, "wrong password!").await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{len}");
    }
    let touched: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM login_throttle) + (SELECT count(*) FROM login_failure_reports)
              + (SELECT count(*) FROM audit_log WHERE action = 'auth.login_failed')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(touched, 0);
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn only_a_valid_token_skips_the_cross_site_check(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    // A made-up bearer on a cross-site sign-out with the victim's cookie: refused, and the
    // session lives on.
    let r = owner
        .http
        .post(format!("{}/_fn/logout", app.base))
        .header("origin", "https://evil.example")
        .bearer_auth("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = owner
        .http
        .post(format!("{}/_fn/logout", app.base))
        .header("origin", "https://evil.example")
        .bearer_auth("imshift_pat_forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        owner.api(Method::GET, "/api/v1/me", None).await.status(),
        StatusCode::OK
    );
    assert!(!app
        .audit_actions()
        .await
        .contains(&"auth.logout".to_string()));

    // A real token needs no Origin.
    let token = app.token(&owner).await;
    let r = app
        .anon()
        .post(format!("{}/api/v1/invites", app.base))
        .header("origin", "https://elsewhere.example")
        .bearer_auth(&token)
        .json(&json!({"email": "ci@example.com", "role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn tokens_mint_tokens_only_with_the_right_and_die_with_a_password_change(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let plain = app.token(&owner).await;
    let r = app
        .with_token(
            Method::POST,
            "/api/v1/tokens",
            &plain,
            Some(json!({"name": "child"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(r).await, "forbidden");

    let r = owner
        .api(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "minter", "can_mint_tokens": true})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["token"]["can_mint_tokens"], true);
    let minter = created["secret"].as_str().unwrap().to_string();
    let r = app
        .with_token(
            Method::POST,
            "/api/v1/tokens",
            &minter,
            Some(json!({"name": "child"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let child: Value = r.json().await.unwrap();
    assert_eq!(child["token"]["can_mint_tokens"], false);

    // A password change revokes every token of the user, and the audit row says how many.
    let r = owner
        .call(
            "change_password",
            &[
                ("current", PASSWORD),
                ("new", "another good passphrase"),
                ("confirm", "another good passphrase"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    for t in [&plain, &minter, child["secret"].as_str().unwrap()] {
        let r = app.with_token(Method::GET, "/api/v1/me", t, None).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let details: Value =
        sqlx::query_scalar("SELECT details FROM audit_log WHERE action = 'auth.password_changed'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(details["tokens_revoked"], 3);
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_removed_member_stops_receiving_the_progress_stream(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let viewer = app.member("viewer@example.com", Role::Viewer).await;
    let r = owner
        .api(
            Method::POST,
            "/api/v1/migrations",
            Some(json!({"name": "m", "strategy": "coexistence", "source": "netease", "target": "tencent"})),
        )
        .await;
    let mid = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // A paused run: its stream never ends by itself.
    let run = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO import_runs (id, migration_id, state, target, paused_at)
         VALUES ($1, $2::uuid, 'paused', 'tencent', now())",
    )
    .bind(run)
    .bind(&mid)
    .execute(&app.pool)
    .await
    .unwrap();
    let mut stream = viewer
        .get(&format!("/api/v1/migrations/{mid}/imports/{run}/events"))
        .await;
    assert_eq!(stream.status(), StatusCode::OK);
    let first = stream.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: status"));

    let id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM users WHERE email = 'viewer@example.com'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let r = owner
        .api(Method::DELETE, &format!("/api/v1/users/{id}"), None)
        .await;
    assert!(r.status().is_success());
    // At most one more tick, then the stream ends.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        let mut after = 0;
        while let Some(c) = stream.chunk().await.unwrap() {
            if String::from_utf8_lossy(&c).contains("event: status") {
                after += 1;
            }
        }
        after
    })
    .await
    .expect("the stream goes on after the member was removed");
    assert!(ended <= 1, "{ended} updates after removal");
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn csv_exports_make_formula_cells_inert(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let token = app.token(&owner).await;
    // Audit: failed sign-ins put the typed email in the target column.
    let hostile = ["=1+2", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"];
    for email in hostile {
        sign_in(&app, &app.anon(), email, "wrong password!").await;
    }
    let csv_text = owner
        .get("/api/v1/audit/export.csv")
        .await
        .text()
        .await
        .unwrap();
    let mut targets = Vec::new();
    for rec in csv::Reader::from_reader(csv_text.as_bytes()).records() {
        targets.push(rec.unwrap()[4].to_string());
    }
    for email in hostile {
        let want = format!("'{}", email.trim());
        assert!(
            targets.contains(&want),
            "{email:?} escaped as {want:?} in {targets:?}"
        );
    }

    // Findings: the excerpt of a line that is not JSON.
    let mid = crate::dumps::migration(&app, &token).await;
    let r = crate::dumps::post_dump(
        &app,
        &token,
        &mid,
        "d.jsonl",
        "",
        b"{\"kind\":\"account\",\"id\":\"u1\"}\n=HYPERLINK(\"http://evil\")\n".to_vec(),
    )
    .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    crate::dumps::report(&app, &token, &mid).await;
    let findings = app
        .with_token(
            Method::GET,
            &format!("/api/v1/migrations/{mid}/dumps/findings.csv"),
            &token,
            None,
        )
        .await
        .text()
        .await
        .unwrap();
    let excerpts: Vec<String> = csv::Reader::from_reader(findings.as_bytes())
        .records()
        .map(|r| r.unwrap()[5].to_string())
        .collect();
    assert!(
        excerpts.iter().any(|e| e.starts_with("'=HYPERLINK")),
        "{findings}"
    );
    assert!(!excerpts.iter().any(|e| e.starts_with('=')), "{findings}");

    // Failures: the target's message.
    let run = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO import_runs (id, migration_id, state, target) VALUES ($1, $2::uuid, 'done', 'tencent')",
    )
    .bind(run)
    .bind(&mid)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO import_results (run_id, phase, upload_id, ord, state, code, message)
         VALUES ($1, 'accounts', $2, 1, 'failed', 70107, '=cmd|'' /C calc''!A0')",
    )
    .bind(run)
    .bind(uuid::Uuid::new_v4())
    .execute(&app.pool)
    .await
    .unwrap();
    let failures = app
        .with_token(
            Method::GET,
            &format!("/api/v1/migrations/{mid}/imports/{run}/failures.csv"),
            &token,
            None,
        )
        .await
        .text()
        .await
        .unwrap();
    let messages: Vec<String> = csv::Reader::from_reader(failures.as_bytes())
        .records()
        .map(|r| r.unwrap()[4].to_string())
        .collect();
    assert_eq!(
        messages,
        vec!["'=cmd|' /C calc'!A0".to_string()],
        "{failures}"
    );
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn pages_carry_security_headers_and_a_nonce_on_every_script(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let mut nonces = Vec::new();
    for (who, path) in [(app.browser(), "/login"), (owner, "/")] {
        let r = who.get(path).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let h = r.headers().clone();
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "same-origin");
        assert_eq!(h["x-frame-options"], "DENY");
        let csp = h["content-security-policy"].to_str().unwrap().to_string();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("'wasm-unsafe-eval'"), "{csp}");
        assert!(!csp.contains("script-src 'self' 'unsafe-inline'"), "{csp}");
        let nonce = csp
            .split("'nonce-")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .unwrap_or_else(|| panic!("no nonce in {csp}"))
            .to_string();
        let html = r.text().await.unwrap();
        let scripts: Vec<&str> = html.split("<script").skip(1).collect();
        assert!(!scripts.is_empty(), "{path} has the hydration script");
        for s in &scripts {
            let tag = &s[..s.find('>').unwrap()];
            assert!(
                tag.contains(&format!("nonce=\"{nonce}\"")),
                "{path}: <script{tag}> lacks this answer's nonce"
            );
        }
        nonces.push(nonce);
    }
    assert_ne!(nonces[0], nonces[1], "a new nonce for every answer");

    let r = app
        .anon()
        .get(format!("{}/api/v1/me", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .starts_with("default-src 'none'"));
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn metrics_are_for_this_machine_or_the_metrics_token(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| c.metrics_token = Some("scrape-me-0042".into())).await;
    let get = |xff: Option<&str>, token: Option<&str>| {
        let mut rb = app.anon().get(format!("{}/metrics", app.base));
        if let Some(x) = xff {
            rb = rb.header("x-forwarded-for", x);
        }
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        async move { rb.send().await.unwrap().status() }
    };
    assert_eq!(get(None, None).await, StatusCode::OK, "loopback");
    // Relayed by a proxy on this machine: not local.
    assert_eq!(get(Some("203.0.113.9"), None).await, StatusCode::FORBIDDEN);
    assert_eq!(
        get(Some("203.0.113.9"), Some("wrong")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(Some("203.0.113.9"), Some("scrape-me-0042")).await,
        StatusCode::OK
    );
}
