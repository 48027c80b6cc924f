//! What every response tells the browser about how it may be used, and
//! which other origins may call the API.
//!
//! - Every response: `X-Content-Type-Options: nosniff` (a JSON body is never
//!   run as script or styled as CSS), `Referrer-Policy: same-origin` (project
//!   and task ids in our URLs never leave in a `Referer`), and
//!   `X-Frame-Options: DENY` for browsers that predate `frame-ancestors`.
//! - API responses: a `Content-Security-Policy` that allows nothing at all,
//!   so a response opened directly in a tab can run nothing and be framed
//!   by nobody.
//! - The app's page: the policy of [`page_policy`], built from the page
//!   itself, so its inline scripts run by hash and nothing else inline does.
//! - HSTS is the edge's (it knows the deployment is served over TLS;
//!   `nginx/nginx.conf.template`).
//!
//! CORS is closed unless `CORS_ALLOWED_ORIGINS` names origins: then those
//! origins' pages may call the API with a bearer token (never with the
//! session cookie, which is `SameSite=Strict` and checked against the
//! origin).

use std::time::Duration;

use axum::http::header::{
    AUTHORIZATION, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_MATCH, IF_NONE_MATCH,
    REFERRER_POLICY, RETRY_AFTER, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

/// The policy of API responses: they are data, never a document.
pub const API_POLICY: HeaderValue =
    HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'");

/// Adds the headers every response carries (a handler's own value wins).
pub fn on_every_response(router: Router) -> Router {
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
}

/// CORS: `None` (no CORS headers at all, so browsers keep other origins'
/// pages out of the API) unless origins are allowed. Applied to every
/// response: the assets, public anyway, then name the caller's origin
/// rather than `*`.
pub fn cors(allowed_origins: &[String]) -> Option<CorsLayer> {
    if allowed_origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = allowed_origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers([
                AUTHORIZATION,
                CONTENT_TYPE,
                IF_MATCH,
                IF_NONE_MATCH,
                HeaderName::from_static("x-min-seq"),
            ])
            .expose_headers([ETAG, RETRY_AFTER, HeaderName::from_static("x-request-id")])
            .max_age(Duration::from_secs(600)),
    )
}

/// The `Content-Security-Policy` of the app's page `html`: scripts from our
/// assets and the page's own inline scripts by their SHA-256 (so an injected
/// inline script never runs), WebAssembly compilation
/// (`'wasm-unsafe-eval'`, not `'unsafe-eval'`), connections to this origin
/// (API and WebSocket) and the asset host, no plugins, no `<base>`, forms
/// only to us, and no framing. `asset_origin` is `ASSET_BASE_URL`'s origin
/// when assets come from another host.
pub fn page_policy(html: &str, asset_origin: Option<&str>) -> HeaderValue {
    let assets = match asset_origin {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    let hashes: String = inline_scripts(html)
        .map(|script| format!(" 'sha256-{}'", STANDARD.encode(Sha256::digest(script))))
        .collect();
    let policy = format!(
        "default-src 'self'; script-src {assets} 'wasm-unsafe-eval'{hashes}; \
         style-src {assets}; img-src 'self' data:; font-src {assets}; \
         connect-src {assets}; worker-src 'self'; manifest-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    HeaderValue::from_str(&policy).expect("a policy is ASCII: origins are checked at start-up")
}

/// The contents of `html`'s `<script>` elements that have no `src`, exactly
/// as the browser hashes them (everything between `>` and `</script>`).
fn inline_scripts(html: &str) -> impl Iterator<Item = &str> {
    let mut rest = html;
    std::iter::from_fn(move || loop {
        let start = rest.find("<script")?;
        let after_name = &rest[start + "<script".len()..];
        let tag_end = after_name.find('>')?;
        let attributes = &after_name[..tag_end];
        let body = &after_name[tag_end + 1..];
        let body_end = body.find("</script>")?;
        rest = &body[body_end + "</script>".len()..];
        // `<scripts…>` is not a script element; a `src` is an external one.
        let is_element = attributes.is_empty() || attributes.starts_with(char::is_whitespace);
        if is_element && !attributes.contains("src=") {
            return Some(&body[..body_end]);
        }
    })
}

/// The origin (`scheme://host[:port]`) of an absolute URL.
pub fn origin_of(url: &str) -> &str {
    url.find("://")
        .and_then(|scheme| url[scheme + 3..].find('/').map(|path| scheme + 3 + path))
        .map_or(url, |end| &url[..end])
}

/// A response header for the policy of API responses.
pub fn api_policy() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(CONTENT_SECURITY_POLICY, API_POLICY)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "<head><script>one()</script>\n<script type=\"module\">\nimport x from \"/assets/a/app.js\";\n</script>\
                        <script src=\"/assets/a/other.js\"></script><scripts>not one</scripts></head>";

    #[test]
    fn inline_scripts_are_found_as_the_browser_hashes_them() {
        let scripts: Vec<&str> = inline_scripts(PAGE).collect();
        assert_eq!(
            scripts,
            ["one()", "\nimport x from \"/assets/a/app.js\";\n"]
        );
    }

    #[test]
    fn the_page_policy_allows_its_own_scripts_by_hash_and_wasm_and_nothing_inline_else() {
        let policy = page_policy(PAGE, None);
        let policy = policy.to_str().unwrap();
        let hash = STANDARD.encode(Sha256::digest(b"one()"));
        assert!(policy.contains(&format!("'sha256-{hash}'")), "{policy}");
        assert_eq!(policy.matches("'sha256-").count(), 2, "{policy}");
        for directive in [
            "script-src 'self' 'wasm-unsafe-eval' 'sha256-",
            "frame-ancestors 'none'",
            "object-src 'none'",
            "base-uri 'none'",
            "style-src 'self';",
        ] {
            assert!(policy.contains(directive), "{policy} lacks {directive}");
        }
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        assert!(!policy.contains("'unsafe-eval'"), "{policy}");
    }

    #[test]
    fn assets_on_another_host_are_allowed_as_scripts_styles_and_fetches() {
        let origin = origin_of("https://cdn.example.com/tm");
        assert_eq!(origin, "https://cdn.example.com");
        let policy = page_policy(PAGE, Some(origin));
        let policy = policy.to_str().unwrap();
        assert!(policy.contains("script-src 'self' https://cdn.example.com 'wasm-unsafe-eval'"));
        assert!(policy.contains("style-src 'self' https://cdn.example.com;"));
        assert!(policy.contains("connect-src 'self' https://cdn.example.com;"));
    }
}
