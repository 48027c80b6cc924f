-- Tasks added from a Task Master task file (POST .../imports with a
-- task_NNN.txt): the id the file gave the task (`7`, or `7.2` for a
-- subtask), so that a later file of the same plan naming it as a
-- dependency finds it; and the dependency entries that named no task when
-- it was added, as the file wrote them, which the exports keep (as they
-- keep a tasks.json's).

create table task_origins (
    project_id        uuid not null,
    task_id           bigint not null,
    source_id         text not null,
    kept_dependencies text[] not null default '{}',
    primary key (project_id, task_id),
    foreign key (project_id, task_id) references tasks (project_id, task_id) on delete cascade
);

-- "which task came from the file's task 7" (resolving a later file's
-- dependencies).
create index task_origins_source_idx on task_origins (project_id, source_id);
