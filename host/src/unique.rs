//! Unique tasks: an enqueue that carries a uniqueness key, so that a second enqueue of the same
//! task with the same key returns the task already holding it instead of storing another
//! (`docs/decisions/019-unique-tasks.md`).
//!
//! The key is the caller's ([`Unique::key`]) or derived ([`Unique::derived`]: SHA-256 of the
//! task path and the canonical JSON of the arguments). It is held per backend alias and task
//! path, for a [`UniqueScope`]. The backend enforces it (a unique index in the database
//! backend): the host only sends it to a backend declaring `supports_unique`, and refuses
//! the task otherwise.

use crate::error::{Error, Result};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::fmt::Write as _;
use std::time::Duration;
use taskhost_plugin_api::{Capabilities, UniqueKey};

/// How long a uniqueness key stays held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UniqueScope {
    /// While the task holding it is READY or RUNNING (its retries included): once it is
    /// SUCCESSFUL or FAILED the key is free. The default.
    #[default]
    Active,
    /// For this long after the task holding it was enqueued, whatever its status (at least one
    /// microsecond, at most [`Unique::MAX_PERIOD`]).
    For(Duration),
}

/// An enqueue's uniqueness: which key, and for how long it is held
/// ([`TaskOptions::unique`](crate::TaskOptions::unique), [`Task::unique`](crate::Task::unique)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unique {
    /// The caller's key; `None`: derived from the task path and arguments.
    key: Option<String>,
    scope: UniqueScope,
}

impl Unique {
    /// The longest [`UniqueScope::For`] period: 100 years.
    pub const MAX_PERIOD: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

    /// A key derived from the task path and the canonical JSON of the arguments (object keys
    /// sorted): the same arguments give the same key, other arguments another.
    pub fn derived() -> Self {
        Self::default()
    }

    /// The caller's key: 1 to [`UniqueKey::MAX_BYTES`] bytes, held per task path.
    pub fn key(key: impl Into<String>) -> Self {
        Self {
            key: Some(key.into()),
            scope: UniqueScope::Active,
        }
    }

    /// The same key, held for `scope`.
    pub fn scope(mut self, scope: UniqueScope) -> Self {
        self.scope = scope;
        self
    }

    /// The caller's key, or `None` when it is derived.
    pub fn explicit_key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// How long the key is held.
    pub fn held_for(&self) -> UniqueScope {
        self.scope
    }

    /// Check the key and scope, and that the backend (`alias`, `backend_name`, with
    /// `capabilities`) can enforce them: `InvalidTask` naming what is at fault.
    pub(crate) fn validate(
        &self,
        alias: &str,
        backend_name: &str,
        capabilities: Capabilities,
    ) -> Result<()> {
        if !capabilities.contains(Capabilities::UNIQUE) {
            return Err(Error::InvalidTask(format!(
                "Backend '{alias}' ({backend_name}) does not support unique tasks \
                 (supports_unique is false); enqueue without unique(), or use a backend that \
                 supports it (taskhost.backends.database.DatabaseBackend)."
            )));
        }
        if let Some(key) = &self.key {
            if key.is_empty() || key.len() > UniqueKey::MAX_BYTES {
                return Err(Error::InvalidTask(format!(
                    "A unique key must be 1 to {} bytes long, got {} bytes.",
                    UniqueKey::MAX_BYTES,
                    key.len()
                )));
            }
        }
        if let UniqueScope::For(period) = self.scope {
            if period < Duration::from_micros(1) || period > Self::MAX_PERIOD {
                return Err(Error::InvalidTask(format!(
                    "A unique period must be 1 µs to 100 years, got {period:?}."
                )));
            }
        }
        Ok(())
    }

    /// What the backend gets for a task `path` with arguments `args` and `kwargs` (JSON text):
    /// the key (derived now if not the caller's) and the scope.
    pub(crate) fn for_request(&self, path: &str, args: &str, kwargs: &str) -> Result<UniqueKey> {
        let key = match &self.key {
            Some(key) => key.clone(),
            None => derived_key(path, args, kwargs)?,
        };
        let scope = match self.scope {
            UniqueScope::Active => taskhost_plugin_api::UniqueScope::Active,
            UniqueScope::For(period) => taskhost_plugin_api::UniqueScope::For {
                // Validated: at most 100 years, far below i64::MAX µs.
                period_us: period.as_micros() as i64,
            },
        };
        Ok(UniqueKey { key, scope })
    }
}

/// The derived key of a task `path` with arguments `args` and `kwargs` (JSON text): the hex
/// SHA-256 of the path and the canonical JSON of both (object keys sorted, no whitespace).
pub(crate) fn derived_key(path: &str, args: &str, kwargs: &str) -> Result<String> {
    let mut hasher = Sha256::new();
    hasher.update(path.as_bytes());
    for text in [args, kwargs] {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            Error::UnsupportedValue(format!("the arguments cannot be read as JSON: {e}"))
        })?;
        let mut canonical = String::with_capacity(text.len());
        write_canonical(&value, &mut canonical);
        hasher.update(b"\n");
        hasher.update(canonical.as_bytes());
    }
    let mut hex = String::with_capacity(64);
    for byte in hasher.finalize() {
        let _ = write!(hex, "{byte:02x}");
    }
    Ok(hex)
}

/// `value` as JSON with every object's keys sorted, whatever order it was built in.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_arguments_derive_the_same_key_whatever_their_key_order() {
        let a = derived_key("app::bill", r#"[{"b":1,"a":[2,{"y":1,"x":2}]}]"#, "{}").unwrap();
        let b = derived_key("app::bill", r#"[{"a":[2,{"x":2,"y":1}],"b":1}]"#, "{}").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn other_arguments_or_another_task_derive_another_key() {
        let key = derived_key("app::bill", "[1]", "{}").unwrap();
        for (path, args, kwargs) in [
            ("app::bill", "[2]", "{}"),
            ("app::bill", "[1,1]", "{}"),
            ("app::bill", "[\"1\"]", "{}"),
            ("app::bill", "[1]", r#"{"a":1}"#),
            ("app::refund", "[1]", "{}"),
        ] {
            assert_ne!(
                key,
                derived_key(path, args, kwargs).unwrap(),
                "{path} {args}"
            );
        }
    }

    #[test]
    fn a_backend_without_supports_unique_is_refused_by_name() {
        let err = Unique::derived()
            .validate("mem", "acme.Mem", Capabilities::QUEUE_STORE)
            .unwrap_err();
        assert!(matches!(err, Error::InvalidTask(_)));
        assert!(
            err.to_string().contains("Backend 'mem' (acme.Mem)"),
            "{err}"
        );
        assert!(err.to_string().contains("supports_unique"), "{err}");
    }

    #[test]
    fn keys_and_periods_out_of_range_are_refused() {
        let ok = Capabilities::UNIQUE;
        assert!(Unique::key("").validate("a", "b", ok).is_err());
        assert!(Unique::key("k".repeat(256)).validate("a", "b", ok).is_err());
        assert!(Unique::key("k".repeat(255)).validate("a", "b", ok).is_ok());
        let zero = Unique::derived().scope(UniqueScope::For(Duration::ZERO));
        assert!(zero.validate("a", "b", ok).is_err());
        let long = Unique::derived().scope(UniqueScope::For(Unique::MAX_PERIOD * 2));
        assert!(long.validate("a", "b", ok).is_err());
        let hour = Unique::derived().scope(UniqueScope::For(Duration::from_secs(3600)));
        assert_eq!(
            hour.for_request("p", "[]", "{}").unwrap().scope,
            taskhost_plugin_api::UniqueScope::For {
                period_us: 3_600_000_000
            }
        );
    }
}
