//! `taskhost.wait_finished`: the operation ([`crate::Backend::call_ext`]) that blocks until
//! results are finished, woken by the backend's store rather than by polling
//! (`docs/decisions/023-waiting-for-results.md`).
//!
//! A backend that does not answer it ("not supported", as a 2.0 plugin does) is waited on by
//! the host with `get_result` at a growing interval instead.

use serde::{Deserialize, Serialize};

/// The operation's name, for [`crate::Backend::call_ext`].
pub const WAIT_FINISHED: &str = "taskhost.wait_finished";

/// The longest one [`WAIT_FINISHED`] call blocks, whatever it asks for: a longer wait is made
/// of several calls.
pub const MAX_WAIT_FINISHED_SECS: f64 = 3600.0;

/// The request of [`WAIT_FINISHED`]: block until every result of `ids` is finished (FAILED or
/// SUCCESSFUL), or `timeout_secs` pass.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WaitFinishedRequest {
    /// The result ids waited for (at least one).
    pub ids: Vec<String>,
    /// How long to wait at most, in seconds (finite, 0 or more; 0 only checks).
    pub timeout_secs: f64,
}

/// The answer of [`WAIT_FINISHED`]. An id the backend does not know is not answered here: the
/// call fails with [`crate::ErrorKind::RESULT_DOES_NOT_EXIST`], naming it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct WaitFinishedResponse {
    /// The ids that were finished when the call returned.
    pub finished: Vec<String>,
    /// The ids that were not (empty unless the timeout passed).
    pub pending: Vec<String>,
    /// How many times the backend read the results from its store during the call (the first
    /// read, then one per wake-up that concerned them): for diagnostics, and the tests that
    /// show a wait does not poll.
    #[serde(default)]
    pub checks: u64,
}

impl WaitFinishedRequest {
    /// Check the request: ids given, a finite timeout of 0 or more. Returns the timeout,
    /// capped at [`MAX_WAIT_FINISHED_SECS`].
    pub fn checked_timeout(&self) -> Result<std::time::Duration, crate::PluginError> {
        if self.ids.is_empty() {
            return Err(crate::PluginError::invalid_request(format!(
                "{WAIT_FINISHED} needs at least one result id in `ids`"
            )));
        }
        if !(self.timeout_secs.is_finite() && self.timeout_secs >= 0.0) {
            return Err(crate::PluginError::invalid_request(format!(
                "{WAIT_FINISHED} needs a timeout of zero or more seconds, got {}",
                self.timeout_secs
            )));
        }
        Ok(std::time::Duration::from_secs_f64(
            self.timeout_secs.min(MAX_WAIT_FINISHED_SECS),
        ))
    }
}
