//! The `DummyBackend` class: Django's `DummyBackend`, storing results in memory.

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard, PoisonError};
use taskhost_plugin_api::{
    abi_stable::std_types::{RStr, RString},
    guard,
    guard::guard_or,
    guard_json, ops,
    wire::{BackendParams, EnqueueRequest, ResultDelta, TaskResultData},
    Backend, Capabilities, ErrorKind, HostBox, PluginError, PluginResult, Signal,
};

/// The class name this plugin exports.
const CLASS: &str = "DummyBackend";

/// Extension operation: replace a stored result. Request a
/// [`TaskResultData`](taskhost_plugin_api::wire::TaskResultData) whose `id` is stored; response
/// `null`; an unknown id is [`ErrorKind::RESULT_DOES_NOT_EXIST`]. Lets tests play a worker that
/// changes a stored result (Django's `test_refresh_result` mutates the stored object).
pub const UPDATE: &str = "taskhost.backends.dummy.update";

/// Stores each enqueued task as a READY result and never runs it.
///
/// Capabilities: `supports_defer`, `supports_async_task` and `supports_priority`; not
/// `supports_get_result` (as in Django: the results live in this instance only), although
/// `get_result` works on this instance. Takes no options.
pub struct DummyBackend {
    params: BackendParams,
    host: HostBox,
    store: Mutex<Store>,
}

/// The stored results in enqueue order, and where each id sits: a table of positions into
/// `results`, hashed by the id stored there, so an enqueue does not copy its id into a key
/// (foldhash: the ids are the host's UUIDs, and SipHash was a tenth of an enqueue).
///
/// The table is brought up to date when it is needed, not at every enqueue: the host's ids are
/// UUID v7, increasing, and while every stored id is greater than the one before it, an id
/// greater than the last one stored cannot be stored already. Such an enqueue is a push; any
/// other is checked against the whole table, as a lookup by id is.
struct Store {
    results: Vec<TaskResultData>,
    /// The positions of `results[..indexed]`.
    positions: hashbrown::HashTable<usize>,
    indexed: usize,
    /// Each stored id is greater than the one stored before it.
    ascending: bool,
    hasher: foldhash::fast::RandomState,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            results: Vec::new(),
            positions: hashbrown::HashTable::new(),
            indexed: 0,
            ascending: true,
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

impl DummyBackend {
    /// Build the backend for one alias of the host's config. Fails with
    /// [`ErrorKind::INVALID_OPTIONS`] if `params.options` is not empty: this backend has none.
    pub fn new(params: BackendParams, host: HostBox) -> Result<Self, PluginError> {
        reject_options(&params)?;
        tracing::debug!(alias = %params.alias, "DummyBackend created");
        Ok(Self {
            params,
            host,
            store: Mutex::default(),
        })
    }

    /// Django's `enqueue` for every request: stamp `enqueued_at`, store them all, then send
    /// `task_enqueued` for each, in order. Nothing is stored if any request fails. Returns what
    /// `answer` makes of each stored result (its JSON, or its [`ResultDelta`]'s).
    fn enqueue_all<T>(
        &self,
        requests: Vec<EnqueueRequest>,
        answer: impl Fn(&TaskResultData) -> T,
    ) -> Result<Vec<T>, PluginError> {
        let mut results = Vec::with_capacity(requests.len());
        let mut answers = Vec::with_capacity(requests.len());
        for request in requests {
            let result = self.stamp(request)?;
            answers.push(answer(&result));
            results.push(result);
        }
        let signals: Vec<String> = if self.host.wants_signal(Signal::TASK_ENQUEUED) {
            results.iter().map(TaskResultData::to_json).collect()
        } else {
            Vec::new()
        };
        self.lock().insert_all(results)?;
        // Signals go out with the lock released: a receiver may well read the results back.
        for payload in &signals {
            self.send_enqueued(payload);
        }
        Ok(answers)
    }

    /// Enqueue one task, as [`Self::enqueue_all`] does, without its batch's vectors: answering
    /// what `answer` makes of it.
    fn enqueue_one<T>(
        &self,
        request: &str,
        operation: &str,
        answer: impl Fn(&TaskResultData) -> T,
    ) -> Result<T, PluginError> {
        let request = EnqueueRequest::from_json(request)
            .map_err(|e| PluginError::invalid_request(operation, e))?;
        let result = self.stamp(request)?;
        let answered = answer(&result);
        let signal = self
            .host
            .wants_signal(Signal::TASK_ENQUEUED)
            .then(|| result.to_json());
        self.lock().insert(result)?;
        if let Some(payload) = &signal {
            self.send_enqueued(payload);
        }
        Ok(answered)
    }

    /// The READY result of `request`, stamped with the host's clock.
    fn stamp(&self, request: EnqueueRequest) -> Result<TaskResultData, PluginError> {
        let mut result = TaskResultData::ready(request, &self.params.alias);
        result.enqueued_at = Some(self.now()?);
        Ok(result)
    }

    fn send_enqueued(&self, payload: &str) {
        self.host
            .send_signal(Signal::TASK_ENQUEUED, RStr::from_str(payload));
    }

    /// The stored result `id` as JSON (encoded in place, not copied); Django's
    /// `TaskResultDoesNotExist(result_id)` if there is none.
    fn result_json(&self, id: &str) -> Result<String, PluginError> {
        let mut store = self.lock();
        let at = store.position(id).ok_or_else(|| does_not_exist(id))?;
        Ok(store.results[at].to_json())
    }

    /// Replace the stored result with `result.id` ([`UPDATE`]).
    fn update(&self, result: TaskResultData) -> Result<(), PluginError> {
        let mut store = self.lock();
        let at = store
            .position(&result.id)
            .ok_or_else(|| does_not_exist(&result.id))?;
        store.results[at] = result;
        Ok(())
    }

    /// The store. A panic while it was held cannot leave it half-written (every write is one
    /// step), so a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The host's clock.
    fn now(&self) -> Result<DateTime<Utc>, PluginError> {
        let micros = self.host.now_micros();
        DateTime::from_timestamp_micros(micros).ok_or_else(|| {
            PluginError::other(format!(
                "the host clock returned {micros} µs since the epoch, which is out of range"
            ))
        })
    }
}

impl Store {
    /// Where the result `id` is stored, if it is.
    fn position(&mut self, id: &str) -> Option<usize> {
        self.index();
        let results = &self.results;
        self.positions
            .find(self.hasher.hash_one(id), |&at| results[at].id == id)
            .copied()
    }

    /// Bring the table of positions up to date (the ids not in it yet are all different).
    fn index(&mut self) {
        let (results, hasher) = (&self.results, &self.hasher);
        self.positions.reserve(results.len() - self.indexed, |&at| {
            hasher.hash_one(results[at].id.as_str())
        });
        for (at, result) in results.iter().enumerate().skip(self.indexed) {
            self.positions
                .insert_unique(hasher.hash_one(result.id.as_str()), at, |&at| {
                    hasher.hash_one(results[at].id.as_str())
                });
        }
        self.indexed = results.len();
    }

    /// `id` is greater than every stored id, so it is not stored.
    fn after_all(&self, id: &str) -> bool {
        self.ascending && self.results.last().is_none_or(|last| id > last.id.as_str())
    }

    /// Append `result`, unless its id is already stored.
    fn insert(&mut self, result: TaskResultData) -> Result<(), PluginError> {
        if !self.after_all(&result.id) {
            if self.position(&result.id).is_some() {
                return Err(already_stored(&result.id));
            }
            self.ascending = false;
        }
        self.results.push(result);
        Ok(())
    }

    /// Append `results`, or none of them if an id is already stored (or given twice).
    fn insert_all(&mut self, results: Vec<TaskResultData>) -> Result<(), PluginError> {
        let ascending = results
            .first()
            .is_none_or(|first| self.after_all(&first.id))
            && results.windows(2).all(|pair| pair[0].id < pair[1].id);
        if !ascending {
            let mut new_ids = HashSet::with_capacity(results.len());
            for result in &results {
                if !new_ids.insert(result.id.as_str()) || self.position(&result.id).is_some() {
                    return Err(already_stored(&result.id));
                }
            }
            self.ascending = false;
        }
        self.results.extend(results);
        Ok(())
    }

    fn clear(&mut self) {
        self.results.clear();
        self.positions.clear();
        self.indexed = 0;
        self.ascending = true;
    }
}

fn already_stored(id: &str) -> PluginError {
    PluginError::new(
        ErrorKind::INVALID_REQUEST,
        format!("A result with id '{id}' is already stored."),
    )
}

impl Backend for DummyBackend {
    fn capabilities(&self) -> Capabilities {
        guard_or(Capabilities::NONE, || {
            Capabilities::DEFER
                | Capabilities::ASYNC_TASK
                | Capabilities::PRIORITY
                | Capabilities::ENQUEUE_DELTA
        })
    }

    fn check(&self) -> PluginResult<RString> {
        guard(|| Ok(RString::from("[]")))
    }

    fn enqueue(&self, request: RStr<'_>) -> PluginResult<RString> {
        guard(|| {
            self.enqueue_one(request.as_str(), "enqueue", TaskResultData::to_json)
                .map(RString::from)
        })
    }

    fn enqueue_many(&self, requests: RStr<'_>) -> PluginResult<RString> {
        guard(|| {
            let requests = serde_json::from_str(requests.as_str())
                .map_err(|e| PluginError::invalid_request("enqueue_many", e))?;
            let payloads = self.enqueue_all(requests, TaskResultData::to_json)?;
            Ok(RString::from(format!("[{}]", payloads.join(","))))
        })
    }

    fn get_result(&self, id: RStr<'_>) -> PluginResult<RString> {
        guard(|| self.result_json(id.as_str()).map(RString::from))
    }

    fn claim(&self, _request: RStr<'_>) -> PluginResult<RString> {
        guard(|| Err(PluginError::not_supported("claim")))
    }

    fn complete(&self, _request: RStr<'_>) -> PluginResult<RString> {
        guard(|| Err(PluginError::not_supported("complete")))
    }

    fn renew_leases(&self, _request: RStr<'_>) -> PluginResult<RString> {
        guard(|| Err(PluginError::not_supported("renew_leases")))
    }

    fn release(&self, _request: RStr<'_>) -> PluginResult<RString> {
        guard(|| Err(PluginError::not_supported("release")))
    }

    fn call_ext(&self, operation: RStr<'_>, request: RStr<'_>) -> PluginResult<RString> {
        let request = request.as_str();
        match operation.as_str() {
            ops::ENQUEUE_DELTA => guard(|| {
                self.enqueue_one(request, ops::ENQUEUE_DELTA, |result| {
                    ResultDelta::copied_from(result).to_json()
                })
                .map(RString::from)
            }),
            ops::RESULTS => guard_json(ops::RESULTS, request, |_: Value| {
                Ok(self.lock().results.clone())
            }),
            ops::CLEAR => guard_json(ops::CLEAR, request, |_: Value| {
                self.lock().clear();
                Ok(())
            }),
            UPDATE => guard_json(UPDATE, request, |result: TaskResultData| {
                self.update(result)
            }),
            other => guard(|| Err(PluginError::not_supported(other))),
        }
    }

    fn close(&self) {
        guard_or((), || {});
    }
}

/// Fail with [`ErrorKind::INVALID_OPTIONS`] naming every option given: this backend takes none.
fn reject_options(params: &BackendParams) -> Result<(), PluginError> {
    if params.options.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = params.options.keys().map(|k| format!("'{k}'")).collect();
    Err(PluginError::new(
        ErrorKind::INVALID_OPTIONS,
        format!(
            "Unknown option(s) for {CLASS} '{}': {}. This backend takes no options.",
            params.alias,
            keys.join(", ")
        ),
    ))
}

/// Django's `TaskResultDoesNotExist(result_id)`: the message is the id.
fn does_not_exist(id: &str) -> PluginError {
    PluginError::new(ErrorKind::RESULT_DOES_NOT_EXIST, id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;
    use taskhost_plugin_api::wire::TaskResultStatus;
    use taskhost_plugin_api::{
        abi_stable::{
            sabi_trait::TD_Opaque,
            std_types::{RArc, RResult},
        },
        log::install_forwarder,
        wire::TaskDescription,
        Host, Host_TO, LogLevel,
    };

    const START_MICROS: i64 = 1_700_000_000_000_000;

    /// Log records of every fake host: the log forwarder is installed once per process, bound
    /// to whichever host installed it.
    static LOGS: Mutex<Vec<(LogLevel, String, String)>> = Mutex::new(Vec::new());

    /// A host that records signals, runs nothing, and whose clock ticks 1 µs per reading.
    #[derive(Clone)]
    struct FakeHost {
        signals: Arc<Mutex<Vec<(Signal, TaskResultData)>>>,
        runs: Arc<Mutex<usize>>,
        clock: Arc<AtomicI64>,
    }

    impl FakeHost {
        fn new() -> Self {
            Self {
                signals: Arc::default(),
                runs: Arc::default(),
                clock: Arc::new(AtomicI64::new(START_MICROS)),
            }
        }

        fn signals(&self) -> Vec<(Signal, TaskResultData)> {
            self.signals.lock().unwrap().clone()
        }
    }

    impl Host for FakeHost {
        fn run_task(&self, _task_result: RStr<'_>) -> PluginResult<RString> {
            *self.runs.lock().unwrap() += 1;
            RResult::RErr(PluginError::other("the Dummy backend must not run tasks"))
        }

        fn wants_signal(&self, _signal: Signal) -> bool {
            true
        }

        fn send_signal(&self, signal: Signal, task_result: RStr<'_>) {
            let result = serde_json::from_str(task_result.as_str()).unwrap();
            self.signals.lock().unwrap().push((signal, result));
        }

        fn log_enabled(&self, _level: LogLevel, _target: RStr<'_>) -> bool {
            true
        }

        fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>) {
            let record = (level, target.to_string(), message.to_string());
            LOGS.lock().unwrap().push(record);
        }

        fn now_micros(&self) -> i64 {
            self.clock.fetch_add(1, Ordering::SeqCst)
        }

        fn call_ext(&self, operation: RStr<'_>, _request: RStr<'_>) -> PluginResult<RString> {
            RResult::RErr(PluginError::not_supported(operation.as_str()))
        }
    }

    fn host_box(fake: &FakeHost) -> HostBox {
        Host_TO::from_ptr(RArc::new(fake.clone()), TD_Opaque)
    }

    fn params(alias: &str) -> BackendParams {
        BackendParams {
            alias: alias.to_string(),
            backend: "taskhost.backends.dummy.DummyBackend".to_string(),
            ..BackendParams::default()
        }
    }

    fn backend() -> (DummyBackend, FakeHost) {
        let fake = FakeHost::new();
        let host = host_box(&fake);
        // Every test installs the log forwarder before a backend logs: a tracing callsite first
        // hit before the global dispatcher exists can stay disabled, losing the log test's event.
        install_forwarder(&host);
        let backend = DummyBackend::new(params("default"), host).unwrap();
        (backend, fake)
    }

    fn request(id: &str) -> Value {
        let task = TaskDescription {
            path: "tests::add".to_string(),
            priority: 0,
            queue_name: "default".to_string(),
            backend: "default".to_string(),
            run_after: None,
            takes_context: false,
            is_async: false,
            max_attempts: None,
            timeout_secs: None,
        };
        json!({ "id": id, "task": task, "args": [1], "kwargs": { "two": 3 } })
    }

    fn enqueue(backend: &DummyBackend, id: &str) -> TaskResultData {
        let out = backend
            .enqueue(RStr::from_str(&request(id).to_string()))
            .unwrap();
        serde_json::from_str(out.as_str()).unwrap()
    }

    fn get(backend: &DummyBackend, id: &str) -> PluginResult<TaskResultData> {
        backend
            .get_result(RStr::from_str(id))
            .map(|json| serde_json::from_str(json.as_str()).unwrap())
    }

    fn results(backend: &DummyBackend) -> Vec<TaskResultData> {
        let out = backend
            .call_ext(RStr::from_str(ops::RESULTS), RStr::from_str("{}"))
            .unwrap();
        serde_json::from_str(out.as_str()).unwrap()
    }

    fn ids(results: &[TaskResultData]) -> Vec<&str> {
        results.iter().map(|r| r.id.as_str()).collect()
    }

    #[test]
    fn capabilities_are_defer_async_task_and_priority_and_the_delta_enqueue() {
        let (backend, _) = backend();
        let caps = backend.capabilities();
        assert_eq!(
            caps,
            Capabilities::DEFER
                | Capabilities::ASYNC_TASK
                | Capabilities::PRIORITY
                | Capabilities::ENQUEUE_DELTA
        );
        assert!(!caps.contains(Capabilities::GET_RESULT));
    }

    #[test]
    fn enqueue_stores_a_ready_result_and_never_runs_it() {
        let (backend, fake) = backend();
        let result = enqueue(&backend, "r1");
        assert_eq!(result.id, "r1");
        assert_eq!(result.status, TaskResultStatus::Ready);
        assert_eq!(
            result.enqueued_at,
            Some(DateTime::from_timestamp_micros(START_MICROS).unwrap())
        );
        assert_eq!(result.started_at, None);
        assert_eq!(result.finished_at, None);
        assert_eq!(result.last_attempted_at, None);
        assert!(result.worker_ids.is_empty());
        assert!(result.errors.is_empty());
        assert_eq!(result.return_value, None);
        assert_eq!(result.args, vec![json!(1)]);
        assert_eq!(result.kwargs.get("two"), Some(&json!(3)));
        assert_eq!(result.backend, "default");
        assert_eq!(*fake.runs.lock().unwrap(), 0);
    }

    #[test]
    fn a_stored_result_stays_ready_forever() {
        let (backend, _) = backend();
        enqueue(&backend, "r1");
        enqueue(&backend, "r2");
        assert_eq!(get(&backend, "r1").unwrap().status, TaskResultStatus::Ready);
    }

    #[test]
    fn enqueue_sends_task_enqueued_only() {
        let (backend, fake) = backend();
        let result = enqueue(&backend, "r1");
        assert_eq!(fake.signals(), vec![(Signal::TASK_ENQUEUED, result)]);
    }

    #[test]
    fn the_returned_result_equals_the_stored_one() {
        let (backend, _) = backend();
        let result = enqueue(&backend, "r1");
        assert_eq!(get(&backend, "r1").unwrap(), result);
    }

    #[test]
    fn the_delta_enqueue_stores_the_same_result_and_answers_what_it_set() {
        let (backend, fake) = backend();
        let payload = request("r1").to_string();
        let op = RStr::from_str(ops::ENQUEUE_DELTA);
        let out = backend.call_ext(op, RStr::from_str(&payload)).unwrap();
        let delta = ResultDelta::from_json(out.as_str()).unwrap();
        let stored = get(&backend, "r1").unwrap();
        assert_eq!(delta, ResultDelta::copied_from(&stored));
        assert_eq!(delta.status, TaskResultStatus::Ready);
        assert!(delta.enqueued_at.is_some());
        let sent: EnqueueRequest = serde_json::from_str(&payload).unwrap();
        assert_eq!(delta.apply(sent, "default"), stored);
        assert_eq!(fake.signals(), vec![(Signal::TASK_ENQUEUED, stored)]);
        let again = backend.call_ext(op, RStr::from_str(&payload)).unwrap_err();
        assert_eq!(results(&backend).len(), 1, "{}", again.message);
    }

    #[test]
    fn results_are_kept_in_enqueue_order() {
        let (backend, _) = backend();
        for id in ["c", "a", "b"] {
            enqueue(&backend, id);
        }
        assert_eq!(ids(&results(&backend)), vec!["c", "a", "b"]);
    }

    #[test]
    fn get_result_of_a_missing_id_says_the_id() {
        let (backend, _) = backend();
        enqueue(&backend, "r1");
        let err = get(&backend, "nope").unwrap_err();
        assert_eq!(err.kind, ErrorKind::RESULT_DOES_NOT_EXIST);
        assert_eq!(err.message.as_str(), "nope");
    }

    #[test]
    fn clear_removes_every_result() {
        let (backend, _) = backend();
        enqueue(&backend, "r1");
        enqueue(&backend, "r2");
        let out = backend
            .call_ext(RStr::from_str(ops::CLEAR), RStr::from_str("{}"))
            .unwrap();
        assert_eq!(out.as_str(), "null");
        assert!(results(&backend).is_empty());
        let err = get(&backend, "r1").unwrap_err();
        assert_eq!(err.kind, ErrorKind::RESULT_DOES_NOT_EXIST);
        enqueue(&backend, "r1");
        assert_eq!(ids(&results(&backend)), vec!["r1"]);
    }

    #[test]
    fn update_replaces_the_stored_result() {
        let (backend, _) = backend();
        enqueue(&backend, "r1");
        enqueue(&backend, "r2");
        let mut changed = get(&backend, "r1").unwrap();
        changed.status = TaskResultStatus::Successful;
        let payload = serde_json::to_string(&changed).unwrap();
        let out = backend
            .call_ext(RStr::from_str(UPDATE), RStr::from_str(&payload))
            .unwrap();
        assert_eq!(out.as_str(), "null");
        assert_eq!(get(&backend, "r1").unwrap(), changed);
        assert_eq!(ids(&results(&backend)), vec!["r1", "r2"]);
    }

    #[test]
    fn update_of_a_missing_id_says_the_id() {
        let (backend, _) = backend();
        let mut ghost = enqueue(&backend, "r1");
        ghost.id = "ghost".to_string();
        let payload = serde_json::to_string(&ghost).unwrap();
        let err = backend
            .call_ext(RStr::from_str(UPDATE), RStr::from_str(&payload))
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::RESULT_DOES_NOT_EXIST);
        assert_eq!(err.message.as_str(), "ghost");
    }

    #[test]
    fn enqueue_many_stores_all_in_order_and_signals_each() {
        let (backend, fake) = backend();
        let payload = json!([request("a"), request("b"), request("c")]).to_string();
        let out = backend.enqueue_many(RStr::from_str(&payload)).unwrap();
        let returned: Vec<TaskResultData> = serde_json::from_str(out.as_str()).unwrap();
        assert_eq!(ids(&returned), vec!["a", "b", "c"]);
        assert_eq!(results(&backend), returned);
        assert!(returned
            .iter()
            .all(|r| r.status == TaskResultStatus::Ready && r.enqueued_at.is_some()));
        let signalled: Vec<_> = fake.signals().into_iter().map(|(s, r)| (s, r.id)).collect();
        assert_eq!(
            signalled,
            ["a", "b", "c"].map(|id| (Signal::TASK_ENQUEUED, id.to_string()))
        );
    }

    #[test]
    fn enqueue_many_with_a_stored_id_stores_nothing() {
        let (backend, fake) = backend();
        enqueue(&backend, "b");
        let payload = json!([request("a"), request("b")]).to_string();
        let err = backend.enqueue_many(RStr::from_str(&payload)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::INVALID_REQUEST);
        assert_eq!(
            err.message.as_str(),
            "A result with id 'b' is already stored."
        );
        assert_eq!(ids(&results(&backend)), vec!["b"]);
        assert_eq!(fake.signals().len(), 1);
    }

    #[test]
    fn enqueue_of_a_stored_id_is_refused_and_signals_nothing() {
        let (backend, fake) = backend();
        enqueue(&backend, "a");
        let payload = request("a").to_string();
        for out in [
            backend.enqueue(RStr::from_str(&payload)),
            backend.call_ext(RStr::from_str(ops::ENQUEUE_DELTA), RStr::from_str(&payload)),
        ] {
            let err = out.unwrap_err();
            assert_eq!(err.kind, ErrorKind::INVALID_REQUEST);
            assert_eq!(
                err.message.as_str(),
                "A result with id 'a' is already stored."
            );
        }
        assert_eq!(ids(&results(&backend)), vec!["a"]);
        assert_eq!(fake.signals().len(), 1);
    }

    #[test]
    fn enqueue_many_with_an_id_given_twice_stores_nothing() {
        let (backend, _) = backend();
        let payload = json!([request("a"), request("b"), request("a")]).to_string();
        let err = backend.enqueue_many(RStr::from_str(&payload)).unwrap_err();
        assert_eq!(
            err.message.as_str(),
            "A result with id 'a' is already stored."
        );
        assert!(results(&backend).is_empty());
    }

    #[test]
    fn ids_stored_in_ascending_order_are_still_refused_and_found_once_the_order_breaks() {
        let (backend, _) = backend();
        // Ascending (the host's UUID v7 order): pushed without a lookup.
        for id in ["k1", "k2"] {
            enqueue(&backend, id);
        }
        let batch = json!([request("k3"), request("k4")]).to_string();
        backend.enqueue_many(RStr::from_str(&batch)).unwrap();
        // Each of them is refused again, alone or in a batch after the last.
        for id in ["k1", "k3", "k4"] {
            let err = backend
                .enqueue(RStr::from_str(&request(id).to_string()))
                .unwrap_err();
            assert_eq!(
                err.message.as_str(),
                format!("A result with id '{id}' is already stored.")
            );
        }
        let batch = json!([request("k5"), request("k2")]).to_string();
        assert!(backend.enqueue_many(RStr::from_str(&batch)).is_err());
        // An id below the last, not stored, is taken; the order is broken from then on.
        enqueue(&backend, "a0");
        assert!(backend
            .enqueue(RStr::from_str(&request("k3").to_string()))
            .is_err());
        enqueue(&backend, "k9");
        for id in ["k2", "k9"] {
            assert!(backend
                .enqueue(RStr::from_str(&request(id).to_string()))
                .is_err());
        }
        assert_eq!(
            ids(&results(&backend)),
            vec!["k1", "k2", "k3", "k4", "a0", "k9"]
        );
        for id in ["k1", "k2", "k3", "k4", "a0", "k9"] {
            assert_eq!(get(&backend, id).unwrap().id, id);
        }
    }

    #[test]
    fn every_result_is_found_by_id_as_the_store_grows_and_after_clear() {
        let (backend, _) = backend();
        let all: Vec<String> = (0..1000).map(|i| format!("id-{i}")).collect();
        let batch = json!(all[..500].iter().map(|id| request(id)).collect::<Vec<_>>());
        backend
            .enqueue_many(RStr::from_str(&batch.to_string()))
            .unwrap();
        for id in &all[500..] {
            enqueue(&backend, id);
        }
        for id in &all {
            let stored = backend.get_result(RStr::from_str(id)).unwrap();
            let stored: TaskResultData = serde_json::from_str(stored.as_str()).unwrap();
            assert_eq!(&stored.id, id);
        }
        backend
            .call_ext(RStr::from_str(ops::CLEAR), RStr::from_str("{}"))
            .unwrap();
        let err = backend.get_result(RStr::from_str("id-0")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::RESULT_DOES_NOT_EXIST);
        enqueue(&backend, "id-0");
        assert_eq!(ids(&results(&backend)), vec!["id-0"]);
    }

    #[test]
    fn unknown_operations_and_queue_store_methods_are_not_supported() {
        let (backend, _) = backend();
        let empty = RStr::from_str("{}");
        let calls = [
            ("claim", backend.claim(empty)),
            ("complete", backend.complete(empty)),
            ("renew_leases", backend.renew_leases(empty)),
            ("release", backend.release(empty)),
            ("prune", backend.call_ext(RStr::from_str(ops::PRUNE), empty)),
        ];
        for (operation, out) in calls {
            let err = out.unwrap_err();
            assert_eq!(err.kind, ErrorKind::NOT_SUPPORTED, "{operation}");
            assert_eq!(
                err.message.as_str(),
                format!("This backend does not support '{operation}'.")
            );
        }
    }

    #[test]
    fn a_bad_extension_payload_is_an_invalid_request() {
        let (backend, _) = backend();
        let err = backend
            .call_ext(RStr::from_str(UPDATE), RStr::from_str("{}"))
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::INVALID_REQUEST);
        assert!(
            err.message
                .starts_with(&format!("invalid {UPDATE} payload: ")),
            "{err}"
        );
    }

    #[test]
    fn check_reports_nothing() {
        let (backend, _) = backend();
        assert_eq!(backend.check().unwrap().as_str(), "[]");
        backend.close();
    }

    #[test]
    fn options_are_rejected_by_name() {
        let fake = FakeHost::new();
        let mut params = params("default");
        params
            .options
            .insert("results_limit".to_string(), json!(10));
        let err = DummyBackend::new(params, host_box(&fake)).err().unwrap();
        assert_eq!(err.kind, ErrorKind::INVALID_OPTIONS);
        assert_eq!(
            err.message.as_str(),
            "Unknown option(s) for DummyBackend 'default': 'results_limit'. \
             This backend takes no options."
        );
    }

    #[test]
    fn creating_a_backend_logs_one_debug_event_through_the_host() {
        let fake = FakeHost::new();
        let host = host_box(&fake);
        install_forwarder(&host);
        DummyBackend::new(params("log-check"), host).unwrap();
        let logs = LOGS.lock().unwrap();
        let created: Vec<_> = logs
            .iter()
            .filter(|(_, _, message)| message.ends_with("alias=log-check"))
            .collect();
        assert_eq!(created.len(), 1, "{logs:?}");
        let (level, _, message) = created[0];
        assert_eq!(*level, LogLevel::DEBUG);
        assert_eq!(message, "DummyBackend created alias=log-check");
    }
}
