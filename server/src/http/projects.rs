//! `/api/v1/projects`, their members, and their audit log.

use axum::extract::State;
use axum::http::StatusCode;
use protocol::{
    AddMemberRequest, AuditPage, CreateProjectRequest, ErrorBody, Items, Member, Project,
};
use serde::Deserialize;

use super::extract::{AuthUser, Json, Path, Query};
use super::params::parse_bounded;
use crate::app::{AUDIT_PAGE, MAX_AUDIT_PAGE};
use crate::db::projects::PutOutcome;
use crate::error::Result;
use crate::state::AppState;

/// Create a project; the caller becomes its owner.
#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", request_body = CreateProjectRequest,
    responses((status = 201, body = Project), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Json(request): Json<CreateProjectRequest>,
) -> Result<(StatusCode, axum::Json<Project>)> {
    let project = state.app.create_project(&user.0, &request.name).await?;
    Ok((StatusCode::CREATED, axum::Json(project)))
}

/// The caller's projects.
#[utoipa::path(get, path = "/api/v1/projects", tag = "projects",
    responses((status = 200, body = Items<Project>)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<axum::Json<Items<Project>>> {
    let items = state.app.projects(&user.0).await?;
    Ok(axum::Json(Items { items }))
}

/// Add a member by email, or change an existing member's role. Owners only.
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/members", tag = "members",
    request_body = AddMemberRequest,
    params(("project_id" = String, Path)),
    responses((status = 201, body = Member), (status = 200, body = Member),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn add_member(
    State(state): State<AppState>,
    user: AuthUser,
    Path(project_id): Path<String>,
    Json(request): Json<AddMemberRequest>,
) -> Result<(StatusCode, axum::Json<Member>)> {
    let (member, outcome) = state.app.put_member(&user.0, &project_id, request).await?;
    let status = match outcome {
        PutOutcome::Added => StatusCode::CREATED,
        PutOutcome::Updated => StatusCode::OK,
    };
    Ok((status, axum::Json(member)))
}

/// The project's members.
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/members", tag = "members",
    params(("project_id" = String, Path)),
    responses((status = 200, body = Items<Member>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_members(
    State(state): State<AppState>,
    user: AuthUser,
    Path(project_id): Path<String>,
) -> Result<axum::Json<Items<Member>>> {
    let items = state.app.members(&user.0, &project_id).await?;
    Ok(axum::Json(Items { items }))
}

/// Remove a member. Owners may remove anyone; any member may remove themselves.
/// The last owner cannot be removed.
#[utoipa::path(delete, path = "/api/v1/projects/{project_id}/members/{user_id}", tag = "members",
    params(("project_id" = String, Path), ("user_id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn remove_member(
    State(state): State<AppState>,
    user: AuthUser,
    Path((project_id, user_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    state
        .app
        .remove_member(&user.0, &project_id, &user_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuditParams {
    /// At most this many entries, 1–200 (default 50).
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The project's audit log, newest first: who added or removed whom, and
/// who changed whose role, when. Owners only.
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/audit", tag = "members",
    params(("project_id" = String, Path), AuditParams),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn audit_log(
    State(state): State<AppState>,
    user: AuthUser,
    Path(project_id): Path<String>,
    Query(params): Query<AuditParams>,
) -> Result<axum::Json<AuditPage>> {
    let limit = parse_bounded("limit", params.limit.as_deref(), AUDIT_PAGE, MAX_AUDIT_PAGE)?;
    let page = state
        .app
        .audit_log(&user.0, &project_id, limit, params.cursor.as_deref())
        .await?;
    Ok(axum::Json(page))
}
