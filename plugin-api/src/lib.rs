//! The stable plugin ABI of taskhost.
//!
//! A backend plugin is a `cdylib` that depends on this crate alone. It exports one
//! [`PluginModule`] (through [`export_plugin!`]) whose [`PluginModule::new_backend`] builds a
//! [`BackendBox`] — an object implementing the [`Backend`] trait — for a class named in the host's
//! `tasks.toml`. The host hands every backend a [`HostBox`]: callbacks to run a task function by
//! path, emit signals, log into the host's `tracing` subscriber and read the clock.
//!
//! Key types:
//! - [`Backend`] / [`BackendBox`]: what a plugin implements (frozen vtable, see `docs/decisions`).
//! - [`Host`] / [`HostBox`]: what the host offers a plugin.
//! - [`PluginModule`]: the root module every plugin library exports.
//! - [`wire`]: the JSON payloads that cross the boundary (task results, claims, completions).
//! - [`guard`]: the panic guard every entry point must use — a panic must never cross the ABI.
//! - [`PluginError`] / [`ErrorKind`], [`Capabilities`], [`Signal`], [`LogLevel`].
//!
//! Everything that crosses the boundary is either a JSON string or one of the few `#[repr(C)]`
//! types here; domain types evolve by adding optional JSON fields, never by changing a layout.
#![allow(non_local_definitions)]

pub mod backend;
pub mod capabilities;
pub mod error;
#[doc(hidden)]
pub mod export;
pub use export::__private;
pub mod guard;
pub mod host;
pub mod log;
pub mod module;
pub mod ops;
pub mod signal;
pub mod wire;

pub use abi_stable;
pub use backend::{Backend, BackendBox, Backend_TO};
pub use capabilities::Capabilities;
pub use error::{ErrorKind, PluginError, PluginResult};
pub use guard::{guard, guard_json, panic_message};
pub use host::{Host, HostBox, Host_TO};
pub use log::LogLevel;
pub use module::{Manifest, PluginModule, PluginModuleRef, ABI_NAME, PLUGIN_API_VERSION};
pub use signal::Signal;
