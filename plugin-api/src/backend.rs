//! The backend trait every plugin class implements. Its vtable is frozen for all of 1.x.

use crate::{Capabilities, PluginError};
use abi_stable::{
    sabi_trait,
    std_types::{RBox, RResult, RStr, RString},
};

/// A task backend living in a plugin: where enqueued tasks go.
///
/// Every method takes and returns JSON (see [`crate::wire`]) except the flags. The host has already
/// run Django's `validate_task` and checked argument JSON before calling [`Backend::enqueue`], so a
/// backend only does what is specific to it. Every implementation must run its body inside
/// [`crate::guard`]: a panic that crosses the boundary ends the whole process.
///
/// Methods a backend does not offer return [`PluginError::not_supported`]. The layout of this
/// trait is frozen: new operations arrive through [`Backend::call_ext`] (see [`crate::ops`]).
#[sabi_trait]
pub trait Backend: Send + Sync {
    /// The capability flags of this backend instance.
    fn capabilities(&self) -> Capabilities;

    /// Health checks, as a JSON array of [`crate::wire::CheckMessage`] (`[]` when all is well).
    fn check(&self) -> RResult<RString, PluginError>;

    /// Enqueue one task: takes a [`crate::wire::EnqueueRequest`], returns the
    /// [`crate::wire::TaskResultData`] as stored (Immediate: as run).
    fn enqueue(&self, request: RStr<'_>) -> RResult<RString, PluginError>;

    /// Enqueue many tasks at once: takes a JSON array of [`crate::wire::EnqueueRequest`],
    /// returns a JSON array of [`crate::wire::TaskResultData`] in the same order. All or none.
    fn enqueue_many(&self, requests: RStr<'_>) -> RResult<RString, PluginError>;

    /// The stored [`crate::wire::TaskResultData`] for a result id, or
    /// [`crate::ErrorKind::RESULT_DOES_NOT_EXIST`].
    fn get_result(&self, id: RStr<'_>) -> RResult<RString, PluginError>;

    /// Queue store: claim ready tasks for a worker. Takes a [`crate::wire::ClaimRequest`], returns
    /// a JSON array of [`crate::wire::ClaimedTask`] (possibly empty), already marked RUNNING.
    fn claim(&self, request: RStr<'_>) -> RResult<RString, PluginError>;

    /// Queue store: record how claimed tasks ended. Takes a JSON array of
    /// [`crate::wire::Completion`], returns a JSON array of [`crate::wire::CompletionAck`].
    fn complete(&self, request: RStr<'_>) -> RResult<RString, PluginError>;

    /// Queue store: extend the leases of tasks a worker still runs. Takes a
    /// [`crate::wire::LeaseRequest`], returns a JSON array of the ids whose lease was lost.
    fn renew_leases(&self, request: RStr<'_>) -> RResult<RString, PluginError>;

    /// Queue store: hand claimed tasks back (READY again) without counting an attempt, e.g. at a
    /// forced shutdown. Takes a [`crate::wire::LeaseRequest`], returns the number released.
    fn release(&self, request: RStr<'_>) -> RResult<RString, PluginError>;

    /// Extension entry point for operations added after 1.0: `operation` names one of
    /// [`crate::ops`] (or a backend's own, prefixed with its module path), `request` is JSON.
    /// Unknown operations return [`crate::ErrorKind::NOT_SUPPORTED`].
    fn call_ext(&self, operation: RStr<'_>, request: RStr<'_>) -> RResult<RString, PluginError>;

    /// Stop background threads and flush: called once when the host shuts the backend down.
    #[sabi(last_prefix_field)]
    fn close(&self);
}

/// An owned backend trait object, as returned by [`crate::PluginModule::new_backend`].
pub type BackendBox = Backend_TO<'static, RBox<()>>;
