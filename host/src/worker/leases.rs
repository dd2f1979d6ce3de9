//! The leases a worker holds on running tasks: renewed by a heartbeat, released at a forced
//! shutdown (and, for waiting tasks the adaptive prefetch no longer keeps, while running). The
//! heartbeat's renewal also says which held tasks were asked to stop (`taskhost.renew_leases`,
//! when the backend offers it): their cancellation tokens are cancelled, which their contexts
//! and executions watch.

use crate::backend::Backend;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use taskhost_plugin_api::control::{self, LeaseRenewal};
use taskhost_plugin_api::{ErrorKind, LeaseRequest};
use tokio_util::sync::CancellationToken;

/// The held tasks' `(id → lease)`, shared by the loop, the executions and the heartbeat.
#[derive(Clone)]
pub(crate) struct Leases {
    held: Arc<Mutex<HashMap<String, Lease>>>,
    backend: Arc<Backend>,
    worker_id: String,
    length: Duration,
    /// Whether the backend answered `taskhost.renew_leases` "not supported": renewals then go
    /// through plain `renew_leases`, and no cancellation reaches this worker's tasks.
    no_cancellations: Arc<AtomicBool>,
}

/// One held task's lease.
#[derive(Clone)]
struct Lease {
    token: i64,
    /// Its result was handed to the completion buffer: the store's answer to that write, not
    /// a renewal, says whether the lease was lost.
    completing: bool,
    /// Cancelled when a renewal says the task was asked to stop.
    cancellation: CancellationToken,
}

impl Leases {
    pub fn new(backend: Arc<Backend>, worker_id: String, length: Duration) -> Self {
        Self {
            held: Arc::default(),
            backend,
            worker_id,
            length,
            no_cancellations: Arc::default(),
        }
    }

    pub fn hold(&self, id: &str, token: i64) {
        let lease = Lease {
            token,
            completing: false,
            cancellation: CancellationToken::new(),
        };
        self.held.lock().insert(id.to_string(), lease);
    }

    /// The token cancelled when the held task `id` is asked to stop (a token nobody cancels
    /// when `id` is not held).
    pub fn cancellation(&self, id: &str) -> CancellationToken {
        self.held
            .lock()
            .get(id)
            .map(|l| l.cancellation.clone())
            .unwrap_or_default()
    }

    /// Tell the held tasks `ids` (renewed under the tokens in `sent`) that they were asked to
    /// stop.
    fn cancel(&self, ids: Vec<String>, sent: &HashMap<String, i64>) {
        let held = self.held.lock();
        for id in ids {
            let Some(lease) = held
                .get(&id)
                .filter(|l| Some(l.token) == sent.get(&id).copied())
            else {
                continue;
            };
            if !lease.cancellation.is_cancelled() {
                tracing::info!(
                    target: "taskhost",
                    "Task id={}: cancelled while running on worker '{}'; the task is told through \
                     its context",
                    crate::validation::escape_for_display(&id),
                    self.worker_id
                );
                lease.cancellation.cancel();
            }
        }
    }

    /// Renew `request`'s leases: the ids whose lease was lost and those asked to stop, through
    /// `taskhost.renew_leases` while the backend offers it (the same round trip), else plain
    /// `renew_leases` — for good after a "not supported", for this heartbeat after any other
    /// error (a plugin may answer an unknown operation with another error: its leases must
    /// still be renewed).
    fn renew(&self, request: &LeaseRequest) -> crate::Result<LeaseRenewal> {
        if !self.no_cancellations.load(Ordering::Relaxed) {
            match self
                .backend
                .call_ext_json::<_, LeaseRenewal>(control::RENEW_LEASES, request)
            {
                Ok(renewal) => return Ok(renewal),
                Err(crate::Error::NotSupported(_)) => {
                    tracing::debug!(
                        target: "taskhost",
                        "backend '{}' does not offer '{}': running tasks cannot be cancelled",
                        self.backend.alias(),
                        control::RENEW_LEASES
                    );
                    self.no_cancellations.store(true, Ordering::Relaxed);
                }
                // The store is down or broken: the plain renewal would fail the same way.
                Err(e @ crate::Error::Backend { kind, .. })
                    if kind == ErrorKind::UNAVAILABLE || kind == ErrorKind::STORE_BROKEN =>
                {
                    return Err(e)
                }
                Err(e) => tracing::debug!(
                    target: "taskhost",
                    "'{}' failed ({e}); renewing through renew_leases",
                    control::RENEW_LEASES
                ),
            }
        }
        Ok(LeaseRenewal {
            lost: self.backend.renew_leases(request)?,
            cancel_requested: Vec::new(),
        })
    }

    /// `id`'s result is about to be written. Its lease is still renewed until the write is
    /// acknowledged, but a renewal that finds the task no longer RUNNING is not reported as a
    /// lost lease: that write most likely finished it (the write's own answer reports a loss).
    pub fn completing(&self, id: &str) {
        if let Some(lease) = self.held.lock().get_mut(id) {
            lease.completing = true;
        }
    }

    pub fn drop_lease(&self, id: &str) {
        self.held.lock().remove(id);
    }

    /// Stop holding `id` if it is still held under `token` and its result is not being
    /// written; returns whether it was.
    fn drop_if_held(&self, id: &str, token: Option<i64>) -> bool {
        let mut held = self.held.lock();
        let still = token.is_some()
            && held
                .get(id)
                .is_some_and(|l| !l.completing && Some(l.token) == token);
        if still {
            held.remove(id);
        }
        still
    }

    fn request(&self) -> LeaseRequest {
        LeaseRequest {
            worker_id: self.worker_id.clone(),
            leases: self
                .held
                .lock()
                .iter()
                .map(|(id, l)| (id.clone(), l.token))
                .collect(),
            lease_secs: self.length.as_secs_f64(),
        }
    }

    /// Renew every held lease each third of the lease length, until aborted.
    pub fn spawn_heartbeat(&self) -> tokio::task::JoinHandle<()> {
        let leases = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(leases.length / 3);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let request = leases.request();
                if request.leases.is_empty() {
                    continue;
                }
                let sent: HashMap<String, i64> = request.leases.iter().cloned().collect();
                let renewing = leases.clone();
                match tokio::task::spawn_blocking(move || renewing.renew(&request)).await {
                    Ok(Ok(LeaseRenewal {
                        lost,
                        cancel_requested,
                    })) => {
                        leases.cancel(cancel_requested, &sent);
                        for id in lost {
                            // A task that finished while the renewal ran is no longer held (or
                            // is held again under a new token, or its result is being
                            // written): it was not lost, or the write will say so.
                            if !leases.drop_if_held(&id, sent.get(&id).copied()) {
                                continue;
                            }
                            tracing::warn!(
                                target: "taskhost",
                                "Task id={id}: worker '{}' lost its lease (the task was rescued by the store)",
                                leases.worker_id
                            );
                        }
                    }
                    Ok(Err(e)) => {
                        tracing::error!(target: "taskhost", "renewing leases failed: {e}")
                    }
                    Err(_) => return,
                }
            }
        })
    }

    /// Hand every held task back to the store (READY again). Returns how many were released.
    pub async fn release_all(&self) -> u64 {
        let leases: Vec<(String, i64)> = self
            .held
            .lock()
            .drain()
            .map(|(id, l)| (id, l.token))
            .collect();
        self.release_leases(leases).await
    }

    /// Hand the tasks `ids` back to the store (READY again, no attempt counted), those still
    /// held: they are no longer renewed from now on. Returns how many were released.
    pub async fn release(&self, ids: &[String]) -> u64 {
        let leases: Vec<(String, i64)> = {
            let mut held = self.held.lock();
            ids.iter()
                .filter_map(|id| held.remove_entry(id.as_str()))
                .map(|(id, l)| (id, l.token))
                .collect()
        };
        self.release_leases(leases).await
    }

    async fn release_leases(&self, leases: Vec<(String, i64)>) -> u64 {
        if leases.is_empty() {
            return 0;
        }
        let request = LeaseRequest {
            worker_id: self.worker_id.clone(),
            leases,
            lease_secs: self.length.as_secs_f64(),
        };
        let backend = Arc::clone(&self.backend);
        match tokio::task::spawn_blocking(move || backend.release(&request)).await {
            Ok(Ok(count)) => count,
            Ok(Err(e)) => {
                tracing::error!(target: "taskhost", "releasing unfinished tasks failed (they are rescued when their lease expires): {e}");
                0
            }
            Err(_) => 0,
        }
    }
}
