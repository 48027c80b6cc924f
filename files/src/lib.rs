//! Task Master's own files, read and written without losing anything.
//!
//! - [`TasksFile`]: a `tasks.json` (legacy or tagged), checked and planned
//!   as one project per tag ([`TagPlan`]); [`export`] rebuilds it from the
//!   projects' live state so that, right after an import, it is the file
//!   again (byte for byte when Task Master wrote it).
//! - [`task_file`]: the per-task text files `task-master generate` writes
//!   (`task_NNN.txt` / `.md`), parsed and generated.
//!
//! Pure functions of their input, no I/O: the server stores and loads, and
//! the fuzz targets call these directly.

pub mod export;
pub mod json;
pub mod task_file;
mod tasks_json;

pub use export::{export, export_new, export_tag, task_files, ProjectState, TasksWithKept};
pub use tasks_json::{
    priority_of, status_of, Format, PlannedTask, Position, TagPlan, TasksFile, MAX_DEPENDENCIES,
    MAX_KEPT_ID,
};

/// Why a file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FileError {
    pub kind: FileErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileErrorKind {
    /// Not text, not JSON, or more than one document: a 400.
    Malformed,
    /// Well-formed, but not a Task Master file: a 422.
    Invalid,
}

impl FileError {
    pub(crate) fn malformed(message: impl Into<String>) -> Self {
        FileError {
            kind: FileErrorKind::Malformed,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        FileError {
            kind: FileErrorKind::Invalid,
            message: message.into(),
        }
    }
}
