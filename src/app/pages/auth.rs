//! The pages people use before they have a session: first-run setup, sign-in, joining.

use crate::app::calls::{get_invite_preview, AcceptInvite, Login, SetupOwner};
use crate::app::components::{action_error, resource, when, ErrorNote};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

#[component]
fn AuthCard(title: &'static str, children: Children) -> impl IntoView {
    view! {
        <Title text=title/>
        <div class="auth-wrap">
            <div class="card auth-card">
                <div class="brand brand-center">
                    <span class="brand-mark">"⇄"</span>
                    <span class="brand-name">"imshift"</span>
                </div>
                <h1>{title}</h1>
                {children()}
            </div>
        </div>
    }
    .into_any()
}

#[component]
pub fn SetupPage() -> impl IntoView {
    let setup = ServerAction::<SetupOwner>::new();
    view! {
        <AuthCard title="Set up imshift">
            <p class="lead">
                "Welcome. Create the owner account: the owner can do everything, including "
                "inviting the rest of the team. This page closes once the owner exists."
            </p>
            <ActionForm action=setup>
                <label>"Email"<input type="email" name="email" required autocomplete="username"/></label>
                <label>"Password"
                    <input type="password" name="password" required minlength="10" autocomplete="new-password" aria-describedby="password-hint"/>
                </label>
                <p class="hint field-hint" id="password-hint">"At least 10 characters; a passphrase is best."</p>
                <label>"Repeat password"<input type="password" name="confirm" required autocomplete="new-password"/></label>
                {action_error(setup.value())}
                <button type="submit" class="btn btn-primary btn-wide">"Create owner account"</button>
            </ActionForm>
        </AuthCard>
    }
    .into_any()
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_else(|| "/".into());
    view! {
        <AuthCard title="Sign in">
            <ActionForm action=login>
                <label>"Email"<input type="email" name="email" required autocomplete="username"/></label>
                <label>"Password"<input type="password" name="password" required autocomplete="current-password"/></label>
                <input type="hidden" name="next" prop:value=next/>
                {action_error(login.value())}
                <button type="submit" class="btn btn-primary btn-wide">"Sign in"</button>
            </ActionForm>
            <p class="hint">"No account? Ask an admin of your team for an invite link."</p>
        </AuthCard>
    }
    .into_any()
}

#[component]
pub fn InvitePage() -> impl IntoView {
    let params = use_params_map();
    let token = move || params.read().get("token").unwrap_or_default();
    let preview = resource(token, get_invite_preview);
    let accept = ServerAction::<AcceptInvite>::new();
    view! {
        <AuthCard title="Join the team">
            <Suspense fallback=|| view! { <p>"Checking the invite…"</p> }>
                {move || Suspend::new(async move {
                    match preview.await {
                        Ok(p) => view! {
                            <p class="lead">
                                "You are invited as "<strong>{p.role.label()}</strong>" ("{p.role.describe()}") "
                                "with the email "<strong data-testid="invite-email">{p.email.clone()}</strong>"."
                            </p>
                            <p class="hint">"This link works once and expires "{when(&p.expires_at)}"."</p>
                            <ActionForm action=accept>
                                <input type="hidden" name="token" prop:value=token/>
                                <label>"Choose a password"
                                    <input type="password" name="password" required minlength="10" autocomplete="new-password"/>
                                </label>
                                <label>"Repeat password"<input type="password" name="confirm" required autocomplete="new-password"/></label>
                                {action_error(accept.value())}
                                <button type="submit" class="btn btn-primary btn-wide">"Join"</button>
                            </ActionForm>
                        }.into_any(),
                        Err(e) => view! {
                            <ErrorNote error=e/>
                            <a class="btn" href="/login">"Go to sign in"</a>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </AuthCard>
    }
    .into_any()
}
