//! `taskhost backends`: what is in each plugin dir.
//!
//! Each file is opened in a child process ([`super::inspect`]): a file that crashes whatever
//! opens it is listed as not loadable, with the signal, and the listing carries on. With
//! `[plugin_pins]` configured, a file that is not pinned or does not match its pin is refused
//! without being opened at all.

use super::inspect::{self, Answer};
use super::{output, OutputFormat};
use serde_json::json;
use std::ffi::OsString;
use std::path::Path;
use taskhost::plugin::builtin::BUILT_INS;
use taskhost::plugin::resolve::{check_permissions, library_files};
use taskhost::plugin::Library;
use taskhost::Config;

/// List, per plugin dir, every library with its module path, classes and plugin-api version, and
/// the files that are not loadable plugins with the reason. Returns false if the config is bad.
pub fn run(config_path: Option<&Path>, format: OutputFormat) -> bool {
    let config = match Config::load(config_path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return false;
        }
    };
    let timeout = inspect::timeout(inspect::DEFAULT_TIMEOUT_SECS);
    let mut listing = Vec::new();
    for dir in &config.plugin_dirs {
        if !dir.is_dir() {
            if format == OutputFormat::Text {
                outln!("{} (missing)", dir.display());
            }
            listing.push(json!({"dir": dir, "missing": true, "files": []}));
            continue;
        }
        if format == OutputFormat::Text {
            outln!("{}", dir.display());
        }
        let files = library_files(dir);
        if files.is_empty() && format == OutputFormat::Text {
            outln!("  (no plugin libraries)");
        }
        let mut entries = Vec::new();
        for file in files {
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let examined = examine(&config, dir, &file, &name, timeout);
            if format == OutputFormat::Json {
                entries.push(match examined {
                    Ok(m) => json!({
                        "file": name,
                        "loadable": true,
                        "module": m.module_path.as_str(),
                        "classes": m.classes.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                        "plugin_api_version": m.plugin_api_version.as_str(),
                        "plugin_version": m.plugin_version.as_str(),
                    }),
                    Err(reason) => json!({"file": name, "loadable": false, "reason": reason}),
                });
                continue;
            }
            match examined {
                Ok(m) => outln!(
                    "  {name}: module {} classes [{}] plugin-api {} ({})",
                    m.module_path,
                    m.classes.join(", "),
                    m.plugin_api_version,
                    m.plugin_version
                ),
                Err(reason) => outln!("  {name}: not loadable: {}", one_line(&reason)),
            }
        }
        listing.push(json!({"dir": dir, "missing": false, "files": entries}));
    }
    let built_in = built_ins();
    if format == OutputFormat::Text {
        outln!("built into this host (used when no plugin dir has their file)");
        for (module_path, classes) in &built_in {
            outln!("  {module_path}: classes [{}]", classes.join(", "));
        }
    }
    let built_in: Vec<_> = built_in
        .iter()
        .map(|(m, c)| json!({"module": m, "classes": c}))
        .collect();
    listing.push(json!({"built_in": built_in}));
    if format == OutputFormat::Json {
        match output::json(&listing) {
            Ok(json) => outln!("{json}"),
            Err(e) => {
                eprintln!("error: {e}");
                return false;
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
) -> Result<taskhost_plugin_api::abi::Manifest, String> {
    if !config.allow_writable_plugin_dirs {
        check_permissions(dir).and_then(|()| check_permissions(file))?;
    }
    if let Some(pins) = &config.plugin_pins {
        if std::fs::metadata(file).is_ok_and(|m| m.is_file()) {
            pins.verify_file(name, file)?;
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

/// The built-in libraries: module path and classes.
fn built_ins() -> Vec<(String, Vec<String>)> {
    BUILT_INS
        .iter()
        .map(|b| {
            let classes = Library::built_in(b)
                .map(|library| library.manifest().classes.clone())
                .unwrap_or_default();
            (b.module_path.to_string(), classes)
        })
        .collect()
}

/// A reason on one line (one line per file in the listing).
fn one_line(reason: &str) -> String {
    reason.split_whitespace().collect::<Vec<_>>().join(" ")
}
