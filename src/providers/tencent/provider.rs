//! Tencent IM as a migration side: its connection fields, Test connection, quotas, target
//! rules, import seam, sandbox and callback check, behind [`crate::providers::Provider`].

use super::client::{TencentClient, TencentConfig};
use super::convert::{check_group_id, check_user_id};
use super::import::TencentImport;
use super::{callbacks, sandbox, LIMITS, REGIONS};
use crate::dumps::canonical::Refs;
use crate::import::target::ImportTarget;
use crate::model::{ConnectionCheck, FieldChoice, FieldKind, FieldSpec, Side};
use crate::providers::{
    outbound, reorder, CallbackRequest, Capabilities, Connection, EchoGuards, FieldError,
    InboundEvent, Limits, Problem, Provider, RunningSandbox, Sandbox, Standalone, StartOptions,
    Started, SyncSink, TargetRules,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Instant;

/// Tencent refuses message JSON over 8 KB (80002 / 93000); the body is most of it.
const MAX_BODY_BYTES: usize = 8 * 1024;
/// The sandbox's app admin in rehearsals.
const SANDBOX_ADMIN: &str = "administrator";
const SANDBOX_SDKAPPID: i64 = 1_400_000_000;

pub struct Tencent;

pub fn provider() -> Arc<dyn Provider> {
    Arc::new(Tencent)
}

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

/// The client for a connection with the provider's own quotas (one-off calls).
pub(super) fn client_for(conn: &Connection) -> Result<(TencentClient, String, u64), String> {
    client(conn, Tencent.limits())
}

/// The client for a connection, secrets opened just for it.
fn client(conn: &Connection, limits: Limits) -> Result<(TencentClient, String, u64), String> {
    let sdkappid = conn
        .number("sdkappid")
        .ok_or_else(|| Connection::missing("sdkappid"))?;
    let base_url = conn
        .text("base_url")
        .ok_or_else(|| Connection::missing("base_url"))?;
    let admin = conn
        .text("admin_identifier")
        .ok_or_else(|| Connection::missing("admin_identifier"))?;
    let secret = conn
        .secret("secret_key")
        .ok_or_else(|| Connection::missing("secret_key"))?;
    let client = TencentClient::new(TencentConfig {
        base_url: base_url.to_string(),
        sdkappid: sdkappid as u64,
        admin: admin.to_string(),
        secret: secret.clone(),
        usersig_ttl_secs: 86_400,
    })
    .map_err(|e| e.to_string())?
    .with_limits(super::Limits(limits));
    Ok((client, admin.to_string(), sdkappid as u64))
}

#[async_trait::async_trait]
impl Provider for Tencent {
    fn id(&self) -> &'static str {
        "tencent"
    }

    fn label(&self) -> &'static str {
        "Tencent IM"
    }

    fn can_be(&self, _side: Side) -> bool {
        true
    }

    fn fields(&self, _side: Side) -> Vec<FieldSpec> {
        let mut regions: Vec<FieldChoice> = REGIONS
            .iter()
            .map(|r| FieldChoice {
                id: r.id.into(),
                label: r.label.into(),
                detail: r.base_url(),
            })
            .collect();
        regions.push(FieldChoice {
            id: "custom".into(),
            label: "Custom URL".into(),
            detail: "a private deployment or a sandbox".into(),
        });
        vec![
            FieldSpec {
                placeholder: "1400000000".into(),
                ..field("sdkappid", "SDKAppID", FieldKind::Number, true, "Applications → your app → Basic configuration.")
            },
            FieldSpec {
                choices: regions,
                ..field("region", "Data center", FieldKind::Choice, true, "The data centre the app lives in; another one answers 70016/70020.")
            },
            FieldSpec {
                placeholder: "https://…".into(),
                only_when: Some(("region".into(), "custom".into())),
                ..field("base_url", "Custom base URL", FieldKind::Url, true, "https:// to a public address; http:// only to this machine.")
            },
            FieldSpec {
                placeholder: "administrator".into(),
                ..field("admin_identifier", "Admin identifier", FieldKind::Text, true, "An app admin's UserID; the console calls it `administrator` by default.")
            },
            field("secret_key", "Secret key", FieldKind::Secret, true, "Basic configuration → Secret key. Encrypted at rest and never shown again."),
            field("callback_token", "Callback token", FieldKind::Secret, false, "Callback configuration → Authentication token, for checking callbacks during coexistence."),
            reorder::field("Tencent sends callbacks concurrently, so a later message can arrive first."),
        ]
    }

    fn check(&self, _side: Side, public: &mut Map<String, Value>) -> Result<(), FieldError> {
        reorder::check(public)?;
        let sdkappid = match public.get("sdkappid") {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        }
        .filter(|n| (1..=u32::MAX as i64).contains(n))
        .ok_or_else(|| {
            FieldError::new(
                "sdkappid",
                "the SDKAppID is a positive number, such as 1400000000",
            )
        })?;
        public.insert("sdkappid".into(), sdkappid.into());
        let region = public
            .get("region")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .to_string();
        let base_url = if region == "custom" {
            let raw = public
                .get("base_url")
                .and_then(Value::as_str)
                .unwrap_or_default();
            outbound::check_url(raw, outbound::Policy::from_env())
                .map(|t| t.url)
                .map_err(|r| FieldError::new("base_url", r.0))?
        } else {
            super::region(&region).map(|r| r.base_url()).ok_or_else(|| {
                FieldError::new(
                    "region",
                    format!("`{region}` is not a Tencent IM region; choose one from the list or `custom`"),
                )
            })?
        };
        public.insert("region".into(), region.into());
        public.insert("base_url".into(), base_url.into());
        let admin = public
            .get("admin_identifier")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .to_string();
        check_user_id(&admin).map_err(|why| {
            FieldError::new(
                "admin_identifier",
                format!("an app admin's UserID ({why}); the Tencent console calls it `administrator` by default"),
            )
        })?;
        public.insert("admin_identifier".into(), admin.into());
        public.retain(|k, _| {
            [
                "sdkappid",
                "region",
                "base_url",
                "admin_identifier",
                reorder::FIELD,
            ]
            .contains(&k.as_str())
        });
        Ok(())
    }

    fn check_secret(&self, _side: Side, field: &str, _value: &str) -> Result<(), String> {
        match field {
            "secret_key" | "callback_token" => Ok(()),
            _ => Err(format!("`{field}` is not a Tencent IM connection field")),
        }
    }

    fn can_test(&self, _side: Side) -> bool {
        true
    }

    async fn test(&self, conn: &Connection) -> Option<ConnectionCheck> {
        let started = Instant::now();
        let (client, admin, sdkappid) = match client(conn, self.limits()) {
            Ok(c) => c,
            Err(e) => return Some(ConnectionCheck::failed(None, e, 0)),
        };
        let outcome = client.account_check(std::slice::from_ref(&admin)).await;
        let latency_ms = started.elapsed().as_millis() as u64;
        Some(match outcome {
            Ok(_) => ConnectionCheck::passed(
                format!("OK: SDKAppID {sdkappid} answered as admin `{admin}` in {latency_ms} ms."),
                latency_ms,
            ),
            Err(e) => ConnectionCheck::failed(e.code(), e.for_test_connection(), latency_ms),
        })
    }

    fn limits(&self) -> Limits {
        Limits::from_table(LIMITS)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            import: true,
            sync_receives: &[
                "message.sent",
                "friend.added",
                "group.created",
                "group.updated",
                "group.dismissed",
                "group.members_joined",
                "group.members_left",
            ],
            sync_sends: &[
                "message.sent",
                "message.recalled",
                "account.upserted",
                "friend.added",
                "friend.removed",
                "group.created",
                "group.updated",
                "group.dismissed",
                "group.members_joined",
                "group.members_left",
            ],
            read_back: &[
                "openim/admin_getroammsg",
                "recentcontact/get_list",
                "group_open_http_svc/group_msg_get_simple",
                "profile/portrait_get",
                "sns/friend_check",
            ],
        }
    }

    fn rules(&self) -> Option<&'static dyn TargetRules> {
        Some(&Rules)
    }

    fn import_target(
        &self,
        conn: &Connection,
        limits: Limits,
    ) -> Result<Arc<dyn ImportTarget>, String> {
        let (client, _admin, sdkappid) = client(conn, limits)?;
        Ok(Arc::new(TencentImport::new(client, sdkappid)))
    }

    fn sandbox(&self) -> Option<&dyn Sandbox> {
        Some(self)
    }

    fn verify_callback(&self, conn: &Connection, req: &CallbackRequest) -> Result<(), String> {
        check_app(conn, req)?;
        // Tencent's console allows callbacks without an authentication token; then the hook's
        // address (with the migration's id) is the only secret, as the README warns.
        let Some(token) = conn.secret("callback_token") else {
            return Ok(());
        };
        callbacks::verify(
            token.expose_secret(),
            req.query.get("Sign").map(String::as_str),
            req.query.get("RequestTime").map(String::as_str),
            req.now,
        )
        .map_err(|e| match e {
            // The receiver counts replays apart from bad signatures.
            callbacks::CallbackAuthError::Stale { .. } => format!("stale: {e}"),
            _ => e.to_string(),
        })
    }

    fn inbound(
        &self,
        conn: &Connection,
        req: &CallbackRequest,
    ) -> Result<Vec<InboundEvent>, String> {
        check_app(conn, req)?;
        inbound_events(req)
    }

    fn sync_sink(
        &self,
        conn: &Connection,
        limits: Limits,
        guards: EchoGuards,
    ) -> Result<Arc<dyn SyncSink>, String> {
        let (client, _, sdkappid) = client(conn, limits)?;
        Ok(Arc::new(super::sync::TencentSink {
            client,
            sdkappid,
            guards,
        }))
    }

    fn read_back(
        &self,
        conn: &Connection,
        limits: Limits,
    ) -> Option<Result<Arc<dyn crate::providers::ReadBack>, String>> {
        Some(client(conn, limits).map(|(client, _, sdkappid)| {
            Arc::new(super::sync::TencentReader { client, sdkappid })
                as Arc<dyn crate::providers::ReadBack>
        }))
    }

    fn can_send_canary(&self) -> bool {
        true
    }

    /// A REST `sendmsg` between the two canary accounts (registered first), with callbacks on
    /// and no origin tag: Tencent reports it like a user's message.
    async fn send_canary(
        &self,
        conn: &Connection,
        from: &str,
        to: &str,
        text: &str,
    ) -> Option<Result<String, String>> {
        Some(super::sync::send_canary(conn, from, to, text).await)
    }

    fn hook_setup(&self, conn: &Connection, hook_url: &str) -> Vec<(String, String)> {
        let mut out = vec![(
            "Callback URL (IM console → Callback configuration)".to_string(),
            hook_url.to_string(),
        )];
        out.push((
            "Callbacks to turn on".into(),
            "C2C.CallbackAfterSendMsg, Group.CallbackAfterSendMsg, Group.CallbackAfterCreateGroup, Group.CallbackAfterNewMemberJoin, Group.CallbackAfterMemberExit, Group.CallbackAfterGroupDestroyed, Group.CallbackAfterGroupInfoChanged, Group.CallbackAfterRecallMsg, C2C.CallbackAfterMsgWithDraw, Sns.CallbackFriendAdd, Sns.CallbackFriendDelete, Profile.CallbackPortraitSet".into(),
        ));
        out.push((
            "Callback token".into(),
            if conn.secret("callback_token").is_some() {
                "the callback token set on this connection (not shown here)".into()
            } else {
                "none set: only the SDKAppID is checked; set a token on both sides".into()
            },
        ));
        out
    }

    fn inbound_answer(&self, _accepted: usize, _duplicates: usize) -> Value {
        callbacks::ok_response()
    }

    fn hold_back(&self, conn: &Connection) -> std::time::Duration {
        reorder::hold(conn)
    }
}

/// A callback names its app in `SdkAppid`; another app's callbacks are not this migration's.
fn check_app(conn: &Connection, req: &CallbackRequest) -> Result<(), String> {
    let want = conn
        .number("sdkappid")
        .ok_or_else(|| Connection::missing("sdkappid"))?;
    match req.query.get("SdkAppid").map(|s| s.trim()) {
        None => Err("the callback has no SdkAppid".into()),
        Some(given) if given == want.to_string() => Ok(()),
        Some(given) => Err(format!(
            "the callback is for SDKAppID {given}, this connection is SDKAppID {want}"
        )),
    }
}

/// The events in a Tencent callback, its body told apart by the `CallbackCommand` query
/// parameter. Commands imshift does not relay (and failed sends) yield none.
fn inbound_events(req: &CallbackRequest) -> Result<Vec<InboundEvent>, String> {
    use callbacks::CallbackEvent as E;
    let command = req
        .query
        .get("CallbackCommand")
        .ok_or("the callback has no CallbackCommand")?;
    let mut body: Map<String, Value> = serde_json::from_slice(req.body)
        .map_err(|e| format!("the {command} body is not a JSON object: {e}"))?;
    // The query decides: a body naming another command is not trusted to pick its own type.
    body.insert("CallbackCommand".into(), command.clone().into());
    let event: E = serde_json::from_value(Value::Object(body))
        .map_err(|e| format!("the {command} body does not parse: {e}"))?;
    let fallback_ms = req.now * 1000;
    let at = |event_time: Option<i64>, secs: i64| {
        event_time
            .or((secs > 0).then_some(secs * 1000))
            .unwrap_or(fallback_ms)
    };
    // Events without an id of their own: same command, group and time with the same body.
    let hashed = |group: &str, event_time: Option<i64>| {
        let digest = Sha256::digest(req.body);
        format!(
            "{command}:{group}:{}:{}",
            event_time.unwrap_or(fallback_ms),
            hex::encode(&digest[..8])
        )
    };
    let (key, kind, at_ms) = match &event {
        E::C2cAfterSendMsg(m) if m.send_msg_result != 0 => return Ok(vec![]),
        E::C2cAfterSendMsg(m) => (
            super::sync::c2c_key(m),
            "message.sent",
            at(m.event_time, m.msg_time),
        ),
        E::GroupAfterSendMsg(m) => (
            super::sync::group_key(&m.group_id, m.msg_seq),
            "message.sent",
            at(m.event_time, m.msg_time),
        ),
        E::GroupAfterCreate(g) => (
            hashed(&g.group_id, g.event_time),
            "group.created",
            at(g.event_time, 0),
        ),
        E::GroupAfterNewMemberJoin(g) => (
            hashed(&g.group_id, g.event_time),
            "group.members_joined",
            at(g.event_time, 0),
        ),
        E::GroupAfterMemberExit(g) => (
            hashed(&g.group_id, g.event_time),
            "group.members_left",
            at(g.event_time, 0),
        ),
        E::GroupAfterDestroyed(g) => (
            hashed(&g.group_id, g.event_time),
            "group.dismissed",
            at(g.event_time, 0),
        ),
        E::GroupAfterInfoChanged(g) => (
            hashed(&g.group_id, g.event_time),
            "group.updated",
            at(g.event_time, 0),
        ),
        // imshift's own portrait_set comes back as an echo by the account's fingerprint.
        E::ProfilePortraitSet(p) => (
            hashed(&p.from_account, p.event_time),
            "account.upserted",
            at(p.event_time, 0),
        ),
        // One friend.added per pair: imshift's own friend_add comes back as an echo (by the
        // pair's fingerprint), an app user's goes to the other side.
        E::SnsFriendAdd(f) => return Ok(super::sync::friend_events(f, true, fallback_ms)),
        E::SnsFriendDelete(f) => return Ok(super::sync::friend_events(f, false, fallback_ms)),
        // Recalls imshift made itself come back as echoes (their keys are in the id map).
        E::C2cAfterMsgWithDraw(_) | E::GroupAfterRecallMsg(_) => {
            return Ok(super::sync::recall_events(&event, fallback_ms))
        }
        // Every other command is acknowledged and not relayed.
        E::Other => return Ok(vec![]),
    };
    let Some((data, tagged)) = super::sync::canonical(&event) else {
        return Ok(vec![]);
    };
    Ok(vec![InboundEvent {
        key,
        kind: kind.into(),
        at_ms,
        alias: super::sync::alias(&event),
        data,
        origin: super::sync::origin(tagged),
    }])
}

#[async_trait::async_trait]
impl RunningSandbox for sandbox::SandboxHandle {
    fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    async fn user_message(
        &self,
        from: &str,
        to: &str,
        group: bool,
        text: &str,
    ) -> Result<String, String> {
        sandbox::SandboxHandle::user_message(self, from, to, group, text)
    }

    fn one_to_one_texts(&self) -> Result<Vec<String>, String> {
        let export = self.export();
        Ok(export["c2c"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
            .flat_map(|l| l.as_array().cloned().unwrap_or_default())
            .filter_map(|m| {
                m["body"][0]["MsgContent"]["Text"]
                    .as_str()
                    .map(String::from)
            })
            .collect())
    }

    fn throttled(&self) -> Option<u64> {
        Some(sandbox::throttled(&self.state()))
    }
}

#[async_trait::async_trait]
impl Sandbox for Tencent {
    async fn serve(&self, args: Vec<String>) -> Result<(), String> {
        super::cli::serve(args).await
    }

    fn standalone(&self, listen: std::net::SocketAddr, qps: u32) -> Option<Standalone> {
        let key = SecretString::from(crate::auth::secret::generate("sbx_"));
        let args = [
            "--listen".to_string(),
            listen.to_string(),
            "--sdkappid".into(),
            SANDBOX_SDKAPPID.to_string(),
            "--admin".into(),
            SANDBOX_ADMIN.into(),
            "--qps".into(),
            qps.to_string(),
        ];
        let mut public = Map::new();
        public.insert("sdkappid".into(), SANDBOX_SDKAPPID.into());
        public.insert("region".into(), "custom".into());
        public.insert("base_url".into(), format!("http://{listen}").into());
        public.insert("admin_identifier".into(), SANDBOX_ADMIN.into());
        Some(Standalone {
            args: args.into(),
            env: vec![("IMSHIFT_SANDBOX_KEY".into(), key.clone())],
            public,
            secrets: vec![("secret_key".into(), key)],
        })
    }

    fn throttled_in(&self, state: &Value) -> Option<u64> {
        Some(sandbox::throttled(state))
    }

    async fn start(
        &self,
        keys: Option<&Connection>,
        opts: StartOptions,
    ) -> Result<Started, String> {
        let sdkappid = keys
            .and_then(|k| k.number("sdkappid"))
            .unwrap_or(SANDBOX_SDKAPPID);
        let admin = keys
            .and_then(|k| k.text("admin_identifier"))
            .filter(|_| keys.is_some_and(|k| k.secret("secret_key").is_some()))
            .unwrap_or(SANDBOX_ADMIN)
            .to_string();
        let secret = match keys.and_then(|k| k.secret("secret_key")) {
            Some(s) => s.clone(),
            None => SecretString::from(crate::auth::secret::generate("sbx_")),
        };
        let mut config =
            sandbox::SandboxConfig::new(sdkappid as u64, secret.expose_secret(), &admin);
        // Its callbacks go to the console's door, signed when the connection has a token.
        config.callback_url = opts.hook_url.clone();
        config.callback_token = keys.and_then(|k| k.secret("callback_token")).cloned();
        let mut secrets = vec![("secret_key".to_string(), secret.clone())];
        if opts.sign_hooks && config.callback_token.is_none() {
            let token = SecretString::from(crate::auth::secret::generate("sbx_"));
            config.callback_token = Some(token.clone());
            secrets.push(("callback_token".into(), token));
        }
        if let Some(limits) = opts.limits {
            config.limits = super::Limits(limits);
        }
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], opts.port));
        let handle = sandbox::spawn(config, addr)
            .await
            .map_err(|e| format!("The sandbox could not start on {addr}: {e}"))?;
        let mut public = Map::new();
        public.insert("sdkappid".into(), sdkappid.into());
        public.insert("region".into(), "custom".into());
        public.insert("base_url".into(), format!("http://{}", handle.addr).into());
        public.insert("admin_identifier".into(), admin.into());
        Ok(Started {
            sandbox: Box::new(handle),
            public,
            secrets,
        })
    }
}

/// Tencent's rules on ids, group types and message sizes.
struct Rules;

impl TargetRules for Rules {
    fn name(&self) -> &'static str {
        "tencent"
    }

    fn label(&self) -> &'static str {
        "Tencent IM"
    }

    fn check(&self, refs: &Refs, problems: &mut Vec<Problem>) {
        let user = |field: &str, id: &str, problems: &mut Vec<Problem>| {
            if let Err(why) = check_user_id(id) {
                problems.push((
                    "target.user_id",
                    format!("`{field}` = {id:?}: Tencent IM UserID rule: {why}"),
                ));
            }
        };
        match refs {
            Refs::Account { id } => user("id", id, problems),
            Refs::Group { id, group_type, .. } => {
                if let Err(why) = check_group_id(id) {
                    problems.push((
                        "target.group_id",
                        format!("`id` = {id:?}: Tencent IM GroupId rule: {why}"),
                    ));
                }
                if group_type == "broadcast" {
                    problems.push(("target.group_type", "a broadcast group becomes an AVChatRoom, which Tencent IM cannot import (error 10007): create it live after the move, without history".into()));
                }
            }
            Refs::Message { body_bytes, .. } if *body_bytes > MAX_BODY_BYTES => problems.push((
                "target.message_size",
                format!(
                    "the body is {body_bytes} bytes; Tencent IM takes at most 8 KB per message (80002)"
                ),
            )),
            _ => {}
        }
    }

    fn strict_group_order(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn conn() -> Connection {
        let mut public = Map::new();
        public.insert("sdkappid".into(), 1_400_000_001i64.into());
        Connection {
            migration_id: uuid::Uuid::nil().into(),
            side: Side::Target,
            public,
            secrets: HashMap::new(),
            sandbox: true,
        }
    }

    fn events(command: &str, app: &str, body: &str) -> Result<Vec<InboundEvent>, String> {
        let query: HashMap<String, String> = [("CallbackCommand", command), ("SdkAppid", app)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let headers = http::HeaderMap::new();
        let req = CallbackRequest {
            query: &query,
            headers: &headers,
            body: body.as_bytes(),
            now: 1_700_000_000,
        };
        Tencent.inbound(&conn(), &req)
    }

    #[test]
    fn callbacks_become_events_keyed_by_the_providers_identity() {
        let c2c = r#"{"From_Account":"a","To_Account":"b","MsgSeq":7,"MsgRandom":9,"MsgTime":1700000000,"MsgKey":"7_9_1700000000","SendMsgResult":0,"MsgBody":[],"EventTime":1700000000123}"#;
        let e = events("C2C.CallbackAfterSendMsg", "1400000001", c2c).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].key, "c2c:7_9_1700000000");
        assert_eq!(e[0].kind, "message.sent");
        assert_eq!(e[0].at_ms, 1_700_000_000_123);
        // In the relay protocol's canonical words, whatever Tencent called them.
        assert_eq!(e[0].data["from"], "a");
        assert_eq!(e[0].data["conv"], "c2c");
        assert_eq!(e[0].data["sent_at"], 1_700_000_000_000i64);
        assert_eq!(e[0].origin, None);

        let failed = c2c.replace("\"SendMsgResult\":0", "\"SendMsgResult\":20006");
        assert!(events("C2C.CallbackAfterSendMsg", "1400000001", &failed)
            .unwrap()
            .is_empty());

        let group =
            r#"{"GroupId":"g1","From_Account":"a","MsgSeq":12,"MsgTime":1700000000,"MsgBody":[]}"#;
        let e = events("Group.CallbackAfterSendMsg", "1400000001", group).unwrap();
        assert_eq!(e[0].key, "group:g1:12");
        assert_eq!(e[0].at_ms, 1_700_000_000_000);

        let exit = r#"{"GroupId":"g1","ExitType":"Kicked","ExitMemberList":[{"Member_Account":"a"}],"EventTime":5}"#;
        let e = events("Group.CallbackAfterMemberExit", "1400000001", exit).unwrap();
        assert_eq!(e[0].kind, "group.members_left");
        assert!(e[0].key.starts_with("Group.CallbackAfterMemberExit:g1:5:"));
        let again = events("Group.CallbackAfterMemberExit", "1400000001", exit).unwrap();
        assert_eq!(e[0].key, again[0].key);

        assert!(events("State.StateChange", "1400000001", "{}")
            .unwrap()
            .is_empty());
        let wrong_app = events("C2C.CallbackAfterSendMsg", "1400000002", c2c).unwrap_err();
        assert!(wrong_app.contains("1400000002"), "{wrong_app}");
        let broken = events(
            "Group.CallbackAfterSendMsg",
            "1400000001",
            r#"{"MsgSeq":1}"#,
        );
        assert!(broken.unwrap_err().contains("Group.CallbackAfterSendMsg"));
    }
}
