//! Who may do what in a project. Decided on every call, never cached as a
//! decision: what may be cached is the caller's role, versioned so a change
//! of membership is seen at once.

use protocol::Role;
use uuid::Uuid;

use super::{Actor, App};
use crate::db;
use crate::error::{Error, Result};

/// What a use case needs of the caller's role.
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

    fn action(self) -> &'static str {
        match self {
            Need::Read => "read this project",
            Need::Write => "change tasks in this project",
            Need::Manage => "manage this project's members",
        }
    }
}

/// A caller allowed into a project.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    pub project: Uuid,
    pub role: Role,
}

/// Parses a project id as clients send it. A malformed id is reported
/// exactly like an unknown project.
pub fn project_id(raw: &str) -> Result<Uuid> {
    Uuid::parse_str(raw).map_err(|_| Error::project_not_found())
}

/// Whether `role` may do what `need` asks; the refusal says why.
pub fn check(role: Role, need: Need) -> Result<()> {
    if role.allows(need.role()) {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "your role in this project is {role}; it does not allow you to {}",
            need.action()
        )))
    }
}

impl App {
    /// Resolves `project_id` for `actor` and checks the role.
    ///
    /// A malformed id, an unknown project and a project the caller is not a
    /// member of all give the same 404, so nobody can learn which projects
    /// exist. Only a member learns that their role is too weak (403).
    pub async fn authorize(&self, actor: &Actor, project_id: &str, need: Need) -> Result<Access> {
        let project = self::project_id(project_id)?;
        let db = self.db();
        let role = self
            .cache()
            .role(project, actor.id, async {
                // Roles are read on the primary: a replica that has not yet
                // replayed a removal must not let the removed member in.
                Ok(
                    match db::projects::role_and_version(db, project, actor.id).await? {
                        Some((role, version)) => (role, Some(version)),
                        None => (None, None),
                    },
                )
            })
            .await?
            .ok_or_else(Error::project_not_found)?;
        check(role, need)?;
        Ok(Access { project, role })
    }
}
