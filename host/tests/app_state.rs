//! Application state through the public API: what `#[task]` records and passes for `State<T>`
//! parameters, the runner's failure when a type is missing, the Immediate backend running a
//! task with the handler's state, and `Worker::new` refusing to start without it. (Real worker
//! processes on SQLite and PostgreSQL: `tests/e2e/worker/state.rs`.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use taskhost::__private::{run_blocking, Invocation, Json, TaskOutcome};
use taskhost::{
    check_state, override_task_backends, task, AppState, Config, Error, MissingState, State,
    TaskContext, TaskResultStatus, Worker, WorkerOptions,
};

/// Settings registered once.
struct Settings {
    greeting: String,
}

/// A shared counter: one value for every run.
#[derive(Default)]
struct Runs {
    count: AtomicUsize,
}

/// A service behind a trait object.
trait Clock: Send + Sync {
    fn now(&self) -> u64;
}

struct Fixed(u64);
impl Clock for Fixed {
    fn now(&self) -> u64 {
        self.0
    }
}

#[task]
fn greet(settings: State<Settings>, name: String) -> String {
    format!("{}, {name}", settings.greeting)
}

/// State anywhere among the arguments, several of them, and a trait object.
#[task]
async fn stamp(
    name: String,
    runs: State<Runs>,
    times: u64,
    clock: State<dyn Clock>,
) -> (String, usize, u64) {
    let run = runs.count.fetch_add(1, Ordering::SeqCst) + 1;
    (name, run, clock.now() * times)
}

#[task(takes_context)]
fn attempt_and_greeting(context: TaskContext, settings: State<Settings>) -> String {
    format!("{} {}", context.attempt(), settings.greeting)
}

fn state() -> AppState {
    AppState::new()
        .with(Settings {
            greeting: "hello".into(),
        })
        .with(Runs::default())
        .with_arc::<dyn Clock>(Arc::new(Fixed(7)))
}

fn run(
    definition: &taskhost::TaskDefinition,
    args: &[serde_json::Value],
    state: AppState,
) -> TaskOutcome {
    let invocation = Invocation {
        args: Json::encode(&args).unwrap(),
        kwargs: Json::empty_object(),
        context: None,
        state,
    };
    run_blocking(definition, invocation)
}

fn value(outcome: TaskOutcome) -> serde_json::Value {
    match outcome {
        TaskOutcome::Successful { return_value } => return_value.parse().unwrap(),
        TaskOutcome::Failed { error } => panic!("failed: {error:?}"),
    }
}

/// The message naming a task of this file and the type it lacks.
fn missing(task: &str, ty: &str) -> String {
    format!(
        "task 'app_state::{task}' takes `State<{ty}>`, but no `{ty}` was provided to this \
         process's application state"
    )
}

#[test]
fn the_definition_records_the_state_types_and_enqueue_takes_only_the_stored_arguments() {
    let types = |d: &taskhost::TaskDefinition| -> Vec<String> {
        d.state.iter().map(|t| format!("{t:?}")).collect()
    };
    assert_eq!(types(greet.definition()), ["app_state::Settings"]);
    assert_eq!(
        types(stamp.definition()),
        ["app_state::Runs", "dyn app_state::Clock"]
    );
    // The task's argument tuple has no state in it.
    let _: &taskhost::Task<(String,), String> = greet.task();
    let _: &taskhost::Task<(String, u64), (String, usize, u64)> = stamp.task();
    // `call` takes every parameter as written.
    let settings = State::new(Settings {
        greeting: "hi".into(),
    });
    assert_eq!(greet.call(settings, "ada".into()), "hi, ada");
    let clock: Arc<dyn Clock> = Arc::new(Fixed(2));
    let clock = State(clock);
    assert_eq!(
        stamp.call("x".into(), State::new(Runs::default()), 3, clock),
        ("x".to_string(), 1, 6)
    );
}

#[test]
fn the_runner_passes_one_shared_value_per_type_in_the_order_written() {
    let state = state();
    assert_eq!(
        value(run(
            greet.definition(),
            &[serde_json::json!("ada")],
            state.clone()
        )),
        "hello, ada"
    );
    let args = [serde_json::json!("a"), serde_json::json!(3)];
    assert_eq!(
        value(run(stamp.definition(), &args, state.clone())),
        serde_json::json!(["a", 1, 21])
    );
    assert_eq!(
        value(run(stamp.definition(), &args, state)),
        serde_json::json!(["a", 2, 21])
    );
}

#[test]
fn a_run_without_the_state_fails_naming_the_task_and_the_type() {
    let only_settings = AppState::new().with(Settings {
        greeting: "hello".into(),
    });
    let args = [serde_json::json!("a"), serde_json::json!(3)];
    match run(stamp.definition(), &args, only_settings) {
        TaskOutcome::Failed { error } => {
            assert_eq!(
                error.exception_class_path.as_str(),
                "taskhost::MissingState"
            );
            assert!(
                error.traceback.starts_with(&format!(
                    "taskhost::MissingState: {}; register the value at start",
                    missing("stamp", "app_state::Runs")
                )),
                "{}",
                error.traceback.as_str()
            );
        }
        other => panic!("ran: {other:?}"),
    }
}

#[test]
fn check_state_lists_every_task_and_type_missing_in_path_order() {
    assert_eq!(check_state(&state()), Ok(()));
    let Err(Error::MissingState(missing_now)) = check_state(&AppState::new().with(Runs::default()))
    else {
        panic!("no error")
    };
    let shown: Vec<String> = missing_now.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            missing("attempt_and_greeting", "app_state::Settings"),
            missing("greet", "app_state::Settings"),
            missing("stamp", "dyn app_state::Clock"),
        ]
    );
    assert_eq!(
        missing_now[0],
        MissingState {
            task: "app_state::attempt_and_greeting".into(),
            type_name: "app_state::Settings".into()
        }
    );
}

/// Immediate, built in (no plugin file in the plugin dir), under an override of this thread.
fn immediate() -> (tempfile::TempDir, taskhost::OverrideGuard) {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "plugin_dirs = [{:?}]\n[tasks.default]\nbackend = \"taskhost.backends.immediate.ImmediateBackend\"\n",
        dir.path().display().to_string()
    );
    let config = Config::from_toml_str(&toml, None, dir.path()).unwrap();
    (dir, override_task_backends(config))
}

#[test]
fn the_immediate_backend_runs_the_task_with_the_handlers_state_set_before_or_after_loading() {
    let (_dir, guard) = immediate();
    // Loaded before the state is set: the backend's callbacks see the state set later.
    taskhost::default_task_backend().unwrap();
    let failed = greet.enqueue("ada".into()).unwrap();
    assert_eq!(failed.status(), TaskResultStatus::Failed);
    assert_eq!(
        failed.errors()[0].exception_class_path.as_str(),
        "taskhost::MissingState"
    );
    guard.handler().set_state(state());
    let result = greet.enqueue("ada".into()).unwrap();
    assert_eq!(result.return_value().unwrap(), "hello, ada");
    let result = attempt_and_greeting.enqueue().unwrap();
    assert_eq!(result.return_value().unwrap(), "1 hello");
}

#[test]
fn an_override_starts_with_the_state_of_the_handler_it_overrides() {
    let (_outer_dir, outer) = immediate();
    outer.handler().set_state(state());
    let (_dir, inner) = immediate();
    assert_eq!(
        greet.enqueue("bo".into()).unwrap().return_value().unwrap(),
        "hello, bo"
    );
    inner.handler().set_state(AppState::new());
    assert!(outer.handler().state().get::<Settings>().is_some());
    assert_eq!(
        greet.enqueue("bo".into()).unwrap().status(),
        TaskResultStatus::Failed
    );
}

#[test]
fn a_worker_is_refused_before_it_starts_when_a_task_lacks_its_state() {
    let (_dir, guard) = immediate();
    guard
        .handler()
        .set_state(AppState::new().with(Runs::default()));
    let Err(e) = Worker::new(WorkerOptions::new()) else {
        panic!("a worker was built")
    };
    assert!(
        matches!(e, Error::MissingState(ref m) if m.len() == 3),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with(&missing("attempt_and_greeting", "app_state::Settings")),
        "{e}"
    );
    // With the state, the next check is the backend's: Immediate is no queue store.
    guard.handler().set_state(state());
    let Err(e) = Worker::new(WorkerOptions::new()) else {
        panic!("a worker was built")
    };
    assert!(
        e.to_string().contains("is not a queue-store backend"),
        "{e}"
    );
}
