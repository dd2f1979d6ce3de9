//! The Worker: claims tasks from a queue-store backend, runs them, and records how they ended.
//!
//! One loop for every backend that declares `supports_queue_store`, third-party ones too. Up to
//! `concurrency` tasks run at once (sync tasks on the worker's own threads, async tasks on the
//! runtime), and up to `prefetch` more claimed tasks wait for a slot in claim order (by
//! default as many as the tasks' measured run time calls for, see [`Prefetch::Auto`]); each
//! claimed task holds a lease renewed every third of its length. Claimed tasks waiting behind
//! one that has run far longer than the measured run time are handed back to the store (READY
//! again, for any worker) once the adaptive prefetch no longer keeps them. A task whose worker
//! died is rescued by the store once the lease expires, and a stale worker's late write is
//! fenced off by the lease token. A worker holds at most [`WorkerOptions::cap`] tasks whose result the
//! store has not acknowledged, and claims no more until acknowledgements come back. The first
//! SIGINT/SIGTERM stops claiming and starting, hands the waiting tasks back and lets running
//! tasks finish within the grace period; a second one (or the end of the grace period) hands
//! the unfinished tasks back to the store, READY again. A claim that fails is retried with
//! backoff while retrying may help; a broken store (or, under `--batch`, one failing for longer
//! than [`WorkerOptions::batch_give_up`]) stops the worker as a shutdown does, and
//! [`Worker::run`] returns the error.

mod completions;
mod execute;
mod leases;
mod local_queue;
pub mod options;
mod pace;
mod periodic;
mod retry;
mod shutdown;
mod store_failures;
mod sync_pool;
mod wait;

pub use options::{Prefetch, QueueSelection, WorkerOptions};
pub use retry::backoff;
pub use shutdown::Shutdown;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::handler::task_backends;
use crate::metrics::WorkerMetrics;
use crate::registry::check_state;
use crate::state::AppState;
use completions::Completions;
use execute::{Ended, Executor};
use leases::Leases;
use local_queue::{LocalQueue, Ticket};
use std::sync::Arc;
use store_failures::{Failures, Next};
use taskhost_plugin_api::ClaimRequest;
use tokio::task::JoinSet;

/// Why a worker stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitReason {
    /// `--batch`: nothing was left to run.
    Drained,
    /// `--max-tasks` were run.
    MaxTasks,
    /// A shutdown was requested and running tasks finished in time.
    Shutdown,
    /// A forced shutdown (second signal or grace period over): unfinished tasks were released.
    ForcedShutdown,
}

/// What a worker did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Tasks claimed.
    pub claimed: u64,
    /// Tasks that ended SUCCESSFUL.
    pub successful: u64,
    /// Tasks that ended FAILED.
    pub failed: u64,
    /// Failed attempts handed back for a retry.
    pub retried: u64,
    /// Tasks whose lease was lost before they finished (their result was discarded).
    pub lease_lost: u64,
    /// Tasks handed back unfinished at a forced shutdown.
    pub released: u64,
    /// Claimed tasks that waited for a slot and were handed back to the store while the
    /// worker ran (READY again for any worker, no attempt counted): the adaptive prefetch no
    /// longer kept them behind a long-running task. Counted in `claimed`, not run here.
    pub handed_back: u64,
    /// Why it stopped (`None` while running).
    pub exit: Option<ExitReason>,
}

/// A worker bound to one queue-store backend.
pub struct Worker {
    backend: Arc<Backend>,
    options: WorkerOptions,
    /// What the tasks' `State<T>` parameters are taken from.
    state: AppState,
    shutdown: Shutdown,
    /// Told the counts so far as they change (`worker --batch`'s progress bar).
    progress: Option<Progress>,
}

/// A callback given the worker's counts so far (see [`Worker::on_progress`]).
#[doc(hidden)]
pub type Progress = Box<dyn Fn(&WorkerReport) + Send + Sync>;

impl Worker {
    /// Validate `options`, take the application state of the handler in force
    /// ([`TaskBackends::set_state`](crate::TaskBackends::set_state)) — every registered task
    /// must find the types it takes as `State<T>` there, else [`Error::MissingState`] names each
    /// task and type — and resolve the backend: it must exist and be a queue store.
    pub fn new(options: WorkerOptions) -> Result<Self> {
        options.validate()?;
        let handler = task_backends();
        let state = handler.state();
        check_state(&state)?;
        let backend = handler.get(&options.backend)?;
        if !backend.supports_queue_store() {
            return Err(Error::config(
                None,
                None,
                format!(
                    "Backend '{}' is not a queue-store backend ({} cannot store tasks for workers)",
                    options.backend,
                    backend.backend_name()
                ),
            ));
        }
        periodic::check_schedules(&backend)?;
        Ok(Self {
            backend,
            options,
            state,
            shutdown: Shutdown::new(),
            progress: None,
        })
    }

    /// Call `progress` with the counts so far whenever they may have changed (a claim, a task
    /// ended): the CLI's progress bar (`worker --batch` in `taskhost-cli`). Not part of the
    /// stable API.
    #[doc(hidden)]
    pub fn on_progress(mut self, progress: Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    fn report_progress(&self, report: &WorkerReport) {
        if let Some(progress) = &self.progress {
            progress(report);
        }
    }

    /// This worker's id.
    pub fn worker_id(&self) -> &str {
        &self.options.worker_id
    }

    /// The handle that stops this worker (also driven by SIGINT/SIGTERM when
    /// [`Worker::run_until_signalled`] is used).
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Run until a shutdown, signal handlers installed for SIGINT and SIGTERM.
    pub async fn run_until_signalled(&self) -> Result<WorkerReport> {
        let listener = self.shutdown.listen_for_signals();
        let report = self.run().await;
        listener.abort();
        report
    }

    /// Run until `--batch` drains, `--max-tasks` is reached, or [`Worker::shutdown`] is asked.
    ///
    /// Fails with the store's [`Error::Backend`] when the store is broken (kind
    /// `ErrorKind::STORE_BROKEN`: retrying will not help), or when a `--batch` worker's claims
    /// kept failing for [`WorkerOptions::batch_give_up`]; the running tasks were let finish
    /// first, as at a shutdown.
    pub async fn run(&self) -> Result<WorkerReport> {
        let o = &self.options;
        tracing::info!(
            target: "taskhost",
            "Starting worker worker_id={} queues={:?} backend={} concurrency={}",
            o.worker_id, o.queues, o.backend, o.concurrency
        );
        if o.startup_delay && !o.interval.is_zero() {
            let delay = o.interval.mul_f64(fastrand::f64());
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.shutdown.graceful.cancelled() => {}
            }
        }
        // Periodic tasks: the schedules synced and the due ticks enqueued before the first
        // claim (a `--batch` worker runs them), then a timer to each next tick.
        let mut scheduling = match periodic::Scheduler::new(&self.backend, &o.worker_id) {
            Some(scheduler) => {
                let scheduler = Arc::new(scheduler);
                let synced = scheduler.start().await?;
                let stop = self.shutdown.graceful.child_token();
                Some(tokio::spawn(scheduler.run(synced, stop)))
            }
            None => None,
        };
        let (completions, flusher) =
            Completions::spawn(Arc::clone(&self.backend), o.worker_id.clone());
        let leases = Leases::new(Arc::clone(&self.backend), o.worker_id.clone(), o.lease);
        let executor = Executor {
            backend: Arc::clone(&self.backend),
            worker_id: o.worker_id.clone(),
            retry_backoff: o.retry_backoff,
            retry_backoff_max: o.retry_backoff_max,
            completions,
            leases: leases.clone(),
            sync_pool: Arc::new(sync_pool::SyncPool::new()),
            prefetching: o.prefetch.ceiling() > 0,
            state: self.state.clone(),
            metrics: Arc::new(WorkerMetrics::new(&o.backend)),
        };
        // One slot per task function running; an execution whose function has returned
        // gives its slot back while its result waits to be recorded. Claimed tasks wait in
        // the local queue, in claim order, for a slot.
        let local = LocalQueue::new(o.concurrency, o.prefetch, o.cap());
        let heartbeat = leases.spawn_heartbeat();
        let mut hand_back_timer = HandBackTimer::new();
        let mut report = WorkerReport::default();
        let mut running: JoinSet<Ended> = JoinSet::new();
        let mut can_wait = true;
        // The wait for new tasks in progress. It outlives a loop turn that ends for another
        // reason (a result recorded), so a notification it receives is never lost.
        let mut waiting: Option<tokio::task::JoinHandle<bool>> = None;
        // A shutdown, or a store failure the worker stops on: nothing more is claimed or started.
        let stopping = self.shutdown.graceful.child_token();
        let give_up = o.batch.then_some(o.batch_give_up);
        let mut failures = Failures::new(&o.backend, &o.worker_id, give_up);
        let mut failed: Option<Error> = None;
        let exit = loop {
            while let Some(done) = running.try_join_next() {
                tally(&mut report, done);
            }
            self.report_progress(&report);
            if stopping.is_cancelled() {
                break ExitReason::Shutdown;
            }
            let remaining = o
                .max_tasks
                .map(|m| m.saturating_sub(report.claimed - report.handed_back));
            if remaining == Some(0) {
                break ExitReason::MaxTasks;
            }
            let Some(room) = local.room() else {
                tokio::select! {
                    _ = local.changed() => {}
                    Some(done) = running.join_next() => tally(&mut report, done),
                    _ = hand_back_timer.fired(local.hand_back_at()) => {
                        self.hand_back(&local, &leases, &mut report).await
                    }
                    _ = stopping.cancelled() => {}
                }
                continue;
            };
            let limit = remaining
                .map_or(room as u64, |r| r.min(room as u64))
                .min(u64::from(u32::MAX)) as u32;
            let asked = std::time::Instant::now();
            let start_now = local.free_slots().min(limit as usize) as u32;
            let claimed = match self.claim(limit, start_now).await {
                Ok(claimed) => {
                    failures.succeeded();
                    local.claimed(asked.elapsed());
                    executor.metrics.claimed(&claimed);
                    claimed
                }
                Err(e) => match failures.failed(e, std::time::Instant::now()) {
                    Next::Retry(delay) => {
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = stopping.cancelled() => {}
                        }
                        continue;
                    }
                    Next::Stop(e) => {
                        failed = Some(e);
                        stopping.cancel();
                        break ExitReason::Shutdown;
                    }
                },
            };
            if claimed.is_empty() {
                if local.idle() {
                    tracing::debug!(target: "taskhost", "Worker {} is idle: no task ready", o.worker_id);
                }
                if o.batch && running.is_empty() {
                    break ExitReason::Drained;
                }
                if !o.batch && waiting.is_none() {
                    waiting = Some(self.spawn_wait(can_wait));
                }
                let wait = async {
                    match waiting.as_mut() {
                        Some(handle) => handle.await.unwrap_or(false),
                        None => std::future::pending().await,
                    }
                };
                let mut woke = None;
                tokio::select! {
                    Some(done) = running.join_next(), if !running.is_empty() => tally(&mut report, done),
                    notified = wait => woke = Some(notified),
                    _ = hand_back_timer.fired(local.hand_back_at()) => {
                        self.hand_back(&local, &leases, &mut report).await
                    }
                    _ = stopping.cancelled() => {}
                }
                if let Some(notified) = woke {
                    waiting = None;
                    can_wait = notified;
                }
                continue;
            }
            for task in claimed {
                report.claimed += 1;
                leases.hold(&task.result.id, task.lease_token);
                // A claim asks for at most the room; a backend that returns more still gets
                // every task run (they wait for slots) rather than any dropped.
                let (ticket, held) = local.ticket(&task.result.id);
                let (executor, leases) = (executor.clone(), leases.clone());
                let stopping = stopping.clone();
                running.spawn(async move {
                    // Let go (room for the next claim) when this ends: after the result's ack.
                    let _held = held;
                    // After a shutdown nothing starts (a slot received meanwhile is dropped,
                    // which passes it on); the task's lease stays held for `finish` to hand
                    // it back. A turn closed without a slot: the task was handed back (the
                    // loop releases its lease).
                    let slot = match ticket {
                        Ticket::Now(slot) => Some(slot),
                        Ticket::Queued(turn) => tokio::select! {
                            _ = stopping.cancelled() => None,
                            slot = turn => slot.ok(),
                        },
                    };
                    let Some(slot) = slot.filter(|_| !stopping.is_cancelled()) else {
                        return Ended::NotStarted;
                    };
                    let id = task.result.id.clone();
                    if task.report_start && !executor.report_start(&task).await {
                        // The store cannot be told: hand it back rather than run it unknown.
                        drop(slot);
                        leases.release(&[id.to_string()]).await;
                        return Ended::NotStarted;
                    }
                    let ended = executor.execute(task, slot).await;
                    leases.drop_lease(&id);
                    ended
                });
            }
        };
        if let Some(handle) = waiting.take() {
            handle.abort();
        }
        if let Some(handle) = scheduling.take() {
            handle.abort();
        }
        let exit = self.finish(exit, &mut running, &mut report, &leases).await;
        // The executions held the last senders: the flusher records what is queued and ends.
        drop(executor);
        let _ = flusher.await;
        heartbeat.abort();
        report.exit = Some(exit);
        let id = &o.worker_id;
        if let Some(e) = failed {
            tracing::warn!(target: "taskhost", "Worker {id} stopped on a store failure after {} claimed, {} successful, {} failed, {} retried, {} lease lost, {} released: {e}", report.claimed, report.successful, report.failed, report.retried, report.lease_lost, report.released);
            return Err(e);
        }
        match exit {
            ExitReason::Drained => {
                tracing::info!(target: "taskhost", "No more tasks to run for worker_id={id} - exiting gracefully.")
            }
            ExitReason::MaxTasks => {
                tracing::info!(target: "taskhost", "Run maximum tasks ({}) on worker={id} - exiting gracefully.", report.claimed)
            }
            ExitReason::Shutdown => {
                tracing::info!(target: "taskhost", "Worker {id} stopped gracefully.")
            }
            ExitReason::ForcedShutdown => {
                tracing::warn!(target: "taskhost", "Worker {id} was stopped; {} unfinished task(s) released.", report.released)
            }
        }
        Ok(report)
    }

    /// Hand the waiting tasks the adaptive prefetch no longer keeps back to the store (their
    /// time is [`LocalQueue::hand_back_at`], the loop's [`HandBackTimer`]).
    async fn hand_back(&self, local: &LocalQueue, leases: &Leases, report: &mut WorkerReport) {
        let ids = local.hand_back();
        if ids.is_empty() {
            return;
        }
        let released = leases.release(&ids).await;
        report.handed_back += ids.len() as u64;
        tracing::debug!(
            target: "taskhost",
            "Worker {} handed back {} waiting task(s) behind a long-running one ({released} released)",
            self.options.worker_id,
            ids.len()
        );
    }

    /// Let running tasks finish — within the grace period when shutting down — or release them.
    async fn finish(
        &self,
        exit: ExitReason,
        running: &mut JoinSet<Ended>,
        report: &mut WorkerReport,
        leases: &Leases,
    ) -> ExitReason {
        let drain = async {
            while let Some(done) = running.join_next().await {
                tally(report, done);
                self.report_progress(report);
            }
        };
        let grace = async {
            if exit == ExitReason::Shutdown {
                tokio::time::sleep(self.options.grace_period).await
            } else {
                std::future::pending::<()>().await
            }
        };
        let forced = tokio::select! {
            _ = drain => false,
            _ = grace => true,
            _ = self.shutdown.force.cancelled() => true,
        };
        if !forced {
            // What is still held was claimed and never started (the shutdown came while it
            // waited for a slot): hand it back now.
            report.released += leases.release_all().await;
            return exit;
        }
        running.abort_all();
        report.released += leases.release_all().await;
        ExitReason::ForcedShutdown
    }

    /// Claim up to `limit` tasks, the first `start_now` of which start at once (the store
    /// counts a rescue only for a task whose start it knows of: decision 017).
    async fn claim(
        &self,
        limit: u32,
        start_now: u32,
    ) -> Result<Vec<taskhost_plugin_api::ClaimedTask>> {
        let (queues, exclude_queues) = match &self.options.queues {
            QueueSelection::Named(named) => (Some(named.clone()), Vec::new()),
            QueueSelection::All { exclude } => (None, exclude.clone()),
        };
        let request = ClaimRequest {
            worker_id: self.options.worker_id.clone(),
            queues,
            exclude_queues,
            limit,
            lease_secs: self.options.lease.as_secs_f64(),
            start_now: Some(start_now),
        };
        let backend = Arc::clone(&self.backend);
        tokio::task::spawn_blocking(move || backend.claim(&request))
            .await
            .map_err(|e| Error::Backend {
                alias: self.options.backend.clone(),
                kind: taskhost_plugin_api::ErrorKind::OTHER,
                message: format!("the claim did not finish: {e}"),
            })?
    }

    /// Start waiting for new tasks (see [`wait::wait_for_tasks`]).
    fn spawn_wait(&self, try_notify: bool) -> tokio::task::JoinHandle<bool> {
        let queues = match &self.options.queues {
            QueueSelection::Named(named) => Some(named.clone()),
            QueueSelection::All { .. } => None,
        };
        tokio::spawn(wait::wait_for_tasks(
            Arc::clone(&self.backend),
            queues,
            self.options.interval,
            try_notify,
        ))
    }
}

/// The loop's wake-up for the next hand-back ([`LocalQueue::hand_back_at`]). One timer, set
/// again only when the next hand-back is due before it would fire: a timer that fires early
/// costs one turn of the loop, while setting it on every wait (each finished task moves the
/// time on) would cost a timer registration per task.
struct HandBackTimer {
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    /// When it fires, while it is set.
    set: Option<std::time::Instant>,
}

impl HandBackTimer {
    fn new() -> Self {
        Self {
            sleep: Box::pin(tokio::time::sleep(std::time::Duration::ZERO)),
            set: None,
        }
    }

    /// Wait until the timer fires, first set for `due` if that is earlier; never when it is
    /// not set.
    async fn fired(&mut self, due: Option<std::time::Instant>) {
        if let Some(due) = due.filter(|due| self.set.is_none_or(|set| *due < set)) {
            self.sleep.as_mut().reset(due.into());
            self.set = Some(due);
        }
        if self.set.is_none() {
            return std::future::pending().await;
        }
        self.sleep.as_mut().await;
        self.set = None;
    }
}

fn tally(report: &mut WorkerReport, done: std::result::Result<Ended, tokio::task::JoinError>) {
    match done {
        Ok(Ended::Successful) => report.successful += 1,
        Ok(Ended::Failed) => report.failed += 1,
        Ok(Ended::Retrying) => report.retried += 1,
        Ok(Ended::LeaseLost) => report.lease_lost += 1,
        // Still held, `finish` hands it back and counts it as released; or handed back
        // already, and counted then.
        Ok(Ended::NotStarted) => {}
        Err(_) => {}
    }
}
