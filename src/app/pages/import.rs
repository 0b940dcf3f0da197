//! A migration's Import tab: the preflight (what will be sent where, how long the quotas make
//! it take, what validation left aside), Launch, then live per-phase progress with the rate
//! against the quota and the time left, pause / resume / cancel, retry of failed records, the
//! failures table and the finished run's summary.

use crate::app::calls_imports::{
    import_failures, import_preflight, import_runs, ControlImport, LaunchImport, RetryImport,
};
use crate::app::components::{action_error, can, duration, resource, when, EmptyState, ErrorNote};
use crate::model::{ImportRun, Permission, PhaseStatus, Preflight};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use uuid::Uuid;

fn use_id() -> Memo<Option<Uuid>> {
    let params = use_params_map();
    Memo::new(move |_| params.read().get("id").and_then(|s| s.parse().ok()))
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
    Effect::new(move |_| {
        if let Some(Ok(list)) = runs.get() {
            live.set(list.first().cloned());
        }
    });
    #[cfg(feature = "hydrate")]
    {
        let source = StoredValue::new_local(None::<web_sys::EventSource>);
        let watching = RwSignal::new(None::<Uuid>);
        Effect::new(move |_| {
            let run = live.get();
            let moving = run
                .as_ref()
                .filter(|r| r.state == "running" || r.state == "paused")
                .map(|r| (r.migration_id, r.id));
            let want = moving.map(|(_, r)| r);
            if want == watching.get_untracked() {
                return;
            }
            if let Some(es) = source.get_value() {
                es.close();
            }
            source.set_value(None);
            watching.set(want);
            if let Some((mid, rid)) = moving {
                use leptos::wasm_bindgen::closure::Closure;
                use leptos::wasm_bindgen::JsCast;
                let url = format!("/api/v1/migrations/{mid}/imports/{rid}/events");
                if let Ok(es) = web_sys::EventSource::new(&url) {
                    let on_status = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
                        move |e: web_sys::MessageEvent| {
                            if let Some(text) = e.data().as_string() {
                                if let Ok(r) = serde_json::from_slice::<ImportRun>(text.as_bytes())
                                {
                                    let over = r.state == "done" || r.state == "cancelled";
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
            let active = run.as_ref().is_some_and(|r| r.state == "running" || r.state == "paused");
            view! {
                {run.clone().map(|r| view! { <RunCard r control retry may_run/> })}
                {(!active).then(|| view! {
                    <Transition fallback=|| view! { <p>"Loading…"</p> }>
                        {move || Suspend::new(async move {
                            match preflight.await {
                                Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                                Ok(None) => ().into_any(),
                                Ok(Some(p)) => view! { <PreflightCard p launch may_run id=id.get_untracked().unwrap_or_default()/> }.into_any(),
                            }
                        })}
                    </Transition>
                })}
                {run.map(|r| view! { <Failures id=r.migration_id run=r.id phases=r.phases.iter().filter(|p| p.failed > 0).map(|p| p.phase.clone()).collect()/> })}
            }
        }}
    }
    .into_any()
}

#[component]
fn PreflightCard(
    p: Preflight,
    launch: ServerAction<LaunchImport>,
    may_run: bool,
    id: Uuid,
) -> impl IntoView {
    let blocked = !p.blockers.is_empty();
    view! {
        <section class="card" data-testid="preflight">
            <div class="card-head">
                <h2>"Launch an import"</h2>
                {p.sandbox.then(|| view! { <span class="status state-ready">"sandbox rehearsal"</span> })}
            </div>
            <p class="lead">
                {format!("{} records to {} at ", p.records, p.target)}<code>{p.base_url.clone()}</code>
                {format!(" · about {} at the quotas (independent phases run at the same time).", duration(p.estimate_secs))}
            </p>
            {p.blockers.iter().map(|b| view! { <p class="alert alert-error" data-testid="blocker">{b.clone()}</p> }).collect_view()}
            {p.warnings.iter().map(|w| view! { <p class="alert alert-warn">{w.clone()}</p> }).collect_view()}
            <table class="table" data-testid="preflight-phases">
                <thead><tr><th>"Phase"</th><th>"API"</th><th>"Records"</th><th>"Requests"</th><th>"Quota"</th><th>"Time"</th></tr></thead>
                <tbody>
                {p.phases.into_iter().map(|ph| view! {
                    <tr class={if ph.note.is_some() { "muted" } else { "" }}>
                        <td>{ph.label.clone()}</td>
                        <td>{match ph.note.clone() {
                            Some(n) => view! { <span class="hint">{format!("skipped: {n}")}</span> }.into_any(),
                            None => view! { <code>{ph.api.clone()}</code> }.into_any(),
                        }}</td>
                        <td>{ph.records}</td>
                        <td>{ph.requests}</td>
                        <td>{(ph.qps > 0.0).then(|| format!("{:.0}/s × {}", ph.qps, ph.batch))}</td>
                        <td>{(ph.secs > 0.0).then(|| duration(ph.secs))}</td>
                    </tr>
                }).collect_view()}
                </tbody>
            </table>
            {may_run.then(|| view! {
                <div class="button-row">
                    <button class="btn btn-primary" disabled=blocked data-testid="launch"
                        on:click=move |_| { launch.dispatch(LaunchImport { id }); }>
                        {move || if launch.pending().get() { "Launching…" } else { "Launch import" }}
                    </button>
                </div>
            })}
        </section>
    }
    .into_any()
}

#[component]
fn PhaseRow(
    p: PhaseStatus,
    id: Uuid,
    run: Uuid,
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
    let left = if p.state == "running" && p.secs_left > 0.0 {
        format!(" · {} left", duration(p.secs_left))
    } else {
        String::new()
    };
    // Eight columns, time left under the bar and Retry beside the failures: the table fits
    // the card at 1280 px.
    view! {
        <tr data-testid="phase" data-phase=p.phase.clone() data-state=p.state.clone()>
            <td>{p.label.clone()}<div class="hint">{p.note.clone().unwrap_or_else(|| p.api.clone())}</div></td>
            <td><span class=format!("status phase-{}", p.state)>{p.state.clone()}</span></td>
            <td class="progress-cell">
                <div class="progress"><span style=format!("width: {:.1}%", pct(done, p.total))></span></div>
                <div class="hint" data-testid="phase-left">{format!("{done} of {}{left}", p.total)}</div>
            </td>
            <td class="ok">{p.sent}</td>
            <td class={if p.failed > 0 { "bad" } else { "" }}>
                {p.failed}
                {(may_run && p.failed > 0).then(|| view! {
                    <button class="btn btn-small retry" on:click=move |_| { retry.dispatch(RetryImport { id, run, phase: Some(phase.clone()) }); }>"Retry"</button>
                })}
            </td>
            <td>{p.skipped}</td>
            <td>{p.pending}</td>
            <td>{rate}{(p.throttled > 0).then(|| view! { <div class="hint">{format!("{} throttled", p.throttled)}</div> })}</td>
        </tr>
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
    let finished = r.state == "done" || r.state == "cancelled";
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
    let summary = finished.then(|| {
        let sent_phases: Vec<_> = r.phases.iter().filter(|p| p.requests > 0).cloned().collect();
        view! {
            <div class="summary" data-testid="run-summary">
                <p class="lead">{format!(
                    "{} in {}: {} sent, {} failed, {} skipped{}.",
                    if r.state == "done" { "Finished" } else { "Cancelled" },
                    duration(r.elapsed_secs), r.sent, r.failed, r.skipped,
                    if r.pending > 0 { format!(", {} never sent", r.pending) } else { String::new() }
                )}</p>
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
    view! {
        <section class="card" data-testid="run" data-state=r.state.clone()>
            <div class="card-head">
                <h2>{if finished { "Last import" } else { "Import in progress" }}</h2>
                <span class=format!("status run-{}", r.state) data-testid="run-state">{r.state.clone()}</span>
            </div>
            <p class="hint">{format!("Started {} by {}", when(&r.created_at), r.created_by.clone().unwrap_or_default())}
                {(!finished).then(|| format!(" · {} elapsed · about {} left", duration(r.elapsed_secs), duration(r.secs_left)))}</p>
            {r.error.clone().map(|e| view! { <p class="alert alert-error" data-testid="run-error">{e}</p> })}
            <div class="progress big"><span style=format!("width: {:.1}%", pct(done, r.total))></span></div>
            <p class="hint" data-testid="run-counts">{format!("{done} of {} records: {} sent, {} failed, {} skipped, {} pending", r.total, r.sent, r.failed, r.skipped, r.pending)}</p>
            {(may_run && !finished).then(|| view! {
                <div class="button-row">
                    {(r.state == "running").then(|| view! { <button class="btn" on:click=act("pause") data-testid="pause">"Pause"</button> })}
                    {(r.state == "paused").then(|| view! { <button class="btn btn-primary" on:click=act("resume") data-testid="resume">"Resume"</button> })}
                    <button class="btn btn-danger" on:click=act("cancel") data-testid="cancel">"Cancel"</button>
                </div>
            })}
            {(may_run && r.failed > 0).then(|| view! {
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

/// The records the target refused, by phase and code, fifty at a time.
#[component]
fn Failures(id: Uuid, run: Uuid, phases: Vec<String>) -> impl IntoView {
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
