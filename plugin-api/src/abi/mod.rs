//! The stable boundary between the host and a plugin library. Plugin authors do not use it:
//! [`crate::export_plugin!`] generates their side, the host implements the other.
//!
//! What crosses is a root module ([`PluginModule`]), two vtables ([`AbiBackend`], [`AbiHost`])
//! and the `#[repr(C)]` records of [`records`], checked by abi_stable's layout check when a
//! library is loaded. abi_stable refuses an *older* plugin in a *newer* host as soon as any of
//! these types has grown (`docs/decisions/012-plugin-sdk-2.md`), so they are frozen for all of
//! 2.x. What a later 2.x adds travels without changing a layout:
//! - a new operation: [`AbiBackend::call_ext`] / [`AbiHost::call_ext`], by name, with its own
//!   request and response as JSON text; a 2.0 side answers "not supported";
//! - a new field of a record: that record's `ext` text (a JSON object, empty when none); a 2.0
//!   side writes it empty and ignores it;
//! - a new capability, error kind or signal: a new bit or number (unknown ones are ignored);
//! - a plugin that needs a host service of a newer minor says so in its manifest
//!   ([`Manifest::requires`]), and an older host refuses it in one line naming both versions.

pub mod adapter;
pub mod guard;
pub mod records;

use crate::{Capabilities, LogLevel, PluginError, Signal};
use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RArc, RBox, RResult, RStr, RString, RVec},
    StableAbi,
};
use records::{
    AckRecord, CheckRecord, ClaimRecord, ClaimedRecord, CompletionRecord, EnqueueRecord,
    LeaseRecord, ListRecord, OutcomeRecord, PruneRecord, QueueStatsRecord, TaskResultRecord,
    TaskResultView, WaitRecord,
};
use serde::{Deserialize, Serialize};

/// The name under which every taskhost plugin registers its root module. A library whose root
/// module has another name is an abi_stable library, but not a taskhost plugin.
pub const ABI_NAME: &str = "taskhost_plugin";

/// A backend object as the boundary sees it: [`crate::Backend`] on records. Frozen for 2.x.
#[sabi_trait]
#[allow(missing_docs)]
pub trait AbiBackend: Send + Sync {
    fn capabilities(&self) -> Capabilities;
    fn check(&self) -> RResult<RVec<CheckRecord>, PluginError>;
    fn enqueue(&self, request: EnqueueRecord) -> RResult<TaskResultRecord, PluginError>;
    fn enqueue_many(
        &self,
        requests: RVec<EnqueueRecord>,
    ) -> RResult<RVec<TaskResultRecord>, PluginError>;
    fn get_result(&self, id: RStr<'_>) -> RResult<TaskResultRecord, PluginError>;
    fn results(&self) -> RResult<RVec<TaskResultRecord>, PluginError>;
    fn clear(&self) -> RResult<(), PluginError>;
    fn claim(&self, request: ClaimRecord) -> RResult<RVec<ClaimedRecord>, PluginError>;
    fn complete(
        &self,
        completions: RVec<CompletionRecord>,
    ) -> RResult<RVec<AckRecord>, PluginError>;
    fn renew_leases(&self, request: LeaseRecord) -> RResult<RVec<RString>, PluginError>;
    fn release(&self, request: LeaseRecord) -> RResult<u64, PluginError>;
    fn rescue(&self) -> RResult<u64, PluginError>;
    fn wait_for_tasks(&self, request: WaitRecord) -> RResult<bool, PluginError>;
    fn migrate(&self) -> RResult<RVec<u32>, PluginError>;
    fn list_results(&self, request: ListRecord) -> RResult<RVec<TaskResultRecord>, PluginError>;
    fn queue_stats(&self) -> RResult<RVec<QueueStatsRecord>, PluginError>;
    fn prune(&self, request: PruneRecord) -> RResult<u64, PluginError>;
    fn call_ext(&self, operation: RStr<'_>, request: RStr<'_>) -> RResult<RString, PluginError>;
    #[sabi(last_prefix_field)]
    fn close(&self);
}

/// An owned backend object, as [`PluginModule::new_backend`] returns it.
pub type AbiBackendBox = AbiBackend_TO<'static, RBox<()>>;

/// The host's callbacks as the boundary sees them: [`crate::Host`] on records. Frozen for 2.x.
#[sabi_trait]
#[allow(missing_docs)]
pub trait AbiHost: Clone + Send + Sync {
    fn run_task(&self, task_result: TaskResultView<'_>) -> RResult<OutcomeRecord, PluginError>;
    fn wants_signal(&self, signal: Signal) -> bool;
    fn send_signal(&self, signal: Signal, task_result: TaskResultView<'_>);
    fn log_enabled(&self, level: LogLevel, target: RStr<'_>) -> bool;
    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>);
    fn now_micros(&self) -> i64;
    #[sabi(last_prefix_field)]
    fn call_ext(&self, operation: RStr<'_>, request: RStr<'_>) -> RResult<RString, PluginError>;
}

/// A shared host object, as handed to [`PluginModule::new_backend`].
pub type AbiHostBox = AbiHost_TO<'static, RArc<()>>;

/// The root module of a plugin library: exported by [`crate::export_plugin!`]. Frozen for 2.x.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
#[sabi(missing_field(panic))]
pub struct PluginModule {
    /// The library's [`Manifest`] as JSON.
    pub manifest: extern "C" fn() -> RString,

    /// Build a backend: `class` is one of the manifest's classes, `params` a
    /// [`crate::BackendParams`] as JSON, `host` the callbacks for this backend.
    #[sabi(last_prefix_field)]
    pub new_backend: extern "C" fn(
        class: RStr<'_>,
        params: RStr<'_>,
        host: AbiHostBox,
    ) -> RResult<AbiBackendBox, PluginError>,
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
    /// The plugin-api version it was built against ([`crate::PLUGIN_API_VERSION`]).
    pub plugin_api_version: String,
    /// The plugin crate's own name and version, for `taskhost backends`.
    #[serde(default)]
    pub plugin_version: String,
    /// The oldest plugin-api a host must offer for this plugin to work, as `major.minor`
    /// (default `2.0`): a plugin that uses a host service added in 2.N says `2.N`.
    #[serde(default = "Manifest::default_requires")]
    pub requires: String,
}

impl Manifest {
    /// `2.0`: what every 2.x host offers.
    pub fn default_requires() -> String {
        "2.0".to_string()
    }
}
