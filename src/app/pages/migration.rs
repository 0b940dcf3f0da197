//! One migration: tabs for its overview, target keys, and (as they arrive) dumps, import, sync
//! and verification.

use crate::app::calls_migrations::{
    get_keys, get_limits, get_migration, ArchiveMigration, Rehearse, SetKeys, TestKeys,
    UpdateMigration,
};
use crate::app::components::{action_error, can, resource, when, EmptyState, ErrorNote, Res};
use crate::model::{
    ApiError, ApiLimitView, Migration, Permission, SecretHint, SourceKind, Strategy, TargetKind,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{Outlet, A};
use leptos_router::hooks::use_params_map;
use uuid::Uuid;

fn use_id() -> Memo<Option<Uuid>> {
    let params = use_params_map();
    Memo::new(move |_| params.read().get("id").and_then(|s| s.parse().ok()))
}

#[derive(Clone, Copy)]
struct Current(Res<Result<Migration, crate::model::ApiError>>);

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
    provide_context(Current(migration));
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
                    Ok(m) => view! {
                        <Title text=m.name.clone()/>
                        <div class="page-header">
                            <p class="crumb"><A href="/">"Migrations"</A>" /"</p>
                            <h1>{m.name.clone()}</h1>
                            <p class="subtitle">
                                {m.source.label()}" → "{m.target.label()}" · "{m.strategy.label()}" · "
                                <span class=format!("status state-{}", m.state)>{m.state.label()}</span>
                            </p>
                        </div>
                    }.into_any(),
                }
            })}
        </Transition>
        <nav class="tabs" aria-label="Migration">
            {tab("", "Overview")}
            {tab("/keys", "Keys")}
            {tab("/dumps", "Dumps")}
            {tab("/import", "Import")}
            {tab("/sync", "Sync")}
            {tab("/verify", "Verify")}
        </nav>
        <Outlet/>
    }
    .into_any()
}

#[component]
pub fn OverviewTab() -> impl IntoView {
    let Current(migration) = expect_context::<Current>();
    let update = expect_context::<ServerAction<UpdateMigration>>();
    let archive = expect_context::<ServerAction<ArchiveMigration>>();
    let may_edit = can(Permission::RunMigrations);
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let Ok(m) = migration.await else { return ().into_any() };
                let id = m.id;
                let archived = m.state == crate::model::MigrationState::Archived;
                view! {
                    <section class="card">
                        <h2>"Details"</h2>
                        <dl class="facts">
                            <dt>"Strategy"</dt><dd>{m.strategy.label()}</dd>
                            <dt>"Source"</dt><dd>{m.source.label()}</dd>
                            <dt>"Target"</dt><dd>{m.target.label()}</dd>
                            <dt>"Target keys"</dt><dd>{if m.keys_set { "set" } else { "not set yet — see the Keys tab" }}</dd>
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
                                <label>"Source"<select name="source">
                                    {SourceKind::ALL.iter().map(|s| view! { <option value=s.as_str() selected=*s == m.source>{s.label()}</option> }).collect_view()}
                                </select></label>
                                <label>"Target"<select name="target">
                                    {TargetKind::ALL.iter().map(|t| view! { <option value=t.as_str() selected=*t == m.target>{t.label()}</option> }).collect_view()}
                                </select></label>
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

fn secret_line(h: Option<SecretHint>) -> String {
    match h {
        Some(h) => format!(
            "set, ends in …{} (by {}, {})",
            h.last4,
            h.set_by,
            when(&h.set_at)
        ),
        None => "not set".into(),
    }
}

#[component]
pub fn KeysTab() -> impl IntoView {
    let id = use_id();
    let set = ServerAction::<SetKeys>::new();
    let test = ServerAction::<TestKeys>::new();
    let rehearse = ServerAction::<Rehearse>::new();
    let keys = resource(
        move || (id.get(), set.version().get(), rehearse.version().get()),
        |(id, _, _)| async move {
            match id {
                Some(id) => get_keys(id).await,
                None => Err(crate::model::ApiError::new(
                    "not_found",
                    "This is not a migration id.",
                )),
            }
        },
    );
    // Read in the same loading boundary as the keys: a boundary nested in this one's content
    // is streamed on its own, and hydrating the page then found other nodes than it rendered
    // (a panic on every direct load of this tab).
    let limits = resource(
        move || id.get(),
        |id| async move {
            match id {
                Some(id) => get_limits(id).await,
                None => Ok(vec![]),
            }
        },
    );
    let manage = can(Permission::ManageCredentials);
    let may_test = can(Permission::RunMigrations);
    view! {
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                let limits = limits.await;
                let (k, regions) = match keys.await {
                    Ok(v) => v,
                    Err(e) => return view! { <ErrorNote error=e/> }.into_any(),
                };
                if k.target != TargetKind::Tencent {
                    return view! {
                        <EmptyState title="Keys for this target arrive later">
                            <p>{format!("{} targets are not supported yet; Tencent IM is.", k.target.label())}</p>
                        </EmptyState>
                    }.into_any();
                }
                let mid = id.get_untracked().map(|i| i.to_string()).unwrap_or_default();
                let region = k.region.clone().unwrap_or_else(|| "china".into());
                let custom_url = if region == "custom" { k.base_url.clone().unwrap_or_default() } else { String::new() };
                view! {
                    <section class="card" data-testid="keys-summary">
                        <h2>"Tencent IM keys"</h2>
                        {k.sandbox.then(|| view! {
                            <p class="alert alert-ok">"These keys point at a local sandbox in this console: a rehearsal, not production."</p>
                        })}
                        <dl class="facts">
                            <dt>"SDKAppID"</dt><dd>{k.sdkappid.map(|v| v.to_string()).unwrap_or_else(|| "not set".into())}</dd>
                            <dt>"API address"</dt><dd><code>{k.base_url.clone().unwrap_or_else(|| "not set".into())}</code></dd>
                            <dt>"Admin identifier"</dt><dd>{k.admin_identifier.clone().unwrap_or_else(|| "not set".into())}</dd>
                            <dt>"Secret key"</dt><dd data-testid="secret-hint">{secret_line(k.secret_key.clone())}</dd>
                            <dt>"Callback token"</dt><dd>{secret_line(k.callback_token.clone())}</dd>
                        </dl>
                        {may_test.then(|| view! {
                            <div class="button-row">
                                <button class="btn btn-primary" disabled=k.secret_key.is_none() on:click=move |_| {
                                    if let Some(id) = id.get_untracked() { test.dispatch(TestKeys { id }); }
                                }>{move || if test.pending().get() { "Testing…" } else { "Test connection" }}</button>
                                {manage.then(|| view! {
                                    <button class="btn" on:click=move |_| {
                                        if let Some(id) = id.get_untracked() { rehearse.dispatch(Rehearse { id }); }
                                    }>"Rehearse in sandbox"</button>
                                })}
                            </div>
                        })}
                        {action_error(test.value())}
                        {action_error(rehearse.value())}
                        {move || test.value().get().and_then(Result::ok).map(|c| view! {
                            <p class=if c.ok { "alert alert-ok" } else { "alert alert-error" } data-testid="connection-result">
                                {c.message}
                            </p>
                        })}
                    </section>
                    <LimitsCard limits/>
                    {manage.then(|| view! {
                        <section class="card">
                            <h2>{if k.secret_key.is_some() { "Change or rotate keys" } else { "Set keys" }}</h2>
                            <p class="hint">"From the Tencent IM console: Applications → your app → Basic configuration. Secrets are encrypted at rest and never shown again; leave a secret empty to keep the stored one."</p>
                            <ActionForm action=set attr:class="stack-form">
                                <input type="hidden" name="id" value=mid.clone()/>
                                <label>"SDKAppID"<input type="text" name="sdkappid" inputmode="numeric" required value=k.sdkappid.map(|v| v.to_string()).unwrap_or_default()/></label>
                                <label>"Data center"
                                    <select name="region">
                                        {regions.into_iter().map(|r| {
                                            let sel = r.id == region;
                                            view! { <option value=r.id.clone() selected=sel>{format!("{} ({})", r.label, r.base_url)}</option> }
                                        }).collect_view()}
                                        <option value="custom" selected=region == "custom">"Custom URL (private deployment or sandbox)"</option>
                                    </select>
                                </label>
                                <label>"Custom base URL"<input type="url" name="base_url" placeholder="https://… (only for Custom)" value=custom_url/></label>
                                <label>"Admin identifier"<input type="text" name="admin_identifier" required value=k.admin_identifier.clone().unwrap_or_else(|| "administrator".into())/></label>
                                <label>"Secret key"<input type="password" name="secret_key" autocomplete="off" placeholder=if k.secret_key.is_some() { "leave empty to keep" } else { "" }/></label>
                                <label>"Callback token (optional)"<input type="password" name="callback_token" autocomplete="off" placeholder="leave empty to keep"/></label>
                                {action_error(set.value())}
                                <button type="submit" class="btn btn-primary">"Save keys"</button>
                            </ActionForm>
                        </section>
                    })}
                }.into_any()
            })}
        </Transition>
    }
    .into_any()
}

/// The target API's pacing for this migration, read-only here (set it with the REST API).
#[component]
fn LimitsCard(limits: Result<Vec<ApiLimitView>, ApiError>) -> impl IntoView {
    match limits {
        Err(e) => view! { <ErrorNote error=e/> }.into_any(),
        Ok(rows) if rows.is_empty() => ().into_any(),
        Ok(rows) => view! {
            <section class="card" data-testid="limits">
                <h2>"Quotas and batch sizes"</h2>
                <p class="hint">"The provider's documented defaults; imports and sync pace themselves to these. Override per API with "<code>"PUT /api/v1/migrations/{id}/limits"</code>" (lower to spare a shared app, higher for a raised quota)."</p>
                <table class="table">
                    <thead><tr><th>"API"</th><th>"Requests / s"</th><th>"Items / request"</th></tr></thead>
                    <tbody>
                    {rows.into_iter().map(|l| view! {
                        <tr class:overridden=l.overridden>
                            <td><code>{l.api}</code></td>
                            <td>{l.qps}{(l.qps != l.default_qps).then(|| format!(" (default {})", l.default_qps))}</td>
                            <td>{l.batch.map(|b| b.to_string()).unwrap_or_else(|| "1".into())}
                                {(l.batch != l.default_batch).then(|| format!(" (default {})", l.default_batch.unwrap_or(1)))}</td>
                        </tr>
                    }).collect_view()}
                    </tbody>
                </table>
            </section>
        }
        .into_any(),
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
