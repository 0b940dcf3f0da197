//! RongCloud as a migration side, behind [`crate::providers::Provider`]: its connection
//! fields, Test connection, quotas, target rules and import seam.
//!
//! As a source its history arrives as a canonical dump on the Dumps tab: there is nothing to
//! connect to on that side.

use super::client::{RongcloudClient, RongcloudConfig};
use super::import::RongcloudImport;
use super::{rules, DATA_CENTRES, LIMITS};
use crate::import::target::ImportTarget;
use crate::model::{ConnectionCheck, FieldChoice, FieldKind, FieldSpec, Side};
use crate::providers::{
    outbound, Capabilities, Connection, ErrorClass, FieldError, Limits, Provider, Sandbox,
    TargetRules,
};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Instant;

pub struct Rongcloud;

pub fn provider() -> Arc<dyn Provider> {
    Arc::new(Rongcloud)
}

/// The account Test connection asks about. `user/info` reads, never writes: whatever it says
/// of this id (that does not exist), an answer past the signature check proves the keys.
const PROBE_USER: &str = "imshift-connection-test";

/// The `friends` setting: where the app keeps friendships (§2.3).
pub const FRIENDS_APP_SERVER: &str = "app_server";
pub const FRIENDS_HOSTED: &str = "hosted";

fn field(id: &str, label: &str, kind: FieldKind, required: bool, help: &str) -> FieldSpec {
    FieldSpec {
        id: id.into(),
        label: label.into(),
        kind,
        required,
        help: help.into(),
        placeholder: String::new(),
        choices: vec![],
        only_when: None,
    }
}

fn choice(id: &str, label: &str, detail: &str) -> FieldChoice {
    FieldChoice {
        id: id.into(),
        label: label.into(),
        detail: detail.into(),
    }
}

/// The client for a connection, its secret opened just for it.
pub(super) fn client(conn: &Connection, limits: Limits) -> Result<RongcloudClient, String> {
    let base_url = conn
        .text("base_url")
        .ok_or_else(|| Connection::missing("base_url"))?;
    let app_key = conn
        .text("app_key")
        .ok_or_else(|| Connection::missing("app_key"))?;
    let secret = conn
        .secret("app_secret")
        .ok_or_else(|| Connection::missing("app_secret"))?;
    RongcloudClient::new(RongcloudConfig::new(base_url, app_key, secret.clone()))
        .map(|c| c.with_limits(limits))
        .map_err(|e| e.to_string())
}

/// Whether the connection says the app uses RongCloud's hosted friends (off unless set).
fn hosted_friends(conn: &Connection) -> bool {
    conn.text("friends") == Some(FRIENDS_HOSTED)
}

#[async_trait::async_trait]
impl Provider for Rongcloud {
    fn id(&self) -> &'static str {
        "rongcloud"
    }

    fn label(&self) -> &'static str {
        "RongCloud"
    }

    fn can_be(&self, _side: Side) -> bool {
        true
    }

    /// The same connection either way: as the old side of a coexistence migration RongCloud
    /// routes its users' messages to imshift and takes the new side's through its Server API
    /// (its history still arrives as a dump on the Dumps tab).
    fn fields(&self, _side: Side) -> Vec<FieldSpec> {
        let mut centres: Vec<FieldChoice> = DATA_CENTRES
            .iter()
            .map(|d| choice(d.id, d.label, d.base_url))
            .collect();
        centres.push(choice(
            "custom",
            "Custom URL",
            "a private deployment or a sandbox",
        ));
        vec![
            FieldSpec {
                placeholder: "such as uwd1c0sxdlx2".into(),
                ..field("app_key", "App Key", FieldKind::Text, true, "RongCloud console → your app → App Key (production or development environment: each has its own).")
            },
            FieldSpec {
                choices: centres,
                ..field("data_centre", "Data centre", FieldKind::Choice, true, "Where the app was created. imshift moves to the data centre's backup domain after network errors or 5xx answers, as RongCloud's SDKs do.")
            },
            FieldSpec {
                placeholder: "https://api.rong-api.com".into(),
                only_when: Some(("data_centre".into(), "custom".into())),
                ..field("base_url", "Custom base URL", FieldKind::Url, true, "The domain alone (APIs are under it, such as /user/getToken.json); https:// to a public address, http:// only to this machine.")
            },
            field("app_secret", "App Secret", FieldKind::Secret, true, "RongCloud console → your app → App Secret. Encrypted at rest and never shown again."),
            FieldSpec {
                choices: vec![
                    choice(FRIENDS_APP_SERVER, "Kept by the app server", "classic RongCloud: friends are not imported into RongCloud"),
                    choice(FRIENDS_HOSTED, "Hosted by RongCloud", "profile hosting (信息托管) is enabled by ticket: friends are added with friend/add"),
                ],
                ..field("friends", "Friends", FieldKind::Choice, false, "Where your app keeps friendships. Only apps with RongCloud's profile hosting keep them in RongCloud.")
            },
        ]
    }

    fn check(&self, _side: Side, public: &mut Map<String, Value>) -> Result<(), FieldError> {
        let app_key = public
            .get("app_key")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .to_string();
        if app_key.is_empty()
            || app_key.len() > 64
            || !app_key.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(FieldError::new(
                "app_key",
                "the App Key is letters and digits (such as uwd1c0sxdlx2 in the RongCloud console)",
            ));
        }
        let centre = public
            .get("data_centre")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .to_string();
        let base_url = if centre == "custom" {
            let raw = public
                .get("base_url")
                .and_then(Value::as_str)
                .unwrap_or_default();
            // Plain http only to this machine (the sandbox): the guard says so in words.
            outbound::check_url(raw, outbound::Policy::from_env())
                .map(|t| t.url.trim_end_matches('/').to_string())
                .map_err(|r| FieldError::new("base_url", r.0))?
        } else {
            super::data_centre(&centre)
                .map(|d| d.base_url.to_string())
                .ok_or_else(|| {
                    FieldError::new(
                        "data_centre",
                        format!("`{centre}` is not a RongCloud data centre; choose one from the list or `custom`"),
                    )
                })?
        };
        let friends = match public
            .get("friends")
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or_default()
        {
            "" | FRIENDS_APP_SERVER => FRIENDS_APP_SERVER,
            FRIENDS_HOSTED => FRIENDS_HOSTED,
            other => {
                return Err(FieldError::new(
                    "friends",
                    format!(
                    "`{other}` is not a choice; use `{FRIENDS_APP_SERVER}` or `{FRIENDS_HOSTED}`"
                ),
                ))
            }
        };
        public.insert("app_key".into(), app_key.into());
        public.insert("data_centre".into(), centre.into());
        public.insert("base_url".into(), base_url.into());
        public.insert("friends".into(), friends.into());
        public
            .retain(|k, _| ["app_key", "data_centre", "base_url", "friends"].contains(&k.as_str()));
        Ok(())
    }

    fn check_secret(&self, _side: Side, field: &str, _value: &str) -> Result<(), String> {
        match field {
            "app_secret" => Ok(()),
            _ => Err(format!("`{field}` is not a RongCloud connection field")),
        }
    }

    fn can_test(&self, _side: Side) -> bool {
        true
    }

    async fn test(&self, conn: &Connection) -> Option<ConnectionCheck> {
        let started = Instant::now();
        let client = match client(conn, self.limits()) {
            Ok(c) => c,
            Err(e) => return Some(ConnectionCheck::failed(None, e, 0)),
        };
        let outcome = client.user_info(PROBE_USER).await;
        let latency_ms = started.elapsed().as_millis() as u64;
        let ok = |how: String| {
            ConnectionCheck::passed(
                format!(
                    "OK: App Key {} answered a signed call (user/info) at {} in {latency_ms} ms{how}.",
                    client.app_key(),
                    client.base_url()
                ),
                latency_ms,
            )
        };
        Some(match outcome {
            Ok(_) => ok(String::new()),
            // Refused for what it says of the probe account (it does not exist), not for the
            // keys: the signature was accepted.
            Err(e) if e.class() == ErrorClass::Permanent && e.code().is_some() => ok(format!(
                "; it answered code {} about the probe account, which does not exist",
                e.code().unwrap_or_default()
            )),
            Err(e) => ConnectionCheck::failed(e.code(), e.for_test_connection(), latency_ms),
        })
    }

    fn limits(&self) -> Limits {
        Limits::from_table(LIMITS)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            import: true,
            // Routed one-to-one and group messages (`callbacks.rs`).
            sync_receives: &["message.sent"],
            // `sync.rs`: messages, and what RongCloud keeps of a group (§2.4).
            sync_sends: &[
                "message.sent",
                "group.created",
                "group.updated",
                "group.dismissed",
                "group.members_joined",
                "group.members_left",
            ],
            // Gap filling (`read_back.rs`); group/user/query finds a member to read a group
            // through.
            read_back: &[
                super::read_back::PRIVATE_QUERY,
                super::read_back::GROUP_QUERY,
                "group/user/query",
            ],
        }
    }

    /// A routed message (全量消息路由, §3): `signature = SHA1(App Secret + nonce +
    /// signTimestamp)` in the query string, `signTimestamp` within 5 minutes.
    fn verify_callback(
        &self,
        conn: &Connection,
        req: &crate::providers::CallbackRequest,
    ) -> Result<(), String> {
        let app_key = conn
            .text("app_key")
            .ok_or_else(|| Connection::missing("app_key"))?;
        let secret = conn
            .secret("app_secret")
            .ok_or_else(|| Connection::missing("app_secret"))?;
        super::callbacks::verify(
            secrecy::ExposeSecret::expose_secret(secret),
            app_key,
            &super::callbacks::RouteQuery::of(req.query),
            req.now,
        )
    }

    fn inbound(
        &self,
        _conn: &Connection,
        req: &crate::providers::CallbackRequest,
    ) -> Result<Vec<crate::providers::InboundEvent>, String> {
        super::callbacks::events(req.body)
    }

    fn sync_sink(
        &self,
        conn: &Connection,
        limits: Limits,
        guards: crate::providers::EchoGuards,
    ) -> Result<Arc<dyn crate::providers::SyncSink>, String> {
        Ok(Arc::new(super::sync::RongcloudSink::new(
            client(conn, limits)?,
            guards,
        )))
    }

    /// The one-to-one and group history (§2.7), for the gaps routing left.
    fn read_back(
        &self,
        conn: &Connection,
        limits: Limits,
    ) -> Option<Result<Arc<dyn crate::providers::ReadBack>, String>> {
        Some(client(conn, limits).map(|c| {
            Arc::new(super::read_back::RongcloudReader::new(c))
                as Arc<dyn crate::providers::ReadBack>
        }))
    }

    /// RongCloud routes only what app users send (a server-API send stays unrouted unless the
    /// app switches that on, §3), so imshift cannot send as a user of a real app: a sandbox
    /// of this console sends its canary as a user instead (`sync::canary`).
    fn can_send_canary(&self) -> bool {
        false
    }

    async fn send_canary(
        &self,
        _conn: &Connection,
        _from: &str,
        _to: &str,
        _text: &str,
    ) -> Option<Result<String, String>> {
        Some(Err(super::sync::NO_CANARY.into()))
    }

    fn hook_setup(&self, _conn: &Connection, hook_url: &str) -> Vec<(String, String)> {
        vec![
            (
                "全量消息路由 (message routing) URL: RongCloud console → your app → 消息管理服务配置 (message service settings) → 全量消息路由".into(),
                hook_url.into(),
            ),
            (
                "Route server API messages".into(),
                "Keep it off (the default). RongCloud then routes only what app users send, which is what keeps the messages imshift sends through the server API from coming back. If your app needs it on, imshift's tag in each message's content.extra and its record of the messageUIDs RongCloud answered still stop them.".into(),
            ),
            (
                "What is relayed".into(),
                "One-to-one (PERSON) and group (GROUP) messages: text, image, GIF, voice, short video, file, location and custom types. Recalls, notifications, commands, chatrooms, ultra groups, messages targeted at some group members and messages whose sensitive words were blocked are acknowledged and not relayed.".into(),
            ),
            (
                "Signed with".into(),
                "The App Secret of this connection (not shown here): RongCloud adds nonce, signTimestamp and signature = SHA1(App Secret + nonce + signTimestamp) to the URL; imshift refuses a signature that does not match or is more than 5 minutes old.".into(),
            ),
            (
                "Answer".into(),
                "HTTP 200 as soon as the message is stored; a routed message sent twice is stored once (by its msgUID).".into(),
            ),
            ("Canary".into(), super::sync::NO_CANARY.into()),
        ]
    }

    fn inbound_answer(&self, _accepted: usize, _duplicates: usize) -> Value {
        super::callbacks::ok_response()
    }

    fn rules(&self) -> Option<&'static dyn TargetRules> {
        Some(&rules::Rules)
    }

    fn import_target(
        &self,
        conn: &Connection,
        limits: Limits,
    ) -> Result<Arc<dyn ImportTarget>, String> {
        Ok(Arc::new(RongcloudImport::new(
            client(conn, limits)?,
            hosted_friends(conn),
        )))
    }

    fn sandbox(&self) -> Option<&dyn Sandbox> {
        Some(&super::sandbox::RongcloudSandbox)
    }

    fn hand_over(&self) -> Option<&dyn crate::providers::HandOver> {
        Some(&super::history_bundles::Bundles)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_centre_picks_its_base_url_and_custom_urls_are_guarded() {
        let mut p = Map::new();
        p.insert("app_key".into(), " uwd1c0sxdlx2 ".into());
        p.insert("data_centre".into(), "singapore".into());
        p.insert("junk".into(), "x".into());
        Rongcloud.check(Side::Target, &mut p).unwrap();
        assert_eq!(p["app_key"], "uwd1c0sxdlx2");
        assert_eq!(p["base_url"], "https://api.sg-light-api.com");
        assert_eq!(p["friends"], FRIENDS_APP_SERVER, "off by default");
        assert!(p.get("junk").is_none());

        let mut p = Map::new();
        p.insert("app_key".into(), "k".into());
        p.insert("data_centre".into(), "custom".into());
        p.insert("base_url".into(), "http://example.com".into());
        assert_eq!(
            Rongcloud.check(Side::Target, &mut p).unwrap_err().field,
            "base_url"
        );
        p.insert("base_url".into(), "http://127.0.0.1:7070/".into());
        p.insert("friends".into(), "hosted".into());
        Rongcloud.check(Side::Target, &mut p).unwrap();
        assert_eq!(p["base_url"], "http://127.0.0.1:7070");
        assert_eq!(p["friends"], FRIENDS_HOSTED);

        let mut p = Map::new();
        p.insert("app_key".into(), "not a key!".into());
        p.insert("data_centre".into(), "china".into());
        assert_eq!(
            Rongcloud.check(Side::Target, &mut p).unwrap_err().field,
            "app_key"
        );
        let mut p = Map::new();
        p.insert("app_key".into(), "k".into());
        p.insert("data_centre".into(), "mars".into());
        assert_eq!(
            Rongcloud.check(Side::Target, &mut p).unwrap_err().field,
            "data_centre"
        );
    }

    #[test]
    fn the_secret_is_a_secret_field_and_the_source_has_nothing_to_connect() {
        let f = Rongcloud.fields(Side::Target);
        let secret = f.iter().find(|f| f.id == "app_secret").unwrap();
        assert!(matches!(secret.kind, FieldKind::Secret));
        // Either side takes the same connection (the old side of a coexistence migration).
        assert_eq!(
            Rongcloud.fields(Side::Source).len(),
            Rongcloud.fields(Side::Target).len()
        );
        assert!(Rongcloud.note(Side::Source).is_none());
        assert!(Rongcloud.can_test(Side::Source));
        assert!(Rongcloud.check_secret(Side::Target, "token", "x").is_err());
        assert!(Rongcloud.rules().is_some());
        assert!(Rongcloud.capabilities().import);
    }
}
