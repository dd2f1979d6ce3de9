//! LISTEN/NOTIFY wake-up for idle workers: one dedicated connection per backend instance.

use super::CHANNEL;
use crate::error::{Error, Result};
use parking_lot::Mutex;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The LISTEN connection, opened on the first wait and kept (so notifications sent between
/// two waits are not lost: they are buffered and wake the next wait at once).
pub struct Listener {
    config: postgres::Config,
    conn: Mutex<Option<Client>>,
    closed: AtomicBool,
}

impl Listener {
    /// A listener that connects with `config` when first asked to wait.
    pub fn new(config: postgres::Config) -> Self {
        Self {
            config,
            conn: Mutex::new(None),
            closed: AtomicBool::new(false),
        }
    }

    /// Block until a task is enqueued on one of `queues` (`None` = any), or `timeout` passes.
    /// Returns whether a notification came — or the connection was lost, since notifications
    /// may have been missed (the next wait reconnects). Concurrent waiters take turns; one that
    /// cannot get the connection before its timeout returns `false`.
    pub fn wait(&self, queues: Option<&[String]>, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        let Some(mut slot) = self.conn.try_lock_until(deadline) else {
            return Ok(false);
        };
        if self.closed.load(Ordering::Acquire) {
            *slot = None;
            return Err(Error::Unavailable("the database backend is closed".into()));
        }
        if slot.is_none() {
            let mut client = self.config.connect(NoTls).map_err(|e| listen_error(&e))?;
            client
                .batch_execute(&format!("LISTEN {CHANNEL}"))
                .map_err(|e| listen_error(&e))?;
            *slot = Some(client);
        }
        let client = slot
            .as_mut()
            .expect("the listener connection was just opened");
        let outcome = next_matching(client, queues, deadline);
        let lost = client.is_closed();
        if outcome.is_err() || lost || self.closed.load(Ordering::Acquire) {
            *slot = None;
        }
        match outcome {
            // Notifications sent while the connection was down are lost: say "look now", and
            // the next wait reconnects.
            Err(_) if lost => Ok(true),
            other => other,
        }
    }

    /// Close the connection (at once if no one is waiting, else when the wait ends).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if let Some(mut slot) = self.conn.try_lock() {
            *slot = None;
        }
    }
}

/// Read notifications until one names a wanted queue, or the deadline.
fn next_matching(
    client: &mut Client,
    queues: Option<&[String]>,
    deadline: Instant,
) -> Result<bool> {
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let next = client.notifications().timeout_iter(remaining).next();
        match next {
            Ok(Some(n)) if wanted(queues, n.payload()) => return Ok(true),
            Ok(Some(_)) => continue,
            Ok(None) if client.is_closed() => return Ok(true),
            Ok(None) => return Ok(false),
            Err(e) => return Err(listen_error(&e)),
        }
    }
}

fn wanted(queues: Option<&[String]>, queue: &str) -> bool {
    queues.is_none_or(|qs| qs.iter().any(|q| q == queue))
}

fn listen_error(err: &postgres::Error) -> Error {
    Error::Unavailable(format!(
        "could not wait for notifications on channel '{CHANNEL}': {}",
        crate::error::postgres_text(err)
    ))
}
