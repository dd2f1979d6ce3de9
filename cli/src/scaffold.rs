//! `taskhost plugin new`: scaffold a buildable backend plugin crate.
//!
//! The crate depends on `taskhost-plugin-api` alone and holds a small working backend (an
//! in-memory store, like the Dummy backend) with unit tests, a README with the build, install,
//! config and test steps, and a `.gitignore`. The templates live in `cli/src/templates/`.
//!
//! Its `src/lib.rs` and `src/tests.rs` are `templates/lib.rs` and `templates/tests.rs`: real Rust,
//! the minimal plugin `acme.memo.MemoBackend` of `docs/plugin-authoring.md` (which shows both
//! files as they are) with the names replaced ([`render_source`]). That one file is the sample
//! backend everywhere: `examples/custom-backend` builds it and runs its tests as its `acme_memo`
//! example, and a test below checks that the guide shows it byte for byte.
//!
//! It builds as generated: `taskhost-plugin-api` is a path dependency on the plugin-api source
//! this tool was built from ([`BUILT_FROM_API`]), or on `--api-path`. Only when that source is
//! gone does it fall back to the registry version, with a note saying so. The README says how
//! to switch to a registry version once one is published.

use std::fs;
use std::path::{Path, PathBuf};
use taskhost::plugin::BackendName;
use taskhost_plugin_api::PLUGIN_API_VERSION;

const CARGO_TOML: &str = include_str!("templates/Cargo.toml.tmpl");
const LIB_RS: &str = include_str!("templates/lib.rs");
const TESTS_RS: &str = include_str!("templates/tests.rs");
const README_MD: &str = include_str!("templates/README.md.tmpl");
const GITIGNORE: &str = include_str!("templates/gitignore.tmpl");

/// Library names the scaffolded crate cannot take: Rust keywords and the crates it links.
const RESERVED_LIB_NAMES: &[&str] = &[
    "abi_stable",
    "alloc",
    "chrono",
    "core",
    "proc_macro",
    "serde",
    "serde_json",
    "std",
    "taskhost_plugin_api",
    "test",
    "tracing",
    // Rust keywords (strict and reserved).
    "abstract",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
];

/// The module path and class of the backend in `templates/lib.rs` and `templates/tests.rs`, which
/// [`render_source`] replaces by the plugin's.
const SOURCE_MODULE_PATH: &str = "acme.memo";
const SOURCE_CLASS: &str = "MemoBackend";

/// The plugin-api source this tool was built from (the host crate's sibling `plugin-api`): the
/// generated crate depends on it by path, so it builds against exactly this host's ABI.
pub(crate) const BUILT_FROM_API: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugin-api");

/// `taskhost plugin new NAME`: where to create the crate and what to call its backend.
#[derive(clap::Args, Debug, Clone)]
pub struct NewArgs {
    /// The plugin crate's package name, e.g. `acme-notes`: an ASCII letter, then letters,
    /// digits, `-` or `_`.
    pub name: String,

    /// The directory to create (default: ./NAME). It must not exist or be empty.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// The backend's dotted module path (default: NAME in lowercase with `-` as `_`, e.g.
    /// `acme_notes`). The library is named after it: `acme.notes` ⇒ `libacme_notes.so`.
    #[arg(long, value_name = "a.b.c")]
    pub module_path: Option<String>,

    /// The backend's class name (default: NAME in CamelCase + `Backend`, e.g.
    /// `AcmeNotesBackend`).
    #[arg(long, value_name = "ClassName")]
    pub class: Option<String>,

    /// Depend on this local checkout of taskhost-plugin-api (its directory) instead of the
    /// plugin-api source this tool was built from.
    #[arg(long, value_name = "PATH")]
    pub api_path: Option<PathBuf>,
}

/// The names of a plugin to scaffold, derived from [`NewArgs`] and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginNames {
    /// The cargo package name (`acme-notes`).
    pub package: String,
    /// The backend name as written in `tasks.toml` (`acme_notes.AcmeNotesBackend`).
    pub backend: BackendName,
}

impl PluginNames {
    /// Derive and validate the names: the package name as given; the module path and class as
    /// given, else derived from the package name (see [`NewArgs`]).
    pub fn from_args(args: &NewArgs) -> Result<Self, String> {
        let package = args.name.as_str();
        check_package_name(package)?;
        let module_path = args
            .module_path
            .clone()
            .unwrap_or_else(|| package.to_ascii_lowercase().replace('-', "_"));
        let class = args
            .class
            .clone()
            .unwrap_or_else(|| class_name_for(package));
        let full = format!("{module_path}.{class}");
        let backend = BackendName::parse(&full)?;
        if backend.class() != class {
            return Err(format!(
                "invalid class '{class}': a class name is one identifier, without '.'"
            ));
        }
        let lib_name = backend.library_stem();
        if RESERVED_LIB_NAMES.contains(&lib_name.as_str()) {
            return Err(format!(
                "module path '{module_path}' would name the library '{lib_name}', which is a Rust \
                 keyword or a crate the plugin links; choose another --module-path"
            ));
        }
        Ok(Self {
            package: package.to_string(),
            backend,
        })
    }
}

/// Where the generated crate's `taskhost-plugin-api` comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiDependency {
    /// The right-hand side of the `taskhost-plugin-api = …` line.
    pub toml: String,
    /// The plugin-api source directory depended on by path, or `None` for the registry.
    pub path: Option<PathBuf>,
    /// Why the registry version is used although it may not be published (the built-from source
    /// is gone), for the command's output; `None` when all is as expected.
    pub note: Option<String>,
}

impl ApiDependency {
    /// The registry requirement for this plugin-api series, e.g. `2.0` for 2.0.0.
    pub fn registry_version() -> String {
        let mut parts = PLUGIN_API_VERSION.split('.');
        match (parts.next(), parts.next()) {
            (Some(major), Some(minor)) => format!("{major}.{minor}"),
            _ => PLUGIN_API_VERSION.to_string(),
        }
    }

    /// The right-hand side of the `[dev-dependencies]` line: the same crate with its `testing`
    /// feature (`TestHost`, for the unit tests).
    pub fn dev_toml(&self) -> String {
        match &self.path {
            Some(dir) => {
                let path = toml::Value::String(dir.display().to_string());
                format!("{{ path = {path}, features = [\"testing\"] }}")
            }
            None => format!(
                "{{ version = \"{}\", features = [\"testing\"] }}",
                Self::registry_version()
            ),
        }
    }

    /// The registry line, e.g. `taskhost-plugin-api = "2.0"`.
    pub fn registry_line() -> String {
        format!("taskhost-plugin-api = \"{}\"", Self::registry_version())
    }

    /// Where it comes from, for the README and the summary.
    fn describe(&self) -> String {
        match &self.path {
            Some(dir) => format!("the local source at {}", dir.display()),
            None => format!("crates.io (version {})", Self::registry_version()),
        }
    }
}

/// Create the plugin crate described by `args`; returns its directory and where its
/// `taskhost-plugin-api` comes from.
pub fn new_plugin(args: &NewArgs) -> Result<(PathBuf, ApiDependency), String> {
    let names = PluginNames::from_args(args)?;
    let api = api_dependency(args.api_path.as_deref(), Path::new(BUILT_FROM_API))?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&names.package));
    check_target_dir(&dir)?;
    for (file, text) in files(&names, &api) {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create '{}': {e}", parent.display()))?;
        }
        fs::write(&path, text).map_err(|e| format!("cannot write '{}': {e}", path.display()))?;
    }
    Ok((fs::canonicalize(&dir).unwrap_or(dir), api))
}

/// The files of the crate, by path inside it, with their text.
fn files(names: &PluginNames, api: &ApiDependency) -> [(&'static str, String); 5] {
    [
        ("Cargo.toml", render(CARGO_TOML, names, api)),
        ("src/lib.rs", render_source(LIB_RS, names)),
        ("src/tests.rs", render_source(TESTS_RS, names)),
        ("README.md", render(README_MD, names, api)),
        (".gitignore", render(GITIGNORE, names, api)),
    ]
}

/// What `taskhost plugin new` prints once the crate exists.
pub fn summary(dir: &Path, names: &PluginNames, api: &ApiDependency) -> String {
    let backend = &names.backend;
    let mut text = format!(
        "Created plugin crate '{}' in {}\n  backend: {backend}\n  library: {} ([lib] name = \"{}\")\n\
         \x20 taskhost-plugin-api: {}\n",
        names.package,
        dir.display(),
        backend.library_file_name(),
        backend.library_stem(),
        api.describe(),
    );
    if let Some(note) = &api.note {
        text.push_str(&format!("note: {note}\n"));
    } else {
        text.push_str(&format!(
            "  (once taskhost-plugin-api {} is published on crates.io, replace its path in \
             Cargo.toml by the version: `{}`, see README.md)\n",
            ApiDependency::registry_version(),
            ApiDependency::registry_line()
        ));
    }
    text.push_str(&format!(
        "Next: cargo build, then `taskhost plugin test target/debug/{} --class {}`; copy the \
         library into a plugin dir and name {backend} in tasks.toml (see README.md)",
        backend.library_file_name(),
        backend.class()
    ));
    text
}

/// A cargo package name: an ASCII letter, then ASCII letters, digits, `-` or `_`.
fn check_package_name(name: &str) -> Result<(), String> {
    let valid = name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid plugin name '{}': it becomes the cargo package name, so it must be an ASCII \
             letter followed by letters, digits, '-' or '_' (at most 64), e.g. 'acme-notes'",
            name.escape_debug()
        ))
    }
}

/// `acme-notes` ⇒ `AcmeNotesBackend`: each `-`/`_`-separated part capitalised, then `Backend`
/// unless the name already ends with it.
fn class_name_for(package: &str) -> String {
    let mut class: String = package
        .split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    if !class.ends_with("Backend") {
        class.push_str("Backend");
    }
    class
}

/// Where the generated crate's `taskhost-plugin-api` comes from: `api_path` when given (it must
/// be the plugin-api crate), else `built_from` (the source this tool was built from) when it is
/// still there, else the registry version, with a note.
fn api_dependency(api_path: Option<&Path>, built_from: &Path) -> Result<ApiDependency, String> {
    if let Some(path) = api_path {
        let dir =
            plugin_api_dir(path).map_err(|reason| format!("cannot use --api-path: {reason}"))?;
        return Ok(path_dependency(dir));
    }
    match plugin_api_dir(built_from) {
        Ok(dir) => Ok(path_dependency(dir)),
        Err(reason) => Ok(ApiDependency {
            toml: format!("\"{}\"", ApiDependency::registry_version()),
            path: None,
            note: Some(format!(
                "the taskhost-plugin-api source this tool was built from is not usable ({reason}), \
                 so the crate depends on the registry version \"{}\"; if that is not published \
                 yet, the crate will not build: run `taskhost plugin new` again with --api-path \
                 <taskhost checkout>/plugin-api",
                ApiDependency::registry_version()
            )),
        }),
    }
}

/// A path dependency on the plugin-api crate in `dir` (canonical).
fn path_dependency(dir: PathBuf) -> ApiDependency {
    let path = toml::Value::String(dir.display().to_string());
    ApiDependency {
        toml: format!("{{ path = {path} }}"),
        path: Some(dir),
        note: None,
    }
}

/// `path` canonicalized, when it is the taskhost-plugin-api crate; else the reason, starting
/// with the path quoted.
fn plugin_api_dir(path: &Path) -> Result<PathBuf, String> {
    let dir = fs::canonicalize(path).map_err(|e| format!("'{}': {e}", path.display()))?;
    let manifest = fs::read_to_string(dir.join("Cargo.toml")).map_err(|e| {
        format!(
            "'{}' is not a crate directory (no readable Cargo.toml: {e})",
            dir.display()
        )
    })?;
    if !manifest.contains("name = \"taskhost-plugin-api\"") {
        return Err(format!(
            "'{}' is not taskhost-plugin-api: its Cargo.toml names another package",
            dir.display()
        ));
    }
    Ok(dir)
}

/// Refuse a target that exists and is not an empty directory.
fn check_target_dir(dir: &Path) -> Result<(), String> {
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(format!(
                    "'{}' already exists and is not empty; refusing to overwrite it (choose \
                     another --dir)",
                    dir.display()
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) if dir.exists() => Err(format!(
            "'{}' already exists and is not a readable directory; refusing to overwrite it",
            dir.display()
        )),
        Err(e) => Err(format!("cannot use '{}': {e}", dir.display())),
    }
}

/// Fill a template's `{{placeholders}}`.
fn render(template: &str, names: &PluginNames, api: &ApiDependency) -> String {
    let backend = &names.backend;
    template
        .replace("{{package}}", &names.package)
        .replace("{{backend}}", &backend.full())
        .replace("{{module_path}}", backend.module_path())
        .replace("{{class}}", backend.class())
        .replace("{{lib_name}}", &backend.library_stem())
        .replace("{{api_dependency}}", &api.toml)
        .replace("{{api_dev_dependency}}", &api.dev_toml())
        .replace("{{api_source}}", &api.describe())
        .replace(
            "{{api_registry_version}}",
            &ApiDependency::registry_version(),
        )
        .replace("{{api_registry_line}}", &ApiDependency::registry_line())
}

/// A Rust source of `templates/` for this plugin: [`SOURCE_CLASS`] and [`SOURCE_MODULE_PATH`]
/// replaced by its class and module path (the class first: a module path may contain
/// `MemoBackend`, a class cannot contain `acme.memo`).
fn render_source(source: &str, names: &PluginNames) -> String {
    let backend = &names.backend;
    source
        .replace(SOURCE_CLASS, backend.class())
        .replace(SOURCE_MODULE_PATH, backend.module_path())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(name: &str) -> NewArgs {
        NewArgs {
            name: name.to_string(),
            dir: None,
            module_path: None,
            class: None,
            api_path: None,
        }
    }

    fn names(args: &NewArgs) -> (String, String, String) {
        let names = PluginNames::from_args(args).unwrap();
        let backend = names.backend;
        (
            names.package,
            backend.module_path().to_string(),
            backend.class().to_string(),
        )
    }

    #[test]
    fn module_path_and_class_are_derived_from_the_name() {
        let cases = [
            ("acme-notes", "acme_notes", "AcmeNotesBackend"),
            ("acme_notes", "acme_notes", "AcmeNotesBackend"),
            ("Redis", "redis", "RedisBackend"),
            ("mail-backend", "mail_backend", "MailBackend"),
            ("s3--spool2", "s3__spool2", "S3Spool2Backend"),
        ];
        for (name, module_path, class) in cases {
            assert_eq!(
                names(&args(name)),
                (name.to_string(), module_path.to_string(), class.to_string()),
                "{name}"
            );
        }
    }

    #[test]
    fn given_module_path_and_class_are_kept() {
        let given = NewArgs {
            module_path: Some("acme.notes".into()),
            class: Some("NotesBackend".into()),
            ..args("acme-notes")
        };
        let names = PluginNames::from_args(&given).unwrap();
        assert_eq!(names.backend.full(), "acme.notes.NotesBackend");
        assert_eq!(names.backend.library_stem(), "acme_notes");
    }

    #[test]
    fn invalid_names_are_refused_with_the_reason() {
        let cases = [
            (
                args("9lives"),
                "invalid plugin name '9lives': it becomes the cargo package name",
            ),
            (args("acme notes"), "invalid plugin name 'acme notes'"),
            (args(""), "invalid plugin name ''"),
            (
                NewArgs {
                    module_path: Some("acme..notes".into()),
                    ..args("acme-notes")
                },
                "invalid backend name: empty segment ('..' in 'acme..notes.AcmeNotesBackend')",
            ),
            (
                NewArgs {
                    module_path: Some("acme.9".into()),
                    ..args("acme-notes")
                },
                "invalid backend name: segment '9' is not an identifier",
            ),
            (
                NewArgs {
                    class: Some("Notes.Backend".into()),
                    ..args("acme-notes")
                },
                "invalid class 'Notes.Backend': a class name is one identifier, without '.'",
            ),
            (
                args("serde_json"),
                "module path 'serde_json' would name the library 'serde_json', which is a Rust \
                 keyword or a crate the plugin links",
            ),
            (args("self"), "would name the library 'self'"),
        ];
        for (given, expected) in cases {
            let err = PluginNames::from_args(&given).unwrap_err();
            assert!(err.contains(expected), "{given:?}: {err}");
        }
    }

    /// The source of this checkout's plugin-api, canonical.
    fn this_api() -> PathBuf {
        fs::canonicalize(BUILT_FROM_API).unwrap()
    }

    fn registry() -> ApiDependency {
        api_dependency(None, Path::new("/no/such/taskhost/plugin-api")).unwrap()
    }

    #[test]
    fn every_placeholder_is_filled() {
        let names = PluginNames::from_args(&args("acme-notes")).unwrap();
        let api = api_dependency(None, Path::new(BUILT_FROM_API)).unwrap();
        for api in [&api, &registry()] {
            for template in [CARGO_TOML, README_MD, GITIGNORE] {
                let text = render(template, &names, api);
                assert!(!text.contains("{{"), "{text}");
                assert!(!text.contains("}}"), "{text}");
            }
        }
        let manifest = render(CARGO_TOML, &names, &api);
        assert!(manifest.contains("name = \"acme-notes\""), "{manifest}");
        assert!(manifest.contains("name = \"acme_notes\""), "{manifest}");
        let path = format!("{:?}", this_api().display().to_string());
        assert!(
            manifest.contains(&format!(
                "\n[dependencies]\n{}taskhost-plugin-api = {{ path = {path} }}\n",
                comment_lines(&manifest, "[dependencies]")
            )),
            "{manifest}"
        );
        assert!(
            manifest.contains(&format!(
                "taskhost-plugin-api = {{ path = {path}, features = [\"testing\"] }}\n"
            )),
            "{manifest}"
        );
        let manifest = render(CARGO_TOML, &names, &registry());
        let version = ApiDependency::registry_version();
        assert!(
            manifest.contains(&format!(
                "taskhost-plugin-api = {{ version = \"{version}\", features = [\"testing\"] }}\n"
            )),
            "{manifest}"
        );
        let readme = render(README_MD, &names, &api);
        assert!(
            readme.contains(&format!(
                "\n```toml\n[dependencies]\ntaskhost-plugin-api = \"{version}\"\n\n\
                 [dev-dependencies]\ntaskhost-plugin-api = {{ version = \"{version}\", features \
                 = [\"testing\"] }}\n```\n"
            )),
            "{readme}"
        );
        assert!(
            readme.contains(
                "taskhost plugin test target/release/libacme_notes.so --class AcmeNotesBackend\n"
            ),
            "{readme}"
        );
    }

    /// The comment lines right after `header` in `manifest`, as they are.
    fn comment_lines(manifest: &str, header: &str) -> String {
        let after = manifest.split_once(&format!("{header}\n")).unwrap().1;
        after
            .lines()
            .take_while(|line| line.starts_with('#'))
            .map(|line| format!("{line}\n"))
            .collect()
    }

    #[test]
    fn the_sources_get_the_plugins_names() {
        let names = PluginNames::from_args(&args("acme-notes")).unwrap();
        let api = api_dependency(None, Path::new(BUILT_FROM_API)).unwrap();
        let files = files(&names, &api);
        let lib = &files[1].1;
        assert_eq!(files[1].0, "src/lib.rs");
        assert!(
            lib.starts_with("//! `acme_notes.AcmeNotesBackend`: "),
            "{lib}"
        );
        assert!(
            lib.contains("\n    module_path: \"acme_notes\",\n"),
            "{lib}"
        );
        assert!(
            lib.contains("\n    classes: { \"AcmeNotesBackend\" => AcmeNotesBackend::new },\n"),
            "{lib}"
        );
        assert!(lib.contains("\npub struct AcmeNotesBackend {\n"), "{lib}");
        assert!(lib.contains("\nmod tests;\n"), "{lib}");
        let tests = &files[2].1;
        assert_eq!(files[2].0, "src/tests.rs");
        assert!(
            tests.contains("\n    let backend = AcmeNotesBackend::new(BackendParams::default(), "),
            "{tests}"
        );
        for (file, text) in &files[1..3] {
            assert!(!text.contains(SOURCE_CLASS), "{file}: {text}");
            assert!(!text.contains(SOURCE_MODULE_PATH), "{file}: {text}");
        }
        // A module path may contain the source's class name; the class cannot hold a '.'.
        let odd = NewArgs {
            module_path: Some("memo.MemoBackend".into()),
            class: Some("Notes".into()),
            ..args("acme-notes")
        };
        let lib = render_source(LIB_RS, &PluginNames::from_args(&odd).unwrap());
        assert!(lib.contains("module_path: \"memo.MemoBackend\","), "{lib}");
        assert!(
            lib.contains("classes: { \"Notes\" => Notes::new },"),
            "{lib}"
        );
    }

    /// `docs/plugin-authoring.md` shows the minimal plugin as it is: `templates/lib.rs` as the
    /// guide's `src/lib.rs` (the crate `tests/e2e/authoring.rs` builds and runs the conformance
    /// suite against), byte for byte, and the start of `templates/tests.rs` as its unit tests;
    /// and they are what `taskhost plugin new acme-memo --module-path acme.memo --class
    /// MemoBackend` writes.
    #[test]
    fn the_guide_shows_the_scaffolds_sources_as_they_are() {
        let guide_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/plugin-authoring.md");
        let guide = fs::read_to_string(&guide_path).unwrap();
        assert!(
            guide.contains(&format!("\n```rust\n{LIB_RS}```\n")),
            "docs/plugin-authoring.md does not show cli/src/templates/lib.rs as its \
             src/lib.rs (a ```rust block holding exactly that file): copy the file into the guide"
        );
        let fence = "\n```rust,ignore\n//! Unit tests";
        let start = guide.find(fence).expect("the guide shows src/tests.rs") + fence.len() - 14;
        let shown = &guide[start..start + guide[start..].find("```\n").unwrap()];
        assert!(
            TESTS_RS.starts_with(shown) && shown.ends_with("\n}\n"),
            "the guide's src/tests.rs block is not the start of cli/src/templates/tests.rs, \
             up to the end of an item: copy it from the file\n{shown}"
        );
        let memo = NewArgs {
            module_path: Some(SOURCE_MODULE_PATH.into()),
            class: Some(SOURCE_CLASS.into()),
            ..args("acme-memo")
        };
        let names = PluginNames::from_args(&memo).unwrap();
        assert_eq!(render_source(LIB_RS, &names), LIB_RS);
        assert_eq!(render_source(TESTS_RS, &names), TESTS_RS);
    }

    #[test]
    fn the_default_dependency_is_the_plugin_api_source_the_tool_was_built_from() {
        let api = api_dependency(None, Path::new(BUILT_FROM_API)).unwrap();
        assert_eq!(
            api,
            ApiDependency {
                toml: format!("{{ path = {:?} }}", this_api().display().to_string()),
                path: Some(this_api()),
                note: None,
            }
        );
    }

    #[test]
    fn without_the_built_from_source_the_registry_version_is_used_with_a_note() {
        let version = ApiDependency::registry_version();
        let mut parts = PLUGIN_API_VERSION.split('.');
        assert_eq!(
            version,
            format!("{}.{}", parts.next().unwrap(), parts.next().unwrap())
        );
        let api = registry();
        assert_eq!(api.toml, format!("\"{version}\""));
        assert_eq!(api.path, None);
        assert_eq!(
            api.note.unwrap(),
            format!(
                "the taskhost-plugin-api source this tool was built from is not usable \
                 ('/no/such/taskhost/plugin-api': No such file or directory (os error 2)), so the \
                 crate depends on the registry version \"{version}\"; if that is not published \
                 yet, the crate will not build: run `taskhost plugin new` again with --api-path \
                 <taskhost checkout>/plugin-api"
            )
        );
    }

    #[test]
    fn api_path_must_be_the_plugin_api_crate() {
        let api = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-api");
        let nowhere = Path::new("/no/such/taskhost/plugin-api");
        let dependency = api_dependency(Some(&api), nowhere).unwrap();
        assert_eq!(
            dependency.toml,
            format!("{{ path = {:?} }}", this_api().display().to_string())
        );
        let host = Path::new(env!("CARGO_MANIFEST_DIR"));
        let err = api_dependency(Some(host), nowhere).unwrap_err();
        assert_eq!(
            err,
            format!(
                "cannot use --api-path: '{}' is not taskhost-plugin-api: its Cargo.toml names \
                 another package",
                fs::canonicalize(host).unwrap().display()
            )
        );
        let err = api_dependency(Some(&host.join("no-such-dir")), nowhere).unwrap_err();
        assert!(err.starts_with("cannot use --api-path: '"), "{err}");
    }

    #[test]
    fn new_plugin_writes_the_crate_and_refuses_a_non_empty_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("acme-notes");
        let given = NewArgs {
            dir: Some(dir.clone()),
            ..args("acme-notes")
        };
        let (created, _) = new_plugin(&given).unwrap();
        assert_eq!(created, fs::canonicalize(&dir).unwrap());
        for file in [
            "Cargo.toml",
            "src/lib.rs",
            "src/tests.rs",
            "README.md",
            ".gitignore",
        ] {
            assert!(dir.join(file).is_file(), "{file}");
        }
        let err = new_plugin(&given).unwrap_err();
        assert_eq!(
            err,
            format!(
                "'{}' already exists and is not empty; refusing to overwrite it (choose another \
                 --dir)",
                dir.display()
            )
        );
        let empty = tmp.path().join("empty");
        fs::create_dir(&empty).unwrap();
        new_plugin(&NewArgs {
            dir: Some(empty.clone()),
            ..args("acme-notes")
        })
        .unwrap();
        assert!(empty.join("src/lib.rs").is_file());
    }

    #[test]
    fn the_summary_names_the_backend_and_the_library() {
        let names = PluginNames::from_args(&args("acme-notes")).unwrap();
        let api = api_dependency(None, Path::new(BUILT_FROM_API)).unwrap();
        let text = summary(Path::new("/x/acme-notes"), &names, &api);
        let file = names.backend.library_file_name();
        assert!(text.starts_with("Created plugin crate 'acme-notes' in /x/acme-notes\n"));
        assert!(
            text.contains("  backend: acme_notes.AcmeNotesBackend\n"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "  library: {file} ([lib] name = \"acme_notes\")\n"
            )),
            "{text}"
        );
        let version = ApiDependency::registry_version();
        assert!(
            text.ends_with(&format!(
                "  taskhost-plugin-api: the local source at {}\n  (once taskhost-plugin-api \
                 {version} is published on crates.io, replace its path in Cargo.toml by the \
                 version: `taskhost-plugin-api = \"{version}\"`, see README.md)\nNext: cargo \
                 build, then `taskhost \
                 plugin test target/debug/{file} --class AcmeNotesBackend`; copy the library \
                 into a plugin dir and name acme_notes.AcmeNotesBackend in tasks.toml (see \
                 README.md)",
                this_api().display()
            )),
            "{text}"
        );
        let text = summary(Path::new("/x/acme-notes"), &names, &registry());
        assert!(
            text.contains(&format!(
                "  taskhost-plugin-api: crates.io (version {version})\nnote: the \
                 taskhost-plugin-api source this tool was built from is not usable"
            )),
            "{text}"
        );
    }
}
