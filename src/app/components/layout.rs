use super::data::resource;
use crate::app::calls::{get_me, Logout};
use crate::model::{Me, Permission};
use leptos::prelude::*;
use leptos_router::components::{Outlet, Redirect, A};
use leptos_router::hooks::use_location;

/// The signed-in user, provided by the layout to every page inside it.
pub fn use_me() -> Me {
    expect_context::<Me>()
}

/// Whether the signed-in user may do this; the server checks again on every call.
pub fn can(permission: Permission) -> bool {
    use_context::<Me>().is_some_and(|me| me.role.can(permission))
}

#[component]
pub fn Layout() -> impl IntoView {
    let me = resource(|| (), |_| get_me());
    view! {
        <Suspense fallback=|| view! { <div class="loading">"Loading…"</div> }>
            {move || Suspend::new(async move {
                match me.await {
                    Ok(Some(me)) => {
                        provide_context(me.clone());
                        view! { <Frame me/> }.into_any()
                    }
                    Ok(None) => view! { <Redirect path="/login"/> }.into_any(),
                    Err(e) => view! { <div class="error-page">{e.message}</div> }.into_any(),
                }
            })}
        </Suspense>
    }
    .into_any()
}

#[component]
fn Frame(me: Me) -> impl IntoView {
    let logout = ServerAction::<Logout>::new();
    let location = use_location();
    let nav = move |href: &'static str, label: &'static str| {
        let active = move || {
            let p = location.pathname.get();
            if href == "/" {
                p == "/" || p.starts_with("/migrations")
            } else {
                p.starts_with(href)
            }
        };
        view! {
            <A href=href attr:class=move || if active() { "nav-link active" } else { "nav-link" }>
                {label}
            </A>
        }
    };
    view! {
        <div class="frame">
            <aside class="sidebar">
                <div class="brand">
                    <span class="brand-mark">"⇄"</span>
                    <span class="brand-name">"imshift"</span>
                </div>
                <nav>
                    {nav("/", "Migrations")}
                    {nav("/audit", "Audit log")}
                    {nav("/team", "Team")}
                    {nav("/settings", "Settings")}
                    {nav("/api-docs", "API")}
                </nav>
            </aside>
            <div class="main">
                <header class="topbar">
                    <div class="spacer"></div>
                    <div class="who" data-testid="signed-in-user">
                        <span class="who-email">{me.email.clone()}</span>
                        <span class=format!("role-badge role-{}", me.role)>{me.role.label()}</span>
                    </div>
                    <ActionForm action=logout attr:class="inline">
                        <button type="submit" class="btn btn-quiet">"Sign out"</button>
                    </ActionForm>
                </header>
                <main class="content">
                    <Outlet/>
                </main>
            </div>
        </div>
    }
    .into_any()
}
