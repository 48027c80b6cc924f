//! `If-Match`, `If-None-Match` and `X-Min-Seq` as clients send them: any
//! header value is understood or refused with a 4xx, and a task's own ETag
//! always names its version.
#![no_main]

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use taskmaster_server::http::params;

fuzz_target!(|bytes: &[u8]| {
    let Ok(value) = HeaderValue::from_bytes(bytes) else {
        return;
    };
    for name in ["if-match", "if-none-match", params::MIN_SEQ] {
        let mut headers = HeaderMap::new();
        headers.insert(HeaderName::from_static(name), value.clone());
        let results = [
            params::parse_if_match(&headers).map(drop),
            params::if_none_match_seq(&headers).map(drop),
            params::seen_seq(&headers).map(drop),
        ];
        for error in results.into_iter().filter_map(Result::err) {
            let status = error.status_code();
            assert!(matches!(status, 400 | 412), "{name}: {value:?} answered {status}");
        }
    }
    let Ok(text) = value.to_str() else {
        return;
    };
    // The digits in the input as a version (any i64), else 4.
    let digits: String = text.chars().filter(char::is_ascii_digit).take(18).collect();
    let version = digits.parse::<i64>().unwrap_or(4);
    // Never a panic, whatever the list looks like.
    let _ = params::etag_matches(text, version);
    // The ETag the server sends for a version matches that version, and only it.
    let tag = format!("\"{version}\"");
    assert!(params::etag_matches(&tag, version));
    assert!(!params::etag_matches(&tag, version.wrapping_add(1)));
    let mut headers = HeaderMap::new();
    headers.insert("if-match", HeaderValue::from_str(&tag).unwrap());
    assert_eq!(params::parse_if_match(&headers).unwrap(), Some(version));
});
