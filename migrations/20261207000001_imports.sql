-- Task Master files brought in with POST /api/v1/imports, kept so that the
-- export can rebuild each file from the live state of its projects.

create table imports (
    import_id  uuid primary key,
    owner_id   uuid not null references users (user_id) on delete cascade,
    format     text not null check (format in ('legacy', 'tagged')),
    -- the file exactly as it came, as text: jsonb would reorder its keys
    -- and forget its layout, and the export gives both back.
    source     text not null,
    created_at timestamptz not null default now()
);

-- one project per tag of the file, in the file's order.
create table import_projects (
    import_id  uuid not null references imports (import_id) on delete cascade,
    position   integer not null check (position >= 0),
    tag        text not null,
    project_id uuid not null references projects (project_id) on delete cascade,
    primary key (import_id, position)
);

-- "which file did this project come from" (a project's own tasks.json).
create index import_projects_project_idx on import_projects (project_id);
