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
//!   is rescued;
//! - job control, for a backend that offers it (`taskhost.cancel`, `taskhost.retry`): a READY
//!   task cancelled is FAILED, cancelled, and never claimed; a RUNNING one is reported by
//!   `taskhost.renew_leases` and never READY again; a FAILED one retried is READY, its errors
//!   kept.
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
//!
//! Every check is keyed to the capabilities the backend declares: what it says it cannot do is
//! skipped (or checked to be refused by the host's validation), never failed.

//!
//! For unit tests of a backend without any host (no library built, no plugin loaded), the test
//! double [`TestHost`] is re-exported here from `taskhost_plugin_api::testing` (the plugin SDK's
//! `testing` feature, which is all a plugin crate needs for it).

/// Fail the current check with a formatted reason unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(format!($($arg)+));
        }
    };
}

mod capabilities;
mod concurrency;
mod context;
mod control;
mod enqueue;
mod leases;
mod loading;
mod queue_store;
mod report;
mod robustness;
mod signals;
mod unique;

pub use report::{CheckOutcome, Report, Status};
pub use taskhost_plugin_api::testing::{LogRecord, TestHost};

use context::{Check, Ctx, Verdict};
use serde_json::{Map, Value};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

/// The alias the backend under test is configured as.
pub const ALIAS: &str = "conformance";

/// A conformance run against one built plugin library and one of its classes.
#[derive(Clone, Debug)]
pub struct Conformance {
    path: PathBuf,
    class: String,
    options: Map<String, Value>,
}

impl Conformance {
    /// A run against the library file at `library` (e.g. `target/debug/libacme_spool.so`),
    /// building the class `backend_name` with no options: the full dotted name (e.g.
    /// `acme.spool.SpoolBackend`), or the class name alone (`SpoolBackend`), which the suite
    /// completes with the module path the library declares in its manifest. A class the
    /// library does not export fails the `loads` check with the classes it does export.
    pub fn new(library: impl Into<PathBuf>, backend_name: &str) -> Self {
        Self {
            path: library.into(),
            class: backend_name.to_string(),
            options: Map::new(),
        }
    }

    /// The backend's `options` table, as `tasks.toml` would give it.
    pub fn options(mut self, options: Map<String, Value>) -> Self {
        self.options = options;
        self
    }

    /// The library file under test.
    pub fn library(&self) -> &std::path::Path {
        &self.path
    }

    /// The backend name under test, as given to [`Conformance::new`] (a class name alone is
    /// completed only when the suite runs).
    pub fn backend_name(&self) -> &str {
        &self.class
    }

    /// Run every check and report each by name. Never panics: a check that panics (or whose
    /// plugin panics) is reported as failed. Runs on a thread of its own (so the caller's
    /// transaction scopes and backend overrides do not leak in), with the caller's `tracing`
    /// subscriber.
    pub fn run(&self) -> Report {
        let dispatch = tracing::dispatcher::get_default(|d| d.clone());
        let this = self.clone();
        let spawned = std::thread::Builder::new()
            .name("taskhost-conformance".into())
            .spawn(move || tracing::dispatcher::with_default(&dispatch, || run_all(&this)));
        let joined = match spawned {
            Ok(handle) => handle.join().map_err(|p| panic_reason(p.as_ref())),
            Err(e) => Err(format!("could not start the suite's thread: {e}")),
        };
        joined.unwrap_or_else(|reason| Report {
            checks: vec![CheckOutcome::new("suite", Status::Failed(reason))],
        })
    }
}

/// Every check after `loads`, in the order they run.
fn all_checks() -> Vec<Check> {
    [
        loading::CHECKS,
        enqueue::CHECKS,
        capabilities::CHECKS,
        signals::CHECKS,
        concurrency::CHECKS,
        unique::CHECKS,
        robustness::CHECKS,
        queue_store::CHECKS,
        leases::CHECKS,
        control::CHECKS,
    ]
    .concat()
}

fn run_all(c: &Conformance) -> Report {
    let mut report = Report::default();
    let loaded = catch_unwind(AssertUnwindSafe(|| loading::load(c)))
        .unwrap_or_else(|p| Err(panic_reason(p.as_ref())));
    let ctx = match loaded {
        Ok(ctx) => ctx,
        Err(reason) => {
            report.push("loads", Status::Failed(reason));
            for check in all_checks() {
                report.push(
                    check.name,
                    Status::Skipped("the backend did not load".into()),
                );
            }
            return report;
        }
    };
    report.push("loads", Status::Passed);
    for check in all_checks() {
        report.push(check.name, run_one(check, &ctx));
    }
    report
}

fn run_one(check: Check, ctx: &Ctx) -> Status {
    match catch_unwind(AssertUnwindSafe(|| (check.run)(ctx))) {
        Ok(Ok(status)) => status,
        Ok(Err(reason)) => Status::Failed(reason),
        Err(payload) => Status::Failed(panic_reason(payload.as_ref())),
    }
}

fn panic_reason(payload: &(dyn std::any::Any + Send)) -> String {
    format!(
        "the check panicked: {}",
        taskhost_plugin_api::abi::guard::panic_message(payload)
    )
}

/// The verdict of a check that passed.
fn pass() -> Verdict {
    Ok(Status::Passed)
}

/// The verdict of a check that does not apply to this backend.
fn skip(reason: impl Into<String>) -> Verdict {
    Ok(Status::Skipped(reason.into()))
}
