//! `taskhost.backends.dummy.DummyBackend`: stores READY results and never runs them.
//!
//! Django's test backend, with Django's exact semantics: `enqueue` stamps `enqueued_at`, stores
//! the result, sends `task_enqueued` and returns it; the result stays READY forever. Stored
//! results can be fetched by id (`get_result`), listed (`results`, oldest first) and dropped
//! (`clear`). Results live in this backend instance, that is, per process (Django: per thread).
//!
//! Key types:
//! - [`DummyBackend`]: the backend class.
//! - [`plugin_module`]: the plugin root module, for the host, which links this backend in as a
//!   built-in. The plugin file is `taskhost-backends-dummy` (`cdylib/`), whose only code is
//!   `export_plugin!` over the same class: a file found in a plugin dir wins over the built-in.
//! - [`UPDATE`]: the extension operation tests use to play a worker changing a stored result.

mod backend;

pub use backend::{DummyBackend, UPDATE};

/// The module path this library serves (`taskhost.backends.dummy`).
pub const MODULE_PATH: &str = "taskhost.backends.dummy";

taskhost_plugin_api::builtin_plugin! {
    pub fn plugin_module;
    module_path: "taskhost.backends.dummy",
    classes: { "DummyBackend" => DummyBackend::new },
}

#[cfg(test)]
mod module_tests {
    use taskhost_plugin_api::abi::Manifest;

    #[test]
    fn the_built_in_module_serves_its_module_path() {
        let json = (super::plugin_module().manifest())();
        let manifest: Manifest = serde_json::from_str(json.as_str()).unwrap();
        assert_eq!(manifest.module_path, super::MODULE_PATH);
        assert_eq!(manifest.classes, ["DummyBackend"]);
    }
}
