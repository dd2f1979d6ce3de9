//! `TaskContext`: what a task that `takes_context` receives about its own run.

use crate::result::TaskResult;
use tokio_util::sync::CancellationToken;

/// Passed as the first argument (`context: TaskContext`) to a task marked `takes_context`.
///
/// It also tells the task when it was asked to stop ([`TaskResult::cancel`]): a worker learns
/// of a cancellation at its next heartbeat (a third of its lease) and then
/// [`TaskContext::is_cancelled`] turns true and [`TaskContext::cancelled`] completes. Stopping
/// is up to the task (a sync function cannot be interrupted); whatever it then returns, the
/// result ends FAILED with a `taskhost::Cancelled` error
/// (`docs/decisions/018-cancel-and-retry.md`).
#[derive(Clone, Debug)]
pub struct TaskContext {
    /// The result being run (status RUNNING, this attempt's worker id already appended).
    pub task_result: TaskResult,
    /// Cancelled when the worker learns that this run was asked to stop.
    cancellation: CancellationToken,
}

impl TaskContext {
    /// The context of a run of `task_result`, told of a cancellation through `cancellation`.
    pub(crate) fn new(task_result: TaskResult, cancellation: CancellationToken) -> Self {
        Self {
            task_result,
            cancellation,
        }
    }

    /// The number of this attempt, starting at 1.
    pub fn attempt(&self) -> usize {
        self.task_result.attempts()
    }

    /// Whether this run was asked to stop (learnt at the worker's heartbeat). Cheap: check it
    /// between steps of a long task and return early.
    pub fn is_cancelled(&self) -> bool {
        self.cancellation.is_cancelled()
    }

    /// Completes when this run is asked to stop: race it against the work in an async task
    /// (`tokio::select!`). Never completes for a run nobody cancels.
    pub async fn cancelled(&self) {
        self.cancellation.cancelled().await
    }
}

/// Two contexts are equal when their results are (the cancellation is not compared).
impl PartialEq for TaskContext {
    fn eq(&self, other: &Self) -> bool {
        self.task_result == other.task_result
    }
}
