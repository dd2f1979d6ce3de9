//! Queue limits (the option `queues`): what a claim may take under a concurrency limit and a
//! rate limit, that claims of other queues are not held back, and concurrent claims from many
//! backend instances (as worker processes) under one limit.

use super::api::*;
use super::harness::{on_both_databases, TestDb};
use serde_json::json;
use std::sync::{Arc, Barrier};

on_both_databases!(
    a_claim_never_takes_a_queue_past_its_concurrency_limit,
    a_rate_limit_counts_claims_over_a_sliding_window,
    concurrent_claims_of_many_workers_stay_within_the_limit,
);

fn a_claim_never_takes_a_queue_past_its_concurrency_limit(db: TestDb) {
    let (b, _) = db
        .try_backend(
            "default",
            json!({"queues": {"limited": {"concurrency": 2}}}),
        )
        .unwrap();
    for _ in 0..5 {
        enqueue(&b, "limited");
    }
    let free: Vec<_> = (0..3).map(|_| enqueue(&b, "free")).collect();
    // All queues: the three free tasks and two limited ones (claim order: enqueue time).
    let first = claim(&b, "w1", 10);
    assert_eq!(first.len(), 5);
    let queue_of = |t: &taskhost_plugin_api::ClaimedTask| t.result.task.queue_name.to_string();
    let limited = first.iter().filter(|t| queue_of(t) == "limited").count();
    assert_eq!(limited, 2);
    assert_eq!(first.len() - limited, free.len());
    assert!(claim(&b, "w2", 10).is_empty(), "the limited queue is full");
    // A result frees one place, a hand-back another.
    let done: Vec<_> = first.iter().filter(|t| queue_of(t) == "limited").collect();
    assert!(complete(&b, &[success(done[0], json!(1))])[0].applied);
    let next = claim_with(&b, &claim_request("w2", Some(&["limited"]), 10));
    assert_eq!(next.len(), 1);
    assert_eq!(release(&b, &lease("w2", &[&next[0]], 10.0)), 1);
    assert_eq!(claim(&b, "w3", 10).len(), 1);
    assert!(claim(&b, "w3", 10).is_empty());
}

fn a_rate_limit_counts_claims_over_a_sliding_window(db: TestDb) {
    let (b, _) = db
        .try_backend(
            "default",
            json!({"queues": {"metered": {"rate": {"limit": 3, "per": "10s"}}}}),
        )
        .unwrap();
    for _ in 0..10 {
        enqueue(&b, "metered");
    }
    let take = |n| claim_with(&b, &claim_request("w", Some(&["metered"]), n)).len();
    assert_eq!(take(2), 2);
    db.advance_secs(4);
    assert_eq!(take(5), 1, "3 per 10 s: one more in the same window");
    assert_eq!(take(5), 0);
    db.advance_secs(6);
    // The first two left the window (10 s after them); the third is still in it.
    assert_eq!(take(5), 2);
    db.advance_secs(4);
    assert_eq!(take(5), 1);
    assert_eq!(take(5), 0);
}

/// 8 threads, half with a backend (a pool) of their own as separate workers would have, all
/// claiming at once from a queue limited to 3: 3 claimed in all.
fn concurrent_claims_of_many_workers_stay_within_the_limit(db: TestDb) {
    let options = json!({"queues": {"default": {"concurrency": 3}}});
    let (b, _) = db.try_backend("default", options.clone()).unwrap();
    for _ in 0..20 {
        enqueue(&b, "default");
    }
    let shared = Arc::new(b);
    let db = Arc::new(db);
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|n| {
            let (shared, db, barrier) = (shared.clone(), db.clone(), barrier.clone());
            let options = options.clone();
            std::thread::spawn(move || {
                let own = (n % 2 == 1).then(|| db.try_backend("default", options).unwrap().0);
                let backend = own.as_ref().unwrap_or(&shared);
                barrier.wait();
                (0..5)
                    .map(|_| claim(backend, &format!("w{n}"), 2).len())
                    .sum::<usize>()
            })
        })
        .collect();
    let claimed: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(claimed, 3);
}
