//! What a worker does when its store fails a claim: a transient failure (retrying may help:
//! locked, unreachable, a session ended) is retried with capped exponential backoff and a log
//! line; a permanent one (`ErrorKind::STORE_BROKEN`: a corrupt file, a missing schema, access
//! denied) stops the worker. A `--batch` worker also gives up on transient failures that last
//! longer than [`super::WorkerOptions::batch_give_up`], so it always ends.
//!
//! An error of any other kind — from an older plugin that has no `STORE_BROKEN`, or the host's
//! own — is taken as transient: retried, and still bounded under `--batch`.

use crate::error::Error;
use std::time::{Duration, Instant};
use taskhost_plugin_api::ErrorKind;

/// The first pause after a failed claim; it doubles after each further failure.
pub(crate) const FIRST_DELAY: Duration = Duration::from_millis(100);
/// The longest pause between two claims that failed.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(5);

/// What to do after a failed claim.
#[derive(Debug, PartialEq)]
pub(crate) enum Next {
    /// Claim again after this pause.
    Retry(Duration),
    /// Stop the worker with this error.
    Stop(Error),
}

/// The run of consecutive failed claims, reset by a claim that works.
pub(crate) struct Failures {
    alias: String,
    worker_id: String,
    /// How long transient failures may last before the worker gives up (`--batch`), if ever.
    give_up_after: Option<Duration>,
    since: Option<Instant>,
    tries: u32,
    delay: Duration,
}

impl Failures {
    pub fn new(alias: &str, worker_id: &str, give_up_after: Option<Duration>) -> Self {
        Self {
            alias: alias.to_string(),
            worker_id: worker_id.to_string(),
            give_up_after,
            since: None,
            tries: 0,
            delay: FIRST_DELAY,
        }
    }

    /// A claim worked: the next failure starts a new run, with the first delay.
    pub fn succeeded(&mut self) {
        if self.since.take().is_some() {
            tracing::info!(target: "taskhost", "worker {}: claiming from backend '{}' works again after {} failed tries", self.worker_id, self.alias, self.tries);
        }
        self.tries = 0;
        self.delay = FIRST_DELAY;
    }

    /// A claim failed at `now` with `err`: retry after a pause (logged), or stop.
    pub fn failed(&mut self, err: Error, now: Instant) -> Next {
        let since = *self.since.get_or_insert(now);
        self.tries += 1;
        if is_permanent(&err) {
            return Next::Stop(self.broken(err));
        }
        let failing_for = now.saturating_duration_since(since);
        if let Some(limit) = self.give_up_after {
            if failing_for >= limit {
                return Next::Stop(self.gave_up(err, failing_for));
            }
        }
        let mut delay = self.delay;
        if let Some(limit) = self.give_up_after {
            // Claim once more right at the limit rather than sleep past it.
            delay = delay.min(limit - failing_for);
        }
        self.delay = (self.delay * 2).min(MAX_DELAY);
        tracing::warn!(
            target: "taskhost",
            "worker {}: claiming from backend '{}' failed (try {}), retrying in {delay:?}: {err}",
            self.worker_id, self.alias, self.tries
        );
        Next::Retry(delay)
    }

    fn broken(&self, err: Error) -> Error {
        let (kind, message) = parts(err);
        Error::Backend {
            alias: self.alias.clone(),
            kind,
            message: format!(
                "{message}. The store cannot be used and retrying will not help, so worker \
                 '{}' stopped: repair or restore the database (or its schema, or its \
                 permissions), then start the worker again",
                self.worker_id
            ),
        }
    }

    fn gave_up(&self, err: Error, failing_for: Duration) -> Error {
        let (kind, message) = parts(err);
        Error::Backend {
            alias: self.alias.clone(),
            kind,
            message: format!(
                "{message}. Claiming kept failing for {:.1} s ({} tries), so the --batch \
                 worker '{}' gave up: check that the database is reachable and not locked, \
                 then run the worker again (--batch-give-up sets how long it keeps trying)",
                failing_for.as_secs_f64(),
                self.tries,
                self.worker_id
            ),
        }
    }
}

/// Whether `err` says the store is broken: retrying will not help.
pub(crate) fn is_permanent(err: &Error) -> bool {
    matches!(err, Error::Backend { kind, .. } if *kind == ErrorKind::STORE_BROKEN)
}

/// The kind and the message of `err` (the plugin's own message, without the alias prefix).
fn parts(err: Error) -> (ErrorKind, String) {
    match err {
        Error::Backend { kind, message, .. } => (kind, message),
        other => (ErrorKind::OTHER, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend_error(kind: ErrorKind, message: &str) -> Error {
        Error::Backend {
            alias: "default".into(),
            kind,
            message: message.into(),
        }
    }

    fn unavailable() -> Error {
        backend_error(ErrorKind::UNAVAILABLE, "database is locked")
    }

    #[test]
    fn transient_failures_back_off_from_100_ms_doubling_to_5_s_and_reset_on_success() {
        let mut failures = Failures::new("default", "w1", None);
        let now = Instant::now();
        let delays: Vec<Duration> = (0..9)
            .map(|_| match failures.failed(unavailable(), now) {
                Next::Retry(delay) => delay,
                Next::Stop(e) => panic!("stopped: {e}"),
            })
            .collect();
        let ms: Vec<u128> = delays.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        failures.succeeded();
        assert_eq!(
            failures.failed(unavailable(), now),
            Next::Retry(Duration::from_millis(100))
        );
    }

    #[test]
    fn a_worker_retries_transient_failures_for_as_long_as_it_runs_without_batch() {
        let mut failures = Failures::new("default", "w1", None);
        let start = Instant::now();
        for hours in 0..48 {
            let at = start + Duration::from_secs(hours * 3600);
            assert!(matches!(failures.failed(unavailable(), at), Next::Retry(_)));
        }
    }

    #[test]
    fn a_broken_store_stops_the_worker_at_the_first_failure_with_what_to_do() {
        let mut failures = Failures::new("default", "w1", None);
        let err = backend_error(
            ErrorKind::STORE_BROKEN,
            "SQLite failed while claiming tasks: database disk image is malformed",
        );
        let Next::Stop(stopped) = failures.failed(err, Instant::now()) else {
            panic!("a broken store must stop the worker");
        };
        assert!(is_permanent(&stopped));
        assert_eq!(
            stopped.to_string(),
            "backend 'default' failed: SQLite failed while claiming tasks: database disk image \
             is malformed. The store cannot be used and retrying will not help, so worker 'w1' \
             stopped: repair or restore the database (or its schema, or its permissions), then \
             start the worker again"
        );
    }

    #[test]
    fn a_batch_worker_gives_up_once_transient_failures_have_lasted_the_limit() {
        let mut failures = Failures::new("default", "w1", Some(Duration::from_secs(60)));
        let start = Instant::now();
        assert_eq!(
            failures.failed(unavailable(), start),
            Next::Retry(FIRST_DELAY)
        );
        // Close to the limit, the pause ends at the limit, for one last try there.
        assert_eq!(
            failures.failed(unavailable(), start + Duration::from_millis(59_950)),
            Next::Retry(Duration::from_millis(50))
        );
        let Next::Stop(stopped) = failures.failed(unavailable(), start + Duration::from_secs(60))
        else {
            panic!("a --batch worker must give up");
        };
        assert_eq!(
            stopped,
            backend_error(
                ErrorKind::UNAVAILABLE,
                "database is locked. Claiming kept failing for 60.0 s (3 tries), so the --batch \
                 worker 'w1' gave up: check that the database is reachable and not locked, then \
                 run the worker again (--batch-give-up sets how long it keeps trying)"
            )
        );
    }

    #[test]
    fn an_unknown_kind_from_an_older_plugin_is_retried_and_still_bounded_under_batch() {
        let mut failures = Failures::new("default", "w1", Some(Duration::from_secs(1)));
        let old = || backend_error(ErrorKind(200), "something failed");
        let start = Instant::now();
        assert!(matches!(failures.failed(old(), start), Next::Retry(_)));
        assert!(matches!(
            failures.failed(old(), start + Duration::from_secs(1)),
            Next::Stop(Error::Backend {
                kind: ErrorKind(200),
                ..
            })
        ));
    }
}
