//! Who may do what in a project.

use protocol::Role;
use uuid::Uuid;

use crate::db;
use crate::error::{ApiError, Result};

/// What a route needs of the caller's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Any member: read and subscribe.
    Read,
    /// Owner or editor: change tasks.
    Write,
    /// Owner: manage members.
    Manage,
}

impl Need {
    fn role(self) -> Role {
        match self {
            Need::Read => Role::Viewer,
            Need::Write => Role::Editor,
            Need::Manage => Role::Owner,
        }
    }
}

/// Resolves `project_id` for `user` and checks the role.
///
/// A malformed id, an unknown project and a project the caller is not a member
/// of all give the same 404, so nobody can learn which projects exist. Only a
/// member learns that their role is too weak (403).
pub async fn authorize(
    db: &sqlx::PgPool,
    project_id: &str,
    user: Uuid,
    need: Need,
) -> Result<(Uuid, Role)> {
    let project = Uuid::parse_str(project_id).map_err(|_| ApiError::project_not_found())?;
    let role = db::projects::role_of(db, project, user)
        .await?
        .ok_or_else(ApiError::project_not_found)?;
    if !role.allows(need.role()) {
        let action = match need {
            Need::Read => "read this project",
            Need::Write => "change tasks in this project",
            Need::Manage => "manage this project's members",
        };
        return Err(ApiError::Forbidden(format!(
            "your role in this project is {role}; it does not allow you to {action}"
        )));
    }
    Ok((project, role))
}
