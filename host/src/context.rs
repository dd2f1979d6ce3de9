//! `TaskContext`: what a task that `takes_context` receives about its own run.

use crate::result::TaskResult;

/// Passed as the first argument (`context: TaskContext`) to a task marked `takes_context`.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskContext {
    /// The result being run (status RUNNING, this attempt's worker id already appended).
    pub task_result: TaskResult,
}

impl TaskContext {
    /// The number of this attempt, starting at 1.
    pub fn attempt(&self) -> usize {
        self.task_result.attempts()
    }
}
