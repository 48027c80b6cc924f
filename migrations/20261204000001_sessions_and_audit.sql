-- what a user needs to manage their sessions, and who changed a project's
-- membership.

-- a session's public name. the token's hash identifies it inside the server
-- but never leaves it: knowing the hash is enough to look a session up in the
-- cache, so the sessions list and revocation address a session by this id.
-- the device and address it was signed in from let its owner recognise it.
alter table sessions
    add column session_id uuid not null default gen_random_uuid(),
    add column user_agent text not null default '' check (length(user_agent) <= 512),
    add column client_ip  inet;

create unique index sessions_session_id_idx on sessions (session_id);

-- the audit log of a project's membership: one row per change, written in the
-- transaction that makes it, so a change is never without its row nor a row
-- without its change. rows are only ever added; owners read them newest
-- first.
create table audit_events (
    audit_id      bigint generated always as identity primary key,
    project_id    uuid not null references projects (project_id) on delete cascade,
    -- who did it; kept as null should the account ever be deleted.
    actor_id      uuid references users (user_id) on delete set null,
    action        text not null
                  check (action in ('project_created', 'member_added', 'role_changed', 'member_removed')),
    -- whose membership changed (the actor for project_created).
    subject_id    uuid references users (user_id) on delete set null,
    role          project_role,
    previous_role project_role,
    at            timestamptz not null default now()
);

-- "a project's log, newest first, one page after another".
create index audit_events_project_idx on audit_events (project_id, audit_id desc);
