//! A real SQLite queue store behind the real database plugin file, filled through the host's
//! public API, for the dashboard's tests.

#![allow(dead_code)] // each test binary uses its own part

use serde_json::{json, Map};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use taskhost::{Backend, Config, TaskBackends};
use taskhost_plugin_api::{
    ClaimRequest, Completion, Json, TaskDescription, TaskError, TaskOutcome,
};

/// The dir of the built plugin files (the database plugin built once per test process).
pub fn plugin_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| taskhost_e2e::build::build_packages(&["taskhost-backends-database"], false))
}

/// A fresh SQLite store in a temp dir, as alias `default` (any queue).
pub struct Store {
    pub dir: tempfile::TempDir,
    pub backends: Arc<TaskBackends>,
}

impl Store {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "plugin_dirs = [{plugins}]\n\
             [tasks.default]\n\
             backend = \"taskhost.backends.database.DatabaseBackend\"\n\
             queues = []\n\
             [tasks.default.options]\n\
             url = \"sqlite://tasks.db\"\n",
            plugins = json!(plugin_dir().display().to_string()),
        );
        let file = dir.path().join("tasks.toml");
        std::fs::write(&file, &text).unwrap();
        let config = Config::from_toml_str(&text, Some(&file), dir.path()).unwrap();
        Self {
            dir,
            backends: Arc::new(TaskBackends::new(config)),
        }
    }

    pub fn backend(&self) -> Arc<Backend> {
        self.backends.get("default").unwrap()
    }

    /// Enqueue `n` runs of `path` on `queue`, with args `[i]` and kwargs `{"n": i}`; their ids
    /// in enqueue order.
    pub fn enqueue(&self, n: usize, queue: &str, path: &str) -> Vec<String> {
        let backend = self.backend();
        (0..n)
            .map(|i| {
                let task = TaskDescription {
                    queue_name: queue.into(),
                    ..TaskDescription::new(path)
                };
                let mut kwargs = Map::new();
                kwargs.insert("n".into(), json!(i));
                backend
                    .enqueue_json(&task, vec![json!(i)], kwargs)
                    .unwrap()
                    .id()
                    .to_string()
            })
            .collect()
    }

    /// Claim up to `n` ready tasks of `queue` as worker `worker-1` and finish them: successful
    /// (return value `"done"`) or failed (a `std::io::Error` with a traceback). Their ids.
    pub fn finish(&self, n: u32, queue: &str, succeed: bool) -> Vec<String> {
        let backend = self.backend();
        let claimed = backend
            .claim(&ClaimRequest {
                worker_id: "worker-1".into(),
                queues: Some(vec![queue.into()]),
                exclude_queues: Vec::new(),
                limit: n,
                lease_secs: 60.0,
                start_now: None,
            })
            .unwrap();
        let outcome = || match succeed {
            true => TaskOutcome::Successful {
                return_value: Json::encode(&"done").unwrap(),
            },
            false => TaskOutcome::Failed {
                error: TaskError {
                    exception_class_path: "std::io::Error".into(),
                    traceback: "at app::tasks::send (src/tasks.rs:12)\nstd::io::Error: disk full\n"
                        .into(),
                },
            },
        };
        let completions: Vec<Completion> = claimed
            .iter()
            .map(|c| Completion {
                id: c.result.id.to_string(),
                worker_id: "worker-1".into(),
                lease_token: c.lease_token,
                outcome: outcome(),
                retry_at: None,
                started_at: None,
            })
            .collect();
        let ids = completions.iter().map(|c| c.id.clone()).collect();
        let acks = backend.complete(completions).unwrap();
        assert!(acks.iter().all(|a| a.applied));
        ids
    }

    /// How many results the store holds, by listing them all.
    pub fn count(&self) -> usize {
        self.backend().results().unwrap().len()
    }
}
