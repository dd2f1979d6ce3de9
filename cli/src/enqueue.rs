//! `enqueue`: enqueue a task registered in this binary by its path, with JSON arguments (for
//! operators: re-run a job, kick off a one-off). Mounted in an application's binary, which has
//! the tasks; the plain `taskhost` tool has none.

use super::output;
use super::OutputFormat;
use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::{Map, Value};
use std::time::Duration;
use taskhost::task_backends;
use taskhost::TaskDefinition;
use taskhost::{find_task, registered_tasks};
use taskhost::{Task, TaskOptions, Unique, UniqueScope};
use taskhost_names::escape_for_display as escaped;

/// Options of the `enqueue` subcommand.
#[derive(Args, Debug, Clone)]
pub struct EnqueueArgs {
    /// The task's path, as registered by `#[task]` (`my_app::emails::send_email`).
    #[arg(value_name = "TASK_PATH")]
    pub task: String,
    /// The positional arguments, as one JSON array (`'["a@example.com", 3]'`).
    #[arg(long, default_value = "[]", value_name = "JSON_ARRAY")]
    pub args: String,
    /// The keyword arguments, as one JSON object (Rust tasks take none).
    #[arg(long, default_value = "{}", value_name = "JSON_OBJECT")]
    pub kwargs: String,
    /// Backend alias (default: the task's own).
    #[arg(long, value_name = "ALIAS")]
    pub backend: Option<String>,
    /// Queue (default: the task's own).
    #[arg(long, value_name = "Q")]
    pub queue: Option<String>,
    /// Priority, -100..=100 (default: the task's own).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub priority: Option<i32>,
    /// Earliest time to run, RFC 3339 (`2026-12-06T08:00:00Z`).
    #[arg(long, value_name = "RFC3339")]
    pub run_after: Option<String>,
    /// Enqueue under a key derived from the task path and the arguments: while a task holding
    /// it is READY or RUNNING (or, with --unique-for, for that long), the existing task is
    /// printed (text: followed by `duplicate`) and nothing is enqueued.
    #[arg(long)]
    pub unique: bool,
    /// Enqueue under this uniqueness key (per task path) instead of a derived one.
    #[arg(long, value_name = "KEY")]
    pub unique_key: Option<String>,
    /// Hold the uniqueness key for this many seconds after the enqueue, whatever the task's
    /// status (default: while it is READY or RUNNING).
    #[arg(long, value_name = "SECONDS")]
    pub unique_for: Option<f64>,
    /// `text`: the new result's id and status; `json`: the result as one JSON object.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

/// The message when the binary has no tasks at all (the plain `taskhost` tool).
pub(crate) const NO_TASKS: &str = "the taskhost tool has no tasks; run `enqueue` from your \
     application's binary, which mounts this CLI (this binary has no #[task] functions)";

/// Run `enqueue`.
pub fn run(args: &EnqueueArgs) -> Result<(), String> {
    let registered = registered_tasks();
    if registered.is_empty() {
        return Err(NO_TASKS.to_string());
    }
    let definition = find_task(&args.task).ok_or_else(|| unknown_task(&args.task, &registered))?;
    let positional = parse_args(&args.args)?;
    let kwargs = parse_kwargs(&args.kwargs)?;
    let run_after = args.run_after.as_deref().map(parse_run_after).transpose()?;
    let options = TaskOptions {
        priority: args.priority,
        queue_name: args.queue.clone(),
        run_after,
        backend: args.backend.clone(),
        unique: unique(args)?,
    };
    let task = Task::<(), ()>::from_definition(definition)
        .using(options)
        .map_err(|e| refused(&args.task, e))?;
    let backend = task_backends()
        .get(task.backend())
        .map_err(|e| refused(&args.task, e))?;
    let result = match task.uniqueness() {
        Some(unique) => {
            backend.enqueue_json_unique(&task.description(), positional, kwargs, unique)
        }
        None => backend.enqueue_json(&task.description(), positional, kwargs),
    }
    .map_err(|e| refused(&args.task, e))?;
    if args.format == OutputFormat::Json {
        outln!("{}", output::json(result.data())?);
    } else if result.is_duplicate() {
        outln!("{} {} duplicate", result.id(), result.status());
    } else {
        outln!("{} {}", result.id(), result.status());
    }
    Ok(())
}

/// The uniqueness `--unique`, `--unique-key` and `--unique-for` ask for, if any.
fn unique(args: &EnqueueArgs) -> Result<Option<Unique>, String> {
    let mut unique = match &args.unique_key {
        Some(key) => Unique::key(key.clone()),
        None if args.unique || args.unique_for.is_some() => Unique::derived(),
        None => return Ok(None),
    };
    if let Some(secs) = args.unique_for {
        let period = Duration::try_from_secs_f64(secs)
            .ok()
            .filter(|p| !p.is_zero())
            .ok_or_else(|| {
                format!("--unique-for must be a number of seconds above 0, got {secs}")
            })?;
        unique = unique.scope(UniqueScope::For(period));
    }
    Ok(Some(unique))
}

/// The host's refusal, saying which task it was about.
fn refused(path: &str, error: taskhost::Error) -> String {
    format!("cannot enqueue '{}': {error}", escaped(path))
}

/// How many registered paths an unknown path's error lists when none looks like it.
const LISTED: usize = 10;

/// `no task '…'` with the close matches, else the registered paths (the first [`LISTED`]).
pub(crate) fn unknown_task(path: &str, registered: &[&'static TaskDefinition]) -> String {
    let close = close_matches(path, registered);
    let hint = if close.is_empty() {
        let mut listed: Vec<String> = registered
            .iter()
            .take(LISTED)
            .map(|d| format!("'{}'", d.path))
            .collect();
        if registered.len() > LISTED {
            listed.push(format!("and {} more", registered.len() - LISTED));
        }
        format!(
            " (paths are `crate_name::module::function`); it has {}",
            listed.join(", ")
        )
    } else {
        format!("; did you mean {}?", close.join(" or "))
    };
    format!(
        "no task '{}' is registered in this binary{hint}",
        escaped(path)
    )
}

/// Registered paths close to `path`, closest first, quoted: the same function name, or a few
/// edits away (at most a quarter of its length, 1 to 3).
fn close_matches(path: &str, registered: &[&'static TaskDefinition]) -> Vec<String> {
    let name = path.rsplit("::").next().unwrap_or(path);
    let limit = (path.chars().count() / 4).clamp(1, 3);
    let mut close: Vec<(usize, &str)> = registered
        .iter()
        .map(|d| {
            let distance = if d.name == name {
                0
            } else {
                edit_distance(d.path, path)
            };
            (distance, d.path)
        })
        .filter(|(distance, _)| *distance <= limit)
        .collect();
    close.sort();
    close
        .into_iter()
        .take(5)
        .map(|(_, path)| format!("'{path}'"))
        .collect()
}

/// Levenshtein distance, by chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(current + 1);
            previous = current;
        }
    }
    row[b.len()]
}

fn parse_args(text: &str) -> Result<Vec<Value>, String> {
    match serde_json::from_str(text) {
        Ok(Value::Array(args)) => Ok(args),
        Ok(other) => Err(format!(
            "--args must be a JSON array (e.g. '[\"a@example.com\", 3]'), got {}",
            kind(&other)
        )),
        Err(e) => Err(format!("--args is not valid JSON: {e}")),
    }
}

fn parse_kwargs(text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str(text) {
        Ok(Value::Object(kwargs)) => Ok(kwargs),
        Ok(other) => Err(format!(
            "--kwargs must be a JSON object (e.g. '{{\"retries\": 3}}'), got {}",
            kind(&other)
        )),
        Err(e) => Err(format!("--kwargs is not valid JSON: {e}")),
    }
}

fn parse_run_after(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!(
                "--run-after '{}' is not an RFC 3339 time (e.g. 2026-12-06T08:00:00Z): {e}",
                escaped(text)
            )
        })
}

/// What a JSON value is, for an error message.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_must_be_a_json_array() {
        assert_eq!(
            parse_args("[1, \"a\"]").unwrap(),
            vec![Value::from(1), Value::from("a")]
        );
        assert_eq!(
            parse_args("{\"a\": 1}").unwrap_err(),
            "--args must be a JSON array (e.g. '[\"a@example.com\", 3]'), got an object"
        );
        assert_eq!(
            parse_args("[1,").unwrap_err(),
            "--args is not valid JSON: EOF while parsing a value at line 1 column 3"
        );
    }

    #[test]
    fn kwargs_must_be_a_json_object() {
        assert!(parse_kwargs("{}").unwrap().is_empty());
        assert_eq!(
            parse_kwargs("[1]").unwrap_err(),
            "--kwargs must be a JSON object (e.g. '{\"retries\": 3}'), got an array"
        );
    }

    fn enqueue_args(unique: bool, key: Option<&str>, period: Option<f64>) -> EnqueueArgs {
        EnqueueArgs {
            task: "app::job".into(),
            args: "[]".into(),
            kwargs: "{}".into(),
            backend: None,
            queue: None,
            priority: None,
            run_after: None,
            unique,
            unique_key: key.map(String::from),
            unique_for: period,
            format: OutputFormat::Text,
        }
    }

    #[test]
    fn unique_flags_make_the_uniqueness() {
        assert_eq!(unique(&enqueue_args(false, None, None)).unwrap(), None);
        assert_eq!(
            unique(&enqueue_args(true, None, None)).unwrap(),
            Some(Unique::derived())
        );
        assert_eq!(
            unique(&enqueue_args(false, Some("k"), Some(1.5))).unwrap(),
            Some(Unique::key("k").scope(UniqueScope::For(Duration::from_millis(1500))))
        );
        assert_eq!(
            unique(&enqueue_args(false, None, Some(60.0))).unwrap(),
            Some(Unique::derived().scope(UniqueScope::For(Duration::from_secs(60))))
        );
        for bad in [0.0, -1.0, f64::NAN] {
            assert_eq!(
                unique(&enqueue_args(true, None, Some(bad))).unwrap_err(),
                format!("--unique-for must be a number of seconds above 0, got {bad}")
            );
        }
    }

    #[test]
    fn run_after_is_rfc3339() {
        assert_eq!(
            parse_run_after("2026-12-06T08:00:00+01:00")
                .unwrap()
                .to_rfc3339(),
            "2026-12-06T07:00:00+00:00"
        );
        assert_eq!(
            parse_run_after("tomorrow").unwrap_err(),
            "--run-after 'tomorrow' is not an RFC 3339 time (e.g. 2026-12-06T08:00:00Z): \
             premature end of input"
        );
    }

    fn definitions(count: usize) -> Vec<&'static TaskDefinition> {
        fn never(_: taskhost::__private::Invocation) -> taskhost_plugin_api::TaskOutcome {
            unreachable!("not run")
        }
        (0..count)
            .map(|i| {
                let path: &'static str = format!("app::job_{i:02}").leak();
                &*Box::leak(Box::new(TaskDefinition {
                    path,
                    name: &path[5..],
                    priority: 0,
                    queue_name: "default",
                    backend: "default",
                    takes_context: false,
                    state: &[],
                    max_attempts: None,
                    timeout_secs: None,
                    cron: None,
                    runner: taskhost::__private::TaskRunner::Sync(never),
                }))
            })
            .collect()
    }

    #[test]
    fn an_unknown_path_lists_close_matches_else_the_first_registered() {
        let registered = definitions(12);
        assert_eq!(
            unknown_task("other::job_03", &registered),
            "no task 'other::job_03' is registered in this binary; did you mean 'app::job_03'?"
        );
        assert_eq!(
            unknown_task("app::jb_1", &registered),
            "no task 'app::jb_1' is registered in this binary; did you mean 'app::job_01' or \
             'app::job_10' or 'app::job_11'?"
        );
        assert_eq!(
            unknown_task("billing::invoice", &registered[..2]),
            "no task 'billing::invoice' is registered in this binary (paths are \
             `crate_name::module::function`); it has 'app::job_00', 'app::job_01'"
        );
        assert!(unknown_task("billing::invoice", &registered).ends_with(
            "it has 'app::job_00', 'app::job_01', 'app::job_02', 'app::job_03', 'app::job_04', \
             'app::job_05', 'app::job_06', 'app::job_07', 'app::job_08', 'app::job_09', and 2 \
             more"
        ));
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("record_key", "record_key"), 0);
        assert_eq!(edit_distance("record_kee", "record_key"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
