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
    /// The database cannot be used and retrying will not help: a corrupt file, a missing
    /// table or schema, access denied. Crosses the ABI as `ErrorKind::STORE_BROKEN`.
    #[error("{0}")]
    Broken(String),
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

    /// An SQLite failure while `doing` something (see [`sqlite_class`]).
    pub fn sqlite(doing: &str, err: rusqlite::Error) -> Self {
        let message = format!("SQLite failed while {doing}: {err}");
        match sqlite_class(&err) {
            Class::Transient => Self::Unavailable(message),
            Class::Broken => Self::Broken(message),
            Class::Other => Self::Other(message),
        }
    }

    /// A PostgreSQL failure while `doing` something (see [`postgres_class`]).
    pub fn postgres(doing: &str, err: postgres::Error) -> Self {
        let message = format!("PostgreSQL failed while {doing}: {}", postgres_text(&err));
        let class = match err.code() {
            Some(code) => postgres_class(code.code()),
            None => Class::Transient,
        };
        match class {
            Class::Broken => Self::Broken(message),
            _ if err.is_closed() => Self::Unavailable(message),
            Class::Transient => Self::Unavailable(message),
            Class::Other => Self::Other(message),
        }
    }

    /// Whether retrying the same operation may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// Whether a driver error is worth retrying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Retrying may help (busy, locked, unreachable, a session ended, out of resources).
    Transient,
    /// Retrying will not help: someone must repair the database, its schema or its access.
    Broken,
    /// Anything else (a constraint, a bug): reported as is.
    Other,
}

/// SQLite: busy, locked, I/O, full disk and out of memory are transient (and so are a
/// read-only database while another connection recovers the WAL, `SQLITE_READONLY_RECOVERY`
/// and `_CANTINIT`); a corrupt or non-SQLite file, a read-only or unopenable one, denied
/// access and a missing table or column are broken.
pub fn sqlite_class(err: &rusqlite::Error) -> Class {
    use rusqlite::ErrorCode::*;
    /// Read-only while another connection recovers or initialises the WAL: passing states.
    const READONLY_PASSING: [i32; 2] = [
        rusqlite::ffi::SQLITE_READONLY_RECOVERY,
        rusqlite::ffi::SQLITE_READONLY_CANTINIT,
    ];
    let Some(code) = err.sqlite_error_code() else {
        return Class::Other;
    };
    match (code, err) {
        (DatabaseBusy | DatabaseLocked | SystemIoFailure | DiskFull | OutOfMemory, _) => {
            Class::Transient
        }
        (ReadOnly, rusqlite::Error::SqliteFailure(e, _))
            if READONLY_PASSING.contains(&e.extended_code) =>
        {
            Class::Transient
        }
        (
            DatabaseCorrupt
            | NotADatabase
            | ReadOnly
            | CannotOpen
            | PermissionDenied
            | AuthorizationForStatementDenied,
            _,
        ) => Class::Broken,
        (Unknown, rusqlite::Error::SqliteFailure(_, Some(text)))
            if text.starts_with("no such table") || text.starts_with("no such column") =>
        {
            Class::Broken
        }
        _ => Class::Other,
    }
}

/// PostgreSQL, by SQLSTATE: connection problems (class 08), the server shutting down or the
/// session ended (57P01–57P03), a cancelled statement (57014), too few resources (53), a
/// system error (58), a serialization failure or deadlock (40) and a lock not available
/// (55P03) are transient; a missing table, column, function or schema (42P01, 42703, 42883,
/// 3F000), a missing or dropped database (3D000, 57P04), denied privileges (42501), failed
/// authentication (28) and corrupt data (XX001, XX002) are broken.
pub fn postgres_class(sqlstate: &str) -> Class {
    match sqlstate {
        "42P01" | "42703" | "42883" | "3F000" | "3D000" | "57P04" | "42501" | "XX001" | "XX002" => {
            Class::Broken
        }
        "55P03" => Class::Transient,
        _ => match sqlstate.get(..2) {
            Some("28") => Class::Broken,
            Some("08" | "40" | "53" | "57" | "58") => Class::Transient,
            _ => Class::Other,
        },
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
            Error::Broken(_) => ErrorKind::STORE_BROKEN,
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

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::ffi;

    fn sqlite_failure(extended_code: i32, text: Option<&str>) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(ffi::Error::new(extended_code), text.map(String::from))
    }

    #[test]
    fn sqlite_busy_locked_and_io_errors_are_transient() {
        for code in [
            ffi::SQLITE_BUSY,
            ffi::SQLITE_LOCKED,
            ffi::SQLITE_IOERR,
            ffi::SQLITE_FULL,
            ffi::SQLITE_NOMEM,
            ffi::SQLITE_READONLY_RECOVERY,
            ffi::SQLITE_READONLY_CANTINIT,
        ] {
            assert_eq!(
                sqlite_class(&sqlite_failure(code, None)),
                Class::Transient,
                "{code}"
            );
        }
        let err = Error::sqlite("claiming tasks", sqlite_failure(ffi::SQLITE_BUSY, None));
        assert_eq!(PluginError::from(err).kind, ErrorKind::UNAVAILABLE);
    }

    #[test]
    fn sqlite_corrupt_unreadable_unwritable_and_missing_tables_are_broken() {
        for code in [
            ffi::SQLITE_CORRUPT,
            ffi::SQLITE_NOTADB,
            ffi::SQLITE_READONLY,
            ffi::SQLITE_READONLY_DBMOVED,
            ffi::SQLITE_CANTOPEN,
            ffi::SQLITE_PERM,
            ffi::SQLITE_AUTH,
        ] {
            assert_eq!(
                sqlite_class(&sqlite_failure(code, None)),
                Class::Broken,
                "{code}"
            );
        }
        let missing = sqlite_failure(ffi::SQLITE_ERROR, Some("no such table: taskhost_tasks"));
        assert_eq!(sqlite_class(&missing), Class::Broken);
        let err = PluginError::from(Error::sqlite("claiming tasks", missing));
        assert_eq!(err.kind, ErrorKind::STORE_BROKEN);
        assert_eq!(
            err.message(),
            "SQLite failed while claiming tasks: no such table: taskhost_tasks"
        );
    }

    #[test]
    fn other_sqlite_errors_stay_other() {
        let syntax = sqlite_failure(ffi::SQLITE_ERROR, Some("near \"x\": syntax error"));
        assert_eq!(sqlite_class(&syntax), Class::Other);
        assert_eq!(
            sqlite_class(&sqlite_failure(ffi::SQLITE_CONSTRAINT_PRIMARYKEY, None)),
            Class::Other
        );
        assert_eq!(
            sqlite_class(&rusqlite::Error::QueryReturnedNoRows),
            Class::Other
        );
    }

    #[test]
    fn postgres_connection_session_resource_and_conflict_errors_are_transient() {
        for code in [
            "08006", "08001", "57P01", "57P02", "57P03", "57014", "53300", "53100", "58030",
            "40001", "40P01", "55P03",
        ] {
            assert_eq!(postgres_class(code), Class::Transient, "{code}");
        }
    }

    #[test]
    fn postgres_missing_objects_denied_access_and_corruption_are_broken() {
        for code in [
            "42P01", "42703", "42883", "3F000", "3D000", "57P04", "42501", "28000", "28P01",
            "XX001", "XX002",
        ] {
            assert_eq!(postgres_class(code), Class::Broken, "{code}");
        }
        for code in ["23505", "22P02", "42601", "XX000"] {
            assert_eq!(postgres_class(code), Class::Other, "{code}");
        }
    }

    #[test]
    fn a_broken_store_crosses_the_abi_as_store_broken() {
        let err = PluginError::from(Error::Broken("gone".into()));
        assert_eq!((err.kind, err.message()), (ErrorKind::STORE_BROKEN, "gone"));
        assert!(!Error::Broken("gone".into()).is_transient());
    }
}
