//! Configs for tests: built from TOML text with the built plugins' dir as the plugin dir.

use crate::build::plugin_dir;
use std::path::Path;
use taskhost::{override_task_backends, Config};

/// Parse `toml` as a `tasks.toml` whose plugin dir is the built plugins' dir (unless the text
/// sets `plugin_dirs`). Panics on a bad config: tests pass good ones.
pub fn config_with(toml: &str) -> Config {
    let text = if toml.contains("plugin_dirs") {
        toml.to_string()
    } else {
        format!(
            "plugin_dirs = [{:?}]\n{toml}",
            plugin_dir().display().to_string()
        )
    };
    Config::from_toml_str(&text, Some(Path::new("tests.toml")), Path::new("/"))
        .unwrap_or_else(|e| panic!("test config is invalid: {e}\n{text}"))
}

/// A config in force on this thread for the life of the value (Django's `override_settings`).
pub struct TestConfig {
    _guard: taskhost::OverrideGuard,
}

impl TestConfig {
    /// Use `toml` (see [`config_with`]) on this thread.
    pub fn new(toml: &str) -> Self {
        Self {
            _guard: override_task_backends(config_with(toml)),
        }
    }
}
