//! Running one claimed task: signals, the function (sync on a thread, async on the runtime),
//! its timeout, and the completion that records how it ended.

use super::completions::Completions;
use super::leases::Leases;
use super::local_queue::Slot;
use super::retry::backoff;
use super::sync_pool::SyncPool;
use crate::backend::Backend;
use crate::context::TaskContext;
use crate::definition::{Invocation, TaskRunner};
use crate::metrics::{TaskMetrics, WorkerMetrics};
use crate::outcome::{catch_sync, failure};
use crate::registry::find_task;
use crate::result::TaskResult;
use crate::signals;
use crate::state::AppState;
use crate::trace;
use crate::validation::escape_for_display as escaped;
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;
use taskhost_plugin_api::control;
use taskhost_plugin_api::Signal;
use taskhost_plugin_api::{
    ClaimedTask, Completion, TaskError, TaskOutcome, TaskResultData, TaskResultStatus,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How many times a prefetched task's start report ([`Executor::report_start`]) is tried
/// before the task is handed back unstarted.
const REPORT_TRIES: usize = 5;

/// What an execution needs from the worker.
#[derive(Clone)]
pub(crate) struct Executor {
    pub backend: Arc<Backend>,
    pub worker_id: String,
    pub retry_backoff: Duration,
    pub retry_backoff_max: Duration,
    pub completions: Completions,
    pub leases: Leases,
    pub sync_pool: Arc<SyncPool>,
    /// Whether tasks may wait for a slot after their claim (`prefetch` > 0): their real start
    /// time is then sent with the completion.
    pub prefetching: bool,
    /// What the tasks' `State<T>` parameters are taken from.
    pub state: AppState,
    /// What the executions count and measure (`crate::metrics`).
    pub metrics: Arc<WorkerMetrics>,
}

/// How one execution ended, for the worker's report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    Successful,
    Failed,
    Retrying,
    LeaseLost,
    /// Claimed, then it never got a slot: a shutdown came first (still held, released by the
    /// shutdown), or it was handed back while it waited (released by the worker's loop).
    NotStarted,
}

impl Executor {
    /// Run `claimed` and record its outcome with the backend. `slot` is given back as soon as
    /// the function has returned, so the worker claims the next task while this result waits
    /// for the completion buffer's write (the lease is held until then, and the task still
    /// counts toward the worker's cap: see `local_queue`).
    pub async fn execute(&self, claimed: ClaimedTask, slot: Slot) -> Ended {
        let metrics = self.metrics.task(&claimed.result.task);
        let span = trace::run_span(trace::Run::of(&claimed.result));
        let ended = self.attempt(claimed, slot, &metrics).instrument(span).await;
        match ended {
            Ended::Successful => metrics.successful.increment(1),
            Ended::Failed => metrics.failed.increment(1),
            Ended::Retrying => metrics.retried.increment(1),
            Ended::LeaseLost => metrics.leases_lost.increment(1),
            Ended::NotStarted => {}
        }
        ended
    }

    /// Tell the store that `claimed`, a prefetched task it once rescued without knowing whether
    /// it had started ([`ClaimedTask::report_start`]), starts now, and wait for the answer: a
    /// task that kills its worker is then counted toward `max_rescues` (decision 017). Tried a
    /// few times while the store fails; false when it could not be told (or the lease is
    /// gone), and the task must not run.
    pub async fn report_start(&self, claimed: &ClaimedTask) -> bool {
        let request = taskhost_plugin_api::LeaseRequest {
            worker_id: self.worker_id.clone(),
            leases: vec![(claimed.result.id.to_string(), claimed.lease_token)],
            lease_secs: 0.0,
        };
        let mut delay = Duration::from_millis(50);
        for _ in 0..REPORT_TRIES {
            let backend = Arc::clone(&self.backend);
            let request = request.clone();
            let answer = tokio::task::spawn_blocking(move || {
                backend.call_ext_json::<_, serde_json::Value>(
                    taskhost_plugin_api::REPORT_STARTED,
                    &request,
                )
            })
            .await;
            match answer {
                Ok(Ok(answer)) => {
                    let reported = answer.get("reported").and_then(|n| n.as_u64());
                    if reported == Some(0) {
                        tracing::warn!(target: "taskhost", "Task id={}: worker '{}' lost its lease before starting it; not run here", claimed.result.id, self.worker_id);
                    }
                    return reported != Some(0);
                }
                Ok(Err(e)) => {
                    tracing::error!(target: "taskhost", "Task id={}: reporting its start failed, retrying in {delay:?}: {e}", claimed.result.id);
                }
                Err(e) => {
                    tracing::error!(target: "taskhost", "Task id={}: reporting its start failed: {e}", claimed.result.id);
                    return false;
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
        false
    }

    /// [`Executor::execute`], the attempt counted and timed on `metrics`.
    async fn attempt(&self, claimed: ClaimedTask, slot: Slot, metrics: &TaskMetrics) -> Ended {
        let mut data = claimed.result;
        // A prefetched task may have waited since its claim: it starts now.
        let started_at = self.prefetching.then(Utc::now);
        if started_at.is_some() {
            data.started_at = started_at;
            data.last_attempted_at = started_at;
        }
        if signals::wanted(Signal::TASK_STARTED) {
            signals::dispatch(
                Signal::TASK_STARTED,
                self.backend.class_name(),
                &TaskResult::from_data(data.clone()),
            );
        }
        let now = started_at.unwrap_or_else(Utc::now);
        let since = metrics.started(&data.task, data.enqueued_at, now);
        // Asked to stop (learnt at a heartbeat): a task that has not started does not run, and
        // one that returns after it was told ends cancelled, whatever it returned.
        let cancellation = self.leases.cancellation(&data.id);
        let outcome = match cancellation.is_cancelled() {
            true => None,
            false => Some(self.run(&data, &cancellation).await),
        };
        metrics.ran(since);
        drop(slot);
        let cancelled = outcome.is_none() || cancellation.is_cancelled();
        let outcome = match outcome {
            Some(outcome) if !cancelled => outcome,
            ran => self.cancelled(ran),
        };
        let attempts = data.worker_ids.len();
        let retry_at = match &outcome {
            TaskOutcome::Failed { .. } if cancelled => None,
            TaskOutcome::Failed { .. } if attempts < claimed.max_attempts as usize => {
                let delay = backoff(attempts, self.retry_backoff, self.retry_backoff_max);
                Some(Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default())
            }
            _ => None,
        };
        let completion = Completion {
            id: data.id.to_string(),
            worker_id: self.worker_id.clone(),
            lease_token: claimed.lease_token,
            outcome: outcome.clone(),
            retry_at,
            started_at,
        };
        self.leases.completing(&data.id);
        if !self.completions.record(completion).await {
            return Ended::LeaseLost;
        }
        // Failures are logged at WARN, which a worker prints by default (`RUST_LOG` unset):
        // a task that fails must not go unnoticed until someone looks in the store.
        if let TaskOutcome::Failed { error } = &outcome {
            let (id, path) = (escaped(&data.id), escaped(&data.task.path));
            let error = error_line(error);
            let max = claimed.max_attempts;
            match retry_at {
                Some(at) => tracing::warn!(
                    target: "taskhost",
                    "Task id={id} path={path} failed on attempt {attempts} of {max}; retrying \
                     at {}: {error}",
                    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                ),
                None => tracing::warn!(
                    target: "taskhost",
                    "Task id={id} path={path} failed on attempt {attempts} of {max}; FAILED: \
                     {error}"
                ),
            }
        }
        if retry_at.is_some() {
            return Ended::Retrying;
        }
        let ended = match outcome {
            TaskOutcome::Successful { .. } => Ended::Successful,
            TaskOutcome::Failed { .. } => Ended::Failed,
        };
        if signals::wanted(Signal::TASK_FINISHED) {
            signals::dispatch(
                Signal::TASK_FINISHED,
                self.backend.class_name(),
                &TaskResult::from_data(finished(data, outcome)),
            );
        }
        ended
    }

    /// The outcome of a run asked to stop: a [`control::CANCELLED`] error saying what the
    /// task did (`None`: it never started).
    fn cancelled(&self, outcome: Option<TaskOutcome>) -> TaskOutcome {
        let worker = &self.worker_id;
        let detail = match outcome {
            None => format!(
                "the task was cancelled while RUNNING on worker '{worker}' before it started; \
                 it did not run."
            ),
            Some(TaskOutcome::Successful { .. }) => format!(
                "the task was cancelled while RUNNING on worker '{worker}'; it was told through \
                 its context and then returned successfully (its return value is not stored)."
            ),
            Some(TaskOutcome::Failed { error }) => format!(
                "the task was cancelled while RUNNING on worker '{worker}'; it was told through \
                 its context and then failed with {}",
                error_line(&error)
            ),
        };
        TaskOutcome::Failed {
            error: control::cancellation_error(&detail),
        }
    }

    async fn run(&self, data: &TaskResultData, cancellation: &CancellationToken) -> TaskOutcome {
        let Some(definition) = find_task(&data.task.path) else {
            return failure(
                "taskhost::UnknownTask",
                &format!(
                    "task '{}' is not registered in worker '{}': is the crate that defines it \
                     linked into this binary?",
                    data.task.path, self.worker_id
                ),
                "",
            );
        };
        let invocation = Invocation {
            args: data.args.clone(),
            kwargs: data.kwargs.clone(),
            context: definition.takes_context.then(|| {
                TaskContext::new(TaskResult::from_data(data.clone()), cancellation.clone())
            }),
            state: self.state.clone(),
        };
        // Sync functions run on the worker's own threads, async ones on the runtime.
        let (abort, mut ran): (Option<tokio::task::AbortHandle>, Running) = match definition.runner
        {
            TaskRunner::Sync(run) => {
                let span = tracing::Span::current();
                let answer = self
                    .sync_pool
                    .run(move || span.in_scope(|| catch_sync(|| run(invocation))));
                let ran = async {
                    answer
                        .await
                        .map_err(|_| "no thread could be started for it".to_string())
                };
                (None, Box::pin(ran))
            }
            TaskRunner::Async(run) => {
                let handle = tokio::spawn(run(invocation).in_current_span());
                let abort = handle.abort_handle();
                (
                    Some(abort),
                    Box::pin(async { handle.await.map_err(|e| e.to_string()) }),
                )
            }
        };
        let joined = match data.task.timeout_secs.filter(|t| t.is_finite() && *t > 0.0) {
            Some(secs) => {
                match tokio::time::timeout(Duration::from_secs_f64(secs), &mut ran).await {
                    Ok(joined) => joined,
                    Err(_) => {
                        // An async task is cancelled; a sync one cannot be stopped: its thread
                        // runs on, and its result is never recorded.
                        if let Some(abort) = abort {
                            abort.abort();
                        }
                        return failure(
                            "taskhost::TaskTimeout",
                            &format!("task exceeded its timeout of {secs} s"),
                            "",
                        );
                    }
                }
            }
            None => ran.await,
        };
        joined.unwrap_or_else(|e| {
            failure(
                "taskhost::WorkerError",
                &format!("the task did not finish: {e}"),
                "",
            )
        })
    }
}

/// A task function on its way to an outcome (or the reason it has none).
type Running =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<TaskOutcome, String>> + Send>>;

/// `<class path>: <first line of the message>`, escaped for a terminal: the traceback ends with
/// `"<class path>: <message>\n"`, after any cause chain and backtrace.
fn error_line(error: &TaskError) -> String {
    let class = &error.exception_class_path;
    let prefix = format!("{class}: ");
    let message = match error.traceback.rfind(&prefix) {
        Some(at) => &error.traceback[at + prefix.len()..],
        None => error.traceback.trim_end().lines().last().unwrap_or(""),
    };
    let first = message.lines().next().unwrap_or("");
    format!("{}: {}", escaped(class), escaped(first))
}

/// The result as the backend now stores it, for the `task_finished` signal.
fn finished(mut data: TaskResultData, outcome: TaskOutcome) -> TaskResultData {
    data.finished_at = Some(Utc::now());
    match outcome {
        TaskOutcome::Successful { return_value } => {
            data.status = TaskResultStatus::Successful;
            data.return_value = Some(return_value);
        }
        TaskOutcome::Failed { error } => {
            data.status = TaskResultStatus::Failed;
            data.errors.push(error);
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_line_is_the_class_and_the_first_line_of_the_message() {
        let error = |class: &str, traceback: &str| TaskError {
            exception_class_path: class.into(),
            traceback: traceback.into(),
        };
        assert_eq!(
            error_line(&error(
                "app::Oops",
                "caused by: io\nbacktrace…\napp::Oops: it broke\nsecond line\n"
            )),
            "app::Oops: it broke"
        );
        assert_eq!(
            error_line(&error("panic", "panic: bad \u{1b}[31m\n")),
            "panic: bad \\u{1b}[31m"
        );
        assert_eq!(error_line(&error("x::Y", "odd\nlast\n")), "x::Y: last");
    }
}
