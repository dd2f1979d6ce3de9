//! The one error type of the host library, with Django's exception names as variants.

use std::path::PathBuf;

/// Every error the host library returns. Variants carry Django's exception names; messages are
/// Django's verbatim where Django has one, so tests and users can match the exact text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A task failed `validate_task` (Django's `InvalidTask`), e.g.
    /// `priority must be a whole number between -100 and 100.`
    #[error("{0}")]
    InvalidTask(String),

    /// A backend alias is unknown or its backend could not be loaded (Django's
    /// `InvalidTaskBackend`): `The connection 'x' doesn't exist.` or
    /// `Could not find backend '<name>': <reason>`.
    #[error("{message}")]
    InvalidTaskBackend {
        /// The alias at fault, when one was involved.
        alias: Option<String>,
        /// The backend name at fault, when one was involved.
        backend: Option<String>,
        /// The whole message.
        message: String,
    },

    /// No result with this id (Django's `TaskResultDoesNotExist`; the message is the id).
    #[error("{0}")]
    TaskResultDoesNotExist(String),

    /// The result belongs to another task (Django's `TaskResultMismatch`):
    /// `Task does not match (received '<path>')`.
    #[error("{0}")]
    TaskResultMismatch(String),

    /// The backend does not offer this operation (Django's `NotImplementedError`), e.g.
    /// `This backend does not support retrieving or refreshing results.`
    #[error("{0}")]
    NotSupported(String),

    /// A value cannot be stored as JSON (Django's `TypeError("Unsupported type: …")` /
    /// `ValueError("Unsupported value: …")`).
    #[error("{0}")]
    UnsupportedValue(String),

    /// `return_value()` on a result that has none: `Task failed` or `Task has not finished yet`.
    #[error("{0}")]
    NoReturnValue(&'static str),

    /// The return value is stored but does not decode into the task's return type.
    #[error(
        "the stored return value of task result '{id}' does not decode as {expected}: {reason}"
    )]
    ReturnValueType {
        /// The result id.
        id: String,
        /// The Rust type asked for.
        expected: &'static str,
        /// The decoding error.
        reason: String,
    },

    /// [`TaskResult::wait`](crate::TaskResult::wait) (or `await_finished`) gave up: the result
    /// was not finished when its timeout passed.
    #[error(
        "Task result '{id}' did not finish within {timeout:?}; wait longer, or check that a \
         worker runs its queue (`taskhost worker`)"
    )]
    WaitTimeout {
        /// The result id.
        id: String,
        /// The timeout that passed.
        timeout: std::time::Duration,
    },

    /// The configuration is wrong (Django's `ImproperlyConfigured`); the message names the file
    /// and the key at fault.
    #[error("{message}")]
    ImproperlyConfigured {
        /// The config file, when one was read.
        file: Option<PathBuf>,
        /// The dotted key at fault, when there is one (`tasks.default.backend`).
        key: Option<String>,
        /// The whole message.
        message: String,
    },

    /// Registered tasks take application state (`State<T>`) of types the application did not
    /// provide (`AppState::with`): a worker refuses to start, naming each task and type.
    #[error("{}", missing_state_message(.0))]
    MissingState(Vec<MissingState>),

    /// `cancel()` of a result that has already finished (FAILED or SUCCESSFUL): nothing was
    /// changed.
    #[error(
        "Task result '{id}' of backend '{alias}' has already finished ({status}): only a READY or \
         RUNNING task can be cancelled."
    )]
    AlreadyFinished {
        /// The result id.
        id: String,
        /// The backend alias.
        alias: String,
        /// Its status.
        status: taskhost_plugin_api::TaskResultStatus,
    },

    /// `retry()` of a result that is not FAILED: nothing was changed.
    #[error(
        "Task result '{id}' of backend '{alias}' is {status}, not FAILED: only a FAILED task can \
         be retried."
    )]
    NotFailed {
        /// The result id.
        id: String,
        /// The backend alias.
        alias: String,
        /// Its status.
        status: taskhost_plugin_api::TaskResultStatus,
    },

    /// An enqueue in the application's transaction was given a connection to another kind of
    /// database than the one the backend keeps its queue in (a PostgreSQL transaction for a
    /// SQLite queue, or the reverse).
    #[error(
        "backend '{alias}' keeps its queue in {database}, but the connection given is a \
         {driver_database} one ({driver}): enqueue through a connection to the queue's database, \
         or use a task whose backend is there (`task.using(TaskOptions::new().backend(..))`)"
    )]
    DatabaseMismatch {
        /// The alias of the task's backend.
        alias: String,
        /// The database of the backend's queue (`SQLite`, `PostgreSQL`).
        database: &'static str,
        /// The driver of the connection given (`sqlx`, `tokio-postgres`, `rusqlite`).
        driver: &'static str,
        /// The database that connection talks to.
        driver_database: &'static str,
    },

    /// The application's database driver failed to run an enqueue on its connection or
    /// transaction (the task is not enqueued; the transaction is the application's to roll back).
    #[error("enqueueing task '{task}' on the application's {driver} connection failed: {message}")]
    Database {
        /// The task's path.
        task: String,
        /// The driver (`sqlx`, `tokio-postgres`, `rusqlite`).
        driver: &'static str,
        /// The driver's error.
        message: String,
    },

    /// A backend plugin reported an error (storage down, lease lost, a caught panic…).
    #[error("backend '{alias}' failed: {message}")]
    Backend {
        /// The alias of the backend.
        alias: String,
        /// The plugin's error kind.
        kind: taskhost_plugin_api::ErrorKind,
        /// The plugin's message.
        message: String,
    },
}

impl Error {
    /// `The connection '<alias>' doesn't exist.` — Django's message for an unknown alias.
    pub fn unknown_alias(alias: &str) -> Self {
        Self::InvalidTaskBackend {
            alias: Some(alias.to_string()),
            backend: None,
            message: format!("The connection '{alias}' doesn't exist."),
        }
    }

    /// `Could not find backend '<backend>': <reason> (alias '<alias>')` — Django's message for a
    /// backend that cannot be loaded, naming the alias too.
    pub fn backend_not_found(alias: &str, backend: &str, reason: impl std::fmt::Display) -> Self {
        Self::InvalidTaskBackend {
            alias: Some(alias.to_string()),
            backend: Some(backend.to_string()),
            message: format!("Could not find backend '{backend}': {reason} (alias '{alias}')"),
        }
    }

    /// A configuration error naming the file and the key.
    pub fn config(
        file: Option<&std::path::Path>,
        key: Option<&str>,
        message: impl std::fmt::Display,
    ) -> Self {
        let message = match file {
            Some(f) => format!("{}: {message}", f.display()),
            None => message.to_string(),
        };
        Self::ImproperlyConfigured {
            file: file.map(PathBuf::from),
            key: key.map(str::to_string),
            message,
        }
    }
}

/// A task that takes `State<T>` of a type the application state lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingState {
    /// The task's path (`my_app::emails::send_welcome`).
    pub task: String,
    /// The type it takes, as `std::any::type_name` writes it (`my_app::Mailer`).
    pub type_name: String,
}

impl std::fmt::Display for MissingState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self { task, type_name } = self;
        write!(
            f,
            "task '{task}' takes `State<{type_name}>`, but no `{type_name}` was provided to this \
             process's application state"
        )
    }
}

/// What to do about missing state: said once, after the list.
pub(crate) const PROVIDE_STATE: &str = "register the value at start: \
    `cli_main!(state = || AppState::new().with(value))` in the binary's main, or \
    `task_backends().set_state(AppState::new().with(value))` before building the worker";

fn missing_state_message(missing: &[MissingState]) -> String {
    let list: Vec<String> = missing.iter().map(ToString::to_string).collect();
    format!("{}; {PROVIDE_STATE}", list.join("; "))
}

/// The host library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
