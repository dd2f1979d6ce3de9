//! Queue limits on SQLite (see `crate::limits` and `docs/decisions/021-queue-limits.md`).
//!
//! Every claim is one `BEGIN IMMEDIATE` transaction, which SQLite runs one at a time across
//! processes: a claim that may take from limited queues counts their RUNNING tasks, reads their
//! recent starts, chooses at most what each may still run and records the starts, with no other
//! claim in between. Claims that cannot take from a limited queue skip all of it.

use super::queue::CLAIM_SET;
use super::{json_list, us, SqliteStore, TxError, COLUMNS};
use crate::error::Result;
use crate::limits::LimitUsage;
use crate::limits::{pick, taken_from, Candidate, Starts};
use crate::store::Claim;
use chrono::{DateTime, Utc};
use rusqlite::{named_params, OptionalExtension};
use std::collections::HashMap;

/// Ready tasks a claim may take, in claim order (the claim query's filter, with the columns of
/// that order).
const CANDIDATES: &str = "SELECT id, queue_name, priority, run_after, enqueued_at \
    FROM taskhost_tasks \
    WHERE status = 'READY' AND backend_name = :alias \
      AND (run_after IS NULL OR run_after <= :now) \
      AND (:queues IS NULL OR queue_name IN (SELECT value FROM json_each(:queues))) \
      AND queue_name NOT IN (SELECT value FROM json_each(:exclude)) \
    ORDER BY priority DESC, COALESCE(run_after, 253370764800000000), enqueued_at, id \
    LIMIT :limit";

/// RUNNING tasks of one queue (the lease index narrows it to RUNNING rows of the alias).
const RUNNING: &str = "SELECT count(*) FROM taskhost_tasks \
    WHERE status = 'RUNNING' AND backend_name = ?1 AND queue_name = ?2";

const STARTS: &str =
    "SELECT starts FROM taskhost_queue_limits WHERE backend_name = ?1 AND queue_name = ?2";

const SAVE_STARTS: &str = "INSERT INTO taskhost_queue_limits (backend_name, queue_name, starts) \
    VALUES (?1, ?2, ?3) \
    ON CONFLICT (backend_name, queue_name) DO UPDATE SET starts = excluded.starts";

/// The claim of the tasks [`SqliteStore::limited_claim`] chose (`:ids`, a JSON list).
pub(super) fn claim_taken_sql() -> String {
    format!(
        "UPDATE taskhost_tasks SET {CLAIM_SET}, \
         prefetched = (SELECT j.key FROM json_each(:ids) AS j WHERE j.value = taskhost_tasks.id) >= :start_now \
         WHERE status = 'READY' AND id IN (SELECT value FROM json_each(:ids)) \
         RETURNING {COLUMNS}, prefetched AND prefetch_rescues > 0"
    )
}

impl SqliteStore {
    /// Inside the claim's write transaction: `None` when the claim cannot take from a limited
    /// queue (it then runs as before); else the ids (a JSON list) it may take within every
    /// limit, their starts already recorded.
    pub(super) fn limited_claim(
        &self,
        tx: &rusqlite::Connection,
        claim: &Claim,
    ) -> Result<Option<String>, TxError> {
        let limited = self.config.limits.in_claim(claim);
        if limited.is_empty() {
            return Ok(None);
        }
        let alias = &self.config.alias;
        let now = us(claim.now);
        let mut candidates = Vec::new();
        let others = claim
            .queues
            .as_ref()
            .is_none_or(|qs| qs.iter().any(|q| !limited.contains(q)));
        if others {
            let mut exclude = claim.exclude_queues.clone();
            exclude.extend(limited.iter().cloned());
            let queues = claim.queues.as_deref().map(json_list);
            self.candidates(tx, claim, queues, &exclude, claim.limit, &mut candidates)?;
        }
        let mut logs = Vec::new();
        for queue in &limited {
            let Some(queue_limit) = self.config.limits.get(queue) else {
                continue;
            };
            let running: i64 = tx
                .prepare_cached(RUNNING)?
                .query_row((alias, queue), |r| r.get(0))?;
            let starts = tx
                .prepare_cached(STARTS)?
                .query_row((alias, queue), |r| r.get::<_, String>(0))
                .optional()?
                .map(|text| Starts::decode(&text))
                .unwrap_or_default();
            let allowed = queue_limit
                .allowance(running.max(0) as u64, &starts, now)
                .min(claim.limit);
            if allowed > 0 {
                let only = Some(json_list(std::slice::from_ref(queue)));
                self.candidates(tx, claim, only, &[], allowed, &mut candidates)?;
            }
            if let Some(rate) = &queue_limit.rate {
                logs.push((queue, rate, starts));
            }
        }
        let taken = pick(candidates, claim.limit);
        for (queue, rate, before) in logs {
            let mut after = before.clone();
            after.record(rate, now, taken_from(&taken, queue));
            if after != before {
                tx.prepare_cached(SAVE_STARTS)?
                    .execute((alias, queue, after.encode()))?;
            }
        }
        let ids: Vec<String> = taken.into_iter().map(|c| c.id).collect();
        Ok(Some(json_list(&ids)))
    }

    /// The limited queues' limits and usage at `now`.
    pub(super) fn limit_usage(&self, now: DateTime<Utc>) -> Result<Vec<LimitUsage>> {
        if self.config.limits.is_empty() {
            return Ok(Vec::new());
        }
        let alias = &self.config.alias;
        let (running, starts) = self.read("reading queue limits", |c| {
            let running = c
                .prepare_cached(
                    "SELECT queue_name, count(*) FROM taskhost_tasks \
                     WHERE status = 'RUNNING' AND backend_name = ?1 GROUP BY queue_name",
                )?
                .query_map([alias], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<HashMap<String, i64>>>()?;
            let starts = c
                .prepare_cached(
                    "SELECT queue_name, starts FROM taskhost_queue_limits WHERE backend_name = ?1",
                )?
                .query_map([alias], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<HashMap<String, String>>>()?;
            Ok((running, starts))
        })?;
        Ok(self.config.limits.usage(&running, &starts, us(now)))
    }

    /// Append the candidates of one selection (`queues`: a JSON list, `None` = all) to `out`.
    fn candidates(
        &self,
        tx: &rusqlite::Connection,
        claim: &Claim,
        queues: Option<String>,
        exclude: &[String],
        limit: u32,
        out: &mut Vec<Candidate>,
    ) -> Result<(), TxError> {
        let mut stmt = tx.prepare_cached(CANDIDATES)?;
        let rows = stmt.query_map(
            named_params! {
                ":alias": self.config.alias,
                ":now": us(claim.now),
                ":queues": queues,
                ":exclude": json_list(exclude),
                ":limit": limit,
            },
            |r| {
                Ok(Candidate {
                    id: r.get(0)?,
                    queue: r.get(1)?,
                    priority: r.get(2)?,
                    run_after: r.get::<_, Option<i64>>(3)?.unwrap_or(i64::MAX),
                    enqueued_at: r.get(4)?,
                })
            },
        )?;
        for row in rows {
            out.push(row?);
        }
        Ok(())
    }
}
