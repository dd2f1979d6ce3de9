//! The `taskhost` command-line tool.

fn main() -> std::process::ExitCode {
    taskhost_cli::main()
}
