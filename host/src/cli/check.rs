//! `taskhost check`: load every configured backend, run its checks, validate registered tasks.

use crate::config::Config;
use crate::handler::TaskBackends;
use crate::registry::registered_tasks;
use crate::task::Task;
use std::path::Path;

/// Print one line per problem; a one-line summary when there is none. Returns whether all is well.
pub fn run(config_path: Option<&Path>) -> bool {
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
    let handler = TaskBackends::new(config.clone());
    let mut problems = Vec::new();
    let mut loaded = Vec::new();
    for (alias, entry) in &config.backends {
        match handler.get(alias) {
            Ok(backend) => {
                match backend.check() {
                    Ok(messages) => problems.extend(messages.into_iter().map(|m| {
                        let hint = m.hint.map(|h| format!(" (hint: {h})")).unwrap_or_default();
                        format!("{}: backend '{alias}': {}{hint}", m.level, m.message)
                    })),
                    Err(e) => problems.push(format!("error: backend '{alias}': check failed: {e}")),
                }
                loaded.push(format!("{alias} ({})", entry.backend));
            }
            Err(e) => problems.push(format!("error: {e}")),
        }
    }
    let tasks = registered_tasks();
    for definition in &tasks {
        let task: Task<(), ()> = Task::from_definition(definition);
        let Ok(backend) = handler.get(task.backend()) else {
            problems.push(format!(
                "error: task '{}' uses backend alias '{}', which is not configured or not loadable",
                task.module_path(),
                task.backend()
            ));
            continue;
        };
        if let Err(e) = backend.validate_task(&task.description()) {
            problems.push(format!("error: task '{}': {e}", task.module_path()));
        }
    }
    for problem in &problems {
        println!("{problem}");
    }
    let errors = problems.iter().filter(|p| p.starts_with("error")).count();
    if errors == 0 {
        println!(
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
        println!("taskhost check: {errors} error(s) in {source}");
        false
    }
}
