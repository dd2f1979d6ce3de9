//! [`export_plugin!`](crate::export_plugin): a plugin library's root module, in one macro;
//! [`builtin_plugin!`](crate::builtin_plugin): the same module for a plugin linked into the host.

/// Export a plugin library: its module path and, for each class, the constructor of a
/// [`crate::Backend`].
///
/// The module path must match the library file: module path `acme.spool` ⇒ `[lib] name =
/// "acme_spool"` (and `crate-type = ["cdylib"]`). A constructor is any
/// `fn(BackendParams, Host) -> Result<impl Backend, PluginError>`. The macro writes the stable
/// ABI adapter: the manifest, `new_backend` routing each class to its constructor, the panic
/// guard around every call into your code, and the forwarding of your `tracing` events to the
/// host.
///
/// A plugin that uses a host service added in a later 2.x says which with `requires: "2.N"`;
/// older hosts then refuse it in one line naming both versions.
///
/// ```ignore
/// taskhost_plugin_api::export_plugin! {
///     module_path: "acme.spool",
///     classes: { "SpoolBackend" => SpoolBackend::new },
/// }
/// ```
#[macro_export]
macro_rules! export_plugin {
    (
        module_path: $module_path:literal,
        classes: { $( $class:literal => $ctor:path ),+ $(,)? }
        $(, requires: $requires:literal)? $(,)?
    ) => {
        const _: () = {
            $crate::__plugin_module! {
                forward_logs: true,
                module_path: $module_path,
                classes: { $( $class => $ctor ),+ }
                $(, requires: $requires)?
            }

            extern "C" fn __taskhost_erased_root() -> $crate::abi_stable::library::RootModuleResult {
                $crate::abi_stable::library::__call_root_module_loader(__taskhost_module)
            }

            // The symbol abi_stable's loader looks up (what `#[export_root_module]` emits; that
            // attribute needs `abi_stable` as a direct dependency, this macro does not).
            // `plugin-api`'s tests check the name against abi_stable's constant.
            #[unsafe(no_mangle)]
            pub static _1as_0lib_1header_0root_bmodule_bloader:
                $crate::abi_stable::library::LibHeader = unsafe {
                // SAFETY: the constructor returns the root module type `PluginModuleRef`, which
                // is the type passed here, as `#[export_root_module]` guarantees the same way.
                $crate::abi_stable::library::LibHeader::from_constructor::<$crate::abi::PluginModuleRef>(
                    __taskhost_erased_root,
                    $crate::abi_stable::library::CheckTypeLayout::Yes,
                )
            };
        };
    };
}

/// A plugin compiled into the host as a built-in: the same root module
/// [`export_plugin!`](crate::export_plugin) exports, returned by a function instead of being
/// exported as the library's symbol.
///
/// It defines `fn $name() -> PluginModuleRef` (with the visibility given). The host calls it
/// once and reaches the backends through the module's `new_backend`, exactly as it reaches a
/// loaded file's: the same manifest, the same class routing, the same adapter, the same panic
/// guard. Two differences, both because the plugin shares the host's process *and its copies of
/// the crates*: no `#[no_mangle]` symbol is emitted (so any number of built-ins link into one
/// binary), and no log forwarder is installed (the plugin's `tracing` events already reach the
/// host's subscriber; a forwarder would send them round in a loop).
///
/// Each call leaks one small module record: call it once and keep the result.
///
/// ```ignore
/// taskhost_plugin_api::builtin_plugin! {
///     pub fn plugin_module;
///     module_path: "taskhost.backends.dummy",
///     classes: { "DummyBackend" => DummyBackend::new },
/// }
/// ```
#[macro_export]
macro_rules! builtin_plugin {
    (
        $vis:vis fn $name:ident;
        module_path: $module_path:literal,
        classes: { $( $class:literal => $ctor:path ),+ $(,)? }
        $(, requires: $requires:literal)? $(,)?
    ) => {
        /// This library's plugin root module, for a host that links it in as a built-in.
        $vis fn $name() -> $crate::abi::PluginModuleRef {
            $crate::__plugin_module! {
                forward_logs: false,
                module_path: $module_path,
                classes: { $( $class => $ctor ),+ }
                $(, requires: $requires)?
            }
            __taskhost_module()
        }
    };
}

/// What [`export_plugin!`](crate::export_plugin) and [`builtin_plugin!`](crate::builtin_plugin)
/// share: the manifest, `new_backend` routing each class to its constructor inside the panic
/// guard, and `__taskhost_module()`, which builds the root module from them.
#[doc(hidden)]
#[macro_export]
macro_rules! __plugin_module {
    (
        forward_logs: $forward_logs:literal,
        module_path: $module_path:literal,
        classes: { $( $class:literal => $ctor:path ),+ $(,)? }
        $(, requires: $requires:literal)? $(,)?
    ) => {
        use $crate::abi_stable::std_types::{RResult, RStr, RString};

        extern "C" fn __taskhost_manifest() -> RString {
            #[allow(unused_mut)]
            let mut requires = $crate::abi::Manifest::default_requires();
            $( requires = ::std::string::String::from($requires); )?
            $crate::__private::manifest_json(
                $module_path,
                &[$($class),+],
                ::std::concat!(
                    ::std::env!("CARGO_PKG_NAME"),
                    " ",
                    ::std::env!("CARGO_PKG_VERSION")
                ),
                requires,
            )
        }

        extern "C" fn __taskhost_new_backend(
            class: RStr<'_>,
            params: RStr<'_>,
            host: $crate::abi::AbiHostBox,
        ) -> RResult<$crate::abi::AbiBackendBox, $crate::PluginError> {
            $crate::abi::guard::guard(move || {
                let (params, host) =
                    $crate::__private::prepare(params.as_str(), host, $forward_logs)?;
                match class.as_str() {
                    $(
                        $class => $ctor(params, host).map($crate::abi::adapter::export_backend),
                    )+
                    other => ::std::result::Result::Err($crate::__private::unknown_class(
                        $module_path,
                        other,
                        &[$($class),+],
                    )),
                }
            })
        }

        fn __taskhost_module() -> $crate::abi::PluginModuleRef {
            $crate::abi_stable::prefix_type::PrefixTypeTrait::leak_into_prefix(
                $crate::abi::PluginModule {
                    manifest: __taskhost_manifest,
                    new_backend: __taskhost_new_backend,
                },
            )
        }
    };
}

#[doc(hidden)]
pub mod __private {
    use crate::abi::{adapter::host_from_abi, guard::guard_or, AbiHostBox, Manifest};
    use crate::{BackendParams, ErrorKind, Host, PluginError, PLUGIN_API_VERSION};
    use abi_stable::std_types::RString;

    pub fn manifest_json(
        module_path: &str,
        classes: &[&str],
        plugin_version: &str,
        requires: String,
    ) -> RString {
        guard_or(RString::new(), || {
            let manifest = Manifest {
                module_path: module_path.to_string(),
                classes: classes.iter().map(|c| c.to_string()).collect(),
                plugin_api_version: PLUGIN_API_VERSION.to_string(),
                plugin_version: plugin_version.to_string(),
                requires,
            };
            RString::from(serde_json::to_string(&manifest).unwrap_or_default())
        })
    }

    /// Reads the params and wraps the host object, installing the log forwarder on first use
    /// when `forward_logs` (a loaded file; a built-in shares the host's `tracing`).
    pub fn prepare(
        params: &str,
        host: AbiHostBox,
        forward_logs: bool,
    ) -> Result<(BackendParams, Host), PluginError> {
        let host = host_from_abi(host);
        if forward_logs {
            crate::log::install_forwarder(&host);
        }
        let params = serde_json::from_str(params).map_err(|e| {
            PluginError::invalid_request(format!("unreadable backend parameters: {e}"))
        })?;
        Ok((params, host))
    }

    pub fn unknown_class(module_path: &str, class: &str, classes: &[&str]) -> PluginError {
        PluginError::new(
            ErrorKind::UNKNOWN_CLASS,
            format!(
                "module '{module_path}' has no class '{class}'; it exports: {}",
                classes.join(", ")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_exported_symbol_is_the_one_abi_stable_loads() {
        assert_eq!(
            abi_stable::library::ROOT_MODULE_LOADER_NAME,
            "_1as_0lib_1header_0root_bmodule_bloader"
        );
    }
}
