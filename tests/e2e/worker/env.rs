//! One isolated queue store per test (a temp SQLite file, or a fresh PostgreSQL schema), a
//! config file for the worker processes, and helpers to enqueue, run and watch workers.

use serde_json::{json, Value};
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use taskhost::{task_backends, TaskResult};
use taskhost_e2e::build::worker_app_bin;
use taskhost_e2e::{plugin_dir, TestConfig};
use taskhost_plugin_api::TaskDescription;

/// PostgreSQL for tests (trust auth on this machine and in CI).
pub const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// A SQLite file in a temp dir.
    Sqlite,
    /// A fresh schema in the local PostgreSQL.
    Postgres,
}

/// How long a test waits for something a worker does before it fails.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// One test's queue store, config and execution log.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub config_file: PathBuf,
    pub log: PathBuf,
    /// PostgreSQL: the test's own schema (where its tables are); `None` on SQLite.
    pub schema: Option<String>,
    _config: TestConfig,
}

impl Env {
    /// A fresh store; `extra_options` are added to the backend's options table (TOML lines).
    pub fn new(store: Store, extra_options: &str) -> Self {
        Self::new_with_url(store, "", extra_options)
    }

    /// A fresh store at `url` (empty: a temp SQLite file, or the test PostgreSQL).
    pub fn new_with_url(store: Store, url: &str, extra_options: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = match store {
            _ if !url.is_empty() => url.to_string(),
            Store::Sqlite => format!("sqlite://{}", dir.path().join("tasks.db").display()),
            Store::Postgres => POSTGRES_URL.to_string(),
        };
        let schema_name = match store {
            Store::Sqlite => None,
            Store::Postgres => Some(format!(
                "taskhost_test_{}",
                uuid_like(dir.path().file_name().unwrap().to_string_lossy().as_ref())
            )),
        };
        let schema = match &schema_name {
            Some(name) => format!("schema = \"{name}\"\n"),
            None => String::new(),
        };
        let toml = format!(
            "plugin_dirs = [{}]\n\n[tasks.default]\nbackend = \"taskhost.backends.database.DatabaseBackend\"\nqueues = []\n\n[tasks.default.options]\nurl = {}\n{schema}{extra_options}\n\n[tasks.dummy]\nbackend = \"taskhost.backends.dummy.DummyBackend\"\n",
            json!(plugin_dir().display().to_string()),
            json!(url),
        );
        let config_file = dir.path().join("tasks.toml");
        fs::write(&config_file, &toml).unwrap();
        let log = dir.path().join("executions.log");
        let config = TestConfig::new(&toml);
        Self {
            dir,
            config_file,
            log,
            schema: schema_name,
            _config: config,
        }
    }

    /// Enqueue the worker app's task `name` with `args`, on `queue` with `priority`.
    pub fn enqueue_on(&self, name: &str, args: Value, queue: &str, priority: i32) -> String {
        let backend = task_backends().get("default").unwrap();
        let Value::Array(args) = args else {
            panic!("args must be an array")
        };
        let result = backend
            .enqueue_json(
                &description(name, queue, priority),
                args,
                Default::default(),
            )
            .unwrap();
        result.id().to_string()
    }

    /// Enqueue on the default queue with priority 0.
    pub fn enqueue(&self, name: &str, args: Value) -> String {
        self.enqueue_on(name, args, "default", 0)
    }

    /// Enqueue many runs of one task in one call.
    pub fn enqueue_many(&self, name: &str, runs: Vec<Value>) -> Vec<String> {
        let backend = task_backends().get("default").unwrap();
        let items = runs
            .into_iter()
            .map(|args| match args {
                Value::Array(a) => (description(name, "default", 0), a),
                _ => panic!("args must be an array"),
            })
            .collect();
        backend
            .enqueue_many_json(items)
            .unwrap()
            .iter()
            .map(|r| r.id().to_string())
            .collect()
    }

    /// The stored result.
    pub fn result(&self, id: &str) -> TaskResult {
        task_backends()
            .get("default")
            .unwrap()
            .get_result(id)
            .unwrap()
    }

    /// The worker app with `args` (after `--config FILE`), logging executions to `self.log`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(worker_app_bin());
        cmd.arg("--config")
            .arg(&self.config_file)
            .args(args)
            .env("TASKHOST_TEST_LOG", &self.log)
            .env("RUST_LOG", "taskhost=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Start a worker process: `worker --no-startup-delay <args>`, with `--interval 0.05` unless
    /// `args` set one.
    pub fn spawn_worker(&self, args: &[&str]) -> Child {
        let mut all = vec!["worker", "--no-startup-delay"];
        if !args.contains(&"--interval") {
            all.extend(["--interval", "0.05"]);
        }
        all.extend_from_slice(args);
        self.command(&all).spawn().unwrap()
    }

    /// `taskhost --config <this env's config> args…`: its stdout when it exits 0, else a panic
    /// showing both outputs.
    pub fn taskhost_stdout(&self, args: &[&str]) -> String {
        let out = Command::new(taskhost_e2e::taskhost_bin())
            .arg("--config")
            .arg(&self.config_file)
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Run a worker process to its end.
    pub fn run_worker(&self, args: &[&str]) -> Output {
        let child = self.spawn_worker(args);
        wait_with_deadline(child)
    }

    /// The lines the tasks recorded so far.
    pub fn log_lines(&self) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Wait until a recorded line satisfies `pred` (polling, bounded by [`DEADLINE`]).
    pub fn wait_for_line(&self, pred: impl Fn(&str) -> bool) {
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            if self.log_lines().iter().any(|l| pred(l)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "no matching line within {DEADLINE:?}; log: {:?}",
            self.log_lines()
        );
    }

    /// Wait until the result `id` has a status satisfying `pred` (bounded by [`DEADLINE`]).
    pub fn wait_for_result(&self, id: &str, pred: impl Fn(&TaskResult) -> bool) -> TaskResult {
        let start = Instant::now();
        loop {
            let result = self.result(id);
            if pred(&result) {
                return result;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "result {id} stayed {:?}",
                result.status()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The task description of the worker app's task `name`.
pub fn description(name: &str, queue: &str, priority: i32) -> TaskDescription {
    TaskDescription {
        path: format!("taskhost_worker_app::{name}").into(),
        priority,
        queue_name: queue.to_string().into(),
        backend: "default".into(),
        run_after: None,
        takes_context: matches!(name, "flaky" | "slow_first_attempt"),
        is_async: matches!(name, "async_record_and_sleep" | "too_slow"),
        max_attempts: match name {
            "always_fails" | "slow_first_attempt" => Some(3),
            "flaky" => Some(5),
            "abort_process" => Some(2),
            _ => None,
        },
        timeout_secs: (name == "too_slow").then_some(0.2),
    }
}

/// Wait for a child process, killing it (and failing) if it outlives [`DEADLINE`]. Its stdout
/// and stderr are drained while it runs: a full pipe would otherwise block the child's logging.
pub fn wait_with_deadline(mut child: Child) -> Output {
    fn drain(
        pipe: Option<impl std::io::Read + Send + 'static>,
    ) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    }
    let (stdout, stderr) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = Output {
        status: status.unwrap_or_else(|| child.wait().unwrap()),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    assert!(
        status.is_some(),
        "worker did not exit within {DEADLINE:?}: {}",
        output_text(&out)
    );
    out
}

/// Wait until a line of the file at `path` satisfies `pred` (bounded by [`DEADLINE`]).
pub fn wait_for_file_line(path: &std::path::Path, pred: impl Fn(&str) -> bool) {
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        if fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .any(&pred)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no matching line in {} within {DEADLINE:?}", path.display());
}

/// Send SIGTERM to a child process.
pub fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Everything a process printed.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn uuid_like(seed: &str) -> String {
    seed.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Start `worker --no-startup-delay --interval 0.05 <args>` with its output in `<name>.log`
/// in the test's dir; returns the process and the log's path.
pub fn spawn_logged(env: &Env, name: &str, args: &[&str]) -> (Child, PathBuf) {
    let log = env.dir.path().join(format!("{name}.log"));
    let file = fs::File::create(&log).unwrap();
    let mut all = vec!["worker", "--no-startup-delay", "--interval", "0.05"];
    all.extend_from_slice(args);
    let child = env
        .command(&all)
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    (child, log)
}
