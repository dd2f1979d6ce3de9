//! The `taskhost` command line (crate `taskhost-cli`): the `taskhost` tool, and the same
//! commands as a library so applications can mount them in their own binary (a worker must
//! contain the task functions). The host library (`taskhost`) has no command line; the
//! conformance suite `taskhost plugin test` runs is `taskhost-testkit`.
//!
//! ```toml
//! [dependencies]
//! taskhost = "0.1"
//! taskhost-cli = "0.1"
//! ```
//!
//! ```no_run
//! // src/main.rs of an application: `my-app --version` prints the application's name and
//! // version (from its Cargo.toml), `my-app worker …` runs a worker.
//! fn main() -> std::process::ExitCode {
//!     taskhost_cli::cli_main!()
//! }
//! ```
//!
//! [`main`] mounts the same commands without the application's version: it names itself after
//! the executable's file name and reports taskhost's version as such (`my-app (taskhost 0.1.0)`).
//!
//! Tasks that take application state (`State<T>` parameters) get it from a builder handed to
//! the macro; it runs once, only for the commands that run or check tasks (`worker`,
//! `enqueue`, `check`):
//!
//! ```no_run
//! use taskhost::AppState;
//!
//! struct Settings {
//!     sender: String,
//! }
//!
//! fn state() -> Result<AppState, std::env::VarError> {
//!     let sender = std::env::var("MAIL_SENDER")?;
//!     Ok(AppState::new().with(Settings { sender }))
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     taskhost_cli::cli_main!(state = state)
//! }
//! ```

/// `println!` for the commands' output: through [`output::write_stdout`], which ends the
/// output quietly when stdout is closed (`taskhost … | head`) instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for the commands' output; see [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*))
    };
}

mod backends;
mod check;
mod dashboard;
mod enqueue;
mod inspect;
mod install;
mod metrics;
mod output;
mod periodic;
mod pin;
mod plugin;
mod progress;
mod scaffold;
mod store;
mod worker;

pub use dashboard::DashboardArgs;
pub use enqueue::EnqueueArgs;
pub use inspect::{InspectArgs, INSPECT_COMMAND, TIMEOUT_ENV};
pub use periodic::PeriodicCommand;
pub use plugin::{OutputFormat, PluginCommand};
pub use scaffold::{new_plugin, NewArgs, PluginNames};
pub use store::{PruneArgs, ResultsCommand};
pub use worker::WorkerArgs;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use taskhost::AppState;

/// `taskhost`: check and inspect the task backends configured in `tasks.toml`.
#[derive(Parser, Debug)]
#[command(name = "taskhost", version, about)]
pub struct Cli {
    /// The config file (default: $TASKHOST_CONFIG, else ./tasks.toml, else the Immediate default).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// How log lines are written on stderr: `text`, or `json` (one JSON object per line, for a
    /// log collector). Which lines: `RUST_LOG`.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = LogFormat::Text,
        env = "TASKHOST_LOG_FORMAT",
        value_name = "FORMAT"
    )]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The format of the log lines on stderr (`--log-format`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// `2026-12-06T06:50:01.123456Z  WARN taskhost: Task id=… failed …`.
    #[default]
    Text,
    /// `{"timestamp":"…","level":"WARN","fields":{"message":"Task id=… failed …"},"target":"taskhost"}`.
    Json,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Load every configured backend and run its checks (each alias in a child process, so a
    /// plugin file that crashes is reported, not fatal).
    Check,
    /// List the plugin libraries in every plugin dir, and why any is not loadable (each file is
    /// opened in a child process, so one that crashes is reported as refused).
    Backends {
        /// `text`: a listing per plugin dir; `json`: one JSON array of the dirs and their files.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Run a worker (from the binary that contains your tasks).
    #[command(after_help = WORKER_LOGGING)]
    Worker(WorkerArgs),
    /// Enqueue a task registered in this binary by its path, with JSON arguments (from your
    /// application's binary, which has the tasks).
    Enqueue(EnqueueArgs),
    /// Inspect stored results.
    #[command(subcommand)]
    Results(ResultsCommand),
    /// Depth per queue and status, and the oldest ready task's age.
    Queues {
        /// Backend alias.
        #[arg(long, default_value = taskhost::DEFAULT_TASK_BACKEND_ALIAS)]
        backend: String,
        /// `text`: an aligned table; `json`: the counts as one JSON array.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Delete finished results by age, status and queue.
    Prune(PruneArgs),
    /// Periodic tasks (`periodic list`: each schedule with its last and next tick).
    #[command(subcommand)]
    Periodic(PeriodicCommand),
    /// Serve the web dashboard: queues, results, result pages and prune (default
    /// http://127.0.0.1:8000/).
    Dashboard(DashboardArgs),
    /// Create or upgrade a queue store's schema.
    Migrate {
        /// Backend alias.
        #[arg(long, default_value = taskhost::DEFAULT_TASK_BACKEND_ALIAS)]
        backend: String,
    },
    /// Work on plugin libraries (`plugin new`: scaffold a plugin crate; `plugin test`: run the
    /// conformance suite against a built one; `plugin pin`: the `[plugin_pins]` table).
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Examine one plugin file or alias and print a machine-readable answer: what the
    /// diagnostic commands run their own executable with, so a file that crashes the process
    /// that opens it takes down this child, not them. Not for direct use.
    #[command(name = "__inspect-plugin", hide = true)]
    InspectPlugin(InspectArgs),
}

/// The end of `worker --help`: what the worker logs, and how to choose.
const WORKER_LOGGING: &str = "\
Logging (stderr): by default (WARN) each failed attempt of a task, with its id, path, attempt and
the error's class path and first line (\"retrying at …\" or \"FAILED\"), and the worker's own
problems. RUST_LOG chooses more or less, e.g. RUST_LOG=taskhost=info (also start, stop and
claim recoveries), RUST_LOG=taskhost=debug, RUST_LOG=error. --log-format json (or
TASKHOST_LOG_FORMAT=json) writes one JSON object per line instead, for a log collector.";

/// Parse the process arguments, run the command, and return its exit code. `--version` and
/// `--help` give the executable's file name, and taskhost's version as such
/// (`my-app (taskhost 0.1.0)`); [`cli_main!`](crate::cli_main) (or [`main_with`]) gives the
/// application's own name and version instead.
pub fn main() -> ExitCode {
    let name = std::env::args_os()
        .next()
        .and_then(|arg0| {
            let path = PathBuf::from(arg0);
            Some(path.file_stem()?.to_string_lossy().into_owned())
        })
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| TASKHOST.to_string());
    if name == TASKHOST {
        return main_with(AppInfo::taskhost());
    }
    main_with(AppInfo {
        name: String::leak(name),
        version: String::leak(format!("(taskhost {})", env!("CARGO_PKG_VERSION"))),
        about: None,
    })
}

const TASKHOST: &str = "taskhost";

/// Who the mounted command line says it is: the name and version `--version` prints, and the
/// description at the top of `--help`. [`cli_main!`](crate::cli_main) fills it from the calling
/// crate's `Cargo.toml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppInfo {
    /// The application's name (`CARGO_PKG_NAME`).
    pub name: &'static str,
    /// Its version (`CARGO_PKG_VERSION`).
    pub version: &'static str,
    /// Its description (`CARGO_PKG_DESCRIPTION`); `None` (or empty): a line saying what the
    /// commands do, and on what taskhost version.
    pub about: Option<&'static str>,
}

impl AppInfo {
    /// The `taskhost` tool itself.
    pub fn taskhost() -> Self {
        Self {
            name: TASKHOST,
            version: env!("CARGO_PKG_VERSION"),
            about: Some(env!("CARGO_PKG_DESCRIPTION")),
        }
    }

    /// The clap command of [`Cli`], named, versioned and described as this application.
    pub fn command(&self) -> clap::Command {
        let about = match self.about.filter(|a| !a.trim().is_empty()) {
            Some(about) => about.to_string(),
            None => format!(
                "Run task workers and inspect the task backends configured in tasks.toml \
                 (taskhost {}).",
                env!("CARGO_PKG_VERSION")
            ),
        };
        Cli::command()
            .name(self.name)
            .version(self.version)
            .about(about)
    }
}

/// Parse the process arguments as the command line of `app` (its name and version in
/// `--version` and `--help`), run the command, and return its exit code. Usually called
/// through [`cli_main!`](crate::cli_main).
pub fn main_with(app: AppInfo) -> ExitCode {
    main_with_state(app, AppState::new)
}

/// [`main_with`], with the application state that tasks take as `State<T>`: `state` is called
/// once, by the commands that run or check tasks (`worker`, `enqueue`, `check`), before they
/// do; an `Err` it returns ends the command with exit 1 (`error: could not build the
/// application state: …`). Usually called through `cli_main!(state = ..)`.
pub fn main_with_state<S: IntoAppState>(app: AppInfo, state: impl FnOnce() -> S) -> ExitCode {
    let matches = app.command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    init_logging_as(cli.log_format);
    run_with_state(cli, state)
}

/// What a state builder handed to [`main_with_state`] (or `cli_main!(state = ..)`) returns:
/// an [`AppState`], or a `Result` of one whose error is displayed.
pub trait IntoAppState {
    /// The state, or why it could not be built.
    fn into_app_state(self) -> Result<AppState, String>;
}

impl IntoAppState for AppState {
    fn into_app_state(self) -> Result<AppState, String> {
        Ok(self)
    }
}

impl<E: std::fmt::Display> IntoAppState for Result<AppState, E> {
    fn into_app_state(self) -> Result<AppState, String> {
        self.map_err(|e| e.to_string())
    }
}

/// Mount the `taskhost` command line in an application's binary, under the application's own
/// name and version (its `Cargo.toml`'s `name`, `version` and `description`):
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     taskhost_cli::cli_main!()
/// }
/// ```
///
/// `cli_main!(state = builder)` also gives the application state that tasks take as
/// `State<T>`: `builder` is a function or closure returning an [`AppState`] or a
/// `Result<AppState, E: Display>`, called once by `worker`, `enqueue` and `check` (see
/// [`main_with_state`]).
#[macro_export]
macro_rules! cli_main {
    () => {
        $crate::main_with($crate::cli_main!(@app))
    };
    (state = $state:expr $(,)?) => {
        $crate::main_with_state($crate::cli_main!(@app), $state)
    };
    (@app) => {
        $crate::AppInfo {
            name: ::core::env!("CARGO_PKG_NAME"),
            version: ::core::env!("CARGO_PKG_VERSION"),
            about: ::core::option::Option::Some(::core::env!("CARGO_PKG_DESCRIPTION")),
        }
    };
}

/// Run a parsed command line: exit 0 when all is well, 1 when a problem was reported.
pub fn run(cli: Cli) -> ExitCode {
    run_with_state(cli, AppState::new)
}

/// [`run`], with the application state `state` builds (see [`main_with_state`]).
pub fn run_with_state<S: IntoAppState>(cli: Cli, state: impl FnOnce() -> S) -> ExitCode {
    let config = cli.config.as_deref();
    let build = || state().into_app_state();
    let ok = match &cli.command {
        Command::Check => with_state(build, |state| check::run(config, state)),
        Command::Backends { format } => backends::run(config, *format),
        Command::Worker(args) => with_config(config, || with_state(build, |_| worker::run(args))),
        // Said before the config is read: without tasks, no config can help.
        Command::Enqueue(_) if taskhost::registered_tasks().is_empty() => {
            report(Err(enqueue::NO_TASKS.to_string()))
        }
        Command::Enqueue(args) => {
            with_config(config, || with_state(build, |_| report(enqueue::run(args))))
        }
        Command::Results(c) => with_config(config, || report(store::results(c))),
        Command::Queues { backend, format } => {
            with_config(config, || report(store::queues(backend, *format)))
        }
        Command::Prune(args) => with_config(config, || report(store::prune(args))),
        Command::Periodic(c) => with_config(config, || report(periodic::run(c))),
        Command::Migrate { backend } => with_config(config, || report(store::migrate(backend))),
        Command::Dashboard(args) => report(dashboard::run(config, args)),
        Command::Plugin(c) => plugin::run(config, c),
        Command::InspectPlugin(args) => inspect::run(config, args),
    };
    if ok && !output::stdout_failed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Load the config into the process-wide handler, then run `f`.
fn with_config(path: Option<&std::path::Path>, f: impl FnOnce() -> bool) -> bool {
    match taskhost::Config::load(path) {
        Ok(config) => {
            taskhost::task_backends().configure(config);
            f()
        }
        Err(e) => {
            eprintln!("error: {e}");
            false
        }
    }
}

/// Build the application state and make it the handler's (what tasks run here take), then run
/// `f` with it.
fn with_state(
    build: impl FnOnce() -> Result<AppState, String>,
    f: impl FnOnce(&AppState) -> bool,
) -> bool {
    match build() {
        Ok(state) => {
            taskhost::task_backends().set_state(state.clone());
            f(&state)
        }
        Err(e) => {
            eprintln!("error: could not build the application state: {e}");
            false
        }
    }
}

fn report(result: Result<(), String>) -> bool {
    result.map_err(|e| eprintln!("error: {e}")).is_ok()
}

/// Log to stderr, filtered by `RUST_LOG` (default `warn`: a worker's failed tasks and retried
/// attempts, and its problems), in colour only when stderr is a terminal. Does nothing if the
/// application has set a global subscriber already.
pub fn init_logging() {
    init_logging_as(LogFormat::Text);
}

/// [`init_logging`] in `format`.
pub fn init_logging_as(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| progress::LogWriter);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}
