//! Django's `validate_task`: the rules a task must pass on a backend, in Django's order, with
//! Django's messages verbatim — after two rules of taskhost's own on the names a task carries.
//!
//! Two of Django's eight rules hold by construction in Rust and are enforced by `#[task]` at
//! compile time instead: the function is defined at module level (rule 1) and a task that
//! `takes_context` has a first parameter named `context` (rule 3). Rule 7 (`run_after` must be
//! an aware datetime) holds by type: `run_after` is a `DateTime<Utc>`.
//!
//! Django checks neither the syntax nor the length of a queue name or task path. taskhost does,
//! first, by the rules of the `taskhost-names` crate (shared with the `#[task]` attribute, which
//! applies the queue-name rule to a literal at compile time): a queue name of 1 to
//! [`MAX_QUEUE_NAME_BYTES`](crate::MAX_QUEUE_NAME_BYTES) bytes without control characters, commas
//! or surrounding whitespace, and not `*`; a task path of `::`-separated Rust identifiers, at
//! most [`MAX_TASK_PATH_BYTES`](crate::MAX_TASK_PATH_BYTES) bytes. A name that breaks one is
//! `InvalidTask`, with a message that shows it escaped, the rule and what broke it.

use crate::constants::{TASK_MAX_PRIORITY, TASK_MIN_PRIORITY};
use crate::error::{Error, Result};
pub(crate) use taskhost_names::escape_for_display;
use taskhost_plugin_api::{Capabilities, TaskDescription};

/// Check `task` against a backend's capabilities and allowed queues (empty = any queue): first
/// taskhost's rules on its path and queue name, then Django's, in Django's order.
pub fn validate_task(
    capabilities: Capabilities,
    queues: &[String],
    task: &TaskDescription,
) -> Result<()> {
    validate_task_path(&task.path)?;
    // A queue the backend lists passed the queue-name rule when the config was loaded.
    let listed = !queues.is_empty() && queues.iter().any(|q| *q == task.queue_name);
    if !listed {
        validate_queue_name(&task.queue_name)?;
    }
    let invalid = |message: &str| Err(Error::InvalidTask(message.to_string()));
    if task.is_async && !capabilities.contains(Capabilities::ASYNC_TASK) {
        return invalid("Backend does not support async Tasks.");
    }
    if task.priority != 0 && !capabilities.contains(Capabilities::PRIORITY) {
        return invalid("Backend does not support setting priority of tasks.");
    }
    if !(TASK_MIN_PRIORITY..=TASK_MAX_PRIORITY).contains(&task.priority) {
        return invalid("priority must be a whole number between -100 and 100.");
    }
    if task.run_after.is_some() && !capabilities.contains(Capabilities::DEFER) {
        return invalid("Backend does not support run_after.");
    }
    if !queues.is_empty() && !listed {
        return Err(Error::InvalidTask(format!(
            "Queue '{}' is not valid for backend.",
            task.queue_name
        )));
    }
    Ok(())
}

/// The queue-name rule: `InvalidTask` naming the fault ([`taskhost_names::queue_name_error`]).
/// For every place a queue name comes in (the worker's `--queue` too).
pub(crate) fn validate_queue_name(name: &str) -> Result<()> {
    taskhost_names::queue_name_error(name).map_or(Ok(()), |m| Err(Error::InvalidTask(m)))
}

/// The task-path rule: `InvalidTask` naming the fault ([`taskhost_names::task_path_error`]).
pub(crate) fn validate_task_path(path: &str) -> Result<()> {
    taskhost_names::task_path_error(path).map_or(Ok(()), |m| Err(Error::InvalidTask(m)))
}

/// The configured queue list `queues` (at the dotted key `key`, e.g. `tasks.default.queues`):
/// the message for its first name that breaks the queue-name rule, naming the key and the item.
pub(crate) fn check_configured_queues<S: AsRef<str>>(
    key: &str,
    queues: &[S],
) -> std::result::Result<(), String> {
    for (i, queue) in queues.iter().enumerate() {
        if let Err(e) = validate_queue_name(queue.as_ref()) {
            return Err(format!("'{key}' item {i}: {e}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::{MAX_QUEUE_NAME_BYTES, MAX_TASK_PATH_BYTES};
    use taskhost_names::SHOWN_CHARS;

    fn task() -> TaskDescription {
        TaskDescription::new("app::noop")
    }

    fn message(result: Result<()>) -> String {
        result.unwrap_err().to_string()
    }

    const ALL: Capabilities = Capabilities(0b1111);

    #[test]
    fn priority_bounds_are_inclusive() {
        for p in [-100, 0, 100] {
            let t = TaskDescription {
                priority: p,
                ..task()
            };
            assert!(validate_task(ALL, &[], &t).is_ok(), "{p}");
        }
        for p in [-101, 101] {
            let t = TaskDescription {
                priority: p,
                ..task()
            };
            assert_eq!(
                message(validate_task(ALL, &[], &t)),
                "priority must be a whole number between -100 and 100."
            );
        }
    }

    #[test]
    fn unsupported_priority_is_reported_before_its_range() {
        let t = TaskDescription {
            priority: 101,
            ..task()
        };
        assert_eq!(
            message(validate_task(Capabilities::NONE, &[], &t)),
            "Backend does not support setting priority of tasks."
        );
    }

    #[test]
    fn async_tasks_need_the_capability() {
        let t = TaskDescription {
            is_async: true,
            ..task()
        };
        assert_eq!(
            message(validate_task(Capabilities::NONE, &[], &t)),
            "Backend does not support async Tasks."
        );
        assert!(validate_task(Capabilities::ASYNC_TASK, &[], &t).is_ok());
    }

    #[test]
    fn run_after_needs_defer() {
        let t = TaskDescription {
            run_after: Some(chrono::Utc::now()),
            ..task()
        };
        assert_eq!(
            message(validate_task(Capabilities::NONE, &[], &t)),
            "Backend does not support run_after."
        );
        assert!(validate_task(Capabilities::DEFER, &[], &t).is_ok());
    }

    #[test]
    fn queue_must_be_allowed_unless_any_queue_is() {
        let t = TaskDescription {
            queue_name: "queue-2".into(),
            ..task()
        };
        let queues = vec!["default".to_string(), "queue_1".to_string()];
        assert_eq!(
            message(validate_task(ALL, &queues, &t)),
            "Queue 'queue-2' is not valid for backend."
        );
        assert!(validate_task(ALL, &[], &t).is_ok());
    }

    #[track_caller]
    fn queue_message(name: &str) -> String {
        let t = TaskDescription {
            queue_name: name.into(),
            ..task()
        };
        message(validate_task(ALL, &[], &t))
    }

    #[track_caller]
    fn path_message(path: &str) -> String {
        let t = TaskDescription {
            path: path.into(),
            ..task()
        };
        message(validate_task(ALL, &[], &t))
    }

    const QUEUE_RULE: &str = "a queue name must be 1 to 255 bytes without control characters, \
        commas or leading or trailing whitespace, and not '*'";

    const PATH_RULE: &str = "a task path must be at least two '::'-separated Rust identifiers \
        (e.g. my_app::tasks::send), at most 1024 bytes";

    #[test]
    fn queue_names_up_to_255_bytes_of_printable_text_pass() {
        for name in [
            "default",
            "q",
            "queue-2",
            "emails.high priority",
            "o'neil \"quoted\"",
            "é日本",
            "*emails",
            &"x".repeat(MAX_QUEUE_NAME_BYTES),
            &"é".repeat(MAX_QUEUE_NAME_BYTES / 2),
        ] {
            let t = TaskDescription {
                queue_name: (*name).into(),
                ..task()
            };
            assert!(validate_task(ALL, &[], &t).is_ok(), "{name:?}");
        }
    }

    #[test]
    fn a_queue_name_with_a_nul_byte_is_refused_with_the_byte_escaped() {
        assert_eq!(
            queue_message("a\0b"),
            format!(
                "Invalid queue name 'a\\0b': {QUEUE_RULE} (it has the control character \\0 at \
                 byte offset 1)."
            )
        );
    }

    #[test]
    fn a_queue_name_over_255_bytes_is_refused_shown_truncated() {
        assert_eq!(
            queue_message(&"q".repeat(8000)),
            format!(
                "Invalid queue name '{}…': {QUEUE_RULE} (it is 8000 bytes).",
                "q".repeat(SHOWN_CHARS)
            )
        );
        // 256 bytes in 128 characters: the limit is in bytes.
        assert_eq!(
            queue_message(&"é".repeat(128)),
            format!(
                "Invalid queue name '{}…': {QUEUE_RULE} (it is 256 bytes).",
                "é".repeat(SHOWN_CHARS)
            )
        );
    }

    #[test]
    fn every_other_queue_name_fault_is_named() {
        let cases = [
            ("", "''", "it is empty"),
            (
                "a\u{1b}[31mred",
                "'a\\u{1b}[31mred'",
                "it has the control character \\u{1b} at byte offset 1",
            ),
            (
                "tab\there",
                "'tab\\there'",
                "it has the control character \\t at byte offset 3",
            ),
            (
                "line\n",
                "'line\\n'",
                "it has the control character \\n at byte offset 4",
            ),
            (
                "del\u{7f}",
                "'del\\u{7f}'",
                "it has the control character \\u{7f} at byte offset 3",
            ),
            (
                "c1\u{9b}",
                "'c1\\u{9b}'",
                "it has the control character \\u{9b} at byte offset 2",
            ),
            (
                "bidi\u{202e}",
                "'bidi\\u{202e}'",
                "it has the control character \\u{202e} at byte offset 4",
            ),
            (
                "a,b",
                "'a,b'",
                "it has a comma, which separates queue names in --queue",
            ),
            (" a", "' a'", "it starts with whitespace"),
            ("a\u{a0}", "'a\u{a0}'", "it ends with whitespace"),
            ("*", "'*'", "'*' means every queue in --queue"),
        ];
        for (name, shown, fault) in cases {
            assert_eq!(
                queue_message(name),
                format!("Invalid queue name {shown}: {QUEUE_RULE} ({fault})."),
                "{name:?}"
            );
        }
    }

    #[test]
    fn name_rules_come_before_djangos_rules() {
        // A bad name on a backend that also refuses the priority and lists its queues.
        let t = TaskDescription {
            queue_name: "a\0b".into(),
            priority: 101,
            ..task()
        };
        let queues = vec!["default".to_string()];
        assert!(message(validate_task(Capabilities::NONE, &queues, &t))
            .starts_with("Invalid queue name 'a\\0b'"));
        let t = TaskDescription {
            path: "noop".into(),
            ..t
        };
        assert!(message(validate_task(Capabilities::NONE, &queues, &t))
            .starts_with("Invalid task path 'noop'"));
    }

    #[test]
    fn task_paths_of_rust_identifiers_pass() {
        for path in [
            "app::noop",
            "my_app::tasks::send_email",
            "_private::_f",
            "r#type::r#match",
            "café::größe2",
            &format!("a::{}", "b".repeat(MAX_TASK_PATH_BYTES - 3)),
        ] {
            let t = TaskDescription {
                path: (*path).into(),
                ..task()
            };
            assert!(validate_task(ALL, &[], &t).is_ok(), "{path:?}");
        }
    }

    #[test]
    fn every_task_path_fault_is_named() {
        let long = format!("a::{}", "b".repeat(MAX_TASK_PATH_BYTES - 2));
        let cases = [
            ("", "''".to_string(), "it is empty"),
            (
                long.as_str(),
                format!("'a::{}…'", "b".repeat(SHOWN_CHARS - 3)),
                "it is 1025 bytes",
            ),
            ("noop", "'noop'".to_string(), "it has no '::'"),
            ("app::", "'app::'".to_string(), "segment 2 is empty"),
            ("::app::f", "'::app::f'".to_string(), "segment 1 is empty"),
            (
                "app:::f",
                "'app:::f'".to_string(),
                "segment 2 ':f' is not an identifier",
            ),
            (
                "app.tasks.send",
                "'app.tasks.send'".to_string(),
                "segment 1 'app.tasks.send' is not an identifier",
            ),
            (
                "app::send\0",
                "'app::send\\0'".to_string(),
                "segment 2 'send\\0' is not an identifier",
            ),
            (
                "app::2fast",
                "'app::2fast'".to_string(),
                "segment 2 '2fast' is not an identifier",
            ),
            (
                "app::_",
                "'app::_'".to_string(),
                "segment 2 '_' is not an identifier",
            ),
            (
                "app::send email",
                "'app::send email'".to_string(),
                "segment 2 'send email' is not an identifier",
            ),
        ];
        for (path, shown, fault) in cases {
            assert_eq!(
                path_message(path),
                format!("Invalid task path {shown}: {PATH_RULE} ({fault})."),
                "{path:?}"
            );
        }
    }

    #[test]
    fn configured_queues_name_the_key_and_the_item() {
        assert_eq!(
            check_configured_queues("tasks.default.queues", &["a", "b"]),
            Ok(())
        );
        assert_eq!(
            check_configured_queues::<&str>("tasks.default.queues", &[]),
            Ok(())
        );
        assert_eq!(
            check_configured_queues("tasks.x.queues", &["ok", "a,b"]),
            Err(format!(
                "'tasks.x.queues' item 1: Invalid queue name 'a,b': {QUEUE_RULE} (it has a \
                 comma, which separates queue names in --queue)."
            ))
        );
    }

    #[test]
    fn the_task_attribute_refuses_a_queue_name_with_the_same_message() {
        // The rule as `#[task]` applies it at compile time (taskhost-names), as trybuild recorded it.
        let stderr = include_str!("../tests/ui/bad_queue_name.stderr");
        for name in ["emails\0", "a,b", "*"] {
            let message = validate_queue_name(name).unwrap_err().to_string();
            assert!(
                stderr.contains(&format!("error: {message}\n")),
                "{message}\nnot in:\n{stderr}"
            );
        }
    }
}
