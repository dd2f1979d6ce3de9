//! Loading backends from plugin files: every bad input is an `InvalidTaskBackend` naming the
//! alias, the backend name and the reason.

use std::fs;
use std::path::{Path, PathBuf};
use taskhost::{task_backends, Error};
use taskhost_e2e::{build::library_file_name, plugin_file, TestConfig};

/// The error of loading `alias` from the config in force.
fn load_error(alias: &str) -> (Option<String>, Option<String>, String) {
    match task_backends().get(alias) {
        Err(Error::InvalidTaskBackend {
            alias,
            backend,
            message,
        }) => (alias, backend, message),
        Err(other) => panic!("expected InvalidTaskBackend, got {other:?}"),
        Ok(backend) => panic!("expected an error, loaded {backend:?}"),
    }
}

fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// A config with one alias `broken` on `backend`, searching `dir`.
fn broken_config(dir: &Path, backend: &str) -> TestConfig {
    TestConfig::new(&format!(
        "plugin_dirs = [{}]\n[tasks.broken]\nbackend = {}\n",
        toml_str(&dir.display().to_string()),
        toml_str(backend)
    ))
}

fn assert_names_everything(alias: &str, backend: &str, reason: &str) {
    let (got_alias, got_backend, message) = load_error(alias);
    assert_eq!(got_alias.as_deref(), Some(alias));
    assert_eq!(got_backend.as_deref(), Some(backend));
    assert!(
        message.starts_with(&format!("Could not find backend '{backend}': ")),
        "{message}"
    );
    assert!(
        message.contains(reason),
        "expected {reason:?} in: {message}"
    );
    assert!(
        message.ends_with(&format!("(alias '{alias}')")),
        "{message}"
    );
}

#[test]
fn loads_the_dummy_and_immediate_plugins_from_their_files() {
    let _c = TestConfig::new(
        "[tasks.default]\nbackend = \"taskhost.backends.dummy.DummyBackend\"\n\
         [tasks.now]\nbackend = \"taskhost.backends.immediate.ImmediateBackend\"\n",
    );
    let dummy = task_backends().get("default").unwrap();
    assert_eq!(dummy.class_name(), "DummyBackend");
    assert_eq!(
        dummy.library_path(),
        fs::canonicalize(plugin_file("taskhost_backends_dummy")).unwrap()
    );
    assert!(dummy.supports_defer() && dummy.supports_priority() && dummy.supports_async_task());
    assert!(!dummy.supports_get_result());
    let immediate = task_backends().get("now").unwrap();
    assert_eq!(immediate.class_name(), "ImmediateBackend");
    assert!(!immediate.supports_defer() && immediate.supports_async_task());
}

#[test]
fn the_same_backend_is_returned_for_an_alias_and_one_library_serves_many_aliases() {
    let _c = TestConfig::new(
        "[tasks.a]\nbackend = \"taskhost.backends.dummy.DummyBackend\"\n\
         [tasks.b]\nbackend = \"taskhost.backends.dummy.DummyBackend\"\n",
    );
    let a1 = task_backends().get("a").unwrap();
    let a2 = task_backends().get("a").unwrap();
    let b = task_backends().get("b").unwrap();
    assert!(std::sync::Arc::ptr_eq(&a1, &a2));
    assert!(!std::sync::Arc::ptr_eq(&a1, &b));
    assert_eq!(a1.library_path(), b.library_path());
}

#[test]
fn an_unknown_alias_gets_djangos_message() {
    let _c =
        TestConfig::new("[tasks.default]\nbackend = \"taskhost.backends.dummy.DummyBackend\"\n");
    let (alias, backend, message) = load_error("unknown");
    assert_eq!(message, "The connection 'unknown' doesn't exist.");
    assert_eq!(alias.as_deref(), Some("unknown"));
    assert_eq!(backend, None);
}

#[test]
fn malformed_names_are_refused_before_the_filesystem_is_touched() {
    let long = format!("a.{}", "b".repeat(300));
    let cases: &[(&str, &str)] = &[
        ("a..b.C", "empty segment"),
        ("a/b.C", "'a/b'"),
        ("a\\b.C", "'a\\\\b'"),
        ("..", "empty segment"),
        (".a.C", "leading '.'"),
        ("a\u{0}b.C", "\\0"),
        (&long, "302 bytes, at most 255"),
        ("NoDot", "has no module path"),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, reason) in cases {
        let _c = broken_config(dir.path(), name);
        assert_names_everything("broken", name, reason);
    }
}

#[test]
fn a_missing_library_lists_the_dirs_searched_the_config_file_used_and_what_to_do() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let _c = TestConfig::new(&format!(
        "plugin_dirs = [{}, {}]\n[tasks.broken]\nbackend = \"acme.nothing.NoBackend\"\n",
        toml_str(&d1.path().display().to_string()),
        toml_str(&d2.path().display().to_string()),
    ));
    let (_, _, message) = load_error("broken");
    assert_eq!(
        message,
        format!(
            "Could not find backend 'acme.nothing.NoBackend': no library 'libacme_nothing.so' in \
             the plugin dirs searched: {}, {}; config file: 'tests.toml'; build the plugin (its \
             crate sets [lib] name = \"acme_nothing\") and put 'libacme_nothing.so' in one of \
             those dirs, or add the dir that holds it to plugin_dirs in 'tests.toml' or to \
             $TASKHOST_PLUGIN_DIRS; install it with `taskhost plugin install acme.nothing --dir \
             {}` (alias 'broken')",
            d1.path().display(),
            d2.path().display(),
            d1.path().display()
        )
    );
}

#[test]
fn a_missing_library_names_the_config_file_read() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    let config_file = dir.path().join("tasks.toml");
    fs::write(
        &config_file,
        "plugin_dirs = [\"plugins\"]\n[tasks.broken]\nbackend = \"acme.nothing.NoBackend\"\n",
    )
    .unwrap();
    let config = taskhost::Config::from_file(&config_file).unwrap();
    assert_eq!(config.source, taskhost::ConfigSource::Explicit);
    let _c = taskhost::override_task_backends(config);
    let (_, _, message) = load_error("broken");
    assert_eq!(
        message,
        format!(
            "Could not find backend 'acme.nothing.NoBackend': no library 'libacme_nothing.so' in \
             the plugin dirs searched: {plugins}; config file: '{file}'; build the plugin (its \
             crate sets [lib] name = \"acme_nothing\") and put 'libacme_nothing.so' in one of \
             those dirs, or add the dir that holds it to plugin_dirs in '{file}' or to \
             $TASKHOST_PLUGIN_DIRS; install it with `taskhost plugin install acme.nothing --dir \
             {plugins}` (alias 'broken')",
            plugins = plugins.display(),
            file = config_file.display()
        )
    );
}

#[test]
fn with_no_config_file_and_no_plugin_file_the_default_runs_on_the_built_in_immediate() {
    let empty = tempfile::tempdir().unwrap();
    let mut config = taskhost::Config::default_config();
    assert_eq!(config.source, taskhost::ConfigSource::BuiltInDefault);
    config.plugin_dirs = vec![empty.path().to_path_buf()];
    let _c = taskhost::override_task_backends(config);
    let backend = task_backends().get("default").unwrap();
    assert_eq!(
        backend.backend_name(),
        "taskhost.backends.immediate.ImmediateBackend"
    );
    assert!(backend.is_built_in());
    assert_eq!(backend.library_file(), None);
    // The file wins when a plugin dir has it.
    let copy = empty
        .path()
        .join(library_file_name("taskhost_backends_immediate"));
    fs::copy(plugin_file("taskhost_backends_immediate"), &copy).unwrap();
    let mut config = taskhost::Config::default_config();
    config.plugin_dirs = vec![empty.path().to_path_buf()];
    let _c = taskhost::override_task_backends(config);
    let backend = task_backends().get("default").unwrap();
    assert!(!backend.is_built_in());
    assert_eq!(
        backend.library_file(),
        Some(fs::canonicalize(&copy).unwrap().as_path())
    );
}

#[test]
fn a_missing_library_with_no_config_file_says_the_built_in_default_applies() {
    let empty = tempfile::tempdir().unwrap();
    let mut config = taskhost::Config::default_config();
    assert_eq!(config.source, taskhost::ConfigSource::BuiltInDefault);
    config.plugin_dirs = vec![empty.path().to_path_buf()];
    // Not a built-in: the database backend ships as a file only.
    config.backends.get_mut("default").unwrap().backend =
        "taskhost.backends.database.DatabaseBackend".to_string();
    let _c = taskhost::override_task_backends(config);
    let (alias, backend, message) = load_error("default");
    assert_eq!(alias.as_deref(), Some("default"));
    assert_eq!(
        backend.as_deref(),
        Some("taskhost.backends.database.DatabaseBackend")
    );
    assert_eq!(
        message,
        format!(
            "Could not find backend 'taskhost.backends.database.DatabaseBackend': no library \
             'libtaskhost_backends_database.so' in the plugin dirs searched: {dir}; no config \
             file was found (no --config, $TASKHOST_CONFIG unset, no ./tasks.toml in the current \
             directory), so the built-in default applies: one alias 'default' on the Immediate \
             backend; build the plugin (its crate sets [lib] name = \
             \"taskhost_backends_database\") and put 'libtaskhost_backends_database.so' in one \
             of those dirs, or add the dir that holds it to $TASKHOST_PLUGIN_DIRS (or create a \
             tasks.toml that sets plugin_dirs); install it with `taskhost plugin install \
             taskhost.backends.database --dir {dir}` (alias 'default')",
            dir = empty.path().display()
        )
    );
}

/// Put `content` under the library file name of `acme.bad.BadBackend` in a fresh plugin dir.
fn bad_library(make: impl FnOnce(&Path)) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("libacme_bad.so");
    make(&file);
    (dir, file)
}

#[test]
fn files_that_are_not_shared_libraries_are_refused_with_the_file_named() {
    let random: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    type Make = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Make, &str)> = vec![
        (
            "empty",
            Box::new(|f: &Path| fs::write(f, b"").unwrap()),
            "is empty (0 bytes)",
        ),
        (
            "random bytes",
            Box::new(move |f: &Path| fs::write(f, &random).unwrap()),
            "is not a loadable shared library",
        ),
        (
            "text",
            Box::new(|f: &Path| fs::write(f, "hello, I am text\n").unwrap()),
            "is not a loadable shared library",
        ),
        (
            "directory",
            Box::new(|f: &Path| fs::create_dir(f).unwrap()),
            "is not a regular file",
        ),
    ];
    for (what, make, reason) in cases {
        let (dir, file) = bad_library(make);
        let _c = broken_config(dir.path(), "acme.bad.BadBackend");
        let (_, _, message) = load_error("broken");
        assert!(message.contains(reason), "{what}: {message}");
        assert!(message.contains("libacme_bad.so"), "{what}: {message}");
        let _ = file;
    }
}

#[test]
fn a_real_shared_library_that_is_not_a_plugin_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("plain.c");
    fs::write(&source, "int plain_function(void) { return 42; }\n").unwrap();
    let status = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(dir.path().join("libacme_bad.so"))
        .arg(&source)
        .status()
        .expect("a C compiler (cc) is needed to build a non-plugin shared library");
    assert!(status.success());
    let _c = broken_config(dir.path(), "acme.bad.BadBackend");
    assert_names_everything(
        "broken",
        "acme.bad.BadBackend",
        "is a shared library but not a taskhost plugin",
    );
}

#[cfg(unix)]
#[test]
fn a_symlink_leading_outside_the_plugin_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        plugin_file("taskhost_backends_dummy"),
        dir.path().join("libtaskhost_backends_dummy.so"),
    )
    .unwrap();
    let _c = broken_config(dir.path(), "taskhost.backends.dummy.DummyBackend");
    assert_names_everything(
        "broken",
        "taskhost.backends.dummy.DummyBackend",
        "is a symlink that leads outside its plugin dir",
    );
}

#[cfg(unix)]
#[test]
fn a_library_writable_by_other_users_is_refused_unless_allowed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("libtaskhost_backends_dummy.so");
    fs::copy(plugin_file("taskhost_backends_dummy"), &file).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
    {
        let _c = broken_config(dir.path(), "taskhost.backends.dummy.DummyBackend");
        assert_names_everything(
            "broken",
            "taskhost.backends.dummy.DummyBackend",
            "is writable by other users",
        );
    }
    let _c = TestConfig::new(&format!(
        "plugin_dirs = [{}]\nallow_writable_plugin_dirs = true\n[tasks.ok]\nbackend = \"taskhost.backends.dummy.DummyBackend\"\n",
        toml_str(&dir.path().display().to_string())
    ));
    assert!(task_backends().get("ok").is_ok());
}

#[test]
fn a_class_the_library_does_not_export_lists_those_it_does() {
    let _c =
        TestConfig::new("[tasks.broken]\nbackend = \"taskhost.backends.dummy.NoSuchBackend\"\n");
    assert_names_everything(
        "broken",
        "taskhost.backends.dummy.NoSuchBackend",
        "module 'taskhost.backends.dummy' has no class 'NoSuchBackend'; it exports: DummyBackend",
    );
}

#[test]
fn a_library_whose_declared_module_path_does_not_match_its_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::copy(
        plugin_file("taskhost_backends_dummy"),
        dir.path().join("libacme_renamed.so"),
    )
    .unwrap();
    let _c = broken_config(dir.path(), "acme.renamed.DummyBackend");
    assert_names_everything(
        "broken",
        "acme.renamed.DummyBackend",
        "declares module path 'taskhost.backends.dummy', whose library would be named 'libtaskhost_backends_dummy.so'",
    );
}

#[test]
fn underscores_and_dots_are_not_confused() {
    // `taskhost_backends.dummy` maps to the same file stem as `taskhost.backends.dummy`.
    let _c =
        TestConfig::new("[tasks.broken]\nbackend = \"taskhost_backends.dummy.DummyBackend\"\n");
    assert_names_everything(
        "broken",
        "taskhost_backends.dummy.DummyBackend",
        "declares module path 'taskhost.backends.dummy', not 'taskhost_backends.dummy'",
    );
}

#[test]
fn a_constructor_that_rejects_its_options_is_an_invalid_backend() {
    let _c = TestConfig::new(
        "[tasks.broken]\nbackend = \"taskhost.backends.dummy.DummyBackend\"\n[tasks.broken.options]\nresults_limit = 3\n",
    );
    let (alias, backend, message) = load_error("broken");
    assert_eq!(alias.as_deref(), Some("broken"));
    assert_eq!(
        backend.as_deref(),
        Some("taskhost.backends.dummy.DummyBackend")
    );
    assert!(message.contains("could not be created"), "{message}");
    assert!(message.contains("'results_limit'"), "{message}");
}

#[test]
fn no_config_means_one_default_alias_on_the_immediate_backend() {
    let config = taskhost::Config::default_config();
    assert_eq!(config.backends.len(), 1);
    assert_eq!(
        config.backends["default"].backend,
        "taskhost.backends.immediate.ImmediateBackend"
    );
}

#[test]
fn an_empty_tasks_table_means_no_backends() {
    let _c = TestConfig::new("[tasks]\n");
    let (_, _, message) = load_error("default");
    assert_eq!(message, "The connection 'default' doesn't exist.");
}
