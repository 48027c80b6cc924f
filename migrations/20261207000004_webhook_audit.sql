-- A webhook disabled after persistent failure is written into its
-- project's audit log, which owners read: the worker that disables it has
-- no one to answer, so the log is where the owner is told. `detail` says
-- which webhook and why; the membership entries leave it null.

alter table audit_events drop constraint audit_events_action_check;
alter table audit_events add constraint audit_events_action_check
    check (action in ('project_created', 'member_added', 'role_changed', 'member_removed',
                      'webhook_disabled'));
alter table audit_events add column detail text;
