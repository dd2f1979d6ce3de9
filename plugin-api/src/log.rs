//! Logging across the boundary: a plugin's `tracing` events reach the host's subscriber.
//!
//! A `cdylib` links its own copy of `tracing-core`, with its own (empty) global dispatcher, so a
//! plugin's events are silent unless forwarded. [`install_forwarder`] installs, once per library, a
//! subscriber that formats each event and hands it to the host, which re-emits it.
//! [`crate::export_plugin!`] calls it on the first `new_backend`, so plugin authors just use
//! `tracing` as usual. Spans are not forwarded; their fields are not attached to events. One
//! forwarder serves every backend built from the library, so an event names its backend only if
//! the plugin puts the alias in the event's fields.

use crate::Host;
use abi_stable::StableAbi;
use std::fmt::{self, Write as _};
use std::sync::OnceLock;
use tracing_core::{
    field::{Field, Visit},
    span,
    subscriber::Interest,
    Event, Level, Metadata, Subscriber,
};

/// A log level, as a `u8` across the ABI (`TRACE` = 0 … `ERROR` = 4).
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct LogLevel(pub u8);

impl LogLevel {
    /// Very verbose diagnostics.
    pub const TRACE: Self = Self(0);
    /// Diagnostics.
    pub const DEBUG: Self = Self(1);
    /// Normal operation.
    pub const INFO: Self = Self(2);
    /// Something may be wrong.
    pub const WARN: Self = Self(3);
    /// Something went wrong.
    pub const ERROR: Self = Self(4);

    /// The level of a `tracing` event.
    pub fn from_tracing(level: &Level) -> Self {
        match *level {
            Level::TRACE => Self::TRACE,
            Level::DEBUG => Self::DEBUG,
            Level::INFO => Self::INFO,
            Level::WARN => Self::WARN,
            _ => Self::ERROR,
        }
    }
}

static FORWARDER: OnceLock<()> = OnceLock::new();

/// Install (once per plugin library) a global subscriber that forwards events to `host`.
/// Later calls do nothing. Returns whether this call installed it.
pub(crate) fn install_forwarder(host: &Host) -> bool {
    let mut installed = false;
    FORWARDER.get_or_init(|| {
        let forward = Forward { host: host.clone() };
        installed =
            tracing_core::dispatcher::set_global_default(tracing_core::Dispatch::new(forward))
                .is_ok();
    });
    installed
}

/// Run `body` with this thread's `tracing` events forwarded to `host` (the test double's way
/// to record a plugin's logs without a global subscriber).
#[cfg(feature = "testing")]
pub(crate) fn forward_during<T>(host: &Host, body: impl FnOnce() -> T) -> T {
    let dispatch = tracing_core::Dispatch::new(Forward { host: host.clone() });
    tracing_core::dispatcher::with_default(&dispatch, body)
}

struct Forward {
    host: Host,
}

impl Subscriber for Forward {
    // The host's filter can change (and differs per thread), so `enabled` is asked on every
    // event instead of being cached per callsite — the default would cache `never` forever for
    // a callsite first hit while the host was not listening.
    fn register_callsite(&self, _metadata: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.host
            .log_enabled(LogLevel::from_tracing(metadata.level()), metadata.target())
    }

    fn new_span(&self, _span: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _span: &span::Id, _values: &span::Record<'_>) {}

    fn record_follows_from(&self, _span: &span::Id, _follows: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut text = MessageVisitor::default();
        event.record(&mut text);
        let metadata = event.metadata();
        self.host.log(
            LogLevel::from_tracing(metadata.level()),
            metadata.target(),
            &text.finish(),
        );
    }

    fn enter(&self, _span: &span::Id) {}

    fn exit(&self, _span: &span::Id) {}
}

/// Renders an event as `message key=value key=value`.
#[derive(Default)]
pub(crate) struct MessageVisitor {
    message: String,
    fields: String,
}

impl MessageVisitor {
    pub(crate) fn finish(self) -> String {
        match (self.message.is_empty(), self.fields.is_empty()) {
            (_, true) => self.message,
            (true, false) => self.fields,
            (false, false) => format!("{} {}", self.message, self.fields),
        }
    }
}

impl Visit for MessageVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            if !self.fields.is_empty() {
                self.fields.push(' ');
            }
            let _ = write!(self.fields, "{}={:?}", field.name(), value);
        }
    }
}
