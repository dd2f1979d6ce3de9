//! `Backend`: one configured alias, its plugin backend, and Django's base-backend behaviour
//! (validation before the plugin is called, `enqueue_on_commit`, async variants).

use crate::callbacks::HostCallbacks;
use crate::config::BackendConfig;
use crate::config::ConfigSource;
use crate::error::{Error, Result};
use crate::in_flight;
use crate::json::to_storable;
use crate::plugin::{resolve::find_library, BackendName, Library, PluginPins};
use crate::result::TaskResult;
use crate::transaction::{in_atomic_block, on_commit};
use crate::validation::{check_configured_queues, validate_task};
use abi_stable::std_types::{RResult, RStr, RString};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use taskhost_plugin_api::wire::{
    BackendParams, CheckMessage, ClaimRequest, ClaimedTask, Completion, CompletionAck,
    EnqueueRequest, LeaseRequest, ResultDelta, TaskDescription, TaskResultData,
};
use taskhost_plugin_api::{ops, BackendBox, Capabilities, ErrorKind, PluginError};

/// A loaded backend for one alias of the config (Django's `BaseTaskBackend` instance).
pub struct Backend {
    alias: String,
    name: BackendName,
    config: BackendConfig,
    capabilities: Capabilities,
    library: Arc<Library>,
    inner: BackendBox,
}

/// Where to look for plugin libraries, and how strictly.
#[derive(Clone, Debug)]
pub struct PluginSearch<'a> {
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
    /// `ImproperlyConfigured` naming `tasks.<alias>.queues`.
    pub fn load(alias: &str, config: &BackendConfig, search: &PluginSearch<'_>) -> Result<Self> {
        // A config built in code has not been through the file's checks.
        let key = format!("tasks.{alias}.queues");
        check_configured_queues(&key, &config.queues)
            .map_err(|message| Error::config(None, Some(&key), message))?;
        let fail = |reason: String| Error::backend_not_found(alias, &config.backend, reason);
        let name = BackendName::parse(&config.backend).map_err(fail)?;
        let path = find_library(&name, search.dirs, search.allow_writable)
            .map_err(|e| fail(e.explain(search.config_source, search.config_file)))?;
        let pins = search.pins.map(|pins| (pins, name.library_file_name()));
        let library = Library::open_pinned(&path, pins.as_ref().map(|(p, f)| (*p, f.as_str())))
            .map_err(fail)?;
        library.check_serves(&name).map_err(fail)?;
        let params = BackendParams {
            alias: alias.to_string(),
            backend: config.backend.clone(),
            queues: config.queues.clone(),
            options: config.options.clone(),
            config_dir: search.config_dir.map(|d| d.display().to_string()),
        };
        let params = serde_json::to_string(&params).map_err(|e| fail(e.to_string()))?;
        let host = HostCallbacks::new(alias, name.class()).into_host_box();
        let inner = library
            .new_backend(name.class(), &params, host)
            .map_err(|e| Error::InvalidTaskBackend {
                alias: Some(alias.to_string()),
                backend: Some(config.backend.clone()),
                message: format!(
                    "Backend '{}' (alias '{alias}') could not be created: {}",
                    config.backend, e.message
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

    /// The plugin file it was loaded from.
    pub fn library_path(&self) -> &Path {
        self.library.path()
    }

    /// Allowed queues; empty means any.
    pub fn queues(&self) -> &[String] {
        &self.config.queues
    }

    /// The backend's options, as configured.
    pub fn options(&self) -> &Map<String, Value> {
        &self.config.options
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
        let request = self.prepare(task, args)?;
        if self.config.enqueue_on_commit && in_atomic_block() {
            return Ok(self.defer_to_commit(request));
        }
        self.submit(request)
    }

    /// The async form of [`Backend::enqueue`]; the plugin call runs on tokio's blocking pool.
    pub async fn aenqueue<A: Serialize + ?Sized>(
        self: &Arc<Self>,
        task: &TaskDescription,
        args: &A,
    ) -> Result<TaskResult> {
        let request = self.prepare(task, args)?;
        if self.config.enqueue_on_commit && in_atomic_block() {
            return Ok(self.defer_to_commit(request));
        }
        let backend = Arc::clone(self);
        blocking(move || backend.submit(request)).await
    }

    /// Enqueue already-encoded arguments (for producers that hold JSON, e.g. bridges and CLIs).
    pub fn enqueue_json(
        self: &Arc<Self>,
        task: &TaskDescription,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
    ) -> Result<TaskResult> {
        self.validate_task(task)?;
        self.check_payload(&args, &kwargs)?;
        let request = EnqueueRequest {
            id: new_result_id(),
            task: task.clone(),
            args,
            kwargs,
        };
        if self.config.enqueue_on_commit && in_atomic_block() {
            return Ok(self.defer_to_commit(request));
        }
        self.submit(request)
    }

    /// Enqueue many runs at once — one call into the plugin, one transaction in a database
    /// backend (backends without native bulk enqueue get one `enqueue` per run). Each item is a
    /// task and its JSON arguments; all are validated before any is enqueued. Inside a
    /// transaction scope with `enqueue_on_commit`, they wait for the outermost commit.
    pub fn enqueue_many_json(
        self: &Arc<Self>,
        items: Vec<(TaskDescription, Vec<Value>)>,
    ) -> Result<Vec<TaskResult>> {
        let mut requests = Vec::with_capacity(items.len());
        for (task, args) in items {
            self.validate_task(&task)?;
            self.check_payload(&args, &Map::new())?;
            requests.push(EnqueueRequest {
                id: new_result_id(),
                task,
                args,
                kwargs: Map::new(),
            });
        }
        if self.config.enqueue_on_commit && in_atomic_block() {
            return Ok(requests
                .into_iter()
                .map(|r| self.defer_to_commit(r))
                .collect());
        }
        self.submit_many(requests)
    }

    /// Hand many requests to the plugin: one `enqueue_many` call (answered with deltas where the
    /// backend offers them), or one `enqueue` per request for a backend without bulk enqueue.
    fn submit_many(&self, requests: Vec<EnqueueRequest>) -> Result<Vec<TaskResult>> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        if !self.capabilities.contains(Capabilities::BULK_ENQUEUE) {
            return requests.into_iter().map(|r| self.submit(r)).collect();
        }
        // Both ways on the wire's fast path (byte-identical to serde_json's JSON).
        let json = EnqueueRequest::list_to_json(&requests);
        if !self.capabilities.contains(Capabilities::ENQUEUE_DELTA) {
            let response = self.check_plugin(self.inner.enqueue_many(RStr::from_str(&json)))?;
            let data = TaskResultData::list_from_json(response.as_str())
                .map_err(|e| self.unreadable(e))?;
            return Ok(data.into_iter().map(TaskResult::from_data).collect());
        }
        let response = self.check_plugin(self.inner.call_ext(
            RStr::from_str(ops::ENQUEUE_MANY_DELTA),
            RStr::from_str(&json),
        ))?;
        let deltas =
            ResultDelta::list_from_json(response.as_str()).map_err(|e| self.unreadable(e))?;
        if deltas.len() != requests.len() {
            return Err(self.backend_error(
                ErrorKind::INVALID_REQUEST,
                format!(
                    "the plugin answered '{}' with {} results for {} tasks",
                    ops::ENQUEUE_MANY_DELTA,
                    deltas.len(),
                    requests.len()
                ),
            ));
        }
        Ok(requests
            .into_iter()
            .zip(deltas)
            .map(|(request, delta)| TaskResult::from_data(delta.apply(request, &self.alias)))
            .collect())
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

    /// Validate `task`, encode and check `args`, assign the id.
    fn prepare<A: Serialize + ?Sized>(
        &self,
        task: &TaskDescription,
        args: &A,
    ) -> Result<EnqueueRequest> {
        self.validate_task(task)?;
        let args = Self::encode_args(args)?;
        let kwargs = Map::new();
        self.check_payload(&args, &kwargs)?;
        Ok(EnqueueRequest {
            id: new_result_id(),
            task: task.clone(),
            args,
            kwargs,
        })
    }

    /// Refuses arguments whose encoded JSON (args + kwargs) is larger than the alias's
    /// `max_payload_bytes`, before the plugin sees them.
    fn check_payload(&self, args: &[Value], kwargs: &Map<String, Value>) -> Result<()> {
        let limit = self.config.max_payload_bytes;
        let size = json_size(args).saturating_add(json_size(kwargs));
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
    fn defer_to_commit(self: &Arc<Self>, request: EnqueueRequest) -> TaskResult {
        let pending = TaskResultData::ready(request.clone(), &self.alias);
        let backend = Arc::clone(self);
        on_commit(move || {
            let (id, path) = (request.id.clone(), request.task.path.clone());
            if let Err(e) = backend.submit(request) {
                tracing::error!(
                    target: "taskhost",
                    "Task id={id} path={path} could not be enqueued at commit: {e}"
                );
            }
        });
        TaskResult::from_data(pending)
    }

    /// Hand one [`EnqueueRequest`] to the plugin. A backend with
    /// [`Capabilities::ENQUEUE_DELTA`] answers only what it set, applied here to the request;
    /// the request is in flight on this thread meanwhile, so the backend can have its task run
    /// without sending it back ([`ops::RUN_ENQUEUED`]).
    fn submit(&self, request: EnqueueRequest) -> Result<TaskResult> {
        let json = request.to_json();
        if !self.capabilities.contains(Capabilities::ENQUEUE_DELTA) {
            let response = self.check_plugin(self.inner.enqueue(RStr::from_str(&json)))?;
            return Ok(TaskResult::from_data(
                self.decode_result(response.as_str())?,
            ));
        }
        let (request, response) = in_flight::during(request, || {
            self.inner
                .call_ext(RStr::from_str(ops::ENQUEUE_DELTA), RStr::from_str(&json))
        });
        let response = self.check_plugin(response)?;
        let delta = ResultDelta::from_json(response.as_str()).map_err(|e| self.unreadable(e))?;
        Ok(TaskResult::from_data(delta.apply(request, &self.alias)))
    }

    /// The stored result `id`: `TaskResultDoesNotExist` (message: the id) if unknown,
    /// `NotSupported` on a backend that cannot retrieve results.
    pub fn get_result(&self, id: &str) -> Result<TaskResult> {
        let json = self.check_plugin(self.inner.get_result(RStr::from_str(id)))?;
        let data = self.decode_result(json.as_str())?;
        Ok(TaskResult::from_data(data))
    }

    /// The async form of [`Backend::get_result`].
    pub async fn aget_result(self: &Arc<Self>, id: &str) -> Result<TaskResult> {
        let (backend, id) = (Arc::clone(self), id.to_string());
        blocking(move || backend.get_result(&id)).await
    }

    /// Every stored result, in enqueue order (the Dummy backend's `results`).
    pub fn results(&self) -> Result<Vec<TaskResult>> {
        let data: Vec<TaskResultData> = self.call_ext_json(ops::RESULTS, &Map::new())?;
        Ok(data.into_iter().map(TaskResult::from_data).collect())
    }

    /// Remove every stored result (the Dummy backend's `clear()`).
    pub fn clear(&self) -> Result<()> {
        let _: Value = self.call_ext_json(ops::CLEAR, &Map::new())?;
        Ok(())
    }

    /// The backend's health checks (`[]` when all is well).
    pub fn check(&self) -> Result<Vec<CheckMessage>> {
        let json = self.check_plugin(self.inner.check())?;
        self.decode(json.as_str())
    }

    /// Call an extension operation with a JSON-encodable request, decoding the response.
    pub fn call_ext_json<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        operation: &str,
        request: &Req,
    ) -> Result<Resp> {
        self.call_json(request, |b, json| {
            b.call_ext(RStr::from_str(operation), json)
        })
    }

    /// Queue store: claim ready tasks for a worker.
    pub fn claim(&self, request: &ClaimRequest) -> Result<Vec<ClaimedTask>> {
        // The response (every claimed task's result) on the wire's fast path.
        let json = self.encode(request)?;
        self.call_wire(&json, |b, json| b.claim(json), ClaimedTask::list_from_json)
    }

    /// Queue store: record how claimed tasks ended.
    pub fn complete(&self, completions: &[Completion]) -> Result<Vec<CompletionAck>> {
        // Both ways on the wire's fast path (byte-identical to serde_json's JSON).
        let json = Completion::list_to_json(completions);
        self.call_wire(
            &json,
            |b, json| b.complete(json),
            CompletionAck::list_from_json,
        )
    }

    /// Queue store: extend leases; returns the ids whose lease was lost.
    pub fn renew_leases(&self, request: &LeaseRequest) -> Result<Vec<String>> {
        self.call_json(request, |b, json| b.renew_leases(json))
    }

    /// Queue store: hand claimed tasks back without counting an attempt.
    pub fn release(&self, request: &LeaseRequest) -> Result<u64> {
        self.call_json(request, |b, json| b.release(json))
    }

    /// `call` with `request` as JSON, its answer read by serde_json.
    fn call_json<Req: Serialize + ?Sized, Resp: DeserializeOwned>(
        &self,
        request: &Req,
        call: impl FnOnce(&BackendBox, RStr<'_>) -> RResult<RString, PluginError>,
    ) -> Result<Resp> {
        let json = self.encode(request)?;
        self.call_wire(&json, call, |text| serde_json::from_str(text))
    }

    /// `call` with the request `json`, its answer read by `read` (a wire codec's fast reader, or
    /// serde_json); an unreadable answer is the plugin's error.
    fn call_wire<Resp>(
        &self,
        json: &str,
        call: impl FnOnce(&BackendBox, RStr<'_>) -> RResult<RString, PluginError>,
        read: impl FnOnce(&str) -> serde_json::Result<Resp>,
    ) -> Result<Resp> {
        let response = self.check_plugin(call(&self.inner, RStr::from_str(json)))?;
        read(response.as_str()).map_err(|e| self.unreadable(e))
    }

    fn encode<Req: Serialize + ?Sized>(&self, request: &Req) -> Result<String> {
        serde_json::to_string(request).map_err(|e| {
            self.backend_error(
                ErrorKind::INVALID_REQUEST,
                format!("could not encode the request: {e}"),
            )
        })
    }

    fn decode<T: DeserializeOwned>(&self, json: &str) -> Result<T> {
        serde_json::from_str(json).map_err(|e| self.unreadable(e))
    }

    /// [`Self::decode`] for the one task result of `enqueue` and `get_result`, on the fast path.
    fn decode_result(&self, json: &str) -> Result<TaskResultData> {
        TaskResultData::from_json(json).map_err(|e| self.unreadable(e))
    }

    fn unreadable(&self, e: serde_json::Error) -> Error {
        self.backend_error(
            ErrorKind::INVALID_REQUEST,
            format!("the plugin returned an unreadable response: {e}"),
        )
    }

    /// The plugin's JSON (read in place: never copied into a `String`), or its error mapped
    /// onto Django's exceptions.
    fn check_plugin(&self, result: RResult<RString, PluginError>) -> Result<RString> {
        match result {
            RResult::ROk(json) => Ok(json),
            RResult::RErr(e) => Err(match e.kind {
                ErrorKind::RESULT_DOES_NOT_EXIST => {
                    Error::TaskResultDoesNotExist(e.message.into_string())
                }
                ErrorKind::NOT_SUPPORTED => Error::NotSupported(e.message.into_string()),
                kind => self.backend_error(kind, e.message.into_string()),
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

/// The length in bytes of `value` encoded as compact JSON, counted without building the text.
fn json_size<T: Serialize + ?Sized>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Values already held as JSON always encode; on the impossible failure, count what was written.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
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

/// Run a blocking plugin call on tokio's blocking pool (or inline outside a runtime), with the
/// caller's `tracing` subscriber and backend handler, so logs, signals and nested enqueues
/// behave as in the sync call.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    let dispatch = tracing::dispatcher::get_default(|d| d.clone());
    let handler = crate::handler::task_backends();
    let f =
        move || tracing::dispatcher::with_default(&dispatch, || crate::handler::scoped(handler, f));
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
}
