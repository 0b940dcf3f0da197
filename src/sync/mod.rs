//! Coexistence sync: events from either side of a migration, relayed to the other.
//!
//! - [`inbound`]: `POST /hooks/{migration_id}/{side}` receives a provider's callbacks (or a
//!   self-built system's relay batches), checks them through the side's
//!   [`crate::providers::Provider`], and stores each event before answering, marked as an
//!   echo when imshift itself made it; [`commit`] writes deliveries that arrive together in
//!   one statement.
//! - [`deliver`]: every console process sends stored events into the other side through its
//!   provider's [`crate::providers::SyncSink`], in order within each conversation with one in
//!   flight, paced with imports by the shared pacer, retried until applied or kept aside.
//! - [`gaps`]: a heartbeat per process; a silence of every process is a gap in the sides'
//!   callbacks, filled by reading their history back.
//! - [`canary`]: a marked message through each direction every few minutes, and its round trip.
//! - [`metrics`]: the gauges `/metrics` serves (backlog, lag, dead letters, canaries).
//! - [`control`]: turning a direction on and off, health, the event log, replaying dead
//!   letters, the test message.
//!
//! The relay protocol a self-built side speaks is `src/providers/self_built/relay-protocol-v1.md`.

pub mod bench;
pub mod canary;
pub mod commit;
pub mod control;
pub mod deliver;
pub mod gaps;
pub mod inbound;
pub mod metrics;

pub use inbound::router;

use serde_json::Value;

/// The log target of each stored batch's and each delivery's stage times, at debug level:
/// `IMSHIFT_LOG=info,imshift::sync::timing=debug` shows where an event's time goes.
const TIMING: &str = "imshift::sync::timing";

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The unit of ordering an event belongs to: `c2c:<a>:<b>` (the two accounts sorted),
/// `group:<id>` or `account:<id>`. Events of one conversation are delivered in order, one at
/// a time; different conversations go in parallel.
pub fn conversation(kind: &str, data: &Value) -> String {
    let s = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or_default();
    match kind {
        "message.sent" | "message.recalled" if s("conv") == "group" => format!("group:{}", s("to")),
        "message.sent" | "message.recalled" => pair(s("from"), s("to")),
        "friend.added" | "friend.removed" => pair(s("owner"), s("friend")),
        "account.upserted" => format!("account:{}", s("id")),
        "group.created" => format!("group:{}", s("id")),
        _ => format!("group:{}", s("group")),
    }
}

/// What a group, account or friend event did, the same whichever side reports it: imshift writes it
/// to the id map when it sends such an event into a side, and the side reporting the same
/// change back within [`FINGERPRINT_WINDOW_SECS`] is an echo. Messages have ids instead.
pub fn fingerprint(kind: &str, data: &Value) -> Option<String> {
    let s = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or_default();
    let accounts = || {
        let mut a: Vec<&str> = data
            .get("accounts")
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        a.sort_unstable();
        a.join(",")
    };
    Some(match kind {
        "group.created" => format!("fp:{kind}:{}", s("id")),
        "group.dismissed" => format!("fp:{kind}:{}", s("group")),
        "group.members_joined" | "group.members_left" => {
            format!("fp:{kind}:{}:{}", s("group"), accounts())
        }
        // serde_json keeps object keys sorted, so equal changes print alike.
        "group.updated" => format!("fp:{kind}:{}:{}", s("group"), data["changes"]),
        "account.upserted" => format!("fp:{kind}:{}", s("id")),
        // Applied both ways, so reported by either account: the pair in sorted order.
        "friend.added" | "friend.removed" => {
            let (a, b) = (s("owner"), s("friend"));
            let (a, b) = if a <= b { (a, b) } else { (b, a) };
            format!("fp:{kind}:{a}:{b}")
        }
        _ => return None,
    })
}

/// How long a fingerprint in the id map marks the same change from the other side as an
/// echo: long enough for a side's callback, short enough that a person doing the same thing
/// again later is not mistaken for one.
pub const FINGERPRINT_WINDOW_SECS: i64 = 600;

fn pair(a: &str, b: &str) -> String {
    if a <= b {
        format!("c2c:{a}:{b}")
    } else {
        format!("c2c:{b}:{a}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_directions_of_a_chat_are_one_conversation() {
        let ab = json!({"conv": "c2c", "from": "a", "to": "b"});
        let ba = json!({"conv": "c2c", "from": "b", "to": "a"});
        assert_eq!(conversation("message.sent", &ab), "c2c:a:b");
        assert_eq!(conversation("message.sent", &ba), "c2c:a:b");
        assert_eq!(conversation("message.recalled", &ba), "c2c:a:b");
        let g = json!({"conv": "group", "from": "a", "to": "g1"});
        assert_eq!(conversation("message.sent", &g), "group:g1");
        assert_eq!(
            conversation("group.created", &json!({"id": "g1"})),
            "group:g1"
        );
        assert_eq!(
            conversation("group.members_left", &json!({"group": "g1"})),
            "group:g1"
        );
    }

    #[test]
    fn a_friendship_has_one_fingerprint_whichever_account_reports_it() {
        let ab = json!({"owner": "a", "friend": "b"});
        let ba = json!({"owner": "b", "friend": "a"});
        assert_eq!(
            fingerprint("friend.added", &ab),
            fingerprint("friend.added", &ba)
        );
        assert_ne!(
            fingerprint("friend.added", &ab),
            fingerprint("friend.removed", &ab)
        );
        assert_eq!(conversation("friend.added", &ba), "c2c:a:b");
    }
}
