//! The fuzz targets' properties over their committed corpora (`fuzz/corpus`),
//! in every test run: each input the fuzzers kept, findings included, is
//! refused or round-trips to a fixpoint.

use taskmaster_files::task_file::{generate, parse};
use taskmaster_files::{export, TasksFile};

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let directory = format!("{}/../fuzz/corpus/{target}", env!("CARGO_MANIFEST_DIR"));
    let mut inputs: Vec<(String, Vec<u8>)> = std::fs::read_dir(&directory)
        .unwrap_or_else(|error| panic!("{directory}: {error}"))
        .map(|entry| {
            let path = entry.unwrap().path();
            (path.display().to_string(), std::fs::read(&path).unwrap())
        })
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "{directory} is empty");
    inputs
}

#[test]
fn every_tasks_json_in_the_corpus_round_trips_to_a_fixpoint() {
    for (name, bytes) in corpus("tasks_json") {
        let Ok(file) = TasksFile::parse(&bytes) else {
            continue;
        };
        let plans = file.plans();
        let state: Vec<_> = plans.iter().map(|plan| Some(plan.as_tasks(""))).collect();
        let exported = export(&file, &state);
        let again = TasksFile::parse(exported.as_bytes()).expect("an export is a tasks.json");
        assert_eq!(again.plans(), plans, "{name}: the export plans other tasks");
        assert_eq!(
            export(&again, &state),
            exported,
            "{name}: a second round trip drifts"
        );
    }
}

#[test]
fn every_task_file_in_the_corpus_generates_back_to_itself() {
    for (name, bytes) in corpus("task_file") {
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        let Ok(task) = parse(text) else {
            continue;
        };
        let (_, generated) = generate(&task.to_json(), "txt");
        let again = parse(&generated).unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(
            (again.id, &again.title, again.subtasks.len()),
            (task.id, &task.title, task.subtasks.len()),
            "{name}"
        );
    }
}
