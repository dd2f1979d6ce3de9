//! `examples/custom-backend` (`acme.spool.SpoolBackend`) is built on its own, outside the
//! workspace and against `taskhost-plugin-api` alone, then dropped into a plugins dir: the host
//! loads it and uses it through its public API with no recompile.

use chrono::{SubsecRound, Utc};
use parking_lot::Mutex;
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use taskhost::{signals, task_backends, Error, TaskResultStatus};
use taskhost_e2e::external::{build_external, library_file_name};
use taskhost_e2e::{taskhost_bin, workspace_root, TestConfig};
use taskhost_plugin_api::PLUGIN_API_VERSION;
use taskhost_plugin_api::{TaskDescription, TaskResultData};

const BACKEND: &str = "acme.spool.SpoolBackend";

/// The example's library, built once per test process in `target/external/custom-backend`.
fn spool_library() -> PathBuf {
    build_external(
        "custom-backend",
        &workspace_root().join("examples").join("custom-backend"),
        "acme_spool",
    )
}

/// A temp dir holding `plugins/libacme_spool.so` (a fresh copy of the built library, as a user
/// would install it) and, once enqueued to, the spool file.
struct Install {
    dir: tempfile::TempDir,
}

impl Install {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        fs::create_dir(&plugins).unwrap();
        fs::copy(
            spool_library(),
            plugins.join(library_file_name("acme_spool")),
        )
        .unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn plugins(&self) -> PathBuf {
        self.path().join("plugins")
    }

    fn spool(&self) -> PathBuf {
        self.path().join("spool.jsonl")
    }

    /// A config with one alias on the spool backend; `options` is the body of its options table.
    fn config(&self, alias: &str, options: &str) -> TestConfig {
        TestConfig::new(&format!(
            "plugin_dirs = [{}]\n[tasks.{alias}]\nbackend = \"{BACKEND}\"\n\
             queues = [\"default\", \"reports\"]\n[tasks.{alias}.options]\n{options}",
            toml_str(&self.plugins().display().to_string()),
        ))
    }

    /// A config whose spool is `spool.jsonl` in this dir.
    fn spool_config(&self, alias: &str) -> TestConfig {
        let path = toml_str(&self.spool().display().to_string());
        self.config(alias, &format!("path = {path}\n"))
    }

    /// The spool's lines, each decoded.
    fn lines(&self) -> Vec<TaskResultData> {
        let text = fs::read_to_string(self.spool()).unwrap();
        assert!(text.ends_with('\n'), "the spool ends mid-line: {text:?}");
        text.lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("torn line {line:?}: {e}"))
            })
            .collect()
    }
}

fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn description(alias: &str, queue: &str, priority: i32) -> TaskDescription {
    TaskDescription {
        path: "e2e::custom_backend::send_report".into(),
        priority,
        queue_name: queue.into(),
        backend: alias.into(),
        run_after: None,
        takes_context: false,
        is_async: false,
        max_attempts: None,
        timeout_secs: None,
    }
}

fn kwargs(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

#[test]
fn a_backend_built_outside_the_workspace_loads_and_round_trips() {
    let install = Install::new();
    let _c = install.spool_config("spool");
    let backend = task_backends().get("spool").unwrap();
    assert_eq!(backend.class_name(), "SpoolBackend");
    assert_eq!(
        backend.library_path(),
        fs::canonicalize(install.plugins().join(library_file_name("acme_spool"))).unwrap()
    );
    assert!(backend.supports_defer() && backend.supports_priority());
    assert!(backend.supports_get_result() && !backend.supports_async_task());

    let enqueued = Arc::new(Mutex::new(Vec::new()));
    let receiver = {
        let enqueued = Arc::clone(&enqueued);
        signals::task_enqueued.connect(move |event| {
            if event.task_result.backend() == "spool" {
                let entry = (event.sender.to_string(), event.task_result.id().to_string());
                enqueued.lock().push(entry);
            }
        })
    };

    let mut deferred = description("spool", "reports", 10);
    deferred.run_after = Some((Utc::now() + chrono::Duration::hours(1)).trunc_subsecs(6));
    let first = backend
        .enqueue_json(
            &deferred,
            vec![json!(7), json!("weekly\nreport")],
            kwargs(json!({ "to": "ops" })),
        )
        .unwrap();
    let second = backend
        .enqueue_json(&description("spool", "default", 0), vec![], Map::new())
        .unwrap();
    signals::task_enqueued.disconnect(receiver);

    assert_eq!(first.status(), TaskResultStatus::Ready);
    assert!(first.enqueued_at().is_some());
    assert_eq!(first.args(), &[json!(7), json!("weekly\nreport")]);
    assert_eq!(first.kwargs().get("to"), Some(&json!("ops")));
    assert_eq!(first.task().run_after, deferred.run_after);
    assert_eq!(first.task().priority, 10);

    // get_result round-trips what enqueue returned; results() lists both, in order.
    assert_eq!(backend.get_result(first.id()).unwrap().data(), first.data());
    assert_eq!(
        backend.get_result(second.id()).unwrap().data(),
        second.data()
    );
    let all: Vec<TaskResultData> = backend
        .results()
        .unwrap()
        .iter()
        .map(|r| r.data().clone())
        .collect();
    assert_eq!(all, vec![first.data().clone(), second.data().clone()]);

    // One JSON line per enqueue, holding exactly the returned result.
    assert_eq!(install.lines(), all);

    // The plugin sent task_enqueued through the host, with its class as the sender.
    assert_eq!(
        *enqueued.lock(),
        vec![
            ("SpoolBackend".to_string(), first.id().to_string()),
            ("SpoolBackend".to_string(), second.id().to_string()),
        ]
    );

    match backend.get_result("no-such-id") {
        Err(Error::TaskResultDoesNotExist(id)) => assert_eq!(id, "no-such-id"),
        other => panic!("expected TaskResultDoesNotExist, got {other:?}"),
    }
    // The host validates against the plugin's capabilities before calling it.
    let mut is_async = description("spool", "default", 0);
    is_async.is_async = true;
    assert!(matches!(
        backend.enqueue_json(&is_async, vec![], Map::new()),
        Err(Error::InvalidTask(_))
    ));
    assert_eq!(install.lines().len(), 2);
    assert_eq!(backend.check().unwrap(), vec![]);
    assert!(matches!(backend.clear(), Err(Error::NotSupported(_))));
}

#[test]
fn a_missing_path_option_is_an_invalid_backend_naming_the_option_and_the_alias() {
    let install = Install::new();
    let _c = install.config("nopath", "");
    match task_backends().get("nopath") {
        Err(Error::InvalidTaskBackend {
            alias,
            backend,
            message,
        }) => {
            assert_eq!(alias.as_deref(), Some("nopath"));
            assert_eq!(backend.as_deref(), Some(BACKEND));
            assert!(message.contains("(alias 'nopath')"), "{message}");
            assert!(message.contains("option 'path' is required"), "{message}");
            assert!(!message.contains('\n'), "{message}");
        }
        other => panic!("expected InvalidTaskBackend, got {other:?}"),
    }
}

#[test]
fn concurrent_enqueues_are_never_lost_or_torn() {
    const THREADS: usize = 8;
    const EACH: usize = 50;
    let install = Install::new();
    let _c = install.spool_config("busy");
    // The config override is per thread: share the loaded backend with the workers.
    let backend = task_backends().get("busy").unwrap();
    let returned: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let backend = Arc::clone(&backend);
                scope.spawn(move || {
                    (0..EACH)
                        .map(|i| {
                            let padding = "x".repeat(200 * (i % 7));
                            backend
                                .enqueue_json(
                                    &description("busy", "default", 0),
                                    vec![json!(t), json!(i), json!(padding)],
                                    Map::new(),
                                )
                                .unwrap()
                                .id()
                                .to_string()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });

    let lines = install.lines();
    assert_eq!(lines.len(), THREADS * EACH);
    let ids: HashSet<&str> = lines.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), THREADS * EACH, "an id was written twice");
    assert_eq!(ids, returned.iter().map(String::as_str).collect());
    let pairs: HashSet<(u64, u64)> = lines
        .iter()
        .map(|r| {
            let (t, i, _padding) = r.args.parse::<(u64, u64, String)>().unwrap();
            (t, i)
        })
        .collect();
    let expected: HashSet<(u64, u64)> = (0..THREADS as u64)
        .flat_map(|t| (0..EACH as u64).map(move |i| (t, i)))
        .collect();
    assert_eq!(pairs, expected);
    assert!(lines.iter().all(|r| r.status == TaskResultStatus::Ready));
    assert_eq!(backend.results().unwrap().len(), THREADS * EACH);
}

/// The README's setup: `tasks.toml` with relative `plugin_dirs` and a relative spool path, both
/// resolved against the config file's dir; `taskhost check` and `taskhost backends` accept it.
#[test]
fn the_readme_setup_works_with_relative_paths_and_the_cli() {
    let install = Install::new();
    let config = install.path().join("tasks.toml");
    fs::write(
        &config,
        "plugin_dirs = [\"plugins\"]\n\n[tasks.default]\nbackend = \"acme.spool.SpoolBackend\"\n\
         [tasks.default.options]\npath = \"spool.jsonl\"\n",
    )
    .unwrap();

    let _guard = taskhost::override_task_backends(taskhost::Config::from_file(&config).unwrap());
    let backend = task_backends().get("default").unwrap();
    let result = backend
        .enqueue_json(
            &description("default", "default", 0),
            vec![json!(1)],
            Map::new(),
        )
        .unwrap();
    assert_eq!(
        install
            .lines()
            .iter()
            .map(|r| r.id.clone())
            .collect::<Vec<_>>(),
        vec![result.id().to_string()]
    );

    let run = |command: &str| {
        let output = std::process::Command::new(taskhost_bin())
            .arg("--config")
            .arg(&config)
            .arg(command)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "taskhost {command} failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };
    let check = run("check");
    assert!(
        check.contains("1 backend(s) OK") && check.contains("default (acme.spool.SpoolBackend)"),
        "{check}"
    );
    let backends = run("backends");
    let listed = format!(
        "{}: module acme.spool classes [SpoolBackend] plugin-api {PLUGIN_API_VERSION} \
         (acme-spool 0.1.0)",
        library_file_name("acme_spool")
    );
    assert!(backends.contains(&listed), "{backends}");
}

/// Issue 18: a backend without `taskhost.wait_finished` (this one, built against the plugin
/// API alone) is waited on by reading the result at a growing interval: the wait ends once
/// the spool says the result finished (a line appended by someone playing a worker), or fails
/// at its timeout.
#[test]
fn wait_on_a_backend_without_wait_finished_reads_the_result_until_it_finishes() {
    use std::io::Write as _;
    use std::time::Duration;
    let install = Install::new();
    let _c = install.spool_config("spool");
    let backend = task_backends().get("spool").unwrap();
    let err = backend
        .call_ext(taskhost_plugin_api::WAIT_FINISHED, "{}")
        .unwrap_err();
    assert!(matches!(err, Error::NotSupported(_)), "{err:?}");
    let mut result = backend
        .enqueue_json(
            &description("spool", "default", 0),
            vec![json!(1)],
            Map::new(),
        )
        .unwrap();
    let timeout = Duration::from_millis(100);
    assert_eq!(
        result.wait(timeout).unwrap_err(),
        Error::WaitTimeout {
            id: result.id().to_string(),
            timeout
        }
    );
    let mut finished = result.data().clone();
    finished.status = TaskResultStatus::Successful;
    finished.finished_at = Some(Utc::now().trunc_subsecs(6));
    finished.return_value = Some(taskhost::Json::encode(&"done").unwrap());
    let spool = install.spool();
    let worker = std::thread::spawn(move || {
        // Long enough for the wait below to read the READY line first (it passes either way).
        std::thread::sleep(Duration::from_millis(100));
        let line = format!("{}\n", serde_json::to_string(&finished).unwrap());
        let mut file = fs::OpenOptions::new().append(true).open(spool).unwrap();
        file.write_all(line.as_bytes()).unwrap();
    });
    let waited = result.wait(Duration::from_secs(60)).unwrap();
    assert_eq!(waited.status(), TaskResultStatus::Successful);
    assert_eq!(waited.raw_return_value(), Some(&json!("done")));
    worker.join().unwrap();
}
