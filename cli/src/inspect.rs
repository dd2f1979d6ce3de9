//! Examining plugin files in a child process, so a file that crashes whatever opens it (a flipped
//! byte in its code, a constructor that aborts) is reported as refused instead of taking the
//! diagnostic command down with it.
//!
//! The diagnostic commands (`backends`, `check`, `plugin test`) re-run their own executable
//! ([`std::env::current_exe`]) with the hidden subcommand [`INSPECT_COMMAND`] (or, for
//! `plugin test`, the hidden `--in-process` flag). It works the same in an application's binary
//! that mounts the CLI with [`crate::main`]. The child prints one line starting with
//! [`ANSWER_PREFIX`] followed by its [`Answer`] as JSON, and exits 0. The parent treats a death
//! by signal, any other exit status, a missing or unreadable answer, or no exit within the
//! timeout (the child is then killed) as the file being refused, and carries on.

use clap::Args;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use taskhost::plugin::Library;
use taskhost::registered_tasks;
use taskhost::Config;
use taskhost::Task;
use taskhost::TaskBackends;
use taskhost_plugin_api::abi::Manifest;

/// The hidden subcommand a diagnostic command runs its own executable with.
pub const INSPECT_COMMAND: &str = "__inspect-plugin";

/// The start of the child's answer line on stdout (anything else on stdout is ignored, so a
/// plugin that prints cannot garble the answer).
pub(crate) const ANSWER_PREFIX: &str = "taskhost-inspect-answer: ";

/// The environment variable that sets how long a child may take, in whole seconds (default 60
/// per file or alias for `backends` and `check`, 600 for the whole `plugin test` suite).
pub const TIMEOUT_ENV: &str = "TASKHOST_INSPECT_TIMEOUT_SECS";

/// How long `backends` and `check` wait for one file or alias.
pub(crate) const DEFAULT_TIMEOUT_SECS: u64 = 60;

/// How long `plugin test` waits for the whole conformance suite.
pub(crate) const DEFAULT_SUITE_TIMEOUT_SECS: u64 = 600;

/// The arguments of the hidden [`INSPECT_COMMAND`] subcommand: exactly one of `--file` and
/// `--alias`.
#[derive(Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct InspectArgs {
    /// Open this library file and answer its manifest or why it is not loadable.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Load this alias of the config, run its checks and validate the tasks that use it.
    #[arg(long, value_name = "ALIAS")]
    pub alias: Option<String>,
}

/// What the child answers.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Answer {
    /// `--file`: the library opened; what it says about itself.
    Library {
        /// Its manifest.
        manifest: Manifest,
    },
    /// `--file`: the library is not loadable, and why.
    Refused {
        /// The reason, naming the file.
        reason: String,
    },
    /// `plugin test --in-process`: the conformance suite's report.
    Report {
        /// The report.
        report: taskhost_testkit::Report,
    },
    /// `--alias`: the alias's backend loaded (or not), and the problems found.
    Alias {
        /// Whether the backend loaded.
        loaded: bool,
        /// One line per problem, as `taskhost check` prints them.
        problems: Vec<String>,
    },
}

/// Run the hidden subcommand in this (child) process: print the answer line, exit 0.
pub(crate) fn run(config_path: Option<&Path>, args: &InspectArgs) -> bool {
    let answer = match (&args.file, &args.alias) {
        (Some(file), _) => match Library::open(file) {
            Ok(library) => Answer::Library {
                manifest: library.manifest().clone(),
            },
            Err(reason) => Answer::Refused { reason },
        },
        (None, Some(alias)) => inspect_alias(config_path, alias),
        (None, None) => {
            eprintln!("error: {INSPECT_COMMAND} needs --file or --alias");
            return false;
        }
    };
    print_answer(&answer)
}

/// Print `answer` as the answer line on stdout; false if it cannot be written.
pub(crate) fn print_answer(answer: &Answer) -> bool {
    let json = match serde_json::to_string(answer) {
        Ok(json) => json,
        Err(e) => {
            eprintln!("error: cannot encode the answer: {e}");
            return false;
        }
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "\n{ANSWER_PREFIX}{json}")
        .and_then(|()| out.flush())
        .is_ok()
}

/// Load `alias`, run its checks and validate the registered tasks that use it.
fn inspect_alias(config_path: Option<&Path>, alias: &str) -> Answer {
    let config = match Config::load(config_path) {
        Ok(config) => config,
        Err(e) => {
            return Answer::Alias {
                loaded: false,
                problems: vec![format!("error: {e}")],
            }
        }
    };
    let handler = TaskBackends::new(config);
    let backend = match handler.get(alias) {
        Ok(backend) => backend,
        Err(e) => {
            return Answer::Alias {
                loaded: false,
                problems: vec![format!("error: {e}")],
            }
        }
    };
    let mut problems = Vec::new();
    match backend.check() {
        Ok(messages) => problems.extend(messages.into_iter().map(|m| {
            let hint = m.hint.map(|h| format!(" (hint: {h})")).unwrap_or_default();
            format!("{}: backend '{alias}': {}{hint}", m.level, m.message)
        })),
        Err(e) => problems.push(format!("error: backend '{alias}': check failed: {e}")),
    }
    for definition in &registered_tasks() {
        let task: Task<(), ()> = Task::from_definition(definition);
        if task.backend() != alias {
            continue;
        }
        if let Err(e) = backend.validate_task(&task.description()) {
            problems.push(format!("error: task '{}': {e}", task.module_path()));
        }
    }
    Answer::Alias {
        loaded: true,
        problems,
    }
}

/// How a child run went when it gave no usable answer: the text completes "… '<file>' <text>".
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Crash(pub String);

/// The timeout for a child, from [`TIMEOUT_ENV`] or `default_secs`.
pub(crate) fn timeout(default_secs: u64) -> Duration {
    let secs = std::env::var(TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(default_secs);
    Duration::from_secs(secs)
}

/// Run this executable with `args` (after the global `--config`, when given), wait up to
/// `timeout`, and read its answer. `doing` says what the child was doing, for the message
/// ("while opening it").
pub(crate) fn ask(
    config_path: Option<&Path>,
    args: &[OsString],
    timeout: Duration,
    doing: &str,
) -> Result<Answer, Crash> {
    let output = run_child(config_path, args, timeout, doing)?;
    // What the child logged (plugin warnings, RUST_LOG output) is passed on, as it was when the
    // commands opened files in-process.
    if !output.stderr.is_empty() {
        eprint!("{}", output.stderr);
    }
    let answer = output
        .stdout
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix(ANSWER_PREFIX));
    match answer {
        Some(json) => serde_json::from_str(json).map_err(|e| {
            Crash(format!(
                "gave the inspecting process a garbled answer while {doing} ({e}); refusing it"
            ))
        }),
        None => Err(Crash(format!(
            "left the inspecting process without an answer while {doing}{}; refusing it",
            last_words(&output.stderr)
        ))),
    }
}

/// What a child printed, when it exited 0 in time.
pub(crate) struct ChildOutput {
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

/// Run this executable with `args`, bounded by `timeout`. Exit status 0 gives its output; a
/// signal, another status, a failure to start or the timeout gives the [`Crash`] text.
pub(crate) fn run_child(
    config_path: Option<&Path>,
    args: &[OsString],
    timeout: Duration,
    doing: &str,
) -> Result<ChildOutput, Crash> {
    use wait_timeout::ChildExt;
    let exe = std::env::current_exe().map_err(|e| {
        Crash(format!(
            "could not be examined: this program cannot find its own executable to run the \
             inspecting process ({e}); refusing it"
        ))
    })?;
    let mut command = Command::new(&exe);
    if let Some(path) = config_path {
        command.arg("--config").arg(path);
    }
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|e| {
        Crash(format!(
            "could not be examined: the inspecting process ('{}') did not start: {e}; refusing \
             it",
            exe.display()
        ))
    })?;
    let stdout = reader(child.stdout.take());
    let stderr = reader(child.stderr.take());
    let status = match child.wait_timeout(timeout) {
        Ok(Some(status)) => status,
        Ok(None) | Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Crash(format!(
                "kept the inspecting process busy for more than {} s while {doing} (a \
                 constructor that hangs?); it was killed; refusing it (set {TIMEOUT_ENV} to \
                 wait longer)",
                timeout.as_secs()
            )));
        }
    };
    let (stdout, stderr) = (collect(stdout), collect(stderr));
    if status.success() {
        return Ok(ChildOutput { stdout, stderr });
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return Err(Crash(format!(
                "crashed the inspecting process with {} while {doing}{}; refusing it",
                signal_name(signal),
                last_words(&stderr)
            )));
        }
    }
    let code = status.code().map_or_else(
        || "an unknown status".to_string(),
        |c| format!("status {c}"),
    );
    let hint = if stderr.contains(INSPECT_COMMAND) || stderr.contains("--in-process") {
        format!(
            " (does '{}' run taskhost_cli::main()? the diagnostic commands re-run it as \
             `{} {INSPECT_COMMAND} …`)",
            exe.display(),
            exe.display()
        )
    } else {
        String::new()
    };
    Err(Crash(format!(
        "made the inspecting process exit with {code} while {doing}{}{hint}; refusing it",
        last_words(&stderr)
    )))
}

/// Reads a child's pipe to its end on a thread of its own (so neither pipe fills up).
fn reader<R: Read + Send + 'static>(pipe: Option<R>) -> Option<std::sync::mpsc::Receiver<Vec<u8>>> {
    let mut pipe = pipe?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("taskhost-inspect-pipe".into())
        .spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            let _ = tx.send(bytes);
        })
        .ok()?;
    Some(rx)
}

/// What the reader thread read; bounded wait, in case a grandchild keeps the pipe open.
fn collect(rx: Option<std::sync::mpsc::Receiver<Vec<u8>>>) -> String {
    rx.and_then(|rx| rx.recv_timeout(Duration::from_secs(5)).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

/// `" (its last output: '…')"` from a child's stderr, or nothing when it printed nothing.
fn last_words(stderr: &str) -> String {
    let Some(line) = stderr.lines().rev().map(str::trim).find(|l| !l.is_empty()) else {
        return String::new();
    };
    let mut shown: String = line.chars().take(300).collect();
    if line.chars().count() > 300 {
        shown.push('…');
    }
    let line = shown;
    format!(" (its last output: '{line}')")
}

/// `SIGSEGV`, `SIGABRT`, … for the signals a crashing library causes; `signal <n>` otherwise.
pub(crate) fn signal_name(signal: i32) -> String {
    let name = match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        #[cfg(any(target_os = "linux", target_os = "android"))]
        7 => "SIGBUS",
        #[cfg(any(target_os = "linux", target_os = "android"))]
        31 => "SIGSYS",
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        10 => "SIGBUS",
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        12 => "SIGSYS",
        _ => return format!("signal {signal}"),
    };
    format!("{name} (signal {signal})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(11), "SIGSEGV (signal 11)");
        assert_eq!(signal_name(6), "SIGABRT (signal 6)");
        assert_eq!(signal_name(4), "SIGILL (signal 4)");
        #[cfg(target_os = "linux")]
        assert_eq!(signal_name(7), "SIGBUS (signal 7)");
        assert_eq!(signal_name(64), "signal 64");
    }

    #[test]
    fn last_words_keeps_the_last_line() {
        assert_eq!(last_words(""), "");
        assert_eq!(last_words("\n  \n"), "");
        assert_eq!(
            last_words("first\nInconsistency detected by ld.so: x\n\n"),
            " (its last output: 'Inconsistency detected by ld.so: x')"
        );
        let long = "x".repeat(400);
        assert_eq!(
            last_words(&long),
            format!(" (its last output: '{}…')", "x".repeat(300))
        );
    }

    #[test]
    fn answers_round_trip() {
        let answer = Answer::Alias {
            loaded: true,
            problems: vec!["warning: x".into()],
        };
        let json = serde_json::to_string(&answer).unwrap();
        assert_eq!(serde_json::from_str::<Answer>(&json).unwrap(), answer);
    }
}
