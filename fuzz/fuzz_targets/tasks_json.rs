//! Any bytes as a `tasks.json` import: refused with a reason, or planned
//! and exported; an export read back plans the same tasks and exports to
//! the same bytes (a fixpoint), so a second round trip never drifts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::Task;
use taskmaster_files::{export, TagPlan, TasksFile};

fn imported(plan: &TagPlan) -> Vec<Task> {
    plan.tasks
        .iter()
        .map(|planned| Task {
            id: planned.id,
            project_id: String::new(),
            title: planned.title.clone(),
            description: planned.description.clone(),
            details: planned.details.clone(),
            test_strategy: planned.test_strategy.clone(),
            status: planned.status,
            priority: planned.priority,
            dependencies: planned.dependencies.clone(),
            assignee_id: None,
            parent_id: planned.parent_id,
            version: 1,
            created_at: String::new(),
            updated_at: String::new(),
        })
        .collect()
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(file) = TasksFile::parse(bytes) else {
        return;
    };
    let plans = file.plans();
    let state: Vec<_> = plans.iter().map(|plan| Some(imported(plan))).collect();
    let exported = export(&file, &state);
    let again = TasksFile::parse(exported.as_bytes()).expect("an export is a tasks.json");
    assert_eq!(again.plans(), plans, "the export plans other tasks");
    assert_eq!(export(&again, &state), exported, "a second round trip drifts");
});
