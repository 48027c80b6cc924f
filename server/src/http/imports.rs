//! Task Master files: `POST /api/v1/imports` and the exports.

use std::io::Write as _;

use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use protocol::{ErrorBody, ImportResponse, JobStatus, TaskFileImport};
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
///
/// With `Prefer: respond-async` (RFC 7240) the file is checked at once —
/// every refusal is the same — and then imported by a background job: 202
/// with the job (its `Location`), whose progress (`tasks_done`,
/// `tasks_total`) and end reach the caller's Socket.IO connections as `job`
/// messages, and whose `result` is the body a 201 would have had.
#[utoipa::path(post, path = "/api/v1/imports", tag = "files",
    params(ImportParams,
        ("Prefer" = Option<String>, Header,
         description = "`respond-async`: import in the background and answer 202 with the job.")),
    request_body(content = serde_json::Value, content_type = "application/json",
        description = "A tasks.json file, exactly as Task Master keeps it."),
    responses((status = 201, body = ImportResponse),
              (status = 202, body = JobStatus, description = "Queued (`Prefer: respond-async`).",
               headers(("Location" = String, description = "The job's status."),
                       ("Preference-Applied" = String))),
              (status = 400, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Query(params): Query<ImportParams>,
    JsonBytes(body): JsonBytes,
) -> Result<Response> {
    if wants_async(&headers) {
        let job = state
            .app
            .queue_import(&user.0, &body, params.name.as_deref())
            .await?;
        let mut response = (StatusCode::ACCEPTED, axum::Json(&job)).into_response();
        let response_headers = response.headers_mut();
        if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/jobs/{}", job.id)) {
            response_headers.insert(LOCATION, location);
        }
        response_headers.insert(
            HeaderName::from_static("preference-applied"),
            HeaderValue::from_static("respond-async"),
        );
        return Ok(response);
    }
    let imported = state
        .app
        .import_tasks_json(&user.0, &body, params.name.as_deref())
        .await?;
    Ok((StatusCode::CREATED, axum::Json(imported)).into_response())
}

/// Whether a `Prefer` header asks for `respond-async` (RFC 7240: a comma
/// separated list of preferences, each maybe with parameters).
fn wants_async(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|preference| {
            let token = preference.split(';').next().unwrap_or_default().trim();
            token.eq_ignore_ascii_case("respond-async")
        })
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
