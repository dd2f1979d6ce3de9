//! The SQLite queue: enqueue, get, claim, complete, renew, release and rescue.

use super::limits::claim_taken_sql;
use super::{json_list, read_row, us, SqliteStore, TxError, COLUMNS, COLUMN_COUNT};
use crate::error::Result;
use crate::row::{
    cancelled_instead_of_release, cancelled_instead_of_rescue, cancelled_instead_of_retry,
    cancelled_when_ready, claim_order, outcome_columns, parse_id, to_json, Expired, NewTask,
};
use crate::store::Claim;
use chrono::{DateTime, Utc};
use rusqlite::{named_params, OptionalExtension};
use taskhost_plugin_api::control::{CancelOutcome, LeaseRenewal, RetryOutcome};
use taskhost_plugin_api::{ClaimedTask, Completion, CompletionAck, LeaseRequest, TaskResultData};

/// Rows per INSERT statement, largest first: a run of rows of one task is inserted in as few
/// statements of these sizes as it takes (1,000 rows: 15 × 64, 5 × 8).
const ROWS_PER_INSERT: [usize; 3] = [64, 8, 1];

/// Placeholders every row of a multi-row INSERT shares: ?1 task_path, ?2 queue_name,
/// ?3 priority, ?4 backend_name (the alias), ?5 kwargs, ?6 takes_context, ?7 is_async,
/// ?8 run_after, ?9 max_attempts, ?10 timeout_secs. Row `i` (from 0) has its own id, args
/// and enqueued_at at ?(11 + 3i), ?(12 + 3i), ?(13 + 3i).
const SHARED_PARAMS: usize = 11;

/// The INSERT of `rows` rows (see [`SHARED_PARAMS`]).
fn insert_rows_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO taskhost_tasks (id, task_path, queue_name, priority, backend_name, status, \
         args, kwargs, takes_context, is_async, run_after, enqueued_at, max_attempts, \
         timeout_secs, trace_context) VALUES ",
    );
    for i in 0..rows {
        let at = SHARED_PARAMS + 3 * i;
        let comma = if i == 0 { "" } else { ", " };
        sql += &format!(
            "{comma}(?{}, ?1, ?2, ?3, ?4, 'READY', ?{}, ?5, ?6, ?7, ?8, ?{}, ?9, ?10, ?11)",
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
                    t.request.task == first.request.task
                        && t.request.kwargs == first.request.kwargs
                        && t.request.trace_context == first.request.trace_context
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
    pub(super) fn insert_run(
        &self,
        tx: &rusqlite::Connection,
        run: &[NewTask],
    ) -> Result<(), TxError> {
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
            insert.raw_bind_parameter(11, shared.trace_context.as_deref())?;
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

    /// The claim: one UPDATE for the tasks that start at once (`start_now`) and, when the
    /// claim asks for more, one more for those the worker prefetches (`prefetched = 1`), in
    /// claim order, in one transaction. Each row also returns whether its worker must report
    /// its start ([`ClaimedTask::report_start`]: prefetched, and rescued unstarted before).
    pub(super) fn claim(&self, claim: &Claim) -> Result<Vec<ClaimedTask>> {
        let max_attempts = self.config.max_attempts;
        let sql = format!(
            "UPDATE taskhost_tasks SET {CLAIM_SET}, prefetched = :prefetched \
             WHERE id IN ({CLAIM_SELECT}) \
             RETURNING {COLUMNS}, prefetched AND prefetch_rescues > 0"
        );
        let now_count = claim.start_now.map_or(claim.limit, |n| n.min(claim.limit));
        let parts = [(now_count, false), (claim.limit - now_count, true)];
        let mut claimed = self.write("claiming tasks", |tx| {
            self.rescue_in(tx, claim.now)?;
            let mut claimed = Vec::new();
            let mut corrupt = Vec::new();
            // Read one claimed row (its start report flag after the columns).
            let mut take = |r: &rusqlite::Row<'_>| -> Result<(), TxError> {
                let id: String = r.get(0)?;
                let report_start: bool = r.get(COLUMN_COUNT)?;
                match read_row(r) {
                    Ok(row) => match row.into_claimed(max_attempts) {
                        Ok(task) => claimed.push(ClaimedTask {
                            report_start,
                            ..task
                        }),
                        Err(err) => corrupt.push((id, err.to_string())),
                    },
                    Err(TxError::App(err)) => corrupt.push((id, err.to_string())),
                    Err(sql) => return Err(sql),
                }
                Ok(())
            };
            // With limited queues in reach, the ids the limits let it take (sqlite/limits.rs),
            // in claim order: those past the first `now_count` are prefetched.
            if let Some(ids) = self.limited_claim(tx, claim)? {
                let mut stmt = tx.prepare_cached(&claim_taken_sql())?;
                let mut rows = stmt.query(named_params! {
                    ":ids": ids,
                    ":now": us(claim.now),
                    ":worker": claim.worker_id,
                    ":expires": us(claim.lease_expires_at),
                    ":start_now": now_count,
                })?;
                while let Some(r) = rows.next()? {
                    take(r)?;
                }
            } else {
                let mut stmt = tx.prepare_cached(&sql)?;
                for (limit, prefetched) in parts {
                    if limit == 0 {
                        continue;
                    }
                    let mut rows = stmt.query(named_params! {
                        ":alias": self.config.alias,
                        ":now": us(claim.now),
                        ":queues": claim.queues.as_deref().map(json_list),
                        ":exclude": json_list(&claim.exclude_queues),
                        ":limit": limit,
                        ":worker": claim.worker_id,
                        ":expires": us(claim.lease_expires_at),
                        ":prefetched": prefetched,
                    })?;
                    let mut taken = 0;
                    while let Some(r) = rows.next()? {
                        taken += 1;
                        take(r)?;
                    }
                    if taken < limit {
                        // Nothing more is ready: no prefetch part to ask for.
                        break;
                    }
                }
            }
            for (id, message) in corrupt {
                tracing::warn!(id = %id, "claimed a row that cannot be read; marking it FAILED: {message}");
                tx.execute(
                    "UPDATE taskhost_tasks SET status = 'FAILED', finished_at = ?2, \
                     errors = ?3, lease_owner = NULL, lease_expires_at = NULL WHERE id = ?1",
                    (id, us(claim.now), crate::row::corrupt_errors(&message)),
                )?;
                // Touched after the commit (`SqliteStore::claim` in mod.rs), as a rescue's.
                self.done.failed_by_rescue();
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
        // A task asked to stop is never READY again: a failure that would be retried ends it
        // FAILED, with the cancellation error after its own.
        let cancelled = cancelled_instead_of_retry()?;
        self.write("completing tasks", |tx| {
            let mut update = tx.prepare_cached(
                "UPDATE taskhost_tasks SET \
                 status = CASE WHEN cancel_requested AND :status = 'READY' THEN 'FAILED' \
                          ELSE :status END, \
                 return_value = :return_value, \
                 finished_at = CASE WHEN cancel_requested AND :status = 'READY' THEN :now \
                               ELSE :finished_at END, \
                 run_after = CASE WHEN :retry_at IS NULL THEN run_after ELSE :retry_at END, \
                 errors = CASE WHEN :error IS NULL THEN errors \
                          WHEN cancel_requested AND :status = 'READY' THEN json_insert(\
                              CASE WHEN json_valid(errors) THEN errors ELSE '[]' END, \
                              '$[#]', json(:error), '$[#]', json(:cancelled)) \
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
                            ":now": us(now),
                            ":cancelled": cancelled,
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

    /// One UPDATE per lease, which answers whether the task was asked to stop: the worker
    /// learns of a cancellation without another statement.
    pub(super) fn renew(
        &self,
        request: &LeaseRequest,
        expires_at: DateTime<Utc>,
    ) -> Result<LeaseRenewal> {
        self.write("renewing leases", |tx| {
            let mut update = tx.prepare_cached(
                "UPDATE taskhost_tasks SET lease_expires_at = ?1 WHERE id = ?2 \
                 AND status = 'RUNNING' AND lease_owner = ?3 AND lease_token = ?4 \
                 RETURNING cancel_requested",
            )?;
            let mut renewal = LeaseRenewal::default();
            for (id, token) in &request.leases {
                let held = match parse_id(id) {
                    None => None,
                    Some(uuid) => {
                        let key = uuid.hyphenated().to_string();
                        update
                            .query_row((us(expires_at), key, &request.worker_id, token), |r| {
                                r.get::<_, bool>(0)
                            })
                            .optional()?
                    }
                };
                match held {
                    None => renewal.lost.push(id.clone()),
                    Some(true) => renewal.cancel_requested.push(id.clone()),
                    Some(false) => {}
                }
            }
            Ok(renewal)
        })
    }

    /// One UPDATE that reads the row's status as it writes it: a READY row is FAILED, a
    /// RUNNING one marked, in the same write, so no claim can take a READY row in between
    /// (writers are serialised by `BEGIN IMMEDIATE`).
    pub(super) fn cancel(
        &self,
        id: uuid::Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<CancelOutcome>> {
        let error = cancelled_when_ready()?;
        self.write("cancelling a task", |tx| {
            let key = id.hyphenated().to_string();
            let status: Option<String> = tx
                .prepare_cached(
                    "UPDATE taskhost_tasks SET \
                     status = CASE WHEN status = 'READY' THEN 'FAILED' ELSE status END, \
                     finished_at = CASE WHEN status = 'READY' THEN ?2 ELSE finished_at END, \
                     errors = CASE WHEN status <> 'READY' THEN errors \
                              WHEN json_valid(errors) THEN json_insert(errors, '$[#]', json(?3)) \
                              ELSE json_array(json(?3)) END, \
                     cancel_requested = CASE WHEN status = 'RUNNING' THEN 1 \
                                        ELSE cancel_requested END \
                     WHERE id = ?1 AND (status = 'READY' OR status = 'RUNNING') \
                     RETURNING status",
                )?
                .query_row((&key, us(now), &error), |r| r.get(0))
                .optional()?;
            Ok(match status.as_deref() {
                Some("FAILED") => Some(CancelOutcome::Cancelled),
                Some(_) => Some(CancelOutcome::Requested),
                None => exists(tx, &key)?.then_some(CancelOutcome::AlreadyFinished),
            })
        })
    }

    pub(super) fn retry(&self, id: uuid::Uuid, now: DateTime<Utc>) -> Result<Option<RetryOutcome>> {
        self.write("retrying a task", |tx| {
            let key = id.hyphenated().to_string();
            let retried = tx.prepare_cached(RETRY)?.execute((&key, us(now)))? == 1;
            Ok(match retried {
                true => Some(RetryOutcome::Retried),
                false => exists(tx, &key)?.then_some(RetryOutcome::NotFailed),
            })
        })
    }

    /// Clear `prefetched` on rows still held under these leases: their rescue counts now.
    pub(super) fn report_started(&self, request: &LeaseRequest) -> Result<u64> {
        self.write("reporting task starts", |tx| {
            let mut update = tx.prepare_cached(
                "UPDATE taskhost_tasks SET prefetched = 0 \
                 WHERE id = ?1 AND status = 'RUNNING' AND lease_owner = ?2 AND lease_token = ?3",
            )?;
            let mut reported = 0;
            for (id, token) in &request.leases {
                if let Some(uuid) = parse_id(id) {
                    let key = uuid.hyphenated().to_string();
                    reported += update.execute((key, &request.worker_id, token))? as u64;
                }
            }
            Ok(reported)
        })
    }

    /// A task asked to stop is not made READY: it ends FAILED, cancelled.
    pub(super) fn release(&self, request: &LeaseRequest, now: DateTime<Utc>) -> Result<u64> {
        let cancelled = cancelled_instead_of_release()?;
        self.write("releasing tasks", |tx| {
            let mut update = tx.prepare_cached(
                "UPDATE taskhost_tasks SET \
                 status = CASE WHEN cancel_requested THEN 'FAILED' ELSE 'READY' END, \
                 finished_at = CASE WHEN cancel_requested THEN ?4 ELSE finished_at END, \
                 errors = CASE WHEN NOT cancel_requested THEN errors \
                          WHEN json_valid(errors) THEN json_insert(errors, '$[#]', json(?5)) \
                          ELSE json_array(json(?5)) END, \
                 attempts = attempts - 1, \
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
                    released +=
                        update.execute((key, &request.worker_id, token, us(now), &cancelled))?
                            as u64;
                }
            }
            Ok(released)
        })
    }

    pub(super) fn rescue(&self, now: DateTime<Utc>) -> Result<u64> {
        self.write("rescuing expired leases", |tx| self.rescue_in(tx, now))
    }

    /// Rescue inside an open write transaction (also the first step of every claim). A row
    /// still `prefetched` (its worker never reported its start) is handed back as a release
    /// does, uncounted (decision 017); any other is rescued and counted (decision 010).
    fn rescue_in(&self, tx: &rusqlite::Connection, now: DateTime<Utc>) -> Result<u64, TxError> {
        let mut select = tx.prepare_cached(
            "SELECT id, lease_owner, lease_expires_at, attempts, rescues, lease_token, \
             cancel_requested, prefetched FROM taskhost_tasks \
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
                    r.get::<_, bool>(6)?,
                    r.get::<_, bool>(7)?,
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
        let mut hand_back = tx.prepare_cached(
            "UPDATE taskhost_tasks SET status = 'READY', attempts = attempts - 1, \
             worker_ids = json_remove(worker_ids, '$[#-1]'), \
             started_at = CASE WHEN attempts <= 1 THEN NULL ELSE started_at END, \
             last_attempted_at = CASE WHEN attempts <= 1 THEN NULL ELSE last_attempted_at END, \
             run_after = ?3, prefetched = 0, prefetch_rescues = prefetch_rescues + 1, \
             lease_owner = NULL, lease_expires_at = NULL \
             WHERE id = ?1 AND status = 'RUNNING' AND lease_token = ?2",
        )?;
        let mut count = 0;
        let cancelled = cancelled_instead_of_rescue()?;
        for (id, owner, expires, attempts, rescues, lease_token, cancel_requested, prefetched) in
            expired
        {
            let lost = Expired {
                expired_at: crate::row::from_micros(&id, "lease_expires_at", expires)?,
                id,
                owner: owner.unwrap_or_default(),
                attempts,
                rescues,
                max_rescues: i64::from(self.config.max_rescues),
                lease_token,
            };
            // A task that never started is handed back (decision 017), unless it was asked to
            // stop: a task asked to stop is not rescued; it ends FAILED, cancelled.
            if prefetched && !cancel_requested {
                let run_after = us(lost.run_after(now));
                count += hand_back.execute((&lost.id, lost.lease_token, run_after))? as u64;
                continue;
            }
            let (status, finished, run_after) = match lost.requeues() && !cancel_requested {
                true => ("READY", None, Some(us(lost.run_after(now)))),
                false => ("FAILED", Some(us(now)), None),
            };
            let error = to_json(&lost.error())?;
            let updated = update.execute((
                &lost.id,
                status,
                finished,
                error,
                lost.lease_token,
                run_after,
            ))? as u64;
            if updated == 1 && cancel_requested {
                tx.prepare_cached(
                    "UPDATE taskhost_tasks SET \
                     errors = json_insert(errors, '$[#]', json(?2)) WHERE id = ?1",
                )?
                .execute((&lost.id, &cancelled))?;
            }
            if updated == 1 && status == "FAILED" {
                self.done.failed_by_rescue();
            }
            count += updated;
        }
        Ok(count)
    }
}

/// A retry: the FAILED row `?1` READY again and due at `?2`, its errors, worker ids and
/// attempts kept, the attempts made so far no longer counted against its `max_attempts`, its
/// rescues and any cancellation mark reset.
const RETRY: &str = "UPDATE taskhost_tasks SET status = 'READY', finished_at = NULL, \
    return_value = NULL, run_after = ?2, cancel_requested = 0, rescues = 0, \
    retried_attempts = attempts, lease_owner = NULL, lease_expires_at = NULL \
    WHERE id = ?1 AND status = 'FAILED'";

/// Whether the row `id` exists.
fn exists(tx: &rusqlite::Connection, id: &str) -> Result<bool, TxError> {
    Ok(tx
        .prepare_cached("SELECT 1 FROM taskhost_tasks WHERE id = ?1")?
        .query_row([id], |_| Ok(()))
        .optional()?
        .is_some())
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
