//! The REST client: every call has a timeout, and every failure becomes an
//! [`ApiError`] carrying the contract's error code and message.

use std::time::Duration;

use protocol::{ErrorBody, Task, TaskPatch};
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Headers, RequestInit, Response};

use crate::session;

/// How long any request may take before the user is told it timed out.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A failed call: the HTTP status (0 when there was no response) and what
/// the server (or the network) said.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl ApiError {
    fn network(message: impl Into<String>) -> Self {
        Self {
            status: 0,
            code: "network".into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

pub type ApiResult<T> = Result<T, ApiError>;

/// A successful response: its status and body text.
struct Answer {
    status: u16,
    body: String,
}

async fn send(
    method: &str,
    path: &str,
    body: Option<String>,
    if_match: Option<i64>,
) -> ApiResult<Answer> {
    let window = web_sys::window().ok_or_else(|| ApiError::network("no window"))?;
    let headers = Headers::new().map_err(js_error)?;
    if body.is_some() {
        headers
            .set("content-type", "application/json")
            .map_err(js_error)?;
    }
    // The session cookie goes with the request by itself (same origin);
    // a write proves it comes from our page with the CSRF value.
    if method != "GET" {
        if let Some(csrf) = session::csrf_token() {
            headers.set("x-csrf-token", &csrf).map_err(js_error)?;
        }
    }
    if let Some(version) = if_match {
        headers
            .set("if-match", &format!("\"{version}\""))
            .map_err(js_error)?;
    }
    let controller = AbortController::new().map_err(js_error)?;
    let init = RequestInit::new();
    init.set_method(method);
    init.set_headers(&headers);
    init.set_signal(Some(&controller.signal()));
    if let Some(body) = &body {
        init.set_body(&JsValue::from_str(body));
    }
    let abort =
        leptos::prelude::set_timeout_with_handle(move || controller.abort(), REQUEST_TIMEOUT).ok();
    let fetched = JsFuture::from(window.fetch_with_str_and_init(path, &init)).await;
    let response: Response = match fetched {
        Ok(value) => value.unchecked_into(),
        Err(error) => {
            let aborted = error
                .dyn_ref::<web_sys::DomException>()
                .is_some_and(|exception| exception.name() == "AbortError");
            return Err(if aborted {
                ApiError::network(format!(
                    "The server did not answer within {} seconds. Check your connection and retry.",
                    REQUEST_TIMEOUT.as_secs()
                ))
            } else {
                ApiError::network("Cannot reach the server. Check your connection and retry.")
            });
        }
    };
    let text = match response.text() {
        Ok(promise) => JsFuture::from(promise)
            .await
            .ok()
            .and_then(|t| t.as_string()),
        Err(_) => None,
    }
    .unwrap_or_default();
    if let Some(abort) = abort {
        abort.clear();
    }
    let status = response.status();
    if (200..300).contains(&status) {
        return Ok(Answer { status, body: text });
    }
    if status == 401 && !path.starts_with("/api/v1/auth/") {
        session::sign_out_locally();
    }
    Err(match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => ApiError {
            status,
            code: body.error.code,
            message: body.error.message,
        },
        Err(_) => ApiError {
            status,
            code: "http_error".into(),
            message: format!("The server answered {status}. Retry in a moment."),
        },
    })
}

fn js_error(error: JsValue) -> ApiError {
    ApiError::network(format!("{error:?}"))
}

fn decode<T: DeserializeOwned>(answer: Answer) -> ApiResult<T> {
    serde_json::from_str(&answer.body).map_err(|error| ApiError {
        status: answer.status,
        code: "bad_response".into(),
        message: format!("Unexpected answer from the server: {error}"),
    })
}

fn encode(body: &impl Serialize) -> Option<String> {
    serde_json::to_string(body).ok()
}

pub async fn get<T: DeserializeOwned>(path: &str) -> ApiResult<T> {
    decode(send("GET", path, None, None).await?)
}

pub async fn post<T: DeserializeOwned>(path: &str, body: &impl Serialize) -> ApiResult<T> {
    decode(send("POST", path, encode(body), None).await?)
}

pub async fn post_empty(path: &str) -> ApiResult<()> {
    send("POST", path, None, None).await.map(|_| ())
}

pub async fn delete(path: &str) -> ApiResult<()> {
    send("DELETE", path, None, None).await.map(|_| ())
}

/// PATCH a task, guarded by the version the user edited.
pub async fn patch_task(
    project: &str,
    id: i64,
    version: i64,
    patch: &TaskPatch,
) -> ApiResult<Task> {
    let path = format!("/api/v1/projects/{project}/tasks/{id}");
    decode(send("PATCH", &path, encode(patch), Some(version)).await?)
}

/// The next task to work on, or `None` when there is none (204).
pub async fn next_task(project: &str) -> ApiResult<Option<Task>> {
    let answer = send(
        "GET",
        &format!("/api/v1/projects/{project}/tasks/next"),
        None,
        None,
    )
    .await?;
    if answer.status == 204 {
        return Ok(None);
    }
    decode(answer).map(Some)
}
