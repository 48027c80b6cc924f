//! What `tm` prints: tables for people, the API's JSON with `--json`.

use protocol::{Project, Task};
use serde_json::Value;

pub fn json(value: &impl serde::Serialize) -> Result<(), super::Failure> {
    let text = serde_json::to_string_pretty(value).map_err(anyhow::Error::from)?;
    println!("{text}");
    Ok(())
}

fn truncated(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn dependencies(task: &Task) -> String {
    if task.dependencies.is_empty() {
        "-".to_owned()
    } else {
        let ids: Vec<String> = task.dependencies.iter().map(i64::to_string).collect();
        ids.join(",")
    }
}

fn row(task: &Task, indent: &str) {
    println!(
        "{:<8} {:<12} {:<9} {:<14} {indent}{}",
        task.id,
        task.status.as_str(),
        task.priority.as_str(),
        truncated(&dependencies(task), 14),
        truncated(&task.title, 70),
    );
}

/// Tasks as a table; subtasks indented under their parents when asked,
/// left out otherwise.
pub fn table(tasks: &[Task], with_subtasks: bool) {
    println!(
        "{:<8} {:<12} {:<9} {:<14} TITLE",
        "ID", "STATUS", "PRIORITY", "DEPENDS ON"
    );
    for task in tasks.iter().filter(|task| task.parent_id.is_none()) {
        row(task, "");
        if with_subtasks {
            for subtask in tasks.iter().filter(|sub| sub.parent_id == Some(task.id)) {
                row(subtask, "  └ ");
            }
        }
    }
    // Subtasks whose parent is not in the list (filtered out by status).
    if with_subtasks {
        let orphans = tasks.iter().filter(|task| {
            task.parent_id
                .is_some_and(|parent| !tasks.iter().any(|candidate| candidate.id == parent))
        });
        for subtask in orphans {
            row(subtask, "  └ ");
        }
    }
}

pub fn projects(projects: &[Project], current: Option<&str>) {
    println!("  {:<36}  NAME", "ID");
    for project in projects {
        let mark = if Some(project.id.as_str()) == current {
            "*"
        } else {
            " "
        };
        println!("{mark} {:<36}  {}", project.id, project.name);
    }
}

/// One task with its fields, as `task-master show` lays them out.
pub fn task(task: &Task, subtasks: &[Task]) {
    println!("Task {}: {}", task.id, task.title);
    println!("Status:       {}", task.status.as_str());
    println!("Priority:     {}", task.priority.as_str());
    println!("Dependencies: {}", dependencies(task));
    if let Some(parent) = task.parent_id {
        println!("Parent:       {parent}");
    }
    for (label, text) in [
        ("Description", &task.description),
        ("Details", &task.details),
        ("Test strategy", &task.test_strategy),
    ] {
        if !text.is_empty() {
            println!("\n{label}:\n{text}");
        }
    }
    if !subtasks.is_empty() {
        println!("\nSubtasks:");
        for subtask in subtasks {
            println!(
                "  {} [{}] {}",
                subtask.id,
                subtask.status.as_str(),
                subtask.title
            );
        }
    }
}

/// One live event on one line.
pub fn event(event: &Value) {
    let task = &event["task"];
    println!(
        "{:>6}  {:<13} task {:<6} {:<12} {}",
        event["seq"],
        event["type"].as_str().unwrap_or("?"),
        task["id"],
        task["status"].as_str().unwrap_or(""),
        task["title"].as_str().unwrap_or(""),
    );
}
