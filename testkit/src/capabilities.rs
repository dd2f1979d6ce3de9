//! Declared capabilities are honest: what a backend says it supports is stored; what it says
//! it does not is refused by the host's validation before the plugin is called.

use crate::context::{check_task, in_an_hour, variant, Check, Ctx, Verdict};
use crate::pass;
use serde_json::{json, Map};
use taskhost::Error;
use taskhost_plugin_api::{TaskDescription, TaskResultStatus};

pub(crate) const CHECKS: &[Check] = &[
    Check {
        name: "defer",
        run: defer,
    },
    Check {
        name: "priority_and_queue",
        run: priority_and_queue,
    },
    Check {
        name: "async_tasks",
        run: async_tasks,
    },
];

/// Enqueue `task`, and check the stored description in the returned result and, when the
/// backend can read results back, in `get_result`.
fn stored(ctx: &Ctx, task: &TaskDescription) -> Result<TaskResultStatus, String> {
    let result = ctx.enqueue(task, vec![json!("x")], Map::new())?;
    check_task(result.data(), task)?;
    if let Some(fetched) = ctx.fetch(result.id())? {
        check_task(fetched.data(), task).map_err(|m| format!("get_result: {m}"))?;
    }
    Ok(result.status())
}

/// Enqueueing `task` must fail with Django's `InvalidTask(message)` from the host.
fn refused(ctx: &Ctx, task: &TaskDescription, message: &str) -> Result<(), String> {
    match ctx.backend.enqueue_json(task, Vec::new(), Map::new()) {
        Err(Error::InvalidTask(m)) if m == message => Ok(()),
        Err(e) => Err(format!(
            "expected InvalidTask(\"{message}\") from the host's validation, got {}: {e}",
            variant(&e)
        )),
        Ok(r) => Err(format!(
            "expected InvalidTask(\"{message}\"), but the task was enqueued as '{}'",
            r.id()
        )),
    }
}

/// `supports_defer`: `run_after` is kept (and the task is not run at once); without it, the
/// host refuses `run_after`.
fn defer(ctx: &Ctx) -> Verdict {
    let mut task = ctx.task("defer");
    task.run_after = Some(in_an_hour());
    if !ctx.backend.supports_defer() {
        refused(ctx, &task, "Backend does not support run_after.")?;
        return pass();
    }
    let status = stored(ctx, &task)?;
    ensure!(
        status == TaskResultStatus::Ready,
        "a task deferred by an hour came back {status} from enqueue (expected READY)"
    );
    pass()
}

/// Queue names are stored as given; with `supports_priority`, priorities -100, 0 and 100 are
/// stored; without it, the host refuses a priority other than 0.
fn priority_and_queue(ctx: &Ctx) -> Verdict {
    let mut task = ctx.task("priority");
    task.queue_name = format!("{}_other", task.queue_name).into();
    stored(ctx, &task)?;
    if !ctx.backend.supports_priority() {
        task.priority = 5;
        refused(
            ctx,
            &task,
            "Backend does not support setting priority of tasks.",
        )?;
        return pass();
    }
    for priority in [-100, 0, 100] {
        task.priority = priority;
        stored(ctx, &task).map_err(|e| format!("priority {priority}: {e}"))?;
    }
    task.priority = 101;
    refused(
        ctx,
        &task,
        "priority must be a whole number between -100 and 100.",
    )?;
    pass()
}

/// `supports_async_task`: `is_async` is stored; without it, the host refuses async tasks.
fn async_tasks(ctx: &Ctx) -> Verdict {
    let mut task = ctx.task("async");
    task.is_async = true;
    if !ctx.backend.supports_async_task() {
        refused(ctx, &task, "Backend does not support async Tasks.")?;
        return pass();
    }
    stored(ctx, &task).map_err(|e| format!("async task: {e}"))?;
    pass()
}
