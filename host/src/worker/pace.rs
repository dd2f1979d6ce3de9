//! The adaptive prefetch ([`super::options::Prefetch::Auto`]): how many claimed tasks may wait
//! in the worker, from how long tasks run and how long a claim takes.
//!
//! While a claim is in flight the running slots go on finishing tasks: `concurrency × claim
//! time ÷ run time` of them. The next claim is made once half the prefetch is free, so a
//! prefetch of twice that keeps every slot fed until the claim returns; more only makes tasks
//! wait in this worker that another one could run. So the target is
//!
//! > `2 × concurrency × claim time ÷ run time`, rounded down, at most the ceiling,
//!
//! each time a moving average (EWMA, weight 1/4 for the newest sample; the first sample is
//! taken as it is). A task running now for longer than the average counts with its age, so a
//! long task stops further prefetching before it ends. With no run time measured yet — at the
//! start, and again after the worker found its queues empty ([`Pace::idle`]) — the target is 0:
//! a worker that finds new work claims for its free slots only until it has seen how long that
//! work takes, so long tasks are never claimed ahead of a slot to run them.

use std::time::Duration;

/// The weight of the newest sample in the moving averages.
const WEIGHT: f64 = 0.25;

/// The measurements and the target they give.
#[derive(Debug)]
pub(crate) struct Pace {
    concurrency: usize,
    ceiling: usize,
    /// Moving average of a task function's run time, nanoseconds (`None`: nothing measured
    /// since the start or the last idle time).
    run: Option<f64>,
    /// Moving average of a claim's round trip, nanoseconds.
    claim: Option<f64>,
}

impl Pace {
    pub fn new(concurrency: usize, ceiling: usize) -> Self {
        Self {
            concurrency,
            ceiling,
            run: None,
            claim: None,
        }
    }

    /// A task function ran for `took`.
    pub fn ran(&mut self, took: Duration) {
        self.run = Some(average(self.run, took));
    }

    /// A claim took `took`, from the request to the answer.
    pub fn claimed(&mut self, took: Duration) {
        self.claim = Some(average(self.claim, took));
    }

    /// The queues were found empty: what comes next may be different work, so the target is
    /// 0 again until its run time is measured (the claim time is kept: it is the store's).
    pub fn idle(&mut self) {
        self.run = None;
    }

    /// How many claimed tasks may wait now; `oldest_running` is how long the longest-running
    /// task has been running (zero when none runs).
    pub fn target(&self, oldest_running: Duration) -> usize {
        let (Some(run), Some(claim)) = (self.run, self.claim) else {
            return 0;
        };
        let run = run.max(oldest_running.as_nanos() as f64);
        if run <= 0.0 {
            return self.ceiling;
        }
        let target = 2.0 * self.concurrency as f64 * claim / run;
        // `as` saturates (and a NaN becomes 0): no overflow for near-zero run times.
        (target.floor() as usize).min(self.ceiling)
    }
}

fn average(previous: Option<f64>, sample: Duration) -> f64 {
    let sample = sample.as_nanos() as f64;
    match previous {
        Some(previous) => previous + WEIGHT * (sample - previous),
        None => sample,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const NONE_RUNNING: Duration = Duration::ZERO;

    fn pace(concurrency: usize, claim: Duration, run: Duration) -> Pace {
        let mut pace = Pace::new(concurrency, 32);
        pace.claimed(claim);
        pace.ran(run);
        pace
    }

    #[test]
    fn nothing_waits_before_a_run_time_is_measured() {
        let mut pace = Pace::new(4, 32);
        assert_eq!(pace.target(NONE_RUNNING), 0);
        pace.claimed(MS);
        assert_eq!(
            pace.target(NONE_RUNNING),
            0,
            "a claim alone says nothing of the tasks"
        );
        pace.ran(Duration::from_micros(10));
        assert_eq!(pace.target(NONE_RUNNING), 32);
    }

    #[test]
    fn short_tasks_grow_the_buffer_up_to_the_ceiling_and_never_above() {
        // 2 × 1 × 1 ms ÷ 0.5 ms = 4.
        assert_eq!(pace(1, MS, MS / 2).target(NONE_RUNNING), 4);
        // Shorter tasks, more concurrency: more.
        assert_eq!(pace(4, MS, MS / 4).target(NONE_RUNNING), 32);
        assert_eq!(pace(1, MS, MS / 10).target(NONE_RUNNING), 20);
        // No-op tasks (or a zero reading) and slow claims: the ceiling, no more.
        for run in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_micros(5),
        ] {
            let pace = pace(32, Duration::from_secs(5), run);
            assert_eq!(pace.target(NONE_RUNNING), 32);
        }
        let mut pace = Pace::new(1, 7);
        pace.claimed(MS);
        pace.ran(Duration::ZERO);
        assert_eq!(pace.target(NONE_RUNNING), 7);
    }

    #[test]
    fn long_tasks_shrink_the_buffer_to_nothing() {
        assert_eq!(pace(1, MS, MS * 3).target(NONE_RUNNING), 0);
        assert_eq!(pace(32, MS, Duration::from_secs(1)).target(NONE_RUNNING), 0);
        // Short tasks first, then long ones: the average follows within a few of them.
        let mut pace = pace(1, MS, Duration::from_micros(20));
        assert_eq!(pace.target(NONE_RUNNING), 32);
        let mut long_ones = 0;
        while pace.target(NONE_RUNNING) > 0 {
            pace.ran(Duration::from_secs(1));
            long_ones += 1;
        }
        assert_eq!(long_ones, 1, "one long task is enough to stop prefetching");
    }

    #[test]
    fn a_long_task_still_running_stops_prefetching_before_it_ends() {
        let pace = pace(1, MS, Duration::from_micros(20));
        assert_eq!(pace.target(Duration::from_micros(10)), 32);
        assert_eq!(pace.target(Duration::from_millis(5)), 0);
    }

    #[test]
    fn after_an_idle_time_nothing_waits_until_the_new_work_is_measured() {
        let mut pace = pace(2, MS, Duration::from_micros(20));
        assert_eq!(pace.target(NONE_RUNNING), 32);
        pace.idle();
        assert_eq!(pace.target(NONE_RUNNING), 0);
        pace.ran(Duration::from_secs(2));
        assert_eq!(pace.target(NONE_RUNNING), 0, "the new work is long");
        pace.idle();
        pace.ran(MS / 8);
        assert_eq!(pace.target(NONE_RUNNING), 32, "the claim time was kept");
    }

    #[test]
    fn the_averages_weigh_the_newest_sample_a_quarter() {
        let mut pace = Pace::new(1, 1000);
        pace.claimed(Duration::from_millis(4));
        pace.ran(Duration::from_millis(1));
        pace.ran(Duration::from_millis(5));
        // run = 1 + (5 − 1) / 4 = 2 ms: 2 × 4 ÷ 2 = 4.
        assert_eq!(pace.target(NONE_RUNNING), 4);
        pace.claimed(Duration::from_millis(8));
        // claim = 4 + (8 − 4) / 4 = 5 ms: 2 × 5 ÷ 2 = 5.
        assert_eq!(pace.target(NONE_RUNNING), 5);
    }
}
