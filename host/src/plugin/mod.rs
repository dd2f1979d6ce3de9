//! Finding and loading backend plugins (SPEC §3).
//!
//! - [`name`]: `a.b.c.ClassName` parsed and checked before the filesystem is touched.
//! - [`resolve`]: the library file in the plugin dirs, symlink containment, permission checks.
//! - [`load`]: opening the library once per process, probing it, checking its ABI and manifest.
//! - [`builtin`]: the Immediate and Dummy backends compiled into the host, used when no plugin
//!   dir has their file.
//! - [`pins`]: the SHA-256 digests a file must have when `[plugin_pins]` is configured.

pub mod builtin;
pub mod load;
pub mod name;
pub mod pins;
pub mod resolve;

pub use builtin::BuiltIn;
pub use load::Library;
pub use name::BackendName;
pub use pins::{PinDigest, PluginPins};
pub use resolve::{locate_library, Located};
