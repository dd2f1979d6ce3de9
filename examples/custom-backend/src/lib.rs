//! `acme.spool.SpoolBackend`: a third-party taskhost backend, built outside the taskhost
//! workspace against `taskhost-plugin-api` alone.
//!
//! Every enqueued task is appended to a spool file as one JSON line (a
//! [`TaskResultData`], status `READY`). `get_result(id)` returns the last line with that id, so a
//! consumer that processes the spool may append updated lines. The file is opened once, in append
//! mode; each enqueue writes its line(s) with a single `write_all` + flush under a mutex, so
//! concurrent enqueues never interleave.
//!
//! Options (`[tasks.<alias>.options]`):
//! - `path` (required): the spool file; a relative path is resolved against the config file's
//!   directory. It is created if missing; its directory must exist.
//!
//! Capabilities: `supports_defer`, `supports_priority`, `supports_get_result`. Extension
//! operation: [`ops::RESULTS`] (every line, oldest first).

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use taskhost_plugin_api::{
    abi_stable::std_types::{RStr, RString},
    guard,
    guard::guard_or,
    guard_json, ops,
    wire::{BackendParams, CheckMessage, EnqueueRequest, TaskResultData, TaskResultStatus},
    Backend, Capabilities, ErrorKind, HostBox, PluginError, PluginResult, Signal,
};

taskhost_plugin_api::export_plugin! {
    module_path: "acme.spool",
    classes: { "SpoolBackend" => SpoolBackend::new },
}

/// The class name this library exports.
pub const CLASS: &str = "SpoolBackend";

/// The one option: the spool file.
pub const PATH_OPTION: &str = "path";

/// Appends every enqueued task to a JSON-lines spool file (see the crate docs).
pub struct SpoolBackend {
    alias: String,
    path: PathBuf,
    host: HostBox,
    spool: Mutex<Spool>,
}

/// The open spool file. `torn` is set when a write failed part-way, so the next write starts
/// on a fresh line instead of extending the fragment.
struct Spool {
    file: File,
    torn: bool,
}

impl SpoolBackend {
    /// Build the backend for one alias of the host's config: checks the options and opens (or
    /// creates) the spool file for appending. Fails with [`ErrorKind::INVALID_OPTIONS`] naming
    /// the option at fault.
    pub fn new(params: BackendParams, host: HostBox) -> Result<Self, PluginError> {
        let path = spool_path(&params)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| {
                invalid_options(
                    &params.alias,
                    format!(
                        "cannot open the spool file '{}' (option '{PATH_OPTION}'): {e}",
                        path.display()
                    ),
                )
            })?;
        tracing::info!(alias = %params.alias, path = %path.display(), "SpoolBackend created");
        Ok(Self {
            alias: params.alias,
            path,
            host,
            spool: Mutex::new(Spool { file, torn: false }),
        })
    }

    /// The spool file (absolute if the option or the config dir was).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stamp and append every request as one line each, in one write, then send
    /// `task_enqueued` for each.
    fn enqueue_all(
        &self,
        requests: Vec<EnqueueRequest>,
    ) -> Result<Vec<TaskResultData>, PluginError> {
        let mut results = Vec::with_capacity(requests.len());
        let mut lines = String::new();
        for request in requests {
            let result = ready_result(request, &self.alias, self.now()?);
            lines.push_str(&encode(&result)?);
            lines.push('\n');
            results.push(result);
        }
        self.append(lines.as_bytes())?;
        for result in &results {
            self.send(Signal::TASK_ENQUEUED, result)?;
        }
        Ok(results)
    }

    /// Enqueue one task (see [`Self::enqueue_all`]).
    fn enqueue_one(&self, request: EnqueueRequest) -> Result<TaskResultData, PluginError> {
        self.enqueue_all(vec![request])?
            .pop()
            .ok_or_else(|| PluginError::other("enqueue wrote no line"))
    }

    /// Write `bytes` to the end of the spool with one `write_all`, then flush.
    fn append(&self, bytes: &[u8]) -> Result<(), PluginError> {
        let mut spool = self.lock();
        let mut buffer;
        let bytes = if spool.torn {
            buffer = Vec::with_capacity(bytes.len() + 1);
            buffer.push(b'\n');
            buffer.extend_from_slice(bytes);
            &buffer[..]
        } else {
            bytes
        };
        let written = spool
            .file
            .write_all(bytes)
            .and_then(|()| spool.file.flush());
        spool.torn = written.is_err();
        written.map_err(|e| self.unavailable("append to", e))
    }

    /// Every complete, readable line of the spool, oldest first. Lines that are not task results
    /// are skipped with a warning; a last line without its newline (still being written by
    /// another process) is left out.
    fn read_all(&self) -> Result<Vec<TaskResultData>, PluginError> {
        // Holding the writer's lock: no line of this process is read half-written.
        let _spool = self.lock();
        let file = File::open(&self.path).map_err(|e| self.unavailable("read", e))?;
        let mut reader = BufReader::new(file);
        let (mut results, mut line, mut number) = (Vec::new(), Vec::new(), 0usize);
        loop {
            line.clear();
            let read = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| self.unavailable("read", e))?;
            if read == 0 || line.last() != Some(&b'\n') {
                break;
            }
            number += 1;
            match serde_json::from_slice::<TaskResultData>(&line) {
                Ok(result) => results.push(result),
                Err(e) => tracing::warn!(
                    path = %self.path.display(),
                    line = number,
                    "skipping an unreadable spool line: {e}"
                ),
            }
        }
        Ok(results)
    }

    /// The last line with `id`; Django's `TaskResultDoesNotExist(result_id)` if there is none.
    fn result(&self, id: &str) -> Result<TaskResultData, PluginError> {
        self.read_all()?
            .into_iter()
            .rev()
            .find(|result| result.id == id)
            .ok_or_else(|| PluginError::new(ErrorKind::RESULT_DOES_NOT_EXIST, id))
    }

    /// Whether the spool file is still the one this backend appends to.
    fn check_messages(&self) -> Vec<CheckMessage> {
        let restart = "restart the application to open it again".to_string();
        let on_disk = match std::fs::metadata(&self.path) {
            Ok(metadata) => metadata,
            Err(e) => {
                return vec![CheckMessage {
                    level: "error".into(),
                    message: format!(
                        "the spool file '{}' cannot be read ({e}): it was removed after the \
                         backend opened it",
                        self.path.display()
                    ),
                    hint: Some(restart),
                }]
            }
        };
        if let Ok(open) = self.lock().file.metadata() {
            if !same_file(&open, &on_disk) {
                return vec![CheckMessage {
                    level: "error".into(),
                    message: format!(
                        "the spool file '{}' was replaced after the backend opened it: new tasks \
                         still go to the old file",
                        self.path.display()
                    ),
                    hint: Some(restart),
                }];
            }
        }
        Vec::new()
    }

    /// The spool. Every write is a single `write_all`, so a panic while the lock was held left
    /// nothing half-done that `torn` does not cover: a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, Spool> {
        self.spool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Send `signal` with `result`, building the payload only if the host listens.
    fn send(&self, signal: Signal, result: &TaskResultData) -> Result<(), PluginError> {
        if self.host.wants_signal(signal) {
            let payload = encode(result)?;
            self.host.send_signal(signal, RStr::from_str(&payload));
        }
        Ok(())
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

    /// An [`ErrorKind::UNAVAILABLE`] error for a failed file operation.
    fn unavailable(&self, what: &str, e: std::io::Error) -> PluginError {
        PluginError::new(
            ErrorKind::UNAVAILABLE,
            format!(
                "could not {what} the spool file '{}': {e}",
                self.path.display()
            ),
        )
    }
}

impl Backend for SpoolBackend {
    fn capabilities(&self) -> Capabilities {
        guard_or(Capabilities::NONE, || {
            Capabilities::DEFER | Capabilities::PRIORITY | Capabilities::GET_RESULT
        })
    }

    fn check(&self) -> PluginResult<RString> {
        guard(|| encode(&self.check_messages()).map(RString::from))
    }

    fn enqueue(&self, request: RStr<'_>) -> PluginResult<RString> {
        guard_json("enqueue", request.as_str(), |request: EnqueueRequest| {
            self.enqueue_one(request)
        })
    }

    fn enqueue_many(&self, requests: RStr<'_>) -> PluginResult<RString> {
        guard_json(
            "enqueue_many",
            requests.as_str(),
            |requests: Vec<EnqueueRequest>| self.enqueue_all(requests),
        )
    }

    fn get_result(&self, id: RStr<'_>) -> PluginResult<RString> {
        guard(|| encode(&self.result(id.as_str())?).map(RString::from))
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
        match operation.as_str() {
            ops::RESULTS => guard_json(ops::RESULTS, request.as_str(), |_: Value| self.read_all()),
            other => guard(|| Err(PluginError::not_supported(other))),
        }
    }

    fn close(&self) {
        // Every line is flushed as it is written; there is nothing left to do.
        guard_or((), || {});
    }
}

/// The spool file from the options, resolved against the config dir when relative.
fn spool_path(params: &BackendParams) -> Result<PathBuf, PluginError> {
    let alias = &params.alias;
    let unknown: Vec<String> = params
        .options
        .keys()
        .filter(|key| *key != PATH_OPTION)
        .map(|key| format!("'{key}'"))
        .collect();
    if !unknown.is_empty() {
        return Err(invalid_options(
            alias,
            format!(
                "unknown option(s) {}; it takes only '{PATH_OPTION}'",
                unknown.join(", ")
            ),
        ));
    }
    let path = match params.options.get(PATH_OPTION) {
        Some(Value::String(path)) if !path.is_empty() => Path::new(path),
        Some(Value::String(_)) => {
            return Err(invalid_options(
                alias,
                format!("option '{PATH_OPTION}' is empty; it names the spool file"),
            ))
        }
        Some(other) => {
            return Err(invalid_options(
                alias,
                format!("option '{PATH_OPTION}' must be a string (the spool file), not {other}"),
            ))
        }
        None => {
            return Err(invalid_options(
                alias,
                format!(
                    "option '{PATH_OPTION}' is required: the spool file enqueued tasks are \
                     appended to"
                ),
            ))
        }
    };
    Ok(match params.config_dir.as_deref() {
        Some(dir) if path.is_relative() && !dir.is_empty() => Path::new(dir).join(path),
        _ => path.to_path_buf(),
    })
}

/// An [`ErrorKind::INVALID_OPTIONS`] error about the options of `alias`.
fn invalid_options(alias: &str, detail: String) -> PluginError {
    PluginError::new(
        ErrorKind::INVALID_OPTIONS,
        format!("{CLASS} '{alias}': {detail}"),
    )
}

/// A READY result for `request`, stored at `enqueued_at`.
fn ready_result(
    request: EnqueueRequest,
    alias: &str,
    enqueued_at: DateTime<Utc>,
) -> TaskResultData {
    TaskResultData {
        id: request.id,
        task: request.task,
        status: TaskResultStatus::Ready,
        enqueued_at: Some(enqueued_at),
        started_at: None,
        finished_at: None,
        last_attempted_at: None,
        args: request.args,
        kwargs: request.kwargs,
        backend: alias.to_string(),
        errors: Vec::new(),
        worker_ids: Vec::new(),
        return_value: None,
    }
}

/// `value` as one line of JSON (serde_json escapes newlines inside strings).
fn encode<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, PluginError> {
    serde_json::to_string(value)
        .map_err(|e| PluginError::other(format!("could not encode the response: {e}")))
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

#[cfg(not(unix))]
fn same_file(_a: &std::fs::Metadata, _b: &std::fs::Metadata) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
    use std::sync::Arc;
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
        clock: Arc<AtomicI64>,
    }

    impl FakeHost {
        fn new() -> Self {
            Self {
                signals: Arc::default(),
                clock: Arc::new(AtomicI64::new(START_MICROS)),
            }
        }

        fn signals(&self) -> Vec<(Signal, TaskResultData)> {
            self.signals.lock().unwrap().clone()
        }
    }

    impl Host for FakeHost {
        fn run_task(&self, _task_result: RStr<'_>) -> PluginResult<RString> {
            RResult::RErr(PluginError::other("the spool backend must not run tasks"))
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

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "acme-spool-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::SeqCst)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn params(alias: &str, options: Value, config_dir: Option<&Path>) -> BackendParams {
        BackendParams {
            alias: alias.to_string(),
            backend: "acme.spool.SpoolBackend".to_string(),
            queues: Vec::new(),
            options: options.as_object().unwrap().clone(),
            config_dir: config_dir.map(|d| d.display().to_string()),
        }
    }

    /// A backend spooling to `spool.jsonl` in a fresh temp dir.
    fn backend() -> (SpoolBackend, FakeHost, TempDir) {
        let dir = TempDir::new();
        let fake = FakeHost::new();
        let path = dir.0.join("spool.jsonl");
        let params = params("default", json!({ "path": path }), None);
        let backend = SpoolBackend::new(params, host_box(&fake)).unwrap();
        (backend, fake, dir)
    }

    fn new_error(options: Value, config_dir: Option<&Path>) -> PluginError {
        let params = params("default", options, config_dir);
        SpoolBackend::new(params, host_box(&FakeHost::new()))
            .err()
            .expect("the options are invalid")
    }

    fn request(id: &str) -> Value {
        let task = TaskDescription {
            path: "tests::add".to_string(),
            priority: 10,
            queue_name: "default".to_string(),
            backend: "default".to_string(),
            run_after: None,
            takes_context: false,
            is_async: false,
            max_attempts: None,
            timeout_secs: None,
        };
        json!({ "id": id, "task": task, "args": [1, "two\nlines"], "kwargs": { "k": 3 } })
    }

    fn enqueue(backend: &SpoolBackend, id: &str) -> TaskResultData {
        let out = backend
            .enqueue(RStr::from_str(&request(id).to_string()))
            .unwrap();
        serde_json::from_str(out.as_str()).unwrap()
    }

    fn get(backend: &SpoolBackend, id: &str) -> PluginResult<TaskResultData> {
        backend
            .get_result(RStr::from_str(id))
            .map(|json| serde_json::from_str(json.as_str()).unwrap())
    }

    fn results(backend: &SpoolBackend) -> Vec<TaskResultData> {
        let out = backend
            .call_ext(RStr::from_str(ops::RESULTS), RStr::from_str("{}"))
            .unwrap();
        serde_json::from_str(out.as_str()).unwrap()
    }

    fn lines(backend: &SpoolBackend) -> Vec<String> {
        let text = std::fs::read_to_string(backend.path()).unwrap();
        text.lines().map(str::to_string).collect()
    }

    fn append_raw(backend: &SpoolBackend, text: &str) {
        let mut file = OpenOptions::new()
            .append(true)
            .open(backend.path())
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    fn ids(results: &[TaskResultData]) -> Vec<&str> {
        results.iter().map(|r| r.id.as_str()).collect()
    }

    #[test]
    fn capabilities_are_defer_priority_and_get_result() {
        let (backend, _, _dir) = backend();
        assert_eq!(
            backend.capabilities(),
            Capabilities::DEFER | Capabilities::PRIORITY | Capabilities::GET_RESULT
        );
    }

    #[test]
    fn enqueue_appends_one_ready_line_and_sends_task_enqueued() {
        let (backend, fake, _dir) = backend();
        let result = enqueue(&backend, "r1");
        assert_eq!(result.id, "r1");
        assert_eq!(result.status, TaskResultStatus::Ready);
        assert_eq!(
            result.enqueued_at,
            Some(DateTime::from_timestamp_micros(START_MICROS).unwrap())
        );
        assert_eq!(result.args, vec![json!(1), json!("two\nlines")]);
        assert_eq!(result.backend, "default");
        let lines = lines(&backend);
        assert_eq!(lines.len(), 1, "{lines:?}");
        let stored: TaskResultData = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(stored, result);
        assert_eq!(fake.signals(), vec![(Signal::TASK_ENQUEUED, result)]);
    }

    #[test]
    fn get_result_returns_the_last_line_with_the_id() {
        let (backend, _, _dir) = backend();
        let first = enqueue(&backend, "r1");
        enqueue(&backend, "r2");
        assert_eq!(get(&backend, "r1").unwrap(), first);
        let mut done = first.clone();
        done.status = TaskResultStatus::Successful;
        done.return_value = Some(json!(42));
        append_raw(
            &backend,
            &format!("{}\n", serde_json::to_string(&done).unwrap()),
        );
        assert_eq!(get(&backend, "r1").unwrap(), done);
    }

    #[test]
    fn get_result_of_a_missing_id_says_the_id() {
        let (backend, _, _dir) = backend();
        enqueue(&backend, "r1");
        let err = get(&backend, "nope").unwrap_err();
        assert_eq!(err.kind, ErrorKind::RESULT_DOES_NOT_EXIST);
        assert_eq!(err.message.as_str(), "nope");
    }

    #[test]
    fn results_lists_every_line_in_order() {
        let (backend, _, _dir) = backend();
        for id in ["c", "a", "b"] {
            enqueue(&backend, id);
        }
        assert_eq!(ids(&results(&backend)), vec!["c", "a", "b"]);
    }

    #[test]
    fn enqueue_many_appends_all_in_order() {
        let (backend, fake, _dir) = backend();
        let payload = json!([request("a"), request("b")]).to_string();
        let out = backend.enqueue_many(RStr::from_str(&payload)).unwrap();
        let returned: Vec<TaskResultData> = serde_json::from_str(out.as_str()).unwrap();
        assert_eq!(ids(&returned), vec!["a", "b"]);
        assert_eq!(results(&backend), returned);
        assert_eq!(fake.signals().len(), 2);
    }

    #[test]
    fn unreadable_and_unfinished_lines_are_skipped() {
        let (backend, _, _dir) = backend();
        enqueue(&backend, "r1");
        append_raw(&backend, "not json\n");
        enqueue(&backend, "r2");
        append_raw(&backend, "{\"id\": \"half-writ");
        assert_eq!(ids(&results(&backend)), vec!["r1", "r2"]);
        // The next line starts after the fragment: the fragment is one unreadable line.
        append_raw(&backend, "\n");
        enqueue(&backend, "r3");
        assert_eq!(ids(&results(&backend)), vec!["r1", "r2", "r3"]);
    }

    #[test]
    fn concurrent_enqueues_never_interleave() {
        let (backend, _, _dir) = backend();
        std::thread::scope(|scope| {
            for t in 0..4 {
                let backend = &backend;
                scope.spawn(move || {
                    for i in 0..25 {
                        enqueue(backend, &format!("{t}-{i}"));
                    }
                });
            }
        });
        let lines = lines(&backend);
        assert_eq!(lines.len(), 100);
        let mut seen: Vec<String> = lines
            .iter()
            .map(|l| serde_json::from_str::<TaskResultData>(l).unwrap().id)
            .collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 100);
    }

    #[test]
    fn a_relative_path_is_resolved_against_the_config_dir() {
        let dir = TempDir::new();
        let params = params("default", json!({ "path": "rel.jsonl" }), Some(&dir.0));
        let backend = SpoolBackend::new(params, host_box(&FakeHost::new())).unwrap();
        assert_eq!(backend.path(), dir.0.join("rel.jsonl"));
        enqueue(&backend, "r1");
        assert!(dir.0.join("rel.jsonl").is_file());
    }

    #[test]
    fn bad_options_are_invalid_options_naming_the_option() {
        let cases = [
            (
                json!({}),
                "SpoolBackend 'default': option 'path' is required: the spool file enqueued \
                 tasks are appended to",
            ),
            (
                json!({ "path": 3 }),
                "SpoolBackend 'default': option 'path' must be a string (the spool file), not 3",
            ),
            (
                json!({ "path": "" }),
                "SpoolBackend 'default': option 'path' is empty; it names the spool file",
            ),
            (
                json!({ "path": "x", "size": 1 }),
                "SpoolBackend 'default': unknown option(s) 'size'; it takes only 'path'",
            ),
        ];
        for (options, message) in cases {
            let err = new_error(options.clone(), None);
            assert_eq!(err.kind, ErrorKind::INVALID_OPTIONS, "{options}");
            assert_eq!(err.message.as_str(), message);
        }
    }

    #[test]
    fn a_spool_file_that_cannot_be_opened_is_named() {
        let dir = TempDir::new();
        let path = dir.0.join("missing-dir").join("spool.jsonl");
        let err = new_error(json!({ "path": path }), None);
        assert_eq!(err.kind, ErrorKind::INVALID_OPTIONS);
        assert!(
            err.message.starts_with(&format!(
                "SpoolBackend 'default': cannot open the spool file '{}' (option 'path'): ",
                path.display()
            )),
            "{err}"
        );
    }

    #[test]
    fn check_reports_a_removed_spool_file() {
        let (backend, _, _dir) = backend();
        assert_eq!(backend.check().unwrap().as_str(), "[]");
        std::fs::remove_file(backend.path()).unwrap();
        let messages: Vec<CheckMessage> =
            serde_json::from_str(backend.check().unwrap().as_str()).unwrap();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].level, "error");
        assert!(messages[0].message.contains("was removed"), "{messages:?}");
        let err = get(&backend, "r1").unwrap_err();
        assert_eq!(err.kind, ErrorKind::UNAVAILABLE);
        backend.close();
    }

    #[test]
    fn queue_store_methods_and_other_operations_are_not_supported() {
        let (backend, _, _dir) = backend();
        let empty = RStr::from_str("{}");
        let calls = [
            ("claim", backend.claim(empty)),
            ("complete", backend.complete(empty)),
            ("renew_leases", backend.renew_leases(empty)),
            ("release", backend.release(empty)),
            ("clear", backend.call_ext(RStr::from_str(ops::CLEAR), empty)),
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
    fn a_bad_payload_is_an_invalid_request() {
        let (backend, _, _dir) = backend();
        let err = backend.enqueue(RStr::from_str("{}")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::INVALID_REQUEST);
        assert!(
            err.message.starts_with("invalid enqueue payload: "),
            "{err}"
        );
        assert!(lines(&backend).is_empty());
    }

    #[test]
    fn creating_a_backend_logs_one_info_event_through_the_host() {
        let dir = TempDir::new();
        let fake = FakeHost::new();
        let host = host_box(&fake);
        install_forwarder(&host);
        let path = dir.0.join("log.jsonl");
        SpoolBackend::new(params("log-check", json!({ "path": path }), None), host).unwrap();
        let logs = LOGS.lock().unwrap();
        let created: Vec<_> = logs
            .iter()
            .filter(|(_, _, message)| message.contains("alias=log-check"))
            .collect();
        assert_eq!(created.len(), 1, "{logs:?}");
        let (level, target, message) = created[0];
        assert_eq!(*level, LogLevel::INFO);
        assert_eq!(target, "acme_spool");
        assert_eq!(
            message,
            &format!(
                "SpoolBackend created alias=log-check path={}",
                path.display()
            )
        );
    }
}
