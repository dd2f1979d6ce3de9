//! An application outside this repository reaches a backend in one step (decision 013): it
//! depends on `taskhost` alone and runs, with no `tasks.toml` and no plugin file anywhere it
//! looks, on the built-in Immediate backend after a plain `cargo run`; on the built-in Dummy
//! with a config naming it; and a backend that is not built in and has no file is an error
//! naming the config file used and the command that installs it. Real processes, a real
//! `cargo run`, in a crate generated under `target/external/outside-app/` with its own target
//! dir.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use taskhost_e2e::external::{outside_application, outside_application_bin, outside_cargo};

/// The dir beside the binary (where the host looks with no `plugin_dirs`) holds no plugin
/// library: whatever runs, runs built in.
fn assert_no_plugin_files_beside(bin: &Path) {
    let dir = bin.parent().unwrap();
    for sub in [dir.to_path_buf(), dir.join("plugins")] {
        let libraries: Vec<String> = fs::read_dir(&sub)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|f| f.contains("taskhost_backends_"))
            .collect();
        assert!(
            libraries.is_empty(),
            "plugin files beside the app in {}: {libraries:?}",
            sub.display()
        );
    }
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).trim().to_string(),
        String::from_utf8_lossy(&output.stderr).trim().to_string(),
    )
}

/// The built app run in `dir` (its current directory), as a user would run it.
fn run_in(dir: &Path) -> Output {
    let bin = outside_application_bin();
    assert_no_plugin_files_beside(&bin);
    Command::new(&bin)
        .current_dir(dir)
        .env_remove("TASKHOST_CONFIG")
        .env_remove("TASKHOST_PLUGIN_DIRS")
        .output()
        .unwrap()
}

#[test]
fn a_plain_cargo_run_with_no_config_runs_on_the_built_in_immediate() {
    let app = outside_application();
    assert!(!app.join("tasks.toml").exists());
    assert_no_plugin_files_beside(&outside_application_bin());
    let output = outside_cargo(&app)
        .args(["run", "--quiet"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stdout,
        "backend=taskhost.backends.immediate.ImmediateBackend built_in=true status=SUCCESSFUL \
         return=42",
        "{stderr}"
    );
}

#[test]
fn a_config_naming_the_dummy_backend_runs_on_the_built_in_dummy() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("tasks.toml"),
        "[tasks.default]\nbackend = \"taskhost.backends.dummy.DummyBackend\"\n",
    )
    .unwrap();
    let output = run_in(dir.path());
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stdout,
        "backend=taskhost.backends.dummy.DummyBackend built_in=true status=READY \
         return=(Task has not finished yet)",
        "{stderr}"
    );
}

#[test]
fn a_backend_with_no_file_and_no_built_in_names_the_config_file_and_the_install_command() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("tasks.toml"),
        "[tasks.default]\nbackend = \"taskhost.backends.database.DatabaseBackend\"\n\
         [tasks.default.options]\nurl = \"sqlite://tasks.db\"\n",
    )
    .unwrap();
    let output = run_in(dir.path());
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert_eq!(stdout, "");
    let exe_dir = fs::canonicalize(outside_application_bin().parent().unwrap()).unwrap();
    let config = fs::canonicalize(dir.path()).unwrap().join("tasks.toml");
    assert_eq!(
        stderr,
        format!(
            "error: Could not find backend 'taskhost.backends.database.DatabaseBackend': no \
             library 'libtaskhost_backends_database.so' in the plugin dirs searched: {exe}, \
             {exe}/plugins; config file: '{config}' (./tasks.toml in the current directory); \
             build the plugin (its crate sets [lib] name = \"taskhost_backends_database\") and \
             put 'libtaskhost_backends_database.so' in one of those dirs, or add the dir that \
             holds it to plugin_dirs in '{config}' or to $TASKHOST_PLUGIN_DIRS; install it with \
             `taskhost plugin install taskhost.backends.database --dir {exe}` (alias 'default')",
            exe = exe_dir.display(),
            config = config.display()
        )
    );
    assert!(!dir.path().join("tasks.db").exists());
}

#[test]
fn the_install_command_puts_the_database_plugin_where_the_app_finds_it() {
    let dir = tempfile::tempdir().unwrap();
    let install = Command::new(taskhost_e2e::taskhost_bin())
        .args(["plugin", "install", "taskhost.backends.database"])
        .args(["--dir", "plugins", "--profile", "dev"])
        .current_dir(dir.path())
        .env_remove("TASKHOST_CONFIG")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&install);
    assert!(install.status.success(), "{stdout}\n{stderr}");
    let file = fs::canonicalize(dir.path()).unwrap().join("plugins").join(
        taskhost_e2e::external::library_file_name("taskhost_backends_database"),
    );
    assert!(
        stdout.starts_with(&format!(
            "Installed taskhost.backends.database: {} (built from ",
            file.display()
        )),
        "{stdout}"
    );
    fs::write(
        dir.path().join("tasks.toml"),
        "plugin_dirs = [\"plugins\"]\n[tasks.default]\n\
         backend = \"taskhost.backends.database.DatabaseBackend\"\n\
         [tasks.default.options]\nurl = \"sqlite://tasks.db\"\n",
    )
    .unwrap();
    let output = run_in(dir.path());
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stdout,
        "backend=taskhost.backends.database.DatabaseBackend built_in=false status=READY \
         return=(Task has not finished yet)",
        "{stderr}"
    );
    assert!(dir.path().join("tasks.db").exists());
}

/// The `taskhost` tool alone in an empty dir: no plugin file beside it, no config.
fn lone_taskhost(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("taskhost");
    fs::copy(taskhost_e2e::taskhost_bin(), &bin).unwrap();
    Command::new(&bin)
        .args(args)
        .current_dir(dir.path())
        .env_remove("TASKHOST_CONFIG")
        .env_remove("TASKHOST_PLUGIN_DIRS")
        .output()
        .unwrap()
}

#[test]
fn check_and_backends_know_the_built_ins_when_no_file_is_found() {
    let check = lone_taskhost(&["check"]);
    let (stdout, stderr) = text(&check);
    assert!(check.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stdout,
        "taskhost check: 1 backend(s) OK from the built-in default config: default \
         (taskhost.backends.immediate.ImmediateBackend)"
    );
    let backends = lone_taskhost(&["backends"]);
    let (stdout, stderr) = text(&backends);
    assert!(backends.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.ends_with(
            "built into this host (used when no plugin dir has their file)\n  \
             taskhost.backends.immediate: classes [ImmediateBackend]\n  \
             taskhost.backends.dummy: classes [DummyBackend]"
        ),
        "{stdout}"
    );
}
