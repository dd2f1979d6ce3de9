//! The panic guard: every ABI entry point runs its body through it.
//!
//! A panic that unwinds into abi_stable's glue ends the process (`exit(1)`), so both sides catch
//! panics where they start and turn them into a [`PluginError`] of kind [`ErrorKind::PANIC`].

use crate::{ErrorKind, PluginError, PluginResult};
use abi_stable::std_types::{RResult, RString};
use serde::{de::DeserializeOwned, Serialize};
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Run `body`, turning a panic into an [`ErrorKind::PANIC`] error that quotes the panic message.
pub fn guard<T>(body: impl FnOnce() -> Result<T, PluginError>) -> PluginResult<T> {
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

/// Decode `request` as `Req`, run `body`, encode its `Resp` as JSON — all inside [`guard`].
/// `what` names the payload in decoding errors.
pub fn guard_json<Req, Resp>(
    what: &str,
    request: &str,
    body: impl FnOnce(Req) -> Result<Resp, PluginError>,
) -> PluginResult<RString>
where
    Req: DeserializeOwned,
    Resp: Serialize,
{
    guard(|| {
        let req: Req =
            serde_json::from_str(request).map_err(|e| PluginError::invalid_request(what, e))?;
        let resp = body(req)?;
        serde_json::to_string(&resp)
            .map(RString::from)
            .map_err(|e| PluginError::other(format!("could not encode the {what} response: {e}")))
    })
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
        let out: PluginResult<()> = guard(|| panic!("boom {}", 1));
        let err = out.unwrap_err();
        assert_eq!(err.kind, ErrorKind::PANIC);
        assert_eq!(err.message.as_str(), "plugin panicked: boom 1");
    }

    #[test]
    fn guard_json_reports_bad_payloads_by_name() {
        let out = guard_json::<u32, u32>("claim", "not json", Ok);
        let err = out.unwrap_err();
        assert_eq!(err.kind, ErrorKind::INVALID_REQUEST);
        assert!(err.message.starts_with("invalid claim payload: "), "{err}");
    }

    #[test]
    fn guard_json_round_trips() {
        let out = guard_json::<Vec<u32>, usize>("list", "[1,2,3]", |v| Ok(v.len()));
        assert_eq!(out.unwrap().as_str(), "3");
    }
}
