//! The `taskhost` tool: `check` and `backends`, run as a real process.

use std::fs;
use std::process::Command;
use taskhost_e2e::{plugin_dir, taskhost_bin};
use taskhost_plugin_api::PLUGIN_API_VERSION;

fn write_config(dir: &std::path::Path, body: &str) -> std::path::PathBuf {
    let file = dir.join("tasks.toml");
    let text = format!(
        "plugin_dirs = [{:?}]\n{body}",
        plugin_dir().display().to_string()
    );
    fs::write(&file, text).unwrap();
    file
}

fn run(args: &[&str], config: &std::path::Path) -> (i32, String) {
    let out = Command::new(taskhost_bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn check_passes_with_a_one_line_summary() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[tasks.default]\nbackend = \"taskhost.backends.immediate.ImmediateBackend\"\n\
         [tasks.dummy]\nbackend = \"taskhost.backends.dummy.DummyBackend\"\n",
    );
    let (code, out) = run(&["check"], &config);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.starts_with("taskhost check: 2 backend(s) OK from "),
        "{out}"
    );
    assert!(
        out.contains("default (taskhost.backends.immediate.ImmediateBackend)"),
        "{out}"
    );
}

#[test]
fn check_reports_one_line_per_problem_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[tasks.default]\nbackend = \"taskhost.backends.dummy.DummyBackend\"\n\
         [tasks.missing]\nbackend = \"does.not.Exist\"\n\
         [tasks.bad]\nbackend = \"a..b.C\"\n",
    );
    let (code, out) = run(&["check"], &config);
    assert_eq!(code, 1, "{out}");
    let errors: Vec<&str> = out.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 2, "{out}");
    assert!(
        errors
            .iter()
            .any(|l| l.contains("Could not find backend 'a..b.C'") && l.contains("(alias 'bad')")),
        "{out}"
    );
    assert!(
        errors
            .iter()
            .any(|l| l.contains("Could not find backend 'does.not.Exist'")
                && l.contains("(alias 'missing')")),
        "{out}"
    );
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("taskhost check: 2 error(s) in "),
        "{out}"
    );
}

#[test]
fn check_reports_a_bad_config_file_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "[tasks.default]\nbakend = \"x.Y\"\n");
    let (code, out) = run(&["check"], &config);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("tasks.default.bakend"), "{out}");
}

#[test]
fn backends_lists_plugins_and_explains_files_that_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    fs::create_dir(&plugins).unwrap();
    fs::copy(
        taskhost_e2e::plugin_file("taskhost_backends_dummy"),
        plugins.join("libtaskhost_backends_dummy.so"),
    )
    .unwrap();
    fs::write(plugins.join("libjunk.so"), "not a library").unwrap();
    let config = dir.path().join("tasks.toml");
    fs::write(&config, "plugin_dirs = [\"plugins\"]\n[tasks]\n").unwrap();
    let (code, out) = run(&["backends"], &config);
    assert_eq!(code, 0, "{out}");
    let listed = format!(
        "libtaskhost_backends_dummy.so: module taskhost.backends.dummy classes [DummyBackend] \
         plugin-api {PLUGIN_API_VERSION}"
    );
    assert!(out.contains(&listed), "{out}");
    assert!(out.contains("libjunk.so: not loadable: "), "{out}");
}
