//! Waiting for new tasks when a claim found none.

use crate::backend::Backend;
use crate::error::Error;
use std::sync::Arc;
use std::time::Duration;
use taskhost_plugin_api::WaitRequest;

/// Wait for new tasks: the backend's notification when it has one, else the interval.
/// Returns whether the backend can notify (so the next wait knows).
pub(crate) async fn wait_for_tasks(
    backend: Arc<Backend>,
    queues: Option<Vec<String>>,
    interval: Duration,
    try_notify: bool,
) -> bool {
    if try_notify {
        let request = WaitRequest {
            queues,
            timeout_secs: interval.as_secs_f64(),
        };
        let waited = tokio::task::spawn_blocking(move || backend.wait_for_tasks(&request)).await;
        match waited {
            Ok(Ok(_)) => return true,
            Ok(Err(Error::NotSupported(_))) => {}
            Ok(Err(e)) => {
                tracing::warn!(target: "taskhost", "waiting for tasks failed: {e}");
                tokio::time::sleep(interval).await;
                return true;
            }
            Err(_) => {}
        }
    }
    tokio::time::sleep(interval).await;
    false
}
