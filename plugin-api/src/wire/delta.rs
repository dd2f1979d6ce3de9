//! What an enqueue changed, without what the host sent: the response of
//! [`crate::ops::ENQUEUE_DELTA`] and the state carried by [`crate::ops::RUN_ENQUEUED`].
//!
//! A plain `enqueue` answers the whole [`TaskResultData`], so the id, the task description and
//! the arguments the host has just sent cross the boundary a second time, and are read again.
//! A [`ResultDelta`] holds only the fields a backend sets. Its timestamps are integer
//! microseconds since the Unix epoch (UTC), not RFC 3339 text: it exists to be cheap.

use super::{decode, encode, EnqueueRequest, TaskError, TaskResultData, TaskResultStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The part of a [`TaskResultData`] that a backend sets on enqueue (everything but the id, the
/// task, the arguments and the alias, which the host sent). Added in 1.3.0.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct ResultDelta {
    /// Where the run stands.
    pub status: TaskResultStatus,
    /// When it was stored.
    #[serde(default, with = "micros")]
    pub enqueued_at: Option<DateTime<Utc>>,
    /// When the latest attempt started.
    #[serde(default, with = "micros")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished (FAILED or SUCCESSFUL).
    #[serde(default, with = "micros")]
    pub finished_at: Option<DateTime<Utc>>,
    /// When an attempt was last made.
    #[serde(default, with = "micros")]
    pub last_attempted_at: Option<DateTime<Utc>>,
    /// Errors of failed attempts, oldest first.
    #[serde(default)]
    pub errors: Vec<TaskError>,
    /// One worker id per attempt.
    #[serde(default)]
    pub worker_ids: Vec<String>,
    /// The return value, once SUCCESSFUL.
    #[serde(default)]
    pub return_value: Option<Value>,
}

impl ResultDelta {
    /// The part of `result` a backend set, dropping what the host sent.
    pub fn of(result: TaskResultData) -> Self {
        Self {
            status: result.status,
            enqueued_at: result.enqueued_at,
            started_at: result.started_at,
            finished_at: result.finished_at,
            last_attempted_at: result.last_attempted_at,
            errors: result.errors,
            worker_ids: result.worker_ids,
            return_value: result.return_value,
        }
    }

    /// The same part of `result`, copied (for a result the caller keeps).
    pub fn copied_from(result: &TaskResultData) -> Self {
        Self {
            status: result.status,
            enqueued_at: result.enqueued_at,
            started_at: result.started_at,
            finished_at: result.finished_at,
            last_attempted_at: result.last_attempted_at,
            errors: result.errors.clone(),
            worker_ids: result.worker_ids.clone(),
            return_value: result.return_value.clone(),
        }
    }

    /// The whole result: what `request` sent to the backend `alias`, with this delta applied.
    pub fn apply(self, request: EnqueueRequest, alias: &str) -> TaskResultData {
        TaskResultData {
            status: self.status,
            enqueued_at: self.enqueued_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            last_attempted_at: self.last_attempted_at,
            errors: self.errors,
            worker_ids: self.worker_ids,
            return_value: self.return_value,
            ..TaskResultData::ready(request, alias)
        }
    }

    /// This delta as JSON: exactly what `serde_json::to_string` writes, faster.
    pub fn to_json(&self) -> String {
        encode::delta_json(self)
    }

    /// Read a delta: the same as `serde_json::from_str`, faster on the compact form.
    pub fn from_json(text: &str) -> serde_json::Result<Self> {
        decode::delta_from_json(text)
    }

    /// These deltas as a JSON array: exactly what `serde_json::to_string` writes, faster.
    pub fn list_to_json(deltas: &[Self]) -> String {
        encode::delta_list_json(deltas)
    }

    /// Read a JSON array of deltas: the same as `serde_json::from_str`, faster on the compact
    /// form.
    pub fn list_from_json(text: &str) -> serde_json::Result<Vec<Self>> {
        decode::delta_list_from_json(text)
    }
}

/// The request of [`crate::ops::RUN_ENQUEUED`]: run the task of the enqueue `id` that this
/// thread is handing to the backend. Added in 1.3.0.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct RunEnqueued {
    /// The result id of the enqueue request in flight.
    pub id: String,
    /// What the backend has set so far (RUNNING, with its start time and worker id): what the
    /// task's context sees. Required for a task that takes a context; may be `None` otherwise,
    /// which saves encoding it.
    #[serde(default)]
    pub state: Option<ResultDelta>,
}

impl RunEnqueued {
    /// This request as JSON: exactly what `serde_json::to_string` writes, faster.
    pub fn to_json(&self) -> String {
        encode::run_enqueued_json(self)
    }

    /// Read a run request: the same as `serde_json::from_str`, faster on the compact form.
    pub fn from_json(text: &str) -> serde_json::Result<Self> {
        decode::run_enqueued_from_json(text)
    }
}

/// `Option<DateTime<Utc>>` as integer microseconds since the Unix epoch, or `null`.
mod micros {
    use chrono::{DateTime, Utc};
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        value: &Option<DateTime<Utc>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(time) => serializer.serialize_i64(time.timestamp_micros()),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<i64>::deserialize(deserializer)?
            .map(|micros| {
                DateTime::from_timestamp_micros(micros).ok_or_else(|| {
                    D::Error::custom(format!("{micros} µs since the epoch is out of range"))
                })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::decode::tests::{mutate, same};
    use crate::wire::encode::tests::result;
    use crate::wire::TaskDescription;
    use proptest::prelude::*;
    use serde_json::json;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn deltas_and_run_requests_encode_as_serde_json_and_read_back(r in result()) {
            let state = ResultDelta::copied_from(&r);
            let text = state.to_json();
            prop_assert_eq!(&text, &serde_json::to_string(&state).unwrap());
            same(ResultDelta::from_json(&text), &text)?;
            let list = vec![state.clone(), state.clone()];
            let text = ResultDelta::list_to_json(&list);
            prop_assert_eq!(&text, &serde_json::to_string(&list).unwrap());
            same(ResultDelta::list_from_json(&text), &text)?;
            for state in [Some(state), None] {
                let run = RunEnqueued { id: r.id.clone(), state };
                let text = run.to_json();
                prop_assert_eq!(&text, &serde_json::to_string(&run).unwrap());
                same(RunEnqueued::from_json(&text), &text)?;
            }
        }

        #[test]
        fn edited_deltas_read_as_serde_json_reads_them(
            r in result(),
            edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4),
        ) {
            let text = mutate(&ResultDelta::of(r).to_json(), &edits);
            same(ResultDelta::from_json(&text), &text)?;
        }

        #[test]
        fn microseconds_read_as_serde_json_reads_them(n in "-?[0-9]{1,20}[,}.e]?") {
            let text = format!("{{\"status\":\"READY\",\"enqueued_at\":{n},\"started_at\":null,\"finished_at\":null,\"last_attempted_at\":null,\"errors\":[],\"worker_ids\":[],\"return_value\":null}}");
            same(ResultDelta::from_json(&text), &text)?;
        }
    }

    fn request() -> EnqueueRequest {
        EnqueueRequest {
            id: "r1".into(),
            task: TaskDescription {
                path: "app.tasks.add".into(),
                priority: 0,
                queue_name: "default".into(),
                backend: "default".into(),
                run_after: None,
                takes_context: false,
                is_async: false,
                max_attempts: None,
                timeout_secs: None,
            },
            args: vec![json!(1), json!(2)],
            kwargs: serde_json::Map::new(),
        }
    }

    #[test]
    fn a_delta_applied_to_its_request_gives_the_result_back() {
        let mut result = TaskResultData::ready(request(), "default");
        result.status = TaskResultStatus::Failed;
        result.enqueued_at = DateTime::from_timestamp_micros(1_700_000_000_000_001);
        result.started_at = DateTime::from_timestamp_micros(1_700_000_000_000_002);
        result.last_attempted_at = result.started_at;
        result.finished_at = DateTime::from_timestamp_micros(1_700_000_000_000_003);
        result.worker_ids = vec!["w".into()];
        result.errors = vec![TaskError {
            exception_class_path: "x::E".into(),
            traceback: "boom\n".into(),
        }];
        let json = ResultDelta::copied_from(&result).to_json();
        let back = ResultDelta::from_json(&json).unwrap();
        assert_eq!(back, ResultDelta::of(result.clone()));
        assert_eq!(back.apply(request(), "default"), result);
    }

    #[test]
    fn timestamps_cross_as_microseconds() {
        let mut result = TaskResultData::ready(request(), "default");
        result.enqueued_at = DateTime::from_timestamp_micros(1_700_000_000_123_456);
        let json = ResultDelta::of(result).to_json();
        assert!(
            json.contains(r#""enqueued_at":1700000000123456,"started_at":null"#),
            "{json}"
        );
    }

    #[test]
    fn an_out_of_range_timestamp_is_an_error_naming_it() {
        let text = format!(r#"{{"status":"READY","enqueued_at":{}}}"#, i64::MAX);
        let error = ResultDelta::from_json(&text).unwrap_err().to_string();
        assert!(error.contains("out of range"), "{error}");
    }
}
