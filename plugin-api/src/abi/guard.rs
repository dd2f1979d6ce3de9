//! The panic guard: every entry point of the boundary runs its body through it.
//!
//! A panic that unwinds into abi_stable's glue ends the process (`exit(1)`), so both sides catch
//! panics where they start and turn them into a [`PluginError`] of kind [`ErrorKind::PANIC`].

use crate::{ErrorKind, PluginError};
use abi_stable::std_types::RResult;
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Run `body`, turning a panic into an [`ErrorKind::PANIC`] error that quotes the panic message.
pub fn guard<T>(body: impl FnOnce() -> Result<T, PluginError>) -> RResult<T, PluginError> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result.into(),
        Err(payload) => RResult::RErr(PluginError::new(
            ErrorKind::PANIC,
            format!("plugin panicked: {}", panic_message(payload.as_ref())),
        )),
    }
}

/// Run `body`, returning `fallback` if it panics — for entry points that cannot return an error.
pub fn guard_or<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// The message of a panic payload (`&str` or `String`), or a placeholder.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_turns_a_panic_into_a_panic_error() {
        let out: RResult<(), PluginError> = guard(|| panic!("boom {}", 1));
        let err = out.unwrap_err();
        assert_eq!(err.kind, ErrorKind::PANIC);
        assert_eq!(err.message(), "plugin panicked: boom 1");
    }
}
