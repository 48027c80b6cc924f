//! The task files `task-master generate` writes: the samples parse, a
//! prompt that only talks about tasks is refused, and generating a parsed
//! sample gives the sample back byte for byte.

use protocol::{Priority, TaskStatus};
use taskmaster_files::task_file::{generate, parse};

fn sample(name: &str) -> String {
    let path = format!(
        "{}/../../shared/taskmaster-samples/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

const SAMPLES: [&str; 4] = [
    "task_010.txt",
    "task_015_pending.txt",
    "task_015_done_with_notes.txt",
    "task_036.txt",
];

#[test]
fn the_samples_parse() {
    let ten = parse(&sample("task_010.txt")).unwrap();
    assert_eq!(ten.id, 10);
    assert_eq!(ten.title, "Optimize Performance and Deploy MVP");
    assert_eq!(ten.status, TaskStatus::Done);
    assert_eq!(ten.priority, Priority::Low);
    assert_eq!(ten.dependencies, ["5", "6", "7", "8", "9"]);
    assert_eq!(ten.subtasks.len(), 5);
    assert_eq!(ten.subtasks[3].dependencies, ["10.1", "10.2", "10.3"]);
    assert!(ten.subtasks[0]
        .details
        .starts_with("1. Install and configure Redis"));

    let notes = parse(&sample("task_015_done_with_notes.txt")).unwrap();
    assert_eq!(notes.subtasks.len(), 5);
    // Headings inside the agents' notes are not subtasks.
    assert!(notes.subtasks[0]
        .details
        .contains("<info added on 2025-05-25T10:24:59.806Z>"));
    assert!(
        notes.subtasks[0].details.contains("## Implementation Plan")
            || notes.subtasks[0].details.contains("# Redis Caching")
    );

    let plain = parse(&sample("task_036.txt")).unwrap();
    assert!(plain.subtasks.is_empty());
    assert_eq!(plain.dependencies, ["31", "32", "35"]);
    assert!(plain
        .test_strategy
        .ends_with("Real-user monitoring validation"));
}

#[test]
fn a_prompt_about_tasks_is_not_a_task_file() {
    let error = parse(&sample("not_a_task_file_agent_prompt.md")).unwrap_err();
    assert!(
        error.message.contains("no `# Task ID:` line"),
        "{}",
        error.message
    );
    for text in [
        "",
        "# Task ID: 1\n",
        "# Task ID: x\n# Title: t\n",
        "# Task ID: 3\n# Title: t\n# Details:\nno strategy\n",
    ] {
        assert!(parse(text).is_err(), "{text:?}");
    }
}

#[test]
fn generating_a_parsed_sample_gives_it_back() {
    for name in SAMPLES {
        let text = sample(name);
        let task = parse(&text).unwrap();
        let (file_name, generated) = generate(&task.to_json(), "txt");
        assert_eq!(generated, text, "{name}");
        assert_eq!(file_name, format!("task_{:03}.txt", task.id));
    }
}
