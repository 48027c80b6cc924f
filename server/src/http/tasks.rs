//! `/api/v1/projects/{project_id}/tasks` and the project's change log.

use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use protocol::{BulkChange, BulkResult, ErrorBody, EventPage, NewTask, Task, TaskPage, TaskPatch};
use serde::Deserialize;

use super::extract::{AuthUser, Json, Path, Query};
use super::params::{
    etag_matches, header_str, if_none_match_seq, parse_bounded, parse_if_match, parse_statuses,
    parse_task_id, seen_seq,
};
use crate::app::{decode_cursor, Conditional, TaskQuery, DEFAULT_PAGE};
use crate::db;
use crate::error::{Error, Result};
use crate::state::AppState;

pub const MAX_PAGE: i64 = 500;

/// Create a task. Editors and owners.
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/tasks", tag = "tasks",
    request_body = NewTask, params(("project_id" = String, Path)),
    responses((status = 201, body = Task), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Path(project_id): Path<String>,
    Json(new): Json<NewTask>,
) -> Result<Response> {
    let task = state.app.create_task(&user.0, &project_id, new).await?;
    Ok(with_etag(StatusCode::CREATED, task))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    /// Only tasks with this status (several may be given, comma-separated).
    status: Option<String>,
    /// Page size, 1–500 (default 100).
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List tasks in id order, a page at a time.
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/tasks", tag = "tasks",
    params(("project_id" = String, Path), ListParams,
           ("If-None-Match" = Option<String>, Header, description = "The page's `ETag` (`\"s<seq>\"`): 304 while the project is unchanged"),
           ("X-Min-Seq" = Option<i64>, Header, description = "A seq the caller has seen; the answer includes it")),
    responses((status = 200, body = TaskPage), (status = 304), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Path(project_id): Path<String>,
    Query(params): Query<ListParams>,
    headers: HeaderMap,
) -> Result<Response> {
    let limit = parse_limit(params.limit.as_deref())?;
    let after = params
        .cursor
        .as_deref()
        .map(decode_cursor)
        .transpose()?
        .unwrap_or(0);
    let statuses = parse_statuses(params.status.as_deref())?;
    let query = TaskQuery {
        statuses,
        after,
        limit,
    };
    let answer = state
        .app
        .tasks(
            &user.0,
            &project_id,
            &query,
            if_none_match_seq(&headers)?,
            seen_seq(&headers)?,
        )
        .await?;
    Ok(conditional(answer, StatusCode::OK))
}

/// One task, with `ETag: "<version>"`; `If-None-Match` with it gives 304.
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/tasks/{id}", tag = "tasks",
    params(("project_id" = String, Path), ("id" = i64, Path, minimum = 1),
           ("If-None-Match" = Option<String>, Header, description = "The task's `ETag`: 304 while it is unchanged"),
           ("X-Min-Seq" = Option<i64>, Header, description = "A seq the caller has seen; the answer includes it")),
    responses((status = 200, body = Task), (status = 304), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    Path((project_id, task_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    let task_id = parse_task_id(&task_id)?;
    let task = state
        .app
        .task(&user.0, &project_id, task_id, seen_seq(&headers)?)
        .await?;
    if let Some(condition) = header_str(&headers, IF_NONE_MATCH.as_str())? {
        if etag_matches(condition, task.version) {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            response.headers_mut().insert(ETAG, etag(task.version));
            return Ok(response);
        }
    }
    Ok(with_etag(StatusCode::OK, task))
}

/// Change any subset of the writable fields. `If-Match` guards against lost
/// updates: a stale version gives 412 and changes nothing.
#[utoipa::path(patch, path = "/api/v1/projects/{project_id}/tasks/{id}", tag = "tasks",
    request_body = TaskPatch,
    params(("project_id" = String, Path), ("id" = i64, Path, minimum = 1),
           ("If-Match" = Option<String>, Header, description = "ETag of the version being changed")),
    responses((status = 200, body = Task), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 412, body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    Path((project_id, task_id)): Path<(String, String)>,
    headers: HeaderMap,
    Json(patch): Json<TaskPatch>,
) -> Result<Response> {
    let task_id = parse_task_id(&task_id)?;
    let if_match = parse_if_match(&headers)?;
    let task = state
        .app
        .update_task(&user.0, &project_id, task_id, patch, if_match)
        .await?;
    Ok(with_etag(StatusCode::OK, task))
}

/// Delete a task with its subtasks; tasks that depended on it lose that dependency.
#[utoipa::path(delete, path = "/api/v1/projects/{project_id}/tasks/{id}", tag = "tasks",
    params(("project_id" = String, Path), ("id" = i64, Path, minimum = 1),
           ("If-Match" = Option<String>, Header, description = "ETag of the version being deleted")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 412, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    Path((project_id, task_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode> {
    let task_id = parse_task_id(&task_id)?;
    let if_match = parse_if_match(&headers)?;
    state
        .app
        .delete_task(&user.0, &project_id, task_id, if_match)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Apply one change (status, priority, assignee, or deletion) to up to 500
/// tasks as one change set: checked as a whole (any refusal changes
/// nothing), one transaction, one event per task changed, in the order of
/// `task_ids`. Editors and owners.
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/tasks/bulk", tag = "tasks",
    request_body = BulkChange, params(("project_id" = String, Path)),
    responses((status = 200, body = BulkResult), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn bulk(
    State(state): State<AppState>,
    user: AuthUser,
    Path(project_id): Path<String>,
    Json(change): Json<BulkChange>,
) -> Result<axum::Json<BulkResult>> {
    Ok(axum::Json(
        state.app.bulk_change(&user.0, &project_id, change).await?,
    ))
}

/// The task to work on next (Task Master's rule), or 204 when there is none.
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/tasks/next", tag = "tasks",
    params(("project_id" = String, Path),
           ("If-None-Match" = Option<String>, Header, description = "The answer's `ETag` (`\"s<seq>\"`): 304 while the project is unchanged"),
           ("X-Min-Seq" = Option<i64>, Header, description = "A seq the caller has seen; the answer includes it")),
    responses((status = 200, body = Task), (status = 204), (status = 304), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn next(
    State(state): State<AppState>,
    user: AuthUser,
    Path(project_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let answer = state
        .app
        .next_task(
            &user.0,
            &project_id,
            if_none_match_seq(&headers)?,
            seen_seq(&headers)?,
        )
        .await?;
    // An empty body is "no task": 204, still with the seq's validator.
    Ok(match answer {
        Conditional::Body(snapshot) if snapshot.json.is_empty() => {
            conditional(Conditional::Body(snapshot), StatusCode::NO_CONTENT)
        }
        answer => conditional(answer, StatusCode::OK),
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct EventParams {
    /// Return events with seq greater than this (default 0).
    since: Option<String>,
    /// At most this many, 1–1000 (default 100).
    limit: Option<String>,
}

/// The project's change log after `since`, oldest first.
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/events", tag = "tasks",
    params(("project_id" = String, Path), EventParams),
    responses((status = 200, body = EventPage), (status = 404, body = ErrorBody),
              (status = 410, body = ErrorBody, description = "`since` is older than the history kept: `resync_required`"),
              (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn events(
    State(state): State<AppState>,
    user: AuthUser,
    Path(project_id): Path<String>,
    Query(params): Query<EventParams>,
) -> Result<axum::Json<EventPage>> {
    let since = match params.since.as_deref() {
        None => 0,
        Some(raw) => match raw.parse::<i64>() {
            Ok(since) if since >= 0 => since,
            Ok(_) => return Err(Error::validation("since must not be negative")),
            Err(_) => {
                return Err(Error::Malformed(
                    "invalid_query",
                    "since must be an integer".into(),
                ))
            }
        },
    };
    let limit = parse_bounded(
        "limit",
        params.limit.as_deref(),
        DEFAULT_PAGE,
        db::events::MAX_PAGE,
    )?;
    let page = state.app.events(&user.0, &project_id, since, limit).await?;
    Ok(axum::Json(page))
}

fn with_etag(status: StatusCode, task: Task) -> Response {
    let tag = etag(task.version);
    let mut response = (status, axum::Json(task)).into_response();
    response.headers_mut().insert(ETAG, tag);
    response
}

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// A list page or next-task as its body (already JSON) with the project
/// seq it was read at as a strong validator, or 304 with that validator.
fn parse_limit(raw: Option<&str>) -> Result<i64> {
    parse_bounded("limit", raw, DEFAULT_PAGE, MAX_PAGE)
}

fn conditional(answer: Conditional, status: StatusCode) -> Response {
    let (status, seq, body) = match answer {
        Conditional::NotModified(seq) => (StatusCode::NOT_MODIFIED, seq, Bytes::new()),
        Conditional::Body(snapshot) => (status, snapshot.seq, snapshot.json),
    };
    let mut response = if status == StatusCode::OK {
        (
            status,
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            body,
        )
            .into_response()
    } else {
        status.into_response()
    };
    if let Ok(tag) = HeaderValue::from_str(&format!("\"s{seq}\"")) {
        response.headers_mut().insert(ETAG, tag);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::TaskStatus;

    #[test]
    fn limits() {
        assert_eq!(parse_limit(None).unwrap(), 100);
        assert_eq!(parse_limit(Some("500")).unwrap(), 500);
        assert_eq!(parse_limit(Some("501")).unwrap_err().status_code(), 422);
        assert_eq!(parse_limit(Some("0")).unwrap_err().status_code(), 422);
        assert_eq!(parse_limit(Some("-1")).unwrap_err().status_code(), 422);
        assert_eq!(parse_limit(Some("ten")).unwrap_err().status_code(), 400);
        assert_eq!(
            parse_limit(Some("99999999999999999999999"))
                .unwrap_err()
                .status_code(),
            400
        );
    }

    #[test]
    fn statuses_filter() {
        assert_eq!(
            parse_statuses(Some("pending,in-progress")).unwrap(),
            vec![TaskStatus::Pending, TaskStatus::InProgress]
        );
        assert!(parse_statuses(Some("")).unwrap().is_empty());
        assert!(parse_statuses(Some("finished")).is_err());
    }
}
