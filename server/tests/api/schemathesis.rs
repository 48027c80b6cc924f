//! Schemathesis (PyPI) against our own OpenAPI document: every operation,
//! authenticated, with example-based, fuzzed and stateful (linked
//! operations) cases. Any server error or response that contradicts the
//! document fails the test.
//!
//! Three of its checks are left out, each for a reason of the contract's
//! or of HTTP's (the failures they report are not ours):
//! `positive_data_acceptance` expects every schema-valid request to succeed,
//! but much of our validation depends on state no schema can describe
//! (a dependency or parent must exist, an assignee must be a member, an
//! `If-Match` must name the current version) and is answered with the
//! documented 422 / 412; `ensure_resource_availability` reads the 404 of
//! adding an unknown user's email to a freshly created project as "the
//! project is gone", while the contract answers `user_not_found`; and
//! `negative_data_rejection` counts a request with an extra, unknown header
//! as schema-violating and wants it refused, while HTTP lets a client send
//! headers a server does not know. Invalid data is still generated and
//! sent: every answer to it must be a documented 4xx, never a 5xx.
//!
//! Bounded for CI (a fixed seed, a few dozen cases per operation); the
//! longer run is documented in docs/BENCHMARKS.md ("Bad input").

use std::time::Duration;

use tokio::process::Command;

use crate::helpers::{python_test_tool, TestApp};

const EXCLUDED_CHECKS: &str =
    "positive_data_acceptance,ensure_resource_availability,negative_data_rejection";

#[tokio::test]
async fn the_api_answers_fuzzed_and_stateful_requests_as_its_openapi_document_says() {
    let app = TestApp::spawn_with(|config| {
        // Thousands of requests with one token, as fast as they come.
        config.api_requests_per_token_per_second = 0;
        config.api_requests_per_user_per_second = 0;
    })
    .await;
    let user = app.register("Schemathesis").await;
    let reports = tempfile::tempdir().unwrap();
    let run = Command::new(python_test_tool("schemathesis"))
        .arg("run")
        .arg(app.url("/api/v1/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {}", user.token)])
        // Signing out, or revoking its own session (listed by
        // GET /auth/sessions), would end the token every other case uses.
        .args(["--exclude-path", "/api/v1/auth/logout"])
        .args(["--exclude-path", "/api/v1/auth/sessions/{session_id}"])
        .args(["--checks", "all", "--exclude-checks", EXCLUDED_CHECKS])
        .args(["--max-examples", "25", "--seed", "1"])
        .args(["--request-timeout", "10", "--continue-on-failure"])
        .arg("--report-dir")
        .arg(reports.path())
        .env("NO_COLOR", "1")
        // Its example database goes where the reports go, not into the tree.
        .current_dir(reports.path())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("schemathesis finished within 4 minutes")
        .expect("schemathesis runs (scripts/test.sh installs it from PyPI)");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // It did test: every operation of the document but the two excluded.
    let document: serde_json::Value = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let operations: usize = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert!(
        report.contains(&format!("Tested: {}", operations - 2)),
        "{operations} operations, 2 excluded: {report}"
    );
    // "1454 generated, 1454 passed, 16 skipped": a run that tried little
    // proves little.
    let counts = report
        .lines()
        .find(|line| line.contains(" generated, "))
        .unwrap_or_else(|| panic!("no summary in {report}"));
    let generated: usize = counts.split_whitespace().next().unwrap().parse().unwrap();
    assert!(generated >= 300, "only {generated} cases: {report}");
    assert!(counts.contains(&format!("{generated} passed")), "{report}");
}
