//! Queue-store leases: a wrong token is fenced off, renewal reports lost leases, release hands
//! a task back, and an expired lease is rescued by a later claim.

use crate::context::{describe, Check, Ctx, Verdict};
use crate::pass;
use crate::queue_store::{claim, claim_one, complete, not_a_queue_store, success, worker};
use serde_json::json;
use std::time::{Duration, Instant};
use taskhost_plugin_api::{LeaseRequest, TaskResultStatus};

pub(crate) const CHECKS: &[Check] = &[
    Check {
        name: "stale_lease_token_fenced",
        run: stale_lease_token_fenced,
    },
    Check {
        name: "renew_leases",
        run: renew_leases,
    },
    Check {
        name: "release_makes_ready",
        run: release_makes_ready,
    },
    Check {
        name: "expired_lease_rescued",
        run: expired_lease_rescued,
    },
];

/// How long the rescue check waits for a 1-second lease to be rescued.
const RESCUE_WITHIN: Duration = Duration::from_secs(10);

/// A completion carrying a wrong lease token is not applied and changes nothing; the right
/// token is then applied.
fn stale_lease_token_fenced(ctx: &Ctx) -> Verdict {
    if let Some(skipped) = not_a_queue_store(ctx) {
        return skipped;
    }
    let c = claim_one(ctx, "fenced", &worker(ctx, "fence"))?;
    let id = &c.result.id;
    let wrong = c.lease_token.wrapping_add(1);
    let applied = complete(ctx, success(&c, wrong, json!("stale")))?;
    ensure!(
        !applied,
        "a completion of task {id} with lease token {wrong} (the lease's is {}) was applied",
        c.lease_token
    );
    if let Some(stored) = ctx.fetch(id)? {
        ensure!(
            stored.status() == TaskResultStatus::Running,
            "a completion with a wrong lease token changed task {id} to {}",
            stored.status()
        );
    }
    ensure!(
        complete(ctx, success(&c, c.lease_token, json!("ok")))?,
        "after a fenced-off completion, the lease holder's completion of task {id} was not \
         applied"
    );
    pass()
}

/// Renewing a held lease keeps it; an unknown lease (and a wrong token) is reported lost.
fn renew_leases(ctx: &Ctx) -> Verdict {
    if let Some(skipped) = not_a_queue_store(ctx) {
        return skipped;
    }
    let w = worker(ctx, "renew");
    let c = claim_one(ctx, "renew", &w)?;
    let other = claim_one(ctx, "renew_other", &w)?;
    let unknown = uuid::Uuid::now_v7().to_string();
    let request = LeaseRequest {
        worker_id: w.clone(),
        leases: vec![
            (c.result.id.to_string(), c.lease_token),
            (unknown.clone(), 1),
            (
                other.result.id.to_string(),
                other.lease_token.wrapping_add(1),
            ),
        ],
        lease_secs: 60.0,
    };
    let mut lost = ctx
        .backend
        .renew_leases(&request)
        .map_err(|e| describe("renew_leases", &e))?;
    lost.sort();
    let mut expected = vec![unknown, other.result.id.to_string()];
    expected.sort();
    ensure!(
        lost == expected,
        "renew_leases of a held lease ({}), an unknown id and a wrong token reported lost \
         {lost:?}; expected {expected:?}",
        c.result.id
    );
    pass()
}

/// Releasing a claimed task makes it READY again, and a later claim gets it.
fn release_makes_ready(ctx: &Ctx) -> Verdict {
    if let Some(skipped) = not_a_queue_store(ctx) {
        return skipped;
    }
    let w = worker(ctx, "release");
    let c = claim_one(ctx, "release", &w)?;
    let id = &c.result.id;
    let released = ctx
        .backend
        .release(&LeaseRequest {
            worker_id: w.clone(),
            leases: vec![(id.to_string(), c.lease_token)],
            lease_secs: 0.0,
        })
        .map_err(|e| describe("release", &e))?;
    ensure!(
        released == 1,
        "release of one held lease returned {released}"
    );
    if let Some(stored) = ctx.fetch(id)? {
        ensure!(
            stored.status() == TaskResultStatus::Ready,
            "a released task {id} is {}, not READY",
            stored.status()
        );
    }
    let again = claim(ctx, &w, &c.result.task.queue_name, 5, 60.0)?;
    ensure!(
        again.len() == 1 && &again[0].result.id == id,
        "after release, a claim returned {:?} (expected task {id})",
        again.iter().map(|a| &a.result.id).collect::<Vec<_>>()
    );
    pass()
}

/// A task claimed with a 1-second lease and never completed is rescued: a later claim (polled
/// for up to 10 s) gets it with a new token for the new worker; the first worker's renewal
/// reports the lease lost and its completion is not applied.
fn expired_lease_rescued(ctx: &Ctx) -> Verdict {
    if let Some(skipped) = not_a_queue_store(ctx) {
        return skipped;
    }
    let (wa, wb) = (worker(ctx, "dead"), worker(ctx, "rescuer"));
    let mut task = ctx.task("rescue");
    task.max_attempts = Some(3);
    let id = ctx
        .enqueue(&task, vec![json!(1)], Default::default())?
        .id()
        .to_string();
    let first = claim(ctx, &wa, &task.queue_name, 1, 1.0)?;
    ensure!(
        first.len() == 1 && first[0].result.id == id,
        "claiming the one ready task {id} returned {} task(s)",
        first.len()
    );
    let first = &first[0];
    let deadline = Instant::now() + RESCUE_WITHIN;
    let rescued = loop {
        let claimed = claim(ctx, &wb, &task.queue_name, 1, 60.0)?;
        if let Some(c) = claimed.into_iter().next() {
            break c;
        }
        ensure!(
            Instant::now() < deadline,
            "task {id} was claimed with a 1 s lease and never completed, but no claim got it \
             back within {} s (an expired lease must be rescued: the task READY again at its \
             first rescue, whatever your policy for tasks that keep losing their worker)",
            RESCUE_WITHIN.as_secs()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    ensure!(
        rescued.result.id == id,
        "the rescuing claim returned task {}, not {id}",
        rescued.result.id
    );
    ensure!(
        rescued.lease_token != first.lease_token,
        "the rescued task {id} kept the expired lease's token {}",
        first.lease_token
    );
    let lost = ctx
        .backend
        .renew_leases(&LeaseRequest {
            worker_id: wa.clone(),
            leases: vec![(id.clone(), first.lease_token)],
            lease_secs: 60.0,
        })
        .map_err(|e| describe("renew_leases", &e))?;
    ensure!(
        lost == [id.clone()],
        "after its rescue, the first worker's renewal of task {id} reported lost {lost:?}"
    );
    ensure!(
        !complete(ctx, success(first, first.lease_token, json!("late")))?,
        "the first worker's late completion of rescued task {id} was applied"
    );
    ensure!(
        complete(ctx, success(&rescued, rescued.lease_token, json!("ok")))?,
        "the rescuing worker's completion of task {id} was not applied"
    );
    pass()
}
