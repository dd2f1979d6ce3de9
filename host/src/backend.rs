//! `Backend`: one configured alias, its plugin backend, and Django's base-backend behaviour
//! (validation before the plugin is called, `enqueue_on_commit`). The async variants, which
//! carry the handler in force onto tokio's blocking pool, are in `handler.rs`.

use crate::callbacks::HostCallbacks;
use crate::config::BackendConfig;
use crate::config::ConfigSource;
use crate::error::{Error, Result};
use crate::json::{to_storable, to_storable_text};
use crate::plugin::{resolve::locate, BackendName, Library, Located, PluginPins};
use crate::result::TaskResult;
use crate::state::SharedState;
use crate::trace;
use crate::transaction::{in_atomic_block, on_commit};
use crate::unique::Unique;
use crate::validation::{check_configured_queues, validate_task};
use abi_stable::std_types::{RResult, RStr, RString, RVec};
use chrono::SubsecRound;
use serde::{de::DeserializeOwned, Serialize};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use taskhost_plugin_api::abi::AbiBackendBox;
use taskhost_plugin_api::{
    BackendParams, CheckMessage, ClaimRequest, ClaimedTask, Completion, CompletionAck,
    EnqueueRequest, Json, LeaseRequest, ListRequest, PruneRequest, QueueStats, TaskDescription,
    TaskResultData, Text, WaitRequest,
};
use taskhost_plugin_api::{Capabilities, ErrorKind, PluginError};

/// A loaded backend for one alias of the config (Django's `BaseTaskBackend` instance).
pub struct Backend {
    alias: String,
    name: BackendName,
    config: BackendConfig,
    capabilities: Capabilities,
    library: Arc<Library>,
    inner: AbiBackendBox,
    /// This backend's enqueue counters (`crate::metrics`).
    enqueued: crate::metrics::EnqueueCounters,
}

/// Where to look for plugin libraries, and how strictly.
#[derive(Clone, Debug)]
pub(crate) struct PluginSearch<'a> {
    /// Plugin dirs, in search order.
    pub dirs: &'a [PathBuf],
    /// Skip the "writable by other users" refusal.
    pub allow_writable: bool,
    /// The config file's dir, handed to plugins for relative paths in options.
    pub config_dir: Option<&'a Path>,
    /// The `[plugin_pins]` table, when configured: every file opened must match its pin.
    pub pins: Option<&'a PluginPins>,
    /// The config file in force, named when a plugin file is not found.
    pub config_file: Option<&'a Path>,
    /// Where the config came from (or that none was found), said when a plugin file is not
    /// found.
    pub config_source: ConfigSource,
}

impl Backend {
    /// Load the plugin for `alias` and build its backend. Every failure is an
    /// `InvalidTaskBackend` naming the alias, the backend name and the reason — except a
    /// configured queue name that breaks the queue-name rule (a config built in code), which is
    /// `ImproperlyConfigured` naming `tasks.<alias>.queues`. Tasks the backend runs in this
    /// process (Immediate) take their `State<T>` from `state`.
    pub(crate) fn load(
        alias: &str,
        config: &BackendConfig,
        search: &PluginSearch<'_>,
        state: &SharedState,
    ) -> Result<Self> {
        // A config built in code has not been through the file's checks.
        let key = format!("tasks.{alias}.queues");
        check_configured_queues(&key, &config.queues)
            .map_err(|message| Error::config(None, Some(&key), message))?;
        let fail = |reason: String| Error::backend_not_found(alias, &config.backend, reason);
        let name = BackendName::parse(&config.backend).map_err(fail)?;
        // A file in the plugin dirs first; the backend compiled into the host (Immediate,
        // Dummy) only when no dir has one. A built-in has no file to pin.
        let located = locate(&name, search.dirs, search.allow_writable)
            .map_err(|e| fail(e.explain(search.config_source, search.config_file)))?;
        let library = match located {
            Located::File(path) => {
                let pins = search.pins.map(|pins| (pins, name.library_file_name()));
                Library::open_pinned(&path, pins.as_ref().map(|(p, f)| (*p, f.as_str())))
                    .map_err(fail)?
            }
            Located::BuiltIn(built_in) => Library::built_in(built_in).map_err(fail)?,
        };
        library.check_serves(&name).map_err(fail)?;
        let params = BackendParams {
            alias: alias.to_string(),
            backend: config.backend.clone(),
            queues: config.queues.clone(),
            options: config.options.clone(),
            config_dir: search.config_dir.map(|d| d.display().to_string()),
        };
        let params = serde_json::to_string(&params).map_err(|e| fail(e.to_string()))?;
        let host =
            HostCallbacks::with_state(alias, name.class(), Arc::clone(state)).into_host_box();
        let inner = library
            .new_backend(name.class(), &params, host)
            .map_err(|e| Error::InvalidTaskBackend {
                alias: Some(alias.to_string()),
                backend: Some(config.backend.clone()),
                message: format!(
                    "Backend '{}' (alias '{alias}') could not be created: {}",
                    config.backend,
                    e.message()
                ),
            })?;
        let capabilities = inner.capabilities();
        Ok(Self {
            alias: alias.to_string(),
            name,
            config: config.clone(),
            capabilities,
            library,
            inner,
            enqueued: Default::default(),
        })
    }

    /// The alias in the config.
    pub fn alias(&self) -> &str {
        &self.alias
    }

    /// The full backend name, e.g. `taskhost.backends.dummy.DummyBackend`.
    pub fn backend_name(&self) -> &str {
        &self.config.backend
    }

    /// The class name (Django's signal `sender`), e.g. `DummyBackend`.
    pub fn class_name(&self) -> &str {
        self.name.class()
    }

    /// The plugin file it was loaded from; for a backend built into the host, the pseudo path
    /// `<built in: taskhost.backends.immediate>` (see [`Backend::library_file`]).
    pub fn library_path(&self) -> &Path {
        self.library.path()
    }

    /// The plugin file it was loaded from, or `None` when it is built into the host (no plugin
    /// dir had a file for it).
    pub fn library_file(&self) -> Option<&Path> {
        self.library.file()
    }

    /// Whether it runs on a backend compiled into the host rather than a loaded file.
    pub fn is_built_in(&self) -> bool {
        self.library.is_built_in()
    }

    /// Allowed queues; empty means any.
    pub fn queues(&self) -> &[String] {
        &self.config.queues
    }

    /// The backend's options, as configured.
    pub fn options(&self) -> &Map<String, Value> {
        &self.config.options
    }

    /// The `[tasks.<alias>.periodic]` schedules of the config.
    pub fn periodic(&self) -> &[crate::periodic::PeriodicSchedule] {
        &self.config.periodic
    }

    /// The schedules its workers enqueue, by name: the config's, and one per task of this
    /// binary on this alias with `#[task(cron = "…")]` (named by the task's path, in UTC,
    /// missed ticks skipped) unless the config has a schedule of that name.
    pub fn periodic_schedules(&self) -> Vec<crate::periodic::PeriodicSchedule> {
        let mut schedules = self.config.periodic.clone();
        for task in crate::registry::registered_tasks() {
            let Some(cron) = task.cron.filter(|_| task.backend == self.alias) else {
                continue;
            };
            if schedules.iter().any(|s| s.name == task.path) {
                continue;
            }
            match crate::periodic::PeriodicSchedule::new(task.path, task.path, cron, "UTC") {
                Ok(schedule) => schedules.push(schedule),
                // Checked by `#[task]` with the same parser: only a hand-built definition.
                Err(e) => tracing::warn!(target: "taskhost", "{e}"),
            }
        }
        schedules.sort_by(|a, b| a.name.cmp(&b.name));
        schedules
    }

    /// Whether an enqueue inside a transaction scope waits for the outermost commit.
    pub fn enqueue_on_commit(&self) -> bool {
        self.config.enqueue_on_commit
    }

    /// The capability flags.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// Django's `supports_defer`.
    pub fn supports_defer(&self) -> bool {
        self.capabilities.contains(Capabilities::DEFER)
    }

    /// Django's `supports_async_task`.
    pub fn supports_async_task(&self) -> bool {
        self.capabilities.contains(Capabilities::ASYNC_TASK)
    }

    /// Django's `supports_get_result`.
    pub fn supports_get_result(&self) -> bool {
        self.capabilities.contains(Capabilities::GET_RESULT)
    }

    /// Django's `supports_priority`.
    pub fn supports_priority(&self) -> bool {
        self.capabilities.contains(Capabilities::PRIORITY)
    }

    /// Whether the backend enforces uniqueness keys ([`Backend::enqueue_unique`]).
    pub fn supports_unique(&self) -> bool {
        self.capabilities.contains(Capabilities::UNIQUE)
    }

    /// Whether workers can claim this backend's tasks.
    pub fn supports_queue_store(&self) -> bool {
        self.capabilities.contains(Capabilities::QUEUE_STORE)
    }

    /// Django's `validate_task` for this backend.
    pub fn validate_task(&self, task: &TaskDescription) -> Result<()> {
        validate_task(self.capabilities, &self.config.queues, task)
    }

    /// Enqueue `task` with the parameter tuple `args` (validated again, arguments checked to be
    /// storable as JSON). Inside a transaction scope with `enqueue_on_commit`, returns the READY
    /// result at once and hands it to the plugin at the outermost commit.
    pub fn enqueue<A: Serialize + ?Sized>(
        self: &Arc<Self>,
        task: &TaskDescription,
        args: &A,
    ) -> Result<TaskResult> {
        self.enqueue_unique(task, args, None)
    }

    /// [`Backend::enqueue`] under a uniqueness key (`docs/worker.md`, "Unique tasks"): when
    /// the key is held, the result already holding it, marked
    /// [`TaskResult::is_duplicate`]. `InvalidTask` when the backend does not support unique
    /// tasks, or inside a transaction scope with `enqueue_on_commit` (whether the key is free
    /// is only known at the commit).
    pub fn enqueue_unique<A: Serialize + ?Sized>(
        self: &Arc<Self>,
        task: &TaskDescription,
        args: &A,
        unique: Option<&Unique>,
    ) -> Result<TaskResult> {
        let span = trace::enqueue_span(&task.path, &self.alias);
        let _entered = span.enter();
        let (request, values) =
            self.prepare_unique(task, Self::encode_args(args)?, Map::new(), unique)?;
        span.record("task_id", request.id.as_str());
        if self.config.enqueue_on_commit && in_atomic_block() {
            return Ok(self.defer_to_commit(request, values));
        }
        self.submit(request, values)
    }

    /// [`Backend::enqueue_json`] under a uniqueness key (see [`Backend::enqueue_unique`]).
    pub fn enqueue_json_unique(
        self: &Arc<Self>,
        task: &TaskDescription,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
        unique: &Unique,
    ) -> Result<TaskResult> {
        let (request, values) = self.prepare_unique(task, args, kwargs, Some(unique))?;
        self.submit(request, values)
    }

    /// Enqueue already-encoded arguments (for producers that hold JSON, e.g. bridges and CLIs).
    pub fn enqueue_json(
        self: &Arc<Self>,
        task: &TaskDescription,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
    ) -> Result<TaskResult> {
        let span = trace::enqueue_span(&task.path, &self.alias);
        let _entered = span.enter();
        let (request, values) = self.prepare(task, args, kwargs)?;
        span.record("task_id", request.id.as_str());
        if self.config.enqueue_on_commit && in_atomic_block() {
            return Ok(self.defer_to_commit(request, values));
        }
        self.submit(request, values)
    }

    /// Enqueue many runs at once — one call into the plugin, one transaction in a database
    /// backend. Each item is a task and its JSON arguments; all are validated before any is
    /// enqueued. Inside a transaction scope with `enqueue_on_commit`, they wait for the
    /// outermost commit.
    pub fn enqueue_many_json(
        self: &Arc<Self>,
        items: Vec<(TaskDescription, Vec<Value>)>,
    ) -> Result<Vec<TaskResult>> {
        let path = items.first().map_or("", |(task, _)| task.path.as_str());
        let span = trace::enqueue_span(path, &self.alias);
        let _entered = span.enter();
        let mut requests = Vec::with_capacity(items.len());
        for (task, args) in items {
            let (request, values) = self.prepare(&task, args, Map::new())?;
            requests.push((request, Some(values)));
        }
        self.submit_many(requests)
    }

    /// [`Backend::enqueue_many_json`] for runs of one task whose arguments are already JSON
    /// text (an array each, from [`Backend::encode_args_text`]): the task is validated once,
    /// and each run gets its id and its payload check. The results read their arguments back
    /// from the text when asked.
    pub(crate) fn enqueue_many_text(
        self: &Arc<Self>,
        task: &TaskDescription,
        args: Vec<String>,
    ) -> Result<Vec<TaskResult>> {
        if args.is_empty() {
            return Ok(Vec::new());
        }
        let span = trace::enqueue_span(&task.path, &self.alias);
        let _entered = span.enter();
        self.validate_task(task)?;
        let task = microsecond_task(task);
        let kwargs = Json::empty_object();
        let trace_context = trace::current_context();
        let mut requests = Vec::with_capacity(args.len());
        for args in args {
            self.check_payload(args.len() + kwargs.as_str().len())?;
            let request = EnqueueRequest {
                id: new_result_id().into(),
                task: task.clone(),
                args: Json::from_stored(args),
                kwargs: kwargs.clone(),
                unique: None,
                trace_context: trace_context.clone(),
            };
            requests.push((request, None));
        }
        self.submit_many(requests)
    }

    /// Many runs of one task under uniqueness keys, in one call to the plugin: each run's key
    /// (the caller's, the same for all; or derived from its arguments) is checked in order, so
    /// a run whose key a stored task or an earlier run of the batch holds gets that result,
    /// marked [`TaskResult::is_duplicate`].
    pub(crate) fn enqueue_many_unique(
        self: &Arc<Self>,
        task: &TaskDescription,
        args: Vec<Vec<Value>>,
        unique: &Unique,
    ) -> Result<Vec<TaskResult>> {
        let mut requests = Vec::with_capacity(args.len());
        for args in args {
            let (request, values) = self.prepare_unique(task, args, Map::new(), Some(unique))?;
            requests.push((request, Some(values)));
        }
        self.submit_many(requests)
    }

    /// Hand prepared requests to the plugin in one call (or to the outermost commit), each
    /// with its argument values when the caller holds them.
    fn submit_many(
        self: &Arc<Self>,
        requests: Vec<(EnqueueRequest, Option<Vec<Value>>)>,
    ) -> Result<Vec<TaskResult>> {
        if self.config.enqueue_on_commit && in_atomic_block() {
            return Ok(requests
                .into_iter()
                .map(|(request, values)| self.defer_to_commit_with(request, values))
                .collect());
        }
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        // The request ids of unique enqueues, to tell a duplicate by its other id (nothing is
        // collected for a batch without keys).
        let ids: Vec<Option<Text>> = match requests.iter().any(|(r, _)| r.unique.is_some()) {
            true => requests
                .iter()
                .map(|(request, _)| request.unique.as_ref().map(|_| request.id.clone()))
                .collect(),
            false => Vec::new(),
        };
        let (requests, values): (RVec<_>, Vec<_>) = requests
            .into_iter()
            .map(|(request, values)| (request.into(), values))
            .unzip();
        let data = self.check_plugin(self.inner.enqueue_many(requests))?;
        if data.len() != values.len() {
            return Err(self.backend_error(
                ErrorKind::INVALID_REQUEST,
                format!(
                    "the plugin answered enqueue_many with {} results for {} tasks",
                    data.len(),
                    values.len()
                ),
            ));
        }
        let results: Vec<TaskResult> = data
            .into_iter()
            .zip(values)
            .enumerate()
            .map(|(i, (data, values))| match ids.get(i) {
                Some(Some(id)) => unique_result(id, data.into(), values),
                _ => result_of(data.into(), values),
            })
            .collect();
        self.enqueued.count(
            &self.alias,
            results
                .iter()
                .filter(|r| !r.is_duplicate())
                .map(TaskResult::task),
        );
        Ok(results)
    }

    /// Encode a parameter tuple as stored JSON arguments.
    pub fn encode_args<A: Serialize + ?Sized>(args: &A) -> Result<Vec<Value>> {
        match to_storable(args) {
            Ok(Value::Array(values)) => Ok(values),
            Ok(Value::Null) => Ok(Vec::new()),
            Ok(value) => Ok(vec![value]),
            Err(reason) => Err(Error::UnsupportedValue(reason.replace("at $", "at args"))),
        }
    }

    /// Encode a parameter tuple as the JSON text of stored arguments: byte for byte
    /// `serde_json::to_string(&Backend::encode_args(args)?)`, without building the values.
    pub(crate) fn encode_args_text<A: Serialize + ?Sized>(args: &A) -> Result<String> {
        let text = to_storable_text(args)
            .map_err(|reason| Error::UnsupportedValue(reason.replace("at $", "at args")))?;
        // As in `encode_args`: an array stays, `()` is no arguments, one value is one argument.
        Ok(match text.as_bytes().first() {
            Some(b'[') => text,
            _ if text == "null" => "[]".to_string(),
            _ => format!("[{text}]"),
        })
    }

    /// Validate `task`, write the arguments as JSON text and check their size, assign the id.
    /// Returns the request and the argument values, for the result.
    pub(crate) fn prepare(
        &self,
        task: &TaskDescription,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
    ) -> Result<(EnqueueRequest, Vec<Value>)> {
        self.prepare_unique(task, args, kwargs, None)
    }

    /// [`Backend::prepare`], with the request's uniqueness key when `unique` is set (validated
    /// against this backend; derived from the arguments unless the caller's).
    pub(crate) fn prepare_unique(
        &self,
        task: &TaskDescription,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
        unique: Option<&Unique>,
    ) -> Result<(EnqueueRequest, Vec<Value>)> {
        self.validate_task(task)?;
        if let Some(unique) = unique {
            self.validate_unique(unique)?;
        }
        let args_text = serde_json::to_string(&args).map_err(|e| self.unencodable(e))?;
        let kwargs = if kwargs.is_empty() {
            Json::empty_object()
        } else {
            Json::encode(&kwargs).map_err(|e| self.unencodable(e))?
        };
        self.check_payload(args_text.len() + kwargs.as_str().len())?;
        let unique = match unique {
            Some(unique) => Some(Box::new(unique.for_request(
                &task.path,
                &args_text,
                kwargs.as_str(),
            )?)),
            None => None,
        };
        let request = EnqueueRequest {
            id: new_result_id().into(),
            task: microsecond_task(task),
            args: Json::from_stored(args_text),
            kwargs,
            unique,
            trace_context: trace::current_context(),
        };
        Ok((request, args))
    }

    /// `unique` can be enforced here: this backend supports it, the key and scope are in range,
    /// and the enqueue is not deferred to a commit.
    pub(crate) fn validate_unique(&self, unique: &Unique) -> Result<()> {
        unique.validate(&self.alias, &self.config.backend, self.capabilities)?;
        if self.config.enqueue_on_commit && in_atomic_block() {
            return Err(Error::InvalidTask(format!(
                "A unique task cannot be enqueued inside a transaction scope on backend '{}',                  which has enqueue_on_commit: whether its key is free is only known at the                  commit. Enqueue it outside the scope, or set tasks.{}.enqueue_on_commit = false.",
                self.alias, self.alias
            )));
        }
        Ok(())
    }

    fn unencodable(&self, e: serde_json::Error) -> Error {
        Error::UnsupportedValue(format!("the arguments cannot be written as JSON: {e}"))
    }

    /// Refuses arguments whose encoded JSON (args + kwargs, `size` bytes) is larger than the
    /// alias's `max_payload_bytes`, before the plugin sees them.
    fn check_payload(&self, size: usize) -> Result<()> {
        let limit = self.config.max_payload_bytes;
        if size <= limit {
            return Ok(());
        }
        Err(Error::UnsupportedValue(format!(
            "Task arguments are too large for backend alias '{}': {size} bytes of encoded \
             args + kwargs JSON, over the limit of {limit} bytes; pass a reference (an id, a path) \
             instead, or raise tasks.{}.max_payload_bytes in the config",
            self.alias, self.alias
        )))
    }

    /// The READY result returned at once inside a scope; the plugin gets it at commit.
    pub(crate) fn defer_to_commit(
        self: &Arc<Self>,
        request: EnqueueRequest,
        values: Vec<Value>,
    ) -> TaskResult {
        self.defer_to_commit_with(request, Some(values))
    }

    /// [`Backend::defer_to_commit`], with the argument values if the caller holds them.
    fn defer_to_commit_with(
        self: &Arc<Self>,
        request: EnqueueRequest,
        values: Option<Vec<Value>>,
    ) -> TaskResult {
        let pending = TaskResultData::ready(request.clone(), &self.alias);
        let backend = Arc::clone(self);
        let args = values.clone();
        on_commit(move || {
            let (id, path) = (request.id.clone(), request.task.path.clone());
            if let Err(e) = backend.submit_with(request, args) {
                tracing::error!(
                    target: "taskhost",
                    "Task id={id} path={path} could not be enqueued at commit: {e}"
                );
            }
        });
        result_of(pending, values)
    }

    /// Hand one [`EnqueueRequest`] to the plugin.
    pub(crate) fn submit(&self, request: EnqueueRequest, values: Vec<Value>) -> Result<TaskResult> {
        self.submit_with(request, Some(values))
    }

    fn submit_with(
        &self,
        request: EnqueueRequest,
        values: Option<Vec<Value>>,
    ) -> Result<TaskResult> {
        let id = request.unique.as_ref().map(|_| request.id.clone());
        let data: TaskResultData = self
            .check_plugin(self.inner.enqueue(request.into()))?
            .into();
        let result = match id {
            Some(id) => unique_result(&id, data, values),
            None => result_of(data, values),
        };
        if !result.is_duplicate() {
            self.enqueued.count(&self.alias, [result.task()]);
        }
        Ok(result)
    }

    /// The stored result `id`: `TaskResultDoesNotExist` (message: the id) if unknown,
    /// `NotSupported` on a backend that cannot retrieve results.
    pub fn get_result(&self, id: &str) -> Result<TaskResult> {
        let data = self.check_plugin(self.inner.get_result(RStr::from_str(id)))?;
        Ok(TaskResult::from_data(data.into()))
    }

    /// Every stored result, in enqueue order (the Dummy backend's `results`).
    pub fn results(&self) -> Result<Vec<TaskResult>> {
        let data = self.check_plugin(self.inner.results())?;
        Ok(data
            .into_iter()
            .map(|d| TaskResult::from_data(d.into()))
            .collect())
    }

    /// Remove every stored result (the Dummy backend's `clear()`).
    pub fn clear(&self) -> Result<()> {
        self.check_plugin(self.inner.clear())
    }

    /// The backend's health checks (`[]` when all is well).
    pub fn check(&self) -> Result<Vec<CheckMessage>> {
        let messages = self.check_plugin(self.inner.check())?;
        Ok(messages.into_iter().map(Into::into).collect())
    }

    /// Call a backend's own operation with JSON text, returning its JSON answer.
    pub fn call_ext(&self, operation: &str, request: &str) -> Result<String> {
        let response = self.check_plugin(
            self.inner
                .call_ext(RStr::from_str(operation), RStr::from_str(request)),
        )?;
        Ok(response.into_string())
    }

    /// [`Backend::call_ext`] with a JSON-encodable request, decoding the response.
    pub fn call_ext_json<Req: Serialize + ?Sized, Resp: DeserializeOwned>(
        &self,
        operation: &str,
        request: &Req,
    ) -> Result<Resp> {
        let request = serde_json::to_string(request).map_err(|e| {
            self.backend_error(
                ErrorKind::INVALID_REQUEST,
                format!("could not encode the request: {e}"),
            )
        })?;
        let response = self.call_ext(operation, &request)?;
        serde_json::from_str(&response).map_err(|e| {
            self.backend_error(
                ErrorKind::INVALID_REQUEST,
                format!("the plugin returned an unreadable response to '{operation}': {e}"),
            )
        })
    }

    /// Queue store: claim ready tasks for a worker.
    pub fn claim(&self, request: &ClaimRequest) -> Result<Vec<ClaimedTask>> {
        let claimed = self.check_plugin(self.inner.claim(request.clone().into()))?;
        Ok(claimed.into_iter().map(Into::into).collect())
    }

    /// Queue store: record how claimed tasks ended.
    pub fn complete(&self, completions: Vec<Completion>) -> Result<Vec<CompletionAck>> {
        let records = completions.into_iter().map(Into::into).collect();
        let acks = self.check_plugin(self.inner.complete(records))?;
        Ok(acks.into_iter().map(Into::into).collect())
    }

    /// Queue store: extend leases; returns the ids whose lease was lost.
    pub fn renew_leases(&self, request: &LeaseRequest) -> Result<Vec<String>> {
        let lost = self.check_plugin(self.inner.renew_leases(request.clone().into()))?;
        Ok(lost.into_iter().map(RString::into_string).collect())
    }

    /// Queue store: hand claimed tasks back without counting an attempt.
    pub fn release(&self, request: &LeaseRequest) -> Result<u64> {
        self.check_plugin(self.inner.release(request.clone().into()))
    }

    /// Queue store: rescue tasks whose lease expired; returns how many.
    pub fn rescue(&self) -> Result<u64> {
        self.check_plugin(self.inner.rescue())
    }

    /// Queue store: block until new tasks may be ready (`true`) or the timeout passes.
    pub fn wait_for_tasks(&self, request: &WaitRequest) -> Result<bool> {
        self.check_plugin(self.inner.wait_for_tasks(request.clone().into()))
    }

    /// Create or upgrade the store's schema; returns the versions applied.
    pub fn migrate(&self) -> Result<Vec<u32>> {
        Ok(self.check_plugin(self.inner.migrate())?.into_vec())
    }

    /// Stored results matching the filters, newest first.
    pub fn list_results(&self, request: &ListRequest) -> Result<Vec<TaskResult>> {
        let data = self.check_plugin(self.inner.list_results(request.clone().into()))?;
        Ok(data
            .into_iter()
            .map(|d| TaskResult::from_data(d.into()))
            .collect())
    }

    /// How many results each queue holds in each status.
    pub fn queue_stats(&self) -> Result<Vec<QueueStats>> {
        let stats = self.check_plugin(self.inner.queue_stats())?;
        Ok(stats.into_iter().map(Into::into).collect())
    }

    /// Delete (or count, on a dry run) finished results; returns how many.
    pub fn prune(&self, request: &PruneRequest) -> Result<u64> {
        self.check_plugin(self.inner.prune(request.clone().into()))
    }

    /// The plugin's answer, or its error mapped onto Django's exceptions.
    fn check_plugin<T>(&self, result: RResult<T, PluginError>) -> Result<T> {
        match result {
            RResult::ROk(value) => Ok(value),
            RResult::RErr(e) => Err(match e.kind {
                ErrorKind::RESULT_DOES_NOT_EXIST => Error::TaskResultDoesNotExist(e.into_message()),
                ErrorKind::NOT_SUPPORTED => Error::NotSupported(e.into_message()),
                kind => self.backend_error(kind, e.into_message()),
            }),
        }
    }

    fn backend_error(&self, kind: ErrorKind, message: String) -> Error {
        Error::Backend {
            alias: self.alias.clone(),
            kind,
            message,
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.inner.close();
    }
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("alias", &self.alias)
            .field("backend", &self.config.backend)
            .field("capabilities", &self.capabilities)
            .field("library", &self.library.path())
            .finish()
    }
}

/// `task` as it crosses the plugin boundary: times (and so what is stored) to the microsecond,
/// as in Django.
fn microsecond_task(task: &TaskDescription) -> TaskDescription {
    let mut task = task.clone();
    task.run_after = task.run_after.map(|t| t.trunc_subsecs(6));
    task
}

/// A result, with its argument values when the enqueue holds them (else read from its text).
fn result_of(data: TaskResultData, values: Option<Vec<Value>>) -> TaskResult {
    match values {
        Some(values) => TaskResult::with_args(data, values),
        None => TaskResult::from_data(data),
    }
}

/// The answer to a unique enqueue whose request had id `id`: the new result, or (another id) the
/// result already holding the key, whose arguments are its own.
fn unique_result(id: &Text, data: TaskResultData, values: Option<Vec<Value>>) -> TaskResult {
    if data.id == *id {
        result_of(data, values)
    } else {
        TaskResult::duplicate_of(data)
    }
}

/// A new result id: a UUID v7 (time-ordered), as a string.
///
/// Its 74 random bits come from `rand`'s thread-local ChaCha generator (uuid's `fast-rng`),
/// seeded from the OS and reseeded periodically — a CSPRNG, so ids stay as unguessable as with a
/// `getrandom` syscall per id, without the syscall.
pub fn new_result_id() -> String {
    let mut buf = uuid::Uuid::encode_buffer();
    uuid::Uuid::now_v7()
        .hyphenated()
        .encode_lower(&mut buf)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_ids_are_distinct_hyphenated_v7_uuids() {
        let ids: Vec<String> = (0..1000).map(|_| new_result_id()).collect();
        for id in &ids {
            let parsed = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(parsed.get_version_num(), 7);
            assert_eq!(*id, parsed.hyphenated().to_string());
        }
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
    }

    /// The arguments' text is what writing the values gave: whatever shape the parameters
    /// come in (a tuple, none, one value that is or is not an array), byte for byte.
    #[test]
    fn argument_text_is_the_values_written() {
        #[derive(serde::Serialize)]
        struct Order {
            sku: &'static str,
            quantity: u32,
            price: f64,
        }
        #[track_caller]
        fn same<A: Serialize + ?Sized>(args: &A) {
            let values = Backend::encode_args(args).map(|v| serde_json::to_string(&v).unwrap());
            let text = Backend::encode_args_text(args);
            match (text, values) {
                (Ok(text), Ok(values)) => assert_eq!(text, values),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                (text, values) => panic!("{text:?} but {values:?}"),
            }
        }
        same(&(1i64, 2i64));
        same(&());
        same(&(42,));
        same(&"one string");
        same(&vec![1, 2, 3]);
        same(&(vec!["ünïcödé", "🎉"], u64::MAX, i64::MIN, 0.1f32, 1e300));
        same(&Order {
            sku: "A-1",
            quantity: 3,
            price: 9.99,
        });
        same(&(Order {
            sku: "\"q\"",
            quantity: 0,
            price: -0.0,
        },));
        same(&Some(7));
        same(&None::<i32>);
        same(&(1, f64::NAN));
        same(&f64::INFINITY);
    }
}
