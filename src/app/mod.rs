//! The console's UI (Leptos, rendered on the server and hydrated in the browser).

#[cfg(feature = "hydrate")]
mod browser;
pub mod calls;
pub mod calls_dumps;
pub mod calls_imports;
pub mod calls_migrations;
pub mod calls_sync;
mod components;
mod pages;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::path;

pub fn shell(options: LeptosOptions) -> impl IntoView {
    // Hashed file names when the build made them (the server reads them from hash.txt).
    #[cfg(feature = "ssr")]
    let options = crate::web::assets::resolve(options);
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="referrer" content="same-origin"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options=options.clone()/>
                <HashedStylesheet options id="leptos"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title formatter=|t: String| if t.is_empty() { "imshift".to_string() } else { format!("{t} · imshift") }/>
        <Router>
            <Routes fallback=|| view! { <pages::NotFound/> }>
                <Route path=path!("/login") view=pages::LoginPage/>
                <Route path=path!("/setup") view=pages::SetupPage/>
                <Route path=path!("/invite/:token") view=pages::InvitePage/>
                <ParentRoute path=path!("") view=components::Layout>
                    <Route path=path!("") view=pages::MigrationsPage/>
                    <ParentRoute path=path!("/migrations/:id") view=pages::MigrationPage>
                        <Route path=path!("") view=pages::OverviewTab/>
                        <Route path=path!("/connections") view=pages::ConnectionsTab/>
                        // The tab's old address, for links shared before it was renamed.
                        <Route path=path!("/keys") view=pages::ConnectionsTab/>
                        <Route path=path!("/dumps") view=pages::DumpsTab/>
                        <Route path=path!("/import") view=pages::ImportTab/>
                        <Route path=path!("/sync") view=pages::SyncTab/>
                        <Route path=path!("/verify") view=|| view! { <pages::LaterTab title="Verify" body="Reading the target back to compare it with the dumps is not built yet. What exists today: the Import tab keeps every record's result (sent, skipped, or failed with the target's code and why, listed and exported as CSV, retried from there), and a rehearsal's run summary counts the requests each API took in the sandbox."/> }/>
                    </ParentRoute>
                    <Route path=path!("/audit") view=pages::AuditPage/>
                    <Route path=path!("/team") view=pages::TeamPage/>
                    <Route path=path!("/settings") view=pages::SettingsPage/>
                    <Route path=path!("/api-docs") view=pages::ApiDocsPage/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}
