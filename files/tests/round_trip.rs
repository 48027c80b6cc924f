//! Import then export: the file comes back, byte for byte when Task Master
//! wrote it; edits show up as Task Master would write them; what is not a
//! Task Master file is refused with the reason.
//!
//! The fixtures in `tests/files` are written by `node make.mjs` with
//! `JSON.stringify(data, null, 2)`, exactly as Task Master writes them.

use protocol::{Priority, Task, TaskStatus};
use taskmaster_files::json::{self, Json};
use taskmaster_files::{export, export_new, export_tag, FileErrorKind, Format, TagPlan, TasksFile};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/files/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn imported(plan: &TagPlan) -> Vec<Task> {
    plan.as_tasks(&plan.tag)
}

fn state(file: &TasksFile) -> Vec<Option<Vec<Task>>> {
    file.plans()
        .iter()
        .map(|plan| Some(imported(plan)))
        .collect()
}

fn task_mut(tasks: &mut [Task], id: i64) -> &mut Task {
    tasks.iter_mut().find(|task| task.id == id).unwrap()
}

#[test]
fn files_task_master_wrote_come_back_byte_for_byte() {
    for name in ["legacy.json", "tagged.json", "odd.json"] {
        let text = fixture(name);
        let file = TasksFile::parse(text.as_bytes()).unwrap();
        assert_eq!(export(&file, &state(&file)), text, "{name}");
    }
}

#[test]
fn other_layouts_come_back_as_they_were() {
    let four_spaces = "{\n    \"tasks\": [\n        {\n            \"id\": 1,\n            \"title\": \"A\"\n        }\n    ]\n}\n\n";
    let one_line = "{\"tasks\":[{\"id\":\"1\",\"title\":\"A\",\"x\":[1.5,{}]}],\"metadata\":{}}";
    let tabs = "\u{feff}{\n\t\"tasks\": []\n}";
    let nulls = "{\"tasks\":[{\"id\":1,\"title\":\"A\",\"subtasks\":null,\"details\":null,\"dependencies\":null,\"status\":null}]}";
    for text in [four_spaces, one_line, tabs, nulls] {
        let file = TasksFile::parse(text.as_bytes()).unwrap();
        assert_eq!(export(&file, &state(&file)), text);
    }
}

#[test]
fn formats_tags_and_ids() {
    let legacy = TasksFile::parse(fixture("legacy.json").as_bytes()).unwrap();
    assert_eq!(legacy.format(), Format::Legacy);
    assert_eq!(legacy.tags(), ["master"]);
    let plan = legacy.plan(0);
    // Top-level tasks keep their ids; subtasks follow the largest.
    let ids: Vec<(i64, Option<i64>)> = plan.tasks.iter().map(|t| (t.id, t.parent_id)).collect();
    assert_eq!(
        ids,
        [
            (1, None),
            (2, None),
            (4, Some(2)),
            (5, Some(2)),
            (6, Some(2)),
            (3, None)
        ]
    );
    assert_eq!(plan.last_id, 6);
    // Sibling numbers and "P.S" both resolve.
    let handlers = plan.tasks.iter().find(|t| t.title == "Handlers").unwrap();
    assert_eq!(handlers.dependencies, [4]);
    let docs = plan.tasks.iter().find(|t| t.title == "Docs").unwrap();
    assert_eq!(docs.dependencies, [5, 4]);
    let ship = plan.tasks.iter().find(|t| t.id == 3).unwrap();
    assert_eq!(ship.dependencies, [2, 6]);
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);

    let tagged = TasksFile::parse(fixture("tagged.json").as_bytes()).unwrap();
    assert_eq!(tagged.format(), Format::Tagged);
    assert_eq!(tagged.tags(), ["master", "feature-auth"]);
    let auth = tagged.plan(1);
    let ids: Vec<i64> = auth.tasks.iter().map(|t| t.id).collect();
    assert_eq!(ids, [14, 10, 15, 12]);
    let twelve = auth.tasks.iter().find(|t| t.id == 12).unwrap();
    assert_eq!(twelve.dependencies, [15, 14]);
    assert_eq!(twelve.status, TaskStatus::Deferred);
    assert_eq!(auth.tasks[0].priority, Priority::Critical);
}

#[test]
fn statuses_from_elsewhere_are_mapped_and_warnings_say_what_was_kept() {
    let file = TasksFile::parse(fixture("odd.json").as_bytes()).unwrap();
    let plan = file.plan(0);
    let by_title = |title: &str| plan.tasks.iter().find(|t| t.title == title).unwrap();
    assert_eq!(by_title("Padded title").status, TaskStatus::Done);
    assert_eq!(by_title("Sub as string").status, TaskStatus::InProgress);
    assert_eq!(by_title("Sub two").status, TaskStatus::Pending);
    assert_eq!(by_title("Second").status, TaskStatus::Cancelled);
    assert_eq!(by_title("Second").priority, Priority::Critical);
    assert_eq!(by_title("No status").status, TaskStatus::Pending);
    assert_eq!(by_title("Repeated id").status, TaskStatus::Pending);
    // The repeated id gets the next free one.
    assert_eq!(by_title("Repeated id").id, 6);
    // 1 -> 2 is kept; 2 -> 1 would close a cycle.
    assert_eq!(by_title("Padded title").dependencies, [2]);
    assert!(by_title("Second").dependencies.is_empty());
    // "1.2" from subtask 1.1 names its sibling.
    assert_eq!(
        by_title("Sub as string").dependencies,
        [by_title("Sub two").id]
    );
    let warnings = plan.warnings.join("\n");
    for expected in [
        "id 2 is used by an earlier task",
        "would close a dependency cycle",
        "dependency 99 names no task",
        "dependency \"7.1\" names no task",
        "dependency \"x\" names no task",
        "status \"someday\"",
        "priority \"whatever\"",
    ] {
        assert!(
            warnings.contains(expected),
            "missing {expected:?} in\n{warnings}"
        );
    }
}

#[test]
fn edits_appear_as_task_master_writes_them() {
    let text = fixture("legacy.json");
    let file = TasksFile::parse(text.as_bytes()).unwrap();
    let mut tasks = imported(&file.plan(0));
    task_mut(&mut tasks, 3).status = TaskStatus::InProgress;
    task_mut(&mut tasks, 3).title = "Ship it".into();
    // Handlers (5) no longer depends on Schema (4) but on task 3.
    task_mut(&mut tasks, 5).dependencies = vec![3];
    // Task 1 is deleted: task 2 loses its dependency, as the server does.
    tasks.retain(|task| task.id != 1);
    task_mut(&mut tasks, 2).dependencies.clear();
    // A new task and a new subtask of task 2.
    let mut new_task = tasks[0].clone();
    new_task.id = 7;
    new_task.parent_id = None;
    new_task.title = "Added in the app".into();
    new_task.description = String::new();
    new_task.details = String::new();
    new_task.test_strategy = String::new();
    new_task.status = TaskStatus::Pending;
    new_task.dependencies = vec![6];
    let mut new_subtask = new_task.clone();
    new_subtask.id = 8;
    new_subtask.parent_id = Some(2);
    new_subtask.title = "New sub".into();
    new_subtask.dependencies = vec![4, 3];
    tasks.push(new_task);
    tasks.push(new_subtask);

    let out = json::parse(&export(&file, &[Some(tasks)])).unwrap();
    let tasks_out = out
        .as_object()
        .unwrap()
        .get("tasks")
        .unwrap()
        .as_array()
        .unwrap();
    let ids: Vec<String> = tasks_out
        .iter()
        .map(|t| {
            json::print(
                t.as_object().unwrap().get("id").unwrap(),
                &Default::default(),
            )
        })
        .collect();
    assert_eq!(ids, ["2", "3", "7"]);
    let ship = tasks_out[1].as_object().unwrap();
    assert_eq!(ship.get("status").unwrap().as_str(), Some("in-progress"));
    assert_eq!(ship.get("title").unwrap().as_str(), Some("Ship it"));
    // Untouched fields and unknown ones stay where they were.
    let keys: Vec<&str> = ship.keys().collect();
    assert_eq!(
        keys,
        [
            "id",
            "title",
            "description",
            "status",
            "dependencies",
            "priority",
            "details",
            "testStrategy",
            "subtasks",
            "complexity"
        ]
    );
    let api = tasks_out[0].as_object().unwrap();
    assert_eq!(api.get("dependencies"), Some(&Json::Array(vec![])));
    let subtasks = api.get("subtasks").unwrap().as_array().unwrap();
    assert_eq!(subtasks.len(), 4);
    let handlers = subtasks[1].as_object().unwrap();
    assert_eq!(
        handlers.get("dependencies"),
        Some(&Json::Array(vec![Json::unsigned(3)]))
    );
    let new_sub = subtasks[3].as_object().unwrap();
    assert_eq!(new_sub.get("id"), Some(&Json::unsigned(4)));
    // A sibling as its number, another task as its number.
    assert_eq!(
        new_sub.get("dependencies"),
        Some(&Json::Array(vec![Json::unsigned(1), Json::unsigned(3)]))
    );
    let added = tasks_out[2].as_object().unwrap();
    let keys: Vec<&str> = added.keys().collect();
    assert_eq!(
        keys,
        [
            "id",
            "title",
            "description",
            "details",
            "testStrategy",
            "status",
            "dependencies",
            "priority",
            "subtasks"
        ]
    );
    // A subtask of another task in "P.S" notation.
    assert_eq!(
        added.get("dependencies"),
        Some(&Json::Array(vec![Json::string("2.3")]))
    );
}

#[test]
fn dependencies_that_name_nothing_survive_edits() {
    let file = TasksFile::parse(fixture("odd.json").as_bytes()).unwrap();
    let mut tasks = imported(&file.plan(0));
    // "Repeated id" (6) gains a dependency on 5: its 99, "7.1" and "x" stay.
    task_mut(&mut tasks, 6).dependencies = vec![5];
    let out = export(&file, &[Some(tasks), Some(imported(&file.plan(1)))]);
    let out = json::parse(&out).unwrap();
    let master = out
        .as_object()
        .unwrap()
        .get("master")
        .unwrap()
        .as_object()
        .unwrap();
    let repeated = master.get("tasks").unwrap().as_array().unwrap()[2]
        .as_object()
        .unwrap();
    assert_eq!(
        repeated.get("id"),
        Some(&Json::unsigned(2)),
        "the file's id is kept"
    );
    assert_eq!(
        repeated.get("dependencies"),
        Some(&Json::Array(vec![
            Json::unsigned(99),
            Json::string("7.1"),
            Json::string("x"),
            Json::unsigned(5)
        ]))
    );
    assert_eq!(
        repeated.get("status").unwrap().as_str(),
        Some("someday"),
        "unchanged status keeps the file's word"
    );
}

#[test]
fn a_deleted_project_drops_its_tag_and_one_tag_exports_alone() {
    let file = TasksFile::parse(fixture("tagged.json").as_bytes()).unwrap();
    let out = export(&file, &[None, Some(imported(&file.plan(1)))]);
    let out = json::parse(&out).unwrap();
    let keys: Vec<&str> = out.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["feature-auth"]);

    let one = export_tag(&file, 1, &imported(&file.plan(1)));
    let one = json::parse(&one).unwrap();
    let keys: Vec<&str> = one.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["tasks", "metadata"]);
}

#[test]
fn a_project_without_a_file_exports_as_task_master_would_write_it() {
    let file = TasksFile::parse(fixture("legacy.json").as_bytes()).unwrap();
    let tasks = imported(&file.plan(0));
    let out = export_new(&tasks);
    // Read back, it plans to the same tasks.
    let again = TasksFile::parse(out.as_bytes()).unwrap();
    let plan = again.plan(0);
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    let shape = |tasks: &[taskmaster_files::PlannedTask]| {
        let mut shape: Vec<_> = tasks
            .iter()
            .map(|t| {
                (
                    t.title.clone(),
                    t.status,
                    t.dependencies.len(),
                    t.parent_id.is_some(),
                )
            })
            .collect();
        shape.sort_by(|a, b| a.0.cmp(&b.0));
        shape
    };
    assert_eq!(shape(&plan.tasks), shape(&file.plan(0).tasks));
    assert!(out.starts_with(
        "{\n  \"tasks\": [\n    {\n      \"id\": 1,\n      \"title\": \"Set up the repository\""
    ));
}

#[test]
fn what_is_not_a_task_master_file_is_refused_with_the_reason() {
    let cases: [(&str, FileErrorKind, &str); 12] = [
        ("not json at all", FileErrorKind::Malformed, "not JSON"),
        ("{\"tasks\": []}{\"tasks\": []}", FileErrorKind::Malformed, "more than one JSON document"),
        ("{\"tasks\": []}\n{\"tasks\": []}\n", FileErrorKind::Malformed, "more than one JSON document"),
        ("{\n<<<<<<< HEAD\n  \"tasks\": []\n=======\n  \"tasks\": [1]\n>>>>>>> branch\n}", FileErrorKind::Malformed, "git conflict marker on line 2"),
        ("{\"version\": \"2.0.0\", \"tasks\": [{\"label\": \"build\", \"type\": \"shell\", \"command\": \"make\"}]}", FileErrorKind::Invalid, "Visual Studio Code"),
        ("[{\"id\": 1, \"title\": \"x\"}]", FileErrorKind::Invalid, "not an array"),
        ("{\"name\": \"x\", \"settings\": {\"a\": 1}}", FileErrorKind::Invalid, "no tag holding one"),
        ("{\"tasks\": [{\"title\": \"no id\"}]}", FileErrorKind::Invalid, "tasks[0]: the task has no `id`"),
        ("{\"tasks\": [{\"id\": 1}]}", FileErrorKind::Invalid, "has no `title`"),
        ("{\"tasks\": [{\"id\": \"one\", \"title\": \"x\"}]}", FileErrorKind::Invalid, "positive integer"),
        ("{\"master\": {\"tasks\": {}}}", FileErrorKind::Invalid, "must be an array"),
        ("{\"tasks\": [{\"id\": 1, \"title\": \"x\", \"subtasks\": [{\"id\": 1, \"title\": \"\"}]}]}", FileErrorKind::Invalid, "subtasks[0]: the task's `title` is empty"),
    ];
    for (text, kind, message) in cases {
        let error = TasksFile::parse(text.as_bytes()).unwrap_err();
        assert_eq!(error.kind, kind, "{text}");
        assert!(error.message.contains(message), "{text}: {}", error.message);
    }
    assert_eq!(
        TasksFile::parse(&[0xff, 0xfe]).unwrap_err().kind,
        FileErrorKind::Malformed
    );
}

/// Found by the `tasks_json` fuzz target: a number too large for an
/// integer is read as a float, printed in JavaScript's shortest form, and
/// must read back as the same float (the parser's exact float mode), or a
/// second round trip changes the file.
#[test]
fn a_huge_number_survives_two_round_trips() {
    let text = "{\"tasks\": [{\"id\": 1, \"title\": \"A\", \"dependencies\": [5555555555555555555555555555555555555555555555555555555555555555555555555555], \"x\": 0.30000000000000004}]}";
    let file = TasksFile::parse(text.as_bytes()).unwrap();
    let first = export(&file, &state(&file));
    let again = TasksFile::parse(first.as_bytes()).unwrap();
    assert_eq!(again.plans(), file.plans());
    assert_eq!(export(&again, &state(&again)), first);
}
