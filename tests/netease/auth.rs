//! The envelope around every call: routing, the signature headers, quotas, and the sandbox
//! as the provider seam starts it.

use crate::common::*;
use imshift::model::{MigrationId, Side};
use imshift::providers::netease::sandbox::{cli::SandboxArgs, NeteaseSandbox};
use imshift::providers::{Connection, Limits, Sandbox, StartOptions};
use secrecy::{ExposeSecret, SecretString};

#[tokio::test]
async fn a_wrong_checksum_or_a_curtime_over_300_s_away_is_414_and_nothing_is_applied() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    let now = now_secs();
    let cases = [
        ("wrong secret", "not-the-secret", now),
        ("stale", SECRET, now - 301),
        ("from the future", SECRET, now + 301),
    ];
    for (what, secret, at) in cases {
        let v = answer(
            c.send_as("user/create", &[("accid", "u1")], secret, at, "n1")
                .await,
        )
        .await;
        assert_eq!(code(&v), 414, "{what}: {v}");
        assert!(desc(&v).starts_with("checksum"), "{what}: {v}");
    }
    assert_eq!(h.state()["accounts"], 0);
    // Inside the window (with room for a slow machine) the same call goes through.
    let v = answer(
        c.send_as("user/create", &[("accid", "u1")], SECRET, now - 280, "n1")
            .await,
    )
    .await;
    assert_eq!(code(&v), 200, "{v}");
    assert_eq!(h.state()["accounts"], 1);
}

#[tokio::test]
async fn an_unknown_app_key_is_403() {
    let h = sandbox().await;
    let c = Caller::new(&h.base_url(), "ffffffffffffffffffffffffffffffff", SECRET);
    let v = c.call("user/create", &[("accid", "u1")]).await;
    assert_eq!(code(&v), 403, "{v}");
    assert_eq!(h.state()["accounts"], 0);
}

#[tokio::test]
async fn a_nonce_must_be_1_to_128_characters_and_curtime_decimal_seconds() {
    let h = sandbox().await;
    let c = Caller::of(&h);
    let now = now_secs();
    let long = "n".repeat(129);
    let v = answer(
        c.send_as("user/getUinfos", &[("accids", "[]")], SECRET, now, &long)
            .await,
    )
    .await;
    assert_eq!(code(&v), 414, "{v}");
    let v = answer(
        c.send_as("user/getUinfos", &[("accids", "[]")], SECRET, now, "")
            .await,
    )
    .await;
    assert_eq!(code(&v), 414, "{v}");
    let v = answer(
        c.send_as(
            "user/getUinfos",
            &[("accids", "[]")],
            SECRET,
            now,
            &long[..128],
        )
        .await,
    )
    .await;
    assert_eq!(code(&v), 200, "{v}");
    // CurTime in milliseconds (a common slip) is far outside the window.
    let v = answer(
        c.send_as(
            "user/getUinfos",
            &[("accids", "[]")],
            SECRET,
            now * 1000,
            "n",
        )
        .await,
    )
    .await;
    assert_eq!(code(&v), 414, "{v}");
}

#[tokio::test]
async fn only_a_post_to_a_known_action_is_routed_and_only_form_bodies_are_read() {
    let h = sandbox().await;
    let http = reqwest::Client::new();
    let root = h.root_url();
    for (method, path) in [
        (reqwest::Method::GET, "/nimserver/user/create.action"),
        (reqwest::Method::POST, "/nimserver/user/create"),
        (reqwest::Method::POST, "/nimserver/user/noSuchOp.action"),
        (reqwest::Method::POST, "/nimserver/user/create.action/x"),
        (reqwest::Method::POST, "/user/create.action"),
        (reqwest::Method::POST, "/v4/openim/sendmsg"),
    ] {
        let r = http
            .request(method.clone(), format!("{root}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404, "{method} {path}");
    }
    // A signed call with a JSON body: the envelope answers, over HTTP 200.
    let now = now_secs().to_string();
    let r = http
        .post(format!("{}/user/create.action", h.base_url()))
        .header("AppKey", APP_KEY)
        .header("Nonce", "abc")
        .header("CurTime", &now)
        .header(
            "CheckSum",
            imshift::providers::netease::sign::checksum(SECRET, "abc", &now),
        )
        .header("content-type", "application/json")
        .body(r#"{"accid":"u1"}"#)
        .send()
        .await
        .unwrap();
    let v = answer(r).await;
    assert_eq!(code(&v), 414, "{v}");
    assert_eq!(h.state()["accounts"], 0);
    // The charset suffix is ignored.
    let r = http
        .post(format!("{}/user/create.action", h.base_url()))
        .header("AppKey", APP_KEY)
        .header("Nonce", "abc")
        .header("CurTime", &now)
        .header(
            "CheckSum",
            imshift::providers::netease::sign::checksum(SECRET, "abc", &now),
        )
        .header(
            "content-type",
            "application/x-www-form-urlencoded;charset=UTF-8",
        )
        .body("accid=u%31&name=A+B")
        .send()
        .await
        .unwrap();
    let v = answer(r).await;
    assert_eq!(code(&v), 200, "{v}");
    assert_eq!(v["info"]["accid"], "u1");
    assert_eq!(v["info"]["name"], "A B");
}

#[tokio::test]
async fn started_through_the_seam_a_quota_of_2_per_second_answers_416_and_counts_it() {
    let limits = Limits::from_table(&[("user/create", 2, None)]);
    let started = NeteaseSandbox
        .start(
            None,
            StartOptions {
                limits: Some(limits),
                ..StartOptions::default()
            },
        )
        .await
        .unwrap();
    let port = started.sandbox.addr().port();
    assert_eq!(started.public["data_centre"], "custom");
    assert_eq!(
        started.public["base_url"],
        format!("http://127.0.0.1:{port}/nimserver")
    );
    let app_key = started.public["app_key"].as_str().unwrap().to_string();
    let (field, secret) = &started.secrets[0];
    assert_eq!(field, "app_secret");
    let c = Caller::new(
        started.public["base_url"].as_str().unwrap(),
        &app_key,
        secret.expose_secret(),
    );
    // The bucket holds 2: the first two pass, and calls made at once after them are refused
    // until it refills (one every 500 ms).
    let mut codes = Vec::new();
    for i in 0..6 {
        let v = c.call("user/create", &[("accid", &format!("q{i}"))]).await;
        codes.push(code(&v));
    }
    assert_eq!(&codes[..2], &[200, 200], "{codes:?}");
    let refused = codes.iter().filter(|&&c| c == 416).count() as u64;
    assert!(refused >= 1, "{codes:?}");
    assert!(codes.iter().all(|&c| c == 200 || c == 416), "{codes:?}");
    assert_eq!(started.sandbox.throttled(), Some(refused));
    let state: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{port}/_sandbox/state"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(NeteaseSandbox.throttled_in(&state), Some(refused));
    assert_eq!(state["accounts"], 6 - refused);
    // NetEase counts a category, not an API (reference §1.5): another user call right after
    // is refused too, while a team call has its own bucket.
    let v = c.call("user/getUinfos", &[("accids", "[\"q0\"]")]).await;
    assert_eq!(code(&v), 416, "{v}");
    let v = c.call("team/joinTeams", &[("accid", "q0")]).await;
    assert_eq!(code(&v), 200, "{v}");
}

#[tokio::test]
async fn started_with_a_connection_it_accepts_that_connections_keys() {
    let mut conn = Connection::empty(MigrationId::NIL, Side::Target);
    conn.public.insert("app_key".into(), APP_KEY.into());
    conn.secrets
        .insert("app_secret".into(), SecretString::from(SECRET.to_string()));
    let started = NeteaseSandbox
        .start(Some(&conn), StartOptions::default())
        .await
        .unwrap();
    assert_eq!(started.public["app_key"], APP_KEY);
    assert_eq!(started.secrets[0].1.expose_secret(), SECRET);
    let c = Caller::new(
        started.public["base_url"].as_str().unwrap(),
        APP_KEY,
        SECRET,
    );
    let v = c.call("user/create", &[("accid", "k1")]).await;
    assert_eq!(code(&v), 200, "{v}");
}

#[test]
fn the_standalone_launch_parses_as_the_sandbox_flags() {
    use clap::{CommandFactory, Parser};
    let launch = NeteaseSandbox
        .standalone("127.0.0.1:9311".parse().unwrap(), 7)
        .expect("the NetEase sandbox runs standalone");
    // The secret travels in the environment variable --secret reads.
    let env = SandboxArgs::command()
        .get_arguments()
        .find(|a| a.get_id() == "secret")
        .and_then(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned());
    assert_eq!(env.as_deref(), Some(launch.env[0].0.as_str()));
    assert_eq!(launch.secrets[0].0, "app_secret");
    let mut args = launch.args.clone();
    args.extend(["--secret".to_string(), "S".to_string()]);
    let (listen, config) = SandboxArgs::try_parse_from(args).unwrap().config();
    assert_eq!(listen.port(), 9311);
    assert_eq!(config.limits.qps("user/create"), Some(7));
    assert_eq!(config.limits.qps("team/kick"), Some(7));
    assert_eq!(launch.public["base_url"], "http://127.0.0.1:9311/nimserver");
    assert_eq!(launch.public["app_key"], config.app_key.as_str());
    let Err(help) = SandboxArgs::try_parse_from(["--help"]) else {
        panic!("--help parsed as a run");
    };
    assert!(help.to_string().contains("imshift sandbox netease"));
}
