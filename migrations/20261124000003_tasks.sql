-- tasks, modelled on task master's tasks.json.

-- enums declared in the contract's order: for task_priority that makes
-- `order by priority` rank critical < high < medium < low, as next-task needs.
create type task_status as enum
    ('pending', 'in-progress', 'review', 'done', 'deferred', 'cancelled', 'blocked');
create type task_priority as enum ('critical', 'high', 'medium', 'low');

create table tasks (
    project_id    uuid not null references projects (project_id) on delete cascade,
    -- per-project number handed out from projects.last_task_id.
    task_id       bigint not null check (task_id > 0),
    title         text not null check (length(title) between 1 and 500),
    description   text not null default '',
    details       text not null default '',
    test_strategy text not null default '',
    status        task_status not null default 'pending',
    priority      task_priority not null default 'medium',
    -- ids of tasks of the same project. kept as an array (as in tasks.json):
    -- the application checks existence and cycles under the project lock, and
    -- deleting a task strips its id from every array in the same transaction.
    dependencies  bigint[] not null default '{}',
    assignee_id   uuid references users (user_id) on delete set null,
    -- one level of subtasks; the application keeps parents top-level.
    parent_id     bigint,
    version       bigint not null default 1 check (version >= 1),
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    primary key (project_id, task_id),
    foreign key (project_id, parent_id) references tasks (project_id, task_id)
);

-- list filtered by status, in id order (keyset pagination).
create index tasks_status_idx on tasks (project_id, status, task_id);

-- subtasks of a parent (next-task, cascading delete).
create index tasks_parent_idx on tasks (project_id, parent_id, task_id)
    where parent_id is not null;

-- next-task candidates among top-level tasks, already in the order the rule
-- ranks them, so the query walks the index and stops at the first task whose
-- dependencies are done instead of sorting every open task.
create index tasks_next_idx
    on tasks (project_id, priority, cardinality(dependencies), task_id)
    where status in ('pending', 'in-progress') and parent_id is null;

-- in-progress parents, where next-task looks for subtasks first.
create index tasks_in_progress_idx on tasks (project_id, task_id)
    where status = 'in-progress' and parent_id is null;

-- tasks that depend on a given task (delete strips the dependency).
create index tasks_dependencies_idx on tasks using gin (dependencies);
