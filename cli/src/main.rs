//! `tm`: the shared, live Task Master plan from a terminal or a script.
//! Command names follow Task Master's own CLI where it has them.
//!
//! Exit codes: 0 done; 1 an unexpected failure; 2 a usage error; 3 not
//! signed in, or the credentials were refused (401 / 403); 4 not found;
//! 5 the request was refused as it stands (400, 409, 412, 413, 422);
//! 6 the server is unreachable, overloaded or failing (429, 5xx).

mod config;
mod output;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use clap::{CommandFactory, Parser, Subcommand};
use protocol::{NewTask, Priority, Task, TaskStatus};
use reqwest::Method;
use serde_json::{json, Value};
use taskmaster_client::{ApiError, Client, Live, LiveError, Trust};

use config::Settings;

#[derive(Parser)]
#[command(
    name = "tm",
    version,
    about = "Task Master's command line, on the live shared plan"
)]
struct Cli {
    /// The server (`https://tasks.example.com`); remembered by `login`.
    #[arg(long, env = "TM_URL", global = true)]
    url: Option<String>,
    /// A token to use instead of the remembered one (an API token for
    /// scripts and agents: `tmpat_…`).
    #[arg(long, env = "TM_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// The project to work on (its id); remembered by `use`.
    #[arg(long, short = 'p', env = "TM_PROJECT", global = true)]
    project: Option<String>,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// Seconds to wait for each answer.
    #[arg(long, default_value_t = 30, global = true)]
    timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign in and remember the server and a token (in the user's
    /// configuration directory, readable by the user only).
    Login {
        /// Sign in with this email; the password comes from TM_PASSWORD or
        /// the first line of standard input.
        #[arg(long)]
        email: Option<String>,
        /// Remember this API token instead of signing in.
        #[arg(long = "api-token", conflicts_with = "email")]
        api_token: Option<String>,
    },
    /// Forget the remembered token (and end the session it belongs to).
    Logout,
    /// The projects you are a member of.
    Projects,
    /// Remember a project for the commands that need one.
    Use { project: String },
    /// The project's tasks.
    List {
        /// Only these statuses (comma-separated).
        #[arg(long, short = 's', value_delimiter = ',')]
        status: Vec<TaskStatus>,
        /// Show subtasks under their parents.
        #[arg(long)]
        with_subtasks: bool,
    },
    /// One task, with its subtasks.
    Show {
        #[arg(long, short = 'i')]
        id: i64,
    },
    /// The task to work on next (Task Master's rule).
    Next,
    /// Add a task.
    AddTask(TaskFields),
    /// Change fields of a task.
    UpdateTask {
        #[arg(long, short = 'i')]
        id: i64,
        #[command(flatten)]
        fields: TaskChanges,
    },
    /// Set the status of one or more tasks (`--id 3,4`).
    SetStatus {
        #[arg(long, short = 'i', value_delimiter = ',', required = true)]
        id: Vec<i64>,
        #[arg(long, short = 's')]
        status: TaskStatus,
    },
    /// Make a task depend on another.
    AddDependency {
        #[arg(long, short = 'i')]
        id: i64,
        #[arg(long = "depends-on")]
        depends_on: i64,
    },
    /// Remove a dependency.
    RemoveDependency {
        #[arg(long, short = 'i')]
        id: i64,
        #[arg(long = "depends-on")]
        depends_on: i64,
    },
    /// Add a subtask to a task.
    AddSubtask {
        /// The parent task.
        #[arg(long)]
        parent: i64,
        #[command(flatten)]
        fields: TaskFields,
    },
    /// Delete tasks (their subtasks with them).
    RemoveTask {
        #[arg(long, short = 'i', value_delimiter = ',', required = true)]
        id: Vec<i64>,
    },
    /// Import a Task Master file: a tasks.json (one new project per tag),
    /// or one task file (task_NNN.txt / .md) into the project.
    Import {
        file: PathBuf,
        /// The new project's name (a tasks.json).
        #[arg(long)]
        name: Option<String>,
    },
    /// Export the project as a tasks.json (or, with --import, the file an
    /// import came from, rebuilt).
    Export {
        #[arg(long)]
        import: Option<String>,
        /// Write here instead of standard output.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
    /// Print the project's changes as they happen; after a drop, catch up
    /// from where it was.
    Watch {
        /// Start after this seq (replaying what came since).
        #[arg(long)]
        since: Option<i64>,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<usize>,
    },
    /// Print shell completions.
    Completions { shell: clap_complete::Shell },
}

#[derive(clap::Args)]
struct TaskFields {
    #[arg(long)]
    title: String,
    #[arg(long)]
    description: Option<String>,
    #[arg(long)]
    details: Option<String>,
    #[arg(long = "test-strategy")]
    test_strategy: Option<String>,
    #[arg(long)]
    priority: Option<Priority>,
    #[arg(long)]
    status: Option<TaskStatus>,
    /// Ids of tasks it depends on (comma-separated).
    #[arg(long, value_delimiter = ',')]
    dependencies: Vec<i64>,
}

#[derive(clap::Args)]
struct TaskChanges {
    #[arg(long)]
    title: Option<String>,
    #[arg(long)]
    description: Option<String>,
    #[arg(long)]
    details: Option<String>,
    #[arg(long = "test-strategy")]
    test_strategy: Option<String>,
    #[arg(long)]
    priority: Option<Priority>,
    #[arg(long)]
    status: Option<TaskStatus>,
}

/// A failure and the exit code it maps to.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        let code = match error.downcast_ref::<ApiError>() {
            Some(api) => exit_code(api),
            None => match error.downcast_ref::<LiveError>() {
                Some(LiveError::Refused(_)) => 3,
                Some(LiveError::JoinRefused { .. }) => 4,
                Some(_) => 6,
                None => 1,
            },
        };
        Failure { code, error }
    }
}

fn exit_code(error: &ApiError) -> u8 {
    match error {
        ApiError::Refused { status, .. } => match status {
            401 | 403 => 3,
            404 => 4,
            400 | 409 | 412 | 413 | 415 | 422 => 5,
            _ => 6,
        },
        ApiError::Unreachable(_) => 6,
        ApiError::Unexpected(_) => 1,
    }
}

type Outcome = Result<(), Failure>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("tm: {:#}", failure.error);
            ExitCode::from(failure.code)
        }
    }
}

/// What a command needs: a client for the server, signed in.
struct Session {
    client: Client,
    settings: Settings,
    project: Option<String>,
    json: bool,
    timeout: Duration,
}

impl Session {
    fn open(cli: &Cli) -> Result<Session, Failure> {
        let settings = Settings::load()?;
        let url = cli
            .url
            .clone()
            .or_else(|| settings.url.clone())
            .ok_or_else(|| Failure {
                code: 3,
                error: anyhow!("no server: run `tm login --url https://…` first (or set TM_URL)"),
            })?;
        let timeout = Duration::from_secs(cli.timeout.max(1));
        let trust = Trust::system().map_err(|error| anyhow!("TLS set-up: {error}"))?;
        let mut client = Client::new(&url, &trust, timeout).map_err(anyhow::Error::from)?;
        if let Some(token) = cli.token.clone().or_else(|| settings.token.clone()) {
            client = client.with_token(token);
        }
        Ok(Session {
            client,
            project: cli.project.clone().or_else(|| settings.project.clone()),
            settings,
            json: cli.json,
            timeout,
        })
    }

    fn signed_in(&self) -> Result<&Client, Failure> {
        match self.client.token() {
            Some(_) => Ok(&self.client),
            None => Err(Failure {
                code: 3,
                error: anyhow!("not signed in: run `tm login` (or set TM_TOKEN)"),
            }),
        }
    }

    fn project(&self) -> Result<&str, Failure> {
        self.project.as_deref().ok_or_else(|| Failure {
            code: 2,
            error: anyhow!("which project? pass --project, set TM_PROJECT, or run `tm use <id>`"),
        })
    }

    fn tasks_path(&self) -> Result<String, Failure> {
        Ok(format!("/api/v1/projects/{}/tasks", self.project()?))
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        Ok(self
            .signed_in()?
            .send(Method::GET, path, None::<&()>)
            .await
            .map_err(anyhow::Error::from)?)
    }

    async fn task(&self, id: i64) -> Result<Task, Failure> {
        self.get(&format!("{}/{id}", self.tasks_path()?)).await
    }

    /// Every task of the project, page by page.
    async fn all_tasks(&self, statuses: &[TaskStatus]) -> Result<Vec<Task>, Failure> {
        let mut tasks = Vec::new();
        let mut cursor: Option<String> = None;
        let filter: Vec<&str> = statuses.iter().map(|status| status.as_str()).collect();
        loop {
            let mut path = format!("{}?limit=500", self.tasks_path()?);
            if !filter.is_empty() {
                path.push_str(&format!("&status={}", filter.join(",")));
            }
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let page: protocol::TaskPage = self.get(&path).await?;
            tasks.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(tasks),
            }
        }
    }

    /// Applies `change` to the task's current state, with `If-Match`; a
    /// change made meanwhile by someone else is re-read and re-applied once.
    async fn patch_with(&self, id: i64, change: impl Fn(&Task) -> Value) -> Result<Task, Failure> {
        let path = format!("{}/{id}", self.tasks_path()?);
        let mut attempts = 0;
        loop {
            let current = self.task(id).await?;
            let response = self
                .signed_in()?
                .call_with(
                    Method::PATCH,
                    &path,
                    Some(&change(&current)),
                    &[("if-match", &format!("\"{}\"", current.version))],
                )
                .await;
            match response {
                Err(ApiError::Refused { status: 412, .. }) if attempts == 0 => attempts += 1,
                Err(error) => return Err(anyhow::Error::from(error).into()),
                Ok(response) => {
                    return Ok(response
                        .json()
                        .await
                        .map_err(|error| anyhow!("unexpected answer: {error}"))?)
                }
            }
        }
    }

    fn print_task(&self, task: &Task) -> Outcome {
        if self.json {
            output::json(task)
        } else {
            output::task(task, &[]);
            Ok(())
        }
    }
}

async fn run(cli: Cli) -> Outcome {
    match &cli.command {
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(*shell, &mut command, "tm", &mut std::io::stdout());
            Ok(())
        }
        Command::Login { email, api_token } => {
            login(&cli, email.as_deref(), api_token.as_deref()).await
        }
        Command::Logout => {
            let mut session = Session::open(&cli)?;
            if let Some(token) = session.client.token() {
                if !token.starts_with("tmpat_") {
                    // Best effort: the session may have ended already.
                    let _ = session
                        .client
                        .call(Method::POST, "/api/v1/auth/logout", None::<&()>)
                        .await;
                }
            }
            session.settings.token = None;
            session.settings.save()?;
            println!("signed out");
            Ok(())
        }
        Command::Use { project } => {
            let session = Session::open(&cli)?;
            let projects: protocol::Items<protocol::Project> =
                session.get("/api/v1/projects").await?;
            let Some(found) = projects
                .items
                .iter()
                .find(|candidate| &candidate.id == project)
            else {
                return Err(Failure {
                    code: 4,
                    error: anyhow!("you are not a member of a project {project}"),
                });
            };
            let mut settings = session.settings;
            settings.project = Some(found.id.clone());
            settings.save()?;
            println!("now using {} ({})", found.name, found.id);
            Ok(())
        }
        Command::Projects => {
            let session = Session::open(&cli)?;
            let projects: protocol::Items<protocol::Project> =
                session.get("/api/v1/projects").await?;
            if session.json {
                return output::json(&projects.items);
            }
            output::projects(&projects.items, session.project.as_deref());
            Ok(())
        }
        Command::List {
            status,
            with_subtasks,
        } => {
            let session = Session::open(&cli)?;
            let tasks = session.all_tasks(status).await?;
            if session.json {
                return output::json(&tasks);
            }
            output::table(&tasks, *with_subtasks);
            Ok(())
        }
        Command::Show { id } => {
            let session = Session::open(&cli)?;
            let task = session.task(*id).await?;
            if session.json {
                return output::json(&task);
            }
            let subtasks: Vec<Task> = session
                .all_tasks(&[])
                .await?
                .into_iter()
                .filter(|candidate| candidate.parent_id == Some(task.id))
                .collect();
            output::task(&task, &subtasks);
            Ok(())
        }
        Command::Next => {
            let session = Session::open(&cli)?;
            let path = format!("{}/next", session.tasks_path()?);
            let response = session
                .signed_in()?
                .call(Method::GET, &path, None::<&()>)
                .await
                .map_err(anyhow::Error::from)?;
            if response.status().as_u16() == 204 {
                if session.json {
                    println!("null");
                } else {
                    println!("no task is ready: every open task waits on another");
                }
                return Ok(());
            }
            let task: Task = response
                .json()
                .await
                .map_err(|error| anyhow!("unexpected answer: {error}"))?;
            session.print_task(&task)
        }
        Command::AddTask(fields) => {
            let session = Session::open(&cli)?;
            let created = create(&session, fields, None).await?;
            session.print_task(&created)
        }
        Command::AddSubtask { parent, fields } => {
            let session = Session::open(&cli)?;
            let created = create(&session, fields, Some(*parent)).await?;
            session.print_task(&created)
        }
        Command::UpdateTask { id, fields } => {
            let session = Session::open(&cli)?;
            let mut patch = serde_json::Map::new();
            let texts = [
                ("title", &fields.title),
                ("description", &fields.description),
                ("details", &fields.details),
                ("test_strategy", &fields.test_strategy),
            ];
            for (key, value) in texts {
                if let Some(value) = value {
                    patch.insert(key.into(), json!(value));
                }
            }
            if let Some(priority) = fields.priority {
                patch.insert("priority".into(), json!(priority));
            }
            if let Some(status) = fields.status {
                patch.insert("status".into(), json!(status));
            }
            if patch.is_empty() {
                return Err(Failure {
                    code: 2,
                    error: anyhow!("nothing to change: pass at least one of --title, --description, --details, --test-strategy, --priority, --status"),
                });
            }
            let patch = Value::Object(patch);
            let task = session.patch_with(*id, |_| patch.clone()).await?;
            session.print_task(&task)
        }
        Command::SetStatus { id, status } => {
            let session = Session::open(&cli)?;
            for id in id {
                let task = session
                    .patch_with(*id, |_| json!({ "status": status }))
                    .await?;
                if session.json {
                    output::json(&task)?;
                } else {
                    println!("task {} is now {}", task.id, task.status.as_str());
                }
            }
            Ok(())
        }
        Command::AddDependency { id, depends_on } => {
            let session = Session::open(&cli)?;
            let depends_on = *depends_on;
            let task = session
                .patch_with(*id, |current| {
                    let mut list = current.dependencies.clone();
                    if !list.contains(&depends_on) {
                        list.push(depends_on);
                    }
                    json!({ "dependencies": list })
                })
                .await?;
            session.print_task(&task)
        }
        Command::RemoveDependency { id, depends_on } => {
            let session = Session::open(&cli)?;
            let depends_on = *depends_on;
            let task = session
                .patch_with(*id, |current| {
                    let list: Vec<i64> = current
                        .dependencies
                        .iter()
                        .copied()
                        .filter(|dependency| *dependency != depends_on)
                        .collect();
                    json!({ "dependencies": list })
                })
                .await?;
            session.print_task(&task)
        }
        Command::RemoveTask { id } => {
            let session = Session::open(&cli)?;
            for id in id {
                let path = format!("{}/{id}", session.tasks_path()?);
                session
                    .signed_in()?
                    .call(Method::DELETE, &path, None::<&()>)
                    .await
                    .map_err(anyhow::Error::from)?;
                println!("removed task {id}");
            }
            Ok(())
        }
        Command::Import { file, name } => import(&cli, file, name.as_deref()).await,
        Command::Export { import, output } => {
            let session = Session::open(&cli)?;
            let path = match import {
                Some(import) => format!("/api/v1/imports/{import}/tasks.json"),
                None => format!("/api/v1/projects/{}/tasks.json", session.project()?),
            };
            let text = session
                .signed_in()?
                .call(Method::GET, &path, None::<&()>)
                .await
                .map_err(anyhow::Error::from)?
                .text()
                .await
                .map_err(|error| anyhow!("reading the export: {error}"))?;
            match output {
                Some(path) => std::fs::write(path, text)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => {
                    let mut stdout = std::io::stdout().lock();
                    stdout
                        .write_all(text.as_bytes())
                        .context("writing the export")?;
                }
            }
            Ok(())
        }
        Command::Watch { since, count } => {
            let session = Session::open(&cli)?;
            watch(&session, *since, *count).await
        }
    }
}

async fn login(cli: &Cli, email: Option<&str>, api_token: Option<&str>) -> Outcome {
    let mut settings = Settings::load()?;
    let url = cli
        .url
        .clone()
        .or_else(|| settings.url.clone())
        .ok_or_else(|| Failure {
            code: 2,
            error: anyhow!("which server? pass --url https://…"),
        })?;
    let trust = Trust::system().map_err(|error| anyhow!("TLS set-up: {error}"))?;
    let mut client = Client::new(&url, &trust, Duration::from_secs(cli.timeout.max(1)))
        .map_err(anyhow::Error::from)?;
    let user: protocol::User = match (email, api_token) {
        (_, Some(token)) => {
            client = client.with_token(token);
            client
                .send(Method::GET, "/api/v1/auth/me", None::<&()>)
                .await
                .map_err(anyhow::Error::from)?
        }
        (Some(email), None) => {
            let password = match std::env::var("TM_PASSWORD") {
                Ok(password) => password,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("reading the password from standard input")?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            client
                .login(email, &password)
                .await
                .map_err(anyhow::Error::from)?
                .user
        }
        (None, None) => {
            return Err(Failure {
                code: 2,
                error: anyhow!(
                    "pass --email (password from TM_PASSWORD or standard input) or --api-token"
                ),
            })
        }
    };
    settings.url = Some(url);
    settings.token = client.token().map(str::to_owned);
    settings.save()?;
    println!("signed in as {} <{}>", user.name, user.email);
    Ok(())
}

async fn create(
    session: &Session,
    fields: &TaskFields,
    parent: Option<i64>,
) -> Result<Task, Failure> {
    let new = NewTask {
        title: fields.title.clone(),
        description: fields.description.clone(),
        details: fields.details.clone(),
        test_strategy: fields.test_strategy.clone(),
        status: fields.status,
        priority: fields.priority,
        dependencies: (!fields.dependencies.is_empty()).then(|| fields.dependencies.clone()),
        assignee_id: None,
        parent_id: parent,
    };
    Ok(session
        .signed_in()?
        .create_task(session.project()?, &new)
        .await
        .map_err(anyhow::Error::from)?)
}

async fn import(cli: &Cli, file: &std::path::Path, name: Option<&str>) -> Outcome {
    let session = Session::open(cli)?;
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let is_tasks_json = file
        .extension()
        .is_some_and(|extension| extension == "json");
    let (path, content_type) = if is_tasks_json {
        let path = match name {
            Some(name) => format!(
                "/api/v1/imports?name={}",
                name.replace('%', "%25")
                    .replace('&', "%26")
                    .replace(' ', "%20")
                    .replace('#', "%23")
            ),
            None => "/api/v1/imports".to_owned(),
        };
        (path, "application/json")
    } else {
        let media = if file.extension().is_some_and(|extension| extension == "md") {
            "text/markdown"
        } else {
            "text/plain"
        };
        (
            format!("/api/v1/projects/{}/imports", session.project()?),
            media,
        )
    };
    let in_background = is_tasks_json && bytes.len() > IMPORT_IN_BACKGROUND_BYTES;
    let prefer: &[(&str, &str)] = if in_background {
        &[("prefer", "respond-async")]
    } else {
        &[]
    };
    let client = session.signed_in()?;
    let mut answer: Value = client
        .send_bytes(Method::POST, &path, content_type, bytes, prefer)
        .await
        .map_err(anyhow::Error::from)?;
    if in_background && answer["kind"] == "import" {
        answer = import_job_result(client, &answer, session.json).await?;
    }
    if session.json {
        return output::json(&answer);
    }
    if is_tasks_json {
        println!(
            "imported as {} (export it again with `tm export --import {}`)",
            answer["id"].as_str().unwrap_or(""),
            answer["id"].as_str().unwrap_or("")
        );
        for project in answer["projects"].as_array().into_iter().flatten() {
            println!(
                "  tag {:<20} → project {} ({} tasks)",
                project["tag"].as_str().unwrap_or(""),
                project["project"]["id"].as_str().unwrap_or(""),
                project["tasks"]
            );
        }
    } else {
        let ids: Vec<String> = answer["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|task| task["id"].to_string())
            .collect();
        println!("added tasks {}", ids.join(", "));
    }
    for warning in answer["warnings"].as_array().into_iter().flatten() {
        eprintln!("warning: {}", warning.as_str().unwrap_or(""));
    }
    Ok(())
}

/// A `tasks.json` larger than this is imported by a background job, whose
/// progress `tm import` prints.
const IMPORT_IN_BACKGROUND_BYTES: usize = 1024 * 1024;
/// How long `tm import` follows a background import before leaving it be.
const IMPORT_JOB_PATIENCE: Duration = Duration::from_secs(600);

/// Follows an import job until it ends, printing its progress (unless the
/// output is JSON); its result, the body an import in the request gives.
async fn import_job_result(client: &Client, job: &Value, quiet: bool) -> anyhow::Result<Value> {
    let path = format!("/api/v1/jobs/{}", job["id"].as_str().unwrap_or_default());
    let mut last = None;
    let deadline = tokio::time::Instant::now() + IMPORT_JOB_PATIENCE;
    loop {
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("the import is still running; its status is at {path}");
        }
        let status: Value = client
            .send(Method::GET, &path, None::<&()>)
            .await
            .map_err(anyhow::Error::from)?;
        match status["state"].as_str() {
            Some("done") => return Ok(status["result"].clone()),
            Some("dead") => anyhow::bail!(
                "the import failed: {}",
                status["last_error"].as_str().unwrap_or("no reason given")
            ),
            _ => {}
        }
        let progress = (
            status["progress"]["tasks_done"].as_u64(),
            status["progress"]["tasks_total"].as_u64(),
        );
        if let (false, (Some(done), Some(total))) = (quiet, progress) {
            if last != Some(done) {
                eprintln!("importing: {done} of {total} tasks");
                last = Some(done);
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Prints the project's events; on a drop, reconnects and re-joins from
/// the last seq printed, so nothing is missed or printed twice.
async fn watch(session: &Session, since: Option<i64>, count: Option<usize>) -> Outcome {
    let project = session.project()?.to_owned();
    let token = session
        .signed_in()?
        .token()
        .map(str::to_owned)
        .unwrap_or_default();
    let trust = Trust::system().map_err(|error| anyhow!("TLS set-up: {error}"))?;
    let mut last = since;
    let mut printed = 0usize;
    let mut backoff = Duration::from_millis(250);
    loop {
        let connected = async {
            let mut live =
                Live::connect(session.client.base(), &token, &trust, session.timeout).await?;
            let ack = live.join(&project, last).await?;
            if last.is_none() {
                last = Some(ack.seq);
                if !session.json {
                    eprintln!("watching {project} from seq {}", ack.seq);
                }
            }
            loop {
                let event = live.next_raw(Duration::from_secs(3600)).await?;
                if event.get("seq").is_none() || event.get("task").is_none() {
                    continue;
                }
                let seq = event["seq"].as_i64().unwrap_or_default();
                if last.is_some_and(|last| seq <= last) {
                    continue;
                }
                last = Some(seq);
                if session.json {
                    println!("{event}");
                } else {
                    output::event(&event);
                }
                printed += 1;
                if count.is_some_and(|count| printed >= count) {
                    return Ok::<bool, LiveError>(true);
                }
            }
        };
        match connected.await {
            Ok(_) => return Ok(()),
            Err(error @ (LiveError::Refused(_) | LiveError::JoinRefused { .. })) => {
                return Err(anyhow::Error::from(error).into())
            }
            Err(error) => {
                eprintln!("connection lost ({error}); reconnecting in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}
