//! The Database plugin on SQLite (a temp dir, WAL): single enqueue (one commit each),
//! `enqueue_many` of 1,000 rows, and an in-process worker draining 10,000 no-op tasks.

// `criterion_group!` generates undocumented functions.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use std::hint::black_box;
use std::time::{Duration, Instant};
use taskhost::worker::QueueSelection;
use taskhost::{task, TaskOptions, Worker, WorkerOptions};

/// A no-op task with two small arguments.
#[task]
fn noop(a: i64, b: i64) -> i64 {
    a + b
}

const BULK: u64 = 1_000;
const DRAIN: u64 = 10_000;

fn sqlite_benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (enqueue_db, drain_db) = (dir.path().join("enqueue.db"), dir.path().join("drain.db"));
    taskhost_benches::configure(&[("sqlite", &enqueue_db), ("drain", &drain_db)]);
    let on_sqlite = noop.using(TaskOptions::new().backend("sqlite")).unwrap();
    let on_drain = noop.using(TaskOptions::new().backend("drain")).unwrap();

    let mut group = c.benchmark_group("sqlite");
    group.throughput(Throughput::Elements(1));
    group.bench_function("enqueue_single", |b| {
        b.iter(|| on_sqlite.enqueue_args(black_box((1, 2))).unwrap())
    });

    group.throughput(Throughput::Elements(BULK));
    group.bench_function("enqueue_many_1000", |b| {
        b.iter(|| {
            on_sqlite
                .enqueue_many((0..BULK as i64).map(|i| (i, 2)))
                .unwrap()
        })
    });
    group.finish();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut group = c.benchmark_group("sqlite_worker_drain_10000");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(DRAIN));
    for concurrency in [1usize, 4] {
        group.bench_function(format!("concurrency_{concurrency}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    on_drain
                        .enqueue_many((0..DRAIN as i64).map(|i| (i, 2)))
                        .unwrap();
                    let mut options = WorkerOptions::new();
                    options.backend = "drain".into();
                    options.queues = QueueSelection::All { exclude: vec![] };
                    options.concurrency = concurrency;
                    options.batch = true;
                    options.startup_delay = false;
                    let worker = Worker::new(options).unwrap();
                    let start = Instant::now();
                    let report = runtime.block_on(worker.run()).unwrap();
                    total += start.elapsed();
                    assert_eq!(report.successful, DRAIN);
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = sqlite_benches
}
criterion_main!(benches);
