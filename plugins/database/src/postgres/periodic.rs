//! The PostgreSQL side of periodic tasks: `taskhost_schedules` and `taskhost_schedule_ticks`
//! (migration 9). An enqueue of ticks locks its schedule's row (`FOR UPDATE`) for its
//! transaction, so workers on any number of machines enqueueing the same tick wait for each
//! other, and the second finds the tick taken (its last tick, and the ticks' primary key).

use super::{PgStore, Tx, TxError};
use crate::error::Result;
use crate::periodic::{
    NewTick, ScheduleDefinition, ScheduleState, SyncRequest, SyncResponse, TickEnqueued,
    TicksEnqueued,
};
use crate::row::{corrupt, NewTask};
use chrono::{DateTime, Utc};

/// The columns [`read_schedule`] reads, in its order.
const SCHEDULE_COLUMNS: &str = "name, task_path, cron, timezone, missed, queue_name, priority, \
    args, kwargs, created_at, updated_at, last_tick, last_task_id";

/// Read one `taskhost_schedules` row ([`SCHEDULE_COLUMNS`]).
fn read_schedule(r: &postgres::Row) -> Result<ScheduleState, TxError> {
    let name: String = r.try_get(0)?;
    let what = format!("schedule {name}");
    let json = |at: usize, column: &'static str| -> Result<serde_json::Value, TxError> {
        let text: String = r.try_get(at)?;
        Ok(serde_json::from_str(&text).map_err(|e| corrupt(&what, column, e))?)
    };
    Ok(ScheduleState {
        created_at: r.try_get(9)?,
        updated_at: r.try_get(10)?,
        last_tick: r.try_get(11)?,
        last_task_id: r.try_get(12)?,
        definition: ScheduleDefinition {
            task_path: r.try_get(1)?,
            cron: r.try_get(2)?,
            timezone: r.try_get(3)?,
            missed: r.try_get(4)?,
            queue_name: r.try_get(5)?,
            priority: r.try_get(6)?,
            args: json(7, "args")?,
            kwargs: json(8, "kwargs")?,
            name,
        },
    })
}

/// Every schedule of `alias`, by name (`FOR UPDATE` when `lock`).
fn list_in(tx: &mut Tx<'_>, alias: &str, lock: bool) -> Result<Vec<ScheduleState>, TxError> {
    let sql = format!(
        "SELECT {SCHEDULE_COLUMNS} FROM taskhost_schedules WHERE backend_name = $1 ORDER BY name{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    tx.query(&sql, &[&alias])?
        .iter()
        .map(read_schedule)
        .collect()
}

impl PgStore {
    pub(super) fn periodic_sync(&self, request: &SyncRequest) -> Result<SyncResponse> {
        let alias = self.config.alias.as_str();
        self.write("syncing the periodic schedules", |tx| {
            // Two workers starting at once: one sync after the other, not two inserts racing.
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtext('taskhost_periodic_sync.' || $1::text))",
                &[&alias],
            )?;
            let stored = list_in(tx, alias, true)?;
            let mut response = SyncResponse::default();
            for d in &request.schedules {
                let (args, kwargs) = (d.args.to_string(), d.kwargs.to_string());
                let params: [&(dyn postgres::types::ToSql + Sync); 11] = [
                    &alias,
                    &d.name,
                    &d.task_path,
                    &d.cron,
                    &d.timezone,
                    &d.missed,
                    &d.queue_name,
                    &d.priority,
                    &args,
                    &kwargs,
                    &request.now,
                ];
                match stored.iter().find(|s| s.definition.name == d.name) {
                    None => {
                        tx.execute(
                            "INSERT INTO taskhost_schedules (backend_name, name, task_path, \
                             cron, timezone, missed, queue_name, priority, args, kwargs, \
                             created_at, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
                            &params,
                        )?;
                        response.added.push(d.name.clone());
                    }
                    Some(s) if s.definition != *d => {
                        tx.execute(
                            "UPDATE taskhost_schedules SET task_path = $3, cron = $4, \
                             timezone = $5, missed = $6, queue_name = $7, priority = $8, \
                             args = $9, kwargs = $10, updated_at = $11 \
                             WHERE backend_name = $1 AND name = $2",
                            &params,
                        )?;
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
                    "DELETE FROM taskhost_schedules WHERE backend_name = $1 AND name = $2",
                    &[&alias, name],
                )?;
                tx.execute(
                    "DELETE FROM taskhost_schedule_ticks WHERE backend_name = $1 AND schedule = $2",
                    &[&alias, name],
                )?;
                response.removed.push(name.clone());
            }
            Ok(response)
        })
    }

    pub(super) fn periodic_list(&self) -> Result<Vec<ScheduleState>> {
        self.read("listing the periodic schedules", |tx| {
            list_in(tx, &self.config.alias, false)
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
            let rows = tx.query(
                "SELECT last_tick FROM taskhost_schedules \
                 WHERE backend_name = $1 AND name = $2 FOR UPDATE",
                &[&alias, &schedule],
            )?;
            let Some(row) = rows.first() else {
                return Ok((TicksEnqueued::default(), Vec::new()));
            };
            let last: Option<DateTime<Utc>> = row.try_get(0)?;
            let mut done = TicksEnqueued {
                found: true,
                ..TicksEnqueued::default()
            };
            let mut stored = Vec::new();
            for (i, t) in ticks.iter().enumerate() {
                if last.is_some_and(|last| t.tick <= last) {
                    continue;
                }
                let inserted = tx.execute(
                    "INSERT INTO taskhost_schedule_ticks (backend_name, schedule, tick, task_id, \
                     enqueued_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    &[&alias, &schedule, &t.tick, &t.task.id, &now],
                )?;
                if inserted == 0 {
                    continue;
                }
                self.insert_one(tx, &t.task)?;
                done.enqueued.push(TickEnqueued {
                    tick: t.tick,
                    id: t.task.id.hyphenated().to_string(),
                });
                stored.push(i);
            }
            let new_last = last.map_or(through, |last| last.max(through));
            let last_id = done.enqueued.last().map(|t| t.id.clone());
            tx.execute(
                "UPDATE taskhost_schedules SET last_tick = $3, \
                 last_task_id = COALESCE($4, last_task_id) WHERE backend_name = $1 AND name = $2",
                &[&alias, &schedule, &new_last, &last_id],
            )?;
            tx.execute(
                "DELETE FROM taskhost_schedule_ticks \
                 WHERE backend_name = $1 AND schedule = $2 AND tick < $3",
                &[&alias, &schedule, &new_last],
            )?;
            done.last_tick = Some(new_last);
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
