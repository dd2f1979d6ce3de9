//! `taskhost check`: load every configured backend, run its checks, validate registered tasks.
//!
//! Every `State<T>` a registered task takes must be in the application state (built by the
//! binary's `cli_main!(state = ..)`), as a worker requires before it starts.
//!
//! Each alias is loaded, checked and its tasks validated in a child process
//! ([`super::inspect`]), so this process never opens a plugin file: one that crashes the child
//! is reported as that alias's error, with the signal, and the other aliases are still checked.
//! What needs no opening (the name, the file's place and permissions, its pin) is checked here
//! first, with the same messages as loading.

use super::inspect::{self, Answer};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::Path;
use taskhost::plugin::BackendName;
use taskhost::plugin::{locate_library, Located};
use taskhost::registered_tasks;
use taskhost::Error;
use taskhost::Task;
use taskhost::{AppState, Config};

/// Print one line per problem; a one-line summary when there is none. Returns whether all is well.
pub fn run(config_path: Option<&Path>, state: &AppState) -> bool {
    let config = match Config::load(config_path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return false;
        }
    };
    let source = config
        .file
        .as_ref()
        .map(|f| f.display().to_string())
        .unwrap_or_else(|| "the built-in default config".to_string());
    let timeout = inspect::timeout(inspect::DEFAULT_TIMEOUT_SECS);
    let mut problems = Vec::new();
    let mut loaded = Vec::new();
    let mut loadable = BTreeSet::new();
    for (alias, entry) in &config.backends {
        let fail = |reason: String| Error::backend_not_found(alias, &entry.backend, reason);
        let location = match unopened_checks(&config, &entry.backend) {
            Ok(location) => location,
            Err(reason) => {
                problems.push(format!("error: {}", fail(reason)));
                continue;
            }
        };
        let args = [
            OsString::from(inspect::INSPECT_COMMAND),
            OsString::from("--alias"),
            OsString::from(alias),
        ];
        let doing = format!("loading backend '{alias}' and running its checks");
        match inspect::ask(config.file.as_deref(), &args, timeout, &doing) {
            Ok(Answer::Alias {
                loaded: true,
                problems: found,
            }) => {
                problems.extend(found);
                loaded.push(format!("{alias} ({})", entry.backend));
                loadable.insert(alias.as_str());
            }
            Ok(Answer::Alias {
                problems: found, ..
            }) => problems.extend(found),
            Ok(other) => problems.push(format!(
                "error: backend '{alias}': the inspecting process answered {other:?}"
            )),
            Err(crash) => problems.push(format!(
                "error: {}",
                fail(format!("{location} {}", crash.0))
            )),
        }
    }
    let tasks = registered_tasks();
    for definition in &tasks {
        let task: Task<(), ()> = Task::from_definition(definition);
        // Tasks on a loadable alias were validated by that alias's inspecting process.
        if !loadable.contains(task.backend()) {
            problems.push(format!(
                "error: task '{}' uses backend alias '{}', which is not configured or not loadable",
                task.module_path(),
                task.backend()
            ));
        }
    }
    // Periodic schedules name tasks: in a binary that has tasks (an application's), each must
    // be one of them, as a worker requires before it starts.
    if !tasks.is_empty() {
        for (alias, entry) in &config.backends {
            for schedule in &entry.periodic {
                if taskhost::find_task(&schedule.task).is_none() {
                    problems.push(format!(
                        "error: tasks.{alias}.periodic.{}: the task '{}' is not registered in \
                         this binary; check the path (module path and function name)",
                        schedule.name, schedule.task
                    ));
                }
            }
        }
    }
    if let Err(Error::MissingState(missing)) = taskhost::check_state(state) {
        problems.extend(missing.iter().map(|m| {
            format!("error: {m}: add it to the builder of this binary's `cli_main!(state = ..)`")
        }));
    }
    for problem in &problems {
        outln!("{problem}");
    }
    let errors = problems.iter().filter(|p| p.starts_with("error")).count();
    if errors == 0 {
        outln!(
            "taskhost check: {} backend(s) OK from {source}: {}{}",
            loaded.len(),
            if loaded.is_empty() {
                "(none configured)".to_string()
            } else {
                loaded.join(", ")
            },
            if tasks.is_empty() {
                String::new()
            } else {
                format!("; {} task(s) valid", tasks.len())
            }
        );
        true
    } else {
        outln!("taskhost check: {errors} error(s) in {source}");
        false
    }
}

/// The backend name parsed, its library file found in the plugin dirs (containment,
/// permissions) and checked against its pin — or, with no file in any dir, the built-in that
/// serves it: everything loading checks before it opens the file. Returns where the library
/// is, for messages.
fn unopened_checks(config: &Config, backend: &str) -> Result<String, String> {
    let name = BackendName::parse(backend)?;
    match locate_library(
        &name,
        &config.plugin_dirs,
        config.allow_writable_plugin_dirs,
    )? {
        Located::File(file) => {
            if let Some(pins) = &config.plugin_pins {
                pins.verify_file(&name.library_file_name(), &file)?;
            }
            Ok(format!("'{}'", file.display()))
        }
        Located::BuiltIn(built_in) => Ok(format!("the built-in {}", built_in.module_path)),
    }
}
