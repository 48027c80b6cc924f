//! One project's tasks as the board sees them, merged from REST pages, live
//! events and the user's own optimistic edits, by version
//! (`taskmaster_board::merge`, where the rules and their tests are).

use std::collections::{HashMap, HashSet};

use leptos::prelude::*;
use protocol::{Member, PresenceUser, Project, Task};
use taskmaster_board::merge;

use crate::offline::QueuedEdit;

/// The live connection, as the user should see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Connecting,
    Live,
    /// Dropped; reconnecting.
    Offline,
    /// The server refused to connect us for a reason of its own (not our
    /// credentials); retrying.
    Unavailable,
    /// The server will not let us follow this project (not a member, unknown).
    Refused,
}

/// Progress of the initial load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadState {
    Loading { loaded: usize },
    Ready,
    Failed(String),
}

#[derive(Clone, Copy)]
pub struct ProjectStore {
    pub project_id: StoredValue<String>,
    pub project: RwSignal<Option<Project>>,
    pub tasks: RwSignal<HashMap<i64, Task>>,
    deleted: StoredValue<HashSet<i64>>,
    /// Last event seq applied; the next join asks for what came after it.
    pub last_seq: StoredValue<Option<i64>>,
    pub presence: RwSignal<Vec<PresenceUser>>,
    pub link: RwSignal<LinkState>,
    pub load: RwSignal<LoadState>,
    pub members: RwSignal<Vec<Member>>,
    /// Where this project's copy lives on the device (`offline`): the
    /// signed-in user's and this project's ids.
    pub device_key: StoredValue<Option<String>>,
    /// The seq of the copy on the device, when it is the current one.
    pub saved_seq: StoredValue<Option<i64>>,
    /// Edits shown on the board that the server has not confirmed (being
    /// sent, or queued): while there are any, the copy is not written.
    pub unconfirmed: StoredValue<usize>,
    /// Edits that could not reach the server, oldest first.
    pub queued: RwSignal<Vec<QueuedEdit>>,
    /// Whether the queued edits are being sent now.
    pub sending: StoredValue<bool>,
}

impl ProjectStore {
    pub fn new(project_id: String) -> Self {
        Self {
            device_key: StoredValue::new(crate::offline::device_key(&project_id)),
            project_id: StoredValue::new(project_id),
            project: RwSignal::new(None),
            tasks: RwSignal::new(HashMap::new()),
            deleted: StoredValue::new(HashSet::new()),
            last_seq: StoredValue::new(None),
            presence: RwSignal::new(Vec::new()),
            link: RwSignal::new(LinkState::Connecting),
            load: RwSignal::new(LoadState::Loading { loaded: 0 }),
            members: RwSignal::new(Vec::new()),
            saved_seq: StoredValue::new(None),
            unconfirmed: StoredValue::new(0),
            queued: RwSignal::new(Vec::new()),
            sending: StoredValue::new(false),
        }
    }

    pub fn id(&self) -> String {
        self.project_id.get_value()
    }

    /// Merges tasks read by REST or received in events.
    pub fn upsert(&self, incoming: Vec<Task>) {
        self.deleted.with_value(|deleted| {
            self.tasks.update(|tasks| {
                merge::upsert(tasks, deleted, incoming);
            });
        });
    }

    pub fn remove(&self, id: i64) {
        self.deleted.update_value(|deleted| {
            self.tasks.update(|tasks| merge::remove(tasks, deleted, id));
        });
    }

    /// Shows a local edit at once, before the server confirms it. Returns the
    /// task as it was, to put back if the server refuses.
    pub fn apply_optimistic(&self, id: i64, edit: impl FnOnce(&mut Task)) -> Option<Task> {
        let mut before = None;
        self.tasks.update(|tasks| {
            before = merge::apply_optimistic(tasks, id, edit);
        });
        before
    }

    /// Undoes an optimistic edit, unless a newer version arrived meanwhile.
    pub fn roll_back(&self, before: Task) {
        self.tasks.update(|tasks| merge::roll_back(tasks, before));
    }

    /// Forgets everything (the server's history no longer reaches our seq).
    pub fn reset(&self) {
        self.tasks.set(HashMap::new());
        self.deleted.set_value(HashSet::new());
        self.last_seq.set_value(None);
        self.saved_seq.set_value(None);
        self.load.set(LoadState::Loading { loaded: 0 });
    }

    pub fn task(&self, id: i64) -> Option<Task> {
        self.tasks.with(|tasks| tasks.get(&id).cloned())
    }

    pub fn member_name(&self, user_id: &str) -> Option<String> {
        self.members.with(|members| {
            members
                .iter()
                .find(|member| member.user.id == user_id)
                .map(|member| member.user.name.clone())
        })
    }
}

pub fn use_store() -> ProjectStore {
    expect_context::<ProjectStore>()
}
