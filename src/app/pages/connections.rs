//! The Connections tab: one card per side of the migration, rendered from the field list its
//! provider gives (write-only secrets, Test connection, Rehearse in sandbox), and the target's
//! quota table.

use crate::app::calls_migrations::{
    get_connections, get_limits, Rehearse, SetConnection, SetLimit, TestConnection,
};
use crate::app::components::{action_error, can, resource, when, ErrorNote};
use crate::model::{
    ApiError, ApiLimitView, ConnectionView, FieldKind, FieldSpec, MigrationId, Permission,
    SecretHint, Side,
};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

fn secret_line(h: Option<&SecretHint>) -> String {
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

/// A public value as the card shows it: a choice by its label, anything else as text.
fn shown(f: &FieldSpec, v: Option<&serde_json::Value>) -> String {
    let text = match v {
        None | Some(serde_json::Value::Null) => return "not set".into(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    match f.choices.iter().find(|c| c.id == text) {
        Some(c) => c.label.clone(),
        None => text,
    }
}

/// One side's actions, so each card answers for itself.
#[derive(Clone, Copy)]
struct Actions {
    set: ServerAction<SetConnection>,
    test: ServerAction<TestConnection>,
    rehearse: ServerAction<Rehearse>,
}

impl Actions {
    fn new() -> Self {
        Actions {
            set: ServerAction::new(),
            test: ServerAction::new(),
            rehearse: ServerAction::new(),
        }
    }
}

#[component]
pub fn ConnectionsTab() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| {
        params
            .read()
            .get("id")
            .and_then(|s| s.parse::<MigrationId>().ok())
    });
    let source = Actions::new();
    let target = Actions::new();
    let save_limit = ServerAction::<SetLimit>::new();
    let connections = resource(
        move || {
            (
                id.get(),
                source.set.version().get() + source.rehearse.version().get(),
                target.set.version().get() + target.rehearse.version().get(),
            )
        },
        |(id, _, _)| async move {
            match id {
                Some(id) => get_connections(id).await,
                None => Err(ApiError::new("not_found", "This is not a migration id.")),
            }
        },
    );
    // Read in the same loading boundary as the connections: a boundary nested in this one's
    // content is streamed on its own, and hydrating the page then found other nodes than it
    // rendered (a panic on every direct load of this tab).
    let limits = resource(
        move || (id.get(), save_limit.version().get()),
        |(id, _)| async move {
            match id {
                Some(id) => get_limits(id).await,
                None => Ok(vec![]),
            }
        },
    );
    view! {
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                let limits = limits.await;
                let sides = match connections.await {
                    Ok(v) => v,
                    Err(e) => return view! { <ErrorNote error=e/> }.into_any(),
                };
                let mid = id.get_untracked().unwrap_or(MigrationId::NIL);
                sides.into_iter().map(|c| {
                    let (actions, quotas) = match c.side {
                        Side::Source => (source, None),
                        Side::Target => (target, Some(limits.clone())),
                    };
                    view! {
                        <ConnectionCard c actions id=mid/>
                        {quotas.map(|limits| view! { <LimitsCard limits save=save_limit id=mid/> })}
                    }
                }).collect_view().into_any()
            })}
        </Transition>
    }
    .into_any()
}

#[component]
fn ConnectionCard(c: ConnectionView, actions: Actions, id: MigrationId) -> impl IntoView {
    let manage = can(Permission::ManageCredentials);
    let may_test = can(Permission::RunMigrations);
    let side = c.side;
    let Actions {
        set,
        test,
        rehearse,
    } = actions;
    let title = match side {
        Side::Source => format!("Source: {}", c.provider_label),
        Side::Target => format!("Target: {}", c.provider_label),
    };
    let facts = c
        .fields
        .iter()
        .map(|f| {
            let value = match f.kind {
                FieldKind::Secret => view! {
                    <dd data-testid="secret-hint" data-field=f.id.clone()>{secret_line(c.secrets.get(&f.id))}</dd>
                }
                .into_any(),
                FieldKind::Url if c.values.contains_key(&f.id) => view! {
                    <dd data-field=f.id.clone()><code>{shown(f, c.values.get(&f.id))}</code></dd>
                }
                .into_any(),
                _ => view! { <dd data-field=f.id.clone()>{shown(f, c.values.get(&f.id))}</dd> }.into_any(),
            };
            view! { <dt>{f.label.clone()}</dt> {value} }
        })
        .collect_view();
    // The address imshift calls, unless a field already shows it (a custom base URL).
    let endpoint = c
        .endpoint
        .clone()
        .filter(|e| !c.values.values().any(|v| v.as_str() == Some(e.as_str())));
    let endpoint_missing = c.endpoint.is_none();
    let provider = c.provider.clone();
    let (sandbox, note, complete) = (c.sandbox, c.note.clone(), c.complete);
    let (can_test, can_sandbox) = (c.can_test, c.can_sandbox);
    let form = c.fields.iter().map(|f| field_input(f, &c)).collect_view();
    let has_fields = !c.fields.is_empty();
    let any_secret = !c.secrets.is_empty();
    view! {
        <section class="card" data-testid=format!("connection-{side}") data-provider=provider>
            <h2>{title}</h2>
            {sandbox.then(|| view! {
                <p class="alert alert-ok">"This side points at a local sandbox in this console: a rehearsal, not production."</p>
            })}
            {note.map(|n| view! { <p class="hint">{n}</p> })}
            {has_fields.then(|| view! {
                <dl class="facts" data-testid="keys-summary">
                    {facts}
                    {endpoint.map(|e| view! { <dt>"API address"</dt><dd><code>{e}</code></dd> })}
                    {endpoint_missing.then(|| view! { <dt>"API address"</dt><dd>"not set"</dd> })}
                </dl>
            })}
            {(may_test && (can_test || (manage && can_sandbox))).then(|| view! {
                <div class="button-row">
                    {can_test.then(|| view! {
                        <button class="btn btn-primary" disabled=!complete on:click=move |_| {
                            test.dispatch(TestConnection { id, side });
                        }>{move || if test.pending().get() { "Testing…" } else { "Test connection" }}</button>
                    })}
                    {(manage && can_sandbox).then(|| view! {
                        <button class="btn" on:click=move |_| {
                            rehearse.dispatch(Rehearse { id, side });
                        }>"Rehearse in sandbox"</button>
                    })}
                </div>
            })}
            {action_error(test.value())}
            {action_error(rehearse.value())}
            {move || test.value().get().and_then(Result::ok).map(|r| view! {
                <p class=if r.ok { "alert alert-ok" } else { "alert alert-error" } data-testid="connection-result">
                    {r.message}
                </p>
            })}
            {(manage && has_fields).then(|| view! {
                <h3>{if any_secret { "Change or rotate" } else { "Set the connection" }}</h3>
                <p class="hint">"Secrets are encrypted at rest and never shown again; leave a secret empty to keep the stored one."</p>
                <ActionForm action=set attr:class="stack-form">
                    <input type="hidden" name="id" value=id.to_string()/>
                    <input type="hidden" name="side" value=side.as_str()/>
                    {form}
                    {action_error(set.value())}
                    <button type="submit" class="btn btn-primary">"Save keys"</button>
                </ActionForm>
            })}
        </section>
    }
}

/// One field of the form, named `fields[<id>]` for the server function's map.
fn field_input(f: &FieldSpec, c: &ConnectionView) -> AnyView {
    let name = format!("fields[{}]", f.id);
    let current = match c.values.get(&f.id) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let label = match &f.only_when {
        Some((other, value)) => format!("{} (only when {other} is {value})", f.label),
        None if !f.required => format!("{} (optional)", f.label),
        None => f.label.clone(),
    };
    let help = (!f.help.is_empty()).then(|| view! { <small class="hint">{f.help.clone()}</small> });
    match f.kind {
        FieldKind::Choice => {
            let chosen = if current.is_empty() {
                f.choices.first().map(|c| c.id.clone()).unwrap_or_default()
            } else {
                current
            };
            view! {
                <label>{label}
                    <select name=name>
                        {f.choices.iter().map(|ch| {
                            let text = if ch.detail.is_empty() { ch.label.clone() } else { format!("{} ({})", ch.label, ch.detail) };
                            view! { <option value=ch.id.clone() selected=ch.id == chosen>{text}</option> }
                        }).collect_view()}
                    </select>
                    {help}
                </label>
            }
            .into_any()
        }
        FieldKind::Secret => {
            let placeholder = if c.secrets.contains_key(&f.id) {
                "leave empty to keep"
            } else {
                ""
            };
            view! {
                <label>{label}
                    <input type="password" name=name autocomplete="off" placeholder=placeholder/>
                    {help}
                </label>
            }
            .into_any()
        }
        kind => {
            let (ty, mode) = match kind {
                FieldKind::Url => ("url", "url"),
                FieldKind::Number => ("text", "numeric"),
                _ => ("text", "text"),
            };
            // A Text field's placeholder is its usual value (an admin's default name) and is
            // prefilled; a URL's or a number's is only a hint.
            let unset = !c.values.contains_key(&f.id);
            let value = match (unset, kind) {
                (true, FieldKind::Text) => f.placeholder.clone(),
                _ => current,
            };
            view! {
                <label>{label}
                    <input type=ty inputmode=mode name=name required=f.required && f.only_when.is_none() value=value placeholder=f.placeholder.clone()/>
                    {help}
                </label>
            }
            .into_any()
        }
    }
}

/// The target API's pacing for this migration: per API the rate and batch size in force,
/// editable by whoever may run migrations (a running import follows within seconds).
#[component]
fn LimitsCard(
    limits: Result<Vec<ApiLimitView>, ApiError>,
    save: ServerAction<SetLimit>,
    id: MigrationId,
) -> impl IntoView {
    let may_edit = can(Permission::RunMigrations);
    match limits {
        Err(e) => view! { <ErrorNote error=e/> }.into_any(),
        Ok(rows) if rows.is_empty() => ().into_any(),
        Ok(rows) => view! {
            <section class="card" data-testid="limits">
                <h2>"Quotas and batch sizes"</h2>
                <p class="hint">{if may_edit {
                    "The provider's documented defaults unless changed here; imports and sync pace themselves to these, and a running import follows a change within seconds. Lower to spare a shared app, higher for a raised quota."
                } else {
                    "The provider's documented defaults unless an operator changed them; imports and sync pace themselves to these."
                }}</p>
                {action_error(save.value())}
                {move || save.value().get().and_then(Result::ok).map(|_| view! {
                    <p class="alert alert-ok" data-testid="limits-saved">"Saved. A running import uses the new values within seconds."</p>
                })}
                <table class="table limits">
                    <thead><tr><th>"API"</th><th>"Requests / s"</th><th>"Items / request"</th>{may_edit.then(|| view! { <th></th> })}</tr></thead>
                    <tbody>
                    {rows.into_iter().map(|l| view! { <LimitRow l save id may_edit/> }).collect_view()}
                    </tbody>
                </table>
            </section>
        }
        .into_any(),
    }
}

#[component]
fn LimitRow(
    l: ApiLimitView,
    save: ServerAction<SetLimit>,
    id: MigrationId,
    may_edit: bool,
) -> impl IntoView {
    let qps = RwSignal::new(l.qps.to_string());
    let batch = RwSignal::new(l.batch.map(|b| b.to_string()).unwrap_or_default());
    let has_batch = l.default_batch.is_some();
    let api = l.api.clone();
    let qps_default = (l.qps != l.default_qps).then(|| format!("default {}", l.default_qps));
    let batch_default =
        (l.batch != l.default_batch).then(|| format!("default {}", l.default_batch.unwrap_or(1)));
    let qps_cell = if may_edit {
        view! {
            <input type="number" class="num" min="1" max="100000" required value=l.qps.to_string()
                aria-label=format!("Requests per second for {api}")
                on:input=move |ev| qps.set(event_target_value(&ev))/>
        }
        .into_any()
    } else {
        view! { <span>{l.qps}</span> }.into_any()
    };
    let batch_cell = match (may_edit, has_batch) {
        (true, true) => view! {
            <input type="number" class="num" min="1" max="10000" required value=batch.get_untracked()
                aria-label=format!("Items per request for {api}")
                on:input=move |ev| batch.set(event_target_value(&ev))/>
        }
        .into_any(),
        (_, true) => view! { <span>{batch.get_untracked()}</span> }.into_any(),
        (_, false) => view! { <span title="This API takes one item per request">"1"</span> }.into_any(),
    };
    let buttons = may_edit.then(|| {
        let (a1, a2) = (api.clone(), api.clone());
        view! {
            <td class="nowrap">
                <button class="btn btn-small" aria-label=format!("Save {a1}") on:click=move |_| {
                    save.dispatch(SetLimit {
                        id,
                        api: a1.clone(),
                        qps: Some(qps.get_untracked()),
                        batch: has_batch.then(|| batch.get_untracked()),
                        reset: None,
                    });
                }>"Save"</button>
                {l.overridden.then(|| view! {
                    <button class="btn btn-small btn-quiet" aria-label=format!("Reset {a2} to default") on:click=move |_| {
                        save.dispatch(SetLimit { id, api: a2.clone(), qps: None, batch: None, reset: Some(true) });
                    }>"Reset to default"</button>
                })}
            </td>
        }
    });
    view! {
        <tr class:overridden=l.overridden data-testid="limit" data-api=api.clone()>
            <td><code>{api.clone()}</code></td>
            <td>{qps_cell}{qps_default.map(|d| view! { <div class="hint">{d}</div> })}</td>
            <td>{batch_cell}{batch_default.map(|d| view! { <div class="hint">{d}</div> })}</td>
            {buttons}
        </tr>
    }
    .into_any()
}
