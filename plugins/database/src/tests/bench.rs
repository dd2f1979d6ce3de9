//! Throughput, measured on request (release build):
//! `cargo test --release -p taskhost-backends-database -- --ignored --nocapture throughput`.

use super::api::*;
use super::harness::{on_both_databases, TestDb};
use std::time::Instant;
use taskhost_plugin_api::Backend;

on_both_databases!(ignored: throughput);

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
