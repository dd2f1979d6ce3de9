//! `taskhost backends`: what is in each plugin dir.

use crate::config::Config;
use crate::plugin::resolve::{check_permissions, library_files};
use crate::plugin::Library;
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
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            let permitted = if config.allow_writable_plugin_dirs {
                Ok(())
            } else {
                check_permissions(dir).and_then(|()| check_permissions(&file))
            };
            match permitted.and_then(|()| Library::open(&file)) {
                Ok(library) => {
                    let m = library.manifest();
                    println!(
                        "  {name}: module {} classes [{}] plugin-api {} ({})",
                        m.module_path,
                        m.classes.join(", "),
                        m.plugin_api_version,
                        m.plugin_version
                    );
                }
                Err(reason) => println!("  {name}: not loadable: {reason}"),
            }
        }
    }
    true
}
