//! Sync into a self-built old system: relay-protocol batches posted to its relay URL, signed
//! with the outbound secret, every event tagged with imshift's origin.

use super::{signature, MAX_BATCH};
use crate::providers::{
    outbound, Connection, Delivered, ErrorClass, Original, SyncEvent, SyncSink, ORIGIN,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

/// A relay answer is a few counts and the rejected events.
const MAX_ANSWER_BYTES: usize = 1 << 20;

pub struct RelaySink {
    url: String,
    secret: SecretString,
    http: reqwest::Client,
}

impl RelaySink {
    pub fn new(conn: &Connection) -> Result<Self, String> {
        let url = conn
            .text("relay_url")
            .ok_or_else(|| Connection::missing("relay_url"))?;
        let secret = conn
            .secret("outbound_secret")
            .ok_or_else(|| Connection::missing("outbound_secret"))?
            .clone();
        let policy = outbound::Policy::from_env();
        let target = outbound::check_url(url, policy).map_err(|r| r.0)?;
        let http = outbound::client(
            &target,
            policy,
            Duration::from_secs(10),
            Duration::from_secs(5),
        )
        .map_err(|e| outbound::chain(&e))?;
        Ok(RelaySink {
            url: target.url,
            secret,
            http,
        })
    }

    async fn post(&self, events: &[SyncEvent]) -> Result<Value, Delivered> {
        let body = json!({
            "events": events.iter().map(|e| json!({
                "id": e.key, "type": e.kind, "at": e.at_ms, "data": e.data, "origin": ORIGIN,
            })).collect::<Vec<_>>()
        })
        .to_string();
        let t = time::OffsetDateTime::now_utc().unix_timestamp();
        let sent = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header(
                "Imshift-Signature",
                signature(self.secret.expose_secret(), t, body.as_bytes()),
            )
            .body(body)
            .send()
            .await
            .map_err(|e| {
                Delivered::unreachable(format!("the relay did not answer: {}", outbound::chain(&e)))
            })?;
        let status = sent.status();
        let answer = outbound::read_capped(sent, MAX_ANSWER_BYTES)
            .await
            .unwrap_or_default();
        let text = || {
            String::from_utf8_lossy(&answer)
                .chars()
                .take(300)
                .collect::<String>()
        };
        let code = Some(format!("http_{}", status.as_u16()));
        match status.as_u16() {
            200..=299 => serde_json::from_slice(&answer).map_err(|e| {
                Delivered::failed(
                    ErrorClass::Retryable,
                    Some("bad_answer".into()),
                    format!("the relay's answer is not relay-protocol JSON ({e}): {}", text()),
                )
            }),
            401 => Err(Delivered::failed(
                ErrorClass::Auth,
                code,
                format!(
                    "the relay refused imshift's signature (401): set the same outbound secret on both sides. It said: {}",
                    text()
                ),
            )),
            429 => Err(Delivered::failed(
                ErrorClass::RateLimited,
                code,
                "the relay asked imshift to slow down (429)",
            )),
            500..=599 | 408 => Err(Delivered::failed(
                ErrorClass::Retryable,
                code,
                format!("the relay failed ({status}); the batch is sent again: {}", text()),
            )),
            _ => Err(Delivered::failed(
                ErrorClass::Permanent,
                code,
                format!("the relay refused the batch ({status}): {}", text()),
            )),
        }
    }
}

#[async_trait::async_trait]
impl SyncSink for RelaySink {
    fn batch(&self) -> usize {
        MAX_BATCH
    }

    /// The relay protocol sets no quota: the old system answers as fast as it can.
    fn pace(&self, _event: &SyncEvent) -> Option<(String, f64)> {
        None
    }

    /// A relay that posts imshift's event back uses its id.
    fn expected_ids(&self, event: &SyncEvent) -> Vec<String> {
        vec![event.key.clone()]
    }

    async fn deliver(&self, events: &[SyncEvent]) -> Vec<Delivered> {
        // A recall of a message imshift never relayed either way names it by the new side's
        // id, which the old system has never seen: kept aside, saying so, not posted.
        let unknown = |e: &SyncEvent| {
            e.kind == "message.recalled" && matches!(e.original, Some(Original::Unknown))
        };
        if events.iter().any(unknown) {
            let known: Vec<SyncEvent> = events.iter().filter(|e| !unknown(e)).cloned().collect();
            let mut sent = if known.is_empty() {
                vec![]
            } else {
                Box::pin(self.deliver(&known)).await
            }
            .into_iter();
            return events
                .iter()
                .map(|e| {
                    if unknown(e) {
                        Delivered::failed(
                            ErrorClass::Permanent,
                            Some("unknown_message".into()),
                            format!(
                                "message {} was never relayed between the two sides, so the old system does not know it by that id (messages the import moved are not mapped back)",
                                e.data.get("id").and_then(Value::as_str).unwrap_or_default()
                            ),
                        )
                    } else {
                        sent.next().unwrap_or_else(|| {
                            Delivered::failed(ErrorClass::Retryable, None, "no answer")
                        })
                    }
                })
                .collect();
        }
        let answer = match self.post(events).await {
            Ok(a) => a,
            Err(failed) => return vec![failed; events.len()],
        };
        // Events the relay refused one by one, with its code and words; the rest are in.
        let rejected: HashMap<&str, (&str, &str)> = answer
            .get("rejected")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|r| {
                        let text = |k| r.get(k).and_then(Value::as_str).unwrap_or_default();
                        r.get("id")
                            .and_then(Value::as_str)
                            .map(|id| (id, (text("code"), text("message"))))
                    })
                    .collect()
            })
            .unwrap_or_default();
        events
            .iter()
            .map(|e| match rejected.get(e.key.as_str()) {
                Some((code, message)) => Delivered::failed(
                    ErrorClass::Permanent,
                    Some((*code).to_string()).filter(|c| !c.is_empty()),
                    format!("the relay rejected it: {message}"),
                ),
                None => Delivered::Applied {
                    made: Some(e.key.clone()),
                },
            })
            .collect()
    }
}
