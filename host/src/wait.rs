//! [`TaskResult::wait`] and [`TaskResult::await_finished`]: block until a result is finished,
//! woken by its backend's store (`docs/decisions/023-waiting-for-results.md`).
//!
//! The host asks the backend's `taskhost.wait_finished` operation (through `call_ext`), which
//! blocks until the store says the result finished: PostgreSQL's LISTEN/NOTIFY, SQLite's
//! file-change watch, the Dummy backend's own updates. A backend that does not answer it (a
//! plugin built before it, a custom backend) is asked for the result with `get_result` at a
//! growing interval instead: [`FIRST_POLL`], doubling up to [`MAX_POLL`].

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::handler::{blocking, task_backends};
use crate::result::TaskResult;
use std::time::{Duration, Instant};
use taskhost_plugin_api::wait::MAX_WAIT_FINISHED_SECS;
use taskhost_plugin_api::{WaitFinishedRequest, WaitFinishedResponse, WAIT_FINISHED};

/// The first pause of the fallback for backends without `taskhost.wait_finished`.
pub(crate) const FIRST_POLL: Duration = Duration::from_millis(10);

/// The longest pause of that fallback.
pub(crate) const MAX_POLL: Duration = Duration::from_secs(1);

impl<R> TaskResult<R> {
    /// Block until the result is finished (FAILED or SUCCESSFUL), then refresh it as
    /// [`TaskResult::refresh`] does and return it. A result already finished returns at once,
    /// without asking its backend.
    ///
    /// The backend's store wakes the wait (PostgreSQL: LISTEN/NOTIFY; SQLite: a file-change
    /// watch); a backend that cannot be woken is asked again at a growing interval (10 ms
    /// doubling to 1 s). Fails with [`Error::WaitTimeout`] (naming the id and the timeout)
    /// when `timeout` passes first, [`Error::TaskResultDoesNotExist`] if the backend does not
    /// know the id (e.g. an `enqueue_on_commit` enqueue whose transaction has not committed),
    /// and [`Error::NotSupported`] on a backend that cannot retrieve results (Immediate, whose
    /// results are finished when the enqueue returns anyway).
    ///
    /// ```no_run
    /// # use taskhost::task;
    /// # use std::time::Duration;
    /// #[task]
    /// fn add(a: i64, b: i64) -> i64 {
    ///     a + b
    /// }
    ///
    /// fn main() -> Result<(), taskhost::Error> {
    ///     let mut result = add.enqueue(2, 3)?;
    ///     let sum = result.wait(Duration::from_secs(30))?.return_value()?;
    ///     assert_eq!(sum, 5);
    ///     Ok(())
    /// }
    /// ```
    pub fn wait(&mut self, timeout: Duration) -> Result<&mut Self> {
        if self.is_finished() {
            return Ok(self);
        }
        let backend = task_backends().get(self.backend())?;
        let fresh = wait_finished(&backend, self.id(), timeout)?;
        self.copy_refreshed(fresh);
        Ok(self)
    }

    /// The async form of [`TaskResult::wait`]: the wait runs on tokio's blocking pool (it
    /// holds one of its threads while it blocks), so the runtime's workers stay free.
    pub async fn await_finished(&mut self, timeout: Duration) -> Result<&mut Self> {
        if self.is_finished() {
            return Ok(self);
        }
        let backend = task_backends().get(self.backend())?;
        let id = self.id().to_string();
        let fresh = blocking(move || wait_finished(&backend, &id, timeout)).await?;
        self.copy_refreshed(fresh);
        Ok(self)
    }
}

/// Wait for the result `id` of `backend` to finish, then read it.
fn wait_finished(backend: &Backend, id: &str, timeout: Duration) -> Result<TaskResult> {
    // No deadline: a timeout too long to add to the clock is forever.
    let deadline = Instant::now().checked_add(timeout);
    let longest = Duration::from_secs_f64(MAX_WAIT_FINISHED_SECS);
    loop {
        let left = deadline.map_or(longest, |d| d.saturating_duration_since(Instant::now()));
        let request = WaitFinishedRequest {
            ids: vec![id.to_string()],
            timeout_secs: left.min(longest).as_secs_f64(),
        };
        match backend.call_ext_json::<_, WaitFinishedResponse>(WAIT_FINISHED, &request) {
            Ok(answer) if answer.finished.iter().any(|f| f == id) => {
                return backend.get_result(id);
            }
            // A wait is capped by the backend: a longer one is several calls.
            Ok(_) if left > longest => continue,
            Ok(_) => return Err(timed_out(id, timeout)),
            Err(Error::NotSupported(_)) => return poll(backend, id, deadline, timeout),
            Err(err) => return Err(err),
        }
    }
}

/// The fallback: `get_result` at a growing interval until the result is finished.
fn poll(
    backend: &Backend,
    id: &str,
    deadline: Option<Instant>,
    timeout: Duration,
) -> Result<TaskResult> {
    tracing::debug!(
        target: "taskhost",
        alias = backend.alias(),
        "backend does not offer {WAIT_FINISHED}: waiting for result {id} by reading it at a \
         growing interval"
    );
    let mut pause = FIRST_POLL;
    loop {
        let fresh = backend.get_result(id)?;
        if fresh.is_finished() {
            return Ok(fresh);
        }
        let left = deadline.map_or(pause, |d| d.saturating_duration_since(Instant::now()));
        if left.is_zero() {
            return Err(timed_out(id, timeout));
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(MAX_POLL);
    }
}

fn timed_out(id: &str, timeout: Duration) -> Error {
    Error::WaitTimeout {
        id: id.to_string(),
        timeout,
    }
}
