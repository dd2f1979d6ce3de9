//! The plugin file of `taskhost.backends.immediate.ImmediateBackend`: the backend lives in `taskhost-immediate`
//! (`plugins/immediate/src/`), which the host also links in as a built-in; this crate only exports it.

taskhost_plugin_api::export_plugin! {
    module_path: "taskhost.backends.immediate",
    classes: { "ImmediateBackend" => taskhost_immediate::ImmediateBackend::new },
}
