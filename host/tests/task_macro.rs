//! What `#[task]` generates, for every shape of task function: the per-task value's accessors,
//! `call`/`acall`, registration by path, and the runner a worker uses. No backend is involved.

use serde_json::{json, Map, Value};
use taskhost::__private::run_blocking;
use taskhost::__private::{Invocation, Json, TaskOutcome};
use taskhost::{find_task, registered_tasks, task, TaskContext, TaskDefinition};

mod shapes {
    use super::*;
    use std::fmt;

    /// Adds three numbers.
    #[task]
    pub fn add(a: i64, b: i64, c: i64) -> i64 {
        a + b + c
    }

    #[task()]
    pub(crate) fn nothing() {}

    #[task(
        priority = -5,
        queue_name = "emails",
        backend = "fast",
        max_attempts = 3,
        timeout = 30
    )]
    pub fn length(text: String) -> std::io::Result<usize> {
        Ok(text.len())
    }

    #[task(priority = 100, timeout = 2.5, takes_context = false)]
    #[allow(clippy::unused_unit)]
    pub fn explicit_unit() -> () {}

    /// A task's own error type.
    #[derive(Debug)]
    pub struct Refused(pub String);

    impl fmt::Display for Refused {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "refused: {}", self.0)
        }
    }

    impl std::error::Error for Refused {}

    #[task(priority = -100)]
    pub fn refuse(reason: String) -> Result<u32, Refused> {
        Err(Refused(reason))
    }

    #[task]
    pub fn parse(text: String) -> anyhow::Result<i64> {
        Ok(text.trim().parse()?)
    }

    #[task]
    pub async fn double(n: u64) -> u64 {
        n * 2
    }

    #[task(takes_context)]
    pub async fn attempt_plus(context: TaskContext, n: usize) -> usize {
        context.attempt() + n
    }

    #[task(takes_context = true, queue_name = "ctx")]
    pub fn sync_with_context(context: TaskContext) -> usize {
        context.attempt()
    }

    #[task]
    #[allow(clippy::needless_pass_by_value)]
    fn pattern_params((a, b): (i32, i32), _: i32, arg0: i32) -> i32 {
        a * b + arg0
    }

    #[task]
    pub fn increment(mut x: i32) -> i32 {
        x += 1;
        x
    }

    #[task]
    pub fn r#match(r#type: String) -> String {
        format!("matched {type}")
    }

    #[task]
    pub fn panics() -> u8 {
        panic!("boom")
    }

    #[task]
    #[cfg(test)]
    pub fn kept() {}

    #[task]
    #[cfg(not(test))]
    pub fn removed() {}

    /// Used only from this module, through the generated value.
    pub fn call_private() -> i32 {
        pattern_params.call((2, 3), 0, 10)
    }

    pub fn private_path() -> &'static str {
        pattern_params.module_path()
    }
}

use shapes::*;

fn path_of(name: &str) -> String {
    format!("{}::shapes::{name}", module_path!())
}

fn run(definition: &TaskDefinition, args: Vec<Value>) -> TaskOutcome {
    let invocation = Invocation {
        args: Json::encode(&args).unwrap(),
        kwargs: Json::empty_object(),
        context: None,
        state: Default::default(),
    };
    run_blocking(definition, invocation)
}

fn success(outcome: TaskOutcome) -> Value {
    match outcome {
        TaskOutcome::Successful { return_value } => return_value.parse().unwrap(),
        TaskOutcome::Failed { error } => panic!("task failed: {error:?}"),
    }
}

fn failure(outcome: TaskOutcome) -> (String, String) {
    match outcome {
        TaskOutcome::Failed { error } => {
            (error.exception_class_path.into(), error.traceback.into())
        }
        TaskOutcome::Successful { return_value } => panic!("task succeeded: {return_value}"),
    }
}

#[test]
fn plain_task_has_django_defaults() {
    assert_eq!(add.name(), "add");
    assert_eq!(add.module_path(), path_of("add"));
    assert_eq!(add.priority(), 0);
    assert_eq!(add.queue_name(), "default");
    assert_eq!(add.backend(), "default");
    assert_eq!(add.run_after(), None);
    assert!(!add.takes_context());
    assert!(!add.is_async());
    assert_eq!(add.definition().max_attempts, None);
    assert_eq!(add.definition().timeout_secs, None);
    assert_eq!(add.task().name(), "add");
}

#[test]
fn options_become_the_task_defaults() {
    assert_eq!(length.priority(), -5);
    assert_eq!(length.queue_name(), "emails");
    assert_eq!(length.backend(), "fast");
    assert_eq!(length.definition().max_attempts, Some(3));
    assert_eq!(length.definition().timeout_secs, Some(30.0));
    assert_eq!(explicit_unit.priority(), 100);
    assert_eq!(explicit_unit.definition().timeout_secs, Some(2.5));
    assert!(!explicit_unit.takes_context());
    assert_eq!(refuse.priority(), -100);
    assert!(attempt_plus.takes_context());
    assert!(sync_with_context.takes_context());
    assert_eq!(sync_with_context.queue_name(), "ctx");
}

#[test]
fn call_runs_the_function_now() {
    assert_eq!(add.call(1, 2, 3), 6);
    nothing.call();
    explicit_unit.call();
    assert_eq!(length.call("four".to_string()).unwrap(), 4);
    assert_eq!(
        refuse.call("no".into()).unwrap_err().to_string(),
        "refused: no"
    );
    assert_eq!(parse.call(" 42 ".into()).unwrap(), 42);
    assert_eq!(double.call(21), 42);
    assert_eq!(call_private(), 16);
    assert_eq!(increment.call(1), 2);
    assert_eq!(r#match.call("x".into()), "matched x");
    kept.call();
}

#[tokio::test]
async fn acall_runs_the_function_now() {
    assert_eq!(add.acall(1, 2, 3).await, 6);
    assert_eq!(double.acall(5).await, 10);
    assert_eq!(length.acall("abc".into()).await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_of_an_async_task_blocks_inside_a_runtime() {
    assert_eq!(double.call(4), 8);
}

#[test]
fn context_parameter_is_part_of_call_but_not_of_enqueue() {
    let _call: fn(&attempt_plus, TaskContext, usize) -> _ = attempt_plus::call;
    let _call: fn(&sync_with_context, TaskContext) -> usize = sync_with_context::call;
    let _args: &taskhost::Task<(usize,), usize> = attempt_plus.task();
    let _args: &taskhost::Task<(), usize> = sync_with_context.task();
}

#[test]
fn generated_types_name_the_stored_arguments_and_value() {
    let _: &taskhost::Task<(i64, i64, i64), i64> = add.task();
    let _: &taskhost::Task<(), ()> = nothing.task();
    let _: &taskhost::Task<(String,), usize> = length.task();
    let _: &taskhost::Task<(String,), u32> = refuse.task();
    let _: &taskhost::Task<(String,), i64> = parse.task();
    let _: &taskhost::Task<(u64,), u64> = double.task();
}

#[test]
fn every_task_is_registered_under_its_path() {
    let names = [
        "add",
        "nothing",
        "length",
        "explicit_unit",
        "refuse",
        "parse",
        "double",
        "attempt_plus",
        "sync_with_context",
        "pattern_params",
        "increment",
        "match",
        "panics",
        "kept",
    ];
    for name in names {
        let definition = find_task(&path_of(name)).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(definition.name, name);
        assert_eq!(definition.path, path_of(name));
    }
    assert_eq!(shapes::private_path(), path_of("pattern_params"));
    assert!(find_task(&path_of("removed")).is_none());
    assert!(std::ptr::eq(
        find_task(&path_of("add")).unwrap(),
        add.definition()
    ));
    let registered = registered_tasks();
    assert!(registered
        .iter()
        .any(|d| d.path == path_of("double") && d.is_async()));
}

#[test]
fn runner_decodes_arguments_and_stores_the_value() {
    assert_eq!(
        success(run(add.definition(), vec![json!(1), json!(2), json!(3)])),
        json!(6)
    );
    assert_eq!(success(run(nothing.definition(), vec![])), Value::Null);
    assert_eq!(
        success(run(length.definition(), vec![json!("abcd")])),
        json!(4)
    );
    assert_eq!(success(run(double.definition(), vec![json!(8)])), json!(16));
    assert_eq!(
        success(run(r#match.definition(), vec![json!("y")])),
        json!("matched y")
    );
    let pattern = find_task(&path_of("pattern_params")).unwrap();
    assert_eq!(
        success(run(pattern, vec![json!([2, 3]), json!(0), json!(1)])),
        json!(7)
    );
}

#[test]
fn runner_stores_an_err_as_a_failure_with_the_error_type() {
    let (class, traceback) = failure(run(refuse.definition(), vec![json!("late")]));
    assert_eq!(class, format!("{}::shapes::Refused", module_path!()));
    assert!(traceback.ends_with(": refused: late\n"), "{traceback}");
    let (class, _) = failure(run(parse.definition(), vec![json!("x")]));
    assert_eq!(class, "anyhow::Error");
}

#[test]
fn runner_turns_a_panic_into_a_failure() {
    let (class, traceback) = failure(run(panics.definition(), vec![]));
    assert_eq!(class, "panic");
    assert!(traceback.ends_with("panic: boom\n"), "{traceback}");
}

#[test]
fn runner_refuses_arguments_that_do_not_fit() {
    let (class, traceback) = failure(run(add.definition(), vec![json!(1)]));
    assert_eq!(class, "taskhost::UnsupportedValue");
    assert!(traceback.contains(&path_of("add")), "{traceback}");
    let (class, traceback) = failure(run(nothing.definition(), vec![json!(1), json!(2)]));
    assert_eq!(class, "taskhost::UnsupportedValue");
    assert_eq!(
        traceback,
        format!(
            "taskhost::UnsupportedValue: task '{}' takes no arguments, got 2\n",
            path_of("nothing")
        )
    );
    let mut kwargs = Map::new();
    kwargs.insert("x".into(), json!(1));
    let invocation = Invocation {
        args: Json::empty_array(),
        kwargs: Json::encode(&kwargs).unwrap(),
        context: None,
        state: Default::default(),
    };
    let (class, _) = failure(run_blocking(nothing.definition(), invocation));
    assert_eq!(class, "taskhost::UnsupportedValue");
}

#[test]
fn runner_of_a_context_task_needs_a_context() {
    for definition in [attempt_plus.definition(), sync_with_context.definition()] {
        let args = if definition.is_async() {
            vec![json!(1)]
        } else {
            vec![]
        };
        let (class, traceback) = failure(run(definition, args));
        assert_eq!(class, "taskhost::RunError");
        assert_eq!(
            traceback,
            format!(
                "taskhost::RunError: task '{}' takes a context but none was given\n",
                definition.path
            )
        );
    }
}

#[test]
fn task_values_compare_clone_and_debug() {
    let copy = add.clone();
    assert_eq!(copy, add);
    assert!(format!("{add:?}").contains(&path_of("add")));
}
