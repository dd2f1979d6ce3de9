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
//!
//! The target also says how many claimed tasks may *stay* waiting: when a running task's age
//! brings it below the waiting count, the excess goes back to the store ([`Pace::keep`]), so
//! short tasks claimed behind a long one are run by a free worker instead of waiting for it.
//! Handing back costs a release and another worker's claim, about two claim round trips, so it
//! is done only once the oldest running task has run that long.

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

impl Pace {
    /// How many of `waiting` claimed tasks may stay waiting while the oldest running task has
    /// been running for `oldest_running`; the rest are handed back.
    ///
    /// All stay while that task has run less than two claim round trips (what handing back
    /// costs) or nothing is measured; then as many as the target for that age.
    pub fn keep(&self, oldest_running: Duration, waiting: usize) -> usize {
        match self.hand_back_after(waiting) {
            Some(after) if oldest_running >= after => self.target(oldest_running).min(waiting),
            _ => waiting,
        }
    }

    /// The age of the oldest running task from which [`Pace::keep`] keeps fewer than
    /// `waiting` tasks (`None`: never, at the current averages).
    pub fn hand_back_after(&self, waiting: usize) -> Option<Duration> {
        let claim = self.claim?;
        if waiting == 0 || self.run.is_none() {
            return None;
        }
        // target(age) < waiting  ⇔  2 × concurrency × claim ÷ age < waiting (age past the
        // average run time; when the average alone already gives less, any age does).
        let shrinks_at = if self.target(Duration::ZERO) < waiting {
            0.0
        } else {
            2.0 * self.concurrency as f64 * claim / waiting as f64
        };
        // A nanosecond past the bound, so that at that age the target is below it.
        let after = (2.0 * claim).max(shrinks_at) + 1.0;
        Some(Duration::from_nanos(after.min(u64::MAX as f64) as u64))
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
    fn waiting_tasks_stay_until_a_running_task_outlasts_two_claims() {
        // 2 × 1 × 1 ms ÷ 20 µs: the ceiling, 32 may wait.
        let pace = pace(1, MS, Duration::from_micros(20));
        assert_eq!(pace.keep(NONE_RUNNING, 32), 32);
        assert_eq!(
            pace.keep(MS, 32),
            32,
            "under two claims: not worth a hand-back"
        );
        assert_eq!(
            pace.hand_back_after(32),
            Some(MS * 2 + Duration::from_nanos(1))
        );
        // From two claims on, the target for the age: 2 × 1 ms ÷ 2 ms = 1.
        assert_eq!(pace.keep(MS * 2 + Duration::from_nanos(1), 32), 0);
        assert_eq!(pace.keep(MS * 3, 32), 0);
        assert_eq!(pace.keep(Duration::from_secs(60), 1), 0);
        // Nothing waits: nothing to hand back, no time to wake up at.
        assert_eq!(pace.keep(Duration::from_secs(60), 0), 0);
        assert_eq!(pace.hand_back_after(0), None);
    }

    #[test]
    fn with_more_slots_more_may_stay_behind_a_long_task() {
        // 2 × 8 × 1 ms ÷ age: 5 may stay at 3 ms, 4 at 4 ms, 2 at 8 ms.
        let pace = pace(8, MS, Duration::from_micros(20));
        assert_eq!(
            pace.keep(MS, 10),
            10,
            "under two claims: not worth a hand-back"
        );
        assert_eq!(pace.keep(MS * 3, 10), 5);
        assert_eq!(pace.keep(MS * 4, 10), 4);
        assert_eq!(pace.keep(MS * 8, 10), 2);
        // Ten waiting: the target (16 ms ÷ age) is below ten from 1.6 ms, two claims is later.
        let after = pace.hand_back_after(10).unwrap();
        assert_eq!(after, Duration::from_nanos(2_000_001));
        assert_eq!(pace.keep(after, 10), 7);
        // Four waiting: from 16 ms ÷ 4, later than two claims.
        let after = pace.hand_back_after(4).unwrap();
        assert_eq!(after, Duration::from_nanos(4_000_001));
        assert_eq!(pace.keep(after - Duration::from_nanos(2), 4), 4);
        assert_eq!(pace.keep(after, 4), 3);
    }

    #[test]
    fn nothing_is_handed_back_before_anything_is_measured() {
        let mut pace = Pace::new(1, 32);
        assert_eq!(
            (
                pace.keep(Duration::from_secs(60), 3),
                pace.hand_back_after(3)
            ),
            (3, None)
        );
        pace.claimed(MS);
        assert_eq!(
            (
                pace.keep(Duration::from_secs(60), 3),
                pace.hand_back_after(3)
            ),
            (3, None)
        );
        pace.idle();
        pace.ran(MS / 10);
        assert_eq!(pace.keep(Duration::from_secs(60), 3), 0);
    }

    #[test]
    fn when_the_average_alone_is_below_the_waiting_count_two_claims_decide() {
        // Long tasks measured (target 0), yet tasks wait (a store that returned too many).
        let pace = pace(1, MS, Duration::from_secs(1));
        assert_eq!(
            pace.hand_back_after(3),
            Some(MS * 2 + Duration::from_nanos(1))
        );
        assert_eq!(pace.keep(MS, 3), 3);
        assert_eq!(pace.keep(MS * 2 + Duration::from_nanos(1), 3), 0);
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
