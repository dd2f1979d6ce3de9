//! The plugin file of `taskhost.backends.dummy.DummyBackend`: the backend lives in `taskhost-dummy`
//! (`plugins/dummy/src/`), which the host also links in as a built-in; this crate only exports it.

taskhost_plugin_api::export_plugin! {
    module_path: "taskhost.backends.dummy",
    classes: { "DummyBackend" => taskhost_dummy::DummyBackend::new },
}
