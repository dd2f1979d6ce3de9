//! Job control, for a backend that offers it (`taskhost.cancel`, `taskhost.retry`,
//! `taskhost.renew_leases`; `taskhost_plugin_api::control`): a READY task cancelled is FAILED,
//! cancelled, and never claimed; a RUNNING one is reported at renewal and never READY again; a
//! FAILED one retried is READY with its history. A backend that answers "not supported" is
//! skipped.

use crate::context::{describe, Check, Ctx, Verdict};
use crate::queue_store::{claim, claim_one, complete, worker};
use crate::{pass, skip};
use taskhost::{Cancellation, Error};
use taskhost_plugin_api::control::{self, LeaseRenewal};
use taskhost_plugin_api::{Completion, LeaseRequest, TaskError, TaskOutcome, TaskResultStatus};

pub(crate) const CHECKS: &[Check] = &[
    Check {
        name: "cancel_ready",
        run: cancel_ready,
    },
    Check {
        name: "cancel_running",
        run: cancel_running,
    },
    Check {
        name: "retry_failed",
        run: retry_failed,
    },
];

/// A READY task cancelled is FAILED with a `taskhost::Cancelled` error, never claimed, and a
/// second cancel is `AlreadyFinished`.
fn cancel_ready(ctx: &Ctx) -> Verdict {
    let task = ctx.task("cancel_ready");
    let result = ctx.enqueue(&task, Vec::new(), Default::default())?;
    let id = result.id();
    let cancelled = match ctx.backend.cancel(id) {
        Err(Error::NotSupported(_)) => return skip("backend does not offer taskhost.cancel"),
        // A backend that runs tasks at enqueue has nothing READY to cancel.
        Err(Error::AlreadyFinished { .. }) if result.is_finished() => return pass(),
        other => other.map_err(|e| describe(&format!("cancel('{id}')"), &e))?,
    };
    ensure!(
        cancelled.0 == Cancellation::Cancelled,
        "cancel of the READY task {id} answered {:?} (expected Cancelled)",
        cancelled.0
    );
    if let Some(stored) = ctx.fetch(id)? {
        ensure!(
            stored.is_cancelled(),
            "the cancelled READY task {id} is stored {} with errors {:?} (expected FAILED, its \
             last error '{}')",
            stored.status(),
            stored.errors(),
            control::CANCELLED
        );
    }
    if ctx.backend.supports_queue_store() {
        let claimed = claim(ctx, &worker(ctx, "cancel"), &task.queue_name, 5, 60.0)?;
        ensure!(
            claimed.is_empty(),
            "the cancelled task {id} was claimed afterwards"
        );
    }
    match ctx.backend.cancel(id) {
        Err(Error::AlreadyFinished { .. }) => pass(),
        other => Err(format!(
            "a second cancel of task {id} answered {other:?} (expected AlreadyFinished)"
        )),
    }
}

/// A RUNNING task cancelled is `Requested`, reported by `taskhost.renew_leases`, and a failure
/// its worker would retry ends it FAILED, cancelled.
fn cancel_running(ctx: &Ctx) -> Verdict {
    if !ctx.backend.supports_queue_store() {
        return skip("backend does not declare supports_queue_store");
    }
    let w = worker(ctx, "cancel_running");
    let c = claim_one(ctx, "cancel_running", &w)?;
    let id = c.result.id.to_string();
    match ctx.backend.cancel(&id) {
        Err(Error::NotSupported(_)) => return skip("backend does not offer taskhost.cancel"),
        Ok((Cancellation::Requested, _)) => {}
        other => {
            return Err(format!(
                "cancel of the RUNNING task {id} answered {other:?} (expected Requested)"
            ))
        }
    }
    let request = LeaseRequest {
        worker_id: w.clone(),
        leases: vec![(id.clone(), c.lease_token)],
        lease_secs: 60.0,
    };
    let renewal: LeaseRenewal = ctx
        .backend
        .call_ext_json(control::RENEW_LEASES, &request)
        .map_err(|e| {
            describe(
                "taskhost.renew_leases (a backend that offers taskhost.cancel must tell \
                 workers)",
                &e,
            )
        })?;
    ensure!(
        renewal.cancel_requested == [id.clone()] && renewal.lost.is_empty(),
        "the renewal of the cancelled task {id} answered {renewal:?} (expected it among \
         cancel_requested, no lease lost)"
    );
    let failure = Completion {
        id: id.clone(),
        worker_id: w,
        lease_token: c.lease_token,
        outcome: TaskOutcome::Failed {
            error: TaskError {
                exception_class_path: "conformance::Failure".into(),
                traceback: "conformance::Failure: on purpose\n".into(),
            },
        },
        retry_at: Some(chrono::Utc::now()),
        started_at: None,
    };
    ensure!(
        complete(ctx, failure)?,
        "the completion of the cancelled task {id} was not applied"
    );
    if let Some(stored) = ctx.fetch(&id)? {
        ensure!(
            stored.is_cancelled(),
            "a failure of the cancelled task {id} that would be retried left it {} with errors \
             {:?} (expected FAILED, cancelled: never READY again)",
            stored.status(),
            stored.errors()
        );
    }
    pass()
}

/// A FAILED task retried is READY again with its errors kept; retrying it again is
/// `NotFailed`.
fn retry_failed(ctx: &Ctx) -> Verdict {
    let id = if ctx.backend.supports_queue_store() {
        let w = worker(ctx, "retry");
        let c = claim_one(ctx, "retry", &w)?;
        let failure = Completion {
            id: c.result.id.to_string(),
            worker_id: w,
            lease_token: c.lease_token,
            outcome: TaskOutcome::Failed {
                error: TaskError {
                    exception_class_path: "conformance::Failure".into(),
                    traceback: "conformance::Failure: on purpose\n".into(),
                },
            },
            retry_at: None,
            started_at: None,
        };
        complete(ctx, failure)?;
        c.result.id.to_string()
    } else {
        // A FAILED result made by a cancel, where the backend offers it.
        let result = ctx.enqueue(&ctx.task("retry"), Vec::new(), Default::default())?;
        match ctx.backend.cancel(result.id()) {
            Ok(_) => result.id().to_string(),
            Err(_) => return skip("no FAILED result can be made on this backend"),
        }
    };
    let retried = match ctx.backend.retry(&id) {
        Err(Error::NotSupported(_)) => return skip("backend does not offer taskhost.retry"),
        other => other.map_err(|e| describe(&format!("retry('{id}')"), &e))?,
    };
    ensure!(
        retried.status() == TaskResultStatus::Ready && !retried.errors().is_empty(),
        "retry of the FAILED task {id} answered it {} with errors {:?} (expected READY, its \
         errors kept)",
        retried.status(),
        retried.errors()
    );
    match ctx.backend.retry(&id) {
        Err(Error::NotFailed { .. }) => pass(),
        other => Err(format!(
            "a second retry of task {id} answered {other:?} (expected NotFailed)"
        )),
    }
}
