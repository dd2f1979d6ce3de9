//! Finding and loading backend plugins (SPEC §3).
//!
//! - [`name`]: `a.b.c.ClassName` parsed and checked before the filesystem is touched.
//! - [`resolve`]: the library file in the plugin dirs, symlink containment, permission checks.
//! - [`load`]: opening the library once per process, probing it, checking its ABI and manifest.

pub mod load;
pub mod name;
pub mod resolve;

pub use load::Library;
pub use name::BackendName;
