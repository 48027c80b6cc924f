//! Who is in a project, and inviting someone by email with a role.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::{lazy_route, LazyRoute};
use protocol::{AddMemberRequest, Items, Member, Role};

use crate::api;
use crate::store::use_store;

/// Loaded on first visit, like the task page.
pub struct MembersRoute;

#[lazy_route]
impl LazyRoute for MembersRoute {
    fn data() -> Self {
        MembersRoute
    }

    fn view(_this: Self) -> AnyView {
        view! { <Members/> }.into_any()
    }
}

#[component]
pub fn Members() -> impl IntoView {
    let store = use_store();
    let email = RwSignal::new(String::new());
    let role = RwSignal::new(Role::Editor);
    let message = RwSignal::new(None::<(bool, String)>);
    let invite = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let request = AddMemberRequest {
            email: email.get_untracked(),
            role: role.get_untracked(),
        };
        spawn_local(async move {
            let path = format!("/api/v1/projects/{}/members", store.id());
            match api::post::<Member>(&path, &request).await {
                Ok(member) => {
                    message.set(Some((
                        true,
                        format!("{} is now {}.", member.user.name, member.role.as_str()),
                    )));
                    email.set(String::new());
                    if let Ok(members) = api::get::<Items<Member>>(&path).await {
                        store.members.set(members.items);
                    }
                }
                Err(failure) => message.set(Some((false, failure.message))),
            }
        });
    };
    view! {
        <section class="card">
            <h2>"Members"</h2>
            <ul class="members">
                <For each=move || store.members.get() key=|m| (m.user.id.clone(), m.role) let:member>
                    <li>{member.user.name.clone()} " " <span class="muted">{format!("{} · {}", member.user.email, member.role.as_str())}</span></li>
                </For>
            </ul>
            <form class="inline" on:submit=invite>
                <input type="email" name="invite-email" placeholder="Email of an existing user" aria-label="Email of the person to invite" required
                    prop:value=email on:input=move |ev| email.set(event_target_value(&ev))/>
                <select name="invite-role" aria-label="Their role" prop:value=move || role.get().as_str().to_owned()
                    on:change=move |ev| if let Ok(value) = event_target_value(&ev).parse() { role.set(value) }>
                    {Role::ALL.iter().map(|r| view! { <option value=r.as_str()>{r.as_str()}</option> }).collect_view()}
                </select>
                <button type="submit">"Invite"</button>
            </form>
            {move || message.get().map(|(ok, text)| view! {
                <p class=if ok { "success" } else { "error" } role="status">{text}</p>
            })}
        </section>
    }
}
