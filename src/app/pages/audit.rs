//! The audit log: who did what, newest first, filterable, exportable.

use crate::app::calls::{load_audit_facets, load_audit_page};
use crate::app::components::{
    count, resource, when_full, when_secs, EmptyState, ErrorNote, PageHeader,
};
use crate::model::{AuditEntry, AuditQuery};
use leptos::prelude::*;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;
use serde_json::Value;

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
                                    {p.entries.into_iter().map(|e| {
                                        let lines = detail_lines(&e.details);
                                        let json = (!e.details.as_object().is_some_and(|o| o.is_empty()))
                                            .then(|| serde_json::to_string_pretty(&e.details).unwrap_or_default());
                                        view! {
                                            <tr data-testid="audit-row">
                                                <td class="nowrap" title=when_full(&e.at)>{when_secs(&e.at)}</td>
                                                <td>{e.actor.clone()}</td>
                                                <td><code>{e.action.clone()}</code></td>
                                                <td data-testid="audit-target">{target_view(&e)}</td>
                                                <td class="details">
                                                    {(!lines.is_empty()).then(|| view! {
                                                        <ul class="detail-lines">
                                                            {lines.into_iter().map(|(k, v)| view! {
                                                                <li>{(!k.is_empty()).then(|| view! { <span class="detail-key">{k}": "</span> })}{v}</li>
                                                            }).collect_view()}
                                                        </ul>
                                                    })}
                                                    {json.map(|j| view! {
                                                        <details class="detail-json"><summary>"JSON"</summary><pre>{j}</pre></details>
                                                    })}
                                                </td>
                                                <td class="muted">{e.ip.clone().unwrap_or_default()}</td>
                                            </tr>
                                        }
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

/// The first eight characters of an id: enough to tell uploads and runs apart on a page.
fn short_id(id: &str) -> String {
    id.chars().take(8).collect()
}

/// The target by its name, linked to its page; an upload or run in the details by its
/// migration and short id. The raw target stays in the title (and in the CSV).
fn target_view(e: &AuditEntry) -> AnyView {
    let raw = e.target.clone();
    let name = e.target_name.clone().unwrap_or_else(|| e.target.clone());
    let main = match e.target_link.clone() {
        Some(href) => view! { <a href=href title=raw.clone()>{name}</a> }.into_any(),
        None => view! { <span title=raw.clone()>{name}</span> }.into_any(),
    };
    let part = |key: &str, noun: &'static str, tab: &'static str| {
        let id = e.details[key].as_str().map(str::to_string)?;
        let href = e
            .target_link
            .as_ref()
            .filter(|l| l.starts_with("/migrations/"))
            .map(|l| format!("{l}/{tab}"));
        let text = format!("{noun} {}", short_id(&id));
        Some(match href {
            Some(href) => {
                view! { <span class="target-part">" · "<a href=href title=id>{text}</a></span> }
                    .into_any()
            }
            None => view! { <span class="target-part" title=id>" · "{text}</span> }.into_any(),
        })
    };
    let upload = part("upload", "upload", "dumps");
    let run = part("run", "run", "import");
    view! { {main}{upload}{run} }.into_any()
}

/// A detail value as a person reads it: strings bare, times (`…_at` in seconds) as times.
fn detail_value(key: &str, v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".into(),
        Value::Number(n) if key.ends_with("_at") => n
            .as_i64()
            .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
            .map(|t| when_secs(&t))
            .unwrap_or_else(|| n.to_string()),
        // Counts grouped by thousands; ids (`sdkappid`, …) as they are.
        Value::Number(n) if !key.contains("id") => n.as_i64().map_or_else(|| n.to_string(), count),
        Value::Array(a) => a
            .iter()
            .map(|x| detail_value("", x))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// `{from, to}` as `old → new`, when an object has both.
fn change(v: &Value) -> Option<String> {
    let o = v.as_object()?;
    let (from, to) = (o.get("from")?, o.get("to")?);
    Some(format!(
        "{} → {}",
        detail_value("from", from),
        detail_value("to", to)
    ))
}

/// The details as `key: value` lines; a change (`{from, to}`) as `old → new`.
fn detail_lines(details: &Value) -> Vec<(String, String)> {
    let Some(o) = details.as_object() else {
        return match details {
            Value::Null => vec![],
            v => vec![(String::new(), detail_value("", v))],
        };
    };
    if let Some(c) = change(details) {
        let mut lines = vec![(String::new(), c)];
        lines.extend(
            o.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "from" | "to"))
                .map(|(k, v)| (k.replace('_', " "), detail_value(k, v))),
        );
        return lines;
    }
    o.iter()
        .map(|(k, v)| {
            let value = change(v).unwrap_or_else(|| detail_value(k, v));
            (k.replace('_', " "), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn details_read_as_lines_with_changes() {
        let lines = detail_lines(&json!({"from": "viewer", "to": "operator"}));
        assert_eq!(
            lines,
            vec![(String::new(), "viewer → operator".to_string())]
        );
        let lines = detail_lines(
            &json!({"name": {"from": "Old", "to": "New"}, "notes": {"from": "", "to": "x"}}),
        );
        assert_eq!(lines[0], ("name".into(), "Old → New".into()));
        let lines = detail_lines(
            &json!({"role": "viewer", "expires_at": 1_800_000_000, "tokens_revoked": 2}),
        );
        assert!(
            lines.contains(&("expires at".into(), "2027-01-15 08:00:00 UTC".into())),
            "{lines:?}"
        );
        assert!(lines.contains(&("tokens revoked".into(), "2".into())));
        // Counts grouped by thousands, ids as they are.
        let lines = detail_lines(&json!({"bytes": 1_234_567, "sdkappid": 1_400_000_000}));
        assert!(
            lines.contains(&("bytes".into(), "1,234,567".into())),
            "{lines:?}"
        );
        assert!(
            lines.contains(&("sdkappid".into(), "1400000000".into())),
            "{lines:?}"
        );
        assert!(detail_lines(&json!({})).is_empty());
    }
}
