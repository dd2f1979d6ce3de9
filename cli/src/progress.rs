//! Progress bars on stderr for the long commands (`worker --batch`, `prune`, `migrate`), drawn
//! only when stderr is a terminal: stdout, and stderr piped or in a file, stay as they are.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use taskhost::worker::WorkerReport;

/// How often a spinner redraws (and a rate is recomputed) while nothing else changes.
const TICK: Duration = Duration::from_millis(100);

/// The bar on screen, if any: log lines are written around it (see [`LogWriter`]).
static SHOWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

fn shown() -> std::sync::MutexGuard<'static, Option<ProgressBar>> {
    SHOWN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A spinner on stderr showing `message` (and later `set_message`s), or a hidden bar unless
/// stderr is a terminal. End it with [`clear`].
pub(crate) fn spinner(message: String) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template("{spinner} {msg}").expect("a valid progress template");
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
        .with_style(style)
        .with_message(message);
    show(&bar);
    // Drawn now, not at the first steady tick: a quick command (nothing to migrate) would
    // otherwise end before anything was shown.
    bar.tick();
    bar.enable_steady_tick(TICK);
    bar
}

/// Make `bar` the one log lines are written around (nothing for a hidden bar).
pub(crate) fn show(bar: &ProgressBar) {
    if !bar.is_hidden() {
        *shown() = Some(bar.clone());
    }
}

/// Take `bar` off the screen.
pub(crate) fn clear(bar: &ProgressBar) {
    bar.finish_and_clear();
    shown().take();
}

/// Where the log lines go: stderr, with the bar on screen (if any) cleared while a line is
/// written and drawn again below it, so that a line never runs on from the bar's text.
pub(crate) struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = shown().clone();
        match bar {
            Some(bar) => bar
                .suspend(|| std::io::stderr().write_all(buf))
                .map(|()| buf.len()),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// The line of `worker --batch`'s spinner: what is done of what was claimed, and the rate.
pub(crate) fn batch_message(report: &WorkerReport, elapsed: Duration) -> String {
    let done = report.successful + report.failed + report.retried + report.lease_lost;
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    format!(
        "{done} done / {} claimed ({} successful, {} failed, {} retried), {rate:.1} tasks/s",
        report.claimed, report.successful, report.failed, report.retried
    )
}

/// The line of `migrate`'s spinner.
pub(crate) fn migrate_message(alias: &str) -> String {
    format!(
        "Applying migrations to backend '{}'…",
        taskhost_names::escape_for_display(alias)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_line_counts_done_of_claimed_and_the_rate() {
        let report = WorkerReport {
            claimed: 12,
            successful: 7,
            failed: 1,
            retried: 2,
            ..WorkerReport::default()
        };
        assert_eq!(
            batch_message(&report, Duration::from_secs(4)),
            "10 done / 12 claimed (7 successful, 1 failed, 2 retried), 2.5 tasks/s"
        );
        assert_eq!(
            batch_message(&WorkerReport::default(), Duration::ZERO),
            "0 done / 0 claimed (0 successful, 0 failed, 0 retried), 0.0 tasks/s"
        );
    }

    #[test]
    fn the_migrate_line_names_the_alias() {
        assert_eq!(
            migrate_message("default"),
            "Applying migrations to backend 'default'…"
        );
    }

    #[test]
    fn no_bar_is_drawn_when_stderr_is_not_a_terminal() {
        // Under `cargo test` stderr is captured or piped, never the bar's terminal.
        if !std::io::stderr().is_terminal() {
            assert!(spinner(String::new()).is_hidden());
        }
    }
}
