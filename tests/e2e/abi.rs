//! The plugin ABI across versions: plugins built against another `taskhost-plugin-api` version
//! (a generated copy of plugin-api with only its version changed), and plugin logs reaching the
//! host's `tracing` subscriber.

use serde_json::Map;
use std::fs;
use std::path::Path;
use taskhost::{task_backends, Error};
use taskhost_e2e::external::{library_file_name, plugin_built_against_api};
use taskhost_e2e::logs::{capture, Captured};
use taskhost_e2e::{plugin_file, TestConfig};
use taskhost_plugin_api::{wire::TaskDescription, PLUGIN_API_VERSION};

const FUTURE: &str = "taskhost.fixtures.future.FutureBackend";

/// A plugins dir holding a copy of `library` under the fixture's file name.
fn plugins_dir_with(library: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let file = dir
        .path()
        .join(library_file_name("taskhost_fixtures_future"));
    fs::copy(library, file).unwrap();
    dir
}

fn future_config(dir: &Path, alias: &str) -> TestConfig {
    TestConfig::new(&format!(
        "plugin_dirs = [{}]\n[tasks.{alias}]\nbackend = \"{FUTURE}\"\n",
        serde_json::to_string(&dir.display().to_string()).unwrap()
    ))
}

fn description(alias: &str) -> TaskDescription {
    TaskDescription {
        path: "e2e::abi::nothing".into(),
        priority: 0,
        queue_name: "default".into(),
        backend: alias.into(),
        run_after: None,
        takes_context: false,
        is_async: false,
        max_attempts: None,
        timeout_secs: None,
    }
}

fn assert_not_supported<T: std::fmt::Debug>(result: Result<T, Error>, operation: &str) {
    match result {
        Err(Error::NotSupported(message)) => assert_eq!(
            message,
            format!("This backend does not support '{operation}'.")
        ),
        other => panic!("{operation}: expected NotSupported, got {other:?}"),
    }
}

#[test]
fn this_host_is_plugin_api_1_0_0() {
    // The version tests below are written for a 1.0.x host.
    assert_eq!(PLUGIN_API_VERSION, "1.0.0");
}

#[test]
fn a_plugin_built_against_plugin_api_2_is_refused_in_one_line_naming_both_versions() {
    let dir = plugins_dir_with(&plugin_built_against_api("2.0.0"));
    let _c = future_config(dir.path(), "future");
    let message = match task_backends().get("future") {
        Err(Error::InvalidTaskBackend {
            alias,
            backend,
            message,
        }) => {
            assert_eq!(alias.as_deref(), Some("future"));
            assert_eq!(backend.as_deref(), Some(FUTURE));
            message
        }
        other => panic!("expected InvalidTaskBackend, got {other:?}"),
    };
    assert!(!message.contains('\n'), "not one line: {message}");
    assert!(message.contains("2.0.0"), "{message}");
    assert!(message.contains(PLUGIN_API_VERSION), "{message}");
    let file = fs::canonicalize(dir.path())
        .unwrap()
        .join(library_file_name("taskhost_fixtures_future"));
    assert!(message.contains(&file.display().to_string()), "{message}");
    assert_eq!(
        message,
        format!(
            "Could not find backend '{FUTURE}': '{}' was built against taskhost-plugin-api 2.0.0, \
             but this host uses taskhost-plugin-api {PLUGIN_API_VERSION}; rebuild the plugin \
             against taskhost-plugin-api 1.x (alias 'future')",
            file.display()
        )
    );
}

/// A plugin built against a later 1.x plugin-api loads into this 1.0.0 host: abi_stable checks
/// the major version only for 1.x (`check_version`, and `is_loosely_compatible` for the
/// package version every type carries in its layout), and the layout is frozen for 1.x.
fn assert_later_1x_plugin_loads_and_works(version: &str) {
    let dir = plugins_dir_with(&plugin_built_against_api(version));
    let alias = format!("future_{}", version.replace('.', "_"));
    let _c = future_config(dir.path(), &alias);
    let backend = task_backends()
        .get(&alias)
        .unwrap_or_else(|e| panic!("a plugin built against plugin-api {version} was refused: {e}"));
    assert_eq!(backend.class_name(), "FutureBackend");
    let library = taskhost::plugin::Library::open(backend.library_path()).unwrap();
    assert_eq!(library.manifest().plugin_api_version, version);
    assert_eq!(
        library.manifest().plugin_version,
        "taskhost-fixtures-future 0.0.0"
    );
    // Every call crosses the boundary and comes back as the plugin's own error.
    assert_eq!(
        backend.capabilities(),
        taskhost_plugin_api::Capabilities::NONE
    );
    assert_not_supported(
        backend.enqueue_json(&description(&alias), vec![], Map::new()),
        "enqueue",
    );
    assert_not_supported(backend.get_result("some-id"), "get_result");
    assert_not_supported(backend.results(), "results");
    assert_not_supported(backend.check(), "check");
}

#[test]
fn a_plugin_built_against_plugin_api_1_0_5_loads_and_works() {
    assert_later_1x_plugin_loads_and_works("1.0.5");
}

#[test]
fn a_plugin_built_against_plugin_api_1_1_0_loads_and_works() {
    assert_later_1x_plugin_loads_and_works("1.1.0");
}

/// A plugins dir with a private copy of the Dummy plugin: dlopen gives a copy at another path a
/// library instance of its own, with its own `tracing` statics and its own log forwarder.
///
/// A private copy of the library gives each test its own forwarder (its own library instance),
/// so tests that count forwarded events do not see each other's.
fn private_dummy_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let name = library_file_name("taskhost_backends_dummy");
    fs::copy(
        plugin_file("taskhost_backends_dummy"),
        dir.path().join(name),
    )
    .unwrap();
    dir
}

fn dummy_config(dir: &Path, aliases: &[&str]) -> TestConfig {
    let mut toml = format!(
        "plugin_dirs = [{}]\n",
        serde_json::to_string(&dir.display().to_string()).unwrap()
    );
    for alias in aliases {
        toml.push_str(&format!(
            "[tasks.{alias}]\nbackend = \"taskhost.backends.dummy.DummyBackend\"\n"
        ));
    }
    TestConfig::new(&toml)
}

/// The captured "DummyBackend created" lines.
fn created_lines(logs: &Captured) -> Vec<String> {
    logs.lines()
        .into_iter()
        .filter(|line| line.contains("DummyBackend created"))
        .collect()
}

#[test]
fn plugin_tracing_events_reach_the_hosts_subscriber() {
    let dir = private_dummy_copy();
    let ((), logs) = capture("taskhost::plugin=debug", || {
        let _c = dummy_config(dir.path(), &["logged"]);
        task_backends().get("logged").unwrap();
    });
    let created = created_lines(&logs);
    assert_eq!(created.len(), 1, "{:?}", logs.text());
    let line = &created[0];
    assert!(line.starts_with("DEBUG taskhost::plugin: "), "{line}");
    assert!(line.contains("DummyBackend created alias=logged"), "{line}");
    assert!(
        line.contains("plugin_target=\"taskhost_backends_dummy::backend\""),
        "{line}"
    );
}

/// A plugin callsite first hit while the host is not listening is still forwarded later: the
/// forwarder asks the host on every event (`register_callsite` returns `sometimes`).
#[test]
fn plugin_events_are_forwarded_even_if_first_hit_while_the_host_was_not_listening() {
    let dir = private_dummy_copy();
    let _c = dummy_config(dir.path(), &["unheard", "heard"]);
    task_backends().get("unheard").unwrap();
    let ((), logs) = capture("taskhost::plugin=debug", || {
        task_backends().get("heard").unwrap();
    });
    assert_eq!(created_lines(&logs).len(), 1, "{:?}", logs.text());
}

/// One forwarder serves every backend of a library, so the host adds no alias of its own: an
/// event carries the alias the plugin put in its fields.
#[test]
fn forwarded_plugin_events_carry_the_alias_of_the_backend_that_logged() {
    let dir = private_dummy_copy();
    let ((), logs) = capture("taskhost::plugin=debug", || {
        let _c = dummy_config(dir.path(), &["first", "second"]);
        task_backends().get("first").unwrap();
        task_backends().get("second").unwrap();
    });
    let created = created_lines(&logs);
    assert_eq!(created.len(), 2, "{:?}", logs.text());
    assert!(
        created[1].contains("DummyBackend created alias=second"),
        "{created:?}"
    );
    assert!(!created[1].contains("alias=first"), "{created:?}");
}
