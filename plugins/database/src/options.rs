//! The backend's options (`[tasks.<alias>.options]`): parsing and validation.

use crate::error::{Error, Result};
use crate::limits::Limits;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use taskhost_plugin_api::BackendParams;

/// The class name this plugin exports, for messages.
pub const CLASS: &str = "DatabaseBackend";

/// Every option this backend knows, in the order messages list them.
pub const KNOWN: [&str; 10] = [
    "url",
    "max_attempts",
    "max_rescues",
    "lease_secs",
    "migrate",
    "pool_size",
    "schema",
    "synchronous",
    "synchronous_commit",
    "queues",
];

/// The values of the SQLite option `synchronous` (its `PRAGMA synchronous`).
const SYNCHRONOUS: [&str; 2] = ["normal", "full"];

/// The values of the PostgreSQL option `synchronous_commit` (the server setting of that name).
const SYNCHRONOUS_COMMIT: [&str; 5] = ["on", "off", "local", "remote_write", "remote_apply"];

/// Where the queue store lives.
#[derive(Clone, Debug, PartialEq)]
pub enum Location {
    /// An SQLite database file (absolute: relative urls are resolved against the config dir).
    Sqlite(PathBuf),
    /// A PostgreSQL server, as a `postgres://` or `postgresql://` url.
    Postgres(String),
}

/// The validated options of one backend alias.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// The `url` option, as given (for messages; see [`redact`]).
    pub url: String,
    /// Where the database is.
    pub location: Location,
    /// Attempts allowed for a task that sets none (default 1: Django's "no retry").
    pub max_attempts: u32,
    /// How many times a task may be rescued from a worker that stopped renewing its lease
    /// (killed, crashed, cut off) before it ends FAILED (default 3). Rescued tasks are READY
    /// again whatever `max_attempts` says: a lost worker is not the task's failure, but a task
    /// that takes down every worker that runs it (a poison task) must still end.
    pub max_rescues: u32,
    /// Lease length when a claim asks for none, in seconds (default 60).
    pub lease_secs: f64,
    /// Whether to create or upgrade the schema when the backend is built (default true).
    pub migrate: bool,
    /// Most connections one backend instance opens (default 4).
    pub pool_size: u32,
    /// PostgreSQL schema holding the tables (default `public`).
    pub schema: String,
    /// SQLite only: `PRAGMA synchronous`, `normal` (default: a commit survives a crash of the
    /// process, and a power loss may lose the last commits) or `full` (fsync at every commit).
    pub synchronous: String,
    /// PostgreSQL only: the session's `synchronous_commit`, or `None` for the server's setting.
    /// `off` trades the last few hundred milliseconds of commits at a server crash for speed.
    pub synchronous_commit: Option<String>,
    /// Per-queue limits across every worker (`[tasks.<alias>.options.queues.<name>]`, see
    /// [`crate::limits`]); empty: none.
    pub queues: Limits,
}

impl Options {
    /// Parse and validate `params.options`; every failure is [`Error::InvalidOptions`] naming
    /// the alias, the option and what to do.
    pub fn parse(params: &BackendParams) -> Result<Self> {
        let opts = &params.options;
        let ctx = Ctx {
            alias: &params.alias,
        };
        if let Some(unknown) = opts.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(ctx.invalid(format!(
                "unknown option '{unknown}'. Known options: {}.",
                KNOWN.join(", ")
            )));
        }
        let url = match opts.get("url") {
            Some(Value::String(url)) if !url.trim().is_empty() => url.trim().to_string(),
            Some(other) => {
                return Err(ctx.invalid(format!(
                    "option 'url' must be a non-empty string, got {other}. {}",
                    URL_HELP
                )))
            }
            None => return Err(ctx.invalid(format!("the option 'url' is required. {URL_HELP}"))),
        };
        let location = ctx.location(&url, params.config_dir.as_deref())?;
        let schema = ctx.string(opts, "schema", "public")?;
        if opts.contains_key("schema") && !matches!(location, Location::Postgres(_)) {
            return Err(ctx.invalid(
                "option 'schema' only applies to PostgreSQL urls; remove it for SQLite.".into(),
            ));
        }
        if !is_identifier(&schema) {
            return Err(ctx.invalid(format!(
                "option 'schema' must be a plain PostgreSQL identifier (letters, digits and _, \
                 not starting with a digit, at most 63 bytes), got '{schema}'."
            )));
        }
        let sqlite = matches!(location, Location::Sqlite(_));
        let synchronous = ctx.choice(opts, "synchronous", &SYNCHRONOUS, sqlite, "SQLite")?;
        let synchronous_commit = ctx.choice(
            opts,
            "synchronous_commit",
            &SYNCHRONOUS_COMMIT,
            !sqlite,
            "PostgreSQL",
        )?;
        let queues = match opts.get("queues") {
            Some(value) => Limits::parse(value).map_err(|m| ctx.invalid(m))?,
            None => Limits::default(),
        };
        Ok(Self {
            queues,
            url,
            location,
            max_attempts: ctx.positive_int(opts, "max_attempts", 1)?,
            max_rescues: ctx.positive_int(opts, "max_rescues", 3)?,
            lease_secs: ctx.positive_secs(opts, "lease_secs", 60.0)?,
            migrate: ctx.boolean(opts, "migrate", true)?,
            pool_size: ctx.positive_int(opts, "pool_size", 4)?,
            schema,
            synchronous: synchronous.unwrap_or_else(|| SYNCHRONOUS[0].to_string()),
            synchronous_commit,
        })
    }
}

const URL_HELP: &str = "Use `url = \"sqlite://tasks.db\"` (a file, relative to the config \
                        file's directory) or `url = \"postgres://user@host:5432/dbname\"`.";

/// Names the backend alias in every message.
struct Ctx<'a> {
    alias: &'a str,
}

impl Ctx<'_> {
    fn invalid(&self, what: String) -> Error {
        Error::InvalidOptions(format!("{CLASS} '{}': {what}", self.alias))
    }

    fn location(&self, url: &str, config_dir: Option<&str>) -> Result<Location> {
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            return Ok(Location::Postgres(url.to_string()));
        }
        if lower == "sqlite::memory:" || lower.contains(":memory:") || lower.contains("mode=memory")
        {
            return Err(self.invalid(format!(
                "url '{url}' is an in-memory SQLite database, which workers (other processes) \
                 cannot see. Use a file: `url = \"sqlite://tasks.db\"`."
            )));
        }
        let Some(path) = url.strip_prefix("sqlite://") else {
            return Err(self.invalid(format!(
                "url '{}' has an unsupported scheme. {URL_HELP}",
                redact(url)
            )));
        };
        if path.is_empty() || path.contains('?') {
            return Err(self.invalid(format!(
                "url '{url}' must name a database file, without query parameters, e.g. \
                 `sqlite://tasks.db` or `sqlite:///var/lib/app/tasks.db`."
            )));
        }
        let path = Path::new(path);
        let path = match (path.is_absolute(), config_dir) {
            (false, Some(dir)) => Path::new(dir).join(path),
            _ => path.to_path_buf(),
        };
        Ok(Location::Sqlite(path))
    }

    fn string(&self, opts: &Map<String, Value>, name: &str, default: &str) -> Result<String> {
        match opts.get(name) {
            None => Ok(default.to_string()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => {
                Err(self.invalid(format!("option '{name}' must be a string, got {other}.")))
            }
        }
    }

    fn positive_int(&self, opts: &Map<String, Value>, name: &str, default: u32) -> Result<u32> {
        match opts.get(name) {
            None => Ok(default),
            Some(value) => value
                .as_u64()
                .filter(|n| (1..=u64::from(u32::MAX)).contains(n))
                .map(|n| n as u32)
                .ok_or_else(|| {
                    self.invalid(format!(
                        "option '{name}' must be an integer ≥ 1, got {value}."
                    ))
                }),
        }
    }

    fn positive_secs(&self, opts: &Map<String, Value>, name: &str, default: f64) -> Result<f64> {
        match opts.get(name) {
            None => Ok(default),
            Some(value) => value
                .as_f64()
                .filter(|s| s.is_finite() && *s > 0.0)
                .ok_or_else(|| {
                    self.invalid(format!(
                        "option '{name}' must be a number of seconds greater than zero, got {value}."
                    ))
                }),
        }
    }

    /// A string option that must be one of `allowed` (any case) and only applies when
    /// `applies` (to the `database` named in the message); returned lowercased.
    fn choice(
        &self,
        opts: &Map<String, Value>,
        name: &str,
        allowed: &[&str],
        applies: bool,
        database: &str,
    ) -> Result<Option<String>> {
        let Some(value) = opts.get(name) else {
            return Ok(None);
        };
        if !applies {
            return Err(self.invalid(format!(
                "option '{name}' only applies to {database} urls; remove it."
            )));
        }
        match value.as_str().map(str::to_ascii_lowercase) {
            Some(v) if allowed.contains(&v.as_str()) => Ok(Some(v)),
            _ => Err(self.invalid(format!(
                "option '{name}' must be one of {}, got {value}.",
                allowed.join(", ")
            ))),
        }
    }

    fn boolean(&self, opts: &Map<String, Value>, name: &str, default: bool) -> Result<bool> {
        match opts.get(name) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.invalid(format!(
                "option '{name}' must be true or false, got {other}."
            ))),
        }
    }
}

/// Whether `name` is safe to use unquoted as a PostgreSQL identifier.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

/// `url` with any password replaced by `***`, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(options: Value) -> Result<Options> {
        let params = BackendParams {
            alias: "default".into(),
            backend: "taskhost.backends.database.DatabaseBackend".into(),
            options: options.as_object().unwrap().clone(),
            config_dir: Some("/etc/app".into()),
            ..BackendParams::default()
        };
        Options::parse(&params)
    }

    fn message(options: Value) -> String {
        match parse(options).unwrap_err() {
            Error::InvalidOptions(m) => m,
            other => panic!("not InvalidOptions: {other:?}"),
        }
    }

    #[test]
    fn defaults_follow_django_with_one_attempt() {
        let o = parse(json!({"url": "sqlite://tasks.db"})).unwrap();
        assert_eq!(o.location, Location::Sqlite("/etc/app/tasks.db".into()));
        assert_eq!(
            (
                o.max_attempts,
                o.max_rescues,
                o.lease_secs,
                o.migrate,
                o.pool_size
            ),
            (1, 3, 60.0, true, 4)
        );
        assert_eq!(o.schema, "public");
        assert_eq!(
            (o.synchronous.as_str(), o.synchronous_commit),
            ("normal", None)
        );
    }

    #[test]
    fn durability_options_are_checked_per_database() {
        let o = parse(json!({"url": "sqlite://t.db", "synchronous": "FULL"})).unwrap();
        assert_eq!(o.synchronous, "full");
        let o = parse(json!({"url": "postgres://h/db", "synchronous_commit": "off"})).unwrap();
        assert_eq!(o.synchronous_commit.as_deref(), Some("off"));
        let cases = [
            (
                json!({"url": "sqlite://t.db", "synchronous": "off"}),
                "option 'synchronous' must be one of normal, full, got \"off\".",
            ),
            (
                json!({"url": "postgres://h/db", "synchronous": "full"}),
                "option 'synchronous' only applies to SQLite urls; remove it.",
            ),
            (
                json!({"url": "sqlite://t.db", "synchronous_commit": "off"}),
                "option 'synchronous_commit' only applies to PostgreSQL urls; remove it.",
            ),
            (
                json!({"url": "postgres://h/db", "synchronous_commit": 0}),
                "option 'synchronous_commit' must be one of on, off, local, remote_write, \
                 remote_apply, got 0.",
            ),
        ];
        for (options, expected) in cases {
            let m = message(options);
            assert!(m.ends_with(expected), "{m}");
        }
    }

    #[test]
    fn absolute_sqlite_paths_stay_absolute() {
        let o = parse(json!({"url": "sqlite:///var/tasks.db"})).unwrap();
        assert_eq!(o.location, Location::Sqlite("/var/tasks.db".into()));
    }

    #[test]
    fn both_postgres_schemes_are_accepted() {
        for url in ["postgres://u@h/db", "postgresql://u@h/db"] {
            let o = parse(json!({"url": url, "schema": "jobs", "pool_size": 8})).unwrap();
            assert_eq!(o.location, Location::Postgres(url.into()));
            assert_eq!((o.schema.as_str(), o.pool_size), ("jobs", 8));
        }
    }

    #[test]
    fn unknown_options_are_named() {
        assert_eq!(
            message(json!({"url": "sqlite://t.db", "urll": 1})),
            "DatabaseBackend 'default': unknown option 'urll'. Known options: url, \
             max_attempts, max_rescues, lease_secs, migrate, pool_size, schema, synchronous, synchronous_commit, queues."
        );
    }

    #[test]
    fn a_missing_url_says_how_to_write_one() {
        let m = message(json!({}));
        assert!(
            m.starts_with("DatabaseBackend 'default': the option 'url' is required."),
            "{m}"
        );
        assert!(m.contains("sqlite://tasks.db"), "{m}");
    }

    #[test]
    fn bad_schemes_are_refused_without_leaking_the_password() {
        let m = message(json!({"url": "mysql://root:secret@db/app"}));
        assert!(
            m.contains("url 'mysql://root:***@db/app' has an unsupported scheme"),
            "{m}"
        );
        assert!(!m.contains("secret"));
    }

    #[test]
    fn in_memory_sqlite_is_refused() {
        for url in ["sqlite::memory:", "sqlite://:memory:"] {
            let m = message(json!({ "url": url }));
            assert!(m.contains("in-memory SQLite database"), "{m}");
        }
    }

    #[test]
    fn bad_values_are_named() {
        let cases = [
            (
                json!({"url": "sqlite://t.db", "max_attempts": 0}),
                "'max_attempts' must be an integer ≥ 1, got 0",
            ),
            (
                json!({"url": "sqlite://t.db", "lease_secs": -1}),
                "'lease_secs' must be a number of seconds greater than zero, got -1",
            ),
            (
                json!({"url": "sqlite://t.db", "migrate": "yes"}),
                "'migrate' must be true or false, got \"yes\"",
            ),
            (
                json!({"url": "postgres://h/db", "schema": "a;drop"}),
                "'schema' must be a plain PostgreSQL identifier",
            ),
            (
                json!({"url": "sqlite://t.db", "schema": "x"}),
                "'schema' only applies to PostgreSQL",
            ),
            (json!({"url": 5}), "'url' must be a non-empty string, got 5"),
        ];
        for (options, expected) in cases {
            let m = message(options);
            assert!(m.contains(expected), "{m}");
        }
    }

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("postgres://u:p@h:5/db?x=1"),
            "postgres://u:***@h:5/db?x=1"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://a@b.db"), "sqlite://a@b.db");
    }
}
