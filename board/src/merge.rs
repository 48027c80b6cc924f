//! One project's tasks as a client holds them, merged from REST pages, live
//! events and the user's own optimistic edits.
//!
//! Merging by `version` makes the order of arrival irrelevant: a task is
//! replaced only by a newer version of itself, and a deleted id never comes
//! back (the server never reuses ids), so a REST page read before or after
//! an event gives the same result. The web app's store keeps these maps in
//! signals and calls these functions on them.

use std::collections::{HashMap, HashSet};

use protocol::Task;

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
