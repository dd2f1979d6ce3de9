//! The SQLite side of periodic tasks: `taskhost_schedules` and `taskhost_schedule_ticks`
//! (migration 9). Every write is one `BEGIN IMMEDIATE` transaction, so the enqueues of one
//! schedule's ticks by several workers run one after the other.

use super::{us, SqliteStore, TxError};
use crate::error::Result;
use crate::periodic::{
    NewTick, ScheduleDefinition, ScheduleState, SyncRequest, SyncResponse, TickEnqueued,
    TicksEnqueued,
};
use crate::row::{corrupt, from_micros, NewTask};
use chrono::{DateTime, Utc};
use rusqlite::OptionalExtension;

/// The columns [`read_schedule`] reads, in its order.
const SCHEDULE_COLUMNS: &str = "name, task_path, cron, timezone, missed, queue_name, priority, \
    args, kwargs, created_at, updated_at, last_tick, last_task_id";

/// Read one `taskhost_schedules` row ([`SCHEDULE_COLUMNS`]).
fn read_schedule(r: &rusqlite::Row<'_>) -> Result<ScheduleState, TxError> {
    let name: String = r.get(0)?;
    let what = format!("schedule {name}");
    let json = |at: usize, column: &'static str| -> Result<serde_json::Value, TxError> {
        let text: String = r.get(at)?;
        Ok(serde_json::from_str(&text).map_err(|e| corrupt(&what, column, e))?)
    };
    let time = |at: usize, column: &'static str| -> Result<Option<DateTime<Utc>>, TxError> {
        let micros: Option<i64> = r.get(at)?;
        Ok(micros.map(|m| from_micros(&what, column, m)).transpose()?)
    };
    let required = |at: usize, column: &'static str| -> Result<DateTime<Utc>, TxError> {
        Ok(time(at, column)?.ok_or_else(|| corrupt(&what, column, "it is NULL"))?)
    };
    Ok(ScheduleState {
        created_at: required(9, "created_at")?,
        updated_at: required(10, "updated_at")?,
        last_tick: time(11, "last_tick")?,
        last_task_id: r.get(12)?,
        definition: ScheduleDefinition {
            task_path: r.get(1)?,
            cron: r.get(2)?,
            timezone: r.get(3)?,
            missed: r.get(4)?,
            queue_name: r.get(5)?,
            priority: r.get(6)?,
            args: json(7, "args")?,
            kwargs: json(8, "kwargs")?,
            name,
        },
    })
}

/// Every schedule of `alias`, by name.
fn list_in(tx: &rusqlite::Connection, alias: &str) -> Result<Vec<ScheduleState>, TxError> {
    let sql = format!(
        "SELECT {SCHEDULE_COLUMNS} FROM taskhost_schedules WHERE backend_name = ?1 ORDER BY name"
    );
    let mut stmt = tx.prepare_cached(&sql)?;
    let mut rows = stmt.query([alias])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(read_schedule(r)?);
    }
    Ok(out)
}

impl SqliteStore {
    pub(super) fn periodic_sync(&self, request: &SyncRequest) -> Result<SyncResponse> {
        let alias = self.config.alias.as_str();
        let now = us(request.now);
        self.write("syncing the periodic schedules", |tx| {
            let stored = list_in(tx, alias)?;
            let mut response = SyncResponse::default();
            for d in &request.schedules {
                let (args, kwargs) = (d.args.to_string(), d.kwargs.to_string());
                let params = rusqlite::params![
                    alias,
                    d.name,
                    d.task_path,
                    d.cron,
                    d.timezone,
                    d.missed,
                    d.queue_name,
                    d.priority,
                    args,
                    kwargs,
                    now
                ];
                match stored.iter().find(|s| s.definition.name == d.name) {
                    None => {
                        tx.prepare_cached(
                            "INSERT INTO taskhost_schedules (backend_name, name, task_path, \
                             cron, timezone, missed, queue_name, priority, args, kwargs, \
                             created_at, updated_at) \
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
                        )?
                        .execute(params)?;
                        response.added.push(d.name.clone());
                    }
                    Some(s) if s.definition != *d => {
                        tx.prepare_cached(
                            "UPDATE taskhost_schedules SET task_path = ?3, cron = ?4, \
                             timezone = ?5, missed = ?6, queue_name = ?7, priority = ?8, \
                             args = ?9, kwargs = ?10, updated_at = ?11 \
                             WHERE backend_name = ?1 AND name = ?2",
                        )?
                        .execute(params)?;
                        response.updated.push(d.name.clone());
                    }
                    Some(_) => {}
                }
            }
            for s in &stored {
                let name = &s.definition.name;
                if request.schedules.iter().any(|d| d.name == *name) {
                    continue;
                }
                tx.execute(
                    "DELETE FROM taskhost_schedules WHERE backend_name = ?1 AND name = ?2",
                    (alias, name),
                )?;
                tx.execute(
                    "DELETE FROM taskhost_schedule_ticks WHERE backend_name = ?1 AND schedule = ?2",
                    (alias, name),
                )?;
                response.removed.push(name.clone());
            }
            Ok(response)
        })
    }

    pub(super) fn periodic_list(&self) -> Result<Vec<ScheduleState>> {
        self.read("listing the periodic schedules", |c| {
            list_in(c, &self.config.alias)
        })
    }

    pub(super) fn periodic_enqueue(
        &self,
        schedule: &str,
        through: DateTime<Utc>,
        ticks: Vec<NewTick>,
        now: DateTime<Utc>,
    ) -> Result<(TicksEnqueued, Vec<NewTask>)> {
        let alias = self.config.alias.as_str();
        let (done, stored) = self.write("enqueuing periodic ticks", |tx| {
            let last: Option<Option<i64>> = tx
                .prepare_cached(
                    "SELECT last_tick FROM taskhost_schedules WHERE backend_name = ?1 AND name = ?2",
                )?
                .query_row((alias, schedule), |r| r.get(0))
                .optional()?;
            let Some(last) = last else {
                return Ok((TicksEnqueued::default(), Vec::new()));
            };
            let mut done = TicksEnqueued {
                found: true,
                ..TicksEnqueued::default()
            };
            let mut stored = Vec::new();
            for (i, t) in ticks.iter().enumerate() {
                if last.is_some_and(|last| us(t.tick) <= last) {
                    continue;
                }
                let id = t.task.id.hyphenated().to_string();
                let inserted = tx
                    .prepare_cached(
                        "INSERT INTO taskhost_schedule_ticks (backend_name, schedule, tick, \
                         task_id, enqueued_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                    )?
                    .execute((alias, schedule, us(t.tick), &id, us(now)))?;
                if inserted == 0 {
                    continue;
                }
                self.insert_run(tx, std::slice::from_ref(&t.task))?;
                done.enqueued.push(TickEnqueued { tick: t.tick, id });
                stored.push(i);
            }
            let new_last = last.map_or(us(through), |last| last.max(us(through)));
            let last_id = done.enqueued.last().map(|t| t.id.clone());
            tx.prepare_cached(
                "UPDATE taskhost_schedules SET last_tick = ?3, \
                 last_task_id = COALESCE(?4, last_task_id) WHERE backend_name = ?1 AND name = ?2",
            )?
            .execute((alias, schedule, new_last, last_id))?;
            tx.prepare_cached(
                "DELETE FROM taskhost_schedule_ticks \
                 WHERE backend_name = ?1 AND schedule = ?2 AND tick < ?3",
            )?
            .execute((alias, schedule, new_last))?;
            done.last_tick = Some(from_micros(schedule, "last_tick", new_last)?);
            Ok((done, stored))
        })?;
        let tasks = ticks
            .into_iter()
            .enumerate()
            .filter(|(i, _)| stored.contains(i))
            .map(|(_, t)| t.task)
            .collect();
        Ok((done, tasks))
    }
}
