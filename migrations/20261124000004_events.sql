-- the change log: one row per committed change of a project, numbered
-- gaplessly per project. real-time delivery streams and replays from here.

create table events (
    project_id uuid not null references projects (project_id) on delete cascade,
    -- taken from projects.last_seq in the same transaction as the change.
    seq        bigint not null check (seq > 0),
    type       text not null,
    actor_id   uuid not null,
    -- the task after the change (its last state for task.deleted), exactly
    -- as it is sent to clients.
    payload    jsonb not null,
    created_at timestamptz not null default now(),
    -- also the index for "events of a project after seq n".
    primary key (project_id, seq)
);
