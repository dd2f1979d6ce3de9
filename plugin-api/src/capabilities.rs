//! Capability flags: what a backend can do, as data the host validates against.

use abi_stable::StableAbi;
use std::fmt;

/// A set of capability flags, as a `u64` bit set so new flags can be added in a minor version.
///
/// The first four are Django's (`supports_defer`, `supports_async_task`, `supports_get_result`,
/// `supports_priority`); [`Capabilities::QUEUE_STORE`] says the backend stores tasks for workers
/// (`claim`, `complete`, `renew_leases`, `release`). Bits 5 and 6 are retired (1.x's bulk and
/// delta enqueue); later 2.x flags start at bit 7.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(pub u64);

impl Capabilities {
    /// No capability.
    pub const NONE: Self = Self(0);
    /// `run_after` may be set (Django's `supports_defer`).
    pub const DEFER: Self = Self(1 << 0);
    /// `async fn` tasks may be enqueued (Django's `supports_async_task`).
    pub const ASYNC_TASK: Self = Self(1 << 1);
    /// Results can be fetched from any thread or process (Django's `supports_get_result`).
    pub const GET_RESULT: Self = Self(1 << 2);
    /// A priority other than 0 may be set (Django's `supports_priority`).
    pub const PRIORITY: Self = Self(1 << 3);
    /// The backend is a queue store: workers claim and complete its tasks.
    pub const QUEUE_STORE: Self = Self(1 << 4);
    /// Enqueues may carry a uniqueness key ([`crate::EnqueueRequest::unique`], plugin-api
    /// 2.1): the store refuses a second task holding the same key and returns the first.
    pub const UNIQUE: Self = Self(1 << 7);
    /// Every flag this version of the crate defines (a host reports the others as unknown).
    pub const KNOWN: Self = Self(((1 << 5) - 1) | (1 << 7));

    /// Every flag set in `self` is also set in `other`… read: does `self` contain `flag`?
    pub const fn contains(self, flag: Self) -> bool {
        self.0 & flag.0 == flag.0
    }

    /// The union of two sets.
    pub const fn with(self, flag: Self) -> Self {
        Self(self.0 | flag.0)
    }

    /// The names of the flags set, in a fixed order (unknown bits as `bit<N>`).
    pub fn names(self) -> Vec<String> {
        let mut names = Vec::new();
        for bit in 0..64 {
            if self.0 & (1 << bit) != 0 {
                names.push(match bit {
                    0 => "supports_defer".to_string(),
                    1 => "supports_async_task".to_string(),
                    2 => "supports_get_result".to_string(),
                    3 => "supports_priority".to_string(),
                    4 => "supports_queue_store".to_string(),
                    7 => "supports_unique".to_string(),
                    n => format!("bit{n}"),
                });
            }
        }
        names
    }
}

impl std::ops::BitOr for Capabilities {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        self.with(rhs)
    }
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Capabilities{:?}", self.names())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_holds_exactly_the_flags_that_have_a_name() {
        for bit in 0..64 {
            let flag = Capabilities(1 << bit);
            let named = !flag.names()[0].starts_with("bit");
            assert_eq!(Capabilities::KNOWN.contains(flag), named, "bit {bit}");
        }
    }
}
