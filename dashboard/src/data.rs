//! What the pages show, read from the backends (blocking calls: run them on tokio's blocking
//! pool). The database store's extension operations give keyset pages and per-minute counts;
//! a backend without them gets the plain `list_results` listing and no chart.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use taskhost::{Backend, TaskBackends};
use taskhost_plugin_api::{ListRequest, TaskResultData, TaskResultStatus};

/// The database store's page operation (see `taskhost_backends_database::LIST_PAGE`).
pub(crate) const LIST_PAGE: &str = "taskhost.backends.database.list_page";
/// The database store's per-minute counts (see `FINISHED_PER_MINUTE` there).
pub(crate) const FINISHED_PER_MINUTE: &str = "taskhost.backends.database.finished_per_minute";

/// Results per page of the list.
pub(crate) const PAGE_SIZE: u32 = 50;

/// The database store's periodic schedules (see `taskhost_backends_database::PERIODIC_LIST`).
pub(crate) const PERIODIC_LIST: &str = "taskhost.periodic.list";

/// Minutes the overview's chart covers.
pub(crate) const CHART_MINUTES: i64 = 60;

/// One configured alias, as the overview shows it.
pub(crate) struct BackendSummary {
    pub alias: String,
    pub backend_name: String,
    pub queues: Queues,
    /// Finished per minute over the last [`CHART_MINUTES`], when the store can say.
    pub chart: Option<Vec<MinuteCount>>,
    /// The periodic schedules the store holds, when it keeps them and has any.
    pub schedules: Vec<ScheduleRow>,
}

/// One stored periodic schedule (`taskhost.periodic.list`), with its next tick.
#[derive(Deserialize, Clone, Debug, PartialEq)]
pub(crate) struct ScheduleRow {
    pub name: String,
    pub task_path: String,
    pub cron: String,
    pub timezone: String,
    pub missed: String,
    pub last_tick: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_task_id: Option<String>,
    /// Computed here from the stored expression.
    #[serde(skip)]
    pub next_tick: Option<DateTime<Utc>>,
}

/// The queue table of one alias.
pub(crate) enum Queues {
    /// Counts per queue (sorted by name).
    Stats(Vec<QueueRow>),
    /// The backend keeps no queue (Immediate, Dummy).
    NotAStore,
    /// It could not be loaded or asked.
    Failed(String),
}

/// One queue's counts by status, and the enqueue time of its oldest READY result.
pub(crate) struct QueueRow {
    pub name: String,
    /// In [`TaskResultStatus::ALL`] order.
    pub counts: [u64; 4],
    pub oldest_ready: Option<DateTime<Utc>>,
}

/// A count of the per-minute operation's answer.
#[derive(Deserialize, Clone, Debug, PartialEq)]
pub(crate) struct MinuteCount {
    pub minute: DateTime<Utc>,
    pub status: TaskResultStatus,
    pub count: u64,
}

/// Every alias of the config, sorted.
pub(crate) fn overview(
    backends: &TaskBackends,
    now: DateTime<Utc>,
) -> Result<Vec<BackendSummary>, String> {
    let config = backends.config().map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for alias in backends.aliases().map_err(|e| e.to_string())? {
        let backend_name = config
            .backends
            .get(&alias)
            .map(|b| b.backend.clone())
            .unwrap_or_default();
        let (queues, chart, schedules) = match backends.get(&alias) {
            Ok(backend) => (
                queue_rows(&backend),
                chart(&backend, now),
                schedules(&backend, now),
            ),
            Err(e) => (Queues::Failed(e.to_string()), None, Vec::new()),
        };
        out.push(BackendSummary {
            alias,
            backend_name,
            queues,
            chart,
            schedules,
        });
    }
    Ok(out)
}

fn queue_rows(backend: &Backend) -> Queues {
    let stats = match backend.queue_stats() {
        Ok(stats) => stats,
        Err(taskhost::Error::NotSupported(_)) => return Queues::NotAStore,
        Err(e) => return Queues::Failed(e.to_string()),
    };
    let mut rows: Vec<QueueRow> = Vec::new();
    for stat in stats {
        let index = TaskResultStatus::ALL
            .iter()
            .position(|s| *s == stat.status)
            .unwrap_or(0);
        let row = match rows.iter_mut().find(|r| r.name == stat.queue_name) {
            Some(row) => row,
            None => {
                rows.push(QueueRow {
                    name: stat.queue_name.clone(),
                    counts: [0; 4],
                    oldest_ready: None,
                });
                rows.last_mut().expect("just pushed")
            }
        };
        row.counts[index] += stat.count;
        if stat.status == TaskResultStatus::Ready {
            row.oldest_ready = stat.oldest_enqueued_at;
        }
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Queues::Stats(rows)
}

/// The stored periodic schedules, each with its next tick after `now` (none when the backend
/// keeps no schedules or cannot be asked).
fn schedules(backend: &Backend, now: DateTime<Utc>) -> Vec<ScheduleRow> {
    let Ok(mut rows) =
        backend.call_ext_json::<_, Vec<ScheduleRow>>(PERIODIC_LIST, &serde_json::json!({}))
    else {
        return Vec::new();
    };
    for row in &mut rows {
        let schedule = taskhost::periodic::PeriodicSchedule::new(
            &row.name,
            &row.task_path,
            &row.cron,
            &row.timezone,
        );
        let from = row.last_tick.map_or(now, |last| last.max(now));
        row.next_tick = schedule.ok().and_then(|s| s.next_tick(from));
    }
    rows
}

/// The chart's first minute (minutes since the epoch): it ends with the minute of `now`.
pub(crate) fn first_minute(now: DateTime<Utc>) -> i64 {
    now.timestamp() / 60 - (CHART_MINUTES - 1)
}

fn chart(backend: &Backend, now: DateTime<Utc>) -> Option<Vec<MinuteCount>> {
    #[derive(Serialize)]
    struct Since {
        since: DateTime<Utc>,
    }
    let since = DateTime::from_timestamp(first_minute(now) * 60, 0)?;
    backend
        .call_ext_json(FINISHED_PER_MINUTE, &Since { since })
        .ok()
}

/// The filters of the results list, as the page's query string gives them.
#[derive(Serialize, Clone, Debug, Default, PartialEq)]
pub(crate) struct Filters {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<TaskResultStatus>,
    #[serde(rename = "queue_name", skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(rename = "task_path", skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    #[serde(rename = "enqueued_after", skip_serializing_if = "Option::is_none")]
    pub after: Option<DateTime<Utc>>,
    #[serde(rename = "enqueued_before", skip_serializing_if = "Option::is_none")]
    pub before: Option<DateTime<Utc>>,
}

/// One page of the results list.
pub(crate) struct Page {
    pub rows: Vec<TaskResultData>,
    /// The cursor of the next page, if there is one.
    pub next: Option<String>,
    /// False when the backend has no keyset paging: the newest [`PAGE_SIZE`] only, without
    /// the time filters.
    pub paged: bool,
}

/// The page after `cursor` (the first when `None`).
pub(crate) fn page(
    backend: &Arc<Backend>,
    filters: &Filters,
    cursor: Option<String>,
) -> Result<Page, taskhost::Error> {
    #[derive(Serialize)]
    struct Request<'a> {
        #[serde(flatten)]
        filters: &'a Filters,
        #[serde(skip_serializing_if = "Option::is_none")]
        before_id: Option<String>,
        limit: u32,
    }
    let request = Request {
        filters,
        before_id: cursor,
        // One more than shown: whether there is a next page.
        limit: PAGE_SIZE + 1,
    };
    match backend.call_ext_json::<_, Vec<TaskResultData>>(LIST_PAGE, &request) {
        Ok(mut rows) => {
            let next = if rows.len() > PAGE_SIZE as usize {
                rows.truncate(PAGE_SIZE as usize);
                rows.last().map(|r| r.id.to_string())
            } else {
                None
            };
            Ok(Page {
                rows,
                next,
                paged: true,
            })
        }
        Err(taskhost::Error::NotSupported(_)) => {
            let request = ListRequest {
                status: filters.status,
                queue_name: filters.queue.clone(),
                task_path: filters.task.clone(),
                limit: Some(PAGE_SIZE),
            };
            let rows = backend
                .list_results(&request)?
                .into_iter()
                .map(|r| r.data().clone())
                .collect();
            Ok(Page {
                rows,
                next: None,
                paged: false,
            })
        }
        Err(e) => Err(e),
    }
}
