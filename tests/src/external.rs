//! Building plugin crates that live outside the workspace — the custom-backend example, and
//! generated fixture plugins: built against a copy of the current plugin-api with another
//! version (and optionally a newer required host minor), against the frozen plugin-api 2.0.0 in
//! `tests/fixtures/plugin-api-2.0/` or the frozen 1.0.0 in `tests/fixtures/plugin-api-1.0/`, or
//! exporting a class twice — at most once per test process.
//!
//! They share one target dir, `target/external/shared`, so abi_stable and friends compile once
//! (tens of seconds) rather than once per crate; each built library is copied to
//! `target/external/out/<name>/` right after its build. Every generated fixture has a library
//! name of its own (see [`build_external_in`] for why); the tests copy it into a plugins dir
//! under the name its module path asks for. Later processes find everything up to date.

pub use crate::build::library_file_name;
use crate::build::{target_dir, workspace_root};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

/// Where external builds and generated crates live: `target/external`.
pub fn external_dir() -> PathBuf {
    target_dir().join("external")
}

/// Build the crate at `manifest_dir` (outside the workspace) in the shared external target dir,
/// once per process (per name), and return a copy of the built cdylib `lib_name` under
/// `target/external/out/<name>/`.
///
/// Panics with cargo's stderr if the build fails.
pub fn build_external(name: &str, manifest_dir: &Path, lib_name: &str) -> PathBuf {
    build_external_in(name, manifest_dir, lib_name, external_dir().join("shared"))
}

/// [`build_external`] with its own target dir, for a crate whose library name another external
/// crate also uses: in a shared target dir, cargo may find one of them fresh and skip the link,
/// leaving the other's library under the common file name.
pub fn build_external_in(
    name: &str,
    manifest_dir: &Path,
    lib_name: &str,
    target: PathBuf,
) -> PathBuf {
    once(&format!("build {name}"), || {
        // One build at a time in this process: the copy below must happen before another
        // build in the shared target dir can relink a library of the same name.
        static SHARED: Mutex<()> = Mutex::new(());
        let _one_at_a_time = SHARED.lock();
        let manifest = manifest_dir.join("Cargo.toml");
        let output = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--manifest-path"])
            .arg(&manifest)
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(manifest_dir)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run cargo ({}) to build '{name}': {e}",
                    env!("CARGO")
                )
            });
        assert!(
            output.status.success(),
            "building the external crate '{name}' ({}) failed ({}):\n{}",
            manifest.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let file = target.join("debug").join(library_file_name(lib_name));
        assert!(
            file.is_file(),
            "building '{name}' succeeded but '{}' is missing: does {} set [lib] name = \
             \"{lib_name}\" and crate-type \"cdylib\"?",
            file.display(),
            manifest.display()
        );
        let out = external_dir().join("out").join(name);
        fs::create_dir_all(&out).unwrap();
        let copy = out.join(library_file_name(lib_name));
        fs::copy(&file, &copy).unwrap_or_else(|e| panic!("cannot copy '{}': {e}", file.display()));
        copy
    })
}

/// The module path of the fixtures built against another plugin-api version
/// ([`plugin_built_against_api`], [`plugin_built_against_api_requiring`]); copy one into a
/// plugins dir as the library `taskhost_fixtures_future` to load it (`FutureBackend`).
const FUTURE_MODULE_PATH: &str = "taskhost.fixtures.future";

/// A copy of the current plugin-api with its package version replaced (e.g. "2.1.0"), written
/// under `target/external/plugin-api-<version>/`, plus a tiny plugin crate at
/// `target/external/plugin-at-<version>/` depending on that copy: it exports
/// `taskhost.fixtures.future.FutureBackend` (package `taskhost-fixtures-future`), whose
/// capabilities are none and whose every operation answers "not supported" (`enqueue` by its own
/// code, the others by the SDK's defaults). Its manifest requires nothing newer than 2.0 (the
/// default). Builds it (once per process per version) and returns the library path.
///
/// The built file is named after the version (`taskhost_fixtures_future_at_2_1_0`), not after
/// the module path: copy it into a plugins dir as `taskhost_fixtures_future`.
pub fn plugin_built_against_api(version: &str) -> PathBuf {
    future_plugin(version, None)
}

/// [`plugin_built_against_api`] whose `export_plugin!` also says `requires: "<requires>"`
/// (e.g. "2.1": it needs a host offering plugin-api 2.1 or newer), in
/// `target/external/plugin-at-<version>-requires-<requires>/`. Same module path and class.
pub fn plugin_built_against_api_requiring(version: &str, requires: &str) -> PathBuf {
    future_plugin(version, Some(requires))
}

fn future_plugin(version: &str, requires: Option<&str>) -> PathBuf {
    let suffix = requires.map_or(String::new(), |r| format!("-requires-{r}"));
    once(&format!("plugin-api {version}{suffix}"), || {
        let api = external_dir().join(format!("plugin-api-{version}"));
        once(&format!("plugin-api copy {version}"), || {
            write_plugin_api_copy(&api, version);
            api.clone()
        });
        let about = match requires {
            None => format!("a plugin built against taskhost-plugin-api {version}"),
            Some(r) => format!(
                "a plugin built against taskhost-plugin-api {version} that requires a {r} host"
            ),
        };
        let lib_name =
            format!("taskhost_fixtures_future_at_{version}{suffix}").replace(['.', '-'], "_");
        build_fixture_plugin(&FixturePlugin {
            name: &format!("future-{version}{suffix}"),
            dir: &format!("plugin-at-{version}{suffix}"),
            about: &about,
            package: "taskhost-fixtures-future",
            lib_name: &lib_name,
            module_path: FUTURE_MODULE_PATH,
            class: "FutureBackend",
            times: 1,
            requires,
            source: FIXTURE_LIB,
            api: &api,
        })
    })
}

/// A plugin crate at `target/external/plugin-exporting-twice/`, built against the workspace's
/// current plugin-api, whose `export_plugin!` lists its one class twice:
/// `taskhost.fixtures.twice.TwiceBackend` (lib name `taskhost_fixtures_twice`), every operation
/// not supported. Builds it (once per process) and returns the library path.
pub fn plugin_exporting_a_class_twice() -> PathBuf {
    once("plugin exporting a class twice", || {
        build_fixture_plugin(&FixturePlugin {
            name: "twice",
            dir: "plugin-exporting-twice",
            about: "a plugin whose export_plugin! lists the same class twice",
            package: "taskhost-fixtures-twice",
            lib_name: "taskhost_fixtures_twice",
            module_path: "taskhost.fixtures.twice",
            class: "TwiceBackend",
            times: 2,
            requires: None,
            source: FIXTURE_LIB,
            api: &workspace_root().join("plugin-api"),
        })
    })
}

/// A small working backend built against the frozen plugin-api 2.0.0 of
/// `tests/fixtures/plugin-api-2.0/` (not a copy of the current one), in
/// `target/external/plugin-at-frozen-2.0/`: `taskhost.fixtures.frozen.FrozenBackend` (package
/// `taskhost-fixtures-frozen`, lib name `taskhost_fixtures_frozen`) keeps every enqueued task in
/// memory: capabilities DEFER, GET_RESULT and PRIORITY; `enqueue` sets `enqueued_at` from the
/// host's clock, stores the result and sends TASK_ENQUEUED; `get_result` reads it back; every
/// other operation is the SDK's default. Builds it (once per process) and returns the library
/// path.
pub fn plugin_built_against_frozen_2_0() -> PathBuf {
    once("plugin against the frozen plugin-api 2.0", || {
        build_fixture_plugin(&FixturePlugin {
            name: "frozen-2.0",
            dir: "plugin-at-frozen-2.0",
            about: "a plugin built against the frozen taskhost-plugin-api 2.0.0",
            package: "taskhost-fixtures-frozen",
            lib_name: "taskhost_fixtures_frozen",
            module_path: "taskhost.fixtures.frozen",
            class: "FrozenBackend",
            times: 1,
            requires: None,
            source: FIXTURE_LIB_FROZEN_2_0,
            api: &frozen_plugin_api_2_0(),
        })
    })
}

/// A 1.x plugin: a tiny crate built against the frozen plugin-api 1.0.0 of
/// `tests/fixtures/plugin-api-1.0/`, in `target/external/plugin-at-frozen-1.0/`, exporting
/// `taskhost.fixtures.legacy.LegacyBackend` (package `taskhost-fixtures-legacy`, lib name
/// `taskhost_fixtures_legacy`), every operation not supported, written on the 1.x `Backend`
/// (JSON strings, a `guard` in every method). Builds it (once per process) and returns the
/// library path. A 2.x host refuses it.
pub fn plugin_built_against_frozen_1_0() -> PathBuf {
    once("plugin against the frozen plugin-api 1.0", || {
        build_fixture_plugin(&FixturePlugin {
            name: "frozen-1.0",
            dir: "plugin-at-frozen-1.0",
            about: "a 1.x plugin built against the frozen taskhost-plugin-api 1.0.0",
            package: "taskhost-fixtures-legacy",
            lib_name: "taskhost_fixtures_legacy",
            module_path: "taskhost.fixtures.legacy",
            class: "LegacyBackend",
            times: 1,
            requires: None,
            source: FIXTURE_LIB_1X,
            api: &frozen_plugin_api_1_0(),
        })
    })
}

/// `tests/fixtures/plugin-api-1.0`: plugin-api exactly as released at 1.0.0. Never edited.
pub fn frozen_plugin_api_1_0() -> PathBuf {
    workspace_root()
        .join("tests")
        .join("fixtures")
        .join("plugin-api-1.0")
}

/// `tests/fixtures/plugin-api-2.0`: plugin-api exactly as released at 2.0.0. Never edited.
pub fn frozen_plugin_api_2_0() -> PathBuf {
    workspace_root()
        .join("tests")
        .join("fixtures")
        .join("plugin-api-2.0")
}

/// A generated plugin crate.
struct FixturePlugin<'a> {
    /// The build's name: its output goes to `target/external/out/<name>/`.
    name: &'a str,
    /// The crate's directory under `target/external/`.
    dir: &'a str,
    /// What the fixture is, for its description and docs.
    about: &'a str,
    package: &'a str,
    /// Unique among the generated fixtures (they share a target dir).
    lib_name: &'a str,
    module_path: &'a str,
    class: &'a str,
    /// How many times `export_plugin!` lists the class (more than once: a broken plugin).
    times: usize,
    /// The `requires: "2.N"` argument of `export_plugin!`, if any (2.x sources only).
    requires: Option<&'a str>,
    /// The template of its `src/lib.rs` ([`FIXTURE_LIB`], …).
    source: &'a str,
    /// The plugin-api crate it depends on.
    api: &'a Path,
}

/// Write the fixture crate (only what changed) and build it.
fn build_fixture_plugin(fixture: &FixturePlugin<'_>) -> PathBuf {
    let plugin = external_dir().join(fixture.dir);
    write_if_changed(
        &plugin.join("Cargo.toml"),
        &FIXTURE_MANIFEST
            .replace("{about}", fixture.about)
            .replace("{package}", fixture.package)
            .replace("{lib_name}", fixture.lib_name)
            .replace("{api_path}", &toml_string(fixture.api)),
    );
    let classes = vec![format!("\"{0}\" => {0}::new", fixture.class); fixture.times].join(", ");
    let requires = fixture.requires.map_or(String::new(), |r| {
        assert!(
            fixture.source.contains("{requires}"),
            "the source of '{}' cannot say `requires`",
            fixture.name
        );
        format!("\n    requires: {},", serde_json::to_string(r).unwrap())
    });
    write_if_changed(
        &plugin.join("src").join("lib.rs"),
        &fixture
            .source
            .replace("{about}", fixture.about)
            .replace("{module_path}", fixture.module_path)
            .replace("{classes}", &classes)
            .replace("{class}", fixture.class)
            .replace("{requires}", &requires),
    );
    seed_lock(&plugin);
    build_external(fixture.name, &plugin, fixture.lib_name)
}

/// An application crate outside the workspace, at `target/external/outside-app/`: package
/// `outside-app`, depending on `taskhost` by path and on nothing else, with one `#[task]`
/// (`add(a, b) -> a + b`) and a `main` that enqueues `add(20, 22)` on the alias `default` and
/// prints one line, `backend=<name> built_in=<bool> status=<STATUS> return=<value>` (the return
/// value in parentheses when there is none yet), or `error: <message>` on stderr with exit
/// status 1 when the enqueue fails. No `tasks.toml`, no plugin file: it has its own target dir
/// (`target/external/outside-app/target`), which holds no plugin libraries.
///
/// Builds it with `cargo build` (once per process) and returns the crate's dir; the binary is
/// [`outside_application_bin`]. Run cargo on it with [`outside_cargo`].
pub fn outside_application() -> PathBuf {
    once("outside application", || {
        let dir = external_dir().join("outside-app");
        let taskhost = workspace_root().join("host");
        write_if_changed(
            &dir.join("Cargo.toml"),
            &OUTSIDE_APP_MANIFEST.replace("{taskhost_path}", &toml_string(&taskhost)),
        );
        write_if_changed(&dir.join("src").join("main.rs"), OUTSIDE_APP_MAIN);
        seed_lock(&dir);
        let output = outside_cargo(&dir)
            .args(["build", "--quiet"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run cargo ({}): {e}", env!("CARGO")));
        assert!(
            output.status.success(),
            "building the outside application ({}) failed ({}):\n{}",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        dir
    })
}

/// The built binary of [`outside_application`].
pub fn outside_application_bin() -> PathBuf {
    outside_application()
        .join("target")
        .join("debug")
        .join(format!("outside-app{}", std::env::consts::EXE_SUFFIX))
}

/// `cargo` run in `dir` as a user would run it there: none of the variables that would point it
/// (or taskhost) elsewhere — `CARGO_TARGET_DIR`, `CARGO_BUILD_TARGET_DIR`, `$TASKHOST_CONFIG`,
/// `$TASKHOST_PLUGIN_DIRS`.
pub fn outside_cargo(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env_remove("TASKHOST_CONFIG")
        .env_remove("TASKHOST_PLUGIN_DIRS");
    cmd
}

const OUTSIDE_APP_MANIFEST: &str = r#"[package]
name = "outside-app"
version = "0.1.0"
description = "Test fixture generated by taskhost-e2e: an application outside the taskhost workspace."
edition = "2021"
publish = false

[dependencies]
taskhost = { path = {taskhost_path} }

[workspace]
"#;

const OUTSIDE_APP_MAIN: &str = r#"//! Test fixture generated by taskhost-e2e: an application that depends on `taskhost` alone.

use std::process::ExitCode;
use taskhost::task;

/// Adds two numbers.
#[task]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn main() -> ExitCode {
    let result = match add.enqueue(20, 22) {
        Ok(result) => result,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let backend = taskhost::task_backends()
        .get("default")
        .expect("the backend that took the task");
    let value = match result.return_value() {
        Ok(value) => value.to_string(),
        Err(e) => format!("({e})"),
    };
    println!(
        "backend={} built_in={} status={} return={value}",
        backend.backend_name(),
        backend.is_built_in(),
        result.status()
    );
    ExitCode::SUCCESS
}
"#;

/// Start a generated crate from the workspace's lock: it uses the dependency versions the host
/// uses, and needs no fresh resolution. Cargo prunes and updates it as it needs.
fn seed_lock(dir: &Path) {
    let lock = dir.join("Cargo.lock");
    if !lock.exists() {
        fs::copy(workspace_root().join("Cargo.lock"), &lock)
            .unwrap_or_else(|e| panic!("cannot seed '{}': {e}", lock.display()));
    }
}

/// `path` as a TOML basic string (JSON's string escapes are valid TOML).
fn toml_string(path: &Path) -> String {
    serde_json::to_string(&path.display().to_string()).unwrap()
}

/// Run `make` once per process per `key` (concurrent callers with the same key wait for the
/// first; different keys run in parallel). A panic leaves the key unset, so the next caller
/// tries again and reports the failure too.
fn once(key: &str, make: impl FnOnce() -> PathBuf) -> PathBuf {
    static CELLS: OnceLock<Mutex<HashMap<String, Arc<OnceLock<PathBuf>>>>> = OnceLock::new();
    let cell = Arc::clone(
        CELLS
            .get_or_init(Default::default)
            .lock()
            .entry(key.to_string())
            .or_default(),
    );
    cell.get_or_init(make).clone()
}

/// Write plugin-api's sources and a manifest with `version` and no workspace inheritance.
fn write_plugin_api_copy(dest: &Path, version: &str) {
    let source = workspace_root().join("plugin-api");
    let read = |path: &Path| {
        fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read '{}': {e}", path.display()))
    };
    let manifest = concrete_manifest(
        &read(&source.join("Cargo.toml")),
        &read(&workspace_root().join("Cargo.toml")),
        version,
    );
    write_if_changed(&dest.join("Cargo.toml"), &manifest);
    sync_dir(&source.join("src"), &dest.join("src"));
}

/// plugin-api's `Cargo.toml` with `version` as its package version and every
/// `key.workspace = true` replaced by the value the workspace root gives `key` (for a dependency
/// `key = { workspace = true, more… }`, that value with `more…` added). The `[lints]` table
/// (inherited) is dropped: lints do not matter for a fixture.
fn concrete_manifest(manifest: &str, root: &str, version: &str) -> String {
    let package = workspace_table(root, "workspace.package");
    let dependencies = workspace_table(root, "workspace.dependencies");
    let mut out = String::new();
    let mut section = String::new();
    for line in manifest.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            section = trimmed.trim_matches(|c| c == '[' || c == ']').to_string();
            if section == "lints" {
                continue;
            }
        } else if section == "lints" {
            continue;
        } else if section == "package" && trimmed.starts_with("version") {
            out.push_str(&format!("version = \"{version}\"\n"));
            continue;
        } else if let Some((key, more)) = inherited_key(trimmed) {
            let table = match section.as_str() {
                "package" => &package,
                "dependencies" | "dev-dependencies" | "build-dependencies" => &dependencies,
                other => panic!("plugin-api's Cargo.toml inherits '{key}' in [{other}]"),
            };
            let value = table.get(key).unwrap_or_else(|| {
                panic!("the workspace's Cargo.toml gives no value for '{key}' ([{section}])")
            });
            assert!(
                !value.contains("path ="),
                "'{key}' is a path dependency in the workspace ({value}): a copy of plugin-api \
                 cannot use it"
            );
            let value = match more {
                None => value.clone(),
                Some(more) => with_more_keys(key, value, more),
            };
            out.push_str(&format!("{key} = {value}\n"));
            continue;
        }
        assert!(
            !(trimmed.contains(".workspace") || trimmed.contains("workspace = true")),
            "unsupported workspace inheritance in plugin-api's Cargo.toml: {line}"
        );
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// `key` for a line `key.workspace = true`; `key` and the other keys, as TOML text, for a line
/// `key = { workspace = true, other keys }`.
fn inherited_key(line: &str) -> Option<(&str, Option<&str>)> {
    let (left, right) = line.split_once('=')?;
    if let Some(key) = left.trim().strip_suffix(".workspace") {
        return (right.trim() == "true").then_some((key, None));
    }
    let inline = right.trim().strip_prefix('{')?.strip_suffix('}')?.trim();
    let more = inline
        .strip_prefix("workspace = true")?
        .trim_start()
        .strip_prefix(',')?
        .trim();
    Some((left.trim(), Some(more)))
}

/// The workspace's dependency `value` (a version string or an inline table) with the inline
/// keys `more` added.
fn with_more_keys(key: &str, value: &str, more: &str) -> String {
    let base = match value.strip_prefix('{').and_then(|v| v.strip_suffix('}')) {
        Some(table) => table.trim().to_string(),
        None => format!("version = {value}"),
    };
    let keys = |text: &str| -> Vec<String> {
        text.split(',')
            .filter_map(|item| item.split_once('='))
            .map(|(k, _)| k.trim().to_string())
            .collect()
    };
    let (ours, theirs) = (keys(&base), keys(more));
    assert!(
        !ours.iter().any(|k| theirs.contains(k)),
        "plugin-api's Cargo.toml sets keys of '{key}' the workspace sets too ({value} and \
         {more}): merging them is not supported"
    );
    format!("{{ {base}, {more} }}")
}

/// The `key = value` lines of one table of the workspace root's `Cargo.toml` (one-line values).
fn workspace_table(root: &str, table: &str) -> HashMap<String, String> {
    let header = format!("[{table}]");
    let mut entries = HashMap::new();
    let mut inside = false;
    for line in root.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == header;
        } else if inside && !line.is_empty() && !line.starts_with('#') {
            if let Some((key, value)) = line.split_once('=') {
                entries.insert(key.trim().to_string(), value.trim().to_string());
            }
        }
    }
    entries
}

/// Make `dest` hold exactly the files of `source` (recursively), writing only what changed so
/// cargo does not rebuild an unchanged copy.
fn sync_dir(source: &Path, dest: &Path) {
    fs::create_dir_all(dest).unwrap_or_else(|e| panic!("cannot create '{}': {e}", dest.display()));
    let mut wanted = std::collections::HashSet::new();
    for entry in fs::read_dir(source).unwrap_or_else(|e| panic!("{}: {e}", source.display())) {
        let entry = entry.unwrap();
        let to = dest.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            sync_dir(&entry.path(), &to);
        } else {
            let bytes = fs::read(entry.path()).unwrap();
            write_if_changed_bytes(&to, &bytes);
        }
        wanted.insert(entry.file_name());
    }
    for entry in fs::read_dir(dest).unwrap() {
        let entry = entry.unwrap();
        if !wanted.contains(&entry.file_name()) {
            let path = entry.path();
            let removed = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            removed.unwrap_or_else(|e| panic!("cannot remove '{}': {e}", path.display()));
        }
    }
}

fn write_if_changed(path: &Path, text: &str) {
    write_if_changed_bytes(path, text.as_bytes());
}

fn write_if_changed_bytes(path: &Path, bytes: &[u8]) {
    if fs::read(path).ok().as_deref() == Some(bytes) {
        return;
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .unwrap_or_else(|e| panic!("cannot create '{}': {e}", parent.display()));
    }
    fs::write(path, bytes).unwrap_or_else(|e| panic!("cannot write '{}': {e}", path.display()));
}

/// A generated fixture plugin's manifest (`{about}`, `{package}`, `{lib_name}`, `{api_path}`
/// filled in).
const FIXTURE_MANIFEST: &str = r#"[package]
name = "{package}"
version = "0.0.0"
description = "Test fixture generated by taskhost-e2e: {about}."
edition = "2021"
publish = false

[lib]
name = "{lib_name}"
crate-type = ["cdylib"]

[dependencies]
taskhost-plugin-api = { path = {api_path} }

[workspace]
"#;

/// A generated 2.x fixture plugin's source (`{about}`, `{class}`, `{module_path}`, `{classes}`,
/// `{requires}` filled in): capabilities none, `enqueue` not supported, every other operation
/// the SDK's default.
const FIXTURE_LIB: &str = r#"//! Test fixture generated by taskhost-e2e: `{class}`, {about}.
//! Supports nothing: `enqueue` answers "not supported", every other operation is the SDK's
//! default.

use taskhost_plugin_api::{
    Backend, BackendParams, Capabilities, EnqueueRequest, Host, PluginError, TaskResultData,
};

/// Builds fine; supports nothing.
pub struct {class};

impl {class} {
    /// Build it; the params and the host are not looked at.
    pub fn new(_params: BackendParams, _host: Host) -> Result<Self, PluginError> {
        Ok(Self)
    }
}

impl Backend for {class} {
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
    }

    fn enqueue(&self, _request: EnqueueRequest) -> Result<TaskResultData, PluginError> {
        Err(PluginError::not_supported("enqueue"))
    }
}

taskhost_plugin_api::export_plugin! {
    module_path: "{module_path}",
    classes: { {classes} },{requires}
}
"#;

/// A generated 2.x fixture plugin's source (`{about}`, `{class}`, `{module_path}`, `{classes}`,
/// `{requires}` filled in): a backend keeping its results in memory, written for the frozen
/// plugin-api 2.0.0.
const FIXTURE_LIB_FROZEN_2_0: &str = r#"//! Test fixture generated by taskhost-e2e: `{class}`, {about}.
//! Keeps every enqueued task in memory; never runs them.

use std::collections::HashMap;
use std::sync::Mutex;
use taskhost_plugin_api::{
    Backend, BackendParams, Capabilities, EnqueueRequest, Host, PluginError, Signal,
    TaskResultData, Text,
};

/// Stores results in memory.
pub struct {class} {
    alias: String,
    host: Host,
    results: Mutex<HashMap<Text, TaskResultData>>,
}

impl {class} {
    /// Build it for its alias; options are not looked at.
    pub fn new(params: BackendParams, host: Host) -> Result<Self, PluginError> {
        let results = Mutex::default();
        Ok(Self { alias: params.alias, host, results })
    }
}

impl Backend for {class} {
    fn capabilities(&self) -> Capabilities {
        Capabilities::DEFER | Capabilities::GET_RESULT | Capabilities::PRIORITY
    }

    fn enqueue(&self, request: EnqueueRequest) -> Result<TaskResultData, PluginError> {
        let mut result = TaskResultData::ready(request, &self.alias);
        result.enqueued_at = Some(self.host.now());
        self.results.lock().unwrap().insert(result.id.clone(), result.clone());
        self.host.send_signal(Signal::TASK_ENQUEUED, &result);
        Ok(result)
    }

    fn get_result(&self, id: &str) -> Result<TaskResultData, PluginError> {
        let results = self.results.lock().unwrap();
        results.get(id).cloned().ok_or_else(|| PluginError::does_not_exist(id))
    }
}

taskhost_plugin_api::export_plugin! {
    module_path: "{module_path}",
    classes: { {classes} },{requires}
}
"#;

/// A generated 1.x fixture plugin's source, for the frozen plugin-api 1.0.0 (`{about}`,
/// `{class}`, `{module_path}`, `{classes}` filled in): every operation is not supported.
const FIXTURE_LIB_1X: &str = r#"//! Test fixture generated by taskhost-e2e: `{class}`, {about}.
//! Every operation is not supported.

use taskhost_plugin_api::abi_stable::std_types::{RResult, RStr, RString};
use taskhost_plugin_api::{
    guard, guard::guard_or, wire::BackendParams, Backend, Capabilities, HostBox, PluginError,
};

/// Builds fine; supports nothing.
pub struct {class};

impl {class} {
    /// Build it; the params are not looked at.
    pub fn new(_params: BackendParams, _host: HostBox) -> Result<Self, PluginError> {
        Ok(Self)
    }
}

fn unsupported(operation: &str) -> RResult<RString, PluginError> {
    guard(|| Err(PluginError::not_supported(operation)))
}

impl Backend for {class} {
    fn capabilities(&self) -> Capabilities {
        guard_or(Capabilities::NONE, || Capabilities::NONE)
    }
    fn check(&self) -> RResult<RString, PluginError> {
        unsupported("check")
    }
    fn enqueue(&self, _request: RStr<'_>) -> RResult<RString, PluginError> {
        unsupported("enqueue")
    }
    fn enqueue_many(&self, _requests: RStr<'_>) -> RResult<RString, PluginError> {
        unsupported("enqueue_many")
    }
    fn get_result(&self, _id: RStr<'_>) -> RResult<RString, PluginError> {
        unsupported("get_result")
    }
    fn claim(&self, _request: RStr<'_>) -> RResult<RString, PluginError> {
        unsupported("claim")
    }
    fn complete(&self, _request: RStr<'_>) -> RResult<RString, PluginError> {
        unsupported("complete")
    }
    fn renew_leases(&self, _request: RStr<'_>) -> RResult<RString, PluginError> {
        unsupported("renew_leases")
    }
    fn release(&self, _request: RStr<'_>) -> RResult<RString, PluginError> {
        unsupported("release")
    }
    fn call_ext(&self, operation: RStr<'_>, _request: RStr<'_>) -> RResult<RString, PluginError> {
        unsupported(operation.as_str())
    }
    fn close(&self) {
        guard_or((), || {});
    }
}

taskhost_plugin_api::export_plugin! {
    module_path: "{module_path}",
    classes: { {classes} },
}
"#;
