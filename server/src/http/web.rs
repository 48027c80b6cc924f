//! The web app: its content-hashed assets, cached for good and served
//! precompressed, and `index.html` for every page address, never cached
//! stale, so a deploy reaches users on their next load.
//!
//! `WEB_DIR/assets` may hold several builds side by side (each in a
//! directory named by its hash): a release carries the previous releases'
//! builds, so a page loaded before a deploy still finds its lazily loaded
//! modules on the instances after it. `index.html` names the current one.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::extract::Request;
use axum::http::header::{
    ACCEPT_ENCODING, ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL, CONTENT_ENCODING,
    CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

use super::first_paint;
use super::security_headers::{origin_of, page_policy};
use crate::error::Error;
use crate::state::AppState;

/// Assets are named by their content's hash: a new build gets new names.
const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
/// `index.html` names the current assets: always revalidate it.
const REVALIDATE: HeaderValue = HeaderValue::from_static("no-cache");
/// Marks a page with a first paint in it.
const FIRST_PAINT: axum::http::HeaderName = axum::http::HeaderName::from_static("x-first-paint");
/// Assets are public and never change; a page on another origin (the app's,
/// when the assets come from a CDN host) may load them as modules.
const ANY_ORIGIN: HeaderValue = HeaderValue::from_static("*");

/// `/assets/…`, from `WEB_DIR/assets`, and the service worker, `/sw.js`.
pub fn assets(web_dir: PathBuf) -> Router<AppState> {
    let files = ServeDir::new(web_dir.join("assets"))
        .precompressed_br()
        .precompressed_gzip();
    // The worker's script names the build it caches: like `index.html`, it
    // is revalidated on every check, so a deploy is found on the next load.
    let service_worker = tower::ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::overriding(
            CACHE_CONTROL,
            REVALIDATE,
        ))
        .service(ServeFile::new(web_dir.join("sw.js")));
    Router::new()
        .nest_service(
            "/assets",
            tower::ServiceBuilder::new()
                .layer(SetResponseHeaderLayer::overriding(CACHE_CONTROL, IMMUTABLE))
                .layer(SetResponseHeaderLayer::overriding(
                    ACCESS_CONTROL_ALLOW_ORIGIN,
                    ANY_ORIGIN,
                ))
                .service(files),
        )
        .route_service("/sw.js", service_worker)
}

/// `index.html`, read once per build and kept in memory with its validator
/// and precompressed copies; pointed at `ASSET_BASE_URL` when one is set.
#[derive(Clone)]
pub struct IndexPage(Arc<IndexInner>);

struct IndexInner {
    web_dir: PathBuf,
    asset_base_url: Option<String>,
    loaded: Mutex<Option<Arc<LoadedIndex>>>,
}

struct LoadedIndex {
    modified: SystemTime,
    etag: HeaderValue,
    /// Its `Content-Security-Policy`, with its inline scripts' hashes.
    policy: HeaderValue,
    identity: Bytes,
    brotli: Option<Bytes>,
    gzip: Option<Bytes>,
}

impl IndexPage {
    pub fn new(web_dir: PathBuf, asset_base_url: Option<String>) -> IndexPage {
        IndexPage(Arc::new(IndexInner {
            web_dir,
            asset_base_url,
            loaded: Mutex::new(None),
        }))
    }

    /// The current build's page; read again when the file changed (a new
    /// build in place), `None` when there is no build.
    async fn current(&self) -> std::io::Result<Option<Arc<LoadedIndex>>> {
        let path = self.0.web_dir.join("index.html");
        let modified = match tokio::fs::metadata(&path).await {
            Ok(metadata) => metadata.modified()?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        if let Some(loaded) = self.0.loaded.lock().unwrap().as_ref() {
            if loaded.modified == modified {
                return Ok(Some(loaded.clone()));
            }
        }
        let html = tokio::fs::read(&path).await?;
        let loaded = Arc::new(match &self.0.asset_base_url {
            None => {
                // The build's precompressed copies match the file as it is.
                let sibling = |extension: &str| {
                    let path = path.with_extension(format!("html.{extension}"));
                    async move { tokio::fs::read(path).await.ok().map(Bytes::from) }
                };
                LoadedIndex {
                    modified,
                    etag: etag_of(&html),
                    policy: page_policy(&String::from_utf8_lossy(&html), None),
                    brotli: sibling("br").await,
                    gzip: sibling("gz").await,
                    identity: Bytes::from(html),
                }
            }
            Some(base) => {
                let html = point_assets_at(&String::from_utf8_lossy(&html), base);
                LoadedIndex {
                    modified,
                    etag: etag_of(html.as_bytes()),
                    policy: page_policy(&html, Some(origin_of(base))),
                    brotli: None,
                    gzip: None,
                    identity: Bytes::from(html),
                }
            }
        });
        *self.0.loaded.lock().unwrap() = Some(loaded.clone());
        Ok(Some(loaded))
    }
}

/// A strong validator for the page: its content's hash.
fn etag_of(content: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(content);
    let hex: String = digest[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    HeaderValue::from_str(&format!("\"i{hex}\"")).expect("hex is a valid header value")
}

/// Every quoted `/assets/…` reference (links, the module import, the wasm
/// path) fetched from `base` instead, and a preconnect to it so the first
/// asset does not wait for a new connection.
fn point_assets_at(html: &str, base: &str) -> String {
    let preconnect = format!(
        "<link rel=\"preconnect\" href=\"{}\" crossorigin>\n<link rel=\"stylesheet\"",
        origin_of(base)
    );
    html.replace("\"/assets/", &format!("\"{base}/assets/"))
        .replacen("<link rel=\"stylesheet\"", &preconnect, 1)
}

/// Every address that is not an API route: the app's `index.html` for a page
/// (the app routes on the client), the contract's 404 body for the API.
/// Where the page has a first paint (see [`super::first_paint`]), the page
/// with it, which is this caller's own: never cached by anyone else.
pub async fn fallback(index: IndexPage, state: AppState, request: Request) -> Response {
    let path = request.uri().path();
    let is_page = matches!(*request.method(), Method::GET | Method::HEAD)
        && !path.starts_with("/api/")
        && !path.starts_with("/assets/");
    if !is_page {
        return Error::NotFound("not_found", "no such endpoint".into()).into_response();
    }
    match index.current().await {
        Ok(Some(page)) => {
            let drawn = first_paint::render(&state, path, request.uri().query(), request.headers())
                .await
                .and_then(|content| {
                    first_paint::into_page(&String::from_utf8_lossy(&page.identity), content)
                });
            match drawn {
                Some(html) => serve_first_paint(&page, html),
                None => serve_index(&page, request.headers()),
            }
        }
        Ok(None) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(CONTENT_TYPE, "text/plain; charset=utf-8")],
            "The web app is not built here: run scripts/build-web.sh (scripts/run.sh does).\n",
        )
            .into_response(),
        Err(error) => {
            Error::Internal(anyhow::anyhow!("reading index.html: {error}")).into_response()
        }
    }
}

/// A page drawn for this request: private, checked again on every load,
/// marked so the service worker keeps the plain page, not this one, for
/// offline starts. Compressed on the way out, like the API's answers.
fn serve_first_paint(page: &LoadedIndex, html: String) -> Response {
    (
        [
            (CACHE_CONTROL, HeaderValue::from_static("private, no-cache")),
            (VARY, HeaderValue::from_static("accept-encoding, cookie")),
            (CONTENT_SECURITY_POLICY, page.policy.clone()),
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (FIRST_PAINT, HeaderValue::from_static("1")),
        ],
        html,
    )
        .into_response()
}

fn serve_index(page: &LoadedIndex, request: &HeaderMap) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(CACHE_CONTROL, REVALIDATE);
    headers.insert(ETAG, page.etag.clone());
    headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    headers.insert(CONTENT_SECURITY_POLICY, page.policy.clone());
    let revalidated = request
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|tag| tag.trim() == page.etag || tag.trim() == "*");
    if revalidated {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    let accepts = |coding: &str| {
        request
            .get_all(ACCEPT_ENCODING)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|offered| {
                let mut parts = offered.split(';');
                let name = parts.next().unwrap_or_default().trim();
                let refused = parts
                    .any(|param| matches!(param.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
                name.eq_ignore_ascii_case(coding) && !refused
            })
    };
    let body = match (&page.brotli, &page.gzip) {
        (Some(brotli), _) if accepts("br") => {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("br"));
            brotli.clone()
        }
        (_, Some(gzip)) if accepts("gzip") => {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            gzip.clone()
        }
        _ => page.identity.clone(),
    };
    (headers, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<link rel="stylesheet" href="/assets/abc/style.css">
<link rel="modulepreload" href="/assets/abc/app.js">
<script type="module">
import init from "/assets/abc/app.js";
init({ module_or_path: "/assets/abc/app_bg.wasm" });
</script>"#;

    #[test]
    fn assets_point_at_the_cdn_host() {
        let html = point_assets_at(PAGE, "https://cdn.example.com/tm");
        assert!(!html.contains("\"/assets/"), "{html}");
        assert_eq!(
            html.matches("\"https://cdn.example.com/tm/assets/abc/")
                .count(),
            4
        );
        assert!(html
            .starts_with("<link rel=\"preconnect\" href=\"https://cdn.example.com\" crossorigin>"));
    }

    #[test]
    fn the_page_is_revalidated_and_precompressed() {
        let page = LoadedIndex {
            modified: SystemTime::UNIX_EPOCH,
            etag: etag_of(PAGE.as_bytes()),
            policy: page_policy(PAGE, None),
            identity: Bytes::from_static(PAGE.as_bytes()),
            brotli: Some(Bytes::from_static(b"br")),
            gzip: Some(Bytes::from_static(b"gz")),
        };
        let request = |pairs: &[(&'static str, &'static str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.append(*name, HeaderValue::from_static(value));
            }
            serve_index(&page, &headers)
        };
        let plain = request(&[]);
        assert_eq!(plain.status(), StatusCode::OK);
        assert!(plain.headers().get(CONTENT_ENCODING).is_none());
        assert_eq!(plain.headers()[CACHE_CONTROL], "no-cache");
        assert!(plain.headers()[CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("'sha256-"));
        let brotli = request(&[("accept-encoding", "gzip, deflate, br")]);
        assert_eq!(brotli.headers()[CONTENT_ENCODING], "br");
        let gzip = request(&[("accept-encoding", "br;q=0, gzip")]);
        assert_eq!(gzip.headers()[CONTENT_ENCODING], "gzip");
        let etag = plain.headers()[ETAG].to_str().unwrap().to_owned();
        let mut headers = HeaderMap::new();
        headers.insert(IF_NONE_MATCH, HeaderValue::from_str(&etag).unwrap());
        assert_eq!(
            serve_index(&page, &headers).status(),
            StatusCode::NOT_MODIFIED
        );
    }
}
