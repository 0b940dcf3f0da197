//! Storing inbound events: one statement for many deliveries.
//!
//! A provider's callback carries one event, and a commit per delivery made the database the
//! door's limit under a burst (every delivery its own statement, transaction and WAL flush).
//! [`GroupCommit`] lets deliveries that arrive while earlier ones are being written wait and
//! go into the next statement together, each still answered only after its events are
//! committed. Under light load a delivery is written alone at once: nothing waits on a timer.
//!
//! An event whose conversation has nothing waiting is stored already taken for sending and
//! handed to this process's sender with one of its slots ([`Handoff`]): it skips the claim,
//! which would only have found it as its conversation's head a few milliseconds later.

use crate::model::{MigrationId, Side};
use crate::providers::InboundEvent;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

/// Events per statement at most (a relay delivery carries up to 100).
const MAX_EVENTS: usize = 1_000;

/// One delivery's events, for one migration's side.
pub struct Delivery {
    pub id: MigrationId,
    pub side: Side,
    pub events: Vec<InboundEvent>,
    /// The side's reorder window: queued events are due this long after arriving.
    pub hold: Duration,
}

/// What storing a delivery did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stored {
    /// Events not there before.
    pub new: usize,
    /// Of those, waiting to be sent.
    pub queued: usize,
    /// Of those, imshift's own (by origin or by the id map).
    pub echo: usize,
    /// Of those, handed straight to this process's sender (not counted in `queued`).
    pub handed: usize,
}

/// An event stored already taken for sending: the head of a conversation that had nothing
/// waiting, leased like a claimed one.
pub struct Ready {
    pub id: MigrationId,
    pub side: Side,
    pub event: InboundEvent,
}

/// Where the door hands ready events: the sender's slots (one is taken per event before the
/// statement, so the sender never holds more than it has room for) and its inbox.
#[derive(Clone)]
pub struct Handoff {
    pub slots: Arc<Semaphore>,
    pub inbox: mpsc::UnboundedSender<(Vec<Ready>, OwnedSemaphorePermit)>,
}

struct Waiting {
    delivery: Delivery,
    answer: oneshot::Sender<Result<Stored, String>>,
}

/// The door's writer: started on the first delivery, it lives as long as the process.
#[derive(Default)]
pub struct GroupCommit {
    queue: OnceLock<mpsc::UnboundedSender<Waiting>>,
    handoff: Arc<std::sync::Mutex<Option<Handoff>>>,
}

impl GroupCommit {
    /// Hands this process's sender the events it can take at once (called by the sender when
    /// it starts; without a sender, or once it stopped, every event waits for a claim).
    pub fn hand_to(&self, handoff: Handoff) {
        *self.handoff.lock().unwrap() = Some(handoff);
    }

    /// Stores `delivery` (with the door's outcome counts) and answers once it is committed.
    pub async fn store(&self, pool: &sqlx::PgPool, delivery: Delivery) -> Result<Stored, String> {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(write_loop(pool.clone(), rx, self.handoff.clone()));
            tx
        });
        let (answer, answered) = oneshot::channel();
        queue
            .send(Waiting { delivery, answer })
            .map_err(|_| "the event writer stopped".to_string())?;
        answered
            .await
            .map_err(|_| "the event writer stopped".to_string())?
    }
}

/// Writes one statement at a time, so that deliveries commit in the order they reached the
/// writer: with four statements at once, a large batch committed after a small one that
/// arrived behind it, and the sender took a conversation's later event as its head before the
/// earlier one was visible (40 chats out of order in 10 minutes at 1,000/s). While a statement
/// runs, the deliveries behind it gather for the next.
async fn write_loop(
    pool: sqlx::PgPool,
    mut rx: mpsc::UnboundedReceiver<Waiting>,
    handoff: Arc<std::sync::Mutex<Option<Handoff>>>,
) {
    while let Some(first) = rx.recv().await {
        let mut n = first.delivery.events.len();
        let mut batch = vec![first];
        while n < MAX_EVENTS {
            match rx.try_recv() {
                Ok(w) => {
                    n += w.delivery.events.len();
                    batch.push(w);
                }
                Err(_) => break,
            }
        }
        let to = handoff
            .lock()
            .unwrap()
            .clone()
            .filter(|h| !h.inbox.is_closed());
        write(&pool, batch, to.as_ref()).await;
    }
}

/// Writes a batch, hands the sender what it may take at once, and answers each delivery. A
/// batch that fails is written again one delivery at a time (then nothing is handed: the
/// claim finds those), so that one delivery the database refuses costs no other its answer.
async fn write(pool: &sqlx::PgPool, batch: Vec<Waiting>, handoff: Option<&Handoff>) {
    let (deliveries, answers): (Vec<Delivery>, Vec<_>) =
        batch.into_iter().map(|w| (w.delivery, w.answer)).unzip();
    let events: usize = deliveries.iter().map(|d| d.events.len()).sum();
    let mut slots = handoff.and_then(|h| {
        let n = h.slots.available_permits().min(events);
        h.slots.clone().try_acquire_many_owned(n as u32).ok()
    });
    let room = slots.as_ref().map_or(0, OwnedSemaphorePermit::num_permits);
    let t0 = std::time::Instant::now();
    let r = store_all(pool, &deliveries, true, room).await;
    tracing::debug!(
        target: super::TIMING,
        events,
        room,
        statement_ms = super::ms(t0.elapsed()),
        "sync: deliveries stored"
    );
    match r {
        Ok((stored, ready)) => {
            if let (Some(h), Some(all)) = (handoff, slots.as_mut()) {
                if let Some(taken) = all.split(ready.len()).filter(|_| !ready.is_empty()) {
                    // A sender that stopped leaves them leased: the claim takes them later.
                    let _ = h.inbox.send((ready, taken));
                }
            }
            drop(slots);
            for (answer, stored) in answers.into_iter().zip(stored) {
                let _ = answer.send(Ok(stored));
            }
        }
        Err(e) if deliveries.len() == 1 => {
            for answer in answers {
                let _ = answer.send(Err(e.to_string()));
            }
        }
        Err(_) => {
            drop(slots);
            for (d, answer) in deliveries.iter().zip(answers) {
                let one = store_all(pool, std::slice::from_ref(d), true, 0).await;
                let _ = answer.send(
                    one.map(|(mut s, _)| s.pop().unwrap_or_default())
                        .map_err(|e| e.to_string()),
                );
            }
        }
    }
}

/// Stores one delivery's events in one statement, outside the door's writer (the gap
/// read-back, which counts nothing at the door).
pub async fn store(
    pool: &sqlx::PgPool,
    delivery: Delivery,
    counted: bool,
) -> Result<Stored, sqlx::Error> {
    let (mut stored, _) = store_all(pool, std::slice::from_ref(&delivery), counted, 0).await?;
    Ok(stored.pop().unwrap_or_default())
}

/// Stores deliveries in one statement (events already there are left as they are) and says
/// what became of each. An event imshift made (its origin tag, or an id in the id map) is
/// kept as an echo and never sent; one arriving while its direction is off is kept as such.
/// `counted`: the same statement adds them to the door's outcome counts. Up to `room` events
/// that are their conversation's only one waiting (none before them, no reorder window, not
/// possibly the copy of a send still unanswered) are stored leased for sending and come back
/// as [`Ready`].
async fn store_all(
    pool: &sqlx::PgPool,
    deliveries: &[Delivery],
    counted: bool,
    room: usize,
) -> Result<(Vec<Stored>, Vec<Ready>), sqlx::Error> {
    let mut rows = Vec::new();
    let mut totals: HashMap<(MigrationId, Side), i64> = HashMap::new();
    for d in deliveries {
        *totals.entry((d.id, d.side)).or_default() += d.events.len() as i64;
        for e in &d.events {
            rows.push(json!({
                "migration_id": d.id, "side": d.side.as_str(), "hold": d.hold.as_secs_f64(),
                "key": e.key, "kind": e.kind, "at_ms": e.at_ms, "data": e.data,
                "origin": e.origin, "conv": super::conversation(&e.kind, &e.data),
                "alias": e.alias, "fp": super::fingerprint(&e.kind, &e.data),
                "ord": rows.len()}));
        }
    }
    if rows.is_empty() {
        return Ok((
            deliveries.iter().map(|_| Stored::default()).collect(),
            vec![],
        ));
    }
    let totals: Vec<Value> = totals
        .into_iter()
        .map(|((id, side), n)| json!({"migration_id": id, "side": side.as_str(), "n": n}))
        .collect();
    let inserted: Vec<(MigrationId, String, String, String)> = sqlx::query_as(
        "WITH src AS (
         SELECT e.*, row_number() OVER (PARTITION BY e.migration_id, e.side, e.conv
                                        ORDER BY e.at_ms, e.ord) AS nth
         FROM jsonb_to_recordset($1)
              AS e(migration_id uuid, side text, hold float8, key text, kind text,
                   at_ms bigint, data jsonb, origin text, conv text, alias text, fp text,
                   ord bigint)
         ), judged AS (
         SELECT src.*,
                -- Three probes by the whole key, per event (OFFSET 0 keeps each one): as one
                -- lookup with ORs, a planner without statistics of the id map probed it by
                -- migration and side alone and read every id of the side per event (1.2 s a
                -- statement seconds into a run at 1,000/s); as plain EXISTS, it hashed the
                -- whole id map once per statement until the map was large (95 ms at 36 s).
                CASE WHEN src.origin = $2
                          OR EXISTS (SELECT 1 FROM sync_ids m
                                     WHERE m.migration_id = src.migration_id
                                       AND m.side = src.side AND m.id = src.key OFFSET 0)
                          OR EXISTS (SELECT 1 FROM sync_ids m
                                     WHERE m.migration_id = src.migration_id
                                       AND m.side = src.side AND m.id = src.alias OFFSET 0)
                          OR EXISTS (SELECT 1 FROM sync_ids m
                                     WHERE m.migration_id = src.migration_id
                                       AND m.side = src.side AND m.id = src.fp
                                       AND m.made_at > now() - make_interval(secs => $3)
                                     OFFSET 0)
                     THEN 'echo'
                     WHEN COALESCE((SELECT d.enabled FROM sync_directions d
                                    WHERE d.migration_id = src.migration_id
                                      AND d.from_side = src.side), false)
                     THEN 'queued'
                     ELSE 'off' END AS st
         FROM src
         ), headed AS (
         -- Its conversation's first in this statement, with nothing of it waiting before:
         -- the head it would be claimed as. (A probe of the waiting index per event, not a
         -- hash of everything waiting, which a backlog makes large.)
         SELECT judged.*,
                judged.st = 'queued' AND judged.hold = 0 AND judged.nth = 1
                AND NOT EXISTS (SELECT 1 FROM sync_inbound w
                                WHERE w.migration_id = judged.migration_id
                                  AND w.side = judged.side AND w.conv = judged.conv
                                  AND w.state IN ('queued', 'sending') OFFSET 0)
                -- Nor a message that may be the copy of a send into its side whose answer
                -- (the id it would be known by) has not come: the claim waits for it.
                AND (judged.kind <> 'message.sent'
                     OR NOT EXISTS (SELECT 1 FROM sync_unanswered u
                                    WHERE u.migration_id = judged.migration_id
                                      AND u.side = judged.side
                                      AND u.since > now() - make_interval(secs => $7)
                                    OFFSET 0)) AS head
         FROM judged
         ), placed AS (
         SELECT h.*,
                CASE WHEN h.head AND count(*) FILTER (WHERE h.head) OVER (ORDER BY h.ord) <= $6
                     THEN 'sending' ELSE h.st END AS state
         FROM headed h
         ), ins AS (
         INSERT INTO sync_inbound (migration_id, side, key, kind, at, data, conv, origin,
                                   next_at, state, lease_until)
         SELECT p.migration_id, p.side, p.key, p.kind, to_timestamp(p.at_ms::float8 / 1000),
                p.data, p.conv, p.origin, now() + make_interval(secs => p.hold), p.state,
                CASE WHEN p.state = 'sending' THEN now() + make_interval(secs => $7) END
         FROM placed p
         ORDER BY p.ord
         ON CONFLICT (migration_id, side, key) DO NOTHING
         RETURNING migration_id, side, key, state
         ), per AS (
         SELECT t.migration_id, t.side, t.n,
                count(ins.key) AS new,
                count(ins.key) FILTER (WHERE ins.state = 'echo') AS echo
         FROM jsonb_to_recordset($4) AS t(migration_id uuid, side text, n bigint)
              LEFT JOIN ins ON ins.migration_id = t.migration_id AND ins.side = t.side
         GROUP BY t.migration_id, t.side, t.n
         ), counted AS (
         INSERT INTO sync_inbound_counts (migration_id, side, outcome, shard, n, last_at)
         SELECT p.migration_id, p.side, o.outcome, floor(random() * 16)::smallint, o.n, now()
         FROM per p CROSS JOIN LATERAL (VALUES ('accepted', p.new), ('duplicate', p.n - p.new),
                                               ('echo', p.echo)) AS o(outcome, n)
         WHERE $5 AND o.n > 0
         ON CONFLICT (migration_id, side, outcome, shard)
         DO UPDATE SET n = sync_inbound_counts.n + EXCLUDED.n, last_at = EXCLUDED.last_at
         )
         SELECT migration_id, side, key, state FROM ins",
    )
    .bind(Value::Array(rows))
    .bind(crate::providers::ORIGIN)
    .bind(super::FINGERPRINT_WINDOW_SECS as f64)
    .bind(Value::Array(totals))
    .bind(counted)
    .bind(room as i64)
    .bind(super::deliver::LEASE.as_secs_f64())
    .fetch_all(pool)
    .await?;
    let ready = ready(deliveries, &inserted);
    Ok((outcomes(deliveries, inserted), ready))
}

/// The events stored leased for sending, as the deliveries carried them.
fn ready(
    deliveries: &[Delivery],
    inserted: &[(MigrationId, String, String, String)],
) -> Vec<Ready> {
    let mut wanted: HashSet<(MigrationId, &str, &str)> = inserted
        .iter()
        .filter(|(_, _, _, state)| state == "sending")
        .map(|(id, side, key, _)| (*id, side.as_str(), key.as_str()))
        .collect();
    let mut ready = vec![];
    for d in deliveries {
        for e in &d.events {
            if wanted.remove(&(d.id, d.side.as_str(), e.key.as_str())) {
                ready.push(Ready {
                    id: d.id,
                    side: d.side,
                    event: e.clone(),
                });
            }
        }
    }
    ready
}

/// Each delivery's share of what the statement inserted: an event is new to the first
/// delivery that carried it; the same key again (in that delivery or a later one) was there.
fn outcomes(
    deliveries: &[Delivery],
    inserted: Vec<(MigrationId, String, String, String)>,
) -> Vec<Stored> {
    let mut states: HashMap<(MigrationId, String, String), String> = inserted
        .into_iter()
        .map(|(id, side, key, state)| ((id, side, key), state))
        .collect();
    deliveries
        .iter()
        .map(|d| {
            let mut s = Stored::default();
            for e in &d.events {
                let key = (d.id, d.side.as_str().to_string(), e.key.clone());
                if let Some(state) = states.remove(&key) {
                    s.new += 1;
                    s.queued += usize::from(state == "queued");
                    s.echo += usize::from(state == "echo");
                    s.handed += usize::from(state == "sending");
                }
            }
            s
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(key: &str) -> InboundEvent {
        InboundEvent {
            key: key.into(),
            kind: "message.sent".into(),
            at_ms: 0,
            data: json!({}),
            origin: None,
            alias: None,
        }
    }

    #[test]
    fn an_event_is_new_only_to_the_first_delivery_that_carried_it() {
        let id = MigrationId::new_v4();
        let d = |keys: &[&str]| Delivery {
            id,
            side: Side::Source,
            events: keys.iter().map(|k| event(k)).collect(),
            hold: Duration::ZERO,
        };
        let deliveries = [d(&["a", "b", "a"]), d(&["b", "c"]), d(&["d"])];
        let row =
            |key: &str, state: &str| (id, "source".to_string(), key.to_string(), state.into());
        // "d" was stored before this statement: nothing came back for it.
        let inserted = vec![row("a", "queued"), row("b", "echo"), row("c", "off")];
        let got = outcomes(&deliveries, inserted);
        assert_eq!(
            got,
            vec![
                Stored {
                    new: 2,
                    queued: 1,
                    echo: 1,
                    handed: 0
                },
                Stored {
                    new: 1,
                    ..Stored::default()
                },
                Stored::default(),
            ]
        );
    }
}
