//! Finding a backend's library file in the plugin dirs, and deciding whether it may be loaded.
//!
//! # Trust model
//!
//! Loading a library runs its code inside this process, with this process's rights: choosing a
//! plugin dir is a trust decision, like putting a directory on `PATH`. The host therefore only
//! loads a file that
//!
//! - is named after a validated backend name (see [`BackendName`]), so the name cannot point
//!   anywhere but directly inside a plugin dir;
//! - still lies inside that plugin dir once symlinks are resolved;
//! - is a regular file;
//! - on Unix, lives in a dir and is itself neither writable by group or others
//!   (`mode & 0o022 == 0`) nor owned by anyone but root or the effective user of this process
//!   (see [`check_permissions`]) — otherwise another user could swap in their own code.
//!
//! The permission rule can be switched off with `allow_writable_plugin_dirs = true` in
//! `tasks.toml` (the `allow_writable` argument of [`resolve_library`]); containment and the
//! regular-file rule cannot.
//!
//! With `[plugin_pins]` configured, the resolved file must also match its SHA-256 pin before it is
//! opened (see [`super::pins`]).
//!
//! # Built-ins
//!
//! The Immediate and Dummy backends are also compiled into the host ([`super::builtin`]).
//! [`locate_library`] looks in the plugin dirs first: a file there wins (and a file there that
//! fails a check is refused, never replaced by the built-in); only when no dir has an entry
//! for the library is the built-in used. A built-in runs code that is part of the host binary,
//! so there is nothing to check or pin.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::builtin::{built_in, BuiltIn};
use super::name::{library_stem_of, BackendName};
use crate::config::ConfigSource;

/// Where a backend's library comes from: a file in a plugin dir, or the host itself.
#[derive(Debug, Clone)]
pub enum Located {
    /// The canonical path of the file found (and checked) in a plugin dir.
    File(PathBuf),
    /// No plugin dir has a file for the library, and the host has it built in.
    BuiltIn(&'static BuiltIn),
}

/// Finds the library for `name`: its file in `dirs` as [`resolve_library`] does, else the
/// built-in for its module path. A file that is found but fails a check is an error, not a
/// reason to fall back to the built-in.
pub fn locate_library(
    name: &BackendName,
    dirs: &[PathBuf],
    allow_writable: bool,
) -> Result<Located, String> {
    locate(name, dirs, allow_writable).map_err(|e| e.to_string())
}

/// [`locate_library`] with the not-found case kept apart (see [`find_library`]).
pub(crate) fn locate(
    name: &BackendName,
    dirs: &[PathBuf],
    allow_writable: bool,
) -> Result<Located, Unresolved> {
    match find_library(name, dirs, allow_writable) {
        Ok(path) => Ok(Located::File(path)),
        Err(Unresolved::NotFound { .. }) if built_in(name.module_path()).is_some() => Ok(
            Located::BuiltIn(built_in(name.module_path()).expect("checked just above")),
        ),
        Err(e) => Err(e),
    }
}

/// Finds the library for `name` in `dirs` and checks it.
///
/// The dirs are searched in order and the first one that has an entry (file or symlink, even a
/// broken one) under [`BackendName::library_file_name`] wins: if that entry fails a check, the
/// error is returned and later dirs are not consulted, so a bad file is never silently shadowed.
/// Dirs that do not exist are skipped.
///
/// Returns the canonical path of the file. Errors are full reason strings naming the file, the
/// dir, or every dir searched.
pub fn resolve_library(
    name: &BackendName,
    dirs: &[PathBuf],
    allow_writable: bool,
) -> Result<PathBuf, String> {
    find_library(name, dirs, allow_writable).map_err(|e| e.to_string())
}

/// Why [`find_library`] found no loadable file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unresolved {
    /// No plugin dir has an entry under the library's file name.
    NotFound {
        /// The module path, e.g. `acme.redis`.
        module_path: String,
        /// The file looked for, e.g. `libacme_redis.so`.
        file_name: String,
        /// The library stem, e.g. `acme_redis` (the plugin crate's `[lib] name`).
        stem: String,
        /// The dirs searched, in order.
        dirs: Vec<PathBuf>,
    },
    /// The first entry found fails a check; the reason names it.
    Refused(String),
}

impl Unresolved {
    /// The reason with the configuration in force and what to do, when the file was not
    /// found: `source` and `config_file` say which config was used (or that none was found);
    /// the last words are the command that installs the plugin into the first dir searched.
    pub(crate) fn explain(&self, source: ConfigSource, config_file: Option<&Path>) -> String {
        match self {
            Self::NotFound {
                module_path,
                file_name,
                stem,
                dirs,
            } => format!(
                "{self}; {}; build the plugin (its crate sets [lib] name = \"{stem}\") and put \
                 '{file_name}' in one of those dirs, or add the dir that holds it to {}; install \
                 it with `{}`",
                source.describe(config_file),
                source.where_to_add_plugin_dirs(config_file),
                install_command(module_path, dirs.first().map(PathBuf::as_path))
            ),
            Self::Refused(reason) => reason.clone(),
        }
    }
}

impl std::fmt::Display for Unresolved {
    /// The reason alone: `no library '…' in the plugin dirs searched: …`, or the refusal.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound {
                file_name, dirs, ..
            } => {
                let searched = if dirs.is_empty() {
                    "(none configured)".to_owned()
                } else {
                    dirs.iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                write!(
                    f,
                    "no library '{file_name}' in the plugin dirs searched: {searched}"
                )
            }
            Self::Refused(reason) => f.write_str(reason),
        }
    }
}

/// [`resolve_library`] with the not-found case kept apart, so the loader can add the config in
/// force and what to do.
pub(crate) fn find_library(
    name: &BackendName,
    dirs: &[PathBuf],
    allow_writable: bool,
) -> Result<PathBuf, Unresolved> {
    let file_name = name.library_file_name();
    for dir in dirs {
        let candidate = dir.join(&file_name);
        match fs::symlink_metadata(&candidate) {
            Ok(_) => {
                return check_candidate(dir, &candidate, allow_writable)
                    .map_err(Unresolved::Refused)
            }
            Err(e) if is_absent(&e) => continue,
            Err(e) => {
                return Err(Unresolved::Refused(format!(
                    "cannot inspect '{}' in plugin dir '{}': {e}",
                    candidate.display(),
                    dir.display()
                )))
            }
        }
    }
    Err(Unresolved::NotFound {
        module_path: name.module_path().to_string(),
        file_name,
        stem: name.library_stem(),
        dirs: dirs.to_vec(),
    })
}

/// `taskhost plugin install <module path> [--dir <dir>]`, the dir quoted for a POSIX shell when
/// it needs to be.
fn install_command(module_path: &str, dir: Option<&Path>) -> String {
    let mut command = format!("taskhost plugin install {module_path}");
    if let Some(dir) = dir {
        let dir = dir.display().to_string();
        let plain = !dir.is_empty()
            && dir
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c));
        command.push_str(" --dir ");
        if plain {
            command.push_str(&dir);
        } else {
            command.push_str(&format!("'{}'", dir.replace('\'', "'\\''")));
        }
    }
    command
}

/// Whether an error from looking up a candidate means "not in this dir": the entry does not
/// exist, or the dir itself does not (or is not a directory).
fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// The checks on an entry that exists at `candidate` (directly inside `dir`).
fn check_candidate(dir: &Path, candidate: &Path, allow_writable: bool) -> Result<PathBuf, String> {
    let canonical_dir = fs::canonicalize(dir)
        .map_err(|e| format!("cannot resolve plugin dir '{}': {e}", dir.display()))?;
    let canonical = match fs::canonicalize(candidate) {
        Ok(path) => path,
        Err(e) => {
            let is_symlink = fs::symlink_metadata(candidate)
                .map(|m| m.file_type().is_symlink())
                .unwrap_or(false);
            return Err(if is_symlink && e.kind() == io::ErrorKind::NotFound {
                let target = fs::read_link(candidate)
                    .map(|t| format!(" (to '{}')", t.display()))
                    .unwrap_or_default();
                format!(
                    "'{}' is a dangling symlink{target}: its target does not exist",
                    candidate.display()
                )
            } else {
                format!("cannot resolve '{}': {e}", candidate.display())
            });
        }
    };
    if !canonical.starts_with(&canonical_dir) {
        return Err(format!(
            "'{}' is a symlink that leads outside its plugin dir '{}' (to '{}')",
            candidate.display(),
            dir.display(),
            canonical.display()
        ));
    }
    let metadata = fs::metadata(&canonical)
        .map_err(|e| format!("cannot inspect '{}': {e}", canonical.display()))?;
    if !metadata.is_file() {
        return Err(format!(
            "'{}' is not a regular file (it is {})",
            canonical.display(),
            describe(&metadata.file_type())
        ));
    }
    if !allow_writable {
        check_permissions(&canonical_dir)?;
        check_permissions(&canonical)?;
    }
    Ok(canonical)
}

/// "a directory", "a fifo", … for a file type that is not a regular file.
fn describe(file_type: &fs::FileType) -> &'static str {
    if file_type.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a fifo";
        }
        if file_type.is_socket() {
            return "a socket";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
    }
    "something else"
}

/// Every entry in `dir` whose name has the platform's library prefix and suffix around a stem a
/// backend name could map to (see [`library_stem_of`]), sorted, whatever its type — so
/// `taskhost backends` can report a misplaced directory or a broken symlink too. A missing or
/// unreadable dir gives an empty list.
pub fn library_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_str()
                .and_then(library_stem_of)
                .is_some()
        })
        .map(|entry| entry.path())
        .collect();
    files.sort();
    files
}

/// The permission check on its own (used by [`resolve_library`] and by `taskhost backends`).
///
/// On Unix, refuses `path` (a file or a dir; symlinks are followed) when it is writable by group
/// or others (`mode & 0o022`), or owned by a user other than root or the effective user of this
/// process. The owner rule applies on the Unix systems whose `uid_t` is 32 bits (Linux, Android,
/// the BSDs, Apple systems, illumos, Solaris), where the effective uid is read with
/// `geteuid(2)`; on other Unix targets only the mode is checked. Elsewhere this is a no-op.
pub fn check_permissions(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let metadata =
            fs::metadata(path).map_err(|e| format!("cannot inspect '{}': {e}", path.display()))?;
        let mode = metadata.mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(format!(
                "'{}' is writable by other users (mode 0o{mode:o}); refusing to load code from \
                 it — fix the permissions (chmod go-w) or set allow_writable_plugin_dirs = true \
                 in tasks.toml",
                path.display()
            ));
        }
        if let Some(euid) = effective_uid() {
            let owner = metadata.uid();
            if owner != 0 && owner != euid {
                return Err(format!(
                    "'{}' is owned by uid {owner}, neither root nor the current user (uid \
                     {euid}); refusing to load code from it — fix the owner (chown) or set \
                     allow_writable_plugin_dirs = true in tasks.toml",
                    path.display()
                ));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The effective uid of this process, where it can be read without the `libc` crate.
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "tvos",
    target_os = "watchos",
    target_os = "visionos",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly",
    target_os = "illumos",
    target_os = "solaris",
))]
fn effective_uid() -> Option<u32> {
    // `geteuid` is in the C library std already links, takes nothing, cannot fail, and returns
    // `uid_t`, which is `u32` on every target listed above.
    unsafe extern "C" {
        safe fn geteuid() -> u32;
    }
    Some(geteuid())
}

/// The effective uid of this process: not available on this target, so the owner rule is off.
#[cfg(all(
    unix,
    not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "tvos",
        target_os = "watchos",
        target_os = "visionos",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly",
        target_os = "illumos",
        target_os = "solaris",
    ))
))]
fn effective_uid() -> Option<u32> {
    None
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::os::unix::fs::{symlink, PermissionsExt};
    use tempfile::TempDir;

    fn name() -> BackendName {
        BackendName::parse("acme.redis.RedisBackend").unwrap()
    }

    fn set_mode(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A fresh plugin dir with safe permissions.
    fn plugin_dir() -> TempDir {
        let dir = tempfile::tempdir().unwrap();
        set_mode(dir.path(), 0o755);
        dir
    }

    /// Writes a fake library `file_name` into `dir` with safe permissions.
    fn write_lib(dir: &Path, file_name: &str) -> PathBuf {
        let path = dir.join(file_name);
        fs::write(&path, b"not really a library").unwrap();
        set_mode(&path, 0o644);
        path
    }

    fn canon(path: &Path) -> PathBuf {
        fs::canonicalize(path).unwrap()
    }

    #[test]
    fn found_in_the_only_dir() {
        let dir = plugin_dir();
        let lib = write_lib(dir.path(), &name().library_file_name());
        let found = resolve_library(&name(), &[dir.path().to_owned()], false).unwrap();
        assert_eq!(found, canon(&lib));
    }

    #[test]
    fn first_dir_that_has_the_file_wins() {
        let (a, b) = (plugin_dir(), plugin_dir());
        let lib_a = write_lib(a.path(), &name().library_file_name());
        let lib_b = write_lib(b.path(), &name().library_file_name());
        let dirs = [a.path().to_owned(), b.path().to_owned()];
        assert_eq!(
            resolve_library(&name(), &dirs, false).unwrap(),
            canon(&lib_a)
        );
        let dirs = [b.path().to_owned(), a.path().to_owned()];
        assert_eq!(
            resolve_library(&name(), &dirs, false).unwrap(),
            canon(&lib_b)
        );
    }

    #[test]
    fn later_dir_when_earlier_ones_lack_it() {
        let (empty, b) = (plugin_dir(), plugin_dir());
        let lib_b = write_lib(b.path(), &name().library_file_name());
        write_lib(empty.path(), "libsomething_else.so");
        let dirs = [
            empty.path().join("does-not-exist"),
            empty.path().to_owned(),
            b.path().to_owned(),
        ];
        assert_eq!(
            resolve_library(&name(), &dirs, false).unwrap(),
            canon(&lib_b)
        );
    }

    #[test]
    fn a_plugin_dir_that_is_a_file_is_skipped() {
        let (a, b) = (plugin_dir(), plugin_dir());
        let not_a_dir = write_lib(a.path(), "plain-file");
        let lib_b = write_lib(b.path(), &name().library_file_name());
        let dirs = [not_a_dir, b.path().to_owned()];
        assert_eq!(
            resolve_library(&name(), &dirs, false).unwrap(),
            canon(&lib_b)
        );
    }

    #[test]
    fn not_found_lists_every_dir() {
        let (a, b) = (plugin_dir(), plugin_dir());
        let missing = a.path().join("missing");
        let dirs = [a.path().to_owned(), missing.clone(), b.path().to_owned()];
        let err = resolve_library(&name(), &dirs, false).unwrap_err();
        assert_eq!(
            err,
            format!(
                "no library '{}' in the plugin dirs searched: {}, {}, {}",
                name().library_file_name(),
                a.path().display(),
                missing.display(),
                b.path().display()
            )
        );
    }

    #[test]
    fn not_found_with_no_dirs() {
        let err = resolve_library(&name(), &[], false).unwrap_err();
        assert_eq!(
            err,
            format!(
                "no library '{}' in the plugin dirs searched: (none configured)",
                name().library_file_name()
            )
        );
    }

    #[test]
    fn not_found_explains_the_config_in_force_and_what_to_do() {
        let dir = plugin_dir();
        let dirs = [dir.path().to_owned()];
        let err = find_library(&name(), &dirs, false).unwrap_err();
        let file = name().library_file_name();
        assert_eq!(
            err.explain(ConfigSource::CurrentDir, Some(Path::new("/app/tasks.toml"))),
            format!(
                "no library '{file}' in the plugin dirs searched: {}; config file: \
                 '/app/tasks.toml' (./tasks.toml in the current directory); build the plugin \
                 (its crate sets [lib] name = \"acme_redis\") and put '{file}' in one of those \
                 dirs, or add the dir that holds it to plugin_dirs in '/app/tasks.toml' or to \
                 $TASKHOST_PLUGIN_DIRS; install it with `taskhost plugin install acme.redis \
                 --dir {}`",
                dir.path().display(),
                dir.path().display()
            )
        );
        // A refusal is explained by itself.
        let lib = write_lib(dir.path(), &file);
        set_mode(&lib, 0o666);
        let err = find_library(&name(), &dirs, false).unwrap_err();
        assert_eq!(
            err.explain(ConfigSource::BuiltInDefault, None),
            err.to_string()
        );
        assert!(matches!(err, Unresolved::Refused(_)), "{err:?}");
    }

    #[test]
    fn the_install_command_names_the_module_path_and_the_first_dir() {
        let a = Path::new("/srv/app/plugins");
        assert_eq!(
            install_command("taskhost.backends.database", Some(a)),
            "taskhost plugin install taskhost.backends.database --dir /srv/app/plugins"
        );
        assert_eq!(
            install_command("acme.redis", None),
            "taskhost plugin install acme.redis"
        );
        assert_eq!(
            install_command("acme.redis", Some(Path::new("/my plugins/it's"))),
            "taskhost plugin install acme.redis --dir '/my plugins/it'\\''s'"
        );
        let err = find_library(&name(), &[a.to_owned(), "/b".into()], false).unwrap_err();
        let text = err.explain(ConfigSource::BuiltInDefault, None);
        assert!(
            text.ends_with(
                "; install it with `taskhost plugin install acme.redis --dir /srv/app/plugins`"
            ),
            "{text}"
        );
        assert!(text.contains("no config file was found"), "{text}");
    }

    fn immediate() -> BackendName {
        BackendName::parse("taskhost.backends.immediate.ImmediateBackend").unwrap()
    }

    #[test]
    fn a_built_in_is_used_only_when_no_plugin_dir_has_its_file() {
        let (empty, other) = (plugin_dir(), plugin_dir());
        write_lib(other.path(), "libsomething_else.so");
        let dirs = [
            empty.path().join("missing"),
            empty.path().to_owned(),
            other.path().to_owned(),
        ];
        match locate_library(&immediate(), &dirs, false).unwrap() {
            Located::BuiltIn(b) => assert_eq!(b.module_path, "taskhost.backends.immediate"),
            other => panic!("expected the built-in, got {other:?}"),
        }
        match locate_library(&immediate(), &[], false).unwrap() {
            Located::BuiltIn(b) => assert_eq!(b.module_path, "taskhost.backends.immediate"),
            other => panic!("expected the built-in, got {other:?}"),
        }
    }

    #[test]
    fn a_file_in_a_plugin_dir_wins_over_the_built_in() {
        let (a, b) = (plugin_dir(), plugin_dir());
        let lib = write_lib(b.path(), &immediate().library_file_name());
        let dirs = [a.path().to_owned(), b.path().to_owned()];
        match locate_library(&immediate(), &dirs, false).unwrap() {
            Located::File(path) => assert_eq!(path, canon(&lib)),
            other => panic!("expected the file, got {other:?}"),
        }
    }

    #[test]
    fn a_refused_file_is_not_replaced_by_the_built_in() {
        let dir = plugin_dir();
        let lib = write_lib(dir.path(), &immediate().library_file_name());
        set_mode(&lib, 0o666);
        let err = locate_library(&immediate(), &[dir.path().to_owned()], false).unwrap_err();
        assert!(
            err.contains("is writable by other users (mode 0o666)"),
            "{err}"
        );
        let candidate = dir.path().join(immediate().library_file_name());
        fs::remove_file(&candidate).unwrap();
        symlink("gone.so", &candidate).unwrap();
        let err = locate_library(&immediate(), &[dir.path().to_owned()], false).unwrap_err();
        assert!(err.contains("is a dangling symlink"), "{err}");
    }

    #[test]
    fn a_backend_that_is_not_built_in_is_still_not_found() {
        let dir = plugin_dir();
        let database = BackendName::parse("taskhost.backends.database.DatabaseBackend").unwrap();
        let err = locate(&database, &[dir.path().to_owned()], false).unwrap_err();
        assert!(matches!(err, Unresolved::NotFound { .. }), "{err:?}");
        assert!(
            err.explain(ConfigSource::Explicit, Some(Path::new("/app/tasks.toml")))
                .ends_with(&format!(
                    "; install it with `taskhost plugin install taskhost.backends.database --dir {}`",
                    dir.path().display()
                )),
            "{err}"
        );
    }

    #[test]
    fn symlink_inside_the_dir_is_accepted() {
        let dir = plugin_dir();
        let real = write_lib(dir.path(), "acme_redis-1.2.3.so");
        symlink(
            "acme_redis-1.2.3.so",
            dir.path().join(name().library_file_name()),
        )
        .unwrap();
        let found = resolve_library(&name(), &[dir.path().to_owned()], false).unwrap();
        assert_eq!(found, canon(&real));
    }

    #[test]
    fn symlink_into_a_subdir_is_accepted() {
        let dir = plugin_dir();
        let sub = dir.path().join("v1");
        fs::create_dir(&sub).unwrap();
        set_mode(&sub, 0o755);
        let real = write_lib(&sub, "real.so");
        symlink(&real, dir.path().join(name().library_file_name())).unwrap();
        let found = resolve_library(&name(), &[dir.path().to_owned()], false).unwrap();
        assert_eq!(found, canon(&real));
    }

    #[test]
    fn plugin_dir_reached_through_a_symlink_is_fine() {
        let (real_dir, links) = (plugin_dir(), plugin_dir());
        let lib = write_lib(real_dir.path(), &name().library_file_name());
        let link_dir = links.path().join("plugins");
        symlink(real_dir.path(), &link_dir).unwrap();
        let found = resolve_library(&name(), &[link_dir], false).unwrap();
        assert_eq!(found, canon(&lib));
    }

    #[test]
    fn symlink_leading_outside_is_refused() {
        let (dir, outside) = (plugin_dir(), plugin_dir());
        let target = write_lib(outside.path(), "evil.so");
        let candidate = dir.path().join(name().library_file_name());
        symlink(&target, &candidate).unwrap();
        let err = resolve_library(&name(), &[dir.path().to_owned()], true).unwrap_err();
        assert_eq!(
            err,
            format!(
                "'{}' is a symlink that leads outside its plugin dir '{}' (to '{}')",
                candidate.display(),
                dir.path().display(),
                canon(&target).display()
            )
        );
    }

    #[test]
    fn dot_dot_symlink_leading_outside_is_refused() {
        let parent = plugin_dir();
        let dir = parent.path().join("plugins");
        fs::create_dir(&dir).unwrap();
        set_mode(&dir, 0o755);
        write_lib(parent.path(), "evil.so");
        symlink("../evil.so", dir.join(name().library_file_name())).unwrap();
        let err = resolve_library(&name(), &[dir], false).unwrap_err();
        assert!(err.contains("leads outside its plugin dir"), "{err}");
        assert!(err.contains("evil.so"), "{err}");
    }

    #[test]
    fn directory_under_the_library_name_is_refused() {
        let dir = plugin_dir();
        let candidate = dir.path().join(name().library_file_name());
        fs::create_dir(&candidate).unwrap();
        let err = resolve_library(&name(), &[dir.path().to_owned()], true).unwrap_err();
        assert_eq!(
            err,
            format!(
                "'{}' is not a regular file (it is a directory)",
                canon(&candidate).display()
            )
        );
    }

    #[test]
    fn dangling_symlink_is_refused() {
        let dir = plugin_dir();
        let candidate = dir.path().join(name().library_file_name());
        symlink("gone.so", &candidate).unwrap();
        let other = plugin_dir();
        write_lib(other.path(), &name().library_file_name());
        // It is not shadowed by a later dir either.
        let dirs = [dir.path().to_owned(), other.path().to_owned()];
        let err = resolve_library(&name(), &dirs, false).unwrap_err();
        assert_eq!(
            err,
            format!(
                "'{}' is a dangling symlink (to 'gone.so'): its target does not exist",
                candidate.display()
            )
        );
    }

    #[test]
    fn symlink_loop_is_an_error_not_a_panic() {
        let dir = plugin_dir();
        let candidate = dir.path().join(name().library_file_name());
        symlink(&candidate, &candidate).unwrap();
        let err = resolve_library(&name(), &[dir.path().to_owned()], false).unwrap_err();
        assert!(
            err.starts_with(&format!("cannot resolve '{}'", candidate.display())),
            "{err}"
        );
    }

    #[test]
    fn world_writable_file_is_refused_unless_allowed() {
        let dir = plugin_dir();
        let lib = write_lib(dir.path(), &name().library_file_name());
        set_mode(&lib, 0o666);
        let dirs = [dir.path().to_owned()];
        let err = resolve_library(&name(), &dirs, false).unwrap_err();
        assert_eq!(
            err,
            format!(
                "'{}' is writable by other users (mode 0o666); refusing to load code from it — \
                 fix the permissions (chmod go-w) or set allow_writable_plugin_dirs = true in \
                 tasks.toml",
                canon(&lib).display()
            )
        );
        assert_eq!(resolve_library(&name(), &dirs, true).unwrap(), canon(&lib));
    }

    #[test]
    fn writable_file_in_first_dir_is_not_shadowed() {
        let (a, b) = (plugin_dir(), plugin_dir());
        let lib_a = write_lib(a.path(), &name().library_file_name());
        set_mode(&lib_a, 0o646);
        write_lib(b.path(), &name().library_file_name());
        let dirs = [a.path().to_owned(), b.path().to_owned()];
        let err = resolve_library(&name(), &dirs, false).unwrap_err();
        assert!(err.contains("(mode 0o646)"), "{err}");
    }

    #[test]
    fn group_writable_dir_is_refused_unless_allowed() {
        let dir = plugin_dir();
        let lib = write_lib(dir.path(), &name().library_file_name());
        set_mode(dir.path(), 0o775);
        let dirs = [dir.path().to_owned()];
        let err = resolve_library(&name(), &dirs, false).unwrap_err();
        assert!(
            err.starts_with(&format!(
                "'{}' is writable by other users (mode 0o775)",
                canon(dir.path()).display()
            )),
            "{err}"
        );
        assert!(err.contains("allow_writable_plugin_dirs = true"), "{err}");
        assert_eq!(resolve_library(&name(), &dirs, true).unwrap(), canon(&lib));
    }

    #[test]
    fn sticky_world_writable_dir_is_refused() {
        let dir = plugin_dir();
        write_lib(dir.path(), &name().library_file_name());
        set_mode(dir.path(), 0o1777);
        let err = resolve_library(&name(), &[dir.path().to_owned()], false).unwrap_err();
        assert!(err.contains("(mode 0o1777)"), "{err}");
    }

    #[test]
    fn check_permissions_accepts_safe_modes() {
        let dir = plugin_dir();
        let lib = write_lib(dir.path(), "x");
        check_permissions(dir.path()).unwrap();
        check_permissions(&lib).unwrap();
        set_mode(&lib, 0o700);
        check_permissions(&lib).unwrap();
        set_mode(&lib, 0o620);
        assert!(check_permissions(&lib)
            .unwrap_err()
            .contains("(mode 0o620)"));
        set_mode(&lib, 0o602);
        assert!(check_permissions(&lib)
            .unwrap_err()
            .contains("(mode 0o602)"));
        let err = check_permissions(&dir.path().join("missing")).unwrap_err();
        assert!(err.starts_with("cannot inspect '"), "{err}");
    }

    #[test]
    fn foreign_owner_is_refused_unless_allowed() {
        let Some(euid) = effective_uid() else { return };
        if euid != 0 {
            // Only root can give a file away; the rule is covered by the root run.
            return;
        }
        let dir = plugin_dir();
        let lib = write_lib(dir.path(), &name().library_file_name());
        std::os::unix::fs::chown(&lib, Some(4242), None).unwrap();
        let dirs = [dir.path().to_owned()];
        let err = resolve_library(&name(), &dirs, false).unwrap_err();
        assert_eq!(
            err,
            format!(
                "'{}' is owned by uid 4242, neither root nor the current user (uid 0); refusing \
                 to load code from it — fix the owner (chown) or set \
                 allow_writable_plugin_dirs = true in tasks.toml",
                canon(&lib).display()
            )
        );
        assert_eq!(resolve_library(&name(), &dirs, true).unwrap(), canon(&lib));
    }

    #[test]
    fn own_files_pass_the_owner_rule() {
        let dir = plugin_dir();
        let lib = write_lib(dir.path(), "x");
        if let Some(euid) = effective_uid() {
            use std::os::unix::fs::MetadataExt;
            assert_eq!(fs::metadata(&lib).unwrap().uid(), euid);
        }
        check_permissions(&lib).unwrap();
    }

    #[test]
    fn library_files_filters_by_prefix_and_suffix() {
        use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
        let dir = plugin_dir();
        let lib = |stem: &str| format!("{DLL_PREFIX}{stem}{DLL_SUFFIX}");
        for file in [
            lib("zeta"),
            lib("acme_redis"),
            lib("foo-bar"),
            lib(""),
            format!("{}.bak", lib("old")),
            "README.md".to_owned(),
            "acme_redis.txt".to_owned(),
        ] {
            write_lib(dir.path(), &file);
        }
        fs::create_dir(dir.path().join("subdir")).unwrap();
        symlink("zeta-target", dir.path().join(lib("broken"))).unwrap();
        let expected: Vec<PathBuf> = [lib("acme_redis"), lib("broken"), lib("zeta")]
            .iter()
            .map(|f| dir.path().join(f))
            .collect();
        assert_eq!(library_files(dir.path()), expected);
    }

    #[test]
    fn library_files_of_missing_dir_is_empty() {
        let dir = plugin_dir();
        assert!(library_files(&dir.path().join("missing")).is_empty());
        assert!(library_files(&write_lib(dir.path(), "file")).is_empty());
    }

    /// What to put under the library's name in one plugin dir.
    #[derive(Debug, Clone, Copy)]
    enum Entry {
        Nothing,
        File,
        WritableFile,
        SymlinkInside,
        SymlinkOutside,
        SymlinkToOtherDir,
        Dangling,
        Directory,
    }

    fn entry() -> impl Strategy<Value = Entry> {
        prop_oneof![
            Just(Entry::Nothing),
            Just(Entry::File),
            Just(Entry::WritableFile),
            Just(Entry::SymlinkInside),
            Just(Entry::SymlinkOutside),
            Just(Entry::SymlinkToOtherDir),
            Just(Entry::Dangling),
            Just(Entry::Directory),
        ]
    }

    fn valid_name() -> impl Strategy<Value = String> {
        proptest::collection::vec("[A-Za-z_][A-Za-z0-9_]{0,10}", 2..5)
            .prop_map(|segments| segments.join("."))
    }

    fn build(dir: &Path, other: &Path, outside: &Path, file_name: &str, entry: Entry) {
        let candidate = dir.join(file_name);
        match entry {
            Entry::Nothing => {}
            Entry::File => {
                write_lib(dir, file_name);
            }
            Entry::WritableFile => set_mode(&write_lib(dir, file_name), 0o666),
            Entry::SymlinkInside => {
                write_lib(dir, "real-target");
                symlink("real-target", &candidate).unwrap();
            }
            Entry::SymlinkOutside => {
                symlink(write_lib(outside, "evil"), &candidate).unwrap();
            }
            Entry::SymlinkToOtherDir => {
                symlink(write_lib(other, "lib-in-other-dir"), &candidate).unwrap();
            }
            Entry::Dangling => symlink("nowhere", &candidate).unwrap(),
            Entry::Directory => fs::create_dir(&candidate).unwrap(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn resolved_paths_stay_inside_a_plugin_dir(
            name in valid_name(),
            first in entry(),
            second in entry(),
            allow_writable in any::<bool>(),
        ) {
            let name = BackendName::parse(&name).unwrap();
            let (a, b, outside) = (plugin_dir(), plugin_dir(), plugin_dir());
            let file_name = name.library_file_name();
            build(a.path(), b.path(), outside.path(), &file_name, first);
            build(b.path(), a.path(), outside.path(), &file_name, second);
            let dirs = [a.path().to_owned(), b.path().to_owned()];
            let canonical_dirs = [canon(a.path()), canon(b.path())];
            match resolve_library(&name, &dirs, allow_writable) {
                Ok(path) => {
                    let inside = canonical_dirs.iter().position(|d| path.starts_with(d));
                    prop_assert!(inside.is_some(), "{} is outside the plugin dirs", path.display());
                    prop_assert!(fs::metadata(&path).unwrap().is_file());
                    // The first dir with an entry is the one used.
                    let expected = if matches!(first, Entry::Nothing) { 1 } else { 0 };
                    prop_assert_eq!(inside, Some(expected));
                }
                Err(reason) => {
                    prop_assert!(!reason.is_empty());
                    if matches!((first, second), (Entry::Nothing, Entry::Nothing)) {
                        prop_assert!(reason.starts_with("no library '"), "{}", reason);
                    }
                }
            }
            if matches!(first, Entry::File | Entry::SymlinkInside) {
                prop_assert!(resolve_library(&name, &dirs, allow_writable).is_ok());
            }
        }

        #[test]
        fn long_names_are_errors_not_panics(
            name in "[A-Za-z_][A-Za-z0-9_]{0,200}\\.[A-Za-z_][A-Za-z0-9_]{0,60}",
        ) {
            if let Ok(name) = BackendName::parse(&name) {
                let dir = plugin_dir();
                let result = resolve_library(&name, &[dir.path().to_owned()], false);
                prop_assert!(result.is_err());
            }
        }
    }
}
