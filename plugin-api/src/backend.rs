//! [`Backend`]: the trait a plugin author implements.

use crate::types::{
    CheckMessage, ClaimRequest, ClaimedTask, Completion, CompletionAck, EnqueueRequest,
    LeaseRequest, ListRequest, PruneRequest, QueueStats, TaskResultData, WaitRequest,
};
use crate::{Capabilities, PluginError};

/// A task backend: where enqueued tasks go (Django's `BaseTaskBackend`).
///
/// Implement [`Backend::capabilities`] and [`Backend::enqueue`]; every other method answers
/// "not supported" ([`PluginError::not_supported`]) until you override it. Export the type with
/// [`crate::export_plugin!`], which turns it into the stable ABI, catches any panic of your code
/// and forwards your `tracing` events to the host.
///
/// The host has already run Django's `validate_task` (queue name, priority, defer, async) and
/// checked that the arguments are storable JSON before it calls [`Backend::enqueue`], using the
/// capabilities this backend declares: a backend does only what is specific to it.
///
/// Methods are called from any thread, concurrently: keep state behind a `Mutex` or similar.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use taskhost_plugin_api::{
///     Backend, BackendParams, Capabilities, EnqueueRequest, Host, PluginError, Signal,
///     TaskResultData, Text,
/// };
///
/// /// Keeps every enqueued task in memory; never runs them.
/// struct MemoBackend {
///     alias: String,
///     host: Host,
///     results: Mutex<HashMap<Text, TaskResultData>>,
/// }
///
/// impl MemoBackend {
///     fn new(params: BackendParams, host: Host) -> Result<Self, PluginError> {
///         let results = Mutex::default();
///         Ok(Self { alias: params.alias, host, results })
///     }
/// }
///
/// impl Backend for MemoBackend {
///     fn capabilities(&self) -> Capabilities {
///         Capabilities::DEFER | Capabilities::GET_RESULT | Capabilities::PRIORITY
///     }
///
///     fn enqueue(&self, request: EnqueueRequest) -> Result<TaskResultData, PluginError> {
///         let mut result = TaskResultData::ready(request, &self.alias);
///         result.enqueued_at = Some(self.host.now());
///         self.results.lock().unwrap().insert(result.id.clone(), result.clone());
///         self.host.send_signal(Signal::TASK_ENQUEUED, &result);
///         Ok(result)
///     }
///
///     fn get_result(&self, id: &str) -> Result<TaskResultData, PluginError> {
///         let results = self.results.lock().unwrap();
///         results.get(id).cloned().ok_or_else(|| PluginError::does_not_exist(id))
///     }
/// }
/// ```
pub trait Backend: Send + Sync + 'static {
    /// What this backend can do (Django's `supports_*` flags, queue store…). Asked once, when
    /// the backend is built.
    fn capabilities(&self) -> Capabilities;

    /// Take one task: store it (a queue), run it (Immediate, through [`crate::Host::run_task`])
    /// or keep it (Dummy). Returns the result as stored: at least `enqueued_at` set, and
    /// [`crate::Signal::TASK_ENQUEUED`] sent.
    fn enqueue(&self, request: EnqueueRequest) -> Result<TaskResultData, PluginError>;

    /// Take many tasks at once, all or none, answering in the same order. The default calls
    /// [`Backend::enqueue`] for each; a store overrides it to write them in one transaction.
    fn enqueue_many(
        &self,
        requests: Vec<EnqueueRequest>,
    ) -> Result<Vec<TaskResultData>, PluginError> {
        requests.into_iter().map(|r| self.enqueue(r)).collect()
    }

    /// The stored result `id`, or [`PluginError::does_not_exist`]. Declare
    /// [`Capabilities::GET_RESULT`] when results can be read from any thread or process. The
    /// default answers Django's "This backend does not support retrieving or refreshing
    /// results."
    fn get_result(&self, id: &str) -> Result<TaskResultData, PluginError> {
        let _ = id;
        Err(PluginError::new(
            crate::ErrorKind::NOT_SUPPORTED,
            "This backend does not support retrieving or refreshing results.",
        ))
    }

    /// Health checks for `taskhost check` (empty when all is well).
    fn check(&self) -> Result<Vec<CheckMessage>, PluginError> {
        Ok(Vec::new())
    }

    /// Every stored result, oldest first (the Dummy backend's `results`).
    fn results(&self) -> Result<Vec<TaskResultData>, PluginError> {
        Err(PluginError::not_supported("results"))
    }

    /// Forget every stored result (the Dummy backend's `clear()`).
    fn clear(&self) -> Result<(), PluginError> {
        Err(PluginError::not_supported("clear"))
    }

    /// Queue store: claim up to `request.limit` due READY tasks for a worker, marking them
    /// RUNNING under a lease. Declare [`Capabilities::QUEUE_STORE`] with the queue-store
    /// methods.
    fn claim(&self, request: ClaimRequest) -> Result<Vec<ClaimedTask>, PluginError> {
        let _ = request;
        Err(PluginError::not_supported("claim"))
    }

    /// Queue store: record how claimed tasks ended; a write whose lease token is stale
    /// changes nothing (`applied: false`).
    fn complete(&self, completions: Vec<Completion>) -> Result<Vec<CompletionAck>, PluginError> {
        let _ = completions;
        Err(PluginError::not_supported("complete"))
    }

    /// Queue store: extend the leases of tasks a worker still runs; returns the ids whose
    /// lease was lost.
    fn renew_leases(&self, request: LeaseRequest) -> Result<Vec<String>, PluginError> {
        let _ = request;
        Err(PluginError::not_supported("renew_leases"))
    }

    /// Queue store: hand claimed tasks back (READY again) without counting an attempt;
    /// returns how many.
    fn release(&self, request: LeaseRequest) -> Result<u64, PluginError> {
        let _ = request;
        Err(PluginError::not_supported("release"))
    }

    /// Queue store: rescue tasks whose lease expired; returns how many.
    fn rescue(&self) -> Result<u64, PluginError> {
        Err(PluginError::not_supported("rescue"))
    }

    /// Queue store: block until new tasks may be ready (`true`) or the timeout passes
    /// (`false`). Without it, workers poll at their interval.
    fn wait_for_tasks(&self, request: WaitRequest) -> Result<bool, PluginError> {
        let _ = request;
        Err(PluginError::not_supported("wait_for_tasks"))
    }

    /// Create or upgrade the store's schema; returns the versions applied.
    fn migrate(&self) -> Result<Vec<u32>, PluginError> {
        Err(PluginError::not_supported("migrate"))
    }

    /// Stored results matching the filters, newest first.
    fn list_results(&self, request: ListRequest) -> Result<Vec<TaskResultData>, PluginError> {
        let _ = request;
        Err(PluginError::not_supported("list_results"))
    }

    /// How many results each queue holds in each status.
    fn queue_stats(&self) -> Result<Vec<QueueStats>, PluginError> {
        Err(PluginError::not_supported("queue_stats"))
    }

    /// Delete (or count, on a dry run) finished results; returns how many.
    fn prune(&self, request: PruneRequest) -> Result<u64, PluginError> {
        let _ = request;
        Err(PluginError::not_supported("prune"))
    }

    /// A backend's own operation, named with its module path (e.g.
    /// `acme.spool.compact`), taking and returning JSON text. Later 2.x versions of this crate
    /// add their operations here too, so a 2.0 plugin answers them "not supported".
    fn call_ext(&self, operation: &str, request: &str) -> Result<String, PluginError> {
        let _ = request;
        Err(PluginError::not_supported(operation))
    }

    /// Stop background threads and flush; called once when the host lets the backend go.
    fn close(&self) {}
}
