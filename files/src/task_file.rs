//! The per-task text files `task-master generate` writes (`task_NNN.txt`,
//! or `.md` in newer versions, same layout):
//!
//! ```text
//! # Task ID: 10
//! # Title: …
//! # Status: done
//! # Dependencies: 5, 6
//! # Priority: low
//! # Description: …
//! # Details:
//! …
//!
//! # Test Strategy:
//! …
//!
//! # Subtasks:
//! ## 1. Title [done]
//! ### Dependencies: 10.1
//! ### Description: …
//! ### Details:
//! …
//! ```

use protocol::{Priority, TaskStatus};

use crate::json::Json;
use crate::tasks_json::{priority_of, source_number, status_of, text_of};
use crate::FileError;

/// A task file, as parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskFile {
    /// The id the file gives the task.
    pub id: u64,
    pub title: String,
    pub status: TaskStatus,
    pub priority: Priority,
    /// As written (`5`, `10.2`), `None` dropped.
    pub dependencies: Vec<String>,
    pub description: String,
    pub details: String,
    pub test_strategy: String,
    pub subtasks: Vec<Subtask>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Subtask {
    pub id: u64,
    pub title: String,
    pub status: TaskStatus,
    pub dependencies: Vec<String>,
    pub description: String,
    pub details: String,
}

/// A header line `# Key: value` (also `**Key:**` in Markdown dialects).
fn header<'a>(line: &'a str, marks: &str, key: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(marks)?.strip_prefix(' ')?;
    let rest = rest.trim_start_matches("**");
    let (name, value) = rest.split_once(':')?;
    if !name.trim().eq_ignore_ascii_case(key) {
        return None;
    }
    Some(value.trim_start_matches("**").trim())
}

fn dependency_list(value: &str) -> Vec<String> {
    let value = value.trim();
    if value.is_empty() || value.eq_ignore_ascii_case("none") {
        return Vec::new();
    }
    value
        .split(',')
        // Newer versions add the status: `5 (done)`.
        .map(|entry| entry.split_whitespace().next().unwrap_or("").to_owned())
        .filter(|entry| !entry.is_empty())
        .collect()
}

/// `## 3. Title [status]`, when followed by `### Dependencies:`.
fn subtask_heading(line: &str) -> Option<(u64, String, String)> {
    let rest = line.strip_prefix("## ")?;
    let (number, rest) = rest.split_once(". ")?;
    // `## 10.3. Title` in some versions.
    let number = number.rsplit('.').next()?;
    let id = number.parse::<u64>().ok().filter(|id| *id > 0)?;
    let rest = rest.trim_end();
    let open = rest.rfind(" [")?;
    let status = rest[open + 2..].strip_suffix(']')?;
    Some((id, rest[..open].trim().to_owned(), status.trim().to_owned()))
}

/// The text between two section lines, without the blank line that ends it.
fn section(lines: &[&str]) -> String {
    let mut text = lines.join("\n");
    while text.ends_with('\n') {
        text.pop();
    }
    text
}

/// Parses a task file; refuses anything else (a prompt, notes, an empty
/// file) with what is missing.
pub fn parse(text: &str) -> Result<TaskFile, FileError> {
    let text = text.trim_start_matches('\u{feff}').replace("\r\n", "\n");
    let lines: Vec<&str> = text.split('\n').collect();
    let find = |key: &str, from: usize| {
        lines[from..]
            .iter()
            .position(|line| header(line, "#", key).is_some())
            .map(|index| index + from)
    };
    let Some(id_line) = find("Task ID", 0) else {
        return Err(FileError::invalid(
            "not a Task Master task file: it has no `# Task ID:` line (task-master generate starts every task file with one)",
        ));
    };
    let id = header(lines[id_line], "#", "Task ID")
        .and_then(|value| source_number(&Json::string(value), false))
        .ok_or_else(|| FileError::invalid("`# Task ID:` must be a positive integer"))?;
    let single = |key: &str| -> Option<String> {
        find(key, id_line).map(|index| header(lines[index], "#", key).unwrap_or("").to_owned())
    };
    let title = single("Title")
        .filter(|title| !title.trim().is_empty())
        .ok_or_else(|| FileError::invalid("the task file has no `# Title:` (or it is empty)"))?;
    let details_at = find("Details", id_line)
        .ok_or_else(|| FileError::invalid("the task file has no `# Details:` section"))?;
    let strategy_at = find("Test Strategy", details_at).ok_or_else(|| {
        FileError::invalid("the task file has no `# Test Strategy:` section after `# Details:`")
    })?;
    let subtasks_at = find("Subtasks", strategy_at);
    let end = subtasks_at.unwrap_or(lines.len());
    let status_word = single("Status");
    let (status, _) = status_of(status_word.as_deref());
    let (priority, _) = priority_of(single("Priority").as_deref());

    let mut subtasks = Vec::new();
    if let Some(start) = subtasks_at {
        let headings: Vec<usize> = (start + 1..lines.len())
            .filter(|index| {
                subtask_heading(lines[*index]).is_some()
                    && lines
                        .get(index + 1)
                        .is_some_and(|next| header(next, "###", "Dependencies").is_some())
            })
            .collect();
        for (nth, at) in headings.iter().enumerate() {
            let (sub_id, sub_title, sub_status) = subtask_heading(lines[*at]).expect("matched");
            let block_end = headings.get(nth + 1).copied().unwrap_or(lines.len());
            let block = &lines[*at + 1..block_end];
            let field = |key: &str| {
                block
                    .iter()
                    .position(|line| header(line, "###", key).is_some())
            };
            let dependencies = field("Dependencies")
                .map(|index| {
                    dependency_list(header(block[index], "###", "Dependencies").unwrap_or(""))
                })
                .unwrap_or_default();
            let description = field("Description")
                .map(|index| {
                    header(block[index], "###", "Description")
                        .unwrap_or("")
                        .to_owned()
                })
                .unwrap_or_default();
            let details = field("Details")
                .map(|index| section(&block[index + 1..]))
                .unwrap_or_default();
            subtasks.push(Subtask {
                id: sub_id,
                title: sub_title,
                status: status_of(Some(&sub_status)).0,
                dependencies,
                description,
                details,
            });
        }
    }

    Ok(TaskFile {
        id,
        title: title.trim().to_owned(),
        status,
        priority,
        dependencies: single("Dependencies")
            .map(|value| dependency_list(&value))
            .unwrap_or_default(),
        description: single("Description").unwrap_or_default(),
        details: section(&lines[details_at + 1..strategy_at]),
        test_strategy: section(&lines[strategy_at + 1..end]),
        subtasks,
    })
}

/// A dependency entry as a task file shows it: subtasks as `P.S`.
fn shown(entry: &Json, parent: Option<&str>) -> String {
    match (entry, parent) {
        (Json::Number(number), Some(parent)) => {
            format!("{parent}.{}", number.as_u64().unwrap_or(0))
        }
        (Json::Number(number), None) => number.as_u64().unwrap_or(0).to_string(),
        (Json::String(text), _) => text.clone(),
        (other, _) => other.kind().to_owned(),
    }
}

fn dependencies_line(task: &crate::json::Object, parent: Option<&str>) -> String {
    let entries = task
        .get("dependencies")
        .and_then(Json::as_array)
        .unwrap_or(&[]);
    if entries.is_empty() {
        "None".to_owned()
    } else {
        entries
            .iter()
            .map(|entry| shown(entry, parent))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn id_text(value: Option<&Json>) -> String {
    match value {
        Some(Json::Number(number)) => number.as_u64().unwrap_or(0).to_string(),
        Some(Json::String(text)) => text.clone(),
        _ => String::new(),
    }
}

/// The file `task-master generate` writes for one task of a `tasks.json`
/// `tasks` array: its name (`task_007.txt`, or `.md`) and its text.
pub fn generate(task: &Json, extension: &str) -> (String, String) {
    let empty = crate::json::Object::new();
    let task = task.as_object().unwrap_or(&empty);
    let id = id_text(task.get("id"));
    let word = |object: &crate::json::Object, key: &str, default: &str| {
        object
            .get(key)
            .and_then(Json::as_str)
            .filter(|word| !word.is_empty())
            .unwrap_or(default)
            .to_owned()
    };
    let mut text = format!(
        "# Task ID: {id}\n# Title: {}\n# Status: {}\n# Dependencies: {}\n# Priority: {}\n# Description: {}\n# Details:\n{}\n\n# Test Strategy:\n{}\n",
        text_of(task, "title"),
        word(task, "status", "pending"),
        dependencies_line(task, None),
        word(task, "priority", "medium"),
        text_of(task, "description"),
        text_of(task, "details"),
        text_of(task, "testStrategy"),
    );
    let subtasks = task.get("subtasks").and_then(Json::as_array).unwrap_or(&[]);
    if !subtasks.is_empty() {
        text.push_str("\n# Subtasks:\n");
        for subtask in subtasks {
            let subtask = subtask.as_object().unwrap_or(&empty);
            text.push_str(&format!(
                "## {}. {} [{}]\n### Dependencies: {}\n### Description: {}\n### Details:\n{}\n\n",
                id_text(subtask.get("id")),
                text_of(subtask, "title"),
                word(subtask, "status", "pending"),
                dependencies_line(subtask, Some(&id)),
                text_of(subtask, "description"),
                text_of(subtask, "details"),
            ));
        }
    }
    let number: u64 = id.parse().unwrap_or(0);
    (format!("task_{number:03}.{extension}"), text)
}

/// A dependency entry as `tasks.json` holds it: a number, or `"P.S"`.
fn entry(text: &str) -> Json {
    match text.parse::<u64>() {
        Ok(number) => Json::unsigned(number),
        Err(_) => Json::string(text),
    }
}

impl TaskFile {
    /// The task as a `tasks.json` entry, in the key order Task Master uses.
    pub fn to_json(&self) -> Json {
        let mut task = crate::json::Object::new();
        task.insert("id", Json::unsigned(self.id));
        task.insert("title", Json::string(&self.title));
        task.insert("description", Json::string(&self.description));
        task.insert("details", Json::string(&self.details));
        task.insert("testStrategy", Json::string(&self.test_strategy));
        task.insert("status", Json::string(self.status.as_str()));
        task.insert(
            "dependencies",
            Json::Array(self.dependencies.iter().map(|d| entry(d)).collect()),
        );
        task.insert("priority", Json::string(self.priority.as_str()));
        let subtasks = self
            .subtasks
            .iter()
            .map(|subtask| {
                let mut object = crate::json::Object::new();
                object.insert("id", Json::unsigned(subtask.id));
                object.insert("title", Json::string(&subtask.title));
                object.insert("description", Json::string(&subtask.description));
                object.insert("details", Json::string(&subtask.details));
                object.insert("status", Json::string(subtask.status.as_str()));
                object.insert(
                    "dependencies",
                    Json::Array(subtask.dependencies.iter().map(|d| entry(d)).collect()),
                );
                Json::Object(object)
            })
            .collect();
        task.insert("subtasks", Json::Array(subtasks));
        Json::Object(task)
    }
}
