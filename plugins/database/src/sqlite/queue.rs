//! The SQLite queue: enqueue, get, claim, complete, renew, release and rescue.

use super::limits::claim_taken_sql;
use super::{json_list, read_row, us, SqliteStore, TxError, COLUMNS};
use crate::error::Result;
use crate::row::{claim_order, outcome_columns, parse_id, to_json, Expired, NewTask};
use crate::store::Claim;
use chrono::{DateTime, Utc};
use rusqlite::named_params;
use taskhost_plugin_api::{ClaimedTask, Completion, CompletionAck, LeaseRequest, TaskResultData};

/// Rows per INSERT statement, largest first: a run of rows of one task is inserted in as few
/// statements of these sizes as it takes (1,000 rows: 15 × 64, 5 × 8).
const ROWS_PER_INSERT: [usize; 3] = [64, 8, 1];

/// Placeholders every row of a multi-row INSERT shares: ?1 task_path, ?2 queue_name,
/// ?3 priority, ?4 backend_name (the alias), ?5 kwargs, ?6 takes_context, ?7 is_async,
/// ?8 run_after, ?9 max_attempts, ?10 timeout_secs. Row `i` (from 0) has its own id, args
/// and enqueued_at at ?(11 + 3i), ?(12 + 3i), ?(13 + 3i).
const SHARED_PARAMS: usize = 10;

/// The INSERT of `rows` rows (see [`SHARED_PARAMS`]).
fn insert_rows_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO taskhost_tasks (id, task_path, queue_name, priority, backend_name, status, \
         args, kwargs, takes_context, is_async, run_after, enqueued_at, max_attempts, \
         timeout_secs) VALUES ",
    );
    for i in 0..rows {
        let at = SHARED_PARAMS + 3 * i;
        let comma = if i == 0 { "" } else { ", " };
        sql += &format!(
            "{comma}(?{}, ?1, ?2, ?3, ?4, 'READY', ?{}, ?5, ?6, ?7, ?8, ?{}, ?9, ?10)",
            at + 1,
            at + 2,
            at + 3
        );
    }
    sql
}

/// The INSERT statements of [`ROWS_PER_INSERT`] rows, built once.
fn insert_statements() -> &'static [String; 3] {
    static SQL: std::sync::OnceLock<[String; 3]> = std::sync::OnceLock::new();
    SQL.get_or_init(|| ROWS_PER_INSERT.map(insert_rows_sql))
}

/// The ready tasks a claim takes, in claim order: `taskhost_tasks_claim_idx` serves the
/// filter on status and alias and the whole ORDER BY, so SQLite walks the index and stops
/// after `:limit` matches, without a sort.
pub(crate) const CLAIM_SELECT: &str = "SELECT id FROM taskhost_tasks \
    WHERE status = 'READY' AND backend_name = :alias \
      AND (run_after IS NULL OR run_after <= :now) \
      AND (:queues IS NULL OR queue_name IN (SELECT value FROM json_each(:queues))) \
      AND queue_name NOT IN (SELECT value FROM json_each(:exclude)) \
    ORDER BY priority DESC, COALESCE(run_after, 253370764800000000), enqueued_at, id \
    LIMIT :limit";

/// What a claim sets on the rows it takes (`:now`, `:worker`, `:expires`).
pub(super) const CLAIM_SET: &str = "status = 'RUNNING', started_at = :now, \
    last_attempted_at = :now, worker_ids = CASE WHEN json_valid(worker_ids) \
    THEN json_insert(worker_ids, '$[#]', :worker) ELSE worker_ids END, \
    attempts = attempts + 1, lease_token = lease_token + 1, lease_owner = :worker, \
    lease_expires_at = :expires";

impl SqliteStore {
    /// The rows go in with multi-row INSERTs ([`ROWS_PER_INSERT`]): one statement per 64 rows
    /// of one task opens its cursors and ends once, instead of once per row. The columns a
    /// run of one task shares are bound once per statement (its placeholders repeat in every
    /// row), the id, arguments and enqueue time per row; SQLite copies bound text, so fewer
    /// bindings are fewer copies.
    pub(super) fn enqueue(&self, tasks: &[NewTask]) -> Result<()> {
        self.write("enqueuing tasks", |tx| {
            let mut rest = tasks;
            while let Some(first) = rest.first() {
                let same = |t: &NewTask| {
                    t.request.task == first.request.task && t.request.kwargs == first.request.kwargs
                };
                let run = rest.iter().position(|t| !same(t)).unwrap_or(rest.len());
                let (run, after) = rest.split_at(run);
                self.insert_run(tx, run)?;
                rest = after;
            }
            Ok(())
        })
    }

    /// Insert `run`, rows of one task with the same keyword arguments, in as few statements
    /// of [`ROWS_PER_INSERT`] rows as fit.
    fn insert_run(&self, tx: &rusqlite::Connection, run: &[NewTask]) -> Result<(), TxError> {
        let mut rest = run;
        for (rows, sql) in ROWS_PER_INSERT.iter().zip(insert_statements()) {
            if rest.len() < *rows {
                continue;
            }
            let mut insert = tx.prepare_cached(sql)?;
            let shared = &rest[0].request;
            let t = &shared.task;
            insert.raw_bind_parameter(1, t.path.as_str())?;
            insert.raw_bind_parameter(2, t.queue_name.as_str())?;
            insert.raw_bind_parameter(3, t.priority)?;
            insert.raw_bind_parameter(4, self.config.alias.as_str())?;
            insert.raw_bind_parameter(5, shared.kwargs.as_str())?;
            insert.raw_bind_parameter(6, t.takes_context)?;
            insert.raw_bind_parameter(7, t.is_async)?;
            insert.raw_bind_parameter(8, t.run_after.map(us))?;
            insert.raw_bind_parameter(9, t.max_attempts)?;
            insert.raw_bind_parameter(10, t.timeout_secs)?;
            let mut buffer = uuid::Uuid::encode_buffer();
            while rest.len() >= *rows {
                let (chunk, after) = rest.split_at(*rows);
                for (i, task) in chunk.iter().enumerate() {
                    let at = SHARED_PARAMS + 3 * i;
                    let id: &str = task.id.hyphenated().encode_lower(&mut buffer);
                    insert.raw_bind_parameter(at + 1, id)?;
                    insert.raw_bind_parameter(at + 2, task.request.args.as_str())?;
                    insert.raw_bind_parameter(at + 3, us(task.enqueued_at))?;
                }
                if let Err(err) = insert.raw_execute() {
                    if *rows > 1 && is_duplicate(&err) {
                        // The statement was undone; one row at a time names the duplicate.
                        drop(insert);
                        self.insert_run_by_row(tx, chunk)?;
                        return self.insert_run(tx, after);
                    }
                    let id = chunk[0].id.hyphenated().encode_lower(&mut buffer);
                    return Err(duplicate_or(err, id));
                }
                rest = after;
            }
        }
        Ok(())
    }

    /// [`SqliteStore::insert_run`] one row per statement: after a multi-row INSERT hit a
    /// duplicate id, to name it.
    fn insert_run_by_row(&self, tx: &rusqlite::Connection, run: &[NewTask]) -> Result<(), TxError> {
        for task in run {
            self.insert_run(tx, std::slice::from_ref(task))?;
        }
        Ok(())
    }

    pub(super) fn get(&self, id: uuid::Uuid) -> Result<Option<TaskResultData>> {
        let row = self.read("reading a task result", |c| {
            let sql = format!("SELECT {COLUMNS} FROM taskhost_tasks WHERE id = ?1");
            let mut stmt = c.prepare_cached(&sql)?;
            let mut rows = stmt.query([id.hyphenated().to_string()])?;
            match rows.next()? {
                Some(r) => Ok(Some(read_row(r)?)),
                None => Ok(None),
            }
        })?;
        row.map(|r| r.into_result()).transpose()
    }

    pub(super) fn claim(&self, claim: &Claim) -> Result<Vec<ClaimedTask>> {
        let max_attempts = self.config.max_attempts;
        let sql = format!(
            "UPDATE taskhost_tasks SET {CLAIM_SET} WHERE id IN ({CLAIM_SELECT}) \
             RETURNING {COLUMNS}"
        );
        let mut claimed = self.write("claiming tasks", |tx| {
            self.rescue_in(tx, claim.now)?;
            // With limited queues in reach, the ids the limits let it take (sqlite/limits.rs).
            let taken = self.limited_claim(tx, claim)?;
            let mut stmt = match taken {
                Some(_) => tx.prepare_cached(&claim_taken_sql())?,
                None => tx.prepare_cached(&sql)?,
            };
            let mut rows = match &taken {
                Some(ids) => stmt.query(named_params! {
                    ":ids": ids,
                    ":now": us(claim.now),
                    ":worker": claim.worker_id,
                    ":expires": us(claim.lease_expires_at),
                })?,
                None => stmt.query(named_params! {
                    ":alias": self.config.alias,
                    ":now": us(claim.now),
                    ":queues": claim.queues.as_deref().map(json_list),
                    ":exclude": json_list(&claim.exclude_queues),
                    ":limit": claim.limit,
                    ":worker": claim.worker_id,
                    ":expires": us(claim.lease_expires_at),
                })?,
            };
            let mut claimed = Vec::new();
            let mut corrupt = Vec::new();
            while let Some(r) = rows.next()? {
                let id: String = r.get(0)?;
                match read_row(r) {
                    Ok(row) => match row.into_claimed(max_attempts) {
                        Ok(task) => claimed.push(task),
                        Err(err) => corrupt.push((id, err.to_string())),
                    },
                    Err(TxError::App(err)) => corrupt.push((id, err.to_string())),
                    Err(sql) => return Err(sql),
                }
            }
            drop(rows);
            for (id, message) in corrupt {
                tracing::warn!(id = %id, "claimed a row that cannot be read; marking it FAILED: {message}");
                tx.execute(
                    "UPDATE taskhost_tasks SET status = 'FAILED', finished_at = ?2, \
                     errors = ?3, lease_owner = NULL, lease_expires_at = NULL WHERE id = ?1",
                    (id, us(claim.now), crate::row::corrupt_errors(&message)),
                )?;
            }
            Ok(claimed)
        })?;
        claimed.sort_by(claim_order);
        Ok(claimed)
    }

    pub(super) fn complete(
        &self,
        completions: &[Completion],
        now: DateTime<Utc>,
    ) -> Result<Vec<CompletionAck>> {
        self.write("completing tasks", |tx| {
            let mut update = tx.prepare_cached(
                "UPDATE taskhost_tasks SET status = :status, return_value = :return_value, \
                 finished_at = :finished_at, \
                 run_after = CASE WHEN :retry_at IS NULL THEN run_after ELSE :retry_at END, \
                 errors = CASE WHEN :error IS NULL THEN errors \
                          WHEN json_valid(errors) THEN json_insert(errors, '$[#]', json(:error)) \
                          ELSE json_array(json(:error)) END, \
                 started_at = COALESCE(:started_at, started_at), \
                 last_attempted_at = COALESCE(:started_at, last_attempted_at), \
                 lease_owner = NULL, lease_expires_at = NULL \
                 WHERE id = :id AND status = 'RUNNING' AND lease_token = :token",
            )?;
            let mut acks = Vec::with_capacity(completions.len());
            for c in completions {
                let applied = match parse_id(&c.id) {
                    None => false,
                    Some(id) => {
                        let (status, return_value, error) = outcome_columns(c)?;
                        let finished = (status != "READY").then(|| us(now));
                        update.execute(named_params! {
                            ":status": status,
                            ":return_value": return_value,
                            ":finished_at": finished,
                            ":retry_at": c.retry_at.map(us),
                            ":error": error,
                            ":id": id.hyphenated().to_string(),
                            ":token": c.lease_token,
                            ":started_at": c.started_at.map(us),
                        })? == 1
                    }
                };
                acks.push(CompletionAck {
                    id: c.id.clone(),
                    applied,
                });
            }
            Ok(acks)
        })
    }

    pub(super) fn renew(
        &self,
        request: &LeaseRequest,
        expires_at: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        self.write("renewing leases", |tx| {
            let mut update = tx.prepare_cached(
                "UPDATE taskhost_tasks SET lease_expires_at = ?1 WHERE id = ?2 \
                 AND status = 'RUNNING' AND lease_owner = ?3 AND lease_token = ?4",
            )?;
            let mut lost = Vec::new();
            for (id, token) in &request.leases {
                let held = match parse_id(id) {
                    None => false,
                    Some(uuid) => {
                        let key = uuid.hyphenated().to_string();
                        update.execute((us(expires_at), key, &request.worker_id, token))? == 1
                    }
                };
                if !held {
                    lost.push(id.clone());
                }
            }
            Ok(lost)
        })
    }

    pub(super) fn release(&self, request: &LeaseRequest) -> Result<u64> {
        self.write("releasing tasks", |tx| {
            let mut update = tx.prepare_cached(
                "UPDATE taskhost_tasks SET status = 'READY', attempts = attempts - 1, \
                 worker_ids = json_remove(worker_ids, '$[#-1]'), \
                 started_at = CASE WHEN attempts <= 1 THEN NULL ELSE started_at END, \
                 last_attempted_at = CASE WHEN attempts <= 1 THEN NULL ELSE last_attempted_at END, \
                 lease_owner = NULL, lease_expires_at = NULL \
                 WHERE id = ?1 AND status = 'RUNNING' AND lease_owner = ?2 AND lease_token = ?3",
            )?;
            let mut released = 0;
            for (id, token) in &request.leases {
                if let Some(uuid) = parse_id(id) {
                    let key = uuid.hyphenated().to_string();
                    released += update.execute((key, &request.worker_id, token))? as u64;
                }
            }
            Ok(released)
        })
    }

    pub(super) fn rescue(&self, now: DateTime<Utc>) -> Result<u64> {
        self.write("rescuing expired leases", |tx| self.rescue_in(tx, now))
    }

    /// Rescue inside an open write transaction (also the first step of every claim).
    fn rescue_in(&self, tx: &rusqlite::Connection, now: DateTime<Utc>) -> Result<u64, TxError> {
        let mut select = tx.prepare_cached(
            "SELECT id, lease_owner, lease_expires_at, attempts, rescues, lease_token \
             FROM taskhost_tasks \
             WHERE status = 'RUNNING' AND backend_name = ?1 AND lease_expires_at < ?2",
        )?;
        let expired = select
            .query_map((&self.config.alias, us(now)), |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        if expired.is_empty() {
            return Ok(0);
        }
        let mut update = tx.prepare_cached(
            "UPDATE taskhost_tasks SET status = ?2, finished_at = ?3, \
             run_after = COALESCE(?6, run_after), \
             errors = CASE WHEN json_valid(errors) THEN json_insert(errors, '$[#]', json(?4)) \
                      ELSE json_array(json(?4)) END, \
             rescues = rescues + 1, lease_owner = NULL, lease_expires_at = NULL \
             WHERE id = ?1 AND status = 'RUNNING' AND lease_token = ?5",
        )?;
        let mut count = 0;
        for (id, owner, expires, attempts, rescues, lease_token) in expired {
            let lost = Expired {
                expired_at: crate::row::from_micros(&id, "lease_expires_at", expires)?,
                id,
                owner: owner.unwrap_or_default(),
                attempts,
                rescues,
                max_rescues: i64::from(self.config.max_rescues),
                lease_token,
            };
            let (status, finished, run_after) = match lost.requeues() {
                true => ("READY", None, Some(us(lost.run_after(now)))),
                false => ("FAILED", Some(us(now)), None),
            };
            let error = to_json(&lost.error())?;
            count += update.execute((
                &lost.id,
                status,
                finished,
                error,
                lost.lease_token,
                run_after,
            ))? as u64;
        }
        Ok(count)
    }
}

/// Whether `err` is a primary-key violation: an id already stored.
fn is_duplicate(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

/// A primary-key violation as "already stored" (`id`); anything else as is.
fn duplicate_or(err: rusqlite::Error, id: &str) -> TxError {
    match is_duplicate(&err) {
        true => TxError::App(crate::error::Error::already_stored(id)),
        false => TxError::Db(err),
    }
}
