//! `taskhost periodic list`: the periodic schedules of an alias, as the store holds them (the
//! config's of the last worker to start), each with its last and next tick. Schedules of the
//! config that no worker has stored yet are listed too, with no last tick.

use super::output;
use super::OutputFormat;
use chrono::{DateTime, Utc};
use clap::Subcommand;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use taskhost::periodic::PeriodicSchedule;
use taskhost::task_backends;
use taskhost_names::escape_for_display as escaped;

/// `periodic list`.
#[derive(Subcommand, Debug, Clone)]
pub enum PeriodicCommand {
    /// List the schedules with their last and next tick.
    List {
        /// Backend alias.
        #[arg(long, default_value = taskhost::DEFAULT_TASK_BACKEND_ALIAS)]
        backend: String,
        /// `text`: an aligned table; `json`: the schedules as one JSON array.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
}

/// A stored schedule (`taskhost.periodic.list`), with its next tick.
#[derive(Deserialize, Serialize, Debug, Clone)]
struct Listed {
    name: String,
    task_path: String,
    cron: String,
    timezone: String,
    missed: String,
    queue_name: String,
    priority: i32,
    args: Value,
    kwargs: Value,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
    last_tick: Option<DateTime<Utc>>,
    last_task_id: Option<String>,
    #[serde(default)]
    next_tick: Option<DateTime<Utc>>,
    /// Whether the store holds it (false: in the config, no worker has started with it).
    #[serde(default = "stored")]
    stored: bool,
}

fn stored() -> bool {
    true
}

/// Run `periodic …`.
pub fn run(command: &PeriodicCommand) -> Result<(), String> {
    let PeriodicCommand::List { backend, format } = command;
    let backend = task_backends().get(backend).map_err(|e| e.to_string())?;
    let mut rows: Vec<Listed> = backend
        .call_ext_json("taskhost.periodic.list", &json!({}))
        .map_err(|e| e.to_string())?;
    for configured in &backend.periodic_schedules() {
        if !rows.iter().any(|r| r.name == configured.name) {
            rows.push(Listed {
                name: configured.name.clone(),
                task_path: configured.task.clone(),
                cron: configured.cron.clone(),
                timezone: configured.timezone.clone(),
                missed: configured.missed.to_string(),
                queue_name: configured.queue_name.clone().unwrap_or_default(),
                priority: configured.priority.unwrap_or_default(),
                args: Value::from(configured.args.clone()),
                kwargs: Value::Object(configured.kwargs.clone()),
                created_at: None,
                updated_at: None,
                last_tick: None,
                last_task_id: None,
                next_tick: None,
                stored: false,
            });
        }
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    let now = Utc::now();
    for row in &mut rows {
        // The stored expression, read as the worker reads it.
        if let Ok(schedule) =
            PeriodicSchedule::new(&row.name, &row.task_path, &row.cron, &row.timezone)
        {
            let from = row.last_tick.map_or(now, |last| last.max(now));
            row.next_tick = schedule.next_tick(from);
        }
    }
    if *format == OutputFormat::Json {
        outln!("{}", output::json(&rows)?);
        return Ok(());
    }
    let time = |t: Option<DateTime<Utc>>, none: &str| {
        t.map_or_else(|| none.to_string(), |t| t.to_rfc3339())
    };
    let cells = rows
        .iter()
        .map(|r| {
            vec![
                escaped(&r.name).into_owned(),
                escaped(&r.task_path).into_owned(),
                escaped(&r.cron).into_owned(),
                escaped(&r.timezone).into_owned(),
                escaped(&r.missed).into_owned(),
                time(r.last_tick, if r.stored { "-" } else { "(not stored yet)" }),
                time(r.next_tick, "never"),
            ]
        })
        .collect();
    let header = [
        "NAME",
        "TASK",
        "CRON",
        "TIMEZONE",
        "MISSED",
        "LAST TICK",
        "NEXT TICK",
    ];
    outln!("{}", output::table(&header, cells, &[]));
    outln!("({} schedule(s))", rows.len());
    Ok(())
}
