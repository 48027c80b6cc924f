-- the change log at scale, and the counters the cache versions by.

-- membership version: every change of a project's members (add, role change,
-- removal) bumps it in the same transaction, under the project row lock. the
-- cache stores a member's role and the member list with the version they were
-- read at and only ever replaces them with a newer one, so a late fill can
-- never bring back a role that was already changed or revoked.
alter table projects
    add column members_version bigint not null default 0 check (members_version >= 0);

-- retention: every event with seq <= events_pruned_through may be gone. a
-- client asking for changes since an older seq must reload instead
-- (`resync_required`). only the retention job moves it, and only forward.
alter table projects
    add column events_pruned_through bigint not null default 0 check (events_pruned_through >= 0);

-- events, hash-partitioned by project. every read of the log is "one project,
-- seq after n", so a partition key of project_id prunes each read to one
-- partition (and its own small primary-key index), while the writes of many
-- projects spread evenly over all partitions. range partitions by time would
-- prune nothing for that read, and a project's whole history lives in every
-- time range; list partitions would need one per project.
alter table events rename to events_unpartitioned;
alter table events_unpartitioned rename constraint events_pkey to events_unpartitioned_pkey;

create table events (
    project_id uuid not null references projects (project_id) on delete cascade,
    seq        bigint not null check (seq > 0),
    type       text not null,
    actor_id   uuid not null,
    payload    jsonb not null,
    created_at timestamptz not null default now(),
    primary key (project_id, seq)
) partition by hash (project_id);

-- sixteen partitions: a hundred million events leave each partition's index
-- a few hundred megabytes; more partitions only add planning work.
do $$
begin
    for remainder in 0..15 loop
        execute format(
            'create table events_p%s partition of events for values with (modulus 16, remainder %s)',
            lpad(remainder::text, 2, '0'), remainder);
    end loop;
end
$$;

-- the retention job deletes by age across all projects.
create index events_created_at_idx on events (created_at);

insert into events select * from events_unpartitioned;
drop table events_unpartitioned;
