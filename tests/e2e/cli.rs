//! The `taskhost` tool: `check`, `backends`, `results` and `queues`, run as a real process.

use crate::worker::env::{Env, Store};
use serde_json::Value;
use std::fs;
use std::process::Command;
use taskhost_e2e::build::worker_app_bin;
use taskhost_e2e::{plugin_dir, taskhost_bin};
use taskhost_plugin_api::PLUGIN_API_VERSION;

fn write_config(dir: &std::path::Path, body: &str) -> std::path::PathBuf {
    let file = dir.join("tasks.toml");
    let text = format!(
        "plugin_dirs = [{:?}]\n{body}",
        plugin_dir().display().to_string()
    );
    fs::write(&file, text).unwrap();
    file
}

fn run(args: &[&str], config: &std::path::Path) -> (i32, String) {
    let out = Command::new(taskhost_bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn check_passes_with_a_one_line_summary() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[tasks.default]\nbackend = \"taskhost.backends.immediate.ImmediateBackend\"\n\
         [tasks.dummy]\nbackend = \"taskhost.backends.dummy.DummyBackend\"\n",
    );
    let (code, out) = run(&["check"], &config);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.starts_with("taskhost check: 2 backend(s) OK from "),
        "{out}"
    );
    assert!(
        out.contains("default (taskhost.backends.immediate.ImmediateBackend)"),
        "{out}"
    );
}

#[test]
fn check_reports_one_line_per_problem_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[tasks.default]\nbackend = \"taskhost.backends.dummy.DummyBackend\"\n\
         [tasks.missing]\nbackend = \"does.not.Exist\"\n\
         [tasks.bad]\nbackend = \"a..b.C\"\n",
    );
    let (code, out) = run(&["check"], &config);
    assert_eq!(code, 1, "{out}");
    let errors: Vec<&str> = out.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 2, "{out}");
    assert!(
        errors
            .iter()
            .any(|l| l.contains("Could not find backend 'a..b.C'") && l.contains("(alias 'bad')")),
        "{out}"
    );
    assert!(
        errors
            .iter()
            .any(|l| l.contains("Could not find backend 'does.not.Exist'")
                && l.contains("(alias 'missing')")),
        "{out}"
    );
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("taskhost check: 2 error(s) in "),
        "{out}"
    );
}

#[test]
fn check_reports_a_bad_config_file_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "[tasks.default]\nbakend = \"x.Y\"\n");
    let (code, out) = run(&["check"], &config);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("tasks.default.bakend"), "{out}");
}

#[test]
fn backends_lists_plugins_and_explains_files_that_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    fs::create_dir(&plugins).unwrap();
    fs::copy(
        taskhost_e2e::plugin_file("taskhost_backends_dummy"),
        plugins.join("libtaskhost_backends_dummy.so"),
    )
    .unwrap();
    fs::write(plugins.join("libjunk.so"), "not a library").unwrap();
    let config = dir.path().join("tasks.toml");
    fs::write(&config, "plugin_dirs = [\"plugins\"]\n[tasks]\n").unwrap();
    let (code, out) = run(&["backends"], &config);
    assert_eq!(code, 0, "{out}");
    let listed = format!(
        "libtaskhost_backends_dummy.so: module taskhost.backends.dummy classes [DummyBackend] \
         plugin-api {PLUGIN_API_VERSION}"
    );
    assert!(out.contains(&listed), "{out}");
    assert!(out.contains("libjunk.so: not loadable: "), "{out}");

    let out = Command::new(taskhost_bin())
        .args(["backends", "--format", "json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success());
    let listing: Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = listing[0]["files"].as_array().unwrap();
    assert_eq!(listing[0]["missing"], false);
    assert_eq!(files.len(), 2, "{listing}");
    let dummy = files
        .iter()
        .find(|f| f["file"] == "libtaskhost_backends_dummy.so")
        .unwrap();
    assert_eq!(dummy["loadable"], true);
    assert_eq!(dummy["module"], "taskhost.backends.dummy");
    assert_eq!(dummy["classes"], serde_json::json!(["DummyBackend"]));
    assert_eq!(dummy["plugin_api_version"], PLUGIN_API_VERSION);
    let junk = files.iter().find(|f| f["file"] == "libjunk.so").unwrap();
    assert_eq!(junk["loadable"], false);
    assert!(
        junk["reason"].as_str().unwrap().contains("libjunk.so"),
        "{junk}"
    );
}

#[test]
fn results_list_and_queues_print_aligned_tables_and_json() {
    let env = Env::new(Store::Sqlite, "");
    let long_queue = "a-queue-name-longer-than-twenty";
    let first = env.enqueue_on("record_key", serde_json::json!(["a"]), long_queue, 0);
    let ids = env.enqueue_many(
        "record_key",
        (0..10).map(|_| serde_json::json!(["b"])).collect(),
    );

    // JSON: one document, the real strings.
    let listed: Vec<Value> =
        serde_json::from_str(&env.taskhost_stdout(&["results", "list", "--format", "json"]))
            .unwrap();
    assert_eq!(listed.len(), 11);
    assert!(listed
        .iter()
        .any(|r| r["id"] == first && r["task"]["queue_name"] == long_queue));
    // The table: every column as wide as its widest cell, two spaces between columns.
    let enqueued: Vec<String> = listed
        .iter()
        .map(|r| {
            chrono::DateTime::parse_from_rfc3339(r["enqueued_at"].as_str().unwrap())
                .unwrap()
                .with_timezone(&chrono::Utc)
                .to_rfc3339()
        })
        .collect();
    let at_width = enqueued.iter().map(String::len).max().unwrap();
    let mut expected = format!(
        "{:<36}  {:<6}  {:<31}  ATTEMPTS  {:<at_width$}  TASK\n",
        "ID", "STATUS", "QUEUE", "ENQUEUED AT"
    );
    for (r, at) in listed.iter().zip(&enqueued) {
        expected += &format!(
            "{}  READY   {:<31}         0  {at:<at_width$}  taskhost_worker_app::record_key\n",
            r["id"].as_str().unwrap(),
            r["task"]["queue_name"].as_str().unwrap(),
        );
    }
    expected += "(11 result(s))\n";
    assert_eq!(env.taskhost_stdout(&["results", "list"]), expected);
    assert!(ids.iter().all(|id| expected.contains(id.as_str())));

    let stats: Vec<Value> =
        serde_json::from_str(&env.taskhost_stdout(&["queues", "--format", "json"])).unwrap();
    let counts: Vec<(&str, &str, u64)> = stats
        .iter()
        .map(|s| {
            (
                s["queue_name"].as_str().unwrap(),
                s["status"].as_str().unwrap(),
                s["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counts, [(long_queue, "READY", 1), ("default", "READY", 10)]);
    let queues = env.taskhost_stdout(&["queues"]);
    let lines: Vec<&str> = queues.lines().collect();
    assert_eq!(lines.len(), 3, "{queues}");
    assert_eq!(
        lines[0],
        format!("{:<31}  STATUS  COUNT  OLDEST READY", "QUEUE")
    );
    let age = |line: &str, prefix: &str| {
        let rest = line
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("{queues}"));
        assert!(rest.ends_with(" s ago"), "{queues}");
    };
    age(lines[1], &format!("{long_queue}  READY       1  "));
    age(lines[2], &format!("{:<31}  READY      10  ", "default"));
}

#[test]
fn results_show_of_an_unknown_id_names_the_id_and_the_backend() {
    let env = Env::new(Store::Sqlite, "");
    let out = Command::new(taskhost_bin())
        .arg("--config")
        .arg(&env.config_file)
        .args(["results", "show", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: no task result with id 'nope' in backend 'default'\n"
    );
}

/// `taskhost … | head`: stdout closed before the command prints ends it quietly (exit 0, no
/// panic message), it does not crash.
#[test]
fn a_closed_stdout_ends_the_output_quietly() {
    let env = Env::new(Store::Sqlite, "");
    env.enqueue("record_key", serde_json::json!(["a"]));
    let dummy = taskhost_e2e::plugin_file("taskhost_backends_dummy");
    let dummy = dummy.to_str().unwrap();
    let commands: [&[&str]; 3] = [
        &["plugin", "test", dummy, "--class", "DummyBackend"],
        &["results", "list"],
        &["queues"],
    ];
    for args in commands {
        let mut child = Command::new(taskhost_bin())
            .arg("--config")
            .arg(&env.config_file)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader is gone before the command has loaded its config, let alone written a
        // byte: every write fails with EPIPE.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).as_ref()
            ),
            (Some(0), ""),
            "{args:?}"
        );
    }
}

/// `--version` and `--help` say which program this is: the application's name and version when
/// it mounts the CLI with `cli_main!()`, the executable's name over plain `cli::main()`.
#[test]
fn version_and_help_name_the_mounting_application() {
    let stdout = |bin: &std::path::Path, arg: &str| {
        let out = Command::new(bin).arg(arg).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let app = taskhost_e2e::build::worker_app_bin();
    assert_eq!(stdout(&app, "--version"), "taskhost-worker-app 0.0.0\n");
    let help = stdout(&app, "--help");
    assert_eq!(
        help.lines().take(3).collect::<Vec<_>>(),
        [
            "Test fixture: an application binary with tasks and the taskhost CLI mounted, run as \
             real worker processes by the end-to-end tests.",
            "",
            "Usage: taskhost-worker-app [OPTIONS] <COMMAND>",
        ]
    );

    let taskhost = taskhost_bin();
    let taskhost_version = taskhost_cli::AppInfo::taskhost().version;
    assert_eq!(
        stdout(&taskhost, "--version"),
        format!("taskhost {taskhost_version}\n")
    );
    // The same plain `cli::main()` under another file name names itself after the file.
    let dir = tempfile::tempdir().unwrap();
    let renamed = dir
        .path()
        .join(format!("my-app{}", std::env::consts::EXE_SUFFIX));
    // A link, not a copy: a file just written can be "busy" to exec while another test thread
    // forks.
    #[cfg(unix)]
    std::os::unix::fs::symlink(&taskhost, &renamed).unwrap();
    #[cfg(not(unix))]
    fs::copy(&taskhost, &renamed).unwrap();
    assert_eq!(
        stdout(&renamed, "--version"),
        format!("my-app (taskhost {taskhost_version})\n")
    );
    let help = stdout(&renamed, "--help");
    assert_eq!(
        help.lines().take(3).collect::<Vec<_>>(),
        [
            format!(
                "Run task workers and inspect the task backends configured in tasks.toml \
                 (taskhost {taskhost_version})."
            )
            .as_str(),
            "",
            "Usage: my-app [OPTIONS] <COMMAND>",
        ]
    );
}

/// A worker run with no `RUST_LOG` logs every failed attempt (WARN on the `taskhost` target):
/// task id, path, attempt, and the error's class path and first line; then that it FAILED.
#[test]
fn a_worker_logs_failed_and_retried_attempts_by_default() {
    let env = Env::new(Store::Sqlite, "");
    let id = env.enqueue("always_fails", serde_json::json!(["x"]));
    let mut worker = env.command(&[
        "worker",
        "--no-startup-delay",
        "--interval",
        "0.05",
        "--retry-backoff",
        "0.01",
        "--max-tasks",
        "3",
    ]);
    worker.env_remove("RUST_LOG");
    let out = crate::worker::env::wait_with_deadline(worker.spawn().unwrap());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    let class = &env.result(&id).errors()[0].exception_class_path.clone();
    // Without the timestamp (and no colours: stderr is not a terminal).
    let lines: Vec<&str> = stderr
        .lines()
        .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest.trim_start()))
        .collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    let task = format!("WARN taskhost: Task id={id} path=taskhost_worker_app::always_fails");
    let why = format!(": {class}: failing on purpose: x");
    for (attempt, line) in lines[..2].iter().enumerate() {
        let head = format!(
            "{task} failed on attempt {} of 3; retrying at ",
            attempt + 1
        );
        assert!(line.starts_with(&head) && line.ends_with(&why), "{stderr}");
    }
    assert_eq!(
        lines[2],
        format!("{task} failed on attempt 3 of 3; FAILED{why}"),
        "{stderr}"
    );
    // `--log-format json`: the same, one JSON object per line.
    let id = env.enqueue("always_fails", serde_json::json!(["y"]));
    let mut worker = env.command(&[
        "worker",
        "--no-startup-delay",
        "--retry-backoff",
        "0.01",
        "--max-tasks",
        "3",
        "--log-format",
        "json",
    ]);
    worker.env_remove("RUST_LOG");
    let out = crate::worker::env::wait_with_deadline(worker.spawn().unwrap());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    let records: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(records.len(), 3, "{stderr}");
    assert_eq!(records[2]["level"], "WARN");
    assert_eq!(records[2]["target"], "taskhost");
    assert_eq!(
        records[2]["fields"]["message"],
        format!(
            "Task id={id} path=taskhost_worker_app::always_fails failed on attempt 3 of 3; \
             FAILED: {class}: failing on purpose: y"
        )
    );

    // `worker --help` says so, and how to choose.
    let help = Command::new(taskhost_e2e::build::worker_app_bin())
        .args(["worker", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(
        help.contains("Logging (stderr): by default (WARN) each failed attempt of a task")
            && help.contains("RUST_LOG=taskhost=info")
            && help.contains("--log-format <FORMAT>"),
        "{help}"
    );
}

/// The worker app (which has the tasks) with `args` on `env`'s store: exit code, stdout, stderr.
fn app(env: &Env, args: &[&str]) -> (i32, String, String) {
    let out = env.command(args).env("RUST_LOG", "warn").output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn enqueue_puts_a_registered_task_with_its_args_on_the_store() {
    let env = Env::new(Store::Sqlite, "");
    let (code, stdout, stderr) = app(
        &env,
        &[
            "enqueue",
            "taskhost_worker_app::record_key",
            "--args",
            r#"["from-the-cli"]"#,
            "--queue",
            "ops",
            "--priority",
            "-7",
        ],
    );
    assert_eq!((code, stderr.as_str()), (0, ""), "{stdout}");
    let (id, status) = stdout.trim_end().split_once(' ').unwrap();
    assert_eq!(stdout, format!("{id} READY\n"));
    assert_eq!(status, "READY");

    let stored: Value =
        serde_json::from_str(&env.taskhost_stdout(&["results", "show", id])).unwrap();
    assert_eq!(stored["id"], id);
    assert_eq!(stored["status"], "READY");
    assert_eq!(stored["args"], serde_json::json!(["from-the-cli"]));
    assert_eq!(stored["kwargs"], serde_json::json!({}));
    assert_eq!(stored["task"]["path"], "taskhost_worker_app::record_key");
    assert_eq!(stored["task"]["queue_name"], "ops");
    assert_eq!(stored["task"]["priority"], -7);
    assert_eq!(stored["task"]["backend"], "default");

    // A worker on that queue runs it with those arguments.
    let out = env.run_worker(&["--batch", "--queue", "ops"]);
    assert!(
        out.status.success(),
        "{}",
        crate::worker::env::output_text(&out)
    );
    assert_eq!(env.log_lines(), ["from-the-cli"]);
    let done: Value = serde_json::from_str(&env.taskhost_stdout(&["results", "show", id])).unwrap();
    assert_eq!(done["status"], "SUCCESSFUL");
    assert_eq!(done["return_value"], "from-the-cli");

    // --format json: the new result, as `results show` prints it.
    let (code, stdout, stderr) = app(
        &env,
        &[
            "enqueue",
            "taskhost_worker_app::record_key",
            "--args",
            r#"["deferred"]"#,
            "--run-after",
            "2099-01-01T00:00:00Z",
            "--format",
            "json",
        ],
    );
    assert_eq!((code, stderr.as_str()), (0, ""), "{stdout}");
    let printed: Value = serde_json::from_str(&stdout).unwrap();
    let id = printed["id"].as_str().unwrap();
    assert_eq!(printed["status"], "READY");
    assert_eq!(printed["task"]["queue_name"], "default");
    assert_eq!(printed["task"]["run_after"], "2099-01-01T00:00:00Z");
    assert_eq!(
        stdout,
        env.taskhost_stdout(&["results", "show", id]),
        "printed as stored"
    );
}

#[test]
fn enqueue_refuses_naming_the_thing_at_fault() {
    let env = Env::new(Store::Sqlite, "");
    let path = "taskhost_worker_app::record_key";
    let cases: &[(&[&str], &str)] = &[
        (
            &["enqueue", "taskhost_worker_app::record_kee"],
            "no task 'taskhost_worker_app::record_kee' is registered in this binary; did you \
             mean 'taskhost_worker_app::record_key'?",
        ),
        (
            &["enqueue", "other_app::flaky"],
            "no task 'other_app::flaky' is registered in this binary; did you mean \
             'taskhost_worker_app::flaky'?",
        ),
        (
            &["enqueue", "nothing::like_it"],
            "no task 'nothing::like_it' is registered in this binary (paths are \
             `crate_name::module::function`); it has 'taskhost_worker_app::abort_process', \
             'taskhost_worker_app::always_fails', 'taskhost_worker_app::async_greet', \
             'taskhost_worker_app::async_record_and_sleep', 'taskhost_worker_app::crash_work', \
             'taskhost_worker_app::enqueue_record_key', 'taskhost_worker_app::flaky', \
             'taskhost_worker_app::greet', 'taskhost_worker_app::record_and_sleep', \
             'taskhost_worker_app::record_key', and 5 more",
        ),
        (
            &["enqueue", path, "--args", r#"{"key": "a"}"#],
            r#"--args must be a JSON array (e.g. '["a@example.com", 3]'), got an object"#,
        ),
        (
            &["enqueue", path, "--args", "[1,"],
            "--args is not valid JSON: EOF while parsing a value at line 1 column 3",
        ),
        (
            &["enqueue", path, "--kwargs", "[1]"],
            r#"--kwargs must be a JSON object (e.g. '{"retries": 3}'), got an array"#,
        ),
        (
            &["enqueue", path, "--priority", "101"],
            "cannot enqueue 'taskhost_worker_app::record_key': priority must be a whole number \
             between -100 and 100.",
        ),
        (
            &["enqueue", path, "--queue", "a,b"],
            "cannot enqueue 'taskhost_worker_app::record_key': Invalid queue name 'a,b': a \
             queue name must be 1 to 255 bytes without control characters, commas or leading or \
             trailing whitespace, and not '*' (it has a comma, which separates queue names in \
             --queue).",
        ),
        (
            &["enqueue", path, "--backend", "nope"],
            "cannot enqueue 'taskhost_worker_app::record_key': The connection 'nope' doesn't \
             exist.",
        ),
        (
            &["enqueue", path, "--run-after", "tomorrow"],
            "--run-after 'tomorrow' is not an RFC 3339 time (e.g. 2026-12-06T08:00:00Z): premature \
             end of input",
        ),
    ];
    for (args, message) in cases {
        let (code, stdout, stderr) = app(&env, args);
        assert_eq!(
            (code, stdout.as_str(), stderr.as_str()),
            (1, "", format!("error: {message}\n").as_str()),
            "{args:?}"
        );
    }
    assert_eq!(
        env.taskhost_stdout(&["results", "list"]).lines().last(),
        Some("(0 result(s))")
    );
}

#[test]
fn enqueue_in_the_taskhost_tool_says_it_has_no_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let (code, out) = run(&["enqueue", "my_app::send_email", "--args", "[]"], &config);
    assert_eq!(
        (code, out.as_str()),
        (
            1,
            "error: the taskhost tool has no tasks; run `enqueue` from your application's \
             binary, which mounts this CLI (this binary has no #[task] functions)\n"
        )
    );
}

/// `command` run by `script` on a pseudo-terminal, its stdout redirected to a file: what the
/// terminal showed (stderr), and the file (stdout).
fn on_a_terminal(env: &Env, command: &str) -> (String, String) {
    let stdout_file = env.dir.path().join("stdout.txt");
    let line = format!(
        "'{}' --config '{}' {command} > '{}'",
        worker_app_bin().display(),
        env.config_file.display(),
        stdout_file.display()
    );
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("TERM", "xterm")
        .env("TASKHOST_TEST_LOG", &env.log)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{line}: {out:?}");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        fs::read_to_string(stdout_file).unwrap(),
    )
}

#[test]
fn batch_prune_and_migrate_show_progress_on_a_terminal_stderr_only() {
    let env = Env::new(Store::Sqlite, "");
    env.enqueue_many(
        "record_and_sleep",
        (0..4)
            .map(|i| serde_json::json!([format!("k{i}"), 150]))
            .collect(),
    );
    env.enqueue("always_fails", serde_json::json!(["f"]));
    let args = "worker --batch --no-startup-delay --interval 0.05 --retry-backoff 0 --worker-id w1";
    let (terminal, stdout) = on_a_terminal(&env, args);
    assert_eq!(
        stdout,
        "worker w1: 7 claimed, 4 successful, 1 failed, 2 retried, 0 lease lost, 0 released (Drained)\n"
    );
    // Each log line (the failed attempts, at WARN) is written with the bar cleared, on a line
    // of its own: never run on from the bar's text.
    let warnings: Vec<&str> = terminal
        .split('\r')
        .filter(|s| s.contains("WARN"))
        .collect();
    assert_eq!(warnings.len(), 3, "{terminal:?}");
    for line in warnings {
        assert!(line.starts_with("\u{1b}[2K"), "{line:?}");
        assert!(!line.contains("tasks/s"), "{line:?}");
    }
    assert!(
        terminal.contains(" claimed (") && terminal.contains(" tasks/s"),
        "{terminal:?}"
    );
    assert!(
        terminal.contains("done / 1 claimed (0 successful"),
        "{terminal:?}"
    );

    let (terminal, stdout) = on_a_terminal(&env, "prune --min-age-days 0 --batch-size 2");
    assert_eq!(stdout, "Deleted 5 task result(s)\n");
    assert!(
        terminal.contains("Deleting [") && terminal.contains("] 5/5 task results ("),
        "{terminal:?}"
    );

    let (terminal, stdout) = on_a_terminal(&env, "migrate");
    assert_eq!(stdout, "No migrations to apply.\n");
    assert!(
        terminal.contains("Applying migrations to backend 'default'…"),
        "{terminal:?}"
    );

    // Piped: no bar, the output as before.
    env.enqueue("record_key", serde_json::json!(["piped"]));
    let out = env
        .command(&[
            "worker",
            "--batch",
            "--no-startup-delay",
            "--worker-id",
            "w2",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(
        (
            String::from_utf8_lossy(&out.stdout).as_ref(),
            String::from_utf8_lossy(&out.stderr).as_ref()
        ),
        (
            "worker w2: 1 claimed, 1 successful, 0 failed, 0 retried, 0 lease lost, 0 released (Drained)\n",
            ""
        )
    );
}
