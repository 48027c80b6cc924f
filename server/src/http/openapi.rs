//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::{Modify, OpenApi};

use super::{auth, health, imports, projects, tasks, tokens, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(title = "Task Master", version = "1", description = "Real-time collaborative task server"),
    paths(
        health::healthz, health::readyz,
        auth::register, auth::login, auth::logout, auth::me,
        auth::sessions, auth::revoke_session, auth::change_password,
        tokens::create, tokens::list, tokens::revoke,
        projects::create, projects::list,
        projects::add_member, projects::list_members, projects::remove_member,
        projects::audit_log,
        tasks::create, tasks::list, tasks::get, tasks::update, tasks::delete, tasks::next,
        tasks::bulk,
        tasks::events,
        imports::create, imports::export, imports::export_project,
        imports::import_task_file, imports::task_files,
        webhooks::create, webhooks::list, webhooks::delete, webhooks::enable,
        webhooks::dead_letters, webhooks::redeliver, webhooks::job,
    ),
    modifiers(&Credentials, &ErrorResponses),
)]
pub struct ApiDoc;

/// Every operation that takes a bearer token also takes the browser's
/// session cookie (with its CSRF header on writes): one place says so for all.
struct Credentials;

impl Modify for Credentials {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "__Host-tm_session",
                "The browser session, set by register and login (named tm_session where \
                 SESSION_COOKIE_SECURE=false). Writes also need X-CSRF-Token: the value of \
                 the __Host-tm_csrf cookie.",
            ))),
        );
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                if let Some(security) = operation.security.as_mut() {
                    if !security.is_empty() {
                        security.push(SecurityRequirement::new("cookie", Vec::<String>::new()));
                    }
                }
            }
        }
    }
}

/// The error statuses every operation of a kind can answer with, added in
/// one place so that no annotation can forget them: the extractors and
/// middleware that produce them run before any handler (see `extract.rs`
/// and `error.rs`).
struct ErrorResponses;

/// Statuses, with what causes them, for every operation under `/api/v1`.
const EVERY_API_CALL: &[(&str, &str)] = &[(
    "503",
    "A dependency (the database) is down or too slow; retry shortly.",
)];
/// For operations that need a bearer token or session cookie: the token is
/// checked, then counted against its own and its user's request rates.
const AUTHENTICATED: &[(&str, &str)] = &[
    ("401", "No, an invalid or an expired token."),
    (
        "403",
        "Signed in by cookie without the session's X-CSRF-Token, or from another origin.",
    ),
    (
        "429",
        "Too many requests for this token or user; see `Retry-After`.",
    ),
];
/// For operations that read a JSON request body.
const WITH_BODY: &[(&str, &str)] = &[
    ("400", "The body is not JSON, or has wrong JSON types."),
    (
        "413",
        "The body is larger than the configured limit (at least 1 MiB is accepted).",
    ),
    ("415", "The body is not `application/json`."),
    ("422", "Well-formed but invalid."),
];
/// For operations with path or query parameters the server parses.
const WITH_PARAMETERS: &[(&str, &str)] = &[("400", "A malformed id, cursor, number or header.")];
/// For sign-up and sign-in, which are rate limited per address and email.
const RATE_LIMITED: &[(&str, &str)] = &[("429", "Too many attempts; see `Retry-After`.")];

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = || {
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let mut statuses: Vec<&(&str, &str)> = Vec::new();
                if path.starts_with("/api/v1/") {
                    statuses.extend(EVERY_API_CALL);
                }
                if operation
                    .security
                    .as_ref()
                    .is_some_and(|security| !security.is_empty())
                {
                    statuses.extend(AUTHENTICATED);
                }
                if operation.request_body.is_some() {
                    statuses.extend(WITH_BODY);
                }
                if operation
                    .parameters
                    .as_ref()
                    .is_some_and(|parameters| !parameters.is_empty())
                {
                    statuses.extend(WITH_PARAMETERS);
                }
                if path.ends_with("/auth/login") || path.ends_with("/auth/register") {
                    statuses.extend(RATE_LIMITED);
                }
                for (status, description) in statuses {
                    operation
                        .responses
                        .responses
                        .entry((*status).to_owned())
                        .or_insert_with(|| {
                            ResponseBuilder::new()
                                .description(*description)
                                .content("application/json", error())
                                .into()
                        });
                }
            }
        }
    }
}

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
