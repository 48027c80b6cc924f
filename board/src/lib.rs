//! What the web app's views compute, kept apart from the browser so that it
//! is plain Rust, tested on the host, and compiled into the app unchanged.
//!
//! - [`graph`]: a project's dependency graph laid out in layers by
//!   dependency depth, with its critical path and blocked chains, and the
//!   part of it a viewport shows (the view draws only that).
//! - [`merge`]: a project's tasks merged from REST pages, live events and
//!   optimistic edits by version, so the order of arrival does not matter.
//! - [`markdown`]: task texts as a tree of blocks and inlines the app turns
//!   into DOM nodes, with HTML shown as text and only safe links.

pub mod graph;
pub mod markdown;
pub mod merge;
