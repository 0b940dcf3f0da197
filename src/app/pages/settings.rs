//! Settings: your password and your personal API tokens.

use crate::app::calls::{list_tokens, ChangePassword, CreateToken, RevokeToken};
use crate::app::components::{
    action_error, resource, use_me, when, CopyOnce, EmptyState, ErrorNote, PageHeader,
};
use leptos::prelude::*;

#[component]
pub fn SettingsPage() -> impl IntoView {
    let me = use_me();
    let change = ServerAction::<ChangePassword>::new();
    let create = ServerAction::<CreateToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let tokens = resource(
        move || (create.version().get(), revoke.version().get()),
        |_| list_tokens(),
    );
    view! {
        <PageHeader title="Settings" subtitle="Your account and API tokens."/>
        <section class="card">
            <h2>"Your account"</h2>
            <p>"Signed in as "<strong>{me.email.clone()}</strong>" ("{me.role.label()}": "{me.role.describe()}")"</p>
        </section>
        <section class="card">
            <h2>"Change password"</h2>
            <p class="hint">"Changing it signs you out everywhere else and revokes your API tokens."</p>
            <ActionForm action=change attr:class="stack-form">
                <label>"Current password"<input type="password" name="current" required autocomplete="current-password"/></label>
                <label>"New password"<input type="password" name="new" required minlength="10" autocomplete="new-password"/></label>
                <label>"Repeat new password"<input type="password" name="confirm" required autocomplete="new-password"/></label>
                {action_error(change.value())}
                {move || matches!(change.value().get(), Some(Ok(()))).then(|| view! {
                    <p class="alert alert-ok">"Password changed. Other sessions are signed out and your API tokens revoked: create new ones for your scripts."</p>
                })}
                <button type="submit" class="btn btn-primary">"Change password"</button>
            </ActionForm>
        </section>
        <section class="card">
            <h2>"API tokens"</h2>
            <p class="hint">
                "A token acts as you, with your role, on the REST API ("<a href="/api-docs">"see the API"</a>"). "
                "Send it as "<code>"Authorization: Bearer <token>"</code>"."
            </p>
            <ActionForm action=create attr:class="row-form">
                <label>"Name"<input type="text" name="name" required maxlength="100" placeholder="ci-rehearsal"/></label>
                <label class="check"><input type="checkbox" name="can_mint_tokens" value="true"/>" May create tokens"</label>
                <button type="submit" class="btn btn-primary">"Create token"</button>
            </ActionForm>
            {action_error(create.value())}
            {move || create.value().get().and_then(Result::ok).map(|c| view! {
                <CopyOnce label="Your new token:" value=c.secret testid="new-token"/>
            })}
            {action_error(revoke.value())}
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match tokens.await {
                        Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                        Ok(list) if list.is_empty() => view! {
                            <EmptyState title="No tokens">
                                <p>"Create one for each script or CI job, so you can revoke them one by one."</p>
                            </EmptyState>
                        }.into_any(),
                        Ok(list) => view! {
                            <table class="table" data-testid="tokens">
                                <thead><tr><th>"Name"</th><th>"Starts with"</th><th>"Created"</th><th>"Last used"</th><th></th></tr></thead>
                                <tbody>
                                {list.into_iter().map(|t| {
                                    let id = t.id;
                                    view! {
                                        <tr>
                                            <td>{t.name.clone()}</td>
                                            <td><code>{t.prefix.clone()}"…"</code></td>
                                            <td>{when(&t.created_at)}</td>
                                            <td>{t.last_used_at.as_ref().map(when).unwrap_or_else(|| "never".into())}</td>
                                            <td class="actions">{match t.revoked_at {
                                                Some(r) => view! { <span class="muted">"revoked "{when(&r)}</span> }.into_any(),
                                                None => view! {
                                                    <button class="btn btn-small btn-danger" on:click=move |_| {
                                                        revoke.dispatch(RevokeToken { id });
                                                    }>"Revoke"</button>
                                                }.into_any(),
                                            }}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
    .into_any()
}
