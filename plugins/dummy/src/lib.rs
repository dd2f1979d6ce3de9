//! `taskhost.backends.dummy.DummyBackend`: stores READY results and never runs them.
//!
//! Django's test backend, with Django's exact semantics: `enqueue` stamps `enqueued_at`, stores
//! the result, sends `task_enqueued` and returns it; the result stays READY forever. Stored
//! results can be fetched by id (`get_result`), listed (`results`, oldest first) and dropped
//! (`clear`). Results live in this backend instance, that is, per process (Django: per thread).
//!
//! Key types:
//! - [`DummyBackend`]: the backend class exported by this plugin library.
//! - [`UPDATE`]: the extension operation tests use to play a worker changing a stored result.

mod backend;

pub use backend::{DummyBackend, UPDATE};

taskhost_plugin_api::export_plugin! {
    module_path: "taskhost.backends.dummy",
    classes: { "DummyBackend" => DummyBackend::new },
}
