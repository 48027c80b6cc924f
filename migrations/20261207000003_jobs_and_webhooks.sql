-- background jobs: a durable queue in the database, so a job is enqueued in
-- the same transaction as the change that causes it (an outbox) and
-- survives any instance.

create table jobs (
    job_id       uuid primary key,
    kind         text not null,
    -- at most one queued or running job per key: a webhook's deliveries run
    -- one at a time, which keeps them in seq order.
    queue_key    text,
    project_id   uuid references projects (project_id) on delete cascade,
    payload      jsonb not null default '{}',
    state        text not null default 'queued'
                 check (state in ('queued', 'running', 'done', 'dead')),
    attempts     integer not null default 0 check (attempts >= 0),
    max_attempts integer not null check (max_attempts >= 1),
    -- when a queued job may run (later than now while it backs off).
    run_at       timestamptz not null default now(),
    -- a running job belongs to `leased_by` until then; past it, any
    -- instance may take it over (its own died or stalled).
    lease_until  timestamptz,
    leased_by    text,
    -- set when more work arrived for a queued or running job of the same
    -- key (an outbox insert that found it): it runs again instead of ending.
    rerun        boolean not null default false,
    progress     jsonb,
    result       jsonb,
    last_error   text,
    created_by   uuid references users (user_id) on delete set null,
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now()
);

create unique index jobs_one_active_per_key on jobs (queue_key)
    where state in ('queued', 'running') and queue_key is not null;
-- what workers claim: due queued jobs, and running ones whose lease ran out.
create index jobs_due_idx on jobs (run_at) where state = 'queued';
create index jobs_lease_idx on jobs (lease_until) where state = 'running';

-- webhooks: every committed event of a project, posted to a URL its owners
-- registered, signed, at least once and in seq order.
create table webhooks (
    webhook_id     uuid primary key,
    project_id     uuid not null references projects (project_id) on delete cascade,
    url            text not null,
    -- the HMAC-SHA256 key of its signatures (shown to the owner once).
    secret         text not null,
    -- the event types it wants; empty: all of them.
    event_types    text[] not null default '{}',
    enabled        boolean not null default true,
    -- attempts per event before it is dead-lettered.
    max_attempts   integer not null check (max_attempts >= 1),
    disabled_reason text,
    -- the last seq it was sent (or skipped, for types it does not want).
    delivered_seq  bigint not null check (delivered_seq >= 0),
    -- events dead-lettered in a row; reset by a delivery.
    dead_in_a_row  integer not null default 0,
    created_by     uuid references users (user_id) on delete set null,
    created_at     timestamptz not null default now()
);

create index webhooks_project_idx on webhooks (project_id) where enabled;

-- events a webhook gave up on after its attempts, kept for redelivery.
create table webhook_dead_letters (
    webhook_id   uuid not null references webhooks (webhook_id) on delete cascade,
    seq          bigint not null,
    attempts     integer not null,
    last_error   text not null,
    failed_at    timestamptz not null default now(),
    redelivered_at timestamptz,
    primary key (webhook_id, seq)
);
