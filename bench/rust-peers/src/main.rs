//! The Rust peers of the side-by-side benchmarks (driven by `bench/orchestrate.py`): apalis 1.0
//! on SQLite and PostgreSQL, and graphile_worker (the Rust port of graphile-worker) on
//! PostgreSQL. The same two tasks as every other system: `noop(a, b)` and the latency probe
//! `stamp(t0)`. One JSON object on stdout per command; the store comes from `$BENCH_URL`
//! (`sqlite:///path/to/file.db` or `postgres://…`) and, for SQLite, `$BENCH_SQLITE_SYNC`.
//!
//! ```sh
//! rust-peers apalis migrate
//! rust-peers apalis single --n 2000 --runs 5           # one commit each
//! rust-peers apalis bulk --n 10000 --batch 1000 --runs 5
//! rust-peers apalis fill --n 100000
//! rust-peers apalis latency --n 200 --log FILE [--jitter-ms 10]   needs a worker running
//! rust-peers apalis worker --concurrency 4 [--tuned]   runs until SIGTERM, then prints its
//!                                                      first task start and last task end
//! rust-peers graphile …                                 the same commands
//! ```

mod apalis_peer;
mod graphile_peer;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Parser)]
#[command(name = "rust-peers")]
struct Cli {
    system: System,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum System {
    /// apalis 1.0 with apalis-sqlite or apalis-postgres (from the URL's scheme).
    Apalis,
    /// graphile_worker (PostgreSQL only).
    Graphile,
}

#[derive(Subcommand)]
enum Command {
    /// Create the system's tables.
    Migrate,
    /// `n` single enqueues, one commit each: seconds per run.
    Single {
        #[arg(long)]
        n: u64,
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// `n` enqueues as batch calls of `batch` tasks each: seconds per run.
    Bulk {
        #[arg(long)]
        n: u64,
        #[arg(long, default_value_t = 1000)]
        batch: u64,
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Store `n` no-op tasks (untimed set-up of a drain).
    Fill {
        #[arg(long)]
        n: u64,
    },
    /// Enqueue-to-start latency with a worker running: `n` probes one at a time, each waited
    /// for (it appears in `log`) before the next; a warm-up probe first.
    Latency {
        #[arg(long)]
        n: usize,
        #[arg(long)]
        log: PathBuf,
        #[arg(long, default_value_t = 5)]
        gap_ms: u64,
        #[arg(long, default_value_t = 0)]
        jitter_ms: u64,
    },
    /// A worker process; on SIGTERM it stops and prints what it ran.
    Worker {
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        /// The tuning its project documents (see bench/README.md) instead of the defaults.
        #[arg(long)]
        tuned: bool,
    },
}

/// What a client needs from a peer: enqueue one task, or a batch in one call.
trait Client {
    async fn noop(&mut self, a: i64, b: i64) -> anyhow::Result<()>;
    async fn noop_batch(&mut self, first: i64, size: u64) -> anyhow::Result<()>;
    async fn stamp(&mut self, t0: i64) -> anyhow::Result<()>;
}

/// Microseconds since the Unix epoch (the same clock as the other systems' probes).
fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

static FIRST_START_US: AtomicI64 = AtomicI64::new(0);
static LAST_END_US: AtomicI64 = AtomicI64::new(0);
static DONE: AtomicU64 = AtomicU64::new(0);

/// The body of `noop(a, b)`, with the worker's own record of first start and last end
/// (graphile_worker deletes finished jobs and apalis-sqlite keeps whole seconds, so both peers'
/// drains are timed by their workers, as graphile-worker's are).
fn run_noop(a: i64, b: i64) -> i64 {
    let _ = FIRST_START_US.compare_exchange(0, now_us(), Ordering::Relaxed, Ordering::Relaxed);
    let sum = std::hint::black_box(a + b);
    LAST_END_US.fetch_max(now_us(), Ordering::Relaxed);
    DONE.fetch_add(1, Ordering::Relaxed);
    sum
}

/// The body of `stamp(t0)`: appends "now − t0" (µs) to `$BENCH_LATENCY_LOG` as it starts.
fn run_stamp(t0: i64) {
    let started = now_us();
    if let Some(path) = std::env::var_os("BENCH_LATENCY_LOG") {
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = file.write_all(format!("{}\n", started - t0).as_bytes());
        }
    }
}

/// What a worker prints when it stops.
fn worker_report(concurrency: usize, tuned: bool) -> Value {
    let first = FIRST_START_US.load(Ordering::Relaxed);
    let last = LAST_END_US.load(Ordering::Relaxed);
    json!({"concurrency": concurrency, "tuned": tuned, "jobs": DONE.load(Ordering::Relaxed),
           "first_start_us": (first != 0).then_some(first),
           "last_end_us": (last != 0).then_some(last)})
}

/// Resolves on SIGTERM or SIGINT.
async fn terminated() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn url() -> anyhow::Result<String> {
    std::env::var("BENCH_URL").context("$BENCH_URL is not set")
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.system {
        System::Apalis => apalis_peer::main(cli.command).await,
        System::Graphile => graphile_peer::main(cli.command).await,
    };
    match result {
        Ok(value) => {
            println!("{value}");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("rust-peers: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The client commands, the same for every peer.
async fn client_command(client: &mut impl Client, command: Command) -> anyhow::Result<Value> {
    Ok(match command {
        Command::Single { n, runs } => {
            let mut seconds = vec![];
            for _ in 0..runs {
                let start = Instant::now();
                for i in 0..n as i64 {
                    client.noop(i, 2).await?;
                }
                seconds.push(start.elapsed().as_secs_f64());
            }
            json!({"n": n, "seconds": seconds})
        }
        Command::Bulk { n, batch, runs } => {
            let mut seconds = vec![];
            for _ in 0..runs {
                let start = Instant::now();
                fill(client, n, batch).await?;
                seconds.push(start.elapsed().as_secs_f64());
            }
            json!({"n": n, "batch": batch, "seconds": seconds})
        }
        Command::Fill { n } => {
            let start = Instant::now();
            fill(client, n, 5000).await?;
            json!({"n": n, "seconds": start.elapsed().as_secs_f64()})
        }
        Command::Latency {
            n,
            log,
            gap_ms,
            jitter_ms,
        } => {
            std::fs::write(&log, "")?;
            // apalis's default worker looks for new tasks only at its 30 s heartbeat.
            let deadline = Duration::from_secs(120);
            for seen in 0..=n {
                client.stamp(now_us()).await?;
                wait_for_lines(&log, seen + 1, deadline).await?;
                let jitter = (jitter_ms as f64 * fastrand::f64()) as u64;
                tokio::time::sleep(Duration::from_millis(gap_ms + jitter)).await;
            }
            let text = std::fs::read_to_string(&log)?;
            // The first line is the warm-up probe.
            let latency_us: Vec<i64> = text
                .lines()
                .skip(1)
                .map(str::parse)
                .collect::<Result<_, _>>()?;
            json!({"n": n, "latency_us": latency_us})
        }
        Command::Migrate | Command::Worker { .. } => unreachable!("not a client command"),
    })
}

/// Enqueue `n` no-op tasks as batch calls of `batch` each.
async fn fill(client: &mut impl Client, n: u64, batch: u64) -> anyhow::Result<()> {
    let mut done = 0;
    while done < n {
        let size = batch.min(n - done);
        client.noop_batch(done as i64, size).await?;
        done += size;
    }
    Ok(())
}

/// Wait until `log` holds at least `lines` lines, or fail after `deadline`.
async fn wait_for_lines(log: &Path, lines: usize, deadline: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.lines().count() >= lines {
            return Ok(());
        }
        if start.elapsed() > deadline {
            bail!("probe {lines} did not start within {deadline:?} (is a worker running?)");
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}
