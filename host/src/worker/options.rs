//! Worker options and their validation (django-tasks-db's `db_worker` rules, plus ours).

use crate::error::{Error, Result};
use std::time::Duration;

/// The most characters a worker id may have.
pub const MAX_WORKER_ID_LEN: usize = 64;

/// The most claimed tasks that may wait in one worker ([`Prefetch::Fixed`]).
pub const MAX_PREFETCH: usize = 100_000;

/// The most claimed tasks [`Prefetch::Auto`] lets wait in one worker: its buffer's ceiling, and
/// what the worker's [cap](WorkerOptions::cap) counts for it.
pub const AUTO_PREFETCH_CEILING: usize = 32;

/// How many claimed tasks may wait in the worker for a free slot ([`WorkerOptions::prefetch`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Prefetch {
    /// Adapt to the tasks (the default, `--prefetch auto`): none at first and after the worker
    /// found its queues empty, then as many as keep the slots busy while a claim is in flight
    /// — `2 × concurrency × claim time ÷ run time`, from moving averages of both — and never
    /// more than [`AUTO_PREFETCH_CEILING`]. Short tasks get the ceiling (claims in batches),
    /// long ones none (nothing waits behind them that another worker could run).
    #[default]
    Auto,
    /// Exactly this many (`--prefetch N`); 0 claims for free slots only.
    Fixed(usize),
}

impl Prefetch {
    /// The most tasks that may wait in the worker: N, or [`AUTO_PREFETCH_CEILING`].
    pub fn ceiling(self) -> usize {
        match self {
            Self::Auto => AUTO_PREFETCH_CEILING,
            Self::Fixed(n) => n,
        }
    }

    /// Parse `--prefetch`: `auto`, or a number of tasks.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("auto") {
            return Ok(Self::Auto);
        }
        text.parse().map(Self::Fixed).map_err(|_| {
            invalid(&format!(
                "--prefetch must be 'auto' or a number of tasks from 0 to {MAX_PREFETCH}, got '{}'",
                crate::validation::escape_for_display(text)
            ))
        })
    }
}

/// Which queues a worker takes tasks from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueSelection {
    /// Only these queues.
    Named(Vec<String>),
    /// Every queue (`*`), except the excluded ones.
    All {
        /// Queues to skip.
        exclude: Vec<String>,
    },
}

impl QueueSelection {
    /// Parse `--queue` (`a,b` or `*`) and `--exclude-queues`. Excluding needs `*`.
    pub fn parse(queue: &str, exclude: &str) -> Result<Self> {
        let list = |s: &str| -> Vec<String> {
            s.split(',')
                .map(str::trim)
                .filter(|q| !q.is_empty())
                .map(String::from)
                .collect()
        };
        let exclude = list(exclude);
        check_names("--exclude-queues", &exclude)?;
        if queue.trim() == "*" {
            return Ok(Self::All { exclude });
        }
        if !exclude.is_empty() {
            return Err(invalid("--exclude-queues can only be used with --queue=*"));
        }
        let named = list(queue);
        if named.is_empty() {
            return Err(invalid("--queue must name at least one queue, or be *"));
        }
        check_names("--queue", &named)?;
        Ok(Self::Named(named))
    }
}

/// Every name in `names` (given with `flag`) passes the queue-name rule: no store holds a task
/// of a queue that breaks it, so such a name is a mistake, said here rather than matching nothing.
fn check_names(flag: &str, names: &[String]) -> Result<()> {
    for name in names {
        if let Err(e) = crate::validation::validate_queue_name(name) {
            return Err(invalid(&format!("{flag}: {e}")));
        }
    }
    Ok(())
}

/// How a worker runs. Build with [`WorkerOptions::new`] and adjust fields; [`Worker::new`]
/// validates.
///
/// [`Worker::new`]: super::Worker::new
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// The backend alias to take tasks from (must be a queue store).
    pub backend: String,
    /// Which queues.
    pub queues: QueueSelection,
    /// How many tasks run at once (sync tasks on threads, async tasks on the runtime).
    pub concurrency: usize,
    /// How many claimed tasks may wait in the worker for a free slot, on top of the running
    /// ones (a local queue, like Celery's prefetch; default [`Prefetch::Auto`]). Claims then
    /// take up to `concurrency + prefetch` tasks in one transaction, and the next claim waits
    /// until half the prefetch is free: many tasks per write, for throughput on short tasks. A
    /// prefetched task is RUNNING in the store, holds a lease (renewed like a running task's)
    /// and runs in claim order; at a shutdown the ones not started are handed back at once,
    /// but if the worker dies they are rescued like running ones.
    pub prefetch: Prefetch,
    /// Run what is ready, then exit.
    pub batch: bool,
    /// Exit after this many tasks.
    pub max_tasks: Option<u64>,
    /// How long to wait for new tasks before looking again, when the backend cannot notify.
    pub interval: Duration,
    /// This worker's id (unique across the worker pool, at most 64 characters).
    pub worker_id: String,
    /// How long a claimed task's lease lasts; renewed every third of it while the task runs.
    pub lease: Duration,
    /// After the first SIGINT/SIGTERM, how long running tasks may take to finish.
    pub grace_period: Duration,
    /// Base delay of the exponential backoff between attempts.
    pub retry_backoff: Duration,
    /// Largest delay between attempts.
    pub retry_backoff_max: Duration,
    /// Wait a random 0–interval before the first claim (spreads out workers started together).
    pub startup_delay: bool,
    /// With [`WorkerOptions::batch`]: how long claims may keep failing with a transient store
    /// error (one that retrying may fix: locked, unreachable) before the worker gives up and
    /// exits with the error. Without `batch` the worker retries for as long as it runs.
    pub batch_give_up: Duration,
}

impl WorkerOptions {
    /// Defaults: backend `default`, queue `default`, concurrency 1, the adaptive prefetch
    /// ([`Prefetch::Auto`]), interval 1 s, a random worker id, lease 60 s, grace period 30 s,
    /// backoff 1 s doubling up to 1 h, and a `--batch` worker gives up on a failing store after
    /// 60 s.
    pub fn new() -> Self {
        Self {
            backend: crate::DEFAULT_TASK_BACKEND_ALIAS.to_string(),
            queues: QueueSelection::Named(vec![crate::DEFAULT_TASK_QUEUE_NAME.to_string()]),
            concurrency: 1,
            prefetch: Prefetch::Auto,
            batch: false,
            max_tasks: None,
            interval: Duration::from_secs(1),
            worker_id: random_worker_id(),
            lease: Duration::from_secs(60),
            grace_period: Duration::from_secs(30),
            retry_backoff: Duration::from_secs(1),
            retry_backoff_max: Duration::from_secs(3600),
            startup_delay: false,
            batch_give_up: Duration::from_secs(60),
        }
    }

    /// The most tasks this worker holds unacknowledged at once: `2 × concurrency + prefetch`,
    /// the prefetch counted at its [ceiling](Prefetch::ceiling) (34 at the defaults:
    /// concurrency 1, [`Prefetch::Auto`]).
    ///
    /// A task is held from its claim until the store has acknowledged its result — running,
    /// prefetched (waiting for a slot), or finished with its result waiting to be written. A
    /// claim asks for at most the cap minus what is held (and, as before, for no more than
    /// `concurrency + prefetch` running or waiting), and none is made at the cap: the worker
    /// waits for an acknowledgement. So while one batch of results is being written, up to
    /// `concurrency` more tasks may have been claimed (the claim overlaps the write, which
    /// keeps short tasks' throughput), and a store slow to write results slows the claims down
    /// instead of piling up leases. Each held task is RUNNING in the store under this worker's
    /// lease, so this is also the most tasks a killed worker leaves to be rescued, and the most
    /// it can have run whose result is lost (each one a re-run).
    pub fn cap(&self) -> usize {
        self.concurrency
            .saturating_mul(2)
            .saturating_add(self.prefetch.ceiling())
    }

    /// Check the options (the backend is checked by [`super::Worker::new`]).
    pub fn validate(&self) -> Result<()> {
        if self.worker_id.is_empty() {
            return Err(invalid("Worker id must not be empty"));
        }
        if self.worker_id.chars().count() > MAX_WORKER_ID_LEN {
            return Err(invalid("Worker ids must be shorter than 64 characters"));
        }
        if self.concurrency == 0 {
            return Err(invalid("--concurrency must be at least 1"));
        }
        if let Prefetch::Fixed(n) = self.prefetch {
            if n > MAX_PREFETCH {
                return Err(invalid(&format!(
                    "--prefetch must be at most {MAX_PREFETCH} (tasks waiting in one worker), got {n}"
                )));
            }
        }
        if self.lease < Duration::from_secs(1) {
            return Err(invalid("--lease must be at least 1 second"));
        }
        Ok(())
    }
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// Parse `--interval`: a finite number of seconds, zero or more (django-tasks-db's messages).
pub fn parse_interval(text: &str) -> Result<Duration> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| invalid("Must be a finite floating point value"))?;
    if !secs.is_finite() {
        return Err(invalid("Must be a finite floating point value"));
    }
    if secs < 0.0 {
        return Err(invalid("Must be greater than zero"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// 32 random lowercase letters and digits, like Django's worker ids.
pub fn random_worker_id() -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..32)
        .map(|_| CHARS[fastrand::usize(..CHARS.len())] as char)
        .collect()
}

fn invalid(message: &str) -> Error {
    Error::config(None, None, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclude_needs_all_queues() {
        assert_eq!(
            QueueSelection::parse("default", "emails")
                .unwrap_err()
                .to_string(),
            "--exclude-queues can only be used with --queue=*"
        );
        assert_eq!(
            QueueSelection::parse("*", "emails, slow").unwrap(),
            QueueSelection::All {
                exclude: vec!["emails".into(), "slow".into()]
            }
        );
        assert_eq!(
            QueueSelection::parse("a,b", "").unwrap(),
            QueueSelection::Named(vec!["a".into(), "b".into()])
        );
    }

    #[test]
    fn queue_names_that_break_the_rule_are_refused_naming_the_flag() {
        let long = "q".repeat(300);
        assert_eq!(
            QueueSelection::parse(&format!("default,{long}"), "")
                .unwrap_err()
                .to_string(),
            format!(
                "--queue: Invalid queue name '{}…': a queue name must be 1 to 255 bytes without \
                 control characters, commas or leading or trailing whitespace, and not '*' (it \
                 is 300 bytes).",
                "q".repeat(64)
            )
        );
        assert_eq!(
            QueueSelection::parse("*", "ok,a\u{1b}b")
                .unwrap_err()
                .to_string(),
            "--exclude-queues: Invalid queue name 'a\\u{1b}b': a queue name must be 1 to 255 \
             bytes without control characters, commas or leading or trailing whitespace, and \
             not '*' (it has the control character \\u{1b} at byte offset 1)."
        );
    }

    #[test]
    fn interval_must_be_finite_and_not_negative() {
        assert_eq!(parse_interval("0.5").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_interval("0").unwrap(), Duration::ZERO);
        assert_eq!(
            parse_interval("inf").unwrap_err().to_string(),
            "Must be a finite floating point value"
        );
        assert_eq!(
            parse_interval("x").unwrap_err().to_string(),
            "Must be a finite floating point value"
        );
        assert_eq!(
            parse_interval("-1").unwrap_err().to_string(),
            "Must be greater than zero"
        );
    }

    #[test]
    fn prefetch_is_auto_or_a_number() {
        assert_eq!(WorkerOptions::new().prefetch, Prefetch::Auto);
        assert_eq!(Prefetch::parse("auto").unwrap(), Prefetch::Auto);
        assert_eq!(Prefetch::parse(" AUTO ").unwrap(), Prefetch::Auto);
        assert_eq!(Prefetch::parse("0").unwrap(), Prefetch::Fixed(0));
        assert_eq!(Prefetch::parse("1024").unwrap(), Prefetch::Fixed(1024));
        assert_eq!(
            Prefetch::parse("lots").unwrap_err().to_string(),
            "--prefetch must be 'auto' or a number of tasks from 0 to 100000, got 'lots'"
        );
        let mut o = WorkerOptions::new();
        assert_eq!(o.cap(), 2 + AUTO_PREFETCH_CEILING);
        o.concurrency = 4;
        o.prefetch = Prefetch::Fixed(16);
        assert_eq!(o.cap(), 24);
        o.prefetch = Prefetch::Fixed(MAX_PREFETCH + 1);
        assert_eq!(
            o.validate().unwrap_err().to_string(),
            "--prefetch must be at most 100000 (tasks waiting in one worker), got 100001"
        );
    }

    #[test]
    fn worker_ids_are_checked() {
        let mut o = WorkerOptions::new();
        assert_eq!(o.worker_id.len(), 32);
        o.worker_id = String::new();
        assert_eq!(
            o.validate().unwrap_err().to_string(),
            "Worker id must not be empty"
        );
        o.worker_id = "x".repeat(65);
        assert_eq!(
            o.validate().unwrap_err().to_string(),
            "Worker ids must be shorter than 64 characters"
        );
        o.worker_id = "x".repeat(64);
        assert!(o.validate().is_ok());
    }
}
