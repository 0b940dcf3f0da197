//! imshift's RongCloud client against the sandbox over HTTP: every call it makes, signed as
//! the product signs them, with the sandbox's refusals read back as errors in words (code,
//! class, whether the request may have been applied), the batch limits enforced before
//! sending, the backup domain taken after a 5xx, and Test connection in words.

use crate::common::{sandbox_with, APP_KEY, SECRET};
use imshift::model::Side;
use imshift::providers::outbound::Policy;
use imshift::providers::rongcloud::sandbox::{Fault, Faults, SandboxHandle};
use imshift::providers::rongcloud::{
    RongcloudClient, RongcloudConfig, RongcloudError, TimestampUnit,
};
use imshift::providers::{Connection, ErrorClass};
use secrecy::SecretString;
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};

fn config(sb: &SandboxHandle, secret: &str) -> RongcloudConfig {
    RongcloudConfig::new(
        &sb.base_url(),
        APP_KEY,
        SecretString::from(secret.to_string()),
    )
}

fn client(sb: &SandboxHandle) -> RongcloudClient {
    RongcloudClient::with_policy(config(sb, SECRET), Policy::default()).unwrap()
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:05}")).collect()
}

#[tokio::test]
async fn users_register_with_name_and_portrait_and_no_token_comes_back() {
    let sb = sandbox_with(|c| c.limits = c.limits.clone().with_all_qps(5000)).await;
    let c = client(&sb);
    c.register("alice", "Alice", Some("https://a.example/p.png"))
        .await
        .unwrap();
    let info = c.user_info("alice").await.unwrap();
    assert_eq!(info["userName"], "Alice", "{info}");
    assert_eq!(info["userPortrait"], "https://a.example/p.png");
    assert!(info.get("token").is_none());
    // getToken again is the same user, renamed (§2.1): safe to repeat.
    c.register("alice", "Alice L.", None).await.unwrap();
    assert_eq!(c.user_info("alice").await.unwrap()["userName"], "Alice L.");
    assert_eq!(sb.state()["users"], 1);

    // The timestamp in seconds, as the Java and Go SDKs send it, is accepted too.
    let mut cfg = config(&sb, SECRET);
    cfg.timestamp_unit = TimestampUnit::Seconds;
    let secs = RongcloudClient::with_policy(cfg, Policy::default()).unwrap();
    secs.register("bob", "Bob", None).await.unwrap();

    // An account that never registered: refused for the record, not for the keys.
    let e = c.user_info("nobody").await.unwrap_err();
    assert_eq!(e.code(), Some(1002), "{e}");
    assert_eq!(e.class(), ErrorClass::Permanent);
    assert!(!e.ambiguous());
    assert!(e.to_string().contains("code 1002 (HTTP 400)"), "{e}");
    // An id RongCloud does not take.
    let e = c.register("a b", "x", None).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Permanent, "{e}");
}

#[tokio::test]
async fn a_wrong_secret_is_an_auth_error_in_words_and_never_shown() {
    let sb = sandbox_with(|_| {}).await;
    let bad =
        RongcloudClient::with_policy(config(&sb, "not-the-secret"), Policy::default()).unwrap();
    let e = bad.register("alice", "Alice", None).await.unwrap_err();
    assert_eq!(e.code(), Some(1004), "{e}");
    assert_eq!(e.class(), ErrorClass::Auth);
    let words = e.for_test_connection();
    assert!(words.contains("App Secret"), "{words}");
    assert!(!format!("{bad:?} {words}").contains("not-the-secret"));
    assert!(!format!("{:?}", config(&sb, SECRET)).contains(SECRET));
}

#[tokio::test]
async fn blacklists_take_twenty_a_call_and_read_back_across_pages() {
    let sb = sandbox_with(|c| {
        c.limits = c.limits.clone().with_all_qps(5000);
        c.require_registered = false;
    })
    .await;
    let c = client(&sb);
    let blocked = ids("b", 1_050);
    // 21 in one call is refused before sending (§2.2).
    let e = c.blacklist_add("owner", &blocked[..21]).await.unwrap_err();
    assert!(matches!(e, RongcloudError::Invalid { .. }), "{e}");
    assert_eq!(sb.state()["blacklist"], 0);
    for chunk in blocked.chunks(20) {
        c.blacklist_add("owner", chunk).await.unwrap();
    }
    // Adding again changes nothing (a repeat after a lost answer is harmless).
    c.blacklist_add("owner", &blocked[..20]).await.unwrap();
    let got: BTreeSet<String> = c.blacklist("owner").await.unwrap().into_iter().collect();
    assert_eq!(got, blocked.iter().cloned().collect::<BTreeSet<_>>());
    assert_eq!(sb.state()["blacklist"], 1_050);
}

#[tokio::test]
async fn hosted_friends_answer_only_when_profile_hosting_is_on() {
    let off = sandbox_with(|c| c.require_registered = false).await;
    let e = client(&off).friend_add("a", "b").await.unwrap_err();
    assert_eq!(e.code(), Some(1009), "{e}");
    assert_eq!(e.class(), ErrorClass::Auth, "a person enables it: {e}");
    assert!(e.to_string().contains("profile hosting"), "{e}");

    let on = sandbox_with(|c| {
        c.require_registered = false;
        c.entrust = true;
    })
    .await;
    let c = client(&on);
    c.register("a", "A", None).await.unwrap();
    c.register("b", "B", None).await.unwrap();
    c.friend_add("a", "b").await.unwrap();
    assert!(on.state()["friends"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn groups_are_created_joined_a_thousand_at_a_time_and_listed() {
    let sb = sandbox_with(|c| {
        c.limits = c.limits.clone().with_all_qps(5000);
        c.require_registered = false;
    })
    .await;
    let c = client(&sb);
    c.group_create("g1", "Team", &["owner".to_string()])
        .await
        .unwrap();
    let members = ids("m", 1_500);
    let e = c
        .group_join("g1", None, &ids("x", 1_001))
        .await
        .unwrap_err();
    assert!(matches!(e, RongcloudError::Invalid { .. }), "{e}");
    for chunk in members.chunks(1000) {
        c.group_join("g1", None, chunk).await.unwrap();
    }
    // Create again (a repeat): the group is not duplicated and keeps its members.
    c.group_create("g1", "Team", &["owner".to_string()])
        .await
        .unwrap();
    let got: BTreeSet<String> = c.group_members("g1").await.unwrap().into_iter().collect();
    let mut want: BTreeSet<String> = members.into_iter().collect();
    want.insert("owner".into());
    assert_eq!(got, want);
    assert_eq!(sb.state()["groups"], 1);
    // A group id RongCloud does not take, and a group that does not exist.
    let e = c
        .group_create("g_1", "x", &["owner".to_string()])
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Permanent, "{e}");
    let e = c.group_members("nope").await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Permanent, "{e}");
}

#[tokio::test]
async fn throttling_and_faults_are_classed_and_a_5xx_moves_to_the_backup_domain() {
    let sb = sandbox_with(|c| {
        c.require_registered = false;
        c.limits.set_qps("user/info", 1);
    })
    .await;
    let c = client(&sb);
    // Past the quota: HTTP 429 / 1008, slow down and retry.
    let mut throttled = None;
    for _ in 0..5 {
        if let Err(e) = c.user_info("u").await {
            if e.code() == Some(1008) {
                throttled = Some(e);
                break;
            }
        }
    }
    let e = throttled.expect("a call over the quota is refused");
    assert_eq!(e.class(), ErrorClass::RateLimited, "{e}");

    let faults = |f: Fault| Faults {
        next: [f].into(),
        ..Faults::default()
    };
    sb.set_faults(faults(Fault::Http(502))).unwrap();
    let e = c.group_create("g2", "G", &["o".into()]).await.unwrap_err();
    assert!(matches!(e, RongcloudError::Http { status: 502, .. }), "{e}");
    assert!(e.class().is_retryable() && e.ambiguous());
    sb.set_faults(faults(Fault::LostAnswerTimeout)).unwrap();
    let e = c.group_create("g2", "G", &["o".into()]).await.unwrap_err();
    assert_eq!(e.code(), Some(1050), "{e}");
    assert!(e.ambiguous(), "applied, answer lost");
    sb.set_faults(faults(Fault::Disconnect)).unwrap();
    let e = c.group_create("g3", "G", &["o".into()]).await.unwrap_err();
    assert!(matches!(e, RongcloudError::Transport { .. }), "{e}");

    // A data centre's backup domain (here a second sandbox of the same app).
    let backup = sandbox_with(|c| c.require_registered = false).await;
    let mut cfg = config(&sb, SECRET);
    cfg.backup_url = Some(backup.base_url());
    let c = RongcloudClient::with_policy(cfg, Policy::default()).unwrap();
    sb.set_faults(faults(Fault::Http(503))).unwrap();
    assert!(c.group_create("g4", "G", &["o".into()]).await.is_err());
    assert_eq!(c.base_url(), backup.base_url());
    c.group_create("g4", "G", &["o".into()]).await.unwrap();
    assert_eq!(
        backup.state()["groups"],
        1,
        "the next call went to the backup"
    );
}

fn connection(sb: &SandboxHandle, secret: &str) -> Connection {
    let mut public = Map::new();
    public.insert("app_key".into(), APP_KEY.into());
    public.insert("data_centre".into(), "custom".into());
    public.insert("base_url".into(), Value::String(sb.base_url()));
    let mut secrets = HashMap::new();
    secrets.insert(
        "app_secret".to_string(),
        SecretString::from(secret.to_string()),
    );
    Connection {
        migration_id: uuid::Uuid::nil().into(),
        side: Side::Target,
        public,
        secrets,
        sandbox: true,
    }
}

#[tokio::test]
async fn test_connection_answers_in_words() {
    let sb = sandbox_with(|_| {}).await;
    let p = imshift::providers::rongcloud::provider();
    let ok = p.test(&connection(&sb, SECRET)).await.unwrap();
    assert!(ok.ok, "{ok:?}");
    assert!(ok.message.starts_with("OK: App Key"), "{}", ok.message);
    let bad = p.test(&connection(&sb, "wrong-secret")).await.unwrap();
    assert!(!bad.ok);
    assert_eq!(bad.code, Some(1004));
    assert!(bad.message.contains("signature"), "{}", bad.message);
    assert!(!bad.message.contains("wrong-secret"));
    assert_eq!(sb.state()["users"], 0, "Test connection writes nothing");
}
