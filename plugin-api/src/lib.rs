//! The plugin SDK of taskhost: what a backend author implements, and the stable boundary
//! generated from it.
//!
//! A backend plugin is a `cdylib` that depends on this crate alone. Its author writes a type
//! implementing the [`Backend`] trait on typed values ([`EnqueueRequest`] in, [`TaskResultData`]
//! out; the queue-store methods for a backend workers claim from) and exports it with
//! [`export_plugin!`]. The constructor receives its entry of `tasks.toml` ([`BackendParams`]) and
//! a [`Host`]: run a task function by path, send Django's signals, read the clock. `tracing`
//! events reach the host's subscriber.
//!
//! ```ignore
//! taskhost_plugin_api::export_plugin! {
//!     module_path: "acme.spool",                    // [lib] name = "acme_spool"
//!     classes: { "SpoolBackend" => SpoolBackend::new },
//! }
//! ```
//!
//! What crosses the boundary ([`abi`]) is generated: frozen `#[repr(C)]` records, the panic
//! guard and the log forwarder. A plugin built against 2.0 loads in every 2.x host
//! (`docs/decisions/012-plugin-sdk-2.md`). With the `testing` feature, [`testing::TestHost`]
//! stands in for the host in a plugin's unit tests.
#![allow(non_local_definitions)]

pub mod abi;
pub mod backend;
pub mod capabilities;
pub mod control;
pub mod error;
#[doc(hidden)]
pub mod export;
pub mod host;
pub mod json;
pub mod log;
pub mod signal;
#[cfg(feature = "testing")]
pub mod testing;
pub mod text;
pub mod types;
pub mod wait;

#[doc(hidden)]
pub use abi_stable;
pub use backend::Backend;
pub use capabilities::Capabilities;
pub use error::{ErrorKind, PluginError};
pub use export::__private;
pub use host::Host;
pub use json::Json;
pub use log::LogLevel;
pub use signal::Signal;
pub use text::Text;
pub use types::{
    BackendParams, CheckMessage, ClaimRequest, ClaimedTask, Completion, CompletionAck,
    EnqueueRequest, LeaseRequest, ListRequest, PruneRequest, QueueStats, TaskDescription,
    TaskError, TaskOutcome, TaskResultData, TaskResultStatus, UniqueKey, UniqueScope, WaitRequest,
    REPORT_STARTED,
};
pub use wait::{WaitFinishedRequest, WaitFinishedResponse, WAIT_FINISHED};

/// The version of this crate a plugin was built against. A host loads plugins of its major
/// version whose manifest does not require a newer minor (`docs/decisions/012-plugin-sdk-2.md`).
pub const PLUGIN_API_VERSION: &str = env!("CARGO_PKG_VERSION");
