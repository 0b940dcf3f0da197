use crate::app::components::{EmptyState, PageHeader};
use leptos::prelude::*;

#[component]
pub fn MigrationsPage() -> impl IntoView {
    view! {
        <PageHeader title="Migrations" subtitle="Each migration moves one app from its old IM system to a new one."/>
        <EmptyState title="No migrations yet">
            <p>
                "A migration holds a source, a target and their app keys, the dumps you upload, and "
                "the import and sync jobs that move them. Creating migrations arrives in the next release; "
                "meanwhile, invite your team on the "<a href="/team">"Team"</a>" page and create an API "
                "token for your scripts in "<a href="/settings">"Settings"</a>"."
            </p>
        </EmptyState>
    }
}
