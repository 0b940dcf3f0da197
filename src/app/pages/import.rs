//! A migration's Import tab: the preflight (what will be sent where, how long the quotas make
//! it take, what validation left aside), Launch, then live per-phase progress with the rate
//! against the quota and the time left, pause / resume / cancel, retry of failed records, the
//! failures table and the finished run's summary (each phase's start, end and duration, and
//! how far the preflight was off), the throughput chart, and why records were skipped.

use crate::app::calls_imports::{
    hand_over, import_failures, import_id_map, import_preflight, import_runs, run_throughput,
    BuildHandOver, ControlImport, LaunchImport, RetryImport,
};
use crate::app::components::{
    action_error, bytes, can, count, duration, resource, when, when_full, when_secs, EmptyState,
    ErrorNote, Res,
};
use crate::model::{
    ImportRun, ImportThroughput, MigrationId, Permission, PhaseState, PhaseStatus, Preflight,
    RunId, RunState,
};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

fn use_id() -> Memo<Option<MigrationId>> {
    let params = use_params_map();
    Memo::new(move |_| params.read().get("id").and_then(|s| s.parse().ok()))
}

/// A run that still changes: running, paused, or stopping with answers in flight.
fn moving(r: &ImportRun) -> bool {
    r.state.live() || r.settling.is_some()
}

fn pct(done: i64, total: i64) -> f64 {
    if total <= 0 {
        100.0
    } else {
        (done as f64 / total as f64 * 100.0).clamp(0.0, 100.0)
    }
}

#[component]
pub fn ImportTab() -> impl IntoView {
    let id = use_id();
    let launch = ServerAction::<LaunchImport>::new();
    let control = ServerAction::<ControlImport>::new();
    let retry = ServerAction::<RetryImport>::new();
    let runs = resource(
        move || {
            (
                id.get(),
                launch.version().get(),
                control.version().get(),
                retry.version().get(),
            )
        },
        |(id, ..)| async move {
            match id {
                Some(id) => import_runs(id).await,
                None => Ok(vec![]),
            }
        },
    );
    let preflight = resource(
        move || (id.get(), launch.version().get()),
        |(id, _)| async move {
            match id {
                Some(id) => import_preflight(id).await.map(Some),
                None => Ok(None),
            }
        },
    );
    // The newest run, kept current by the server's events while it moves.
    let live = RwSignal::new(None::<ImportRun>);
    // The chart is fetched again every five working seconds while the run moves, and once
    // more when it stops.
    let chart_key = Memo::new(move |_| {
        live.with(|r| {
            r.as_ref().map(|r| {
                let tick = if moving(r) {
                    (r.elapsed_secs / 5.0) as i64
                } else {
                    -1
                };
                (r.migration_id, r.id, tick, r.state)
            })
        })
    });
    // The failures table is made again only when the run or its phases with failures change.
    let failed_key = Memo::new(move |_| {
        live.with(|r| {
            r.as_ref().map(|r| {
                let phases: Vec<String> = r
                    .phases
                    .iter()
                    .filter(|p| p.failed > 0)
                    .map(|p| p.phase.clone())
                    .collect();
                (r.migration_id, r.id, phases)
            })
        })
    });
    let throughput = resource(
        move || chart_key.get(),
        |key| async move {
            match key {
                Some((m, r, ..)) => run_throughput(m, r).await.map(Some),
                None => Ok(None),
            }
        },
    );
    Effect::new(move |_| {
        if let Some(Ok(list)) = runs.get() {
            live.set(list.first().cloned());
        }
    });
    // What Pause or Cancel answered is shown at once: `pausing…` while the answers to the
    // requests already out are still coming in.
    Effect::new(move |_| {
        if let Some(Ok(r)) = control.value().get() {
            live.set(Some(r));
        }
    });
    #[cfg(feature = "hydrate")]
    {
        let source = StoredValue::new_local(None::<web_sys::EventSource>);
        let watching = RwSignal::new(None::<RunId>);
        Effect::new(move |_| {
            let run = live.get();
            let watch = run
                .as_ref()
                .filter(|r| moving(r))
                .map(|r| (r.migration_id, r.id));
            let want = watch.map(|(_, r)| r);
            if want == watching.get_untracked() {
                return;
            }
            if let Some(es) = source.get_value() {
                es.close();
            }
            source.set_value(None);
            watching.set(want);
            if let Some((mid, rid)) = watch {
                use leptos::wasm_bindgen::closure::Closure;
                use leptos::wasm_bindgen::JsCast;
                let url = format!("/api/v1/migrations/{mid}/imports/{rid}/events");
                if let Ok(es) = web_sys::EventSource::new(&url) {
                    let on_status = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
                        move |e: web_sys::MessageEvent| {
                            if let Some(text) = e.data().as_string() {
                                if let Ok(r) = serde_json::from_slice::<ImportRun>(text.as_bytes())
                                {
                                    let over = !moving(&r);
                                    live.set(Some(r));
                                    if over {
                                        runs.refetch();
                                        preflight.refetch();
                                    }
                                }
                            }
                        },
                    );
                    let _ = es.add_event_listener_with_callback(
                        "status",
                        on_status.as_ref().unchecked_ref(),
                    );
                    on_status.forget();
                    source.set_value(Some(es));
                }
            }
        });
        on_cleanup(move || {
            if let Some(es) = source.try_get_value().flatten() {
                es.close();
            }
        });
    }
    let may_run = can(Permission::RunMigrations);
    view! {
        {action_error(launch.value())}
        {action_error(control.value())}
        {action_error(retry.value())}
        {move || {
            let run = live.get();
            let active = run.as_ref().is_some_and(moving);
            view! {
                {run.clone().map(|r| view! { <RunCard r control retry may_run/> })}
                {(!active).then(|| view! {
                    <Transition fallback=|| view! { <p>"Loading…"</p> }>
                        {move || Suspend::new(async move {
                            match preflight.await {
                                Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                                Ok(None) => ().into_any(),
                                Ok(Some(p)) => view! { <PreflightCard p launch may_run id=id.get_untracked().unwrap_or(MigrationId::NIL)/> }.into_any(),
                            }
                        })}
                    </Transition>
                })}
            }
        }}
        <ThroughputCard data=throughput/>
        {move || {
            failed_key.get().map(|(id, run, phases)| view! { <Failures id run phases/> })
        }}
        {move || id.get().map(|id| view! { <HandOver id may_run/> })}
        {move || id.get().map(|id| {
            // Read again when a run stops: it may have recorded new ids.
            let settled = Signal::derive(move || live.with(|r| r.as_ref().map(|r| (r.id, moving(r)))));
            view! { <IdMap id settled/> }
        })}
    }
    .into_any()
}

/// What the target made of old ids where it chose its own (a team id for each old group):
/// searchable, exported as CSV, and hidden while the map is empty.
#[component]
fn IdMap(id: MigrationId, settled: Signal<Option<(RunId, bool)>>) -> impl IntoView {
    let q = RwSignal::new(String::new());
    let pages = RwSignal::new(vec![None::<String>]);
    let loaded = resource(
        move || (q.get(), pages.get(), settled.get()),
        move |(q, pages, _)| async move {
            let mut all = vec![];
            for after in pages {
                all.push(import_id_map(id, Some(q.clone()), after).await?);
            }
            Ok::<_, crate::model::ApiError>(all)
        },
    );
    let csv = move || {
        let q = q.get();
        let q: String = query_value(&q);
        format!("/api/v1/migrations/{id}/id-map.csv?q={q}")
    };
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let Ok(pages_loaded) = loaded.await else { return ().into_any() };
                let total = pages_loaded.first().map(|p| p.total).unwrap_or(0);
                if total == 0 {
                    return ().into_any();
                }
                let next = pages_loaded.last().and_then(|p| p.next.clone());
                let rows: Vec<_> = pages_loaded.into_iter().flat_map(|p| p.entries).collect();
                view! {
                    <section class="card" data-testid="id-map">
                        <div class="card-head">
                            <h2>"Id map"</h2>
                            <a class="btn btn-small" rel="external" download="imshift-id-map.csv" href=csv>"Export CSV"</a>
                        </div>
                        <p class="muted">{format!("{} ids the target chose itself, from every run: later phases and runs use them, and so does your app server to find its data on the new side.", count(total))}</p>
                        <div class="filters">
                            <label>"Search"
                                <input type="search" placeholder="old or new id" prop:value=move || q.get()
                                    on:change=move |ev| { q.set(event_target_value(&ev)); pages.set(vec![None]); }/>
                            </label>
                        </div>
                        {if rows.is_empty() {
                            view! { <p>"No id matches."</p> }.into_any()
                        } else {
                            view! {
                                <table class="table">
                                    <thead><tr><th>"Kind"</th><th>"Old id"</th><th>"New id"</th><th>"Recorded"</th></tr></thead>
                                    <tbody>
                                    {rows.into_iter().map(|e| view! {
                                        <tr><td>{e.kind}</td><td class="mono">{e.old_id}</td><td class="mono">{e.new_id}</td><td class="nowrap" title=when_full(&e.at)>{when_secs(&e.at)}</td></tr>
                                    }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any()
                        }}
                        {next.map(|n| view! { <button class="btn" on:click=move |_| pages.update(|p| p.push(Some(n.clone())))>"More"</button> })}
                    </section>
                }.into_any()
            })}
        </Transition>
    }
}

/// `s` for a URL's query: letters, digits and `-_.~` as they are, every other byte %XX.
fn query_value(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[component]
fn PreflightCard(
    p: Preflight,
    launch: ServerAction<LaunchImport>,
    may_run: bool,
    id: MigrationId,
) -> impl IntoView {
    let blocked = !p.blockers.is_empty();
    // Under an earlier run, Launch waits for the team to say what to send.
    let resend = RwSignal::new(String::new());
    let must_choose = p.earlier.is_some();
    let earlier = p.earlier.clone().map(|e| {
        let all = format!(
            "Send everything again: {} records, about {}",
            count(p.records),
            duration(p.estimate_secs)
        );
        let some = format!(
            "Send only what failed or is new: {} records, about {}",
            count(e.failed_or_new),
            duration(e.failed_or_new_secs)
        );
        view! {
            <fieldset class="relaunch" data-testid="relaunch">
                <legend>"This migration was imported before: choose what to send"</legend>
                <p class="hint">{format!(
                    "The last run ({}{}) and the {} before it already sent {} of the {} records staged now. Launching as before sends all of them again; the target's deduplication absorbs most repeats, but not all (messages without an id, changed profiles).",
                    e.last_state,
                    e.last_finished_at.as_ref().map(|t| format!(", ended {}", when(t))).unwrap_or_default(),
                    if e.runs > 1 { format!("{} runs", e.runs) } else { "run".to_string() },
                    count(e.sent_before),
                    count(p.records),
                )}</p>
                <label class="radio">
                    <input type="radio" name="resend" value="failed_or_new" data-testid="resend-failed-or-new"
                        on:change=move |_| resend.set("failed_or_new".into())/>
                    {some}
                </label>
                <label class="radio">
                    <input type="radio" name="resend" value="all" data-testid="resend-all"
                        on:change=move |_| resend.set("all".into())/>
                    {all}
                </label>
            </fieldset>
        }
    });
    let has_earlier = must_choose;
    view! {
        <section class="card" data-testid="preflight">
            <div class="card-head">
                <h2>"Launch an import"</h2>
                {p.sandbox.then(|| view! { <span class="status state-ready">"sandbox rehearsal"</span> })}
            </div>
            <p class="lead" data-testid="preflight-lead">
                {match &p.hand_over {
                    Some(_) => format!("{} records to {} by API at ", count(p.by_api), p.target),
                    None => format!("{} records to {} at ", count(p.records), p.target),
                }}<code>{p.base_url.clone()}</code>
                {format!(" · about {} at the quotas (independent phases run at the same time).", duration(p.estimate_secs))}
            </p>
            {p.hand_over.clone().filter(|h| h.records > 0).map(|h| view! {
                <p class="alert alert-info" data-testid="preflight-hand-over">{format!(
                    "{} messages and group events do not go through {}'s API: they go in the {}, built below once the import is done. {}",
                    count(h.records), p.target, h.label, h.note
                )}</p>
            })}
            {p.blockers.iter().map(|b| view! { <p class="alert alert-error" data-testid="blocker">{b.clone()}</p> }).collect_view()}
            {p.warnings.iter().map(|w| view! { <p class="alert alert-warn">{w.clone()}</p> }).collect_view()}
            <table class="table" data-testid="preflight-phases">
                <thead><tr><th>"Phase"</th><th>"API"</th><th>"Records"</th><th>"Requests"</th><th>"Quota"</th><th>"Time"</th></tr></thead>
                <tbody>
                {p.phases.into_iter().map(|ph| view! {
                    <tr class={if ph.note.is_some() { "muted" } else { "" }} data-testid="preflight-phase" data-phase=ph.phase.clone()>
                        <td>{ph.label.clone()}</td>
                        <td>{match ph.note.clone() {
                            Some(n) => view! { <span class="hint" data-testid="skip-reason">{format!("skipped: {n}")}</span> }.into_any(),
                            None => view! { <code>{ph.api.clone()}</code> }.into_any(),
                        }}</td>
                        <td>{count(ph.records)}
                            {(has_earlier && ph.sent_before > 0).then(|| view! {
                                <div class="hint">{format!("{} sent before", count(ph.sent_before))}</div>
                            })}
                        </td>
                        <td>{count(ph.requests)}</td>
                        <td>{(ph.qps > 0.0).then(|| format!("{:.0}/s × {}", ph.qps, ph.batch))}</td>
                        <td>{(ph.secs > 0.0).then(|| duration(ph.secs))}</td>
                    </tr>
                }).collect_view()}
                </tbody>
            </table>
            {earlier}
            {may_run.then(|| view! {
                <div class="button-row">
                    <button class="btn btn-primary" data-testid="launch"
                        disabled=move || blocked || (must_choose && resend.get().is_empty())
                        on:click=move |_| {
                            let r = resend.get_untracked();
                            launch.dispatch(LaunchImport { id, resend: (!r.is_empty()).then_some(r) });
                        }>
                        {move || if launch.pending().get() { "Launching…" } else { "Launch import" }}
                    </button>
                    {(must_choose && !blocked).then(|| view! {
                        <span class="hint" hidden=move || !resend.get().is_empty()>"Choose what to send first."</span>
                    })}
                </div>
            })}
        </section>
    }
    .into_any()
}

/// `+1 min 05 s`: a time as an offset from the run's start.
fn offset(t: &time::OffsetDateTime, start: &time::OffsetDateTime) -> String {
    format!("+{}", duration((*t - *start).as_seconds_f64()))
}

/// How the time left was figured, in words.
fn how_left(estimate: &str) -> &'static str {
    match estimate {
        "measured" => "at its measured rate",
        "scaled" => "at the quota, slowed as the measured phases were",
        "quota" => "at the quota (not measured yet)",
        _ => "",
    }
}

/// Why records were skipped, per reason, with a link to the records themselves.
#[component]
fn SkipReasons(p: PhaseStatus, id: MigrationId, run: RunId) -> impl IntoView {
    if p.skipped == 0 {
        return view! { <span>"0"</span> }.into_any();
    }
    let csv = format!(
        "/api/v1/migrations/{id}/imports/{run}/failures.csv?phase={}&state=skipped",
        p.phase
    );
    let first = p
        .skip_reasons
        .first()
        .map(|r| r.reason.clone())
        .unwrap_or_default();
    view! {
        <details class="skip-reasons" data-testid="skip-reasons">
            <summary title=first>{count(p.skipped)}<span class="why">" why?"</span></summary>
            <ul>
                {p.skip_reasons.into_iter().map(|r| view! {
                    <li data-testid="skip-reason"><b>{count(r.count)}</b>{format!(" {}", r.reason)}</li>
                }).collect_view()}
            </ul>
            <a rel="external" download="imshift-skipped-records.csv" href=csv>"The skipped records (CSV)"</a>
        </details>
    }
    .into_any()
}

#[component]
fn PhaseRow(
    p: PhaseStatus,
    id: MigrationId,
    run: RunId,
    retry: ServerAction<RetryImport>,
    may_run: bool,
) -> impl IntoView {
    let done = p.sent + p.failed + p.skipped;
    let rate = if p.qps > 0.0 && p.requests > 0 {
        format!("{:.0} / {:.0} req/s", p.rate, p.qps)
    } else {
        String::new()
    };
    let phase = p.phase.clone();
    let left = if matches!(p.state, PhaseState::Running | PhaseState::Waiting) && p.secs_left > 0.0
    {
        format!(
            " · {} left {}",
            duration(p.secs_left),
            how_left(&p.estimate)
        )
    } else {
        String::new()
    };
    // Phases of independent branches work at the same time, each at its own API's quota.
    let alongside = (p.state == PhaseState::Running && !p.alongside.is_empty())
        .then(|| format!("side by side with {}", p.alongside.join(", ")));
    let skipped = view! { <SkipReasons p=p.clone() id run/> };
    // Eight columns, time left under the bar and Retry beside the failures: the table fits
    // the card at 1280 px.
    view! {
        <tr data-testid="phase" data-phase=p.phase.clone() data-state=p.state.as_str()>
            <td>{p.label.clone()}<div class="hint">{p.note.clone().unwrap_or_else(|| p.api.clone())}</div></td>
            <td><span class=format!("status phase-{}", p.state)>{p.state.as_str()}</span>
                {alongside.map(|a| view! { <div class="hint" data-testid="alongside">{a}</div> })}</td>
            <td class="progress-cell">
                <div class="progress"><span style=format!("width: {:.1}%", pct(done, p.total))></span></div>
                <div class="hint" data-testid="phase-left">{format!("{} of {}{left}", count(done), count(p.total))}</div>
            </td>
            <td class="ok">{p.sent}</td>
            <td class={if p.failed > 0 { "bad" } else { "" }}>
                {p.failed}
                {(may_run && p.failed > 0).then(|| view! {
                    <button class="btn btn-small retry" on:click=move |_| { retry.dispatch(RetryImport { id, run, phase: Some(phase.clone()) }); }>"Retry"</button>
                })}
            </td>
            <td>{skipped}</td>
            <td>{p.pending}</td>
            <td>{rate}{(p.throttled > 0).then(|| view! { <div class="hint">{format!("{} throttled", p.throttled)}</div> })}</td>
        </tr>
    }
    .into_any()
}

/// When each phase worked, as bars on the run's time line, and as a table.
#[component]
fn PhaseTimes(r: ImportRun) -> impl IntoView {
    let start = r.created_at;
    let end = r
        .finished_at
        .or_else(|| r.phases.iter().filter_map(|p| p.finished_at).max())
        .unwrap_or(start);
    let span = (end - start).as_seconds_f64().max(1.0);
    let worked: Vec<PhaseStatus> = r
        .phases
        .into_iter()
        .filter(|p| p.started_at.is_some() && p.state != PhaseState::Skipped)
        .collect();
    let (w, row, label_w) = (720.0, 18.0, 150.0);
    let h = row * worked.len() as f64 + 18.0;
    let x = move |t: &time::OffsetDateTime| {
        label_w + ((*t - start).as_seconds_f64() / span).clamp(0.0, 1.0) * (w - label_w - 10.0)
    };
    let bars = worked
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (a, b) = (p.started_at.unwrap_or(start), p.finished_at.unwrap_or(end));
            let (x0, x1) = (x(&a), x(&b));
            let y = i as f64 * row;
            view! {
                <g data-testid="timeline-phase" data-phase=p.phase.clone()>
                    <text x="0" y=format!("{:.1}", y + 13.0) class="chart-label">{p.label.clone()}</text>
                    <rect x=format!("{x0:.1}") y=format!("{:.1}", y + 3.0) width=format!("{:.1}", (x1 - x0).max(2.0)) height="12"
                        rx="3" class=format!("timeline-bar timeline-{}", p.state)>
                        <title>{format!("{}: {} → {} ({})", p.label, offset(&a, &start), offset(&b, &start), duration(p.elapsed_secs))}</title>
                    </rect>
                </g>
            }
        })
        .collect_view();
    let rows = worked
        .iter()
        .map(|p| {
            let (a, b) = (p.started_at.unwrap_or(start), p.finished_at);
            view! {
                <tr data-testid="phase-time" data-phase=p.phase.clone()>
                    <td>{p.label.clone()}</td>
                    <td title=when_secs(&a)>{offset(&a, &start)}</td>
                    <td title=b.as_ref().map(when_secs)>{b.as_ref().map(|b| offset(b, &start)).unwrap_or_else(|| "—".into())}</td>
                    <td>{duration(p.elapsed_secs)}
                        {(p.preflight_secs > 0.0).then(|| view! { <div class="hint">{format!("preflight {}", duration(p.preflight_secs))}</div> })}</td>
                    <td class="hint">{p.alongside.join(", ")}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <svg class="timeline" data-testid="timeline" viewBox=format!("0 0 {w} {h}") role="img"
            aria-label="When each phase worked, from the start of the run">
            {bars}
            <text x=format!("{label_w}") y=format!("{:.1}", h - 2.0) class="chart-label">"start"</text>
            <text x=format!("{:.1}", w - 10.0) y=format!("{:.1}", h - 2.0) class="chart-label" text-anchor="end">{duration(span)}</text>
        </svg>
        <table class="table phase-times" data-testid="phase-times">
            <thead><tr><th>"Phase"</th><th>"Started"</th><th>"Ended"</th><th>"Took"</th><th>"Side by side with"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

#[component]
fn RunCard(
    r: ImportRun,
    control: ServerAction<ControlImport>,
    retry: ServerAction<RetryImport>,
    may_run: bool,
) -> impl IntoView {
    let (id, run) = (r.migration_id, r.id);
    let finished = !r.state.live();
    let done = r.sent + r.failed + r.skipped;
    let act = move |action: &'static str| {
        move |_| {
            control.dispatch(ControlImport {
                id,
                run,
                action: action.into(),
            });
        }
    };
    // Pause and Cancel take effect at once, but answers to requests already out still arrive
    // and are counted: the state says so until the last one is in.
    let shown_state = match r.settling.as_deref() {
        Some(s) => format!("{s}…"),
        None => r.state.to_string(),
    };
    let status_class = format!(
        "status run-{}",
        if r.settling.is_some() {
            "settling"
        } else {
            r.state.as_str()
        }
    );
    let measured = r
        .phases
        .iter()
        .filter(|p| p.secs_left > 0.0)
        .all(|p| p.estimate == "measured");
    let summary = finished.then(|| {
        let sent_phases: Vec<_> = r.phases.iter().filter(|p| p.requests > 0).cloned().collect();
        // A percentage of a preflight under ten seconds says little: the difference does.
        let verdict = r.preflight_error_pct.map(|e| {
            let off = if r.preflight_secs >= 10.0 {
                format!("{}{:.0}%", if e >= 0.0 { "+" } else { "−" }, e.abs())
            } else {
                let d = r.elapsed_secs - r.preflight_secs;
                format!("{}{}", if d >= 0.0 { "+" } else { "−" }, duration(d.abs()))
            };
            format!(
                "The preflight said {}; it took {}, {off}.",
                duration(r.preflight_secs),
                duration(r.elapsed_secs),
            )
        });
        view! {
            <div class="summary" data-testid="run-summary">
                <p class="lead">{format!(
                    "{} in {}: {} sent, {} failed, {} skipped{}.",
                    r.state.label(),
                    duration(r.elapsed_secs), r.sent, r.failed, r.skipped,
                    if r.pending > 0 { format!(", {} never sent", r.pending) } else { String::new() }
                )}</p>
                {r.hand_over.clone().filter(|h| h.records > 0).map(|h| view! {
                    <p data-testid="run-hand-over">{format!(
                        "Of the skipped, {} messages and group events go in the {} below, not through the target's API.",
                        count(h.records), h.label
                    )}</p>
                })}
                {verdict.map(|v| view! { <p data-testid="preflight-error">{v}</p> })}
                {(r.resend.as_deref() == Some("failed_or_new")).then(|| view! {
                    <p class="hint">"This run sent only what failed or was new; the records earlier runs sent are counted as skipped."</p>
                })}
                <PhaseTimes r=r.clone()/>
                <table class="table">
                    <thead><tr><th>"API"</th><th>"Requests"</th><th>"Achieved"</th><th>"Quota"</th><th>"Of quota"</th></tr></thead>
                    <tbody>
                    {sent_phases.into_iter().map(|p| view! {
                        <tr>
                            <td><code>{p.api.clone()}</code></td>
                            <td>{p.requests}</td>
                            <td>{format!("{:.1}/s", p.rate)}</td>
                            <td>{format!("{:.0}/s", p.qps)}</td>
                            <td>{if p.qps > 0.0 { format!("{:.0} %", p.rate / p.qps * 100.0) } else { String::new() }}</td>
                        </tr>
                    }).collect_view()}
                    </tbody>
                </table>
            </div>
        }
    });
    let timing = (!finished).then(|| {
        let mut t = format!(" · {} elapsed", duration(r.elapsed_secs));
        if r.state == RunState::Running && r.secs_left > 0.0 {
            t.push_str(&format!(
                " · about {} left {}",
                duration(r.secs_left),
                if measured {
                    "at the measured rates"
                } else {
                    "(phases not yet measured at their quotas)"
                }
            ));
        }
        if r.preflight_secs > 0.0 {
            t.push_str(&format!(" · preflight said {}", duration(r.preflight_secs)));
        }
        t
    });
    view! {
        <section class="card" data-testid="run" data-state=r.state.as_str()>
            <div class="card-head">
                <h2>{if finished { "Last import" } else { "Import in progress" }}</h2>
                <span class=status_class data-testid="run-state" title=r.settling.as_ref().map(|_| format!("{} requests were still out; their answers are being counted", r.in_flight))>{shown_state}</span>
            </div>
            <p class="hint" data-testid="run-timing">{format!("Started {} by {}", when(&r.created_at), r.created_by.clone().unwrap_or_default())}
                {timing}</p>
            {r.error.clone().map(|e| view! { <p class="alert alert-error" data-testid="run-error">{e}</p> })}
            <div class="progress big"><span style=format!("width: {:.1}%", pct(done, r.total))></span></div>
            <p class="hint" data-testid="run-counts">{format!("{done} of {} records: {} sent, {} failed, {} skipped, {} pending", r.total, r.sent, r.failed, r.skipped, r.pending)}</p>
            {(may_run && !finished).then(|| view! {
                <div class="button-row">
                    {(r.state == RunState::Running).then(|| view! { <button class="btn" on:click=act("pause") data-testid="pause">"Pause"</button> })}
                    {(r.state == RunState::Paused).then(|| view! { <button class="btn btn-primary" on:click=act("resume") data-testid="resume">"Resume"</button> })}
                    <button class="btn btn-danger" on:click=act("cancel") data-testid="cancel">"Cancel"</button>
                </div>
            })}
            {(may_run && r.failed > 0 && r.state != RunState::Cancelled).then(|| view! {
                <div class="button-row">
                    <button class="btn" on:click=move |_| { retry.dispatch(RetryImport { id, run, phase: None }); }>"Retry every failed record"</button>
                </div>
            })}
            {summary}
            <table class="table phases" data-testid="phases">
                <thead><tr><th>"Phase"</th><th>"State"</th><th>"Progress"</th><th>"Sent"</th><th>"Failed"</th><th>"Skipped"</th><th>"Pending"</th><th>"Rate / quota"</th></tr></thead>
                <tbody>
                {r.phases.into_iter().map(|p| view! { <PhaseRow p id run retry may_run/> }).collect_view()}
                </tbody>
            </table>
        </section>
    }
    .into_any()
}

/// Colours of the chart's series, in order.
const SERIES_COLOURS: [&str; 8] = [
    "#3538cd", "#039855", "#dc6803", "#7a5af8", "#0086c9", "#c11574", "#4e5ba6", "#667085",
];

/// Requests per second of each API against its quota (as a share of it, so APIs of different
/// quotas share one scale with the quota at 100 %), and failures, over the whole run.
#[component]
fn ThroughputChart(t: ImportThroughput) -> impl IntoView {
    let (w, top, plot_h, fail_h, left, right) = (720.0, 8.0, 140.0, 36.0, 44.0, 8.0);
    let plot_w = w - left - right;
    let span = t.span_secs.max(1) as f64;
    let bucket = t.bucket_secs.max(1) as f64;
    let share = |requests: i64, qps: f64| {
        if qps > 0.0 {
            requests as f64 / bucket / qps
        } else {
            0.0
        }
    };
    let peak = t
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(move |p| share(p.requests, s.qps)))
        .fold(1.2f64, f64::max)
        .min(3.0);
    let x = move |at: i64| left + (at as f64 + bucket / 2.0) / span * plot_w;
    let y = move |v: f64| top + plot_h - (v.min(peak) / peak) * plot_h;
    let quota_y = y(1.0);
    let lines = t
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            // Buckets with nothing between the series' first and last are zeros.
            let (first, last) = (
                s.points.first().map_or(0, |p| p.at),
                s.points.last().map_or(0, |p| p.at),
            );
            let mut pts = vec![];
            let mut it = s.points.iter().peekable();
            let mut at = first;
            while at <= last {
                let v = match it.peek() {
                    Some(p) if p.at == at => {
                        let v = share(p.requests, s.qps);
                        it.next();
                        v
                    }
                    _ => 0.0,
                };
                pts.push(format!("{:.1},{:.1}", x(at), y(v)));
                at += t.bucket_secs.max(1);
            }
            let colour = SERIES_COLOURS[i % SERIES_COLOURS.len()];
            view! {
                <polyline data-testid="series" data-api=s.api.clone() points=pts.join(" ") fill="none"
                    stroke=colour stroke-width="1.5" stroke-linejoin="round">
                    <title>{s.api.clone()}</title>
                </polyline>
            }
        })
        .collect_view();
    // Failures (records recorded as failed) and throttle answers per bucket, every API together.
    let mut fails: std::collections::BTreeMap<i64, (i64, i64)> = Default::default();
    for s in &t.series {
        for p in &s.points {
            let e = fails.entry(p.at).or_default();
            e.0 += p.failed;
            e.1 += p.throttled;
        }
    }
    let fail_peak = fails
        .values()
        .map(|(f, th)| f + th)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let fail_top = top + plot_h + 14.0;
    let bar_w = (plot_w * bucket / span).max(1.0);
    let fail_bars = fails
        .iter()
        .filter(|(_, (f, th))| f + th > 0)
        .map(|(at, (f, th))| {
            let x0 = left + *at as f64 / span * plot_w;
            let hf = *f as f64 / fail_peak * fail_h;
            let ht = *th as f64 / fail_peak * fail_h;
            view! {
                <rect x=format!("{x0:.1}") y=format!("{:.1}", fail_top + fail_h - hf) width=format!("{bar_w:.1}") height=format!("{hf:.1}") class="fail-bar">
                    <title>{format!("+{}: {f} failed, {th} throttled", duration(*at as f64))}</title>
                </rect>
                <rect x=format!("{x0:.1}") y=format!("{:.1}", fail_top + fail_h - hf - ht) width=format!("{bar_w:.1}") height=format!("{ht:.1}") class="throttle-bar"/>
            }
        })
        .collect_view();
    let total_failed: i64 = t.series.iter().map(|s| s.failed).sum();
    let total_throttled: i64 = t.series.iter().map(|s| s.throttled).sum();
    let h = fail_top + fail_h + 16.0;
    let legend = t
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let active = s.points.len() as f64 * bucket;
            let mean = if active > 0.0 { s.requests as f64 / active } else { 0.0 };
            let peak_rate = s.points.iter().map(|p| p.requests).max().unwrap_or(0) as f64 / bucket;
            view! {
                <li data-testid="series-legend" data-api=s.api.clone()>
                    <span class="swatch" style=format!("background: {}", SERIES_COLOURS[i % SERIES_COLOURS.len()])></span>
                    <code>{s.api.clone()}</code>
                    {format!(" · quota {:.0}/s · {:.1}/s while sending, peak {:.1}/s · {} requests", s.qps, mean, peak_rate, count(s.requests))}
                </li>
            }
        })
        .collect_view();
    view! {
        <svg class="chart" data-testid="throughput-chart" viewBox=format!("0 0 {w} {h:.0}") role="img"
            aria-label="Requests per second of each API as a share of its quota, and failures, over the run">
            <line x1=format!("{left}") x2=format!("{:.1}", w - right) y1=format!("{:.1}", top + plot_h) y2=format!("{:.1}", top + plot_h) class="axis"/>
            <line data-testid="quota-line" x1=format!("{left}") x2=format!("{:.1}", w - right) y1=format!("{quota_y:.1}") y2=format!("{quota_y:.1}") class="quota-line"/>
            <text x=format!("{:.1}", left - 4.0) y=format!("{:.1}", quota_y + 4.0) text-anchor="end" class="chart-label">"quota"</text>
            <text x=format!("{:.1}", left - 4.0) y=format!("{:.1}", top + plot_h) text-anchor="end" class="chart-label">"0"</text>
            <text x=format!("{:.1}", left - 4.0) y=format!("{:.1}", top + 8.0) text-anchor="end" class="chart-label">{format!("{:.0}%", peak * 100.0)}</text>
            {lines}
            <g data-testid="failures-chart">
                <text x=format!("{:.1}", left - 4.0) y=format!("{:.1}", fail_top + fail_h) text-anchor="end" class="chart-label">"fails"</text>
                {fail_bars}
            </g>
            <text x=format!("{left}") y=format!("{:.1}", h - 2.0) class="chart-label">"start"</text>
            <text x=format!("{:.1}", w - right) y=format!("{:.1}", h - 2.0) text-anchor="end" class="chart-label">{duration(span)}</text>
        </svg>
        <ul class="chart-legend">
            {legend}
            <li><span class="swatch fail"></span>{format!("failed records: {} · ", count(total_failed))}<span class="swatch throttle"></span>{format!("throttle answers: {}", count(total_throttled))}</li>
        </ul>
    }
    .into_any()
}

/// The run's throughput chart, kept current while the run moves.
#[component]
fn ThroughputCard(
    data: Res<Result<Option<ImportThroughput>, crate::model::ApiError>>,
) -> impl IntoView {
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(Some(t)) if !t.series.is_empty() => view! {
                        <section class="card" data-testid="throughput">
                            <div class="card-head"><h2>"Throughput"</h2>
                                <span class="hint">{format!("requests per second per API against its quota, {}-second steps", t.bucket_secs)}</span></div>
                            <ThroughputChart t/>
                        </section>
                    }.into_any(),
                    Ok(_) => ().into_any(),
                    Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
    .into_any()
}

/// The records the target refused, by phase and code, fifty at a time.
#[component]
fn Failures(id: MigrationId, run: RunId, phases: Vec<String>) -> impl IntoView {
    if phases.is_empty() {
        return ().into_any();
    }
    let phase = RwSignal::new(String::new());
    let code = RwSignal::new(String::new());
    let pages = RwSignal::new(vec![None::<String>]);
    let loaded = resource(
        move || (phase.get(), code.get(), pages.get()),
        move |(phase, code, pages)| async move {
            let mut all = vec![];
            for after in pages {
                all.push(
                    import_failures(
                        id,
                        run,
                        (!phase.is_empty()).then_some(phase.clone()),
                        code.trim().parse().ok(),
                        after,
                        false,
                    )
                    .await?,
                );
            }
            Ok::<_, crate::model::ApiError>(all)
        },
    );
    let csv = move || {
        let mut q = vec![];
        if !phase.get().is_empty() {
            q.push(format!("phase={}", phase.get()));
        }
        if let Ok(c) = code.get().trim().parse::<i64>() {
            q.push(format!("code={c}"));
        }
        format!(
            "/api/v1/migrations/{id}/imports/{run}/failures.csv?{}",
            q.join("&")
        )
    };
    view! {
        <section class="card" data-testid="failures">
            <div class="card-head">
                <h2>"Failed records"</h2>
                <a class="btn btn-small" rel="external" download="imshift-import-failures.csv" href=csv>"Export CSV"</a>
            </div>
            <div class="filters">
                <label>"Phase"
                    <select on:change=move |ev| { phase.set(event_target_value(&ev)); pages.set(vec![None]); }>
                        <option value="">"Every phase"</option>
                        {phases.into_iter().map(|p| view! { <option value=p.clone()>{p.clone()}</option> }).collect_view()}
                    </select>
                </label>
                <label>"Error code"
                    <input type="text" inputmode="numeric" placeholder="e.g. 10004" on:change=move |ev| { code.set(event_target_value(&ev)); pages.set(vec![None]); }/>
                </label>
            </div>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match loaded.await {
                        Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                        Ok(pages_loaded) => {
                            let next = pages_loaded.last().and_then(|p| p.next.clone());
                            let rows: Vec<_> = pages_loaded.into_iter().flat_map(|p| p.failures).collect();
                            if rows.is_empty() {
                                return view! { <EmptyState title="Nothing matches"><p>"No failed record matches these filters."</p></EmptyState> }.into_any();
                            }
                            view! {
                                <table class="table examples">
                                    <thead><tr><th>"Phase"</th><th>"Where"</th><th>"Code"</th><th>"Why"</th><th>"Tries"</th></tr></thead>
                                    <tbody>
                                    {rows.into_iter().map(|f| view! {
                                        <tr>
                                            <td>{f.phase}</td>
                                            <td class="nowrap where">{format!("{}:{}", f.file, f.line)}</td>
                                            <td>{f.code.map(|c| c.to_string())}</td>
                                            <td>{f.message}<pre class="excerpt">{f.record}</pre></td>
                                            <td>{f.attempts}</td>
                                        </tr>
                                    }).collect_view()}
                                    </tbody>
                                </table>
                                {next.map(|n| view! { <button class="btn" on:click=move |_| pages.update(|p| p.push(Some(n.clone())))>"More"</button> })}
                            }.into_any()
                        }
                    }
                })}
            </Transition>
        </section>
    }
    .into_any()
}

/// Files the target's own staff import for what its API cannot take (a target that imports history only from files):
/// Build, follow the build, then download each file, its manifest and what was kept aside.
/// Hidden when the target takes everything through its API.
#[component]
fn HandOver(id: MigrationId, may_run: bool) -> impl IntoView {
    let build = ServerAction::<BuildHandOver>::new();
    let tick = RwSignal::new(0u32);
    let latest = resource(
        move || (build.version().get(), tick.get()),
        move |_| async move { hand_over(id).await },
    );
    // While a build runs, look again every two seconds.
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if let Some(Ok(Some(b))) = latest.get() {
            if b.state == "building" {
                set_timeout(
                    move || tick.update(|t| *t += 1),
                    std::time::Duration::from_secs(2),
                );
            }
        }
    });
    view! {
        {action_error(build.value())}
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let b = match latest.await {
                    Ok(Some(b)) => b,
                    Ok(None) => return ().into_any(),
                    Err(e) => return view! { <ErrorNote error=e/> }.into_any(),
                };
                let building = b.state == "building";
                let files: Vec<(String, i64, i64, String)> = b
                    .manifest
                    .as_ref()
                    .and_then(|m| m.get("files"))
                    .and_then(|f| f.as_array())
                    .map(|f| {
                        f.iter()
                            .map(|f| {
                                (
                                    f["name"].as_str().unwrap_or_default().to_string(),
                                    f["lines"].as_i64().unwrap_or(0),
                                    f["bytes"].as_i64().unwrap_or(0),
                                    f["sha256"].as_str().unwrap_or_default().to_string(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let base = format!("/api/v1/migrations/{id}/hand-over/{}", b.id);
                let status = match b.state.as_str() {
                    "none" => "Not built yet.".to_string(),
                    "building" => format!("Building… (started by {} at {})", b.created_by, when_secs(&b.created_at)),
                    "failed" => format!("The build failed: {}", b.error.clone().unwrap_or_default()),
                    _ => format!(
                        "Built from what was staged at {}: {} records in {} files{}.",
                        when_secs(&b.created_at),
                        count(b.written),
                        count(files.len() as i64),
                        if b.kept_aside > 0 { format!(", {} kept aside", count(b.kept_aside)) } else { String::new() }
                    ),
                };
                let ready = b.state == "ready";
                view! {
                    <section class="card" data-testid="hand-over">
                        <div class="card-head">
                            <h2>{b.label.clone()}</h2>
                            {may_run.then(|| view! {
                                <ActionForm action=build>
                                    <input type="hidden" name="id" value=id.to_string()/>
                                    <button class="btn btn-small" type="submit" disabled=building>
                                        {if building { "Building…" } else if ready { "Build again" } else { "Build files" }}
                                    </button>
                                </ActionForm>
                            })}
                        </div>
                        <p class="muted">{b.note.clone()}</p>
                        <p data-testid="hand-over-status">{status}</p>
                        {(ready && !files.is_empty()).then(|| view! {
                            <table class="table">
                                <thead><tr><th>"File"</th><th class="num">"Lines"</th><th class="num">"Size"</th><th>"SHA-256"</th></tr></thead>
                                <tbody>
                                {files.into_iter().map(|(name, lines, size, sha)| {
                                    let href = format!("{base}/{name}");
                                    view! {
                                        <tr>
                                            <td>{if may_run {
                                                view! { <a rel="external" download=name.clone() href=href.clone()>{name.clone()}</a> }.into_any()
                                            } else { view! { <span>{name.clone()}</span> }.into_any() }}</td>
                                            <td class="num">{count(lines)}</td>
                                            <td class="num">{bytes(size)}</td>
                                            <td class="mono excerpt-line">{sha}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                                </tbody>
                            </table>
                        })}
                        {(ready && may_run).then(|| view! {
                            <p>
                                <a class="btn btn-small" rel="external" download="all-files.zip" data-testid="hand-over-archive" href=format!("{base}/all-files.zip")>"All files (zip)"</a>
                                " "
                                <a class="btn btn-small" rel="external" download="manifest.json" href=format!("{base}/manifest.json")>"Manifest"</a>
                                " "
                                {(b.kept_aside > 0).then(|| view! {
                                    <a class="btn btn-small" rel="external" download="kept_aside.jsonl" href=format!("{base}/kept_aside.jsonl")>{format!("{} kept aside, with why", count(b.kept_aside))}</a>
                                })}
                            </p>
                        })}
                    </section>
                }.into_any()
            })}
        </Transition>
    }
}
