//! Periodic tasks: the schedules of `[tasks.<alias>.periodic]`, their cron expressions and
//! which ticks are due.
//!
//! ```toml
//! [tasks.default.periodic]
//! "my_app::reports::daily" = "0 7 * * *"           # the key is the task's path
//! cleanup = { task = "my_app::cleanup", cron = "*/15 * * * *", args = [30],
//!             queue_name = "maintenance", priority = -10, timezone = "Europe/Paris",
//!             missed = { backfill = 4 } }
//! ```
//!
//! A schedule is named by its key; its task is `task`, else the key. The cron expression has 5
//! fields (minute, hour, day of month, month, day of week), or 6 with seconds first (and an
//! optional 7th, the year), read in `timezone` (an IANA name, default `UTC`). Workers enqueue
//! each tick once between them (the store enforces it: `docs/decisions/020-periodic-tasks.md`);
//! `missed` says what happens to the ticks that could not be enqueued in time (every worker
//! stopped, say): see [`MissedTicks`].

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value};
use std::fmt;

/// A due tick older than this (and every due tick but the latest) counts as missed.
pub const MISSED_AFTER: TimeDelta = TimeDelta::seconds(60);

/// The most ticks `missed = { backfill = N }` may ask for.
pub const MAX_BACKFILL: u32 = 1000;

/// What happens to the ticks of a schedule that were not enqueued in time: every due tick but
/// the latest, and the latest too once it is more than [`MISSED_AFTER`] old.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MissedTicks {
    /// `"skip"` (the default, as cron does): missed ticks are dropped; only a tick that is on
    /// time is enqueued.
    Skip,
    /// `"once"`: one task for the latest due tick, however many were missed.
    Once,
    /// `{ backfill = N }`: a task for each of the latest N due ticks (1 to [`MAX_BACKFILL`]).
    Backfill(u32),
}

impl fmt::Display for MissedTicks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Skip => f.write_str("skip"),
            Self::Once => f.write_str("once"),
            Self::Backfill(n) => write!(f, "backfill {n}"),
        }
    }
}

/// One schedule of `[tasks.<alias>.periodic]`, validated.
#[derive(Clone, Debug)]
pub struct PeriodicSchedule {
    /// Its name: the key in `[tasks.<alias>.periodic]`.
    pub name: String,
    /// The path of the task it enqueues.
    pub task: String,
    /// The cron expression, as written.
    pub cron: String,
    /// The IANA time zone the expression is read in.
    pub timezone: String,
    /// Positional arguments of every run.
    pub args: Vec<Value>,
    /// Keyword arguments of every run.
    pub kwargs: Map<String, Value>,
    /// The queue, if not the task's own.
    pub queue_name: Option<String>,
    /// The priority, if not the task's own.
    pub priority: Option<i32>,
    /// What happens to missed ticks.
    pub missed: MissedTicks,
    parsed: croner::Cron,
    tz: chrono_tz::Tz,
}

impl PartialEq for PeriodicSchedule {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.name,
            &self.task,
            &self.cron,
            &self.timezone,
            &self.args,
            &self.kwargs,
            &self.queue_name,
            &self.priority,
            &self.missed,
        ) == (
            &other.name,
            &other.task,
            &other.cron,
            &other.timezone,
            &other.args,
            &other.kwargs,
            &other.queue_name,
            &other.priority,
            &other.missed,
        )
    }
}

/// The ticks one pass enqueues for a schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TickPlan {
    /// The latest due tick: the schedule's last tick after the pass, enqueued or skipped.
    pub through: DateTime<Utc>,
    /// The ticks to enqueue, oldest first.
    pub ticks: Vec<DateTime<Utc>>,
}

impl PeriodicSchedule {
    /// A schedule named `name` enqueueing `task` at the times of `cron` in `timezone`, with no
    /// arguments, the task's queue and priority, and missed ticks skipped. `Err` says what is
    /// wrong with the expression or the time zone.
    pub fn new(name: &str, task: &str, cron: &str, timezone: &str) -> Result<Self, String> {
        let parsed = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build()
            .parse(cron)
            .map_err(|e| {
                format!(
                    "the cron expression {cron:?} of schedule '{name}' is not valid: {e}; write 5 \
                     fields (minute hour day-of-month month day-of-week), or 6 with seconds \
                     first, e.g. \"0 7 * * *\" (07:00 every day)"
                )
            })?;
        let tz: chrono_tz::Tz = timezone.parse().map_err(|_| {
            format!(
                "the time zone {timezone:?} of schedule '{name}' is not known; use an IANA name \
                 such as \"UTC\" or \"Europe/Paris\""
            )
        })?;
        Ok(Self {
            name: name.to_string(),
            task: task.to_string(),
            cron: cron.to_string(),
            timezone: timezone.to_string(),
            args: Vec::new(),
            kwargs: Map::new(),
            queue_name: None,
            priority: None,
            missed: MissedTicks::Skip,
            parsed,
            tz,
        })
    }

    /// The first tick strictly after `after`, if the expression has one.
    pub fn next_tick(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.parsed
            .find_next_occurrence(&after.with_timezone(&self.tz), false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The latest tick at or before `at`, if the expression has one.
    fn tick_at_or_before(&self, at: DateTime<Utc>, inclusive: bool) -> Option<DateTime<Utc>> {
        self.parsed
            .find_previous_occurrence(&at.with_timezone(&self.tz), inclusive)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// Up to `limit` due ticks (after `after`, at or before `now`), latest first.
    fn due_ticks(
        &self,
        after: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Vec<DateTime<Utc>> {
        let mut ticks = Vec::new();
        let mut next = self.tick_at_or_before(now, true);
        while let Some(tick) = next.filter(|t| *t > after) {
            ticks.push(tick);
            if ticks.len() >= limit as usize {
                break;
            }
            next = self.tick_at_or_before(tick, false);
        }
        ticks
    }

    /// What a pass at `now` enqueues when the schedule's last tick (or, before its first,
    /// the time it was first stored) is `after`; `None` when no tick is due.
    pub(crate) fn plan(&self, after: DateTime<Utc>, now: DateTime<Utc>) -> Option<TickPlan> {
        let wanted = match self.missed {
            MissedTicks::Skip | MissedTicks::Once => 1,
            MissedTicks::Backfill(n) => n.max(1),
        };
        let mut due = self.due_ticks(after, now, wanted);
        let through = *due.first()?;
        if self.missed == MissedTicks::Skip && now - through > MISSED_AFTER {
            due.clear();
        }
        due.reverse();
        Some(TickPlan {
            through,
            ticks: due,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn schedule(cron: &str, missed: MissedTicks) -> PeriodicSchedule {
        let mut s = PeriodicSchedule::new("s", "app::t", cron, "UTC").unwrap();
        s.missed = missed;
        s
    }

    #[test]
    fn an_on_time_tick_is_enqueued_under_every_policy() {
        for missed in [
            MissedTicks::Skip,
            MissedTicks::Once,
            MissedTicks::Backfill(3),
        ] {
            let s = schedule("0 * * * *", missed);
            let plan = s
                .plan(at("2026-01-01T09:00:00Z"), at("2026-01-01T10:00:01Z"))
                .unwrap();
            assert_eq!(plan.ticks, [at("2026-01-01T10:00:00Z")], "{missed}");
            assert_eq!(plan.through, at("2026-01-01T10:00:00Z"));
        }
    }

    #[test]
    fn missed_ticks_follow_the_policy() {
        let (after, now) = (at("2026-01-01T04:00:00Z"), at("2026-01-01T10:30:00Z"));
        let plan = |missed| schedule("0 * * * *", missed).plan(after, now).unwrap();
        assert!(plan(MissedTicks::Skip).ticks.is_empty());
        assert_eq!(plan(MissedTicks::Skip).through, at("2026-01-01T10:00:00Z"));
        assert_eq!(plan(MissedTicks::Once).ticks, [at("2026-01-01T10:00:00Z")]);
        assert_eq!(
            plan(MissedTicks::Backfill(3)).ticks,
            [
                at("2026-01-01T08:00:00Z"),
                at("2026-01-01T09:00:00Z"),
                at("2026-01-01T10:00:00Z")
            ]
        );
        assert_eq!(plan(MissedTicks::Backfill(100)).ticks.len(), 6);
    }

    #[test]
    fn nothing_is_due_before_the_next_tick() {
        let s = schedule("*/5 * * * * *", MissedTicks::Skip);
        assert_eq!(
            s.plan(at("2026-01-01T10:00:05Z"), at("2026-01-01T10:00:09Z")),
            None
        );
        assert_eq!(
            s.next_tick(at("2026-01-01T10:00:09Z")),
            Some(at("2026-01-01T10:00:10Z"))
        );
    }

    #[test]
    fn the_time_zone_moves_the_ticks() {
        let s = PeriodicSchedule::new("s", "app::t", "0 7 * * *", "Europe/Paris").unwrap();
        assert_eq!(
            s.next_tick(at("2026-07-01T00:00:00Z")),
            Some(at("2026-07-01T05:00:00Z"))
        );
    }

    #[test]
    fn bad_expressions_and_zones_are_named() {
        let err = PeriodicSchedule::new("daily", "app::t", "61 * * * *", "UTC").unwrap_err();
        assert!(
            err.contains("\"61 * * * *\"") && err.contains("'daily'"),
            "{err}"
        );
        let err = PeriodicSchedule::new("daily", "app::t", "0 7 * * *", "Mars/Base").unwrap_err();
        assert!(
            err.contains("\"Mars/Base\"") && err.contains("'daily'"),
            "{err}"
        );
    }
}
