//! `taskmaster probe`, the synthetic check, run as operators run it: the
//! binary against a live server.

use serde_json::Value;
use tokio::process::Command;

use crate::helpers::{TestApp, PASSWORD};

async fn probe(url: &str, email: &str, password: &str, extra: &[&str]) -> (i32, Value, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_taskmaster"))
        .args([
            "probe",
            "--url",
            url,
            "--email",
            email,
            "--password",
            password,
        ])
        .args(["--json", "--timeout-ms", "5000"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .output()
        .await
        .expect("run taskmaster probe");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let report = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    (output.status.code().unwrap_or(-1), report, stderr)
}

#[tokio::test]
async fn the_probe_runs_the_key_flow_and_reports_each_steps_latency() {
    let app = TestApp::spawn().await;
    let email = format!("probe-{}@example.com", uuid::Uuid::new_v4());

    // First run: the account does not exist yet, and --register makes it.
    let (code, report, stderr) = probe(&app.address, &email, PASSWORD, &["--register"]).await;
    assert_eq!(code, 0, "{report} {stderr}");
    assert_eq!(report["ok"], true, "{report}");
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "register",
            "find_project",
            "connect",
            "join",
            "create_task",
            "created_event",
            "delete_task",
            "deleted_event"
        ],
        "{report}"
    );
    assert!(report["delivery_ms"].as_f64().unwrap() > 0.0, "{report}");
    assert!(report["total_ms"].as_f64().unwrap() > 0.0, "{report}");

    // Later runs sign in and reuse the project; the probe's tasks are gone.
    let (code, report, _) = probe(&app.address, &email, PASSWORD, &[]).await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["steps"][0]["step"], "sign_in", "{report}");
    let projects: Vec<(String,)> = sqlx::query_as(
        "select p.name from projects p join project_members m using (project_id)
          join users u using (user_id) where u.email = $1",
    )
    .bind(&email)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(projects, [("Synthetic probe".to_owned(),)]);
    let left: i64 = sqlx::query_scalar("select count(*) from tasks")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(left, 0, "the probe deletes what it creates");
}

#[tokio::test]
async fn the_probe_fails_with_distinct_codes_for_refused_credentials_and_a_dead_service() {
    let mut app = TestApp::spawn().await;
    let user = app.register("Prober").await;

    let (code, report, _) = probe(&app.address, &user.email, "not the password", &[]).await;
    assert_eq!(code, 3, "sign-in refused: {report}");
    assert_eq!(report["ok"], false);
    assert_eq!(report["failed"]["step"], "sign_in", "{report}");

    let address = app.address.clone();
    app.shut_down().await.unwrap();
    let (code, report, _) = probe(&address, &user.email, PASSWORD, &[]).await;
    assert_eq!(code, 1, "service down: {report}");
    assert_eq!(report["failed"]["step"], "sign_in", "{report}");
    assert!(
        report["failed"]["error"]
            .as_str()
            .unwrap()
            .contains("no answer"),
        "{report}"
    );
}
