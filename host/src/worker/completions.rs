//! The completion buffer: executions hand their completion to one flusher, which records
//! everything waiting in one `complete` call (one write transaction) and answers each
//! execution with its own acknowledgement.
//!
//! There is no timer: the first completion is flushed at once, and those that arrive while a
//! flush is under way wait for the next one. An idle worker therefore records a result without
//! delay, and a busy one writes many per transaction, as many as finished during the previous
//! write (at most [`MAX_BATCH`]).

use crate::backend::Backend;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use taskhost_plugin_api::Completion;
use tokio::sync::{mpsc, oneshot};

/// The most completions one `complete` call carries.
pub(crate) const MAX_BATCH: usize = 512;

/// How many times a failing flush is tried before its completions are given up on (their
/// leases then expire and the tasks are rescued and run again: at-least-once). A broken store
/// (`ErrorKind::STORE_BROKEN`) is not tried again.
const TRIES: usize = 10;

/// One completion waiting to be recorded, with where to send whether it was applied.
struct Pending {
    completion: Completion,
    applied: oneshot::Sender<bool>,
}

/// The sending side, cloned into every execution.
#[derive(Clone)]
pub(crate) struct Completions {
    queue: mpsc::UnboundedSender<Pending>,
}

impl Completions {
    /// Start the flusher. It stops once every [`Completions`] is dropped and the queue is
    /// flushed; await the handle to know the last results are recorded.
    pub fn spawn(backend: Arc<Backend>, worker_id: String) -> (Self, tokio::task::JoinHandle<()>) {
        let (queue, received) = mpsc::unbounded_channel();
        let flusher = tokio::spawn(flush_loop(backend, worker_id, received));
        (Self { queue }, flusher)
    }

    /// Record `completion`; true when it was applied, false when the lease was lost or the
    /// store could not be written (the task is then rescued when its lease expires).
    pub async fn record(&self, completion: Completion) -> bool {
        let (applied, answer) = oneshot::channel();
        if self
            .queue
            .send(Pending {
                completion,
                applied,
            })
            .is_err()
        {
            return false;
        }
        answer.await.unwrap_or(false)
    }
}

async fn flush_loop(
    backend: Arc<Backend>,
    worker_id: String,
    mut received: mpsc::UnboundedReceiver<Pending>,
) {
    let mut batch = Vec::new();
    while received.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let applied = flush(&backend, &worker_id, &batch).await;
        for pending in batch.drain(..) {
            let ok = applied
                .get(&pending.completion.id)
                .copied()
                .unwrap_or(false);
            // The execution may have been aborted (forced shutdown): nobody to tell.
            let _ = pending.applied.send(ok);
        }
    }
}

/// Write one batch, retrying with backoff while the store fails; returns each id's ack.
async fn flush(
    backend: &Arc<Backend>,
    worker_id: &str,
    batch: &[Pending],
) -> HashMap<String, bool> {
    let mut delay = Duration::from_millis(50);
    // Whether an earlier try failed: its write may have been applied with only the reply lost.
    let mut unconfirmed = false;
    for _ in 0..TRIES {
        // Each try hands the plugin its own copy: a failed try's may have been consumed.
        let sent: Vec<Completion> = batch.iter().map(|p| p.completion.clone()).collect();
        let backend = Arc::clone(backend);
        match tokio::task::spawn_blocking(move || backend.complete(sent)).await {
            Ok(Ok(acks)) => {
                let acks: HashMap<String, bool> =
                    acks.into_iter().map(|a| (a.id, a.applied)).collect();
                for c in batch.iter().map(|p| &p.completion) {
                    if acks.get(&c.id).copied().unwrap_or(false) {
                        continue;
                    }
                    if unconfirmed {
                        tracing::warn!(
                            target: "taskhost",
                            "Task id={}: worker '{worker_id}' retried recording its result and the store refused it: an earlier try whose reply was lost was applied, or the lease was lost meanwhile",
                            c.id
                        );
                    } else {
                        tracing::warn!(
                            target: "taskhost",
                            "Task id={}: worker '{worker_id}' lost its lease before finishing; its result was discarded",
                            c.id
                        );
                    }
                }
                return acks;
            }
            Ok(Err(e)) if super::store_failures::is_permanent(&e) => {
                // Retrying will not help: the tasks are rescued when their leases expire, if
                // the store is ever repaired.
                tracing::error!(target: "taskhost", "recording {} result(s) failed, and the store is broken: {e}", batch.len());
                return HashMap::new();
            }
            Ok(Err(e)) => {
                unconfirmed = true;
                tracing::error!(target: "taskhost", "recording {} result(s) failed, retrying in {delay:?}: {e}", batch.len());
            }
            Err(e) => {
                tracing::error!(target: "taskhost", "recording {} result(s) failed: {e}", batch.len());
                return HashMap::new();
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    HashMap::new()
}
