//! The `task_backends` handler: backends built lazily from the config, one per alias.

use crate::backend::{Backend, PluginSearch};
use crate::config::Config;
use crate::constants::DEFAULT_TASK_BACKEND_ALIAS;
use crate::error::{Error, Result};
use crate::result::TaskResult;
use crate::state::{AppState, SharedState};
use crate::trace;
use crate::transaction::in_atomic_block;
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use serde_json::Map;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use taskhost_plugin_api::{ErrorKind, TaskDescription};

/// The configured backends (Django's `task_backends`): `get(alias)` loads a backend the first
/// time it is asked for and returns the same one after; [`TaskBackends::configure`] swaps the
/// config and drops the loaded backends, as Django does when `TASKS` changes. It also holds the
/// application state ([`TaskBackends::set_state`]) that tasks take as `State<T>`.
pub struct TaskBackends {
    config: RwLock<Result<Arc<Config>>>,
    loaded: Mutex<Loaded>,
    /// Shared with the host callbacks of every backend loaded here: the Immediate backend runs
    /// tasks through them.
    state: SharedState,
}

/// The backends built so far, by alias (foldhash: every enqueue looks its alias up here).
type Loaded = HashMap<String, Arc<Backend>, foldhash::fast::RandomState>;

impl TaskBackends {
    /// A handler for `config`, with an empty application state.
    pub fn new(config: Config) -> Self {
        Self::with_state(Ok(Arc::new(config)), AppState::new())
    }

    fn with_state(config: Result<Arc<Config>>, state: AppState) -> Self {
        Self {
            config: RwLock::new(config),
            loaded: Mutex::default(),
            state: Arc::new(RwLock::new(state)),
        }
    }

    fn from_discovery() -> Self {
        Self::with_state(Config::load(None).map(Arc::new), AppState::new())
    }

    /// Make `state` the application state of this handler: what tasks run by its backends take
    /// as `State<T>` — by a worker built after this call ([`Worker::new`] checks that every
    /// registered task finds its types), and by the Immediate backend at once. Loaded backends
    /// are kept.
    ///
    /// [`Worker::new`]: crate::Worker::new
    pub fn set_state(&self, state: AppState) {
        *self.state.write() = state;
    }

    /// The application state (empty until [`TaskBackends::set_state`]).
    pub fn state(&self) -> AppState {
        self.state.read().clone()
    }

    /// The config in force (or the error that loading it gave).
    pub fn config(&self) -> Result<Arc<Config>> {
        self.config.read().clone()
    }

    /// Replace the config; backends are rebuilt on next use. The application state stays.
    pub fn configure(&self, config: Config) {
        *self.config.write() = Ok(Arc::new(config));
        self.loaded.lock().clear();
    }

    /// The configured aliases, sorted.
    pub fn aliases(&self) -> Result<Vec<String>> {
        Ok(self.config()?.backends.keys().cloned().collect())
    }

    /// The backend for `alias`: `The connection '<alias>' doesn't exist.` if it is not
    /// configured, `Could not find backend …` if its plugin cannot be loaded.
    pub fn get(&self, alias: &str) -> Result<Arc<Backend>> {
        // A backend is only ever loaded from a config that loaded, and `configure` empties
        // this map, so a backend found here needs no look at the config.
        if let Some(backend) = self.loaded.lock().get(alias) {
            return Ok(Arc::clone(backend));
        }
        let config = self.config()?;
        let mut loaded = self.loaded.lock();
        if let Some(backend) = loaded.get(alias) {
            return Ok(Arc::clone(backend));
        }
        let entry = config
            .backends
            .get(alias)
            .ok_or_else(|| Error::unknown_alias(alias))?;
        let search = PluginSearch {
            dirs: &config.plugin_dirs,
            allow_writable: config.allow_writable_plugin_dirs,
            config_dir: config.file.as_deref().and_then(|f| f.parent()),
            pins: config.plugin_pins.as_ref(),
            config_file: config.file.as_deref(),
            config_source: config.source,
        };
        let backend = Arc::new(Backend::load(alias, entry, &search, &self.state)?);
        loaded.insert(alias.to_string(), Arc::clone(&backend));
        Ok(backend)
    }

    /// Every configured backend, loaded (Django's `task_backends.all()`); the first failure
    /// stops it.
    pub fn all(&self) -> Result<Vec<Arc<Backend>>> {
        self.aliases()?
            .iter()
            .map(|alias| self.get(alias))
            .collect()
    }
}

thread_local! {
    static OVERRIDES: RefCell<Vec<Arc<TaskBackends>>> = const { RefCell::new(Vec::new()) };
}

fn global() -> &'static Arc<TaskBackends> {
    static GLOBAL: OnceLock<Arc<TaskBackends>> = OnceLock::new();
    GLOBAL.get_or_init(|| Arc::new(TaskBackends::from_discovery()))
}

/// The handler in force: the innermost [`override_task_backends`] on this thread, else the
/// process-wide one built from the discovered config (`--config`/`TASKHOST_CONFIG`/
/// `./tasks.toml`/the Immediate default).
pub fn task_backends() -> Arc<TaskBackends> {
    OVERRIDES
        .with(|o| o.borrow().last().cloned())
        .unwrap_or_else(|| Arc::clone(global()))
}

/// Run `f` with `handler` in force on this thread (used to carry the caller's handler onto
/// tokio's blocking pool).
pub(crate) fn scoped<T>(handler: Arc<TaskBackends>, f: impl FnOnce() -> T) -> T {
    OVERRIDES.with(|o| o.borrow_mut().push(Arc::clone(&handler)));
    let _guard = OverrideGuard { handler };
    f()
}

/// The backend of the `default` alias (Django's `default_task_backend`).
pub fn default_task_backend() -> Result<Arc<Backend>> {
    task_backends().get(DEFAULT_TASK_BACKEND_ALIAS)
}

/// Use `config` on this thread until the guard is dropped (like Django's `override_settings`).
/// Overrides nest. Work handed to other threads keeps using the process-wide handler, so async
/// code should resolve its backend first (as `enqueue`/`aenqueue` do). The override starts with
/// the application state of the handler it overrides; `guard.handler().set_state(..)` changes
/// it for the override alone.
#[must_use = "the override ends when the guard is dropped"]
pub fn override_task_backends(config: Config) -> OverrideGuard {
    let state = task_backends().state();
    let handler = Arc::new(TaskBackends::with_state(Ok(Arc::new(config)), state));
    OVERRIDES.with(|o| o.borrow_mut().push(Arc::clone(&handler)));
    OverrideGuard { handler }
}

/// Ends an [`override_task_backends`] when dropped.
pub struct OverrideGuard {
    handler: Arc<TaskBackends>,
}

impl OverrideGuard {
    /// The handler this override installed.
    pub fn handler(&self) -> &Arc<TaskBackends> {
        &self.handler
    }
}

impl Drop for OverrideGuard {
    fn drop(&mut self) {
        OVERRIDES.with(|o| {
            let mut stack = o.borrow_mut();
            if let Some(pos) = stack.iter().rposition(|h| Arc::ptr_eq(h, &self.handler)) {
                stack.remove(pos);
            }
        });
    }
}

/// Django's `TaskResult.refresh()`: here rather than in `result.rs`, so that results sit below
/// the backends that produce them and the modules import each other without a cycle.
impl<R> TaskResult<R> {
    /// Re-read the result from its backend, updating exactly Django's refreshed fields
    /// (`errors`, return value, `finished_at`, `started_at`, `last_attempted_at`, `status`,
    /// `enqueued_at`, `worker_ids`); the task, id, args, kwargs and backend stay as they are.
    pub fn refresh(&mut self) -> Result<()> {
        let fresh = task_backends().get(self.backend())?.get_result(self.id())?;
        self.copy_refreshed(fresh);
        Ok(())
    }

    /// The async form of [`TaskResult::refresh`].
    pub async fn arefresh(&mut self) -> Result<()> {
        let backend = task_backends().get(self.backend())?;
        let fresh = backend.aget_result(self.id()).await?;
        self.copy_refreshed(fresh);
        Ok(())
    }
}

/// The async forms of [`Backend`]'s plugin calls: here rather than in `backend.rs`, because they
/// carry the handler in force onto tokio's blocking pool (and backends sit below the handler).
impl Backend {
    /// The async form of [`Backend::enqueue`]; the plugin call runs on tokio's blocking pool.
    pub async fn aenqueue<A: Serialize + ?Sized>(
        self: &Arc<Self>,
        task: &TaskDescription,
        args: &A,
    ) -> Result<TaskResult> {
        self.aenqueue_unique(task, args, None).await
    }

    /// The async form of [`Backend::enqueue_unique`].
    pub async fn aenqueue_unique<A: Serialize + ?Sized>(
        self: &Arc<Self>,
        task: &TaskDescription,
        args: &A,
        unique: Option<&crate::Unique>,
    ) -> Result<TaskResult> {
        let span = trace::enqueue_span(&task.path, self.alias());
        let (request, values) = span.in_scope(|| {
            let prepared =
                self.prepare_unique(task, Self::encode_args(args)?, Map::new(), unique)?;
            span.record("task_id", prepared.0.id.as_str());
            Ok::<_, Error>(prepared)
        })?;
        if self.enqueue_on_commit() && in_atomic_block() {
            return Ok(self.defer_to_commit(request, values));
        }
        let backend = Arc::clone(self);
        blocking(move || span.in_scope(|| backend.submit(request, values))).await
    }

    /// The async form of [`Backend::get_result`].
    pub async fn aget_result(self: &Arc<Self>, id: &str) -> Result<TaskResult> {
        let (backend, id) = (Arc::clone(self), id.to_string());
        blocking(move || backend.get_result(&id)).await
    }
}

/// Run a blocking plugin call on tokio's blocking pool (or inline outside a runtime), with the
/// caller's `tracing` subscriber and backend handler, so logs, signals and nested enqueues
/// behave as in the sync call.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let dispatch = tracing::dispatcher::get_default(|d| d.clone());
    let handler = task_backends();
    let f = move || tracing::dispatcher::with_default(&dispatch, || scoped(handler, f));
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => match handle.spawn_blocking(f).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(Error::Backend {
                alias: String::new(),
                kind: ErrorKind::UNAVAILABLE,
                message: format!("the runtime shut down during the call: {e}"),
            }),
        },
        Err(_) => f(),
    }
}
