//! Tests of `config.rs`.
use super::*;
use proptest::prelude::*;
use serde_json::json;

/// An absolute directory on every platform, touched by no test.
fn root() -> PathBuf {
    std::env::temp_dir().join("taskhost-config-tests")
}

fn file() -> PathBuf {
    root().join("app").join("tasks.toml")
}

fn base() -> PathBuf {
    root().join("app")
}

fn default_dirs() -> Vec<PathBuf> {
    vec![root().join("exe"), root().join("exe").join("plugins")]
}

fn env() -> Env {
    Env {
        config: None,
        plugin_dirs: None,
        cwd: Some(root().join("cwd")),
        default_dirs: default_dirs(),
    }
}

fn parse(text: &str) -> Result<Config> {
    from_toml_with(text, Some(&file()), &base(), &env())
}

/// Parses `text` expecting a config error; checks the file is named and returns (key, message).
#[track_caller]
fn err(text: &str) -> (Option<String>, String) {
    match parse(text) {
        Err(Error::ImproperlyConfigured {
            file: f,
            key,
            message,
        }) => {
            assert_eq!(f.as_deref(), Some(file().as_path()));
            assert!(
                message.starts_with(&file().display().to_string()),
                "message does not name the file: {message}"
            );
            (key, message)
        }
        other => panic!("expected a config error for {text:?}, got {other:?}"),
    }
}

/// Expects an error whose key is `key` and whose message names it and contains every `parts`.
#[track_caller]
fn assert_err(text: &str, key: &str, parts: &[&str]) {
    let (k, message) = err(text);
    assert_eq!(k.as_deref(), Some(key), "{message}");
    assert!(
        message.contains(key),
        "message does not name {key}: {message}"
    );
    for part in parts {
        assert!(message.contains(part), "message lacks {part:?}: {message}");
    }
}

const SPEC_EXAMPLE: &str = r#"
plugin_dirs = ["plugins"]

[tasks.default]
backend = "taskhost.backends.database.DatabaseBackend"
queues = ["default", "emails"]
enqueue_on_commit = true
[tasks.default.options]
url = "sqlite://tasks.db"
"#;

#[test]
fn spec_example_parses() {
    let c = parse(SPEC_EXAMPLE).unwrap();
    assert_eq!(c.file.as_deref(), Some(file().as_path()));
    assert_eq!(c.plugin_dirs, vec![base().join("plugins")]);
    assert!(!c.allow_writable_plugin_dirs);
    assert_eq!(c.backends.len(), 1);
    let b = &c.backends["default"];
    assert_eq!(b.backend, "taskhost.backends.database.DatabaseBackend");
    assert_eq!(b.queues, ["default", "emails"]);
    assert!(b.enqueue_on_commit);
    assert_eq!(
        serde_json::Value::Object(b.options.clone()),
        json!({"url": "sqlite://tasks.db"})
    );
}

#[test]
fn alias_defaults() {
    let c = parse("[tasks.fast]\nbackend = \"a.B\"\n").unwrap();
    assert_eq!(c.backends["fast"], BackendConfig::new("a.B"));
    assert_eq!(c.backends["fast"].queues, ["default"]);
    assert!(c.backends["fast"].enqueue_on_commit);
    assert!(c.backends["fast"].options.is_empty());
    assert_eq!(c.plugin_dirs, default_dirs());
}

#[test]
fn max_payload_bytes_default_and_both_spellings() {
    let c = parse("[tasks.fast]\nbackend = \"a.B\"\n").unwrap();
    assert_eq!(c.backends["fast"].max_payload_bytes, 1_048_576);
    assert_eq!(DEFAULT_MAX_PAYLOAD_BYTES, 1024 * 1024);
    let c = parse("[tasks.a]\nbackend = \"a.B\"\nmax_payload_bytes = 10\n").unwrap();
    assert_eq!(c.backends["a"].max_payload_bytes, 10);
    let c = parse("[TASKS.a]\nBACKEND = \"a.B\"\nMAX_PAYLOAD_BYTES = 4096\n").unwrap();
    assert_eq!(c.backends["a"].max_payload_bytes, 4096);
}

#[test]
fn max_payload_bytes_must_be_a_positive_integer() {
    for bad in ["0", "-1", &i64::MIN.to_string()] {
        assert_err(
            &format!("[tasks.a]\nbackend = \"a.B\"\nmax_payload_bytes = {bad}\n"),
            "tasks.a.max_payload_bytes",
            &["positive integer", bad],
        );
    }
    for (bad, found) in [
        ("\"1MB\"", "a string"),
        ("1.5", "a float"),
        ("true", "a boolean"),
    ] {
        assert_err(
            &format!("[tasks.a]\nbackend = \"a.B\"\nMAX_PAYLOAD_BYTES = {bad}\n"),
            "tasks.a.MAX_PAYLOAD_BYTES",
            &["positive integer", found],
        );
    }
    assert_err(
        "[tasks.a]\nbackend = \"a.B\"\nmax_payload_bytes = 1\nMAX_PAYLOAD_BYTES = 2\n",
        "tasks.a.max_payload_bytes",
        &["given twice"],
    );
    let (_, message) = err("[tasks.a]\nbackend = \"a.B\"\nmax_payload_byte = 1\n");
    assert!(
        message.contains("did you mean 'max_payload_bytes'"),
        "{message}"
    );
}

#[test]
fn empty_queues_and_false_on_commit() {
    let c =
        parse("[tasks.x]\nbackend = \"a.B\"\nqueues = []\nenqueue_on_commit = false\n").unwrap();
    assert!(c.backends["x"].queues.is_empty());
    assert!(!c.backends["x"].enqueue_on_commit);
}

#[test]
fn default_config_is_immediate() {
    let c = default_with(&env());
    assert_eq!(c.file, None);
    assert!(!c.allow_writable_plugin_dirs);
    assert_eq!(c.plugin_dirs, default_dirs());
    assert_eq!(c.backends.len(), 1);
    let b = &c.backends["default"];
    assert_eq!(b.backend, IMMEDIATE_BACKEND);
    assert_eq!(b.queues, ["default"]);
    assert!(b.enqueue_on_commit);
    assert!(b.options.is_empty());
    // The public one agrees on the backends.
    assert_eq!(Config::default_config().backends, c.backends);
}

#[test]
fn no_tasks_key_means_default_alias_but_empty_tasks_means_none() {
    for text in ["", "# nothing\n", "allow_writable_plugin_dirs = true\n"] {
        let c = parse(text).unwrap();
        assert_eq!(c.backends, default_with(&env()).backends, "{text:?}");
        assert_eq!(c.file.as_deref(), Some(file().as_path()));
    }
    assert!(parse("[tasks]\n").unwrap().backends.is_empty());
    assert!(parse("tasks = {}\n").unwrap().backends.is_empty());
    assert!(parse("[TASKS]\n").unwrap().backends.is_empty());
}

#[test]
fn allow_writable_plugin_dirs() {
    assert!(
        parse("allow_writable_plugin_dirs = true")
            .unwrap()
            .allow_writable_plugin_dirs
    );
    assert!(
        !parse("allow_writable_plugin_dirs = false")
            .unwrap()
            .allow_writable_plugin_dirs
    );
    assert_err(
        "allow_writable_plugin_dirs = \"yes\"",
        "allow_writable_plugin_dirs",
        &["boolean", "found a string"],
    );
}

#[test]
fn uppercase_django_keys_are_aliases() {
    let text = r#"
[TASKS.default]
BACKEND = "taskhost.backends.dummy.DummyBackend"
QUEUES = ["a"]
ENQUEUE_ON_COMMIT = false
[TASKS.default.OPTIONS]
n = 1
"#;
    let c = parse(text).unwrap();
    let b = &c.backends["default"];
    assert_eq!(b.backend, "taskhost.backends.dummy.DummyBackend");
    assert_eq!(b.queues, ["a"]);
    assert!(!b.enqueue_on_commit);
    assert_eq!(b.options["n"], json!(1));
    // Mixed spellings across keys are fine.
    let c = parse("[tasks.x]\nBACKEND = \"a.B\"\nqueues = [\"q\"]\n").unwrap();
    assert_eq!(c.backends["x"].queues, ["q"]);
}

#[test]
fn both_spellings_of_one_key_are_refused() {
    assert_err(
        "[tasks.default]\nbackend = \"a.B\"\nBACKEND = \"a.B\"\n",
        "tasks.default.backend",
        &["twice", "'backend'", "'BACKEND'"],
    );
    assert_err(
        "[tasks.d]\nbackend = \"a.B\"\nqueues = []\nQUEUES = []\n",
        "tasks.d.queues",
        &["twice"],
    );
    assert_err(
        "[tasks.d]\nbackend = \"a.B\"\nOPTIONS = {}\noptions = {}\n",
        "tasks.d.options",
        &["twice"],
    );
    assert_err(
        "[tasks.d]\nbackend = \"a.B\"\nenqueue_on_commit = true\nENQUEUE_ON_COMMIT = true\n",
        "tasks.d.enqueue_on_commit",
        &["twice"],
    );
    assert_err("[tasks]\n[TASKS]\n", "tasks", &["twice", "'TASKS'"]);
}

#[test]
fn unknown_top_level_key() {
    assert_err(
        "task = {}\n",
        "task",
        &[
            "unknown key 'task'",
            "did you mean 'tasks'?",
            "plugin_dirs",
            "allow_writable_plugin_dirs",
        ],
    );
    assert_err(
        "plugin_dir = []\n",
        "plugin_dir",
        &["did you mean 'plugin_dirs'?"],
    );
    assert_err("Tasks = {}\n", "Tasks", &["did you mean 'tasks'?"]);
    let (_, message) = err("database = 1\n");
    assert!(
        message.contains("'database'") && !message.contains("did you mean"),
        "{message}"
    );
    // A key that is not a bare key is quoted.
    assert_err("\"a b\" = 1\n", "\"a b\"", &["unknown key"]);
}

#[test]
fn unknown_alias_key() {
    assert_err(
        "[tasks.default]\nbackend = \"a.B\"\nqueue = \"x\"\n",
        "tasks.default.queue",
        &[
            "did you mean 'queues'?",
            "backend, queues, options, enqueue_on_commit",
            "BACKEND",
        ],
    );
    assert_err(
        "[tasks.d]\nBackend = \"a.B\"\n",
        "tasks.d.Backend",
        &["did you mean 'backend'?"],
    );
    assert_err(
        "[tasks.d]\nbackend = \"a.B\"\npriority = 3\n",
        "tasks.d.priority",
        &["unknown key"],
    );
    assert_err(
        "[TASKS.d]\nbackend = \"a.B\"\nfoo = 3\n",
        "TASKS.d.foo",
        &["unknown key"],
    );
}

#[test]
fn missing_backend() {
    assert_err(
        "[tasks.default]\nqueues = []\n",
        "tasks.default.backend",
        &["missing", "backend ="],
    );
    assert_err("[tasks.other]\n", "tasks.other.backend", &["missing"]);
}

#[test]
fn wrong_types() {
    let b = "[tasks.d]\nbackend = \"a.B\"\n";
    assert_err(
        &format!("{b}queues = \"x\"\n"),
        "tasks.d.queues",
        &["array of queue names", "found a string"],
    );
    assert_err(
        &format!("{b}queues = [\"a\", 1]\n"),
        "tasks.d.queues",
        &["item 1 is an integer"],
    );
    assert_err(
        &format!("{b}enqueue_on_commit = \"yes\"\n"),
        "tasks.d.enqueue_on_commit",
        &["boolean"],
    );
    assert_err(
        &format!("{b}options = \"x\"\n"),
        "tasks.d.options",
        &["table", "found a string"],
    );
    assert_err(
        &format!("{b}OPTIONS = [1]\n"),
        "tasks.d.OPTIONS",
        &["table", "found an array"],
    );
    assert_err(
        "[tasks.d]\nbackend = 1\n",
        "tasks.d.backend",
        &["backend name", "found an integer"],
    );
    assert_err(
        "[tasks.d]\nbackend = \"  \"\n",
        "tasks.d.backend",
        &["non-empty"],
    );
    assert_err(
        "plugin_dirs = \"plugins\"\n",
        "plugin_dirs",
        &["array of directory paths", "found a string"],
    );
    assert_err(
        "plugin_dirs = [\"a\", true]\n",
        "plugin_dirs",
        &["item 1 is a boolean"],
    );
    assert_err("plugin_dirs = [\"\"]\n", "plugin_dirs", &["item 0"]);
    assert_err(
        "tasks = 1\n",
        "tasks",
        &["table of aliases", "found an integer"],
    );
    assert_err("TASKS = []\n", "TASKS", &["table of aliases"]);
    assert_err(
        "[tasks]\ndefault = \"a.B\"\n",
        "tasks.default",
        &["table", "found a string"],
    );
    // A key meant for an alias put directly under [tasks] gets a hint.
    assert_err(
        "[tasks]\nbackend = \"a.B\"\n",
        "tasks.backend",
        &["inside an alias table", "[tasks.default]"],
    );
}

#[test]
fn empty_alias_is_refused() {
    assert_err(
        "[tasks.\"\"]\nbackend = \"a.B\"\n",
        "tasks.\"\"",
        &["must not be empty"],
    );
    assert_err(
        "[tasks.\" \"]\nbackend = \"a.B\"\n",
        "tasks.\" \"",
        &["must not be empty"],
    );
}

#[test]
fn odd_alias_names_are_quoted_in_messages() {
    assert_err(
        "[tasks.\"a.b\"]\nqueues = []\n",
        "tasks.\"a.b\".backend",
        &["missing"],
    );
    let c = parse("[tasks.\"a.b\"]\nbackend = \"x.Y\"\n").unwrap();
    assert!(c.backends.contains_key("a.b"));
}

#[test]
fn options_become_json() {
    let text = r#"
[tasks.d]
backend = "a.B"
[tasks.d.options]
s = "x"
i = -3
f = 1.5
b = true
odt = 1979-05-27T07:32:00Z
odt2 = 1979-05-27 00:32:00.5-07:00
ldt = 1979-05-27T07:32:00
ld = 1979-05-27
lt = 07:32:00
arr = [1, "two", [3.0], { k = "v" }]
[tasks.d.options.nested.deeper]
x = 1
"#;
    let c = parse(text).unwrap();
    let got = serde_json::Value::Object(c.backends["d"].options.clone());
    let want = json!({
        "s": "x", "i": -3, "f": 1.5, "b": true,
        "odt": "1979-05-27T07:32:00Z",
        "odt2": "1979-05-27T00:32:00.5-07:00",
        "ldt": "1979-05-27T07:32:00",
        "ld": "1979-05-27",
        "lt": "07:32:00",
        "arr": [1, "two", [3.0], {"k": "v"}],
        "nested": {"deeper": {"x": 1}},
    });
    assert_eq!(got, want);
}

#[test]
fn non_finite_floats_in_options_are_refused() {
    let b = "[tasks.d]\nbackend = \"a.B\"\n[tasks.d.options]\n";
    assert_err(
        &format!("{b}ratio = nan\n"),
        "tasks.d.options.ratio",
        &["finite"],
    );
    assert_err(
        &format!("{b}a = {{ b = [1, inf] }}\n"),
        "tasks.d.options.a.b[1]",
        &["inf"],
    );
}

#[test]
fn deep_options_are_refused_not_overflowed() {
    let depth = MAX_OPTIONS_DEPTH + 5;
    let text = format!(
        "[tasks.d]\nbackend = \"a.B\"\n[tasks.d.options]\nx = {}1{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let (key, message) = err(&text);
    assert!(key.unwrap().starts_with("tasks.d.options.x["));
    assert!(message.contains("deeper than"), "{message}");
}

#[test]
fn relative_plugin_dirs_resolve_against_the_config_dir() {
    let abs = root().join("elsewhere");
    let text = format!(
        "plugin_dirs = [\"plugins\", \"./a/../b\", {:?}]\n",
        abs.to_str().unwrap()
    );
    let c = parse(&text).unwrap();
    assert_eq!(
        c.plugin_dirs,
        vec![
            base().join("plugins"),
            base().join("a").join("..").join("b"),
            abs
        ]
    );
    assert!(c.plugin_dirs.iter().all(|d| d.is_absolute()));
}

#[test]
fn relative_base_dir_is_made_absolute() {
    let c = from_toml_with("plugin_dirs = [\"p\"]", None, Path::new("conf"), &env()).unwrap();
    assert_eq!(
        c.plugin_dirs,
        vec![root().join("cwd").join("conf").join("p")]
    );
    let no_cwd = Env { cwd: None, ..env() };
    match from_toml_with("plugin_dirs = [\"p\"]", None, Path::new("conf"), &no_cwd) {
        Err(Error::ImproperlyConfigured { key, message, file }) => {
            assert_eq!(key.as_deref(), Some("plugin_dirs"));
            assert_eq!(file, None);
            assert!(message.contains("absolute path"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn empty_plugin_dirs_means_default_dirs() {
    assert_eq!(
        parse("plugin_dirs = []").unwrap().plugin_dirs,
        default_dirs()
    );
}

#[test]
fn env_plugin_dirs_are_prepended() {
    let abs = root().join("from-env");
    let raw = std::env::join_paths([abs.clone(), PathBuf::from(""), PathBuf::from("rel")]).unwrap();
    let e = Env {
        plugin_dirs: Some(raw.clone()),
        ..env()
    };
    let rel = root().join("cwd").join("rel");

    let c = from_toml_with("plugin_dirs = [\"p\"]", Some(&file()), &base(), &e).unwrap();
    assert_eq!(
        c.plugin_dirs,
        vec![abs.clone(), rel.clone(), base().join("p")]
    );

    let c = from_toml_with("", Some(&file()), &base(), &e).unwrap();
    let mut want = vec![abs.clone(), rel.clone()];
    want.extend(default_dirs());
    assert_eq!(c.plugin_dirs, want);
    assert_eq!(default_with(&e).plugin_dirs, want);

    // A dir in both lists is searched once, at its first position.
    let dup = format!("plugin_dirs = [{:?}, \"p\"]", abs.to_str().unwrap());
    let c = from_toml_with(&dup, Some(&file()), &base(), &e).unwrap();
    assert_eq!(c.plugin_dirs, vec![abs.clone(), rel, base().join("p")]);

    // Empty variable: nothing prepended. Unknown cwd: relative entries dropped.
    assert!(parse_env_plugin_dirs(Some(OsStr::new("")), None).is_empty());
    assert_eq!(parse_env_plugin_dirs(Some(&raw), None), vec![abs]);
    assert!(parse_env_plugin_dirs(None, None).is_empty());
}

#[test]
fn default_plugin_dirs_for_cargo_layouts() {
    let debug = root().join("target").join("debug");
    assert_eq!(
        default_plugin_dirs_for(&debug),
        vec![debug.clone(), debug.join("plugins")]
    );
    for sub in ["deps", "examples"] {
        let dir = debug.join(sub);
        assert_eq!(
            default_plugin_dirs_for(&dir),
            vec![
                dir.clone(),
                dir.join("plugins"),
                debug.clone(),
                debug.join("plugins")
            ]
        );
    }
    let real = Config::default_plugin_dirs();
    let exe_dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    assert_eq!(real[0], exe_dir);
    assert!(real.iter().all(|d| d.is_absolute()));
}

#[test]
fn syntax_errors_name_the_file_and_position() {
    let (key, message) = err("[tasks.default\nbackend = 1\n");
    assert_eq!(key, None);
    assert!(message.contains("invalid TOML"), "{message}");
    assert!(message.contains("line 1"), "{message}");
    // A duplicate key is a TOML error too.
    let (_, message) = err("[tasks.d]\nbackend = \"a\"\nbackend = \"b\"\n");
    assert!(message.contains("line 3"), "{message}");
}

#[test]
fn errors_without_a_file_do_not_invent_one() {
    match from_toml_with("bogus = 1", None, &base(), &env()) {
        Err(Error::ImproperlyConfigured { file, key, message }) => {
            assert_eq!(file, None);
            assert_eq!(key.as_deref(), Some("bogus"));
            assert!(message.starts_with("unknown key 'bogus'"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn from_file_reads_and_resolves_against_its_dir() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("conf.toml");
    std::fs::write(
        &path,
        "plugin_dirs = [\"p\"]\n[tasks.d]\nbackend = \"a.B\"\n",
    )
    .unwrap();
    let c = Config::from_file(&path).unwrap();
    assert_eq!(c.file.as_deref(), Some(path.as_path()));
    assert_eq!(c.plugin_dirs.last().unwrap(), &dir.path().join("p"));
    assert_eq!(c.backends["d"].backend, "a.B");

    let missing = dir.path().join("nope.toml");
    match Config::from_file(&missing) {
        Err(Error::ImproperlyConfigured { file, message, .. }) => {
            assert_eq!(file.as_deref(), Some(missing.as_path()));
            assert!(
                message.contains("nope.toml") && message.contains("cannot read"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    // A file that is not UTF-8 is an error, not a panic.
    std::fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
    assert!(Config::from_file(&path).is_err());
}

#[test]
fn load_discovery_order() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let explicit = dir.path().join("explicit.toml");
    let via_env = dir.path().join("env.toml");
    std::fs::write(&explicit, "[tasks.explicit]\nbackend = \"a.B\"\n").unwrap();
    std::fs::write(&via_env, "[tasks.env]\nbackend = \"a.B\"\n").unwrap();
    let e = Env {
        config: Some(via_env.clone().into()),
        cwd: Some(cwd.clone()),
        ..env()
    };
    let aliases = |c: Config| c.backends.into_keys().collect::<Vec<_>>();

    // Explicit wins over the variable.
    assert_eq!(
        aliases(load_with(Some(&explicit), &e).unwrap()),
        ["explicit"]
    );
    // Then the variable.
    assert_eq!(aliases(load_with(None, &e).unwrap()), ["env"]);
    // Without either and without ./tasks.toml: the default.
    let bare = Env {
        config: Some(OsString::new()),
        cwd: Some(cwd.clone()),
        ..env()
    };
    let c = load_with(None, &bare).unwrap();
    assert_eq!(c, default_with(&bare));
    // With ./tasks.toml.
    std::fs::write(
        cwd.join(DEFAULT_CONFIG_FILE),
        "[tasks.local]\nbackend = \"a.B\"\n",
    )
    .unwrap();
    let c = load_with(None, &bare).unwrap();
    assert_eq!(aliases(c.clone()), ["local"]);
    assert_eq!(c.file, Some(cwd.join(DEFAULT_CONFIG_FILE)));
    // A variable naming a missing file is an error that says where the name came from.
    let bad = Env {
        config: Some(dir.path().join("missing.toml").into()),
        ..bare
    };
    match load_with(None, &bad) {
        Err(Error::ImproperlyConfigured { message, .. }) => {
            assert!(
                message.contains("missing.toml") && message.contains(CONFIG_ENV),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    // An explicit missing path is an error too, not a fallback.
    assert!(load_with(Some(&dir.path().join("missing.toml")), &env()).is_err());
}

#[test]
fn edit_distance_and_suggestions() {
    assert_eq!(edit_distance("", ""), 0);
    assert_eq!(edit_distance("abc", ""), 3);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    assert_eq!(edit_distance("queue", "queues"), 1);
    assert_eq!(
        closest("enqueue_on_comit", &ALIAS_KEYS.map(|(l, _)| l)),
        Some("enqueue_on_commit")
    );
    assert_eq!(
        closest("OPTION", &ALIAS_KEYS.map(|(l, _)| l)),
        Some("options")
    );
    assert_eq!(closest("zzz", &ALIAS_KEYS.map(|(l, _)| l)), None);
    assert_eq!(closest(&"x".repeat(100), &TOP_KEYS), None);
}

// ---- property tests ----

/// Checks the invariants every result must satisfy; returns the error if any.
fn check_result(
    result: &Result<Config>,
) -> std::result::Result<Option<(Option<String>, String)>, TestCaseError> {
    match result {
        Ok(c) => {
            prop_assert!(c.plugin_dirs.iter().all(|d| d.is_absolute()));
            Ok(None)
        }
        Err(Error::ImproperlyConfigured {
            file: f,
            key,
            message,
        }) => {
            prop_assert!(!message.is_empty());
            let want = file();
            prop_assert_eq!(f.as_deref(), Some(want.as_path()));
            prop_assert!(message.starts_with(&file().display().to_string()));
            if let Some(k) = key {
                prop_assert!(message.contains(k.as_str()), "key {} not in {}", k, message);
            }
            Ok(Some((key.clone(), message.clone())))
        }
        Err(other) => Err(TestCaseError::fail(format!(
            "unexpected error variant {other:?}"
        ))),
    }
}

fn key_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "tasks", "TASKS", "plugin_dirs", "allow_writable_plugin_dirs", "backend", "BACKEND",
            "queues", "QUEUES", "options", "OPTIONS", "enqueue_on_commit", "ENQUEUE_ON_COMMIT",
            "default", "url", "task", "queue",
        ]).prop_map(str::to_string),
        1 => "[a-zA-Z_-]{0,10}",
        1 => "\\PC{0,6}",
    ]
}

fn value_strategy() -> impl Strategy<Value = toml::Value> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(toml::Value::Boolean),
        any::<i64>().prop_map(toml::Value::Integer),
        any::<f64>().prop_map(toml::Value::Float),
        "\\PC{0,8}".prop_map(toml::Value::String),
        Just(toml::Value::String(
            "taskhost.backends.immediate.ImmediateBackend".into()
        )),
        Just(toml::Value::Datetime(
            "1979-05-27T07:32:00Z".parse().unwrap()
        )),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(toml::Value::Array),
            prop::collection::btree_map(key_strategy(), inner, 0..5)
                .prop_map(|m| toml::Value::Table(m.into_iter().collect())),
        ]
    })
}

fn valid_backend() -> impl Strategy<Value = BackendConfig> {
    (
        "[a-z_]{1,8}(\\.[a-zA-Z_]{1,8}){1,3}",
        // Queue names that pass the queue-name rule (validation.rs).
        prop::option::of(prop::collection::vec("[\\PC&&[^,*\\s]]{1,8}", 0..4)),
        any::<bool>(),
        prop::collection::btree_map(
            "[a-z]{1,6}",
            prop_oneof![
                any::<i64>().prop_map(serde_json::Value::from),
                "\\PC{0,8}".prop_map(serde_json::Value::from),
                any::<bool>().prop_map(serde_json::Value::from),
            ],
            0..4,
        ),
    )
        .prop_map(
            |(backend, queues, enqueue_on_commit, options)| BackendConfig {
                backend,
                queues: queues.unwrap_or_else(|| vec!["default".into()]),
                enqueue_on_commit,
                options: options.into_iter().collect(),
                max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
                periodic: Vec::new(),
            },
        )
}

fn to_toml(b: &BackendConfig) -> toml::Table {
    let mut t = toml::Table::new();
    t.insert("backend".into(), b.backend.clone().into());
    t.insert(
        "queues".into(),
        toml::Value::Array(b.queues.iter().map(|q| q.clone().into()).collect()),
    );
    t.insert("enqueue_on_commit".into(), b.enqueue_on_commit.into());
    let options: toml::Table = b
        .options
        .iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => toml::Value::String(s.clone()),
                serde_json::Value::Bool(x) => toml::Value::Boolean(*x),
                n => toml::Value::Integer(n.as_i64().unwrap()),
            };
            (k.clone(), v)
        })
        .collect();
    t.insert("options".into(), toml::Value::Table(options));
    t
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        check_result(&parse(&text))?;
    }

    #[test]
    fn toml_like_text_never_panics(text in "([\\[\\]a-zA-Z_.=\"' \n0-9{},#-]|tasks|TASKS|backend|queues|options|nan|inf){0,120}") {
        check_result(&parse(&text))?;
    }

    #[test]
    fn generated_documents_never_panic(doc in prop::collection::btree_map(key_strategy(), value_strategy(), 0..5)) {
        let table: toml::Table = doc.into_iter().collect();
        let text = toml::to_string(&table);
        prop_assume!(text.is_ok());
        check_result(&parse(&text.unwrap()))?;
    }

    #[test]
    fn generated_task_tables_never_panic(aliases in prop::collection::btree_map(key_strategy(), value_strategy(), 0..4)) {
        let mut table = toml::Table::new();
        table.insert("tasks".into(), toml::Value::Table(aliases.into_iter().collect()));
        let text = toml::to_string(&table);
        prop_assume!(text.is_ok());
        check_result(&parse(&text.unwrap()))?;
    }

    #[test]
    fn valid_configs_round_trip(backends in prop::collection::btree_map("[a-z][a-z0-9_]{0,8}", valid_backend(), 0..4)) {
        let tasks: toml::Table = backends.iter().map(|(a, b)| (a.clone(), toml::Value::Table(to_toml(b)))).collect();
        let mut doc = toml::Table::new();
        doc.insert("tasks".into(), toml::Value::Table(tasks));
        let c = parse(&toml::to_string(&doc).unwrap()).unwrap();
        prop_assert_eq!(c.backends, backends);
    }

    #[test]
    fn unknown_keys_are_named(
        b in valid_backend(),
        key in "[a-zA-Z_][a-zA-Z0-9_-]{0,12}",
        top in any::<bool>(),
    ) {
        let top_keys = ["tasks", "TASKS", "plugin_dirs", "allow_writable_plugin_dirs"];
        prop_assume!(!top_keys.contains(&key.as_str()));
        prop_assume!(!ALIAS_KEYS.iter().any(|(l, u)| key == *l || key == *u));
        let mut alias = to_toml(&b);
        let mut doc = toml::Table::new();
        let want = if top {
            doc.insert(key.clone(), toml::Value::Integer(1));
            key.clone()
        } else {
            alias.insert(key.clone(), toml::Value::Integer(1));
            format!("tasks.default.{key}")
        };
        let mut tasks = toml::Table::new();
        tasks.insert("default".into(), toml::Value::Table(alias));
        doc.insert("tasks".into(), toml::Value::Table(tasks));
        let result = parse(&toml::to_string(&doc).unwrap());
        let Some((k, message)) = check_result(&result)? else {
            return Err(TestCaseError::fail("an unknown key was accepted"));
        };
        prop_assert_eq!(k.as_deref(), Some(want.as_str()));
        prop_assert!(message.contains(&format!("unknown key '{want}'")), "{}", message);
        prop_assert!(message.contains(&key));
    }
}

/// A pin of `byte` repeated: a valid digest text.
fn pin_text(byte: &str) -> String {
    format!("sha256:{}", byte.repeat(64))
}

#[test]
fn plugin_pins_absent_means_no_pins() {
    assert_eq!(parse("[tasks]\n").unwrap().plugin_pins, None);
}

#[test]
fn plugin_pins_in_both_spellings() {
    for spelling in ["plugin_pins", "PLUGIN_PINS"] {
        let text = format!(
            "[{spelling}]\n\"libtaskhost_backends_dummy.so\" = \"{}\"\n",
            pin_text("a")
        );
        let pins = parse(&text).unwrap().plugin_pins.unwrap();
        assert_eq!(pins.len(), 1);
        assert_eq!(
            pins.get("libtaskhost_backends_dummy.so")
                .unwrap()
                .to_string(),
            pin_text("a")
        );
    }
    // Uppercase hex is read, written back lowercase.
    let upper = format!("sha256:{}", "AB".repeat(32));
    let text = format!("[plugin_pins]\n\"liba.so\" = \"{upper}\"\n");
    let pins = parse(&text).unwrap().plugin_pins.unwrap();
    assert_eq!(
        pins.get("liba.so").unwrap().to_string(),
        upper.to_lowercase()
    );
    // An empty table is configured pins with no entry: every file is refused.
    assert_eq!(
        parse("[plugin_pins]\n").unwrap().plugin_pins,
        Some(PluginPins::new())
    );
}

#[test]
fn plugin_pins_round_trip_through_to_toml() {
    let mut pins = PluginPins::new();
    pins.insert("liba.so", PinDigest::parse(&pin_text("1")).unwrap());
    pins.insert("libb_c.so", PinDigest::parse(&pin_text("f")).unwrap());
    assert_eq!(parse(&pins.to_toml()).unwrap().plugin_pins, Some(pins));
}

#[test]
fn plugin_pins_unknown_key_is_named() {
    let text = format!("[plugin_pins]\n\"README.md\" = \"{}\"\n", pin_text("a"));
    let (key, message) = err(&text);
    assert_eq!(key.as_deref(), Some("plugin_pins.\"README.md\""));
    assert_eq!(
        message,
        format!(
            "{}: unknown key 'plugin_pins.\"README.md\"': the keys of [plugin_pins] are plugin \
             library file names as they appear in a plugin dir, e.g. \"libacme_redis.so\"; \
             remove or rename it",
            file().display()
        )
    );
    assert_err(
        "[plugin_pins]\nsha256 = \"x\"\n",
        "plugin_pins.sha256",
        &["unknown key 'plugin_pins.sha256'"],
    );
}

#[test]
fn plugin_pins_bad_values_are_named() {
    assert_err(
        "[plugin_pins]\n\"liba.so\" = 1\n",
        "plugin_pins.\"liba.so\"",
        &["must be a pin string", "found an integer"],
    );
    assert_err(
        "[plugin_pins]\n\"liba.so\" = \"md5:00\"\n",
        "plugin_pins.\"liba.so\"",
        &["is not a valid pin: a pin must start with 'sha256:'"],
    );
    assert_err(
        "[plugin_pins]\n\"liba.so\" = \"sha256:00\"\n",
        "plugin_pins.\"liba.so\"",
        &["found 2 character(s) after 'sha256:'"],
    );
    assert_err(
        "plugin_pins = [\"liba.so\"]\n",
        "plugin_pins",
        &[
            "must be a table of plugin library file names to pins",
            "found an array",
        ],
    );
    let twice = format!(
        "[plugin_pins]\n\"liba.so\" = \"{0}\"\n[PLUGIN_PINS]\n\"liba.so\" = \"{0}\"\n",
        pin_text("a")
    );
    assert_err(
        &twice,
        "plugin_pins",
        &["'plugin_pins' is given twice, as 'PLUGIN_PINS' and 'plugin_pins'"],
    );
}

#[test]
fn plugin_pins_misspelt_top_key_is_suggested() {
    assert_err(
        "[plugin_pin]\n",
        "plugin_pin",
        &["unknown key 'plugin_pin'", "did you mean 'plugin_pins'?"],
    );
}

#[test]
fn the_source_records_how_the_config_was_found() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let explicit = dir.path().join("explicit.toml");
    std::fs::write(&explicit, "[tasks.explicit]\nbackend = \"a.B\"\n").unwrap();
    let via_env = Env {
        config: Some(explicit.clone().into()),
        cwd: Some(cwd.clone()),
        ..env()
    };
    let bare = Env {
        config: None,
        cwd: Some(cwd.clone()),
        ..env()
    };
    let source = |c: Config| (c.source, c.file);
    assert_eq!(
        source(load_with(Some(&explicit), &bare).unwrap()),
        (ConfigSource::Explicit, Some(explicit.clone()))
    );
    assert_eq!(
        source(load_with(None, &via_env).unwrap()),
        (ConfigSource::Env, Some(explicit.clone()))
    );
    assert_eq!(
        source(load_with(None, &bare).unwrap()),
        (ConfigSource::BuiltInDefault, None)
    );
    let local = cwd.join(DEFAULT_CONFIG_FILE);
    std::fs::write(&local, "[tasks.local]\nbackend = \"a.B\"\n").unwrap();
    assert_eq!(
        source(load_with(None, &bare).unwrap()),
        (ConfigSource::CurrentDir, Some(local))
    );
    let in_code = from_toml_with("[tasks]\n", None, Path::new("/"), &env()).unwrap();
    assert_eq!(source(in_code), (ConfigSource::InCode, None));
}

#[test]
fn a_source_describes_the_config_in_force_and_where_plugin_dirs_go() {
    let file = Path::new("/app/tasks.toml");
    assert_eq!(
        ConfigSource::Explicit.describe(Some(file)),
        "config file: '/app/tasks.toml'"
    );
    assert_eq!(
        ConfigSource::Env.describe(Some(file)),
        "config file: '/app/tasks.toml' (named by $TASKHOST_CONFIG)"
    );
    assert_eq!(
        ConfigSource::CurrentDir.describe(Some(file)),
        "config file: '/app/tasks.toml' (./tasks.toml in the current directory)"
    );
    assert_eq!(
        ConfigSource::BuiltInDefault.describe(None),
        "no config file was found (no --config, $TASKHOST_CONFIG unset, no ./tasks.toml in the \
         current directory), so the built-in default applies: one alias 'default' on the \
         Immediate backend"
    );
    assert_eq!(
        ConfigSource::InCode.describe(None),
        "no config file: the config was built in code"
    );
    assert_eq!(
        ConfigSource::Env.where_to_add_plugin_dirs(Some(file)),
        "plugin_dirs in '/app/tasks.toml' or to $TASKHOST_PLUGIN_DIRS"
    );
    assert_eq!(
        ConfigSource::BuiltInDefault.where_to_add_plugin_dirs(None),
        "$TASKHOST_PLUGIN_DIRS (or create a tasks.toml that sets plugin_dirs)"
    );
    assert_eq!(
        ConfigSource::InCode.where_to_add_plugin_dirs(None),
        "the config's plugin_dirs or to $TASKHOST_PLUGIN_DIRS"
    );
}

// ---- [tasks.<alias>.periodic] ----

const PERIODIC_HEAD: &str = "[tasks.default]\nbackend = \"x.y.Z\"\n[tasks.default.periodic]\n";

#[test]
fn periodic_schedules_in_short_and_table_form() {
    let text = format!(
        "{PERIODIC_HEAD}\"app::reports::daily\" = \"0 7 * * *\"\n\
         cleanup = {{ task = \"app::cleanup\", cron = \"*/15 * * * * *\", args = [30, \"old\"], \
         kwargs = {{ dry = true }}, queue_name = \"maintenance\", priority = -10, \
         timezone = \"Europe/Paris\", missed = {{ backfill = 4 }} }}\n\
         hourly = {{ task = \"app::hourly\", cron = \"0 * * * *\", missed = \"once\" }}\n"
    );
    let config = parse(&text).unwrap();
    let periodic = &config.backends["default"].periodic;
    let names: Vec<_> = periodic.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["app::reports::daily", "cleanup", "hourly"]);
    let daily = &periodic[0];
    assert_eq!(
        (
            daily.task.as_str(),
            daily.cron.as_str(),
            daily.timezone.as_str()
        ),
        ("app::reports::daily", "0 7 * * *", "UTC")
    );
    assert_eq!(daily.missed, crate::periodic::MissedTicks::Skip);
    let cleanup = &periodic[1];
    assert_eq!(cleanup.task, "app::cleanup");
    assert_eq!(cleanup.args, [json!(30), json!("old")]);
    assert_eq!(cleanup.kwargs.get("dry"), Some(&json!(true)));
    assert_eq!(cleanup.queue_name.as_deref(), Some("maintenance"));
    assert_eq!(cleanup.priority, Some(-10));
    assert_eq!(cleanup.timezone, "Europe/Paris");
    assert_eq!(cleanup.missed, crate::periodic::MissedTicks::Backfill(4));
    assert_eq!(periodic[2].missed, crate::periodic::MissedTicks::Once);
}

#[test]
fn bad_periodic_schedules_are_named() {
    let key = "tasks.default.periodic.daily";
    assert_err(
        &format!("{PERIODIC_HEAD}daily = \"61 * * * *\"\n"),
        key,
        &["\"61 * * * *\"", "cron expression", "'daily'"],
    );
    assert_err(
        &format!("{PERIODIC_HEAD}daily = {{ cron = \"0 7 * * *\", timezone = \"Mars/Base\" }}\n"),
        key,
        &["\"Mars/Base\"", "IANA"],
    );
    assert_err(
        &format!("{PERIODIC_HEAD}daily = {{ crn = \"0 7 * * *\" }}\n"),
        key,
        &["crn"],
    );
    assert_err(
        &format!("{PERIODIC_HEAD}daily = {{ cron = \"0 7 * * *\", missed = \"sometimes\" }}\n"),
        key,
        &["sometimes", "skip"],
    );
    assert_err(
        &format!(
            "{PERIODIC_HEAD}daily = {{ cron = \"0 7 * * *\", missed = {{ backfill = 0 }} }}\n"
        ),
        "tasks.default.periodic.daily.missed",
        &["1 to 1000"],
    );
    assert_err(
        &format!("{PERIODIC_HEAD}daily = {{ cron = \"0 7 * * *\", priority = 101 }}\n"),
        "tasks.default.periodic.daily.priority",
        &["-100 to 100"],
    );
    assert_err(
        &format!("{PERIODIC_HEAD}daily = 7\n"),
        key,
        &["cron expression"],
    );
    assert_err(
        "[tasks.default]\nbackend = \"x.y.Z\"\nperiodic = 3\n",
        "tasks.default.periodic",
        &["a table of schedules"],
    );
}
