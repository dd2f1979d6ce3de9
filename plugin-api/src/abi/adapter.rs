//! The plugin's side of the boundary, generic over the author's [`Backend`]: what
//! [`crate::export_plugin!`] instantiates. Every entry point converts records to typed values,
//! runs the author's method inside the panic guard, and converts the answer back.

use super::guard::{guard, guard_or};
use super::records::{
    AckRecord, CheckRecord, ClaimRecord, ClaimedRecord, CompletionRecord, EnqueueRecord,
    LeaseRecord, ListRecord, OutcomeRecord, PruneRecord, QueueStatsRecord, TaskResultRecord,
    TaskResultView, WaitRecord,
};
use super::{AbiBackend, AbiBackendBox, AbiBackend_TO, AbiHostBox};
use crate::host::HostServices;
use crate::types::{TaskOutcome, TaskResultData};
use crate::{Backend, Capabilities, Host, LogLevel, PluginError, Signal};
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RStr, RString, RVec};
use std::sync::Arc;

/// An author's backend behind the boundary's vtable.
pub struct Exported<B>(pub B);

/// `backend` as the object [`super::PluginModule::new_backend`] returns.
pub fn export_backend<B: Backend>(backend: B) -> AbiBackendBox {
    AbiBackend_TO::from_value(Exported(backend), TD_Opaque)
}

/// The host object a plugin receives, as the author's [`Host`].
pub fn host_from_abi(host: AbiHostBox) -> Host {
    Host::new(Arc::new(AbiHostClient(host)))
}

fn list<T, R: From<T>>(values: Vec<T>) -> RVec<R> {
    values.into_iter().map(R::from).collect()
}

fn unlist<R, T: From<R>>(values: RVec<R>) -> Vec<T> {
    values.into_iter().map(T::from).collect()
}

impl<B: Backend> AbiBackend for Exported<B> {
    fn capabilities(&self) -> Capabilities {
        guard_or(Capabilities::NONE, || self.0.capabilities())
    }

    fn check(&self) -> RResult<RVec<CheckRecord>, PluginError> {
        guard(|| self.0.check().map(list))
    }

    fn enqueue(&self, request: EnqueueRecord) -> RResult<TaskResultRecord, PluginError> {
        guard(|| self.0.enqueue(request.into()).map(Into::into))
    }

    fn enqueue_many(
        &self,
        requests: RVec<EnqueueRecord>,
    ) -> RResult<RVec<TaskResultRecord>, PluginError> {
        guard(|| self.0.enqueue_many(unlist(requests)).map(list))
    }

    fn get_result(&self, id: RStr<'_>) -> RResult<TaskResultRecord, PluginError> {
        guard(|| self.0.get_result(id.as_str()).map(Into::into))
    }

    fn results(&self) -> RResult<RVec<TaskResultRecord>, PluginError> {
        guard(|| self.0.results().map(list))
    }

    fn clear(&self) -> RResult<(), PluginError> {
        guard(|| self.0.clear())
    }

    fn claim(&self, request: ClaimRecord) -> RResult<RVec<ClaimedRecord>, PluginError> {
        guard(|| self.0.claim(request.into()).map(list))
    }

    fn complete(
        &self,
        completions: RVec<CompletionRecord>,
    ) -> RResult<RVec<AckRecord>, PluginError> {
        guard(|| self.0.complete(unlist(completions)).map(list))
    }

    fn renew_leases(&self, request: LeaseRecord) -> RResult<RVec<RString>, PluginError> {
        guard(|| self.0.renew_leases(request.into()).map(list))
    }

    fn release(&self, request: LeaseRecord) -> RResult<u64, PluginError> {
        guard(|| self.0.release(request.into()))
    }

    fn rescue(&self) -> RResult<u64, PluginError> {
        guard(|| self.0.rescue())
    }

    fn wait_for_tasks(&self, request: WaitRecord) -> RResult<bool, PluginError> {
        guard(|| self.0.wait_for_tasks(request.into()))
    }

    fn migrate(&self) -> RResult<RVec<u32>, PluginError> {
        guard(|| self.0.migrate().map(RVec::from))
    }

    fn list_results(&self, request: ListRecord) -> RResult<RVec<TaskResultRecord>, PluginError> {
        guard(|| self.0.list_results(request.into()).map(list))
    }

    fn queue_stats(&self) -> RResult<RVec<QueueStatsRecord>, PluginError> {
        guard(|| self.0.queue_stats().map(list))
    }

    fn prune(&self, request: PruneRecord) -> RResult<u64, PluginError> {
        guard(|| self.0.prune(request.into()))
    }

    fn call_ext(&self, operation: RStr<'_>, request: RStr<'_>) -> RResult<RString, PluginError> {
        guard(|| {
            self.0
                .call_ext(operation.as_str(), request.as_str())
                .map(RString::from)
        })
    }

    fn close(&self) {
        guard_or((), || self.0.close())
    }
}

/// The host's object, seen from the plugin as [`HostServices`].
struct AbiHostClient(AbiHostBox);

impl HostServices for AbiHostClient {
    fn run_task(&self, task_result: &TaskResultData) -> Result<TaskOutcome, PluginError> {
        self.0
            .run_task(TaskResultView::of(task_result))
            .into_result()
            .map(|o: OutcomeRecord| o.into())
    }

    fn wants_signal(&self, signal: Signal) -> bool {
        self.0.wants_signal(signal)
    }

    fn send_signal(&self, signal: Signal, task_result: &TaskResultData) {
        self.0.send_signal(signal, TaskResultView::of(task_result))
    }

    fn now_micros(&self) -> i64 {
        self.0.now_micros()
    }

    fn log_enabled(&self, level: LogLevel, target: &str) -> bool {
        self.0.log_enabled(level, RStr::from_str(target))
    }

    fn log(&self, level: LogLevel, target: &str, message: &str) {
        self.0
            .log(level, RStr::from_str(target), RStr::from_str(message))
    }

    fn call_ext(&self, operation: &str, request: &str) -> Result<String, PluginError> {
        self.0
            .call_ext(RStr::from_str(operation), RStr::from_str(request))
            .into_result()
            .map(RString::into_string)
    }
}
