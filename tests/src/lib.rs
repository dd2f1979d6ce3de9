//! Support for taskhost's end-to-end tests: building the real plugin files, plugin dirs in temp
//! folders, configs, and captured logs.

pub mod build;
pub mod config;
pub mod external;
pub mod logs;
pub mod prometheus;
pub mod rng;

pub use build::{
    config_text, plugin_dir, plugin_file, stripped_plugin_bytes, taskhost_bin, workspace_root,
};
pub use config::{config_with, TestConfig};
pub use rng::Rng;
