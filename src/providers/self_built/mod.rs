//! A home-grown old IM system. Its history arrives as canonical dumps; during coexistence it
//! speaks imshift's relay protocol (`relay-protocol-v1.md` beside this file): imshift posts events to its
//! relay URL signed with one secret, and it posts its events to imshift signed with another.

use crate::model::{ConnectionCheck, FieldKind, FieldSpec, Side};
use crate::providers::{
    outbound, CallbackRequest, Capabilities, Connection, EchoGuards, FieldError, InboundEvent,
    Limits, Provider, SyncSink,
};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde_json::{Map, Value};
use sha2::Sha256;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod sync;

pub mod sandbox;

/// Signatures older or newer than this are replays (relay protocol v1).
const MAX_SKEW_SECS: i64 = 300;
/// Events in one relay batch (relay protocol v1).
const MAX_BATCH: usize = 100;

pub struct SelfBuilt;

pub fn provider() -> Arc<dyn Provider> {
    Arc::new(SelfBuilt)
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks an `Imshift-Signature` header against `secret`.
pub fn verify(secret: &str, header: Option<&str>, body: &[u8], now: i64) -> Result<(), String> {
    let header = header.ok_or("the request has no Imshift-Signature header")?;
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err("the Imshift-Signature header is not `t=<seconds>,v1=<hex>`".into());
    };
    if (now - t).abs() > MAX_SKEW_SECS {
        return Err(format!(
            "stale: the signature's time {t} is more than {MAX_SKEW_SECS} s from now ({now})"
        ));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&v1)
        .map_err(|_| "the signature does not match the inbound secret".to_string())
}

#[async_trait::async_trait]
impl Provider for SelfBuilt {
    fn id(&self) -> &'static str {
        "self_built"
    }

    fn label(&self) -> &'static str {
        "Self-built IM (canonical dump)"
    }

    fn can_be(&self, side: Side) -> bool {
        side == Side::Source
    }

    fn fields(&self, _side: Side) -> Vec<FieldSpec> {
        let f = |id: &str, label: &str, kind, help: &str| FieldSpec {
            id: id.into(),
            label: label.into(),
            kind,
            required: true,
            help: help.into(),
            placeholder: String::new(),
            choices: vec![],
            only_when: None,
        };
        vec![
            FieldSpec {
                placeholder: "https://im.example.com/imshift/relay".into(),
                ..f("relay_url", "Relay URL", FieldKind::Url, "Where imshift posts events for the old system during coexistence (relay protocol v1).")
            },
            f("outbound_secret", "Outbound secret", FieldKind::Secret, "imshift signs what it posts to the relay URL with it; the old system checks the signature."),
            f("inbound_secret", "Inbound secret", FieldKind::Secret, "The old system signs what it posts to imshift with it; imshift refuses anything else."),
            FieldSpec {
                required: false,
                ..f("previous_inbound_secret", "Previous inbound secret", FieldKind::Secret, "While rotating: the inbound secret being replaced, still accepted until the old system signs with the new one. Set it to the old value when you set a new inbound secret.")
            },
            super::reorder::field("an old system that posts one conversation's relay batches from several workers at once can have a later event arrive first."),
        ]
    }

    fn check(&self, _side: Side, public: &mut Map<String, Value>) -> Result<(), FieldError> {
        let raw = public
            .get("relay_url")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let url = outbound::check_url(raw, outbound::Policy::from_env())
            .map(|t| t.url)
            .map_err(|r| FieldError::new("relay_url", r.0))?;
        public.retain(|k, _| k == super::reorder::FIELD);
        super::reorder::check(public)?;
        public.insert("relay_url".into(), url.into());
        Ok(())
    }

    fn check_secret(&self, _side: Side, field: &str, value: &str) -> Result<(), String> {
        if value.len() < 16 {
            return Err(format!(
                "`{field}` is {} characters; use at least 16 random ones",
                value.len()
            ));
        }
        Ok(())
    }

    fn endpoint(&self, _side: Side, public: &Map<String, Value>) -> Option<String> {
        public
            .get("relay_url")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    fn can_test(&self, _side: Side) -> bool {
        true
    }

    fn sandbox(&self) -> Option<&dyn crate::providers::Sandbox> {
        Some(self)
    }

    /// `imshift sandbox relay`: it stands in for the old system's relay endpoint.
    fn sandbox_name(&self) -> &'static str {
        "relay"
    }

    /// Posts an empty, signed batch: the relay answers 400 (no events) or 200 when it is
    /// there and checks signatures, 401 when it refuses imshift's.
    async fn test(&self, conn: &Connection) -> Option<ConnectionCheck> {
        let fail = |message: String, latency_ms| ConnectionCheck {
            ok: false,
            code: None,
            message,
            latency_ms,
        };
        let (Some(url), Some(secret)) = (conn.text("relay_url"), conn.secret("outbound_secret"))
        else {
            return Some(fail(Connection::missing("relay_url / outbound_secret"), 0));
        };
        let policy = outbound::Policy::from_env();
        let target = match outbound::check_url(url, policy) {
            Ok(t) => t,
            Err(r) => return Some(fail(r.0, 0)),
        };
        let http = match outbound::client(
            &target,
            policy,
            Duration::from_secs(10),
            Duration::from_secs(5),
        ) {
            Ok(c) => c,
            Err(e) => return Some(fail(outbound::chain(&e), 0)),
        };
        let body = br#"{"events":[]}"#.to_vec();
        let t = time::OffsetDateTime::now_utc().unix_timestamp();
        let started = Instant::now();
        let answer = http
            .post(&target.url)
            .header("content-type", "application/json")
            .header(
                "Imshift-Signature",
                signature(secret.expose_secret(), t, &body),
            )
            .body(body)
            .send()
            .await;
        let latency_ms = started.elapsed().as_millis() as u64;
        Some(match answer {
            Err(e) => fail(
                format!("The relay did not answer: {}. Nothing was retried.", outbound::chain(&e)),
                latency_ms,
            ),
            Ok(r) if r.status().as_u16() == 401 => fail(
                "The relay refused imshift's signature (401): set the same outbound secret on both sides."
                    .into(),
                latency_ms,
            ),
            Ok(r) if r.status().is_success() || r.status().as_u16() == 400 => ConnectionCheck {
                ok: true,
                code: None,
                message: format!(
                    "OK: the relay answered a signed empty batch with {} in {latency_ms} ms.",
                    r.status().as_u16()
                ),
                latency_ms,
            },
            Ok(r) => fail(
                format!(
                    "The relay answered {}; it should answer 200 or 400 to a signed empty batch.",
                    r.status()
                ),
                latency_ms,
            ),
        })
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            import: false,
            sync_receives: &[
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
            read_back: &[],
        }
    }

    fn verify_callback(&self, conn: &Connection, req: &CallbackRequest) -> Result<(), String> {
        let secret = conn
            .secret("inbound_secret")
            .ok_or_else(|| Connection::missing("inbound_secret"))?;
        let header = req
            .headers
            .get("imshift-signature")
            .and_then(|v| v.to_str().ok());
        let current = verify(secret.expose_secret(), header, req.body, req.now);
        // During a rotation the secret being replaced is still good; a stale or malformed
        // signature is said as such whichever secret it was made with.
        match (current, conn.secret("previous_inbound_secret")) {
            (Err(e), Some(previous)) if e.starts_with("the signature does not match") => {
                verify(previous.expose_secret(), header, req.body, req.now).map_err(|_| e)
            }
            (result, _) => result,
        }
    }

    fn inbound(
        &self,
        _conn: &Connection,
        req: &CallbackRequest,
    ) -> Result<Vec<InboundEvent>, String> {
        events(req.body, self.capabilities().sync_receives)
    }

    fn sync_sink(
        &self,
        conn: &Connection,
        _limits: Limits,
        _guards: EchoGuards,
    ) -> Result<Arc<dyn SyncSink>, String> {
        Ok(Arc::new(sync::RelaySink::new(conn)?))
    }

    fn hook_setup(&self, _conn: &Connection, hook_url: &str) -> Vec<(String, String)> {
        vec![
            ("Where the old system posts its events".into(), hook_url.into()),
            (
                "How it signs them".into(),
                "Imshift-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(inbound secret, \"<t>.\" + body)>".into(),
            ),
        ]
    }

    fn hold_back(&self, conn: &Connection) -> std::time::Duration {
        super::reorder::hold(conn)
    }

    fn inbound_answer(&self, accepted: usize, duplicates: usize) -> Value {
        // Nothing is refused one by one yet: a malformed event refuses its whole batch.
        serde_json::json!({ "accepted": accepted, "duplicates": duplicates, "rejected": [] })
    }
}

/// The events of a relay batch, `{"events":[{id,type,at,data,origin}, …]}`, each checked.
pub fn events(body: &[u8], known: &[&str]) -> Result<Vec<InboundEvent>, String> {
    let body: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let list = body
        .get("events")
        .and_then(Value::as_array)
        .ok_or("the body has no \"events\" array")?;
    if list.is_empty() || list.len() > MAX_BATCH {
        return Err(format!(
            "a batch holds 1 to {MAX_BATCH} events; this one holds {}",
            list.len()
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, e)| event(e, known).map_err(|why| format!("events[{i}]: {why}")))
        .collect()
}

fn event(e: &Value, known: &[&str]) -> Result<InboundEvent, String> {
    let text = |name: &str| match e.get(name) {
        None => Err(format!("no \"{name}\"")),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(_) => Err(format!("\"{name}\" is not a non-empty string")),
    };
    if !e.is_object() {
        return Err("not an object".into());
    }
    let id = text("id")?;
    let kind = text("type")?;
    if !known.contains(&kind.as_str()) {
        return Err(format!("type {kind:?} is not one of: {}", known.join(", ")));
    }
    let at_ms = match e.get("at") {
        None => return Err("no \"at\"".into()),
        Some(v) => v
            .as_i64()
            .filter(|ms| *ms >= 0)
            .ok_or("\"at\" is not a time in Unix milliseconds")?,
    };
    match e.get("data") {
        None => return Err("no \"data\"".into()),
        Some(Value::Object(_)) => {}
        Some(_) => return Err("\"data\" is not an object".into()),
    }
    let origin = text("origin")?;
    Ok(InboundEvent {
        key: id,
        kind,
        at_ms,
        data: e["data"].clone(),
        origin: Some(origin),
        alias: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_relay_signature_verifies_only_with_its_secret_body_and_time() {
        let body = br#"{"events":[{"id":"1"}]}"#;
        let sig = signature("s3cret-s3cret-s3cret", 1_700_000_000, body);
        assert!(verify("s3cret-s3cret-s3cret", Some(&sig), body, 1_700_000_100).is_ok());
        assert!(verify("another-secret-xxxx", Some(&sig), body, 1_700_000_100).is_err());
        assert!(verify("s3cret-s3cret-s3cret", Some(&sig), b"{}", 1_700_000_100).is_err());
        let stale = verify("s3cret-s3cret-s3cret", Some(&sig), body, 1_700_000_301).unwrap_err();
        assert!(stale.starts_with("stale"), "{stale}");
        assert!(verify("s3cret-s3cret-s3cret", None, body, 1_700_000_000).is_err());
    }

    #[test]
    fn a_relay_batch_yields_its_events_or_says_what_is_wrong_where() {
        let known = SelfBuilt.capabilities().sync_receives;
        let ok = |id: &str| json!({"id": id, "type": "message.sent", "at": 1_700_000_000_000i64, "data": {"id": id}, "origin": "old"});
        let body = json!({"events": [ok("a"), ok("b")]}).to_string();
        let got = events(body.as_bytes(), known).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].key, "b");
        assert_eq!(got[1].kind, "message.sent");
        assert_eq!(got[1].at_ms, 1_700_000_000_000);
        assert_eq!(got[1].origin.as_deref(), Some("old"));
        assert_eq!(got[1].data, json!({"id": "b"}));

        let mut bad = ok("c");
        bad.as_object_mut().unwrap().remove("id");
        let body = json!({"events": [ok("a"), ok("b"), ok("x"), bad]}).to_string();
        assert_eq!(
            events(body.as_bytes(), known).unwrap_err(),
            "events[3]: no \"id\""
        );
        let mut bad = ok("c");
        bad["type"] = json!("message.exploded");
        let err = events(json!({"events": [bad]}).to_string().as_bytes(), known).unwrap_err();
        assert!(
            err.starts_with("events[0]: type \"message.exploded\""),
            "{err}"
        );
        let mut bad = ok("c");
        bad["at"] = json!("yesterday");
        assert!(events(json!({"events": [bad]}).to_string().as_bytes(), known).is_err());
        assert!(events(br#"{"events":[]}"#, known)
            .unwrap_err()
            .contains("1 to 100"));
        let many: Vec<Value> = (0..101).map(|i| ok(&i.to_string())).collect();
        assert!(events(json!({"events": many}).to_string().as_bytes(), known).is_err());
        assert!(events(b"not json", known).unwrap_err().contains("not JSON"));
    }
}
