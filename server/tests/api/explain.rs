//! Every hot query pattern uses an index on a big project: seeded with
//! 100,000 tasks and 1,000,000 events, `EXPLAIN` must show no sequential
//! scan of `tasks` or of any `events` partition, and a read of the change log
//! must touch exactly one partition, for both the first (custom) plans and
//! the generic plans PostgreSQL switches prepared statements to after a few
//! runs.

use serde_json::Value;
use sqlx::{Connection, PgConnection};
use taskmaster_server::db::{events, tasks};
use uuid::Uuid;

use crate::helpers::TestApp;

const TASKS: i64 = 100_000;
const EVENTS: i64 = 1_000_000;

async fn seed(app: &TestApp) -> Uuid {
    let user = app.register("Seeder").await;
    let actor = Uuid::parse_str(&user.id).unwrap();
    // Its own connection: seeding a million rows takes longer than the
    // server's statement timeout allows.
    let mut seeder = PgConnection::connect(&app.database_url).await.unwrap();
    let big = Uuid::now_v7();
    sqlx::query("insert into projects (project_id, name, last_task_id, last_seq) values ($1, 'big', $2, $3)")
        .bind(big)
        .bind(TASKS)
        .bind(EVENTS)
        .execute(&mut seeder)
        .await
        .unwrap();
    // A realistic mix: mostly done, a fifth pending, few in progress; every
    // tenth task a subtask of the one before; chains of dependencies.
    sqlx::query(
        "insert into tasks (project_id, task_id, title, status, priority, dependencies, parent_id)
         select $1, id, 'task ' || id,
                (case when id % 100 < 70 then 'done'
                      when id % 100 < 89 then 'pending'
                      when id % 100 = 89 then 'in-progress'
                      when id % 100 < 95 then 'pending'
                      else 'blocked' end)::task_status,
                (array['critical','high','medium','low'])[1 + id % 4]::task_priority,
                case when id % 3 = 0 and id > 1 then array[id - 1]
                     when id % 3 = 1 and id > 5 then array[id - 2, id - 5]
                     else '{}'::bigint[] end,
                case when id % 10 = 0 then id - 1 end
           from generate_series(1, $2::bigint) as id",
    )
    .bind(big)
    .bind(TASKS)
    .execute(&mut seeder)
    .await
    .unwrap();
    sqlx::query(
        "insert into events (project_id, seq, type, actor_id, payload)
         select $1, seq, 'task.updated', $2, jsonb_build_object('id', 1 + seq % $4)
           from generate_series(1, $3::bigint) as seq",
    )
    .bind(big)
    .bind(actor)
    .bind(EVENTS)
    .bind(TASKS)
    .execute(&mut seeder)
    .await
    .unwrap();
    // Many small projects beside the big one, as in a real deployment, so
    // generic plans do not assume one project owns the whole table.
    sqlx::query(
        "with small as (
             insert into projects (project_id, name, last_task_id, last_seq)
             select gen_random_uuid(), 'small ' || n, 10, 20 from generate_series(1, 200) as n
             returning project_id)
         , t as (
             insert into tasks (project_id, task_id, title)
             select project_id, id, 'small task' from small, generate_series(1, 10) as id)
         insert into events (project_id, seq, type, actor_id, payload)
         select project_id, seq, 'task.created', $1, '{}'::jsonb from small, generate_series(1, 20) as seq",
    )
    .bind(actor)
    .execute(&mut seeder)
    .await
    .unwrap();
    sqlx::query("analyze").execute(&mut seeder).await.unwrap();
    big
}

/// Every (node type, relation) in a JSON plan.
fn scans(plan: &Value, found: &mut Vec<(String, String)>) {
    match plan {
        Value::Object(node) => {
            if let Some(Value::String(node_type)) = node.get("Node Type") {
                let relation = node
                    .get("Relation Name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                found.push((node_type.clone(), relation.to_owned()));
            }
            node.values().for_each(|child| scans(child, found));
        }
        Value::Array(items) => items.iter().for_each(|child| scans(child, found)),
        _ => {}
    }
}

async fn explain(
    connection: &mut PgConnection,
    name: &str,
    sql: &str,
    binds: Binds,
) -> Vec<(String, String)> {
    let statement = format!("explain (format json) {sql}");
    let mut query = sqlx::query_scalar::<_, Value>(&statement);
    for bind in binds.0 {
        query = match bind {
            Bind::Uuid(value) => query.bind(value),
            Bind::Int(value) => query.bind(value),
            Bind::Statuses(value) => query.bind(value),
        };
    }
    let plan = query
        .fetch_one(&mut *connection)
        .await
        .unwrap_or_else(|error| panic!("explain {name}: {error}"));
    let mut found = Vec::new();
    scans(&plan, &mut found);
    let sequential: Vec<_> = found
        .iter()
        .filter(|(node, relation)| {
            node == "Seq Scan" && (relation == "tasks" || relation.starts_with("events"))
        })
        .collect();
    assert!(
        sequential.is_empty(),
        "{name} scans a big table sequentially:\n{plan:#}"
    );
    if sql.contains("from events") {
        let partitions: std::collections::BTreeSet<&str> = found
            .iter()
            .map(|(_, relation)| relation.as_str())
            .filter(|relation| relation.starts_with("events"))
            .collect();
        assert_eq!(
            partitions.len(),
            1,
            "{name} must prune to one partition of events, reads {partitions:?}:\n{plan:#}"
        );
    }
    found
}

enum Bind {
    Uuid(Uuid),
    Int(i64),
    Statuses(Vec<String>),
}

struct Binds(Vec<Bind>);

#[tokio::test]
async fn hot_queries_use_indexes_on_a_big_project() {
    let app = TestApp::spawn().await;
    let big = seed(&app).await;
    let mut connection = PgConnection::connect(&app.database_url).await.unwrap();

    for mode in ["auto", "force_generic_plan"] {
        sqlx::query(&format!("set plan_cache_mode = {mode}"))
            .execute(&mut connection)
            .await
            .unwrap();
        let cases: Vec<(&str, &str, Binds)> = vec![
            (
                "list, first page",
                tasks::sql::LIST,
                Binds(vec![Bind::Uuid(big), Bind::Int(0), Bind::Int(101)]),
            ),
            (
                "list, deep page",
                tasks::sql::LIST,
                Binds(vec![Bind::Uuid(big), Bind::Int(90_000), Bind::Int(501)]),
            ),
            (
                "list by status",
                tasks::sql::LIST_BY_STATUS,
                Binds(vec![
                    Bind::Uuid(big),
                    Bind::Int(0),
                    Bind::Statuses(vec!["blocked".into()]),
                    Bind::Int(101),
                ]),
            ),
            (
                "list by two statuses",
                tasks::sql::LIST_BY_STATUS,
                Binds(vec![
                    Bind::Uuid(big),
                    Bind::Int(50_000),
                    Bind::Statuses(vec!["pending".into(), "in-progress".into()]),
                    Bind::Int(101),
                ]),
            ),
            (
                "get by id",
                tasks::sql::GET,
                Binds(vec![Bind::Uuid(big), Bind::Int(54_321)]),
            ),
            (
                "next: subtasks",
                tasks::sql::NEXT_SUBTASK,
                Binds(vec![Bind::Uuid(big)]),
            ),
            (
                "next: top level",
                tasks::sql::NEXT_TOP_LEVEL,
                Binds(vec![Bind::Uuid(big)]),
            ),
            (
                "get by id, stamped",
                tasks::sql::GET_STAMPED,
                Binds(vec![Bind::Uuid(big), Bind::Int(54_321)]),
            ),
            (
                "list, stamped",
                tasks::sql::LIST_STAMPED,
                Binds(vec![Bind::Uuid(big), Bind::Int(90_000), Bind::Int(101)]),
            ),
            (
                "list by status, stamped",
                tasks::sql::LIST_BY_STATUS_STAMPED,
                Binds(vec![
                    Bind::Uuid(big),
                    Bind::Int(0),
                    Bind::Statuses(vec!["blocked".into()]),
                    Bind::Int(101),
                ]),
            ),
            (
                "next, stamped",
                tasks::sql::NEXT_STAMPED,
                Binds(vec![Bind::Uuid(big)]),
            ),
            (
                "events since, recent",
                events::SINCE_SQL,
                Binds(vec![
                    Bind::Uuid(big),
                    Bind::Int(EVENTS - 100),
                    Bind::Int(1000),
                ]),
            ),
            (
                "events since, from start",
                events::SINCE_SQL,
                Binds(vec![Bind::Uuid(big), Bind::Int(0), Bind::Int(1000)]),
            ),
        ];
        for (name, sql, binds) in cases {
            let found = explain(&mut connection, &format!("{name} ({mode})"), sql, binds).await;
            assert!(
                found.iter().any(|(node, _)| node.contains("Index")),
                "{name} ({mode}) uses no index: {found:?}"
            );
        }
    }

    // The queries also return the right thing on this data.
    let user = app.register("Reader").await;
    sqlx::query(
        "insert into project_members (project_id, user_id, role) values ($1, $2::uuid, 'viewer')",
    )
    .bind(big)
    .bind(&user.id)
    .execute(&app.db)
    .await
    .unwrap();
    let next = app
        .get(&format!("/api/v1/projects/{big}/tasks/next"), &user.token)
        .await;
    assert_eq!(next.status, 200, "{}", next.text);
    assert_eq!(
        next.body["parent_id"].as_i64().map(|parent| parent % 100),
        Some(89),
        "a subtask of an in-progress parent"
    );
}
