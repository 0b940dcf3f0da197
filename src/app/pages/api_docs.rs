//! A readable page of the REST API, built from the same OpenAPI document scripts download.

use crate::app::calls::api_operations;
use crate::app::components::{resource, ErrorNote, PageHeader};
use leptos::prelude::*;

#[component]
pub fn ApiDocsPage() -> impl IntoView {
    let ops = resource(|| (), |_| api_operations());
    view! {
        <PageHeader title="API" subtitle="Everything the console does, for scripts and CI."/>
        <section class="card">
            <p>
                "Create a token in "<a href="/settings">"Settings"</a>", then: "
            </p>
            <pre class="code">"curl -H 'Authorization: Bearer imshift_pat_…' http://127.0.0.1:3000/api/v1/me"</pre>
            <p>"Errors come back as "<code>"{\"error\": {\"code\": \"…\", \"message\": \"…\"}}"</code>
               " with the matching status. The machine-readable document is "
               <a href="/api/v1/openapi.json" rel="external">"/api/v1/openapi.json"</a>" (OpenAPI 3.1)."</p>
        </section>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match ops.await {
                    Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                    Ok(ops) => {
                        let mut tags: Vec<String> = ops.iter().map(|o| o.tag.clone()).collect();
                        tags.dedup();
                        tags.sort();
                        tags.dedup();
                        tags.into_iter().map(|tag| {
                            let items: Vec<_> = ops.iter().filter(|o| o.tag == tag).cloned().collect();
                            view! {
                                <section class="card">
                                    <h2 class="capitalize">{tag.clone()}</h2>
                                    {items.into_iter().map(|o| view! {
                                        <div class="api-op">
                                            <div class="api-line">
                                                <span class=format!("method method-{}", o.method.to_lowercase())>{o.method.clone()}</span>
                                                <code>{o.path.clone()}</code>
                                            </div>
                                            <p>{o.summary.clone()}</p>
                                            {(!o.params.is_empty()).then(|| view! {
                                                <p class="hint">"Parameters: "{o.params.join("; ")}</p>
                                            })}
                                            <p class="hint">"Answers: "{o.responses.join(", ")}</p>
                                        </div>
                                    }).collect_view()}
                                </section>
                            }
                        }).collect_view().into_any()
                    }
                }
            })}
        </Suspense>
    }
    .into_any()
}
