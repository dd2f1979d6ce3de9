//! `taskhost plugin install MODULE_PATH`: build a reference backend's plugin file from the
//! taskhost source this tool was built from, and put it into a plugin dir.
//!
//! Immediate and Dummy are built into every host; the Database backend ships as a file
//! (`libtaskhost_backends_database.so`), which an application outside this repository gets
//! this way. The command runs `cargo build -p <package>` on that source (or `--source`), reads
//! the built library's path from cargo's own report, and copies it into `--dir` (default: the
//! first plugin dir of the config in force), readable by all and writable by its owner only, as
//! the trust checks want (docs/plugin-trust.md).

use clap::{Args, ValueEnum};
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use taskhost::plugin::name::library_file_name;
use taskhost::Config;

/// The reference backends' module paths and the packages that build their plugin files.
const REFERENCE_PLUGINS: &[(&str, &str)] = &[
    ("taskhost.backends.database", "taskhost-backends-database"),
    ("taskhost.backends.immediate", "taskhost-backends-immediate"),
    ("taskhost.backends.dummy", "taskhost-backends-dummy"),
];

/// The taskhost workspace this tool was built from.
const BUILT_FROM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// `plugin install` arguments.
#[derive(Args, Debug)]
pub struct InstallArgs {
    /// The module path of a reference backend: taskhost.backends.database (also
    /// taskhost.backends.immediate and taskhost.backends.dummy, which are built in).
    pub module_path: String,
    /// The plugin dir to put the file in (created if missing). Default: the first plugin dir of
    /// the config in force.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The taskhost source to build from. Default: the one this tool was built from.
    #[arg(long, value_name = "DIR")]
    pub source: Option<PathBuf>,
    /// The cargo profile to build with.
    #[arg(long, value_enum, default_value_t = Profile::Release)]
    pub profile: Profile,
}

/// A cargo profile.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Optimised (`cargo build --release`).
    Release,
    /// Unoptimised, with debug info (`cargo build`): quicker to build.
    Dev,
}

/// Run `plugin install`; returns whether the file was installed.
pub fn run(config: Option<&Path>, args: &InstallArgs) -> bool {
    match install(config, args) {
        Ok((file, source)) => {
            outln!(
                "Installed {}: {} (built from {})",
                args.module_path,
                file.display(),
                source.display()
            );
            true
        }
        Err(e) => {
            eprintln!("error: {e}");
            false
        }
    }
}

fn install(config: Option<&Path>, args: &InstallArgs) -> Result<(PathBuf, PathBuf), String> {
    let package = REFERENCE_PLUGINS
        .iter()
        .find(|(module_path, _)| *module_path == args.module_path)
        .map(|(_, package)| *package)
        .ok_or_else(|| {
            let known: Vec<&str> = REFERENCE_PLUGINS.iter().map(|(m, _)| *m).collect();
            format!(
                "'{}' is not a backend this command installs; it installs {}. A third-party \
                 plugin is installed by copying its library file into a plugin dir",
                args.module_path,
                known.join(", ")
            )
        })?;
    let source = source_dir(args.source.as_deref())?;
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => first_plugin_dir(config)?,
    };
    let built = build(&source, package, args.profile)?;
    let file_name = library_file_name(&args.module_path.replace('.', "_"));
    let dest = copy_into(&built, &dir, &file_name)?;
    Ok((dest, source))
}

/// The taskhost workspace to build from: `given`, or the one this tool was built from.
fn source_dir(given: Option<&Path>) -> Result<PathBuf, String> {
    let dir = given.unwrap_or(Path::new(BUILT_FROM));
    let manifest = dir.join("plugins").join("database").join("Cargo.toml");
    if !manifest.is_file() {
        return Err(format!(
            "'{}' is not a taskhost source checkout (no {}): pass --source <taskhost checkout>",
            dir.display(),
            manifest.display()
        ));
    }
    fs::canonicalize(dir).map_err(|e| format!("cannot read '{}': {e}", dir.display()))
}

/// The first plugin dir of the config in force, when one is configured.
fn first_plugin_dir(config: Option<&Path>) -> Result<PathBuf, String> {
    let loaded = Config::load(config).map_err(|e| e.to_string())?;
    let configured = loaded.file.is_some() && !loaded.plugin_dirs.is_empty();
    match loaded.plugin_dirs.first() {
        Some(dir) if configured => Ok(dir.clone()),
        _ => Err(
            "no plugin dir is configured: pass --dir DIR, and list DIR in plugin_dirs of \
             tasks.toml"
                .to_string(),
        ),
    }
}

/// `cargo build -p package` in `source`; returns the built library file.
fn build(source: &Path, package: &str, profile: Profile) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .arg("build")
        .args(["-p", package, "--message-format", "json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(source.join("Cargo.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if profile == Profile::Release {
        command.arg("--release");
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run cargo ({}): {e}", cargo.to_string_lossy()))?;
    let mut library = None;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(file) = cdylib_of(&line, package) {
                library = Some(file);
            }
        }
    }
    let status = child.wait().map_err(|e| format!("cargo failed: {e}"))?;
    if !status.success() {
        return Err(format!(
            "cargo build -p {package} failed ({status}) in '{}'",
            source.display()
        ));
    }
    library.ok_or_else(|| format!("cargo built {package} but reported no library file"))
}

/// The `cdylib` file of `package` in one line of cargo's JSON messages, if it is that one.
fn cdylib_of(line: &str, package: &str) -> Option<PathBuf> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    let lib_name = package.replace('-', "_");
    if message["reason"] != "compiler-artifact" || message["target"]["name"] != lib_name.as_str() {
        return None;
    }
    let kinds = message["target"]["kind"].as_array()?;
    if !kinds.iter().any(|k| k == "cdylib") {
        return None;
    }
    message["filenames"]
        .as_array()?
        .iter()
        .filter_map(|f| f.as_str())
        .find(|f| !f.ends_with(".rlib") && !f.ends_with(".d"))
        .map(PathBuf::from)
}

/// Copy `built` into `dir` as `file_name` (through a temporary file, so a loader never sees a
/// half-written library), mode 0644 on Unix.
fn copy_into(built: &Path, dir: &Path, file_name: &str) -> Result<PathBuf, String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create '{}': {e}", dir.display()))?;
    let dest = dir.join(file_name);
    let partial = dir.join(format!(".{file_name}.partial"));
    fs::copy(built, &partial).map_err(|e| {
        format!(
            "cannot copy '{}' to '{}': {e}",
            built.display(),
            partial.display()
        )
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&partial, fs::Permissions::from_mode(0o644))
            .map_err(|e| format!("cannot set the mode of '{}': {e}", partial.display()))?;
    }
    fs::rename(&partial, &dest).map_err(|e| format!("cannot write '{}': {e}", dest.display()))?;
    Ok(fs::canonicalize(&dest).unwrap_or(dest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_is_read_from_cargos_report() {
        let line = r#"{"reason":"compiler-artifact","target":{"name":"taskhost_backends_database","kind":["cdylib"]},"filenames":["/t/release/libtaskhost_backends_database.so"]}"#;
        assert_eq!(
            cdylib_of(line, "taskhost-backends-database"),
            Some(PathBuf::from("/t/release/libtaskhost_backends_database.so"))
        );
        assert_eq!(cdylib_of(line, "other"), None);
        assert_eq!(cdylib_of("not json", "taskhost-backends-database"), None);
        let rlib = r#"{"reason":"compiler-artifact","target":{"name":"taskhost_backends_database","kind":["lib"]},"filenames":["/t/libx.rlib"]}"#;
        assert_eq!(cdylib_of(rlib, "taskhost-backends-database"), None);
    }

    #[test]
    fn an_unknown_module_path_names_those_it_installs() {
        let args = InstallArgs {
            module_path: "acme.redis".into(),
            dir: Some(PathBuf::from("/nonexistent")),
            source: None,
            profile: Profile::Dev,
        };
        let e = install(None, &args).unwrap_err();
        assert!(e.starts_with("'acme.redis' is not a backend this command installs; it installs taskhost.backends.database,"), "{e}");
    }

    #[test]
    fn a_source_that_is_not_a_taskhost_checkout_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = source_dir(Some(dir.path())).unwrap_err();
        assert!(e.contains("is not a taskhost source checkout"), "{e}");
        assert!(e.ends_with("pass --source <taskhost checkout>"), "{e}");
    }
}
