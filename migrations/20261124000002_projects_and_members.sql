-- projects and who may do what in them.

create table projects (
    project_id   uuid primary key,
    name         text not null check (length(name) between 1 and 200),
    created_at   timestamptz not null default now(),
    -- per-project counters. every write transaction locks this row first
    -- (select ... for update), which serialises writers of one project while
    -- writers of different projects never wait for each other. both counters
    -- only move forward inside those transactions, so a rolled-back write
    -- leaves no gap and a number is never handed out twice.
    last_task_id bigint not null default 0 check (last_task_id >= 0),
    last_seq     bigint not null default 0 check (last_seq >= 0)
);

create type project_role as enum ('owner', 'editor', 'viewer');

create table project_members (
    project_id uuid not null references projects (project_id) on delete cascade,
    user_id    uuid not null references users (user_id) on delete cascade,
    role       project_role not null,
    added_at   timestamptz not null default now(),
    primary key (project_id, user_id)
);

-- "my projects": the primary key serves (project_id, user_id) look-ups, this
-- one the other direction.
create index project_members_user_id_idx on project_members (user_id, project_id);
