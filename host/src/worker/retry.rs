//! When to try a failed task again: exponential backoff with full jitter.

use std::time::Duration;

/// The delay before attempt `attempt + 1`, after `attempt` (≥ 1) failed: a random duration
/// between half and all of `min(max, base × 2^(attempt−1))`, so retries of many tasks that
/// failed together spread out.
pub fn backoff(attempt: usize, base: Duration, max: Duration) -> Duration {
    let exponent = attempt.saturating_sub(1).min(32) as i32;
    let ceiling = (base.as_secs_f64() * 2f64.powi(exponent)).min(max.as_secs_f64());
    Duration::from_secs_f64(ceiling * (0.5 + fastrand::f64() * 0.5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        let base = Duration::from_secs(2);
        let max = Duration::from_secs(60);
        for (attempt, ceiling) in [(1, 2.0), (2, 4.0), (3, 8.0), (10, 60.0), (1000, 60.0)] {
            for _ in 0..100 {
                let d = backoff(attempt, base, max).as_secs_f64();
                assert!(d >= ceiling / 2.0 && d <= ceiling, "attempt {attempt}: {d}");
            }
        }
    }
}
