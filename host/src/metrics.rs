//! What taskhost counts and measures, recorded through the [`metrics`](https://docs.rs/metrics)
//! facade: enqueues (in any process that enqueues), and the worker's claims, runs, outcomes,
//! lost leases and rescues.
//!
//! The library installs no recorder: without one every record is a no-op, and an application
//! exports them by installing any `metrics` recorder before it enqueues or starts a
//! [`Worker`](crate::worker::Worker) — `worker --metrics ADDR` (crate `taskhost-cli`) installs
//! the Prometheus one and serves `/metrics`, and the dashboard's `/metrics` serves the queue
//! gauges. Names and labels follow Prometheus conventions; every metric carries `backend` (the
//! alias), the task metrics `task` (the registered task's path) and `queue`. The `task` label of
//! a path this binary does not register is [`UNREGISTERED_TASK`], so the series stay bounded
//! by the registered tasks whatever a store holds. The full table: `docs/operations.md`.
//!
//! ```no_run
//! // Any recorder works; this one keeps the values for a Prometheus scrape.
//! let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
//!     .install_recorder()
//!     .expect("no other recorder installed");
//! taskhost::metrics::describe();
//! // … enqueue, run workers; answer each scrape with `handle.render()`.
//! ```

use crate::registry::find_task;
use chrono::{DateTime, Utc};
use metrics::{Counter, Histogram, Label, SharedString, Unit};
use parking_lot::Mutex;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;
use taskhost_plugin_api::{ClaimedTask, QueueStats, TaskDescription, TaskResultStatus};

/// Counter: tasks enqueued (labels `backend`, `task`, `queue`), counted by the process that
/// enqueues, once the backend has stored them (at the commit of a transaction scope with
/// `enqueue_on_commit`).
pub const TASKS_ENQUEUED: &str = "taskhost_tasks_enqueued_total";
/// Counter: attempts a worker started (labels `backend`, `task`, `queue`).
pub const TASKS_STARTED: &str = "taskhost_tasks_started_total";
/// Counter: tasks that ended for good (labels `backend`, `task`, `queue`, `status`:
/// `SUCCESSFUL` or `FAILED`), once the store has recorded it.
pub const TASKS_FINISHED: &str = "taskhost_tasks_finished_total";
/// Counter: failed attempts handed back for a retry (labels `backend`, `task`, `queue`).
pub const TASKS_RETRIED: &str = "taskhost_tasks_retried_total";
/// Histogram: seconds the task function of an attempt ran, whatever its outcome (labels
/// `backend`, `task`, `queue`).
pub const TASK_RUN_SECONDS: &str = "taskhost_task_run_seconds";
/// Histogram: seconds from when an attempt was due (its enqueue, or its `run_after` when
/// later: a deferred task, a retry) to its start in a worker (labels `backend`, `task`,
/// `queue`).
pub const TASK_QUEUE_WAIT_SECONDS: &str = "taskhost_task_queue_wait_seconds";
/// Histogram: tasks per claim, 0 for a claim that found none (label `backend`).
pub const CLAIM_BATCH_SIZE: &str = "taskhost_claim_batch_size";
/// Counter: attempts whose result the store did not take — their lease was lost (the store
/// had rescued them), or the write kept failing — so it was discarded (labels `backend`,
/// `task`, `queue`).
pub const LEASES_LOST: &str = "taskhost_leases_lost_total";
/// Counter: tasks claimed again after the store rescued them from a lost worker, their last
/// error a `taskhost::WorkerLost` (labels `backend`, `task`, `queue`).
pub const TASKS_RESCUED: &str = "taskhost_tasks_rescued_total";
/// Gauge: results in the store by queue and status (labels `backend`, `queue`, `status`:
/// `READY`, `RUNNING`, `FAILED`, `SUCCESSFUL`), as read by [`QueueGauges`].
pub const QUEUE_DEPTH: &str = "taskhost_queue_depth";
/// Gauge: seconds since the oldest READY result of a queue was enqueued, 0 when none is
/// (labels `backend`, `queue`), as read by [`QueueGauges`].
pub const QUEUE_OLDEST_READY_AGE_SECONDS: &str = "taskhost_queue_oldest_ready_age_seconds";

/// The error class a store records on a task it rescues from a lost worker.
const WORKER_LOST: &str = "taskhost::WorkerLost";

/// The `task` label of a task path this binary does not register (it cannot be a task path).
pub const UNREGISTERED_TASK: &str = "<unregistered>";

/// Bucket bounds for [`TASK_RUN_SECONDS`]: 1 ms to 1 h.
pub const RUN_SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 900.0, 3600.0,
];
/// Bucket bounds for [`TASK_QUEUE_WAIT_SECONDS`]: 1 ms to 1 day.
pub const QUEUE_WAIT_SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 900.0, 3600.0, 14400.0, 86400.0,
];
/// Bucket bounds for [`CLAIM_BATCH_SIZE`]: 0 (an empty claim), then powers of two to 4096.
pub const CLAIM_BATCH_SIZE_BUCKETS: &[f64] = &[
    0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];

/// Give every metric its help text and unit, on the recorder in force (call it once after
/// installing one; the Prometheus exporter prints them as `# HELP`).
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(TASKS_ENQUEUED, "Tasks enqueued by this process.");
    describe_counter!(TASKS_STARTED, "Task attempts started by this worker.");
    describe_counter!(
        TASKS_FINISHED,
        "Tasks this worker ended for good, by status (SUCCESSFUL, FAILED)."
    );
    describe_counter!(
        TASKS_RETRIED,
        "Failed attempts this worker handed back for a retry."
    );
    describe_histogram!(
        TASK_RUN_SECONDS,
        Unit::Seconds,
        "How long the task function of an attempt ran."
    );
    describe_histogram!(
        TASK_QUEUE_WAIT_SECONDS,
        Unit::Seconds,
        "How long an attempt waited from when it was due (enqueue or run_after) to its start."
    );
    describe_histogram!(
        CLAIM_BATCH_SIZE,
        Unit::Count,
        "Tasks per claim (0: the claim found none)."
    );
    describe_counter!(
        LEASES_LOST,
        "Attempts whose result the store refused (lease lost, or the write kept failing)."
    );
    describe_counter!(
        TASKS_RESCUED,
        "Tasks claimed again after the store rescued them from a lost worker."
    );
    describe_gauge!(QUEUE_DEPTH, Unit::Count, "Results in the store, by status.");
    describe_gauge!(
        QUEUE_OLDEST_READY_AGE_SECONDS,
        Unit::Seconds,
        "Seconds since the oldest READY result was enqueued (0: none)."
    );
}

/// The `task` label of `path`: the registered path (a static string, nothing copied), or
/// [`UNREGISTERED_TASK`].
fn task_label(path: &str) -> &'static str {
    find_task(path).map_or(UNREGISTERED_TASK, |definition| definition.path)
}

/// A backend's [`TASKS_ENQUEUED`] counters, registered once per task and queue (the first
/// enqueue of the pair) and reused after: an enqueue then costs a map lookup, not a key built
/// and hashed. As with the worker's handles, a recorder installed after a pair's first enqueue
/// does not see that pair (install it at start, before enqueueing). Only registered task paths
/// are kept, so the map is bounded by the binary's tasks and the queues they use.
#[derive(Default)]
pub(crate) struct EnqueueCounters {
    /// task path → queue → counter.
    counters:
        parking_lot::Mutex<HashMap<&'static str, ByName<Counter>, foldhash::fast::RandomState>>,
}

impl EnqueueCounters {
    /// Count stored enqueues: one increment per run of consecutive tasks of one path and
    /// queue (a bulk enqueue of one task looks its counter up once).
    pub fn count<'a>(&self, alias: &str, tasks: impl IntoIterator<Item = &'a TaskDescription>) {
        let mut tasks = tasks.into_iter().peekable();
        while let Some(task) = tasks.next() {
            let mut runs = 1;
            while tasks.next_if(|next| same_task(next, task)).is_some() {
                runs += 1;
            }
            self.counter(alias, task).increment(runs);
        }
    }

    fn counter(&self, alias: &str, task: &TaskDescription) -> Counter {
        let label = task_label(&task.path);
        let queue = task.queue_name.as_str();
        let register = || {
            metrics::counter!(
                TASKS_ENQUEUED,
                "backend" => alias.to_owned(),
                "task" => label,
                "queue" => queue.to_owned()
            )
        };
        if label == UNREGISTERED_TASK {
            return register();
        }
        let mut counters = self.counters.lock();
        let queues = counters.entry(label).or_default();
        if let Some(counter) = queues.get(queue) {
            return counter.clone();
        }
        let counter = register();
        queues.insert(queue.to_owned(), counter.clone());
        counter
    }
}

fn same_task(a: &TaskDescription, b: &TaskDescription) -> bool {
    a.path == b.path && a.queue_name == b.queue_name
}

/// A worker's handles: its claims', and each task and queue's, registered once (the first
/// time the worker meets the pair) and reused for every task after. Without a recorder they
/// are no-ops: a task then costs a map lookup and three clock reads.
pub(crate) struct WorkerMetrics {
    backend: SharedString,
    claim_batch: Histogram,
    /// task path → queue → handles; only registered paths are kept, so it is bounded by the
    /// binary's tasks (times the queues they run on).
    tasks: Mutex<ByName<ByName<Arc<TaskMetrics>>>>,
}

/// Looked up for every task: foldhash (seeded per map) costs 40 % of what SipHash did here.
type ByName<T> = HashMap<String, T, foldhash::fast::RandomState>;

/// The handles of one task and queue.
pub(crate) struct TaskMetrics {
    started: Counter,
    pub successful: Counter,
    pub failed: Counter,
    pub retried: Counter,
    pub leases_lost: Counter,
    rescued: Counter,
    run: Histogram,
    wait: Histogram,
}

impl WorkerMetrics {
    /// The handles of a worker on backend `alias`, from the recorder installed now.
    pub fn new(alias: &str) -> Self {
        let backend = SharedString::from(alias.to_owned());
        Self {
            claim_batch: metrics::histogram!(CLAIM_BATCH_SIZE, "backend" => backend.clone()),
            backend,
            tasks: Mutex::default(),
        }
    }

    /// A claim returned `tasks`.
    pub fn claimed(&self, tasks: &[ClaimedTask]) {
        self.claim_batch.record(tasks.len() as f64);
        for claimed in tasks {
            let last_error = claimed.result.errors.last();
            if last_error.is_some_and(|e| e.exception_class_path == WORKER_LOST) {
                self.task(&claimed.result.task).rescued.increment(1);
            }
        }
    }

    /// The handles of `task`'s path and queue.
    pub fn task(&self, task: &TaskDescription) -> Arc<TaskMetrics> {
        let (path, queue) = (task.path.as_str(), task.queue_name.as_str());
        if let Some(found) = self.tasks.lock().get(path).and_then(|q| q.get(queue)) {
            return Arc::clone(found);
        }
        let label = task_label(path);
        let handles = Arc::new(TaskMetrics::new(&self.backend, label, queue));
        if label != UNREGISTERED_TASK {
            self.tasks
                .lock()
                .entry(path.to_owned())
                .or_default()
                .insert(queue.to_owned(), Arc::clone(&handles));
        }
        handles
    }
}

impl TaskMetrics {
    fn new(backend: &SharedString, task: &'static str, queue: &str) -> Self {
        let labels = vec![
            Label::new("backend", backend.clone()),
            Label::new("task", task),
            Label::new("queue", queue.to_owned()),
        ];
        let with_status = |status: &'static str| {
            let mut labels = labels.clone();
            labels.push(Label::new("status", status));
            labels
        };
        Self {
            started: metrics::counter!(TASKS_STARTED, labels.clone()),
            successful: metrics::counter!(TASKS_FINISHED, with_status("SUCCESSFUL")),
            failed: metrics::counter!(TASKS_FINISHED, with_status("FAILED")),
            retried: metrics::counter!(TASKS_RETRIED, labels.clone()),
            leases_lost: metrics::counter!(LEASES_LOST, labels.clone()),
            rescued: metrics::counter!(TASKS_RESCUED, labels.clone()),
            run: metrics::histogram!(TASK_RUN_SECONDS, labels.clone()),
            wait: metrics::histogram!(TASK_QUEUE_WAIT_SECONDS, labels),
        }
    }

    /// An attempt of `task`, enqueued at `enqueued_at`, starts at `now`: counted, its wait
    /// recorded. Returns the start of its run time (see [`TaskMetrics::ran`]).
    pub fn started(
        &self,
        task: &TaskDescription,
        enqueued_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Instant {
        self.started.increment(1);
        if let Some(due) = enqueued_at.max(task.run_after) {
            let waited = (now - due).to_std().unwrap_or_default();
            self.wait.record(waited.as_secs_f64());
        }
        Instant::now()
    }

    /// The attempt that started at `since` has returned.
    pub fn ran(&self, since: Instant) {
        self.run.record(since.elapsed().as_secs_f64());
    }
}

/// The queue gauges ([`QUEUE_DEPTH`], [`QUEUE_OLDEST_READY_AGE_SECONDS`]) of one backend
/// alias, set from its `queue_stats` (`Backend::queue_stats`: a count over the alias's rows,
/// so read it at a modest period). Every status of every queue configured or seen so far is
/// set, to 0 when the store has none: a queue that empties reads 0, not its last value.
#[derive(Debug)]
pub struct QueueGauges {
    backend: SharedString,
    queues: BTreeSet<String>,
}

impl QueueGauges {
    /// The gauges of alias `backend`, its configured `queues` always set (an empty list: the
    /// queues the store reports).
    pub fn new(backend: &str, queues: &[String]) -> Self {
        Self {
            backend: SharedString::from(backend.to_owned()),
            queues: queues.iter().cloned().collect(),
        }
    }

    /// Set the gauges from `stats` (what `Backend::queue_stats` returned) at time `now`.
    pub fn record(&mut self, stats: &[QueueStats], now: DateTime<Utc>) {
        let mut counts: HashMap<(&str, TaskResultStatus), u64> = HashMap::new();
        let mut oldest: HashMap<&str, DateTime<Utc>> = HashMap::new();
        for s in stats {
            self.queues.insert(s.queue_name.clone());
            *counts.entry((s.queue_name.as_str(), s.status)).or_default() += s.count;
            if let Some(at) = s
                .oldest_enqueued_at
                .filter(|_| s.status == TaskResultStatus::Ready)
            {
                let entry = oldest.entry(s.queue_name.as_str()).or_insert(at);
                *entry = (*entry).min(at);
            }
        }
        for queue in &self.queues {
            for status in TaskResultStatus::ALL {
                let count = counts.get(&(queue.as_str(), status)).copied().unwrap_or(0);
                metrics::gauge!(
                    QUEUE_DEPTH,
                    "backend" => self.backend.clone(),
                    "queue" => queue.clone(),
                    "status" => status.as_str()
                )
                .set(count as f64);
            }
            let age = oldest.get(queue.as_str()).map_or(0.0, |at| {
                (now - *at).to_std().unwrap_or_default().as_secs_f64()
            });
            metrics::gauge!(
                QUEUE_OLDEST_READY_AGE_SECONDS,
                "backend" => self.backend.clone(),
                "queue" => queue.clone()
            )
            .set(age);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

    /// What `record` leaves on a fresh Prometheus recorder, rendered.
    fn rendered(record: impl FnOnce()) -> String {
        let recorder: PrometheusRecorder = PrometheusBuilder::new().build_recorder();
        metrics::with_local_recorder(&recorder, record);
        recorder.handle().render()
    }

    fn stats(
        queue: &str,
        status: TaskResultStatus,
        count: u64,
        oldest: Option<DateTime<Utc>>,
    ) -> QueueStats {
        QueueStats {
            queue_name: queue.into(),
            status,
            count,
            oldest_enqueued_at: oldest,
        }
    }

    fn task(path: &str, queue: &str) -> TaskDescription {
        TaskDescription {
            queue_name: queue.into(),
            ..TaskDescription::new(path)
        }
    }

    #[test]
    fn queue_gauges_set_every_status_of_every_known_queue_and_zero_what_emptied() {
        let now = Utc::now();
        let mut gauges = QueueGauges::new("db", &["configured".to_string()]);
        let text = rendered(|| {
            gauges.record(
                &[
                    stats(
                        "emails",
                        TaskResultStatus::Ready,
                        2,
                        Some(now - chrono::Duration::seconds(10)),
                    ),
                    stats("emails", TaskResultStatus::Successful, 5, None),
                ],
                now,
            )
        });
        for line in [
            r#"taskhost_queue_depth{backend="db",queue="emails",status="READY"} 2"#,
            r#"taskhost_queue_depth{backend="db",queue="emails",status="SUCCESSFUL"} 5"#,
            r#"taskhost_queue_depth{backend="db",queue="emails",status="RUNNING"} 0"#,
            r#"taskhost_queue_depth{backend="db",queue="emails",status="FAILED"} 0"#,
            r#"taskhost_queue_depth{backend="db",queue="configured",status="READY"} 0"#,
            r#"taskhost_queue_oldest_ready_age_seconds{backend="db",queue="emails"} 10"#,
            r#"taskhost_queue_oldest_ready_age_seconds{backend="db",queue="configured"} 0"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        // The queue emptied: its gauges read 0, not their last values.
        let text = rendered(|| gauges.record(&[], now));
        for line in [
            r#"taskhost_queue_depth{backend="db",queue="emails",status="READY"} 0"#,
            r#"taskhost_queue_depth{backend="db",queue="emails",status="SUCCESSFUL"} 0"#,
            r#"taskhost_queue_oldest_ready_age_seconds{backend="db",queue="emails"} 0"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }

    #[test]
    fn enqueues_are_counted_per_queue_and_unregistered_paths_share_one_label() {
        let tasks = [
            task("app::a", "q1"),
            task("app::a", "q1"),
            task("app::b", "q1"),
            task("app::a", "q2"),
        ];
        let text = rendered(|| EnqueueCounters::default().count("db", &tasks));
        for line in [
            r#"taskhost_tasks_enqueued_total{backend="db",task="<unregistered>",queue="q1"} 3"#,
            r#"taskhost_tasks_enqueued_total{backend="db",task="<unregistered>",queue="q2"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }

    #[test]
    fn a_worker_keeps_handles_for_registered_tasks_only() {
        let metrics = WorkerMetrics::new("db");
        let text = rendered(|| {
            metrics
                .task(&task("not::registered", "q"))
                .failed
                .increment(1);
            metrics
                .task(&task("not::registered", "q"))
                .failed
                .increment(1);
        });
        assert!(metrics.tasks.lock().is_empty());
        let line = r#"taskhost_tasks_finished_total{backend="db",task="<unregistered>",queue="q",status="FAILED"} 2"#;
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
}
