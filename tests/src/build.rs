//! Building the plugin libraries the tests load (once per test process).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root (the folder holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives inside the workspace")
        .to_path_buf()
}

/// The workspace's plugin packages, built as real `cdylib` files.
pub const PLUGIN_PACKAGES: &[&str] = &[
    "taskhost-backends-immediate",
    "taskhost-backends-dummy",
    "taskhost-fixtures-panicking",
    "taskhost-backends-database",
    "taskhost-worker-app",
];

/// The target dir cargo builds into (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| {
            if p.is_absolute() {
                p
            } else {
                workspace_root().join(p)
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The directory holding the built plugin libraries (`target/debug`), built first if needed.
/// `cargo test` does not build a `cdylib` just because a test will load it, so this runs
/// `cargo build -p <plugins>` once per process (a no-op when they are up to date).
pub fn plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    // `taskhost-cli`: the `taskhost` bin.
    DIR.get_or_init(|| build_packages(&[PLUGIN_PACKAGES, &["taskhost-cli"]].concat(), false))
}

/// Run `cargo build [--release] -p <packages>` in the workspace and return the output dir
/// (`target/debug` or `target/release`). Panics if the build fails: tests and benchmarks
/// cannot run without the files. Callers keep the result, so it runs once per process.
pub fn build_packages(packages: &[&str], release: bool) -> PathBuf {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.arg("build")
        .arg("--quiet")
        .current_dir(workspace_root());
    if release {
        cmd.arg("--release");
    }
    for package in packages {
        cmd.args(["-p", package]);
    }
    let status = cmd.status().expect("cargo can be run from the tests");
    assert!(status.success(), "building {packages:?} failed");
    target_dir().join(if release { "release" } else { "debug" })
}

/// The platform's file name of a library named `lib_name` (`lib<name>.so` on Linux).
pub use taskhost::plugin::name::library_file_name;

/// The path of a built plugin library, by its `[lib] name` (`taskhost_backends_dummy`).
pub fn plugin_file(lib_name: &str) -> PathBuf {
    plugin_dir().join(library_file_name(lib_name))
}

/// The bytes of the built plugin `lib_name`, its debug info stripped when `strip` is
/// available (smaller copies, and byte flips land in code and data rather than debug info);
/// `scratch` holds the stripped file.
pub fn stripped_plugin_bytes(lib_name: &str, scratch: &Path) -> Vec<u8> {
    let original = plugin_file(lib_name);
    let stripped = scratch.join("stripped.so");
    let ok = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&stripped)
        .arg(&original)
        .status()
        .is_ok_and(|s| s.success());
    std::fs::read(if ok { &stripped } else { &original }).unwrap()
}

/// A `tasks.toml` text with `dir` as the only plugin dir and `alias` on `backend`, then
/// `extra` (TOML) appended.
pub fn config_text(dir: &Path, alias: &str, backend: &str, extra: &str) -> String {
    let dir = serde_json::to_string(&dir.display().to_string()).expect("a path as a JSON string");
    format!("plugin_dirs = [{dir}]\n[tasks.{alias}]\nbackend = \"{backend}\"\n{extra}")
}

/// The built `taskhost` command-line tool.
pub fn taskhost_bin() -> PathBuf {
    plugin_dir().join(format!("taskhost{}", std::env::consts::EXE_SUFFIX))
}

/// The built worker application (tests/worker-app): tasks plus the mounted `taskhost` CLI.
pub fn worker_app_bin() -> PathBuf {
    plugin_dir().join(format!(
        "taskhost-worker-app{}",
        std::env::consts::EXE_SUFFIX
    ))
}
