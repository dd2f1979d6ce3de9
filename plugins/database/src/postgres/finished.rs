//! Waiting for results to finish (`taskhost.wait_finished`): after a completion batch (or a
//! rescue) that finished tasks commits, one NOTIFY on the [`FINISHED_CHANNEL`] channel names
//! them ([`PgStore::announce_finished`]); waiters LISTEN on one connection per backend instance
//! and re-read their rows when a notification names them
//! (`docs/decisions/023-waiting-for-results.md`).
//!
//! Completions announce only while someone waits: a waiting process registers its LISTEN
//! session in `taskhost_waiters` (migration 8), and the completion statement asks
//! `taskhost_waiting()` once its rows are locked; a wait reads its row `FOR SHARE`, so a
//! completion that asked before the wait registered has committed by the time it reads.
//!
//! The NOTIFY is its own transaction, committed asynchronously, rather than part of the
//! completion's: PostgreSQL holds a database-wide lock from a notifying transaction's commit
//! until it ends, so notifying inside the completion serialised every worker's commit flush
//! (pgbench, 16 clients completing batches of 8: 1,944 → 196 transactions/s;
//! `docs/bench-notes/wait-notify.md`). The price is a lost wake-up if the worker dies between the two: the wait then
//! ends at its timeout.
//!
//! Waits share the connection: whichever wait finds nobody reading it becomes the reader and
//! hands on what it reads to the others (a condition variable), until a notification concerns
//! its own ids or its deadline comes; then another wait takes over. Notifications that arrive
//! while nobody reads stay in the connection's buffer. The connection is closed when the last
//! wait ends, so a process that stopped waiting does not hold PostgreSQL's notification queue.

use super::PgStore;
use crate::error::{postgres_text, Error, Result};
use parking_lot::{Condvar, Mutex};
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use taskhost_plugin_api::WaitFinishedResponse;
use uuid::Uuid;

/// The channel completions notify; the payload is the finished ids, comma-separated, or empty
/// for "any may have" (a batch too large for a payload).
pub const FINISHED_CHANNEL: &str = "taskhost_finished";

/// The most ids one NOTIFY names (37 bytes each, under the 8000-byte payload limit); a larger
/// batch is announced with an empty payload ("any").
const NOTIFY_IDS_AT_MOST: usize = 200;

/// The longest a reader blocks on the connection at once: it then looks whether the store was
/// closed. Not a query: the store is read only when a notification names a waited-for id.
const READ_SLICE: Duration = Duration::from_secs(1);

/// The waits of one store and the connection they LISTEN on.
pub struct Finished {
    config: postgres::Config,
    conn: Mutex<Option<Client>>,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// The ids waited for now: how many waits want each, and how many notifications named it.
    watched: HashMap<Uuid, Watched>,
    /// Notifications that may concern any id (an empty payload), LISTEN (re)started, or the
    /// connection lost: every wait re-reads its rows.
    everything: u64,
    /// How many waits are running.
    waits: usize,
    /// Whether a wait is reading the connection.
    reading: bool,
    /// Whether the connection is open and LISTENing.
    listening: bool,
    closed: bool,
}

#[derive(Default)]
struct Watched {
    waits: usize,
    hits: u64,
}

/// What a wait has seen of the notifications so far.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Seen {
    hits: u64,
    everything: u64,
}

impl Finished {
    /// Waits that connect with `config` when the first one starts.
    pub fn new(config: postgres::Config) -> Self {
        Self {
            config,
            conn: Mutex::new(None),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        }
    }

    /// End pending waits (they fail as closed) and close the connection.
    pub fn close(&self) {
        let mut state = self.state.lock();
        state.closed = true;
        self.changed.notify_all();
        if let Some(mut conn) = self.conn.try_lock() {
            unregister(&mut conn);
            state.listening = false;
        }
    }

    fn seen(&self, state: &State, ids: &[Uuid]) -> Seen {
        let hits = ids
            .iter()
            .filter_map(|id| state.watched.get(id))
            .fold(0u64, |sum, w| sum.wrapping_add(w.hits));
        Seen {
            hits,
            everything: state.everything,
        }
    }

    /// Be the reader: connect and LISTEN if needed, then read notifications, recording them,
    /// until one concerns `ids`, `deadline` or a [`READ_SLICE`]. Always gives up the reader's
    /// role before it returns.
    fn read(&self, ids: &[Uuid], deadline: Instant) -> Result<()> {
        let outcome = self.read_inner(ids, deadline);
        let mut state = self.state.lock();
        state.reading = false;
        self.changed.notify_all();
        outcome
    }

    /// The connection was lost: notifications may have been missed, so every wait re-reads
    /// its rows, and the next reader connects again.
    fn lost(&self, slot: &mut Option<Client>, err: &dyn std::fmt::Display) {
        tracing::debug!("the connection listening on channel '{FINISHED_CHANNEL}' was lost: {err}");
        *slot = None;
        let mut state = self.state.lock();
        state.listening = false;
        state.everything = state.everything.wrapping_add(1);
    }

    fn read_inner(&self, ids: &[Uuid], deadline: Instant) -> Result<()> {
        let mut slot = self.conn.lock();
        if slot.is_none() {
            let mut client = self.config.connect(NoTls).map_err(|e| listen_error(&e))?;
            // LISTEN, then register as waiting (completions announce only while someone is;
            // registrations of sessions that are gone are dropped on the way).
            client
                .batch_execute(&format!(
                    "LISTEN {FINISHED_CHANNEL}; \
                     DELETE FROM taskhost_waiters w WHERE NOT EXISTS \
                       (SELECT 1 FROM pg_stat_activity a WHERE a.pid = w.pid); \
                     INSERT INTO taskhost_waiters (pid) VALUES (pg_backend_pid()) \
                       ON CONFLICT (pid) DO UPDATE SET since = now()"
                ))
                .map_err(|e| listen_error(&e))?;
            *slot = Some(client);
            // What finished before LISTEN took effect sent nothing this connection hears.
            let mut state = self.state.lock();
            state.listening = true;
            state.everything = state.everything.wrapping_add(1);
            return Ok(());
        }
        let client = slot.as_mut().expect("the connection is open");
        let until = deadline.min(Instant::now() + READ_SLICE);
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let next = client.notifications().timeout_iter(left).next();
            match next {
                Ok(Some(n)) => {
                    if self.record(n.payload(), ids) {
                        return Ok(());
                    }
                }
                Ok(None) if client.is_closed() => {
                    self.lost(&mut slot, &"the server closed it");
                    return Ok(());
                }
                Ok(None) => return Ok(()),
                Err(e) => {
                    self.lost(&mut slot, &postgres_text(&e));
                    return Ok(());
                }
            }
        }
    }

    /// Record one notification's payload; returns whether it concerns `ids`.
    fn record(&self, payload: &str, ids: &[Uuid]) -> bool {
        // An empty payload (or one this version cannot read) may name anything.
        let named: Option<Vec<Uuid>> = match payload {
            "" => None,
            list => list.split(',').map(|id| Uuid::parse_str(id).ok()).collect(),
        };
        let mut state = self.state.lock();
        let Some(named) = named else {
            state.everything = state.everything.wrapping_add(1);
            self.changed.notify_all();
            return true;
        };
        let (mut any, mut mine) = (false, false);
        for id in named {
            if let Some(w) = state.watched.get_mut(&id) {
                w.hits = w.hits.wrapping_add(1);
                any = true;
                mine |= ids.contains(&id);
            }
        }
        if any {
            self.changed.notify_all();
        }
        mine
    }
}

/// A wait's registration: its ids are watched until it is dropped; the last wait to end closes
/// the connection.
struct Registration<'a> {
    finished: &'a Finished,
    ids: &'a [Uuid],
}

impl<'a> Registration<'a> {
    fn new(finished: &'a Finished, ids: &'a [Uuid]) -> Self {
        let mut state = finished.state.lock();
        state.waits += 1;
        for id in ids {
            state.watched.entry(*id).or_default().waits += 1;
        }
        Self { finished, ids }
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut state = self.finished.state.lock();
        for id in self.ids {
            if let Some(w) = state.watched.get_mut(id) {
                w.waits -= 1;
                if w.waits == 0 {
                    state.watched.remove(id);
                }
            }
        }
        state.waits -= 1;
        if state.waits == 0 && !state.reading {
            // Nobody listens until the next wait: let PostgreSQL stop queueing for us.
            if let Some(mut conn) = self.finished.conn.try_lock() {
                unregister(&mut conn);
                state.listening = false;
            }
        }
    }
}

impl PgStore {
    /// Tell waits, in every process, that the results `ids` just finished: one NOTIFY in a
    /// transaction of its own with `synchronous_commit` off (one round trip; the lock
    /// PostgreSQL takes at a notifying commit is then held for no WAL flush). Call it after
    /// the commit that finished them. A failure is logged (debug) and otherwise ignored: the
    /// completion stands, and its waits end at their timeout.
    pub(super) fn announce_finished(&self, ids: &[&str]) {
        if ids.is_empty() {
            return;
        }
        // Written as hyphenated UUIDs: nothing in the SQL text to escape.
        let payload = match ids.len() <= NOTIFY_IDS_AT_MOST {
            true => ids
                .iter()
                .filter_map(|id| crate::row::parse_id(id))
                .map(|id| id.hyphenated().to_string())
                .collect::<Vec<_>>()
                .join(","),
            false => String::new(),
        };
        let sql = format!(
            "BEGIN; SET LOCAL synchronous_commit = off; \
             SELECT pg_notify('{FINISHED_CHANNEL}', '{payload}'); COMMIT"
        );
        if let Err(err) = self.read("announcing finished results", |tx| {
            Ok(tx.batch_execute(&sql)?)
        }) {
            tracing::debug!(
                "could not announce {} finished result(s) to waits: {err}",
                ids.len()
            );
        }
    }

    /// `taskhost.wait_finished`: block until every result of `ids` is finished, or `timeout`.
    /// The rows are read once after the wait registers (and the connection LISTENs), then once
    /// after each notification that names them — never on a timer.
    pub(super) fn wait_finished(
        &self,
        ids: &[(String, Uuid)],
        timeout: Duration,
    ) -> Result<WaitFinishedResponse> {
        let uuids: Vec<Uuid> = ids.iter().map(|(_, id)| *id).collect();
        let finished = &self.finished;
        let _registration = Registration::new(finished, &uuids);
        let deadline = Instant::now() + timeout;
        let mut checks = 0;
        // Listen before the first read, so that a completion committed after it is heard (a
        // reader busy connecting bumps `everything` once it listens: this wait reads again).
        let mut state = finished.state.lock();
        if !state.reading && !state.listening {
            state.reading = true;
            drop(state);
            finished.read(&uuids, Instant::now())?;
        } else {
            drop(state);
        }
        let mut seen = finished.seen(&finished.state.lock(), &uuids);
        loop {
            checks += 1;
            let answer = self.finished_of(ids, checks)?;
            if answer.pending.is_empty() {
                return Ok(answer);
            }
            // Wait until a notification concerns these ids, or the deadline.
            loop {
                let mut state = finished.state.lock();
                if state.closed {
                    return Err(Error::Unavailable(
                        "the database backend is closed; no more operations are possible".into(),
                    ));
                }
                let now_seen = finished.seen(&state, &uuids);
                if now_seen != seen {
                    seen = now_seen;
                    break;
                }
                if Instant::now() >= deadline {
                    return Ok(answer);
                }
                if !state.reading {
                    state.reading = true;
                    drop(state);
                    finished.read(&uuids, deadline)?;
                    continue;
                }
                finished.changed.wait_until(&mut state, deadline);
            }
        }
    }

    /// Read which of `ids` are finished; an unknown id is [`Error::DoesNotExist`].
    fn finished_of(&self, ids: &[(String, Uuid)], checks: u64) -> Result<WaitFinishedResponse> {
        // FOR SHARE: a completion that has updated the row but not committed yet may have
        // asked `taskhost_waiting()` before this wait registered; waiting for its commit reads
        // what it wrote. One row per statement: share locks on several rows, taken while a
        // completion updates them in another order, could deadlock.
        let mut rows = HashMap::with_capacity(ids.len());
        for (_, id) in ids {
            let finished = self.read("checking whether a result finished", |tx| {
                let rows = tx.query(
                    "SELECT status IN ('SUCCESSFUL', 'FAILED') FROM taskhost_tasks \
                     WHERE id = $1 FOR SHARE",
                    &[id],
                )?;
                rows.first()
                    .map(|r| r.try_get::<_, bool>(0))
                    .transpose()
                    .map_err(super::TxError::from)
            })?;
            if let Some(finished) = finished {
                rows.insert(*id, finished);
            }
        }
        crate::store::finished_answer(ids, &rows, checks)
    }
}

/// Drop this process's registration as waiting (best effort: a registration left behind only
/// makes completions announce until the next registration drops it), and close the connection.
fn unregister(conn: &mut Option<Client>) {
    if let Some(mut client) = conn.take() {
        if !client.is_closed() {
            let _ =
                client.batch_execute("DELETE FROM taskhost_waiters WHERE pid = pg_backend_pid()");
        }
    }
}

fn listen_error(err: &postgres::Error) -> Error {
    Error::Unavailable(format!(
        "could not wait for notifications on channel '{FINISHED_CHANNEL}': {}",
        postgres_text(err)
    ))
}
