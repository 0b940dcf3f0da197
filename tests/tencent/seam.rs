//! What the benchmarks ask of a provider's sandbox through the seam, on Tencent's:
//! `Sandbox::start` with the quotas it is told and its hooks signed, then what it counted
//! (`RunningSandbox::throttled`) and stored (`one_to_one_texts`).

use imshift::providers::tencent::client::{AccountItem, TencentClient, TencentConfig};
use imshift::providers::{Registry, StartOptions};
use secrecy::{ExposeSecret, SecretString};

#[tokio::test]
async fn a_sandbox_started_through_the_seam_enforces_its_quotas_signs_and_tells_what_it_holds() {
    let registry = Registry::builtin();
    let tencent = registry.get("tencent").expect("registered");
    let started = tencent
        .sandbox()
        .expect("it has a sandbox")
        .start(
            None,
            StartOptions {
                limits: Some(tencent.limits().with_all_qps(1)),
                sign_hooks: true,
                hook_url: Some("http://127.0.0.1:9/hooks".into()),
                ..StartOptions::default()
            },
        )
        .await
        .unwrap();
    let secret = |field: &str| {
        started
            .secrets
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, v)| v.expose_secret().to_string())
    };
    assert!(
        secret("callback_token").is_some(),
        "sign_hooks returns the token the sandbox signs with"
    );
    let client = TencentClient::new(TencentConfig {
        base_url: started.public["base_url"].as_str().unwrap().into(),
        sdkappid: started.public["sdkappid"].as_u64().unwrap(),
        admin: started.public["admin_identifier"].as_str().unwrap().into(),
        secret: SecretString::from(secret("secret_key").unwrap()),
        usersig_ttl_secs: 86_400,
    })
    .unwrap();
    let sandbox = started.sandbox;
    assert_eq!(sandbox.throttled(), Some(0));
    // One call a second: the first lands, the ones right after it are over the quota.
    let items: Vec<AccountItem> = ["a", "b"]
        .map(|id| AccountItem {
            user_id: id.into(),
            nick: None,
            face_url: None,
        })
        .into();
    let mut refused = 0;
    for _ in 0..3 {
        if client.multiaccount_import(&items).await.is_err() {
            refused += 1;
        }
    }
    assert!(
        refused >= 1,
        "a quota of 1/s refused none of 3 calls at once"
    );
    assert_eq!(sandbox.throttled(), Some(refused));
    // What its users send is stored, and read back in order.
    for text in ["one", "two"] {
        sandbox.user_message("a", "b", false, text).await.unwrap();
    }
    assert_eq!(sandbox.one_to_one_texts().unwrap(), ["one", "two"]);
}
