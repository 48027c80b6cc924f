//! The web app: its content-hashed assets, cached for good and served
//! precompressed, and `index.html` for every page address, never cached
//! stale, so a deploy reaches users on their next load.

use std::path::PathBuf;

use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::Error;
use crate::state::AppState;

/// Assets are named by their content's hash: a new build gets new names.
const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
/// `index.html` names the current assets: always revalidate it.
const REVALIDATE: HeaderValue = HeaderValue::from_static("no-cache");

/// `/assets/…`, from `WEB_DIR/assets`.
pub fn assets(web_dir: PathBuf) -> Router<AppState> {
    let files = ServeDir::new(web_dir.join("assets"))
        .precompressed_br()
        .precompressed_gzip();
    Router::new().nest_service(
        "/assets",
        tower::ServiceBuilder::new()
            .layer(SetResponseHeaderLayer::overriding(CACHE_CONTROL, IMMUTABLE))
            .service(files),
    )
}

/// Every address that is not an API route: the app's `index.html` for a page
/// (the app routes on the client), the contract's 404 body for the API.
pub async fn fallback(State(state): State<AppState>, request: Request) -> Response {
    let path = request.uri().path();
    let is_page = matches!(*request.method(), Method::GET | Method::HEAD)
        && !path.starts_with("/api/")
        && !path.starts_with("/assets/");
    if !is_page {
        return Error::NotFound("not_found", "no such endpoint".into()).into_response();
    }
    let index = state.config.web_dir.join("index.html");
    if !index.is_file() {
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            [(CONTENT_TYPE, "text/plain; charset=utf-8")],
            "The web app is not built here: run scripts/build-web.sh (scripts/run.sh does).\n",
        )
            .into_response();
    }
    let served = ServeFile::new(index)
        .precompressed_br()
        .precompressed_gzip()
        .oneshot(request)
        .await;
    match served {
        Ok(response) => {
            let mut response = response.map(axum::body::Body::new);
            response.headers_mut().insert(CACHE_CONTROL, REVALIDATE);
            response
        }
        Err(error) => {
            Error::Internal(anyhow::anyhow!("serving index.html: {error}")).into_response()
        }
    }
}
