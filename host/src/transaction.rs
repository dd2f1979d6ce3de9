//! Transaction scopes and `on_commit`: Django's `transaction.atomic`, without a database.
//!
//! - [`atomic`] / [`aatomic`] open a scope: `Ok` commits, `Err` or a panic rolls back. Scopes
//!   nest; an inner scope behaves like a savepoint.
//! - [`on_commit`] registers a callback that runs when the outermost scope commits, and is
//!   dropped if an enclosing scope rolls back. Outside any scope it runs at once.
//! - [`in_atomic_block`] tells whether a scope is open.
//!
//! The host uses them for `enqueue_on_commit`: an enqueue inside a scope reaches its backend at
//! the outermost commit, and never if the scope rolls back.
//!
//! Sync scopes live on a thread-local stack. Async scopes live on a tokio task-local stack, so
//! they follow the task across `.await` points and worker threads; a sync [`atomic`] called
//! inside an [`aatomic`] future nests in it. The scopes of one task must nest: do not poll two
//! `aatomic` futures side by side in one task (`join!`, `select!`); spawn a task for each.

use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};

/// A callback waiting for a commit.
type Callback = Box<dyn FnOnce() + Send + 'static>;

/// One open scope and the callbacks registered inside it (or committed into it by its children).
struct Frame {
    id: u64,
    callbacks: Vec<Callback>,
}

/// The open scopes of a thread or a task, innermost last.
struct ScopeStack {
    frames: Vec<Frame>,
    next_id: u64,
}

impl ScopeStack {
    const fn new() -> Self {
        Self {
            frames: Vec::new(),
            next_id: 0,
        }
    }

    /// Opens a frame and returns its id.
    fn push(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.frames.push(Frame {
            id,
            callbacks: Vec::new(),
        });
        id
    }

    /// Closes the frame `id` and returns its callbacks (none if it is already gone).
    fn remove(&mut self, id: u64) -> Vec<Callback> {
        match self.frames.iter().rposition(|frame| frame.id == id) {
            Some(index) => self.frames.remove(index).callbacks,
            None => Vec::new(),
        }
    }
}

thread_local! {
    static SYNC_STACK: RefCell<ScopeStack> = const { RefCell::new(ScopeStack::new()) };
}

tokio::task_local! {
    static ASYNC_STACK: RefCell<ScopeStack>;
}

/// Which stack a frame lives on.
#[derive(Clone, Copy)]
enum Which {
    /// The thread's stack, for sync scopes outside any async scope.
    Thread,
    /// The task's stack, set up by the outermost [`aatomic`].
    Task,
}

/// Looks for the open scopes: the task's stack first, then the thread's.
const INNERMOST_FIRST: [Which; 2] = [Which::Task, Which::Thread];

/// Runs `f` on a stack; `None` when that stack is unavailable (no async scope in this task, or
/// the thread is exiting). Never call user code from `f`: the stack is borrowed.
fn with_stack<R>(which: Which, f: impl FnOnce(&mut ScopeStack) -> R) -> Option<R> {
    let f = |cell: &RefCell<ScopeStack>| f(&mut cell.borrow_mut());
    match which {
        Which::Thread => SYNC_STACK.try_with(f).ok(),
        Which::Task => ASYNC_STACK.try_with(f).ok(),
    }
}

/// The stack a new sync scope goes on: the task's inside an async scope, else the thread's.
fn current_stack() -> Which {
    if ASYNC_STACK.try_with(|_| ()).is_ok() {
        Which::Task
    } else {
        Which::Thread
    }
}

/// An open scope's frame. Dropping it without [`FrameGuard::close`] (a panic unwinding through
/// the scope, a cancelled future) rolls the scope back and leaves the stack as it was.
struct FrameGuard {
    which: Which,
    id: u64,
    closed: bool,
}

impl FrameGuard {
    fn open(which: Which) -> Self {
        let id = with_stack(which, ScopeStack::push)
            .expect("taskhost: the transaction scope stack is unavailable");
        Self {
            which,
            id,
            closed: false,
        }
    }

    /// Closes the scope and returns the callbacks waiting on it.
    fn close(mut self) -> Vec<Callback> {
        self.closed = true;
        with_stack(self.which, |stack| stack.remove(self.id)).unwrap_or_default()
    }
}

impl Drop for FrameGuard {
    fn drop(&mut self) {
        if !self.closed {
            // Dropped here, after the borrow ends: a callback's destructor may touch the stack.
            let rolled_back = with_stack(self.which, |stack| stack.remove(self.id));
            drop(rolled_back);
        }
    }
}

/// Hands `callbacks` to the innermost open scope; gives them back when no scope is open.
fn defer_to_enclosing(mut callbacks: Vec<Callback>) -> Result<(), Vec<Callback>> {
    for which in INNERMOST_FIRST {
        let deferred = with_stack(which, |stack| match stack.frames.last_mut() {
            Some(top) => {
                top.callbacks.append(&mut callbacks);
                true
            }
            None => false,
        });
        if deferred == Some(true) {
            return Ok(());
        }
    }
    Err(callbacks)
}

/// Commits a scope's callbacks: into the enclosing scope if there is one, else runs them now.
fn commit(callbacks: Vec<Callback>) {
    if let Err(callbacks) = defer_to_enclosing(callbacks) {
        run_robustly(callbacks);
    }
}

/// Runs callbacks in order; a panicking one is logged and the rest still run (Django's
/// `robust=True`).
fn run_robustly(callbacks: Vec<Callback>) {
    for callback in callbacks {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(callback)) {
            tracing::error!(
                target: "taskhost",
                "on_commit callback panicked: {}",
                panic_message(&*payload)
            );
        }
    }
}

/// The text of a panic payload, as the default panic hook would print it.
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("Box<dyn Any>")
}

/// Run `f` as a transaction scope: Ok commits, Err or a panic rolls back. Nestable (inner scopes are savepoints).
///
/// At the outermost commit the [`on_commit`] callbacks registered inside run in registration
/// order, after `f` has returned and outside the scope. An inner scope's `Ok` hands its callbacks
/// to the enclosing scope; its `Err` or panic drops only its own. A panic in `f` propagates
/// unchanged once the scope is rolled back.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use taskhost::{atomic, in_atomic_block, on_commit};
///
/// let log = Arc::new(Mutex::new(Vec::new()));
///
/// let entry = Arc::clone(&log);
/// let committed: Result<u32, String> = atomic(|| {
///     assert!(in_atomic_block());
///     on_commit(move || entry.lock().unwrap().push("committed"));
///     Ok(42)
/// });
/// assert_eq!(committed, Ok(42));
/// assert_eq!(*log.lock().unwrap(), ["committed"]);
///
/// let entry = Arc::clone(&log);
/// let rolled_back: Result<u32, String> = atomic(|| {
///     on_commit(move || entry.lock().unwrap().push("never"));
///     Err("rolled back".to_owned())
/// });
/// assert!(rolled_back.is_err());
/// assert_eq!(*log.lock().unwrap(), ["committed"]);
/// ```
pub fn atomic<T, E>(f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    let frame = FrameGuard::open(current_stack());
    let result = f();
    let callbacks = frame.close();
    if result.is_ok() {
        commit(callbacks);
    }
    result
}

/// The async form: the scope follows the future across threads/awaits (tokio task-local), not the OS thread.
///
/// Semantics are those of [`atomic`]. A panic in `f` propagates as usual (to the task's
/// `JoinHandle` when spawned) and drops the scope's callbacks; so does dropping the future
/// before it completes. A task spawned inside the scope is not part of it.
pub async fn aatomic<T, E, F>(f: F) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
{
    let (result, callbacks) = if ASYNC_STACK.try_with(|_| ()).is_ok() {
        task_frame(f).await
    } else {
        let stack = RefCell::new(ScopeStack::new());
        ASYNC_STACK.scope(stack, task_frame(f)).await
    };
    if result.is_ok() {
        commit(callbacks);
    }
    result
}

/// Runs `f` in a frame on the task's stack; returns its result and the callbacks waiting on it.
async fn task_frame<T, E>(f: impl Future<Output = Result<T, E>>) -> (Result<T, E>, Vec<Callback>) {
    let frame = FrameGuard::open(Which::Task);
    let result = f.await;
    (result, frame.close())
}

/// Register `f` to run when the outermost enclosing scope commits; outside any scope it runs at once (Django's behaviour). Dropped if an enclosing scope rolls back.
///
/// A panic in `f` is caught and logged on the `taskhost` target, whether `f` runs at a commit or
/// at once, so it never disturbs the other callbacks or the caller.
pub fn on_commit(f: impl FnOnce() + Send + 'static) {
    commit(vec![Box::new(f)]);
}

/// Whether the caller is inside a scope (sync or async).
pub fn in_atomic_block() -> bool {
    INNERMOST_FIRST
        .into_iter()
        .any(|which| with_stack(which, |stack| !stack.frames.is_empty()) == Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;
    use std::sync::Arc;

    /// Records which callbacks ran, in order.
    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<&'static str>>>);

    impl Log {
        /// A callback that records `entry`.
        fn record(&self, entry: &'static str) -> impl FnOnce() + Send + 'static {
            let log = self.clone();
            move || log.0.lock().push(entry)
        }

        fn entries(&self) -> Vec<&'static str> {
            self.0.lock().clone()
        }
    }

    fn ok() -> Result<(), &'static str> {
        Ok(())
    }

    fn err() -> Result<(), &'static str> {
        Err("rolled back")
    }

    /// Panics with `message` in a scope body's place.
    fn explode(message: &'static str) -> Result<(), &'static str> {
        panic::panic_any(message)
    }

    #[test]
    fn commit_runs_callbacks_once_in_registration_order() {
        let log = Log::default();
        let result = atomic(|| {
            on_commit(log.record("a"));
            on_commit(log.record("b"));
            on_commit(log.record("c"));
            assert!(log.entries().is_empty(), "nothing runs before the commit");
            Ok::<_, ()>(7)
        });
        assert_eq!(result, Ok(7));
        assert_eq!(log.entries(), ["a", "b", "c"]);

        atomic(ok).unwrap();
        assert_eq!(log.entries(), ["a", "b", "c"], "callbacks run only once");
    }

    #[test]
    fn err_drops_callbacks() {
        let log = Log::default();
        let result = atomic(|| {
            on_commit(log.record("a"));
            err()
        });
        assert_eq!(result, Err("rolled back"));
        assert!(log.entries().is_empty());
        assert!(!in_atomic_block());
    }

    #[test]
    fn panic_drops_callbacks_and_propagates() {
        let log = Log::default();
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            atomic(|| {
                on_commit(log.record("a"));
                explode("boom")
            })
        }));
        let payload = caught.expect_err("the panic propagates");
        assert_eq!(panic_message(&*payload), "boom");
        assert!(log.entries().is_empty());
        assert!(!in_atomic_block());

        atomic(|| {
            on_commit(log.record("after"));
            ok()
        })
        .unwrap();
        assert_eq!(log.entries(), ["after"]);
    }

    #[test]
    fn panic_through_nested_scopes_restores_the_stack() {
        let log = Log::default();
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            atomic(|| {
                on_commit(log.record("outer"));
                atomic(|| {
                    on_commit(log.record("middle"));
                    atomic(|| explode("deep"))
                })
            })
        }));
        assert!(caught.is_err());
        assert!(!in_atomic_block());
        assert!(log.entries().is_empty());

        on_commit(log.record("now"));
        assert_eq!(log.entries(), ["now"], "no frame was left behind");
    }

    #[test]
    fn nested_inner_err_keeps_outer_callbacks() {
        let log = Log::default();
        atomic(|| {
            on_commit(log.record("outer-before"));
            let inner = atomic(|| {
                on_commit(log.record("inner"));
                err()
            });
            assert!(inner.is_err());
            assert!(in_atomic_block(), "the outer scope is still open");
            on_commit(log.record("outer-after"));
            ok()
        })
        .unwrap();
        assert_eq!(log.entries(), ["outer-before", "outer-after"]);
    }

    #[test]
    fn nested_inner_panic_keeps_outer_callbacks() {
        let log = Log::default();
        atomic(|| {
            on_commit(log.record("outer"));
            let inner = panic::catch_unwind(AssertUnwindSafe(|| {
                atomic(|| {
                    on_commit(log.record("inner"));
                    explode("inner boom")
                })
            }));
            assert!(inner.is_err());
            assert!(in_atomic_block());
            ok()
        })
        .unwrap();
        assert_eq!(log.entries(), ["outer"]);
    }

    #[test]
    fn nested_inner_ok_defers_to_outer_commit() {
        let log = Log::default();
        atomic(|| {
            on_commit(log.record("outer-before"));
            atomic(|| {
                on_commit(log.record("inner"));
                ok()
            })
            .unwrap();
            assert!(log.entries().is_empty(), "the inner commit runs nothing");
            on_commit(log.record("outer-after"));
            ok()
        })
        .unwrap();
        assert_eq!(log.entries(), ["outer-before", "inner", "outer-after"]);
    }

    #[test]
    fn outer_err_drops_inner_committed_callbacks() {
        let log = Log::default();
        let result = atomic(|| {
            atomic(|| {
                on_commit(log.record("inner"));
                ok()
            })
            .unwrap();
            err()
        });
        assert!(result.is_err());
        assert!(log.entries().is_empty());
    }

    #[test]
    fn on_commit_outside_a_scope_runs_at_once() {
        let log = Log::default();
        on_commit(log.record("now"));
        assert_eq!(log.entries(), ["now"]);
    }

    #[test]
    fn in_atomic_block_reports_open_scopes() {
        assert!(!in_atomic_block());
        atomic(|| {
            assert!(in_atomic_block());
            atomic(|| {
                assert!(in_atomic_block());
                ok()
            })
            .unwrap();
            assert!(in_atomic_block());
            ok()
        })
        .unwrap();
        assert!(!in_atomic_block());
    }

    #[test]
    fn panicking_callback_is_logged_and_others_still_run() {
        let log = Log::default();
        let events = Arc::new(Mutex::new(Vec::new()));
        let subscriber = Capture(Arc::clone(&events));
        tracing::subscriber::with_default(subscriber, || {
            atomic(|| {
                on_commit(log.record("a"));
                on_commit(|| panic!("callback boom"));
                on_commit(log.record("c"));
                Ok::<_, ()>("value")
            })
        })
        .map(|value| assert_eq!(value, "value"))
        .unwrap();
        assert_eq!(log.entries(), ["a", "c"]);
        let events = events.lock();
        assert_eq!(events.len(), 1, "{events:?}");
        let (level, target, message) = &events[0];
        assert_eq!(*level, tracing::Level::ERROR);
        assert_eq!(target, "taskhost");
        assert_eq!(message, "on_commit callback panicked: callback boom");
    }

    #[test]
    fn callbacks_run_outside_the_scope() {
        let log = Log::default();
        let seen_in_block = Arc::new(Mutex::new(None));
        let seen = Arc::clone(&seen_in_block);
        let inner_log = log.clone();
        atomic(|| {
            on_commit(move || {
                *seen.lock() = Some(in_atomic_block());
                inner_log.0.lock().push("first");
                on_commit(inner_log.record("registered-by-first"));
            });
            on_commit(log.record("second"));
            ok()
        })
        .unwrap();
        assert_eq!(*seen_in_block.lock(), Some(false));
        assert_eq!(log.entries(), ["first", "registered-by-first", "second"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_scope_follows_the_task_across_awaits() {
        let log = Log::default();
        let task_log = log.clone();
        let task = tokio::spawn(async move {
            aatomic(async {
                for entry in ["a", "b", "c"] {
                    on_commit(task_log.record(entry));
                    tokio::task::yield_now().await;
                    assert!(in_atomic_block());
                }
                assert!(task_log.entries().is_empty());
                Ok::<_, ()>(3)
            })
            .await
        });
        assert_eq!(task.await.unwrap(), Ok(3));
        assert_eq!(log.entries(), ["a", "b", "c"]);
        assert!(!in_atomic_block());
    }

    #[tokio::test]
    async fn async_err_drops_callbacks_and_nested_ok_defers() {
        let log = Log::default();
        let result = aatomic(async {
            on_commit(log.record("dropped"));
            err()
        })
        .await;
        assert!(result.is_err());

        aatomic(async {
            aatomic(async {
                on_commit(log.record("inner"));
                ok()
            })
            .await
            .unwrap();
            assert!(log.entries().is_empty());
            let inner = aatomic(async {
                on_commit(log.record("inner-rolled-back"));
                err()
            })
            .await;
            assert!(inner.is_err());
            ok()
        })
        .await
        .unwrap();
        assert_eq!(log.entries(), ["inner"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_panic_drops_callbacks_and_propagates() {
        let log = Log::default();
        let task_log = log.clone();
        let joined = tokio::spawn(async move {
            aatomic(async {
                on_commit(task_log.record("dropped"));
                tokio::task::yield_now().await;
                explode("async boom")
            })
            .await
        })
        .await;
        let payload = joined.expect_err("the panic propagates").into_panic();
        assert_eq!(panic_message(&*payload), "async boom");
        assert!(log.entries().is_empty());
    }

    #[tokio::test]
    async fn cancelled_inner_scope_rolls_back() {
        let log = Log::default();
        aatomic(async {
            on_commit(log.record("outer"));
            let inner = aatomic(async {
                on_commit(log.record("cancelled"));
                std::future::pending::<Result<(), ()>>().await
            });
            tokio::select! {
                biased;
                () = tokio::task::yield_now() => {}
                _ = inner => unreachable!("the inner scope never finishes"),
            }
            ok()
        })
        .await
        .unwrap();
        assert_eq!(log.entries(), ["outer"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_tasks_have_separate_scopes() {
        let log = Log::default();
        let both_open = Arc::new(tokio::sync::Barrier::new(2));
        let (a_done, a_committed) = tokio::sync::oneshot::channel();

        let (a_log, a_open) = (log.clone(), Arc::clone(&both_open));
        let a = tokio::spawn(aatomic(async move {
            on_commit(a_log.record("a"));
            a_open.wait().await;
            ok()
        }));
        let (b_log, b_open) = (log.clone(), Arc::clone(&both_open));
        let b = tokio::spawn(aatomic(async move {
            on_commit(b_log.record("b"));
            b_open.wait().await;
            a_committed.await.unwrap();
            assert_eq!(b_log.entries(), ["a"], "a's commit ran only a's callback");
            assert!(in_atomic_block());
            err()
        }));

        a.await.unwrap().unwrap();
        assert!(!in_atomic_block(), "the test's own task has no scope");
        a_done.send(()).unwrap();
        assert!(b.await.unwrap().is_err());
        assert_eq!(log.entries(), ["a"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sync_atomic_inside_aatomic_nests() {
        let log = Log::default();
        aatomic(async {
            atomic(|| {
                on_commit(log.record("sync-inner"));
                ok()
            })
            .unwrap();
            let rolled_back = atomic(|| {
                on_commit(log.record("sync-rolled-back"));
                err()
            });
            assert!(rolled_back.is_err());
            tokio::task::yield_now().await;
            assert!(log.entries().is_empty(), "deferred to the async scope");
            ok()
        })
        .await
        .unwrap();
        assert_eq!(log.entries(), ["sync-inner"]);
    }

    #[test]
    fn aatomic_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        assert_send(&aatomic(async { ok() }));
    }

    /// A minimal subscriber recording (level, target, message) of each event.
    struct Capture(Arc<Mutex<Vec<(tracing::Level, String, String)>>>);

    impl tracing::Subscriber for Capture {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }

        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }

        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

        fn event(&self, event: &tracing::Event<'_>) {
            struct Message(String);
            impl tracing::field::Visit for Message {
                fn record_debug(
                    &mut self,
                    field: &tracing::field::Field,
                    value: &dyn std::fmt::Debug,
                ) {
                    if field.name() == "message" {
                        self.0 = format!("{value:?}");
                    }
                }
            }
            let mut message = Message(String::new());
            event.record(&mut message);
            let metadata = event.metadata();
            let target = metadata.target().to_owned();
            self.0.lock().push((*metadata.level(), target, message.0));
        }

        fn enter(&self, _: &tracing::span::Id) {}

        fn exit(&self, _: &tracing::span::Id) {}
    }
}
