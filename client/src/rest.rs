//! REST calls. A refusal keeps the contract's status, code and message, so
//! callers can tell "sign in again" (401) from "retry later" (429, 503)
//! from "fix the request" (4xx).

use std::time::Duration;

use protocol::{
    AuthResponse, CreateProjectRequest, ErrorBody, Items, LoginRequest, NewTask, Project,
    RegisterRequest, Task,
};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::trust::Trust;

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server refused: its status and the contract's error body.
    #[error("{message} ({status} {code})")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// No answer: the server could not be reached, or did not answer in time.
    #[error("no answer from the server: {0}")]
    Unreachable(String),
    /// An answer this client cannot read.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
}

impl ApiError {
    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A client for one server, signed in or not.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    /// A client for the server at `base` (`https://tasks.example.com`),
    /// every call bounded by `timeout`.
    pub fn new(base: &str, trust: &Trust, timeout: Duration) -> Result<Client, ApiError> {
        let http = trust
            .http_client(timeout)
            .map_err(|error| ApiError::Unexpected(format!("HTTP client set-up: {error}")))?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token: None,
        })
    }

    /// The same client, signed in with `token`.
    pub fn with_token(mut self, token: impl Into<String>) -> Client {
        self.token = Some(token.into());
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Signs in; the client keeps the token.
    pub async fn login(&mut self, email: &str, password: &str) -> Result<AuthResponse, ApiError> {
        let body = LoginRequest {
            email: email.into(),
            password: password.into(),
        };
        let answer: AuthResponse = self
            .send(Method::POST, "/api/v1/auth/login", Some(&body))
            .await?;
        self.token = Some(answer.token.clone());
        Ok(answer)
    }

    /// Creates an account and signs in; the client keeps the token.
    pub async fn register(
        &mut self,
        email: &str,
        name: &str,
        password: &str,
    ) -> Result<AuthResponse, ApiError> {
        let body = RegisterRequest {
            email: email.into(),
            name: name.into(),
            password: password.into(),
        };
        let answer: AuthResponse = self
            .send(Method::POST, "/api/v1/auth/register", Some(&body))
            .await?;
        self.token = Some(answer.token.clone());
        Ok(answer)
    }

    pub async fn projects(&self) -> Result<Vec<Project>, ApiError> {
        let page: Items<Project> = self
            .send(Method::GET, "/api/v1/projects", None::<&()>)
            .await?;
        Ok(page.items)
    }

    pub async fn create_project(&self, name: &str) -> Result<Project, ApiError> {
        let body = CreateProjectRequest { name: name.into() };
        self.send(Method::POST, "/api/v1/projects", Some(&body))
            .await
    }

    pub async fn create_task(&self, project: &str, task: &NewTask) -> Result<Task, ApiError> {
        let path = format!("/api/v1/projects/{project}/tasks");
        self.send(Method::POST, &path, Some(task)).await
    }

    pub async fn delete_task(&self, project: &str, id: i64) -> Result<(), ApiError> {
        let path = format!("/api/v1/projects/{project}/tasks/{id}");
        self.call(Method::DELETE, &path, None::<&()>)
            .await
            .map(drop)
    }

    /// A call answered with a JSON body.
    pub async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T, ApiError> {
        let response = self.call(method, path, body).await?;
        response
            .json()
            .await
            .map_err(|error| ApiError::Unexpected(error.to_string()))
    }

    /// A call; a success whatever its body, or the refusal.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<reqwest::Response, ApiError> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        answer(request).await
    }
}

impl Client {
    /// A call with extra headers (`If-Match`, say).
    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
        headers: &[(&str, &str)],
    ) -> Result<reqwest::Response, ApiError> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        answer(request).await
    }

    /// A call whose body is given as bytes of `content_type` (a file to
    /// import), with extra headers (`Prefer`, say), answered with JSON.
    pub async fn send_bytes<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Result<T, ApiError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        answer(request)
            .await?
            .json()
            .await
            .map_err(|error| ApiError::Unexpected(error.to_string()))
    }
}

/// Sends `request`: its success, or the refusal.
async fn answer(request: reqwest::RequestBuilder) -> Result<reqwest::Response, ApiError> {
    let response = request
        .send()
        .await
        .map_err(|error| ApiError::Unreachable(error.to_string()))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    Err(refusal(status, response.text().await.unwrap_or_default()))
}

fn refusal(status: StatusCode, text: String) -> ApiError {
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => ApiError::Refused {
            status: status.as_u16(),
            code: body.error.code,
            message: body.error.message,
        },
        Err(_) => ApiError::Refused {
            status: status.as_u16(),
            code: "http_error".into(),
            message: format!("the server answered {status}"),
        },
    }
}
