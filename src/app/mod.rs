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
use leptos_router::{lazy_route, path, Lazy, LazyRoute};

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
                        <Route path=path!("/connections") view={Lazy::<ConnectionsRoute>::new()}/>
                        // The tab's old address, for links shared before it was renamed.
                        <Route path=path!("/keys") view={Lazy::<ConnectionsRoute>::new()}/>
                        <Route path=path!("/dumps") view={Lazy::<DumpsRoute>::new()}/>
                        <Route path=path!("/import") view={Lazy::<ImportRoute>::new()}/>
                        <Route path=path!("/sync") view={Lazy::<SyncRoute>::new()}/>
                        <Route path=path!("/verify") view=|| view! { <pages::LaterTab title="Verify" body="Reading the target back to compare it with the dumps is not built yet. What exists today: the Import tab keeps every record's result (sent, skipped, or failed with the target's code and why, listed and exported as CSV, retried from there), and a rehearsal's run summary counts the requests each API took in the sandbox."/> }/>
                    </ParentRoute>
                    <Route path=path!("/audit") view={Lazy::<AuditRoute>::new()}/>
                    <Route path=path!("/team") view={Lazy::<TeamRoute>::new()}/>
                    <Route path=path!("/settings") view=pages::SettingsPage/>
                    <Route path=path!("/api-docs") view=pages::ApiDocsPage/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// The heavy pages, each in WASM modules of its own (`cargo leptos build --split`): a browser
/// downloads the main module and the modules of the page it opens, and the server's first
/// answer names them (`<link rel="preload">`), so they come side by side.
/// Six split points and no more: wasm-split puts the code each set of split points shares in a
/// module of its own, and a page waits for every module it needs (measured: with the list and
/// Overview split too, the Import tab needs 57 modules and is interactive after 810 ms instead
/// of 496). A front with split points must be built with `--split`, in debug too.
macro_rules! split_routes {
    ($($route:ident => $page:path),* $(,)?) => {$(
        struct $route;

        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            fn view(_this: Self) -> AnyView {
                view! { <$page/> }.into_any()
            }
        }
    )*};
}

split_routes! {
    ConnectionsRoute => pages::ConnectionsTab,
    DumpsRoute => pages::DumpsTab,
    ImportRoute => pages::ImportTab,
    SyncRoute => pages::SyncTab,
    AuditRoute => pages::AuditPage,
    TeamRoute => pages::TeamPage,
}
