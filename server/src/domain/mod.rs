//! Validated domain types and rules, free of HTTP and SQL.

pub mod dependencies;
pub mod task;

pub use protocol::{Priority, Role, TaskStatus};
