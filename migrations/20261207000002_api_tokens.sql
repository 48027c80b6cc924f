-- personal access tokens: for agents, scripts and CI. like sessions, only
-- the sha-256 of the secret is kept; unlike them, a token is named, may be
-- read-only and limited to one project, and may never expire.

create table api_tokens (
    token_id     uuid primary key,
    token_hash   bytea not null unique,
    user_id      uuid not null references users (user_id) on delete cascade,
    name         text not null check (length(name) between 1 and 100),
    can_write    boolean not null,
    -- limits the token to one project; gone with the project.
    project_id   uuid references projects (project_id) on delete cascade,
    created_at   timestamptz not null default now(),
    expires_at   timestamptz,
    -- updated at most once a minute, when the token is looked up.
    last_used_at timestamptz
);

-- a user's tokens, newest first.
create index api_tokens_user_idx on api_tokens (user_id, created_at desc);
