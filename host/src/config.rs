//! Loading `tasks.toml`, the TOML form of Django's `TASKS` setting (SPEC §2).
//!
//! ```toml
//! plugin_dirs = ["plugins"]            # searched in order; relative to the config file
//!
//! [tasks.default]
//! backend = "taskhost.backends.database.DatabaseBackend"
//! queues = ["default", "emails"]      # omitted: ["default"]; []: any queue name
//! enqueue_on_commit = true            # default true
//! [tasks.default.options]             # handed to the plugin as JSON
//! url = "sqlite://tasks.db"
//! ```
//!
//! An optional `[plugin_pins]` table (`PLUGIN_PINS`) maps plugin library file names to the
//! SHA-256 digest each must have (`"libacme_redis.so" = "sha256:<64 hex digits>"`); when it is
//! present, a file that is not listed or does not match is refused before it is opened (see
//! [`crate::plugin::pins`]).
//!
//! Lowercase keys are canonical; Django's uppercase spellings (`TASKS`, `BACKEND`, `QUEUES`,
//! `OPTIONS`, `ENQUEUE_ON_COMMIT`) are accepted as aliases. Every mistake is an
//! [`Error::ImproperlyConfigured`] naming the file and the dotted key at fault; nothing here
//! panics, whatever the input.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::periodic::{MissedTicks, PeriodicSchedule, MAX_BACKFILL};
use crate::plugin::name::library_stem_of;
use crate::plugin::pins::{PinDigest, PluginPins};

/// The environment variable naming the config file when no explicit path is given.
pub const CONFIG_ENV: &str = "TASKHOST_CONFIG";

/// The environment variable holding a path list of plugin dirs searched before the configured ones.
pub const PLUGIN_DIRS_ENV: &str = "TASKHOST_PLUGIN_DIRS";

/// The file looked for in the current directory when neither a path nor `TASKHOST_CONFIG` is given.
pub const DEFAULT_CONFIG_FILE: &str = "tasks.toml";

/// The backend of the default alias when there is no configuration at all (Django's default).
pub const IMMEDIATE_BACKEND: &str = "taskhost.backends.immediate.ImmediateBackend";

/// The alias used when there is no configuration at all.
const DEFAULT_ALIAS: &str = "default";

/// The queue list used when an alias does not give `queues`.
const DEFAULT_QUEUE: &str = "default";

/// The top-level keys, for messages and suggestions (`TASKS` is accepted too).
const TOP_KEYS: [&str; 4] = [
    "plugin_dirs",
    "allow_writable_plugin_dirs",
    "tasks",
    "plugin_pins",
];

/// The top-level keys as listed in messages.
const TOP_KEYS_TEXT: &str =
    "plugin_dirs, allow_writable_plugin_dirs, tasks (or TASKS), plugin_pins (or PLUGIN_PINS)";

/// The keys of one alias table: canonical lowercase spelling and Django's uppercase alias.
const ALIAS_KEYS: [(&str, &str); 6] = [
    ("backend", "BACKEND"),
    ("queues", "QUEUES"),
    ("options", "OPTIONS"),
    ("enqueue_on_commit", "ENQUEUE_ON_COMMIT"),
    ("max_payload_bytes", "MAX_PAYLOAD_BYTES"),
    ("periodic", "PERIODIC"),
];

/// The keys of one alias table as listed in messages.
const ALIAS_KEYS_TEXT: &str = "backend, queues, options, enqueue_on_commit, max_payload_bytes, \
    periodic (or Django's uppercase BACKEND, QUEUES, OPTIONS, ENQUEUE_ON_COMMIT, \
    MAX_PAYLOAD_BYTES, PERIODIC)";

/// The default of `max_payload_bytes`: the largest encoded arguments (args + kwargs JSON) an
/// enqueue may carry, 1 MiB.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1_048_576;

/// How deep `options` may nest before it is refused (keeps the conversion's recursion bounded).
const MAX_OPTIONS_DEPTH: usize = 64;

/// Where a [`Config`] came from, so that messages can say which configuration was in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// A file named explicitly: `--config`, the path given to [`Config::load`] or
    /// [`Config::from_file`], or the `file` given to [`Config::from_toml_str`].
    Explicit,
    /// The file named by `$TASKHOST_CONFIG`.
    Env,
    /// `./tasks.toml`, found in the current directory.
    CurrentDir,
    /// No config file was found (no path given, `$TASKHOST_CONFIG` unset or empty, no
    /// `./tasks.toml`): the built-in default, one alias `default` on the Immediate backend.
    BuiltInDefault,
    /// Built in code without a file ([`Config::from_toml_str`] with no `file`).
    InCode,
}

impl ConfigSource {
    /// Which configuration was in force, for a message: the file (and how it was found), or
    /// why there is none. `file` is the [`Config::file`] that goes with this source.
    pub fn describe(self, file: Option<&Path>) -> String {
        let named = |how: &str| match file {
            Some(file) => format!("config file: '{}'{how}", file.display()),
            None => "no config file: the config was built in code".to_string(),
        };
        match self {
            Self::Explicit => named(""),
            Self::Env => named(&format!(" (named by ${CONFIG_ENV})")),
            Self::CurrentDir => named(&format!(
                " (./{DEFAULT_CONFIG_FILE} in the current directory)"
            )),
            Self::BuiltInDefault => format!(
                "no config file was found (no --config, ${CONFIG_ENV} unset, no \
                 ./{DEFAULT_CONFIG_FILE} in the current directory), so the built-in default \
                 applies: one alias '{DEFAULT_ALIAS}' on the Immediate backend"
            ),
            Self::InCode => named(""),
        }
    }

    /// Where a plugin dir can be added, for a message: `plugin_dirs` in the file in force (or
    /// in a new `tasks.toml`) and `$TASKHOST_PLUGIN_DIRS`.
    pub fn where_to_add_plugin_dirs(self, file: Option<&Path>) -> String {
        match (self, file) {
            (Self::BuiltInDefault, _) => format!(
                "${PLUGIN_DIRS_ENV} (or create a {DEFAULT_CONFIG_FILE} that sets plugin_dirs)"
            ),
            (Self::InCode, _) | (_, None) => {
                format!("the config's plugin_dirs or to ${PLUGIN_DIRS_ENV}")
            }
            (_, Some(file)) => format!(
                "plugin_dirs in '{}' or to ${PLUGIN_DIRS_ENV}",
                file.display()
            ),
        }
    }
}

/// The whole configuration: where plugins are searched and the backends by alias.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file the configuration was read from, or `None` for the built-in default.
    pub file: Option<PathBuf>,
    /// Where the configuration came from (how [`Config::file`] was found, or why there is none).
    pub source: ConfigSource,
    /// Absolute plugin dirs in search order: `$TASKHOST_PLUGIN_DIRS` first, then the configured
    /// `plugin_dirs` (or [`Config::default_plugin_dirs`] when none are configured).
    pub plugin_dirs: Vec<PathBuf>,
    /// Opt-out of the refusal to load plugins from dirs or files writable by other users.
    pub allow_writable_plugin_dirs: bool,
    /// The backends, by alias.
    pub backends: BTreeMap<String, BackendConfig>,
    /// The `[plugin_pins]` table: when `Some`, every plugin file the host opens must be listed
    /// there under its file name with its SHA-256 digest, or it is refused unopened.
    pub plugin_pins: Option<PluginPins>,
}

/// One alias of `[tasks]`: which backend, which queues, and the options handed to the plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendConfig {
    /// The backend's import-path-style name, e.g. `taskhost.backends.database.DatabaseBackend`
    /// (its form is checked by the plugin loader, not here).
    pub backend: String,
    /// The queue names tasks may use; `["default"]` when omitted, `[]` means any queue name.
    pub queues: Vec<String>,
    /// Whether an enqueue inside a transaction waits for the commit (default `true`).
    pub enqueue_on_commit: bool,
    /// The `options` table converted to JSON (datetimes become RFC 3339 strings); `{}` when omitted.
    pub options: serde_json::Map<String, serde_json::Value>,
    /// The largest encoded arguments (args + kwargs JSON, in bytes) an enqueue may carry; larger
    /// ones are refused before the plugin is called. 1 MiB (`1048576`) when omitted.
    pub max_payload_bytes: usize,
    /// The `[tasks.<alias>.periodic]` schedules, sorted by name (see [`crate::periodic`]);
    /// workers of the alias enqueue their ticks.
    pub periodic: Vec<PeriodicSchedule>,
}

impl BackendConfig {
    /// An entry for `backend` with every other setting at its default.
    pub fn new(backend: impl Into<String>) -> Self {
        Self {
            backend: backend.into(),
            queues: vec![DEFAULT_QUEUE.to_string()],
            enqueue_on_commit: true,
            options: serde_json::Map::new(),
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            periodic: Vec::new(),
        }
    }
}

/// What the loader reads from the process, gathered in one place so tests can pass their own
/// values instead of mutating the process environment (tests run in parallel threads).
#[derive(Debug, Clone)]
struct Env {
    /// `$TASKHOST_CONFIG`.
    config: Option<OsString>,
    /// `$TASKHOST_PLUGIN_DIRS`.
    plugin_dirs: Option<OsString>,
    /// The current directory, if it can be read.
    cwd: Option<PathBuf>,
    /// The dirs searched when none are configured.
    default_dirs: Vec<PathBuf>,
}

impl Env {
    /// Reads the real process environment.
    fn from_process() -> Self {
        Self {
            config: std::env::var_os(CONFIG_ENV),
            plugin_dirs: std::env::var_os(PLUGIN_DIRS_ENV),
            cwd: std::env::current_dir().ok(),
            default_dirs: Config::default_plugin_dirs(),
        }
    }
}

impl Config {
    /// Finds and loads the configuration: `explicit` if given, else the file named by
    /// `$TASKHOST_CONFIG` if set and non-empty, else `./tasks.toml` if it exists, else
    /// [`Config::default_config`].
    ///
    /// A file that does not exist where one was named (explicitly or by the variable) is an
    /// error, never a silent fallback to the default.
    pub fn load(explicit: Option<&Path>) -> Result<Config> {
        load_with(explicit, &Env::from_process())
    }

    /// Reads and parses one config file; a missing or unreadable file is an error naming it.
    ///
    /// Relative `plugin_dirs` are resolved against the file's directory.
    pub fn from_file(path: &Path) -> Result<Config> {
        from_file_with(path, ConfigSource::Explicit, &Env::from_process())
    }

    /// Parses TOML text; `file` is named in error messages and `base_dir` resolves relative
    /// `plugin_dirs`.
    ///
    /// A document with no `tasks` (or `TASKS`) key gets Django's global default: one alias
    /// `default` on the Immediate backend. A present but empty `[tasks]` table means there are
    /// no backends at all (every enqueue then fails with `InvalidTaskBackend`).
    /// `plugin_dirs = []` counts as not configured: the default dirs are searched.
    pub fn from_toml_str(text: &str, file: Option<&Path>, base_dir: &Path) -> Result<Config> {
        from_toml_with(text, file, base_dir, &Env::from_process())
    }

    /// The configuration used when there is none at all: one alias `default` on
    /// `taskhost.backends.immediate.ImmediateBackend` with queues `["default"]` and `enqueue_on_commit = true`, plugins
    /// searched in `$TASKHOST_PLUGIN_DIRS` and then the default dirs.
    pub fn default_config() -> Config {
        default_with(&Env::from_process())
    }

    /// The dirs searched when no `plugin_dirs` are configured: the running executable's dir and
    /// its `plugins/` subdir; when that dir is named `deps` or `examples` (cargo's test and
    /// example binaries), also its parent dir and the parent's `plugins/`.
    ///
    /// Empty (with a warning) if the executable's path cannot be found.
    pub fn default_plugin_dirs() -> Vec<PathBuf> {
        match std::env::current_exe() {
            Ok(exe) => match exe.parent() {
                Some(dir) => default_plugin_dirs_for(dir),
                None => Vec::new(),
            },
            Err(e) => {
                tracing::warn!(target: "taskhost", "cannot find the running executable ({e}); \
                    no default plugin dirs; set plugin_dirs or {PLUGIN_DIRS_ENV}");
                Vec::new()
            }
        }
    }
}

// Here rather than in `plugin/pins.rs`, whose checks are crate-internal: the one the
// `taskhost` tool needs to report a pin mismatch before it opens a file.
impl PluginPins {
    /// Check the file at `path`, listed in its plugin dir as `file_name`, against these pins,
    /// as the host does before it opens a plugin file: `Err` when the file has no pin or
    /// another digest, with a reason that names the file, both digests and the config key.
    pub fn verify_file(&self, file_name: &str, path: &Path) -> std::result::Result<(), String> {
        crate::plugin::pins::verify(self, file_name, path).map(|_| ())
    }
}

/// The default plugin dirs for an executable living in `exe_dir`.
fn default_plugin_dirs_for(exe_dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![exe_dir.to_path_buf(), exe_dir.join("plugins")];
    let is_cargo_subdir = exe_dir
        .file_name()
        .is_some_and(|name| name == "deps" || name == "examples");
    if let (true, Some(parent)) = (is_cargo_subdir, exe_dir.parent()) {
        dirs.push(parent.to_path_buf());
        dirs.push(parent.join("plugins"));
    }
    dirs
}

/// [`Config::load`] with the environment passed in.
fn load_with(explicit: Option<&Path>, env: &Env) -> Result<Config> {
    if let Some(path) = explicit {
        return from_file_with(path, ConfigSource::Explicit, env);
    }
    if let Some(path) = env.config.as_deref().filter(|p| !p.is_empty()) {
        return from_file_with(Path::new(path), ConfigSource::Env, env);
    }
    let local = match &env.cwd {
        Some(cwd) => cwd.join(DEFAULT_CONFIG_FILE),
        None => PathBuf::from(DEFAULT_CONFIG_FILE),
    };
    match local.try_exists() {
        Ok(false) => Ok(default_with(env)),
        // Present, or unknown (permissions): read it so any problem is reported, not skipped.
        _ => from_file_with(&local, ConfigSource::CurrentDir, env),
    }
}

/// [`Config::from_file`] with the environment passed in; `source` says how the path was
/// found (the variable is named in the message when it came from `$TASKHOST_CONFIG`).
fn from_file_with(path: &Path, source: ConfigSource, env: &Env) -> Result<Config> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let msg = match source {
            ConfigSource::Env => format!(
                "cannot read the config file named by ${CONFIG_ENV}: {e}; fix or unset \
                 ${CONFIG_ENV}"
            ),
            _ => format!("cannot read the config file: {e}; check the path"),
        };
        Error::config(Some(path), None, msg)
    })?;
    let parent = path.parent().unwrap_or(Path::new(""));
    let base_dir = absolutize(parent, env.cwd.as_deref()).unwrap_or_else(|| parent.to_path_buf());
    let mut config = from_toml_with(&text, Some(path), &base_dir, env)?;
    config.source = source;
    Ok(config)
}

/// [`Config::default_config`] with the environment passed in.
fn default_with(env: &Env) -> Config {
    let mut backends = BTreeMap::new();
    backends.insert(
        DEFAULT_ALIAS.to_string(),
        BackendConfig::new(IMMEDIATE_BACKEND),
    );
    Config {
        file: None,
        source: ConfigSource::BuiltInDefault,
        plugin_dirs: merge_dirs(env_plugin_dirs(env), env.default_dirs.clone()),
        allow_writable_plugin_dirs: false,
        backends,
        plugin_pins: None,
    }
}

/// [`Config::from_toml_str`] with the environment passed in.
fn from_toml_with(text: &str, file: Option<&Path>, base_dir: &Path, env: &Env) -> Result<Config> {
    let p = Parser { file };
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let msg = format!("invalid TOML, fix the syntax: {}", e.to_string().trim_end());
        Error::config(file, None, msg)
    })?;

    let (mut plugin_dirs, mut allow_writable) = (None, None);
    let mut tasks: Option<(&str, &toml::Value)> = None;
    let mut pins: Option<(&str, &toml::Value)> = None;
    for (key, value) in &table {
        match key.as_str() {
            "plugin_pins" | "PLUGIN_PINS" => {
                if let Some((first, _)) = pins {
                    let msg = format!("'plugin_pins' is given twice, as '{first}' and '{key}'; keep one (lowercase 'plugin_pins' is canonical)");
                    return Err(p.err("plugin_pins", msg));
                }
                pins = Some((key, value));
            }
            "plugin_dirs" => plugin_dirs = Some(value),
            "allow_writable_plugin_dirs" => allow_writable = Some(value),
            "tasks" | "TASKS" => {
                if let Some((first, _)) = tasks {
                    let msg = format!("'tasks' is given twice, as '{first}' and '{key}'; keep one (lowercase 'tasks' is canonical)");
                    return Err(p.err("tasks", msg));
                }
                tasks = Some((key, value));
            }
            other => {
                return Err(p.unknown_key(&dotted(None, other), other, &TOP_KEYS, TOP_KEYS_TEXT))
            }
        }
    }

    let allow_writable_plugin_dirs = match allow_writable {
        None => false,
        Some(toml::Value::Boolean(b)) => *b,
        Some(v) => return Err(p.wrong_type("allow_writable_plugin_dirs", BOOLEAN, v)),
    };

    let mut configured = Vec::new();
    if let Some(value) = plugin_dirs {
        let expected = "an array of directory paths (strings), e.g. plugin_dirs = [\"plugins\"]";
        for (i, s) in p
            .strings("plugin_dirs", expected, value)?
            .into_iter()
            .enumerate()
        {
            if s.is_empty() || s.contains('\0') {
                let msg = format!("'plugin_dirs' item {i} is not a usable path (empty or containing NUL); give a directory path");
                return Err(p.err("plugin_dirs", msg));
            }
            let Some(abs) = absolutize(&base_dir.join(s), env.cwd.as_deref()) else {
                let msg = format!("'plugin_dirs' item {i} ({s:?}) is relative and the current directory is unavailable; use an absolute path");
                return Err(p.err("plugin_dirs", msg));
            };
            configured.push(abs);
        }
    }
    if configured.is_empty() {
        configured = env.default_dirs.clone();
    }

    let backends = match tasks {
        None => default_with(env).backends,
        Some((spelling, toml::Value::Table(aliases))) => {
            let mut backends = BTreeMap::new();
            for (alias, entry) in aliases {
                backends.insert(alias.clone(), p.alias(spelling, alias, entry)?);
            }
            backends
        }
        Some((spelling, v)) => {
            return Err(p.wrong_type(spelling, "a table of aliases, e.g. [tasks.default]", v))
        }
    };

    let plugin_pins = match pins {
        None => None,
        Some((spelling, value)) => Some(p.pins(spelling, value)?),
    };

    Ok(Config {
        file: file.map(Path::to_path_buf),
        source: if file.is_some() {
            ConfigSource::Explicit
        } else {
            ConfigSource::InCode
        },
        plugin_dirs: merge_dirs(env_plugin_dirs(env), configured),
        allow_writable_plugin_dirs,
        backends,
        plugin_pins,
    })
}

/// The expected-type text for boolean keys.
const BOOLEAN: &str = "a boolean (true or false)";

/// The parsing steps below the top level, which all name the same file in their errors.
struct Parser<'a> {
    /// The file named in messages.
    file: Option<&'a Path>,
}

impl Parser<'_> {
    /// A config error about the dotted `key`.
    fn err(&self, key: &str, message: impl std::fmt::Display) -> Error {
        Error::config(self.file, Some(key), message)
    }

    /// The error for a value of the wrong type.
    fn wrong_type(&self, key: &str, expected: &str, found: &toml::Value) -> Error {
        let msg = format!("'{key}' must be {expected}, found {}", describe(found));
        self.err(key, msg)
    }

    /// The error for an unknown key, with the allowed keys and a suggestion when one is close.
    fn unknown_key(&self, path: &str, key: &str, candidates: &[&str], allowed: &str) -> Error {
        let suggestion = closest(key, candidates)
            .map(|s| format!(" (did you mean '{s}'?)"))
            .unwrap_or_default();
        let msg = format!("unknown key '{path}'{suggestion}; the keys allowed here are {allowed}; remove or rename it");
        self.err(path, msg)
    }

    /// The items of an array of strings at `key`.
    fn strings<'v>(
        &self,
        key: &str,
        expected: &str,
        value: &'v toml::Value,
    ) -> Result<Vec<&'v str>> {
        let toml::Value::Array(items) = value else {
            return Err(self.wrong_type(key, expected, value));
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let Some(s) = item.as_str() else {
                let msg = format!(
                    "'{key}' must be {expected}, but item {i} is {}",
                    describe(item)
                );
                return Err(self.err(key, msg));
            };
            out.push(s);
        }
        Ok(out)
    }

    /// Parses the `[plugin_pins]` table (spelled `spelling`): library file name → pin.
    fn pins(&self, spelling: &str, value: &toml::Value) -> Result<PluginPins> {
        let toml::Value::Table(table) = value else {
            let expected = "a table of plugin library file names to pins, e.g. [plugin_pins] \
                \"libacme_redis.so\" = \"sha256:<64 hex digits>\"";
            return Err(self.wrong_type(spelling, expected, value));
        };
        let mut pins = PluginPins::new();
        for (file_name, v) in table {
            let key = dotted(Some(spelling), file_name);
            if library_stem_of(file_name).is_none() {
                let example = crate::plugin::name::library_file_name("acme_redis");
                let msg = format!("unknown key '{key}': the keys of [plugin_pins] are plugin library file names as they appear in a plugin dir, e.g. \"{example}\"; remove or rename it");
                return Err(self.err(&key, msg));
            }
            let toml::Value::String(text) = v else {
                let expected =
                    "a pin string, \"sha256:<64 hex digits>\" (taskhost plugin pin prints them)";
                return Err(self.wrong_type(&key, expected, v));
            };
            let digest = PinDigest::parse(text).map_err(|reason| {
                self.err(
                    &key,
                    format!(
                        "'{key}' is not a valid pin: {reason} (taskhost plugin pin prints them)"
                    ),
                )
            })?;
            pins.insert(file_name.clone(), digest);
        }
        Ok(pins)
    }

    /// Parses the alias table `prefix.alias`.
    fn alias(&self, prefix: &str, alias: &str, value: &toml::Value) -> Result<BackendConfig> {
        let path = dotted(Some(prefix), alias);
        if alias.trim().is_empty() {
            let msg = format!("'{path}': a backend alias must not be empty or blank; name it, e.g. [{prefix}.default]");
            return Err(self.err(&path, msg));
        }
        let toml::Value::Table(table) = value else {
            let mut expected = "a table with at least 'backend'".to_string();
            if ALIAS_KEYS.iter().any(|(l, u)| alias == *l || alias == *u) {
                expected +=
                    &format!("; '{alias}' belongs inside an alias table, e.g. [{prefix}.default]");
            }
            return Err(self.wrong_type(&path, &expected, value));
        };

        let mut found: [Option<(&str, &toml::Value)>; 6] = [None; 6];
        for (key, v) in table {
            let Some(i) = ALIAS_KEYS.iter().position(|(l, u)| key == l || key == u) else {
                let candidates = ALIAS_KEYS.map(|(l, _)| l);
                let dotted_key = dotted(Some(&path), key);
                return Err(self.unknown_key(&dotted_key, key, &candidates, ALIAS_KEYS_TEXT));
            };
            if let Some((first, _)) = found[i] {
                let canonical = dotted(Some(&path), ALIAS_KEYS[i].0);
                let msg = format!("'{canonical}' is given twice, as '{first}' and '{key}'; keep one (lowercase is canonical)");
                return Err(self.err(&canonical, msg));
            }
            found[i] = Some((key, v));
        }
        // The dotted key of found[i], as the user spelled it.
        let key = |i: usize| dotted(Some(&path), found[i].map_or(ALIAS_KEYS[i].0, |(k, _)| k));

        let backend = match found[0] {
            None => {
                let msg = format!("'{}' is missing; every alias needs a backend, e.g. backend = \"{IMMEDIATE_BACKEND}\"", key(0));
                return Err(self.err(&key(0), msg));
            }
            Some((_, toml::Value::String(s))) if !s.trim().is_empty() => s.clone(),
            Some((_, v)) => {
                let expected = "a non-empty backend name (string), e.g. \"taskhost.backends.database.DatabaseBackend\"";
                return Err(self.wrong_type(&key(0), expected, v));
            }
        };
        let queues = match found[1] {
            None => vec![DEFAULT_QUEUE.to_string()],
            Some((_, v)) => {
                let expected =
                    "an array of queue names (strings), e.g. [\"default\"]; [] allows any queue";
                let queues = self.strings(&key(1), expected, v)?;
                crate::validation::check_configured_queues(&key(1), &queues)
                    .map_err(|message| self.err(&key(1), message))?;
                queues.into_iter().map(str::to_string).collect()
            }
        };
        let options = match found[2] {
            None => serde_json::Map::new(),
            Some((_, toml::Value::Table(t))) => self.table_to_json(t, &key(2), 0)?,
            Some((_, v)) => {
                return Err(self.wrong_type(&key(2), "a table, e.g. [tasks.<alias>.options]", v))
            }
        };
        let enqueue_on_commit = match found[3] {
            None => true,
            Some((_, toml::Value::Boolean(b))) => *b,
            Some((_, v)) => return Err(self.wrong_type(&key(3), BOOLEAN, v)),
        };
        let max_payload_bytes = match found[4] {
            None => DEFAULT_MAX_PAYLOAD_BYTES,
            Some((_, toml::Value::Integer(n))) => match usize::try_from(*n) {
                Ok(n) if n > 0 => n,
                _ => {
                    let msg = format!("'{}' must be a positive integer number of bytes, found {n}; e.g. {DEFAULT_MAX_PAYLOAD_BYTES} (1 MiB, the default)", key(4));
                    return Err(self.err(&key(4), msg));
                }
            },
            Some((_, v)) => {
                let expected = "a positive integer number of bytes, e.g. 1048576";
                return Err(self.wrong_type(&key(4), expected, v));
            }
        };
        let periodic = match found[5] {
            None => Vec::new(),
            Some((_, v)) => self.periodic(&key(5), v)?,
        };
        Ok(BackendConfig {
            backend,
            queues,
            enqueue_on_commit,
            options,
            max_payload_bytes,
            periodic,
        })
    }

    /// Parses the `[tasks.<alias>.periodic]` table at `path`: schedule name → a cron
    /// expression (the name is the task's path) or a table.
    fn periodic(&self, path: &str, value: &toml::Value) -> Result<Vec<PeriodicSchedule>> {
        let toml::Value::Table(table) = value else {
            let expected = "a table of schedules, e.g. [tasks.default.periodic] \
                \"my_app::reports::daily\" = \"0 7 * * *\"";
            return Err(self.wrong_type(path, expected, value));
        };
        let mut schedules = Vec::with_capacity(table.len());
        for (name, v) in table {
            let key = dotted(Some(path), name);
            if name.trim().is_empty() {
                let msg = format!("'{key}': a schedule name must not be empty or blank");
                return Err(self.err(&key, msg));
            }
            let schedule = match v {
                toml::Value::String(cron) => PeriodicSchedule::new(name, name, cron, "UTC")
                    .map_err(|m| self.err(&key, format!("'{key}': {m}")))?,
                toml::Value::Table(t) => self.schedule(&key, name, t)?,
                v => {
                    let expected = "a cron expression (string), e.g. \"0 7 * * *\", or a table \
                        with at least `cron`";
                    return Err(self.wrong_type(&key, expected, v));
                }
            };
            schedules.push(schedule);
        }
        Ok(schedules)
    }

    /// Parses one schedule table (`key`, named `name`).
    fn schedule(&self, key: &str, name: &str, table: &toml::Table) -> Result<PeriodicSchedule> {
        /// The keys of a schedule table.
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Entry {
            cron: String,
            task: Option<String>,
            args: Option<Vec<toml::Value>>,
            kwargs: Option<toml::Table>,
            queue_name: Option<String>,
            priority: Option<i32>,
            timezone: Option<String>,
            missed: Option<MissedTicks>,
        }
        let entry: Entry = toml::Value::Table(table.clone()).try_into().map_err(|e| {
            let e = e.to_string();
            let msg = format!(
                "'{key}': {}; a schedule table takes cron (required), task, args, kwargs, \
                 queue_name, priority, timezone and missed (\"skip\", \"once\" or \
                 {{ backfill = N }})",
                e.trim()
            );
            self.err(key, msg)
        })?;
        let task = entry.task.unwrap_or_else(|| name.to_string());
        if task.trim().is_empty() {
            let msg = format!("'{key}.task' must be a task path, e.g. \"my_app::reports::daily\"");
            return Err(self.err(&format!("{key}.task"), msg));
        }
        let timezone = entry.timezone.as_deref().unwrap_or("UTC");
        let mut schedule = PeriodicSchedule::new(name, &task, &entry.cron, timezone)
            .map_err(|m| self.err(key, format!("'{key}': {m}")))?;
        if let Some(args) = entry.args {
            for (i, arg) in args.iter().enumerate() {
                let arg = self.to_json(arg, &format!("{key}.args[{i}]"), 1)?;
                schedule.args.push(arg);
            }
        }
        if let Some(kwargs) = entry.kwargs {
            schedule.kwargs = self.table_to_json(&kwargs, &format!("{key}.kwargs"), 0)?;
        }
        if let Some(priority) = entry.priority {
            if !(-100..=100).contains(&priority) {
                let msg = format!("'{key}.priority' must be -100 to 100, found {priority}");
                return Err(self.err(&format!("{key}.priority"), msg));
            }
        }
        schedule.queue_name = entry.queue_name;
        schedule.priority = entry.priority;
        if let Some(missed) = entry.missed {
            if let MissedTicks::Backfill(n) = missed {
                if !(1..=MAX_BACKFILL).contains(&n) {
                    let msg =
                        format!("'{key}.missed': backfill must be 1 to {MAX_BACKFILL}, found {n}");
                    return Err(self.err(&format!("{key}.missed"), msg));
                }
            }
            schedule.missed = missed;
        }
        Ok(schedule)
    }

    /// Converts a TOML table to a JSON object; `path` is its dotted key, for messages.
    fn table_to_json(&self, table: &toml::Table, path: &str, depth: usize) -> Result<JsonMap> {
        let mut map = JsonMap::new();
        for (k, v) in table {
            map.insert(
                k.clone(),
                self.to_json(v, &dotted(Some(path), k), depth + 1)?,
            );
        }
        Ok(map)
    }

    /// Converts one TOML value to JSON; datetimes become their RFC 3339 text.
    fn to_json(&self, value: &toml::Value, path: &str, depth: usize) -> Result<serde_json::Value> {
        use serde_json::Value as J;
        if depth > MAX_OPTIONS_DEPTH {
            let msg = format!(
                "'{path}' nests deeper than {MAX_OPTIONS_DEPTH} levels; flatten the options"
            );
            return Err(self.err(path, msg));
        }
        Ok(match value {
            toml::Value::String(s) => J::String(s.clone()),
            toml::Value::Integer(i) => J::from(*i),
            toml::Value::Boolean(b) => J::Bool(*b),
            toml::Value::Datetime(d) => J::String(d.to_string()),
            toml::Value::Float(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => J::Number(n),
                None => {
                    let msg = format!("'{path}' is {f}, which JSON cannot carry to the plugin; use a finite number or a string");
                    return Err(self.err(path, msg));
                }
            },
            toml::Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(self.to_json(item, &format!("{path}[{i}]"), depth + 1)?);
                }
                J::Array(out)
            }
            toml::Value::Table(t) => J::Object(self.table_to_json(t, path, depth)?),
        })
    }
}

/// A JSON object, as handed to plugins.
type JsonMap = serde_json::Map<String, serde_json::Value>;

/// The dirs of `$TASKHOST_PLUGIN_DIRS`, absolute, empty entries ignored.
fn env_plugin_dirs(env: &Env) -> Vec<PathBuf> {
    parse_env_plugin_dirs(env.plugin_dirs.as_deref(), env.cwd.as_deref())
}

/// Splits a path list (as in `$TASKHOST_PLUGIN_DIRS`) into absolute dirs, relative entries
/// resolved against `cwd`; relative entries are dropped with a warning when `cwd` is unknown.
fn parse_env_plugin_dirs(raw: Option<&OsStr>, cwd: Option<&Path>) -> Vec<PathBuf> {
    let Some(raw) = raw else { return Vec::new() };
    let mut dirs = Vec::new();
    for entry in std::env::split_paths(raw) {
        if entry.as_os_str().is_empty() {
            continue;
        }
        match absolutize(&entry, cwd) {
            Some(abs) => dirs.push(abs),
            None => tracing::warn!(target: "taskhost",
                "ignoring relative {PLUGIN_DIRS_ENV} entry {}: the current directory is unavailable",
                entry.display()),
        }
    }
    dirs
}

/// `first` then `second`, each dir kept only at its first position.
fn merge_dirs(first: Vec<PathBuf>, second: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::with_capacity(first.len() + second.len());
    for dir in first.into_iter().chain(second) {
        if !out.contains(&dir) {
            out.push(dir);
        }
    }
    out
}

/// Makes `path` absolute against `cwd` without touching the filesystem; `.` components are
/// dropped, `..` kept (the plugin loader canonicalizes). `None` if relative and `cwd` is unknown.
fn absolutize(path: &Path, cwd: Option<&Path>) -> Option<PathBuf> {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.filter(|c| c.is_absolute())?.join(path)
    };
    Some(joined.components().collect())
}

/// `parent.key` with `key` quoted (TOML-style) when it is not a bare key.
fn dotted(parent: Option<&str>, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    };
    match parent {
        Some(p) => format!("{p}.{key}"),
        None => key,
    }
}

/// A short description of a TOML value's type, with an article.
fn describe(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a datetime",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}

/// The candidate closest to `key` (case-insensitively) if it is within a small edit distance.
fn closest<'a>(key: &str, candidates: &[&'a str]) -> Option<&'a str> {
    if key.chars().count() > 64 {
        return None;
    }
    let key = key.to_lowercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&key, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance between two strings, by chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitution.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
