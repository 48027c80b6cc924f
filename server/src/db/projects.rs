//! Projects and their members.

use protocol::{AuditAction, AuditEntry, Member, Project, Role, User};
use sqlx::{FromRow, PgPool, Postgres, Row, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use super::rfc3339;
use crate::error::{Error, Result};

pub(super) fn project(project_id: Uuid, name: String, created_at: OffsetDateTime) -> Project {
    Project {
        id: project_id.to_string(),
        name,
        created_at: rfc3339(created_at),
    }
}

/// Creates a project with `owner` as its first owner.
pub async fn create(pool: &PgPool, owner: Uuid, name: &str) -> Result<Project> {
    let mut tx = pool.begin().await?;
    let project = create_in(&mut tx, owner, name).await?;
    tx.commit().await?;
    Ok(project)
}

/// Creates a project in a transaction of the caller's (an import makes
/// its projects and their tasks in one).
pub async fn create_in(
    tx: &mut Transaction<'_, Postgres>,
    owner: Uuid,
    name: &str,
) -> Result<Project> {
    let (project_id, name, created_at): (Uuid, String, OffsetDateTime) = sqlx::query_as(
        "insert into projects (project_id, name) values ($1, $2)
         returning project_id, name, created_at",
    )
    .bind(Uuid::now_v7())
    .bind(name)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query("insert into project_members (project_id, user_id, role) values ($1, $2, 'owner')")
        .bind(project_id)
        .bind(owner)
        .execute(&mut **tx)
        .await?;
    let created = Audit {
        project: project_id,
        actor: owner,
        action: AuditAction::ProjectCreated,
        subject: owner,
        role: Some(Role::Owner),
        previous_role: None,
    };
    created.record(tx).await?;
    Ok(project(project_id, name, created_at))
}

/// The projects `user` is a member of, oldest first.
pub async fn list_for(pool: &PgPool, user: Uuid) -> Result<Vec<Project>> {
    let rows: Vec<(Uuid, String, OffsetDateTime)> = sqlx::query_as(
        "select p.project_id, p.name, p.created_at
           from project_members m join projects p using (project_id)
          where m.user_id = $1
          order by p.created_at, p.project_id",
    )
    .bind(user)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, created_at)| project(id, name, created_at))
        .collect())
}

/// `user`'s role in `project`, or `None` when not a member (or no such project).
pub async fn role_of(pool: &PgPool, project: Uuid, user: Uuid) -> Result<Option<Role>> {
    let role: Option<String> = sqlx::query_scalar(
        "select role::text from project_members where project_id = $1 and user_id = $2",
    )
    .bind(project)
    .bind(user)
    .fetch_optional(pool)
    .await?;
    role.map(|role| parse_role(&role)).transpose()
}

/// `user`'s role in `project` and the project's members version, read
/// together; `None` when there is no such project.
pub async fn role_and_version(
    pool: &PgPool,
    project: Uuid,
    user: Uuid,
) -> Result<Option<(Option<Role>, i64)>> {
    let row: Option<(Option<String>, i64)> = sqlx::query_as(
        "select m.role::text, p.members_version
           from projects p
           left join project_members m on m.project_id = p.project_id and m.user_id = $2
          where p.project_id = $1",
    )
    .bind(project)
    .bind(user)
    .fetch_optional(pool)
    .await?;
    row.map(|(role, version)| Ok((role.as_deref().map(parse_role).transpose()?, version)))
        .transpose()
}

fn parse_role(role: &str) -> Result<Role> {
    role.parse()
        .map_err(|error| Error::Internal(anyhow::anyhow!("bad role in database: {error}")))
}

/// Locks the project row for the rest of `tx`: every write to a project takes
/// this lock first, so writers of one project run one after another (and see
/// each other's committed changes), while other projects are unaffected.
/// Returns `(last_task_id, last_seq)`, or `None` if the project is gone.
pub async fn lock(tx: &mut Transaction<'_, Postgres>, project: Uuid) -> Result<Option<(i64, i64)>> {
    Ok(sqlx::query_as(
        "select last_task_id, last_seq from projects where project_id = $1 for update",
    )
    .bind(project)
    .fetch_optional(&mut **tx)
    .await?)
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    user_id: Uuid,
    email: String,
    name: String,
    role: String,
}

impl TryFrom<MemberRow> for Member {
    type Error = Error;

    fn try_from(row: MemberRow) -> Result<Self> {
        Ok(Member {
            user: User {
                id: row.user_id.to_string(),
                email: row.email,
                name: row.name,
            },
            role: parse_role(&row.role)?,
        })
    }
}

/// The project's members and its members version, read together (the
/// version is `None` only for a project without members, which the last
/// owner rule prevents).
pub async fn members(pool: &PgPool, project: Uuid) -> Result<(Vec<Member>, Option<i64>)> {
    let rows = sqlx::query(
        "select u.user_id, u.email, u.name, m.role::text as role, p.members_version
           from projects p
           join project_members m using (project_id)
           join users u using (user_id)
          where p.project_id = $1
          order by m.added_at, u.user_id",
    )
    .bind(project)
    .fetch_all(pool)
    .await?;
    let version = rows
        .first()
        .map(|row| row.try_get::<i64, _>("members_version"))
        .transpose()?;
    let members = rows
        .iter()
        .map(|row| Member::try_from(MemberRow::from_row(row)?))
        .collect::<Result<_>>()?;
    Ok((members, version))
}

/// Bumps the project's members version inside a membership change.
async fn bump_members_version(tx: &mut Transaction<'_, Postgres>, project: Uuid) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "update projects set members_version = members_version + 1
          where project_id = $1 returning members_version",
    )
    .bind(project)
    .fetch_one(&mut **tx)
    .await?)
}

/// Whether [`put_member`] added someone new or changed an existing role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Added,
    Updated,
}

/// A membership change, with the members version it committed.
#[derive(Debug, Clone)]
pub struct PutMember {
    pub member: Member,
    pub outcome: PutOutcome,
    pub members_version: i64,
}

/// Adds the user with `email` to `project` with `role`, or changes the role of
/// an existing member. Refuses to demote the last owner.
pub async fn put_member(
    pool: &PgPool,
    actor: Uuid,
    project: Uuid,
    email: &str,
    role: Role,
) -> Result<PutMember> {
    let mut tx = pool.begin().await?;
    lock(&mut tx, project)
        .await?
        .ok_or_else(Error::project_not_found)?;
    let user: Option<(Uuid, String, String)> =
        sqlx::query_as("select user_id, email, name from users where email = $1")
            .bind(email)
            .fetch_optional(&mut *tx)
            .await?;
    let (user_id, email, name) = user.ok_or_else(|| {
        Error::NotFound("user_not_found", "no user has this email address".into())
    })?;
    let current: Option<String> = sqlx::query_scalar(
        "select role::text from project_members where project_id = $1 and user_id = $2",
    )
    .bind(project)
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    let current = current.as_deref().map(parse_role).transpose()?;
    if current == Some(Role::Owner)
        && role != Role::Owner
        && owner_count(&mut tx, project).await? == 1
    {
        return Err(Error::Conflict(
            "last_owner",
            "the project's last owner cannot be demoted; make someone else owner first".into(),
        ));
    }
    sqlx::query(
        "insert into project_members (project_id, user_id, role) values ($1, $2, $3::project_role)
         on conflict (project_id, user_id) do update set role = excluded.role",
    )
    .bind(project)
    .bind(user_id)
    .bind(role.as_str())
    .execute(&mut *tx)
    .await?;
    if current != Some(role) {
        let change = Audit {
            project,
            actor,
            action: if current.is_some() {
                AuditAction::RoleChanged
            } else {
                AuditAction::MemberAdded
            },
            subject: user_id,
            role: Some(role),
            previous_role: current,
        };
        change.record(&mut tx).await?;
    }
    let members_version = bump_members_version(&mut tx, project).await?;
    tx.commit().await?;
    let member = Member {
        user: User {
            id: user_id.to_string(),
            email,
            name,
        },
        role,
    };
    let outcome = if current.is_some() {
        PutOutcome::Updated
    } else {
        PutOutcome::Added
    };
    Ok(PutMember {
        member,
        outcome,
        members_version,
    })
}

/// Removes `user` from `project`, returning the members version the removal
/// committed. Refuses to remove the last owner.
pub async fn remove_member(pool: &PgPool, actor: Uuid, project: Uuid, user: Uuid) -> Result<i64> {
    let mut tx = pool.begin().await?;
    lock(&mut tx, project)
        .await?
        .ok_or_else(Error::project_not_found)?;
    let role: Option<String> = sqlx::query_scalar(
        "select role::text from project_members where project_id = $1 and user_id = $2",
    )
    .bind(project)
    .bind(user)
    .fetch_optional(&mut *tx)
    .await?;
    let role = role
        .as_deref()
        .map(parse_role)
        .transpose()?
        .ok_or_else(|| Error::NotFound("member_not_found", "no such member".into()))?;
    if role == Role::Owner && owner_count(&mut tx, project).await? == 1 {
        return Err(Error::Conflict(
            "last_owner",
            "the project's last owner cannot be removed".into(),
        ));
    }
    sqlx::query("delete from project_members where project_id = $1 and user_id = $2")
        .bind(project)
        .bind(user)
        .execute(&mut *tx)
        .await?;
    let removal = Audit {
        project,
        actor,
        action: AuditAction::MemberRemoved,
        subject: user,
        role: None,
        previous_role: Some(role),
    };
    removal.record(&mut tx).await?;
    let members_version = bump_members_version(&mut tx, project).await?;
    tx.commit().await?;
    Ok(members_version)
}

async fn owner_count(tx: &mut Transaction<'_, Postgres>, project: Uuid) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "select count(*) from project_members where project_id = $1 and role = 'owner'",
    )
    .bind(project)
    .fetch_one(&mut **tx)
    .await?)
}

/// Whether `user` is a member of `project` (used to validate assignees).
pub async fn is_member(
    tx: &mut Transaction<'_, Postgres>,
    project: Uuid,
    user: Uuid,
) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "select exists (select 1 from project_members where project_id = $1 and user_id = $2)",
    )
    .bind(project)
    .bind(user)
    .fetch_one(&mut **tx)
    .await?)
}

/// One change of a project's membership, for its audit log.
struct Audit {
    project: Uuid,
    actor: Uuid,
    action: AuditAction,
    subject: Uuid,
    role: Option<Role>,
    previous_role: Option<Role>,
}

impl Audit {
    /// Written in the transaction that makes the change.
    async fn record(&self, tx: &mut Transaction<'_, Postgres>) -> Result<()> {
        sqlx::query(
            "insert into audit_events (project_id, actor_id, action, subject_id, role, previous_role)
             values ($1, $2, $3, $4, $5::project_role, $6::project_role)",
        )
        .bind(self.project)
        .bind(self.actor)
        .bind(self.action.as_str())
        .bind(self.subject)
        .bind(self.role.map(Role::as_str))
        .bind(self.previous_role.map(Role::as_str))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// Up to `limit` entries of `project`'s audit log older than `before` (all
/// when `None`), newest first.
pub async fn audit_log(
    pool: &PgPool,
    project: Uuid,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditEntry>> {
    let rows = sqlx::query(
        "select a.audit_id, a.at, a.action, a.detail, a.role::text as role, a.previous_role::text as previous_role,
                actor.user_id as actor_id, actor.email as actor_email, actor.name as actor_name,
                subject.user_id as subject_id, subject.email as subject_email, subject.name as subject_name
           from audit_events a
           left join users actor on actor.user_id = a.actor_id
           left join users subject on subject.user_id = a.subject_id
          where a.project_id = $1 and ($2::bigint is null or a.audit_id < $2)
          order by a.audit_id desc
          limit $3",
    )
    .bind(project)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let user = |prefix: &str| -> Result<Option<User>> {
                let id: Option<Uuid> = row.try_get(format!("{prefix}_id").as_str())?;
                Ok(match id {
                    None => None,
                    Some(id) => Some(User {
                        id: id.to_string(),
                        email: row.try_get(format!("{prefix}_email").as_str())?,
                        name: row.try_get(format!("{prefix}_name").as_str())?,
                    }),
                })
            };
            let role = |column: &str| -> Result<Option<Role>> {
                let text: Option<String> = row.try_get(column)?;
                text.as_deref().map(parse_role).transpose()
            };
            let action: String = row.try_get("action")?;
            Ok(AuditEntry {
                id: row.try_get("audit_id")?,
                at: rfc3339(row.try_get("at")?),
                action: action.parse().map_err(anyhow::Error::from)?,
                actor: user("actor")?,
                subject: user("subject")?,
                role: role("role")?,
                previous_role: role("previous_role")?,
                detail: row.try_get("detail")?,
            })
        })
        .collect()
}
