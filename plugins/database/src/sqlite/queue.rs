//! The SQLite queue: enqueue, get, claim, complete, renew, release and rescue.

use super::{json_list, read_row, us, SqliteStore, TxError, COLUMNS};
use crate::error::Result;
use crate::row::{claim_order, outcome_columns, parse_id, to_json, Expired, NewTask};
use crate::store::Claim;
use chrono::{DateTime, Utc};
use rusqlite::named_params;
use taskhost_plugin_api::{ClaimedTask, Completion, CompletionAck, LeaseRequest, TaskResultData};

const INSERT: &str = "INSERT INTO taskhost_tasks (id, task_path, queue_name, priority, \
    backend_name, status, args, kwargs, takes_context, is_async, run_after, enqueued_at, \
    max_attempts, timeout_secs) VALUES (?1, ?2, ?3, ?4, ?5, 'READY', ?6, ?7, ?8, ?9, ?10, ?11, \
    ?12, ?13)";

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

impl SqliteStore {
    pub(super) fn enqueue(&self, tasks: &[NewTask]) -> Result<()> {
        self.write("enqueuing tasks", |tx| {
            let mut insert = tx.prepare_cached(INSERT)?;
            let mut buffer = uuid::Uuid::encode_buffer();
            for task in tasks {
                let t = &task.request.task;
                let id: &str = task.id.hyphenated().encode_lower(&mut buffer);
                let inserted = insert.execute(rusqlite::params![
                    id,
                    t.path.as_str(),
                    t.queue_name.as_str(),
                    t.priority,
                    self.config.alias,
                    task.request.args.as_str(),
                    task.request.kwargs.as_str(),
                    t.takes_context,
                    t.is_async,
                    t.run_after.map(us),
                    us(task.enqueued_at),
                    t.max_attempts,
                    t.timeout_secs,
                ]);
                if let Err(err) = inserted {
                    return Err(duplicate_or(err, id));
                }
            }
            Ok(())
        })
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
            "UPDATE taskhost_tasks SET status = 'RUNNING', started_at = :now, \
             last_attempted_at = :now, worker_ids = CASE WHEN json_valid(worker_ids) \
             THEN json_insert(worker_ids, '$[#]', :worker) ELSE worker_ids END, \
             attempts = attempts + 1, lease_token = lease_token + 1, lease_owner = :worker, \
             lease_expires_at = :expires WHERE id IN ({CLAIM_SELECT}) RETURNING {COLUMNS}"
        );
        let mut claimed = self.write("claiming tasks", |tx| {
            self.rescue_in(tx, claim.now)?;
            let mut stmt = tx.prepare_cached(&sql)?;
            let mut rows = stmt.query(named_params! {
                ":alias": self.config.alias,
                ":now": us(claim.now),
                ":queues": claim.queues.as_deref().map(json_list),
                ":exclude": json_list(&claim.exclude_queues),
                ":limit": claim.limit,
                ":worker": claim.worker_id,
                ":expires": us(claim.lease_expires_at),
            })?;
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

/// A primary-key violation as "already stored"; anything else as is.
fn duplicate_or(err: rusqlite::Error, id: &str) -> TxError {
    let duplicate = matches!(
        &err,
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    );
    match duplicate {
        true => TxError::App(crate::error::Error::already_stored(id)),
        false => TxError::Db(err),
    }
}
