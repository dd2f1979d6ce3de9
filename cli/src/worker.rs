//! `worker`: run a worker in this process (mount the CLI in the binary that has the tasks).

use clap::Args;
use indicatif::ProgressBar;
use std::time::Duration;
use taskhost::worker::{options::parse_interval, Prefetch, QueueSelection, Worker, WorkerOptions};

/// Options of the `worker` subcommand (django-tasks-db's `db_worker`, plus concurrency,
/// leases and retries).
#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    /// The backend alias to take tasks from (a queue-store backend).
    #[arg(long, default_value = taskhost::DEFAULT_TASK_BACKEND_ALIAS)]
    pub backend: String,
    /// Queues to take tasks from, comma-separated, or `*` for all.
    #[arg(long, default_value = taskhost::DEFAULT_TASK_QUEUE_NAME)]
    pub queue: String,
    /// Queues to skip, comma-separated (only with `--queue '*'`).
    #[arg(long, default_value = "")]
    pub exclude_queues: String,
    /// How many tasks run at once.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// How many claimed tasks may wait in the worker for a free slot: `auto` (as many as the
    /// tasks' run time calls for, at most 32), a number, or 0 (claim only for free slots).
    /// Larger claims, much higher throughput on short tasks; see docs/worker.md.
    #[arg(long, default_value = "auto", value_parser = prefetch)]
    pub prefetch: Prefetch,
    /// Run everything that is ready, then exit.
    #[arg(long)]
    pub batch: bool,
    /// Exit after this many tasks.
    #[arg(long)]
    pub max_tasks: Option<u64>,
    /// Seconds between looks for new tasks when the backend cannot notify (fractions allowed).
    #[arg(long, default_value = "1", value_parser = interval, allow_hyphen_values = true)]
    pub interval: Duration,
    /// This worker's id (unique in the pool, at most 64 characters); default: random.
    #[arg(long)]
    pub worker_id: Option<String>,
    /// Seconds a claimed task's lease lasts (renewed while it runs).
    #[arg(long, default_value_t = 60.0)]
    pub lease: f64,
    /// Seconds running tasks may take to finish after the first SIGINT/SIGTERM.
    #[arg(long, default_value_t = 30.0)]
    pub grace_period: f64,
    /// Base seconds of the exponential backoff between attempts.
    #[arg(long, default_value_t = 1.0)]
    pub retry_backoff: f64,
    /// Do not wait a random part of the interval before the first claim.
    #[arg(long)]
    pub no_startup_delay: bool,
    /// With `--batch`: seconds claims may keep failing with an error that retrying may fix
    /// (database locked or unreachable) before the worker gives up and exits 1. A broken store
    /// (corrupt file, missing schema, access denied) stops any worker at once.
    #[arg(long, default_value_t = 60.0)]
    pub batch_give_up: f64,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9100; port 0: any free
    /// port, printed at start): tasks started and finished, run and queue-wait times, claims,
    /// lost leases and rescues, queue depths. No authentication: bind a private address.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
    /// With --metrics: seconds between reads of the queue depths and oldest READY age from the
    /// store (a count over the backend's rows); 0: never.
    #[arg(long, default_value_t = 15, value_name = "SECS")]
    pub metrics_queue_stats_secs: u64,
}

fn interval(text: &str) -> Result<Duration, String> {
    parse_interval(text).map_err(|e| e.to_string())
}

fn prefetch(text: &str) -> Result<Prefetch, String> {
    Prefetch::parse(text).map_err(|e| e.to_string())
}

fn seconds(name: &str, value: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| format!("--{name} must be a finite number of seconds ≥ 0, got {value}"))
}

impl WorkerArgs {
    /// The worker options these arguments stand for.
    pub fn options(&self) -> Result<WorkerOptions, String> {
        let mut options = WorkerOptions::new();
        options.backend = self.backend.clone();
        options.queues =
            QueueSelection::parse(&self.queue, &self.exclude_queues).map_err(|e| e.to_string())?;
        options.concurrency = self.concurrency;
        options.prefetch = self.prefetch;
        options.batch = self.batch;
        options.max_tasks = self.max_tasks;
        options.interval = self.interval;
        if let Some(id) = &self.worker_id {
            options.worker_id = id.clone();
        }
        options.lease = seconds("lease", self.lease)?;
        options.grace_period = seconds("grace-period", self.grace_period)?;
        options.retry_backoff = seconds("retry-backoff", self.retry_backoff)?;
        options.startup_delay = !self.no_startup_delay && !self.batch;
        options.batch_give_up = seconds("batch-give-up", self.batch_give_up)?;
        Ok(options)
    }
}

/// Run the worker until it exits; print its report. Returns whether it ran: false (exit 1,
/// after an `error:` line) when the store failed for good (see [`Worker::run`]).
pub fn run(args: &WorkerArgs) -> bool {
    let options = match args.options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return false;
        }
    };
    if taskhost::registered_tasks().is_empty() {
        tracing::warn!(target: "taskhost", "this binary has no #[task] functions: every task it claims will fail; run the worker from your application's binary");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the tokio runtime: {e}");
            return false;
        }
    };
    if let Err(e) = runtime.block_on(super::metrics::start(args)) {
        eprintln!("error: {e}");
        return false;
    }
    // `--batch` shows its progress on stderr when that is a terminal (else the bar is hidden).
    let bar = if args.batch {
        super::progress::spinner(super::progress::batch_message(
            &taskhost::worker::WorkerReport::default(),
            Duration::ZERO,
        ))
    } else {
        ProgressBar::hidden()
    };
    let ran = runtime.block_on(async {
        let worker = match Worker::new(options) {
            Ok(w) if !bar.is_hidden() => w.on_progress(batch_progress(&bar)),
            Ok(w) => w,
            Err(e) => {
                super::progress::clear(&bar);
                eprintln!("error: {e}");
                return false;
            }
        };
        let ran = worker.run_until_signalled().await;
        super::progress::clear(&bar);
        match ran {
            Ok(report) => {
                outln!(
                    "worker {}: {} claimed, {} successful, {} failed, {} retried, {} lease lost, {} released ({:?})",
                    worker.worker_id(),
                    report.claimed,
                    report.successful,
                    report.failed,
                    report.retried,
                    report.lease_lost,
                    report.released,
                    report.exit.unwrap_or(taskhost::worker::ExitReason::Shutdown)
                );
                true
            }
            Err(e) => {
                eprintln!("error: {e}");
                false
            }
        }
    });
    // Sync tasks cannot be cancelled: after a forced stop (their tasks released) or a timeout
    // (their tasks failed) their threads may still run. Dropping the runtime would wait for
    // them; exit without waiting instead.
    runtime.shutdown_background();
    ran
}

/// The worker's progress callback for `--batch`: the bar's line, updated as the counts change.
fn batch_progress(bar: &ProgressBar) -> taskhost::worker::Progress {
    let bar = bar.clone();
    let start = std::time::Instant::now();
    Box::new(move |report| bar.set_message(super::progress::batch_message(report, start.elapsed())))
}
