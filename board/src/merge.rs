//! One project's tasks as a client holds them, merged from REST pages, live
//! events and the user's own optimistic edits.
//!
//! Merging by `version` makes the order of arrival irrelevant: a task is
//! replaced only by a newer version of itself, and a deleted id never comes
//! back (the server never reuses ids), so a REST page read before or after
//! an event gives the same result. The web app's store keeps these maps in
//! signals and calls these functions on them.

use std::collections::{HashMap, HashSet};

use protocol::{Task, TaskPatch};

/// Merges tasks read by REST or received in events; whether anything
/// changed.
pub fn upsert(
    tasks: &mut HashMap<i64, Task>,
    deleted: &HashSet<i64>,
    incoming: impl IntoIterator<Item = Task>,
) -> bool {
    let mut changed = false;
    for task in incoming {
        if deleted.contains(&task.id) {
            continue;
        }
        match tasks.get(&task.id) {
            Some(current) if current.version >= task.version => {}
            _ => {
                tasks.insert(task.id, task);
                changed = true;
            }
        }
    }
    changed
}

/// Forgets task `id` for good: it is gone, and stays gone whatever older
/// copy of it arrives later.
pub fn remove(tasks: &mut HashMap<i64, Task>, deleted: &mut HashSet<i64>, id: i64) {
    deleted.insert(id);
    tasks.remove(&id);
}

/// Shows a local edit at once, before the server confirms it; the task as
/// it was, to put back should the server refuse (`None`: no such task).
pub fn apply_optimistic(
    tasks: &mut HashMap<i64, Task>,
    id: i64,
    edit: impl FnOnce(&mut Task),
) -> Option<Task> {
    let task = tasks.get_mut(&id)?;
    let before = task.clone();
    edit(task);
    Some(before)
}

/// Undoes an optimistic edit, unless a newer version arrived meanwhile
/// (the server's word then stands).
pub fn roll_back(tasks: &mut HashMap<i64, Task>, before: Task) {
    if let Some(current) = tasks.get_mut(&before.id) {
        if current.version <= before.version {
            *current = before;
        }
    }
}

/// `patch` as the server applies it, shown before the server has it (an
/// edit queued while offline, put back on the board after a reload).
pub fn apply_patch(task: &mut Task, patch: &TaskPatch) {
    let TaskPatch {
        title,
        description,
        details,
        test_strategy,
        status,
        priority,
        dependencies,
        assignee_id,
        parent_id,
    } = patch.clone();
    if let Some(title) = title {
        task.title = title;
    }
    if let Some(description) = description {
        task.description = description;
    }
    if let Some(details) = details {
        task.details = details;
    }
    if let Some(test_strategy) = test_strategy {
        task.test_strategy = test_strategy;
    }
    if let Some(status) = status {
        task.status = status;
    }
    if let Some(priority) = priority {
        task.priority = priority;
    }
    if let Some(dependencies) = dependencies {
        task.dependencies = dependencies;
    }
    if let Some(assignee_id) = assignee_id {
        task.assignee_id = assignee_id;
    }
    if let Some(parent_id) = parent_id {
        task.parent_id = parent_id;
    }
}

/// Two edits of one task made while offline, as one: every field `later`
/// sets wins. Sent as one `PATCH` against the version the first edit saw,
/// so the second is not refused as a conflict with the first.
pub fn combine_patches(earlier: TaskPatch, later: TaskPatch) -> TaskPatch {
    TaskPatch {
        title: later.title.or(earlier.title),
        description: later.description.or(earlier.description),
        details: later.details.or(earlier.details),
        test_strategy: later.test_strategy.or(earlier.test_strategy),
        status: later.status.or(earlier.status),
        priority: later.priority.or(earlier.priority),
        dependencies: later.dependencies.or(earlier.dependencies),
        assignee_id: later.assignee_id.or(earlier.assignee_id),
        parent_id: later.parent_id.or(earlier.parent_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use protocol::{Priority, TaskStatus};

    fn task(id: i64, version: i64) -> Task {
        Task {
            id,
            project_id: String::new(),
            title: format!("Task {id} at version {version}"),
            description: String::new(),
            details: String::new(),
            test_strategy: String::new(),
            status: TaskStatus::Pending,
            priority: Priority::Medium,
            dependencies: Vec::new(),
            assignee_id: None,
            parent_id: None,
            version,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn an_older_copy_never_replaces_a_newer_one() {
        let mut tasks = HashMap::new();
        let deleted = HashSet::new();
        assert!(upsert(&mut tasks, &deleted, [task(1, 3)]));
        assert!(!upsert(&mut tasks, &deleted, [task(1, 2), task(1, 3)]));
        assert_eq!(tasks[&1].version, 3);
        assert!(upsert(&mut tasks, &deleted, [task(1, 4)]));
        assert_eq!(tasks[&1].title, "Task 1 at version 4");
    }

    #[test]
    fn a_deleted_task_never_comes_back() {
        let mut tasks = HashMap::new();
        let mut deleted = HashSet::new();
        upsert(&mut tasks, &deleted, [task(1, 1), task(2, 1)]);
        remove(&mut tasks, &mut deleted, 1);
        // A page read before the deletion arrives after it.
        assert!(!upsert(&mut tasks, &deleted, [task(1, 1), task(1, 9)]));
        assert!(!tasks.contains_key(&1));
        assert!(tasks.contains_key(&2));
    }

    #[test]
    fn a_refused_edit_rolls_back_unless_the_server_moved_on() {
        let mut tasks = HashMap::new();
        let deleted = HashSet::new();
        upsert(&mut tasks, &deleted, [task(1, 1), task(2, 1)]);
        let before = apply_optimistic(&mut tasks, 1, |task| task.title = "mine".into()).unwrap();
        assert_eq!(tasks[&1].title, "mine", "shown at once");
        roll_back(&mut tasks, before);
        assert_eq!(tasks[&1].title, "Task 1 at version 1");

        let before = apply_optimistic(&mut tasks, 2, |task| task.title = "mine".into()).unwrap();
        upsert(&mut tasks, &deleted, [task(2, 2)]);
        roll_back(&mut tasks, before);
        assert_eq!(tasks[&2].version, 2, "the newer version stands");
        assert!(apply_optimistic(&mut tasks, 3, |_| {}).is_none());
    }

    #[test]
    fn edits_queued_offline_combine_into_what_the_user_sees() {
        let mut shown = task(1, 4);
        let first = TaskPatch {
            status: Some(TaskStatus::InProgress),
            title: Some("first".into()),
            assignee_id: Some(Some("u1".into())),
            ..TaskPatch::default()
        };
        let second = TaskPatch {
            status: Some(TaskStatus::Done),
            assignee_id: Some(None),
            parent_id: Some(Some(7)),
            ..TaskPatch::default()
        };
        apply_patch(&mut shown, &first);
        apply_patch(&mut shown, &second);

        let combined = combine_patches(first, second);
        let mut sent = task(1, 4);
        apply_patch(&mut sent, &combined);
        assert_eq!(
            sent, shown,
            "one combined patch gives what both edits showed"
        );
        assert_eq!(sent.status, TaskStatus::Done);
        assert_eq!(sent.title, "first");
        assert_eq!(sent.assignee_id, None, "a later null unassigns");
        assert_eq!(sent.parent_id, Some(7));
        assert_eq!(sent.version, 4, "the version is the server's to change");
        // The wire form keeps "unassign" apart from "leave alone".
        let wire = serde_json::to_value(&combined).unwrap();
        assert_eq!(wire["assignee_id"], serde_json::Value::Null);
        assert!(wire.get("description").is_none());
    }

    proptest! {
        /// Whatever order copies and deletions arrive in, the result is the
        /// newest copy of every task not deleted.
        #[test]
        fn the_order_of_arrival_does_not_matter(
            copies in proptest::collection::vec((0i64..20, 1i64..6), 0..80),
            deletions in proptest::collection::hash_set(0i64..20, 0..5),
            seed in any::<u64>(),
        ) {
            let mut arrivals: Vec<Option<Task>> = copies.iter().map(|(id, version)| Some(task(*id, *version))).collect();
            arrivals.extend(deletions.iter().map(|_| None));
            let mut deletions_left: Vec<i64> = deletions.iter().copied().collect();
            deletions_left.sort_unstable();
            // A reproducible shuffle.
            let mut state = seed | 1;
            for at in (1..arrivals.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                arrivals.swap(at, (state % (at as u64 + 1)) as usize);
            }
            let mut tasks = HashMap::new();
            let mut deleted = HashSet::new();
            for arrival in arrivals {
                match arrival {
                    Some(copy) => {
                        upsert(&mut tasks, &deleted, [copy]);
                    }
                    None => {
                        let id = deletions_left.pop().unwrap();
                        remove(&mut tasks, &mut deleted, id);
                    }
                }
            }
            let mut expected: HashMap<i64, i64> = HashMap::new();
            for (id, version) in &copies {
                if !deletions.contains(id) {
                    let newest = expected.entry(*id).or_insert(*version);
                    *newest = (*newest).max(*version);
                }
            }
            let got: HashMap<i64, i64> = tasks.iter().map(|(id, task)| (*id, task.version)).collect();
            prop_assert_eq!(got, expected);
        }
    }
}
