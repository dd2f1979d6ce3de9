//! Helpers shared by the benchmarks: building the real plugin files (release profile) and
//! configuring the backends the benchmarks run on.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The plugin packages the benchmarks load, built as real `cdylib` files.
pub const PLUGIN_PACKAGES: &[&str] = &[
    "taskhost-backends-immediate",
    "taskhost-backends-dummy",
    "taskhost-backends-database",
];

/// The directory holding the release-built plugin libraries. `cargo bench` does not build a
/// `cdylib` just because a benchmark loads it, so this runs
/// `cargo build --release -p <plugins>` once per process (a no-op when up to date).
pub fn plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| taskhost_e2e::build::build_packages(PLUGIN_PACKAGES, true))
}

/// The path of a built plugin library, by its `[lib] name`.
pub fn plugin_file(lib_name: &str) -> PathBuf {
    plugin_dir().join(taskhost_e2e::build::library_file_name(lib_name))
}

/// Configure the process-wide backends: `default` (Immediate), `dummy` (Dummy) and, when
/// `sqlite_dbs` names files, one Database alias per `(alias, file)` on SQLite.
pub fn configure(sqlite_dbs: &[(&str, &Path)]) {
    let dir = plugin_dir();
    let mut toml = format!(
        r#"
plugin_dirs = [{dir:?}]

[tasks.default]
backend = "taskhost.backends.immediate.ImmediateBackend"
queues = []

[tasks.dummy]
backend = "taskhost.backends.dummy.DummyBackend"
queues = []
"#,
        dir = dir.display().to_string()
    );
    for (alias, db) in sqlite_dbs {
        toml.push_str(&format!(
            "\n[tasks.{alias}]\nbackend = \"taskhost.backends.database.DatabaseBackend\"\nqueues = []\n[tasks.{alias}.options]\nurl = {url:?}\n",
            url = format!("sqlite://{}", db.display())
        ));
    }
    let config =
        taskhost::Config::from_toml_str(&toml, None, dir).expect("the bench config parses");
    taskhost::task_backends().configure(config);
}
