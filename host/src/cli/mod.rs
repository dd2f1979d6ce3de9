//! The `taskhost` command line, as a library so applications can mount it in their own binary
//! (a worker must contain the task functions).
//!
//! ```no_run
//! // src/bin/tasks.rs of an application:
//! fn main() -> std::process::ExitCode {
//!     taskhost::cli::main()
//! }
//! ```

mod backends;
mod check;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// `taskhost`: check and inspect the task backends configured in `tasks.toml`.
#[derive(Parser, Debug)]
#[command(name = "taskhost", version, about)]
pub struct Cli {
    /// The config file (default: $TASKHOST_CONFIG, else ./tasks.toml, else the Immediate default).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Load every configured backend and run its checks.
    Check,
    /// List the plugin libraries in every plugin dir, and why any is not loadable.
    Backends,
}

/// Parse the process arguments, run the command, and return its exit code.
pub fn main() -> ExitCode {
    init_logging();
    run(Cli::parse())
}

/// Run a parsed command line: exit 0 when all is well, 1 when a problem was reported.
pub fn run(cli: Cli) -> ExitCode {
    let ok = match cli.command {
        Command::Check => check::run(cli.config.as_deref()),
        Command::Backends => backends::run(cli.config.as_deref()),
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Log to stderr, filtered by `RUST_LOG` (default `warn`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
