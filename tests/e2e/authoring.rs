//! `docs/plugin-authoring.md`, followed step by step: `taskhost plugin new` scaffolds a plugin
//! crate in an empty directory, cargo builds it on its own (against `taskhost-plugin-api` only),
//! the library is copied into a plugin dir and named in `tasks.toml` — and the `taskhost` tool
//! and this test binary, both built before the plugin existed, load it and use it. The guide's
//! own hand-written crate (its `Cargo.toml` and `src/lib.rs` blocks) is built the same way and
//! must pass the conformance suite, and every other `rust` block of the guide must compile.

use chrono::{SubsecRound, Utc};
use serde_json::json;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use taskhost::{Config, TaskBackends, TaskResultStatus};
use taskhost_e2e::external::{build_external, external_dir, library_file_name};
use taskhost_e2e::{taskhost_bin, workspace_root};
use taskhost_plugin_api::TaskDescription;
use taskhost_plugin_api::PLUGIN_API_VERSION;
use taskhost_testkit::Conformance;

/// What `taskhost plugin new acme-notes` derives from the name.
const BACKEND: &str = "acme_notes.AcmeNotesBackend";
const LIB_NAME: &str = "acme_notes";

/// The scaffolded crate's own target dir (what [`build_external`] uses for "scaffold").
fn scaffold_target_dir() -> PathBuf {
    external_dir().join("scaffold")
}

/// Run the `taskhost` tool; returns its output (stdout and stderr).
fn taskhost(args: &[&str]) -> Output {
    Command::new(taskhost_bin())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", taskhost_bin().display()))
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// The scaffolded crate and its built library, made once per test process.
struct Scaffolded {
    crate_dir: PathBuf,
    library: PathBuf,
}

/// Follow the guide's first steps once: `taskhost plugin new` into an empty directory
/// (`target/external/scaffold-src/acme-notes`, emptied first), `cargo build` of the crate as
/// generated (no `--api-path`, no patched dependency, no lock file brought in), and `cargo test`
/// of the unit tests the scaffold comes with.
fn scaffolded() -> &'static Scaffolded {
    static ONCE: OnceLock<Scaffolded> = OnceLock::new();
    ONCE.get_or_init(|| {
        let crate_dir = external_dir().join("scaffold-src").join("acme-notes");
        if crate_dir.exists() {
            fs::remove_dir_all(&crate_dir).unwrap();
        }
        scaffold(&crate_dir);
        let library = build_external("scaffold", &crate_dir, LIB_NAME);
        assert_unit_tests_pass(&crate_dir);
        Scaffolded { crate_dir, library }
    })
}

/// `taskhost plugin new acme-notes --dir <dir>`, nothing more: the crate depends on the
/// plugin-api source the tool was built from (this checkout's), and nothing in it is patched
/// before it is built.
fn scaffold(dir: &Path) {
    let output = taskhost(&["plugin", "new", "acme-notes", "--dir", path_arg(dir)]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    let dir = fs::canonicalize(dir).unwrap();
    let api = fs::canonicalize(workspace_root().join("plugin-api")).unwrap();
    assert!(
        stdout.starts_with(&format!(
            "Created plugin crate 'acme-notes' in {}\n",
            dir.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("  backend: {BACKEND}\n")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "  taskhost-plugin-api: the local source at {}\n",
            api.display()
        )),
        "{stdout}"
    );
    for file in ["Cargo.toml", "src/lib.rs", "README.md", ".gitignore"] {
        assert!(dir.join(file).is_file(), "{file} was not written");
    }
    let manifest = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains(&format!(
            "\ntaskhost-plugin-api = {{ path = {:?} }}\n",
            path_arg(&api)
        )),
        "{manifest}"
    );
    assert!(!dir.join("Cargo.lock").exists());
}

/// `cargo test` in the scaffolded crate: its unit tests call the backend with a fake host.
fn assert_unit_tests_pass(crate_dir: &Path) {
    let output = Command::new(env!("CARGO"))
        .args(["test", "--quiet", "--manifest-path"])
        .arg(crate_dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", scaffold_target_dir())
        .current_dir(crate_dir)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "the scaffold's unit tests failed:\n{stdout}{stderr}"
    );
}

/// The application side: `my-app/plugins/libacme_notes.so` and `my-app/tasks.toml`.
fn install(app: &Path, library: &Path) -> PathBuf {
    let plugins = app.join("plugins");
    fs::create_dir_all(&plugins).unwrap();
    let installed = plugins.join(library_file_name(LIB_NAME));
    fs::copy(library, &installed).unwrap();
    let config = app.join("tasks.toml");
    fs::write(
        &config,
        format!("plugin_dirs = [\"plugins\"]\n\n[tasks.default]\nbackend = \"{BACKEND}\"\n"),
    )
    .unwrap();
    fs::canonicalize(installed).unwrap()
}

fn description() -> TaskDescription {
    TaskDescription {
        path: "my_app::notes::send".into(),
        priority: 5,
        queue_name: "default".into(),
        backend: "default".into(),
        run_after: Some((Utc::now() + chrono::Duration::minutes(5)).trunc_subsecs(6)),
        takes_context: false,
        is_async: false,
        max_attempts: None,
        timeout_secs: None,
    }
}

#[test]
fn a_plugin_made_from_nothing_builds_and_runs_in_a_host_that_was_not_rebuilt() {
    let scaffolded = scaffolded();
    assert!(scaffolded.crate_dir.join("README.md").is_file());
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("my-app");
    let installed = install(&app, &scaffolded.library);
    let config_file = app.join("tasks.toml");

    let check = taskhost(&["check", "--config", path_arg(&config_file)]);
    let (stdout, stderr) = text(&check);
    assert!(check.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.starts_with(&format!(
            "taskhost check: 1 backend(s) OK from {}: default ({BACKEND})",
            config_file.display()
        )),
        "{stdout}"
    );
    let listed = taskhost(&["backends", "--config", path_arg(&config_file)]);
    let (stdout, stderr) = text(&listed);
    assert!(listed.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "  {}: module {LIB_NAME} classes [AcmeNotesBackend] plugin-api {PLUGIN_API_VERSION} \
             (acme-notes 0.1.0)",
            library_file_name(LIB_NAME)
        )),
        "{stdout}"
    );

    let backends = TaskBackends::new(Config::from_file(&config_file).unwrap());
    let backend = backends.get("default").unwrap();
    assert_eq!(backend.class_name(), "AcmeNotesBackend");
    assert_eq!(backend.library_path(), installed);
    assert!(backend.supports_defer() && backend.supports_priority());
    assert!(backend.supports_get_result() && backend.supports_async_task());
    let task = description();
    let kwargs = json!({ "to": "ops" }).as_object().unwrap().clone();
    let enqueued = backend
        .enqueue_json(&task, vec![json!("hello")], kwargs.clone())
        .unwrap();
    assert_eq!(enqueued.status(), TaskResultStatus::Ready);
    assert!(enqueued.enqueued_at().is_some());
    let fetched = backend.get_result(enqueued.id()).unwrap();
    assert_eq!(fetched.data(), enqueued.data());
    assert_eq!(fetched.args(), &[json!("hello")]);
    assert_eq!(fetched.kwargs(), &kwargs);
    assert_eq!(fetched.task(), &task);
    let all = backend.results().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].id(), enqueued.id());
    assert_eq!(backend.check().unwrap(), vec![]);

    let report = Conformance::new(&installed, BACKEND).run();
    assert!(report.is_success(), "{report}");
}

#[test]
fn the_scaffolded_crate_as_generated_passes_plugin_test_given_its_class_name_alone() {
    let scaffolded = scaffolded();
    let library = path_arg(&scaffolded.library);
    let output = taskhost(&["plugin", "test", library, "--class", "AcmeNotesBackend"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("PASS loads\nPASS manifest\n"),
        "{stdout}"
    );
    let summary = stdout.lines().last().unwrap();
    assert!(summary.contains(" passed, 0 failed, "), "{stdout}");
}

#[test]
fn the_scaffolded_backend_refuses_unknown_options_when_loaded() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("my-app");
    install(&app, &scaffolded().library);
    let config = app.join("tasks.toml");
    fs::write(
        &config,
        format!(
            "plugin_dirs = [\"plugins\"]\n[tasks.notes]\nbackend = \"{BACKEND}\"\n\
             [tasks.notes.options]\ncolour = \"red\"\n"
        ),
    )
    .unwrap();
    let check = taskhost(&["check", "--config", path_arg(&config)]);
    let (stdout, stderr) = text(&check);
    assert_eq!(check.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "error: Backend '{BACKEND}' (alias 'notes') could not be created: unknown option \
             'colour'; this backend takes none"
        )),
        "{stdout}"
    );
}

#[test]
fn plugin_new_refuses_a_non_empty_dir() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("keep.txt"), "mine").unwrap();
    let output = taskhost(&["plugin", "new", "acme-notes", "--dir", path_arg(tmp.path())]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(
        stderr,
        format!(
            "error: '{}' already exists and is not empty; refusing to overwrite it (choose \
             another --dir)\n",
            tmp.path().display()
        )
    );
    assert_eq!(
        fs::read_to_string(tmp.path().join("keep.txt")).unwrap(),
        "mine"
    );
    assert!(!tmp.path().join("Cargo.toml").exists());
}

#[test]
fn plugin_new_refuses_a_module_path_the_host_could_not_load() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("x");
    let output = taskhost(&[
        "plugin",
        "new",
        "acme-notes",
        "--dir",
        path_arg(&dir),
        "--module-path",
        "acme/notes",
    ]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(
        stderr,
        "error: invalid backend name: segment 'acme/notes' is not an identifier \
         ([A-Za-z_][A-Za-z0-9_]*): '/' is not allowed (only ASCII letters, digits and '_')\n"
    );
    assert!(!dir.exists());
}

/// The guide, as the tests read it.
fn guide() -> String {
    let path = workspace_root().join("docs").join("plugin-authoring.md");
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A fenced code block of the guide: its info string (`rust`, `toml`, `rust,ignore`…) and text.
struct Block {
    info: String,
    text: String,
}

/// Every fenced block of `markdown`, indented ones (inside list items) included.
fn blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, Block)> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match open.take() {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let block = Block {
                        info: info.trim().to_string(),
                        text: String::new(),
                    };
                    open = Some((indent, block));
                }
            }
            Some((fence_indent, block)) if trimmed == "```" => {
                assert_eq!(indent, fence_indent, "misaligned fence in the guide");
                blocks.push(block);
            }
            Some((fence_indent, mut block)) => {
                block
                    .text
                    .push_str(line.get(fence_indent..).unwrap_or("").trim_end());
                block.text.push('\n');
                open = Some((fence_indent, block));
            }
        }
    }
    assert!(open.is_none(), "the guide has an unclosed code block");
    blocks
}

/// rustdoc's rule: a `rust` block is compiled unless marked `ignore` (or another language).
fn is_compiled_rust(info: &str) -> bool {
    let mut tags = info.split(',').map(str::trim);
    tags.next() == Some("rust") && tags.all(|tag| tag != "ignore")
}

/// The guide's walk-through crate (section 2), written from its blocks under
/// `target/external/guide-src/acme-memo`: `Cargo.toml` from the `toml` block with `[lib]` (the
/// plugin-api dependency pointed at this checkout), `src/lib.rs` from the `rust` block that
/// calls `export_plugin!`, and every other compiled `rust` block as an example, wrapped in
/// `fn main` as rustdoc would.
fn write_guide_crate(dir: &Path) {
    let blocks = blocks(&guide());
    let manifest = blocks
        .iter()
        .find(|b| b.info == "toml" && b.text.contains("[lib]"))
        .expect("the guide has a Cargo.toml block")
        .text
        .lines()
        .map(|line| {
            if line.starts_with("taskhost-plugin-api = ") {
                let api = workspace_root().join("plugin-api");
                format!("taskhost-plugin-api = {{ path = {:?} }}", path_arg(&api))
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(manifest.contains("{ path = "), "{manifest}");
    let (lib, others): (Vec<&Block>, Vec<&Block>) = blocks
        .iter()
        .filter(|b| is_compiled_rust(&b.info))
        .partition(|b| b.text.contains("export_plugin!"));
    assert_eq!(lib.len(), 1, "the guide has one src/lib.rs block");
    assert!(!others.is_empty(), "the guide has further rust blocks");
    if dir.exists() {
        fs::remove_dir_all(dir).unwrap();
    }
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::create_dir_all(dir.join("examples")).unwrap();
    fs::write(
        dir.join("Cargo.toml"),
        format!("{manifest}\n\n[workspace]\n"),
    )
    .unwrap();
    fs::write(dir.join("src").join("lib.rs"), &lib[0].text).unwrap();
    for (i, block) in others.iter().enumerate() {
        let text = if block.text.contains("fn main") {
            block.text.clone()
        } else {
            format!("#![allow(unused)]\nfn main() {{\n{}}}\n", block.text)
        };
        fs::write(dir.join("examples").join(format!("block_{i}.rs")), text).unwrap();
    }
    fs::copy(workspace_root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
}

#[test]
fn the_guides_own_crate_builds_conforms_and_every_rust_block_compiles() {
    let crate_dir = external_dir().join("guide-src").join("acme-memo");
    write_guide_crate(&crate_dir);
    let output = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--lib", "--examples", "--manifest-path"])
        .arg(crate_dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", scaffold_target_dir())
        .current_dir(&crate_dir)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "the guide's code does not build:\n{stdout}{stderr}"
    );
    let library = scaffold_target_dir()
        .join("debug")
        .join(library_file_name("acme_memo"));

    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    fs::create_dir(&plugins).unwrap();
    let installed = plugins.join(library_file_name("acme_memo"));
    fs::copy(&library, &installed).unwrap();
    let config = tmp.path().join("tasks.toml");
    let tasks_toml = blocks(&guide())
        .into_iter()
        .find(|b| b.info == "toml" && b.text.contains("acme.memo.MemoBackend"))
        .expect("the guide has a tasks.toml block")
        .text;
    fs::write(&config, tasks_toml).unwrap();

    let listed = taskhost(&["backends", "--config", path_arg(&config)]);
    let (stdout, stderr) = text(&listed);
    assert!(listed.status.success(), "{stdout}{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.contains("acme_memo"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(
        line.trim_start(),
        format!(
            "{}: module acme.memo classes [MemoBackend] plugin-api {PLUGIN_API_VERSION} \
             (acme-memo 0.1.0)",
            library_file_name("acme_memo")
        )
    );
    #[cfg(target_os = "linux")]
    assert!(guide().contains(line), "the guide does not show `{line}`");
    let check = taskhost(&["check", "--config", path_arg(&config)]);
    let (stdout, stderr) = text(&check);
    assert!(check.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.ends_with(": default (acme.memo.MemoBackend)\n"),
        "{stdout}"
    );

    let report = Conformance::new(&installed, "acme.memo.MemoBackend").run();
    assert!(report.is_success(), "{report}");
}
