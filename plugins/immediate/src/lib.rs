//! `taskhost.backends.immediate.ImmediateBackend`: runs each task at once, in the caller's thread.
//!
//! Django's default backend, with Django's exact semantics: `enqueue` stamps `enqueued_at`, sends
//! `task_enqueued`, marks the result RUNNING (one attempt, this backend's worker id), sends
//! `task_started`, runs the task through the host, records SUCCESSFUL or FAILED, sends
//! `task_finished` and returns the finished result. A failing task is recorded, never re-raised.
//! Results are not kept: `get_result` is not supported.
//!
//! Key types:
//! - [`ImmediateBackend`]: the backend class exported by this plugin library.

mod backend;

pub use backend::ImmediateBackend;

taskhost_plugin_api::export_plugin! {
    module_path: "taskhost.backends.immediate",
    classes: { "ImmediateBackend" => ImmediateBackend::new },
}
