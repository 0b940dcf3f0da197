//! One migration: tabs for its overview, connections, and (as they arrive) dumps, import, sync
//! and verification.

use crate::app::calls_imports::ControlImport;
use crate::app::calls_migrations::{
    get_migration, get_overview, get_providers, get_pulses, ArchiveMigration, UpdateMigration,
};
use crate::app::components::{action_error, can, resource, when, EmptyState, ErrorNote, Res};
use crate::model::{
    ApiError, Migration, MigrationId, MigrationOverview, MigrationPulse, MigrationState, NextStep,
    Permission, ProviderInfo, RunProgress, Strategy,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{Outlet, A};
use leptos_router::hooks::use_params_map;

fn use_id() -> Memo<Option<MigrationId>> {
    let params = use_params_map();
    Memo::new(move |_| params.read().get("id").and_then(|s| s.parse().ok()))
}

#[derive(Clone, Copy)]
struct Current(Res<Result<Migration, crate::model::ApiError>>);

/// The migration's state and newest run as last polled (None until the first answer).
#[derive(Clone, Copy)]
struct Live(RwSignal<Option<MigrationPulse>>);

/// Every two seconds while the page is visible, asks `fetch` and keeps a `Some` answer in
/// `into`; a failed ask keeps the last answer. The pages follow the migration's state this way
/// (one short query a tick) rather than holding a stream open per tab: browsers allow six
/// connections to a host, and a few tabs of streams would stall every other request.
pub(super) fn poll<T, Fut>(fetch: impl Fn() -> Fut + 'static, into: RwSignal<Option<T>>)
where
    T: Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Option<T>, ApiError>> + 'static,
{
    #[cfg(feature = "hydrate")]
    {
        use std::cell::Cell;
        use std::rc::Rc;
        let busy = Rc::new(Cell::new(false));
        let fetch = Rc::new(fetch);
        if let Ok(h) = set_interval_with_handle(
            move || {
                let hidden = web_sys::window()
                    .and_then(|w| w.document())
                    .is_some_and(|d| d.hidden());
                if hidden || busy.get() {
                    return;
                }
                busy.set(true);
                let (busy, fetch) = (busy.clone(), fetch.clone());
                leptos::task::spawn_local(async move {
                    if let Ok(Some(v)) = fetch().await {
                        // The page may have gone meanwhile.
                        let _ = into.try_set(Some(v));
                    }
                    busy.set(false);
                });
            },
            std::time::Duration::from_secs(2),
        ) {
            on_cleanup(move || h.clear());
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (fetch, into);
}

/// A state badge.
pub(super) fn state_badge(state: MigrationState) -> impl IntoView {
    view! { <span class=format!("status state-{state}") data-testid="migration-state" data-state=state.as_str()>{state.label()}</span> }
}

/// A run's progress bar and its numbers.
pub(super) fn run_line(r: &RunProgress) -> String {
    format!(
        "{:.0} % · {} of {} records: {} sent, {} failed, {} skipped",
        r.percent().floor(),
        r.done(),
        r.total,
        r.sent,
        r.failed,
        r.skipped
    )
}

#[component]
pub fn MigrationPage() -> impl IntoView {
    let id = use_id();
    let update = ServerAction::<UpdateMigration>::new();
    let archive = ServerAction::<ArchiveMigration>::new();
    let migration = resource(
        move || (id.get(), update.version().get(), archive.version().get()),
        |(id, _, _)| async move {
            match id {
                Some(id) => get_migration(id).await,
                None => Err(crate::model::ApiError::new(
                    "not_found",
                    "This is not a migration id.",
                )),
            }
        },
    );
    let live = RwSignal::new(None::<MigrationPulse>);
    poll(
        move || async move {
            match id.try_get_untracked().flatten() {
                Some(id) => get_pulses(Some(id)).await.map(|v| v.into_iter().next()),
                None => Ok(None),
            }
        },
        live,
    );
    provide_context(Current(migration));
    provide_context(Live(live));
    provide_context(update);
    provide_context(archive);
    let tab = move |path: &'static str, label: &'static str| {
        view! {
            <A href=move || format!("/migrations/{}{path}", id.get().map(|i| i.to_string()).unwrap_or_default())
               attr:class="tab" exact=true>{label}</A>
        }
    };
    view! {
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match migration.await {
                    Err(e) => view! { <ErrorNote error=e/> <A href="/">"Back to migrations"</A> }.into_any(),
                    Ok(m) => {
                        let (mid, loaded) = (m.id, m.state);
                        // The polled state once it answers for this migration, else the loaded one.
                        let state = move || live.get().filter(|p| p.id == mid).map_or(loaded, |p| p.state);
                        view! {
                        <Title text=m.name.clone()/>
                        <div class="page-header">
                            <p class="crumb"><A href="/">"Migrations"</A>" /"</p>
                            <h1>{m.name.clone()}</h1>
                            <p class="subtitle">
                                {m.source_label.clone()}" → "{m.target_label.clone()}" · "{m.strategy.label()}" · "
                                {move || state_badge(state())}
                            </p>
                        </div>
                    }.into_any()
                    }
                }
            })}
        </Transition>
        <nav class="tabs" aria-label="Migration">
            {tab("", "Overview")}
            {tab("/connections", "Connections")}
            {tab("/dumps", "Dumps")}
            {tab("/import", "Import")}
            {tab("/sync", "Sync")}
            {tab("/verify", "Verify")}
        </nav>
        <Outlet/>
    }
    .into_any()
}

/// What decides whether the Overview's numbers are stale: the state and which run in which state.
fn pulse_key(p: &MigrationPulse) -> impl PartialEq {
    (
        p.state,
        p.run.as_ref().map(|r| (r.id, r.state)),
        p.staged_uploads,
        p.checking,
    )
}

#[component]
pub fn OverviewTab() -> impl IntoView {
    let Current(migration) = expect_context::<Current>();
    let Live(live) = expect_context::<Live>();
    let update = expect_context::<ServerAction<UpdateMigration>>();
    let archive = expect_context::<ServerAction<ArchiveMigration>>();
    let control = ServerAction::<ControlImport>::new();
    let id = use_id();
    let overview = resource(
        move || (id.get(), archive.version().get(), control.version().get()),
        |(id, _, _)| async move {
            match id {
                Some(id) => get_overview(id).await,
                None => Err(ApiError::new("not_found", "This is not a migration id.")),
            }
        },
    );
    // When the polled state or run moves on, the next step and the staged numbers are read again.
    Effect::new(move |_| {
        let Some(p) = live.get() else { return };
        let stale = overview
            .get_untracked()
            .and_then(Result::ok)
            .is_some_and(|o| o.pulse.id == p.id && pulse_key(&o.pulse) != pulse_key(&p));
        if stale {
            overview.refetch();
        }
    });
    // Read in the same boundary as the migration (see the Connections tab for why).
    let providers = resource(|| (), |_| get_providers());
    let may_edit = can(Permission::RunMigrations);
    view! {
        {action_error(control.value())}
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match overview.await {
                    Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                    Ok(o) => view! { <StandingCard o=o.clone()/> <NextStepCard o archive control/> }.into_any(),
                }
            })}
        </Transition>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let providers = providers.await.unwrap_or_default();
                let Ok(m) = migration.await else { return ().into_any() };
                let id = m.id;
                let archived = m.state == crate::model::MigrationState::Archived;
                view! {
                    <section class="card">
                        <h2>"Details"</h2>
                        <dl class="facts">
                            <dt>"Strategy"</dt><dd>{m.strategy.label()}</dd>
                            <dt>"Source"</dt><dd>{m.source_label.clone()}</dd>
                            <dt>"Target"</dt><dd>{m.target_label.clone()}</dd>
                            <dt>"Created"</dt><dd>{when(&m.created_at)}{m.created_by.clone().map(|b| format!(" by {b}"))}</dd>
                        </dl>
                        {(!m.notes.is_empty()).then(|| view! { <p class="notes">{m.notes.clone()}</p> })}
                    </section>
                    {(may_edit && !archived).then(|| view! {
                        <section class="card">
                            <h2>"Edit"</h2>
                            <ActionForm action=update attr:class="stack-form">
                                <input type="hidden" name="id" value=id.to_string()/>
                                <label>"Name"<input type="text" name="name" required maxlength="120" value=m.name.clone()/></label>
                                <label>"Strategy"<select name="strategy">
                                    {Strategy::ALL.iter().map(|s| view! { <option value=s.as_str() selected=*s == m.strategy>{s.label()}</option> }).collect_view()}
                                </select></label>
                                {provider_selects(&providers, &m.source, &m.target)}
                                <label>"Notes"<textarea name="notes" rows="3">{m.notes.clone()}</textarea></label>
                                {action_error(update.value())}
                                <button type="submit" class="btn btn-primary">"Save"</button>
                            </ActionForm>
                        </section>
                    })}
                    {may_edit.then(|| view! {
                        <section class="card">
                            {action_error(archive.value())}
                            <button class="btn" class:btn-danger=!archived on:click=move |_| {
                                archive.dispatch(ArchiveMigration { id, archived: !archived });
                            }>{if archived { "Restore this migration" } else { "Archive this migration" }}</button>
                        </section>
                    })}
                }.into_any()
            })}
        </Transition>
    }
    .into_any()
}

/// "10 accounts, 40 messages"
fn kinds(counts: &std::collections::BTreeMap<String, i64>) -> String {
    let parts: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{n} {}", k.replace('_', " ")))
        .collect();
    parts.join(", ")
}

/// Where the migration stands: keys, what is staged, validation, and the newest run, live.
#[component]
fn StandingCard(o: MigrationOverview) -> impl IntoView {
    let Live(live) = expect_context::<Live>();
    let mid = o.pulse.id;
    let loaded = o.pulse.clone();
    let pulse = move || {
        live.get()
            .filter(|p| p.id == mid)
            .unwrap_or_else(|| loaded.clone())
    };
    let run_pulse = pulse.clone();
    let records: i64 = o.staged.values().sum();
    let staged = if o.staged_uploads == 0 {
        "nothing staged yet".to_string()
    } else {
        format!(
            "{records} records from {} upload{}{}",
            o.staged_uploads,
            if o.staged_uploads == 1 { "" } else { "s" },
            if o.staged.is_empty() {
                String::new()
            } else {
                format!(": {}", kinds(&o.staged))
            }
        )
    };
    let validation = if o.validating {
        "the dumps are being checked…".to_string()
    } else if o.staged_uploads == 0 {
        "—".to_string()
    } else if o.errors == 0 && o.warnings == 0 {
        "no findings".to_string()
    } else {
        format!(
            "{} errors ({} records kept aside, not sent), {} warnings",
            o.errors, o.kept_aside, o.warnings
        )
    };
    view! {
        <section class="card" data-testid="standing">
            <div class="card-head">
                <h2>"Where it stands"</h2>
                {move || state_badge(pulse().state)}
            </div>
            <dl class="facts">
                <dt>"Target keys"</dt>
                <dd>{match (o.keys_set, o.sandbox) {
                    (true, true) => "set: a local sandbox (rehearsal)",
                    (true, false) => "set",
                    (false, _) => "not set yet",
                }}</dd>
                <dt>"Staged"</dt><dd data-testid="staged">{staged}</dd>
                <dt>"Validation"</dt><dd>{validation}</dd>
                <dt>"Last import"</dt>
                <dd data-testid="last-run">{move || match run_pulse().run {
                    None => view! { <span>"none yet"</span> }.into_any(),
                    Some(r) => view! {
                        <div class="run-line" data-state=r.state.as_str()>
                            <span class=format!("status run-{}", r.state)>{r.state.as_str()}</span>
                            <div class="progress"><span style=format!("width: {:.1}%", r.percent())></span></div>
                            <span class="hint">{run_line(&r)}</span>
                            {r.error.clone().map(|e| view! { <p class="hint">{e}</p> })}
                        </div>
                    }.into_any(),
                }}</dd>
            </dl>
        </section>
    }
    .into_any()
}

/// What stands before the next step, and the button for it when this person may take it.
#[component]
fn NextStepCard(
    o: MigrationOverview,
    archive: ServerAction<ArchiveMigration>,
    control: ServerAction<ControlImport>,
) -> impl IntoView {
    let id = o.pulse.id;
    let tab = move |t: &str| format!("/migrations/{id}{t}");
    let run = o.pulse.run.clone();
    let (run_id, failed, error) = run
        .as_ref()
        .map_or((None, 0, None), |r| (Some(r.id), r.failed, r.error.clone()));
    let records: i64 = o.staged.values().sum();
    let operate = can(Permission::RunMigrations);
    let link = |href: String, label: &'static str, primary: bool| {
        view! { <A href=href attr:class=if primary { "btn btn-primary" } else { "btn" }>{label}</A> }.into_any()
    };
    let (detail, buttons): (String, Vec<AnyView>) = match o.next {
        NextStep::Restore => (
            "Archived: it is out of the list and nothing runs. Restore it to work on it again.".into(),
            operate.then(|| view! {
                <button class="btn btn-primary" on:click=move |_| { archive.dispatch(ArchiveMigration { id, archived: false }); }>"Restore"</button>
            }.into_any()).into_iter().collect(),
        ),
        NextStep::SetKeys => (
            if can(Permission::ManageCredentials) {
                "The target's keys come first: your app's, or a local sandbox to rehearse with.".into()
            } else {
                "The target's keys come first; an admin or the owner sets them on the Connections tab.".into()
            },
            can(Permission::ManageCredentials).then(|| link(tab("/connections"), "Set keys", true)).into_iter().collect(),
        ),
        NextStep::UploadDumps => (
            "Nothing is staged: upload the old system's export on the Dumps tab.".into(),
            operate.then(|| link(tab("/dumps"), "Upload dumps", true)).into_iter().collect(),
        ),
        NextStep::WaitValidation => (
            "The dumps are being checked across records; this page follows when the check ends.".into(),
            vec![],
        ),
        NextStep::CheckFailed => (
            format!(
                "Checking the dumps failed{}. A launch waits for a check that finishes: stage a file again (a new check starts), and if it keeps failing, the console's log says why.",
                o.check_error.clone().filter(|e| !e.is_empty()).map(|e| format!(": {e}")).unwrap_or_default()
            ),
            operate.then(|| link(tab("/dumps"), "Go to Dumps", true)).into_iter().collect(),
        ),
        NextStep::ReviewErrors => (
            format!(
                "Validation found {} errors: {} records are kept aside and would not be sent. Fix the export and upload it again, or launch without them.",
                o.errors, o.kept_aside
            ),
            if operate {
                vec![link(tab("/dumps"), "Review on Dumps", true), link(tab("/import"), "Launch without them", false)]
            } else {
                vec![]
            },
        ),
        NextStep::Launch => (
            match (run.as_ref(), o.staged_since_run) {
                (_, n) if n > 0 => format!("{n} uploads were staged after the last import: launch to send them."),
                (Some(r), _) if r.state != crate::model::RunState::Done => format!(
                    "The last import was {}{}. {records} records are staged.",
                    r.state,
                    error.clone().map(|e| format!(": {e}")).unwrap_or_default()
                ),
                _ => format!("{records} records are staged: check the preflight and launch."),
            },
            operate.then(|| link(tab("/import"), "Go to launch", true)).into_iter().collect(),
        ),
        NextStep::Running => (
            "The import is sending; the numbers above follow it. Pace it with the quotas on the Connections tab.".into(),
            if operate {
                vec![link(tab("/import"), "Watch the import", true), link(tab("/connections"), "Adjust quotas", false)]
            } else {
                vec![]
            },
        ),
        NextStep::Resume => (
            format!(
                "The import is paused{}. Nothing is sent until it resumes.",
                error.clone().map(|e| format!(": {e}")).unwrap_or_default()
            ),
            match (operate, run_id) {
                (true, Some(run)) => vec![view! {
                    <button class="btn btn-primary" data-testid="next-resume" on:click=move |_| {
                        control.dispatch(ControlImport { id, run, action: "resume".into() });
                    }>"Resume"</button>
                }.into_any()],
                _ => vec![],
            },
        ),
        NextStep::RetryFailures => (
            format!("The import is done, but the target refused {failed} records: see why, fix, and retry them."),
            operate.then(|| link(tab("/import"), "See the failures", true)).into_iter().collect(),
        ),
        NextStep::Sync => (
            "Everything staged is imported. Two-way sync for coexistence is not built yet.".into(),
            vec![],
        ),
        NextStep::Done => (
            "Everything staged is imported and the target took every record.".into(),
            vec![],
        ),
    };
    view! {
        <section class="card next-step" data-testid="next-step" data-step=o.next.as_str()>
            <h2>"Next step"</h2>
            <p class="lead">{o.next.label()}</p>
            <p class="hint">{detail}</p>
            {(!buttons.is_empty()).then(|| view! { <div class="button-row">{buttons}</div> })}
        </section>
    }
    .into_any()
}

/// The Source and Target selects of a migration form, from the providers the console has.
pub(super) fn provider_selects(
    providers: &[ProviderInfo],
    source: &str,
    target: &str,
) -> impl IntoView {
    let options = |side_ok: fn(&ProviderInfo) -> bool, chosen: &str| {
        providers
            .iter()
            .filter(|p| side_ok(p))
            .map(|p| view! { <option value=p.id.clone() selected=p.id == chosen>{p.label.clone()}</option> })
            .collect_view()
    };
    view! {
        <label>"Source"<select name="source">{options(|p| p.source, source)}</select></label>
        <label>"Target"<select name="target">{options(|p| p.target, target)}</select></label>
    }
}

#[component]
pub fn LaterTab(title: &'static str, body: &'static str) -> impl IntoView {
    view! {
        <section class="card">
            <EmptyState title=title><p>{body}</p></EmptyState>
        </section>
    }
    .into_any()
}
