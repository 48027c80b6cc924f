//! Wire types of the Task Master v1 contract, shared by the server, the web app
//! and the load generator.
//!
//! Only `serde` here, so the crate compiles for `wasm32-unknown-unknown`; the
//! `openapi` feature (server only) adds OpenAPI schemas.

mod enums;

pub use enums::{AuditAction, ParseEnumError, Priority, Role, TaskStatus, TokenAccess};

use serde::{Deserialize, Deserializer, Serialize};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// The body of every error response: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ErrorDetail {
    /// Stable, machine-readable `snake_case` code.
    pub code: String,
    /// Human-readable explanation of what is wrong.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[cfg_attr(feature = "openapi", schema(min_length = 3, max_length = 254))]
    pub email: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100))]
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 1024))]
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// Answer to register and login: the user and a bearer token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AuthResponse {
    pub user: User,
    pub token: String,
}

/// One of the caller's signed-in sessions (`GET /api/v1/auth/sessions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SessionInfo {
    /// Names the session for `DELETE /api/v1/auth/sessions/{id}`; not its token.
    pub id: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub expires_at: String,
    /// The `User-Agent` it signed in with (truncated), empty when none was sent.
    pub user_agent: String,
    /// The address it signed in from, when known.
    pub ip: Option<String>,
    /// Whether this is the session making the request.
    pub current: bool,
}

/// Body of `POST /api/v1/auth/password`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 1024))]
    pub new_password: String,
}

/// One entry of a project's audit log: who changed whose membership, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AuditEntry {
    /// Grows with every entry of the deployment.
    pub id: i64,
    /// RFC 3339, UTC.
    pub at: String,
    pub action: AuditAction,
    /// Who made the change; `null` if that account no longer exists.
    pub actor: Option<User>,
    /// Whose membership changed; `null` if that account no longer exists.
    pub subject: Option<User>,
    /// The role after the change (`null` for a removal).
    pub role: Option<Role>,
    /// The role before it (`null` for an addition or the project's creation).
    pub previous_role: Option<Role>,
    /// What happened, in words, where the action needs more than the
    /// fields above (`webhook_disabled`: which webhook and why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One page of a project's audit log, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    /// Pass as `cursor` for older entries; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateProjectRequest {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Project {
    pub id: String,
    pub name: String,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// A list without pagination: `{"items": [...]}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Items<T> {
    pub items: Vec<T>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddMemberRequest {
    pub email: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Member {
    pub user: User,
    pub role: Role,
}

/// A task, as returned everywhere (REST bodies and real-time events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Task {
    /// Per-project number: 1, 2, 3, …
    pub id: i64,
    pub project_id: String,
    pub title: String,
    pub description: String,
    pub details: String,
    pub test_strategy: String,
    pub status: TaskStatus,
    pub priority: Priority,
    pub dependencies: Vec<i64>,
    pub assignee_id: Option<String>,
    pub parent_id: Option<i64>,
    /// Starts at 1 and grows by one on every change; the ETag is this number quoted.
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// One page of tasks, ordered by id.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TaskPage {
    pub items: Vec<Task>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Body of `POST …/tasks`. Only `title` is required.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 500))]
    pub title: String,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub description: Option<String>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub details: Option<String>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub test_strategy: Option<String>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub status: Option<TaskStatus>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub priority: Option<Priority>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub dependencies: Option<Vec<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<i64>,
}

/// Body of `PATCH …/tasks/{id}`: any subset of the writable fields.
///
/// For the nullable fields the outer `Option` says whether the field was sent
/// and the inner one whether it was `null`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TaskPatch {
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub title: Option<String>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub description: Option<String>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub details: Option<String>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub test_strategy: Option<String>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub status: Option<TaskStatus>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub priority: Option<Priority>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub dependencies: Option<Vec<i64>>,
    #[serde(
        default,
        deserialize_with = "present_or_null",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub assignee_id: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "present_or_null",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub parent_id: Option<Option<i64>>,
}

/// An optional field that, when sent, must not be `null` (`title: null` is a
/// type error, not "leave the title alone").
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// Distinguishes a field sent as `null` (`Some(None)`) from an absent one
/// (`None`, through `#[serde(default)]`).
fn present_or_null<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Kinds of change recorded in a project's event log.
pub mod event_type {
    pub const TASK_CREATED: &str = "task.created";
    pub const TASK_UPDATED: &str = "task.updated";
    pub const TASK_DELETED: &str = "task.deleted";
}

/// Why the Socket.IO handshake was refused: the `message` of its
/// `connect_error`. Only a refusal of the credentials means signing in
/// again; any other is the server's trouble, and the client retries.
pub mod handshake_refusal {
    pub const MISSING_CREDENTIALS: &str =
        "missing credentials: connect with auth {\"token\": \"<token>\"}";
    pub const INVALID_TOKEN: &str = "invalid or expired token";
    pub const UNAVAILABLE: &str = "service unavailable; retry shortly";
    pub const TOO_MANY_CONNECTIONS: &str = "too many connections on this server; retry shortly";
    pub const TOO_MANY_USER_CONNECTIONS: &str =
        "too many connections for this user; close another tab or client";
    pub const TOO_MANY_REQUESTS: &str = "too many requests for this token; retry shortly";
    /// A handshake signed in by the session cookie from a page of another origin.
    pub const ORIGIN_NOT_ALLOWED: &str =
        "pages of this origin may not connect with the session cookie";

    /// Whether `message` refuses the credentials themselves.
    pub fn refuses_credentials(message: &str) -> bool {
        message == INVALID_TOKEN || message == MISSING_CREDENTIALS || message == ORIGIN_NOT_ALLOWED
    }
}

/// One entry of a project's change log, as streamed to subscribers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Event {
    pub project_id: String,
    /// Gapless per project, starting at 1.
    pub seq: i64,
    /// `task.created`, `task.updated` or `task.deleted`; clients ignore others.
    #[serde(rename = "type")]
    pub kind: String,
    pub actor_id: String,
    pub at: String,
    /// The task after the change (for `task.deleted`, its last state).
    pub task: Task,
}

/// A page of the change log (`GET …/events?since=`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct EventPage {
    pub items: Vec<Event>,
    /// The project's latest seq when the page was read.
    pub latest_seq: i64,
}

/// Client → server `join`: subscribe to a project's events, replaying those
/// after `since` first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    pub project_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
}

/// Client → server `leave`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaveRequest {
    pub project_id: String,
}

/// Client → server `task:create`: the REST create over the socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocketCreateTask {
    pub project_id: String,
    pub task: NewTask,
}

/// Client → server `task:update`: the REST PATCH over the socket.
/// `if_match` is the version the client last saw, as `If-Match` carries it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocketUpdateTask {
    pub project_id: String,
    pub id: i64,
    pub changes: TaskPatch,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_match: Option<i64>,
}

/// Body of `POST /api/v1/projects/{project_id}/tasks/bulk`: one change to
/// many tasks, applied as one change set (one transaction, one event per
/// task changed, in the order of `task_ids`; refused whole, nothing
/// changed, if any task refuses it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BulkChange {
    /// The tasks: 1 to 500 distinct ids.
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 500))]
    pub task_ids: Vec<i64>,
    /// Fields to set on every one of them. Exactly one of `set` and
    /// `delete` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<BulkSet>,
    /// `true`: delete them (with their subtasks; tasks depending on them
    /// lose those dependencies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete: Option<bool>,
    /// The version of each task the caller chose it at (task id, as a
    /// string key, → version): a task at another version refuses the whole
    /// change with a 412, as `If-Match` does for one task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_versions: Option<std::collections::BTreeMap<String, i64>>,
}

/// What a bulk change sets: any of the status, the priority, the assignee
/// (`null` to unassign).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BulkSet {
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub status: Option<TaskStatus>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub priority: Option<Priority>,
    #[serde(
        default,
        deserialize_with = "present_or_null",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub assignee_id: Option<Option<String>>,
}

/// The answer to a bulk change.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct BulkResult {
    /// For `set`: every task asked for, as it is now, in the order asked
    /// (those already as asked are unchanged and have no event).
    pub tasks: Vec<Task>,
    /// For `delete`: the ids deleted, subtasks included, in event order.
    pub deleted: Vec<i64>,
    /// The seq of the change set's last event; absent when nothing changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
}

/// Client → server `task:bulk`: a [`BulkChange`] to a project.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocketBulkChange {
    pub project_id: String,
    pub change: BulkChange,
}

/// Client → server `task:delete`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocketDeleteTask {
    pub project_id: String,
    pub id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_match: Option<i64>,
}

/// One user in a `presence` message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PresenceUser {
    pub id: String,
    pub name: String,
}

/// Server → client `presence`: who is joined to a project right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    pub project_id: String,
    pub users: Vec<PresenceUser>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_tells_null_from_absent() {
        let patch: TaskPatch = serde_json::from_str(r#"{"assignee_id": null}"#).unwrap();
        assert_eq!(patch.assignee_id, Some(None));
        assert_eq!(patch.parent_id, None);

        let patch: TaskPatch = serde_json::from_str(r#"{"parent_id": 3}"#).unwrap();
        assert_eq!(patch.parent_id, Some(Some(3)));
    }

    #[test]
    fn patch_round_trips_null() {
        let patch = TaskPatch {
            assignee_id: Some(None),
            ..TaskPatch::default()
        };
        let json = serde_json::to_string(&patch).unwrap();
        assert_eq!(json, r#"{"assignee_id":null}"#);
        assert_eq!(serde_json::from_str::<TaskPatch>(&json).unwrap(), patch);
    }

    #[test]
    fn null_is_refused_where_the_field_is_not_nullable() {
        assert!(serde_json::from_str::<TaskPatch>(r#"{"title": null}"#).is_err());
        assert!(serde_json::from_str::<NewTask>(r#"{"title": "a", "details": null}"#).is_err());
        let new: NewTask = serde_json::from_str(r#"{"title": "a", "parent_id": null}"#).unwrap();
        assert_eq!(new.parent_id, None);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<TaskPatch>(r#"{"colour": "red"}"#).unwrap_err();
        assert!(
            err.to_string().starts_with("unknown field `colour`"),
            "{err}"
        );
    }

    #[test]
    fn event_type_is_named_type_on_the_wire() {
        let task = Task {
            id: 1,
            project_id: "p".into(),
            title: "t".into(),
            description: String::new(),
            details: String::new(),
            test_strategy: String::new(),
            status: TaskStatus::Pending,
            priority: Priority::Medium,
            dependencies: vec![],
            assignee_id: None,
            parent_id: None,
            version: 1,
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
        };
        let event = Event {
            project_id: "p".into(),
            seq: 1,
            kind: event_type::TASK_CREATED.into(),
            actor_id: "u".into(),
            at: "2026-01-01T00:00:00Z".into(),
            task,
        };
        let value = serde_json::to_value(&event).unwrap();
        assert_eq!(value["type"], "task.created");
        assert_eq!(value["task"]["status"], "pending");
    }
}

/// A project made by `POST /api/v1/imports`: one per tag of the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ImportedProject {
    /// The tag of the file (`master` for a legacy file).
    pub tag: String,
    pub project: Project,
    /// Tasks and subtasks it holds.
    pub tasks: usize,
}

/// The answer to `POST /api/v1/imports`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ImportResponse {
    /// Names the import for `GET /api/v1/imports/{id}/tasks.json`.
    pub id: String,
    /// `legacy` or `tagged`, as the file was.
    pub format: String,
    pub projects: Vec<ImportedProject>,
    /// What the file holds that could not be modelled (kept for export).
    pub warnings: Vec<String>,
}

/// The answer to `POST /api/v1/projects/{project_id}/imports` (a task file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TaskFileImport {
    /// The task, then its subtasks, as added.
    pub tasks: Vec<Task>,
    pub warnings: Vec<String>,
}

/// Body of `POST /api/v1/auth/tokens`: a personal access token for agents,
/// scripts and CI.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// What it is for, as the token list shows it (1–100 characters).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100))]
    pub name: String,
    /// `read` or `write`.
    pub access: TokenAccess,
    /// Limits it to one project of the caller's; all of them when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// Days until it stops working (1–3650); it never expires when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3650))]
    pub expires_in_days: Option<u32>,
}

/// An API token as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ApiToken {
    /// Names it for `DELETE /api/v1/auth/tokens/{id}`.
    pub id: String,
    pub name: String,
    pub access: TokenAccess,
    pub project_id: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub expires_at: Option<String>,
    /// When it last signed a request in (to the minute), if ever.
    pub last_used_at: Option<String>,
}

/// The answer to `POST /api/v1/auth/tokens`: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CreatedToken {
    pub token: ApiToken,
    /// `Authorization: Bearer <secret>`; kept only as a hash by the server.
    pub secret: String,
}

/// A background job (`GET /api/v1/jobs/{id}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct JobStatus {
    pub id: String,
    /// What it does (`webhook`, `webhook_redelivery`, …).
    pub kind: String,
    /// `queued` (waiting, or backing off until `run_at`), `running`, `done`
    /// or `dead` (gave up after `max_attempts`).
    pub state: String,
    pub attempts: i32,
    pub max_attempts: i32,
    /// When it runs next, if queued. RFC 3339, UTC.
    pub run_at: String,
    /// What the job says about its progress, while it runs.
    pub progress: Option<serde_json::Value>,
    /// What it did, once done.
    pub result: Option<serde_json::Value>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// Body of `POST /api/v1/projects/{project_id}/webhooks`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// Where events are posted: `https://…` (or `http://`); public addresses
    /// only unless the deployment allows private ones.
    pub url: String,
    /// The event types to send (`task.created`, …); all when absent or empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<String>>,
}

/// A project's webhook (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Webhook {
    pub id: String,
    pub project_id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Why it was disabled, when it was.
    pub disabled_reason: Option<String>,
    /// The last seq it was sent (or skipped, as a type it does not want).
    pub delivered_seq: i64,
    pub created_at: String,
}

/// The answer to creating a webhook: the only time its secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CreatedWebhook {
    pub webhook: Webhook,
    /// The key of the `X-TaskMaster-Signature` HMAC-SHA256.
    pub secret: String,
}

/// An event a webhook gave up on (`GET …/webhooks/{id}/dead-letters`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct DeadLetter {
    pub seq: i64,
    pub attempts: i32,
    pub last_error: String,
    pub failed_at: String,
    /// Set once it was redelivered.
    pub redelivered_at: Option<String>,
}

/// Body of `POST …/webhooks/{id}/redeliver`: some dead letters, or all.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RedeliverRequest {
    /// The seqs to send again; every pending dead letter when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seqs: Option<Vec<i64>>,
}
