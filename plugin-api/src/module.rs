//! The root module every plugin library exports, and its manifest.

use crate::{BackendBox, HostBox, PluginError};
use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings,
    sabi_types::VersionStrings,
    std_types::{RResult, RStr, RString},
    StableAbi,
};
use serde::{Deserialize, Serialize};

/// The name under which every taskhost plugin registers its root module. A library whose root
/// module has another name is an abi_stable library, but not a taskhost plugin.
pub const ABI_NAME: &str = "taskhost_plugin";

/// The version of this crate (the plugin ABI) a plugin was built against. A host accepts plugins
/// of the same major version; see `docs/decisions/001-plugin-abi.md`.
pub const PLUGIN_API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The root module of a plugin library: exported with [`crate::export_plugin!`].
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
#[sabi(missing_field(panic))]
pub struct PluginModule {
    /// The library's [`Manifest`] as JSON: its module path and the classes it exports.
    pub manifest: extern "C" fn() -> RString,

    /// Build a backend: `class` is one of the manifest's classes, `params` a
    /// [`crate::wire::BackendParams`] as JSON, `host` the callbacks for this backend.
    #[sabi(last_prefix_field)]
    pub new_backend: extern "C" fn(
        class: RStr<'_>,
        params: RStr<'_>,
        host: HostBox,
    ) -> RResult<BackendBox, PluginError>,
}

impl RootModule for PluginModuleRef {
    declare_root_module_statics! {PluginModuleRef}
    const BASE_NAME: &'static str = ABI_NAME;
    const NAME: &'static str = ABI_NAME;
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// What a plugin library says about itself.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The dotted module path the library serves, e.g. `taskhost.backends.immediate`. Must match
    /// the library's file name (dots become underscores).
    pub module_path: String,
    /// The class names it exports, e.g. `["ImmediateBackend"]`.
    pub classes: Vec<String>,
    /// The plugin-api version it was built against ([`PLUGIN_API_VERSION`]).
    pub plugin_api_version: String,
    /// The plugin crate's own name and version, for `taskhost backends`.
    #[serde(default)]
    pub plugin_version: String,
}
