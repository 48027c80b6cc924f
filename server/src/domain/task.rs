//! Rules for the writable fields of a task and the other user-supplied text.

use crate::error::Error;

pub const TITLE_MAX_CHARS: usize = 500;
/// Bound on a task's dependency list.
pub const MAX_DEPENDENCIES: usize = 1_000;
pub const PROJECT_NAME_MAX_CHARS: usize = 200;
pub const USER_NAME_MAX_CHARS: usize = 100;
pub const EMAIL_MAX_CHARS: usize = 254;
pub const PASSWORD_MIN_CHARS: usize = 8;
/// Hashing cost grows with length; nobody needs more than this.
pub const PASSWORD_MAX_CHARS: usize = 1_024;

/// A title: 1–500 characters after trimming surrounding white space.
pub fn title(value: &str) -> Result<String, Error> {
    bounded_text("title", value.trim(), 1, TITLE_MAX_CHARS)
}

/// A free-text field (description, details, test strategy), kept as written.
/// No length limit of its own: whatever fits in an accepted request body
/// (`MAX_BODY_BYTES`, at least 1 MiB) may be stored, as the contract promises.
pub fn long_text(field: &'static str, value: &str) -> Result<String, Error> {
    bounded_text(field, value, 0, usize::MAX)
}

/// Whether PostgreSQL can store `value` as text: it cannot hold NUL.
pub fn storable_text(value: &str) -> bool {
    !value.contains('\0')
}

/// A short name (1–`max` characters after trimming), such as a token's.
pub fn bounded_name(field: &str, value: &str, max: usize) -> Result<String, Error> {
    bounded_text(field, value.trim(), 1, max)
}

pub fn project_name(value: &str) -> Result<String, Error> {
    bounded_text("name", value.trim(), 1, PROJECT_NAME_MAX_CHARS)
}

pub fn user_name(value: &str) -> Result<String, Error> {
    bounded_text("name", value.trim(), 1, USER_NAME_MAX_CHARS)
}

/// An email address, trimmed and lower-cased so look-ups are exact.
///
/// Deliberately loose (one `@` with text on both sides, no white space): the
/// only real check of an address is mail reaching it.
pub fn email(value: &str) -> Result<String, Error> {
    let email = value.trim().to_lowercase();
    let chars = email.chars().count();
    let well_formed = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if !well_formed || chars > EMAIL_MAX_CHARS {
        return Err(Error::validation(
            "email must look like name@example.com (at most 254 characters)",
        ));
    }
    Ok(email)
}

pub fn password(value: &str) -> Result<(), Error> {
    let chars = value.chars().count();
    if chars < PASSWORD_MIN_CHARS {
        return Err(Error::validation(format!(
            "password must be at least {PASSWORD_MIN_CHARS} characters"
        )));
    }
    if chars > PASSWORD_MAX_CHARS {
        return Err(Error::validation(format!(
            "password must be at most {PASSWORD_MAX_CHARS} characters"
        )));
    }
    Ok(())
}

/// A dependency list: positive ids, no more than [`MAX_DEPENDENCIES`],
/// duplicates dropped (first occurrence kept). Existence and cycles need the
/// project's tasks and are checked by the caller under the project lock.
pub fn dependency_list(ids: &[i64], task_id: Option<i64>) -> Result<Vec<i64>, Error> {
    if ids.len() > MAX_DEPENDENCIES {
        return Err(Error::validation(format!(
            "a task may have at most {MAX_DEPENDENCIES} dependencies"
        )));
    }
    if let Some(bad) = ids.iter().find(|id| **id <= 0) {
        return Err(Error::Invalid(
            "unknown_dependency",
            format!("dependency {bad} is not a task id (ids are positive)"),
        ));
    }
    if let Some(task_id) = task_id {
        if ids.contains(&task_id) {
            return Err(Error::Conflict(
                "dependency_cycle",
                format!("task {task_id} cannot depend on itself"),
            ));
        }
    }
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    Ok(ids.iter().copied().filter(|id| seen.insert(*id)).collect())
}

fn bounded_text(field: &str, value: &str, min: usize, max: usize) -> Result<String, Error> {
    // Count at most max + 1 characters: enough to decide, cheap on huge input.
    let chars = value.chars().take(max.saturating_add(1)).count();
    if chars < min {
        return Err(Error::validation(format!("{field} must not be empty")));
    }
    if chars > max {
        return Err(Error::validation(format!(
            "{field} must be at most {max} characters"
        )));
    }
    if !storable_text(value) {
        return Err(Error::validation(format!(
            "{field} must not contain NUL characters"
        )));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(result: Result<impl std::fmt::Debug, Error>) -> &'static str {
        result.unwrap_err().code()
    }

    #[test]
    fn title_is_trimmed_and_bounded() {
        assert_eq!(title("  Ship it ").unwrap(), "Ship it");
        assert_eq!(code(title("   ")), "validation_failed");
        assert!(
            title(&"é".repeat(500)).is_ok(),
            "limit counts characters, not bytes"
        );
        assert_eq!(code(title(&"x".repeat(501))), "validation_failed");
    }

    #[test]
    fn nul_is_refused_because_postgres_text_cannot_hold_it() {
        assert_eq!(code(long_text("details", "a\0b")), "validation_failed");
    }

    #[test]
    fn long_text_may_be_empty_or_as_long_as_a_body_holds() {
        assert_eq!(long_text("details", "").unwrap(), "");
        assert!(long_text("details", &"x".repeat(2 * 1024 * 1024)).is_ok());
    }

    #[test]
    fn emails_are_normalised() {
        assert_eq!(email(" Ada@Example.COM ").unwrap(), "ada@example.com");
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "a b@example.com",
            "a@b@c",
            "a\0b@example.com",
        ] {
            assert!(email(bad).is_err(), "{bad:?} accepted");
        }
        assert!(email(&format!("{}@x.io", "a".repeat(260))).is_err());
    }

    #[test]
    fn passwords_have_bounds() {
        assert!(password("1234567").is_err());
        assert!(password("12345678").is_ok());
        assert!(password(&"x".repeat(PASSWORD_MAX_CHARS + 1)).is_err());
    }

    #[test]
    fn dependency_lists() {
        assert_eq!(
            dependency_list(&[3, 1, 3, 2, 1], Some(9)).unwrap(),
            vec![3, 1, 2]
        );
        assert_eq!(code(dependency_list(&[4], Some(4))), "dependency_cycle");
        assert_eq!(code(dependency_list(&[0], None)), "unknown_dependency");
        assert_eq!(code(dependency_list(&[-2], None)), "unknown_dependency");
        let too_many: Vec<i64> = (1..=MAX_DEPENDENCIES as i64 + 1).collect();
        assert_eq!(code(dependency_list(&too_many, None)), "validation_failed");
    }
}
