//! `acme.spool.SpoolBackend`: the guide's minimal plugin (`MemoBackend`, built by this crate as
//! its `acme_memo` example) with the in-memory list replaced by a spool file. Every enqueued task
//! is appended to the file as one JSON line (a [`TaskResultData`], status `READY`); whoever
//! consumes the file may append updated lines. `get_result(id)` returns the last line with that
//! id and `results()` every line, so both see those updates and other processes' tasks. Option
//! `path` (required): the file, relative to the directory of `tasks.toml`; created if missing.

use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use taskhost_plugin_api::{
    Backend, BackendParams, Capabilities, CheckMessage, EnqueueRequest, ErrorKind, Host,
    PluginError, Signal, TaskResultData,
};

taskhost_plugin_api::export_plugin! {
    module_path: "acme.spool",
    classes: { "SpoolBackend" => SpoolBackend::new },
}

/// Appends every enqueued task to a JSON-lines spool file (see the crate docs).
pub struct SpoolBackend {
    alias: String,
    host: Host,
    path: PathBuf,
    spool: Mutex<Spool>,
}

/// The open file. `torn`: a write failed part-way, so the next one starts on a fresh line.
struct Spool {
    file: File,
    torn: bool,
}

impl SpoolBackend {
    /// Builds the backend of one alias: checks the options and opens the file for appending.
    pub fn new(params: BackendParams, host: Host) -> Result<Self, PluginError> {
        let path = spool_path(&params)?;
        let file = OpenOptions::new().create(true).append(true).open(&path);
        let cannot_open = |e| format!("cannot open the spool file '{}': {e}", path.display());
        let file = file.map_err(|e| PluginError::invalid_options(cannot_open(e)))?;
        let alias = params.alias;
        tracing::info!(%alias, path = %path.display(), "SpoolBackend created");
        let spool = Mutex::new(Spool { file, torn: false });
        Ok(Self {
            alias,
            host,
            path,
            spool,
        })
    }

    /// The spool file (absolute if the option or the config dir was).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line per result with a single `write_all` under the lock: concurrent
    /// enqueues never interleave, and the lines are in the file when enqueue returns.
    fn append(&self, results: &[TaskResultData]) -> Result<(), PluginError> {
        let failed = |e: serde_json::Error| PluginError::other(format!("cannot encode: {e}"));
        let mut lines = String::new();
        for result in results {
            let mut line = serde_json::to_string(result).map_err(failed)?;
            if line.contains('\n') {
                // Argument text with line breaks between its values: compacted, one line each.
                line = serde_json::from_str::<Value>(&line)
                    .map_err(failed)?
                    .to_string();
            }
            lines.push_str(&line);
            lines.push('\n');
        }
        let mut spool = self.lock();
        if spool.torn {
            lines.insert(0, '\n');
        }
        let written = spool.file.write_all(lines.as_bytes()); // `File` has no buffer to flush
        spool.torn = written.is_err();
        written.map_err(|e| self.unavailable("append to", e))
    }

    /// Every complete line of the file, oldest first. A line that is not a task result is
    /// skipped with a warning; a last line without its newline (being written) is left out.
    fn read_all(&self) -> Result<Vec<TaskResultData>, PluginError> {
        let _no_write_meanwhile = self.lock();
        let file = File::open(&self.path).map_err(|e| self.unavailable("read", e))?;
        let (mut reader, mut results, mut line) = (BufReader::new(file), Vec::new(), Vec::new());
        for number in 1.. {
            line.clear();
            let read = reader.read_until(b'\n', &mut line);
            if read.map_err(|e| self.unavailable("read", e))? == 0 || !line.ends_with(b"\n") {
                break;
            }
            match serde_json::from_slice(&line) {
                Ok(result) => results.push(result),
                Err(e) => tracing::warn!(line = number, "skipping an unreadable spool line: {e}"),
            }
        }
        Ok(results)
    }

    /// The open file. Every write is one `write_all`, and `torn` covers a failed one, so a
    /// panic while the lock was held left nothing half-done: a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, Spool> {
        self.spool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn unavailable(&self, what: &str, e: std::io::Error) -> PluginError {
        let message = format!("could not {what} '{}': {e}", self.path.display());
        PluginError::new(ErrorKind::UNAVAILABLE, message)
    }
}

impl Backend for SpoolBackend {
    fn capabilities(&self) -> Capabilities {
        Capabilities::DEFER | Capabilities::PRIORITY | Capabilities::GET_RESULT
    }

    fn enqueue(&self, request: EnqueueRequest) -> Result<TaskResultData, PluginError> {
        let mut results = self.enqueue_many(vec![request])?;
        Ok(results.remove(0))
    }

    /// All requests in one write (all or none), then `task_enqueued` for each.
    fn enqueue_many(
        &self,
        requests: Vec<EnqueueRequest>,
    ) -> Result<Vec<TaskResultData>, PluginError> {
        let enqueued_at = Some(self.host.now());
        let ready = |request| TaskResultData {
            enqueued_at,
            ..TaskResultData::ready(request, &self.alias)
        };
        let results: Vec<TaskResultData> = requests.into_iter().map(ready).collect();
        self.append(&results)?;
        for result in &results {
            self.host.send_signal(Signal::TASK_ENQUEUED, result);
        }
        Ok(results)
    }

    fn get_result(&self, id: &str) -> Result<TaskResultData, PluginError> {
        let results = self.read_all()?;
        let last = results.into_iter().rev().find(|result| result.id == id);
        last.ok_or_else(|| PluginError::does_not_exist(id))
    }

    fn results(&self) -> Result<Vec<TaskResultData>, PluginError> {
        self.read_all()
    }

    /// An error when the file was removed since it was opened: new lines go nowhere anyone reads.
    fn check(&self) -> Result<Vec<CheckMessage>, PluginError> {
        let message = match std::fs::metadata(&self.path) {
            Ok(_) => return Ok(Vec::new()),
            Err(e) => format!("the spool file '{}' was removed: {e}", self.path.display()),
        };
        let hint = Some("restart the application to create it again".to_string());
        Ok(vec![CheckMessage {
            level: "error".into(),
            message,
            hint,
        }])
    }
}

/// The `path` option, resolved against the config dir when relative.
fn spool_path(params: &BackendParams) -> Result<PathBuf, PluginError> {
    let unknown = params.options.keys().find(|option| *option != "path");
    let detail = match (params.options.get("path"), unknown) {
        (_, Some(option)) => format!("unknown option '{option}'; it takes only 'path'"),
        (Some(Value::String(path)), None) if !path.is_empty() => {
            let config_dir = Path::new(params.config_dir.as_deref().unwrap_or(""));
            return Ok(config_dir.join(path)); // an absolute `path` is kept as it is
        }
        (Some(other), None) => format!("option 'path' is not a file: {other}"),
        (None, None) => "option 'path' is required".to_string(),
    };
    Err(PluginError::invalid_options(detail))
}

#[cfg(test)]
mod tests;
