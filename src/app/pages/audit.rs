//! The audit log: who did what, newest first, filterable, exportable.

use crate::app::calls::{load_audit_facets, load_audit_page};
use crate::app::components::{resource, when, EmptyState, ErrorNote, PageHeader};
use crate::model::AuditQuery;
use leptos::prelude::*;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

const FILTERS: [&str; 5] = ["actor", "action", "target", "from", "to"];

fn encode(s: &str) -> String {
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
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let filter = move || {
        let q = query.read();
        let get = |k: &str| q.get(k).filter(|v| !v.trim().is_empty());
        AuditQuery {
            actor: get("actor"),
            action: get("action"),
            target: get("target"),
            from: get("from"),
            to: get("to"),
            before: get("before").and_then(|b| b.parse().ok()),
            limit: None,
        }
    };
    // The filters as a query string, without the cursor.
    let filter_qs = move || {
        let q = query.read();
        FILTERS
            .iter()
            .filter_map(|k| {
                q.get(k)
                    .filter(|v| !v.is_empty())
                    .map(|v| format!("{k}={}", encode(&v)))
            })
            .collect::<Vec<_>>()
            .join("&")
    };
    let page = resource(filter, |q| {
        load_audit_page(q.actor, q.action, q.target, q.from, q.to, q.before)
    });
    let facets = resource(|| (), |_| load_audit_facets());
    let value = move |k: &'static str| move || query.read().get(k).unwrap_or_default();

    view! {
        <PageHeader title="Audit log" subtitle="Every change anyone made, newest first. Nobody can edit or delete it."/>
        <section class="card">
            <Form method="GET" action="" attr:class="filters" attr:data-testid="audit-filters">
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        let f = facets.await.unwrap_or_default();
                        view! {
                            <label>"Who"
                                <select name="actor">
                                    <option value="" prop:selected=move || value("actor")().is_empty()>"Anyone"</option>
                                    {f.actors.into_iter().map(|a| {
                                        let current = value("actor");
                                        // The attribute for the server-rendered page, the property once live.
                                        let (v1, v2) = (a.clone(), a.clone());
                                        view! { <option value=a.clone() selected=move || current() == v1 prop:selected=move || current() == v2>{a.clone()}</option> }
                                    }).collect_view()}
                                </select>
                            </label>
                            <label>"Action"
                                <select name="action">
                                    <option value="" prop:selected=move || value("action")().is_empty()>"Any action"</option>
                                    {f.actions.into_iter().map(|a| {
                                        let current = value("action");
                                        // The attribute for the server-rendered page, the property once live.
                                        let (v1, v2) = (a.clone(), a.clone());
                                        view! { <option value=a.clone() selected=move || current() == v1 prop:selected=move || current() == v2>{a.clone()}</option> }
                                    }).collect_view()}
                                </select>
                            </label>
                        }
                    })}
                </Suspense>
                <label>"Target starts with"<input type="text" name="target" value=value("target") prop:value=value("target") placeholder="e.g. bob@"/></label>
                <label>"From"<input type="date" name="from" value=value("from") prop:value=value("from")/></label>
                <label>"To"<input type="date" name="to" value=value("to") prop:value=value("to")/></label>
                <div class="filter-buttons">
                    <button type="submit" class="btn btn-primary">"Filter"</button>
                    <a class="btn btn-quiet" href="/audit">"Clear"</a>
                    <a class="btn" rel="external" download="imshift-audit.csv" data-testid="audit-export"
                        href=move || format!("/api/v1/audit/export.csv?{}", filter_qs())>"Export CSV"</a>
                </div>
            </Form>
        </section>
        <section class="card">
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match page.await {
                        Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                        Ok(p) if p.entries.is_empty() => view! {
                            <EmptyState title="Nothing matches">
                                <p>"No audit entries match these filters. Widen the time range or clear the filters."</p>
                            </EmptyState>
                        }.into_any(),
                        Ok(p) => {
                            let next = p.next_cursor.map(|c| {
                                let qs = filter_qs();
                                format!("/audit?{}{}before={c}", qs, if qs.is_empty() { "" } else { "&" })
                            });
                            view! {
                                <table class="table audit" data-testid="audit-table">
                                    <thead><tr><th>"When"</th><th>"Who"</th><th>"Action"</th><th>"Target"</th><th>"Details"</th><th>"IP"</th></tr></thead>
                                    <tbody>
                                    {p.entries.into_iter().map(|e| view! {
                                        <tr>
                                            <td class="nowrap">{when(&e.at)}</td>
                                            <td>{e.actor}</td>
                                            <td><code>{e.action}</code></td>
                                            <td>{e.target}</td>
                                            <td class="details"><code>{
                                                if e.details.as_object().is_some_and(|o| o.is_empty()) { String::new() } else { e.details.to_string() }
                                            }</code></td>
                                            <td class="muted">{e.ip.unwrap_or_default()}</td>
                                        </tr>
                                    }).collect_view()}
                                    </tbody>
                                </table>
                                <div class="pager">
                                    {(query.read().get("before").is_some()).then(|| view! {
                                        <a class="btn btn-quiet" href=format!("/audit?{}", filter_qs())>"← Newest"</a>
                                    })}
                                    {next.map(|href| view! { <a class="btn" href=href>"Older →"</a> })}
                                </div>
                            }.into_any()
                        }
                    }
                })}
            </Transition>
        </section>
    }
    .into_any()
}
