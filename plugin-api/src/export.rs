//! [`export_plugin!`](crate::export_plugin): the root module of a plugin library, in one macro.

/// Export a plugin library's root module.
///
/// Names the dotted module path the library serves (it must match the library file: module path
/// `acme.redis` ⇒ `[lib] name = "acme_redis"`) and, for each exported class, a constructor
/// `fn(BackendParams, HostBox) -> Result<impl Backend, PluginError>`. The macro writes the
/// manifest, routes `new_backend` to the constructor, installs the log forwarder, and runs
/// everything inside the panic guard.
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
        classes: { $( $class:literal => $ctor:path ),+ $(,)? } $(,)?
    ) => {
        const _: () = {
            use $crate::abi_stable::std_types::{RResult, RStr, RString};

            extern "C" fn __taskhost_manifest() -> RString {
                $crate::guard::guard_or(RString::new(), || {
                    let manifest = $crate::Manifest {
                        module_path: ::std::string::String::from($module_path),
                        classes: ::std::vec![$(::std::string::String::from($class)),+],
                        plugin_api_version: ::std::string::String::from(
                            $crate::PLUGIN_API_VERSION,
                        ),
                        plugin_version: ::std::format!(
                            "{} {}",
                            ::std::env!("CARGO_PKG_NAME"),
                            ::std::env!("CARGO_PKG_VERSION")
                        ),
                    };
                    $crate::__private::manifest_json(&manifest)
                })
            }

            extern "C" fn __taskhost_new_backend(
                class: RStr<'_>,
                params: RStr<'_>,
                host: $crate::HostBox,
            ) -> RResult<$crate::BackendBox, $crate::PluginError> {
                $crate::guard(move || {
                    $crate::log::install_forwarder(&host);
                    let params = $crate::__private::decode_params(params.as_str())?;
                    match class.as_str() {
                        $(
                            $class => $ctor(params, host).map(|backend| {
                                $crate::Backend_TO::from_value(
                                    backend,
                                    $crate::abi_stable::sabi_trait::TD_Opaque,
                                )
                            }),
                        )+
                        other => ::std::result::Result::Err($crate::__private::unknown_class(
                            $module_path,
                            other,
                            &[$($class),+],
                        )),
                    }
                })
            }

            extern "C" fn __taskhost_erased_root() -> $crate::abi_stable::library::RootModuleResult {
                $crate::abi_stable::library::__call_root_module_loader(|| {
                    $crate::abi_stable::prefix_type::PrefixTypeTrait::leak_into_prefix(
                        $crate::PluginModule {
                            manifest: __taskhost_manifest,
                            new_backend: __taskhost_new_backend,
                        },
                    )
                })
            }

            // The symbol abi_stable's loader looks up (what `#[export_root_module]` emits; that
            // attribute needs `abi_stable` as a direct dependency, this macro does not).
            // `plugin-api`'s tests check the name against abi_stable's constant.
            #[unsafe(no_mangle)]
            pub static _1as_0lib_1header_0root_bmodule_bloader:
                $crate::abi_stable::library::LibHeader = unsafe {
                // SAFETY: the constructor returns the root module type `PluginModuleRef`, which
                // is the type passed here, as `#[export_root_module]` guarantees the same way.
                $crate::abi_stable::library::LibHeader::from_constructor::<$crate::PluginModuleRef>(
                    __taskhost_erased_root,
                    $crate::abi_stable::library::CheckTypeLayout::Yes,
                )
            };
        };
    };
}

#[doc(hidden)]
pub mod __private {
    use crate::{wire::BackendParams, ErrorKind, Manifest, PluginError};
    use abi_stable::std_types::RString;

    pub fn manifest_json(manifest: &Manifest) -> RString {
        RString::from(serde_json::to_string(manifest).unwrap_or_default())
    }

    pub fn decode_params(params: &str) -> Result<BackendParams, PluginError> {
        serde_json::from_str(params).map_err(|e| PluginError::invalid_request("backend params", e))
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
