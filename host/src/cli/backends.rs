//! `taskhost backends`: what is in each plugin dir.
//!
//! Each file is opened in a child process ([`super::inspect`]): a file that crashes whatever
//! opens it is listed as not loadable, with the signal, and the listing carries on. With
//! `[plugin_pins]` configured, a file that is not pinned or does not match its pin is refused
//! without being opened at all.

use super::inspect::{self, Answer};
use crate::config::Config;
use crate::plugin::pins;
use crate::plugin::resolve::{check_permissions, library_files};
use std::ffi::OsString;
use std::path::Path;

/// List, per plugin dir, every library with its module path, classes and plugin-api version, and
/// the files that are not loadable plugins with the reason. Returns false if the config is bad.
pub fn run(config_path: Option<&Path>) -> bool {
    let config = match Config::load(config_path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return false;
        }
    };
    let timeout = inspect::timeout(inspect::DEFAULT_TIMEOUT_SECS);
    for dir in &config.plugin_dirs {
        if !dir.is_dir() {
            println!("{} (missing)", dir.display());
            continue;
        }
        println!("{}", dir.display());
        let files = library_files(dir);
        if files.is_empty() {
            println!("  (no plugin libraries)");
        }
        for file in files {
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            match examine(&config, dir, &file, &name, timeout) {
                Ok(m) => println!(
                    "  {name}: module {} classes [{}] plugin-api {} ({})",
                    m.module_path,
                    m.classes.join(", "),
                    m.plugin_api_version,
                    m.plugin_version
                ),
                Err(reason) => println!("  {name}: not loadable: {}", one_line(&reason)),
            }
        }
    }
    true
}

/// The checks that need no opening (permissions, pins), then the file opened in a child.
fn examine(
    config: &Config,
    dir: &Path,
    file: &Path,
    name: &str,
    timeout: std::time::Duration,
) -> Result<taskhost_plugin_api::Manifest, String> {
    if !config.allow_writable_plugin_dirs {
        check_permissions(dir).and_then(|()| check_permissions(file))?;
    }
    if let Some(pins) = &config.plugin_pins {
        if std::fs::metadata(file).is_ok_and(|m| m.is_file()) {
            pins::verify(pins, name, file)?;
        }
    }
    let args = [
        OsString::from(inspect::INSPECT_COMMAND),
        OsString::from("--file"),
        file.as_os_str().to_owned(),
    ];
    match inspect::ask(None, &args, timeout, "opening it") {
        Ok(Answer::Library { manifest }) => Ok(manifest),
        Ok(Answer::Refused { reason }) => Err(reason),
        Ok(other) => Err(format!(
            "'{}' could not be examined: the inspecting process answered {other:?}",
            file.display()
        )),
        Err(crash) => Err(format!("'{}' {}", file.display(), crash.0)),
    }
}

/// A reason on one line (one line per file in the listing).
fn one_line(reason: &str) -> String {
    reason.split_whitespace().collect::<Vec<_>>().join(" ")
}
