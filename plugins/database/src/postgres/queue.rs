//! The PostgreSQL queue: enqueue, get, claim, complete, renew, release and rescue.

use super::{read_row, JsonText, PgStore, TxError, CHANNEL, COLUMNS, COLUMN_COUNT};
use crate::error::{Error, Result};
use crate::row::{
    cancelled_instead_of_release, cancelled_instead_of_rescue, cancelled_instead_of_retry,
    cancelled_when_ready, claim_order, outcome_columns, parse_id, to_json, Expired, NewTask,
};
use crate::store::Claim;
use chrono::{DateTime, Utc};
use postgres::error::SqlState;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::LazyLock;
use taskhost_plugin_api::control::{CancelOutcome, LeaseRenewal, RetryOutcome};
use taskhost_plugin_api::{
    ClaimedTask, Completion, CompletionAck, LeaseRequest, TaskDescription, TaskResultData,
};
use uuid::Uuid;

/// Rows per multi-row INSERT.
const CHUNK: usize = 2000;

/// Batches of more rows than this are written with binary COPY, in a transaction with the
/// NOTIFY after it (4 round trips: BEGIN, COPY, NOTIFY, COMMIT); smaller ones, every single
/// enqueue among them, with one self-committing [`INSERT_AND_NOTIFY`] (1 round trip).
const COPY_ABOVE: usize = 64;

/// The bulk path: the rows in PostgreSQL's binary format, no SQL executor per row and no text
/// to parse but the JSON.
const COPY: &str = "COPY taskhost_tasks (id, task_path, queue_name, priority, backend_name, \
    status, args, kwargs, takes_context, is_async, run_after, enqueued_at, max_attempts, \
    timeout_secs, trace_context) FROM STDIN (FORMAT binary)";

/// What one [`COPY`] message carries at most before it is sent (the rows are encoded here, in
/// PostgreSQL's binary COPY format, and sent in pieces of about this size).
const COPY_PIECE: usize = 64 * 1024;

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01T00:00:00Z).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// After a [`COPY`], in its transaction: one NOTIFY per queue (`$1`, distinct names).
pub(super) const NOTIFY_QUEUES: &str =
    "SELECT pg_notify('taskhost_tasks', q) FROM unnest($1::text[]) AS q";

const INSERT: &str = "INSERT INTO taskhost_tasks (id, task_path, queue_name, priority, \
    backend_name, status, args, kwargs, takes_context, is_async, run_after, enqueued_at, \
    max_attempts, timeout_secs, trace_context) \
    SELECT u.id, u.task_path, u.queue_name, u.priority, $1, 'READY', u.args::jsonb, \
           u.kwargs::jsonb, u.takes_context, u.is_async, u.run_after, u.enqueued_at, \
           u.max_attempts, u.timeout_secs, u.trace_context \
    FROM unnest($2::uuid[], $3::text[], $4::text[], $5::int4[], $6::text[], $7::text[], \
                $8::bool[], $9::bool[], $10::timestamptz[], $11::timestamptz[], $12::int4[], \
                $13::float8[], $14::text[]) \
      AS u(id, task_path, queue_name, priority, args, kwargs, takes_context, is_async, \
           run_after, enqueued_at, max_attempts, timeout_secs, trace_context)";

/// [`INSERT`], then one NOTIFY per queue it inserted into: one statement, so a batch of up to
/// [`CHUNK`] rows is stored and signalled in one round trip — committing itself when it runs
/// outside a transaction. Notifications are delivered when the transaction commits, never for
/// a rolled-back enqueue.
static INSERT_AND_NOTIFY: LazyLock<String> = LazyLock::new(|| insert_and_notify(""));

/// One task (every single enqueue), stored and signalled by one statement that commits itself:
/// [`INSERT_AND_NOTIFY`] with plain parameters instead of arrays (measured with pgbench on
/// the test server: 20–40 µs less per statement than `unnest` of one-element arrays).
static INSERT_ONE_AND_NOTIFY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH inserted AS (INSERT INTO taskhost_tasks (id, task_path, queue_name, priority, \
         backend_name, status, args, kwargs, takes_context, is_async, run_after, enqueued_at, \
         max_attempts, timeout_secs, trace_context) \
         VALUES ($2, $3, $4, $5, $1, 'READY', $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         RETURNING queue_name) \
         SELECT pg_notify('{CHANNEL}', queue_name) FROM inserted"
    )
});

/// [`INSERT_AND_NOTIFY`] for a retry after a connection was lost with the outcome unknown:
/// rows already stored are skipped (and then checked by [`VERIFY`]), the others inserted.
static REINSERT_AND_NOTIFY: LazyLock<String> =
    LazyLock::new(|| insert_and_notify(" ON CONFLICT (id) DO NOTHING"));

fn insert_and_notify(on_conflict: &str) -> String {
    format!(
        "WITH inserted AS ({INSERT}{on_conflict} RETURNING queue_name) \
         SELECT pg_notify('{CHANNEL}', q) FROM (SELECT DISTINCT queue_name AS q FROM inserted) AS queues"
    )
}

/// After [`REINSERT_AND_NOTIFY`] (same parameters), in the same transaction: the first id of
/// the batch whose stored row is not this very enqueue — a different task under the same id.
/// It compares what an enqueue writes and nothing else changes (a retry may since have moved
/// `run_after`, a worker the status and the rest), the JSON as jsonb (key order aside).
const VERIFY: &str = "SELECT u.id::text FROM \
    unnest($2::uuid[], $3::text[], $4::text[], $5::int4[], $6::text[], $7::text[], \
           $8::bool[], $9::bool[], $10::timestamptz[], $11::timestamptz[], $12::int4[], \
           $13::float8[], $14::text[]) \
      AS u(id, task_path, queue_name, priority, args, kwargs, takes_context, is_async, \
           run_after, enqueued_at, max_attempts, timeout_secs, trace_context) \
    JOIN taskhost_tasks t ON t.id = u.id \
    WHERE NOT (t.task_path = u.task_path AND t.queue_name = u.queue_name \
      AND t.priority = u.priority AND t.backend_name = $1 AND t.args = u.args::jsonb \
      AND t.kwargs = u.kwargs::jsonb AND t.takes_context = u.takes_context \
      AND t.is_async = u.is_async AND t.enqueued_at = u.enqueued_at \
      AND t.max_attempts IS NOT DISTINCT FROM u.max_attempts \
      AND t.timeout_secs IS NOT DISTINCT FROM u.timeout_secs) \
    LIMIT 1";

/// How often, at most, claims check for expired leases (µs of the host's clock): a lease lost
/// is rescued within this much of its expiry (leases are at least 1 s long).
const RESCUE_CHECK_EVERY_MICROS: i64 = 1_000_000;

/// Whether any lease of the alias expired before `$2` (the lease index answers it).
const ANY_EXPIRED: &str = "SELECT EXISTS (SELECT 1 FROM taskhost_tasks \
    WHERE status = 'RUNNING' AND backend_name = $1 AND lease_expires_at < $2)";

/// The ready tasks a claim takes (their row addresses), in claim order, locked and skipping rows
/// other claims hold: `taskhost_tasks_claim_idx` serves the filter on status and alias and the
/// whole ORDER BY, so PostgreSQL walks the index and stops after `$5` matches, without a sort.
pub(crate) const CLAIM_SELECT: &str = "SELECT ctid FROM taskhost_tasks \
    WHERE status = 'READY' AND backend_name = $1 \
      AND (run_after IS NULL OR run_after <= $2) \
      AND ($3::text[] IS NULL OR queue_name = ANY($3::text[])) \
      AND queue_name <> ALL($4::text[]) \
    ORDER BY priority DESC, COALESCE(run_after, 'infinity'::timestamptz), enqueued_at, id \
    LIMIT $5 FOR UPDATE SKIP LOCKED";

/// A claim: the rows of [`CLAIM_SELECT`] made RUNNING under a lease for worker `$6` until `$7`,
/// with a new fencing token and the claim's id `$8`; the rows past the first `$9` in claim
/// order (the ones the worker does not start at once) are marked `prefetched` (decision 017).
/// The rows are updated by the addresses the locking read returned, numbered in claim order
/// (a TID scan per address; the row lock keeps each address until the claim commits). Joined
/// back by id instead, PostgreSQL read the whole table, finished results included, to find a
/// claim's rows, or looked each one up in the primary key (decision 015). Each row also
/// returns whether its worker must report its start (prefetched, and rescued unstarted before).
pub(crate) static CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE taskhost_tasks SET {}, prefetched = c.n > $9 \
         FROM unnest(ARRAY({CLAIM_SELECT})) WITH ORDINALITY AS c(tid, n) \
         WHERE taskhost_tasks.ctid = c.tid \
         RETURNING {COLUMNS}, prefetched AND prefetch_rescues > 0",
        claim_set("$2", "$6", "$7", "$8")
    )
});

/// What a claim sets on the rows it takes, with the placeholders of the statement it is part
/// of: the claim's time, the worker, the lease's end and the claim's id (shared with the claim
/// of limited queues, `postgres/limits.rs`).
pub(super) fn claim_set(now: &str, worker: &str, expires: &str, claim_id: &str) -> String {
    format!(
        "status = 'RUNNING', started_at = {now}, last_attempted_at = {now}, \
         worker_ids = worker_ids || to_jsonb({worker}::text), attempts = attempts + 1, \
         lease_token = lease_token + 1, lease_owner = {worker}, lease_expires_at = {expires}, \
         claim_id = {claim_id}"
    )
}

/// The rows claim `$2` of alias `$1` holds (the lease index narrows it to RUNNING rows).
static CLAIMED_BY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLUMNS}, prefetched AND prefetch_rescues > 0 FROM taskhost_tasks \
         WHERE status = 'RUNNING' AND backend_name = $1 AND claim_id = $2"
    )
});

/// Apply a batch of completions whose lease is still held (id, RUNNING, token): one round trip.
/// A task asked to stop (`cancel_requested`) is never READY again: a failure that would be
/// retried ends it FAILED at `$9`, with the cancellation error `$10` after its own.
/// Returns the rows it applied, each with whether anyone waits for results
/// (`taskhost_waiting()`, migration 8), asked once every row is updated — and so locked until
/// the commit — with a fresh snapshot (decision 023).
const COMPLETE: &str = "WITH done AS (\
    UPDATE taskhost_tasks t SET \
    status = CASE WHEN t.cancel_requested AND u.status = 'READY' THEN 'FAILED' \
             ELSE u.status END, \
    return_value = u.return_value::jsonb, \
    finished_at = CASE WHEN t.cancel_requested AND u.status = 'READY' THEN $9 \
                  ELSE u.finished_at END, \
    run_after = COALESCE(u.retry_at, t.run_after), \
    errors = CASE WHEN u.error IS NULL THEN t.errors \
             WHEN t.cancel_requested AND u.status = 'READY' \
                 THEN t.errors || jsonb_build_array(u.error::jsonb, $10::text::jsonb) \
             ELSE t.errors || jsonb_build_array(u.error::jsonb) END, \
    started_at = COALESCE(u.started_at, t.started_at), \
    last_attempted_at = COALESCE(u.started_at, t.last_attempted_at), \
    lease_owner = NULL, lease_expires_at = NULL \
    FROM unnest($1::uuid[], $2::int8[], $3::text[], $4::text[], $5::timestamptz[], \
                $6::timestamptz[], $7::text[], $8::timestamptz[]) \
      AS u(id, token, status, return_value, finished_at, retry_at, error, started_at) \
    WHERE t.id = u.id AND t.status = 'RUNNING' AND t.lease_token = u.token \
    RETURNING t.id) \
    SELECT id, (SELECT taskhost_waiting() FROM (SELECT count(*) FROM done) AS every_row) \
    FROM done";

/// After [`COMPLETE`]'s retry, in its transaction: the rows that hold these very completions
/// (same parameters, by position). Only the holder of the token can have ended a row with it,
/// except a rescue (same token, READY or FAILED) — whose last error is a `WorkerLost`, never
/// the completion's own error; a SUCCESSFUL row with the token can only be this completion.
const COMPLETED: &str = "SELECT t.id FROM taskhost_tasks t \
    JOIN unnest($1::uuid[], $2::int8[], $3::text[], $4::text[], $5::text[]) \
      AS u(id, token, status, return_value, error) ON t.id = u.id \
    WHERE t.lease_token = u.token AND t.lease_owner IS NULL \
      AND (t.status = u.status \
           OR (t.cancel_requested AND u.status = 'READY' AND t.status = 'FAILED')) \
      AND (u.error IS NULL OR t.errors -> -1 = u.error::jsonb \
           OR (t.cancel_requested AND t.errors -> -2 = u.error::jsonb)) \
      AND (u.return_value IS NULL OR t.return_value = u.return_value::jsonb)";

impl PgStore {
    /// Whether a claim at `now` should check for expired leases: the first claim does, then
    /// one every [`RESCUE_CHECK_EVERY_MICROS`] (a clock that went back checks again at once).
    fn rescue_check_due(&self, now: DateTime<Utc>) -> bool {
        let now = now.timestamp_micros();
        let last = self.last_rescue_check.load(Ordering::Acquire);
        let due = last == i64::MIN || now < last || now - last >= RESCUE_CHECK_EVERY_MICROS;
        due && self
            .last_rescue_check
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    pub(super) fn enqueue(&self, tasks: &[NewTask]) -> Result<()> {
        // The same id twice in one batch is refused before anything is sent, as the primary
        // key would refuse it, so that a retry (which skips stored ids) refuses it too.
        if tasks.len() > 1 {
            let mut seen = HashSet::with_capacity(tasks.len());
            if let Some(dup) = tasks.iter().find(|t| !seen.insert(t.id)) {
                return Err(Error::already_stored(&dup.id.to_string()));
            }
        }
        let copy = tasks.len() > COPY_ABOVE;
        // The columns for `unnest`, made when first needed (a COPY's retry needs them too).
        let mut chunks: Option<Vec<Columns<'_>>> = None;
        let body = |tx: &mut super::Tx<'_>| {
            if !tx.is_retry() {
                if copy {
                    return self.copy_in(tx, tasks);
                }
                if let [task] = tasks {
                    return self.insert_one(tx, task);
                }
            }
            let chunks = match &mut chunks {
                Some(chunks) => chunks,
                None => chunks.insert(tasks.chunks(CHUNK).map(Columns::of).collect()),
            };
            for columns in chunks.iter() {
                let params: [&(dyn postgres::types::ToSql + Sync); 14] = [
                    &self.config.alias,
                    &columns.ids,
                    &columns.paths,
                    &columns.queues,
                    &columns.priorities,
                    &columns.args,
                    &columns.kwargs,
                    &columns.takes_context,
                    &columns.is_async,
                    &columns.run_after,
                    &columns.enqueued_at,
                    &columns.max_attempts,
                    &columns.timeout_secs,
                    &columns.trace_contexts,
                ];
                if !tx.is_retry() {
                    tx.execute(&INSERT_AND_NOTIFY, &params)
                        .map_err(duplicate_or)?;
                    continue;
                }
                // The connection of an earlier attempt was lost, maybe after it committed:
                // store what is missing, and accept what is there only if it is this enqueue.
                tx.execute(&REINSERT_AND_NOTIFY, &params)?;
                if let Some(row) = tx.query(VERIFY, &params)?.first() {
                    let id: String = row.try_get(0)?;
                    return Err(TxError::App(Error::already_stored(&id)));
                }
            }
            Ok(())
        };
        // Up to COPY_ABOVE rows: one self-committing statement (one round trip); more: COPY in
        // a transaction. Either way a connection lost with the outcome unknown — before the
        // statement, or with its COMMIT unanswered — is retried idempotently on a new
        // connection (in a transaction, with `unnest`): never reported as failed when it was
        // stored, never stored twice, and a different task under a stored id is still refused.
        self.write_idempotent("enqueuing tasks", copy || tasks.len() > CHUNK, body)
    }

    /// The first attempt of a single enqueue: [`INSERT_ONE_AND_NOTIFY`].
    pub(super) fn insert_one(&self, tx: &mut super::Tx<'_>, task: &NewTask) -> Result<(), TxError> {
        let t = &task.request.task;
        tx.execute(
            &INSERT_ONE_AND_NOTIFY,
            &[
                &self.config.alias,
                &task.id,
                &t.path.as_str(),
                &t.queue_name.as_str(),
                &t.priority,
                &JsonText(task.request.args.as_str()),
                &JsonText(task.request.kwargs.as_str()),
                &t.takes_context,
                &t.is_async,
                &t.run_after,
                &task.enqueued_at,
                &max_attempts_column(t),
                &t.timeout_secs,
                &task.request.trace_context.as_deref(),
            ],
        )
        .map_err(duplicate_or)?;
        Ok(())
    }

    /// The first attempt of a bulk enqueue: binary COPY, then the NOTIFYs, in `tx`'s
    /// transaction.
    fn copy_in(&self, tx: &mut super::Tx<'_>, tasks: &[NewTask]) -> Result<(), TxError> {
        let mut writer = tx.copy_in(COPY)?;
        let mut rows = CopyRows::new();
        let mut queues: HashSet<&str> = HashSet::new();
        for task in tasks {
            rows.row(&self.config.alias, task);
            queues.insert(&task.request.task.queue_name);
            if rows.buf.len() >= COPY_PIECE {
                send(&mut writer, &rows.buf)?;
                rows.buf.clear();
            }
        }
        rows.end();
        send(&mut writer, &rows.buf)?;
        writer.finish().map_err(duplicate_or)?;
        let queues: Vec<&str> = queues.into_iter().collect();
        tx.execute(NOTIFY_QUEUES, &[&queues])?;
        Ok(())
    }

    pub(super) fn get(&self, id: Uuid) -> Result<Option<TaskResultData>> {
        let sql = format!("SELECT {COLUMNS} FROM taskhost_tasks WHERE id = $1");
        let row = self.read("reading a task result", |tx| {
            tx.query(&sql, &[&id])?.first().map(read_row).transpose()
        })?;
        row.map(|r| r.into_result()).transpose()
    }

    pub(super) fn claim(&self, claim: &Claim) -> Result<Vec<ClaimedTask>> {
        let limit = i64::from(claim.limit);
        let max_attempts = self.config.max_attempts;
        // The rescue comes first, as its own transaction, only when a lease has expired; and
        // the check for one is made at most once per RESCUE_CHECK_EVERY_MICROS of host clock
        // (leases last at least a second), so most claims are one round trip.
        if self.rescue_check_due(claim.now) {
            let expired = self.read("checking for expired leases", |tx| {
                let rows = tx.query(ANY_EXPIRED, &[&self.config.alias, &claim.now])?;
                match rows.first() {
                    Some(row) => Ok(row.try_get::<_, bool>(0)?),
                    None => Ok(false),
                }
            })?;
            if expired {
                self.rescue(claim.now)?;
            }
        }
        // The claim's own id, stored on the rows it takes: if the session ends with the outcome
        // unknown (the server may end it right after the commit, before the client reads the
        // answer), the retry returns the rows this claim took instead of leaving them RUNNING
        // under a lease nobody renews.
        let claim_id = Uuid::now_v7();
        let start_now = claim.start_now.map_or(limit, i64::from);
        // Limited queues it may take from (none: the one-statement claim below, untouched).
        let limited = self.config.limits.in_claim(claim);
        let rows = self.write_idempotent("claiming tasks", !limited.is_empty(), |tx| {
            if tx.is_retry() {
                let taken = tx.query(&CLAIMED_BY, &[&self.config.alias, &claim_id])?;
                if !taken.is_empty() {
                    return Ok(taken);
                }
            }
            if !limited.is_empty() {
                return self.claim_limited(tx, claim, &limited, claim_id, start_now);
            }
            Ok(tx.query(
                &CLAIM,
                &[
                    &self.config.alias,
                    &claim.now,
                    &claim.queues,
                    &claim.exclude_queues,
                    &limit,
                    &claim.worker_id,
                    &claim.lease_expires_at,
                    &claim_id,
                    &start_now,
                ],
            )?)
        })?;
        let mut claimed = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: String = r
                .try_get(0)
                .map_err(|e| Error::postgres("claiming tasks", e))?;
            let report_start: bool = r
                .try_get(COLUMN_COUNT)
                .map_err(|e| Error::postgres("claiming tasks", e))?;
            let task = match read_row(r) {
                Ok(row) => row
                    .into_claimed(max_attempts)
                    .map(|task| ClaimedTask {
                        report_start,
                        ..task
                    })
                    .map_err(|e| e.to_string()),
                Err(TxError::App(err)) => Err(err.to_string()),
                Err(TxError::Db(err)) => return Err(Error::postgres("claiming tasks", err)),
            };
            match task {
                Ok(task) => claimed.push(task),
                Err(message) => {
                    tracing::warn!(id = %id, "claimed a row that cannot be read; marking it FAILED: {message}");
                    // Should this fail, the lease expires and the rescue fails the row instead.
                    self.write_idempotent("failing an unreadable task", false, |tx| {
                        Ok(tx.execute(
                            "UPDATE taskhost_tasks SET status = 'FAILED', finished_at = $2, \
                             errors = $3::text::jsonb, lease_owner = NULL, \
                             lease_expires_at = NULL WHERE id = $1::text::uuid",
                            &[&id, &claim.now, &crate::row::corrupt_errors(&message)],
                        )?)
                    })?;
                    self.announce_finished(&[id.as_str()]);
                }
            }
        }
        claimed.sort_by(claim_order);
        Ok(claimed)
    }

    /// One `UPDATE … FROM unnest(…)` for the whole batch: one round trip however many.
    pub(super) fn complete(
        &self,
        completions: &[Completion],
        now: DateTime<Utc>,
    ) -> Result<Vec<CompletionAck>> {
        let (mut ids, mut tokens, mut statuses) = (Vec::new(), Vec::new(), Vec::new());
        let (mut values, mut finished, mut retries, mut errors, mut started) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for c in completions {
            let Some(id) = parse_id(&c.id) else { continue };
            let (status, return_value, error) = outcome_columns(c)?;
            ids.push(id);
            tokens.push(c.lease_token);
            statuses.push(status);
            values.push(return_value);
            finished.push((status != "READY").then_some(now));
            retries.push(c.retry_at);
            errors.push(error);
            started.push(c.started_at);
        }
        let cancelled = cancelled_instead_of_retry()?;
        let params: [&(dyn postgres::types::ToSql + Sync); 10] = [
            &ids, &tokens, &statuses, &values, &finished, &retries, &errors, &started, &now,
            &cancelled,
        ];
        // A retry after the session ended with the outcome unknown applies what the first try
        // did not, then reads back which rows hold exactly these completions (the first try's
        // commit included), so a stored result is acknowledged as applied, never reported as
        // a lost lease.
        let (mut applied, waiting): (HashSet<Uuid>, bool) =
            self.write_idempotent("completing tasks", false, |tx| {
                let mut rows = tx.query(COMPLETE, &params)?;
                let mut waiting = match rows.first() {
                    Some(row) => row.try_get::<_, Option<bool>>(1)?.unwrap_or(true),
                    None => false,
                };
                if tx.is_retry() {
                    rows = tx.query(COMPLETED, &[&ids, &tokens, &statuses, &values, &errors])?;
                    // What the lost attempt applied was not announced: tell any waits.
                    waiting = true;
                }
                let applied = rows
                    .iter()
                    .map(|r| Ok(r.try_get::<_, Uuid>(0)?))
                    .collect::<Result<_, TxError>>()?;
                Ok((applied, waiting))
            })?;
        if !self.config.limits.is_empty() {
            self.notify_freed(applied.iter().copied().collect());
        }
        // An id given twice is applied once: the first completion gets the ack.
        let acks: Vec<CompletionAck> = completions
            .iter()
            .map(|c| CompletionAck {
                id: c.id.clone(),
                applied: parse_id(&c.id).is_some_and(|id| applied.remove(&id)),
            })
            .collect();
        if !waiting {
            return Ok(acks);
        }
        // After the commit: see `announce_finished`. A retry's READY is not finished, unless the
        // task was asked to stop (then the completion ended it FAILED): announced too, the
        // waits read the row again.
        let finished: Vec<&str> = acks
            .iter()
            .filter(|ack| ack.applied)
            .map(|ack| ack.id.as_str())
            .collect();
        self.announce_finished(&finished);
        Ok(acks)
    }

    /// One `UPDATE … FROM unnest(…)` for every lease; the ids it did not return are lost, and
    /// it returns with each id whether the task was asked to stop: the worker learns of a
    /// cancellation in the same round trip.
    pub(super) fn renew(
        &self,
        request: &LeaseRequest,
        expires_at: DateTime<Utc>,
    ) -> Result<LeaseRenewal> {
        let (ids, tokens): (Vec<Uuid>, Vec<i64>) = request
            .leases
            .iter()
            .filter_map(|(id, token)| parse_id(id).map(|uuid| (uuid, *token)))
            .unzip();
        // Renewing twice is renewing: a retry with the outcome unknown just runs it again.
        let held: HashMap<Uuid, bool> = self.write_idempotent("renewing leases", false, |tx| {
            let rows = tx.query(
                "UPDATE taskhost_tasks t SET lease_expires_at = $1 \
                 FROM unnest($2::uuid[], $3::int8[]) AS u(id, token) \
                 WHERE t.id = u.id AND t.status = 'RUNNING' AND t.lease_owner = $4 \
                 AND t.lease_token = u.token RETURNING t.id, t.cancel_requested",
                &[&expires_at, &ids, &tokens, &request.worker_id],
            )?;
            rows.iter()
                .map(|r| Ok((r.try_get::<_, Uuid>(0)?, r.try_get::<_, bool>(1)?)))
                .collect::<Result<_, TxError>>()
        })?;
        let mut renewal = LeaseRenewal::default();
        for (id, _) in &request.leases {
            match parse_id(id).and_then(|uuid| held.get(&uuid)) {
                None => renewal.lost.push(id.clone()),
                Some(true) => renewal.cancel_requested.push(id.clone()),
                Some(false) => {}
            }
        }
        Ok(renewal)
    }

    /// One UPDATE that reads the row's status as it writes it: a READY row is FAILED, a
    /// RUNNING one marked. The row lock orders it with a claim: a claim that took the row
    /// first makes this UPDATE see it RUNNING (and mark it), one that comes after finds it
    /// FAILED (and skips it).
    pub(super) fn cancel(&self, id: Uuid, now: DateTime<Utc>) -> Result<Option<CancelOutcome>> {
        let error = cancelled_when_ready()?;
        let outcome = self.write_idempotent("cancelling a task", true, |tx| {
            let rows = tx.query(
                "UPDATE taskhost_tasks SET \
                 status = CASE WHEN status = 'READY' THEN 'FAILED' ELSE status END, \
                 finished_at = CASE WHEN status = 'READY' THEN $2 ELSE finished_at END, \
                 errors = CASE WHEN status = 'READY' \
                          THEN errors || jsonb_build_array($3::text::jsonb) ELSE errors END, \
                 cancel_requested = (status = 'RUNNING' OR cancel_requested) \
                 WHERE id = $1 AND status IN ('READY', 'RUNNING') RETURNING status",
                &[&id, &now, &error],
            )?;
            if let Some(row) = rows.first() {
                let status: String = row.try_get(0)?;
                return Ok(Some(match status.as_str() {
                    "FAILED" => CancelOutcome::Cancelled,
                    _ => CancelOutcome::Requested,
                }));
            }
            // A retry after a lost connection may find the first try's work done: a row it
            // FAILED with this very error was cancelled by it.
            let rows = tx.query(
                "SELECT status = 'FAILED' AND errors -> -1 = $2::text::jsonb \
                 FROM taskhost_tasks WHERE id = $1",
                &[&id, &error],
            )?;
            Ok(match rows.first() {
                None => None,
                Some(row) if tx.is_retry() && row.try_get::<_, bool>(0)? => {
                    Some(CancelOutcome::Cancelled)
                }
                Some(_) => Some(CancelOutcome::AlreadyFinished),
            })
        })?;
        // A READY task cancelled is finished: tell its waits.
        if outcome == Some(CancelOutcome::Cancelled) {
            self.announce_finished(&[id.hyphenated().to_string().as_str()]);
        }
        Ok(outcome)
    }

    /// The FAILED row READY again (see [`RETRY`]), with a NOTIFY on its queue.
    pub(super) fn retry(&self, id: Uuid, now: DateTime<Utc>) -> Result<Option<RetryOutcome>> {
        self.write("retrying a task", |tx| {
            if !tx.query(&RETRY, &[&id, &now])?.is_empty() {
                return Ok(Some(RetryOutcome::Retried));
            }
            let rows = tx.query("SELECT 1 FROM taskhost_tasks WHERE id = $1", &[&id])?;
            Ok((!rows.is_empty()).then_some(RetryOutcome::NotFailed))
        })
    }

    /// Hand leases back. Idempotent (each row is released only while it is still RUNNING under
    /// this worker and token), so a session lost mid-way is retried on a fresh one: a worker
    /// handing back prefetched tasks must not leave them to a rescue (the count may then miss
    /// rows the lost attempt released).
    pub(super) fn release(&self, request: &LeaseRequest, now: DateTime<Utc>) -> Result<u64> {
        let (released, cancelled) = self.release_leases(request, now)?;
        // A task asked to stop ended FAILED instead of READY: tell its waits.
        let cancelled: Vec<&str> = cancelled.iter().map(String::as_str).collect();
        self.announce_finished(&cancelled);
        if released > 0 && !self.config.limits.is_empty() {
            self.notify_freed(
                request
                    .leases
                    .iter()
                    .filter_map(|(id, _)| parse_id(id))
                    .collect(),
            );
        }
        Ok(released)
    }

    /// A task asked to stop is not made READY: it ends FAILED, cancelled.
    /// Returns how many, and the ids it ended FAILED (asked to stop).
    fn release_leases(
        &self,
        request: &LeaseRequest,
        now: DateTime<Utc>,
    ) -> Result<(u64, Vec<String>)> {
        let cancelled_error = cancelled_instead_of_release()?;
        self.write_idempotent("releasing tasks", true, |tx| {
            let (mut released, mut cancelled) = (0, Vec::new());
            for (id, token) in &request.leases {
                if let Some(uuid) = parse_id(id) {
                    let rows = tx.query(
                        "UPDATE taskhost_tasks SET \
                         status = CASE WHEN cancel_requested THEN 'FAILED' ELSE 'READY' END, \
                         finished_at = CASE WHEN cancel_requested THEN $4 ELSE finished_at END, \
                         errors = CASE WHEN cancel_requested \
                                  THEN errors || jsonb_build_array($5::text::jsonb) \
                                  ELSE errors END, \
                         attempts = attempts - 1, \
                         worker_ids = worker_ids - (-1), \
                         started_at = CASE WHEN attempts <= 1 THEN NULL ELSE started_at END, \
                         last_attempted_at = CASE WHEN attempts <= 1 THEN NULL \
                                             ELSE last_attempted_at END, \
                         lease_owner = NULL, lease_expires_at = NULL \
                         WHERE id = $1 AND status = 'RUNNING' AND lease_owner = $2 \
                         AND lease_token = $3 RETURNING status = 'FAILED'",
                        &[&uuid, &request.worker_id, token, &now, &cancelled_error],
                    )?;
                    if let Some(row) = rows.first() {
                        released += 1;
                        if row.try_get::<_, bool>(0)? {
                            cancelled.push(id.clone());
                        }
                    }
                }
            }
            Ok((released, cancelled))
        })
    }

    /// Clear `prefetched` on rows still held under these leases (one `UPDATE … FROM unnest`):
    /// their rescue counts now. Idempotent, so a lost session is retried on a new one.
    pub(super) fn report_started(&self, request: &LeaseRequest) -> Result<u64> {
        let (ids, tokens): (Vec<Uuid>, Vec<i64>) = request
            .leases
            .iter()
            .filter_map(|(id, token)| parse_id(id).map(|uuid| (uuid, *token)))
            .unzip();
        self.write_idempotent("reporting task starts", false, |tx| {
            Ok(tx.execute(
                "UPDATE taskhost_tasks t SET prefetched = false \
                 FROM unnest($1::uuid[], $2::int8[]) AS u(id, token) \
                 WHERE t.id = u.id AND t.status = 'RUNNING' AND t.lease_owner = $3 \
                 AND t.lease_token = u.token",
                &[&ids, &tokens, &request.worker_id],
            )?)
        })
    }

    pub(super) fn rescue(&self, now: DateTime<Utc>) -> Result<u64> {
        let (count, failed) =
            self.write("rescuing expired leases", |tx| self.rescue_in(tx, now))?;
        // After the commit: the tasks it failed end waits for them.
        let failed: Vec<&str> = failed.iter().map(String::as_str).collect();
        self.announce_finished(&failed);
        Ok(count)
    }

    /// Rescue inside an open transaction. Rows another transaction holds are skipped: it is
    /// rescuing or completing them. A row still `prefetched` (its worker never reported its
    /// start) is handed back as a release does, uncounted (decision 017); any other is rescued
    /// and counted (decision 010). Returns how many, and the ids it failed.
    fn rescue_in(
        &self,
        tx: &mut super::Tx<'_>,
        now: DateTime<Utc>,
    ) -> Result<(u64, Vec<String>), TxError> {
        let cancelled = cancelled_instead_of_rescue()?;
        let rows = tx.query(
            "SELECT id, lease_owner, lease_expires_at, attempts, rescues, lease_token, \
             cancel_requested, prefetched FROM taskhost_tasks \
             WHERE status = 'RUNNING' AND backend_name = $1 AND lease_expires_at < $2 \
             FOR UPDATE SKIP LOCKED",
            &[&self.config.alias, &now],
        )?;
        let (mut count, mut failed) = (0, Vec::new());
        for r in &rows {
            let id: Uuid = r.try_get(0)?;
            let lost = Expired {
                id: id.to_string(),
                owner: r.try_get::<_, Option<String>>(1)?.unwrap_or_default(),
                expired_at: r.try_get(2)?,
                attempts: i64::from(r.try_get::<_, i32>(3)?),
                rescues: i64::from(r.try_get::<_, i32>(4)?),
                max_rescues: i64::from(self.config.max_rescues),
                lease_token: r.try_get(5)?,
            };
            // A task that never started is handed back (decision 017), unless it was asked to
            // stop: a task asked to stop is not rescued; it ends FAILED, cancelled.
            let cancel_requested: bool = r.try_get(6)?;
            if r.try_get::<_, bool>(7)? && !cancel_requested {
                count += tx.execute(
                    "UPDATE taskhost_tasks SET status = 'READY', attempts = attempts - 1, \
                     worker_ids = worker_ids - (-1), \
                     started_at = CASE WHEN attempts <= 1 THEN NULL ELSE started_at END, \
                     last_attempted_at = CASE WHEN attempts <= 1 THEN NULL \
                                         ELSE last_attempted_at END, \
                     run_after = $3, prefetched = false, \
                     prefetch_rescues = prefetch_rescues + 1, \
                     lease_owner = NULL, lease_expires_at = NULL \
                     WHERE id = $1 AND status = 'RUNNING' AND lease_token = $2",
                    &[&id, &lost.lease_token, &lost.run_after(now)],
                )?;
                continue;
            }
            let (status, finished, run_after) = match lost.requeues() && !cancel_requested {
                true => ("READY", None, Some(lost.run_after(now))),
                false => ("FAILED", Some(now), None),
            };
            let mut errors = vec![serde_json::to_value(lost.error())
                .map_err(|e| Error::Other(format!("could not encode JSON: {e}")))?];
            if cancel_requested {
                errors.push(
                    serde_json::from_str(&cancelled)
                        .map_err(|e| Error::Other(format!("could not encode JSON: {e}")))?,
                );
            }
            let error = to_json(&errors)?;
            let updated = tx.execute(
                "UPDATE taskhost_tasks SET status = $2, finished_at = $3, \
                 run_after = COALESCE($6, run_after), \
                 errors = errors || $4::text::jsonb, \
                 rescues = rescues + 1, lease_owner = NULL, lease_expires_at = NULL \
                 WHERE id = $1 AND status = 'RUNNING' AND lease_token = $5",
                &[
                    &id,
                    &status,
                    &finished,
                    &error,
                    &lost.lease_token,
                    &run_after,
                ],
            )?;
            if updated == 1 && status == "FAILED" {
                failed.push(id.to_string());
            }
            count += updated;
        }
        Ok((count, failed))
    }
}

/// A retry: the FAILED row `$1` READY again and due at `$2`, its errors, worker ids and
/// attempts kept, the attempts made so far no longer counted against its `max_attempts`, its
/// rescues and any cancellation mark reset; then a NOTIFY on its queue (delivered at commit).
static RETRY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH retried AS (UPDATE taskhost_tasks SET status = 'READY', finished_at = NULL, \
         return_value = NULL, run_after = $2, cancel_requested = false, rescues = 0, \
         retried_attempts = attempts, lease_owner = NULL, lease_expires_at = NULL \
         WHERE id = $1 AND status = 'FAILED' RETURNING queue_name) \
         SELECT pg_notify('{CHANNEL}', queue_name) FROM retried"
    )
});

/// Hand `bytes` of COPY data to the connection (a unique violation found meanwhile is "already
/// stored").
fn send(writer: &mut postgres::CopyInWriter<'_>, bytes: &[u8]) -> Result<(), TxError> {
    use std::io::Write as _;
    writer.write_all(bytes).map_err(|err| {
        // The writer's only errors are the connection's, wrapped.
        match err.into_inner().map(|e| e.downcast::<postgres::Error>()) {
            Some(Ok(err)) => duplicate_or(*err),
            Some(Err(other)) => TxError::App(Error::Other(format!("COPY failed: {other}"))),
            None => TxError::App(Error::Other("COPY failed".into())),
        }
    })
}

/// Rows of [`COPY`] in PostgreSQL's binary COPY format (header, then per row the field count and
/// each field as length + bytes, -1 for NULL; a -1 count ends the data), written straight into
/// one buffer: the `postgres` crate's per-row writer enters its runtime once per row.
struct CopyRows {
    buf: Vec<u8>,
}

impl CopyRows {
    fn new() -> Self {
        let mut buf = Vec::with_capacity(COPY_PIECE + 4096);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags: no OIDs
        buf.extend_from_slice(&0i32.to_be_bytes()); // no header extension
        Self { buf }
    }

    fn field(&mut self, bytes: &[u8]) {
        // Every field here is far below 2 GiB (the payload limit is the host's).
        let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(bytes);
    }

    fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }

    fn time(&mut self, at: Option<DateTime<Utc>>) {
        match at {
            Some(at) => self.field(&(at.timestamp_micros() - PG_EPOCH_MICROS).to_be_bytes()),
            None => self.null(),
        }
    }

    /// A `jsonb` field: format version 1, then the JSON text.
    fn jsonb(&mut self, text: &str) {
        let len = i32::try_from(text.len() + 1).unwrap_or(i32::MAX);
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.push(1);
        self.buf.extend_from_slice(text.as_bytes());
    }

    /// One task, in [`COPY`]'s column order.
    fn row(&mut self, alias: &str, task: &NewTask) {
        let t = &task.request.task;
        self.buf.extend_from_slice(&15i16.to_be_bytes());
        self.field(task.id.as_bytes());
        self.field(t.path.as_bytes());
        self.field(t.queue_name.as_bytes());
        self.field(&t.priority.to_be_bytes());
        self.field(alias.as_bytes());
        self.field(b"READY");
        self.jsonb(task.request.args.as_str());
        self.jsonb(task.request.kwargs.as_str());
        self.field(&[u8::from(t.takes_context)]);
        self.field(&[u8::from(t.is_async)]);
        self.time(t.run_after);
        self.time(Some(task.enqueued_at));
        match max_attempts_column(t) {
            Some(n) => self.field(&n.to_be_bytes()),
            None => self.null(),
        }
        match t.timeout_secs {
            Some(secs) => self.field(&secs.to_bits().to_be_bytes()),
            None => self.null(),
        }
        match &task.request.trace_context {
            Some(context) => self.field(context.as_bytes()),
            None => self.null(),
        }
    }

    /// The end-of-data marker.
    fn end(&mut self) {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
    }
}

/// `max_attempts` as its `integer` column holds it: a count above `i32::MAX` is stored as
/// `i32::MAX` (no task gets that far), the same on the INSERT, COPY and `unnest` paths.
pub(super) fn max_attempts_column(t: &TaskDescription) -> Option<i32> {
    t.max_attempts.map(|n| i32::try_from(n).unwrap_or(i32::MAX))
}

/// One chunk of tasks, column by column, for `unnest`.
struct Columns<'a> {
    ids: Vec<Uuid>,
    paths: Vec<&'a str>,
    queues: Vec<&'a str>,
    priorities: Vec<i32>,
    args: Vec<&'a str>,
    kwargs: Vec<&'a str>,
    takes_context: Vec<bool>,
    is_async: Vec<bool>,
    run_after: Vec<Option<DateTime<Utc>>>,
    enqueued_at: Vec<DateTime<Utc>>,
    max_attempts: Vec<Option<i32>>,
    timeout_secs: Vec<Option<f64>>,
    trace_contexts: Vec<Option<&'a str>>,
}

impl<'a> Columns<'a> {
    fn of(tasks: &'a [NewTask]) -> Self {
        let mut c = Columns {
            ids: Vec::with_capacity(tasks.len()),
            paths: Vec::with_capacity(tasks.len()),
            queues: Vec::with_capacity(tasks.len()),
            priorities: Vec::with_capacity(tasks.len()),
            args: Vec::with_capacity(tasks.len()),
            kwargs: Vec::with_capacity(tasks.len()),
            takes_context: Vec::with_capacity(tasks.len()),
            is_async: Vec::with_capacity(tasks.len()),
            run_after: Vec::with_capacity(tasks.len()),
            enqueued_at: Vec::with_capacity(tasks.len()),
            max_attempts: Vec::with_capacity(tasks.len()),
            timeout_secs: Vec::with_capacity(tasks.len()),
            trace_contexts: Vec::with_capacity(tasks.len()),
        };
        for task in tasks {
            let t = &task.request.task;
            c.ids.push(task.id);
            c.paths.push(&t.path);
            c.queues.push(&t.queue_name);
            c.priorities.push(t.priority);
            c.args.push(task.request.args.as_str());
            c.kwargs.push(task.request.kwargs.as_str());
            c.takes_context.push(t.takes_context);
            c.is_async.push(t.is_async);
            c.run_after.push(t.run_after);
            c.enqueued_at.push(task.enqueued_at);
            c.max_attempts.push(max_attempts_column(t));
            c.timeout_secs.push(t.timeout_secs);
            c.trace_contexts.push(task.request.trace_context.as_deref());
        }
        c
    }
}

/// A primary-key violation as "already stored", naming the id from the server's detail.
pub(super) fn duplicate_or(err: postgres::Error) -> TxError {
    let Some(db) = err
        .as_db_error()
        .filter(|db| *db.code() == SqlState::UNIQUE_VIOLATION)
    else {
        return TxError::Db(err);
    };
    let id = db
        .detail()
        .and_then(|d| d.split("Key (id)=(").nth(1))
        .and_then(|rest| rest.split(')').next())
        .unwrap_or("?");
    TxError::App(Error::already_stored(id))
}
