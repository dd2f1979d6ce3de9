//! Queue limits on PostgreSQL (see `crate::limits` and `docs/decisions/021-queue-limits.md`).
//!
//! A claim that may take from limited queues runs in one transaction: it locks those queues'
//! rows of `taskhost_queue_limits` (`FOR UPDATE`, in name order, so claims never deadlock on
//! them), counts their RUNNING tasks, reads their recent starts, takes at most what each may
//! still run (`FOR UPDATE SKIP LOCKED`, as every claim), records the starts and commits. Claims
//! on a limited queue therefore take turns, and each counts after the previous one committed:
//! no interleaving of workers exceeds a limit. Claims that cannot take from a limited queue
//! never come here (one statement, as before).

use super::queue::claim_set;
use super::{PgStore, TxError, CHANNEL, COLUMNS};
use crate::error::Result;
use crate::limits::{pick, taken_from, Candidate, LimitUsage, Starts};
use crate::store::Claim;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::LazyLock;
use uuid::Uuid;

/// The rows of limited queues `$2` of alias `$1`, locked in name order.
const LOCK: &str = "SELECT queue_name, starts FROM taskhost_queue_limits \
    WHERE backend_name = $1 AND queue_name = ANY($2::text[]) ORDER BY queue_name FOR UPDATE";

/// Make the missing rows (a queue's first limited claim); existing ones are left alone.
const ENSURE: &str = "INSERT INTO taskhost_queue_limits (backend_name, queue_name) \
    SELECT $1, q FROM unnest($2::text[]) AS q ORDER BY q ON CONFLICT DO NOTHING";

/// RUNNING tasks per queue (`$2`) of alias `$1`: the lease index narrows it to RUNNING rows.
const RUNNING: &str = "SELECT queue_name, count(*) FROM taskhost_tasks \
    WHERE status = 'RUNNING' AND backend_name = $1 AND queue_name = ANY($2::text[]) \
    GROUP BY queue_name";

/// Ready tasks a claim may take, in claim order, locked (the claim query's filter, with the
/// columns of that order).
const CANDIDATES: &str = "SELECT id::text, queue_name, priority, run_after, enqueued_at \
    FROM taskhost_tasks \
    WHERE status = 'READY' AND backend_name = $1 \
      AND (run_after IS NULL OR run_after <= $2) \
      AND ($3::text[] IS NULL OR queue_name = ANY($3::text[])) \
      AND queue_name <> ALL($4::text[]) \
    ORDER BY priority DESC, COALESCE(run_after, 'infinity'::timestamptz), enqueued_at, id \
    LIMIT $5 FOR UPDATE SKIP LOCKED";

/// Store the starts logs (`$3`) of queues `$2`.
const SAVE_STARTS: &str = "UPDATE taskhost_queue_limits SET starts = u.starts \
    FROM unnest($2::text[], $3::text[]) AS u(queue_name, starts) \
    WHERE backend_name = $1 AND taskhost_queue_limits.queue_name = u.queue_name";

/// Mark the chosen rows (`$5`, locked by [`CANDIDATES`], so still READY) RUNNING, as the claim
/// query does, those past the first `$6` in claim order prefetched (decision 017). Only the
/// primary key is asked: with the claim index's columns in the filter, PostgreSQL walked every
/// READY row of the alias to find the chosen ones.
static TAKE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE taskhost_tasks SET {}, prefetched = c.n > $6 \
         FROM unnest($5::uuid[]) WITH ORDINALITY AS c(taken, n) WHERE taskhost_tasks.id = c.taken \
         RETURNING {COLUMNS}, prefetched AND prefetch_rescues > 0",
        claim_set("$1", "$2", "$3", "$4")
    )
});

/// Wake idle workers of the limited queues among tasks `$1` (done or handed back: room freed).
const NOTIFY_FREED: &str = "SELECT pg_notify($3, q) FROM (SELECT DISTINCT queue_name AS q \
    FROM taskhost_tasks WHERE id = ANY($1::uuid[]) AND queue_name = ANY($2::text[])) AS freed";

impl PgStore {
    /// The claim of a worker that may take from the limited queues `limited` (sorted), in the
    /// transaction `tx`.
    pub(super) fn claim_limited(
        &self,
        tx: &mut super::Tx<'_>,
        claim: &Claim,
        limited: &[String],
        claim_id: Uuid,
        start_now: i64,
    ) -> Result<Vec<postgres::Row>, TxError> {
        let alias = &self.config.alias;
        let now = claim.now.timestamp_micros();
        let mut locked = tx.query(LOCK, &[alias, &limited])?;
        if locked.len() < limited.len() {
            tx.execute(ENSURE, &[alias, &limited])?;
            locked = tx.query(LOCK, &[alias, &limited])?;
        }
        let mut starts: HashMap<String, Starts> = HashMap::new();
        for row in &locked {
            starts.insert(row.try_get(0)?, Starts::decode(row.try_get(1)?));
        }
        // Counted by a statement of its own, after the lock: under READ COMMITTED it takes a
        // new snapshot, which holds the commit of the claim that had the lock before. (A count
        // in the locking statement itself would be computed before the lock is granted.)
        let mut running: HashMap<String, i64> = HashMap::new();
        for row in tx.query(RUNNING, &[alias, &limited])? {
            running.insert(row.try_get(0)?, row.try_get(1)?);
        }
        let mut candidates = Vec::new();
        let limit = i64::from(claim.limit);
        // The queues without limits: the claim's selection minus the limited ones.
        let others = claim
            .queues
            .as_ref()
            .is_none_or(|qs| qs.iter().any(|q| !limited.contains(q)));
        if others {
            let mut exclude = claim.exclude_queues.clone();
            exclude.extend(limited.iter().cloned());
            read_candidates(
                tx,
                alias,
                claim,
                &claim.queues,
                &exclude,
                limit,
                &mut candidates,
            )?;
        }
        for queue in limited {
            let Some(queue_limit) = self.config.limits.get(queue) else {
                continue;
            };
            let running = running.get(queue).copied().unwrap_or(0).max(0) as u64;
            let log = starts.get(queue).cloned().unwrap_or_default();
            let allowed = queue_limit.allowance(running, &log, now).min(claim.limit);
            if allowed > 0 {
                let only = Some(vec![queue.clone()]);
                let limit = i64::from(allowed);
                read_candidates(tx, alias, claim, &only, &[], limit, &mut candidates)?;
            }
        }
        let taken = pick(candidates, claim.limit);
        let (mut queues, mut logs) = (Vec::new(), Vec::new());
        for queue in limited {
            let Some(rate) = self.config.limits.get(queue).and_then(|l| l.rate.as_ref()) else {
                continue;
            };
            let before = starts.remove(queue).unwrap_or_default();
            let mut after = before.clone();
            after.record(rate, now, taken_from(&taken, queue));
            if after != before {
                queues.push(queue.clone());
                logs.push(after.encode());
            }
        }
        if !queues.is_empty() {
            tx.execute(SAVE_STARTS, &[alias, &queues, &logs])?;
        }
        if taken.is_empty() {
            return Ok(Vec::new());
        }
        // As uuids: compared as text, PostgreSQL converted the list at every row it looked at.
        let ids: Vec<Uuid> = taken
            .iter()
            .filter_map(|c| Uuid::parse_str(&c.id).ok())
            .collect();
        Ok(tx.query(
            &TAKE,
            &[
                &claim.now,
                &claim.worker_id,
                &claim.lease_expires_at,
                &claim_id,
                &ids,
                &start_now,
            ],
        )?)
    }

    /// The limited queues' limits and usage at `now`.
    pub(super) fn limit_usage(&self, now: DateTime<Utc>) -> Result<Vec<LimitUsage>> {
        if self.config.limits.is_empty() {
            return Ok(Vec::new());
        }
        let alias = &self.config.alias;
        let (running, starts) = self.read("reading queue limits", |tx| {
            let mut running = HashMap::new();
            for row in tx.query(
                "SELECT queue_name, count(*) FROM taskhost_tasks \
                 WHERE status = 'RUNNING' AND backend_name = $1 GROUP BY queue_name",
                &[alias],
            )? {
                running.insert(row.try_get::<_, String>(0)?, row.try_get::<_, i64>(1)?);
            }
            let mut starts = HashMap::new();
            for row in tx.query(
                "SELECT queue_name, starts FROM taskhost_queue_limits WHERE backend_name = $1",
                &[alias],
            )? {
                starts.insert(row.try_get::<_, String>(0)?, row.try_get::<_, String>(1)?);
            }
            Ok((running, starts))
        })?;
        Ok(self
            .config
            .limits
            .usage(&running, &starts, now.timestamp_micros()))
    }

    /// After tasks `ids` were completed or handed back: wake idle workers of their limited
    /// queues, which may have room again (best effort: a failure is logged, and waiting workers
    /// look again at their interval). Nothing is sent when no queue is limited.
    pub(super) fn notify_freed(&self, ids: Vec<Uuid>) {
        if self.config.limits.is_empty() || ids.is_empty() {
            return;
        }
        let queues: Vec<&str> = self.config.limits.iter().map(|(q, _)| q.as_str()).collect();
        let sent = self.read("waking workers of limited queues", |tx| {
            Ok(tx.query(NOTIFY_FREED, &[&ids, &queues, &CHANNEL])?.len())
        });
        if let Err(err) = sent {
            tracing::debug!("could not wake the workers of limited queues: {err}");
        }
    }
}

/// Append the candidates of one selection to `out`.
fn read_candidates(
    tx: &mut super::Tx<'_>,
    alias: &str,
    claim: &Claim,
    queues: &Option<Vec<String>>,
    exclude: &[String],
    limit: i64,
    out: &mut Vec<Candidate>,
) -> Result<(), TxError> {
    let rows = tx.query(CANDIDATES, &[&alias, &claim.now, queues, &exclude, &limit])?;
    for row in rows {
        out.push(Candidate {
            id: row.try_get(0)?,
            queue: row.try_get(1)?,
            priority: row.try_get(2)?,
            run_after: row
                .try_get::<_, Option<DateTime<Utc>>>(3)?
                .map_or(i64::MAX, |t| t.timestamp_micros()),
            enqueued_at: row.try_get::<_, DateTime<Utc>>(4)?.timestamp_micros(),
        });
    }
    Ok(())
}
