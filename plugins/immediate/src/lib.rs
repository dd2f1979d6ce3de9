//! `taskhost.backends.immediate.ImmediateBackend`: Django's default backend, which runs each
//! task at once in the caller's thread. The host links it in as a built-in ([`plugin_module`]);
//! the plugin file (`cdylib/`) exports the same class, and a file in a plugin dir wins.

mod backend;

pub use backend::ImmediateBackend;

/// The module path this library serves.
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
