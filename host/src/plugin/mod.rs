//! Finding and loading backend plugins (SPEC §3).
//!
//! - [`name`]: `a.b.c.ClassName` parsed and checked before the filesystem is touched.
//! - [`resolve`]: the library file in the plugin dirs, symlink containment, permission checks.
//! - [`load`]: opening the library once per process, probing it, checking its ABI and manifest.
//! - [`pins`]: the SHA-256 digests a file must have when `[plugin_pins]` is configured.

pub mod load;
pub mod name;
pub mod pins;
pub mod resolve;

pub use load::Library;
pub use name::BackendName;
pub use pins::{PinDigest, PluginPins};
