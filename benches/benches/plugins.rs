//! `#[task]` enqueue on the Immediate and Dummy plugins, `get_result` on Dummy, and the bare
//! ABI round trip against a direct Rust call — all through the real release-built `.so` files.

// `criterion_group!` generates undocumented functions.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::time::{Duration, Instant};
use taskhost::{task, task_backends, TaskOptions};
use taskhost_plugin_api::Backend as _;
use taskhost_plugin_api::BackendParams;

/// A no-op task with two small arguments.
#[task]
fn noop(a: i64, b: i64) -> i64 {
    a + b
}

/// How many Dummy results are kept before the store is cleared (memory stays flat).
const CLEAR_EVERY: u64 = 10_000;

fn task_benches(c: &mut Criterion) {
    taskhost_benches::configure(&[]);
    let mut group = c.benchmark_group("task");

    // Immediate: validate, encode, ABI call, run the function in the plugin's callback, decode.
    let immediate = noop.using(TaskOptions::new().backend("default")).unwrap();
    assert_eq!(
        immediate
            .enqueue_args((1, 2))
            .unwrap()
            .return_value()
            .unwrap(),
        3
    );
    group.bench_function("immediate_enqueue_and_run", |b| {
        b.iter(|| immediate.enqueue_args(black_box((1, 2))).unwrap())
    });

    // Dummy: enqueue stores a READY result; the store is cleared (untimed) every CLEAR_EVERY.
    let dummy = noop.using(TaskOptions::new().backend("dummy")).unwrap();
    let store = task_backends().get("dummy").unwrap();
    group.bench_function("dummy_enqueue", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                store.clear().unwrap();
                let chunk = left.min(CLEAR_EVERY);
                let start = Instant::now();
                for _ in 0..chunk {
                    black_box(dummy.enqueue_args(black_box((1, 2))).unwrap());
                }
                total += start.elapsed();
                left -= chunk;
            }
            total
        })
    });
    store.clear().unwrap();

    let id = dummy.enqueue_args((1, 2)).unwrap().id().to_string();
    group.bench_function("dummy_get_result", |b| {
        b.iter(|| dummy.get_result(black_box(&id)).unwrap())
    });
    store.clear().unwrap();
    group.finish();
}

fn abi_benches(c: &mut Criterion) {
    let params = r#"{"alias":"abi","backend":"taskhost.backends.dummy.DummyBackend","queues":[],"options":{},"config_dir":null}"#;
    let host = || taskhost::HostCallbacks::new("abi", "DummyBackend").into_host_box();

    // Through the loaded plugin file: the sabi_trait vtable call across the library boundary.
    let library =
        taskhost::plugin::Library::open(&taskhost_benches::plugin_file("taskhost_backends_dummy"))
            .unwrap();
    let through_abi = library.new_backend("DummyBackend", params, host()).unwrap();
    // The same backend type, linked in as an rlib and called directly.
    let parsed: BackendParams = serde_json::from_str(params).unwrap();
    let direct_host = taskhost_plugin_api::testing::TestHost::new().host();
    let direct = taskhost_dummy::DummyBackend::new(parsed, direct_host).unwrap();
    assert_eq!(through_abi.capabilities(), direct.capabilities());

    let mut group = c.benchmark_group("abi");
    group.bench_function("capabilities_through_plugin", |b| {
        b.iter(|| black_box(&through_abi).capabilities())
    });
    group.bench_function("capabilities_direct_rust", |b| {
        b.iter(|| black_box(&direct).capabilities())
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = task_benches, abi_benches
}
criterion_main!(benches);
