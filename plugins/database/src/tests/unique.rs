//! Unique tasks: a second enqueue under a held key returns the row holding it (one row stored);
//! the READY/RUNNING scope frees the key when the task finishes (and keeps it through a retry);
//! a period holds it whatever the status until it runs out; keys are per alias and task path;
//! a batch holding a key twice stores it once; bad keys are refused.

use super::api::*;
use super::harness::{on_both_databases, TestDb};
use serde_json::json;
use taskhost_plugin_api::{
    Backend, Capabilities, EnqueueRequest, ErrorKind, UniqueKey, UniqueScope,
};

on_both_databases!(
    a_held_key_returns_the_task_holding_it,
    the_active_scope_frees_the_key_when_the_task_finishes,
    a_period_holds_the_key_whatever_the_status_until_it_runs_out,
    keys_are_held_per_alias_and_task_path,
    a_batch_holding_a_key_twice_stores_it_once,
    bad_keys_are_refused_and_nothing_is_stored,
);

fn keyed(path: &str, key: &str, scope: UniqueScope) -> EnqueueRequest {
    let mut request = task(path, "default", 0, None);
    request.unique = Some(Box::new(UniqueKey {
        key: key.into(),
        scope,
    }));
    request
}

fn a_held_key_returns_the_task_holding_it(db: TestDb) {
    let (b, _) = db.backend();
    assert!(b.capabilities().contains(Capabilities::UNIQUE));
    let first = enqueue_request(&b, keyed("app::bill", "k1", UniqueScope::Active));
    let mut second = keyed("app::bill", "k1", UniqueScope::Active);
    second.args = json_of(&json!(["other", "args"]));
    let second_id = second.id.clone();
    let again = enqueue_request(&b, second);
    assert_eq!(again.id, first.id, "the holder's result, not {second_id}");
    assert_eq!(
        value_of(&again.args),
        json!([1, "two"]),
        "the holder's own arguments"
    );
    assert_eq!(
        get(&b, &second_id).unwrap_err().kind,
        ErrorKind::RESULT_DOES_NOT_EXIST
    );
    // While it runs, too.
    let claimed = claim(&b, "w1", 1);
    assert_eq!(claimed_ids(&claimed), vec![first.id.to_string()]);
    let running = enqueue_request(&b, keyed("app::bill", "k1", UniqueScope::Active));
    assert_eq!(running.id, first.id);
    assert_eq!(all(&b).len(), 1);
    // Without a key, the same task is stored again.
    enqueue_request(&b, task("app::bill", "default", 0, None));
    assert_eq!(all(&b).len(), 2);
}

fn the_active_scope_frees_the_key_when_the_task_finishes(db: TestDb) {
    let (b, _) = db.backend();
    let first = enqueue_request(&b, keyed("app::bill", "k", UniqueScope::Active));
    // A failed attempt that is retried keeps the key (READY again).
    let claimed = claim(&b, "w1", 1);
    let retry_at = db.now() + chrono::Duration::seconds(5);
    complete(&b, &[failure(&claimed[0], Some(retry_at))]);
    let retried = enqueue_request(&b, keyed("app::bill", "k", UniqueScope::Active));
    assert_eq!(retried.id, first.id);
    db.advance_secs(10);
    let claimed = claim(&b, "w1", 1);
    assert_eq!(claimed_ids(&claimed), vec![first.id.to_string()]);
    assert!(complete(&b, &[success(&claimed[0], json!(1))])[0].applied);
    // Finished: the key is free; the next enqueue is a new task, which holds it now.
    let next = enqueue_request(&b, keyed("app::bill", "k", UniqueScope::Active));
    assert_ne!(next.id, first.id);
    let after = enqueue_request(&b, keyed("app::bill", "k", UniqueScope::Active));
    assert_eq!(after.id, next.id);
    assert_eq!(all(&b).len(), 2);
}

fn a_period_holds_the_key_whatever_the_status_until_it_runs_out(db: TestDb) {
    let (b, _) = db.backend();
    let hour = UniqueScope::For {
        period_us: 3_600_000_000,
    };
    let first = enqueue_request(&b, keyed("app::report", "daily", hour));
    let claimed = claim(&b, "w1", 1);
    complete(&b, &[success(&claimed[0], json!(null))]);
    db.advance_secs(3599);
    let held = enqueue_request(&b, keyed("app::report", "daily", hour));
    assert_eq!(held.id, first.id, "finished, but within the hour");
    // The READY/RUNNING scope meets the same key.
    let active = enqueue_request(&b, keyed("app::report", "daily", UniqueScope::Active));
    assert_eq!(active.id, first.id);
    db.advance_secs(1);
    let next = enqueue_request(&b, keyed("app::report", "daily", hour));
    assert_ne!(next.id, first.id, "the hour ran out");
    assert_eq!(all(&b).len(), 2);
}

fn keys_are_held_per_alias_and_task_path(db: TestDb) {
    let (b, _) = db.backend();
    let (other, _) = db.try_backend("other", json!({})).unwrap();
    let a = enqueue_request(&b, keyed("app::a", "k", UniqueScope::Active));
    let path = enqueue_request(&b, keyed("app::b", "k", UniqueScope::Active));
    let alias = enqueue_request(&other, keyed("app::a", "k", UniqueScope::Active));
    let key = enqueue_request(&b, keyed("app::a", "k2", UniqueScope::Active));
    let ids = [&a.id, &path.id, &alias.id, &key.id];
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), 4, "{ids:?}");
}

fn a_batch_holding_a_key_twice_stores_it_once(db: TestDb) {
    let (b, _) = db.backend();
    let stored = enqueue_request(&b, keyed("app::a", "held", UniqueScope::Active));
    let requests = vec![
        keyed("app::a", "new", UniqueScope::Active),
        task("app::a", "default", 0, None),
        keyed("app::a", "new", UniqueScope::Active),
        keyed("app::a", "held", UniqueScope::Active),
    ];
    let results = enqueue_many(&b, &requests).unwrap();
    assert_eq!(results[0].id, requests[0].id);
    assert_eq!(results[1].id, requests[1].id);
    assert_eq!(
        results[2].id, requests[0].id,
        "the earlier run of the batch"
    );
    assert_eq!(results[3].id, stored.id);
    assert_eq!(all(&b).len(), 3);
}

fn bad_keys_are_refused_and_nothing_is_stored(db: TestDb) {
    let (b, _) = db.backend();
    for (key, scope, message) in [
        (
            "",
            UniqueScope::Active,
            "A unique key must be 1 to 255 bytes long, got 0 bytes",
        ),
        (
            &*"k".repeat(256),
            UniqueScope::Active,
            "A unique key must be 1 to 255 bytes long, got 256 bytes",
        ),
        (
            "k",
            UniqueScope::For { period_us: 0 },
            "A unique period must be at least 1 µs",
        ),
    ] {
        let requests = vec![
            task("app::a", "default", 0, None),
            keyed("app::a", key, scope),
        ];
        let err = enqueue_many(&b, &requests).unwrap_err();
        assert_eq!(err.kind, ErrorKind::INVALID_REQUEST, "{err}");
        assert!(err.message().starts_with(message), "{err}");
    }
    assert!(all(&b).is_empty(), "all or none");
}
