//! Cross-process wake-up for idle SQLite workers: file-change watches on two files next to the
//! database (see `docs/decisions/011-sqlite-wake-up.md`).
//!
//! Two files are watched (inotify on Linux, FSEvents on macOS, ReadDirectoryChangesW on
//! Windows, through the `notify` crate):
//!
//! - `<db>-wake`, which the plugin touches right after every commit that makes tasks ready
//!   (enqueue, bulk enqueue, release), in whichever process made it. The commit is visible
//!   before the touch is reported, so a waiter woken by it checks the store once and is sure.
//! - `<db>-wal`, which every commit writes, whoever makes it: the application's own
//!   transactional insert, or any other SQLite client. Busy workers' claims, completions and
//!   renewals write it too, and a write is reported just *before* the commit is visible, so a
//!   write only schedules a check a little later ([`WRITE_SETTLE`]), at most one per
//!   [`WRITE_GAP`] per queue selection: best effort for foreign SQL. The file is watched only
//!   while a wait wants to hear of writes (not while it has a check scheduled); its size and
//!   modification time, compared when it is watched again, stand for the writes in between.
//!
//! Either way the waiter confirms with an indexed query that a due READY row of its queues
//! exists before it answers `notified: true`; otherwise it keeps waiting.
//!
//! The watch is owned by the store: started by the first wait, kept between waits (so what
//! happens between two waits is counted, not lost), and stopped by [`Wake::close`]. On Linux
//! `notify` reads the inotify descriptor on one thread of its own, which ends when the watch is
//! dropped; waiters themselves block on a condition variable, never polling.

use super::SqliteStore;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use taskhost_plugin_api::WaitRequest;

/// How long after a reported `-wal` write a waiter checks the store: a commit's frames are
/// written (and reported) just before SQLite makes them visible to readers, and a burst of
/// writes is checked once.
pub const WRITE_SETTLE: Duration = Duration::from_millis(20);

/// The shortest time between two checks of one waiter caused by `-wal` writes: while other
/// workers are busy, every commit of theirs writes, and an idle worker must not query at that
/// rate (with a backlog in queues it does not take, each query walks that backlog).
pub const WRITE_GAP: Duration = Duration::from_millis(250);

/// Does a due READY row of this alias wait in the queues (`NULL` = any)? The claim index
/// (`backend_name`, READY rows only) serves it.
const READY_SELECT: &str = "SELECT EXISTS (SELECT 1 FROM taskhost_tasks \
    WHERE status = 'READY' AND backend_name = :alias \
      AND (run_after IS NULL OR run_after <= :now) \
      AND (:queues IS NULL OR queue_name IN (SELECT value FROM json_each(:queues))))";

impl SqliteStore {
    /// `wait_for_tasks`: block until a due READY task of `request.queues` may be there, or the
    /// timeout. `now` is the host's clock at the call. The order never loses an enqueue: the
    /// watch is running before the store is checked, and every enqueue committed after the
    /// check touches the wake file.
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
        let ready = |seen: Seen, by_write: bool| -> Result<bool> {
            self.wake.checked(&queues, seen, by_write);
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
        let mut seen = self.wake.seen();
        // The check that `-wal` writes have scheduled (see WRITE_SETTLE and WRITE_GAP).
        let mut write_check: Option<Instant> = None;
        match self.wake.needs_check(&queues, seen) {
            Needed::Now => {
                if ready(seen, false)? {
                    return Ok(true);
                }
            }
            Needed::AfterWrites => write_check = Some(self.wake.write_check_at(&queues)),
            Needed::No => {}
        }
        loop {
            let until = write_check.map_or(deadline, |at| at.min(deadline));
            match self.wake.wait_change(seen, write_check.is_none(), until)? {
                Woken::Enqueued(now_seen) => {
                    // Only the enqueues: writes reported meanwhile may belong to commits not
                    // visible yet, and still get their own check (below).
                    seen.enqueues = now_seen.enqueues;
                    if ready(seen, false)? {
                        return Ok(true);
                    }
                }
                Woken::Wrote(now_seen) => {
                    seen = now_seen;
                    if write_check.is_none() {
                        write_check = Some(self.wake.write_check_at(&queues));
                    }
                }
                Woken::TimedOut if Instant::now() >= deadline => return Ok(false),
                Woken::TimedOut => {
                    // `seen` stays what it was when the check was scheduled (WRITE_SETTLE ago):
                    // writes reported since may be commits not visible yet, and schedule
                    // another check.
                    write_check = None;
                    if ready(seen, true)? {
                        return Ok(true);
                    }
                }
            }
        }
    }
}

/// The longest wait, whatever the request (the backend caps waits far below).
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Whether this platform's watcher is known to be safe next to SQLite: inotify (Linux),
/// FSEvents (macOS) and ReadDirectoryChangesW (Windows) watch by path or directory handle. The
/// kqueue watcher of the BSDs opens and closes descriptors of what it watches, and closing a
/// descriptor of a database file drops SQLite's POSIX locks held by this process. Only the
/// `-wake` and `-wal` files are watched, which SQLite does not lock, but that is untried:
/// there, workers poll.
pub(super) const WATCH_SUPPORTED: bool = cfg!(any(
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
    /// What the watch has reported so far.
    seen: Seen,
    /// Whether a waiter wants to hear of the next `-wal` write: one with a check already
    /// scheduled does not, so busy workers' commits do not wake idle ones at their rate.
    writes_wanted: bool,
    /// Set by [`Wake::close`]: pending and later waits fail.
    closed: bool,
}

/// The watch's life cycle.
enum Watch {
    /// No wait has asked yet.
    NotStarted,
    /// Watching the wake file, and the `-wal` file while armed.
    Running(Running),
    /// The watch could not be set up: waits answer NOT_SUPPORTED (workers poll).
    Unsupported,
    /// [`Wake::close`] was called.
    Closed,
}

/// A running watch.
struct Running {
    watcher: RecommendedWatcher,
    /// Waits that want to hear of `-wal` writes now: the `-wal` file is watched only while
    /// one does, so other workers' commits do not wake this process's watcher at their rate.
    wanting: usize,
    /// The `-wal` file's size and modification time when it was last unwatched: if they
    /// differ when it is watched again, writes came meanwhile.
    unwatched: Option<(u64, Option<SystemTime>)>,
}

/// What the watch has reported so far: two counters that only grow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// Touches of the wake file (and watcher errors, which may hide them).
    pub enqueues: u64,
    /// Writes to the `-wal` file.
    pub writes: u64,
}

/// What the checks of one queue selection saw.
#[derive(Clone, Copy, Debug)]
struct Checked {
    /// What the watch had reported before the last check.
    seen: Seen,
    /// When the last check caused by `-wal` writes ran.
    by_write: Option<Instant>,
}

/// Whether a wait should check the store before it blocks.
#[derive(Debug, PartialEq, Eq)]
pub enum Needed {
    /// Yes: its selection's first wait, or enqueues came since the last check.
    Now,
    /// Only `-wal` writes came: check after [`Wake::write_check_at`].
    AfterWrites,
    /// Nothing came.
    No,
}

/// What a waiter's wait for news ended with.
#[derive(Debug, PartialEq, Eq)]
pub enum Woken {
    /// The wake file was touched (perhaps writes came too): check now.
    Enqueued(Seen),
    /// Only `-wal` writes came.
    Wrote(Seen),
    /// The deadline passed with neither.
    TimedOut,
}

/// The wake-up source of one SQLite store.
pub struct Wake {
    /// The database file's directory (for messages).
    dir: PathBuf,
    /// `<db>-wal`.
    wal: PathBuf,
    /// `<db>-wake`, touched after commits that make tasks ready.
    wake_file: PathBuf,
    /// The wake file, opened by the first touch (`None` again after a failed touch).
    touch: Mutex<Option<File>>,
    signal: Arc<Signal>,
    watch: Mutex<Watch>,
    /// Per queue selection (sorted): what its last store checks saw. A wait only checks the
    /// store up front when enqueues came since (writes: after WRITE_GAP), so a ready row that
    /// its worker's claim does not take (one of the queues it excludes) does not wake it in a
    /// loop.
    checked: Mutex<HashMap<Option<Vec<String>>, Checked>>,
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
        let sibling = |suffix: &str| {
            let mut name = absolute.clone().into_os_string();
            name.push(suffix);
            PathBuf::from(name)
        };
        Self {
            dir,
            wal: sibling("-wal"),
            wake_file: sibling("-wake"),
            touch: Mutex::new(None),
            signal: Arc::new(Signal {
                state: Mutex::new(SignalState {
                    seen: Seen::default(),
                    writes_wanted: false,
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
            Watch::Running(_) => Ok(()),
            Watch::Unsupported => Err(not_supported()),
            Watch::Closed => Err(closed()),
            Watch::NotStarted => match self.watcher() {
                Ok(watcher) => {
                    tracing::debug!(
                        wal = %self.wal.display(),
                        "wait_for_tasks: watching the SQLite write-ahead log for commits"
                    );
                    *watch = Watch::Running(Running {
                        watcher,
                        wanting: 0,
                        unwatched: None,
                    });
                    Ok(())
                }
                Err(err) => {
                    tracing::debug!(
                        dir = %self.dir.display(),
                        "wait_for_tasks is not supported here (workers poll at their interval): \
                         cannot watch the files next to the database for changes: {err}"
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
                "this platform's file watcher (kqueue) is not known to be safe next to \
                 SQLite's file locks",
            ));
        }
        let signal = Arc::clone(&self.signal);
        let (wal, wake_file) = (self.wal.clone(), self.wake_file.clone());
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let (enqueued, wrote) = match &event {
                    // An error (e.g. the kernel's event queue overflowed) may hide anything.
                    Err(_) => (true, false),
                    Ok(event) if event.need_rescan() => (true, false),
                    Ok(event) => (
                        is_touch(&event.kind) && event.paths.contains(&wake_file),
                        is_write(&event.kind) && event.paths.contains(&wal),
                    ),
                };
                if enqueued || wrote {
                    let mut state = signal.state.lock();
                    if wrote {
                        state.seen.writes = state.seen.writes.wrapping_add(1);
                    }
                    let wanted = enqueued || std::mem::take(&mut state.writes_wanted);
                    if enqueued {
                        state.seen.enqueues = state.seen.enqueues.wrapping_add(1);
                    }
                    if wanted {
                        signal.changed.notify_all();
                    }
                }
            })?;
        // The wake file is watched itself (not the directory, whose other files change at
        // every commit): create it if no enqueue has yet.
        File::options()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&self.wake_file)?;
        watcher.watch(&self.wake_file, RecursiveMode::NonRecursive)?;
        Ok(watcher)
    }

    /// What the watch has reported so far.
    pub fn seen(&self) -> Seen {
        self.signal.state.lock().seen
    }

    /// Tell waiting workers, in every process, that tasks were just made ready: touch the
    /// wake file. Call it after the commit. Failing to is logged (debug) and otherwise
    /// ignored: waiters then rely on the `-wal` watch, or their interval.
    pub fn enqueued(&self) {
        let mut touch = self.touch.lock();
        if touch.is_none() {
            match File::options()
                .create(true)
                .write(true)
                .truncate(false)
                .open(&self.wake_file)
            {
                Ok(file) => *touch = Some(file),
                Err(err) => {
                    tracing::debug!(
                        file = %self.wake_file.display(),
                        "could not open the file that wakes idle workers: {err}"
                    );
                    return;
                }
            }
        }
        if let Some(Err(err)) = touch.as_ref().map(|f| f.set_modified(SystemTime::now())) {
            tracing::debug!(
                file = %self.wake_file.display(),
                "could not touch the file that wakes idle workers: {err}"
            );
            *touch = None;
        }
    }

    /// Whether a wait on `queues` should check the store before it blocks, given what the
    /// watch has reported (`seen`, read before the check).
    pub fn needs_check(&self, queues: &Option<Vec<String>>, seen: Seen) -> Needed {
        match self.checked.lock().get(queues) {
            None => Needed::Now,
            Some(c) if c.seen.enqueues != seen.enqueues => Needed::Now,
            Some(c) if c.seen.writes != seen.writes => Needed::AfterWrites,
            Some(_) => Needed::No,
        }
    }

    /// When a check of `queues` caused by `-wal` writes reported now may run: after
    /// [`WRITE_SETTLE`], and [`WRITE_GAP`] after the previous one.
    pub fn write_check_at(&self, queues: &Option<Vec<String>>) -> Instant {
        let settle = Instant::now() + WRITE_SETTLE;
        match self.checked.lock().get(queues).and_then(|c| c.by_write) {
            Some(last) => settle.max(last + WRITE_GAP),
            None => settle,
        }
    }

    /// Record a check of `queues` made after the watch reported `seen`. A check caused by
    /// `-wal` writes (`by_write`, made [`WRITE_SETTLE`] after them) covers those writes; any
    /// other covers the enqueues only, since writes reported just before it may be commits
    /// not yet visible.
    pub fn checked(&self, queues: &Option<Vec<String>>, seen: Seen, by_write: bool) {
        let mut checked = self.checked.lock();
        let entry = checked.entry(queues.clone()).or_insert(Checked {
            seen,
            by_write: None,
        });
        entry.seen.enqueues = seen.enqueues;
        if by_write {
            entry.seen.writes = seen.writes;
            entry.by_write = Some(Instant::now());
        }
    }

    /// Block until the watch reports something `seen` does not include, or `deadline`; with
    /// `writes` false, `-wal` writes do not end the wait (the caller has a check scheduled).
    /// Fails with [`Error::Unavailable`] once [`Wake::close`] is called.
    pub fn wait_change(&self, seen: Seen, writes: bool, deadline: Instant) -> Result<Woken> {
        if writes {
            self.want_writes(true);
        }
        let woken = self.wait_signal(seen, writes, deadline);
        if writes {
            self.want_writes(false);
        }
        woken
    }

    /// Start (`true`) or end one wait's interest in `-wal` writes, watching the file while any
    /// wait is interested. Best effort: a `-wal` file that cannot be watched is logged (debug).
    fn want_writes(&self, want: bool) {
        let mut watch = self.watch.lock();
        let Watch::Running(running) = &mut *watch else {
            return;
        };
        let stamp = || {
            std::fs::metadata(&self.wal)
                .ok()
                .map(|m| (m.len(), m.modified().ok()))
        };
        if want {
            running.wanting += 1;
            if running.wanting > 1 {
                return;
            }
            if let Err(err) = running
                .watcher
                .watch(&self.wal, RecursiveMode::NonRecursive)
            {
                tracing::debug!(wal = %self.wal.display(), "cannot watch the -wal file: {err}");
            }
            // Writes while it was not watched: count them now.
            if running
                .unwatched
                .take()
                .is_some_and(|before| Some(before) != stamp())
            {
                let mut state = self.signal.state.lock();
                state.seen.writes = state.seen.writes.wrapping_add(1);
            }
        } else {
            running.wanting = running.wanting.saturating_sub(1);
            if running.wanting == 0 {
                let _ = running.watcher.unwatch(&self.wal);
                running.unwatched = stamp();
            }
        }
    }

    fn wait_signal(&self, seen: Seen, writes: bool, deadline: Instant) -> Result<Woken> {
        let mut state = self.signal.state.lock();
        loop {
            if state.closed {
                return Err(closed());
            }
            if state.seen.enqueues != seen.enqueues {
                return Ok(Woken::Enqueued(state.seen));
            }
            if writes && state.seen.writes != seen.writes {
                return Ok(Woken::Wrote(state.seen));
            }
            if writes {
                state.writes_wanted = true;
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
                return Ok(match state.seen {
                    now if now.enqueues != seen.enqueues => Woken::Enqueued(now),
                    now if writes && now.writes != seen.writes => Woken::Wrote(now),
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

/// Whether an event kind may be a touch of the wake file (anything but a read or a removal).
pub(super) fn is_touch(kind: &EventKind) -> bool {
    !matches!(kind, EventKind::Access(_) | EventKind::Remove(_))
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
    Error::NotSupported("wait_for_tasks".into())
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

    /// Touching the wake file is an enqueue, writing the `-wal` file a write; other files of
    /// the directory (the database file itself included) are nothing.
    #[test]
    fn the_wake_file_and_the_wal_file_wake() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tasks.db");
        std::fs::write(&db, b"").unwrap();
        std::fs::write(dir.path().join("tasks.db-wal"), b"").unwrap();
        let wake = Wake::new(&db);
        wake.start().unwrap();
        let seen = wake.seen();
        std::fs::write(dir.path().join("other.txt"), b"x").unwrap();
        std::fs::write(&db, b"x").unwrap();
        let soon = Instant::now() + Duration::from_millis(300);
        assert_eq!(wake.wait_change(seen, true, soon).unwrap(), Woken::TimedOut);
        let later = Instant::now() + Duration::from_secs(20);
        // Written while no wait watched it: counted when the next wait watches again.
        std::fs::write(dir.path().join("tasks.db-wal"), b"frames").unwrap();
        let Woken::Wrote(seen) = wake.wait_change(seen, true, later).unwrap() else {
            panic!("a -wal write is a write")
        };
        // Written while a wait watches it.
        std::thread::scope(|s| {
            let waiter = s.spawn(|| wake.wait_change(seen, true, later).unwrap());
            std::thread::sleep(Duration::from_millis(100));
            std::fs::write(dir.path().join("tasks.db-wal"), b"more frames").unwrap();
            assert!(matches!(waiter.join().unwrap(), Woken::Wrote(_)));
        });
        // Another instance, as another process would: the first touch creates the file.
        let other = Wake::new(&db);
        other.enqueued();
        let woken = wake.wait_change(seen, false, later).unwrap();
        assert!(matches!(woken, Woken::Enqueued(_)), "{woken:?}");
        wake.close();
        assert!(matches!(
            wake.wait_change(seen, true, later),
            Err(Error::Unavailable(_))
        ));
    }
}
