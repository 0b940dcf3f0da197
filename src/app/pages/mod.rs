//! One module per page.

mod api_docs;
mod audit;
mod auth;
mod connections;
mod dumps;
mod import;
mod migration;
mod migrations;
mod settings;
mod sync;
mod team;

pub use api_docs::ApiDocsPage;
pub use audit::AuditPage;
pub use auth::{InvitePage, LoginPage, SetupPage};
pub use connections::ConnectionsTab;
pub use dumps::DumpsTab;
pub use import::ImportTab;
pub use migration::{LaterTab, MigrationPage, OverviewTab};
pub use migrations::MigrationsPage;
pub use settings::SettingsPage;
pub use sync::SyncTab;
pub use team::TeamPage;

use leptos::prelude::*;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(opts) = use_context::<leptos_axum::ResponseOptions>() {
        opts.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <div class="auth-wrap">
            <div class="card auth-card">
                <h1>"Page not found"</h1>
                <p>"There is nothing at this address."</p>
                <a class="btn btn-primary" href="/">"Go to migrations"</a>
            </div>
        </div>
    }
}
