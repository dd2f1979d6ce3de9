//! The signals a backend asks the host to send.

use abi_stable::StableAbi;

/// One of Django's task signals, as a `u8` so more can be added in a minor version.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Signal(pub u8);

impl Signal {
    /// The task was stored or enqueued (`enqueued_at` set). Django's `task_enqueued`.
    pub const TASK_ENQUEUED: Self = Self(0);
    /// The task started running (status RUNNING, worker id appended). Django's `task_started`.
    pub const TASK_STARTED: Self = Self(1);
    /// The task finished, successfully or not (`finished_at` set). Django's `task_finished`.
    pub const TASK_FINISHED: Self = Self(2);

    /// Django's name for the signal.
    pub fn name(self) -> &'static str {
        match self {
            Self::TASK_ENQUEUED => "task_enqueued",
            Self::TASK_STARTED => "task_started",
            Self::TASK_FINISHED => "task_finished",
            _ => "unknown_signal",
        }
    }
}
