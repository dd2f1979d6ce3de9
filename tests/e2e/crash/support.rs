//! What every crash scenario shares: sizes, seeds, figures, the execution log, a pool of worker
//! processes that can be killed and replaced, and polling the store while faults happen.

pub use crate::worker::env::spawn_logged;
use crate::worker::env::{
    output_text, wait_for_file_line, wait_with_deadline, Env, Store, DEADLINE,
};
use crate::worker::transactional::sqlite_value;
use serde_json::json;
use std::collections::HashMap;
use std::fmt::Display;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use taskhost::{task_backends, TaskResult, TaskResultStatus};
use taskhost::{SqlParam, TransactionalEnqueue};
use taskhost_plugin_api::QueueStats;

/// Whether the full sizes run (`TASKHOST_CRASH_FULL=1`); otherwise the small CI sizes.
pub fn full() -> bool {
    std::env::var("TASKHOST_CRASH_FULL").is_ok_and(|v| v == "1")
}

/// `ci` normally, `full` with `TASKHOST_CRASH_FULL=1`.
pub fn size<T>(ci: T, full_size: T) -> T {
    if full() {
        full_size
    } else {
        ci
    }
}

/// The store's name in figures.
pub fn store_name(store: Store) -> &'static str {
    match store {
        Store::Sqlite => "sqlite",
        Store::Postgres => "postgres",
    }
}

/// A scenario's generator ([`taskhost_e2e::Rng`]): the seed comes from `TASKHOST_CRASH_SEED`
/// (to replay a run) or the clock, and is printed.
pub struct Rng(taskhost_e2e::Rng);

impl Rng {
    /// The generator of the scenario `name`; prints the seed and how to replay it.
    pub fn seeded(name: &str, store: Store) -> Self {
        let seed = match std::env::var("TASKHOST_CRASH_SEED") {
            Ok(text) => text
                .trim()
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("TASKHOST_CRASH_SEED={text:?} is not a u64")),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64),
        };
        println!(
            "crash-seed scenario={name} store={} seed={seed} (replay: TASKHOST_CRASH_SEED={seed})",
            store_name(store)
        );
        Self(taskhost_e2e::Rng::new(seed))
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.0.below(n as u64) as usize
    }

    /// A duration between `lo_ms` and `hi_ms` milliseconds.
    pub fn millis(&mut self, lo_ms: u64, hi_ms: u64) -> Duration {
        Duration::from_millis(lo_ms + self.0.below(hi_ms - lo_ms + 1))
    }
}

/// One scenario's figures, printed as a single `crash-figures …` line to paste into the docs.
pub struct Figures(Vec<(String, String)>);

impl Figures {
    /// The figures of `scenario` on `store`.
    pub fn new(scenario: &str, store: Store) -> Self {
        let size = if full() { "full" } else { "ci" };
        Self(vec![
            ("scenario".into(), scenario.into()),
            ("store".into(), store_name(store).into()),
            ("size".into(), size.into()),
        ])
    }

    /// Add one figure.
    pub fn add(&mut self, name: &str, value: impl Display) -> &mut Self {
        self.0.push((name.to_string(), value.to_string()));
        self
    }

    /// Print the line.
    pub fn print(&self) {
        let fields: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("crash-figures {}", fields.join(" "));
    }
}

/// Milliseconds, for figures.
pub fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// Enqueue `crash_work` for the keys `k<n>` of `keys`, sleeping `sleep_ms` each; ids in order.
pub fn enqueue_work(env: &Env, keys: std::ops::Range<usize>, sleep_ms: u64) -> Vec<String> {
    let keys: Vec<usize> = keys.collect();
    let mut ids = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(500) {
        let runs = chunk
            .iter()
            .map(|i| json!([format!("k{i}"), sleep_ms]))
            .collect();
        ids.extend(env.enqueue_many("crash_work", runs));
    }
    ids
}

/// How many of the tasks `ids` (key `k<index>`) did not end SUCCESSFUL with the return value of
/// a process that ran them: tasks lost.
pub fn lost(ids: &[String], runs: &Runs) -> usize {
    let stored: HashMap<String, TaskResult> = results()
        .into_iter()
        .map(|r| (r.id().to_string(), r))
        .collect();
    let mut lost = 0;
    for (i, id) in ids.iter().enumerate() {
        let ok = stored.get(id).is_some_and(|r| {
            r.status() == TaskResultStatus::Successful
                && r.raw_return_value()
                    .and_then(serde_json::Value::as_u64)
                    .is_some_and(|pid| runs.of(&format!("k{i}")).contains(&(pid as u32)))
        });
        if !ok {
            eprintln!("lost: k{i} = {:?}", stored.get(id).map(|r| r.data()));
            lost += 1;
        }
    }
    lost
}

/// Tasks whose lease a *live* worker lost (it was too slow to renew, e.g. starved of CPU, or
/// cut off from the store), by the workers' logs — counting completions the store refused
/// after a try whose reply was lost, which may be such a loss too: the guarantee allows each of
/// them one more execution.
pub fn leases_lost(logs: &str) -> usize {
    let ids: std::collections::HashSet<&str> = logs
        .lines()
        .filter(|l| l.contains("lost its lease") || l.contains("the store refused it"))
        .filter_map(|l| l.split("Task id=").nth(1)?.split(':').next())
        .collect();
    ids.len()
}

/// The most tasks one worker holds unacknowledged (running, prefetched, or finished with its
/// result not yet written): `WorkerOptions::cap`, `2 × concurrency + prefetch`, the prefetch
/// counted at its ceiling ([`prefetch_in`]).
pub fn cap(concurrency: usize, prefetch: usize) -> usize {
    2 * concurrency + prefetch
}

/// The prefetch a worker without `--prefetch` counts in its cap: the adaptive prefetch's
/// ceiling (`--prefetch auto`, the default).
pub const DEFAULT_PREFETCH: usize = taskhost::worker::options::AUTO_PREFETCH_CEILING;

/// The duplicates the at-least-once guarantee allows: each of `kills` killed (or cut-off)
/// workers re-delivers at most the `cap` tasks it held, and each lease a live worker lost
/// allows that task one more run.
pub fn bound(kills: usize, cap: usize, leases_lost: usize) -> usize {
    kills * cap + leases_lost
}

/// The prefetch that worker arguments count in the cap: `--prefetch N`, else (not given, or
/// `auto`) [`DEFAULT_PREFETCH`].
pub fn prefetch_in(args: &[&str]) -> usize {
    match args.iter().position(|a| *a == "--prefetch") {
        Some(i) if args[i + 1] != "auto" => args[i + 1].parse().expect("--prefetch N"),
        _ => DEFAULT_PREFETCH,
    }
}

/// Wait until `done()` holds, polling, bounded by [`DEADLINE`].
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: not within {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The tasks each killed worker left unfinished, and how long until all of them had ended
/// SUCCESSFUL through other workers (the time to recover; kills that left nothing unfinished
/// have none).
#[derive(Default)]
pub struct Recovery {
    pending: Vec<(Instant, Vec<String>)>,
    /// Workers killed.
    pub kills: usize,
    /// Time to recover, per kill that left tasks unfinished.
    pub times: Vec<Duration>,
    /// Tasks left unfinished by killed workers (their latest run was by the killed process and
    /// they were not SUCCESSFUL right after the kill).
    pub orphans: usize,
}

impl Recovery {
    /// SIGKILL worker `victim` of `pool` (replaced at once), then note the tasks of `ids` it ran
    /// last that are not SUCCESSFUL.
    pub fn kill(&mut self, env: &Env, pool: &mut Pool<'_>, victim: usize, ids: &[String]) {
        let at = Instant::now();
        let pid = pool.kill(victim);
        self.kills += 1;
        let orphans: Vec<String> = Runs::read(env)
            .last_run_by(pid)
            .iter()
            .map(|key| ids[key[1..].parse::<usize>().unwrap()].clone())
            .filter(|id| result(id).status() != TaskResultStatus::Successful)
            .collect();
        self.orphans += orphans.len();
        if !orphans.is_empty() {
            self.pending.push((at, orphans));
        }
    }

    /// Close the kills whose orphans have all ended SUCCESSFUL.
    pub fn check(&mut self) {
        let times = &mut self.times;
        self.pending.retain(|(at, orphans)| {
            let done = orphans
                .iter()
                .all(|id| result(id).status() == TaskResultStatus::Successful);
            if done {
                times.push(at.elapsed());
            }
            !done
        });
    }

    /// The longest time to recover, in ms.
    pub fn max_ms(&self) -> u128 {
        self.times.iter().max().map_or(0, |d| ms(*d))
    }

    /// The mean time to recover, in ms.
    pub fn mean_ms(&self) -> u128 {
        match self.times.len() {
            0 => 0,
            n => self.times.iter().map(|d| ms(*d)).sum::<u128>() / n as u128,
        }
    }
}

/// Poll until every task has finished while SIGKILLing a random worker of `pool`: the first as
/// soon as a task runs, then after a random pause in `every_ms` (CI) or `every_full_ms` (full
/// size). Returns what the kills left unfinished and how long recovering took.
pub fn drain_with_kills(
    env: &Env,
    pool: &mut Pool<'_>,
    rng: &mut Rng,
    ids: &[String],
    every_ms: (u64, u64),
    every_full_ms: (u64, u64),
) -> Recovery {
    let every = size(every_ms, every_full_ms);
    env.wait_for_line(|l| l.starts_with("run "));
    let mut next_kill = Instant::now();
    let mut recovery = Recovery::default();
    until_all_finished(
        size(Duration::from_secs(120), Duration::from_secs(900)),
        || {
            recovery.check();
            if Instant::now() >= next_kill {
                recovery.kill(env, pool, rng.below(pool.workers.len()), ids);
                next_kill = Instant::now() + rng.millis(every.0, every.1);
            }
        },
    );
    recovery.check();
    recovery
}

/// The executions `crash_work` recorded: for each key, the processes that ran it, in order.
pub struct Runs(HashMap<String, Vec<u32>>);

impl Runs {
    /// Read the execution log.
    pub fn read(env: &Env) -> Self {
        let mut runs: HashMap<String, Vec<u32>> = HashMap::new();
        for line in env.log_lines() {
            let mut words = line.split(' ');
            if let (Some("run"), Some(key), Some(pid)) = (words.next(), words.next(), words.next())
            {
                let pid = pid.parse().expect("a process id");
                runs.entry(key.to_string()).or_default().push(pid);
            }
        }
        Self(runs)
    }

    /// The processes that ran `key`.
    pub fn of(&self, key: &str) -> &[u32] {
        self.0.get(key).map_or(&[], Vec::as_slice)
    }

    /// Executions beyond the first, over every key.
    pub fn duplicates(&self) -> usize {
        self.0
            .values()
            .map(|pids| pids.len().saturating_sub(1))
            .sum()
    }

    /// All executions.
    pub fn executions(&self) -> usize {
        self.0.values().map(Vec::len).sum()
    }

    /// Keys whose latest execution was by process `pid`.
    pub fn last_run_by(&self, pid: u32) -> Vec<String> {
        self.0
            .iter()
            .filter(|(_, pids)| pids.last() == Some(&pid))
            .map(|(key, _)| key.clone())
            .collect()
    }
}

/// Call the store until it answers (a test's own session may be cut off in a fault scenario),
/// bounded by [`DEADLINE`].
pub fn retrying<T>(what: &str, mut f: impl FnMut() -> taskhost::Result<T>) -> T {
    let start = Instant::now();
    loop {
        match f() {
            Ok(value) => return value,
            Err(e) if start.elapsed() < DEADLINE => {
                tracing::debug!("{what} failed, retrying: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("{what} kept failing for {DEADLINE:?}: {e}"),
        }
    }
}

/// The stored result `id`.
pub fn result(id: &str) -> TaskResult {
    retrying("reading a result", || {
        task_backends().get("default")?.get_result(id)
    })
}

/// Every stored result.
pub fn results() -> Vec<TaskResult> {
    retrying("listing results", || {
        task_backends().get("default")?.results()
    })
}

/// How many results have each status.
pub fn status_counts() -> HashMap<TaskResultStatus, u64> {
    let stats: Vec<QueueStats> = retrying("counting results", || {
        task_backends().get("default")?.queue_stats()
    });
    let mut counts = HashMap::new();
    for s in stats {
        *counts.entry(s.status).or_default() += s.count;
    }
    counts
}

/// Poll until every result is finished (no READY or RUNNING left), calling `between` every
/// 50 ms meanwhile (where the faults happen); panics with the counts after `limit`.
pub fn until_all_finished(limit: Duration, mut between: impl FnMut()) {
    let start = Instant::now();
    let mut checked = Instant::now();
    loop {
        between();
        if checked.elapsed() >= Duration::from_millis(250) {
            let counts = status_counts();
            let unfinished = |s| counts.get(&s).copied().unwrap_or(0);
            if unfinished(TaskResultStatus::Ready) + unfinished(TaskResultStatus::Running) == 0 {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "tasks still unfinished after {limit:?}: {counts:?}"
            );
            checked = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Send `signal` (`STOP`, `CONT`, `TERM`, …) to process `pid`.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// Worker processes of the worker app, each logging to its own file; a killed or exited one
/// can be replaced, so the pool keeps its size.
pub struct Pool<'e> {
    env: &'e Env,
    args: Vec<String>,
    workers: Vec<(Child, PathBuf)>,
    logs: Vec<PathBuf>,
}

impl<'e> Pool<'e> {
    /// Start `n` workers: `worker --no-startup-delay --interval 0.05 <args>`.
    pub fn start(env: &'e Env, n: usize, args: &[&str]) -> Self {
        let mut pool = Self {
            env,
            args: args.iter().map(|a| a.to_string()).collect(),
            workers: Vec::new(),
            logs: Vec::new(),
        };
        for _ in 0..n {
            let worker = pool.spawn();
            pool.workers.push(worker);
        }
        pool
    }

    fn spawn(&mut self) -> (Child, PathBuf) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let name = format!("worker-{}", self.logs.len());
        let (child, log) = spawn_logged(self.env, &name, &args);
        self.logs.push(log.clone());
        (child, log)
    }

    /// The process id of worker `i`.
    pub fn pid(&self, i: usize) -> u32 {
        self.workers[i].0.id()
    }

    /// SIGKILL worker `i`, reap it and start a replacement; returns the killed process id.
    pub fn kill(&mut self, i: usize) -> u32 {
        let pid = self.pid(i);
        let _ = self.workers[i].0.kill();
        let _ = self.workers[i].0.wait();
        self.workers[i] = self.spawn();
        pid
    }

    /// Replace every worker that exited on its own (e.g. a task aborted it); returns how many.
    pub fn replace_exited(&mut self) -> usize {
        let mut replaced = 0;
        for i in 0..self.workers.len() {
            if self.workers[i].0.try_wait().unwrap().is_some() {
                self.workers[i] = self.spawn();
                replaced += 1;
            }
        }
        replaced
    }

    /// Everything every worker (replaced ones too) printed so far.
    pub fn logs(&self) -> String {
        self.logs
            .iter()
            .map(|path| std::fs::read_to_string(path).unwrap_or_default())
            .collect()
    }

    /// SIGTERM every worker (once it has started, so its handler is installed); each must
    /// exit 0 within [`DEADLINE`].
    pub fn stop(mut self) {
        for (child, log) in &self.workers {
            wait_for_file_line(log, |l| l.contains("Starting worker"));
            signal(child.id(), "TERM");
        }
        for (child, _) in std::mem::take(&mut self.workers) {
            let out = wait_with_deadline(child);
            assert!(out.status.success(), "{}{}", output_text(&out), self.logs());
        }
    }
}

impl Drop for Pool<'_> {
    /// A failed test leaves no worker behind.
    fn drop(&mut self) {
        for (child, _) in &mut self.workers {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// How the application's transaction ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// COMMIT.
    Commit,
    /// ROLLBACK.
    Rollback,
    /// Abandoned mid-way. PostgreSQL: the server terminates the session with the transaction
    /// open, as when the application crashes. SQLite: the transaction is dropped without a
    /// COMMIT or ROLLBACK (a `?` or a panic in the application); the connection is *not*
    /// closed, because this process also holds the plugin's own SQLite library, and closing a
    /// file in one copy of SQLite drops the POSIX locks the other holds on it.
    Abandoned,
}

/// The application's own connection to the queue's database.
pub enum App {
    /// A rusqlite connection to the store's file.
    Sqlite(rusqlite::Connection),
    /// A postgres client.
    Postgres(postgres::Client),
}

impl App {
    /// Connect to the store of `env`.
    pub fn connect(store: Store, env: &Env) -> Self {
        match store {
            Store::Sqlite => {
                let path = env.dir.path().join("tasks.db");
                Self::Sqlite(rusqlite::Connection::open(path).unwrap())
            }
            Store::Postgres => Self::Postgres(
                postgres::Client::connect(crate::worker::env::POSTGRES_URL, postgres::NoTls)
                    .unwrap(),
            ),
        }
    }

    /// Run `insert` in a transaction of the application's, ended as `ending` says.
    pub fn run(&mut self, insert: &TransactionalEnqueue, ending: Ending) {
        match self {
            Self::Sqlite(conn) => {
                let tx = conn.transaction().unwrap();
                let params: Vec<rusqlite::types::Value> =
                    insert.params.iter().map(sqlite_value).collect();
                tx.execute(&insert.sql, rusqlite::params_from_iter(params))
                    .unwrap();
                match ending {
                    Ending::Commit => tx.commit().unwrap(),
                    Ending::Rollback => tx.rollback().unwrap(),
                    Ending::Abandoned => drop(tx),
                }
            }
            Self::Postgres(client) => {
                let mut tx = client.transaction().unwrap();
                let params = postgres_values(&insert.params);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    params.iter().map(|p| p.as_ref()).collect();
                tx.execute(&insert.sql, &refs).unwrap();
                match ending {
                    Ending::Commit => tx.commit().unwrap(),
                    Ending::Rollback => tx.rollback().unwrap(),
                    Ending::Abandoned => {
                        let cut = tx.execute("SELECT pg_terminate_backend(pg_backend_pid())", &[]);
                        assert!(cut.is_err(), "the session survived its termination");
                        drop(tx);
                        *client = postgres::Client::connect(
                            crate::worker::env::POSTGRES_URL,
                            postgres::NoTls,
                        )
                        .unwrap();
                    }
                }
            }
        }
    }
}

/// PostgreSQL values for the insert's parameters: the id (first) is a uuid, integers are
/// `integer`, and the only nullable timestamp is `run_after` (the sixth).
fn postgres_values(params: &[SqlParam]) -> Vec<Box<dyn postgres::types::ToSql + Sync>> {
    params
        .iter()
        .enumerate()
        .map(|(i, p)| -> Box<dyn postgres::types::ToSql + Sync> {
            match p {
                SqlParam::Text(s) if i == 0 => Box::new(uuid::Uuid::parse_str(s).unwrap()),
                SqlParam::Text(s) => Box::new(s.clone()),
                SqlParam::Json(v) => Box::new(v.clone()),
                SqlParam::Integer(n) => Box::new(i32::try_from(*n).unwrap()),
                SqlParam::Timestamp(t) => Box::new(*t),
                SqlParam::Bool(b) => Box::new(*b),
                SqlParam::Null if i == 5 => Box::new(None::<chrono::DateTime<chrono::Utc>>),
                SqlParam::Null => Box::new(None::<i32>),
            }
        })
        .collect()
}
