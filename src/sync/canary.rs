//! Canaries: every few minutes, a marked message (`imshift canary <token>`) is sent as a user
//! of each direction's side, between two accounts of imshift's own (`imshift_canary_a` →
//! `imshift_canary_b`), and travels like any message. Its round trip (sent → received →
//! applied on the other side) is read from the event it became, so a direction whose callbacks
//! stopped shows it even when nobody is writing. A sandbox side sends as its simulated user;
//! another through its provider's `send_canary` (a REST send with callbacks on); a side whose
//! provider cannot send (a self-built system) cannot be made to
//! send, so its direction has no canary (its test message is the old system's own).

use crate::migration::connections;
use crate::model::{Canary, MigrationId, Side};
use crate::service::Services;
use sqlx::PgPool;

pub const CANARY_FROM: &str = "imshift_canary_a";
pub const CANARY_TO: &str = "imshift_canary_b";
const PREFIX: &str = "imshift canary ";

/// Starts this process's canary sender (none when the interval is zero).
pub fn spawn(services: Services) -> Option<tokio::task::JoinHandle<()>> {
    let every = services.config.sync_canary_every;
    if every.is_zero() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every.min(std::time::Duration::from_secs(30)));
        loop {
            tick.tick().await;
            if let Err(e) = send_due(&services).await {
                tracing::warn!(error = %e, "sync: sending canaries failed");
            }
        }
    }))
}

/// Sends a canary through every direction that is on and had none for an interval. One
/// process wins each: the row is written first, only when no recent one exists.
async fn send_due(s: &Services) -> Result<(), sqlx::Error> {
    let due: Vec<(i64, MigrationId, String, String)> = sqlx::query_as(
        "INSERT INTO sync_canaries (migration_id, from_side, token)
         SELECT d.migration_id, d.from_side, gen_random_uuid()::text
         FROM sync_directions d
         WHERE d.enabled
           -- The first one an interval after the direction was turned on.
           AND d.changed_at < now() - make_interval(secs => $1)
           AND NOT EXISTS (
             SELECT 1 FROM sync_canaries c
             WHERE c.migration_id = d.migration_id AND c.from_side = d.from_side
               AND c.sent_at > now() - make_interval(secs => $1))
         ON CONFLICT (token) DO NOTHING
         RETURNING id, migration_id, from_side, token",
    )
    .bind(s.config.sync_canary_every.as_secs_f64() * 0.9)
    .fetch_all(&s.pool)
    .await?;
    for (row, id, side, token) in due {
        let Ok(side) = side.parse::<Side>() else {
            continue;
        };
        if let Err(why) = send(s, id, side, &format!("{PREFIX}{token}")).await {
            sqlx::query("UPDATE sync_canaries SET error = $2 WHERE id = $1")
                .bind(row)
                .bind(&why)
                .execute(&s.pool)
                .await?;
        }
    }
    Ok(())
}

async fn send(s: &Services, id: MigrationId, side: Side, text: &str) -> Result<(), String> {
    let (provider, conn) = connections::open(s, id, side)
        .await
        .map_err(|e| e.to_string())?;
    if conn.sandbox {
        let sandbox = s.sandboxes.lock().await.get(&(id, side)).cloned();
        if let Some(sandbox) = sandbox {
            return sandbox
                .user_message(CANARY_FROM, CANARY_TO, false, text)
                .await
                .map(|_| ());
        }
    }
    match provider
        .send_canary(&conn, CANARY_FROM, CANARY_TO, text)
        .await
    {
        Some(r) => r.map(|_| ()),
        None => Err(note(provider.label())),
    }
}

fn note(label: &str) -> String {
    format!(
        "imshift cannot make {label} send a message; its events are the old system's own (send one there to see the round trip)"
    )
}

/// Why a direction gets no canary, when it gets none.
pub fn why_none(s: &Services, provider: &str, sandbox: bool) -> Option<String> {
    if s.config.sync_canary_every.is_zero() {
        return Some("Canaries are off on this console (IMSHIFT_SYNC_CANARY_SECS=0).".into());
    }
    let p = s.config.providers.get(provider)?;
    (!sandbox && !p.can_send_canary()).then(|| note(p.label()))
}

/// (sent at, error, ms to received, ms to applied).
type CanaryRow = (
    time::OffsetDateTime,
    Option<String>,
    Option<f64>,
    Option<f64>,
);

/// The last canary of a direction, with its round trip from the event it became.
pub async fn last(
    pool: &PgPool,
    id: MigrationId,
    side: Side,
) -> Result<Option<Canary>, sqlx::Error> {
    let row: Option<CanaryRow> = sqlx::query_as(
        "SELECT c.sent_at, c.error,
                    (extract(epoch FROM e.received_at - c.sent_at) * 1000)::float8,
                    (extract(epoch FROM e.sent_at - c.sent_at) * 1000)::float8
             FROM sync_canaries c
             LEFT JOIN LATERAL (
                 SELECT i.received_at, i.sent_at FROM sync_inbound i
                 WHERE i.migration_id = c.migration_id AND i.side = c.from_side
                   AND i.received_at >= c.sent_at - interval '5 seconds'
                   AND i.data->'body'->>'text' = $3 || c.token
                 LIMIT 1
             ) e ON true
             WHERE c.migration_id = $1 AND c.from_side = $2
             ORDER BY c.sent_at DESC LIMIT 1",
    )
    .bind(id)
    .bind(side.as_str())
    .bind(PREFIX)
    .fetch_optional(pool)
    .await?;
    Ok(
        row.map(|(sent_at, error, received_ms, round_trip_ms)| Canary {
            sent_at,
            received_ms: received_ms.map(|v| v.max(0.0)),
            round_trip_ms: round_trip_ms.map(|v| v.max(0.0)),
            error,
        }),
    )
}
