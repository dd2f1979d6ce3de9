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
    DIR.get_or_init(|| {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.arg("build")
            .arg("--quiet")
            .current_dir(workspace_root());
        for package in PLUGIN_PACKAGES {
            cmd.args(["-p", package]);
        }
        cmd.args(["-p", "taskhost"]); // its lib and the `taskhost` bin
        let status = cmd.status().expect("cargo can be run from the tests");
        assert!(status.success(), "building the plugin libraries failed");
        target_dir().join("debug")
    })
}

/// The path of a built plugin library, by its `[lib] name` (`taskhost_backends_dummy`).
pub fn plugin_file(lib_name: &str) -> PathBuf {
    plugin_dir().join(format!(
        "{}{lib_name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
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
