//! `acme.memo.MemoBackend`: keeps enqueued tasks in memory as READY results, never runs them.

use std::sync::Mutex;
use taskhost_plugin_api::{
    Backend, BackendParams, Capabilities, EnqueueRequest, Host, PluginError, Signal, TaskResultData,
};

taskhost_plugin_api::export_plugin! {
    module_path: "acme.memo",
    classes: { "MemoBackend" => MemoBackend::new },
}

/// Keeps every enqueued task in memory, oldest first.
pub struct MemoBackend {
    alias: String,
    host: Host,
    store: Mutex<Vec<TaskResultData>>,
}

impl MemoBackend {
    /// Builds the backend of one alias of `tasks.toml`. It takes no options.
    pub fn new(params: BackendParams, host: Host) -> Result<Self, PluginError> {
        if let Some(option) = params.options.keys().next() {
            let message = format!("unknown option '{option}'; this backend takes none");
            return Err(PluginError::invalid_options(message));
        }
        let (alias, store) = (params.alias, Mutex::default());
        Ok(Self { alias, host, store })
    }
}

impl Backend for MemoBackend {
    fn capabilities(&self) -> Capabilities {
        Capabilities::DEFER
            | Capabilities::ASYNC_TASK
            | Capabilities::GET_RESULT
            | Capabilities::PRIORITY
    }

    fn enqueue(&self, request: EnqueueRequest) -> Result<TaskResultData, PluginError> {
        let mut result = TaskResultData::ready(request, &self.alias);
        result.enqueued_at = Some(self.host.now());
        self.store.lock().unwrap().push(result.clone());
        self.host.send_signal(Signal::TASK_ENQUEUED, &result);
        Ok(result)
    }

    fn get_result(&self, id: &str) -> Result<TaskResultData, PluginError> {
        let store = self.store.lock().unwrap();
        let found = store.iter().find(|result| result.id == id).cloned();
        found.ok_or_else(|| PluginError::does_not_exist(id))
    }

    fn results(&self) -> Result<Vec<TaskResultData>, PluginError> {
        Ok(self.store.lock().unwrap().clone())
    }
}

#[cfg(test)]
mod tests;
