//! Request parameters clients send in headers, paths and query strings:
//! conditional-request validators (`If-Match`, `If-None-Match`), the seq a
//! caller has seen (`X-Min-Seq`), task ids, page sizes and status filters.
//! Each parses what is well formed and refuses the rest with the contract's
//! 4xx; public so the fuzz targets (`fuzz/`) drive exactly these.

use axum::http::header::{IF_MATCH, IF_NONE_MATCH};
use axum::http::HeaderMap;
use protocol::TaskStatus;

use crate::error::{Error, Result};

pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>> {
    headers
        .get(name)
        .map(|value| {
            value.to_str().map_err(|_| {
                Error::Malformed("invalid_header", format!("{name} is not valid text"))
            })
        })
        .transpose()
}

/// Whether an `If-Match` / `If-None-Match` value names `version`: a list of
/// entity tags (`"4"`, or a bare `4`), or `*`.
pub fn etag_matches(condition: &str, version: i64) -> bool {
    condition.split(',').map(str::trim).any(|tag| {
        tag == "*"
            || tag
                .trim_matches('"')
                .parse::<i64>()
                .is_ok_and(|tag| tag == version)
    })
}

/// `If-Match` as the one version it names. `*` means "any version" (no check).
pub fn parse_if_match(headers: &HeaderMap) -> Result<Option<i64>> {
    let Some(value) = header_str(headers, IF_MATCH.as_str())? else {
        return Ok(None);
    };
    let value = value.trim();
    if value == "*" {
        return Ok(None);
    }
    value
        .trim_matches('"')
        .parse::<i64>()
        .map(Some)
        .map_err(|_| {
            Error::VersionMismatch(format!(
                "If-Match must be the task's ETag, such as \"4\"; got {value}"
            ))
        })
}

pub fn parse_task_id(raw: &str) -> Result<i64> {
    match raw.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(Error::Malformed(
            "invalid_path",
            format!(
                "task id must be a positive integer, got {:?}",
                raw.chars().take(40).collect::<String>()
            ),
        )),
    }
}

pub fn parse_bounded(name: &str, raw: Option<&str>, default: i64, max: i64) -> Result<i64> {
    let Some(raw) = raw else {
        return Ok(default);
    };
    let value = raw
        .parse::<i64>()
        .map_err(|_| Error::Malformed("invalid_query", format!("{name} must be an integer")))?;
    if !(1..=max).contains(&value) {
        return Err(Error::validation(format!(
            "{name} must be between 1 and {max}"
        )));
    }
    Ok(value)
}

pub fn parse_statuses(raw: Option<&str>) -> Result<Vec<TaskStatus>> {
    let Some(raw) = raw.filter(|raw| !raw.is_empty()) else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(|status| {
            status
                .trim()
                .parse::<TaskStatus>()
                .map_err(|error| Error::validation(error.to_string()))
        })
        .collect()
}

/// The seq in an `If-None-Match` naming a list or next-task validator
/// (`"s12"`); anything else matches nothing.
pub fn if_none_match_seq(headers: &HeaderMap) -> Result<Option<i64>> {
    Ok(
        header_str(headers, IF_NONE_MATCH.as_str())?.and_then(|condition| {
            condition.split(',').find_map(|tag| {
                tag.trim()
                    .strip_prefix("\"s")?
                    .strip_suffix('"')?
                    .parse()
                    .ok()
            })
        }),
    )
}

/// `X-Min-Seq`: a seq the caller has seen (from an event, say). Reads
/// include it, wherever they are served from.
pub fn seen_seq(headers: &HeaderMap) -> Result<Option<i64>> {
    header_str(headers, MIN_SEQ)?
        .map(|raw| {
            raw.trim().parse::<i64>().map_err(|_| {
                Error::Malformed("invalid_header", format!("{MIN_SEQ} must be an integer"))
            })
        })
        .transpose()
}

/// The request header naming a seq the caller has seen.
pub const MIN_SEQ: &str = "x-min-seq";

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn list_validators_name_a_seq() {
        let headers = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(IF_NONE_MATCH, HeaderValue::from_static(value));
            headers
        };
        assert_eq!(if_none_match_seq(&headers("\"s12\"")).unwrap(), Some(12));
        assert_eq!(
            if_none_match_seq(&headers("\"4\", \"s7\"")).unwrap(),
            Some(7)
        );
        assert_eq!(if_none_match_seq(&headers("\"12\"")).unwrap(), None);
        assert_eq!(if_none_match_seq(&HeaderMap::new()).unwrap(), None);
    }

    #[test]
    fn etags_match_quoted_bare_lists_and_star() {
        assert!(etag_matches("\"4\"", 4));
        assert!(etag_matches("4", 4));
        assert!(etag_matches("\"3\", \"4\"", 4));
        assert!(etag_matches("*", 9));
        assert!(!etag_matches("\"5\"", 4));
        assert!(
            !etag_matches("W/\"4\"", 4),
            "weak tags never match a strong comparison"
        );
    }
}
