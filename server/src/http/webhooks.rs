//! `/api/v1/projects/{project_id}/webhooks` (owners) and `/api/v1/jobs/{id}`.

use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use protocol::{
    CreateWebhookRequest, CreatedWebhook, DeadLetter, ErrorBody, Items, JobStatus,
    RedeliverRequest, Webhook,
};

use super::extract::{AuthUser, Json, Path};
use crate::error::Result;
use crate::state::AppState;

/// Register a webhook: every committed event of the project from now on
/// (of the types asked for) is posted to the URL, signed with the secret in
/// this answer (`X-TaskMaster-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
/// "<t>.<body>">`), at least once and in seq order. Owners only.
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/webhooks", tag = "webhooks",
    request_body = CreateWebhookRequest, params(("project_id" = String, Path)),
    responses((status = 201, body = CreatedWebhook), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Path(project_id): Path<String>,
    Json(request): Json<CreateWebhookRequest>,
) -> Result<(StatusCode, axum::Json<CreatedWebhook>)> {
    let created = state
        .app
        .create_webhook(&user.0, &project_id, request)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// The project's webhooks (never their secrets). Owners only.
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/webhooks", tag = "webhooks",
    params(("project_id" = String, Path)),
    responses((status = 200, body = Items<Webhook>), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Path(project_id): Path<String>,
) -> Result<axum::Json<Items<Webhook>>> {
    let items = state.app.webhooks(&user.0, &project_id).await?;
    Ok(axum::Json(Items { items }))
}

/// Delete a webhook. Owners only.
#[utoipa::path(delete, path = "/api/v1/projects/{project_id}/webhooks/{webhook_id}", tag = "webhooks",
    params(("project_id" = String, Path), ("webhook_id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    Path((project_id, webhook_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    state
        .app
        .delete_webhook(&user.0, &project_id, &webhook_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Turn a disabled webhook back on; it goes on from where it stopped.
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/webhooks/{webhook_id}/enable", tag = "webhooks",
    params(("project_id" = String, Path), ("webhook_id" = String, Path)),
    responses((status = 200, body = Webhook), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn enable(
    State(state): State<AppState>,
    user: AuthUser,
    Path((project_id, webhook_id)): Path<(String, String)>,
) -> Result<axum::Json<Webhook>> {
    let webhook = state
        .app
        .enable_webhook(&user.0, &project_id, &webhook_id)
        .await?;
    Ok(axum::Json(webhook))
}

/// The events the webhook gave up on, oldest first.
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/webhooks/{webhook_id}/dead-letters", tag = "webhooks",
    params(("project_id" = String, Path), ("webhook_id" = String, Path)),
    responses((status = 200, body = Items<DeadLetter>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn dead_letters(
    State(state): State<AppState>,
    user: AuthUser,
    Path((project_id, webhook_id)): Path<(String, String)>,
) -> Result<axum::Json<Items<DeadLetter>>> {
    let items = state
        .app
        .dead_letters(&user.0, &project_id, &webhook_id)
        .await?;
    Ok(axum::Json(Items { items }))
}

/// Send dead letters again (some, or all pending), as a background job.
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/webhooks/{webhook_id}/redeliver", tag = "webhooks",
    request_body = RedeliverRequest,
    params(("project_id" = String, Path), ("webhook_id" = String, Path)),
    responses((status = 202, body = JobStatus), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn redeliver(
    State(state): State<AppState>,
    user: AuthUser,
    Path((project_id, webhook_id)): Path<(String, String)>,
    Json(request): Json<RedeliverRequest>,
) -> Result<Response> {
    let job = state
        .app
        .redeliver(&user.0, &project_id, &webhook_id, request)
        .await?;
    let location = HeaderValue::from_str(&format!("/api/v1/jobs/{}", job.id)).ok();
    let mut response = (StatusCode::ACCEPTED, axum::Json(job)).into_response();
    if let Some(location) = location {
        response.headers_mut().insert(LOCATION, location);
    }
    Ok(response)
}

/// A background job's state, attempts, progress and result: for whoever
/// asked for it, and the owners of its project.
#[utoipa::path(get, path = "/api/v1/jobs/{job_id}", tag = "jobs",
    params(("job_id" = String, Path)),
    responses((status = 200, body = JobStatus), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn job(
    State(state): State<AppState>,
    user: AuthUser,
    Path(job_id): Path<String>,
) -> Result<axum::Json<JobStatus>> {
    Ok(axum::Json(state.app.job(&user.0, &job_id).await?))
}
