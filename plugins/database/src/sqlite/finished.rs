//! Waiting for results to finish on SQLite (`taskhost.wait_finished`): the file-change
//! mechanism of `wake.rs` (decision 011) on a third file next to the database, `<db>-done`,
//! which the plugin touches right after every commit that finishes tasks (a completion batch,
//! a rescue that fails one), in whichever process made it
//! (`docs/decisions/023-waiting-for-results.md`).
//!
//! A waiter starts the watch, reads how many touches it has seen, then reads its rows; it
//! blocks on a condition variable until the watch reports another touch, and reads its rows
//! again. The commit is visible before its touch is reported, so no completion is missed, and
//! the store is read only after a completion, never on a timer. Only processes that wait watch
//! the file: workers just touch it.

use super::SqliteStore;
use crate::error::{Error, Result};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use taskhost_plugin_api::{WaitFinishedResponse, WAIT_FINISHED};

/// The touches of `<db>-done` seen so far.
#[derive(Default)]
struct Signal {
    state: Mutex<SignalState>,
    changed: Condvar,
}

#[derive(Default)]
struct SignalState {
    touches: u64,
    closed: bool,
}

enum Watch {
    NotStarted,
    Running(#[allow(dead_code)] RecommendedWatcher),
    Unsupported,
    Closed,
}

/// `<db>-done`: touched after commits that finish tasks, watched by waits.
pub struct Done {
    file: PathBuf,
    /// The file, opened by the first touch (`None` again after a failed touch).
    touch: Mutex<Option<File>>,
    signal: Arc<Signal>,
    watch: Mutex<Watch>,
    /// Set by a rescue that failed a task, inside its transaction: the caller touches the
    /// file after the commit.
    failed_by_rescue: AtomicBool,
}

impl Done {
    /// The done file of the database at `path` (nothing is watched until a wait).
    pub fn new(path: &Path) -> Self {
        let absolute = std::fs::canonicalize(path)
            .or_else(|_| std::path::absolute(path))
            .unwrap_or_else(|_| path.to_path_buf());
        let mut name = absolute.into_os_string();
        name.push("-done");
        Self {
            file: PathBuf::from(name),
            touch: Mutex::new(None),
            signal: Arc::default(),
            watch: Mutex::new(Watch::NotStarted),
            failed_by_rescue: AtomicBool::new(false),
        }
    }

    /// Tell waits, in every process, that tasks just finished: touch the file. Call it after
    /// the commit. Failing to is logged (debug): waits then end at their timeout.
    pub fn finished(&self) {
        let mut touch = self.touch.lock();
        if touch.is_none() {
            match open(&self.file) {
                Ok(file) => *touch = Some(file),
                Err(err) => {
                    tracing::debug!(file = %self.file.display(), "could not open the file that wakes waits for results: {err}");
                    return;
                }
            }
        }
        if let Some(Err(err)) = touch.as_ref().map(|f| f.set_modified(SystemTime::now())) {
            tracing::debug!(file = %self.file.display(), "could not touch the file that wakes waits for results: {err}");
            *touch = None;
        }
    }

    /// A rescue (or a claim, of a row it cannot read) failed a task, inside its transaction:
    /// [`Done::after_rescue`] touches the file after the commit.
    pub fn failed_by_rescue(&self) {
        self.failed_by_rescue.store(true, Ordering::Release);
    }

    /// After a rescue or a claim (committed or not: a spurious touch only makes waits read
    /// their rows again): touch if it failed a task.
    pub fn after_rescue(&self) {
        if self.failed_by_rescue.swap(false, Ordering::AcqRel) {
            self.finished();
        }
    }

    /// Make sure the watch runs. [`Error::NotSupported`] where it cannot (the host then reads
    /// the result at a growing interval), [`Error::Unavailable`] once closed.
    fn start(&self) -> Result<()> {
        let mut watch = self.watch.lock();
        match &*watch {
            Watch::Running(_) => Ok(()),
            Watch::Unsupported => Err(Error::NotSupported(WAIT_FINISHED.into())),
            Watch::Closed => Err(closed()),
            Watch::NotStarted => match self.watcher() {
                Ok(watcher) => {
                    *watch = Watch::Running(watcher);
                    Ok(())
                }
                Err(err) => {
                    tracing::debug!(file = %self.file.display(), "{WAIT_FINISHED} is not supported here (the host reads results at a growing interval instead): cannot watch the file: {err}");
                    *watch = Watch::Unsupported;
                    Err(Error::NotSupported(WAIT_FINISHED.into()))
                }
            },
        }
    }

    fn watcher(&self) -> notify::Result<RecommendedWatcher> {
        if !super::wake::WATCH_SUPPORTED {
            return Err(notify::Error::generic(
                "this platform's file watcher (kqueue) is not known to be safe next to \
                 SQLite's file locks",
            ));
        }
        let signal = Arc::clone(&self.signal);
        let file = self.file.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let touched = match &event {
                    // An error (e.g. the kernel's event queue overflowed) may hide a touch.
                    Err(_) => true,
                    Ok(event) if event.need_rescan() => true,
                    Ok(event) => super::wake::is_touch(&event.kind) && event.paths.contains(&file),
                };
                if touched {
                    let mut state = signal.state.lock();
                    state.touches = state.touches.wrapping_add(1);
                    signal.changed.notify_all();
                }
            })?;
        open(&self.file)?;
        watcher.watch(&self.file, RecursiveMode::NonRecursive)?;
        Ok(watcher)
    }

    /// The touches seen so far.
    fn touches(&self) -> Result<u64> {
        let state = self.signal.state.lock();
        if state.closed {
            return Err(closed());
        }
        Ok(state.touches)
    }

    /// Block until the watch reports a touch that `seen` does not include (`true`), or
    /// `deadline` (`false`).
    fn wait_change(&self, seen: u64, deadline: Instant) -> Result<bool> {
        let mut state = self.signal.state.lock();
        loop {
            if state.closed {
                return Err(closed());
            }
            if state.touches != seen {
                return Ok(true);
            }
            if self
                .signal
                .changed
                .wait_until(&mut state, deadline)
                .timed_out()
            {
                return Ok(state.touches != seen);
            }
        }
    }

    /// Stop watching and end pending waits (they fail with [`Error::Unavailable`]).
    pub fn close(&self) {
        drop(std::mem::replace(&mut *self.watch.lock(), Watch::Closed));
        let mut state = self.signal.state.lock();
        state.closed = true;
        self.signal.changed.notify_all();
    }
}

fn open(file: &Path) -> std::io::Result<File> {
    File::options()
        .create(true)
        .write(true)
        .truncate(false)
        .open(file)
}

fn closed() -> Error {
    Error::Unavailable("the database backend is closed; no more operations are possible".into())
}

impl SqliteStore {
    /// `taskhost.wait_finished`: block until every result of `ids` is finished, or `timeout`.
    /// The rows are read once after the watch starts, then once after each touch of the done
    /// file — never on a timer.
    pub(super) fn wait_finished(
        &self,
        ids: &[(String, uuid::Uuid)],
        timeout: Duration,
    ) -> Result<WaitFinishedResponse> {
        self.done.start()?;
        let deadline = Instant::now() + timeout;
        let texts: Vec<String> = ids
            .iter()
            .map(|(_, id)| id.hyphenated().to_string())
            .collect();
        let list = super::json_list(&texts);
        let mut checks = 0;
        loop {
            // Read before the rows: a completion committed after the read touches the file.
            let seen = self.done.touches()?;
            checks += 1;
            let finished = self.read("checking whether results finished", |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT id, status IN ('SUCCESSFUL', 'FAILED') FROM taskhost_tasks \
                     WHERE id IN (SELECT value FROM json_each(?1))",
                )?;
                let rows = stmt.query_map([&list], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?))
                })?;
                let mut finished = HashMap::new();
                for row in rows {
                    let (id, done) = row?;
                    if let Some(id) = crate::row::parse_id(&id) {
                        finished.insert(id, done);
                    }
                }
                Ok(finished)
            })?;
            let answer = crate::store::finished_answer(ids, &finished, checks)?;
            if answer.pending.is_empty() || !self.done.wait_change(seen, deadline)? {
                return Ok(answer);
            }
        }
    }
}
