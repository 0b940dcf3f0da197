//! The Sync tab: per direction its switch, health (status, rates, lag, backlog, errors, echoes
//! filtered, a 30-minute chart), the values to paste into the side's own console and a test
//! message for sandbox sides; then the event log with each event's path and dead letters'
//! replay, and the id map. Figures follow live (polled every two seconds while the page is visible).

use super::migration::poll;
use crate::app::calls_sync::{get_sync, sync_events, sync_id_map, SetSync, SyncReplay, SyncTest};
use crate::app::components::{action_error, can, count, duration, resource, when, ErrorNote};
use crate::model::{
    ApiError, MigrationId, MinutePoint, Permission, Side, SyncDirection, SyncEventState,
    SyncEventView, SyncGap, SyncIdPair, SyncView,
};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

fn ms(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(v) if v < 1000.0 => format!("{v:.0} ms"),
        Some(v) => format!("{:.1} s", v / 1000.0),
    }
}

#[derive(Clone, Copy)]
struct Actions {
    set: ServerAction<SetSync>,
    replay: ServerAction<SyncReplay>,
}

#[component]
pub fn SyncTab() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| {
        params
            .read()
            .get("id")
            .and_then(|s| s.parse::<MigrationId>().ok())
    });
    let actions = Actions {
        set: ServerAction::new(),
        replay: ServerAction::new(),
    };
    let sync = resource(
        move || (id.get(), actions.set.version().get()),
        |(id, _)| async move {
            match id {
                Some(id) => get_sync(id).await,
                None => Err(ApiError::new("not_found", "This is not a migration id.")),
            }
        },
    );
    // The log's first page loads with the page, in the same boundary: a boundary nested in this
    // one's content streams on its own and breaks hydration on a direct load. Later pages
    // (search, filter, new events) are fetched by the log itself.
    let first_events = resource(
        move || id.get(),
        |id| async move {
            match id {
                Some(id) => sync_events(id, None, None).await,
                None => Ok(vec![]),
            }
        },
    );
    let first_ids = resource(
        move || id.get(),
        |id| async move {
            match id {
                Some(id) => sync_id_map(id, None).await,
                None => Ok(vec![]),
            }
        },
    );
    // One per side, made here: the cards are drawn again at every poll and must not lose a
    // test message's answer.
    let tests = [
        ServerAction::<SyncTest>::new(),
        ServerAction::<SyncTest>::new(),
    ];
    let live = RwSignal::new(None::<SyncView>);
    poll(
        move || async move {
            match id.try_get_untracked().flatten() {
                Some(id) => get_sync(id).await.map(Some),
                None => Ok(None),
            }
        },
        live,
    );
    // A switch answers with the new view: show it at once rather than at the next poll.
    Effect::new(move |_| {
        if let Some(Ok(v)) = actions.set.value().get() {
            live.set(Some(v));
        }
    });
    view! {
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                let first = match sync.await {
                    Ok(v) => v,
                    Err(e) => return view! { <ErrorNote error=e/> }.into_any(),
                };
                let initial = first_events.await;
                let initial_ids = first_ids.await;
                let mid = id.get_untracked().unwrap_or(MigrationId::NIL);
                let first = StoredValue::new(first);
                let current = move || live.get().unwrap_or_else(|| first.get_value());
                view! {
                    {move || current().directions.into_iter().map(|d| view! {
                        <DirectionCard test_action=tests[usize::from(d.from == Side::Target)] d actions id=mid/>
                    }).collect_view()}
                    {action_error(actions.set.value())}
                    {move || view! { <Gaps gaps=current().gaps/> }}
                    <EventLog id=mid actions live initial/>
                    <IdMap id=mid initial=initial_ids/>
                }.into_any()
            })}
        </Transition>
    }
}

#[component]
fn DirectionCard(
    d: SyncDirection,
    actions: Actions,
    test_action: ServerAction<SyncTest>,
    id: MigrationId,
) -> impl IntoView {
    let may_run = can(Permission::RunMigrations);
    let from = d.from;
    let h = d.health.clone();
    let title = format!("{} → {}", d.from_label, d.to_label);
    let enabled = d.enabled;
    let blocked = d.blocked.clone();
    let switch = may_run.then(|| {
        let label = if enabled { "Turn off" } else { "Turn on" };
        view! {
            <button class=if enabled { "btn" } else { "btn btn-primary" } data-testid="sync-switch"
                disabled=move || actions.set.pending().get() || (!enabled && blocked.is_some())
                on:click=move |_| { actions.set.dispatch(SetSync { id, from, enabled: !enabled }); }>
                {label}
            </button>
        }
    });
    let test = (may_run && d.can_send_test && enabled).then(|| view! {
        <button class="btn" data-testid="sync-test" on:click=move |_| {
            test_action.dispatch(SyncTest { id, from });
        }>{move || if test_action.pending().get() { "Sending…" } else { "Send a test message" }}</button>
    });
    let drain = h
        .drain_secs
        .map(|s| format!(" (about {} to send at the current rate)", duration(s)))
        .unwrap_or_default();
    let last = h
        .last_event_secs
        .map(|s| format!("{} ago", duration(s as f64)))
        .unwrap_or_else(|| "none yet".into());
    let canary = match (&h.canary, &h.canary_note) {
        (_, Some(note)) => note.clone(),
        (None, None) => "the first goes out a few minutes after this direction is turned on".into(),
        (Some(c), None) => match (&c.error, c.round_trip_ms, c.received_ms) {
            (Some(e), _, _) => format!("could not be sent ({}): {e}", when(&c.sent_at)),
            (None, Some(rt), _) => format!("round trip {} ({})", ms(Some(rt)), when(&c.sent_at)),
            (None, None, Some(r)) => format!(
                "received in {}, not applied yet ({})",
                ms(Some(r)),
                when(&c.sent_at)
            ),
            (None, None, None) => format!("sent {}, not back yet", when(&c.sent_at)),
        },
    };
    let errors = (!h.errors.is_empty()).then(|| view! {
        <h3>"Errors"</h3>
        <table class="table" data-testid="sync-errors">
            <thead><tr><th>"Code"</th><th>"Events"</th><th>"What it means"</th><th></th></tr></thead>
            <tbody>{h.errors.iter().map(|e| {
                // Once the cause is fixed, the dead letters of this code go back together.
                let code = e.code.clone();
                let replay = (may_run && e.dead > 0).then(|| view! {
                    <button class="btn btn-small" data-testid="sync-replay-code" on:click=move |_| {
                        actions.replay.dispatch(SyncReplay { id, side: Some(from), key: None, error_code: Some(code.clone()) });
                    }>{format!("Replay {} dead letters", count(e.dead))}</button>
                });
                view! {
                    <tr data-code=e.code.clone()><td><code>{e.code.clone()}</code></td><td>{count(e.events)}</td><td>{e.message.clone()}</td><td>{replay}</td></tr>
                }
            }).collect_view()}</tbody>
        </table>
    });
    let setup = d
        .setup
        .iter()
        .map(|s| {
            view! {
                <dt>{s.what.clone()}</dt><dd><code class="wrap">{s.value.clone()}</code></dd>
            }
        })
        .collect_view();
    view! {
        <section class="card" data-testid=format!("sync-{from}")>
            <div class="card-head">
                <h2>{title}</h2>
                <span class=format!("status sync-{}", h.status) data-testid="sync-status" data-status=h.status.as_str()>{h.status.label()}</span>
            </div>
            <p class="hint">{h.why.clone()}</p>
            {d.blocked.clone().map(|b| view! { <p class="alert alert-warn" data-testid="sync-blocked">{b}</p> })}
            <div class="button-row">{switch}{test}</div>
            {move || test_action.value().get().and_then(Result::ok).map(|made| view! {
                <p class="alert alert-ok" data-testid="sync-test-result">
                    {format!("Sent as a user of the sandbox (its id there: {made}). Watch it in the event log below.")}
                </p>
            })}
            {action_error(test_action.value())}
            <dl class="facts" data-testid="sync-figures">
                <dt>"Received"</dt><dd data-testid="sync-received">{count(h.received_total)}</dd>
                <dt>"Applied on the other side"</dt><dd data-testid="sync-sent">{count(h.sent_total)}</dd>
                <dt>"Events per minute"</dt><dd>{format!("{:.1} (last 5 min)", h.events_per_min)}</dd>
                <dt>"Backlog"</dt><dd data-testid="sync-backlog">{format!("{}{drain}", count(h.backlog))}</dd>
                <dt>"Capture lag"</dt><dd>{format!("p50 {} · p99 {} (event → received)", ms(h.capture_p50_ms), ms(h.capture_p99_ms))}</dd>
                <dt>"Apply lag"</dt><dd>{format!("p50 {} · p99 {} (received → applied)", ms(h.apply_p50_ms), ms(h.apply_p99_ms))}</dd>
                <dt>"Dead letters"</dt><dd data-testid="sync-dead">{count(h.dead)}</dd>
                <dt>"Echoes filtered"</dt><dd data-testid="sync-echo">{count(h.echo_filtered)}</dd>
                <dt>"Refused at the door"</dt><dd>{count(h.refused)}</dd>
                <dt>"Last event"</dt><dd>{last}</dd>
                <dt>"Canary"</dt><dd data-testid="sync-canary">{canary}</dd>
                {d.changed_by.clone().zip(d.changed_at).map(|(by, at)| view! {
                    <dt>"Switched"</dt><dd>{format!("{} by {by}, {}", if enabled { "on" } else { "off" }, when(&at))}</dd>
                })}
            </dl>
            <Chart minutes=h.minutes.clone()/>
            {errors}
            <details>
                <summary>{format!("Set up {} to send its events", d.from_label)}</summary>
                <dl class="facts" data-testid="sync-setup">{setup}</dl>
            </details>
        </section>
    }
}

/// Times every console process was down, and what reading the sides' history back recovered.
#[component]
fn Gaps(gaps: Vec<SyncGap>) -> impl IntoView {
    if gaps.is_empty() {
        return ().into_any();
    }
    view! {
        <section class="card" data-testid="sync-gaps">
            <h2>"Gaps"</h2>
            <p class="hint">"A side's callbacks are not sent again when the console misses them: what happened while every console process was down is read back from the side's history and sent on like any other event (what did arrive is not sent twice)."</p>
            <table class="table">
                <thead><tr><th>"Down"</th><th>"For"</th><th>"Read back"</th><th>"Recovered"</th></tr></thead>
                <tbody>{gaps.into_iter().map(|g| {
                    let secs = (g.to_at - g.from_at).as_seconds_f64();
                    let state = match g.state.as_str() {
                        "filled" => format!("{} conversations", count(g.conversations)),
                        "filling" => "being read back…".into(),
                        _ => "waiting".into(),
                    };
                    view! {
                        <tr data-testid="sync-gap" data-state=g.state.clone()>
                            <td>{when(&g.from_at)}</td>
                            <td>{duration(secs)}</td>
                            <td>{state}{(!g.problems.is_empty()).then(|| view! {
                                <br/><small class="hint">{g.problems.join("; ")}</small>
                            })}</td>
                            <td>{format!("{} events", count(g.recovered))}</td>
                        </tr>
                    }
                }).collect_view()}</tbody>
            </table>
        </section>
    }
    .into_any()
}

/// Received and applied per minute over the last 30 minutes, as bars.
#[component]
fn Chart(minutes: Vec<MinutePoint>) -> impl IntoView {
    let top = minutes
        .iter()
        .map(|m| m.received.max(m.sent))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let (w, h) = (6.0, 60.0);
    let bars = minutes
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let x = i as f64 * (2.0 * w + 2.0);
            let rh = m.received as f64 / top * h;
            let sh = m.sent as f64 / top * h;
            let tip = format!(
                "{} min ago: {} received, {} applied",
                m.ago, m.received, m.sent
            );
            view! {
                <g>
                    <title>{tip}</title>
                    <rect x=x y=h - rh width=w height=rh class="bar-in"/>
                    <rect x=x + w y=h - sh width=w height=sh class="bar-out"/>
                </g>
            }
        })
        .collect_view();
    let width = minutes.len() as f64 * (2.0 * w + 2.0);
    // Apply lag over time: each minute's p99 as a bar of its own scale (minutes with nothing
    // applied have none), so a slowdown shows before the backlog does.
    let worst = minutes
        .iter()
        .filter_map(|m| m.apply_p99_ms)
        .fold(0.0_f64, f64::max);
    let lag = (worst > 0.0).then(|| {
        let lh = 30.0;
        let marks = minutes
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let p = m.apply_p99_ms?;
                let x = i as f64 * (2.0 * w + 2.0);
                let bh = (p / worst * lh).max(1.0);
                let tip = format!("{} min ago: apply p99 {}", m.ago, ms(Some(p)));
                Some(view! {
                    <g><title>{tip}</title><rect x=x y=lh - bh width=2.0 * w height=bh class="bar-lag"/></g>
                })
            })
            .collect_view();
        view! {
            <svg viewBox=format!("0 0 {width} {lh}") width="100%" height="32" preserveAspectRatio="none" role="img"
                 aria-label="Apply lag p99 per minute, last 30 minutes" data-testid="sync-lag-chart">{marks}</svg>
            <figcaption class="hint">{format!("Apply lag p99 per minute (highest {})", ms(Some(worst)))}</figcaption>
        }
    });
    view! {
        <figure class="chart" data-testid="sync-chart">
            <svg viewBox=format!("0 0 {width} {h}") width="100%" height="64" preserveAspectRatio="none" role="img"
                 aria-label="Events received and applied per minute, last 30 minutes">{bars}</svg>
            <figcaption class="hint">"Last 30 minutes, per minute: "<span class="key-in">"received"</span>" · "<span class="key-out">"applied"</span></figcaption>
            {lag}
        </figure>
    }
}

#[component]
fn EventLog(
    id: MigrationId,
    actions: Actions,
    live: RwSignal<Option<SyncView>>,
    initial: Result<Vec<SyncEventView>, ApiError>,
) -> impl IntoView {
    let may_run = can(Permission::RunMigrations);
    let q = RwSignal::new(String::new());
    let state = RwSignal::new(None::<SyncEventState>);
    // The log follows the polled figures: a new poll answer refreshes it.
    let tick = Memo::new(move |_| {
        live.with(|v| {
            v.as_ref().map(|v| {
                v.directions
                    .iter()
                    .map(|d| d.health.received_total + d.health.sent_total + d.health.dead)
                    .sum::<i64>()
            })
        })
    });
    let shown = RwSignal::new(initial);
    // Runs in the browser only: the first run is the page as loaded; every change after it
    // (a search, a filter, new figures, a replay or test) fetches the log again.
    Effect::new(move |prev: Option<()>| {
        let (q, state) = (q.get(), state.get());
        let _ = (tick.get(), actions.replay.version().get());
        if prev.is_some() {
            leptos::task::spawn_local(async move {
                let r = sync_events(id, Some(q).filter(|s| !s.is_empty()), state).await;
                let _ = shown.try_set(r);
            });
        }
    });
    let rows = move |list: Vec<SyncEventView>| {
        if list.is_empty() {
            return view! { <p class="hint" data-testid="sync-events-empty">"No events match."</p> }.into_any();
        }
        view! {
            <table class="table" data-testid="sync-events">
                <thead><tr><th>"Received"</th><th>"From"</th><th>"Event"</th><th>"Who → what"</th><th>"State"</th><th></th></tr></thead>
                <tbody>{list.into_iter().map(|e| {
                    let (side, key) = (e.side, e.key.clone());
                    let dead = e.state == SyncEventState::Dead;
                    let why = e.error.clone().map(|m| match &e.error_code {
                        Some(c) => format!("{c}: {m}"),
                        None => m,
                    });
                    view! {
                        <tr data-testid="sync-event" data-state=e.state.as_str() data-key=e.key.clone()>
                            <td>{when(&e.received_at)}</td>
                            <td>{e.side.as_str()}</td>
                            <td>{e.kind.clone()}<br/><small class="hint">{e.preview.clone()}</small></td>
                            <td>{format!("{} → {}", e.actor, e.subject)}</td>
                            <td>
                                <span class=format!("status ev-{}", e.state)>{e.state.label()}</span>
                                {(e.attempts > 0).then(|| view! { <small class="hint">{format!(" · {} failed tries", e.attempts)}</small> })}
                                {why.map(|w| view! { <br/><small class="hint">{w}</small> })}
                            </td>
                            <td>{(dead && may_run).then(|| view! {
                                <button class="btn btn-small" on:click=move |_| {
                                    actions.replay.dispatch(SyncReplay { id, side: Some(side), key: Some(key.clone()), error_code: None });
                                }>"Replay"</button>
                            })}</td>
                        </tr>
                    }
                }).collect_view()}</tbody>
            </table>
        }
        .into_any()
    };
    view! {
        <section class="card" data-testid="sync-log">
            <div class="card-head">
                <h2>"Event log"</h2>
                {may_run.then(|| view! {
                    <button class="btn" data-testid="sync-replay-all" on:click=move |_| {
                        actions.replay.dispatch(SyncReplay { id, side: None, key: None, error_code: None });
                    }>"Replay all dead letters"</button>
                })}
            </div>
            <div class="filters">
                <label>"Account, group or message id"
                    <input type="search" data-testid="sync-search" prop:value=q
                        on:change=move |ev| q.set(event_target_value(&ev))/>
                </label>
                <label>"State"
                    <select on:change=move |ev| state.set(event_target_value(&ev).parse().ok())>
                        <option value="">"Any"</option>
                        {SyncEventState::ALL.iter().map(|s| view! { <option value=s.as_str()>{s.label()}</option> }).collect_view()}
                    </select>
                </label>
            </div>
            {move || actions.replay.value().get().and_then(Result::ok).map(|n| view! {
                <p class="alert alert-ok">{format!("{} dead letters went back to the queue.", count(n))}</p>
            })}
            {action_error(actions.replay.value())}
            {move || match shown.get() {
                Ok(list) => rows(list),
                Err(e) => view! { <ErrorNote error=e/> }.into_any(),
            }}
        </section>
    }
}

/// The id map: search an id of either side and see what the other side calls it.
#[component]
fn IdMap(id: MigrationId, initial: Result<Vec<SyncIdPair>, ApiError>) -> impl IntoView {
    let q = RwSignal::new(String::new());
    let shown = RwSignal::new(initial);
    let search = move |text: String| {
        q.set(text.clone());
        leptos::task::spawn_local(async move {
            let r = sync_id_map(id, Some(text).filter(|s| !s.trim().is_empty())).await;
            let _ = shown.try_set(r);
        });
    };
    let rows = move |list: Vec<SyncIdPair>| {
        if list.is_empty() {
            let empty = if q.with(String::is_empty) {
                "Nothing mapped yet: the import and sync record here what each side calls the same account, group or message."
            } else {
                "No id matches."
            };
            return view! { <p class="hint" data-testid="sync-id-map-empty">{empty}</p> }
                .into_any();
        }
        view! {
            <table class="table" data-testid="sync-id-pairs">
                <thead><tr><th>"Kind"</th><th>"Old system"</th><th>"New system"</th><th>"Recorded by"</th><th>"When"</th></tr></thead>
                <tbody>{list.into_iter().map(|p| view! {
                    <tr data-testid="sync-id-pair">
                        <td>{p.kind}</td>
                        <td class="mono">{p.old_id}</td>
                        <td class="mono">{p.new_id}</td>
                        <td>{p.via}</td>
                        <td class="nowrap">{when(&p.at)}</td>
                    </tr>
                }).collect_view()}</tbody>
            </table>
        }
        .into_any()
    };
    view! {
        <section class="card" data-testid="sync-id-map">
            <div class="card-head"><h2>"Id map"</h2></div>
            <p class="muted">"What the old system and the new one call the same account, group or message: recorded by the import where the new side chose its own id, and by sync for what it made on either side. A recall or an edit finds its message on the other side here."</p>
            <div class="filters">
                <label>"Id on either side"
                    <input type="search" data-testid="sync-id-search" prop:value=move || q.get()
                        on:change=move |ev| search(event_target_value(&ev))/>
                </label>
            </div>
            {move || match shown.get() {
                Ok(list) => rows(list),
                Err(e) => view! { <ErrorNote error=e/> }.into_any(),
            }}
        </section>
    }
}
