//! Turning what a task function did — returned a value, returned an error, panicked — into a
//! stored outcome, and running a task definition from stored JSON.

use crate::definition::{BoxTaskFuture, Invocation, TaskDefinition, TaskRunner};
use crate::error::{MissingState, PROVIDE_STATE};
use crate::json::to_storable;
use crate::state::{AppState, State};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;
use std::any::Any;
use std::cell::RefCell;
use std::error::Error as StdError;
use std::fmt::Write as _;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Once;
use std::task::{Context, Poll};
use taskhost_plugin_api::{Json, TaskError, TaskOutcome};

/// `exception_class_path` of a task that panicked.
pub const PANIC_CLASS_PATH: &str = "panic";
/// `exception_class_path` of a run whose arguments or return value could not be (de)coded.
pub const UNSUPPORTED_VALUE_CLASS_PATH: &str = "taskhost::UnsupportedValue";

/// `exception_class_path` of a run whose task takes `State<T>` of a type nobody provided.
pub const MISSING_STATE_CLASS_PATH: &str = "taskhost::MissingState";

/// The `State<T>` parameter of task `path` from `state`; a failure outcome naming the task and
/// the type when `state` has no `T` (a worker refuses to start then, so this is a task run in
/// process, by the Immediate backend, whose enqueue runs it).
pub fn take_state<T: ?Sized + Send + Sync + 'static>(
    path: &str,
    state: &AppState,
) -> Result<State<T>, TaskOutcome> {
    state.get::<T>().ok_or_else(|| {
        let missing = MissingState {
            task: path.to_string(),
            type_name: std::any::type_name::<T>().to_string(),
        };
        failure(
            MISSING_STATE_CLASS_PATH,
            &format!("{missing}; {PROVIDE_STATE}"),
            "",
        )
    })
}

/// A failure outcome with Django's traceback shape: details, then `"<class>: <message>\n"`.
pub fn failure(class_path: &str, message: &str, details: &str) -> TaskOutcome {
    let mut traceback = String::from(details);
    if !traceback.is_empty() && !traceback.ends_with('\n') {
        traceback.push('\n');
    }
    let _ = writeln!(traceback, "{class_path}: {message}");
    TaskOutcome::Failed {
        error: TaskError {
            exception_class_path: class_path.to_string().into(),
            traceback: traceback.into(),
        },
    }
}

/// The outcome of a function that returned a plain value.
pub fn from_value<T: Serialize>(value: T) -> TaskOutcome {
    match to_storable(&value) {
        Ok(return_value) => TaskOutcome::Successful {
            return_value: Json::from_stored(return_value.to_string()),
        },
        Err(reason) => failure(
            UNSUPPORTED_VALUE_CLASS_PATH,
            &reason.replace("at $", "at return value"),
            "",
        ),
    }
}

/// The outcome of a function that returned a `Result`: `Err(e)` is a failure whose class path is
/// `E`'s type path and whose traceback lists the cause chain.
pub fn from_result<T, E>(result: Result<T, E>) -> TaskOutcome
where
    T: Serialize,
    E: Into<Box<dyn StdError + Send + Sync>>,
{
    match result {
        Ok(value) => from_value(value),
        Err(err) => {
            let class_path = std::any::type_name::<E>();
            let err: Box<dyn StdError + Send + Sync> = err.into();
            let mut causes = Vec::new();
            let mut source = err.source();
            while let Some(cause) = source {
                causes.push(cause.to_string());
                source = cause.source();
            }
            let mut details = String::new();
            if !causes.is_empty() {
                details.push_str("Caused by (innermost first):\n");
                for cause in causes.iter().rev() {
                    let _ = writeln!(details, "    {cause}");
                }
            }
            failure(class_path, &err.to_string(), &details)
        }
    }
}

/// Decode stored positional arguments (a JSON array) into the task's parameter tuple, in one
/// pass over the text. Tasks from Rust take no keyword arguments; stored ones are refused.
pub fn decode_args<A: DeserializeOwned>(
    path: &str,
    args: &Json,
    kwargs: &Json,
) -> Result<A, TaskOutcome> {
    refuse_kwargs(path, kwargs)?;
    args.parse().map_err(|e| {
        failure(
            UNSUPPORTED_VALUE_CLASS_PATH,
            &format!("the stored arguments do not fit task '{path}': {e}"),
            "",
        )
    })
}

/// For a task without parameters: refuses any stored argument.
pub fn no_args(path: &str, args: &Json, kwargs: &Json) -> Result<(), TaskOutcome> {
    if args.is_empty_container() && kwargs.is_empty_container() {
        return Ok(());
    }
    refuse_kwargs(path, kwargs)?;
    let count = args.parse::<Vec<serde::de::IgnoredAny>>().map_or_else(
        |_| "unreadable arguments".to_string(),
        |a| a.len().to_string(),
    );
    Err(failure(
        UNSUPPORTED_VALUE_CLASS_PATH,
        &format!("task '{path}' takes no arguments, got {count}"),
        "",
    ))
}

fn refuse_kwargs(path: &str, kwargs: &Json) -> Result<(), TaskOutcome> {
    if kwargs.is_empty_container() {
        return Ok(());
    }
    let message = match kwargs.parse::<serde_json::Map<String, Value>>() {
        Ok(map) if map.is_empty() => return Ok(()),
        Ok(map) => {
            let keys: Vec<&str> = map.keys().map(String::as_str).collect();
            format!(
                "task '{path}' takes no keyword arguments, got: {}",
                keys.join(", ")
            )
        }
        Err(e) => format!("the stored keyword arguments of task '{path}' are unreadable: {e}"),
    };
    Err(failure(UNSUPPORTED_VALUE_CLASS_PATH, &message, ""))
}

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Install (once) a panic hook that remembers where the last panic on this thread happened and
/// its backtrace (when `RUST_BACKTRACE` asks for one), then calls the previous hook.
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let mut details = String::new();
            if let Some(loc) = info.location() {
                let _ = writeln!(
                    details,
                    "panicked at {}:{}:{}",
                    loc.file(),
                    loc.line(),
                    loc.column()
                );
            }
            let backtrace = std::backtrace::Backtrace::capture();
            if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
                let _ = writeln!(details, "stack backtrace:\n{backtrace}");
            }
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(details));
            previous(info);
        }));
    });
}

fn panic_outcome(payload: Box<dyn Any + Send>) -> TaskOutcome {
    let message = taskhost_plugin_api::abi::guard::panic_message(payload.as_ref());
    let details = LAST_PANIC
        .with(|p| p.borrow_mut().take())
        .unwrap_or_default();
    failure(PANIC_CLASS_PATH, &message, &details)
}

/// Run a synchronous task body, turning a panic into a failure outcome.
pub fn catch_sync(body: impl FnOnce() -> TaskOutcome) -> TaskOutcome {
    install_panic_hook();
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(panic_outcome)
}

/// Run an asynchronous task body, turning a panic (in any poll) into a failure outcome.
pub fn catch_async<F>(body: F) -> BoxTaskFuture
where
    F: Future<Output = TaskOutcome> + Send + 'static,
{
    install_panic_hook();
    Box::pin(CatchUnwind(Box::pin(body)))
}

struct CatchUnwind(Pin<Box<dyn Future<Output = TaskOutcome> + Send>>);

impl Future for CatchUnwind {
    type Output = TaskOutcome;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TaskOutcome> {
        let inner = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => Poll::Ready(panic_outcome(payload)),
        }
    }
}

/// Run a task definition in the calling thread: an `async fn` is driven to completion here
/// (inside a multi-thread tokio runtime through `block_in_place`, otherwise on a private
/// current-thread runtime).
pub fn run_blocking(definition: &TaskDefinition, invocation: Invocation) -> TaskOutcome {
    match definition.runner {
        TaskRunner::Sync(run) => run(invocation),
        TaskRunner::Async(run) => block_on(run(invocation)),
    }
}

/// Drive a future to completion from synchronous code: inside a multi-thread tokio runtime
/// through `block_in_place`, inside a current-thread runtime on a helper thread, otherwise on a
/// private current-thread runtime of this thread.
pub fn block_on<F>(future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(future))
        }
        Ok(_) => {
            std::thread::scope(
                |s| match s.spawn(|| private_runtime_block_on(future)).join() {
                    Ok(output) => output,
                    Err(payload) => std::panic::resume_unwind(payload),
                },
            )
        }
        Err(_) => private_runtime_block_on(future),
    }
}

fn private_runtime_block_on<F: Future>(future: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread tokio runtime can always be built");
    }
    RUNTIME.with(|rt| rt.block_on(future))
}
