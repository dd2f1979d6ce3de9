//! The task registry: every `#[task]` registers itself, so a worker finds tasks by path with no
//! hand-kept list.

use crate::definition::TaskDefinition;
use crate::error::{Error, Result};
use crate::state::AppState;
use std::collections::HashMap;
use std::sync::OnceLock;

/// One registered task (emitted by `#[task]` through `inventory`).
pub struct TaskRegistration(pub &'static TaskDefinition);

inventory::collect!(TaskRegistration);

/// Paths to definitions. foldhash: the keys are this binary's own task paths, and the lookup is
/// on every run.
type Index = HashMap<&'static str, &'static TaskDefinition, foldhash::fast::FixedState>;

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        inventory::iter::<TaskRegistration>
            .into_iter()
            .map(|r| (r.0.path, r.0))
            .collect()
    })
}

/// The task registered under `path` (`my_app::emails::send_email`), if this binary has it.
pub fn find_task(path: &str) -> Option<&'static TaskDefinition> {
    index().get(path).copied()
}

/// Every task registered in this binary, sorted by path.
pub fn registered_tasks() -> Vec<&'static TaskDefinition> {
    let mut all: Vec<_> = index().values().copied().collect();
    all.sort_by_key(|d| d.path);
    all
}

/// Check that `state` has every type the registered tasks take as `State<T>`: what a worker
/// does before it starts (and `taskhost check`). Fails with [`Error::MissingState`] naming
/// each task and type.
pub fn check_state(state: &AppState) -> Result<()> {
    let missing: Vec<_> = registered_tasks()
        .iter()
        .flat_map(|definition| definition.missing_state(state))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::MissingState(missing))
    }
}
