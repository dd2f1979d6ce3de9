//! Cross-process wake-up for idle SQLite workers: a file-change watch on the database's `-wal`
//! file (see `docs/decisions/011-sqlite-wake-up.md`).
//!
//! Every commit to a database in WAL mode — from this plugin, another process, or an
//! application's own connection running the transactional insert — appends to `<db>-wal`, and
//! the operating system reports the write (inotify on Linux, FSEvents on macOS,
//! ReadDirectoryChangesW on Windows, through the `notify` crate). A write only says "something
//! committed": claims, completions and lease renewals of busy workers write too. So a waiter
//! woken by a write confirms with a cheap indexed query that a due READY row of its queues
//! exists before it answers `notified: true`; otherwise it keeps waiting.
//!
//! The watch is owned by the store: started by the first wait, kept between waits (so writes
//! made between two waits are counted, not lost), and stopped by [`Wake::close`]. On Linux
//! `notify` reads the inotify descriptor on one thread of its own, which ends when the watch is
//! dropped; waiters themselves block on a condition variable, never polling.

use super::SqliteStore;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use taskhost_plugin_api::wire::WaitRequest;

/// When a waiter whose check after a write found nothing checks again, counted from that
/// check. A commit's frames are written (and reported) just before SQLite makes them visible
/// to readers, so a check can race that moment and miss the task; the gap is microseconds,
/// unless the writer is descheduled there or fsyncs there (`synchronous = full`). The later
/// rechecks cover a writer stalled under load, at the cost of a few cheap queries per write.
const SETTLE: [Duration; 5] = [
    Duration::from_millis(5),
    Duration::from_millis(25),
    Duration::from_millis(100),
    Duration::from_millis(400),
    Duration::from_millis(1600),
];

/// Does a due READY row of this alias wait in the queues (`NULL` = any)? The claim index
/// (`backend_name`, READY rows only) serves it.
const READY_SELECT: &str = "SELECT EXISTS (SELECT 1 FROM taskhost_tasks \
    WHERE status = 'READY' AND backend_name = :alias \
      AND (run_after IS NULL OR run_after <= :now) \
      AND (:queues IS NULL OR queue_name IN (SELECT value FROM json_each(:queues))))";

impl SqliteStore {
    /// `wait_for_tasks`: block until a due READY task of `request.queues` may be there, or the
    /// timeout. `now` is the host's clock at the call. The order never loses a task: the watch
    /// is running before the store is checked, and every commit after the check is reported.
    pub(super) fn wait(&self, request: &WaitRequest, now: DateTime<Utc>) -> Result<bool> {
        self.wake.start()?;
        let started = Instant::now();
        // The backend has checked the timeout (finite, 0 to 1 h); stay panic-free regardless.
        let timeout = Duration::try_from_secs_f64(request.timeout_secs)
            .unwrap_or(MAX_TIMEOUT)
            .min(MAX_TIMEOUT);
        let deadline = started.checked_add(timeout).unwrap_or(started);
        let queues = request.queues.clone().map(|mut q| {
            q.sort();
            q.dedup();
            q
        });
        let queues_json = queues.as_deref().map(super::json_list);
        let ready = |generation: u64| -> Result<bool> {
            self.wake.checked(&queues, generation);
            let at = now + chrono::Duration::from_std(started.elapsed()).unwrap_or_default();
            let checked = self.read("checking for ready tasks", |c| {
                Ok(c.prepare_cached(READY_SELECT)?.query_row(
                    rusqlite::named_params! {
                        ":alias": self.config.alias,
                        ":now": super::us(at),
                        ":queues": queues_json,
                    },
                    |r| r.get::<_, bool>(0),
                )?)
            });
            match checked {
                // A busy or locked database (or an I/O hiccup) must not cost the worker a whole
                // interval: say "look now", and its claim meets the error, or the task.
                Err(err) if err.is_transient() && !self.wake.is_closed() => {
                    tracing::debug!("wait_for_tasks: could not check for ready tasks: {err}");
                    Ok(true)
                }
                other => other,
            }
        };
        let mut seen = self.wake.generation();
        if self.wake.needs_check(&queues, seen) && ready(seen)? {
            return Ok(true);
        }
        // After a check that followed a write: when it was, and how many rechecks were made.
        let mut settle: Option<(Instant, usize)> = None;
        loop {
            let recheck = settle.and_then(|(at, done)| SETTLE.get(done).map(|d| at + *d));
            let until = recheck.map_or(deadline, |r| r.min(deadline));
            match self.wake.wait_change(seen, until)? {
                Woken::Changed(generation) => {
                    seen = generation;
                    if ready(seen)? {
                        return Ok(true);
                    }
                    settle = Some((Instant::now(), 0));
                }
                Woken::TimedOut if Instant::now() >= deadline => return Ok(false),
                Woken::TimedOut => {
                    settle = settle.map(|(at, done)| (at, done + 1));
                    if ready(seen)? {
                        return Ok(true);
                    }
                }
            }
        }
    }
}

/// The longest wait, whatever the request (the backend caps waits far below).
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Whether this platform's watcher is safe next to SQLite: inotify (Linux), FSEvents (macOS)
/// and ReadDirectoryChangesW (Windows) watch by path or directory handle. The kqueue watcher
/// of the BSDs opens a descriptor for every file of the directory, the database file included,
/// and closing it would drop SQLite's POSIX locks held by this process: there, workers poll.
const WATCH_SUPPORTED: bool = cfg!(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    windows
));

/// The writes seen so far, shared with the watcher's event handler.
struct Signal {
    state: Mutex<SignalState>,
    changed: Condvar,
}

struct SignalState {
    /// Bumped at every reported write to the `-wal` file (and at every watcher error, which
    /// may hide writes).
    generation: u64,
    /// Set by [`Wake::close`]: pending and later waits fail.
    closed: bool,
}

/// The watch's life cycle.
enum Watch {
    /// No wait has asked yet.
    NotStarted,
    /// Watching the database's directory (the watcher is only held, to keep it running).
    Running { _watcher: RecommendedWatcher },
    /// The watch could not be set up: waits answer NOT_SUPPORTED (workers poll).
    Unsupported,
    /// [`Wake::close`] was called.
    Closed,
}

/// What a waiter's wait for the next write ended with.
#[derive(Debug, PartialEq, Eq)]
pub enum Woken {
    /// The write generation moved on to this value.
    Changed(u64),
    /// The deadline passed with no new write.
    TimedOut,
}

/// The wake-up source of one SQLite store.
pub struct Wake {
    /// The database file's directory (watched, so the `-wal` file may come and go).
    dir: PathBuf,
    /// `<db>-wal`.
    wal: PathBuf,
    signal: Arc<Signal>,
    watch: Mutex<Watch>,
    /// Per queue selection (sorted): the write generation its last store check saw. A wait
    /// only checks the store up front when writes came since, so a ready row that its worker's
    /// claim does not take (one of the queues it excludes) wakes it once, not in a loop.
    checked: Mutex<HashMap<Option<Vec<String>>, u64>>,
}

impl Wake {
    /// The wake-up source of the database at `path` (nothing is watched until [`Wake::start`]).
    pub fn new(path: &Path) -> Self {
        // SQLite names the WAL after the database's real path (symbolic links resolved).
        let absolute = std::fs::canonicalize(path)
            .or_else(|_| std::path::absolute(path))
            .unwrap_or_else(|_| path.to_path_buf());
        let dir = match absolute.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut wal = absolute.into_os_string();
        wal.push("-wal");
        Self {
            dir,
            wal: PathBuf::from(wal),
            signal: Arc::new(Signal {
                state: Mutex::new(SignalState {
                    generation: 0,
                    closed: false,
                }),
                changed: Condvar::new(),
            }),
            watch: Mutex::new(Watch::NotStarted),
            checked: Mutex::new(HashMap::new()),
        }
    }

    /// Make sure the watch runs, starting it on the first call. Fails with
    /// [`Error::NotSupported`] when it cannot be set up (logged once, at debug level), and with
    /// [`Error::Unavailable`] after [`Wake::close`].
    pub fn start(&self) -> Result<()> {
        let mut watch = self.watch.lock();
        match &*watch {
            Watch::Running { .. } => Ok(()),
            Watch::Unsupported => Err(not_supported()),
            Watch::Closed => Err(closed()),
            Watch::NotStarted => match self.watcher() {
                Ok(watcher) => {
                    tracing::debug!(
                        wal = %self.wal.display(),
                        "wait_for_tasks: watching the SQLite write-ahead log for commits"
                    );
                    *watch = Watch::Running { _watcher: watcher };
                    Ok(())
                }
                Err(err) => {
                    tracing::debug!(
                        dir = %self.dir.display(),
                        "wait_for_tasks is not supported here (workers poll at their interval): \
                         cannot watch the database directory for changes: {err}"
                    );
                    *watch = Watch::Unsupported;
                    Err(not_supported())
                }
            },
        }
    }

    fn watcher(&self) -> notify::Result<RecommendedWatcher> {
        if !WATCH_SUPPORTED {
            return Err(notify::Error::generic(
                "this platform's file watcher (kqueue) would open the database file and drop \
                 SQLite's locks",
            ));
        }
        let signal = Arc::clone(&self.signal);
        let wal = self.wal.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let relevant = match &event {
                    // An error (e.g. the kernel's event queue overflowed) may hide a commit.
                    Err(_) => true,
                    Ok(event) => {
                        event.need_rescan() || (is_write(&event.kind) && event.paths.contains(&wal))
                    }
                };
                if relevant {
                    let mut state = signal.state.lock();
                    state.generation = state.generation.wrapping_add(1);
                    signal.changed.notify_all();
                }
            })?;
        watcher.watch(&self.dir, RecursiveMode::NonRecursive)?;
        Ok(watcher)
    }

    /// The write generation now.
    pub fn generation(&self) -> u64 {
        self.signal.state.lock().generation
    }

    /// Whether a wait on `queues` should check the store before waiting: true on its first
    /// wait, and when writes came since its last check. Either way `generation` is recorded as
    /// checked (the caller checks right after).
    pub fn needs_check(&self, queues: &Option<Vec<String>>, generation: u64) -> bool {
        let mut checked = self.checked.lock();
        match checked.get_mut(queues) {
            Some(seen) if *seen == generation => false,
            Some(seen) => {
                *seen = generation;
                true
            }
            None => {
                checked.insert(queues.clone(), generation);
                true
            }
        }
    }

    /// Record that a check of `queues` saw the writes up to `generation`.
    pub fn checked(&self, queues: &Option<Vec<String>>, generation: u64) {
        self.checked.lock().insert(queues.clone(), generation);
    }

    /// Block until the write generation differs from `seen`, or `deadline`. Fails with
    /// [`Error::Unavailable`] once [`Wake::close`] is called.
    pub fn wait_change(&self, seen: u64, deadline: Instant) -> Result<Woken> {
        let mut state = self.signal.state.lock();
        loop {
            if state.closed {
                return Err(closed());
            }
            if state.generation != seen {
                return Ok(Woken::Changed(state.generation));
            }
            if self
                .signal
                .changed
                .wait_until(&mut state, deadline)
                .timed_out()
            {
                if state.closed {
                    return Err(closed());
                }
                return Ok(match state.generation {
                    g if g != seen => Woken::Changed(g),
                    _ => Woken::TimedOut,
                });
            }
        }
    }

    /// Whether [`Wake::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.signal.state.lock().closed
    }

    /// Stop watching and end pending waits (they fail with [`Error::Unavailable`]).
    pub fn close(&self) {
        // Dropping the watcher stops its thread.
        let watcher = std::mem::replace(&mut *self.watch.lock(), Watch::Closed);
        drop(watcher);
        let mut state = self.signal.state.lock();
        state.closed = true;
        self.signal.changed.notify_all();
    }
}

/// Whether an event kind may be a commit (data written to, or the creation of, the file).
fn is_write(kind: &EventKind) -> bool {
    use notify::event::ModifyKind;
    match kind {
        EventKind::Create(_) | EventKind::Any | EventKind::Other => true,
        EventKind::Modify(ModifyKind::Metadata(_) | ModifyKind::Name(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(_) | EventKind::Remove(_) => false,
    }
}

fn not_supported() -> Error {
    Error::NotSupported(taskhost_plugin_api::ops::WAIT_FOR_TASKS.into())
}

fn closed() -> Error {
    Error::Unavailable("the database backend is closed; no more operations are possible".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A watch that cannot be set up (here: the directory is gone) answers NOT_SUPPORTED, so
    /// workers poll, and it is not tried again at every wait.
    #[test]
    fn a_watch_that_cannot_start_is_not_supported() {
        let dir = tempfile::tempdir().unwrap();
        let wake = Wake::new(&dir.path().join("gone").join("tasks.db"));
        for _ in 0..2 {
            assert!(matches!(wake.start(), Err(Error::NotSupported(op)) if op == "wait_for_tasks"));
        }
        wake.close();
        assert!(matches!(wake.start(), Err(Error::Unavailable(_))));
    }

    /// Writes to the `-wal` file move the generation on; writes to other files do not.
    #[test]
    fn only_writes_to_the_wal_file_wake() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tasks.db");
        std::fs::write(&db, b"").unwrap();
        let wake = Wake::new(&db);
        wake.start().unwrap();
        let seen = wake.generation();
        std::fs::write(dir.path().join("other.txt"), b"x").unwrap();
        std::fs::write(&db, b"x").unwrap();
        let soon = Instant::now() + Duration::from_millis(300);
        assert_eq!(wake.wait_change(seen, soon).unwrap(), Woken::TimedOut);
        std::fs::write(dir.path().join("tasks.db-wal"), b"frames").unwrap();
        let later = Instant::now() + Duration::from_secs(20);
        assert!(matches!(
            wake.wait_change(seen, later).unwrap(),
            Woken::Changed(_)
        ));
        wake.close();
        assert!(matches!(
            wake.wait_change(seen, later),
            Err(Error::Unavailable(_))
        ));
    }
}
