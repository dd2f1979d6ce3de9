//! Standalone inspection of queue stores: `results` (and `results cancel`/`retry`), `queues`,
//! `prune`, `migrate` — no task code needed, everything goes through the backend's extension
//! operations.
//!
//! What a store holds is printed safe for a terminal: names and ids with control characters
//! (stored before the host refused them, or written by another producer) are shown escaped, in
//! Rust's `escape_debug` form (`a\u{1b}[31mred`), in `results list` and `queues`; `results show`
//! prints JSON, whose strings escape them as `\u001b`. Filters (`--queue`, `--task`) are not
//! held to the naming rules, so such rows can still be found and pruned.

use super::output;
use super::OutputFormat;
use chrono::{Duration as Age, Utc};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use taskhost::task_backends;
use taskhost::Backend;
use taskhost::TaskResultStatus;
use taskhost_names::escape_for_display as escaped;
use taskhost_plugin_api::{ListRequest, PruneRequest, QueueStats, TaskResultData};

/// `results list` / `results show`.
#[derive(Subcommand, Debug, Clone)]
pub enum ResultsCommand {
    /// List results, newest first.
    List {
        /// Backend alias.
        #[arg(long, default_value = taskhost::DEFAULT_TASK_BACKEND_ALIAS)]
        backend: String,
        /// Only this status (READY, RUNNING, FAILED, SUCCESSFUL).
        #[arg(long, value_parser = status)]
        status: Option<TaskResultStatus>,
        /// Only this queue.
        #[arg(long)]
        queue: Option<String>,
        /// Only this task path.
        #[arg(long)]
        task: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// `text`: an aligned table; `json`: the results as one JSON array.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Show one result in full.
    Show {
        /// The result id.
        id: String,
        /// Backend alias.
        #[arg(long, default_value = taskhost::DEFAULT_TASK_BACKEND_ALIAS)]
        backend: String,
    },
    /// Cancel a task: a READY one is FAILED at once and never runs; a RUNNING one is told at
    /// its worker's next heartbeat and ends FAILED (`taskhost::Cancelled`) when it returns.
    Cancel {
        /// The result id.
        id: String,
        /// Backend alias.
        #[arg(long, default_value = taskhost::DEFAULT_TASK_BACKEND_ALIAS)]
        backend: String,
    },
    /// Run a FAILED task again: READY, its errors and attempts kept.
    Retry {
        /// The result id.
        id: String,
        /// Backend alias.
        #[arg(long, default_value = taskhost::DEFAULT_TASK_BACKEND_ALIAS)]
        backend: String,
    },
}

/// `prune`: delete finished results.
#[derive(Args, Debug, Clone)]
pub struct PruneArgs {
    /// Backend alias.
    #[arg(long, default_value = taskhost::DEFAULT_TASK_BACKEND_ALIAS)]
    pub backend: String,
    /// Queues, comma-separated, or `*` for all.
    #[arg(long, default_value = "*")]
    pub queue: String,
    /// Delete results finished at least this many days ago.
    #[arg(long, default_value_t = 14)]
    pub min_age_days: u32,
    /// For FAILED results, this age instead (default: --min-age-days).
    #[arg(long)]
    pub failed_min_age_days: Option<u32>,
    /// Only this status (FAILED or SUCCESSFUL); default both.
    #[arg(long, value_parser = status)]
    pub status: Option<TaskResultStatus>,
    /// Count, do not delete.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete at most this many rows per statement (each batch is its own transaction).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: u64,
}

fn status(text: &str) -> Result<TaskResultStatus, String> {
    TaskResultStatus::parse(&text.to_ascii_uppercase()).ok_or_else(|| {
        format!("unknown status '{text}': expected READY, RUNNING, FAILED or SUCCESSFUL")
    })
}

fn backend(alias: &str) -> Result<Arc<Backend>, String> {
    task_backends().get(alias).map_err(|e| e.to_string())
}

/// Run `results …`.
pub fn results(command: &ResultsCommand) -> Result<(), String> {
    match command {
        ResultsCommand::List {
            backend: alias,
            status,
            queue,
            task,
            limit,
            format,
        } => {
            let request = ListRequest {
                status: *status,
                queue_name: queue.clone(),
                task_path: task.clone(),
                limit: Some(*limit),
            };
            let rows: Vec<TaskResultData> = backend(alias)?
                .list_results(&request)
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|r| r.data().clone())
                .collect();
            if *format == OutputFormat::Json {
                outln!("{}", output::json(&rows)?);
                return Ok(());
            }
            let count = rows.len();
            let cells = rows
                .iter()
                .map(|r| {
                    vec![
                        escaped(&r.id).into_owned(),
                        r.status.to_string(),
                        escaped(&r.task.queue_name).into_owned(),
                        r.worker_ids.len().to_string(),
                        r.enqueued_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                        escaped(&r.task.path).into_owned(),
                    ]
                })
                .collect();
            let header = ["ID", "STATUS", "QUEUE", "ATTEMPTS", "ENQUEUED AT", "TASK"];
            outln!("{}", output::table(&header, cells, &[3]));
            outln!("({count} result(s))");
            Ok(())
        }
        ResultsCommand::Show { id, backend: alias } => {
            // The error's message is the id alone (as Django's `TaskResultDoesNotExist`): say
            // what was looked for, and where.
            let result = backend(alias)?
                .get_result(id)
                .map_err(|e| not_found(e, id, alias))?;
            outln!("{}", output::json(result.data())?);
            Ok(())
        }
        ResultsCommand::Cancel { id, backend: alias } => {
            let (cancellation, _) = backend(alias)?
                .cancel(id)
                .map_err(|e| not_found(e, id, alias))?;
            match cancellation {
                taskhost::Cancellation::Cancelled => outln!(
                    "Cancelled task result '{}' (it was READY): FAILED, it will not run.",
                    escaped(id)
                ),
                taskhost::Cancellation::Requested => outln!(
                    "Asked task result '{}' to stop (it is RUNNING): its worker tells it at the \
                     next heartbeat, and it ends FAILED, cancelled, when it returns.",
                    escaped(id)
                ),
            }
            Ok(())
        }
        ResultsCommand::Retry { id, backend: alias } => {
            let result = backend(alias)?
                .retry(id)
                .map_err(|e| not_found(e, id, alias))?;
            outln!(
                "Task result '{}' is READY again (attempts so far: {}).",
                escaped(id),
                result.attempts()
            );
            Ok(())
        }
    }
}

/// An error of an operation on the result `id` of backend `alias`, as a message. The message
/// of Django's `TaskResultDoesNotExist` is the id alone: say what was looked for, and where.
fn not_found(error: taskhost::Error, id: &str, alias: &str) -> String {
    match error {
        taskhost::Error::TaskResultDoesNotExist(_) => format!(
            "no task result with id '{}' in backend '{}'",
            escaped(id),
            escaped(alias)
        ),
        other => other.to_string(),
    }
}

/// Run `queues`: depth per queue and status, oldest ready task's age.
pub fn queues(alias: &str, format: OutputFormat) -> Result<(), String> {
    let stats: Vec<QueueStats> = backend(alias)?.queue_stats().map_err(|e| e.to_string())?;
    if format == OutputFormat::Json {
        outln!("{}", output::json(&stats)?);
        return Ok(());
    }
    let now = Utc::now();
    let cells = stats
        .iter()
        .map(|s| {
            let age = s
                .oldest_enqueued_at
                .map(|t| format!("{:.1} s ago", (now - t).num_milliseconds() as f64 / 1000.0))
                .unwrap_or_default();
            vec![
                escaped(&s.queue_name).into_owned(),
                s.status.to_string(),
                s.count.to_string(),
                age,
            ]
        })
        .collect();
    let header = ["QUEUE", "STATUS", "COUNT", "OLDEST READY"];
    outln!("{}", output::table(&header, cells, &[2]));
    queue_limits(alias)?;
    Ok(())
}

/// The database backend's operation that reports queue limits (see
/// `taskhost_backends_database::QUEUE_LIMITS`).
const QUEUE_LIMITS: &str = "taskhost.backends.database.queue_limits";

/// One limited queue, as [`QUEUE_LIMITS`] reports it.
#[derive(serde::Deserialize)]
struct LimitUsage {
    queue_name: String,
    concurrency: Option<u32>,
    running: u64,
    rate_limit: Option<u32>,
    rate_per_secs: Option<f64>,
    started_in_window: Option<u64>,
}

/// After `queues`' table: the limited queues, when the backend has any (backends without the
/// operation print nothing more).
fn queue_limits(alias: &str) -> Result<(), String> {
    let limits: Vec<LimitUsage> =
        match backend(alias)?.call_ext_json(QUEUE_LIMITS, &serde_json::json!({})) {
            Ok(limits) => limits,
            Err(taskhost::Error::NotSupported(_)) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        };
    if limits.is_empty() {
        return Ok(());
    }
    let cells = limits
        .iter()
        .map(|l| {
            let running = match l.concurrency {
                Some(c) => format!("{} / {c}", l.running),
                None => format!("{}", l.running),
            };
            let rate = match (l.rate_limit, l.rate_per_secs) {
                (Some(limit), Some(per)) => {
                    format!("{} / {limit} per {per} s", l.started_in_window.unwrap_or(0))
                }
                _ => "-".into(),
            };
            vec![escaped(&l.queue_name).into_owned(), running, rate]
        })
        .collect();
    let header = [
        "LIMITED QUEUE",
        "RUNNING / LIMIT",
        "STARTS IN WINDOW / RATE",
    ];
    outln!("\n{}", output::table(&header, cells, &[]));
    Ok(())
}

/// Run `prune`: count the matching rows, then delete them `--batch-size` at a time, with a
/// progress bar on stderr when it is a terminal.
pub fn prune(args: &PruneArgs) -> Result<(), String> {
    if let Some(s) = args.status.filter(|s| !s.is_finished()) {
        return Err(format!(
            "--status {s}: only finished results (FAILED, SUCCESSFUL) can be pruned"
        ));
    }
    let now = Utc::now();
    let queues = (args.queue.trim() != "*").then(|| {
        args.queue
            .split(',')
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(String::from)
            .collect()
    });
    let mut request = PruneRequest {
        finished_before: Some(now - Age::days(args.min_age_days.into())),
        failed_finished_before: args.failed_min_age_days.map(|d| now - Age::days(d.into())),
        statuses: args.status.into_iter().collect(),
        queues,
        dry_run: true,
        limit: None,
    };
    let backend = backend(&args.backend)?;
    let prune = |request: &PruneRequest| -> Result<u64, String> {
        backend.prune(request).map_err(|e| e.to_string())
    };
    let total = prune(&request)?;
    if args.dry_run {
        outln!("Would delete {total} task result(s)");
        return Ok(());
    }
    request.dry_run = false;
    request.limit = Some(args.batch_size);
    let bar = progress_bar(total);
    super::progress::show(&bar);
    let mut deleted = 0;
    let outcome = loop {
        match prune(&request) {
            Ok(batch) => {
                deleted += batch;
                bar.inc(batch);
                if batch < args.batch_size {
                    break Ok(());
                }
            }
            Err(e) => break Err(format!("{e} (after deleting {deleted} task result(s))")),
        }
    };
    super::progress::clear(&bar);
    outcome?;
    outln!("Deleted {deleted} task result(s)");
    Ok(())
}

/// A bar counting up to `len` rows on stderr, hidden unless stderr is a terminal.
fn progress_bar(len: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "Deleting [{wide_bar}] {human_pos}/{human_len} task results ({per_sec:0}, ETA {eta})",
    )
    .expect("a valid progress template");
    ProgressBar::new(len).with_style(style)
}

/// Run `migrate`: create or upgrade the store's schema, with a spinner on stderr when it is a
/// terminal.
pub fn migrate(alias: &str) -> Result<(), String> {
    let backend = backend(alias)?;
    // One call applies every pending version: a spinner while it runs, cleared after.
    let spinner = super::progress::spinner(super::progress::migrate_message(alias));
    spinner.tick();
    let applied = backend.migrate();
    super::progress::clear(&spinner);
    let applied = applied.map_err(|e| e.to_string())?;
    if applied.is_empty() {
        outln!("No migrations to apply.");
    } else {
        let versions: Vec<String> = applied.iter().map(u32::to_string).collect();
        outln!(
            "Applied {} migration(s): [{}]",
            applied.len(),
            versions.join(",")
        );
    }
    Ok(())
}
