//! Opening plugin libraries: once per process, with clear reasons for every way it can fail.
//! A [built-in](super::builtin) is a library too, with no file.

use super::builtin::BuiltIn;
use super::name::{library_file_name, library_stem_of, BackendName};
use super::pins::{self, PinDigest, PluginPins};
use abi_stable::library::{lib_header_from_path, LibraryError, ROOT_MODULE_LOADER_NAME_WITH_NUL};
use abi_stable::std_types::RStr;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use taskhost_plugin_api::abi::{AbiBackendBox, AbiHostBox, Manifest, PluginModuleRef, ABI_NAME};
use taskhost_plugin_api::{PluginError, PLUGIN_API_VERSION};

/// An opened plugin library — a file, or a backend compiled into the host ([`Library::built_in`]).
/// Never unloaded (abi_stable cannot unload), shared by every alias that names it.
pub struct Library {
    /// The file, canonical; for a built-in, the pseudo path `<built in: module.path>`.
    path: PathBuf,
    manifest: Manifest,
    module: PluginModuleRef,
    /// The digest the file had when it was opened, if pins were checked then.
    digest: Option<PinDigest>,
    // For a file: keeps the probe's handle open so the library is not unloaded and loaded
    // again. `None` for a built-in.
    probe: Option<libloading::Library>,
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
        Self::open_pinned(path, None)
    }

    /// [`Library::open`], checking the file against `pins` first when they are given: the file
    /// listed in its plugin dir as `file_name` must have the digest pinned for that name, or it
    /// is refused without being opened (see [`pins`]). The check is made on every call, also
    /// for a library this process has already opened: the file on disk must still match.
    pub(crate) fn open_pinned(
        path: &Path,
        pins: Option<(&PluginPins, &str)>,
    ) -> Result<Arc<Library>, String> {
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let mut cache = cache().lock();
        let verified = match pins {
            Some((pins, file_name)) => Some(pins::verify(pins, file_name, &key)?),
            None => None,
        };
        if let Some(cached) = cache.get(&key) {
            return cached.clone();
        }
        let opened = open_uncached(&key).and_then(|mut library| {
            if let Some(verified) = &verified {
                verified.still_the_same()?;
                library.digest = Some(verified.digest);
            }
            Ok(Arc::new(library))
        });
        cache.insert(key, opened.clone());
        opened
    }

    /// The library compiled into the host for `built_in.module_path` (once per process). It has
    /// no file, so no pin applies to it. Errors (a built-in whose manifest does not match its
    /// table entry: a bug of the host) are full sentences.
    pub fn built_in(built_in: &BuiltIn) -> Result<Arc<Library>, String> {
        type BuiltInCache = Mutex<HashMap<&'static str, Result<Arc<Library>, String>>>;
        static CACHE: OnceLock<BuiltInCache> = OnceLock::new();
        let mut cache = CACHE.get_or_init(Default::default).lock();
        cache
            .entry(built_in.module_path)
            .or_insert_with(|| open_built_in(built_in).map(Arc::new))
            .clone()
    }

    /// The SHA-256 digest the file had when it was opened, if it was checked against a pin.
    pub fn pinned_digest(&self) -> Option<PinDigest> {
        self.digest
    }

    /// The file it was loaded from (canonical); for a built-in, which has none, the pseudo path
    /// `<built in: taskhost.backends.immediate>` (see [`Library::file`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file it was loaded from (canonical), or `None` for a built-in.
    pub fn file(&self) -> Option<&Path> {
        self.probe.as_ref().map(|_| self.path.as_path())
    }

    /// Whether this is a backend compiled into the host rather than a loaded file.
    pub fn is_built_in(&self) -> bool {
        self.probe.is_none()
    }

    /// Where it comes from, for a message: `'<file>'`, or `the built-in <module path>`.
    pub fn location(&self) -> String {
        match self.file() {
            Some(file) => format!("'{}'", file.display()),
            None => format!("the built-in {}", self.manifest.module_path),
        }
    }

    /// What the library says about itself.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Check that this library serves `name` (its module path and class).
    pub fn check_serves(&self, name: &BackendName) -> Result<(), String> {
        if self.manifest.module_path != name.module_path() {
            return Err(format!(
                "{} declares module path '{}', not '{}'",
                self.location(),
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
        host: AbiHostBox,
    ) -> Result<AbiBackendBox, PluginError> {
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
    #[cfg(all(
        target_os = "linux",
        target_pointer_width = "64",
        target_endian = "little"
    ))]
    check_elf(path, metadata.len())?;
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
    let header = lib_header_from_path(path).map_err(|e| {
        // abi_stable's header errors span lines; keep the first few on one line.
        let text = e.to_string();
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(6)
            .collect();
        format!(
            "'{shown}' is not a loadable abi_stable library: {}",
            lines.join(" / ")
        )
    })?;
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
        digest: None,
        probe: Some(probe),
    })
}

/// The pseudo path of a built-in: not a file, and said as much wherever a path is shown.
pub(crate) fn built_in_pseudo_path(module_path: &str) -> PathBuf {
    PathBuf::from(format!("<built in: {module_path}>"))
}

fn open_built_in(built_in: &BuiltIn) -> Result<Library, String> {
    let module = (built_in.module)();
    let json = (module.manifest())();
    let manifest: Manifest = serde_json::from_str(json.as_str()).map_err(|e| {
        format!(
            "the built-in {} returned an unreadable manifest: {e}",
            built_in.module_path
        )
    })?;
    if manifest.module_path != built_in.module_path {
        return Err(format!(
            "the built-in {} declares module path '{}'",
            built_in.module_path, manifest.module_path
        ));
    }
    Ok(Library {
        path: built_in_pseudo_path(built_in.module_path),
        manifest,
        module,
        digest: None,
        probe: None,
    })
}

/// The ELF machine of the running host, if known.
#[cfg(all(
    target_os = "linux",
    target_pointer_width = "64",
    target_endian = "little"
))]
const HOST_ELF_MACHINE: Option<u16> = if cfg!(target_arch = "x86_64") {
    Some(62)
} else if cfg!(target_arch = "aarch64") {
    Some(183)
} else if cfg!(target_arch = "riscv64") {
    Some(243)
} else {
    None
};

/// Checks, before the dynamic loader sees the file, that it is a 64-bit little-endian ELF
/// shared object for this machine whose program headers, loadable segments and section header
/// table all lie inside the file. The loader maps segments without checking them against the
/// file's length, so a truncated library would otherwise crash the process with SIGBUS.
#[cfg(all(
    target_os = "linux",
    target_pointer_width = "64",
    target_endian = "little"
))]
fn check_elf(path: &Path, len: u64) -> Result<(), String> {
    use std::io::{Read, Seek, SeekFrom};
    let shown = path.display();
    let bad = |what: &str| format!("'{shown}' is not a loadable shared library: {what}");
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot read '{shown}': {e}"))?;
    let mut h = [0u8; 64];
    let mut got = 0;
    while got < h.len() {
        match file.read(&mut h[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(format!("cannot read '{shown}': {e}")),
        }
    }
    if got < 4 || h[..4] != *b"\x7fELF" {
        return Err(bad("it is not an ELF file (bad magic bytes)"));
    }
    if got < h.len() {
        return Err(bad("its ELF header is truncated"));
    }
    let u16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let u64_at = |b: &[u8], i: usize| {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(x)
    };
    match h[4] {
        2 => {}
        1 => return Err(bad("it is a 32-bit ELF file; this host is 64-bit")),
        c => return Err(bad(&format!("its ELF class is invalid ({c})"))),
    }
    if h[5] != 1 {
        return Err(bad("it is not little-endian ELF, like this host"));
    }
    if h[6] != 1 || u32_at(&h, 20) != 1 {
        return Err(bad("its ELF version is not 1"));
    }
    if u16_at(&h, 16) != 3 {
        return Err(bad(&format!(
            "its ELF type is {}, not a shared object (3)",
            u16_at(&h, 16)
        )));
    }
    let machine = u16_at(&h, 18);
    if HOST_ELF_MACHINE.is_some_and(|m| m != machine) {
        return Err(bad(&format!(
            "it is built for another architecture (ELF machine {machine})"
        )));
    }
    let within = |offset: u64, size: u64| offset.checked_add(size).is_some_and(|end| end <= len);
    let (phoff, phentsize, phnum) = (u64_at(&h, 32), u16_at(&h, 54), u16_at(&h, 56));
    let (shoff, shentsize, shnum) = (u64_at(&h, 40), u16_at(&h, 58), u16_at(&h, 60));
    if phentsize != 56 || phnum == 0 || !within(phoff, 56 * u64::from(phnum)) {
        return Err(bad(
            "its program headers are missing or lie outside the file (truncated?)",
        ));
    }
    if shoff != 0 && (shentsize != 64 || !within(shoff, 64 * u64::from(shnum))) {
        return Err(bad("its section headers lie outside the file (truncated?)"));
    }
    let mut ph = vec![0u8; 56 * usize::from(phnum)];
    file.seek(SeekFrom::Start(phoff))
        .and_then(|_| file.read_exact(&mut ph))
        .map_err(|e| format!("cannot read '{shown}': {e}"))?;
    for entry in ph.chunks_exact(56) {
        // PT_LOAD and PT_DYNAMIC are read by the loader from the mapped file.
        let kind = u32_at(entry, 0);
        if kind == 1 || kind == 2 {
            let (offset, filesz, memsz) = (u64_at(entry, 8), u64_at(entry, 32), u64_at(entry, 40));
            if !within(offset, filesz) || (kind == 1 && filesz > memsz) {
                return Err(bad("a segment lies outside the file (truncated?)"));
            }
        }
    }
    Ok(())
}

/// `major.minor` of a version string.
fn major_minor(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.split('.').map(|p| p.parse::<u64>().ok());
    Some((parts.next()??, parts.next()??))
}

/// Plugins must share the host's plugin-api major version — the rule abi_stable's layout check
/// applies (`is_loosely_compatible`), checked first for a clear message. A 1.x plugin (1.x was
/// never released) is told to rebuild against 2.x.
fn check_api_version(path: &Path, theirs: &str) -> Result<(), String> {
    let (Some(ours), Some(their)) = (major_minor(PLUGIN_API_VERSION), major_minor(theirs)) else {
        return Err(format!(
            "'{}' reports an unreadable taskhost-plugin-api version '{theirs}'",
            path.display()
        ));
    };
    if ours.0 == their.0 {
        return Ok(());
    }
    Err(format!(
        "'{}' was built against taskhost-plugin-api {theirs}, but this host uses \
         taskhost-plugin-api {PLUGIN_API_VERSION}; rebuild the plugin against \
         taskhost-plugin-api {}.x",
        path.display(),
        ours.0
    ))
}

/// A plugin may need a newer minor of the host than this one (a host service added later):
/// refused in one line naming both versions.
fn check_requires(path: &Path, manifest: &Manifest) -> Result<(), String> {
    let ours = major_minor(PLUGIN_API_VERSION).unwrap_or((0, 0));
    let Some(needs) = major_minor(&manifest.requires) else {
        return Err(format!(
            "'{}' declares an unreadable required taskhost-plugin-api version '{}'",
            path.display(),
            manifest.requires
        ));
    };
    if needs.0 == ours.0 && needs.1 <= ours.1 {
        return Ok(());
    }
    Err(format!(
        "'{}' needs a host with taskhost-plugin-api {} or newer (it was built against {}), \
         but this host uses taskhost-plugin-api {PLUGIN_API_VERSION}; upgrade the host, or use \
         a version of the plugin that works with {}.{}",
        path.display(),
        manifest.requires,
        manifest.plugin_api_version,
        ours.0,
        ours.1
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
            "'{shown}' declares module path '{}', whose library would be named '{}'; \
             rename the library (cargo: [lib] name = \"{expected_stem}\") or fix its module path",
            manifest.module_path,
            library_file_name(&expected_stem),
        ));
    }
    check_requires(path, &manifest)?;
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = manifest.classes.iter().find(|c| !seen.insert(c.as_str())) {
        return Err(format!("'{shown}' exports class '{twice}' more than once"));
    }
    Ok(manifest)
}
