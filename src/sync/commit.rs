//! Storing inbound events: one statement for many deliveries.
//!
//! A provider's callback carries one event, and a commit per delivery made the database the
//! door's limit under a burst (every delivery its own statement, transaction and WAL flush).
//! [`GroupCommit`] lets deliveries that arrive while earlier ones are being written wait and
//! go into the next statement together, each still answered only after its events are
//! committed. Under light load a delivery is written alone at once: nothing waits on a timer.

use crate::model::{MigrationId, Side};
use crate::providers::InboundEvent;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

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
}

struct Waiting {
    delivery: Delivery,
    answer: oneshot::Sender<Result<Stored, String>>,
}

/// The door's writer: started on the first delivery, it lives as long as the process.
#[derive(Default)]
pub struct GroupCommit {
    queue: OnceLock<mpsc::UnboundedSender<Waiting>>,
}

impl GroupCommit {
    /// Stores `delivery` (with the door's outcome counts) and answers once it is committed.
    pub async fn store(&self, pool: &sqlx::PgPool, delivery: Delivery) -> Result<Stored, String> {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(write_loop(pool.clone(), rx));
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
async fn write_loop(pool: sqlx::PgPool, mut rx: mpsc::UnboundedReceiver<Waiting>) {
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
        write(&pool, batch).await;
    }
}

/// Writes a batch and answers each delivery. A batch that fails is written again one delivery
/// at a time, so that one delivery the database refuses costs no other its answer.
async fn write(pool: &sqlx::PgPool, batch: Vec<Waiting>) {
    let (deliveries, answers): (Vec<Delivery>, Vec<_>) =
        batch.into_iter().map(|w| (w.delivery, w.answer)).unzip();
    match store_all(pool, &deliveries, true).await {
        Ok(stored) => {
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
            for (d, answer) in deliveries.iter().zip(answers) {
                let one = store_all(pool, std::slice::from_ref(d), true).await;
                let _ = answer.send(
                    one.map(|mut s| s.pop().unwrap_or_default())
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
    let mut stored = store_all(pool, std::slice::from_ref(&delivery), counted).await?;
    Ok(stored.pop().unwrap_or_default())
}

/// Stores deliveries in one statement (events already there are left as they are) and says
/// what became of each. An event imshift made (its origin tag, or an id in the id map) is
/// kept as an echo and never sent; one arriving while its direction is off is kept as such.
/// `counted`: the same statement adds them to the door's outcome counts.
async fn store_all(
    pool: &sqlx::PgPool,
    deliveries: &[Delivery],
    counted: bool,
) -> Result<Vec<Stored>, sqlx::Error> {
    let mut rows = Vec::new();
    let mut totals: HashMap<(MigrationId, Side), i64> = HashMap::new();
    for d in deliveries {
        *totals.entry((d.id, d.side)).or_default() += d.events.len() as i64;
        for e in &d.events {
            rows.push(json!({
                "migration_id": d.id, "side": d.side.as_str(), "hold": d.hold.as_secs_f64(),
                "key": e.key, "kind": e.kind, "at_ms": e.at_ms, "data": e.data,
                "origin": e.origin, "conv": super::conversation(&e.kind, &e.data),
                "alias": e.alias, "fp": super::fingerprint(&e.kind, &e.data)}));
        }
    }
    if rows.is_empty() {
        return Ok(deliveries.iter().map(|_| Stored::default()).collect());
    }
    let totals: Vec<Value> = totals
        .into_iter()
        .map(|((id, side), n)| json!({"migration_id": id, "side": side.as_str(), "n": n}))
        .collect();
    let inserted: Vec<(MigrationId, String, String, String)> = sqlx::query_as(
        "WITH ins AS (
         INSERT INTO sync_inbound (migration_id, side, key, kind, at, data, conv, origin,
                                   next_at, state)
         SELECT e.migration_id, e.side, e.key, e.kind, to_timestamp(e.at_ms::float8 / 1000),
                e.data, e.conv, e.origin, now() + make_interval(secs => e.hold),
                CASE WHEN e.origin = $2 OR EXISTS (
                          SELECT 1 FROM sync_ids m
                          WHERE m.migration_id = e.migration_id AND m.side = e.side
                            AND (m.id = e.key OR m.id = e.alias
                                 OR (m.id = e.fp
                                     AND m.made_at > now() - make_interval(secs => $3))))
                     THEN 'echo'
                     WHEN COALESCE((SELECT d.enabled FROM sync_directions d
                                    WHERE d.migration_id = e.migration_id
                                      AND d.from_side = e.side), false)
                     THEN 'queued'
                     ELSE 'off' END
         FROM jsonb_to_recordset($1)
              AS e(migration_id uuid, side text, hold float8, key text, kind text,
                   at_ms bigint, data jsonb, origin text, conv text, alias text, fp text)
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
    .fetch_all(pool)
    .await?;
    Ok(outcomes(deliveries, inserted))
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
                    echo: 1
                },
                Stored {
                    new: 1,
                    queued: 0,
                    echo: 0
                },
                Stored::default(),
            ]
        );
    }
}
