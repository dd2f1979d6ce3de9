//! The `#[repr(C)]` records that cross the boundary, and their conversions to and from the
//! typed values of [`crate::types`]. Frozen for all of 2.x: see the module docs of
//! [`crate::abi`].

use crate::types::{
    CheckMessage, ClaimRequest, ClaimedTask, Completion, CompletionAck, EnqueueRequest,
    LeaseRequest, ListRequest, PruneRequest, QueueStats, TaskDescription, TaskError, TaskOutcome,
    TaskResultData, TaskResultStatus, UniqueKey, WaitRequest,
};
use crate::{Json, Text};
use abi_stable::std_types::{ROption, RSlice, RStr, RString, RVec, Tuple2};
use abi_stable::StableAbi;
use chrono::{DateTime, Utc};

/// A time as microseconds since the Unix epoch (UTC).
type Micros = ROption<i64>;

fn micros(time: Option<DateTime<Utc>>) -> Micros {
    time.map(|t| t.timestamp_micros()).into()
}

fn time(micros: Micros) -> Option<DateTime<Utc>> {
    micros
        .into_option()
        .and_then(DateTime::from_timestamp_micros)
}

fn strings(values: Vec<String>) -> RVec<RString> {
    values.into_iter().map(RString::from).collect()
}

fn owned(values: RVec<RString>) -> Vec<String> {
    values.into_iter().map(RString::into_string).collect()
}

fn opt_string(value: Option<String>) -> ROption<RString> {
    value.map(RString::from).into()
}

fn opt_owned(value: ROption<RString>) -> Option<String> {
    value.into_option().map(RString::into_string)
}

/// Fields a later 2.x adds to a record: a JSON object as text, empty when there are none. A
/// 2.0 side writes it empty and ignores what it reads there.
fn no_ext() -> RString {
    RString::new()
}

/// [`TaskDescription`] across the boundary.
#[repr(C)]
#[derive(StableAbi)]
#[allow(missing_docs)]
pub struct TaskDescriptionRecord {
    pub path: RString,
    pub priority: i32,
    pub queue_name: RString,
    pub backend: RString,
    pub run_after: Micros,
    pub takes_context: bool,
    pub is_async: bool,
    pub max_attempts: ROption<u32>,
    pub timeout_secs: ROption<f64>,
    pub ext: RString,
}

impl From<TaskDescription> for TaskDescriptionRecord {
    fn from(t: TaskDescription) -> Self {
        Self {
            path: t.path.into_rstring(),
            priority: t.priority,
            queue_name: t.queue_name.into_rstring(),
            backend: t.backend.into_rstring(),
            run_after: micros(t.run_after),
            takes_context: t.takes_context,
            is_async: t.is_async,
            max_attempts: t.max_attempts.into(),
            timeout_secs: t.timeout_secs.into(),
            ext: no_ext(),
        }
    }
}

impl From<TaskDescriptionRecord> for TaskDescription {
    fn from(t: TaskDescriptionRecord) -> Self {
        Self {
            path: Text::from_rstring(t.path),
            priority: t.priority,
            queue_name: Text::from_rstring(t.queue_name),
            backend: Text::from_rstring(t.backend),
            run_after: time(t.run_after),
            takes_context: t.takes_context,
            is_async: t.is_async,
            max_attempts: t.max_attempts.into_option(),
            timeout_secs: t.timeout_secs.into_option(),
        }
    }
}

/// [`EnqueueRequest`] across the boundary.
#[repr(C)]
#[derive(StableAbi)]
#[allow(missing_docs)]
pub struct EnqueueRecord {
    pub id: RString,
    pub task: TaskDescriptionRecord,
    pub args: RString,
    pub kwargs: RString,
    pub ext: RString,
}

/// The fields of [`EnqueueRequest`] added in 2.x, as [`EnqueueRecord::ext`] carries them.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct EnqueueExt {
    /// 2.1: [`EnqueueRequest::unique`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unique: Option<Box<UniqueKey>>,
    /// 2.1: [`EnqueueRequest::trace_context`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trace_context: Option<Text>,
}

/// `ext` for a request with these 2.x fields: empty when they are all unset (no allocation on
/// the common path).
#[inline]
fn enqueue_ext(unique: Option<Box<UniqueKey>>, trace_context: Option<Text>) -> RString {
    if unique.is_none() && trace_context.is_none() {
        return no_ext();
    }
    write_ext(&EnqueueExt {
        unique,
        trace_context,
    })
}

/// A record's `ext` holding `fields` (`Some`), as JSON.
#[cold]
fn write_ext<T: serde::Serialize>(fields: &T) -> RString {
    serde_json::to_string(fields)
        .map(RString::from)
        .unwrap_or_default()
}

/// The 2.x fields read back from `ext` (empty: none). Fields of a newer minor are ignored, as
/// a 2.0 side ignores them all: the host only sends a field a backend must not ignore (a
/// uniqueness key) to a backend whose capabilities say it reads it
/// ([`crate::Capabilities::UNIQUE`] for `unique`), so a new shape of such a field comes with a
/// new capability bit.
#[inline]
fn enqueue_fields(ext: &str) -> EnqueueExt {
    if ext.is_empty() {
        return EnqueueExt::default();
    }
    read_ext(ext)
}

/// The 2.x fields of a non-empty `ext` (unreadable: none).
#[cold]
fn read_ext<T: serde::de::DeserializeOwned + Default>(ext: &str) -> T {
    serde_json::from_str(ext).unwrap_or_default()
}

impl From<EnqueueRequest> for EnqueueRecord {
    fn from(r: EnqueueRequest) -> Self {
        Self {
            id: r.id.into_rstring(),
            task: r.task.into(),
            args: r.args.into_rstring(),
            kwargs: r.kwargs.into_rstring(),
            ext: enqueue_ext(r.unique, r.trace_context),
        }
    }
}

impl From<EnqueueRecord> for EnqueueRequest {
    fn from(r: EnqueueRecord) -> Self {
        let EnqueueExt {
            unique,
            trace_context,
        } = enqueue_fields(&r.ext);
        Self {
            unique,
            trace_context,
            id: Text::from_rstring(r.id),
            task: r.task.into(),
            args: Json::from_rstring(r.args),
            kwargs: Json::from_rstring(r.kwargs),
        }
    }
}

/// [`TaskResultData`] across the boundary.
#[repr(C)]
#[derive(StableAbi)]
#[allow(missing_docs)]
pub struct TaskResultRecord {
    pub id: RString,
    pub task: TaskDescriptionRecord,
    pub status: TaskResultStatus,
    pub enqueued_at: Micros,
    pub started_at: Micros,
    pub finished_at: Micros,
    pub last_attempted_at: Micros,
    pub args: RString,
    pub kwargs: RString,
    pub backend: RString,
    pub errors: RVec<TaskError>,
    pub worker_ids: RVec<Text>,
    pub return_value: ROption<RString>,
    pub ext: RString,
}

impl From<TaskResultData> for TaskResultRecord {
    fn from(r: TaskResultData) -> Self {
        Self {
            id: r.id.into_rstring(),
            task: r.task.into(),
            status: r.status,
            enqueued_at: micros(r.enqueued_at),
            started_at: micros(r.started_at),
            finished_at: micros(r.finished_at),
            last_attempted_at: micros(r.last_attempted_at),
            args: r.args.into_rstring(),
            kwargs: r.kwargs.into_rstring(),
            backend: r.backend.into_rstring(),
            errors: r.errors.into(),
            worker_ids: r.worker_ids.into(),
            return_value: r.return_value.map(Json::into_rstring).into(),
            ext: match r.trace_context {
                None => no_ext(),
                Some(trace_context) => write_ext(&ResultExt {
                    trace_context: Some(trace_context),
                }),
            },
        }
    }
}

/// The fields of [`TaskResultData`] added in 2.x, as [`TaskResultRecord::ext`] carries them.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct ResultExt {
    /// 2.1: [`TaskResultData::trace_context`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trace_context: Option<Text>,
}

impl From<TaskResultRecord> for TaskResultData {
    fn from(r: TaskResultRecord) -> Self {
        Self {
            id: Text::from_rstring(r.id),
            task: r.task.into(),
            status: r.status,
            enqueued_at: time(r.enqueued_at),
            started_at: time(r.started_at),
            finished_at: time(r.finished_at),
            last_attempted_at: time(r.last_attempted_at),
            args: Json::from_rstring(r.args),
            kwargs: Json::from_rstring(r.kwargs),
            backend: Text::from_rstring(r.backend),
            errors: r.errors.into_vec(),
            worker_ids: r.worker_ids.into_vec(),
            return_value: r.return_value.into_option().map(Json::from_rstring),
            trace_context: match r.ext.is_empty() {
                true => None,
                false => read_ext::<ResultExt>(&r.ext).trace_context,
            },
        }
    }
}

/// [`TaskOutcome`] across the boundary.
#[repr(u8)]
#[derive(StableAbi)]
#[allow(missing_docs)]
pub enum OutcomeRecord {
    Successful { return_value: RString },
    Failed { error: TaskError },
}

impl From<TaskOutcome> for OutcomeRecord {
    fn from(o: TaskOutcome) -> Self {
        match o {
            TaskOutcome::Successful { return_value } => Self::Successful {
                return_value: return_value.into_rstring(),
            },
            TaskOutcome::Failed { error } => Self::Failed { error },
        }
    }
}

impl From<OutcomeRecord> for TaskOutcome {
    fn from(o: OutcomeRecord) -> Self {
        match o {
            OutcomeRecord::Successful { return_value } => Self::Successful {
                return_value: Json::from_rstring(return_value),
            },
            OutcomeRecord::Failed { error } => Self::Failed { error },
        }
    }
}

/// A [`TaskResultData`] lent to the host for the length of a call (`run_task`,
/// `send_signal`): nothing is copied to make it.
#[repr(C)]
#[derive(StableAbi)]
#[allow(missing_docs)]
pub struct TaskResultView<'a> {
    pub id: RStr<'a>,
    pub path: RStr<'a>,
    pub priority: i32,
    pub queue_name: RStr<'a>,
    pub task_backend: RStr<'a>,
    pub run_after: Micros,
    pub takes_context: bool,
    pub is_async: bool,
    pub max_attempts: ROption<u32>,
    pub timeout_secs: ROption<f64>,
    pub status: TaskResultStatus,
    pub enqueued_at: Micros,
    pub started_at: Micros,
    pub finished_at: Micros,
    pub last_attempted_at: Micros,
    pub args: RStr<'a>,
    pub kwargs: RStr<'a>,
    pub backend: RStr<'a>,
    pub errors: RSlice<'a, TaskError>,
    pub worker_ids: RSlice<'a, Text>,
    pub return_value: ROption<RStr<'a>>,
    pub ext: RStr<'a>,
}

impl<'a> TaskResultView<'a> {
    /// Lend `r`.
    pub fn of(r: &'a TaskResultData) -> Self {
        let t = &r.task;
        Self {
            id: RStr::from_str(&r.id),
            path: RStr::from_str(&t.path),
            priority: t.priority,
            queue_name: RStr::from_str(&t.queue_name),
            task_backend: RStr::from_str(&t.backend),
            run_after: micros(t.run_after),
            takes_context: t.takes_context,
            is_async: t.is_async,
            max_attempts: t.max_attempts.into(),
            timeout_secs: t.timeout_secs.into(),
            status: r.status,
            enqueued_at: micros(r.enqueued_at),
            started_at: micros(r.started_at),
            finished_at: micros(r.finished_at),
            last_attempted_at: micros(r.last_attempted_at),
            args: RStr::from_str(r.args.as_str()),
            kwargs: RStr::from_str(r.kwargs.as_str()),
            backend: RStr::from_str(&r.backend),
            errors: RSlice::from_slice(&r.errors),
            worker_ids: RSlice::from_slice(&r.worker_ids),
            return_value: r
                .return_value
                .as_ref()
                .map(|v| RStr::from_str(v.as_str()))
                .into(),
            ext: RStr::from_str(""),
        }
    }

    /// An owned copy, for a receiver that keeps it.
    pub fn to_owned(&self) -> TaskResultData {
        TaskResultData {
            id: self.id.as_str().into(),
            task: TaskDescription {
                path: self.path.as_str().into(),
                priority: self.priority,
                queue_name: self.queue_name.as_str().into(),
                backend: self.task_backend.as_str().into(),
                run_after: time(self.run_after),
                takes_context: self.takes_context,
                is_async: self.is_async,
                max_attempts: self.max_attempts.into_option(),
                timeout_secs: self.timeout_secs.into_option(),
            },
            status: self.status,
            enqueued_at: time(self.enqueued_at),
            started_at: time(self.started_at),
            finished_at: time(self.finished_at),
            last_attempted_at: time(self.last_attempted_at),
            args: Json::from_stored(self.args.as_str()),
            kwargs: Json::from_stored(self.kwargs.as_str()),
            backend: self.backend.as_str().into(),
            errors: self.errors.to_vec(),
            worker_ids: self.worker_ids.to_vec(),
            return_value: self
                .return_value
                .into_option()
                .map(|v| Json::from_stored(v.as_str())),
            trace_context: None,
        }
    }
}

/// [`CheckMessage`] across the boundary.
#[repr(C)]
#[derive(StableAbi)]
#[allow(missing_docs)]
pub struct CheckRecord {
    pub level: RString,
    pub message: RString,
    pub hint: ROption<RString>,
}

impl From<CheckMessage> for CheckRecord {
    fn from(c: CheckMessage) -> Self {
        Self {
            level: c.level.into(),
            message: c.message.into(),
            hint: opt_string(c.hint),
        }
    }
}

impl From<CheckRecord> for CheckMessage {
    fn from(c: CheckRecord) -> Self {
        Self {
            level: c.level.into_string(),
            message: c.message.into_string(),
            hint: opt_owned(c.hint),
        }
    }
}

/// [`ClaimRequest`] across the boundary.
#[repr(C)]
#[derive(StableAbi)]
#[allow(missing_docs)]
pub struct ClaimRecord {
    pub worker_id: RString,
    pub queues: ROption<RVec<RString>>,
    pub exclude_queues: RVec<RString>,
    pub limit: u32,
    pub lease_secs: f64,
    pub ext: RString,
}

impl From<ClaimRequest> for ClaimRecord {
    fn from(c: ClaimRequest) -> Self {
        Self {
            worker_id: c.worker_id.into(),
            queues: c.queues.map(strings).into(),
            exclude_queues: strings(c.exclude_queues),
            limit: c.limit,
            lease_secs: c.lease_secs,
            ext: match c.start_now {
                Some(n) => format!("{{\"start_now\":{n}}}").into(),
                None => no_ext(),
            },
        }
    }
}

impl From<ClaimRecord> for ClaimRequest {
    fn from(c: ClaimRecord) -> Self {
        Self {
            start_now: ext_field(&c.ext, "start_now")
                .and_then(|v| v.as_u64())
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
            worker_id: c.worker_id.into_string(),
            queues: c.queues.into_option().map(owned),
            exclude_queues: owned(c.exclude_queues),
            limit: c.limit,
            lease_secs: c.lease_secs,
        }
    }
}

/// Field `name` of a record's `ext` (a JSON object as text; empty, not an object or not
/// parsed: none).
fn ext_field(ext: &RString, name: &str) -> Option<serde_json::Value> {
    if ext.is_empty() {
        return None;
    }
    match serde_json::from_str::<serde_json::Value>(ext.as_str()) {
        Ok(serde_json::Value::Object(mut fields)) => fields.remove(name),
        _ => None,
    }
}

/// [`ClaimedTask`] across the boundary.
#[repr(C)]
#[derive(StableAbi)]
#[allow(missing_docs)]
pub struct ClaimedRecord {
    pub result: TaskResultRecord,
    pub lease_token: i64,
    pub max_attempts: u32,
    pub ext: RString,
}

impl From<ClaimedTask> for ClaimedRecord {
    fn from(c: ClaimedTask) -> Self {
        Self {
            result: c.result.into(),
            lease_token: c.lease_token,
            max_attempts: c.max_attempts,
            ext: match c.report_start {
                true => RString::from("{\"report_start\":true}"),
                false => no_ext(),
            },
        }
    }
}

impl From<ClaimedRecord> for ClaimedTask {
    fn from(c: ClaimedRecord) -> Self {
        Self {
            report_start: ext_field(&c.ext, "report_start")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            result: c.result.into(),
            lease_token: c.lease_token,
            max_attempts: c.max_attempts,
        }
    }
}

/// [`Completion`] across the boundary.
#[repr(C)]
#[derive(StableAbi)]
#[allow(missing_docs)]
pub struct CompletionRecord {
    pub id: RString,
    pub worker_id: RString,
    pub lease_token: i64,
    pub outcome: OutcomeRecord,
    pub retry_at: Micros,
    pub started_at: Micros,
    pub ext: RString,
}

impl From<Completion> for CompletionRecord {
    fn from(c: Completion) -> Self {
        Self {
            id: c.id.into(),
            worker_id: c.worker_id.into(),
            lease_token: c.lease_token,
            outcome: c.outcome.into(),
            retry_at: micros(c.retry_at),
            started_at: micros(c.started_at),
            ext: no_ext(),
        }
    }
}

impl From<CompletionRecord> for Completion {
    fn from(c: CompletionRecord) -> Self {
        Self {
            id: c.id.into_string(),
            worker_id: c.worker_id.into_string(),
            lease_token: c.lease_token,
            outcome: c.outcome.into(),
            retry_at: time(c.retry_at),
            started_at: time(c.started_at),
        }
    }
}

/// [`CompletionAck`] across the boundary.
#[repr(C)]
#[derive(StableAbi)]
#[allow(missing_docs)]
pub struct AckRecord {
    pub id: RString,
    pub applied: bool,
}

impl From<CompletionAck> for AckRecord {
    fn from(a: CompletionAck) -> Self {
        Self {
            id: a.id.into(),
            applied: a.applied,
        }
    }
}

impl From<AckRecord> for CompletionAck {
    fn from(a: AckRecord) -> Self {
        Self {
            id: a.id.into_string(),
            applied: a.applied,
        }
    }
}

/// [`LeaseRequest`] across the boundary.
#[repr(C)]
#[derive(StableAbi)]
#[allow(missing_docs)]
pub struct LeaseRecord {
    pub worker_id: RString,
    pub leases: RVec<Tuple2<RString, i64>>,
    pub lease_secs: f64,
}

impl From<LeaseRequest> for LeaseRecord {
    fn from(l: LeaseRequest) -> Self {
        Self {
            worker_id: l.worker_id.into(),
            leases: l
                .leases
                .into_iter()
                .map(|(id, token)| Tuple2(id.into(), token))
                .collect(),
            lease_secs: l.lease_secs,
        }
    }
}

impl From<LeaseRecord> for LeaseRequest {
    fn from(l: LeaseRecord) -> Self {
        Self {
            worker_id: l.worker_id.into_string(),
            leases: l
                .leases
                .into_iter()
                .map(|Tuple2(id, token)| (id.into_string(), token))
                .collect(),
            lease_secs: l.lease_secs,
        }
    }
}

/// [`ListRequest`] across the boundary.
#[repr(C)]
#[derive(StableAbi)]
#[allow(missing_docs)]
pub struct ListRecord {
    pub status: ROption<TaskResultStatus>,
    pub queue_name: ROption<RString>,
    pub task_path: ROption<RString>,
    pub limit: ROption<u32>,
    pub ext: RString,
}

impl From<ListRequest> for ListRecord {
    fn from(l: ListRequest) -> Self {
        Self {
            status: l.status.into(),
            queue_name: opt_string(l.queue_name),
            task_path: opt_string(l.task_path),
            limit: l.limit.into(),
            ext: no_ext(),
        }
    }
}

impl From<ListRecord> for ListRequest {
    fn from(l: ListRecord) -> Self {
        Self {
            status: l.status.into_option(),
            queue_name: opt_owned(l.queue_name),
            task_path: opt_owned(l.task_path),
            limit: l.limit.into_option(),
        }
    }
}

/// [`QueueStats`] across the boundary.
#[repr(C)]
#[derive(StableAbi)]
#[allow(missing_docs)]
pub struct QueueStatsRecord {
    pub queue_name: RString,
    pub status: TaskResultStatus,
    pub count: u64,
    pub oldest_enqueued_at: Micros,
}

impl From<QueueStats> for QueueStatsRecord {
    fn from(q: QueueStats) -> Self {
        Self {
            queue_name: q.queue_name.into(),
            status: q.status,
            count: q.count,
            oldest_enqueued_at: micros(q.oldest_enqueued_at),
        }
    }
}

impl From<QueueStatsRecord> for QueueStats {
    fn from(q: QueueStatsRecord) -> Self {
        Self {
            queue_name: q.queue_name.into_string(),
            status: q.status,
            count: q.count,
            oldest_enqueued_at: time(q.oldest_enqueued_at),
        }
    }
}

/// [`PruneRequest`] across the boundary.
#[repr(C)]
#[derive(StableAbi)]
#[allow(missing_docs)]
pub struct PruneRecord {
    pub finished_before: Micros,
    pub failed_finished_before: Micros,
    pub statuses: RVec<TaskResultStatus>,
    pub queues: ROption<RVec<RString>>,
    pub dry_run: bool,
    pub limit: ROption<u64>,
    pub ext: RString,
}

impl From<PruneRequest> for PruneRecord {
    fn from(p: PruneRequest) -> Self {
        Self {
            finished_before: micros(p.finished_before),
            failed_finished_before: micros(p.failed_finished_before),
            statuses: p.statuses.into_iter().collect(),
            queues: p.queues.map(strings).into(),
            dry_run: p.dry_run,
            limit: p.limit.into(),
            ext: no_ext(),
        }
    }
}

impl From<PruneRecord> for PruneRequest {
    fn from(p: PruneRecord) -> Self {
        Self {
            finished_before: time(p.finished_before),
            failed_finished_before: time(p.failed_finished_before),
            statuses: p.statuses.into_vec(),
            queues: p.queues.into_option().map(owned),
            dry_run: p.dry_run,
            limit: p.limit.into_option(),
        }
    }
}

/// [`WaitRequest`] across the boundary.
#[repr(C)]
#[derive(StableAbi)]
#[allow(missing_docs)]
pub struct WaitRecord {
    pub queues: ROption<RVec<RString>>,
    pub timeout_secs: f64,
}

impl From<WaitRequest> for WaitRecord {
    fn from(w: WaitRequest) -> Self {
        Self {
            queues: w.queues.map(strings).into(),
            timeout_secs: w.timeout_secs,
        }
    }
}

impl From<WaitRecord> for WaitRequest {
    fn from(w: WaitRecord) -> Self {
        Self {
            queues: w.queues.into_option().map(owned),
            timeout_secs: w.timeout_secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_survives_the_round_trip_through_its_record() {
        let mut result = TaskResultData::ready(
            EnqueueRequest {
                id: "id-1".into(),
                task: TaskDescription {
                    path: "app::send".into(),
                    priority: -3,
                    queue_name: "mail".into(),
                    backend: "default".into(),
                    run_after: DateTime::from_timestamp_micros(1_700_000_000_123_456),
                    takes_context: true,
                    is_async: true,
                    max_attempts: Some(4),
                    timeout_secs: Some(1.5),
                },
                args: Json::encode(&[1, 2]).unwrap(),
                kwargs: Json::empty_object(),
                unique: None,
                trace_context: None,
            },
            "default",
        );
        result.status = TaskResultStatus::Failed;
        result.finished_at = DateTime::from_timestamp_micros(1_700_000_001_000_001);
        result.errors.push(TaskError {
            exception_class_path: "panic".into(),
            traceback: "panic: boom\n".into(),
        });
        result.worker_ids = vec!["w1".into(), "w2".into()];
        assert_eq!(TaskResultView::of(&result).to_owned(), result);
        result.return_value = Some(Json::null());
        let back = TaskResultData::from(TaskResultRecord::from(result.clone()));
        assert_eq!(back, result);
        // A 2.1 field, in the record's `ext`.
        result.trace_context = Some(
            r#"{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}"#.into(),
        );
        let back = TaskResultData::from(TaskResultRecord::from(result.clone()));
        assert_eq!(back, result);
    }

    #[test]
    fn a_trace_context_travels_in_the_enqueue_records_ext() {
        let mut request = EnqueueRequest::new(
            "id-2",
            TaskDescription::new("app::send"),
            Json::encode(&[1]).unwrap(),
        );
        assert_eq!(EnqueueRecord::from(request.clone()).ext.as_str(), "");
        request.trace_context = Some(
            r#"{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}"#.into(),
        );
        let record = EnqueueRecord::from(request.clone());
        assert!(
            record.ext.as_str().contains("traceparent"),
            "{}",
            record.ext
        );
        assert_eq!(EnqueueRequest::from(record), request);
    }

    #[test]
    fn a_unique_key_travels_in_the_enqueue_records_ext() {
        use crate::UniqueScope;
        let description = || TaskDescription {
            path: "app::bill".into(),
            priority: 0,
            queue_name: "default".into(),
            backend: "default".into(),
            run_after: None,
            takes_context: false,
            is_async: false,
            max_attempts: None,
            timeout_secs: None,
        };
        let mut request = EnqueueRequest::new("id-2", description(), Json::encode(&[1]).unwrap());
        let plain = EnqueueRecord::from(request.clone());
        assert!(plain.ext.is_empty(), "no key, no ext: {}", plain.ext);
        assert_eq!(EnqueueRequest::from(plain), request);
        for scope in [UniqueScope::Active, UniqueScope::For { period_us: 90 }] {
            request.unique = Some(Box::new(UniqueKey {
                key: "invoice-7".into(),
                scope,
            }));
            let record = EnqueueRecord::from(request.clone());
            assert!(record.ext.contains("invoice-7"), "{}", record.ext);
            assert_eq!(EnqueueRequest::from(record), request);
        }
        // What a 2.0 side writes (and fields of a newer minor) read as no key.
        let mut record = EnqueueRecord::from(EnqueueRequest::new(
            "id-3",
            description(),
            Json::empty_array(),
        ));
        record.ext = RString::from(r#"{"cron_tick":5}"#);
        assert_eq!(EnqueueRequest::from(record).unique, None);
    }

    #[test]
    fn requests_survive_the_round_trip_through_their_records() {
        let prune = PruneRequest {
            finished_before: DateTime::from_timestamp_micros(5),
            failed_finished_before: None,
            statuses: vec![TaskResultStatus::Failed],
            queues: Some(vec!["a".into()]),
            dry_run: true,
            limit: Some(10),
        };
        assert_eq!(PruneRequest::from(PruneRecord::from(prune.clone())), prune);
        let lease = LeaseRequest {
            worker_id: "w".into(),
            leases: vec![("x".into(), 7)],
            lease_secs: 2.0,
        };
        assert_eq!(LeaseRequest::from(LeaseRecord::from(lease.clone())), lease);
        let claim = ClaimRequest {
            worker_id: "w".into(),
            queues: None,
            exclude_queues: vec!["slow".into()],
            limit: 3,
            lease_secs: 30.0,
            start_now: None,
        };
        assert_eq!(ClaimRequest::from(ClaimRecord::from(claim.clone())), claim);
        let claim = ClaimRequest {
            start_now: Some(2),
            ..claim
        };
        assert_eq!(ClaimRequest::from(ClaimRecord::from(claim.clone())), claim);
    }
}
