//! Unique enqueue, for a backend declaring `supports_unique`: 8 threads enqueueing one key at
//! once get one task; another key, another task path or another scope's enqueue meet as they
//! should. Without the capability: the host
//! refuses a unique task by the backend's name (the key never reaches the plugin).

use crate::context::{on_threads, Check, Ctx, Verdict};
use crate::pass;
use serde_json::{json, Map};
use std::collections::HashSet;
use taskhost::Unique;
use taskhost_plugin_api::Capabilities;

pub(crate) const CHECKS: &[Check] = &[Check {
    name: "unique_enqueue",
    run: unique_enqueue,
}];

const THREADS: usize = 8;

fn supports_unique(ctx: &Ctx) -> bool {
    ctx.backend.capabilities().contains(Capabilities::UNIQUE)
}

/// Enqueue `task` with `args` under `unique`: `(id, is_duplicate)`.
fn enqueue(
    ctx: &Ctx,
    task: &taskhost_plugin_api::TaskDescription,
    args: serde_json::Value,
    unique: &Unique,
) -> Result<(String, bool), String> {
    let serde_json::Value::Array(args) = args else {
        unreachable!("arguments are an array")
    };
    let result = ctx
        .backend
        .enqueue_json_unique(task, args, Map::new(), unique)
        .map_err(|e| crate::context::describe("enqueue (unique)", &e))?;
    Ok((result.id().to_string(), result.is_duplicate()))
}

fn unique_enqueue(ctx: &Ctx) -> Verdict {
    if !supports_unique(ctx) {
        return refused_without_capability(ctx);
    }
    let task = ctx.task("unique");
    let derived = Unique::derived();
    // Concurrent enqueues of one key: one task, every caller gets its id.
    let outcomes = on_threads(THREADS, |_| enqueue(ctx, &task, json!(["same"]), &derived));
    let outcomes = outcomes.into_iter().collect::<Result<Vec<_>, String>>()?;
    let ids: HashSet<&str> = outcomes.iter().map(|(id, _)| id.as_str()).collect();
    ensure!(
        ids.len() == 1,
        "{THREADS} concurrent enqueues under one key got {} different ids: {ids:?}",
        ids.len()
    );
    let fresh = outcomes.iter().filter(|(_, duplicate)| !duplicate).count();
    ensure!(
        fresh == 1,
        "{fresh} of {THREADS} concurrent enqueues under one key were reported as new tasks \
         (expected 1; the others must return the task holding the key)"
    );
    let held = outcomes[0].0.clone();
    // Other arguments derive another key; an explicit key is held per task path.
    let (other, duplicate) = enqueue(ctx, &task, json!(["other"]), &derived)?;
    ensure!(
        other != held && !duplicate,
        "other arguments must derive another key, but the enqueue returned {other} \
         (duplicate: {duplicate})"
    );
    let key = Unique::key("conformance-key");
    let (a, _) = enqueue(ctx, &task, json!([1]), &key)?;
    let (b, duplicate) = enqueue(ctx, &task, json!([2]), &key)?;
    ensure!(
        a == b && duplicate,
        "a second enqueue under the held key 'conformance-key' returned {b} (duplicate: \
         {duplicate}), not the holder {a}"
    );
    let (c, duplicate) = enqueue(ctx, &ctx.task("unique_other_path"), json!([1]), &key)?;
    ensure!(
        c != a && !duplicate,
        "a key is held per task path, but another task under 'conformance-key' returned {c} \
         (duplicate: {duplicate})"
    );
    // The stored holder is the one returned, with its own arguments.
    if let Some(stored) = ctx.fetch(&held)? {
        ensure!(
            stored.args() == [json!("same")],
            "the holder {held} is stored with {:?}",
            stored.args()
        );
    }
    pass()
}

fn refused_without_capability(ctx: &Ctx) -> Verdict {
    let task = ctx.task("not_unique");
    match enqueue(ctx, &task, json!([]), &Unique::derived()) {
        Err(message) if message.contains("does not support unique tasks") => pass(),
        Err(message) => Err(format!(
            "a unique task on a backend without supports_unique must be refused with \
             InvalidTask, got: {message}"
        )),
        Ok((id, _)) => Err(format!(
            "a unique task on a backend without supports_unique was enqueued ({id}): the key \
             would be ignored"
        )),
    }
}
