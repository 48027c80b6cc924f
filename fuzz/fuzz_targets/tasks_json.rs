//! Any bytes as a `tasks.json` import: refused with a reason, or planned
//! and exported; an export read back plans the same tasks and exports to
//! the same bytes (a fixpoint), so a second round trip never drifts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use taskmaster_files::{export, TasksFile};

fuzz_target!(|bytes: &[u8]| {
    let Ok(file) = TasksFile::parse(bytes) else {
        return;
    };
    let plans = file.plans();
    let state: Vec<_> = plans.iter().map(|plan| Some(plan.as_tasks(""))).collect();
    let exported = export(&file, &state);
    let again = TasksFile::parse(exported.as_bytes()).expect("an export is a tasks.json");
    assert_eq!(again.plans(), plans, "the export plans other tasks");
    assert_eq!(export(&again, &state), exported, "a second round trip drifts");
});
