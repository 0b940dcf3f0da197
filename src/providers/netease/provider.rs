//! NetEase Yunxin as a migration side, behind [`crate::providers::Provider`]: its connection
//! fields, Test connection, quotas, target rules, import seam and sandbox.
//!
//! As a source it is read from its migration files on the Dumps tab, or connected for
//! coexistence sync: its message copy (抄送) comes in through `callbacks.rs`, and sync sends
//! into it through `sync.rs`.

use super::client::{NeteaseClient, NeteaseConfig};
use super::import::NeteaseImport;
use super::read_back::NeteaseReader;
use super::{rules, DATA_CENTRES, LIMITS};
use crate::import::target::ImportTarget;
use crate::model::{ConnectionCheck, FieldChoice, FieldKind, FieldSpec, Side};
use crate::providers::{
    outbound, CallbackRequest, Capabilities, Connection, EchoGuards, FieldError, HandOver,
    InboundEvent, Limits, Provider, ReadBack, Sandbox, SyncSink, TargetRules,
};
use secrecy::ExposeSecret;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Instant;

pub struct Netease;

pub fn provider() -> Arc<dyn Provider> {
    Arc::new(Netease)
}

/// The account Test connection asks about: any id works, NetEase answers 200 whether or not
/// it exists, so the call proves the keys without touching data.
const PROBE_ACCID: &str = "imshift-connection-test";

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

/// The client for a connection, its secret opened just for it.
pub(super) fn client(conn: &Connection, limits: Limits) -> Result<NeteaseClient, String> {
    let base_url = conn
        .text("base_url")
        .ok_or_else(|| Connection::missing("base_url"))?;
    let app_key = conn
        .text("app_key")
        .ok_or_else(|| Connection::missing("app_key"))?;
    let secret = conn
        .secret("app_secret")
        .ok_or_else(|| Connection::missing("app_secret"))?;
    NeteaseClient::new(NeteaseConfig {
        base_url: base_url.into(),
        app_key: app_key.into(),
        app_secret: secret.clone(),
    })
    .map(|c| c.with_limits(limits))
    .map_err(|e| e.to_string())
}

#[async_trait::async_trait]
impl Provider for Netease {
    fn id(&self) -> &'static str {
        "netease"
    }

    fn label(&self) -> &'static str {
        "NetEase Yunxin"
    }

    fn can_be(&self, _side: Side) -> bool {
        true
    }

    fn fields(&self, _side: Side) -> Vec<FieldSpec> {
        let mut centres: Vec<FieldChoice> = DATA_CENTRES
            .iter()
            .map(|d| FieldChoice {
                id: d.id.into(),
                label: d.label.into(),
                detail: d.base_url.into(),
            })
            .collect();
        centres.push(FieldChoice {
            id: "custom".into(),
            label: "Custom URL".into(),
            detail: "a private deployment or a sandbox".into(),
        });
        vec![
            FieldSpec {
                placeholder: "32 hexadecimal characters".into(),
                ..field("app_key", "App Key", FieldKind::Text, true, "NetEase console → your app → App Key.")
            },
            FieldSpec {
                choices: centres,
                ..field("data_centre", "Data centre", FieldKind::Choice, true, "Where the app was created: China (api.netease.im) or overseas (api-sg).")
            },
            FieldSpec {
                placeholder: "https://…/nimserver".into(),
                only_when: Some(("data_centre".into(), "custom".into())),
                ..field("base_url", "Custom base URL", FieldKind::Url, true, "Up to and including /nimserver; https:// to a public address, http:// only to this machine.")
            },
            field("app_secret", "App Secret", FieldKind::Secret, true, "NetEase console → your app → App Secret. Encrypted at rest and never shown again."),
            field("cc_secret", "Message copy (抄送) secret", FieldKind::Secret, false, "Only if the message copy is signed with another secret than the App Secret (coexistence sync)."),
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
                "the App Key is letters and digits (32 hexadecimal characters in the NetEase console)",
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
            outbound::check_url(raw, outbound::Policy::from_env())
                .map(|t| t.url.trim_end_matches('/').to_string())
                .map_err(|r| FieldError::new("base_url", r.0))?
        } else {
            super::data_centre(&centre)
                .map(|d| d.base_url.to_string())
                .ok_or_else(|| {
                    FieldError::new(
                        "data_centre",
                        format!("`{centre}` is not a NetEase Yunxin data centre; choose one from the list or `custom`"),
                    )
                })?
        };
        public.insert("app_key".into(), app_key.into());
        public.insert("data_centre".into(), centre.into());
        public.insert("base_url".into(), base_url.into());
        public.retain(|k, _| ["app_key", "data_centre", "base_url"].contains(&k.as_str()));
        Ok(())
    }

    fn check_secret(&self, _side: Side, field: &str, _value: &str) -> Result<(), String> {
        match field {
            "app_secret" | "cc_secret" => Ok(()),
            _ => Err(format!(
                "`{field}` is not a NetEase Yunxin connection field"
            )),
        }
    }

    fn can_test(&self, _side: Side) -> bool {
        true
    }

    async fn test(&self, conn: &Connection) -> Option<ConnectionCheck> {
        let started = Instant::now();
        let client = match client(conn, self.limits()) {
            Ok(c) => c,
            Err(e) => {
                return Some(ConnectionCheck {
                    ok: false,
                    code: None,
                    message: e,
                    latency_ms: 0,
                })
            }
        };
        let outcome = client.get_uinfos(&[PROBE_ACCID.to_string()]).await;
        let latency_ms = started.elapsed().as_millis() as u64;
        Some(match outcome {
            Ok(_) => ConnectionCheck {
                ok: true,
                code: None,
                message: format!(
                    "OK: App Key {} answered a signed call (user/getUinfos) in {latency_ms} ms.",
                    client.app_key()
                ),
                latency_ms,
            },
            Err(e) => ConnectionCheck {
                ok: false,
                code: e.code(),
                message: e.for_test_connection(),
                latency_ms,
            },
        })
    }

    fn limits(&self) -> Limits {
        Limits::from_table(LIMITS)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            import: true,
            sync_receives: &["message.sent"],
            sync_sends: &[
                "message.sent",
                "group.created",
                "group.updated",
                "group.dismissed",
                "group.members_joined",
                "group.members_left",
            ],
            // Gap filling (`read_back.rs`); team/query finds a member to read a team through.
            read_back: &[
                "history/querySessionMsg",
                "history/queryTeamMsg",
                "team/query",
            ],
        }
    }

    fn rules(&self) -> Option<&'static dyn TargetRules> {
        Some(&rules::Rules)
    }

    fn import_target(
        &self,
        conn: &Connection,
        limits: Limits,
    ) -> Result<Arc<dyn ImportTarget>, String> {
        Ok(Arc::new(NeteaseImport::new(client(conn, limits)?)))
    }

    fn sandbox(&self) -> Option<&dyn Sandbox> {
        Some(&super::sandbox::NeteaseSandbox)
    }

    fn hand_over(&self) -> Option<&dyn HandOver> {
        Some(&super::history_files::Files)
    }

    /// A message copy (抄送) of this app: `AppKey` when sent, `MD5` of the body, `CheckSum`
    /// with the copy secret (else the App Secret), `CurTime` within 5 minutes.
    fn verify_callback(&self, conn: &Connection, req: &CallbackRequest) -> Result<(), String> {
        let app_key = conn
            .text("app_key")
            .ok_or_else(|| Connection::missing("app_key"))?;
        let secret = conn
            .secret("cc_secret")
            .filter(|s| !s.expose_secret().is_empty())
            .or_else(|| conn.secret("app_secret"))
            .ok_or_else(|| Connection::missing("app_secret"))?;
        super::callbacks::verify(
            secret.expose_secret(),
            app_key,
            &super::callbacks::CopyHeaders::of(req.headers),
            req.body,
            req.now,
        )
    }

    fn inbound(
        &self,
        _conn: &Connection,
        req: &CallbackRequest,
    ) -> Result<Vec<InboundEvent>, String> {
        super::callbacks::events(req.body)
    }

    fn sync_sink(
        &self,
        conn: &Connection,
        limits: Limits,
        guards: EchoGuards,
    ) -> Result<Arc<dyn SyncSink>, String> {
        Ok(Arc::new(super::sync::NeteaseSink::new(
            client(conn, limits)?,
            guards,
        )))
    }

    /// The one-to-one and team history (§2.6), for the gaps the message copy left.
    fn read_back(
        &self,
        conn: &Connection,
        limits: Limits,
    ) -> Option<Result<Arc<dyn ReadBack>, String>> {
        Some(client(conn, limits).map(|c| Arc::new(NeteaseReader::new(c)) as Arc<dyn ReadBack>))
    }

    fn can_send_canary(&self) -> bool {
        true
    }

    /// `sendMsg` between the two canary accounts (registered first), with the copy on and no
    /// origin tag: NetEase copies it like a user's message.
    async fn send_canary(
        &self,
        conn: &Connection,
        from: &str,
        to: &str,
        text: &str,
    ) -> Option<Result<String, String>> {
        let client = match client(conn, self.limits()) {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        Some(super::sync::send_canary(client, from, to, text).await)
    }

    fn hook_setup(&self, conn: &Connection, hook_url: &str) -> Vec<(String, String)> {
        vec![
            (
                "Message copy (消息抄送) URL: NetEase console → your app → IM → 消息抄送 (Data Sync)".into(),
                hook_url.into(),
            ),
            (
                "What to copy".into(),
                "Conversation messages (eventType 1): one-to-one (PERSON) and advanced team (TEAM) messages. Other events are acknowledged and not relayed.".into(),
            ),
            (
                "Signed with".into(),
                if conn.secret("cc_secret").is_some() {
                    "the message copy secret set on this connection (not shown here)".into()
                } else {
                    "the App Secret of this connection (set the message copy secret if NetEase signs copies with another)".into()
                },
            ),
            (
                "Answer".into(),
                "imshift answers {\"code\":200} as soon as the copy is stored; NetEase wants 200 within 5 seconds".into(),
            ),
        ]
    }

    fn inbound_answer(&self, _accepted: usize, _duplicates: usize) -> Value {
        super::callbacks::ok_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_centre_picks_its_base_url_and_custom_urls_are_guarded() {
        let mut p = Map::new();
        p.insert("app_key".into(), " abc123 ".into());
        p.insert("data_centre".into(), "singapore".into());
        p.insert("junk".into(), "x".into());
        Netease.check(Side::Target, &mut p).unwrap();
        assert_eq!(p["app_key"], "abc123");
        assert_eq!(p["base_url"], "https://api-sg.netease.im/nimserver");
        assert!(p.get("junk").is_none());

        let mut p = Map::new();
        p.insert("app_key".into(), "k".into());
        p.insert("data_centre".into(), "custom".into());
        p.insert("base_url".into(), "http://example.com/nimserver".into());
        assert_eq!(
            Netease.check(Side::Target, &mut p).unwrap_err().field,
            "base_url"
        );

        let mut p = Map::new();
        p.insert("app_key".into(), "not a key!".into());
        p.insert("data_centre".into(), "china".into());
        assert_eq!(
            Netease.check(Side::Target, &mut p).unwrap_err().field,
            "app_key"
        );
    }

    #[test]
    fn the_secret_is_a_secret_field_and_the_source_takes_the_same_fields() {
        let f = Netease.fields(Side::Target);
        let secret = f.iter().find(|f| f.id == "app_secret").unwrap();
        assert!(matches!(secret.kind, FieldKind::Secret));
        assert_eq!(Netease.fields(Side::Source).len(), f.len());
        assert!(Netease.note(Side::Source).is_none());
        assert!(Netease.can_test(Side::Source));
        assert!(Netease.check_secret(Side::Target, "token", "x").is_err());
    }
}
