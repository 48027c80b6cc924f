//! Projects, their members, and the audit log of membership changes.

use protocol::{AddMemberRequest, AuditPage, Member, Project};
use uuid::Uuid;

use super::tasks::{decode_cursor, encode_cursor};
use super::{Actor, App, Need};
use crate::db;
use crate::db::projects::PutOutcome;
use crate::domain::task as rules;
use crate::error::{Error, Result};

impl App {
    /// Creates a project; the caller becomes its owner.
    pub async fn create_project(&self, actor: &Actor, name: &str) -> Result<Project> {
        actor.check_may_create_projects()?;
        let name = rules::project_name(name)?;
        db::projects::create(self.db(), actor.id, &name).await
    }

    /// The caller's projects.
    pub async fn projects(&self, actor: &Actor) -> Result<Vec<Project>> {
        let mut projects = db::projects::list_for(self.db(), actor.id).await?;
        if let Some(only) = actor.grant.and_then(|grant| grant.project) {
            let only = only.to_string();
            projects.retain(|project| project.id == only);
        }
        Ok(projects)
    }

    /// Adds a member by email, or changes an existing member's role. Owners only.
    pub async fn put_member(
        &self,
        actor: &Actor,
        project_id: &str,
        request: AddMemberRequest,
    ) -> Result<(Member, PutOutcome)> {
        let access = self.authorize(actor, project_id, Need::Manage).await?;
        let email = rules::email(&request.email).map_err(|_| {
            Error::NotFound("user_not_found", "no user has this email address".into())
        })?;
        let put =
            db::projects::put_member(self.db(), actor.id, access.project, &email, request.role)
                .await?;
        let user = Uuid::parse_str(&put.member.user.id).map_err(anyhow::Error::from)?;
        self.cache()
            .members_changed(
                access.project,
                user,
                put.members_version,
                Some(put.member.role),
            )
            .await;
        Ok((put.member, put.outcome))
    }

    /// The project's members.
    pub async fn members(&self, actor: &Actor, project_id: &str) -> Result<Vec<Member>> {
        let access = self.authorize(actor, project_id, Need::Read).await?;
        let db = self.db();
        self.cache()
            .members(access.project, db::projects::members(db, access.project))
            .await
    }

    /// Removes a member. Owners may remove anyone; any member may remove
    /// themselves. The last owner cannot be removed. The removed member's
    /// subscriptions to the project end at once.
    pub async fn remove_member(
        &self,
        actor: &Actor,
        project_id: &str,
        user_id: &str,
    ) -> Result<()> {
        let target = Uuid::parse_str(user_id)
            .map_err(|_| Error::NotFound("member_not_found", "no such member".into()))?;
        let need = if target == actor.id {
            Need::Read
        } else {
            Need::Manage
        };
        let access = self.authorize(actor, project_id, need).await?;
        actor.require_session("change project membership")?;
        let version =
            db::projects::remove_member(self.db(), actor.id, access.project, target).await?;
        self.cache()
            .members_changed(access.project, target, version, None)
            .await;
        self.after_member_removed(access.project, target).await;
        Ok(())
    }

    /// A page of the project's audit log, newest first. Owners only: it
    /// names everyone who was ever a member.
    pub async fn audit_log(
        &self,
        actor: &Actor,
        project_id: &str,
        limit: i64,
        cursor: Option<&str>,
    ) -> Result<AuditPage> {
        let access = self.authorize(actor, project_id, Need::Manage).await?;
        let before = cursor.map(decode_cursor).transpose()?;
        // One more than asked tells whether there is a next page.
        let mut items =
            db::projects::audit_log(self.db(), access.project, before, limit + 1).await?;
        let next_cursor = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items.last().map(|entry| encode_cursor(entry.id))
        } else {
            None
        };
        Ok(AuditPage { items, next_cursor })
    }
}

/// Audit entries per page unless the caller asks otherwise, and at most.
pub const AUDIT_PAGE: i64 = 50;
pub const MAX_AUDIT_PAGE: i64 = 200;
