//! Loading: the library resolves, opens and builds like any configured backend; its manifest
//! and capabilities read back; its health checks answer.

use crate::context::{describe, Check, Ctx, Install, Verdict};
use crate::{pass, Conformance, ALIAS};
use std::collections::BTreeMap;
use taskhost::plugin::{name::library_stem_of, BackendName, Library};
use taskhost::TaskBackends;
use taskhost::{BackendConfig, Config, ConfigSource};
use taskhost_plugin_api::{Capabilities, PLUGIN_API_VERSION};

pub(crate) const CHECKS: &[Check] = &[
    Check {
        name: "manifest",
        run: manifest,
    },
    Check {
        name: "capabilities",
        run: capabilities,
    },
    Check {
        name: "health_check",
        run: health_check,
    },
];

/// The `loads` check: copy the library into a fresh plugin dir under its own file name, then
/// load it through a [`TaskBackends`] handler as alias [`ALIAS`] with the given options.
///
/// A class name given alone (`MemoBackend`) is completed with the module path the copy's
/// manifest declares (see [`BackendName::complete`]); a full name is taken as given.
pub(crate) fn load(c: &Conformance) -> Result<Ctx, String> {
    let invalid = |reason: String| {
        format!(
            "'{}' is not a valid backend name: {reason}",
            c.class.escape_debug()
        )
    };
    let full = if c.class.contains('.') {
        Some(BackendName::parse(&c.class).map_err(invalid)?)
    } else {
        None
    };
    let (install, copy) = Install::new(&c.path)?;
    let name = match full {
        Some(name) => name,
        None => {
            let library = Library::open(&copy).map_err(|reason| {
                format!(
                    "cannot read the manifest of '{}' to complete the class name '{}': {reason}",
                    c.path.display(),
                    c.class.escape_debug()
                )
            })?;
            let manifest = library.manifest();
            BackendName::complete(&c.class, &manifest.module_path, &manifest.classes)
                .map_err(|reason| format!("'{}': {reason}", c.path.display()))?
        }
    };
    let file_name = c
        .path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    if file_name != name.library_file_name() {
        return Err(format!(
            "backend '{name}' must live in a library file named '{}' (cargo: [lib] name = \"{}\"), \
             but the file under test is '{}'",
            name.library_file_name(),
            name.library_stem(),
            c.path.display()
        ));
    }
    let mut entry = BackendConfig::new(name.full());
    entry.queues = Vec::new();
    entry.enqueue_on_commit = true;
    entry.options = c.options.clone();
    let mut config = Config::default_config();
    config.file = None;
    config.source = ConfigSource::InCode;
    config.plugin_dirs = vec![install.dir.clone()];
    config.allow_writable_plugin_dirs = true;
    config.backends = BTreeMap::from([(ALIAS.to_string(), entry)]);
    let handler = TaskBackends::new(config);
    let backend = handler.get(ALIAS).map_err(|e| e.to_string())?;
    Ok(Ctx {
        backend,
        class: name.class().to_string(),
        nonce: uuid::Uuid::now_v7().simple().to_string()[20..].to_string(),
        _handler: handler,
        install,
    })
}

/// The manifest names the module path the file is named for, exports the class, and was built
/// against this host's plugin-api series; the file loaded is the copy under test.
fn manifest(ctx: &Ctx) -> Verdict {
    let path = ctx.backend.library_path();
    let library = Library::open(path)?;
    let m = library.manifest();
    let name = BackendName::parse(ctx.backend.backend_name())?;
    let dir = std::fs::canonicalize(&ctx.install.dir).unwrap_or_else(|_| ctx.install.dir.clone());
    ensure!(
        path.starts_with(&dir),
        "the backend was loaded from '{}', not from the copy in '{}'",
        path.display(),
        dir.display()
    );
    ensure!(
        m.module_path == name.module_path(),
        "the manifest declares module path '{}', the backend name says '{}'",
        m.module_path,
        name.module_path()
    );
    let file_name = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
    let stem = library_stem_of(file_name).unwrap_or(file_name);
    ensure!(
        stem == m.module_path.replace('.', "_"),
        "the file '{file_name}' does not match module path '{}'",
        m.module_path
    );
    ensure!(
        m.classes.iter().any(|c| c == name.class()),
        "the manifest does not export class '{}' (it exports: {})",
        name.class(),
        m.classes.join(", ")
    );
    let major = |v: &str| v.split('.').next().unwrap_or("").to_string();
    ensure!(
        major(&m.plugin_api_version) == major(PLUGIN_API_VERSION),
        "built against taskhost-plugin-api {}, this host uses {PLUGIN_API_VERSION}",
        m.plugin_api_version
    );
    pass()
}

/// The capability flags read back; every flag set is one this host knows.
fn capabilities(ctx: &Ctx) -> Verdict {
    let caps = ctx.backend.capabilities();
    let known = Capabilities::KNOWN;
    let unknown = Capabilities(caps.0 & !known.0);
    ensure!(
        unknown == Capabilities::NONE,
        "the backend declares capability bits this host does not know: {:?} (of {:?}); built \
         against a newer taskhost-plugin-api?",
        unknown.names(),
        caps.names()
    );
    pass()
}

/// `check()` answers with well-formed messages and no error.
fn health_check(ctx: &Ctx) -> Verdict {
    let messages = ctx.backend.check().map_err(|e| describe("check()", &e))?;
    for m in &messages {
        ensure!(
            m.level == "error" || m.level == "warning",
            "check() returned a message of level '{}' (expected 'error' or 'warning'): {}",
            m.level,
            m.message
        );
        ensure!(
            m.level != "error",
            "check() reports an error: {}{}",
            m.message,
            m.hint
                .as_ref()
                .map(|h| format!(" (hint: {h})"))
                .unwrap_or_default()
        );
    }
    pass()
}
