//! Browser sessions in cookies, and the CSRF protection they need.
//!
//! Signing in sets two cookies, both `Secure` (by default), `SameSite=Strict`
//! and `Path=/`, named with the `__Host-` prefix so that no subdomain can
//! plant or overwrite them:
//!
//! - the session cookie holds the session token, `HttpOnly`, so script on the
//!   page (an injected one included) can never read it;
//! - the CSRF cookie holds a value derived from the token, readable by the
//!   app, which sends it back in `X-CSRF-Token` with every write.
//!
//! A request authenticated by the cookie alone must, for any method that can
//! change something, carry that header with the value that belongs to its
//! session, and its `Origin` (when the browser sends one) must be this
//! server's or an allowed one. Another site's page can make the browser send
//! the cookie (SameSite aside) but cannot read the CSRF cookie, so it cannot
//! forge the header; the value is bound to the session, so a value planted
//! from elsewhere does not fit either. A bearer token in `Authorization` is
//! never sent by a browser on its own, so requests that carry one need none of
//! this.

use std::time::Duration;

use axum::http::header::{COOKIE, HOST, ORIGIN};
use axum::http::{HeaderMap, HeaderValue, Method};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cookie::{Cookie, SameSite};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Config;
use crate::error::Error;

/// The header the app sends the CSRF cookie's value back in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How this deployment names and marks its session cookies.
#[derive(Debug, Clone)]
pub struct CookiePolicy {
    secure: bool,
    max_age: Duration,
    allowed_origins: Vec<String>,
}

impl CookiePolicy {
    pub fn new(config: &Config) -> Self {
        Self {
            secure: config.session_cookie_secure,
            max_age: config.session_ttl(),
            allowed_origins: config.cors_allowed_origins.clone(),
        }
    }

    /// The session cookie's name: `__Host-` requires `Secure`.
    pub fn session_name(&self) -> &'static str {
        if self.secure {
            "__Host-tm_session"
        } else {
            "tm_session"
        }
    }

    pub fn csrf_name(&self) -> &'static str {
        if self.secure {
            "__Host-tm_csrf"
        } else {
            "tm_csrf"
        }
    }

    /// `Set-Cookie` values that sign this browser in with `token`.
    pub fn sign_in(&self, token: &str) -> [HeaderValue; 2] {
        let max_age = cookie::time::Duration::seconds(
            i64::try_from(self.max_age.as_secs()).unwrap_or(i64::MAX),
        );
        [
            self.cookie(self.session_name(), token.to_owned(), true, max_age),
            self.cookie(self.csrf_name(), csrf_token(token), false, max_age),
        ]
    }

    /// `Set-Cookie` values that make the browser forget both cookies.
    pub fn sign_out(&self) -> [HeaderValue; 2] {
        let gone = cookie::time::Duration::ZERO;
        [
            self.cookie(self.session_name(), String::new(), true, gone),
            self.cookie(self.csrf_name(), String::new(), false, gone),
        ]
    }

    fn cookie(
        &self,
        name: &'static str,
        value: String,
        http_only: bool,
        max_age: cookie::time::Duration,
    ) -> HeaderValue {
        let cookie = Cookie::build((name, value))
            .path("/")
            .secure(self.secure)
            .http_only(http_only)
            .same_site(SameSite::Strict)
            .max_age(max_age)
            .build();
        HeaderValue::from_str(&cookie.to_string()).expect("a token and its CSRF value are ASCII")
    }

    /// The session token in the request's cookies, if any.
    pub fn session_token<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        let name = self.session_name();
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.trim_matches('"'))
            .filter(|value| !value.is_empty())
    }

    /// Checks a request authenticated by the session cookie `token`: a
    /// method that may change something needs the session's CSRF value in
    /// `X-CSRF-Token`, and any request an allowed origin.
    pub fn check_request(
        &self,
        method: &Method,
        headers: &HeaderMap,
        token: &str,
    ) -> Result<(), Error> {
        self.check_origin(headers)?;
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(());
        }
        let sent = headers
            .get(CSRF_HEADER)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        let expected = csrf_token(token);
        if bool::from(sent.ct_eq(expected.as_bytes())) {
            Ok(())
        } else {
            Err(Error::Forbidden(
                "csrf_failed",
                format!(
                    "a request signed in by cookie must send the {} cookie's value in X-CSRF-Token",
                    self.csrf_name()
                ),
            ))
        }
    }

    /// A browser names the page a request comes from in `Origin` (always on
    /// writes and WebSocket handshakes); it must be this server itself (the
    /// `Host` the request was sent to) or one of the allowed origins.
    pub fn check_origin(&self, headers: &HeaderMap) -> Result<(), Error> {
        let Some(origin) = headers.get(ORIGIN).and_then(|value| value.to_str().ok()) else {
            return Ok(());
        };
        let origin = origin.to_ascii_lowercase();
        let host = headers
            .get(HOST)
            .and_then(|value| value.to_str().ok())
            .map(str::to_ascii_lowercase);
        let same_host = host.is_some_and(|host| same_authority(&origin, &host));
        if same_host || self.allowed_origins.contains(&origin) {
            Ok(())
        } else {
            Err(Error::Forbidden(
                "origin_not_allowed",
                "requests signed in by cookie must come from this server's own pages".into(),
            ))
        }
    }
}

/// The CSRF value of the session `token`: derived, so nothing more is
/// stored, and one-way, so it tells nothing about the token.
pub fn csrf_token(token: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"taskmaster csrf v1\0");
    hasher.update(token.as_bytes());
    URL_SAFE_NO_PAD.encode(hasher.finalize())
}

/// Whether `origin` (`scheme://host[:port]`) names the authority `host`
/// (`host[:port]`, as in the `Host` header), default ports aside.
fn same_authority(origin: &str, host: &str) -> bool {
    let (authority, default_port) = if let Some(rest) = origin.strip_prefix("https://") {
        (rest, ":443")
    } else if let Some(rest) = origin.strip_prefix("http://") {
        (rest, ":80")
    } else {
        return false;
    };
    let bare =
        |value: &'_ str| -> String { value.strip_suffix(default_port).unwrap_or(value).to_owned() };
    bare(authority) == bare(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(secure: bool) -> CookiePolicy {
        CookiePolicy {
            secure,
            max_age: Duration::from_secs(3600),
            allowed_origins: vec!["https://agents.example.com".into()],
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn signing_in_sets_a_host_only_http_only_session_and_a_readable_csrf_value() {
        let [session, csrf] = policy(true).sign_in("tok");
        let session = session.to_str().unwrap();
        assert!(session.starts_with("__Host-tm_session=tok;"), "{session}");
        for attribute in [
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=3600",
        ] {
            assert!(session.contains(attribute), "{session} lacks {attribute}");
        }
        assert!(!session.contains("Domain"), "{session}");
        let csrf = csrf.to_str().unwrap();
        assert!(csrf.starts_with(&format!("__Host-tm_csrf={};", csrf_token("tok"))));
        assert!(!csrf.contains("HttpOnly"), "{csrf}");
        let [session, _] = policy(false).sign_in("tok");
        assert!(session.to_str().unwrap().starts_with("tm_session=tok;"));
        assert!(!session.to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn the_session_token_is_read_from_its_own_cookie_only() {
        let policy = policy(true);
        let sent = headers(&[(
            "cookie",
            "tm_route=abc; __Host-tm_session=secret; __Host-tm_csrf=x",
        )]);
        assert_eq!(policy.session_token(&sent), Some("secret"));
        let other = headers(&[("cookie", "tm_session=plain")]);
        assert_eq!(policy.session_token(&other), None);
        assert_eq!(
            policy.session_token(&headers(&[("cookie", "__Host-tm_session=")])),
            None
        );
    }

    #[test]
    fn writes_by_cookie_need_the_sessions_csrf_value_and_an_allowed_origin() {
        let policy = policy(true);
        let token = "session-token";
        let good = csrf_token(token);
        let write = |pairs: &[(&'static str, &str)]| {
            policy.check_request(&Method::POST, &headers(pairs), token)
        };
        assert!(write(&[("x-csrf-token", &good)]).is_ok());
        assert!(write(&[
            ("x-csrf-token", &good),
            ("host", "tm.example.com"),
            ("origin", "https://tm.example.com")
        ])
        .is_ok());
        assert!(write(&[
            ("x-csrf-token", &good),
            ("host", "tm.example.com:8443"),
            ("origin", "https://tm.example.com:8443")
        ])
        .is_ok());
        assert!(write(&[
            ("x-csrf-token", &good),
            ("host", "tm.example.com"),
            ("origin", "https://agents.example.com")
        ])
        .is_ok());
        let refused = |result: Result<(), Error>, code: &str| match result {
            Err(error) => assert_eq!(error.code(), code),
            Ok(()) => panic!("expected {code}"),
        };
        refused(write(&[]), "csrf_failed");
        refused(
            write(&[("x-csrf-token", &csrf_token("another session"))]),
            "csrf_failed",
        );
        refused(
            write(&[
                ("x-csrf-token", &good),
                ("host", "tm.example.com"),
                ("origin", "https://evil.example"),
            ]),
            "origin_not_allowed",
        );
        refused(
            write(&[
                ("x-csrf-token", &good),
                ("host", "tm.example.com"),
                ("origin", "null"),
            ]),
            "origin_not_allowed",
        );
        // Reads need no token, but still an allowed origin.
        assert!(policy
            .check_request(&Method::GET, &HeaderMap::new(), token)
            .is_ok());
        refused(
            policy.check_request(
                &Method::GET,
                &headers(&[("host", "a"), ("origin", "https://b")]),
                token,
            ),
            "origin_not_allowed",
        );
    }
}
