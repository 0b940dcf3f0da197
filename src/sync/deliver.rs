//! The sender: takes stored events and applies them to the other side of their migration.
//!
//! Claiming is one statement over `sync_inbound`: only the head of each conversation (its
//! oldest event not yet applied or set aside) can be taken, and taking it marks it `sending`
//! with a lease. So one conversation never has two events in flight and never overtakes
//! itself, across every console process, and a process that dies mid-send leaves a lease
//! that expires and lets another take the event again (the sinks' deterministic ids make
//! that resend land once). A failed event stays the head of its conversation and blocks it
//! until it is applied or set aside as dead: order is kept through outages.

use super::commit::{Handoff, Ready};
use crate::jobs::pacer::Pacer;
use crate::migration::{connections, limits};
use crate::model::{MigrationId, Side};
use crate::providers::retry::{Decision, Policy};
use crate::providers::{Delivered, ErrorClass, Original, SyncEvent, SyncSink};
use crate::service::Services;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};

/// Events this process has in flight at most (each conversation has at most one).
const IN_FLIGHT: usize = 64;
/// A sender that stops answering frees its events after this long.
pub(crate) const LEASE: Duration = Duration::from_secs(60);
/// How often the queue is looked at when nothing woke the sender.
const POLL: Duration = Duration::from_millis(250);
/// A sink is rebuilt after this long, so that a changed connection is picked up.
const SINK_TTL: Duration = Duration::from_secs(30);
/// The wait before an event whose side cannot be opened (an incomplete connection) is tried
/// again.
const NO_SINK_WAIT: Duration = Duration::from_secs(30);

/// One claimed event.
struct Claimed {
    migration_id: MigrationId,
    /// The side it came from; it goes to the other.
    side: Side,
    event: SyncEvent,
    attempts: i32,
}

/// The sinks built lately, by migration and the side they send into, with when.
type Sinks = HashMap<(MigrationId, Side), (Instant, Arc<dyn SyncSink>)>;

/// Events this process has in flight, by migration and the side they came from.
type Busy = Arc<std::sync::Mutex<HashMap<(MigrationId, Side), usize>>>;

/// Slots held by one direction's events in flight, counted in [`Busy`] while held: the claim
/// serves the least busy direction first, so a direction whose sends wait on a low quota does
/// not hold every slot while the other direction's events wait behind it.
struct Held {
    permit: tokio::sync::OwnedSemaphorePermit,
    key: (MigrationId, Side),
    busy: Busy,
}

impl Held {
    fn new(
        permit: tokio::sync::OwnedSemaphorePermit,
        key: (MigrationId, Side),
        busy: &Busy,
    ) -> Held {
        *busy.lock().unwrap().entry(key).or_default() += permit.num_permits();
        Held {
            permit,
            key,
            busy: busy.clone(),
        }
    }

    fn split(&mut self, n: usize) -> Option<Held> {
        let permit = self.permit.split(n)?;
        Some(Held {
            permit,
            key: self.key,
            busy: self.busy.clone(),
        })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut busy = self.busy.lock().unwrap();
        if let Some(n) = busy.get_mut(&self.key) {
            *n = n.saturating_sub(self.permit.num_permits());
            if *n == 0 {
                busy.remove(&self.key);
            }
        }
    }
}

pub struct Sender {
    services: Services,
    pacer: Pacer,
    sinks: Mutex<Sinks>,
    slots: Arc<Semaphore>,
    busy: Busy,
}

/// The sender's own database connections. On the shared pool its deliveries in flight took
/// the connections the door needed, and a provider gives up on a callback answered late.
const CONNECTIONS: u32 = 8;

/// Starts this process's sender; it runs until the task is aborted.
pub fn spawn(mut services: Services) -> tokio::task::JoinHandle<()> {
    services.pool = crate::db::own_pool(&services.pool, CONNECTIONS);
    let sender = Arc::new(Sender {
        pacer: Pacer::as_needed(services.pool.clone()),
        services,
        sinks: Mutex::default(),
        slots: Arc::new(Semaphore::new(IN_FLIGHT)),
        busy: Busy::default(),
    });
    let (inbox, mut handed) = tokio::sync::mpsc::unbounded_channel();
    sender.services.door.hand_to(Handoff {
        slots: sender.slots.clone(),
        inbox,
    });
    tokio::spawn(async move {
        // What the door hands over is sent at once; the loop claims the rest.
        let me = sender.clone();
        let _handoffs = AbortOnDrop(tokio::spawn(async move {
            while let Some((ready, permits)) = handed.recv().await {
                me.dispatch(ready.into_iter().map(Claimed::from).collect(), permits);
            }
        }));
        sender.run().await;
    })
}

/// Stops the task taking the door's events when the sender stops (aborted with its worker
/// pool): a stopped console must not go on sending.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl From<Ready> for Claimed {
    fn from(r: Ready) -> Claimed {
        Claimed {
            migration_id: r.id,
            side: r.side,
            event: SyncEvent {
                key: r.event.key,
                kind: r.event.kind,
                at_ms: r.event.at_ms,
                data: r.event.data,
                original: None,
                attempts: 0,
            },
            attempts: 0,
        }
    }
}

impl Sender {
    async fn run(self: Arc<Self>) {
        let mut next_look = Instant::now();
        loop {
            if Instant::now() >= next_look {
                next_look = Instant::now() + STATISTICS_EVERY;
                tokio::spawn(keep_statistics(self.services.pool.clone()));
            }
            // Wait for room before claiming: claimed events start their lease at once.
            let Ok(first) = self.slots.clone().acquire_owned().await else {
                return;
            };
            let room = self.slots.available_permits() + 1;
            let busy: Vec<_> = self
                .busy
                .lock()
                .unwrap()
                .iter()
                .map(|(k, n)| (*k, *n))
                .collect();
            let claimed = match claim(&self.services, room, &busy).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "sync: claiming events failed");
                    drop(first);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if claimed.is_empty() {
                drop(first);
                tokio::select! {
                    () = self.services.sync_wake.notified() => {}
                    () = tokio::time::sleep(POLL) => {}
                }
                continue;
            }
            let extra = claimed.len().saturating_sub(1) as u32;
            let Ok(more) = self.slots.clone().acquire_many_owned(extra).await else {
                return;
            };
            let mut permits = first;
            permits.merge(more);
            self.dispatch(claimed, permits);
        }
    }

    /// Starts delivering claimed events, a task per migration and direction. The permits (one
    /// per event) travel with each group's events; each is freed as soon as its event is
    /// recorded, so a group's slowest send holds up no other conversation.
    fn dispatch(self: &Arc<Self>, claimed: Vec<Claimed>, mut permits: OwnedSemaphorePermit) {
        let mut groups: HashMap<(MigrationId, Side), Vec<Claimed>> = HashMap::new();
        for c in claimed {
            groups.entry((c.migration_id, c.side)).or_default().push(c);
        }
        for ((id, from), events) in groups {
            let held = permits
                .split(events.len())
                .map(|p| Held::new(p, (id, from), &self.busy));
            let me = self.clone();
            tokio::spawn(async move {
                me.deliver(id, from, events, held).await;
                me.services.sync_wake.notify_one();
            });
        }
    }

    async fn sink(&self, id: MigrationId, to: Side) -> Result<Arc<dyn SyncSink>, String> {
        if let Some((at, sink)) = self.sinks.lock().await.get(&(id, to)) {
            if at.elapsed() < SINK_TTL {
                return Ok(sink.clone());
            }
        }
        let (provider, conn) = connections::open(&self.services, id, to)
            .await
            .map_err(|e| e.to_string())?;
        let limits = match to {
            Side::Target => {
                limits::effective(&self.services.pool, &self.services.config.providers, id)
                    .await
                    .map_err(|e| e.to_string())?
            }
            Side::Source => provider.limits(),
        };
        let sink = provider.sync_sink(&conn, limits, self.services.config.sync_guards)?;
        self.sinks
            .lock()
            .await
            .insert((id, to), (Instant::now(), sink.clone()));
        Ok(sink)
    }

    /// Applies one migration's claimed events of one direction. `held` has a permit per event;
    /// each goes back when its event is recorded, and the next event of its conversation is
    /// then due at once.
    async fn deliver(
        &self,
        id: MigrationId,
        from: Side,
        events: Vec<Claimed>,
        mut held: Option<Held>,
    ) {
        let to = from.other();
        // Each stage's end, from here, for the timing log.
        let t0 = Instant::now();
        let mut events = events;
        for c in events
            .iter_mut()
            .filter(|c| c.event.kind == "message.recalled")
        {
            match original(&self.services.pool, id, from, &mut c.event).await {
                Ok(o) => c.event.original = Some(o),
                Err(e) => {
                    tracing::warn!(error = %e, "sync: looking up a recalled message failed; the lease will expire");
                    return;
                }
            }
        }
        if from == Side::Target {
            if let Err(e) = old_ids(&self.services.pool, id, &mut events).await {
                tracing::warn!(error = %e, "sync: reading the id map failed; the lease will expire");
                return;
            }
        }
        let sink = match self.sink(id, to).await {
            Ok(s) => s,
            Err(why) => {
                let failed = Delivered::failed(
                    ErrorClass::Auth,
                    Some("no_connection".into()),
                    format!("the {to} side cannot be reached: {why}"),
                );
                for c in &events {
                    self.record(c, &failed, Some(NO_SINK_WAIT)).await;
                }
                return;
            }
        };
        let t1 = t0.elapsed();
        let unanswered = match self.expect(id, to, &sink, &events).await {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(error = %e, "sync: writing the id map failed; the lease will expire");
                return;
            }
        };
        let t2 = t0.elapsed();
        if sink.batch() > 1 {
            for chunk in events.chunks(sink.batch()) {
                let marked: Vec<&str> = chunk
                    .iter()
                    .map(|c| c.event.key.as_str())
                    .filter(|k| unanswered.contains(*k))
                    .collect();
                if let Err(e) = self.mark_unanswered(id, to, &marked).await {
                    tracing::warn!(error = %e, "sync: marking sends failed; the lease will expire");
                    return;
                }
                let batch: Vec<SyncEvent> = chunk.iter().map(|c| c.event.clone()).collect();
                let results = sink.deliver(&batch).await;
                // Applied ones in two statements, failures one by one.
                let mut applied = vec![];
                for (c, r) in chunk.iter().zip(results) {
                    match r {
                        Delivered::Applied { made } => applied.push((c, made)),
                        failed => self.record(c, &failed, None).await,
                    }
                }
                let b = t0.elapsed();
                if let Err(e) = self.record_applied(id, from, &applied).await {
                    tracing::warn!(error = %e, migration = %id, "sync: recording deliveries failed");
                }
                tracing::debug!(
                    target: super::TIMING,
                    events = chunk.len(),
                    lookups_ms = super::ms(t1),
                    ids_ms = super::ms(t2 - t1),
                    sent_ms = super::ms(b),
                    recorded_ms = super::ms(t0.elapsed()),
                    "sync: a batch delivered"
                );
                self.free(held.as_mut().and_then(|h| h.split(chunk.len())));
            }
            return;
        }
        let n = events.len();
        // One request per event: conversations are independent, so they go side by side.
        let unanswered = &unanswered;
        let sends = events.iter().map(|c| {
            let sink = sink.clone();
            let permit = held.as_mut().and_then(|h| h.split(1));
            async move {
                let a = t0.elapsed();
                if let Some((key, qps)) = sink.pace(&c.event) {
                    if let Err(e) = self.pacer.wait(&key, qps).await {
                        tracing::warn!(error = %e, "sync: pacing failed; sending unpaced");
                    }
                }
                let marked: &[&str] = if unanswered.contains(&c.event.key) {
                    &[c.event.key.as_str()]
                } else {
                    &[]
                };
                if let Err(e) = self.mark_unanswered(id, to, marked).await {
                    // Its slot goes back; the lease expires and it is sent then.
                    tracing::warn!(error = %e, "sync: marking a send failed; the lease will expire");
                    self.free(permit);
                    return;
                }
                let r = sink
                    .deliver(std::slice::from_ref(&c.event))
                    .await
                    .pop()
                    .unwrap_or_else(|| Delivered::failed(ErrorClass::Retryable, None, "no answer"));
                if let (
                    Delivered::Failed {
                        class: ErrorClass::RateLimited,
                        ..
                    },
                    Some((key, _)),
                ) = (&r, sink.pace(&c.event))
                {
                    let _ = self.pacer.throttled(&key).await;
                }
                let b = t0.elapsed();
                // Recorded as soon as it is applied, not with its group: the pacer spreads a
                // group's sends, and `sent_at` is when this one landed.
                self.record(c, &r, None).await;
                tracing::debug!(
                    target: super::TIMING,
                    events = n,
                    lookups_ms = super::ms(t1),
                    ids_ms = super::ms(t2 - t1),
                    started_ms = super::ms(a),
                    sent_ms = super::ms(b),
                    recorded_ms = super::ms(t0.elapsed()),
                    "sync: an event delivered"
                );
                self.free(permit);
            }
        });
        futures_util::future::join_all(sends).await;
    }

    /// Gives back the permits of recorded events and wakes the claim for their conversations'
    /// next events.
    fn free(&self, permits: Option<Held>) {
        drop(permits);
        self.services.sync_wake.notify_one();
    }

    /// Writes the identities these events will have on `to` before they are sent. Answers the
    /// keys of the messages `to` names only in its answer (to be marked unanswered when sent).
    async fn expect(
        &self,
        id: MigrationId,
        to: Side,
        sink: &Arc<dyn SyncSink>,
        events: &[Claimed],
    ) -> Result<std::collections::HashSet<String>, sqlx::Error> {
        let mut ids = vec![];
        let mut keys = vec![];
        let mut unanswered = std::collections::HashSet::new();
        for c in events {
            let expected = sink.expected_ids(&c.event);
            if expected.is_empty() && c.event.kind == "message.sent" {
                unanswered.insert(c.event.key.clone());
            }
            let fp = super::fingerprint(&c.event.kind, &c.event.data);
            for made in expected.into_iter().chain(fp) {
                // One statement may not touch a row twice.
                if ids.contains(&made) {
                    continue;
                }
                ids.push(made);
                keys.push(c.event.key.clone());
            }
        }
        if ids.is_empty() {
            return Ok(unanswered);
        }
        // A fingerprint written again starts its window again.
        sqlx::query(
            "INSERT INTO sync_ids (migration_id, side, id, event_key)
             SELECT $1, $2, u.id, u.key FROM UNNEST($3::text[], $4::text[]) AS u(id, key)
             ON CONFLICT (migration_id, side, id) DO UPDATE SET made_at = now()",
        )
        .bind(id)
        .bind(to.as_str())
        .bind(&ids)
        .bind(&keys)
        .execute(&self.services.pool)
        .await?;
        Ok(unanswered)
    }

    /// Marks sends of messages that `to` names only in its answer as unanswered (see the
    /// claim), just before they are sent: after the quota's wait, so that sends waiting on a
    /// low quota hold up no message from `to` meanwhile.
    async fn mark_unanswered(
        &self,
        id: MigrationId,
        to: Side,
        keys: &[&str],
    ) -> Result<(), sqlx::Error> {
        if keys.is_empty() {
            return Ok(());
        }
        // A send tried again starts again.
        sqlx::query(
            "INSERT INTO sync_unanswered (migration_id, side, event_key)
             SELECT $1, $2, k FROM UNNEST($3::text[]) AS k
             ON CONFLICT (migration_id, side, event_key) DO UPDATE SET since = now()",
        )
        .bind(id)
        .bind(to.as_str())
        .bind(keys)
        .execute(&self.services.pool)
        .await?;
        Ok(())
    }

    /// Writes a batch of applied events and their ids on the other side.
    async fn record_applied(
        &self,
        id: MigrationId,
        from: Side,
        applied: &[(&Claimed, Option<String>)],
    ) -> Result<(), sqlx::Error> {
        if applied.is_empty() {
            return Ok(());
        }
        metrics::counter!("imshift_sync_delivered_total", "from" => from.as_str(), "outcome" => "sent")
            .increment(applied.len() as u64);
        let keys: Vec<&str> = applied.iter().map(|(c, _)| c.event.key.as_str()).collect();
        let made: Vec<Option<&str>> = applied.iter().map(|(_, m)| m.as_deref()).collect();
        // One statement (one round trip, one commit): both writes land or neither.
        sqlx::query(
            // By key = ANY (the primary key), not a join with the list: joined, the planner
            // hashed every event of the side once statistics said the table was small.
            "WITH sent AS (
                 UPDATE sync_inbound s SET state = 'sent', sent_at = now(),
                        made = ($4::text[])[array_position($3::text[], s.key)],
                        lease_until = NULL, error_code = NULL, error = NULL
                 WHERE s.migration_id = $1 AND s.side = $2 AND s.key = ANY($3)
             ), answered AS (
                 -- With the id the answer gave, in the same commit: a copy of the message
                 -- is never judged between the two.
                 DELETE FROM sync_unanswered
                 WHERE migration_id = $1 AND side = $5 AND event_key = ANY($3)
             )
             INSERT INTO sync_ids (migration_id, side, id, event_key)
             SELECT $1, $5, u.made, u.key FROM UNNEST($3::text[], $4::text[]) AS u(key, made)
             WHERE u.made IS NOT NULL
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(from.as_str())
        .bind(&keys)
        .bind(&made)
        .bind(from.other().as_str())
        .execute(&self.services.pool)
        .await
        .map(|_| ())
    }

    /// Writes what became of one event. `wait` overrides the policy's wait.
    async fn record(&self, c: &Claimed, result: &Delivered, wait: Option<Duration>) {
        let pool = &self.services.pool;
        let key = (c.migration_id, c.side.as_str(), c.event.key.as_str());
        let direction = c.side.as_str();
        let written = match result {
            Delivered::Applied { made } => {
                self.record_applied(c.migration_id, c.side, &[(c, made.clone())])
                    .await
            }
            Delivered::Failed {
                class,
                code,
                message,
            } => {
                let attempts = c.attempts as usize + 1;
                let decision = Policy::SYNC.decide(*class, attempts, attempts);
                let (state, wait) = match (decision, wait) {
                    (_, Some(w)) => ("queued", w),
                    (Decision::Wait(w), None) => ("queued", w),
                    // A person must fix the credentials: try again now and then meanwhile.
                    (Decision::NeedsPerson, None) => ("queued", NO_SINK_WAIT),
                    (Decision::GiveUp, None) => ("dead", Duration::ZERO),
                };
                metrics::counter!("imshift_sync_delivered_total", "from" => direction, "outcome" => if state == "dead" { "dead" } else { "retry" }).increment(1);
                sqlx::query(
                    "WITH answered AS (
                         DELETE FROM sync_unanswered
                         WHERE migration_id = $1 AND side = $8 AND event_key = $3
                     )
                     UPDATE sync_inbound SET state = $4, attempts = attempts + 1,
                            next_at = now() + make_interval(secs => $5), lease_until = NULL,
                            error_code = $6, error = $7
                     WHERE migration_id = $1 AND side = $2 AND key = $3",
                )
                .bind(key.0)
                .bind(key.1)
                .bind(key.2)
                .bind(state)
                .bind(wait.as_secs_f64())
                .bind(code)
                .bind(message)
                .bind(c.side.other().as_str())
                .execute(pool)
                .await
                .map(|_| ())
            }
        };
        if let Err(e) = written {
            // The lease expires and the event is sent again: the sink's ids absorb the repeat.
            tracing::warn!(error = %e, migration = %c.migration_id, "sync: recording a delivery failed");
        }
    }
}

/// The ids in an event from the new side that the new side gave (a team number it chose,
/// an account id it lower-cased) turned back into the old system's own: the import's id map,
/// and the groups sync itself created there (`group.created` applied, its `made` id).
async fn old_ids(
    pool: &sqlx::PgPool,
    id: MigrationId,
    events: &mut [Claimed],
) -> Result<(), sqlx::Error> {
    fn group_field(e: &SyncEvent) -> Option<&'static str> {
        if e.kind.starts_with("group.") {
            Some("group")
        } else if e.data.get("conv").and_then(Value::as_str) == Some("group") {
            Some("to")
        } else {
            None
        }
    }
    const ACCOUNT_FIELDS: [&str; 5] = ["from", "to", "by", "owner", "friend"];
    let mut wanted: Vec<String> = vec![];
    for c in events.iter() {
        let d = &c.event.data;
        let group = group_field(&c.event);
        for f in ACCOUNT_FIELDS.iter().copied().chain(group) {
            if let Some(v) = d.get(f).and_then(Value::as_str) {
                wanted.push(v.to_string());
            }
        }
        for a in d
            .get("accounts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(v) = a.as_str() {
                wanted.push(v.to_string());
            }
        }
    }
    if wanted.is_empty() {
        return Ok(());
    }
    wanted.sort();
    wanted.dedup();
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT kind, new_id, old_id FROM import_id_map
         WHERE migration_id = $1 AND new_id = ANY($2)
         UNION ALL
         SELECT 'group', m.id, i.data->>'id' FROM sync_ids m,
         -- Each event by its key (LIMIT keeps it a probe per id): joined freely, a planner
         -- without statistics read every event of the side looking for group creations.
         LATERAL (SELECT data FROM sync_inbound
                  WHERE migration_id = m.migration_id AND side = 'source' AND key = m.event_key
                    AND kind = 'group.created' LIMIT 1) i
         WHERE m.migration_id = $1 AND m.side = 'target' AND m.id = ANY($2)
           AND i.data->>'id' IS NOT NULL",
    )
    .bind(id)
    .bind(&wanted)
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let map: HashMap<(String, String), String> = rows
        .into_iter()
        .map(|(kind, new, old)| ((kind, new), old))
        .collect();
    let swap = |kind: &str, v: &mut Value| {
        if let Some(old) = v
            .as_str()
            .and_then(|n| map.get(&(kind.to_string(), n.to_string())))
        {
            *v = Value::String(old.clone());
        }
    };
    for c in events.iter_mut() {
        let group = group_field(&c.event);
        let d = &mut c.event.data;
        for f in ACCOUNT_FIELDS {
            if Some(f) == group {
                continue;
            }
            if let Some(v) = d.get_mut(f) {
                swap("account", v);
            }
        }
        if let Some(f) = group {
            if let Some(v) = d.get_mut(f) {
                swap("group", v);
            }
        }
        if let Some(Value::Array(a)) = d.get_mut("accounts") {
            for v in a {
                swap("account", v);
            }
        }
    }
    Ok(())
}

/// What the message a `message.recalled` names is on the side the recall goes to, looked up
/// four ways (order within a conversation means its message was sent, or set aside, first):
/// - a `message.sent` of the same id from the recall's side, applied on the other: `Applied`
///   with what the other side answered for it;
/// - an old system's group message the import moved, in the import's id map: `Applied` with
///   what the target answered;
/// - one from the other side that imshift relayed here, named by the same id: `Theirs`;
/// - one from the other side that imshift made here, found by the ids the recall's side may
///   know it by (`refs`, which the side's door gives): `Theirs`, with the recall's `id`,
///   `from` and `sent_at` turned back into that message's own.
///
/// `refs` are taken off: they are for this lookup, not for the other side.
async fn original(
    pool: &sqlx::PgPool,
    id: MigrationId,
    from: Side,
    recall: &mut SyncEvent,
) -> Result<Original, sqlx::Error> {
    let refs: Vec<String> = match recall.data.as_object_mut().and_then(|o| o.remove("refs")) {
        Some(Value::Array(a)) => a
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => vec![],
    };
    let message = recall
        .data
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let conv = super::conversation(&recall.kind, &recall.data);
    // One look at both sides' applied messages of the conversation, the recall's own first.
    let found: Option<(String, Option<String>, Value)> = sqlx::query_as(
        "SELECT side, made, data FROM sync_inbound
         WHERE migration_id = $1 AND conv = $3 AND kind = 'message.sent'
           AND state = 'sent' AND data->>'id' = $4
         ORDER BY side = $2 DESC, at DESC LIMIT 1",
    )
    .bind(id)
    .bind(from.as_str())
    .bind(&conv)
    .bind(&message)
    .fetch_optional(pool)
    .await?;
    if let Some((side, made, data)) = &found {
        if side == from.as_str() {
            fill_recall(&mut recall.data, data);
            return Ok(Original::Applied { made: made.clone() });
        }
    }
    // A group message the import moved, when the target chose its id (a seq in the group).
    if from == Side::Source && recall.data.get("conv").and_then(Value::as_str) == Some("group") {
        let group = recall
            .data
            .get("to")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let imported: Option<String> = sqlx::query_scalar(
            "SELECT new_id FROM import_id_map
             WHERE migration_id = $1 AND kind = 'message' AND old_id = $2",
        )
        .bind(id)
        .bind(crate::import::id_map::group_message_key(group, &message))
        .fetch_optional(pool)
        .await?;
        if let Some(made) = imported {
            return Ok(Original::Applied { made: Some(made) });
        }
    }
    if let Some((_, _, data)) = found {
        fill_recall(&mut recall.data, &data);
        return Ok(Original::Theirs);
    }
    if refs.is_empty() {
        return Ok(Original::Unknown);
    }
    let made_here: Option<Value> = sqlx::query_scalar(
        "SELECT i.data FROM sync_ids m
         JOIN sync_inbound i ON i.migration_id = m.migration_id AND i.side = $3
                            AND i.key = m.event_key AND i.kind = 'message.sent'
         WHERE m.migration_id = $1 AND m.side = $2 AND m.id = ANY($4)
         LIMIT 1",
    )
    .bind(id)
    .bind(from.as_str())
    .bind(from.other().as_str())
    .bind(&refs)
    .fetch_optional(pool)
    .await?;
    Ok(match made_here {
        Some(data) => {
            if let (Some(r), Some(old)) = (recall.data.as_object_mut(), data.get("id")) {
                r.insert("id".into(), old.clone());
            }
            // The message's own from and time, whatever the recall's side reported.
            if let Some(r) = recall.data.as_object_mut() {
                for k in ["from", "sent_at"] {
                    if let Some(v) = data.get(k) {
                        r.insert(k.into(), v.clone());
                    }
                }
            }
            Original::Theirs
        }
        None => Original::Unknown,
    })
}

/// A recall's `from` and `sent_at` that its side did not report (a group recall callback
/// names neither), taken from the message.
fn fill_recall(recall: &mut Value, message: &Value) {
    let Some(r) = recall.as_object_mut() else {
        return;
    };
    for (k, missing) in [("from", Value::from("")), ("sent_at", Value::from(0))] {
        if r.get(k).is_none_or(|v| *v == missing || v.is_null()) {
            if let Some(v) = message.get(k) {
                r.insert(k.into(), v.clone());
            }
        }
    }
}

/// How often the sync tables' planner statistics are looked at.
const STATISTICS_EVERY: Duration = Duration::from_secs(5);

/// Clears marks of sends long gone, and analyzes the sync tables when they have grown past
/// what their statistics say (never
/// analyzed, or changed by more rows than they had then) and autovacuum has not got to them.
/// Autovacuum visits a database once a minute at best, later on a server with many; until
/// then the planner takes a busy `sync_inbound` for a small table and reads every event of a
/// side to find one by key (15 ms a statement at 15,000 events, where the key takes 0.1).
/// A role that does not own the tables (the runtime role) leaves them to autovacuum: asking
/// would only write a warning to PostgreSQL's log every few seconds.
async fn keep_statistics(pool: sqlx::PgPool) {
    // Marks of sends whose process died before recording them hold nothing up after a lease.
    if let Err(e) =
        sqlx::query("DELETE FROM sync_unanswered WHERE since < now() - make_interval(secs => $1)")
            .bind(LEASE.as_secs_f64())
            .execute(&pool)
            .await
    {
        tracing::debug!(error = %e, "sync: clearing old marks failed");
    }
    let stale: Result<Vec<String>, sqlx::Error> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_stat_user_tables
         WHERE relname IN ('sync_inbound', 'sync_ids') AND n_mod_since_analyze > 500
           AND pg_has_role((SELECT c.relowner FROM pg_class c WHERE c.oid = relid), 'MEMBER')
           AND (coalesce(last_analyze, last_autoanalyze) IS NULL
                OR n_mod_since_analyze > (SELECT greatest(c.reltuples, 0) FROM pg_class c
                                          WHERE c.oid = relid))",
    )
    .fetch_all(&pool)
    .await;
    for table in stale.unwrap_or_default() {
        // The names come from the list above, never from input.
        if let Err(e) = sqlx::query(&format!("ANALYZE {table}"))
            .execute(&pool)
            .await
        {
            tracing::debug!(error = %e, table, "sync: analyzing failed");
        }
    }
}

/// A claimed row: migration, side, key, kind, time (ms), data, attempts, and its new state.
type ClaimRow = (MigrationId, String, String, String, i64, Value, i32, String);

/// Takes up to `n` conversation heads that are due, in directions that are on: the least
/// busy direction's first (`busy`: events this process has in flight per direction), and
/// within a direction the oldest first.
async fn claim(
    services: &Services,
    n: usize,
    busy: &[((MigrationId, Side), usize)],
) -> Result<Vec<Claimed>, sqlx::Error> {
    let rows: Vec<ClaimRow> = sqlx::query_as(
        // The conversations waiting are found by skipping through the waiting index one
        // conversation at a time, and the first entry of each is its head: the cost follows
        // the number of conversations, not the backlog (a DISTINCT ON sorted all of it, 130 ms
        // at 43,000 waiting events). Every step asks for the index's own order, and the heads
        // due are materialised and then updated by row address: with statistics taken while
        // the table was small or nothing waited, the planner otherwise re-ran the search once
        // per waiting event (0.5 s a claim).
        "WITH RECURSIVE heads AS (
             (SELECT ctid AS row, migration_id, side, conv, key, at, state, next_at, lease_until,
                     kind, received_at
              FROM sync_inbound
              WHERE state IN ('queued', 'sending')
              ORDER BY migration_id, side, conv, at, seq LIMIT 1)
             UNION ALL
             SELECT n.* FROM heads h, LATERAL (
                 SELECT ctid, migration_id, side, conv, key, at, state, next_at, lease_until,
                        kind, received_at
                 FROM sync_inbound
                 WHERE state IN ('queued', 'sending')
                   AND (migration_id, side, conv) > (h.migration_id, h.side, h.conv)
                 ORDER BY migration_id, side, conv, at, seq LIMIT 1) n
         ), due AS MATERIALIZED (
             -- An event whose id reached the id map after it was stored (the side reported
             -- imshift's own write back before imshift recorded it) is an echo: set aside.
             SELECT t.row, EXISTS (SELECT 1 FROM sync_ids m
                                   WHERE m.migration_id = t.migration_id AND m.side = t.side
                                     AND m.id = t.key) AS echo
             FROM (
                 -- A direction's k-th head waits its turn behind what the direction has in
                 -- flight here: the least busy direction goes first, the oldest head first
                 -- within one.
                 SELECT h.row, h.migration_id, h.side, h.key, h.at,
                        COALESCE(b.n, 0) + row_number() OVER (
                            PARTITION BY h.migration_id, h.side ORDER BY h.at, h.key) AS turn
                 FROM heads h
                 JOIN sync_directions d
                   ON d.migration_id = h.migration_id AND d.from_side = h.side AND d.enabled
                 LEFT JOIN UNNEST($3::uuid[], $4::text[], $5::bigint[]) AS b(migration_id, side, n)
                   ON b.migration_id = h.migration_id AND b.side = h.side
                 WHERE ((h.state = 'queued' AND h.next_at <= now())
                        OR (h.state = 'sending' AND h.lease_until < now()))
                   -- A head that arrived after its successor was taken waits for it: one
                   -- in flight per conversation.
                   AND NOT EXISTS (SELECT 1 FROM sync_inbound f
                                   WHERE f.migration_id = h.migration_id AND f.side = h.side
                                     AND f.conv = h.conv AND f.state = 'sending'
                                     AND f.lease_until >= now() OFFSET 0)
                   -- A message that arrived while imshift's send into its side awaited the
                   -- answer naming it may be that send's copy: it waits for the answer, whose
                   -- id the echo check above then finds.
                   AND (h.kind <> 'message.sent'
                        OR NOT EXISTS (SELECT 1 FROM sync_unanswered u
                                       WHERE u.migration_id = h.migration_id
                                         AND u.side = h.side AND u.since < h.received_at
                                         AND u.since > now() - make_interval(secs => $2)
                                       OFFSET 0))
                 ORDER BY turn, h.at
                 LIMIT $1
             ) t
         )
         UPDATE sync_inbound s
         SET state = CASE WHEN due.echo THEN 'echo' ELSE 'sending' END,
             lease_until = CASE WHEN NOT due.echo THEN now() + make_interval(secs => $2) END
         FROM due
         -- By the row the search found: a row updated since (another process claimed it) is
         -- no longer at that address and is skipped.
         WHERE s.ctid = due.row
           AND (s.state = 'queued' OR (s.state = 'sending' AND s.lease_until < now()))
         RETURNING s.migration_id, s.side, s.key, s.kind,
                   (extract(epoch FROM s.at) * 1000)::bigint, s.data, s.attempts, s.state",
    )
    .bind(n as i64)
    .bind(LEASE.as_secs_f64())
    .bind(busy.iter().map(|((id, _), _)| *id).collect::<Vec<_>>())
    .bind(
        busy.iter()
            .map(|((_, side), _)| side.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(busy.iter().map(|(_, n)| *n as i64).collect::<Vec<_>>())
    .fetch_all(&services.pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(migration_id, side, key, kind, at_ms, data, attempts, state)| {
            if state == "echo" {
                metrics::counter!("imshift_sync_inbound_total", "side" => side.clone(), "outcome" => "echo")
                    .increment(1);
                return None;
            }
            Some(Claimed {
                migration_id,
                side: side.parse().ok()?,
                event: SyncEvent {
                    key,
                    kind,
                    at_ms,
                    data,
                    original: None,
                    attempts: attempts.max(0) as u32,
                },
                attempts,
            })
        })
        .collect())
}
