//! Connections and sessions: the pooled client, statements prepared once per connection, and
//! how a unit of work runs (in a transaction or not) and is retried.

use super::{PgStore, TxError};
use crate::error::{postgres_text, Error, Result};
use crate::pool::Connection as PoolConnection;
use postgres::{Client, NoTls, Statement};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Idle connections older than this are checked before reuse (the server may have closed them).
const REVALIDATE_AFTER: Duration = Duration::from_secs(30);

/// A pooled client with its prepared statements.
pub struct PgConn {
    client: Client,
    statements: HashMap<String, Statement>,
    last_used: Instant,
}

impl PoolConnection for PgConn {
    fn is_broken(&mut self) -> bool {
        self.last_used = Instant::now();
        self.client.is_closed()
    }

    fn revalidate(&mut self) -> bool {
        self.last_used.elapsed() < REVALIDATE_AFTER
            || self.client.is_valid(Duration::from_secs(5)).is_ok()
    }
}

/// A pooled connection in use, inside a transaction or not, preparing each statement once per
/// connection.
pub struct Tx<'a> {
    session: Session<'a>,
    statements: &'a mut HashMap<String, Statement>,
    retry: bool,
}

/// Where a [`Tx`]'s statements run.
enum Session<'a> {
    /// Inside a transaction (writes).
    Transaction(postgres::Transaction<'a>),
    /// Straight on the connection, each statement on its own (reads: one round trip).
    Plain(&'a mut Client),
}

impl Tx<'_> {
    /// Whether an earlier attempt of this body may have committed: its connection was lost
    /// with the outcome unknown ([`PgStore::write_idempotent`] only).
    pub fn is_retry(&self) -> bool {
        self.retry
    }

    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = match &mut self.session {
            Session::Transaction(tx) => tx.prepare(sql)?,
            Session::Plain(client) => client.prepare(sql)?,
        };
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    /// Run `sql` (prepared once) and return its rows.
    pub fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        match &mut self.session {
            Session::Transaction(tx) => tx.query(&statement, params),
            Session::Plain(client) => client.query(&statement, params),
        }
    }

    /// Run `sql` (prepared once) and return the number of rows changed.
    pub fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<u64, postgres::Error> {
        let statement = self.statement(sql)?;
        match &mut self.session {
            Session::Transaction(tx) => tx.execute(&statement, params),
            Session::Plain(client) => client.execute(&statement, params),
        }
    }

    /// Start `COPY … FROM STDIN` (`sql`, prepared once); the rows go to the writer returned.
    pub fn copy_in(&mut self, sql: &str) -> Result<postgres::CopyInWriter<'_>, postgres::Error> {
        let statement = self.statement(sql)?;
        match &mut self.session {
            Session::Transaction(tx) => tx.copy_in(&statement),
            Session::Plain(client) => client.copy_in(&statement),
        }
    }

    /// Run SQL text that may hold several statements (migrations), without preparing it.
    pub fn batch_execute(&mut self, sql: &str) -> Result<(), postgres::Error> {
        match &mut self.session {
            Session::Transaction(tx) => tx.batch_execute(sql),
            Session::Plain(client) => client.batch_execute(sql),
        }
    }

    fn commit(self) -> Result<(), postgres::Error> {
        match self.session {
            Session::Transaction(tx) => tx.commit(),
            Session::Plain(_) => Ok(()),
        }
    }
}

impl PgStore {
    /// Run `body` in a transaction and commit. Serialization failures and deadlocks are
    /// retried; so is a connection the server dropped (restart, `pg_terminate_backend`, idle
    /// timeout) when it failed before COMMIT was sent — nothing was written, so the work is
    /// redone on a fresh connection. A failure during COMMIT is reported, never retried.
    pub(super) fn write<T>(
        &self,
        doing: &str,
        body: impl FnMut(&mut Tx<'_>) -> Result<T, TxError>,
    ) -> Result<T> {
        self.run(doing, Mode::Transaction, body)
    }

    /// Run a `body` that can tell a first attempt from a retry ([`Tx::is_retry`]) and whose
    /// retry is idempotent: it completes or verifies whatever an earlier attempt committed.
    /// The first attempt runs outside a transaction when `first_in_transaction` is false (one
    /// self-committing statement: one round trip), else in one. A connection lost at any point
    /// — even during the commit, when the outcome is unknown — is retried on a fresh connection,
    /// always in a transaction; so are serialization failures and deadlocks.
    pub(super) fn write_idempotent<T>(
        &self,
        doing: &str,
        first_in_transaction: bool,
        body: impl FnMut(&mut Tx<'_>) -> Result<T, TxError>,
    ) -> Result<T> {
        self.run(
            doing,
            Mode::Idempotent {
                first_in_transaction,
            },
            body,
        )
    }

    /// Run read-only `body` outside a transaction (one round trip per statement), retried on
    /// a fresh connection if the server dropped this one.
    pub(super) fn read<T>(
        &self,
        doing: &str,
        body: impl FnMut(&mut Tx<'_>) -> Result<T, TxError>,
    ) -> Result<T> {
        self.run(doing, Mode::Read, body)
    }

    fn run<T>(
        &self,
        doing: &str,
        mode: Mode,
        mut body: impl FnMut(&mut Tx<'_>) -> Result<T, TxError>,
    ) -> Result<T> {
        let (mut conflicts, mut disconnects) = (0, 0);
        let mut retry = false;
        loop {
            let mut pooled = self.pool.get()?;
            let conn = &mut *pooled;
            let mut committing = false;
            // Test-only faults: the connection lost around the first attempt of a write.
            #[cfg(test)]
            let faulty = !matches!(mode, Mode::Read) && !retry;
            let outcome = (|| {
                #[cfg(test)]
                if faulty {
                    super::faults::before(&self.schema, &mut conn.client)?;
                }
                let in_transaction = match mode {
                    Mode::Transaction => true,
                    Mode::Idempotent {
                        first_in_transaction,
                    } => first_in_transaction || retry,
                    Mode::Read => false,
                };
                let session = match in_transaction {
                    true => Session::Transaction(conn.client.transaction()?),
                    false => Session::Plain(&mut conn.client),
                };
                let mut tx = Tx {
                    session,
                    statements: &mut conn.statements,
                    retry,
                };
                let value = body(&mut tx)?;
                committing = true;
                tx.commit()?;
                #[cfg(test)]
                if faulty {
                    super::faults::after(&self.schema, &mut conn.client)?;
                }
                Ok(value)
            })();
            let err = match outcome {
                Ok(value) => return Ok(value),
                Err(TxError::App(err)) => return Err(err),
                Err(TxError::Db(err)) => err,
            };
            if is_conflict(&err) && conflicts < 3 {
                conflicts += 1;
            } else if disconnects <= self.pool_size
                && match mode {
                    Mode::Transaction | Mode::Read => {
                        !committing && is_disconnect(&err, &conn.client)
                    }
                    // The retry finds out what was committed.
                    Mode::Idempotent { .. } => is_disconnect(&err, &conn.client),
                }
            {
                retry = retry || matches!(mode, Mode::Idempotent { .. });
                // Every idle connection may be dead: allow one retry per pooled connection.
                disconnects += 1;
                tracing::debug!(
                    "retrying on a new connection after: {}",
                    postgres_text(&err)
                );
            } else {
                return Err(Error::postgres(doing, err));
            }
        }
    }
}

/// How [`PgStore::run`] runs a body.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// In a transaction, committed at the end.
    Transaction,
    /// Read-only statements, each on its own.
    Read,
    /// A write whose retry is idempotent: see [`PgStore::write_idempotent`].
    Idempotent {
        /// Whether the first attempt runs in a transaction too.
        first_in_transaction: bool,
    },
}

/// Open one connection.
pub fn connect(config: &postgres::Config) -> Result<PgConn, postgres::Error> {
    Ok(PgConn {
        client: config.connect(NoTls)?,
        statements: HashMap::new(),
        last_used: Instant::now(),
    })
}

/// Whether the connection is gone (closed, or the server ended the session).
fn is_disconnect(err: &postgres::Error, client: &Client) -> bool {
    if client.is_closed() || err.is_closed() {
        return true;
    }
    match err.code() {
        Some(code) => {
            let code = code.code();
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
        }
        None => std::error::Error::source(err).is_some_and(|s| s.is::<std::io::Error>()),
    }
}

fn is_conflict(err: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    matches!(
        err.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}
