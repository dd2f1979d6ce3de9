//! Throughput, measured on request (release build):
//! `cargo test --release -p taskhost-backends-database -- --ignored --nocapture throughput`.

use super::api::*;
use super::harness::{on_both_databases, TestDb};
use serde_json::json;
use std::time::Instant;
use taskhost_plugin_api::Backend;

on_both_databases!(ignored: throughput, limits_cost);

fn throughput(db: TestDb) {
    const ROWS: usize = 200_000;
    const BATCH: usize = 10_000;
    let (b, _) = db.backend();
    let requests: Vec<_> = (0..ROWS)
        .map(|i| task("t::bench", "default", (i % 3) as i32, None))
        .collect();
    // Made up front: the timing covers the plugin's call (insert, commit), and the test
    // host's recording of the `task_enqueued` signals (it listens to every signal).
    let batches: Vec<Vec<_>> = requests.chunks(BATCH).map(<[_]>::to_vec).collect();
    let started = Instant::now();
    for batch in batches {
        assert!(b.enqueue_many(batch).is_ok());
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{:?}: enqueue_many {ROWS} rows in batches of {BATCH}: {secs:.2} s = {:.0} rows/s",
        db.kind,
        ROWS as f64 / secs
    );
    let started = Instant::now();
    let mut done = 0;
    loop {
        let claimed = claim(&b, "bench", 100);
        if claimed.is_empty() {
            break;
        }
        let completions: Vec<_> = claimed
            .iter()
            .map(|t| success(t, serde_json::json!(null)))
            .collect();
        complete(&b, &completions);
        done += claimed.len();
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(done, ROWS);
    eprintln!(
        "{:?}: claim(100) + complete {ROWS} rows: {secs:.2} s = {:.0} tasks/s",
        db.kind,
        ROWS as f64 / secs
    );
}

/// What limits cost a claim + completion: no limits; a limit on another queue, claims of every
/// queue (the limited path, nothing counted against the claimed queue); the claimed queue
/// itself limited (far above what is claimed). Per task, claims of 100.
fn limits_cost(db: TestDb) {
    const TASKS: usize = 5_000;
    let cases = [
        ("no limits", json!({})),
        (
            "another queue limited",
            json!({"queues": {"other": {"concurrency": 5}}}),
        ),
        (
            "this queue limited",
            json!({"queues": {"default": {"concurrency": 1_000_000, "rate": {"limit": 1_000_000, "per": "1h"}}}}),
        ),
    ];
    for (name, options) in cases {
        let (b, _) = db.try_backend("default", options).unwrap();
        let requests: Vec<_> = (0..TASKS)
            .map(|_| task("t::bench", "default", 0, None))
            .collect();
        enqueue_many(&b, &requests).unwrap();
        let started = std::time::Instant::now();
        let mut done = 0;
        loop {
            let claimed = claim(&b, "bench", 100);
            if claimed.is_empty() {
                break;
            }
            let completions: Vec<_> = claimed.iter().map(|t| success(t, json!(null))).collect();
            complete(&b, &completions);
            done += claimed.len();
        }
        assert_eq!(done, TASKS);
        let micros = started.elapsed().as_secs_f64() * 1e6 / TASKS as f64;
        eprintln!(
            "{:?}: {name}: claim(100) + complete: {micros:.1} µs per task",
            db.kind
        );
    }
}
