//! The plugin ABI across versions: a backend built against the frozen plugin-api 1.0.0
//! (`tests/fixtures/plugin-api-1.0`) working in this host, plugins built against other
//! `taskhost-plugin-api` versions (a generated copy of plugin-api with only its version changed),
//! a plugin whose manifest lists a class twice, and plugin logs reaching the host's `tracing`
//! subscriber.

use chrono::Utc;
use serde_json::{json, Map};
use std::fs;
use std::path::Path;
use taskhost::{task_backends, Error, TaskResultStatus};
use taskhost_e2e::external::{
    custom_backend_built_against_frozen_1_0, library_file_name, plugin_built_against_api,
    plugin_exporting_a_class_twice,
};
use taskhost_e2e::logs::{capture, Captured};
use taskhost_e2e::{plugin_file, TestConfig};
use taskhost_plugin_api::{
    ops,
    wire::{TaskDescription, TaskResultData, WaitRequest},
    PLUGIN_API_VERSION,
};

const FUTURE: &str = "taskhost.fixtures.future.FutureBackend";

/// A plugins dir holding a copy of `library` under the future fixture's file name.
fn plugins_dir_with(library: &Path) -> tempfile::TempDir {
    plugins_dir_with_lib(library, "taskhost_fixtures_future")
}

/// A plugins dir holding a copy of `library` as the library file `lib_name`.
fn plugins_dir_with_lib(library: &Path, lib_name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::copy(library, dir.path().join(library_file_name(lib_name))).unwrap();
    dir
}

fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn future_config(dir: &Path, alias: &str) -> TestConfig {
    TestConfig::new(&format!(
        "plugin_dirs = [{}]\n[tasks.{alias}]\nbackend = \"{FUTURE}\"\n",
        toml_str(&dir.display().to_string())
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

/// `major.minor.patch` as numbers.
fn parse_version(version: &str) -> (u64, u64, u64) {
    let parts: Vec<u64> = version
        .split('.')
        .map(|part| part.parse().unwrap_or_else(|e| panic!("{version}: {e}")))
        .collect();
    match parts[..] {
        [major, minor, patch] => (major, minor, patch),
        _ => panic!("not major.minor.patch: {version}"),
    }
}

/// The generated-version tests below surround this host's plugin-api version: 1.0.5 is older,
/// 1.6.0 newer, 2.0.0 another major. Bumping plugin-api past them means moving them too.
#[test]
fn the_version_tests_surround_this_hosts_plugin_api_version() {
    let host = parse_version(PLUGIN_API_VERSION);
    assert!(
        parse_version("1.0.5") < host && host < parse_version("1.6.0"),
        "this host is plugin-api {PLUGIN_API_VERSION}: move the versions of the tests in \
         tests/e2e/abi.rs so one is older and one newer within its major"
    );
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

/// A plugin built against another 1.x plugin-api, older or newer, loads into this host: abi_stable
/// checks the major version only for 1.x (`check_version`, and `is_loosely_compatible` for the
/// package version every type carries in its layout), and the layout is frozen for 1.x.
fn assert_other_1x_plugin_loads_and_works(version: &str) {
    assert_ne!(version, PLUGIN_API_VERSION, "not another version");
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
fn a_plugin_built_against_an_older_plugin_api_1_0_5_loads_and_works() {
    assert_other_1x_plugin_loads_and_works("1.0.5");
}

#[test]
fn a_plugin_built_against_a_newer_plugin_api_1_6_0_loads_and_works() {
    assert_other_1x_plugin_loads_and_works("1.6.0");
}

/// The real older interface, not a relabelled copy of the current one: the custom-backend
/// example built against `tests/fixtures/plugin-api-1.0` (plugin-api exactly as released at
/// 1.0.0, without the later additions) loads into this newer 1.x host and round-trips a task.
#[test]
fn a_plugin_built_against_the_frozen_1_0_interface_loads_and_works_in_this_host() {
    let host = parse_version(PLUGIN_API_VERSION);
    assert!(
        host.0 == 1 && host > (1, 0, 0),
        "this host is plugin-api {PLUGIN_API_VERSION}, not a later 1.x"
    );
    let dir = plugins_dir_with_lib(&custom_backend_built_against_frozen_1_0(), "acme_spool");
    let spool = dir.path().join("spool.jsonl");
    let _c = TestConfig::new(&format!(
        "plugin_dirs = [{}]\n[tasks.frozen]\nbackend = \"acme.spool.SpoolBackend\"\n\
         [tasks.frozen.options]\npath = {}\n",
        toml_str(&dir.path().display().to_string()),
        toml_str(&spool.display().to_string()),
    ));
    let backend = task_backends()
        .get("frozen")
        .unwrap_or_else(|e| panic!("the plugin built against the frozen 1.0 was refused: {e}"));
    assert_eq!(backend.class_name(), "SpoolBackend");
    let library = taskhost::plugin::Library::open(backend.library_path()).unwrap();
    assert_eq!(library.manifest().plugin_api_version, "1.0.0");
    assert_eq!(library.manifest().plugin_version, "acme-spool-at-1-0 0.1.0");
    assert_eq!(library.manifest().module_path, "acme.spool");
    assert!(backend.supports_defer() && backend.supports_priority());
    assert!(backend.supports_get_result());

    let mut task = description("frozen");
    task.priority = 5;
    task.run_after = Some(Utc::now() + chrono::Duration::hours(1));
    let enqueued = backend
        .enqueue_json(&task, vec![json!(1), json!("two")], {
            let mut kwargs = Map::new();
            kwargs.insert("k".into(), json!(3));
            kwargs
        })
        .unwrap();
    assert_eq!(enqueued.status(), TaskResultStatus::Ready);
    assert_eq!(enqueued.args(), &[json!(1), json!("two")]);
    assert_eq!(enqueued.task().run_after, task.run_after);

    let fetched = backend.get_result(enqueued.id()).unwrap();
    assert_eq!(fetched.data(), enqueued.data());
    // What the plugin wrote is exactly what came back through the host.
    let line: TaskResultData =
        serde_json::from_str(fs::read_to_string(&spool).unwrap().trim_end()).unwrap();
    assert_eq!(&line, enqueued.data());
    // An extension operation of 1.0.0 works; one added in 1.1.0 comes back as NOT_SUPPORTED,
    // the answer the policy promises from a plugin that does not know it.
    assert_eq!(backend.results().unwrap().len(), 1);
    let wait = WaitRequest {
        queues: None,
        timeout_secs: 0.0,
    };
    assert_not_supported(
        backend.call_ext_json::<_, serde_json::Value>(ops::WAIT_FOR_TASKS, &wait),
        ops::WAIT_FOR_TASKS,
    );
    match backend.get_result("no-such-id") {
        Err(Error::TaskResultDoesNotExist(id)) => assert_eq!(id, "no-such-id"),
        other => panic!("expected TaskResultDoesNotExist, got {other:?}"),
    }
}

/// The host refuses a library whose manifest names a class twice, before building a backend.
#[test]
fn a_plugin_exporting_a_class_twice_is_refused() {
    let backend_name = "taskhost.fixtures.twice.TwiceBackend";
    let dir = plugins_dir_with_lib(&plugin_exporting_a_class_twice(), "taskhost_fixtures_twice");
    let _c = TestConfig::new(&format!(
        "plugin_dirs = [{}]\n[tasks.twice]\nbackend = \"{backend_name}\"\n",
        toml_str(&dir.path().display().to_string())
    ));
    match task_backends().get("twice") {
        Err(Error::InvalidTaskBackend {
            alias,
            backend,
            message,
        }) => {
            assert_eq!(alias.as_deref(), Some("twice"));
            assert_eq!(backend.as_deref(), Some(backend_name));
            assert!(
                message.contains("exports class 'TwiceBackend' more than once"),
                "{message}"
            );
            let file = fs::canonicalize(dir.path())
                .unwrap()
                .join(library_file_name("taskhost_fixtures_twice"));
            assert!(message.contains(&file.display().to_string()), "{message}");
            assert!(!message.contains('\n'), "not one line: {message}");
        }
        other => panic!("expected InvalidTaskBackend, got {other:?}"),
    }
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
    let mut toml = format!("plugin_dirs = [{}]\n", toml_str(&dir.display().to_string()));
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
