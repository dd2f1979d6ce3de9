//! Application state (`State<T>` task parameters): the worker app registers a `Greeter` and a
//! `RunCounter` through `cli_main!(state = ..)`, and real worker processes pass them to its
//! tasks — on SQLite and PostgreSQL; a worker started without them is refused, naming each task
//! and type, and so is `check`; the Immediate backend (the real plugin file) runs a task with
//! the state at enqueue, or fails it with the same message when there is none.

use super::env::{output_text, wait_with_deadline, Env, Store};
use serde_json::{json, Value};
use std::process::{Command, Output, Stdio};
use taskhost::{task_backends, TaskResultStatus};
use taskhost_plugin_api::TaskDescription;

/// Enqueue the worker app's `greet` or `async_greet` with `args` on the env's store.
fn enqueue(name: &str, args: Value) -> String {
    let description = TaskDescription {
        path: format!("taskhost_worker_app::{name}").into(),
        priority: 0,
        queue_name: "default".into(),
        backend: "default".into(),
        run_after: None,
        takes_context: false,
        is_async: name == "async_greet",
        max_attempts: None,
        timeout_secs: None,
    };
    let Value::Array(args) = args else {
        panic!("args must be an array")
    };
    let backend = task_backends().get("default").unwrap();
    let result = backend
        .enqueue_json(&description, args, Default::default())
        .unwrap();
    result.id().to_string()
}

/// Run the worker app with `--config <env's config> args`, `$TASKHOST_TEST_STATE` set to
/// `state` (unless empty) and the state builds recorded in `<dir>/state.log`; returns its pid
/// and output.
fn run_app(env: &Env, args: &[&str], state: &str) -> (u32, Output) {
    run_command(env, env.command(args), state)
}

fn run_command(env: &Env, mut command: Command, state: &str) -> (u32, Output) {
    command
        .env("TASKHOST_TEST_GREETING", "bonjour")
        .env("TASKHOST_TEST_STATE_LOG", state_log(env));
    if !state.is_empty() {
        command.env("TASKHOST_TEST_STATE", state);
    }
    let child = command.spawn().unwrap();
    let pid = child.id();
    (pid, wait_with_deadline(child))
}

fn state_log(env: &Env) -> std::path::PathBuf {
    env.dir.path().join("state.log")
}

/// The state builds recorded so far.
fn builds(env: &Env) -> Vec<String> {
    std::fs::read_to_string(state_log(env))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The message naming a task of the worker app and a state type it takes.
fn missing(task: &str, ty: &str) -> String {
    format!(
        "task 'taskhost_worker_app::{task}' takes `State<taskhost_worker_app::{ty}>`, but no \
         `taskhost_worker_app::{ty}` was provided to this process's application state"
    )
}

const WORKER: &[&str] = &[
    "worker",
    "--batch",
    "--no-startup-delay",
    "--concurrency",
    "1",
];

fn a_worker_passes_the_registered_state_to_sync_and_async_tasks(store: Store) {
    let env = Env::new(store, "");
    let greet = enqueue("greet", json!(["ada"]));
    let first = enqueue("async_greet", json!(["bob"]));
    let second = enqueue("async_greet", json!(["eve"]));
    let (pid, out) = run_app(&env, WORKER, "");
    assert!(out.status.success(), "{}", output_text(&out));
    // Built once, by the worker process, for every run.
    assert_eq!(builds(&env), [format!("state built {pid}")]);
    let value = |id: &str| {
        let result = env.result(id);
        assert_eq!(result.status(), TaskResultStatus::Successful, "{result:?}");
        result.return_value().unwrap()
    };
    assert_eq!(value(&greet), json!("bonjour, ada"));
    // One `RunCounter`, shared by both runs.
    let mut async_runs = [value(&first), value(&second)];
    async_runs.sort_by_key(|v| v.to_string().contains("eve"));
    assert_eq!(
        async_runs,
        [
            json!(format!("bonjour, bob (run 1 in {pid})")),
            json!(format!("bonjour, eve (run 2 in {pid})"))
        ]
    );
}

fn a_worker_without_the_state_its_tasks_take_is_refused_at_start(store: Store) {
    let env = Env::new(store, "");
    let id = enqueue("greet", json!(["ada"]));
    let (pid, out) = run_app(&env, WORKER, "none");
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_eq!(builds(&env), [format!("state built {pid}")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let refusal = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {text}"));
    // Every task and type, in task path order, then what to do.
    assert_eq!(
        refusal,
        format!(
            "error: {}; {}; {}; register the value at start: `cli_main!(state = || \
             AppState::new().with(value))` in the binary's main, or \
             `task_backends().set_state(AppState::new().with(value))` before building the \
             worker",
            missing("async_greet", "Greeter"),
            missing("async_greet", "RunCounter"),
            missing("greet", "Greeter"),
        )
    );
    assert!(!text.contains("panicked"), "{text}");
    // Nothing was claimed.
    let result = env.result(&id);
    assert_eq!(result.status(), TaskResultStatus::Ready);
    assert_eq!(result.attempts(), 0);

    // A builder that fails stops the worker too, with the builder's error.
    let (_, out) = run_app(&env, WORKER, "fail");
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).lines().any(|l| l
            == "error: could not build the application state: TASKHOST_TEST_STATE=fail: the \
                greeting service is down"),
        "{}",
        output_text(&out)
    );
    assert_eq!(env.result(&id).status(), TaskResultStatus::Ready);

    // With the state, the same store's task runs.
    let (_, out) = run_app(&env, WORKER, "");
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(env.result(&id).status(), TaskResultStatus::Successful);
}

fn check_names_each_task_and_state_type_it_lacks(store: Store) {
    let env = Env::new(store, "");
    let (_, out) = run_app(&env, &["check"], "none");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let hint = ": add it to the builder of this binary's `cli_main!(state = ..)`";
    let state_lines: Vec<&str> = stdout.lines().filter(|l| l.contains("`State<")).collect();
    assert_eq!(
        state_lines,
        [
            format!("error: {}{hint}", missing("async_greet", "Greeter")),
            format!("error: {}{hint}", missing("async_greet", "RunCounter")),
            format!("error: {}{hint}", missing("greet", "Greeter")),
        ],
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("taskhost check: 3 error(s) in ")),
        "{stdout}"
    );
    // Built by `check` itself, not by the processes it inspects the plugin files in.
    assert_eq!(builds(&env).len(), 1);

    let (_, out) = run_app(&env, &["check"], "");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(
        stdout
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("taskhost check: 2 backend(s) OK from ")),
        "{stdout}"
    );
}

macro_rules! on_both_stores {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $test() {
                super::$test(super::Store::Sqlite)
            })*
        }
        mod postgres {
            $(#[test]
            fn $test() {
                super::$test(super::Store::Postgres)
            })*
        }
    };
}

on_both_stores!(
    a_worker_passes_the_registered_state_to_sync_and_async_tasks,
    a_worker_without_the_state_its_tasks_take_is_refused_at_start,
    check_names_each_task_and_state_type_it_lacks,
);

/// The Immediate backend's plugin file runs the task inside `enqueue`, in the worker app's
/// process: with the state its builder made, or failing the run (not panicking) without it.
#[test]
fn the_immediate_backend_runs_the_task_with_the_state_or_fails_it_naming_the_type() {
    let env = Env::new(Store::Sqlite, "");
    let config = env.dir.path().join("immediate.toml");
    std::fs::write(
        &config,
        format!(
            "plugin_dirs = [{}]\n[tasks.default]\nbackend = \
             \"taskhost.backends.immediate.ImmediateBackend\"\n",
            json!(taskhost_e2e::plugin_dir().display().to_string())
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let enqueue = |state: &str| {
        let mut command = Command::new(taskhost_e2e::build::worker_app_bin());
        command
            .args([
                "--config",
                &config,
                "enqueue",
                "taskhost_worker_app::async_greet",
            ])
            .args(["--args", r#"["ada"]"#, "--format", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let (pid, out) = run_command(&env, command, state);
        assert!(out.status.success(), "{}", output_text(&out));
        let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
        (pid, printed)
    };

    let (pid, printed) = enqueue("");
    assert_eq!(printed["status"], "SUCCESSFUL", "{printed}");
    assert_eq!(
        printed["return_value"],
        format!("bonjour, ada (run 1 in {pid})")
    );

    let (_, printed) = enqueue("none");
    assert_eq!(printed["status"], "FAILED", "{printed}");
    let error = &printed["errors"][0];
    assert_eq!(error["exception_class_path"], "taskhost::MissingState");
    let traceback = error["traceback"].as_str().unwrap();
    assert!(
        traceback.starts_with(&format!(
            "taskhost::MissingState: {}; register the value at start",
            missing("async_greet", "Greeter")
        )),
        "{traceback}"
    );
}
