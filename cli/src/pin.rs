//! `taskhost plugin pin [--write]`: the `[plugin_pins]` table for the library files in the
//! plugin dirs (decision 009). Hashing a file does not open it as a library.

use std::path::Path;
use taskhost::plugin::pins::{digest_file, PluginPins};
use taskhost::plugin::resolve::library_files;
use taskhost::Config;

/// Print the table (stdout), or with `write` put it into the config file. Notes (shadowed or
/// skipped files) go to stderr. Returns whether all is well.
pub(crate) fn run(config_path: Option<&Path>, write: bool) -> bool {
    let result = Config::load(config_path).and_then(|config| {
        let pins = collect(&config)?;
        if write {
            write_pins(&config, &pins)
        } else {
            out!("{}", pins.to_toml());
            Ok(())
        }
    });
    match result {
        Ok(()) => true,
        Err(e) => {
            eprintln!("error: {e}");
            false
        }
    }
}

/// A pin for every regular library file in the plugin dirs; a file name found in an earlier
/// dir shadows later ones (the loader uses the first), so only the first is pinned.
fn collect(config: &Config) -> taskhost::Result<PluginPins> {
    let mut pins = PluginPins::new();
    for dir in &config.plugin_dirs {
        for file in library_files(dir) {
            let Some(name) = file.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if pins.get(name).is_some() {
                eprintln!(
                    "note: '{}' is not pinned: an earlier plugin dir has '{name}', which the \
                     loader uses instead",
                    file.display()
                );
                continue;
            }
            if !std::fs::metadata(&file).is_ok_and(|m| m.is_file()) {
                eprintln!(
                    "note: '{}' is not pinned: not a regular file",
                    file.display()
                );
                continue;
            }
            let digest = digest_file(&file).map_err(|reason| pin_error(config, reason))?;
            pins.insert(name, digest);
        }
    }
    if pins.is_empty() {
        let dirs: Vec<String> = config
            .plugin_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        return Err(pin_error(
            config,
            format!(
                "no plugin library files in the plugin dirs ({}); nothing to pin (an empty \
                 [plugin_pins] table would refuse every plugin)",
                if dirs.is_empty() {
                    "none configured".to_string()
                } else {
                    dirs.join(", ")
                }
            ),
        ));
    }
    Ok(pins)
}

fn pin_error(config: &Config, message: String) -> taskhost::Error {
    taskhost::Error::config(config.file.as_deref(), Some("plugin_pins"), message)
}

/// Replace the config file's `[plugin_pins]` (or `[PLUGIN_PINS]`) table by `pins`, or append
/// one; the new text is parsed again before it replaces the file (through a rename).
fn write_pins(config: &Config, pins: &PluginPins) -> taskhost::Result<()> {
    let Some(file) = config.file.as_deref() else {
        return Err(pin_error(
            config,
            "there is no config file to write the pins to (the built-in default config is in \
             use); create tasks.toml or give --config FILE"
                .to_string(),
        ));
    };
    let fail = |message: String| taskhost::Error::config(Some(file), Some("plugin_pins"), message);
    let text = std::fs::read_to_string(file)
        .map_err(|e| fail(format!("cannot read the config file to update it: {e}")))?;
    let Some(mut updated) = without_pins_table(&text) else {
        return Err(fail(format!(
            "cannot update the pins: 'plugin_pins' is not written as a [plugin_pins] table of \
             its own; replace it by hand with:\n{}",
            pins.to_toml()
        )));
    };
    if config.plugin_pins.is_some() && updated == text {
        return Err(fail(format!(
            "cannot update the pins: 'plugin_pins' is not written as a [plugin_pins] table of \
             its own; replace it by hand with:\n{}",
            pins.to_toml()
        )));
    }
    if !updated.is_empty() && !updated.ends_with('\n') {
        updated.push('\n');
    }
    if !updated.is_empty() && !updated.ends_with("\n\n") {
        updated.push('\n');
    }
    updated.push_str(&pins.to_toml());
    let base = file.parent().unwrap_or(Path::new(""));
    let reread = Config::from_toml_str(&updated, Some(file), base)?;
    if reread.plugin_pins.as_ref() != Some(pins) {
        return Err(fail(
            "the updated file would not read back the same pins; it was left unchanged".to_string(),
        ));
    }
    let temp = file.with_file_name(format!(
        ".{}.taskhost-pin-{}",
        file.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let written = std::fs::write(&temp, &updated)
        .and_then(|()| {
            let permissions = std::fs::metadata(file)?.permissions();
            std::fs::set_permissions(&temp, permissions)
        })
        .and_then(|()| std::fs::rename(&temp, file));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(fail(format!("cannot write the config file: {e}")));
    }
    outln!(
        "wrote {} pin(s) to [plugin_pins] in {}",
        pins.len(),
        file.display()
    );
    Ok(())
}

/// `text` without its `[plugin_pins]` / `[PLUGIN_PINS]` table (from its header to the next
/// table header), or `None` when a line other than such a header sets `plugin_pins` (an inline
/// table or dotted keys), which this does not rewrite.
fn without_pins_table(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let (mut inside, mut top_level) = (false, true);
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            let header = trimmed
                .split('#')
                .next()
                .unwrap_or("")
                .trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .trim();
            top_level = false;
            inside = matches!(header, "plugin_pins" | "PLUGIN_PINS");
            if inside {
                continue;
            }
            if header.starts_with("plugin_pins.") || header.starts_with("PLUGIN_PINS.") {
                return None;
            }
        } else if top_level
            && (trimmed.starts_with("plugin_pins") || trimmed.starts_with("PLUGIN_PINS"))
        {
            return None;
        }
        if !inside {
            out.push_str(line);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pins_table_is_cut_out_up_to_the_next_header() {
        let text = "plugin_dirs = [\"p\"]\n\n[plugin_pins]\n\"liba.so\" = \"x\"\n\n[tasks.default]\nbackend = \"a.B\"\n";
        assert_eq!(
            without_pins_table(text).unwrap(),
            "plugin_dirs = [\"p\"]\n\n[tasks.default]\nbackend = \"a.B\"\n"
        );
        let upper = "[ PLUGIN_PINS ] # pins\n\"liba.so\" = \"x\"\n";
        assert_eq!(without_pins_table(upper).unwrap(), "");
        assert_eq!(without_pins_table("[tasks]\n").unwrap(), "[tasks]\n");
    }

    #[test]
    fn other_spellings_are_not_rewritten() {
        assert_eq!(without_pins_table("plugin_pins = { }\n"), None);
        assert_eq!(
            without_pins_table("plugin_pins.\"liba.so\" = \"x\"\n"),
            None
        );
        assert_eq!(without_pins_table("[plugin_pins.sub]\n"), None);
    }
}
