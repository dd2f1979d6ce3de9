//! PostgreSQL listings, statistics, pruning and the transactional insert statement.

use super::{read_row, PgStore, TxError, COLUMNS};
use crate::error::{Error, Result};
use crate::row::parse_id;
use crate::store::{minute_count, param, prune_targets, sort_stats, MinuteCount, PageRequest};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use taskhost_plugin_api::{
    ListRequest, PruneRequest, QueueStats, TaskResultData, TaskResultStatus,
};

impl PgStore {
    pub(super) fn results(&self) -> Result<Vec<TaskResultData>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM taskhost_tasks WHERE backend_name = $1 \
             ORDER BY enqueued_at, id"
        );
        self.select("listing task results", &sql, &[&self.config.alias])
    }

    pub(super) fn list(&self, request: &ListRequest) -> Result<Vec<TaskResultData>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM taskhost_tasks WHERE backend_name = $1 \
             AND ($2::text IS NULL OR status = $2::text) \
             AND ($3::text IS NULL OR queue_name = $3::text) \
             AND ($4::text IS NULL OR task_path = $4::text) \
             ORDER BY enqueued_at DESC, id DESC LIMIT $5"
        );
        let status = request.status.map(TaskResultStatus::as_str);
        let limit = request.limit.map(i64::from);
        self.select(
            "listing task results",
            &sql,
            &[
                &self.config.alias,
                &status,
                &request.queue_name,
                &request.task_path,
                &limit,
            ],
        )
    }

    pub(super) fn list_page(&self, request: &PageRequest) -> Result<Vec<TaskResultData>> {
        // A plain range on the primary key when there is a cursor, so the index scan starts
        // there rather than at the newest row.
        let before = match request.before_id.as_deref() {
            Some(id) => Some(parse_id(id).ok_or_else(|| {
                Error::InvalidRequest(format!("before_id '{id}' is not a result id (a UUID)"))
            })?),
            None => None,
        };
        let after = match before {
            Some(_) => "AND id < $5::uuid",
            None => "AND $5::uuid IS NULL",
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM taskhost_tasks WHERE backend_name = $1 \
             AND ($2::text IS NULL OR status = $2::text) \
             AND ($3::text IS NULL OR queue_name = $3::text) \
             AND ($4::text IS NULL OR task_path = $4::text) {after} \
             AND ($6::timestamptz IS NULL OR enqueued_at >= $6::timestamptz) \
             AND ($7::timestamptz IS NULL OR enqueued_at < $7::timestamptz) \
             ORDER BY id DESC LIMIT $8"
        );
        let status = request.status.map(TaskResultStatus::as_str);
        self.select(
            "listing a page of task results",
            &sql,
            &[
                &self.config.alias,
                &status,
                &request.queue_name,
                &request.task_path,
                &before,
                &request.enqueued_after,
                &request.enqueued_before,
                &i64::from(request.limit),
            ],
        )
    }

    pub(super) fn finished_per_minute(&self, since: DateTime<Utc>) -> Result<Vec<MinuteCount>> {
        let rows = self.read("counting finished tasks per minute", |tx| {
            let rows = tx.query(
                "SELECT floor(extract(epoch FROM finished_at) / 60)::bigint AS minute, status, \
                 COUNT(*) FROM taskhost_tasks WHERE finished_at >= $2 AND backend_name = $1 \
                 GROUP BY 1, 2 ORDER BY 1, 2",
                &[&self.config.alias, &since],
            )?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get::<_, i64>(0)?,
                        r.try_get::<_, String>(1)?,
                        r.try_get::<_, i64>(2)?,
                    ))
                })
                .collect::<Result<Vec<_>, TxError>>()
        })?;
        rows.into_iter()
            .map(|(minute, status, count)| minute_count(minute, &status, count))
            .collect()
    }

    fn select(
        &self,
        doing: &str,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<TaskResultData>> {
        let rows = self.read(doing, |tx| {
            tx.query(sql, params)?
                .iter()
                .map(read_row)
                .collect::<Result<Vec<_>, TxError>>()
        })?;
        rows.into_iter().map(|r| r.into_result()).collect()
    }

    pub(super) fn stats(&self) -> Result<Vec<QueueStats>> {
        let rows = self.read("counting tasks", |tx| {
            let rows = tx.query(
                "SELECT queue_name, status, COUNT(*), MIN(enqueued_at) FROM taskhost_tasks \
                 WHERE backend_name = $1 GROUP BY queue_name, status",
                &[&self.config.alias],
            )?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get::<_, String>(0)?,
                        r.try_get::<_, String>(1)?,
                        r.try_get::<_, i64>(2)?,
                        r.try_get::<_, Option<DateTime<Utc>>>(3)?,
                    ))
                })
                .collect::<Result<Vec<_>, TxError>>()
        })?;
        let mut stats = Vec::with_capacity(rows.len());
        for (queue_name, status, count, oldest) in rows {
            let status = TaskResultStatus::parse(&status).ok_or_else(|| {
                Error::Other(format!(
                    "a row of queue '{queue_name}' has the unknown status '{status}'"
                ))
            })?;
            stats.push(QueueStats {
                oldest_enqueued_at: oldest.filter(|_| status == TaskResultStatus::Ready),
                queue_name,
                status,
                count: count as u64,
            });
        }
        sort_stats(&mut stats);
        Ok(stats)
    }

    pub(super) fn prune(&self, request: &PruneRequest) -> Result<u64> {
        let targets = prune_targets(request)?;
        // The matching rows, at most $5 of them (NULL = no limit).
        let rows = "SELECT id FROM taskhost_tasks WHERE status = $1 AND finished_at IS NOT NULL \
             AND ($2::timestamptz IS NULL OR finished_at < $2::timestamptz) \
             AND backend_name = $3 AND ($4::text[] IS NULL OR queue_name = ANY($4::text[])) \
             LIMIT $5::bigint";
        self.write("pruning task results", |tx| {
            let mut total = 0u64;
            for (status, cutoff) in &targets {
                let left = match request.limit {
                    Some(limit) if total >= limit => break,
                    Some(limit) => Some(i64::try_from(limit - total).unwrap_or(i64::MAX)),
                    None => None,
                };
                let params: [&(dyn postgres::types::ToSql + Sync); 5] =
                    [status, cutoff, &self.config.alias, &request.queues, &left];
                total += match request.dry_run {
                    true => {
                        let sql = format!("SELECT COUNT(*) FROM ({rows}) AS matching");
                        tx.query(&sql, &params)?[0].try_get::<_, i64>(0)? as u64
                    }
                    false => {
                        let sql = format!("DELETE FROM taskhost_tasks WHERE id IN ({rows})");
                        tx.execute(&sql, &params)?
                    }
                };
            }
            Ok(total)
        })
    }

    pub(super) fn insert_sql(&self) -> Value {
        let alias = self.config.alias.replace('\'', "''");
        json!({
            "database": "postgresql",
            "sql": format!(
                "SELECT \"{}\".taskhost_enqueue($1::uuid, $2::text, $3::jsonb, $4::text, \
                 $5::integer, $6::timestamptz, '{alias}', $7::integer, $8::jsonb, \
                 COALESCE($9::boolean, false), COALESCE($10::boolean, false))",
                self.schema
            ),
            "parameters": [
                param(1, "id", "uuid", true, "a new UUID (v7 keeps FIFO order); also the function's result"),
                param(2, "task_path", "text", true, "the task's path, e.g. 'app::tasks::send_email'"),
                param(3, "args", "jsonb (array)", true, "positional arguments, e.g. '[1, \"x\"]'"),
                param(4, "queue_name", "text", true, "the queue, e.g. 'default'"),
                param(5, "priority", "integer", true, "-100 (lowest) to 100 (highest); 0 by default"),
                param(6, "run_after", "timestamptz or NULL", false, "earliest start; NULL = now"),
                param(7, "max_attempts", "integer or NULL", false, "attempts allowed; NULL = the backend's max_attempts option"),
                param(8, "kwargs", "jsonb (object) or NULL", false, "keyword arguments; NULL = {}"),
                param(9, "takes_context", "boolean or NULL", false, "must match the task's definition"),
                param(10, "is_async", "boolean or NULL", false, "must match the task's definition"),
            ],
            "notes": "Run it on your own connection to the same database, inside your own \
                      transaction: the task row and the NOTIFY that wakes workers commit or roll \
                      back with your data. Any client can also call the SQL function \
                      taskhost_enqueue(id, task_path, args, queue_name, priority, run_after, \
                      backend_name, max_attempts, kwargs, takes_context, is_async) directly; \
                      parameters after args have defaults.",
        })
    }
}
