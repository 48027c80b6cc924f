//! Client input shared by every edge: a JSON object parsed with the
//! contract's classification of what is malformed (400) and what is invalid
//! (422), so a REST body and a Socket.IO payload give the same errors.

use serde::de::DeserializeOwned;

use crate::error::Error;

/// Parses a JSON object, classifying errors as the contract wants.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    if let Err(error) = std::str::from_utf8(bytes) {
        return Err(Error::Malformed(
            "malformed_json",
            format!(
                "malformed JSON: not valid UTF-8 at byte {}",
                error.valid_up_to()
            ),
        ));
    }
    // serde's derived structs also accept arrays (fields by position); every
    // body of ours is an object, so refuse anything else up front.
    let first = bytes.iter().find(|byte| !byte.is_ascii_whitespace());
    if first != Some(&b'{') {
        let is_json = serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
        return Err(if is_json {
            Error::Malformed(
                "invalid_json_type",
                "request body must be a JSON object".into(),
            )
        } else {
            Error::Malformed(
                "malformed_json",
                "malformed JSON: expected an object".into(),
            )
        });
    }
    serde_json::from_slice(bytes).map_err(|error| {
        use serde_json::error::Category;
        let message = error.to_string();
        match error.classify() {
            Category::Data
                if ["unknown field", "missing field", "unknown variant"]
                    .iter()
                    .any(|prefix| message.starts_with(prefix)) =>
            {
                Error::Invalid("invalid_field", message)
            }
            Category::Data => Error::Malformed("invalid_json_type", message),
            // serde_json reports some type mismatches (a number where an enum
            // string belongs) as syntax errors; valid JSON means it was one.
            Category::Syntax if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() => {
                Error::Malformed(
                    "invalid_json_type",
                    format!("a value has the wrong JSON type ({message})"),
                )
            }
            Category::Syntax | Category::Eof | Category::Io => {
                Error::Malformed("malformed_json", format!("malformed JSON: {message}"))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{NewTask, TaskPatch};

    fn code<T: std::fmt::Debug>(result: Result<T, Error>) -> (u16, &'static str) {
        let error = result.unwrap_err();
        (error.status_code(), error.code())
    }

    #[test]
    fn malformed_json_is_400() {
        assert_eq!(
            code(parse_json::<NewTask>(b"{\"title\": ")),
            (400, "malformed_json")
        );
        assert_eq!(
            code(parse_json::<NewTask>(b"not json")),
            (400, "malformed_json")
        );
    }

    #[test]
    fn wrong_types_are_400() {
        assert_eq!(
            code(parse_json::<NewTask>(br#"{"title": 5}"#)),
            (400, "invalid_json_type")
        );
        assert_eq!(
            code(parse_json::<NewTask>(
                br#"{"title": "a", "dependencies": "1"}"#
            )),
            (400, "invalid_json_type")
        );
        assert_eq!(
            code(parse_json::<TaskPatch>(b"[]")),
            (400, "invalid_json_type")
        );
        assert_eq!(
            code(parse_json::<NewTask>(br#"["a"]"#)),
            (400, "invalid_json_type")
        );
        assert_eq!(
            code(parse_json::<NewTask>(b"null")),
            (400, "invalid_json_type")
        );
        assert_eq!(code(parse_json::<NewTask>(b"")), (400, "malformed_json"));
    }

    #[test]
    fn invalid_but_well_formed_is_422() {
        assert_eq!(code(parse_json::<NewTask>(b"{}")), (422, "invalid_field"));
        assert_eq!(
            code(parse_json::<NewTask>(br#"{"title": "a", "colour": "red"}"#)),
            (422, "invalid_field")
        );
        assert_eq!(
            code(parse_json::<NewTask>(
                br#"{"title": "a", "status": "finished"}"#
            )),
            (422, "invalid_field")
        );
    }
}
