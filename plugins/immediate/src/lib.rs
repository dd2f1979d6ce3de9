//! `taskhost.backends.immediate.ImmediateBackend`: runs each task at once, in the caller's thread.
//!
//! Django's default backend, with Django's exact semantics: `enqueue` stamps `enqueued_at`, sends
//! `task_enqueued`, marks the result RUNNING (one attempt, this backend's worker id), sends
//! `task_started`, runs the task through the host, records SUCCESSFUL or FAILED, sends
//! `task_finished` and returns the finished result. A failing task is recorded, never re-raised.
//! Results are not kept: `get_result` is not supported.
//!
//! Key types:
//! - [`ImmediateBackend`]: the backend class.
//! - [`plugin_module`]: the plugin root module, for the host, which links this backend in as a
//!   built-in. The plugin file is `taskhost-backends-immediate` (`cdylib/`), whose only code is
//!   `export_plugin!` over the same class: a file found in a plugin dir wins over the built-in.

mod backend;

pub use backend::ImmediateBackend;

/// The module path this library serves (`taskhost.backends.immediate`).
pub const MODULE_PATH: &str = "taskhost.backends.immediate";

taskhost_plugin_api::builtin_plugin! {
    pub fn plugin_module;
    module_path: "taskhost.backends.immediate",
    classes: { "ImmediateBackend" => ImmediateBackend::new },
}

#[cfg(test)]
mod module_tests {
    use taskhost_plugin_api::abi::Manifest;

    #[test]
    fn the_built_in_module_serves_its_module_path() {
        let json = (super::plugin_module().manifest())();
        let manifest: Manifest = serde_json::from_str(json.as_str()).unwrap();
        assert_eq!(manifest.module_path, super::MODULE_PATH);
        assert_eq!(manifest.classes, ["ImmediateBackend"]);
    }
}
