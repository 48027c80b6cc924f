//! `taskmaster probe`: synthetic monitoring. Runs the flow users depend on
//! against a deployment — sign in, find (or make) the probe's project,
//! connect and join live, create a task and see its event arrive, delete it
//! and see that arrive too — and reports how long each step took. It exits
//! 0 when every step worked, 1 when one failed (which, and why, is in the
//! report), 3 when sign-in itself is refused (the probe's credentials, not
//! the service, need looking at). Compose and Kubernetes run it on a
//! schedule (docs/DEPLOY.md).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use protocol::{Event, NewTask};
use serde::Serialize;
use taskmaster_client::{ApiError, Client, Live, Trust};

#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    /// The deployment to probe, e.g. `https://tasks.example.com`.
    #[arg(long, env = "PROBE_URL")]
    pub url: String,
    /// The probe's account.
    #[arg(long, env = "PROBE_EMAIL")]
    pub email: String,
    #[arg(long, env = "PROBE_PASSWORD", hide_env_values = true)]
    pub password: String,
    /// Create the account when sign-in says it does not exist (first run).
    #[arg(long)]
    pub register: bool,
    /// The project the probe works in (made when missing).
    #[arg(long, env = "PROBE_PROJECT", default_value = "Synthetic probe")]
    pub project: String,
    /// Longest any step may take, in milliseconds.
    #[arg(long, env = "PROBE_TIMEOUT_MS", default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// Trust only the certificates in this PEM file (a self-signed edge).
    #[arg(long, env = "PROBE_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Print the report as one JSON object instead of lines of text.
    #[arg(long)]
    pub json: bool,
}

/// What the probe found.
#[derive(Debug, Serialize)]
pub struct Report {
    pub url: String,
    pub ok: bool,
    pub steps: Vec<Step>,
    /// The step that failed, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<Failed>,
    pub total_ms: f64,
    /// From sending the create to its event arriving over the socket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_ms: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Step {
    pub step: &'static str,
    pub ms: f64,
}

#[derive(Debug, Serialize)]
pub struct Failed {
    pub step: &'static str,
    pub error: String,
}

/// How the probe ended, as its exit code says.
pub enum Outcome {
    Healthy,
    Failed,
    SignInRefused,
}

impl Outcome {
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Healthy => 0,
            Outcome::Failed => 1,
            Outcome::SignInRefused => 3,
        }
    }
}

/// Runs the probe and prints its report.
pub async fn run(args: &ProbeArgs) -> Outcome {
    let mut report = Report {
        url: args.url.clone(),
        ok: false,
        steps: Vec::new(),
        failed: None,
        total_ms: 0.0,
        delivery_ms: None,
    };
    let started = Instant::now();
    let outcome = match flow(args, &mut report).await {
        Ok(()) => {
            report.ok = true;
            Outcome::Healthy
        }
        Err((step, error)) => {
            let refused_sign_in = step == "sign_in"
                && matches!(&error, ProbeError::Api(api) if api.status() == Some(401));
            report.failed = Some(Failed {
                step,
                error: error.to_string(),
            });
            if refused_sign_in {
                Outcome::SignInRefused
            } else {
                Outcome::Failed
            }
        }
    };
    report.total_ms = millis(started.elapsed());
    print(&report, args.json);
    outcome
}

#[derive(Debug, thiserror::Error)]
enum ProbeError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Live(#[from] taskmaster_client::LiveError),
    #[error("{0}")]
    Other(String),
}

type StepResult<T> = Result<T, (&'static str, ProbeError)>;

/// Times `work` as step `name`, recording it when it succeeds.
async fn step<T, E: Into<ProbeError>>(
    report: &mut Report,
    name: &'static str,
    work: impl std::future::Future<Output = Result<T, E>>,
) -> StepResult<T> {
    let started = Instant::now();
    let value = work.await.map_err(|error| (name, error.into()))?;
    report.steps.push(Step {
        step: name,
        ms: millis(started.elapsed()),
    });
    Ok(value)
}

async fn flow(args: &ProbeArgs, report: &mut Report) -> StepResult<()> {
    let timeout = Duration::from_millis(args.timeout_ms);
    let trust = match &args.ca_cert {
        Some(path) => Trust::pem_file(path),
        None => Trust::system(),
    }
    .map_err(|error| ("set_up", ProbeError::Other(error.to_string())))?;
    let mut client =
        Client::new(&args.url, &trust, timeout).map_err(|error| ("set_up", error.into()))?;

    let signed_in = step(report, "sign_in", client.login(&args.email, &args.password)).await;
    match signed_in {
        Ok(_) => {}
        Err((_, ProbeError::Api(error))) if args.register && error.status() == Some(401) => {
            step(
                report,
                "register",
                client.register(&args.email, "Synthetic probe", &args.password),
            )
            .await?;
        }
        Err(failed) => return Err(failed),
    }

    let project = step(report, "find_project", async {
        let existing = client
            .projects()
            .await?
            .into_iter()
            .find(|project| project.name == args.project);
        match existing {
            Some(project) => Ok::<_, ApiError>(project),
            None => client.create_project(&args.project).await,
        }
    })
    .await?;

    let token = client.token().unwrap_or_default().to_owned();
    let mut live = step(
        report,
        "connect",
        Live::connect(&args.url, &token, &trust, timeout),
    )
    .await?;
    step(report, "join", live.join(&project.id, None)).await?;

    let title = format!(
        "probe {}",
        time::OffsetDateTime::now_utc().unix_timestamp_nanos()
    );
    let sent = Instant::now();
    let new = NewTask {
        title: title.clone(),
        ..NewTask::default()
    };
    let task = step(report, "create_task", client.create_task(&project.id, &new)).await?;
    let created = step(
        report,
        "created_event",
        wait_for(&mut live, "task.created", task.id, timeout),
    )
    .await?;
    report.delivery_ms = Some(millis(sent.elapsed()));
    if created.task.title != title {
        return Err((
            "created_event",
            ProbeError::Other(format!("the event carries title {:?}", created.task.title)),
        ));
    }

    step(
        report,
        "delete_task",
        client.delete_task(&project.id, task.id),
    )
    .await?;
    step(
        report,
        "deleted_event",
        wait_for(&mut live, "task.deleted", task.id, timeout),
    )
    .await?;
    Ok(())
}

/// The event of `kind` for task `id`, skipping others (other writers may
/// share the probe's project).
async fn wait_for(
    live: &mut Live,
    kind: &str,
    id: i64,
    timeout: Duration,
) -> Result<Event, ProbeError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let event = live.next_event(left).await?;
        if event.kind == kind && event.task.id == id {
            return Ok(event);
        }
    }
}

fn millis(elapsed: Duration) -> f64 {
    (elapsed.as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}

fn print(report: &Report, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(report)
                .unwrap_or_else(|error| format!("{{\"error\":\"{error}\"}}"))
        );
        return;
    }
    println!("probe {}", report.url);
    for step in &report.steps {
        println!("  {:<14} {:>8.1} ms", step.step, step.ms);
    }
    if let Some(delivery) = report.delivery_ms {
        println!("  create → event {delivery:>7.1} ms");
    }
    match &report.failed {
        None => println!("ok in {:.1} ms", report.total_ms),
        Some(failed) => println!(
            "FAILED at {}: {} ({:.1} ms)",
            failed.step, failed.error, report.total_ms
        ),
    }
}
