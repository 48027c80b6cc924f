//! The Model Context Protocol endpoint (`/mcp`, streamable HTTP) for
//! coding agents: the tools the contract lists, each calling the same
//! application function as its REST route (same validation, same events,
//! same rules for tokens and roles). A refusal comes back as a tool error
//! carrying the REST error's status, code and message.
//!
//! The transport is rmcp's `StreamableHttpService` (the official Rust SDK);
//! who is calling is settled before it, by the HTTP layer
//! ([`authenticate`]), which puts the [`Actor`] in the request for the tool
//! to find.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use protocol::{NewTask, TaskPatch, TaskStatus};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler};
use serde_json::{json, Map, Value};

use crate::app::input::parse_json;
use crate::app::{Actor, App, Conditional, TaskQuery, DEFAULT_PAGE};
use crate::error::{Error, Result};
use crate::http::extract::AuthUser;
use crate::state::AppState;

/// The MCP service for the router.
///
/// Stateless: every request stands alone (no MCP session to keep on one
/// instance), so any instance behind the edge answers any call, and plain
/// request-response calls are answered as JSON. Host validation, rmcp's
/// guard against DNS rebinding for servers on a developer's machine, is off:
/// every call here carries its credentials (a bearer token, or the cookie
/// with its CSRF and Origin checks), which a rebinding page cannot send,
/// and the deployment's own host names are the edge's business.
pub fn service(
    app: App,
    max_body_bytes: usize,
) -> StreamableHttpService<TaskMasterTools, LocalSessionManager> {
    StreamableHttpService::new(
        move || Ok(TaskMasterTools { app: app.clone() }),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true)
            .with_sse_keep_alive(None)
            .with_max_request_body_bytes(max_body_bytes)
            .disable_allowed_hosts(),
    )
}

/// Lets only signed-in callers reach the MCP service (a session token or an
/// API token, as everywhere, and counted against the same rate limits by
/// the extractor), with the contract's 401 otherwise; the caller rides
/// along in the request for the tools.
pub async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let user = match <AuthUser as axum::extract::FromRequestParts<AppState>>::from_request_parts(
        &mut parts, &state,
    )
    .await
    {
        Ok(user) => user,
        Err(error) => return error.into_response(),
    };
    parts.extensions.insert(user.0);
    next.run(Request::from_parts(parts, body)).await
}

/// The tools, on the application.
#[derive(Clone)]
pub struct TaskMasterTools {
    app: App,
}

/// A tool's input schema: `properties`, and which of them are required.
fn schema(properties: Value, required: &[&str]) -> Arc<JsonObject> {
    let mut object = Map::new();
    object.insert("type".into(), json!("object"));
    object.insert("properties".into(), properties);
    object.insert("required".into(), json!(required));
    object.insert("additionalProperties".into(), json!(false));
    Arc::new(object)
}

fn project_id() -> Value {
    json!({"type": "string", "description": "The project's id (list_projects gives them)."})
}

fn task_id(what: &str) -> Value {
    json!({"type": "integer", "minimum": 1, "description": what})
}

/// The writable fields of a task, as REST takes them.
fn task_fields(properties: &mut Map<String, Value>) {
    let statuses: Vec<&str> = TaskStatus::ALL
        .iter()
        .map(|status| status.as_str())
        .collect();
    let priorities: Vec<&str> = protocol::Priority::ALL
        .iter()
        .map(|priority| priority.as_str())
        .collect();
    for (name, value) in [
        (
            "title",
            json!({"type": "string", "minLength": 1, "maxLength": 500}),
        ),
        ("description", json!({"type": "string"})),
        ("details", json!({"type": "string"})),
        ("test_strategy", json!({"type": "string"})),
        ("status", json!({"type": "string", "enum": statuses})),
        ("priority", json!({"type": "string", "enum": priorities})),
        (
            "dependencies",
            json!({"type": "array", "items": {"type": "integer", "minimum": 1},
            "description": "Ids of tasks of the project this one waits on."}),
        ),
        (
            "assignee_id",
            json!({"type": ["string", "null"], "description": "A member's user id."}),
        ),
    ] {
        properties.insert(name.into(), value);
    }
}

fn tools() -> Vec<Tool> {
    let with_fields = |extra: Value, fields: bool| {
        let mut properties = Map::new();
        properties.insert("project_id".into(), project_id());
        if let Value::Object(extra) = extra {
            properties.extend(extra);
        }
        if fields {
            task_fields(&mut properties);
        }
        Value::Object(properties)
    };
    let tool = |name: &'static str, description: &'static str, input: Arc<JsonObject>| {
        Tool::new(name, description, input)
    };
    let statuses: Vec<&str> = TaskStatus::ALL
        .iter()
        .map(|status| status.as_str())
        .collect();
    vec![
        tool(
            "list_projects",
            "The projects the caller is a member of.",
            schema(json!({}), &[]),
        ),
        tool(
            "get_tasks",
            "A page of the project's tasks in id order (subtasks too), optionally only some statuses; pass next_cursor back as cursor for the next page.",
            schema(
                with_fields(
                    json!({
                        "status": {"type": "string", "description": format!("Comma-separated statuses: {}", statuses.join(", "))},
                        "limit": {"type": "integer", "minimum": 1, "maximum": 500},
                        "cursor": {"type": "string"},
                    }),
                    false,
                ),
                &["project_id"],
            ),
        ),
        tool(
            "get_task",
            "One task.",
            schema(with_fields(json!({"id": task_id("The task's id.")}), false), &["project_id", "id"]),
        ),
        tool(
            "next_task",
            "The task to work on next (Task Master's rule), or null when every open task waits on another.",
            schema(with_fields(json!({}), false), &["project_id"]),
        ),
        tool(
            "add_task",
            "Add a task (title required).",
            schema(with_fields(json!({"parent_id": task_id("Make it a subtask of this top-level task.")}), true), &["project_id", "title"]),
        ),
        tool(
            "update_task",
            "Change any of a task's fields.",
            schema(
                with_fields(
                    json!({
                        "id": task_id("The task's id."),
                        "parent_id": {"type": ["integer", "null"], "minimum": 1},
                    }),
                    true,
                ),
                &["project_id", "id"],
            ),
        ),
        tool(
            "set_task_status",
            "Set a task's status.",
            schema(
                with_fields(json!({"id": task_id("The task's id."), "status": {"type": "string", "enum": statuses}}), false),
                &["project_id", "id", "status"],
            ),
        ),
        tool(
            "add_subtask",
            "Add a subtask to a top-level task (title required).",
            schema(with_fields(json!({"parent_id": task_id("The parent task's id.")}), true), &["project_id", "parent_id", "title"]),
        ),
        tool(
            "add_dependency",
            "Make a task wait on another (a cycle is refused).",
            schema(
                with_fields(json!({"id": task_id("The task that waits."), "depends_on": task_id("The task it waits on.")}), false),
                &["project_id", "id", "depends_on"],
            ),
        ),
        tool(
            "remove_dependency",
            "Stop a task waiting on another.",
            schema(
                with_fields(json!({"id": task_id("The task that waits."), "depends_on": task_id("The task it waits on.")}), false),
                &["project_id", "id", "depends_on"],
            ),
        ),
        tool(
            "remove_task",
            "Delete a task and its subtasks; tasks that waited on it stop waiting.",
            schema(with_fields(json!({"id": task_id("The task's id.")}), false), &["project_id", "id"]),
        ),
    ]
}

/// The arguments of a call, taken apart as REST takes a request apart.
struct Arguments(Map<String, Value>);

impl Arguments {
    fn take_string(&mut self, name: &str) -> Result<String> {
        match self.0.remove(name) {
            Some(Value::String(value)) => Ok(value),
            Some(_) => Err(Error::Malformed(
                "invalid_argument",
                format!("{name} must be a string"),
            )),
            None => Err(Error::validation(format!("{name} is required"))),
        }
    }

    fn take_optional_string(&mut self, name: &str) -> Result<Option<String>> {
        match self.0.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(value)) => Ok(Some(value)),
            Some(_) => Err(Error::Malformed(
                "invalid_argument",
                format!("{name} must be a string"),
            )),
        }
    }

    fn take_id(&mut self, name: &str) -> Result<i64> {
        match self.0.remove(name) {
            Some(Value::Number(number)) => number
                .as_i64()
                .filter(|id| *id > 0)
                .ok_or_else(|| Error::validation(format!("{name} must be a positive integer"))),
            Some(_) => Err(Error::Malformed(
                "invalid_argument",
                format!("{name} must be an integer"),
            )),
            None => Err(Error::validation(format!("{name} is required"))),
        }
    }

    /// What is left, read as the REST body `T` is read (unknown fields 422,
    /// wrong types 400).
    fn rest<T: serde::de::DeserializeOwned>(self) -> Result<T> {
        let bytes = serde_json::to_vec(&Value::Object(self.0)).map_err(anyhow::Error::from)?;
        parse_json(&bytes)
    }

    fn none_left(self) -> Result<()> {
        match self.0.keys().next() {
            None => Ok(()),
            Some(name) => Err(Error::Invalid(
                "invalid_field",
                format!("unknown field `{name}`"),
            )),
        }
    }
}

impl TaskMasterTools {
    async fn call(&self, actor: &Actor, name: &str, mut arguments: Arguments) -> Result<Value> {
        let app = &self.app;
        if name == "list_projects" {
            arguments.none_left()?;
            return Ok(json!({ "items": to_json(&app.projects(actor).await?)? }));
        }
        let project = arguments.take_string("project_id")?;
        match name {
            "get_tasks" => {
                let statuses = crate::http::params::parse_statuses(
                    arguments.take_optional_string("status")?.as_deref(),
                )?;
                let limit = match arguments.0.remove("limit") {
                    None | Some(Value::Null) => DEFAULT_PAGE,
                    Some(Value::Number(number)) => number
                        .as_i64()
                        .filter(|limit| (1..=crate::http::tasks::MAX_PAGE).contains(limit))
                        .ok_or_else(|| Error::validation("limit must be between 1 and 500"))?,
                    Some(_) => {
                        return Err(Error::Malformed(
                            "invalid_argument",
                            "limit must be an integer".into(),
                        ))
                    }
                };
                let after = match arguments.take_optional_string("cursor")? {
                    Some(cursor) => crate::app::decode_cursor(&cursor)?,
                    None => 0,
                };
                arguments.none_left()?;
                let query = TaskQuery {
                    statuses,
                    after,
                    limit,
                };
                snapshot_json(app.tasks(actor, &project, &query, None, None).await?)
            }
            "get_task" => {
                let id = arguments.take_id("id")?;
                arguments.none_left()?;
                to_json(&app.task(actor, &project, id, None).await?)
            }
            "next_task" => {
                arguments.none_left()?;
                snapshot_json(app.next_task(actor, &project, None, None).await?)
            }
            "add_task" => {
                let new: NewTask = arguments.rest()?;
                to_json(&app.create_task(actor, &project, new).await?)
            }
            "add_subtask" => {
                let new: NewTask = arguments.rest()?;
                if new.parent_id.is_none() {
                    return Err(Error::validation("parent_id is required"));
                }
                to_json(&app.create_task(actor, &project, new).await?)
            }
            "update_task" => {
                let id = arguments.take_id("id")?;
                let patch: TaskPatch = arguments.rest()?;
                to_json(&app.update_task(actor, &project, id, patch, None).await?)
            }
            "set_task_status" => {
                let id = arguments.take_id("id")?;
                // The status as REST reads it, and nothing else.
                let status = arguments
                    .0
                    .remove("status")
                    .ok_or_else(|| Error::validation("status is required"))?;
                arguments.none_left()?;
                let patch: TaskPatch =
                    Arguments(Map::from_iter([("status".to_owned(), status)])).rest()?;
                to_json(&app.update_task(actor, &project, id, patch, None).await?)
            }
            "add_dependency" | "remove_dependency" => {
                let id = arguments.take_id("id")?;
                let depends_on = arguments.take_id("depends_on")?;
                arguments.none_left()?;
                let adding = name == "add_dependency";
                // Read, change, write with If-Match; re-read once if someone
                // changed the task in between.
                let mut retried = false;
                loop {
                    let current = app.task(actor, &project, id, None).await?;
                    let mut dependencies = current.dependencies.clone();
                    if adding {
                        if !dependencies.contains(&depends_on) {
                            dependencies.push(depends_on);
                        }
                    } else {
                        dependencies.retain(|dependency| *dependency != depends_on);
                    }
                    let patch = TaskPatch {
                        dependencies: Some(dependencies),
                        ..TaskPatch::default()
                    };
                    match app
                        .update_task(actor, &project, id, patch, Some(current.version))
                        .await
                    {
                        Err(Error::VersionMismatch(_)) if !retried => retried = true,
                        result => return to_json(&result?),
                    }
                }
            }
            "remove_task" => {
                let id = arguments.take_id("id")?;
                arguments.none_left()?;
                app.delete_task(actor, &project, id, None).await?;
                Ok(json!({"deleted": id}))
            }
            other => Err(Error::NotFound(
                "unknown_tool",
                format!("no tool named {other}"),
            )),
        }
    }
}

fn to_json(value: &impl serde::Serialize) -> Result<Value> {
    Ok(serde_json::to_value(value).map_err(anyhow::Error::from)?)
}

/// A cached read's body as JSON (`null` for "no task").
fn snapshot_json(answer: Conditional) -> Result<Value> {
    match answer {
        Conditional::Body(snapshot) if snapshot.json.is_empty() => Ok(Value::Null),
        Conditional::Body(snapshot) => {
            Ok(serde_json::from_slice(&snapshot.json).map_err(anyhow::Error::from)?)
        }
        Conditional::NotModified(_) => Ok(Value::Null),
    }
}

impl ServerHandler for TaskMasterTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("taskmaster", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Task Master: a shared, live plan of numbered tasks with statuses, priorities, \
                 dependencies and subtasks. Start with list_projects, then next_task to find \
                 what to work on; every change is seen by everyone on the project at once.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> std::result::Result<CallToolResponse, ErrorData> {
        let actor = context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Actor>())
            .cloned()
            .ok_or_else(|| ErrorData::invalid_request("not signed in", None))?;
        let arguments = Arguments(request.arguments.unwrap_or_default());
        let result = match self.call(&actor, &request.name, arguments).await {
            Ok(value) => {
                let text = serde_json::to_string(&value).unwrap_or_default();
                let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
                result.structured_content = Some(match value {
                    Value::Object(_) => value,
                    other => json!({ "result": other }),
                });
                result
            }
            Err(error) => {
                if matches!(error, Error::Internal(_)) {
                    tracing::error!(tool = %request.name, error = ?error, "MCP tool failed");
                }
                let status = error.status_code();
                let body = error.body();
                let mut result = CallToolResult::error(vec![ContentBlock::text(format!(
                    "{} ({status} {})",
                    body.error.message, body.error.code
                ))]);
                result.structured_content = Some(json!({
                    "error": {"status": status, "code": body.error.code, "message": body.error.message}
                }));
                result
            }
        };
        Ok(result.into())
    }
}
