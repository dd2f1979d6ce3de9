//! The enqueue requests this thread is handing to a backend right now.
//!
//! A backend that runs a task at once (Immediate) is called with the request and calls the host
//! back to run it. Through [`taskhost_plugin_api::ops::RUN_ENQUEUED`] it names the request by
//! id instead of sending the task and its arguments back as JSON: the host finds them here.
//! Requests stack up when a running task enqueues another one on the same thread.

use std::cell::RefCell;
use taskhost_plugin_api::wire::EnqueueRequest;

thread_local! {
    static IN_FLIGHT: RefCell<Vec<EnqueueRequest>> = const { RefCell::new(Vec::new()) };
}

/// Run `call` with `request` in flight on this thread, and give the request back with what
/// `call` returned.
pub(crate) fn during<T>(request: EnqueueRequest, call: impl FnOnce() -> T) -> (EnqueueRequest, T) {
    /// Takes the request off the stack if `call` unwinds, so the stack stays balanced.
    struct PopOnUnwind;
    impl Drop for PopOnUnwind {
        fn drop(&mut self) {
            if std::thread::panicking() {
                let _ = IN_FLIGHT.try_with(|stack| stack.borrow_mut().pop());
            }
        }
    }

    IN_FLIGHT.with_borrow_mut(|stack| stack.push(request));
    let unwind = PopOnUnwind;
    let value = call();
    drop(unwind);
    let request = IN_FLIGHT
        .with_borrow_mut(Vec::pop)
        .expect("every push of `during` is popped by the same call, nested calls included");
    (request, value)
}

/// `read` applied to the request with result id `id` in flight on this thread (the innermost
/// one), or `None` if there is none. The stack is not borrowed once `read` returns, so what
/// the caller does next may enqueue again.
pub(crate) fn with<T>(id: &str, read: impl FnOnce(&EnqueueRequest) -> T) -> Option<T> {
    IN_FLIGHT.with_borrow(|stack| stack.iter().rev().find(|r| r.id == id).map(read))
}

#[cfg(test)]
mod tests {
    use super::*;
    use taskhost_plugin_api::wire::TaskDescription;

    fn request(id: &str) -> EnqueueRequest {
        EnqueueRequest {
            id: id.into(),
            task: TaskDescription {
                path: "t".into(),
                priority: 0,
                queue_name: "default".into(),
                backend: "default".into(),
                run_after: None,
                takes_context: false,
                is_async: false,
                max_attempts: None,
                timeout_secs: None,
            },
            args: Vec::new(),
            kwargs: Default::default(),
        }
    }

    #[test]
    fn a_request_is_found_only_while_it_is_in_flight_nested_ones_included() {
        assert!(with("a", |_| ()).is_none());
        let (back, inner) = during(request("a"), || {
            let (_, seen) = during(request("b"), || (with("a", |_| ()), with("b", |_| ())));
            (seen, with("b", |_| ()), with("a", |r| r.id.clone()))
        });
        assert_eq!(back.id, "a");
        assert_eq!(inner.0, (Some(()), Some(())));
        assert_eq!(inner.1, None);
        assert_eq!(inner.2.as_deref(), Some("a"));
        assert!(with("a", |_| ()).is_none());
    }

    #[test]
    fn a_call_that_unwinds_leaves_nothing_in_flight() {
        let unwound = std::panic::catch_unwind(|| during(request("p"), || panic!("boom")));
        assert!(unwound.is_err());
        assert!(with("p", |_| ()).is_none());
        IN_FLIGHT.with_borrow(|stack| assert!(stack.is_empty()));
    }
}
