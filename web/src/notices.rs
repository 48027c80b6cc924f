//! Messages for the user that outlive the component that raised them (a
//! rolled-back edit, a failed save), shown at the top of every page.

use std::time::Duration;

use leptos::prelude::*;

const NOTICE_LIFETIME: Duration = Duration::from_secs(8);

#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    id: u64,
    text: String,
}

#[derive(Clone, Copy)]
pub struct Notices {
    items: RwSignal<Vec<Notice>>,
    next_id: StoredValue<u64>,
}

impl Notices {
    pub fn provide() {
        provide_context(Notices {
            items: RwSignal::new(Vec::new()),
            next_id: StoredValue::new(1),
        });
    }

    pub fn error(&self, text: impl Into<String>) {
        let id = self.next_id.get_value();
        self.next_id.set_value(id + 1);
        self.items.update(|items| {
            items.push(Notice {
                id,
                text: text.into(),
            })
        });
        let items = self.items;
        set_timeout(
            move || items.update(|items| items.retain(|notice| notice.id != id)),
            NOTICE_LIFETIME,
        );
    }
}

pub fn use_notices() -> Notices {
    expect_context::<Notices>()
}

#[component]
pub fn NoticeList() -> impl IntoView {
    let notices = use_notices();
    view! {
        <div class="notices" role="alert" aria-live="assertive">
            <For each=move || notices.items.get() key=|notice| notice.id let:notice>
                <div class="notice">
                    <span class="notice-text">{notice.text.clone()}</span>
                    <button class="link" on:click=move |_| notices.items.update(|items| items.retain(|n| n.id != notice.id))>"Dismiss"</button>
                </div>
            </For>
        </div>
    }
}
