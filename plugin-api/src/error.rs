//! The error a plugin returns across the ABI.

use abi_stable::{std_types::RString, StableAbi};
use std::fmt;

/// What kind of failure a [`PluginError`] reports. Crosses the ABI as a `u8` so new kinds can be
/// added in a minor version; a host that does not know a kind treats it as [`ErrorKind::OTHER`].
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorKind(pub u8);

impl ErrorKind {
    /// Any failure without a more specific kind.
    pub const OTHER: Self = Self(0);
    /// A method was called that the backend does not offer (Django's `NotImplementedError`).
    pub const NOT_SUPPORTED: Self = Self(1);
    /// `get_result` (or a queue-store call) named an id the backend does not know.
    pub const RESULT_DOES_NOT_EXIST: Self = Self(2);
    /// The backend's constructor rejected its options.
    pub const INVALID_OPTIONS: Self = Self(3);
    /// A request payload could not be decoded or is invalid.
    pub const INVALID_REQUEST: Self = Self(4);
    /// A panic inside the plugin was caught by the guard.
    pub const PANIC: Self = Self(5);
    /// The store (database, server) could not be reached or failed; retrying may help.
    pub const UNAVAILABLE: Self = Self(6);
    /// A queue-store write came from a worker that no longer holds the task's lease.
    pub const LEASE_LOST: Self = Self(7);
    /// The class named in the config is not exported by this library.
    pub const UNKNOWN_CLASS: Self = Self(8);
    /// The store cannot be used and retrying will not help: its file is corrupt, its schema is
    /// missing, access is denied… Someone must repair it (kinds a host does not know count as
    /// [`ErrorKind::OTHER`]). [`ErrorKind::UNAVAILABLE`] is the kind for "retry may help".
    pub const STORE_BROKEN: Self = Self(9);

    /// A short lowercase name for messages (`"not supported"`, `"panic"`…).
    pub fn name(self) -> &'static str {
        match self {
            Self::NOT_SUPPORTED => "not supported",
            Self::RESULT_DOES_NOT_EXIST => "result does not exist",
            Self::INVALID_OPTIONS => "invalid options",
            Self::INVALID_REQUEST => "invalid request",
            Self::PANIC => "panic",
            Self::UNAVAILABLE => "unavailable",
            Self::LEASE_LOST => "lease lost",
            Self::UNKNOWN_CLASS => "unknown class",
            Self::STORE_BROKEN => "store broken",
            _ => "error",
        }
    }
}

impl fmt::Debug for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ErrorKind({}: {})", self.0, self.name())
    }
}

/// An error returned by a plugin: a kind the host can act on and a message for people.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct PluginError {
    /// What went wrong, for the host to map onto its own error type.
    pub kind: ErrorKind,
    /// A full sentence saying what went wrong and, where possible, what to do ([`Self::message`]).
    message: RString,
}

impl PluginError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: RString::from(message.into()),
        }
    }

    /// An [`ErrorKind::OTHER`] error.
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::OTHER, message)
    }

    /// An [`ErrorKind::NOT_SUPPORTED`] error naming the operation.
    pub fn not_supported(operation: &str) -> Self {
        Self::new(
            ErrorKind::NOT_SUPPORTED,
            format!("This backend does not support '{operation}'."),
        )
    }

    /// An [`ErrorKind::RESULT_DOES_NOT_EXIST`] error for the result `id` (the host reports
    /// Django's `TaskResultDoesNotExist` with the id).
    pub fn does_not_exist(id: &str) -> Self {
        Self::new(ErrorKind::RESULT_DOES_NOT_EXIST, id)
    }

    /// An [`ErrorKind::INVALID_REQUEST`] error: the request cannot be served as it is.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::INVALID_REQUEST, message)
    }

    /// An [`ErrorKind::INVALID_OPTIONS`] error: the backend's options are wrong.
    pub fn invalid_options(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::INVALID_OPTIONS, message)
    }

    /// The message, as text.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The message, owned.
    pub fn into_message(self) -> String {
        self.message.into_string()
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PluginError {}
