//! `taskhost plugin …`: work on plugin libraries. `plugin test` runs the conformance suite
//! ([`taskhost_testkit`]) against a built library, in a child process; `plugin pin` prints or
//! writes the `[plugin_pins]` table.

use super::inspect::{self, Answer};
use super::scaffold::{self, NewArgs, PluginNames};
use clap::{Subcommand, ValueEnum};
use serde_json::{Map, Value};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use taskhost_testkit::{CheckOutcome, Conformance, Report, Status};

/// The `plugin` subcommands.
#[derive(Subcommand, Debug)]
pub enum PluginCommand {
    /// Run the conformance suite against a built plugin library: exit 0 when no check failed.
    Test {
        /// The built library file, e.g. target/debug/libacme_spool.so (its file name must be
        /// the one the backend name resolves to).
        path: PathBuf,
        /// The backend class: its name alone, e.g. SpoolBackend (completed with the module path
        /// the library declares), or the full backend name, e.g. acme.spool.SpoolBackend.
        #[arg(long)]
        class: String,
        /// The backend's options as a JSON object, e.g. '{"url": "sqlite:///tmp/t.db"}'.
        #[arg(long, value_name = "JSON")]
        options: Option<String>,
        /// How to print the report.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
        /// Run the suite in this process and print its report as an answer line for the
        /// parent (`plugin test` runs itself this way in a child process).
        #[arg(long, hide = true)]
        in_process: bool,
    },
    /// Print the `[plugin_pins]` table (a SHA-256 pin for every library file in the plugin
    /// dirs), or write it into the config file with `--write`.
    Pin {
        /// Replace the config file's `[plugin_pins]` table (or add one) instead of printing it.
        #[arg(long)]
        write: bool,
    },
    /// Create a buildable backend plugin crate (a working in-memory backend, its tests, a
    /// README with the build, install and test steps).
    New(NewArgs),
    /// Build a reference backend's plugin file (taskhost.backends.database) from the taskhost
    /// source this tool was built from, and put it into a plugin dir.
    Install(super::install::InstallArgs),
}

/// How a command prints what it reports (`--format`): `plugin test`, `results list`, `queues`,
/// `backends`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// For people: aligned tables; for `plugin test`, one line per check (`PASS`/`FAIL`/`SKIP`)
    /// then a summary line.
    Text,
    /// One JSON document on stdout, with the real (unescaped) strings.
    Json,
}

/// Run a `plugin` subcommand; returns whether all is well. `config` is the global `--config`.
pub fn run(config: Option<&Path>, command: &PluginCommand) -> bool {
    match command {
        PluginCommand::Test {
            path,
            class,
            options,
            format,
            in_process: false,
        } => test_in_child(path, class, options.as_deref(), *format),
        PluginCommand::Test {
            path,
            class,
            options,
            in_process: true,
            ..
        } => test_in_process(path, class, options.as_deref()),
        PluginCommand::New(args) => new(args),
        PluginCommand::Pin { write } => super::pin::run(config, *write),
        PluginCommand::Install(args) => super::install::run(config, args),
    }
}

fn new(args: &NewArgs) -> bool {
    let created = PluginNames::from_args(args)
        .and_then(|names| scaffold::new_plugin(args).map(|created| (created, names)));
    match created {
        Ok(((dir, api), names)) => {
            outln!("{}", scaffold::summary(&dir, &names, &api));
            true
        }
        Err(e) => {
            eprintln!("error: {e}");
            false
        }
    }
}

/// `plugin test`: the suite runs in a child process (this executable with `--in-process`), so
/// a library that crashes whatever loads it (or a backend that aborts mid-suite) is reported as
/// a failed `suite` check naming the signal, and this process never opens the file. `class` is
/// passed on as given: a class name alone is completed from the library's manifest in the
/// child, by the suite's `loads` check (as [`Conformance::new`] does in-process).
fn test_in_child(path: &Path, class: &str, options: Option<&str>, format: OutputFormat) -> bool {
    if let Err(e) = parse_options(options) {
        eprintln!("error: {e}");
        return false;
    }
    let mut args: Vec<OsString> = vec!["plugin".into(), "test".into(), path.as_os_str().into()];
    args.extend(["--class".into(), class.into()]);
    if let Some(options) = options {
        args.extend(["--options".into(), options.into()]);
    }
    args.push("--in-process".into());
    let timeout = inspect::timeout(inspect::DEFAULT_SUITE_TIMEOUT_SECS);
    let report = match inspect::ask(None, &args, timeout, "running the conformance suite") {
        Ok(Answer::Report { report }) => report,
        Ok(other) => crashed(format!(
            "'{}' could not be tested: the process running the suite answered {other:?}",
            path.display()
        )),
        Err(crash) => crashed(format!("'{}' {}", path.display(), crash.0)),
    };
    print_report(&report, format);
    report.is_success()
}

/// The report of a suite whose process died: one failed check, `suite`.
fn crashed(reason: String) -> Report {
    Report {
        checks: vec![CheckOutcome::new("suite", Status::Failed(reason))],
    }
}

/// `plugin test --in-process`: run the suite here and print the report as the answer line.
fn test_in_process(path: &Path, class: &str, options: Option<&str>) -> bool {
    let options = match parse_options(options) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("error: {e}");
            return false;
        }
    };
    let suite = Conformance::new(path, class).options(options);
    let report = quietly(|| suite.run());
    inspect::print_answer(&Answer::Report { report })
}

fn print_report(report: &Report, format: OutputFormat) {
    match format {
        OutputFormat::Text => outln!("{report}"),
        OutputFormat::Json => outln!("{}", report.to_json()),
    }
}

fn parse_options(options: Option<&str>) -> Result<Map<String, Value>, String> {
    let Some(text) = options else {
        return Ok(Map::new());
    };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!("--options must be a JSON object, got {other}")),
        Err(e) => Err(format!("--options is not valid JSON: {e}")),
    }
}

/// Run `f` without the task-lifecycle log records the suite's many enqueues cause (a backend
/// that runs tasks at once logs every probe task as FAILED: their paths are not registered),
/// keeping warnings from the plugins. `RUST_LOG`, when set, decides instead.
fn quietly<T>(f: impl FnOnce() -> T) -> T {
    if std::env::var_os("RUST_LOG").is_some() {
        return f();
    }
    let filter = tracing_subscriber::EnvFilter::new(format!(
        "warn,taskhost=off,{}=warn",
        taskhost::PLUGIN_LOG_TARGET
    ));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .finish();
    tracing::subscriber::with_default(subscriber, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_must_be_a_json_object() {
        assert_eq!(parse_options(None).unwrap(), Map::new());
        let map = parse_options(Some(r#"{"url": "sqlite:///tmp/x.db"}"#)).unwrap();
        assert_eq!(map["url"], "sqlite:///tmp/x.db");
        assert!(parse_options(Some("[1]"))
            .unwrap_err()
            .contains("JSON object"));
        assert!(parse_options(Some("{"))
            .unwrap_err()
            .contains("not valid JSON"));
    }
}
