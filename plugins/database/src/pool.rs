//! A small blocking connection pool, shared by the SQLite and PostgreSQL stores.
//!
//! Connections are opened on demand up to a limit and kept for reuse; a broken one is dropped
//! when handed back. The pool owns no thread, so [`Pool::close`] (dropping every idle
//! connection) leaves nothing running — a plugin must not leave threads behind (abi-notes §3.8).

use crate::error::{Error, Result};
use parking_lot::{Condvar, Mutex};
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

/// A connection the pool can tell is broken, so it is not handed out again.
pub trait Connection: Send + 'static {
    /// Whether this connection can no longer be used (asked when it is handed back).
    fn is_broken(&mut self) -> bool;

    /// Whether an idle connection still works (asked before it is handed out again; may
    /// talk to the server, so it is asked outside the pool's lock).
    fn revalidate(&mut self) -> bool {
        true
    }
}

/// Opens a new connection.
type Connect<C> = Box<dyn Fn() -> Result<C> + Send + Sync>;

/// A bounded set of reusable connections.
pub struct Pool<C: Connection> {
    connect: Connect<C>,
    state: Mutex<State<C>>,
    returned: Condvar,
    size: usize,
    wait: Duration,
}

struct State<C> {
    idle: Vec<C>,
    open: usize,
    closed: bool,
}

impl<C: Connection> Pool<C> {
    /// A pool of at most `size` connections made by `connect`; [`Pool::get`] waits at most
    /// `wait` for one to be handed back.
    pub fn new(size: u32, wait: Duration, connect: Connect<C>) -> Self {
        Self {
            connect,
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
                closed: false,
            }),
            returned: Condvar::new(),
            size: size.max(1) as usize,
            wait,
        }
    }

    /// Put an already open connection into the pool (the one made to validate the options).
    pub fn seed(&self, conn: C) {
        let mut state = self.state.lock();
        state.open += 1;
        state.idle.push(conn);
    }

    /// A connection: an idle one, a new one if fewer than `size` are open, or the next one
    /// handed back. Fails with [`Error::Unavailable`] when the pool is closed or stays empty.
    pub fn get(&self) -> Result<Pooled<'_, C>> {
        let deadline = Instant::now() + self.wait;
        let mut state = self.state.lock();
        loop {
            if state.closed {
                return Err(Error::Unavailable(
                    "the database backend is closed; no more operations are possible".into(),
                ));
            }
            if let Some(mut conn) = state.idle.pop() {
                drop(state);
                if conn.revalidate() {
                    return Ok(self.pooled(conn));
                }
                drop(conn);
                state = self.state.lock();
                state.open -= 1;
                continue;
            }
            if state.open < self.size {
                state.open += 1;
                drop(state);
                return match (self.connect)() {
                    Ok(conn) => Ok(self.pooled(conn)),
                    Err(err) => {
                        self.forget_one();
                        Err(err)
                    }
                };
            }
            if self.returned.wait_until(&mut state, deadline).timed_out() {
                return Err(Error::Unavailable(format!(
                    "all {} database connections stayed busy for {:?}; raise `pool_size` or \
                     run fewer threads against this backend",
                    self.size, self.wait
                )));
            }
        }
    }

    /// Close every idle connection and refuse new requests; connections in use are closed when
    /// handed back.
    pub fn close(&self) {
        let idle = {
            let mut state = self.state.lock();
            state.closed = true;
            state.open -= state.idle.len();
            std::mem::take(&mut state.idle)
        };
        drop(idle);
        self.returned.notify_all();
    }

    fn pooled(&self, conn: C) -> Pooled<'_, C> {
        Pooled {
            pool: self,
            conn: Some(conn),
        }
    }

    fn forget_one(&self) {
        self.state.lock().open -= 1;
        self.returned.notify_one();
    }

    fn give_back(&self, mut conn: C) {
        let broken = conn.is_broken();
        let mut state = self.state.lock();
        if broken || state.closed {
            state.open -= 1;
            drop(state);
            drop(conn);
        } else {
            state.idle.push(conn);
            drop(state);
        }
        self.returned.notify_one();
    }
}

/// A connection on loan from a [`Pool`]; handed back when dropped.
pub struct Pooled<'a, C: Connection> {
    pool: &'a Pool<C>,
    conn: Option<C>,
}

impl<C: Connection> Deref for Pooled<'_, C> {
    type Target = C;
    fn deref(&self) -> &C {
        self.conn
            .as_ref()
            .expect("a pooled connection is present until dropped")
    }
}

impl<C: Connection> DerefMut for Pooled<'_, C> {
    fn deref_mut(&mut self) -> &mut C {
        self.conn
            .as_mut()
            .expect("a pooled connection is present until dropped")
    }
}

impl<C: Connection> Drop for Pooled<'_, C> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.give_back(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct Fake(bool);
    impl Connection for Fake {
        fn is_broken(&mut self) -> bool {
            self.0
        }
    }

    fn pool(size: u32, made: Arc<AtomicUsize>) -> Pool<Fake> {
        Pool::new(
            size,
            Duration::from_millis(50),
            Box::new(move || {
                made.fetch_add(1, Ordering::SeqCst);
                Ok(Fake(false))
            }),
        )
    }

    #[test]
    fn connections_are_reused_and_bounded() {
        let made = Arc::new(AtomicUsize::new(0));
        let pool = pool(2, made.clone());
        let a = pool.get().unwrap();
        let b = pool.get().unwrap();
        let err = pool.get().err().unwrap();
        assert!(
            err.to_string()
                .contains("all 2 database connections stayed busy"),
            "{err}"
        );
        drop(a);
        drop(pool.get().unwrap());
        drop(b);
        assert_eq!(made.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn broken_connections_are_replaced() {
        let made = Arc::new(AtomicUsize::new(0));
        let pool = pool(1, made.clone());
        pool.get().unwrap().0 = true;
        drop(pool.get().unwrap());
        assert_eq!(made.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_closed_pool_refuses_requests() {
        let pool = pool(1, Arc::default());
        drop(pool.get().unwrap());
        pool.close();
        assert!(pool.get().err().unwrap().to_string().contains("closed"));
        assert_eq!(pool.state.lock().open, 0);
    }
}
