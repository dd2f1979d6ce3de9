//! The reference backends compiled into the host (decision 013): Immediate and Dummy.
//!
//! Each is the root module its plugin file exports, built by
//! [`taskhost_plugin_api::builtin_plugin!`] from the same backend crate, so the host reaches it
//! through the same ABI module and vtable as a loaded file — same manifest, class routing,
//! adapter and panic guard. A built-in is only the fallback: when a plugin dir has a file for
//! the library, that file is loaded (or refused) instead (see [`super::resolve::locate_library`]).

use taskhost_plugin_api::abi::PluginModuleRef;

/// One backend library compiled into the host.
#[derive(Clone, Copy)]
pub struct BuiltIn {
    /// The module path it serves, e.g. `taskhost.backends.immediate`.
    pub module_path: &'static str,
    /// Builds its root module (called once per process; see [`super::Library::built_in`]).
    pub module: fn() -> PluginModuleRef,
}

impl std::fmt::Debug for BuiltIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltIn")
            .field("module_path", &self.module_path)
            .finish_non_exhaustive()
    }
}

/// Every built-in, by module path.
pub const BUILT_INS: &[BuiltIn] = &[
    BuiltIn {
        module_path: taskhost_immediate::MODULE_PATH,
        module: taskhost_immediate::plugin_module,
    },
    BuiltIn {
        module_path: taskhost_dummy::MODULE_PATH,
        module: taskhost_dummy::plugin_module,
    },
];

/// The built-in serving `module_path`, if there is one.
pub fn built_in(module_path: &str) -> Option<&'static BuiltIn> {
    BUILT_INS.iter().find(|b| b.module_path == module_path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Backend, PluginSearch};
    use crate::config::{BackendConfig, ConfigSource};
    use crate::plugin::Library;

    fn load(backend: &str, dirs: &[std::path::PathBuf]) -> crate::Result<Backend> {
        let search = PluginSearch {
            dirs,
            allow_writable: false,
            config_dir: None,
            pins: None,
            config_file: None,
            config_source: ConfigSource::BuiltInDefault,
        };
        Backend::load(
            "default",
            &BackendConfig::new(backend),
            &search,
            &Default::default(),
        )
    }

    #[test]
    fn with_no_file_in_the_plugin_dirs_the_built_ins_load_through_the_abi_module() {
        let empty = tempfile::tempdir().unwrap();
        let dirs = [empty.path().to_path_buf()];
        let immediate = load("taskhost.backends.immediate.ImmediateBackend", &dirs).unwrap();
        assert!(immediate.is_built_in());
        assert_eq!(immediate.library_file(), None);
        assert_eq!(
            immediate.library_path(),
            std::path::Path::new("<built in: taskhost.backends.immediate>")
        );
        assert!(!immediate.supports_defer() && immediate.supports_async_task());
        let dummy = load("taskhost.backends.dummy.DummyBackend", &[]).unwrap();
        assert!(dummy.is_built_in());
        assert!(dummy.supports_defer() && dummy.supports_priority());
        assert_eq!(dummy.class_name(), "DummyBackend");
    }

    #[test]
    fn a_built_in_library_is_opened_once_and_says_what_it_is() {
        let first = Library::built_in(built_in("taskhost.backends.dummy").unwrap()).unwrap();
        let again = Library::built_in(built_in("taskhost.backends.dummy").unwrap()).unwrap();
        assert!(std::sync::Arc::ptr_eq(&first, &again));
        assert!(first.is_built_in() && first.file().is_none());
        assert_eq!(first.location(), "the built-in taskhost.backends.dummy");
        assert_eq!(first.manifest().classes, ["DummyBackend"]);
        assert!(first
            .manifest()
            .plugin_version
            .starts_with("taskhost-dummy "));
    }

    #[test]
    fn built_ins_keep_their_errors_and_class_checks() {
        let err = load("taskhost.backends.dummy.NoSuchBackend", &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Could not find backend 'taskhost.backends.dummy.NoSuchBackend': module \
             'taskhost.backends.dummy' has no class 'NoSuchBackend'; it exports: DummyBackend \
             (alias 'default')"
        );
        let mut config = BackendConfig::new("taskhost.backends.dummy.DummyBackend");
        config.options.insert("nope".into(), serde_json::json!(1));
        let search = PluginSearch {
            dirs: &[],
            allow_writable: false,
            config_dir: None,
            pins: None,
            config_file: None,
            config_source: ConfigSource::BuiltInDefault,
        };
        let err = Backend::load("default", &config, &search, &Default::default()).unwrap_err();
        assert!(
            err.to_string().contains("This backend takes no options."),
            "{err}"
        );
    }

    #[test]
    fn a_backend_that_is_not_built_in_names_the_install_command() {
        let empty = tempfile::tempdir().unwrap();
        let err = load(
            "taskhost.backends.database.DatabaseBackend",
            &[empty.path().to_path_buf()],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("no config file was found"), "{err}");
        assert!(
            err.ends_with(&format!(
                "; install it with `taskhost plugin install taskhost.backends.database --dir {}` \
                 (alias 'default')",
                empty.path().display()
            )),
            "{err}"
        );
    }

    #[test]
    fn immediate_and_dummy_are_built_in_and_nothing_else() {
        let paths: Vec<&str> = BUILT_INS.iter().map(|b| b.module_path).collect();
        assert_eq!(
            paths,
            ["taskhost.backends.immediate", "taskhost.backends.dummy"]
        );
        assert!(built_in("taskhost.backends.database").is_none());
        assert!(built_in("taskhost.backends").is_none());
        assert_eq!(
            built_in("taskhost.backends.dummy").unwrap().module_path,
            "taskhost.backends.dummy"
        );
    }
}
