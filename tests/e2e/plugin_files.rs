//! Plugin files that crash whatever opens them, and integrity pins, through the real `taskhost`
//! binary (and the host library's own loading, for pins).
//!
//! - A shared object built here with `cc` whose ELF constructor aborts (or dereferences null, or
//!   hangs), next to the real plugins: `backends`, `check` and `plugin test` exit normally,
//!   report that file as refused with the signal, and still list and check the good plugins.
//! - A mutation sweep: copies of the real Immediate plugin with 1–16 random bytes flipped
//!   anywhere (fixed seed, xorshift), through `taskhost backends` and `taskhost check`; the
//!   `taskhost` process must never die by a signal. 40 copies by default;
//!   `TASKHOST_MUTATION_FULL=1` for 200 (400 runs, as in the issue). Prints a `figures` line.
//! - `[plugin_pins]`: a matching pin loads, a flipped byte or a missing pin is refused naming
//!   the file, both digests and the key, `taskhost plugin pin` output round-trips, and an
//!   unknown key under the table is an error naming it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use taskhost::{Error, TaskBackends};
use taskhost_e2e::build::worker_app_bin;
use taskhost_e2e::{
    config_text, config_with, plugin_file, stripped_plugin_bytes, taskhost_bin, Rng,
};
use taskhost_plugin_api::PLUGIN_API_VERSION;

const DUMMY_FILE: &str = "libtaskhost_backends_dummy.so";
const IMMEDIATE_FILE: &str = "libtaskhost_backends_immediate.so";
const DUMMY_BACKEND: &str = "taskhost.backends.dummy.DummyBackend";
const IMMEDIATE_BACKEND: &str = "taskhost.backends.immediate.ImmediateBackend";

/// Build a shared object from C `source` with `cc` into `dir/file_name`.
fn cc_library(dir: &Path, file_name: &str, source: &str) -> PathBuf {
    let c = dir.join(format!("{file_name}.c"));
    fs::write(&c, source).unwrap();
    let out = dir.join(file_name);
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&out)
        .arg(&c)
        .status()
        .expect("a C compiler (cc) is needed to build the crashing fixture libraries");
    assert!(status.success(), "cc failed for {file_name}");
    fs::remove_file(&c).unwrap();
    out
}

const ABORTS: &str = "#include <stdlib.h>\n\
    __attribute__((constructor)) static void crash_when_opened(void) { abort(); }\n\
    int plugin_function(void) { return 1; }\n";

const SEGFAULTS: &str = "__attribute__((constructor)) static void crash_when_opened(void) {\n\
    *(volatile int *)0 = 1;\n}\n\
    int plugin_function(void) { return 1; }\n";

const HANGS: &str = "#include <unistd.h>\n\
    __attribute__((constructor)) static void hang_when_opened(void) { for (;;) pause(); }\n\
    int plugin_function(void) { return 1; }\n";

/// Run the real `taskhost` with `args`, `--config config` and extra environment.
fn taskhost(args: &[&str], config: Option<&Path>, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(taskhost_bin());
    command.args(args);
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    for (k, v) in env {
        command.env(k, v);
    }
    command.env_remove("RUST_LOG");
    command.output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What `taskhost backends` always ends with: the backends built into the host.
const BUILT_INS: &str = "built into this host (used when no plugin dir has their file)\n  \
    taskhost.backends.immediate: classes [ImmediateBackend]\n  \
    taskhost.backends.dummy: classes [DummyBackend]\n";

/// `taskhost backends`' listing of the plugin dirs: its stdout without the built-ins it ends
/// with (checked here).
fn dirs_listing(out: &Output) -> String {
    let text = stdout(out);
    let dirs = text.strip_suffix(BUILT_INS);
    dirs.unwrap_or_else(|| panic!("no built-ins at the end of:\n{text}"))
        .to_string()
}

fn all_output(out: &Output) -> String {
    stdout(out) + &String::from_utf8_lossy(&out.stderr)
}

/// The process exited (not killed by a signal) with `code`.
#[track_caller]
fn assert_exit(out: &Output, code: i32) {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            None,
            "taskhost died by a signal:\n{}",
            all_output(out)
        );
    }
    assert_eq!(out.status.code(), Some(code), "{}", all_output(out));
}

/// A plugin dir in `root` holding copies of the Dummy and Immediate plugins (0o755 dir).
fn plugins_with_good_copies(root: &Path) -> PathBuf {
    let plugins = root.join("plugins");
    fs::create_dir(&plugins).unwrap();
    for lib in ["taskhost_backends_dummy", "taskhost_backends_immediate"] {
        let file = plugin_file(lib);
        fs::copy(&file, plugins.join(file.file_name().unwrap())).unwrap();
    }
    plugins
}

fn canon(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn diagnostic_commands_survive_plugin_files_that_crash_when_opened() {
    let root = tempfile::tempdir().unwrap();
    let plugins = plugins_with_good_copies(root.path());
    let abort = cc_library(&plugins, "libacme_abort.so", ABORTS);
    let segv = cc_library(&plugins, "libacme_segv.so", SEGFAULTS);
    let config = root.path().join("tasks.toml");
    fs::write(
        &config,
        "plugin_dirs = [\"plugins\"]\n\
         [tasks.default]\nbackend = \"taskhost.backends.immediate.ImmediateBackend\"\n\
         [tasks.abort]\nbackend = \"acme.abort.AbortBackend\"\n\
         [tasks.dummy]\nbackend = \"taskhost.backends.dummy.DummyBackend\"\n\
         [tasks.segv]\nbackend = \"acme.segv.SegvBackend\"\n",
    )
    .unwrap();

    // backends: every file listed, the crashing ones refused with the signal.
    let out = taskhost(&["backends"], Some(&config), &[]);
    assert_exit(&out, 0);
    let text = dirs_listing(&out);
    let dir_line = plugins.display().to_string();
    let expected = [
        dir_line.as_str(),
        &format!(
            "  libacme_abort.so: not loadable: '{}' crashed the inspecting process with SIGABRT \
             (signal 6) while opening it; refusing it",
            abort.display()
        ),
        &format!(
            "  libacme_segv.so: not loadable: '{}' crashed the inspecting process with SIGSEGV \
             (signal 11) while opening it; refusing it",
            segv.display()
        ),
        &format!(
            "  {DUMMY_FILE}: module taskhost.backends.dummy classes [DummyBackend] plugin-api \
             {PLUGIN_API_VERSION} (taskhost-backends-dummy "
        ),
        &format!(
            "  {IMMEDIATE_FILE}: module taskhost.backends.immediate classes [ImmediateBackend] \
             plugin-api {PLUGIN_API_VERSION} (taskhost-backends-immediate "
        ),
    ];
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{text}");
    for (line, want) in lines.iter().zip(expected) {
        assert!(
            line.starts_with(want),
            "expected {want:?}\n got {line:?}\n{text}"
        );
    }
    // The same from an application's binary that mounts the CLI (taskhost_cli::main()): its
    // inspecting process is that binary.
    let app = Command::new(worker_app_bin())
        .arg("--config")
        .arg(&config)
        .arg("backends")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_exit(&app, 0);
    assert_eq!(dirs_listing(&app), text);

    // check: the two crashing aliases are errors naming file and signal; the good ones pass.
    let out = taskhost(&["check"], Some(&config), &[]);
    assert_exit(&out, 1);
    let text = stdout(&out);
    let crash_line = |alias: &str, backend: &str, file: &Path, signal: &str| {
        format!(
            "error: Could not find backend '{backend}': '{}' crashed the inspecting process \
             with {signal} while loading backend '{alias}' and running its checks; refusing it \
             (alias '{alias}')",
            canon(file).display()
        )
    };
    assert_eq!(
        text,
        format!(
            "{}\n{}\ntaskhost check: 2 error(s) in {}\n",
            crash_line(
                "abort",
                "acme.abort.AbortBackend",
                &abort,
                "SIGABRT (signal 6)"
            ),
            crash_line(
                "segv",
                "acme.segv.SegvBackend",
                &segv,
                "SIGSEGV (signal 11)"
            ),
            config.display()
        )
    );

    // plugin test: the suite's process dies; the report says so, in both formats.
    let abort_arg = abort.display().to_string();
    let out = taskhost(
        &[
            "plugin",
            "test",
            &abort_arg,
            "--class",
            "acme.abort.AbortBackend",
        ],
        None,
        &[],
    );
    assert_exit(&out, 1);
    assert_eq!(
        stdout(&out),
        format!(
            "FAIL suite: '{abort_arg}' crashed the inspecting process with SIGABRT (signal 6) \
             while running the conformance suite; refusing it\n0 passed, 1 failed, 0 skipped\n"
        )
    );
    let out = taskhost(
        &[
            "plugin",
            "test",
            &abort_arg,
            "--class",
            "acme.abort.AbortBackend",
            "--format",
            "json",
        ],
        None,
        &[],
    );
    assert_exit(&out, 1);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["failed"], 1, "{report}");
    assert_eq!(report["checks"][0]["name"], "suite", "{report}");

    // And a good plugin still passes plugin test (run in its child).
    let dummy = plugins.join(DUMMY_FILE).display().to_string();
    let out = taskhost(
        &[
            "plugin",
            "test",
            &dummy,
            "--class",
            "taskhost.backends.dummy.DummyBackend",
        ],
        None,
        &[],
    );
    assert_exit(&out, 0);
    assert!(
        stdout(&out).starts_with("PASS loads\n"),
        "{}",
        all_output(&out)
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_plugin_file_whose_constructor_hangs_is_killed_and_refused() {
    let root = tempfile::tempdir().unwrap();
    let plugins = root.path().join("plugins");
    fs::create_dir(&plugins).unwrap();
    let hang = cc_library(&plugins, "libacme_hang.so", HANGS);
    let config = root.path().join("tasks.toml");
    fs::write(&config, "plugin_dirs = [\"plugins\"]\n[tasks]\n").unwrap();
    let out = taskhost(
        &["backends"],
        Some(&config),
        &[("TASKHOST_INSPECT_TIMEOUT_SECS", "1")],
    );
    assert_exit(&out, 0);
    assert_eq!(
        dirs_listing(&out),
        format!(
            "{}\n  libacme_hang.so: not loadable: '{}' kept the inspecting process busy for more \
             than 1 s while opening it (a constructor that hangs?); it was killed; refusing it \
             (set TASKHOST_INSPECT_TIMEOUT_SECS to wait longer)\n",
            plugins.display(),
            hang.display()
        )
    );
}

/// How one mutated copy fared.
fn outcome_of(line: &str) -> String {
    if line.contains(": module taskhost.backends.immediate ") {
        return "loaded (mutation not detected)".into();
    }
    if let Some(at) = line.find("crashed the inspecting process with ") {
        let rest = &line[at + "crashed the inspecting process with ".len()..];
        return format!(
            "crash contained: {}",
            rest.split(" (").next().unwrap_or(rest)
        );
    }
    if let Some(at) = line.find("made the inspecting process exit with status ") {
        let rest = &line[at + "made the inspecting process exit with ".len()..];
        let status = rest.split(' ').take(2).collect::<Vec<_>>().join(" ");
        let ld_so = if line.contains("ld.so") {
            ", ld.so"
        } else {
            ""
        };
        return format!("crash contained: exit {status}{ld_so}");
    }
    if line.contains("left the inspecting process without an answer") {
        return "crash contained: no answer".into();
    }
    if line.contains("kept the inspecting process busy") {
        return "crash contained: hang, killed".into();
    }
    for reason in [
        "does not match its pin",
        "is not a loadable shared library",
        "is a shared library but not a taskhost plugin",
        "is an abi_stable library for",
        "is not a loadable abi_stable library",
        "its ABI layout does not match",
        "returned an unreadable manifest",
        "declares module path",
        "cannot be loaded",
        "taskhost-plugin-api",
    ] {
        if line.contains(reason) {
            return format!("refused: {reason}");
        }
    }
    format!("refused: other ({line})")
}

#[cfg(all(
    target_os = "linux",
    target_pointer_width = "64",
    target_endian = "little"
))]
#[test]
fn mutated_plugin_files_never_crash_taskhost() {
    let full = std::env::var_os("TASKHOST_MUTATION_FULL").is_some_and(|v| v == "1");
    let copies: usize = if full { 200 } else { 40 };
    let work = tempfile::tempdir().unwrap();
    let real = stripped_plugin_bytes("taskhost_backends_immediate", work.path());
    let pinned = format!(
        "[plugin_pins]\n\"{IMMEDIATE_FILE}\" = \"{}\"\n",
        taskhost::plugin::PinDigest::of(&real)
    );
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    let (mut backends, mut check, mut pin_refusals) = (BTreeMap::new(), BTreeMap::new(), 0);
    let mut runs = 0;
    let env = [("TASKHOST_INSPECT_TIMEOUT_SECS", "20")];
    for batch in 0..copies.div_ceil(40) {
        let batch_dir = work.path().join(format!("batch{batch}"));
        fs::create_dir(&batch_dir).unwrap();
        let mut dirs = Vec::new();
        for i in 0..40.min(copies - batch * 40) {
            let dir = batch_dir.join(format!("m{i}"));
            fs::create_dir(&dir).unwrap();
            let mut bytes = real.clone();
            for _ in 0..=rng.below(16) {
                let at = rng.below(bytes.len() as u64) as usize;
                bytes[at] ^= (rng.next() as u8) | 1;
            }
            fs::write(dir.join(IMMEDIATE_FILE), &bytes).unwrap();
            dirs.push(dir);
        }
        let dir_list = dirs
            .iter()
            .map(|d| serde_json::to_string(&d.display().to_string()).unwrap())
            .collect::<Vec<_>>()
            .join(", ");

        // One `backends` run over every copy of the batch (one plugin dir each).
        let config = batch_dir.join("tasks.toml");
        fs::write(&config, format!("plugin_dirs = [{dir_list}]\n[tasks]\n")).unwrap();
        let out = taskhost(&["backends"], Some(&config), &env);
        runs += 1;
        assert_exit(&out, 0);
        let text = dirs_listing(&out);
        let file_lines: Vec<&str> = text.lines().filter(|l| l.starts_with("  ")).collect();
        assert_eq!(file_lines.len(), dirs.len(), "{text}");
        for line in file_lines {
            *backends.entry(outcome_of(line)).or_insert(0) += 1;
        }

        // With the original's pin, every copy is refused before it is opened.
        fs::write(
            &config,
            format!("plugin_dirs = [{dir_list}]\n[tasks]\n{pinned}"),
        )
        .unwrap();
        let out = taskhost(&["backends"], Some(&config), &env);
        runs += 1;
        assert_exit(&out, 0);
        pin_refusals += dirs_listing(&out)
            .lines()
            .filter(|l| l.contains(": not loadable: ") && l.contains("does not match its pin"))
            .count();

        // One `check` run per copy.
        for dir in &dirs {
            let config = dir.join("tasks.toml");
            let text = config_text(dir, "default", IMMEDIATE_BACKEND, "");
            fs::write(&config, text).unwrap();
            let out = taskhost(&["check"], Some(&config), &env);
            runs += 1;
            #[cfg(unix)]
            {
                use std::os::unix::process::ExitStatusExt;
                assert_eq!(out.status.signal(), None, "{}", all_output(&out));
            }
            let text = stdout(&out);
            let outcome = if out.status.code() == Some(0) {
                "loaded (mutation not detected)".to_string()
            } else {
                assert_eq!(out.status.code(), Some(1), "{text}");
                let first = text.lines().next().unwrap_or("");
                outcome_of(first)
            };
            *check.entry(outcome).or_insert(0) += 1;
        }
        fs::remove_dir_all(&batch_dir).unwrap();
    }
    assert_eq!(pin_refusals, copies);
    let format = |m: &BTreeMap<String, usize>| {
        m.iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let contained = |m: &BTreeMap<String, usize>| {
        m.iter()
            .filter(|(k, _)| k.starts_with("crash contained"))
            .map(|(_, v)| v)
            .sum::<usize>()
    };
    eprintln!(
        "figures: {copies} mutated copies, {runs} taskhost runs, 0 died by a signal; \
         backends: {} crashes contained [{}]; check: {} crashes contained [{}]; \
         with the original's pin: {pin_refusals}/{copies} refused before opening",
        contained(&backends),
        format(&backends),
        contained(&check),
        format(&check),
    );
}

/// A config in `root` with `plugins` as its plugin dir, the Dummy backend as alias `dummy`,
/// and `extra` appended.
fn dummy_config(root: &Path, plugins: &Path, extra: &str) -> PathBuf {
    let config = root.join("tasks.toml");
    fs::write(&config, config_text(plugins, "dummy", DUMMY_BACKEND, extra)).unwrap();
    config
}

#[test]
fn plugin_pin_prints_a_table_that_round_trips_and_write_puts_it_in_the_config() {
    let root = tempfile::tempdir().unwrap();
    let plugins = plugins_with_good_copies(root.path());
    fs::write(plugins.join("libjunk.so"), "not a library").unwrap();
    let config = dummy_config(root.path(), &plugins, "");
    let digest = |file: &str| {
        taskhost::plugin::PinDigest::of(&fs::read(plugins.join(file)).unwrap()).to_string()
    };

    let out = taskhost(&["plugin", "pin"], Some(&config), &[]);
    assert_exit(&out, 0);
    let table = stdout(&out);
    assert_eq!(
        table,
        format!(
            "[plugin_pins]\n\"libjunk.so\" = \"{}\"\n\"{DUMMY_FILE}\" = \"{}\"\n\
             \"{IMMEDIATE_FILE}\" = \"{}\"\n",
            digest("libjunk.so"),
            digest(DUMMY_FILE),
            digest(IMMEDIATE_FILE)
        )
    );
    // The printed table reads back as the same pins.
    let parsed = config_with(&format!("{table}[tasks]\n"))
        .plugin_pins
        .unwrap();
    assert_eq!(parsed.len(), 3);
    assert_eq!(
        parsed.get(DUMMY_FILE).unwrap().to_string(),
        digest(DUMMY_FILE)
    );

    // --write adds the table; check then loads the pinned plugin; a second write is a no-op.
    let out = taskhost(&["plugin", "pin", "--write"], Some(&config), &[]);
    assert_exit(&out, 0);
    assert_eq!(
        stdout(&out),
        format!("wrote 3 pin(s) to [plugin_pins] in {}\n", config.display())
    );
    let written = fs::read_to_string(&config).unwrap();
    assert!(written.ends_with(&format!("\n\n{table}")), "{written}");
    let out = taskhost(&["check"], Some(&config), &[]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).starts_with("taskhost check: 1 backend(s) OK from "),
        "{}",
        all_output(&out)
    );
    let out = taskhost(&["plugin", "pin", "--write"], Some(&config), &[]);
    assert_exit(&out, 0);
    assert_eq!(fs::read_to_string(&config).unwrap(), written);
}

#[test]
fn a_pinned_plugin_loads_and_a_flipped_byte_or_a_missing_pin_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let good = root.path().join("good");
    let flipped = root.path().join("flipped");
    for dir in [&good, &flipped] {
        fs::create_dir(dir).unwrap();
    }
    let original = fs::read(plugin_file("taskhost_backends_dummy")).unwrap();
    fs::write(good.join(DUMMY_FILE), &original).unwrap();
    let mut bytes = original.clone();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    fs::write(flipped.join(DUMMY_FILE), &bytes).unwrap();
    let (pin, flipped_pin) = (
        taskhost::plugin::PinDigest::of(&original),
        taskhost::plugin::PinDigest::of(&bytes),
    );
    let pins = format!("[plugin_pins]\n\"{DUMMY_FILE}\" = \"{pin}\"\n");
    let config =
        |dir: &Path, pins: &str| config_with(&config_text(dir, "dummy", DUMMY_BACKEND, pins));

    // The host library's own loading (what workers and applications use).
    let loaded = TaskBackends::new(config(&good, &pins))
        .get("dummy")
        .unwrap();
    assert_eq!(
        loaded.library_path(),
        canon(&good.join(DUMMY_FILE)).as_path()
    );
    let key = format!("plugin_pins.\"{DUMMY_FILE}\"");
    match TaskBackends::new(config(&flipped, &pins)).get("dummy") {
        Err(Error::InvalidTaskBackend { message, .. }) => assert_eq!(
            message,
            format!(
                "Could not find backend 'taskhost.backends.dummy.DummyBackend': '{}' does not \
                 match its pin: {key} expects {pin}, but the file has {flipped_pin}; refusing to \
                 open it — if the file was replaced on purpose, update {key} (taskhost plugin \
                 pin --write) (alias 'dummy')",
                canon(&flipped.join(DUMMY_FILE)).display()
            )
        ),
        other => panic!("expected a pin refusal, got {other:?}"),
    }
    let other_pin = format!("[plugin_pins]\n\"{IMMEDIATE_FILE}\" = \"{pin}\"\n");
    match TaskBackends::new(config(&good, &other_pin)).get("dummy") {
        Err(Error::InvalidTaskBackend { message, .. }) => assert_eq!(
            message,
            format!(
                "Could not find backend 'taskhost.backends.dummy.DummyBackend': '{}' has no \
                 pin, and [plugin_pins] is configured, so every plugin file needs one; refusing \
                 to open it — if the file is trusted, add {key} = \"{pin}\" (taskhost plugin \
                 pin --write) (alias 'dummy')",
                canon(&good.join(DUMMY_FILE)).display()
            )
        ),
        other => panic!("expected a missing-pin refusal, got {other:?}"),
    }

    // The real binary: check and backends refuse the flipped copy without opening it.
    let file = dummy_config(root.path(), &flipped, &pins);
    let out = taskhost(&["check"], Some(&file), &[]);
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains(&format!(
            "does not match its pin: {key} expects {pin}, but the file has {flipped_pin}"
        )),
        "{}",
        all_output(&out)
    );
    let out = taskhost(&["backends"], Some(&file), &[]);
    assert_exit(&out, 0);
    assert_eq!(
        dirs_listing(&out),
        format!(
            "{}\n  {DUMMY_FILE}: not loadable: '{}' does not match its pin: {key} expects {pin}, \
             but the file has {flipped_pin}; refusing to open it — if the file was replaced on \
             purpose, update {key} (taskhost plugin pin --write)\n",
            flipped.display(),
            flipped.join(DUMMY_FILE).display()
        )
    );
}

#[test]
fn an_unknown_key_under_plugin_pins_is_an_error_naming_it() {
    let root = tempfile::tempdir().unwrap();
    let plugins = plugins_with_good_copies(root.path());
    let config = dummy_config(
        root.path(),
        &plugins,
        "[plugin_pins]\nlibtaskhost_backends_dummy = \"sha256:00\"\n",
    );
    let out = taskhost(&["check"], Some(&config), &[]);
    assert_exit(&out, 1);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "error: {}: unknown key 'plugin_pins.libtaskhost_backends_dummy': the keys of \
             [plugin_pins] are plugin library file names as they appear in a plugin dir, e.g. \
             \"libacme_redis.so\"; remove or rename it\n",
            config.display()
        )
    );
}
