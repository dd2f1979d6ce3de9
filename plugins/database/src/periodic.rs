//! Periodic tasks in the store: the schedules of `[tasks.<alias>.periodic]` and the ticks
//! enqueued for them, through three operations of their own ([`Backend::call_ext`]).
//!
//! The host computes the ticks (it parses the cron expressions and applies each schedule's
//! missed-tick policy); the store makes each tick enqueued once: an enqueue of ticks locks the
//! schedule's row, skips ticks at or before its last tick, inserts a
//! `taskhost_schedule_ticks` row per tick under a primary key (schedule, tick), and the task
//! with it, in one transaction. See `docs/decisions/020-periodic-tasks.md`.
//!
//! [`Backend::call_ext`]: taskhost_plugin_api::Backend::call_ext

use crate::backend::DatabaseBackend;
use crate::error::{Error, Result};
use crate::row::{parse_id, NewTask};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use taskhost_plugin_api::{EnqueueRequest, PluginError, Signal};

/// Write the configured schedules: add the new ones, update the changed ones (their last
/// tick kept), delete the ones no longer given. Request `{"now", "schedules":
/// [ScheduleDefinition]}`; response `{"added", "updated", "removed"}` (names).
pub const PERIODIC_SYNC: &str = "taskhost.periodic.sync";

/// The stored schedules of this alias, by name. Request `{}`; response `[ScheduleState]`.
pub const PERIODIC_LIST: &str = "taskhost.periodic.list";

/// Enqueue ticks of one schedule, each at most once whatever number of workers ask. Request
/// `{"schedule", "through", "ticks": [{"tick", "task": EnqueueRequest}]}`: the ticks given are
/// enqueued unless at or before the schedule's last tick (or already stored), and the last
/// tick becomes `through` (the latest tick due, enqueued or skipped by the missed-tick
/// policy). Response `{"found", "enqueued": [{"tick", "id"}], "last_tick"}`; `found` false:
/// the schedule is not stored (removed from the config).
pub const PERIODIC_ENQUEUE: &str = "taskhost.periodic.enqueue";

/// The most ticks one [`PERIODIC_ENQUEUE`] request may carry.
pub const MAX_TICKS: usize = 1000;

/// A schedule as the config defines it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleDefinition {
    /// Its name (the key in `[tasks.<alias>.periodic]`).
    pub name: String,
    /// The task's path.
    pub task_path: String,
    /// The cron expression.
    pub cron: String,
    /// The IANA time zone the expression is read in.
    pub timezone: String,
    /// The missed-tick policy, as the host writes it (`skip`, `once`, `backfill 5`).
    pub missed: String,
    /// The queue its tasks go to.
    pub queue_name: String,
    /// Their priority.
    pub priority: i32,
    /// Positional arguments (a JSON array).
    pub args: Value,
    /// Keyword arguments (a JSON object).
    pub kwargs: Value,
}

/// A stored schedule (an item of the [`PERIODIC_LIST`] response).
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct ScheduleState {
    /// What the config defines.
    #[serde(flatten)]
    pub definition: ScheduleDefinition,
    /// When it was first stored: ticks before this are not due.
    pub created_at: DateTime<Utc>,
    /// When its definition was last written.
    pub updated_at: DateTime<Utc>,
    /// The latest tick enqueued or skipped, if any.
    pub last_tick: Option<DateTime<Utc>>,
    /// The task enqueued for the latest enqueued tick, if any.
    pub last_task_id: Option<String>,
}

/// The request of [`PERIODIC_SYNC`].
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// Now, by the host's clock.
    pub now: DateTime<Utc>,
    /// Every schedule of the alias: the stored ones not given are deleted.
    pub schedules: Vec<ScheduleDefinition>,
}

/// The response of [`PERIODIC_SYNC`].
#[derive(Serialize, Debug, Default, PartialEq)]
pub struct SyncResponse {
    /// Schedules stored for the first time.
    pub added: Vec<String>,
    /// Schedules whose definition changed.
    pub updated: Vec<String>,
    /// Schedules deleted (no longer in the config).
    pub removed: Vec<String>,
}

/// The request of [`PERIODIC_ENQUEUE`].
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct EnqueueRequestJson {
    schedule: String,
    through: DateTime<Utc>,
    ticks: Vec<TickJson>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct TickJson {
    tick: DateTime<Utc>,
    task: EnqueueRequest,
}

/// One tick to enqueue, with its task.
pub struct NewTick {
    /// The tick's time.
    pub tick: DateTime<Utc>,
    /// Its task.
    pub task: NewTask,
}

/// What a [`PERIODIC_ENQUEUE`] did.
#[derive(Serialize, Debug, Default, PartialEq)]
pub struct TicksEnqueued {
    /// Whether the schedule is stored.
    pub found: bool,
    /// The ticks enqueued by this request, with their task ids.
    pub enqueued: Vec<TickEnqueued>,
    /// The schedule's last tick after it.
    pub last_tick: Option<DateTime<Utc>>,
}

/// One tick enqueued.
#[derive(Serialize, Debug, PartialEq)]
pub struct TickEnqueued {
    /// The tick's time.
    pub tick: DateTime<Utc>,
    /// The task's result id.
    pub id: String,
}

impl DatabaseBackend {
    /// [`PERIODIC_SYNC`].
    pub(crate) fn periodic_sync(&self, request: &str) -> Result<String, PluginError> {
        let request: SyncRequest = crate::backend::ext_request(PERIODIC_SYNC, request)?;
        let mut names = std::collections::HashSet::new();
        for schedule in &request.schedules {
            if !names.insert(schedule.name.as_str()) {
                return Err(PluginError::invalid_request(format!(
                    "{PERIODIC_SYNC}: the schedule '{}' is given twice",
                    schedule.name
                )));
            }
            if !schedule.args.is_array() || !schedule.kwargs.is_object() {
                return Err(PluginError::invalid_request(format!(
                    "{PERIODIC_SYNC}: the schedule '{}' needs args as a JSON array and kwargs \
                     as a JSON object",
                    schedule.name
                )));
            }
        }
        self.ensure_schema()?;
        let response = self.store.periodic_sync(&request)?;
        if response != SyncResponse::default() {
            tracing::info!(alias = %self.alias, added = ?response.added, updated = ?response.updated, removed = ?response.removed, "periodic schedules synced");
        }
        crate::backend::ext_response(PERIODIC_SYNC, &response)
    }

    /// [`PERIODIC_LIST`].
    pub(crate) fn periodic_list(&self, request: &str) -> Result<String, PluginError> {
        crate::backend::ext_request::<serde::de::IgnoredAny>(PERIODIC_LIST, request)?;
        self.ensure_schema()?;
        crate::backend::ext_response(PERIODIC_LIST, &self.store.periodic_list()?)
    }

    /// [`PERIODIC_ENQUEUE`]: then `task_enqueued` for each task stored.
    pub(crate) fn periodic_enqueue(&self, request: &str) -> Result<String, PluginError> {
        let request: EnqueueRequestJson = crate::backend::ext_request(PERIODIC_ENQUEUE, request)?;
        if request.ticks.len() > MAX_TICKS {
            return Err(PluginError::invalid_request(format!(
                "{PERIODIC_ENQUEUE}: at most {MAX_TICKS} ticks per request, not {}",
                request.ticks.len()
            )));
        }
        let mut ticks = Vec::with_capacity(request.ticks.len());
        for TickJson { tick, task } in request.ticks {
            if tick > request.through {
                return Err(PluginError::invalid_request(format!(
                    "{PERIODIC_ENQUEUE}: the tick {tick} is after `through` ({})",
                    request.through
                )));
            }
            let id = parse_id(&task.id).ok_or_else(|| {
                Error::InvalidRequest(format!(
                    "The result id '{}' is not a UUID; the database backend stores UUID ids.",
                    task.id
                ))
            })?;
            ticks.push(NewTick {
                tick,
                task: NewTask {
                    id,
                    request: task,
                    enqueued_at: self.now()?,
                },
            });
        }
        self.ensure_schema()?;
        let (done, stored) =
            self.store
                .periodic_enqueue(&request.schedule, request.through, ticks, self.now()?)?;
        if !stored.is_empty() {
            self.store.enqueued();
        }
        if self.host.wants_signal(Signal::TASK_ENQUEUED) {
            for task in stored {
                let result = task.into_ready_result(&self.alias);
                self.host.send_signal(Signal::TASK_ENQUEUED, &result);
            }
        }
        crate::backend::ext_response(PERIODIC_ENQUEUE, &done)
    }
}
