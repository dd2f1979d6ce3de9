//! The extension operations ([`taskhost_plugin_api::ops`]) and this backend's own.

use crate::backend::DatabaseBackend;
use crate::error::Error;
use serde_json::{json, Value};
use taskhost_plugin_api::{
    abi_stable::std_types::RString,
    guard, guard_json, ops,
    wire::{ListRequest, PruneRequest, WaitRequest},
    PluginError, PluginResult,
};

/// This backend's own operation: the SQL an application runs on its own connection to enqueue
/// a task inside its own transaction. Request `{}`; response `{"database", "sql",
/// "parameters": [{"position", "name", "type", "required", "description"}], "notes"}`.
pub const TRANSACTIONAL_INSERT_SQL: &str = "taskhost.backends.database.transactional_insert_sql";

/// The longest a `wait_for_tasks` call blocks, whatever it asks for.
const MAX_WAIT_SECS: f64 = 3600.0;

impl DatabaseBackend {
    /// Route an extension operation; unknown ones are NOT_SUPPORTED.
    pub(crate) fn extension(&self, operation: &str, request: &str) -> PluginResult<RString> {
        match operation {
            ops::ENQUEUE_DELTA => self.enqueue_delta(request),
            ops::ENQUEUE_MANY_DELTA => self.enqueue_many_delta(request),
            ops::MIGRATE => guard_json(operation, request, |_: Value| {
                Ok(json!({ "applied": self.migrate()? }))
            }),
            ops::RESULTS => guard_json(operation, request, |_: Value| {
                self.ensure_schema()?;
                Ok(self.store.results()?)
            }),
            ops::LIST_RESULTS => guard_json(operation, request, |request: ListRequest| {
                self.ensure_schema()?;
                Ok(self.store.list(&request)?)
            }),
            ops::QUEUE_STATS => guard_json(operation, request, |_: Value| {
                self.ensure_schema()?;
                Ok(self.store.stats()?)
            }),
            ops::PRUNE => guard_json(operation, request, |request: PruneRequest| {
                self.ensure_schema()?;
                Ok(json!({ "count": self.store.prune(&request)? }))
            }),
            ops::RESCUE => guard_json(operation, request, |_: Value| {
                self.ensure_schema()?;
                Ok(json!({ "count": self.store.rescue(self.now()?)? }))
            }),
            ops::WAIT_FOR_TASKS => guard_json(operation, request, |request: WaitRequest| {
                Ok(json!({ "notified": self.wait(request)? }))
            }),
            TRANSACTIONAL_INSERT_SQL => guard_json(operation, request, |_: Value| {
                self.ensure_schema()?;
                Ok(self.store.insert_sql())
            }),
            other => guard(|| Err(PluginError::not_supported(other))),
        }
    }

    fn wait(&self, mut request: WaitRequest) -> Result<bool, Error> {
        if !(request.timeout_secs.is_finite() && request.timeout_secs >= 0.0) {
            return Err(Error::InvalidRequest(format!(
                "wait_for_tasks needs a timeout of zero or more seconds, got {}",
                request.timeout_secs
            )));
        }
        request.timeout_secs = request.timeout_secs.min(MAX_WAIT_SECS);
        self.ensure_schema()?;
        self.store.wait(&request, self.now()?)
    }
}
