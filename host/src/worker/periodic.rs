//! The worker's part in periodic tasks: at start it writes its config's schedules to the store
//! (`taskhost.periodic.sync`: the ones no longer configured are deleted there), enqueues the
//! ticks due — missed ones by each schedule's policy — and then sleeps until the next tick
//! of any schedule, enqueues what is due, and so on. Every worker does so; the store enqueues
//! each tick once (`taskhost.periodic.enqueue`, see `docs/decisions/020-periodic-tasks.md`).

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::periodic::PeriodicSchedule;
use crate::registry::find_task;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use taskhost_plugin_api::TaskDescription;
use tokio_util::sync::CancellationToken;

/// The store's operations (the database backend's `taskhost.periodic.*`).
pub const SYNC: &str = "taskhost.periodic.sync";
/// See [`SYNC`].
pub const LIST: &str = "taskhost.periodic.list";
/// See [`SYNC`].
pub const ENQUEUE: &str = "taskhost.periodic.enqueue";

/// The longest the scheduler sleeps before it looks again, whatever the next tick.
const MAX_SLEEP: Duration = Duration::from_secs(300);

/// After a failed pass, the first wait before the next one (doubling up to [`MAX_RETRY`]).
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(30);

/// A stored schedule, as `taskhost.periodic.list` answers (the fields the worker reads).
#[derive(Deserialize, Debug)]
struct Stored {
    name: String,
    created_at: DateTime<Utc>,
    last_tick: Option<DateTime<Utc>>,
}

/// What `taskhost.periodic.enqueue` answers.
#[derive(Deserialize, Debug)]
struct Enqueued {
    found: bool,
    enqueued: Vec<EnqueuedTick>,
}

#[derive(Deserialize, Debug)]
struct EnqueuedTick {
    tick: DateTime<Utc>,
    id: String,
}

/// Check the schedules of `backend` against this binary: each task must be registered, and
/// valid for the backend (its queue allowed, its priority in range). Fails with
/// `ImproperlyConfigured` naming `tasks.<alias>.periodic.<name>`.
pub(crate) fn check_schedules(backend: &Backend) -> Result<()> {
    for schedule in &backend.periodic_schedules() {
        let key = format!("tasks.{}.periodic.{}", backend.alias(), schedule.name);
        let description = description(backend, schedule, None)
            .map_err(|message| Error::config(None, Some(&key), format!("'{key}': {message}")))?;
        backend.validate_task(&description).map_err(|e| {
            Error::config(
                None,
                Some(&key),
                format!("'{key}': the task cannot be enqueued: {e}"),
            )
        })?;
    }
    Ok(())
}

/// The task a tick of `schedule` enqueues, due at `tick`.
fn description(
    backend: &Backend,
    schedule: &PeriodicSchedule,
    tick: Option<DateTime<Utc>>,
) -> std::result::Result<TaskDescription, String> {
    let Some(task) = find_task(&schedule.task) else {
        return Err(format!(
            "the task '{}' of schedule '{}' is not registered in this binary; check the path \
             (module path and function name, e.g. \"my_app::reports::daily\") and that the \
             worker is built with it",
            schedule.task, schedule.name
        ));
    };
    Ok(TaskDescription {
        path: task.path.to_string().into(),
        priority: schedule.priority.unwrap_or(task.priority),
        queue_name: schedule
            .queue_name
            .clone()
            .unwrap_or_else(|| task.queue_name.to_string())
            .into(),
        backend: backend.alias().to_string().into(),
        run_after: tick,
        takes_context: task.takes_context,
        is_async: task.is_async(),
        max_attempts: task.max_attempts,
        timeout_secs: task.timeout_secs,
    })
}

/// One worker's scheduler of periodic tasks.
pub(crate) struct Scheduler {
    backend: Arc<Backend>,
    /// The config's schedules and the `#[task(cron = "…")]` ones.
    schedules: Vec<PeriodicSchedule>,
    worker_id: String,
}

impl Scheduler {
    /// The scheduler of `backend`'s schedules, `None` when it has none (nothing is synced
    /// then: a worker without schedules leaves the stored ones alone).
    pub(crate) fn new(backend: &Arc<Backend>, worker_id: &str) -> Option<Self> {
        let schedules = backend.periodic_schedules();
        (!schedules.is_empty()).then(|| Self {
            backend: Arc::clone(backend),
            schedules,
            worker_id: worker_id.to_string(),
        })
    }

    /// Write this config's schedules to the store (deleting the stored ones it lacks).
    fn sync(&self) -> Result<()> {
        let schedules: Vec<_> = self
            .schedules
            .iter()
            .map(|s| {
                // The queue and priority its tasks get (checked at worker start).
                let task = description(&self.backend, s, None).ok();
                json!({
                    "name": s.name,
                    "task_path": s.task,
                    "cron": s.cron,
                    "timezone": s.timezone,
                    "missed": s.missed.to_string(),
                    "queue_name": task.as_ref().map_or("", |d| d.queue_name.as_str()),
                    "priority": task.as_ref().map_or(0, |d| d.priority),
                    "args": s.args,
                    "kwargs": s.kwargs,
                })
            })
            .collect();
        let request = json!({ "now": Utc::now(), "schedules": schedules });
        let _: serde_json::Value = self.backend.call_ext_json(SYNC, &request)?;
        Ok(())
    }

    /// Enqueue what is due now; returns when the next tick of any schedule is (`None`: none
    /// ever again). A schedule that fails does not keep the others from their ticks: the first
    /// failure is returned after every schedule was served.
    fn pass(&self) -> Result<Option<DateTime<Utc>>> {
        let stored: Vec<Stored> = self.backend.call_ext_json(LIST, &json!({}))?;
        let now = Utc::now();
        let mut next: Option<DateTime<Utc>> = None;
        let mut failed = None;
        for schedule in &self.schedules {
            // Not stored: removed by a worker started with a newer config.
            let Some(state) = stored.iter().find(|s| s.name == schedule.name) else {
                continue;
            };
            let after = state.last_tick.unwrap_or(state.created_at);
            if let Err(e) = self.enqueue_due(schedule, after, now) {
                tracing::warn!(target: "taskhost", "Worker {} could not enqueue the ticks of schedule {}: {e}", self.worker_id, schedule.name);
                failed.get_or_insert(e);
            }
            let upcoming = schedule.next_tick(now.max(after));
            next = match (next, upcoming) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(next),
        }
    }

    /// Enqueue the ticks of `schedule` due at `now` after `after`, by its missed-tick policy.
    fn enqueue_due(
        &self,
        schedule: &PeriodicSchedule,
        after: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let Some(plan) = schedule.plan(after, now) else {
            return Ok(());
        };
        let mut ticks = Vec::with_capacity(plan.ticks.len());
        for tick in &plan.ticks {
            let description = description(&self.backend, schedule, Some(*tick))
                .map_err(|m| Error::config(None, None, m))?;
            let (request, _) = self.backend.prepare(
                &description,
                schedule.args.clone(),
                schedule.kwargs.clone(),
            )?;
            ticks.push(json!({ "tick": tick, "task": request }));
        }
        let request = json!({
            "schedule": schedule.name,
            "through": plan.through,
            "ticks": ticks,
        });
        let done: Enqueued = self.backend.call_ext_json(ENQUEUE, &request)?;
        for t in &done.enqueued {
            tracing::info!(target: "taskhost", "Worker {} enqueued periodic task id={} path={} schedule={} tick={}", self.worker_id, t.id, schedule.task, schedule.name, t.tick.to_rfc3339());
        }
        if done.found && plan.ticks.is_empty() {
            tracing::info!(target: "taskhost", "Schedule {} missed its ticks through {} (missed = \"{}\"): none enqueued", schedule.name, plan.through.to_rfc3339(), schedule.missed);
        }
        Ok(())
    }

    /// A pass, off the runtime's threads (the store is called synchronously).
    async fn pass_blocking(self: &Arc<Self>) -> Result<Option<DateTime<Utc>>> {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.pass())
            .await
            .map_err(|e| Error::Backend {
                alias: self.backend.alias().to_string(),
                kind: taskhost_plugin_api::ErrorKind::OTHER,
                message: format!("the periodic pass did not finish: {e}"),
            })?
    }

    /// Sync, then a first pass (the missed ticks): what a worker awaits before it claims, so
    /// that a `--batch` worker runs what its start enqueued. Returns whether the sync was
    /// done; failures that retrying may mend are logged (the [`Scheduler::run`] loop tries
    /// again), a backend that cannot store schedules at all is an `ImproperlyConfigured`
    /// error naming `tasks.<alias>.periodic`.
    pub(crate) async fn start(self: &Arc<Self>) -> Result<bool> {
        let this = Arc::clone(self);
        let synced = tokio::task::spawn_blocking(move || this.sync()).await;
        match synced {
            Ok(Ok(())) => {}
            Ok(Err(Error::NotSupported(reason))) => {
                let alias = self.backend.alias();
                let key = format!("tasks.{alias}.periodic");
                return Err(Error::config(
                    None,
                    Some(&key),
                    format!(
                        "'{key}': backend '{alias}' ({}) cannot store periodic schedules \
                         ({reason}); run them on a backend that can, such as \
                         taskhost.backends.database.DatabaseBackend, or remove the table",
                        self.backend.backend_name()
                    ),
                ));
            }
            Ok(Err(e)) => {
                tracing::warn!(target: "taskhost", "Worker {} could not write its periodic schedules to the store: {e}", self.worker_id);
                return Ok(false);
            }
            Err(e) => {
                tracing::warn!(target: "taskhost", "Worker {}: the periodic sync did not finish: {e}", self.worker_id);
                return Ok(false);
            }
        }
        if let Err(e) = self.pass_blocking().await {
            tracing::warn!(target: "taskhost", "Worker {} could not enqueue the due periodic ticks: {e}", self.worker_id);
        }
        Ok(true)
    }

    /// Enqueue ticks as they come until `stop`: a timer to the next tick, not a poll.
    pub(crate) async fn run(self: Arc<Self>, mut synced: bool, stop: CancellationToken) {
        let mut retry = FIRST_RETRY;
        loop {
            let wait = if !synced {
                synced = self.start().await.unwrap_or(false);
                if synced {
                    retry = FIRST_RETRY;
                    Duration::ZERO
                } else {
                    retry = (retry * 2).min(MAX_RETRY);
                    retry
                }
            } else {
                match self.pass_blocking().await {
                    Ok(next) => {
                        retry = FIRST_RETRY;
                        next.map_or(MAX_SLEEP, |next| {
                            // A millisecond past the tick: a pass never runs just before it.
                            (next - Utc::now() + chrono::TimeDelta::milliseconds(1))
                                .to_std()
                                .unwrap_or(Duration::ZERO)
                                .min(MAX_SLEEP)
                        })
                    }
                    Err(e) => {
                        tracing::warn!(target: "taskhost", "Worker {} could not enqueue periodic ticks (retrying in {retry:?}): {e}", self.worker_id);
                        let wait = retry;
                        retry = (retry * 2).min(MAX_RETRY);
                        wait
                    }
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => return,
            }
        }
    }
}
