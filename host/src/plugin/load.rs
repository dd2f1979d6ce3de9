//! Opening plugin libraries: once per process, with clear reasons for every way it can fail.

use super::name::{library_stem_of, BackendName};
use abi_stable::library::{lib_header_from_path, LibraryError, ROOT_MODULE_LOADER_NAME_WITH_NUL};
use abi_stable::std_types::RStr;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use taskhost_plugin_api::{
    BackendBox, HostBox, Manifest, PluginError, PluginModuleRef, ABI_NAME, PLUGIN_API_VERSION,
};

/// An opened plugin library. Never unloaded (abi_stable cannot unload), shared by every alias
/// that names it.
pub struct Library {
    path: PathBuf,
    manifest: Manifest,
    module: PluginModuleRef,
    // Keeps the probe's handle open so the library is not unloaded and loaded again.
    _probe: libloading::Library,
}

type Cache = Mutex<HashMap<PathBuf, Result<Arc<Library>, String>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

impl Library {
    /// Open the library at `path` (once per process; later calls return the same library or the
    /// same error). Errors are full sentences naming the file.
    pub fn open(path: &Path) -> Result<Arc<Library>, String> {
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let mut cache = cache().lock();
        if let Some(cached) = cache.get(&key) {
            return cached.clone();
        }
        let opened = open_uncached(&key).map(Arc::new);
        cache.insert(key, opened.clone());
        opened
    }

    /// The file it was loaded from (canonical).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the library says about itself.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Check that this library serves `name` (its module path and class).
    pub fn check_serves(&self, name: &BackendName) -> Result<(), String> {
        if self.manifest.module_path != name.module_path() {
            return Err(format!(
                "'{}' declares module path '{}', not '{}'",
                self.path.display(),
                self.manifest.module_path,
                name.module_path()
            ));
        }
        if !self.manifest.classes.iter().any(|c| c == name.class()) {
            return Err(format!(
                "module '{}' has no class '{}'; it exports: {}",
                name.module_path(),
                name.class(),
                self.manifest.classes.join(", ")
            ));
        }
        Ok(())
    }

    /// Build a backend of `class` with `params` (JSON) and the host callbacks.
    pub fn new_backend(
        &self,
        class: &str,
        params: &str,
        host: HostBox,
    ) -> Result<BackendBox, PluginError> {
        (self.module.new_backend())(RStr::from_str(class), RStr::from_str(params), host).into()
    }
}

fn open_uncached(path: &Path) -> Result<Library, String> {
    let shown = path.display();
    let metadata = std::fs::metadata(path).map_err(|e| format!("cannot read '{shown}': {e}"))?;
    if !metadata.is_file() {
        return Err(format!("'{shown}' is not a regular file"));
    }
    if metadata.len() == 0 {
        return Err(format!(
            "'{shown}' is empty (0 bytes), not a shared library"
        ));
    }
    // SAFETY: loading a library runs its initialisers; the caller has resolved the file inside a
    // trusted plugin dir and checked its permissions (see docs/plugin-trust.md).
    let probe = unsafe { libloading::Library::new(path) }.map_err(|e| {
        format!(
            "'{shown}' is not a loadable shared library: {}",
            dl_reason(&e)
        )
    })?;
    // SAFETY: only the symbol's presence is checked; it is not read or called.
    if unsafe { probe.get::<*const u8>(ROOT_MODULE_LOADER_NAME_WITH_NUL.as_bytes()) }.is_err() {
        return Err(format!(
            "'{shown}' is a shared library but not a taskhost plugin: it exports no plugin root \
             module (plugins export one with taskhost_plugin_api::export_plugin!)"
        ));
    }
    let header = lib_header_from_path(path).map_err(|e| format!("'{shown}': {e}"))?;
    let consts = header.root_mod_consts();
    if consts.name().as_str() != ABI_NAME {
        return Err(format!(
            "'{shown}' is an abi_stable library for '{}', not a taskhost plugin",
            consts.name()
        ));
    }
    check_api_version(path, header.version_strings().version.as_str())?;
    let module = header
        .init_root_module::<PluginModuleRef>()
        .map_err(|e| init_error(path, e))?;
    let manifest = read_manifest(path, module)?;
    Ok(Library {
        path: path.to_path_buf(),
        manifest,
        module,
        _probe: probe,
    })
}

/// Plugins must share the host's plugin-api major version (for 0.x: the minor) — the rule
/// abi_stable's layout check applies (`is_loosely_compatible`), checked first for a clear message.
fn check_api_version(path: &Path, theirs: &str) -> Result<(), String> {
    let parse = |v: &str| -> Option<(u64, u64)> {
        let mut parts = v.split('.').map(|p| p.parse::<u64>().ok());
        Some((parts.next()??, parts.next()??))
    };
    let (Some(ours_n), Some(theirs_n)) = (parse(PLUGIN_API_VERSION), parse(theirs)) else {
        return Err(format!(
            "'{}' reports an unreadable taskhost-plugin-api version '{theirs}'",
            path.display()
        ));
    };
    let series = |(major, minor): (u64, u64)| {
        if major == 0 {
            format!("0.{minor}")
        } else {
            major.to_string()
        }
    };
    if series(ours_n) == series(theirs_n) {
        return Ok(());
    }
    Err(format!(
        "'{}' was built against taskhost-plugin-api {theirs}, but this host uses \
         taskhost-plugin-api {PLUGIN_API_VERSION}; rebuild the plugin against \
         taskhost-plugin-api {}.x",
        path.display(),
        series(ours_n)
    ))
}

/// abi_stable's layout errors run to hundreds of lines: keep the `Error:` blocks, log the rest.
fn init_error(path: &Path, error: LibraryError) -> String {
    let full = error.to_string();
    tracing::debug!(target: "taskhost", file = %path.display(), "full plugin load error:\n{full}");
    let summary = match error {
        LibraryError::AbiInstability(_) => {
            let lines: Vec<&str> = full
                .lines()
                .skip_while(|l| !l.trim_start().starts_with("Error:"))
                .filter(|l| !l.trim().is_empty())
                .take(8)
                .collect();
            format!(
                "its ABI layout does not match this host's taskhost-plugin-api \
                 {PLUGIN_API_VERSION} (rebuild it against this version): {}",
                lines.join(" / ")
            )
        }
        _ => full.lines().take(3).collect::<Vec<_>>().join(" / "),
    };
    format!("'{}' cannot be loaded: {summary}", path.display())
}

fn dl_reason(error: &libloading::Error) -> String {
    let text = error.to_string();
    // dlopen repeats the path; keep the reason after the last ": ".
    text.rsplit_once(": ")
        .map(|(_, reason)| reason.to_string())
        .unwrap_or(text)
}

fn read_manifest(path: &Path, module: PluginModuleRef) -> Result<Manifest, String> {
    let shown = path.display();
    let json = (module.manifest())();
    let manifest: Manifest = serde_json::from_str(json.as_str())
        .map_err(|e| format!("'{shown}' returned an unreadable manifest: {e}"))?;
    let file_name = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
    let stem = library_stem_of(file_name).unwrap_or(file_name);
    let expected_stem = manifest.module_path.replace('.', "_");
    if stem != expected_stem {
        return Err(format!(
            "'{shown}' declares module path '{}', whose library would be named '{}{}{}'; \
             rename the library (cargo: [lib] name = \"{expected_stem}\") or fix its module path",
            manifest.module_path,
            std::env::consts::DLL_PREFIX,
            expected_stem,
            std::env::consts::DLL_SUFFIX,
        ));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = manifest.classes.iter().find(|c| !seen.insert(c.as_str())) {
        return Err(format!("'{shown}' exports class '{twice}' more than once"));
    }
    Ok(manifest)
}
