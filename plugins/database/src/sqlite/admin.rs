//! SQLite listings, statistics, pruning and the transactional insert statement.

use super::{json_list, read_row, us, SqliteStore, TxError, COLUMNS};
use crate::error::Result;
use crate::row::from_micros;
use crate::store::{minute_count, param, prune_targets, sort_stats, MinuteCount, PageRequest};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use taskhost_plugin_api::{
    ListRequest, PruneRequest, QueueStats, TaskResultData, TaskResultStatus,
};

impl SqliteStore {
    pub(super) fn results(&self) -> Result<Vec<TaskResultData>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM taskhost_tasks WHERE backend_name = ?1 \
             ORDER BY enqueued_at, rowid"
        );
        self.select("listing task results", &sql, (self.config.alias.as_str(),))
    }

    pub(super) fn list(&self, request: &ListRequest) -> Result<Vec<TaskResultData>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM taskhost_tasks WHERE backend_name = ?1 \
             AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR queue_name = ?3) \
             AND (?4 IS NULL OR task_path = ?4) \
             ORDER BY enqueued_at DESC, rowid DESC LIMIT ?5"
        );
        let limit = request.limit.map_or(-1, i64::from);
        let params = (
            self.config.alias.as_str(),
            request.status.map(TaskResultStatus::as_str),
            request.queue_name.as_deref(),
            request.task_path.as_deref(),
            limit,
        );
        self.select("listing task results", &sql, params)
    }

    /// The statement of [`SqliteStore::list_page`]; with a cursor (`?5`) it is a plain range
    /// on the primary key (no `?5 IS NULL OR`), so SQLite walks the id index backwards from
    /// the cursor rather than from the newest row, and never sorts.
    pub(crate) fn page_sql(cursor: bool) -> String {
        let after = match cursor {
            true => "AND id < ?5",
            false => "AND ?5 IS NULL",
        };
        format!(
            "SELECT {COLUMNS} FROM taskhost_tasks WHERE backend_name = ?1 \
             AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR queue_name = ?3) \
             AND (?4 IS NULL OR task_path = ?4) {after} \
             AND (?6 IS NULL OR enqueued_at >= ?6) AND (?7 IS NULL OR enqueued_at < ?7) \
             ORDER BY id DESC LIMIT ?8"
        )
    }

    pub(super) fn list_page(&self, request: &PageRequest) -> Result<Vec<TaskResultData>> {
        let sql = Self::page_sql(request.before_id.is_some());
        let params = (
            self.config.alias.as_str(),
            request.status.map(TaskResultStatus::as_str),
            request.queue_name.as_deref(),
            request.task_path.as_deref(),
            request.before_id.as_deref(),
            request.enqueued_after.map(us),
            request.enqueued_before.map(us),
            i64::from(request.limit),
        );
        self.select("listing a page of task results", &sql, params)
    }

    pub(super) fn finished_per_minute(&self, since: DateTime<Utc>) -> Result<Vec<MinuteCount>> {
        let alias = &self.config.alias;
        let raw = self.read("counting finished tasks per minute", |c| {
            let mut stmt = c.prepare_cached(
                "SELECT finished_at / 60000000, status, COUNT(*) FROM taskhost_tasks \
                 WHERE finished_at >= ?2 AND backend_name = ?1 GROUP BY 1, 2 ORDER BY 1, 2",
            )?;
            let rows = stmt.query_map((alias, us(since)), |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })?;
        raw.into_iter()
            .map(|(minute, status, count)| minute_count(minute, &status, count))
            .collect()
    }

    fn select(
        &self,
        doing: &str,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<TaskResultData>> {
        let rows = self.read(doing, |c| {
            let mut stmt = c.prepare_cached(sql)?;
            let mut rows = stmt.query(params)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(read_row(r)?);
            }
            Ok(out)
        })?;
        rows.into_iter().map(|r| r.into_result()).collect()
    }

    pub(super) fn stats(&self) -> Result<Vec<QueueStats>> {
        let alias = &self.config.alias;
        let raw = self.read("counting tasks", |c| {
            let mut stmt = c.prepare_cached(
                "SELECT queue_name, status, COUNT(*), MIN(enqueued_at) FROM taskhost_tasks \
                 WHERE backend_name = ?1 GROUP BY queue_name, status",
            )?;
            let rows = stmt.query_map([alias], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })?;
        let mut stats = Vec::with_capacity(raw.len());
        for (queue_name, status, count, oldest) in raw {
            let status = TaskResultStatus::parse(&status).ok_or_else(|| {
                crate::error::Error::Other(format!(
                    "a row of queue '{queue_name}' has the unknown status '{status}'"
                ))
            })?;
            let oldest_enqueued_at = match status {
                TaskResultStatus::Ready => {
                    Some(from_micros("(oldest READY)", "enqueued_at", oldest)?)
                }
                _ => None,
            };
            stats.push(QueueStats {
                queue_name,
                status,
                count: count as u64,
                oldest_enqueued_at,
            });
        }
        sort_stats(&mut stats);
        Ok(stats)
    }

    pub(super) fn prune(&self, request: &PruneRequest) -> Result<u64> {
        let targets = prune_targets(request)?;
        // The matching rows, at most ?5 of them (-1 = no limit).
        let rows = "SELECT rowid FROM taskhost_tasks WHERE status = ?1 \
             AND finished_at IS NOT NULL AND (?2 IS NULL OR finished_at < ?2) \
             AND backend_name = ?3 \
             AND (?4 IS NULL OR queue_name IN (SELECT value FROM json_each(?4))) LIMIT ?5";
        let sql = match request.dry_run {
            true => format!("SELECT COUNT(*) FROM ({rows})"),
            false => format!("DELETE FROM taskhost_tasks WHERE rowid IN ({rows})"),
        };
        let queues = request.queues.as_deref().map(json_list);
        self.write("pruning task results", |tx| {
            let mut stmt = tx.prepare_cached(&sql)?;
            let mut total = 0u64;
            for (status, cutoff) in &targets {
                let left = match request.limit {
                    Some(limit) if total >= limit => break,
                    Some(limit) => i64::try_from(limit - total).unwrap_or(i64::MAX),
                    None => -1,
                };
                let params = (*status, cutoff.map(us), &self.config.alias, &queues, left);
                total += match request.dry_run {
                    true => stmt.query_row(params, |r| r.get::<_, i64>(0))? as u64,
                    false => stmt.execute(params)? as u64,
                };
            }
            Ok::<_, TxError>(total)
        })
    }

    pub(super) fn insert_sql(&self) -> Value {
        let alias = self.config.alias.replace('\'', "''");
        json!({
            "database": "sqlite",
            "sql": format!(
                "INSERT INTO taskhost_tasks (id, task_path, args, queue_name, priority, \
                 run_after, backend_name, max_attempts, kwargs, takes_context, is_async, \
                 status, enqueued_at) VALUES (?1, ?2, json(?3), ?4, ?5, ?6, '{alias}', ?7, \
                 json(COALESCE(?8, '{{}}')), COALESCE(?9, 0), COALESCE(?10, 0), 'READY', \
                 CAST(unixepoch('subsec') * 1000000 AS INTEGER))"
            ),
            "parameters": [
                param(1, "id", "TEXT", true, "a new UUID, lowercase and hyphenated (UUID v7 keeps FIFO order)"),
                param(2, "task_path", "TEXT", true, "the task's path, e.g. 'app::tasks::send_email'"),
                param(3, "args", "TEXT (JSON array)", true, "positional arguments, e.g. '[1, \"x\"]'"),
                param(4, "queue_name", "TEXT", true, "the queue, e.g. 'default'"),
                param(5, "priority", "INTEGER", true, "-100 (lowest) to 100 (highest); 0 by default"),
                param(6, "run_after", "INTEGER or NULL", false, "earliest start in microseconds since the Unix epoch (UTC); NULL = now"),
                param(7, "max_attempts", "INTEGER or NULL", false, "attempts allowed; NULL = the backend's max_attempts option"),
                param(8, "kwargs", "TEXT (JSON object) or NULL", false, "keyword arguments; NULL = {}"),
                param(9, "takes_context", "INTEGER 0/1 or NULL", false, "must match the task's definition"),
                param(10, "is_async", "INTEGER 0/1 or NULL", false, "must match the task's definition"),
            ],
            "notes": "Run it on your own connection to the same SQLite file, inside your own \
                      transaction: the task is stored if and only if that transaction commits. \
                      Workers find it at their next poll (SQLite has no notifications).",
        })
    }
}
