//! The caller's projects, and creating one.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::A;
use leptos_router::hooks::use_navigate;
use leptos_router::{lazy_route, LazyRoute};
use protocol::{CreateProjectRequest, Items, Project};

use super::Failure;
use crate::api;

/// The list of projects: a module of its own, preloaded by `index.html`
/// when the page opened is this one, prefetched on idle otherwise. The
/// board stays in the main module: it is where users spend their time.
pub struct ProjectsRoute;

#[lazy_route]
impl LazyRoute for ProjectsRoute {
    fn data() -> Self {
        ProjectsRoute
    }

    fn view(_this: Self) -> AnyView {
        view! { <crate::SignedIn><ProjectList/></crate::SignedIn> }.into_any()
    }
}

#[component]
pub fn ProjectList() -> impl IntoView {
    let projects = LocalResource::new(|| api::get::<Items<Project>>("/api/v1/projects"));
    let name = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let navigate = use_navigate();
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let navigate = navigate.clone();
        spawn_local(async move {
            let request = CreateProjectRequest {
                name: name.get_untracked(),
            };
            match api::post::<Project>("/api/v1/projects", &request).await {
                Ok(project) => navigate(&format!("/projects/{}", project.id), Default::default()),
                Err(failure) => error.set(Some(failure.message)),
            }
        });
    };
    view! {
        <section class="card">
            <h1>"Projects"</h1>
            <form class="inline" on:submit=create>
                <input name="project-name" placeholder="New project name" required
                    prop:value=name on:input=move |ev| name.set(event_target_value(&ev))/>
                <button type="submit">"Create project"</button>
            </form>
            {move || error.get().map(|message| view! { <p class="error" role="alert">{message}</p> })}
            <Suspense fallback=|| view! { <p class="muted">"Loading projects…"</p> }>
                {move || projects.get().map(|result| match result {
                    Ok(list) if list.items.is_empty() => view! {
                        <p class="muted">"No projects yet: create the first one above."</p>
                    }.into_any(),
                    Ok(list) => view! {
                        <ul class="projects">
                            {list.items.into_iter().map(|project| view! {
                                <li><A href=format!("/projects/{}", project.id)>{project.name}</A></li>
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                    Err(failure) => view! {
                        <Failure message=failure.message retry=Callback::new(move |_| projects.refetch())/>
                    }.into_any(),
                })}
            </Suspense>
        </section>
    }
}
