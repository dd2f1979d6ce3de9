//! Standalone inspection of queue stores: `results`, `queues`, `prune`, `migrate` — no task code
//! needed, everything goes through the backend's extension operations.
//!
//! What a store holds is printed safe for a terminal: names and ids with control characters
//! (stored before the host refused them, or written by another producer) are shown escaped, in
//! Rust's `escape_debug` form (`a\u{1b}[31mred`), in `results list` and `queues`; `results show`
//! prints JSON, whose strings escape them as `\u001b`. Filters (`--queue`, `--task`) are not
//! held to the naming rules, so such rows can still be found and pruned.

use crate::backend::Backend;
use crate::handler::task_backends;
use crate::result::TaskResultStatus;
use crate::validation::{escape_for_display as escaped, is_unsafe_to_print};
use chrono::{Duration as Age, Utc};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use taskhost_plugin_api::ops;
use taskhost_plugin_api::wire::{ListRequest, PruneRequest, QueueStats, TaskResultData};

/// `results list` / `results show`.
#[derive(Subcommand, Debug, Clone)]
pub enum ResultsCommand {
    /// List results, newest first.
    List {
        /// Backend alias.
        #[arg(long, default_value = crate::DEFAULT_TASK_BACKEND_ALIAS)]
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
    },
    /// Show one result in full.
    Show {
        /// The result id.
        id: String,
        /// Backend alias.
        #[arg(long, default_value = crate::DEFAULT_TASK_BACKEND_ALIAS)]
        backend: String,
    },
}

/// `prune`: delete finished results.
#[derive(Args, Debug, Clone)]
pub struct PruneArgs {
    /// Backend alias.
    #[arg(long, default_value = crate::DEFAULT_TASK_BACKEND_ALIAS)]
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
        } => {
            let request = ListRequest {
                status: *status,
                queue_name: queue.clone(),
                task_path: task.clone(),
                limit: Some(*limit),
            };
            let rows: Vec<TaskResultData> = backend(alias)?
                .call_ext_json(ops::LIST_RESULTS, &request)
                .map_err(|e| e.to_string())?;
            println!(
                "{:<36}  {:<10}  {:<12}  {:>8}  {:<25}  TASK",
                "ID", "STATUS", "QUEUE", "ATTEMPTS", "ENQUEUED AT"
            );
            for r in &rows {
                println!(
                    "{:<36}  {:<10}  {:<12}  {:>8}  {:<25}  {}",
                    escaped(&r.id),
                    r.status,
                    escaped(&r.task.queue_name),
                    r.worker_ids.len(),
                    r.enqueued_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                    escaped(&r.task.path)
                );
            }
            println!("({} result(s))", rows.len());
            Ok(())
        }
        ResultsCommand::Show { id, backend: alias } => {
            let result = backend(alias)?.get_result(id).map_err(|e| e.to_string())?;
            let json = serde_json::to_string_pretty(result.data()).map_err(|e| e.to_string())?;
            println!("{}", json_escaped(&json));
            Ok(())
        }
    }
}

/// `json` (as serde_json writes it: C0 controls in strings already escaped) with the other
/// characters a terminal may act on (DEL, C1, bidirectional controls) escaped too (`\u009b`).
fn json_escaped(json: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| u32::from(c) >= 0x7f && is_unsafe_to_print(c);
    if !json.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        if unsafe_char(c) {
            // Every such character is in the Basic Multilingual Plane: one \uXXXX.
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Run `queues`: depth per queue and status, oldest ready task's age.
pub fn queues(alias: &str) -> Result<(), String> {
    let stats: Vec<QueueStats> = backend(alias)?
        .call_ext_json(ops::QUEUE_STATS, &serde_json::Map::new())
        .map_err(|e| e.to_string())?;
    println!(
        "{:<20}  {:<10}  {:>10}  OLDEST READY",
        "QUEUE", "STATUS", "COUNT"
    );
    let now = Utc::now();
    for s in &stats {
        let age = s
            .oldest_enqueued_at
            .map(|t| format!("{:.1} s ago", (now - t).num_milliseconds() as f64 / 1000.0))
            .unwrap_or_default();
        println!(
            "{:<20}  {:<10}  {:>10}  {age}",
            escaped(&s.queue_name),
            s.status,
            s.count
        );
    }
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
        let response: serde_json::Value = backend
            .call_ext_json(ops::PRUNE, request)
            .map_err(|e| e.to_string())?;
        Ok(response.get("count").and_then(|c| c.as_u64()).unwrap_or(0))
    };
    let total = prune(&request)?;
    if args.dry_run {
        println!("Would delete {total} task result(s)");
        return Ok(());
    }
    request.dry_run = false;
    request.limit = Some(args.batch_size);
    let bar = progress_bar(total);
    let mut deleted = 0;
    loop {
        let batch = prune(&request)
            .map_err(|e| format!("{e} (after deleting {deleted} task result(s))"))?;
        deleted += batch;
        bar.inc(batch);
        if batch < args.batch_size {
            break;
        }
    }
    bar.finish_and_clear();
    println!("Deleted {deleted} task result(s)");
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

/// Run `migrate`: create or upgrade the store's schema.
pub fn migrate(alias: &str) -> Result<(), String> {
    let response: serde_json::Value = backend(alias)?
        .call_ext_json(ops::MIGRATE, &serde_json::Map::new())
        .map_err(|e| e.to_string())?;
    let applied = response
        .get("applied")
        .and_then(|a| a.as_array())
        .map(Vec::len)
        .unwrap_or(0);
    if applied == 0 {
        println!("No migrations to apply.");
    } else {
        println!("Applied {applied} migration(s): {}", response["applied"]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_output_escapes_what_serde_json_leaves_for_a_terminal() {
        let json = serde_json::to_string_pretty(&serde_json::json!({
            "queue_name": "a\u{1b}[31mred\u{7f}\u{9b}\u{202e}é"
        }))
        .unwrap();
        let shown = json_escaped(&json);
        assert_eq!(
            shown,
            "{\n  \"queue_name\": \"a\\u001b[31mred\\u007f\\u009b\\u202eé\"\n}"
        );
        let back: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(back["queue_name"], "a\u{1b}[31mred\u{7f}\u{9b}\u{202e}é");
        assert!(matches!(
            json_escaped("{\"a\": 1}"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
