//! Team: members and their roles, invites.

use crate::app::calls::{
    list_invites, list_members, CreateInvite, RemoveMember, RevokeInvite, SetRole,
};
use crate::app::components::{
    action_error, can, resource, use_me, when, CopyOnce, EmptyState, ErrorNote, PageHeader,
};
use crate::model::{Invite, InviteStatus, Member, Permission, Role};
use leptos::prelude::*;

#[component]
pub fn TeamPage() -> impl IntoView {
    let manage = can(Permission::ManageTeam);
    let me_id = use_me().id;
    let invite = ServerAction::<CreateInvite>::new();
    let revoke = ServerAction::<RevokeInvite>::new();
    let set_role = ServerAction::<SetRole>::new();
    let remove = ServerAction::<RemoveMember>::new();
    let members = resource(
        move || {
            (
                set_role.version().get(),
                remove.version().get(),
                invite.version().get(),
            )
        },
        |_| list_members(),
    );
    let invites = resource(
        move || (invite.version().get(), revoke.version().get()),
        |_| list_invites(),
    );

    view! {
        <PageHeader title="Team" subtitle="Who can see and run your migrations."/>
        {manage.then(|| view! { <InviteCard invite/> })}
        <section class="card">
            <h2>"Members"</h2>
            {action_error(set_role.value())}
            {action_error(remove.value())}
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match members.await {
                        Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                        Ok(list) => view! {
                            <table class="table" data-testid="members">
                                <thead><tr><th>"Email"</th><th>"Role"</th><th>"Joined"</th>
                                    {manage.then(|| view! { <th></th> })}</tr></thead>
                                <tbody>
                                {list.into_iter().map(|m| {
                                    let editable = manage && m.role != Role::Owner && m.id != me_id;
                                    view! { <MemberRow m editable manage set_role remove/> }
                                }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                    }
                })}
            </Transition>
        </section>
        <section class="card">
            <h2>"Invites"</h2>
            {action_error(revoke.value())}
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match invites.await {
                        Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                        Ok(list) if list.is_empty() => view! {
                            <EmptyState title="No invites yet">
                                <p>{if manage { "Invite your team above: each person gets a one-time link." }
                                    else { "Admins invite people; their invites show up here." }}</p>
                            </EmptyState>
                        }.into_any(),
                        Ok(list) => view! {
                            <table class="table" data-testid="invites">
                                <thead><tr><th>"Email"</th><th>"Role"</th><th>"Status"</th><th>"Invited by"</th><th>"Expires"</th>
                                    {manage.then(|| view! { <th></th> })}</tr></thead>
                                <tbody>
                                {list.into_iter().map(|i| view! { <InviteRow i manage revoke/> }).collect_view()}
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

#[component]
fn InviteCard(invite: ServerAction<CreateInvite>) -> impl IntoView {
    let form = NodeRef::<leptos::html::Form>::new();
    // A link made: the form starts over, so the next invite is not sent to the same email.
    Effect::new(move |_| {
        if let Some(Ok(_)) = invite.value().get() {
            #[cfg(feature = "hydrate")]
            if let Some(f) = form.get_untracked() {
                f.reset();
            }
        }
    });
    view! {
        <section class="card" data-testid="invite-form">
            <h2>"Invite someone"</h2>
            <ActionForm action=invite node_ref=form attr:class="row-form">
                <label>"Email"<input type="email" name="email" required placeholder="name@example.com"/></label>
                <label>"Role"
                    <select name="role">
                        {Role::INVITABLE.iter().map(|r| view! {
                            <option value=r.as_str() selected=*r == Role::Viewer>{r.label()}" — "{r.describe()}</option>
                        }).collect_view()}
                    </select>
                </label>
                <button type="submit" class="btn btn-primary">"Create invite link"</button>
            </ActionForm>
            {action_error(invite.value())}
            {move || invite.value().get().and_then(Result::ok).map(|c| view! {
                <CopyOnce label=invite_label(&c.invite) value=c.link testid="invite-link"/>
            })}
        </section>
    }
    .into_any()
}

/// Whom a fresh link is for, as what, and until when: the box outlives the cleared form.
fn invite_label(i: &Invite) -> String {
    format!(
        "Invite link for {} ({}), valid until {}; it works once. Send it to them:",
        i.email,
        i.role.as_str(),
        when(&i.expires_at)
    )
}

#[component]
fn MemberRow(
    m: Member,
    editable: bool,
    manage: bool,
    set_role: ServerAction<SetRole>,
    remove: ServerAction<RemoveMember>,
) -> impl IntoView {
    let id = m.id;
    let role = if editable {
        view! {
            <select aria-label=format!("Role of {}", m.email) on:change=move |ev| {
                if let Ok(role) = event_target_value(&ev).parse::<Role>() {
                    set_role.dispatch(SetRole { id, role });
                }
            }>
                {Role::INVITABLE.iter().map(|r| view! {
                    <option value=r.as_str() selected=*r == m.role>{r.label()}</option>
                }).collect_view()}
            </select>
        }
        .into_any()
    } else {
        view! { <span class=format!("role-badge role-{}", m.role)>{m.role.label()}</span> }
            .into_any()
    };
    view! {
        <tr>
            <td>{m.email.clone()}</td>
            <td>{role}</td>
            <td>{when(&m.created_at)}</td>
            {manage.then(|| view! {
                <td class="actions">
                    {editable.then(|| view! {
                        <button class="btn btn-danger btn-small" on:click=move |_| {
                            remove.dispatch(RemoveMember { id });
                        }>"Remove"</button>
                    })}
                </td>
            })}
        </tr>
    }
    .into_any()
}

#[component]
fn InviteRow(i: Invite, manage: bool, revoke: ServerAction<RevokeInvite>) -> impl IntoView {
    let id = i.id;
    let pending = i.status == InviteStatus::Pending;
    view! {
        <tr>
            <td>{i.email.clone()}</td>
            <td>{i.role.label()}</td>
            <td><span class=format!("status status-{:?}", i.status).to_lowercase()>{format!("{:?}", i.status)}</span></td>
            <td>{i.invited_by.clone().unwrap_or_else(|| "—".into())}</td>
            <td>{when(&i.expires_at)}</td>
            {manage.then(|| view! {
                <td class="actions">{pending.then(|| view! {
                    <button class="btn btn-small" on:click=move |_| {
                        revoke.dispatch(RevokeInvite { id });
                    }>"Revoke"</button>
                })}</td>
            })}
        </tr>
    }
    .into_any()
}
