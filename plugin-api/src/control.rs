//! Job control: cancelling a task and retrying a failed one, and the lease renewal that tells a
//! worker which of its running tasks were asked to stop.
//!
//! These operations travel through [`crate::Backend::call_ext`] (the boundary is frozen within
//! 2.x: `docs/decisions/012-plugin-sdk-2.md`), named [`CANCEL`], [`RETRY`] and
//! [`RENEW_LEASES`], each with a JSON request and response of the types below. A backend that
//! offers them matches the names in its `call_ext`; one that does not answers "not supported"
//! (the trait's default), which the host reports as a typed error naming the backend.
//!
//! A cancelled task has no status of its own — [`crate::TaskResultStatus`] is Django's four
//! and frozen — so it ends FAILED with a last error of class [`CANCELLED`]
//! (`docs/decisions/018-cancel-and-retry.md`).

use crate::{LeaseRequest, TaskError, TaskResultData};
use serde::{Deserialize, Serialize};

/// Operation: cancel a task. Request [`CancelRequest`], response [`CancelResponse`]. A READY
/// task is FAILED at once with [`cancellation_error`] (and never claimed after); a RUNNING one
/// is marked, and its worker is told at its next heartbeat ([`RENEW_LEASES`]); a finished one
/// is left as it is ([`CancelOutcome::AlreadyFinished`]). An unknown id is
/// [`crate::ErrorKind::RESULT_DOES_NOT_EXIST`].
pub const CANCEL: &str = "taskhost.cancel";

/// Operation: run a FAILED task again. Request [`RetryRequest`], response [`RetryResponse`]:
/// the task is READY again, its errors and worker ids kept; anything but FAILED is left as it
/// is ([`RetryOutcome::NotFailed`]). An unknown id is
/// [`crate::ErrorKind::RESULT_DOES_NOT_EXIST`].
pub const RETRY: &str = "taskhost.retry";

/// Operation: [`crate::Backend::renew_leases`], answering also which of the renewed tasks were
/// asked to stop. Request [`LeaseRequest`], response [`LeaseRenewal`]. A worker calls it
/// instead of `renew_leases` when the backend offers it: the same round trip.
pub const RENEW_LEASES: &str = "taskhost.renew_leases";

/// The exception class path of the error a cancelled task ends with.
pub const CANCELLED: &str = "taskhost::Cancelled";

/// The request of [`CANCEL`].
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
pub struct CancelRequest {
    /// The result id.
    pub id: String,
}

/// What [`CANCEL`] did.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub enum CancelOutcome {
    /// The task was READY: it is FAILED now, with [`cancellation_error`] last.
    Cancelled,
    /// The task is RUNNING: its worker is told at its next heartbeat, and the task ends FAILED
    /// with [`cancellation_error`] when it returns (never retried).
    Requested,
    /// The task had already finished (FAILED or SUCCESSFUL): nothing changed.
    AlreadyFinished,
}

/// The response of [`CANCEL`].
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct CancelResponse {
    /// What was done.
    pub outcome: CancelOutcome,
    /// The result as stored after it.
    pub result: TaskResultData,
}

/// The request of [`RETRY`].
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
pub struct RetryRequest {
    /// The result id.
    pub id: String,
}

/// What [`RETRY`] did.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub enum RetryOutcome {
    /// The task was FAILED: it is READY again.
    Retried,
    /// The task was not FAILED: nothing changed.
    NotFailed,
}

/// The response of [`RETRY`].
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct RetryResponse {
    /// What was done.
    pub outcome: RetryOutcome,
    /// The result as stored after it.
    pub result: TaskResultData,
}

/// The response of [`RENEW_LEASES`].
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug, Default)]
pub struct LeaseRenewal {
    /// The ids whose lease was lost (what `renew_leases` returns).
    pub lost: Vec<String>,
    /// The ids, among those renewed, that were asked to stop ([`CANCEL`]).
    #[serde(default)]
    pub cancel_requested: Vec<String>,
}

/// The request of [`RENEW_LEASES`] is a [`LeaseRequest`].
pub type RenewLeasesRequest = LeaseRequest;

/// The error a cancelled task ends with: class [`CANCELLED`], `detail` saying how.
pub fn cancellation_error(detail: &str) -> TaskError {
    TaskError {
        exception_class_path: CANCELLED.into(),
        traceback: format!("{CANCELLED}: {detail}\n").into(),
    }
}

/// Whether a result's errors end with a cancellation (its last error is [`CANCELLED`]).
pub fn is_cancellation(errors: &[TaskError]) -> bool {
    errors
        .last()
        .is_some_and(|e| e.exception_class_path.as_str() == CANCELLED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancellation_error_is_recognised_as_the_last_error() {
        let error = cancellation_error("cancelled while READY");
        assert_eq!(
            error.traceback.as_str(),
            "taskhost::Cancelled: cancelled while READY\n"
        );
        let other = TaskError {
            exception_class_path: "app::Oops".into(),
            traceback: "app::Oops: no\n".into(),
        };
        assert!(is_cancellation(&[other.clone(), error.clone()]));
        assert!(!is_cancellation(&[error, other]));
        assert!(!is_cancellation(&[]));
    }

    #[test]
    fn outcomes_are_snake_case_and_renewals_default_to_no_cancellation() {
        assert_eq!(
            serde_json::to_string(&CancelOutcome::AlreadyFinished).unwrap(),
            "\"already_finished\""
        );
        let renewal: LeaseRenewal = serde_json::from_str(r#"{"lost":["a"]}"#).unwrap();
        assert_eq!(renewal.lost, ["a"]);
        assert!(renewal.cancel_requested.is_empty());
    }
}
