//! Enqueueing and reading back: well-formed results under the host's ids, unique ids, bulk
//! enqueue, `get_result` round trips and Django's `TaskResultDoesNotExist`.

use crate::context::{
    check_enqueued, check_task, describe, same_time, sample_args, sample_kwargs, value_of, Check,
    Ctx, Verdict,
};
use crate::signals::{Kind, Recorder};
use crate::{pass, skip};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use taskhost::atomic;
use taskhost::Error;
use taskhost_plugin_api::TaskResultStatus;

pub(crate) const CHECKS: &[Check] = &[
    Check {
        name: "enqueue_result",
        run: enqueue_result,
    },
    Check {
        name: "enqueue_keeps_host_id",
        run: keeps_host_id,
    },
    Check {
        name: "unique_ids",
        run: unique_ids,
    },
    Check {
        name: "enqueue_many",
        run: enqueue_many,
    },
    Check {
        name: "get_result_round_trip",
        run: get_result_round_trip,
    },
    Check {
        name: "get_result_unknown_id",
        run: get_result_unknown_id,
    },
];

/// `enqueue` returns a READY result (or a finished one, for a backend that runs at once) with
/// the id the host made, the task, queue and priority as sent, and the arguments round-tripped.
fn enqueue_result(ctx: &Ctx) -> Verdict {
    let mut task = ctx.task("enqueue");
    if ctx.backend.supports_priority() {
        task.priority = 7;
    }
    let (args, kwargs) = (sample_args(), sample_kwargs());
    let before = Utc::now();
    let result = ctx.enqueue(&task, args.clone(), kwargs.clone())?;
    let after = Utc::now();
    check_host_made(result.id(), before, after)?;
    check_enqueued(result.data(), &task, &args, &kwargs)?;
    pass()
}

/// The host makes result ids (UUID v7) before it calls the plugin: an id that is not a v7 UUID
/// from the time of the call was made up by the plugin.
fn check_host_made(id: &str, before: DateTime<Utc>, after: DateTime<Utc>) -> Result<(), String> {
    let not_host = |why: String| {
        Err(format!(
            "the result id '{id}' is not the id the host assigned ({why}); store and return \
             EnqueueRequest.id"
        ))
    };
    let Ok(uuid) = uuid::Uuid::parse_str(id) else {
        return not_host("not a UUID".into());
    };
    if uuid.get_version_num() != 7 {
        return not_host(format!(
            "a UUID v{}, the host makes v7",
            uuid.get_version_num()
        ));
    }
    let Some(ts) = uuid.get_timestamp() else {
        return not_host("no timestamp".into());
    };
    let (secs, nanos) = ts.to_unix();
    let millis = secs as i64 * 1000 + i64::from(nanos / 1_000_000);
    let (from, to) = (
        before.timestamp_millis() - 1000,
        after.timestamp_millis() + 1000,
    );
    if !(from..=to).contains(&millis) {
        return not_host("its time is not the time of the call".into());
    }
    Ok(())
}

/// Inside a transaction scope the host returns the READY result with its id at once and hands
/// the request to the plugin at commit: the plugin must store it under that very id.
fn keeps_host_id(ctx: &Ctx) -> Verdict {
    let task = ctx.task("host_id");
    let recorder = Recorder::start(&task.path);
    let pending = atomic(|| ctx.backend.enqueue_json(&task, vec![json!(1)], Map::new()))
        .map_err(|e| describe("enqueue in a transaction scope", &e))?;
    let events = recorder.finish();
    let host_id = pending.id().to_string();
    if let Some(stored) = ctx
        .fetch(&host_id)
        .map_err(|e| format!("after enqueueing with the host's id '{host_id}' (at commit): {e}"))?
    {
        ensure!(
            stored.id() == host_id,
            "get_result('{host_id}') returned result '{}'",
            stored.id()
        );
        return pass();
    }
    let enqueued: Vec<_> = events.iter().filter(|e| e.kind == Kind::Enqueued).collect();
    match enqueued.first() {
        Some(e) if e.id == host_id => pass(),
        Some(e) => Err(format!(
            "the host assigned id '{host_id}', the backend sent task_enqueued for id '{}'",
            e.id
        )),
        None => skip(
            "cannot observe the stored id: get_result is not supported and no task_enqueued \
             signal was sent",
        ),
    }
}

/// 200 enqueues give 200 distinct ids.
fn unique_ids(ctx: &Ctx) -> Verdict {
    let task = ctx.task("unique");
    let mut ids = HashSet::new();
    for i in 0..200 {
        let result = ctx.enqueue(&task, vec![json!(i)], Map::new())?;
        ensure!(
            ids.insert(result.id().to_string()),
            "enqueue #{i} returned the id '{}' a second time",
            result.id()
        );
    }
    pass()
}

/// `enqueue_many` (native, or the host's loop) returns one well-formed result per task, in
/// order, with distinct ids.
fn enqueue_many(ctx: &Ctx) -> Verdict {
    let task = ctx.task("many");
    let items: Vec<_> = (0..5).map(|i| (task.clone(), vec![json!(i)])).collect();
    let results = ctx
        .backend
        .enqueue_many_json(items)
        .map_err(|e| describe("enqueue_many", &e))?;
    ensure!(
        results.len() == 5,
        "enqueue_many of 5 tasks returned {} results",
        results.len()
    );
    let mut ids = HashSet::new();
    for (i, result) in results.iter().enumerate() {
        check_enqueued(result.data(), &task, &[json!(i)], &Map::new())
            .map_err(|e| format!("enqueue_many, task #{i} (results must keep the order): {e}"))?;
        ensure!(
            ids.insert(result.id()),
            "enqueue_many returned the id '{}' twice",
            result.id()
        );
    }
    pass()
}

/// `get_result` returns what was stored. Skipped when the backend answers NotSupported (as a
/// backend without `supports_get_result` may; Dummy implements it without declaring it).
fn get_result_round_trip(ctx: &Ctx) -> Verdict {
    let task = ctx.task("get_result");
    let (args, kwargs) = (sample_args(), sample_kwargs());
    let enqueued = ctx.enqueue(&task, args.clone(), kwargs.clone())?;
    let Some(stored) = ctx.fetch(enqueued.id())? else {
        return skip("backend does not declare supports_get_result (get_result: NotSupported)");
    };
    let (e, s) = (enqueued.data(), stored.data());
    ensure!(
        s.id == e.id,
        "get_result('{}') returned result '{}'",
        e.id,
        s.id
    );
    check_task(s, &task).map_err(|m| format!("get_result: {m}"))?;
    ensure!(
        value_of(&s.args) == Value::from(args) && value_of(&s.kwargs) == Value::from(kwargs),
        "get_result('{}'): the arguments did not round-trip: args {:?}, kwargs {:?}",
        s.id,
        s.args,
        s.kwargs
    );
    ensure!(
        s.backend == e.backend,
        "get_result('{}'): backend '{}', enqueue said '{}'",
        s.id,
        s.backend,
        e.backend
    );
    ensure!(
        s.status == e.status || e.status == TaskResultStatus::Ready,
        "get_result('{}'): status {}, enqueue returned {}",
        s.id,
        s.status,
        e.status
    );
    ensure!(
        same_time(s.enqueued_at, e.enqueued_at),
        "get_result('{}'): enqueued_at {:?}, enqueue returned {:?}",
        s.id,
        s.enqueued_at,
        e.enqueued_at
    );
    pass()
}

/// An id never enqueued is Django's `TaskResultDoesNotExist`, with the id as message.
fn get_result_unknown_id(ctx: &Ctx) -> Verdict {
    let id = uuid::Uuid::now_v7().to_string();
    match ctx.backend.get_result(&id) {
        Err(Error::TaskResultDoesNotExist(message)) => {
            ensure!(
                message == id,
                "TaskResultDoesNotExist for '{id}' must have the id as message, got '{message}'"
            );
            pass()
        }
        Err(Error::NotSupported(_)) if !ctx.backend.supports_get_result() => {
            skip("backend does not declare supports_get_result (get_result: NotSupported)")
        }
        Err(e) => Err(format!(
            "get_result of an unknown id must be TaskResultDoesNotExist(id); {}",
            describe(&format!("get_result('{id}')"), &e)
        )),
        Ok(r) => Err(format!(
            "get_result('{id}') returned a result (id '{}') for an id never enqueued",
            r.id()
        )),
    }
}
