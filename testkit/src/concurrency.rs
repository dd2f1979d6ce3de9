//! Concurrent enqueues: 8 threads × 50 tasks lose nothing.

use crate::context::{on_threads, Check, Ctx, Verdict};
use crate::pass;
use serde_json::{json, Map};
use std::collections::HashMap;

pub(crate) const CHECKS: &[Check] = &[Check {
    name: "concurrent_enqueue",
    run: concurrent_enqueue,
}];

const THREADS: usize = 8;
const PER_THREAD: usize = 50;

/// 8 threads enqueue 50 tasks each at once: all 400 succeed with distinct ids, and — when the
/// backend reads results back — each is stored with its own arguments.
fn concurrent_enqueue(ctx: &Ctx) -> Verdict {
    let task = ctx.task("concurrent");
    let outcomes = on_threads(THREADS, |t| {
        let mut ids = Vec::with_capacity(PER_THREAD);
        for i in 0..PER_THREAD {
            let result = ctx
                .enqueue(&task, vec![json!(t), json!(i)], Map::new())
                .map_err(|e| format!("thread {t}, task {i}: {e}"))?;
            ids.push((result.id().to_string(), vec![json!(t), json!(i)]));
        }
        Ok(ids)
    });
    let mut all = HashMap::new();
    for outcome in outcomes {
        for (id, args) in outcome? {
            if let Some(previous) = all.insert(id.clone(), args.clone()) {
                return Err(format!(
                    "the id '{id}' was returned for two concurrent enqueues (args {previous:?} \
                     and {args:?})"
                ));
            }
        }
    }
    ensure!(
        all.len() == THREADS * PER_THREAD,
        "{} distinct ids for {} enqueues",
        all.len(),
        THREADS * PER_THREAD
    );
    for (id, args) in &all {
        let Some(stored) = ctx.fetch(id)? else {
            break; // no get_result: ids are all that can be checked
        };
        ensure!(
            stored.args() == args.as_slice(),
            "result {id} was enqueued with args {args:?} but is stored with {:?}",
            stored.args()
        );
    }
    pass()
}
