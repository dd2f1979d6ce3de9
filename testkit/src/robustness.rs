//! Odd inputs through the public wrapper: every method answers with an error or NotSupported —
//! never a panic (which the guard turns into an error, but which is a bug all the same), never
//! a dead process — and the backend still works afterwards.

use crate::context::{describe, is_panic, Check, Ctx, Verdict};
use crate::pass;
use serde_json::{json, Map, Value};
use taskhost::{Error, Result};
use taskhost_plugin_api::{ClaimRequest, LeaseRequest};

pub(crate) const CHECKS: &[Check] = &[
    Check {
        name: "odd_result_ids",
        run: odd_result_ids,
    },
    Check {
        name: "unknown_extension_op",
        run: unknown_extension_op,
    },
    Check {
        name: "empty_queue_store_calls",
        run: empty_queue_store_calls,
    },
];

/// `get_result` with ids that are not ids: an error (any kind but a panic), never a result;
/// then an ordinary enqueue still works.
fn odd_result_ids(ctx: &Ctx) -> Verdict {
    let long = "x".repeat(10_000);
    let ids = [
        "",
        "not-a-uuid",
        "00000000-0000-0000-0000-000000000000",
        "'; DROP TABLE tasks; --",
        "nul\0byte",
        "ünïcødé ✓",
        long.as_str(),
    ];
    for id in ids {
        let shown: String = id.chars().take(40).collect();
        match ctx.backend.get_result(id) {
            Ok(r) => {
                return Err(format!(
                    "get_result({shown:?}) returned a result (id '{}') for an id never enqueued",
                    r.id()
                ))
            }
            Err(e) if is_panic(&e) => return Err(describe(&format!("get_result({shown:?})"), &e)),
            Err(_) => {}
        }
    }
    ctx.enqueue(&ctx.task("after_odd_ids"), vec![json!(1)], Map::new())
        .map_err(|e| format!("after odd get_result calls, {e}"))?;
    pass()
}

/// An extension operation the backend does not know is NotSupported (the ABI's rule for
/// [`Backend::call_ext`](taskhost_plugin_api::Backend::call_ext)).
fn unknown_extension_op(ctx: &Ctx) -> Verdict {
    for op in ["taskhost.conformance.no_such_op", "", "results\0"] {
        match ctx
            .backend
            .call_ext_json::<_, Value>(op, &json!({"garbage": [1, 2]}))
        {
            Err(Error::NotSupported(_)) => {}
            Err(e) => {
                return Err(format!(
                    "an unknown extension operation must be NotSupported; {}",
                    describe(&format!("call_ext({op:?})"), &e)
                ))
            }
            Ok(v) => {
                return Err(format!(
                    "call_ext({op:?}), an unknown operation, returned {v} (expected NotSupported)"
                ))
            }
        }
    }
    pass()
}

/// Queue-store calls with nothing to do: a queue store answers with nothing (`claim` with
/// limit 0 → `[]`, `complete([])` → `[]`, renewing or releasing no lease → `[]`/`0`); any other
/// backend with NotSupported (or the same empty answers).
fn empty_queue_store_calls(ctx: &Ctx) -> Verdict {
    let qs = ctx.backend.supports_queue_store();
    let worker_id = format!("cf-{}", ctx.nonce);
    let claim = ClaimRequest {
        worker_id: worker_id.clone(),
        queues: Some(vec![ctx.queue("empty")]),
        exclude_queues: Vec::new(),
        limit: 0,
        lease_secs: 30.0,
        start_now: None,
    };
    let leases = LeaseRequest {
        worker_id,
        leases: Vec::new(),
        lease_secs: 30.0,
    };
    empty(
        qs,
        "claim with limit 0",
        ctx.backend.claim(&claim),
        Vec::is_empty,
    )?;
    empty(
        qs,
        "complete([])",
        ctx.backend.complete(Vec::new()),
        Vec::is_empty,
    )?;
    empty(
        qs,
        "renew_leases with no lease",
        ctx.backend.renew_leases(&leases),
        Vec::is_empty,
    )?;
    empty(
        qs,
        "release with no lease",
        ctx.backend.release(&leases),
        |n| *n == 0,
    )?;
    pass()
}

fn empty<T: std::fmt::Debug>(
    queue_store: bool,
    call: &str,
    result: Result<T>,
    is_empty: impl Fn(&T) -> bool,
) -> Result<(), String> {
    match result {
        Ok(v) if is_empty(&v) => Ok(()),
        Ok(v) => Err(format!("{call} returned {v:?} (expected nothing)")),
        Err(Error::NotSupported(_)) if !queue_store => Ok(()),
        Err(e) if queue_store => Err(format!(
            "the backend declares supports_queue_store; {}",
            describe(call, &e)
        )),
        Err(e) => Err(format!(
            "a backend without supports_queue_store must answer NotSupported; {}",
            describe(call, &e)
        )),
    }
}
