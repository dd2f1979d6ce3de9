//! The taskhost side of the side-by-side benchmarks against the peers (`bench/run`).
//!
//! An application binary with two tasks and the `taskhost` command line mounted: the
//! `worker` subcommand (and every other `taskhost` command) runs real worker processes over
//! this binary's tasks, and a few extra subcommands measure the client side and print one JSON
//! object on stdout. The configuration comes from `$TASKHOST_CONFIG` (written by the script):
//! aliases `immediate`, `dummy` and `db` (the Database backend being measured).
//!
//! ```sh
//! taskhost-bench micro --iters 100000 --runs 5           # Immediate/Dummy enqueue, get_result
//! taskhost-bench enqueue-single --n 2000 --runs 5        # one commit each, on `db`
//! taskhost-bench enqueue-bulk --n 10000 --batch 1000 --runs 5
//! taskhost-bench fill --n 100000                          # untimed, before a drain
//! taskhost-bench latency --n 200 --log /tmp/lat.txt       # needs a worker running
//! taskhost-bench worker --backend db --queue '*' --batch  # the taskhost CLI
//! ```

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use serde_json::json;
use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use taskhost::{task, task_backends, Config, TaskOptions};

/// The no-op task every workload enqueues: two small arguments.
#[task]
fn noop(a: i64, b: i64) -> i64 {
    a + b
}

/// The latency probe: appends "now − `enqueued_us`" (µs) to `$BENCH_LATENCY_LOG` as the
/// task starts, `enqueued_us` being the wall clock taken just before the enqueue call.
#[task]
fn stamp(enqueued_us: i64) {
    let started = now_us();
    let Some(path) = std::env::var_os("BENCH_LATENCY_LOG") else {
        return;
    };
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = file.write_all(format!("{}\n", started - enqueued_us).as_bytes());
    }
}

/// Microseconds since the Unix epoch (the same clock the peers' probes use).
fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// The measuring subcommands (anything else goes to the `taskhost` command line).
#[derive(Parser)]
#[command(name = "taskhost-bench")]
struct Bench {
    #[command(subcommand)]
    command: Measure,
}

#[derive(Subcommand)]
enum Measure {
    /// Immediate enqueue + run, Dummy enqueue and Dummy `get_result`: ns per call, per run.
    Micro {
        #[arg(long, default_value_t = 100_000)]
        iters: u64,
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Measure only this one (`immediate`, `dummy` or `get_result`), e.g. under callgrind.
        #[arg(long)]
        only: Option<String>,
    },
    /// `n` single enqueues (one commit each) on `db`: seconds per run.
    EnqueueSingle {
        #[arg(long)]
        n: u64,
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// `n` enqueues as `enqueue_many` calls of `batch` runs each on `db`: seconds per run.
    EnqueueBulk {
        #[arg(long)]
        n: u64,
        #[arg(long, default_value_t = 1000)]
        batch: u64,
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Store `n` no-op tasks on `db` (untimed set-up of a drain).
    Fill {
        #[arg(long)]
        n: u64,
    },
    /// Enqueue-to-start latency with a worker already running: `n` probes one at a time, each
    /// waited for (it appears in `log`) before the next; a warm-up probe first.
    Latency {
        #[arg(long)]
        n: usize,
        #[arg(long)]
        log: PathBuf,
        /// Pause after each probe started, so the worker is idle again …
        #[arg(long, default_value_t = 5)]
        gap_ms: u64,
        /// … plus a random part of this, so probes do not arrive in step with a polling
        /// worker's interval (pass the interval).
        #[arg(long, default_value_t = 0)]
        jitter_ms: u64,
    },
}

const MEASURES: [&str; 5] = ["micro", "enqueue-single", "enqueue-bulk", "fill", "latency"];

fn main() -> ExitCode {
    let first = std::env::args().nth(1).unwrap_or_default();
    if !MEASURES.contains(&first.as_str()) {
        return taskhost_cli::main();
    }
    match measure(Bench::parse().command) {
        Ok(result) => {
            println!("{result}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("taskhost-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn measure(command: Measure) -> anyhow::Result<serde_json::Value> {
    task_backends().configure(Config::load(None).context("loading $TASKHOST_CONFIG")?);
    let on = |alias: &str| noop.using(TaskOptions::new().backend(alias));
    Ok(match command {
        Measure::Micro { iters, runs, only } => {
            let immediate = on("immediate")?;
            let dummy = on("dummy")?;
            let store = task_backends().get("dummy")?;
            let wanted = |name: &str| only.as_deref().is_none_or(|only| only == name);
            if let Some(only) = only.as_deref() {
                anyhow::ensure!(
                    ["immediate", "dummy", "get_result"].contains(&only),
                    "--only takes immediate, dummy or get_result, not {only:?}"
                );
            }
            let (mut imm, mut dum, mut get) = (vec![], vec![], vec![]);
            for _ in 0..runs {
                if wanted("immediate") {
                    imm.push(per_call_ns(iters, || {
                        black_box(immediate.enqueue_args(black_box((1, 2))))?;
                        Ok(())
                    })?);
                }
                store.clear()?;
                if wanted("dummy") {
                    dum.push(per_call_ns(iters, || {
                        black_box(dummy.enqueue_args(black_box((1, 2))))?;
                        Ok(())
                    })?);
                }
                store.clear()?;
                let id = dummy.enqueue_args((1, 2))?.id().to_string();
                if wanted("get_result") {
                    get.push(per_call_ns(iters, || {
                        black_box(dummy.get_result(black_box(&id)))?;
                        Ok(())
                    })?);
                }
                store.clear()?;
            }
            json!({"iters": iters, "immediate_enqueue_ns": imm, "dummy_enqueue_ns": dum,
                   "dummy_get_result_ns": get})
        }
        Measure::EnqueueSingle { n, runs } => {
            let db = on("db")?;
            let seconds = timed_runs(runs, || {
                for i in 0..n as i64 {
                    db.enqueue_args((i, 2))?;
                }
                Ok(())
            })?;
            json!({"n": n, "seconds": seconds})
        }
        Measure::EnqueueBulk { n, batch, runs } => {
            let db = on("db")?;
            let seconds = timed_runs(runs, || fill(&db, n, batch))?;
            json!({"n": n, "batch": batch, "seconds": seconds})
        }
        Measure::Fill { n } => {
            let db = on("db")?;
            let start = Instant::now();
            fill(&db, n, 5000)?;
            json!({"n": n, "seconds": start.elapsed().as_secs_f64()})
        }
        Measure::Latency {
            n,
            log,
            gap_ms,
            jitter_ms,
        } => {
            let probe = stamp.using(TaskOptions::new().backend("db"))?;
            std::fs::write(&log, "")?;
            for seen in 0..=n {
                probe.enqueue_args((now_us(),))?;
                wait_for_lines(&log, seen + 1, Duration::from_secs(30))?;
                let jitter = (jitter_ms as f64 * fastrand::f64()) as u64;
                std::thread::sleep(Duration::from_millis(gap_ms + jitter));
            }
            let text = std::fs::read_to_string(&log)?;
            // The first line is the warm-up probe.
            let latencies_us: Vec<i64> = text
                .lines()
                .skip(1)
                .map(str::parse)
                .collect::<Result<_, _>>()?;
            json!({"n": n, "latency_us": latencies_us})
        }
    })
}

/// Enqueue `n` no-op tasks as `enqueue_many` calls of `batch` each.
fn fill(db: &taskhost::Task<(i64, i64), i64>, n: u64, batch: u64) -> anyhow::Result<()> {
    let mut done = 0;
    while done < n {
        let size = batch.min(n - done);
        db.enqueue_many((done..done + size).map(|i| (i as i64, 2)))?;
        done += size;
    }
    Ok(())
}

/// Nanoseconds per call of `call`, over `iters` calls.
fn per_call_ns(iters: u64, mut call: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let start = Instant::now();
    for _ in 0..iters {
        call()?;
    }
    Ok(start.elapsed().as_nanos() as f64 / iters as f64)
}

/// Seconds taken by each of `runs` calls of `run`.
fn timed_runs(
    runs: usize,
    mut run: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Vec<f64>> {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            run()?;
            Ok(start.elapsed().as_secs_f64())
        })
        .collect()
}

/// Wait until `log` holds at least `lines` lines, or fail after `deadline`.
fn wait_for_lines(log: &Path, lines: usize, deadline: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.lines().count() >= lines {
            return Ok(());
        }
        if start.elapsed() > deadline {
            bail!("probe {lines} did not start within {deadline:?} (is a worker running on `db`?)");
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}
