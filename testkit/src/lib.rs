//! A conformance suite for taskhost backend plugins, run against a **built** plugin library from
//! the plugin author's own `cargo test`.
//!
//! It loads the library the way the host does — a copy in a fresh plugin dir, under its own file
//! name, resolved from the backend name, alias `conformance`, any queue — and checks the
//! contract of the plugin ABI, keyed to the capabilities the backend declares (what it says it
//! cannot do is skipped, or checked to be refused by the host):
//!
//! - loading: the library builds with the given options; the manifest matches the file; the
//!   capabilities read back; `check()` reports no error;
//! - enqueue: a well-formed READY (or, for a backend that runs at once, finished) result with
//!   the host's id, the task, queue, priority and arguments as sent; unique ids; `enqueue_many`;
//!   `get_result` round trips and `TaskResultDoesNotExist(id)` for an unknown id;
//! - capabilities: `run_after`, priorities and queues, async tasks stored — or refused by the
//!   host's validation when not declared;
//! - signals: `task_enqueued` once per task; `task_started` before `task_finished`;
//! - concurrency: 8 threads × 50 enqueues lose nothing;
//! - robustness: odd ids, unknown extension operations and empty queue-store calls answer with
//!   errors or NotSupported, never with a panic;
//! - queue stores: claims mark tasks RUNNING for one worker and never hand a task out twice
//!   (4 workers at once), `run_after` is honoured, completions are stored, a wrong lease token
//!   is fenced off, renewals report lost leases, release makes a task READY, an expired lease
//!   is rescued.
//!
//! ```toml
//! [dev-dependencies]
//! taskhost-testkit = "0.1"
//! serde_json = "1"
//! ```
//!
//! ```no_run
//! // tests/conformance.rs of a plugin crate whose `[lib] name = "acme_spool"`.
//! // `cargo test` does not build the cdylib for an integration test: run `cargo build` first.
//! use taskhost_testkit::Conformance;
//!
//! #[test]
//! fn spool_backend_conforms() {
//!     let library = concat!(env!("CARGO_MANIFEST_DIR"), "/target/debug/libacme_spool.so");
//!     let dir = std::env::temp_dir().join("spool-conformance");
//!     let options = serde_json::json!({ "dir": dir });
//!     // The class name alone works too ("SpoolBackend"): the library's manifest declares
//!     // its module path.
//!     let report = Conformance::new(library, "acme.spool.SpoolBackend")
//!         .options(options.as_object().unwrap().clone())
//!         .run();
//!     assert!(report.is_success(), "{report}");
//! }
//! ```
//!
//! The same suite runs from the command line: `taskhost plugin test PATH --class CLASS
//! [--options JSON] [--format json|text]` (exit 0 when no check failed), where `CLASS` is the
//! class name alone (`SpoolBackend`) or the full backend name (`acme.spool.SpoolBackend`).
//!
//! The suite leaves its probe tasks in the backend's store (unique task paths and queue
//! names): point a queue store at a scratch database.

pub use taskhost::conformance::*;
