//! The migration list, with each migration's state at a glance, and the form to start one.

use super::migration::{poll, provider_selects, run_line, state_badge};
use crate::app::calls_migrations::{get_providers, get_pulses, list_migrations, CreateMigration};
use crate::app::components::{
    action_error, can, resource, when, EmptyState, ErrorNote, PageHeader,
};
use crate::model::{MigrationPulse, Permission, Strategy};
use leptos::prelude::*;
use leptos_router::components::A;

#[component]
pub fn MigrationsPage() -> impl IntoView {
    let create = ServerAction::<CreateMigration>::new();
    let list = resource(move || create.version().get(), |_| list_migrations(None));
    // Each migration's state and newest run, loaded with the list and then polled.
    let pulses = resource(move || create.version().get(), |_| get_pulses(None));
    let live = RwSignal::new(None::<Vec<MigrationPulse>>);
    poll(|| async { get_pulses(None).await.map(Some) }, live);
    // A migration created, archived or restored elsewhere: the polled set differs from the
    // listed one, so the list is read again.
    Effect::new(move |_| {
        let Some(ids) = live.with(|l| {
            l.as_ref().map(|l| {
                l.iter()
                    .map(|p| p.id)
                    .collect::<std::collections::BTreeSet<_>>()
            })
        }) else {
            return;
        };
        let listed = list.get_untracked().and_then(Result::ok).map(|l| {
            l.iter()
                .map(|m| m.id)
                .collect::<std::collections::BTreeSet<_>>()
        });
        if listed.is_some_and(|listed| listed != ids) {
            list.refetch();
            pulses.refetch();
        }
    });
    let may_create = can(Permission::RunMigrations);
    let providers = resource(|| (), |_| get_providers());
    view! {
        <PageHeader title="Migrations" subtitle="Each migration moves one app from its old IM system to a new one."/>
        {may_create.then(|| view! {
            <section class="card" data-testid="new-migration">
                <h2>"New migration"</h2>
                <ActionForm action=create attr:class="row-form">
                    <label>"Name"<input type="text" name="name" required maxlength="120" placeholder="Chat app, 2027 move"/></label>
                    <label>"Strategy"
                        <select name="strategy">
                            {Strategy::ALL.iter().map(|s| view! { <option value=s.as_str()>{s.label()}</option> }).collect_view()}
                        </select>
                    </label>
                    <Transition fallback=|| ()>
                        {move || Suspend::new(async move {
                            let providers = providers.await.unwrap_or_default();
                            provider_selects(&providers, "", "")
                        })}
                    </Transition>
                    <button type="submit" class="btn btn-primary">"Create migration"</button>
                </ActionForm>
                {action_error(create.value())}
            </section>
        })}
        <section class="card">
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    let pulses = pulses.await.unwrap_or_default();
                    match list.await {
                        Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                        Ok(list) if list.is_empty() => view! {
                            <EmptyState title="No migrations yet">
                                <p>{if may_create {
                                    "Create one above: name it, pick the old system and the new IM, then set the target's keys."
                                } else {
                                    "An operator or admin creates migrations; they show up here with their progress."
                                }}</p>
                            </EmptyState>
                        }.into_any(),
                        Ok(list) => view! {
                            <table class="table" data-testid="migrations">
                                <thead><tr><th>"Name"</th><th>"Move"</th><th>"Strategy"</th><th>"State"</th><th>"Last import"</th><th>"Created"</th></tr></thead>
                                <tbody>
                                {list.into_iter().map(|m| {
                                    let id = m.id;
                                    let loaded = pulses.iter().find(|p| p.id == id).cloned().unwrap_or(MigrationPulse { id, state: m.state, run: None, staged_uploads: 0, checking: false });
                                    let pulse = move || live.with(|l| l.as_ref().and_then(|l| l.iter().find(|p| p.id == id).cloned())).unwrap_or_else(|| loaded.clone());
                                    let p2 = pulse.clone();
                                    view! {
                                    <tr data-testid="migration-row" data-id=id.to_string()>
                                        <td><A href=format!("/migrations/{}", m.id)>{m.name.clone()}</A></td>
                                        <td>{m.source_label.clone()}" → "{m.target_label.clone()}</td>
                                        <td>{m.strategy.label()}</td>
                                        <td>{move || state_badge(pulse().state)}</td>
                                        <td class="run-cell" data-testid="migration-progress">{move || p2().run.map(|r| view! {
                                            <div class="progress"><span style=format!("width: {:.1}%", r.percent())></span></div>
                                            <div class="hint" title=run_line(&r)>{format!("{:.0} % · {}", r.percent().floor(), r.state)}</div>
                                        })}</td>
                                        <td>{when(&m.created_at)}{m.created_by.map(|b| format!(" by {b}"))}</td>
                                    </tr>
                                }}).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
    .into_any()
}
