//! The plugin's error type, and how it crosses the ABI as a [`PluginError`].

use taskhost_plugin_api::{ErrorKind, PluginError};

/// Everything that can go wrong inside the database backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The backend's options are wrong, or the database they name cannot be used.
    #[error("{0}")]
    InvalidOptions(String),
    /// A request payload is invalid (bad id, bad filter…).
    #[error("{0}")]
    InvalidRequest(String),
    /// No stored result has this id: Django's `TaskResultDoesNotExist(result_id)`.
    #[error("{0}")]
    DoesNotExist(String),
    /// The operation is not offered by this database (e.g. LISTEN/NOTIFY on SQLite).
    #[error("This backend does not support '{0}'.")]
    NotSupported(String),
    /// The database could not be reached, was busy, or the backend is closed; retrying may help.
    #[error("{0}")]
    Unavailable(String),
    /// A stored row holds a value this plugin cannot read.
    #[error("task result '{id}' has an invalid value in column '{column}': {detail}")]
    Corrupt {
        /// The row's id.
        id: String,
        /// The column holding the bad value.
        column: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// Any other failure, e.g. an SQL error that points at a bug.
    #[error("{0}")]
    Other(String),
}

/// The result type of the backend's internals.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An enqueue whose id is taken (Django's wording, as the other backends).
    pub fn already_stored(id: &str) -> Self {
        Self::InvalidRequest(format!("A result with id '{id}' is already stored."))
    }

    /// An SQLite failure while `doing` something: busy, locked and I/O errors are
    /// [`Error::Unavailable`] (retrying may help), the rest [`Error::Other`].
    pub fn sqlite(doing: &str, err: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::*;
        let message = format!("SQLite failed while {doing}: {err}");
        match err.sqlite_error_code() {
            Some(
                DatabaseBusy | DatabaseLocked | SystemIoFailure | CannotOpen | ReadOnly | DiskFull
                | OutOfMemory,
            ) => Self::Unavailable(message),
            _ => Self::Other(message),
        }
    }

    /// A PostgreSQL failure while `doing` something: connection, resource and serialization
    /// problems are [`Error::Unavailable`], the rest [`Error::Other`].
    pub fn postgres(doing: &str, err: postgres::Error) -> Self {
        let message = format!("PostgreSQL failed while {doing}: {}", postgres_text(&err));
        let transient = match err.code() {
            None => true,
            Some(code) => {
                let class = &code.code()[..2];
                matches!(class, "08" | "40" | "53" | "57" | "58")
            }
        };
        if transient || err.is_closed() {
            Self::Unavailable(message)
        } else {
            Self::Other(message)
        }
    }

    /// Whether retrying the same operation may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// A PostgreSQL error with its server message and detail, not just "db error".
pub fn postgres_text(err: &postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        },
        None => {
            let mut text = err.to_string();
            let mut source = std::error::Error::source(err);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    }
}

impl From<Error> for PluginError {
    fn from(err: Error) -> Self {
        let kind = match &err {
            Error::InvalidOptions(_) => ErrorKind::INVALID_OPTIONS,
            Error::InvalidRequest(_) => ErrorKind::INVALID_REQUEST,
            Error::DoesNotExist(_) => ErrorKind::RESULT_DOES_NOT_EXIST,
            Error::NotSupported(_) => ErrorKind::NOT_SUPPORTED,
            Error::Unavailable(_) => ErrorKind::UNAVAILABLE,
            Error::Corrupt { .. } | Error::Other(_) => ErrorKind::OTHER,
        };
        PluginError::new(kind, err.to_string())
    }
}

/// An error inside a database transaction body: from the driver (`E`; busy or transient ones
/// may be retried), or the backend's own (never retried).
pub enum TxError<E> {
    /// From the database driver.
    Db(E),
    /// From the backend.
    App(Error),
}

impl From<rusqlite::Error> for TxError<rusqlite::Error> {
    fn from(err: rusqlite::Error) -> Self {
        Self::Db(err)
    }
}

impl From<postgres::Error> for TxError<postgres::Error> {
    fn from(err: postgres::Error) -> Self {
        Self::Db(err)
    }
}

impl<E> From<Error> for TxError<E> {
    fn from(err: Error) -> Self {
        Self::App(err)
    }
}
