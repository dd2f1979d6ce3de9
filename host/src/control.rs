//! Job control: cancelling a task ([`TaskResult::cancel`]) and running a FAILED one again
//! ([`TaskResult::retry`]), through the backend's `taskhost.cancel` and `taskhost.retry`
//! operations (`taskhost_plugin_api::control`, `docs/decisions/018-cancel-and-retry.md`).
//!
//! Django has no cancelled status, and `TaskResultStatus` is frozen within 2.x: a cancelled
//! task ends FAILED with a last error of class `taskhost::Cancelled`
//! ([`TaskResult::is_cancelled`]).

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::handler::{blocking, task_backends};
use crate::result::TaskResult;
use std::sync::Arc;
use taskhost_plugin_api::control::{
    self, CancelOutcome, CancelRequest, CancelResponse, RetryOutcome, RetryRequest, RetryResponse,
};

/// What [`TaskResult::cancel`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cancellation {
    /// The task was READY: it is FAILED now and will not run.
    Cancelled,
    /// The task is RUNNING: its worker tells it at its next heartbeat
    /// ([`crate::TaskContext::is_cancelled`]), and it ends FAILED, cancelled, when it returns
    /// (never retried).
    Requested,
}

impl Backend {
    /// Cancel the task of result `id`: a READY task is FAILED at once and never runs; a RUNNING
    /// one is asked to stop. Returns what was done and the result as stored after it. A finished
    /// task is [`Error::AlreadyFinished`]; an unknown id [`Error::TaskResultDoesNotExist`]; a
    /// backend without the operation [`Error::NotSupported`], naming it.
    pub fn cancel(&self, id: &str) -> Result<(Cancellation, TaskResult)> {
        let request = CancelRequest { id: id.to_string() };
        let response: CancelResponse = self
            .call_ext_json(control::CANCEL, &request)
            .map_err(|e| self.unsupported(e, "cancelling tasks", control::CANCEL))?;
        let result = TaskResult::from_data(response.result);
        match response.outcome {
            CancelOutcome::Cancelled => Ok((Cancellation::Cancelled, result)),
            CancelOutcome::Requested => Ok((Cancellation::Requested, result)),
            CancelOutcome::AlreadyFinished => Err(Error::AlreadyFinished {
                id: id.to_string(),
                alias: self.alias().to_string(),
                status: result.status(),
            }),
        }
    }

    /// Run the FAILED task of result `id` again: READY again, its errors and worker ids kept,
    /// the attempts made so far no longer counted against its `max_attempts`. Returns the
    /// result as stored after it. Any other status is [`Error::NotFailed`]; an unknown id
    /// [`Error::TaskResultDoesNotExist`]; a backend without the operation
    /// [`Error::NotSupported`], naming it.
    pub fn retry(&self, id: &str) -> Result<TaskResult> {
        let request = RetryRequest { id: id.to_string() };
        let response: RetryResponse = self
            .call_ext_json(control::RETRY, &request)
            .map_err(|e| self.unsupported(e, "retrying tasks", control::RETRY))?;
        let result = TaskResult::from_data(response.result);
        match response.outcome {
            RetryOutcome::Retried => Ok(result),
            RetryOutcome::NotFailed => Err(Error::NotFailed {
                id: id.to_string(),
                alias: self.alias().to_string(),
                status: result.status(),
            }),
        }
    }

    /// The async form of [`Backend::cancel`]; the plugin call runs on tokio's blocking pool.
    pub async fn acancel(self: &Arc<Self>, id: &str) -> Result<(Cancellation, TaskResult)> {
        let (backend, id) = (Arc::clone(self), id.to_string());
        blocking(move || backend.cancel(&id)).await
    }

    /// The async form of [`Backend::retry`]; the plugin call runs on tokio's blocking pool.
    pub async fn aretry(self: &Arc<Self>, id: &str) -> Result<TaskResult> {
        let (backend, id) = (Arc::clone(self), id.to_string());
        blocking(move || backend.retry(&id)).await
    }

    /// A "not supported" answer to `operation` as an error naming this backend.
    fn unsupported(&self, error: Error, doing: &str, operation: &str) -> Error {
        match error {
            Error::NotSupported(_) => Error::NotSupported(format!(
                "Backend '{}' ({}) does not support {doing} (operation '{operation}'); the \
                 database backend does.",
                self.alias(),
                self.backend_name()
            )),
            other => other,
        }
    }
}

impl<R> TaskResult<R> {
    /// Cancel this task ([`Backend::cancel`] on its backend) and refresh this result from the
    /// answer: after [`Cancellation::Cancelled`] it is FAILED and
    /// [`TaskResult::is_cancelled`]; after [`Cancellation::Requested`] it is still RUNNING.
    pub fn cancel(&mut self) -> Result<Cancellation> {
        let (cancellation, fresh) = task_backends().get(self.backend())?.cancel(self.id())?;
        self.copy_refreshed(fresh);
        Ok(cancellation)
    }

    /// The async form of [`TaskResult::cancel`].
    pub async fn acancel(&mut self) -> Result<Cancellation> {
        let backend = task_backends().get(self.backend())?;
        let (cancellation, fresh) = backend.acancel(self.id()).await?;
        self.copy_refreshed(fresh);
        Ok(cancellation)
    }

    /// Run this FAILED task again ([`Backend::retry`] on its backend) and refresh this result
    /// from the answer: READY, its errors and worker ids kept.
    pub fn retry(&mut self) -> Result<()> {
        let fresh = task_backends().get(self.backend())?.retry(self.id())?;
        self.copy_refreshed(fresh);
        Ok(())
    }

    /// The async form of [`TaskResult::retry`].
    pub async fn aretry(&mut self) -> Result<()> {
        let backend = task_backends().get(self.backend())?;
        let fresh = backend.aretry(self.id()).await?;
        self.copy_refreshed(fresh);
        Ok(())
    }
}
