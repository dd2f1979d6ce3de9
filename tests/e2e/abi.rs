//! The plugin ABI across versions: a backend built against the frozen plugin-api 2.0.0
//! (`tests/fixtures/plugin-api-2.0`) working in this host; plugins built against other
//! `taskhost-plugin-api` versions (a generated copy of plugin-api with only its version changed):
//! a newer 2.x minor loads, unless its manifest requires that minor, a 3.0 is refused; a 1.x
//! plugin (built against the frozen `tests/fixtures/plugin-api-1.0`) is refused; the frozen 2.0
//! boundary still being plugin-api's; a plugin whose manifest lists a class twice; and plugin
//! logs reaching the host's `tracing` subscriber.

use chrono::Utc;
use parking_lot::Mutex;
use serde_json::{json, Map};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use taskhost::{signals, task_backends, Error, TaskResultStatus};
use taskhost_e2e::external::{
    frozen_plugin_api_2_0, library_file_name, plugin_built_against_api,
    plugin_built_against_api_requiring, plugin_built_against_frozen_1_0,
    plugin_built_against_frozen_2_0, plugin_exporting_a_class_twice,
};
use taskhost_e2e::logs::{capture, Captured};
use taskhost_e2e::{plugin_file, workspace_root, TestConfig};
use taskhost_plugin_api::{
    Capabilities, ListRequest, TaskDescription, WaitRequest, PLUGIN_API_VERSION,
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

/// The canonical path of the library `lib_name` in the plugins dir `dir` (as messages name it).
fn file_in(dir: &Path, lib_name: &str) -> PathBuf {
    fs::canonicalize(dir)
        .unwrap()
        .join(library_file_name(lib_name))
}

fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn config(dir: &Path, alias: &str, backend: &str) -> TestConfig {
    TestConfig::new(&format!(
        "plugin_dirs = [{}]\n[tasks.{alias}]\nbackend = \"{backend}\"\n",
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

/// `result` is the SDK's default answer for an operation a backend does not override.
fn assert_not_supported<T: std::fmt::Debug>(result: Result<T, Error>, operation: &str) {
    match result {
        Err(Error::NotSupported(message)) => assert_eq!(
            message,
            format!("This backend does not support '{operation}'.")
        ),
        other => panic!("{operation}: expected NotSupported, got {other:?}"),
    }
}

/// The one-line message of the `InvalidTaskBackend` error loading `alias` (backend `backend`)
/// gives.
fn refusal(alias: &str, backend: &str) -> String {
    let message = match task_backends().get(alias) {
        Err(Error::InvalidTaskBackend {
            alias: got_alias,
            backend: got_backend,
            message,
        }) => {
            assert_eq!(got_alias.as_deref(), Some(alias));
            assert_eq!(got_backend.as_deref(), Some(backend));
            message
        }
        other => panic!("expected InvalidTaskBackend, got {other:?}"),
    };
    assert!(!message.contains('\n'), "not one line: {message}");
    message
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

/// The version tests below surround this host's plugin-api version: the frozen 2.0.0 is this
/// version or older, 2.2.0 is a newer minor of the same major (loaded; refused when it
/// requires 2.2), 3.0.0 another major and the frozen 1.0.0 an older one. Bumping plugin-api to
/// 2.2 or past means moving them (a newer minor, and `requires` naming it).
#[test]
fn the_version_tests_surround_this_hosts_plugin_api_version() {
    let host = parse_version(PLUGIN_API_VERSION);
    assert!(
        parse_version("2.0.0") <= host && host < parse_version("2.2.0"),
        "this host is plugin-api {PLUGIN_API_VERSION}: move the versions of the tests in \
         tests/e2e/abi.rs so the frozen copy is this version or older, one is a newer minor \
         within its major (and one requires that minor), and one is the next major"
    );
}

/// A plugin built against a newer 2.x plugin-api that requires nothing newer than what this
/// host offers loads into this host: abi_stable checks the major version only
/// (`is_loosely_compatible` for the package version every type carries in its layout), and the
/// layout is frozen for 2.x.
fn assert_other_2x_plugin_loads_and_works(version: &str) {
    assert_ne!(version, PLUGIN_API_VERSION, "not another version");
    let dir = plugins_dir_with(&plugin_built_against_api(version));
    let alias = format!("future_{}", version.replace('.', "_"));
    let _c = config(dir.path(), &alias, FUTURE);
    let backend = task_backends()
        .get(&alias)
        .unwrap_or_else(|e| panic!("a plugin built against plugin-api {version} was refused: {e}"));
    assert_eq!(backend.class_name(), "FutureBackend");
    let library = taskhost::plugin::Library::open(backend.library_path()).unwrap();
    assert_eq!(library.manifest().plugin_api_version, version);
    assert_eq!(library.manifest().requires, "2.0");
    assert_eq!(
        library.manifest().plugin_version,
        "taskhost-fixtures-future 0.0.0"
    );
    // Every call crosses the boundary and comes back as the plugin's own answer: its own
    // `enqueue`, the SDK's defaults for the rest.
    assert_eq!(backend.capabilities(), Capabilities::NONE);
    assert_not_supported(
        backend.enqueue_json(&description(&alias), vec![], Map::new()),
        "enqueue",
    );
    match backend.get_result("some-id") {
        Err(Error::NotSupported(message)) => assert_eq!(
            message,
            "This backend does not support retrieving or refreshing results."
        ),
        other => panic!("get_result: expected Django's NotSupported, got {other:?}"),
    }
    assert_not_supported(backend.results(), "results");
    assert_not_supported(backend.clear(), "clear");
    assert_not_supported(
        backend.list_results(&ListRequest::default()),
        "list_results",
    );
    assert_not_supported(
        backend.call_ext("taskhost.fixtures.future.compact", "{}"),
        "taskhost.fixtures.future.compact",
    );
    assert!(backend.check().unwrap().is_empty());
}

#[test]
fn a_plugin_built_against_a_newer_plugin_api_2_2_0_loads_and_works() {
    assert_other_2x_plugin_loads_and_works("2.2.0");
}

/// A plugin built against 2.2.0 whose manifest requires a 2.2 host (it uses a host service
/// added in 2.2) is refused by this 2.1 host, in one line naming both versions and the file.
#[test]
fn a_plugin_requiring_plugin_api_2_2_is_refused_in_one_line_naming_both_versions() {
    let dir = plugins_dir_with(&plugin_built_against_api_requiring("2.2.0", "2.2"));
    let _c = config(dir.path(), "needy", FUTURE);
    let message = refusal("needy", FUTURE);
    let file = file_in(dir.path(), "taskhost_fixtures_future");
    assert!(message.contains(&file.display().to_string()), "{message}");
    assert!(message.contains("2.2"), "{message}");
    assert!(message.contains(PLUGIN_API_VERSION), "{message}");
    let (major, minor, _) = parse_version(PLUGIN_API_VERSION);
    assert_eq!(
        message,
        format!(
            "Could not find backend '{FUTURE}': '{}' needs a host with taskhost-plugin-api 2.2 \
             or newer (it was built against 2.2.0), but this host uses taskhost-plugin-api \
             {PLUGIN_API_VERSION}; upgrade the host, or use a version of the plugin that works \
             with {major}.{minor} (alias 'needy')",
            file.display()
        )
    );
}

#[test]
fn a_plugin_built_against_plugin_api_3_is_refused_in_one_line_naming_both_versions() {
    let dir = plugins_dir_with(&plugin_built_against_api("3.0.0"));
    let _c = config(dir.path(), "future", FUTURE);
    let message = refusal("future", FUTURE);
    assert!(message.contains("3.0.0"), "{message}");
    assert!(message.contains(PLUGIN_API_VERSION), "{message}");
    let file = file_in(dir.path(), "taskhost_fixtures_future");
    assert!(message.contains(&file.display().to_string()), "{message}");
    assert_eq!(
        message,
        format!(
            "Could not find backend '{FUTURE}': '{}' was built against taskhost-plugin-api 3.0.0, \
             but this host uses taskhost-plugin-api {PLUGIN_API_VERSION}; rebuild the plugin \
             against taskhost-plugin-api 2.x (alias 'future')",
            file.display()
        )
    );
}

/// A real 1.x plugin (built against `tests/fixtures/plugin-api-1.0`, on the 1.x `Backend` of
/// JSON strings) is refused in one line telling to rebuild it against 2.x.
#[test]
fn a_1x_plugin_is_refused_in_one_line_saying_to_rebuild_against_2x() {
    let backend_name = "taskhost.fixtures.legacy.LegacyBackend";
    let dir = plugins_dir_with_lib(
        &plugin_built_against_frozen_1_0(),
        "taskhost_fixtures_legacy",
    );
    let _c = config(dir.path(), "legacy", backend_name);
    let message = refusal("legacy", backend_name);
    assert!(message.contains("1.0.0"), "{message}");
    assert!(message.contains(PLUGIN_API_VERSION), "{message}");
    assert!(message.contains("rebuild"), "{message}");
    assert!(message.contains("2.x"), "{message}");
    let file = file_in(dir.path(), "taskhost_fixtures_legacy");
    assert_eq!(
        message,
        format!(
            "Could not find backend '{backend_name}': '{}' was built against \
             taskhost-plugin-api 1.0.0, but this host uses taskhost-plugin-api \
             {PLUGIN_API_VERSION}; rebuild the plugin against taskhost-plugin-api 2.x \
             (alias 'legacy')",
            file.display()
        )
    );
}

/// The real 2.0 interface, not a relabelled copy of the current one: a small in-memory backend
/// built against `tests/fixtures/plugin-api-2.0` (plugin-api exactly as released at 2.0.0)
/// loads into this host and works through the host's API, signals included.
#[test]
fn a_plugin_built_against_the_frozen_2_0_sdk_loads_and_works_in_this_host() {
    let host = parse_version(PLUGIN_API_VERSION);
    assert!(
        host.0 == 2 && host >= (2, 0, 0),
        "this host is plugin-api {PLUGIN_API_VERSION}, not a 2.x"
    );
    let backend_name = "taskhost.fixtures.frozen.FrozenBackend";
    let dir = plugins_dir_with_lib(
        &plugin_built_against_frozen_2_0(),
        "taskhost_fixtures_frozen",
    );
    let _c = config(dir.path(), "frozen", backend_name);
    let backend = task_backends()
        .get("frozen")
        .unwrap_or_else(|e| panic!("the plugin built against the frozen 2.0 was refused: {e}"));
    assert_eq!(backend.class_name(), "FrozenBackend");
    let library = taskhost::plugin::Library::open(backend.library_path()).unwrap();
    assert_eq!(library.manifest().plugin_api_version, "2.0.0");
    assert_eq!(library.manifest().requires, "2.0");
    assert_eq!(
        library.manifest().plugin_version,
        "taskhost-fixtures-frozen 0.0.0"
    );
    assert_eq!(library.manifest().module_path, "taskhost.fixtures.frozen");
    assert!(backend.supports_defer() && backend.supports_priority());
    assert!(backend.supports_get_result());
    assert!(!backend.supports_queue_store() && !backend.supports_async_task());
    // A 2.0 plugin cannot read a uniqueness key (it ignores the record's `ext`): it declares no
    // `supports_unique`, so the host refuses the unique task instead of sending the key.
    let unique = backend
        .enqueue_json_unique(
            &description("frozen"),
            vec![],
            Map::new(),
            &taskhost::Unique::derived(),
        )
        .unwrap_err();
    assert!(matches!(unique, Error::InvalidTask(_)), "{unique:?}");
    assert!(
        unique.to_string().starts_with(&format!(
            "Backend 'frozen' ({backend_name}) does not support unique tasks"
        )),
        "{unique}"
    );

    // The signal the plugin sends through the host reaches a receiver connected here (other
    // tests may enqueue meanwhile: keep what this backend's class sent).
    let received: Arc<Mutex<Vec<(String, String, TaskResultStatus)>>> = Arc::default();
    let receiver = {
        let received = Arc::clone(&received);
        signals::task_enqueued.connect(move |event| {
            if event.sender == "FrozenBackend" {
                received.lock().push((
                    event.sender.to_string(),
                    event.task_result.id().to_string(),
                    event.task_result.status(),
                ));
            }
        })
    };
    let mut task = description("frozen");
    task.priority = 5;
    // Times cross the boundary in microseconds.
    let in_an_hour = (Utc::now() + chrono::Duration::hours(1)).timestamp_micros();
    task.run_after = chrono::DateTime::from_timestamp_micros(in_an_hour);
    let before = Utc::now();
    let enqueued = backend.enqueue_json(&task, vec![json!(1), json!("two")], {
        let mut kwargs = Map::new();
        kwargs.insert("k".into(), json!(3));
        kwargs
    });
    let after = Utc::now();
    signals::task_enqueued.disconnect(receiver);
    let enqueued = enqueued.unwrap();
    assert_eq!(enqueued.status(), TaskResultStatus::Ready);
    assert_eq!(enqueued.backend(), "frozen");
    assert_eq!(enqueued.args(), &[json!(1), json!("two")]);
    assert_eq!(enqueued.kwargs().get("k"), Some(&json!(3)));
    assert_eq!(enqueued.task().run_after, task.run_after);
    assert_eq!(enqueued.task().priority, 5);
    let enqueued_at = enqueued.enqueued_at().expect("enqueued_at is set");
    assert!(
        before.timestamp_micros() <= enqueued_at.timestamp_micros()
            && enqueued_at.timestamp_micros() <= after.timestamp_micros(),
        "{before} <= {enqueued_at} <= {after}"
    );
    assert_eq!(
        *received.lock(),
        vec![(
            "FrozenBackend".to_string(),
            enqueued.id().to_string(),
            TaskResultStatus::Ready
        )]
    );

    // What the plugin stored is what comes back: the arguments too, read from its record.
    let fetched = backend.get_result(enqueued.id()).unwrap();
    assert_eq!(fetched.data(), enqueued.data());
    assert_eq!(fetched.args(), &[json!(1), json!("two")]);
    assert_eq!(fetched.kwargs().get("k"), Some(&json!(3)));
    assert_eq!(fetched.enqueued_at(), Some(enqueued_at));
    match backend.get_result("no-such-id") {
        Err(Error::TaskResultDoesNotExist(id)) => assert_eq!(id, "no-such-id"),
        other => panic!("expected TaskResultDoesNotExist, got {other:?}"),
    }
    // What the 2.0 plugin does not override answers with the SDK's default.
    assert_not_supported(backend.results(), "results");
    assert_not_supported(
        backend.wait_for_tasks(&WaitRequest {
            queues: None,
            timeout_secs: 0.0,
        }),
        "wait_for_tasks",
    );
    assert_not_supported(
        backend.call_ext("taskhost.fixtures.frozen.compact", "{}"),
        "taskhost.fixtures.frozen.compact",
    );
    assert!(backend.check().unwrap().is_empty());
}

/// The files of plugin-api that make the boundary: the root module, vtables and records
/// (`src/abi/`), the macro generating a plugin's side (`src/export.rs`) and the string type
/// records share with the typed values (`src/text.rs`).
fn boundary_files(api: &Path) -> Vec<String> {
    let mut files: Vec<String> = fs::read_dir(api.join("src").join("abi"))
        .unwrap_or_else(|e| panic!("{}: {e}", api.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".rs"))
        .map(|name| format!("src/abi/{name}"))
        .collect();
    files.push("src/export.rs".to_string());
    files.push("src/text.rs".to_string());
    files.sort();
    files
}

/// Drift check: while plugin-api is 2.0.x, its boundary (`src/abi/*.rs`, `src/export.rs`) is
/// byte for byte the frozen 2.0 copy's, so the frozen-copy test above proves what 2.0 plugins
/// really are.
#[test]
fn the_frozen_2_0_boundary_is_the_one_plugin_api_still_has() {
    let (major, minor, _) = parse_version(PLUGIN_API_VERSION);
    if (major, minor) != (2, 0) {
        // A later 2.x may add to adapter.rs/export.rs (new operations through call_ext); the
        // frozen-copy test then checks the layouts at load time.
        return;
    }
    let current = workspace_root().join("plugin-api");
    let frozen = frozen_plugin_api_2_0();
    let (ours, theirs) = (boundary_files(&current), boundary_files(&frozen));
    assert_eq!(
        ours,
        theirs,
        "plugin-api {PLUGIN_API_VERSION} and the frozen 2.0 copy ({}) have different boundary \
         files",
        frozen.display()
    );
    let differ: Vec<&String> = ours
        .iter()
        .filter(|file| {
            fs::read(current.join(file)).unwrap() != fs::read(frozen.join(file)).unwrap()
        })
        .collect();
    assert!(
        differ.is_empty(),
        "plugin-api {PLUGIN_API_VERSION}'s {differ:?} differ from the frozen 2.0.0 copy in {}: \
         those files are the boundary every 2.x plugin is built against (records, vtables, root \
         module, export_plugin!). Once 2.0.0 is released they cannot change in 2.x: a change to \
         the frozen boundary needs a 3.0 (a new major and a new frozen copy). Before the release, \
         freeze the copy again instead (see its README.md)",
        frozen.display()
    );
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
        line.contains("plugin_target=\"taskhost_dummy::backend\""),
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
