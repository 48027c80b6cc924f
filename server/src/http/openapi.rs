//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{auth, health, projects, tasks};

#[derive(OpenApi)]
#[openapi(
    info(title = "Task Master", version = "1", description = "Real-time collaborative task server"),
    paths(
        health::healthz, health::readyz,
        auth::register, auth::login, auth::logout, auth::me,
        projects::create, projects::list,
        projects::add_member, projects::list_members, projects::remove_member,
        tasks::create, tasks::list, tasks::get, tasks::update, tasks::delete, tasks::next,
        tasks::events,
    ),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
