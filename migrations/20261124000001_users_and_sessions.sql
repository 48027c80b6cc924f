-- people who can sign in, and their bearer-token sessions.

create table users (
    user_id       uuid primary key,
    -- stored lower-cased and trimmed, so lookups are exact matches.
    email         text not null unique check (length(email) between 3 and 254),
    name          text not null check (length(name) between 1 and 100),
    -- argon2id in PHC string format (salt and parameters included).
    password_hash text not null,
    created_at    timestamptz not null default now()
);

-- a session is an opaque random token handed to the client once; only its
-- sha-256 is kept, so a database leak does not leak usable tokens.
create table sessions (
    token_hash bytea primary key,
    user_id    uuid not null references users (user_id) on delete cascade,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null
);

-- "sign out everywhere" and cleanup of a user's sessions.
create index sessions_user_id_idx on sessions (user_id);
-- sweeping expired sessions.
create index sessions_expires_at_idx on sessions (expires_at);
