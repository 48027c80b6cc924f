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
        Err(Error::Forbidden(
            "forbidden",
            format!(
                "your role in this project is {role}; it does not allow you to {}",
                need.action()
            ),
        ))
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
        actor.check_grant(project, need)?;
        let role = self
            .cache()
            .role(project, actor.id, self.role_in_database(project, actor.id))
            .await?;
        Ok(Access {
            project,
            role: admit(role, need)?,
        })
    }

    /// `user`'s role in `project` and the members version, from the
    /// primary: a replica that has not yet replayed a removal must not let
    /// the removed member in.
    pub(super) async fn role_in_database(
        &self,
        project: Uuid,
        user: Uuid,
    ) -> Result<(Option<Role>, Option<i64>)> {
        Ok(
            match db::projects::role_and_version(self.db(), project, user).await? {
                Some((role, version)) => (role, Some(version)),
                None => (None, None),
            },
        )
    }
}

/// Lets a member whose role allows `need` in. A non-member gets the same
/// 404 as an unknown project.
pub(super) fn admit(role: Option<Role>, need: Need) -> Result<Role> {
    let role = role.ok_or_else(Error::project_not_found)?;
    check(role, need)?;
    Ok(role)
}
