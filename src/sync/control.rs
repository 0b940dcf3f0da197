//! What people do with sync and what they see of it: each direction's switch (audited), the
//! values to paste into each side's console, health figures, the event log, replaying dead
//! letters (audited), and a test message sent as a user of a sandbox side.

use super::inbound::hook_url;
use crate::audit;
use crate::auth::Actor;
use crate::migration::get;
use crate::model::{
    DirectionHealth, ErrorCount, Migration, MigrationId, MinutePoint, Permission, ReplayRequest,
    SetupValue, Side, Strategy, SyncDirection, SyncEventQuery, SyncEventView, SyncHealth,
    SyncIdPair, SyncIdQuery, SyncView,
};
use crate::providers::Connection;
use crate::service::{AppError, AppResult, Services};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::HashMap;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The accounts a test message goes between; they are made in a sandbox side when missing.
pub const TEST_FROM: &str = "imshift_test_a";
pub const TEST_TO: &str = "imshift_test_b";

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// Both directions with their health.
pub async fn view(s: &Services, actor: &Actor, id: MigrationId) -> AppResult<SyncView> {
    let m = get(&s.pool, actor, id).await?;
    let switches: Vec<(String, bool, Option<String>, OffsetDateTime)> = sqlx::query_as(
        "SELECT d.from_side, d.enabled, u.email, d.changed_at
         FROM sync_directions d LEFT JOIN users u ON u.id = d.changed_by
         WHERE d.migration_id = $1",
    )
    .bind(id)
    .fetch_all(&s.pool)
    .await?;
    let conns = connection_rows(&s.pool, id).await?;
    let mut directions = vec![];
    for from in Side::ALL {
        let from = *from;
        let to = from.other();
        let name = |side: Side| provider_name(&m, side);
        let label = |side: Side| s.config.providers.label(name(side));
        let conn = |side: Side| conns.iter().find(|c| c.0 == side.as_str());
        let switch = switches.iter().find(|w| w.0 == from.as_str());
        let enabled = switch.is_some_and(|w| w.1);
        let blocked = blocked(s, &m, &conns, from);
        let hook = hook_url(&s.config.public_url, id, from);
        let setup = match (s.config.providers.get(name(from)), conn(from)) {
            (Some(p), Some(c)) => {
                let c = Connection {
                    migration_id: id,
                    side: from,
                    public: c.4.as_object().cloned().unwrap_or_default(),
                    secrets: secret_fields(&s.pool, id, from).await?,
                    sandbox: c.3,
                };
                p.hook_setup(&c, &hook)
            }
            (Some(p), None) => p.hook_setup(&Connection::empty(id, from), &hook),
            _ => vec![],
        };
        let mut health = health(&s.pool, id, from, enabled).await?;
        health.canary = super::canary::last(&s.pool, id, from).await?;
        health.canary_note =
            super::canary::why_none(s, name(from), conn(from).is_some_and(|c| c.3));
        directions.push(SyncDirection {
            from,
            from_label: label(from),
            to_label: label(to),
            enabled,
            blocked,
            changed_by: switch.and_then(|w| w.2.clone()),
            changed_at: switch.map(|w| w.3),
            hook_url: hook,
            setup: setup
                .into_iter()
                .map(|(what, value)| SetupValue { what, value })
                .collect(),
            can_send_test: conn(from).is_some_and(|c| c.3),
            health,
        });
    }
    let gaps = super::gaps::recent(&s.pool, id).await?;
    Ok(SyncView { directions, gaps })
}

/// Which secrets a side has, as placeholders: set-up text may say whether one is set, never
/// what it is.
async fn secret_fields(
    pool: &PgPool,
    id: MigrationId,
    side: Side,
) -> AppResult<HashMap<String, secrecy::SecretString>> {
    let fields: Vec<String> = sqlx::query_scalar(
        "SELECT field FROM connection_secrets WHERE migration_id = $1 AND side = $2",
    )
    .bind(id)
    .bind(side.as_str())
    .fetch_all(pool)
    .await?;
    Ok(fields
        .into_iter()
        .map(|f| (f, secrecy::SecretString::from("set".to_string())))
        .collect())
}

type ConnRow = (String, String, bool, bool, Value);

/// Both sides' connections: side, provider, complete, sandbox, public fields.
async fn connection_rows(pool: &PgPool, id: MigrationId) -> AppResult<Vec<ConnRow>> {
    Ok(sqlx::query_as(
        "SELECT side, provider, complete, sandbox, public FROM connections WHERE migration_id = $1",
    )
    .bind(id)
    .fetch_all(pool)
    .await?)
}

/// The provider a side of `m` names.
fn provider_name(m: &Migration, side: Side) -> &str {
    match side {
        Side::Source => &m.source,
        Side::Target => &m.target,
    }
}

/// Why events from `from_side` cannot flow to the other side, when they cannot.
fn blocked(s: &Services, m: &Migration, conns: &[ConnRow], from_side: Side) -> Option<String> {
    let (from, to) = (
        provider_name(m, from_side),
        provider_name(m, from_side.other()),
    );
    let conn = |side: Side| conns.iter().find(|c| c.0 == side.as_str());
    let (from_conn, to_conn) = (conn(from_side), conn(from_side.other()));
    if m.strategy != Strategy::Coexistence {
        return Some(
            "This migration's strategy is forced upgrade: switch it to coexistence (Overview → Edit) to sync."
                .into(),
        );
    }
    let (Some(pf), Some(pt)) = (s.config.providers.get(from), s.config.providers.get(to)) else {
        return Some("A side names a provider this console does not know.".into());
    };
    if pf.capabilities().sync_receives.is_empty() {
        return Some(format!(
            "{} cannot tell imshift about its events yet.",
            pf.label()
        ));
    }
    if pt.capabilities().sync_sends.is_empty() {
        return Some(format!(
            "imshift cannot send events into {} yet.",
            pt.label()
        ));
    }
    let missing: Vec<&str> = [(from_side, from_conn), (from_side.other(), to_conn)]
        .iter()
        .filter(|(_, c)| !c.is_some_and(|c| c.2))
        .map(|(side, _)| side.as_str())
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "Complete the connections first (Connections tab): the {} side is not set.",
            missing.join(" and the ")
        )
    })
}

/// Turns the direction from `from` on or off (admins and operators; audited).
pub async fn set_direction(
    s: &Services,
    actor: &Actor,
    id: MigrationId,
    from: Side,
    enabled: bool,
) -> AppResult<SyncView> {
    actor.require(Permission::RunMigrations)?;
    if enabled {
        // Only what can block it, not the whole view with its health figures.
        let m = get(&s.pool, actor, id).await?;
        let conns = connection_rows(&s.pool, id).await?;
        if let Some(why) = blocked(s, &m, &conns, from) {
            return Err(AppError::Conflict(why));
        }
    } else {
        get(&s.pool, actor, id).await?;
    }
    let mut tx = s.pool.begin().await?;
    sqlx::query(
        "INSERT INTO sync_directions (migration_id, from_side, enabled, changed_by, changed_at)
         VALUES ($1, $2, $3, $4, now())
         ON CONFLICT (migration_id, from_side)
         DO UPDATE SET enabled = $3, changed_by = $4, changed_at = now()",
    )
    .bind(id)
    .bind(from.as_str())
    .bind(enabled)
    .bind(actor.user_id)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        &actor.into(),
        if enabled {
            "sync.enabled"
        } else {
            "sync.disabled"
        },
        &format!("migration:{id}"),
        json!({ "from": from, "to": from.other() }),
    )
    .await?;
    tx.commit().await?;
    s.sync_wake.notify_one();
    view(s, actor, id).await
}

/// The figures of one direction, from the events table and the door's counts.
async fn health(
    pool: &PgPool,
    id: MigrationId,
    from: Side,
    enabled: bool,
) -> AppResult<DirectionHealth> {
    #[derive(sqlx::FromRow)]
    struct Totals {
        received: i64,
        sent: i64,
        backlog: i64,
        dead: i64,
        echo: i64,
        recent: i64,
        sent_recent: i64,
        failing_recent: i64,
        last_secs: Option<f64>,
        last_sent_secs: Option<f64>,
        oldest_waiting_secs: Option<f64>,
    }
    let t: Totals = sqlx::query_as(
        "SELECT count(*) AS received,
                count(*) FILTER (WHERE state = 'sent') AS sent,
                count(*) FILTER (WHERE state IN ('queued', 'sending')) AS backlog,
                count(*) FILTER (WHERE state = 'dead') AS dead,
                count(*) FILTER (WHERE state = 'echo') AS echo,
                count(*) FILTER (WHERE received_at > now() - interval '5 minutes') AS recent,
                count(*) FILTER (WHERE sent_at > now() - interval '5 minutes') AS sent_recent,
                count(*) FILTER (WHERE state IN ('queued', 'sending') AND attempts > 0)
                    AS failing_recent,
                extract(epoch FROM now() - max(received_at))::float8 AS last_secs,
                extract(epoch FROM now() - max(sent_at))::float8 AS last_sent_secs,
                extract(epoch FROM now() - min(received_at)
                        FILTER (WHERE state IN ('queued', 'sending')))::float8
                    AS oldest_waiting_secs
         FROM sync_inbound WHERE migration_id = $1 AND side = $2",
    )
    .bind(id)
    .bind(from.as_str())
    .fetch_one(pool)
    .await?;
    let lags: (Option<f64>, Option<f64>, Option<f64>, Option<f64>) = sqlx::query_as(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - at) * 1000),
                percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - at) * 1000),
                percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - received_at) * 1000)
                    FILTER (WHERE sent_at IS NOT NULL),
                percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - received_at) * 1000)
                    FILTER (WHERE sent_at IS NOT NULL)
         FROM sync_inbound
         WHERE migration_id = $1 AND side = $2 AND received_at > now() - interval '1 hour'
           AND state <> 'echo'",
    )
    .bind(id)
    .bind(from.as_str())
    .fetch_one(pool)
    .await?;
    let errors: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT coalesce(error_code, 'unknown'), max(error), count(*),
                count(*) FILTER (WHERE state = 'dead')
         FROM sync_inbound
         WHERE migration_id = $1 AND side = $2 AND error IS NOT NULL
           AND state IN ('queued', 'sending', 'dead')
         GROUP BY 1 ORDER BY 3 DESC LIMIT 10",
    )
    .bind(id)
    .bind(from.as_str())
    .fetch_all(pool)
    .await?;
    let refused: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(n), 0)::bigint FROM sync_inbound_counts
         WHERE migration_id = $1 AND side = $2
           AND outcome IN ('bad_signature', 'stale', 'malformed', 'too_large')",
    )
    .bind(id)
    .bind(from.as_str())
    .fetch_one(pool)
    .await?;
    // Bucketed in one pass each (received, applied), by whole minutes before this one.
    let received: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT (extract(epoch FROM date_trunc('minute', now()) - date_trunc('minute', received_at)) / 60)::int,
                count(*)
         FROM sync_inbound
         WHERE migration_id = $1 AND side = $2
           AND received_at >= date_trunc('minute', now()) - interval '29 minutes'
         GROUP BY 1",
    )
    .bind(id)
    .bind(from.as_str())
    .fetch_all(pool)
    .await?;
    let applied: Vec<(i32, i64, Option<f64>)> = sqlx::query_as(
        "SELECT (extract(epoch FROM date_trunc('minute', now()) - date_trunc('minute', sent_at)) / 60)::int,
                count(*),
                percentile_cont(0.99) WITHIN GROUP
                    (ORDER BY extract(epoch FROM sent_at - received_at) * 1000)
         FROM sync_inbound
         WHERE migration_id = $1 AND side = $2
           AND received_at > now() - interval '1 day'
           AND sent_at >= date_trunc('minute', now()) - interval '29 minutes'
         GROUP BY 1",
    )
    .bind(id)
    .bind(from.as_str())
    .fetch_all(pool)
    .await?;
    let minutes: Vec<MinutePoint> = (0..30)
        .rev()
        .map(|ago| {
            let a = applied.iter().find(|r| r.0 == ago);
            MinutePoint {
                ago,
                received: received.iter().find(|r| r.0 == ago).map_or(0, |r| r.1),
                sent: a.map_or(0, |r| r.1),
                apply_p99_ms: a.and_then(|r| r.2),
            }
        })
        .collect();
    let per_min = t.recent as f64 / 5.0;
    let send_rate = t.sent_recent as f64 / 300.0;
    let drain_secs = (t.backlog > 0 && send_rate > 0.0).then(|| t.backlog as f64 / send_rate);
    let summary = Summary {
        received: t.received,
        backlog: t.backlog,
        failing: t.failing_recent,
        last_secs: t.last_secs,
        last_sent_secs: t.last_sent_secs,
        oldest_waiting_secs: t.oldest_waiting_secs,
    };
    let (status, why) = judge(enabled, &summary, lags.3);
    Ok(DirectionHealth {
        status,
        why,
        received_total: t.received,
        sent_total: t.sent,
        events_per_min: per_min,
        backlog: t.backlog,
        drain_secs,
        capture_p50_ms: lags.0,
        capture_p99_ms: lags.1,
        apply_p50_ms: lags.2,
        apply_p99_ms: lags.3,
        dead: t.dead,
        echo_filtered: t.echo,
        refused,
        last_event_secs: t.last_secs.map(|s| s as i64),
        errors: errors
            .into_iter()
            .map(|(code, message, events, dead)| ErrorCount {
                code,
                message,
                events,
                dead,
            })
            .collect(),
        minutes,
        canary: None,
        canary_note: None,
    })
}

/// What [`judge`] looks at.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    pub received: i64,
    pub backlog: i64,
    pub failing: i64,
    pub last_secs: Option<f64>,
    /// Since the last event was applied.
    pub last_sent_secs: Option<f64>,
    pub oldest_waiting_secs: Option<f64>,
}

/// A direction's status against its own traffic:
/// - failing: events wait after failed tries and nothing was applied since the oldest of
///   them arrived (the queue is stuck, however busy the direction was before);
/// - delayed: the oldest waiting event is over a minute old, or apply p99 is over 10 s;
/// - silent: it used to have traffic and nothing arrived for 30 minutes;
/// - idle: on, and nothing arrived yet.
pub fn judge(enabled: bool, t: &Summary, apply_p99_ms: Option<f64>) -> (SyncHealth, String) {
    if !enabled {
        return (
            SyncHealth::Off,
            if t.backlog > 0 {
                format!(
                    "Off; {} events wait for it to be turned on again.",
                    t.backlog
                )
            } else {
                "Off: events are received and kept, not sent.".into()
            },
        );
    }
    let stuck = match (t.last_sent_secs, t.oldest_waiting_secs) {
        (None, _) => true,
        (Some(applied), Some(waiting)) => applied > waiting,
        (Some(_), None) => false,
    };
    if t.failing > 0 && stuck {
        return (
            SyncHealth::Failing,
            format!(
                "{} events wait after failed tries and none was applied since the oldest waiting one arrived: see the errors below.",
                t.failing
            ),
        );
    }
    if let Some(w) = t.oldest_waiting_secs.filter(|w| *w > 60.0) {
        return (
            SyncHealth::Delayed,
            format!("The oldest waiting event arrived {} s ago.", w as i64),
        );
    }
    if let Some(p) = apply_p99_ms.filter(|p| *p > 10_000.0) {
        return (
            SyncHealth::Delayed,
            format!("Applying takes {:.1} s at p99 this hour.", p / 1000.0),
        );
    }
    match t.last_secs {
        None => (SyncHealth::Idle, "On; no event has arrived yet.".into()),
        Some(s) if s > 1800.0 && t.received > 0 => (
            SyncHealth::Silent,
            format!(
                "Nothing arrived for {} min although this direction had traffic: check the side's callback set-up.",
                (s / 60.0) as i64
            ),
        ),
        Some(_) => (SyncHealth::Healthy, "Events arrive and are applied.".into()),
    }
}

/// The event log, newest first.
pub async fn events(
    s: &Services,
    actor: &Actor,
    id: MigrationId,
    q: &SyncEventQuery,
) -> AppResult<Vec<SyncEventView>> {
    get(&s.pool, actor, id).await?;
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let needle = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    #[allow(clippy::type_complexity)]
    let rows: Vec<(
        String,
        String,
        String,
        String,
        String,
        Value,
        OffsetDateTime,
        OffsetDateTime,
        Option<OffsetDateTime>,
        i32,
        Option<String>,
        Option<String>,
    )> = sqlx::query_as(
        "SELECT side, key, kind, conv, state, data, at, received_at, sent_at, attempts,
                error_code, error
         FROM sync_inbound
         WHERE migration_id = $1
           AND ($2::text IS NULL OR state = $2)
           AND ($3::text IS NULL OR side = $3)
           AND ($4::text IS NULL OR key = $4 OR made = $4 OR data->>'id' = $4
                OR data->>'from' = $4 OR data->>'to' = $4 OR data->>'group' = $4
                OR data->>'owner' = $4 OR data->>'by' = $4 OR data->'accounts' ? $4)
         ORDER BY received_at DESC, seq DESC
         LIMIT $5",
    )
    .bind(id)
    .bind(q.state.map(|s| s.as_str()))
    .bind(q.side.map(|s| s.as_str()))
    .bind(needle)
    .bind(limit)
    .fetch_all(&s.pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let d = &r.5;
            let text = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_string);
            let preview = match d["body"]["type"].as_str() {
                Some("text") => text_preview(d["body"]["text"].as_str().unwrap_or_default()),
                Some(other) => format!("[{other}]"),
                None => text("name").unwrap_or_default(),
            };
            Some(SyncEventView {
                side: r.0.parse().ok()?,
                key: r.1,
                kind: r.2,
                conv: r.3,
                state: r.4.parse().ok()?,
                actor: text("from")
                    .or_else(|| text("by"))
                    .or_else(|| text("owner"))
                    .unwrap_or_default(),
                subject: text("to")
                    .or_else(|| text("group"))
                    .or_else(|| text("id"))
                    .unwrap_or_default(),
                preview,
                at: r.6,
                received_at: r.7,
                sent_at: r.8,
                attempts: r.9,
                error_code: r.10,
                error: r.11,
            })
        })
        .collect())
}

fn text_preview(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if s.chars().count() > 80 {
        out.push('…');
    }
    out
}

/// The id map, both of its halves: what the import recorded where the target chose its own id
/// (team ids, group messages' seqs, lower-cased accounts), and what sync made on each side
/// (the id the side answered, or the one imshift chose for it: a message's random).
/// Newest first; `q` is an id on either side (the import's map also finds ids containing it).
pub async fn id_map(
    s: &Services,
    actor: &Actor,
    id: MigrationId,
    q: &SyncIdQuery,
) -> AppResult<Vec<SyncIdPair>> {
    get(&s.pool, actor, id).await?;
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let needle = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let like = needle.map(crate::import::id_map::contains);
    let rows: Vec<(String, String, String, String, OffsetDateTime)> = sqlx::query_as(
        "(SELECT kind, old_id, new_id, 'import' AS via, at FROM import_id_map
          WHERE migration_id = $1 AND ($2::text IS NULL OR old_id LIKE $3 OR new_id LIKE $3)
          ORDER BY at DESC LIMIT $4)
         UNION ALL
         (SELECT CASE split_part(i.kind, '.', 1) WHEN 'message' THEN 'message'
                      WHEN 'group' THEN 'group' ELSE 'account' END,
                 CASE WHEN i.side = 'source' THEN COALESCE(i.data->>'id', i.key) ELSE m.id END,
                 CASE WHEN i.side = 'source' THEN m.id ELSE COALESCE(i.data->>'id', i.key) END,
                 'sync', m.made_at
          FROM sync_ids m
          JOIN sync_inbound i ON i.migration_id = m.migration_id AND i.key = m.event_key
                             AND i.side <> m.side
          WHERE m.migration_id = $1
            AND i.kind IN ('message.sent', 'group.created', 'account.upserted')
            AND m.id NOT LIKE 'fp:%'
            AND ($2::text IS NULL OR m.id = $2 OR i.key = $2 OR i.data->>'id' = $2)
          ORDER BY m.made_at DESC LIMIT $4)
         ORDER BY 5 DESC LIMIT $4",
    )
    .bind(id)
    .bind(needle)
    .bind(like)
    .bind(limit)
    .fetch_all(&s.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(kind, old_id, new_id, via, at)| SyncIdPair {
            kind,
            old_id,
            new_id,
            via,
            at,
        })
        .collect())
}

/// Sends dead letters again (admins and operators; audited): they go back to the queue and
/// through their conversation's order from now.
pub async fn replay(
    s: &Services,
    actor: &Actor,
    id: MigrationId,
    r: &ReplayRequest,
) -> AppResult<i64> {
    actor.require(Permission::RunMigrations)?;
    get(&s.pool, actor, id).await?;
    if !r.all && r.keys.is_empty() {
        return Err(AppError::validation(
            "keys",
            "name the dead letters to replay, or ask for all of them",
        ));
    }
    let mut tx = s.pool.begin().await?;
    let n = sqlx::query(
        "UPDATE sync_inbound
         SET state = 'queued', next_at = now(), attempts = 0, lease_until = NULL
         WHERE migration_id = $1 AND state = 'dead'
           AND ($2::text IS NULL OR side = $2)
           AND ($3 OR key = ANY($4))
           AND ($5::text IS NULL OR error_code = $5)",
    )
    .bind(id)
    .bind(r.side.map(|s| s.as_str()))
    .bind(r.all)
    .bind(&r.keys)
    .bind(r.error_code.as_deref())
    .execute(&mut *tx)
    .await?
    .rows_affected() as i64;
    audit::record(
        &mut *tx,
        &actor.into(),
        "sync.replayed",
        &format!("migration:{id}"),
        json!({ "side": r.side, "keys": r.keys.len(), "all": r.all,
                "error_code": r.error_code, "events": n }),
    )
    .await?;
    tx.commit().await?;
    s.sync_wake.notify_one();
    Ok(n)
}

/// Sends a marked test message as a user of `from`'s sandbox (between [`TEST_FROM`] and
/// [`TEST_TO`]); it travels like any other. Answers its id on that side.
pub async fn send_test(
    s: &Services,
    actor: &Actor,
    id: MigrationId,
    from: Side,
) -> AppResult<String> {
    actor.require(Permission::RunMigrations)?;
    get(&s.pool, actor, id).await?;
    // Opening the connection starts its sandbox again after a restart.
    let (_, conn) = crate::migration::connections::open(s, id, from).await?;
    if !conn.sandbox {
        return Err(AppError::Conflict(format!(
            "The {from} side is not a sandbox of this console: send a message from a real app instead."
        )));
    }
    // Cloned out of the map: the message comes back to this console's door, which opens the
    // map again.
    let sandbox = s
        .sandboxes
        .lock()
        .await
        .get(&(id, from))
        .cloned()
        .ok_or_else(|| AppError::Conflict(format!("The {from} sandbox is not running.")))?;
    let text = format!(
        "imshift test message {}",
        rfc3339(OffsetDateTime::now_utc())
    );
    let made = sandbox
        .user_message(TEST_FROM, TEST_TO, false, &text)
        .await
        .map_err(AppError::Conflict)?;
    audit::record(
        &s.pool,
        &actor.into(),
        "sync.test_sent",
        &format!("migration:{id}"),
        json!({ "from": from, "id": made }),
    )
    .await?;
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_direction_is_judged_against_its_own_traffic() {
        let busy = Summary {
            received: 100,
            last_secs: Some(3.0),
            ..Summary::default()
        };
        assert_eq!(judge(false, &busy, None).0, SyncHealth::Off);
        assert_eq!(judge(true, &Summary::default(), None).0, SyncHealth::Idle);
        assert_eq!(judge(true, &busy, Some(40.0)).0, SyncHealth::Healthy);
        // Applying slowly, or a backlog that has waited a minute: delayed.
        assert_eq!(judge(true, &busy, Some(12_000.0)).0, SyncHealth::Delayed);
        let waiting = Summary {
            backlog: 5,
            oldest_waiting_secs: Some(90.0),
            last_sent_secs: Some(1.0),
            ..busy
        };
        assert_eq!(judge(true, &waiting, None).0, SyncHealth::Delayed);
        // Failed tries and nothing applied since the oldest waiting event arrived: failing,
        // whatever was applied before it.
        let down = Summary {
            failing: 2,
            last_sent_secs: Some(100.0),
            ..waiting
        };
        let (status, why) = judge(true, &down, None);
        assert_eq!(status, SyncHealth::Failing);
        assert!(why.contains("2 events"), "{why}");
        let never = Summary {
            last_sent_secs: None,
            oldest_waiting_secs: Some(2.0),
            ..down
        };
        assert_eq!(judge(true, &never, None).0, SyncHealth::Failing);
        // Some fail, others still get through: not failing (delayed once they wait long).
        let flowing = Summary {
            last_sent_secs: Some(1.0),
            ..down
        };
        assert_eq!(judge(true, &flowing, None).0, SyncHealth::Delayed);
        // Quiet for half an hour after traffic: silent; with no traffic ever: idle.
        let quiet = Summary {
            last_secs: Some(2_000.0),
            ..busy
        };
        assert_eq!(judge(true, &quiet, None).0, SyncHealth::Silent);
    }
}
