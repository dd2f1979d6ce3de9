//! Django's `validate_task`: the rules a task must pass on a backend, in Django's order, with
//! Django's messages verbatim.
//!
//! Two of Django's eight rules hold by construction in Rust and are enforced by `#[task]` at
//! compile time instead: the function is defined at module level (rule 1) and a task that
//! `takes_context` has a first parameter named `context` (rule 3). Rule 7 (`run_after` must be
//! an aware datetime) holds by type: `run_after` is a `DateTime<Utc>`.

use crate::constants::{TASK_MAX_PRIORITY, TASK_MIN_PRIORITY};
use crate::error::{Error, Result};
use taskhost_plugin_api::{wire::TaskDescription, Capabilities};

/// Check `task` against a backend's capabilities and allowed queues (empty = any queue).
pub fn validate_task(
    capabilities: Capabilities,
    queues: &[String],
    task: &TaskDescription,
) -> Result<()> {
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
    if !queues.is_empty() && !queues.contains(&task.queue_name) {
        return Err(Error::InvalidTask(format!(
            "Queue '{}' is not valid for backend.",
            task.queue_name
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> TaskDescription {
        TaskDescription {
            path: "app::noop".into(),
            priority: 0,
            queue_name: "default".into(),
            backend: "default".into(),
            run_after: None,
            takes_context: false,
            is_async: false,
            max_attempts: None,
            timeout_secs: None,
        }
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
}
