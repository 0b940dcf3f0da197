//! Gaps: a provider may not send a callback again (an after-callback is sent once), so what a side did while every console
//! process was down never reaches the door. Each process running the sender beats in
//! `sync_heartbeats`; the first process to start after a silence longer than
//! `Config::sync_gap_after` records the gap (once, whichever process sees it), and a process
//! fills it: for every migration syncing out of a side that can read its history back, the
//! conversations active around the gap (those with events in the day before it, and those the
//! side lists for the accounts active then) are read back over the gap's window and stored as
//! if their callbacks had come. Events keep their callback keys, so what did arrive is a duplicate
//! and only what was lost goes on, in order, as any other event.

use super::commit;
use crate::jobs::pacer::Pacer;
use crate::migration::{connections, limits};
use crate::model::{MigrationId, Side, SyncGap};
use crate::service::Services;
use std::time::Duration;
use uuid::Uuid;

/// The window read back reaches this far on either side of the silence (clocks differ).
const MARGIN_SECS: i64 = 30;
/// Conversations active this long before a gap are read back.
const ACTIVE_BEFORE: &str = "1 day";
/// Conversations read back per side, at most (the most recently active).
const MAX_CONVERSATIONS: i64 = 5_000;
/// Pages read back per conversation, at most.
const MAX_PAGES: usize = 50;
/// Accounts whose conversations are listed per side, at most (the most recently active).
const MAX_ACCOUNTS: i64 = 2_000;
/// Pages of one account's conversation list read, at most.
const MAX_LIST_PAGES: usize = 10;
/// Accounts whose conversations could not be listed before the listing stops.
const MAX_LIST_FAILURES: usize = 5;
/// Another process takes over a gap whose filler stopped answering after this long.
const CLAIM_SECS: f64 = 600.0;

/// Starts this process's heartbeat and gap filler; runs until aborted.
pub fn spawn(services: Services) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(services))
}

async fn run(services: Services) {
    let me = Uuid::new_v4();
    let every = (services.config.sync_gap_after / 3).max(Duration::from_millis(200));
    if let Err(e) = detect(&services, me).await {
        tracing::warn!(error = %e, "sync: looking for a gap failed");
    }
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        if let Err(e) = beat(&services, me).await {
            tracing::warn!(error = %e, "sync: heartbeat failed");
        }
        if let Err(e) = fill_one(&services).await {
            tracing::warn!(error = %e, "sync: filling a gap failed");
        }
    }
}

async fn beat(s: &Services, me: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sync_heartbeats (process, node) VALUES ($1, $2)
         ON CONFLICT (process) DO UPDATE SET beat_at = now()",
    )
    .bind(me)
    .bind(&s.node)
    .execute(&s.pool)
    .await?;
    // Processes gone for a week say nothing any more.
    sqlx::query("DELETE FROM sync_heartbeats WHERE beat_at < now() - interval '7 days'")
        .execute(&s.pool)
        .await?;
    Ok(())
}

/// On start: if every other process has been silent for longer than the threshold since
/// its last beat, that silence is a gap (none when no process ever beat).
async fn detect(s: &Services, me: Uuid) -> Result<(), sqlx::Error> {
    let threshold = s.config.sync_gap_after.as_secs_f64();
    let inserted = sqlx::query(
        "INSERT INTO sync_gaps (from_at, to_at, detected_by)
         SELECT last, now(), $2 FROM (
             SELECT max(beat_at) AS last FROM sync_heartbeats WHERE process <> $1
         ) h
         WHERE h.last IS NOT NULL AND h.last < now() - make_interval(secs => $3)
         ON CONFLICT (from_at) DO NOTHING",
    )
    .bind(me)
    .bind(&s.node)
    .bind(threshold)
    .execute(&s.pool)
    .await?
    .rows_affected();
    if inserted > 0 {
        tracing::warn!(
            "sync: every console process was silent for a while; the gap will be read back"
        );
    }
    beat(s, me).await
}

/// Takes one open gap (or one whose filler stopped) and fills it.
async fn fill_one(s: &Services) -> Result<(), sqlx::Error> {
    let gap: Option<(i64, i64, i64)> = sqlx::query_as(
        "UPDATE sync_gaps SET state = 'filling', claimed_at = now()
         WHERE id = (SELECT id FROM sync_gaps
                     WHERE state = 'open'
                        OR (state = 'filling' AND claimed_at < now() - make_interval(secs => $1))
                     ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING id, (extract(epoch FROM from_at) * 1000)::bigint,
                   (extract(epoch FROM to_at) * 1000)::bigint",
    )
    .bind(CLAIM_SECS)
    .fetch_optional(&s.pool)
    .await?;
    let Some((gap, from_ms, to_ms)) = gap else {
        return Ok(());
    };
    let (from_ms, to_ms) = (from_ms - MARGIN_SECS * 1000, to_ms + MARGIN_SECS * 1000);
    let directions: Vec<(MigrationId, String)> =
        sqlx::query_as("SELECT migration_id, from_side FROM sync_directions WHERE enabled")
            .fetch_all(&s.pool)
            .await?;
    let pacer = Pacer::new(s.pool.clone());
    let (mut recovered, mut conversations, mut problems) = (0i64, 0i64, Vec::<String>::new());
    for (id, side) in directions {
        let Ok(side) = side.parse::<Side>() else {
            continue;
        };
        let (n, c, mut p) = match fill_side(s, &pacer, id, side, from_ms, to_ms).await {
            Ok(figures) => figures,
            Err(why) => (0, 0, vec![why]),
        };
        p.truncate(50);
        // Each migration's own figures (a filler taken over writes them again).
        sqlx::query(
            "INSERT INTO sync_gap_fills (gap_id, migration_id, side, conversations, recovered,
                                         problems)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (gap_id, migration_id, side) DO UPDATE
                SET conversations = EXCLUDED.conversations, recovered = EXCLUDED.recovered,
                    problems = EXCLUDED.problems",
        )
        .bind(gap)
        .bind(id)
        .bind(side.as_str())
        .bind(c)
        .bind(n)
        .bind(&p)
        .execute(&s.pool)
        .await?;
        recovered += n;
        conversations += c;
        problems.extend(
            p.into_iter()
                .map(|why| format!("migration {id}, {side}: {why}")),
        );
    }
    problems.truncate(50);
    sqlx::query(
        "UPDATE sync_gaps SET state = 'filled', filled_at = now(), recovered = $2,
                conversations = $3, problems = $4
         WHERE id = $1",
    )
    .bind(gap)
    .bind(recovered)
    .bind(conversations)
    .bind(&problems)
    .execute(&s.pool)
    .await?;
    if recovered > 0 {
        s.sync_wake.notify_one();
    }
    tracing::info!(gap, recovered, conversations, "sync: gap filled");
    Ok(())
}

/// Reads one side of one migration back over the window. Answers (events recovered,
/// conversations read, what could not be read).
async fn fill_side(
    s: &Services,
    pacer: &Pacer,
    id: MigrationId,
    side: Side,
    from_ms: i64,
    to_ms: i64,
) -> Result<(i64, i64, Vec<String>), String> {
    let (provider, conn) = connections::open(s, id, side)
        .await
        .map_err(|e| e.to_string())?;
    let limits = match side {
        Side::Target => limits::effective(&s.pool, &s.config.providers, id)
            .await
            .map_err(|e| e.to_string())?,
        Side::Source => provider.limits(),
    };
    let Some(reader) = provider.read_back(&conn, limits) else {
        // A relay resends what imshift did not acknowledge: nothing to read back.
        return Ok((0, 0, vec![]));
    };
    let reader = reader?;
    // Conversations active around the gap, on either side of the migration: a chat the old
    // system wrote into is a chat on the new one too.
    let mut convs: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT conv FROM sync_inbound
         WHERE migration_id = $1 AND (conv LIKE 'c2c:%' OR conv LIKE 'group:%')
           AND received_at > to_timestamp($2::float8 / 1000) - interval '{ACTIVE_BEFORE}'
         GROUP BY conv ORDER BY max(received_at) DESC LIMIT $3"
    ))
    .bind(id)
    .bind(from_ms)
    .bind(MAX_CONVERSATIONS)
    .fetch_all(&s.pool)
    .await
    .map_err(|e| e.to_string())?;
    // A side that numbers its own groups (a team number it chose) knows a group the other side was
    // active in under another id: read it under this side's id too (imported, or created by
    // sync).
    let twins: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT 'group:' || t.mine FROM (
             SELECT CASE WHEN $2 = 'target' THEN new_id ELSE old_id END AS mine,
                    CASE WHEN $2 = 'target' THEN old_id ELSE new_id END AS other
             FROM import_id_map WHERE migration_id = $1 AND kind = 'group'
             UNION ALL
             SELECT m.id, i.data->>'id' FROM sync_ids m
             JOIN sync_inbound i ON i.migration_id = m.migration_id AND i.side <> m.side
                                AND i.key = m.event_key AND i.kind = 'group.created'
             WHERE m.migration_id = $1 AND m.side = $2 AND m.id NOT LIKE 'fp:%'
         ) t WHERE 'group:' || t.other = ANY($3)",
    )
    .bind(id)
    .bind(side.as_str())
    .bind(&convs)
    .fetch_all(&s.pool)
    .await
    .map_err(|e| e.to_string())?;
    for t in twins {
        if !convs.contains(&t) {
            convs.push(t);
        }
    }
    let mut problems = vec![];
    // A chat that began during the gap is in no event: where the side can list an account's
    // conversations, those of the accounts active on it before the gap are asked for (by this
    // side's own ids).
    let accounts: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT a FROM sync_inbound,
                LATERAL (VALUES (data->>'from'), (data->>'to')) AS v(a)
         WHERE migration_id = $1 AND side = $4 AND kind = 'message.sent'
           AND conv LIKE 'c2c:%'
           AND received_at > to_timestamp($2::float8 / 1000) - interval '{ACTIVE_BEFORE}'
           AND a IS NOT NULL
         GROUP BY a ORDER BY max(received_at) DESC LIMIT $3"
    ))
    .bind(id)
    .bind(from_ms)
    .bind(MAX_ACCOUNTS)
    .bind(side.as_str())
    .fetch_all(&s.pool)
    .await
    .map_err(|e| e.to_string())?;
    let mut known: std::collections::HashSet<String> = convs.iter().cloned().collect();
    let mut failed = 0;
    'accounts: for account in &accounts {
        let mut page = None;
        for _ in 0..MAX_LIST_PAGES {
            if let Some((key, qps)) = reader.pace_listing() {
                let _ = pacer.wait(&key, qps).await;
            }
            match reader.conversations_of(account, from_ms, page.take()).await {
                None => break 'accounts,
                Some(Ok(p)) => {
                    for c in p.conversations {
                        if known.insert(c.clone()) {
                            convs.push(c);
                        }
                    }
                    match p.next {
                        Some(next) => page = Some(next),
                        None => break,
                    }
                }
                Some(Err(why)) => {
                    problems.push(format!("the conversations of {account}: {why}"));
                    failed += 1;
                    // Most likely the same for every account (the API not open to this app):
                    // the rest are not asked.
                    if failed == MAX_LIST_FAILURES {
                        problems.push(format!(
                            "listing conversations stopped after {failed} failures"
                        ));
                        break 'accounts;
                    }
                    break;
                }
            }
        }
    }
    let mut recovered = 0i64;
    for conv in &convs {
        // The whole window first, then stored oldest first: events of one second keep their
        // order (the sender breaks ties by arrival), whichever way the pages run.
        let mut pages: Vec<Vec<crate::providers::InboundEvent>> = vec![];
        let mut page = None;
        for _ in 0..MAX_PAGES {
            if let Some((key, qps)) = reader.pace(conv) {
                let _ = pacer.wait(&key, qps).await;
            }
            match reader.read(conv, from_ms, to_ms, page.take()).await {
                Ok(p) => {
                    pages.push(p.events);
                    match p.next {
                        Some(next) => page = Some(next),
                        None => break,
                    }
                }
                Err(why) => {
                    problems.push(format!("{conv}: {why}"));
                    break;
                }
            }
        }
        let newest_first = pages
            .first()
            .zip(pages.last())
            .is_some_and(|(a, b)| a.first().map(|e| e.at_ms) > b.first().map(|e| e.at_ms));
        if newest_first {
            pages.reverse();
        }
        let mut events: Vec<_> = pages.into_iter().flatten().collect();
        events.sort_by_key(|e| e.at_ms);
        // Read back in order, page by page: nothing to wait for.
        let delivery = commit::Delivery {
            id,
            side,
            events,
            hold: std::time::Duration::ZERO,
        };
        let stored = commit::store(&s.pool, delivery, false)
            .await
            .map_err(|e| e.to_string())?;
        recovered += stored.queued as i64;
    }
    Ok((recovered, convs.len() as i64, problems))
}

/// The gaps of the last 30 days, newest first, for one migration's Sync tab: with that
/// migration's own figures (a gap filled before they were kept per migration shows the
/// console's).
pub async fn recent(pool: &sqlx::PgPool, id: MigrationId) -> Result<Vec<SyncGap>, sqlx::Error> {
    sqlx::query_as(
        "SELECT g.from_at, g.to_at, g.state,
                CASE WHEN f.has THEN f.recovered ELSE g.recovered END,
                CASE WHEN f.has THEN f.conversations ELSE g.conversations END,
                CASE WHEN f.has THEN f.problems ELSE g.problems END,
                g.filled_at
         FROM sync_gaps g, LATERAL (
             SELECT EXISTS (SELECT 1 FROM sync_gap_fills a WHERE a.gap_id = g.id) AS has,
                    COALESCE(sum(m.recovered), 0)::bigint AS recovered,
                    COALESCE(sum(m.conversations), 0)::bigint AS conversations,
                    COALESCE((SELECT array_agg(p) FROM sync_gap_fills x, unnest(x.problems) p
                              WHERE x.gap_id = g.id AND x.migration_id = $1), '{}') AS problems
             FROM sync_gap_fills m WHERE m.gap_id = g.id AND m.migration_id = $1
         ) f
         WHERE g.to_at > now() - interval '30 days'
         ORDER BY g.from_at DESC LIMIT 20",
    )
    .bind(id)
    .fetch_all(pool)
    .await
}
