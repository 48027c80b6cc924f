//! Task Master files: `POST /api/v1/imports` and the exports.

use std::io::Write as _;

use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use protocol::{ErrorBody, ImportResponse, TaskFileImport};
use serde::Deserialize;

use super::extract::{AuthUser, JsonBytes, Path, Query, TextBody};
use crate::error::{Error, Result};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ImportParams {
    /// The new project's name (a legacy file), or the prefix of each
    /// tag's project name (`name: tag`). The tag alone by default.
    name: Option<String>,
}

/// Import a Task Master `tasks.json` (legacy or tagged): one new project
/// per tag, owned by the caller, all in one transaction.
#[utoipa::path(post, path = "/api/v1/imports", tag = "files",
    params(ImportParams),
    request_body(content = serde_json::Value, content_type = "application/json",
        description = "A tasks.json file, exactly as Task Master keeps it."),
    responses((status = 201, body = ImportResponse), (status = 400, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Query(params): Query<ImportParams>,
    JsonBytes(body): JsonBytes,
) -> Result<(StatusCode, axum::Json<ImportResponse>)> {
    let imported = state
        .app
        .import_tasks_json(&user.0, &body, params.name.as_deref())
        .await?;
    Ok((StatusCode::CREATED, axum::Json(imported)))
}

/// A file answer: its media type, and a name to save it under.
fn file(body: impl Into<axum::body::Body>, media_type: &'static str, name: &str) -> Response {
    let mut response = (StatusCode::OK, body.into()).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(media_type));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(CONTENT_DISPOSITION, value);
    }
    response
}

/// The imported file rebuilt from the current state of its projects, in
/// the format it came in: right after the import, the file itself.
#[utoipa::path(get, path = "/api/v1/imports/{import_id}/tasks.json", tag = "files",
    params(("import_id" = String, Path)),
    responses((status = 200, content_type = "application/json", body = serde_json::Value),
              (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn export(
    State(state): State<AppState>,
    user: AuthUser,
    Path(import_id): Path<String>,
) -> Result<Response> {
    let text = state.app.export_import(&user.0, &import_id).await?;
    Ok(file(text, "application/json", "tasks.json"))
}

/// One project as a legacy `tasks.json`.
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/tasks.json", tag = "files",
    params(("project_id" = String, Path)),
    responses((status = 200, content_type = "application/json", body = serde_json::Value),
              (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn export_project(
    State(state): State<AppState>,
    user: AuthUser,
    Path(project_id): Path<String>,
) -> Result<Response> {
    let text = state.app.export_project(&user.0, &project_id).await?;
    Ok(file(text, "application/json", "tasks.json"))
}

/// Add one task file (`task_NNN.txt` / `.md`, as `task-master generate`
/// writes it) to a project: the task and its subtasks, as new tasks.
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/imports", tag = "files",
    params(("project_id" = String, Path)),
    request_body(content = String, content_type = "text/plain",
        description = "One task file (text/plain or text/markdown)."),
    responses((status = 201, body = TaskFileImport), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn import_task_file(
    State(state): State<AppState>,
    user: AuthUser,
    Path(project_id): Path<String>,
    TextBody(text): TextBody,
) -> Result<(StatusCode, axum::Json<TaskFileImport>)> {
    let imported = state
        .app
        .import_task_file(&user.0, &project_id, &text)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(imported)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct TaskFilesParams {
    /// `txt` (default) or `md`.
    format: Option<String>,
}

/// The project's task files as `task-master generate` writes them, in a
/// zip (`tasks/task_001.txt`, ...).
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/task-files", tag = "files",
    params(("project_id" = String, Path), TaskFilesParams),
    responses((status = 200, content_type = "application/zip", body = String),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn task_files(
    State(state): State<AppState>,
    user: AuthUser,
    Path(project_id): Path<String>,
    Query(params): Query<TaskFilesParams>,
) -> Result<Response> {
    let extension = match params.format.as_deref() {
        None | Some("txt") => "txt",
        Some("md") => "md",
        Some(other) => {
            return Err(Error::validation(format!(
                "format must be txt or md, not {other:?}"
            )))
        }
    };
    let files = state
        .app
        .task_files(&user.0, &project_id, extension)
        .await?;
    let mut archive = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, text) in files {
        archive
            .start_file(format!("tasks/{name}"), options)
            .map_err(anyhow::Error::from)?;
        archive
            .write_all(text.as_bytes())
            .map_err(anyhow::Error::from)?;
    }
    let bytes = archive.finish().map_err(anyhow::Error::from)?.into_inner();
    Ok(file(bytes, "application/zip", "tasks.zip"))
}
