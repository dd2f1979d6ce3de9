//! `worker --metrics ADDR`: real worker processes export Prometheus metrics, scraped over HTTP
//! (SQLite; what is counted does not depend on the store).

use super::env::{output_text, spawn_logged, wait_for_file_line, wait_with_deadline, Env, Store};
use super::env::{terminate, DEADLINE};
use metrics_exporter_prometheus::PrometheusBuilder;
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use taskhost::TaskResultStatus;
use taskhost_e2e::prometheus::{http_get, value};

const RECORD_KEY: &str = "taskhost_worker_app::record_key";
const ALWAYS_FAILS: &str = "taskhost_worker_app::always_fails";
const ENQUEUE_RECORD_KEY: &str = "taskhost_worker_app::enqueue_record_key";
const CRASH_WORK: &str = "taskhost_worker_app::crash_work";

/// The address a worker printed in its log (`worker metrics on http://ADDR/metrics`).
fn metrics_addr(log: &Path) -> SocketAddr {
    let marker = "worker metrics on http://";
    wait_for_file_line(log, |l| l.contains(marker));
    let text = std::fs::read_to_string(log).unwrap();
    let line = text.lines().find(|l| l.contains(marker)).unwrap();
    let addr = &line[line.find(marker).unwrap() + marker.len()..];
    addr.trim_end_matches("/metrics").parse().unwrap()
}

/// Scrape `/metrics` until `done` holds for what it serves (bounded by [`DEADLINE`]).
fn scrape_until(addr: SocketAddr, done: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let (status, head, text) = http_get(addr, "/metrics");
        assert_eq!(status, 200, "{head}\n{text}");
        if done(&text) {
            assert!(
                head.to_ascii_lowercase()
                    .contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
                "{head}"
            );
            return text;
        }
        assert!(start.elapsed() < DEADLINE, "never reached:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The labels of task `task` on the test's backend and queue.
fn of(task: &str) -> [(&str, &str); 3] {
    [("backend", "default"), ("task", task), ("queue", "default")]
}

fn with<'a>(labels: [(&'a str, &'a str); 3], extra: (&'a str, &'a str)) -> Vec<(&'a str, &'a str)> {
    let mut all = labels.to_vec();
    all.push(extra);
    all
}

fn kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

#[test]
fn a_worker_serves_its_counters_histograms_and_queue_gauges_over_http() {
    let env = Env::new(Store::Sqlite, "");
    // Enqueued from this process, under a recorder of this thread's own: the enqueue counter
    // is the enqueuing process's. This binary registers none of the worker app's tasks, so
    // they share the `<unregistered>` label (the series stay bounded by the registered tasks).
    let recorder = PrometheusBuilder::new().build_recorder();
    metrics::with_local_recorder(&recorder, || {
        for key in ["a", "b", "c"] {
            env.enqueue("record_key", json!([key]));
        }
        env.enqueue("always_fails", json!(["x"]));
        env.enqueue("enqueue_record_key", json!(["chained"]));
    });
    let here = recorder.handle().render();
    assert_eq!(
        value(
            &here,
            "taskhost_tasks_enqueued_total",
            &of(taskhost::metrics::UNREGISTERED_TASK)
        ),
        Some(5.0),
        "{here}"
    );

    let (worker, log) = spawn_logged(
        &env,
        "worker",
        &[
            "--metrics",
            "127.0.0.1:0",
            "--metrics-queue-stats-secs",
            "1",
            "--retry-backoff",
            "0",
            // Nothing waits in the worker, so nothing is handed back and claimed again: the
            // claims add up to the tasks run.
            "--prefetch",
            "0",
        ],
    );
    let addr = metrics_addr(&log);
    let finished = |text: &str, task: &str, status: &str| {
        value(
            text,
            "taskhost_tasks_finished_total",
            &with(of(task), ("status", status)),
        )
    };
    let depth = |text: &str, status: &str| {
        value(
            text,
            "taskhost_queue_depth",
            &[
                ("backend", "default"),
                ("queue", "default"),
                ("status", status),
            ],
        )
    };
    // Everything ran (the chained task too), and a refresh of the gauges came after.
    let text = scrape_until(addr, |text| {
        finished(text, RECORD_KEY, "SUCCESSFUL") == Some(4.0)
            && finished(text, ENQUEUE_RECORD_KEY, "SUCCESSFUL") == Some(1.0)
            && finished(text, ALWAYS_FAILS, "FAILED") == Some(1.0)
            && depth(text, "SUCCESSFUL") == Some(5.0)
            && depth(text, "FAILED") == Some(1.0)
    });
    terminate(&worker);
    let out = wait_with_deadline(worker);
    assert!(out.status.success(), "{}", output_text(&out));

    let count = |name: &str, labels: &[(&str, &str)]| value(&text, name, labels);
    // Counters.
    assert_eq!(
        count("taskhost_tasks_started_total", &of(RECORD_KEY)),
        Some(4.0)
    );
    assert_eq!(
        count("taskhost_tasks_started_total", &of(ALWAYS_FAILS)),
        Some(3.0)
    );
    assert_eq!(
        count("taskhost_tasks_retried_total", &of(ALWAYS_FAILS)),
        Some(2.0)
    );
    assert_eq!(finished(&text, ALWAYS_FAILS, "SUCCESSFUL"), Some(0.0));
    assert_eq!(finished(&text, RECORD_KEY, "FAILED"), Some(0.0));
    assert_eq!(
        count("taskhost_leases_lost_total", &of(RECORD_KEY)),
        Some(0.0)
    );
    assert_eq!(
        count("taskhost_tasks_rescued_total", &of(RECORD_KEY)),
        Some(0.0)
    );
    // The chained enqueue, counted by the worker that made it, under the registered path.
    assert_eq!(
        count("taskhost_tasks_enqueued_total", &of(RECORD_KEY)),
        Some(1.0)
    );
    // Histograms: one observation per attempt, in buckets.
    for (task, attempts) in [(RECORD_KEY, 4.0), (ALWAYS_FAILS, 3.0)] {
        for name in [
            "taskhost_task_run_seconds",
            "taskhost_task_queue_wait_seconds",
        ] {
            let n = count(&format!("{name}_count"), &of(task));
            assert_eq!(n, Some(attempts), "{name} {task}\n{text}");
            let inf = count(&format!("{name}_bucket"), &with(of(task), ("le", "+Inf")));
            assert_eq!(inf, Some(attempts), "{name} {task}\n{text}");
            assert!(count(&format!("{name}_sum"), &of(task)).is_some_and(|s| s >= 0.0));
        }
    }
    // Claims: 5 enqueued, 2 retries and the chained task were claimed, 8 in all, whatever
    // the batches were (and any empty claims, 0 each).
    let backend = [("backend", "default")];
    assert_eq!(
        count("taskhost_claim_batch_size_sum", &backend),
        Some(8.0),
        "{text}"
    );
    assert!(count("taskhost_claim_batch_size_count", &backend).is_some_and(|n| n >= 1.0));
    let le = |bound: &str| {
        count(
            "taskhost_claim_batch_size_bucket",
            &[("backend", "default"), ("le", bound)],
        )
    };
    assert!(le("0").is_some() && le("4096").is_some(), "{text}");
    // Gauges: the store as it ended.
    assert_eq!(depth(&text, "READY"), Some(0.0));
    assert_eq!(depth(&text, "RUNNING"), Some(0.0));
    assert_eq!(
        count(
            "taskhost_queue_oldest_ready_age_seconds",
            &[("backend", "default"), ("queue", "default")]
        ),
        Some(0.0)
    );
    // Types and help texts.
    for (name, kind) in [
        ("taskhost_tasks_finished_total", "counter"),
        ("taskhost_task_run_seconds", "histogram"),
        ("taskhost_claim_batch_size", "histogram"),
        ("taskhost_queue_depth", "gauge"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} {kind}\n")),
            "{name}\n{text}"
        );
        assert!(text.contains(&format!("# HELP {name} ")), "{name}\n{text}");
    }
}

/// A worker paused past its lease loses it: the one that rescues the task counts a rescue, the
/// paused one, once resumed, a lost lease.
#[test]
fn rescues_and_lost_leases_are_counted_by_the_workers_they_happen_to() {
    let env = Env::new(Store::Sqlite, "");
    let id = env.enqueue("crash_work", json!(["k", 2_000]));
    let args = ["--lease", "1", "--metrics", "127.0.0.1:0"];
    let (paused, paused_log) = spawn_logged(&env, "paused", &args);
    let paused_pid = paused.id();
    env.wait_for_line(|l| l == format!("run k {paused_pid}"));
    kill(paused_pid, "STOP");
    let (rescuer, rescuer_log) = spawn_logged(&env, "rescuer", &args);
    env.wait_for_result(&id, |r| r.status() == TaskResultStatus::Successful);
    let rescued = scrape_until(metrics_addr(&rescuer_log), |text| {
        value(
            text,
            "taskhost_tasks_finished_total",
            &with(of(CRASH_WORK), ("status", "SUCCESSFUL")),
        ) == Some(1.0)
    });
    assert_eq!(
        value(&rescued, "taskhost_tasks_rescued_total", &of(CRASH_WORK)),
        Some(1.0),
        "{rescued}"
    );
    kill(paused_pid, "CONT");
    let lost = scrape_until(metrics_addr(&paused_log), |text| {
        value(text, "taskhost_leases_lost_total", &of(CRASH_WORK)) == Some(1.0)
    });
    assert_eq!(
        value(
            &lost,
            "taskhost_tasks_finished_total",
            &with(of(CRASH_WORK), ("status", "SUCCESSFUL"))
        ),
        Some(0.0),
        "{lost}"
    );
    assert_eq!(
        value(&lost, "taskhost_tasks_rescued_total", &of(CRASH_WORK)),
        Some(0.0)
    );
    for worker in [paused, rescuer] {
        terminate(&worker);
        let out = wait_with_deadline(worker);
        assert!(out.status.success(), "{}", output_text(&out));
    }
}

#[test]
fn a_metrics_address_that_cannot_be_used_is_refused_naming_the_flag() {
    let env = Env::new(Store::Sqlite, "");
    let id = env.enqueue("record_key", json!(["never"]));
    let out = env
        .command(&["worker", "--batch", "--metrics", "localhost:9100"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("'--metrics <ADDR>'"), "{stderr}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = env
        .command(&["worker", "--batch", "--metrics", &addr])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("error: --metrics {addr}: cannot listen there: ")),
        "{stderr}"
    );
    // The worker did not start.
    assert_eq!(env.result(&id).status(), TaskResultStatus::Ready);
    assert!(env.log_lines().is_empty());
}
