//! Hand-written JSON encoding of the payloads that cross the ABI on every enqueue.
//!
//! The output is byte for byte what `serde_json::to_string` writes for the same value (the
//! tests check it on generated values), so readers see no difference; it is only cheaper:
//! field names are written as literals, and strings that need no escaping — ids, paths, queue
//! names, nearly everything — are checked eight bytes at a time and copied whole. Strings that
//! do need escaping and floats go through `serde_json` itself; free-form JSON values are
//! walked here, down to those two.

use super::{
    timestamp, ClaimedTask, Completion, CompletionAck, EnqueueRequest, ResultDelta, RunEnqueued,
    TaskDescription, TaskError, TaskOutcome, TaskResultData,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Number, Value};

/// Room for a typical task result, so it is written without growing the buffer.
const TYPICAL_LEN: usize = 512;

/// Room for a typical delta: a finished run's (four timestamps, one worker id, a small return
/// value) is ≈240 bytes.
const DELTA_LEN: usize = 320;

/// Room for a typical completion: ids, token, a small outcome and two timestamps.
const COMPLETION_LEN: usize = 256;

impl TaskResultData {
    /// This result as JSON: exactly what `serde_json::to_string` writes, faster.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(TYPICAL_LEN);
        write_result(&mut out, self);
        out
    }

    /// These results as a JSON array: exactly what `serde_json::to_string` writes, faster.
    pub fn list_to_json(results: &[Self]) -> String {
        let mut out = String::with_capacity(TYPICAL_LEN * results.len() + 2);
        write_list(&mut out, results, write_result);
        out
    }
}

impl TaskOutcome {
    /// This outcome as JSON: exactly what `serde_json::to_string` writes (the `status` tag
    /// first, then the variant's field), faster.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(TYPICAL_LEN);
        write_outcome(&mut out, self);
        out
    }
}

impl Completion {
    /// These completions as a JSON array (a `complete` request): exactly what
    /// `serde_json::to_string` writes, faster (serde's internally tagged outcome costs a
    /// buffered copy of each).
    pub fn list_to_json(completions: &[Self]) -> String {
        let mut out = String::with_capacity(COMPLETION_LEN * completions.len() + 2);
        write_list(&mut out, completions, write_completion);
        out
    }
}

impl CompletionAck {
    /// These acknowledgements as a JSON array (a `complete` response): exactly what
    /// `serde_json::to_string` writes, faster.
    pub fn list_to_json(acks: &[Self]) -> String {
        let mut out = String::with_capacity(64 * acks.len() + 2);
        write_list(&mut out, acks, write_ack);
        out
    }
}

/// A task outcome in the form serde_json writes its internally tagged enum: the tag first.
fn write_outcome(out: &mut String, outcome: &TaskOutcome) {
    match outcome {
        TaskOutcome::Successful { return_value } => {
            out.push_str("{\"status\":\"SUCCESSFUL\",\"return_value\":");
            write_json(out, return_value);
        }
        TaskOutcome::Failed { error } => {
            out.push_str("{\"status\":\"FAILED\",\"error\":");
            write_error(out, error);
        }
    }
    out.push('}');
}

fn write_ack(out: &mut String, ack: &CompletionAck) {
    out.push_str("{\"id\":");
    write_str(out, &ack.id);
    out.push_str(",\"applied\":");
    out.push_str(bool_text(ack.applied));
    out.push('}');
}

/// One completion; `started_at` only when set (serde skips it when `None`).
fn write_completion(out: &mut String, c: &Completion) {
    out.push_str("{\"id\":");
    write_str(out, &c.id);
    out.push_str(",\"worker_id\":");
    write_str(out, &c.worker_id);
    out.push_str(",\"lease_token\":");
    write_integer(out, c.lease_token);
    out.push_str(",\"outcome\":");
    write_outcome(out, &c.outcome);
    out.push_str(",\"retry_at\":");
    write_time(out, &c.retry_at);
    if c.started_at.is_some() {
        out.push_str(",\"started_at\":");
        write_time(out, &c.started_at);
    }
    out.push('}');
}

impl EnqueueRequest {
    /// This request as JSON: exactly what `serde_json::to_string` writes, faster.
    pub fn to_json(&self) -> String {
        enqueue_request_json(&self.id, &self.task, &self.args, &self.kwargs)
    }

    /// These requests as a JSON array: exactly what `serde_json::to_string` writes, faster.
    pub fn list_to_json(requests: &[Self]) -> String {
        let mut out = String::with_capacity(TYPICAL_LEN * requests.len() + 2);
        write_list(&mut out, requests, |out, r| {
            write_request(out, &r.id, &r.task, &r.args, &r.kwargs)
        });
        out
    }
}

impl ClaimedTask {
    /// These claimed tasks as a JSON array (a claim's response): exactly what
    /// `serde_json::to_string` writes, faster.
    pub fn list_to_json(tasks: &[Self]) -> String {
        let mut out = String::with_capacity((TYPICAL_LEN + 40) * tasks.len() + 2);
        write_list(&mut out, tasks, |out, t| {
            out.push_str("{\"result\":");
            write_result(out, &t.result);
            out.push_str(",\"lease_token\":");
            write_integer(out, t.lease_token);
            out.push_str(",\"max_attempts\":");
            write_decimal(out, u64::from(t.max_attempts));
            out.push('}');
        });
        out
    }
}

/// `[item,item,…]`.
fn write_list<T>(out: &mut String, items: &[T], mut write: impl FnMut(&mut String, &T)) {
    out.push('[');
    for (at, item) in items.iter().enumerate() {
        if at > 0 {
            out.push(',');
        }
        write(out, item);
    }
    out.push(']');
}

/// The JSON of an [`EnqueueRequest`] made of these parts (for callers that hold them borrowed).
pub fn enqueue_request_json(
    id: &str,
    task: &TaskDescription,
    args: &[Value],
    kwargs: &Map<String, Value>,
) -> String {
    let mut out = String::with_capacity(TYPICAL_LEN);
    write_request(&mut out, id, task, args, kwargs);
    out
}

fn write_request(
    out: &mut String,
    id: &str,
    task: &TaskDescription,
    args: &[Value],
    kwargs: &Map<String, Value>,
) {
    out.push_str("{\"id\":");
    write_str(out, id);
    out.push_str(",\"task\":");
    write_task(out, task);
    out.push_str(",\"args\":");
    write_array(out, args);
    out.push_str(",\"kwargs\":");
    write_object(out, kwargs);
    out.push('}');
}

fn write_result(out: &mut String, r: &TaskResultData) {
    out.push_str("{\"id\":");
    write_str(out, &r.id);
    out.push_str(",\"task\":");
    write_task(out, &r.task);
    out.push_str(",\"status\":\"");
    out.push_str(r.status.as_str());
    out.push_str("\",\"enqueued_at\":");
    write_time(out, &r.enqueued_at);
    out.push_str(",\"started_at\":");
    write_time(out, &r.started_at);
    out.push_str(",\"finished_at\":");
    write_time(out, &r.finished_at);
    out.push_str(",\"last_attempted_at\":");
    write_time(out, &r.last_attempted_at);
    out.push_str(",\"args\":");
    write_array(out, &r.args);
    out.push_str(",\"kwargs\":");
    write_object(out, &r.kwargs);
    out.push_str(",\"backend\":");
    write_str(out, &r.backend);
    write_outcome_fields(out, &r.errors, &r.worker_ids, &r.return_value);
    out.push('}');
}

fn write_task(out: &mut String, t: &TaskDescription) {
    out.push_str("{\"path\":");
    write_str(out, &t.path);
    out.push_str(",\"priority\":");
    write_integer(out, i64::from(t.priority));
    out.push_str(",\"queue_name\":");
    write_str(out, &t.queue_name);
    out.push_str(",\"backend\":");
    write_str(out, &t.backend);
    out.push_str(",\"run_after\":");
    write_time(out, &t.run_after);
    out.push_str(",\"takes_context\":");
    out.push_str(bool_text(t.takes_context));
    out.push_str(",\"is_async\":");
    out.push_str(bool_text(t.is_async));
    out.push_str(",\"max_attempts\":");
    match t.max_attempts {
        Some(n) => write_decimal(out, u64::from(n)),
        None => out.push_str("null"),
    }
    out.push_str(",\"timeout_secs\":");
    match &t.timeout_secs {
        Some(secs) => write_value(out, secs),
        None => out.push_str("null"),
    }
    out.push('}');
}

fn write_error(out: &mut String, e: &TaskError) {
    out.push_str("{\"exception_class_path\":");
    write_str(out, &e.exception_class_path);
    out.push_str(",\"traceback\":");
    write_str(out, &e.traceback);
    out.push('}');
}

fn bool_text(value: bool) -> &'static str {
    if value {
        "true"
    } else {
        "false"
    }
}

fn write_time(out: &mut String, time: &Option<DateTime<Utc>>) {
    let mut buf = [0u8; timestamp::MAX_LEN];
    match time.as_ref().map(|t| timestamp::format_fast(t, &mut buf)) {
        None => out.push_str("null"),
        // Digits and punctuation only: nothing to escape.
        Some(Some(len)) => {
            out.push('"');
            out.extend(buf[..len].iter().map(|&b| char::from(b)));
            out.push('"');
        }
        Some(None) => {
            let mut text = Vec::new();
            // Writing to a Vec cannot fail, and timestamps always encode (as UTF-8).
            let _ = timestamp::serialize(time, &mut serde_json::Serializer::new(&mut text));
            out.push_str(&String::from_utf8_lossy(&text));
        }
    }
}

/// A free-form JSON value, written as serde_json writes it: walked here (serde_json's
/// serializer costs a call chain per element), with floats and strings that need escaping
/// left to serde_json.
fn write_json(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(bool_text(*b)),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => write_array(out, items),
        Value::Object(map) => write_object(out, map),
    }
}

/// `[value,value,…]`.
fn write_array(out: &mut String, items: &[Value]) {
    write_list(out, items, write_json);
}

/// `{"key":value,…}`, in the map's own order (the one serde_json iterates).
fn write_object(out: &mut String, map: &Map<String, Value>) {
    out.push('{');
    for (at, (key, value)) in map.iter().enumerate() {
        if at > 0 {
            out.push(',');
        }
        write_str(out, key);
        out.push(':');
        write_json(out, value);
    }
    out.push('}');
}

/// An integer in plain decimal, as serde_json writes it; a float through serde_json.
fn write_number(out: &mut String, n: &Number) {
    if let Some(n) = n.as_u64() {
        write_decimal(out, n);
    } else if let Some(n) = n.as_i64() {
        write_integer(out, n);
    } else {
        write_value(out, n);
    }
}

/// A signed integer in plain decimal.
fn write_integer(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    write_decimal(out, n.unsigned_abs());
}

/// The decimal digits of `n` (no sign, no leading zeros), two at a time (`itoa`, as serde_json
/// itself writes integers): a 16-digit timestamp in µs costs a quarter of a digit-by-digit loop.
fn write_decimal(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Anything else, through serde_json (numbers, `null`, free-form values).
fn write_value<T: Serialize + ?Sized>(out: &mut String, value: &T) {
    // These types (JSON values, numbers, strings) always encode.
    out.push_str(&serde_json::to_string(value).unwrap_or_default());
}

/// A JSON string literal, escaped as serde_json escapes it.
fn write_str(out: &mut String, text: &str) {
    if needs_escape(text.as_bytes()) {
        write_value(out, text);
    } else {
        out.reserve(text.len() + 2);
        out.push('"');
        out.push_str(text);
        out.push('"');
    }
}

/// Whether any byte is a control character, `"` or `\` (what JSON strings must escape),
/// checked a word at a time.
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    /// Non-zero exactly when some byte of `word` is zero.
    fn zero_byte(word: u64) -> u64 {
        word.wrapping_sub(ONES) & !word & HIGHS
    }
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_ne_bytes(word);
        // A byte below 0x20 is one whose top three bits are clear.
        let control = zero_byte(word & u64::from_ne_bytes([0xE0; 8]));
        let quote = zero_byte(word ^ u64::from_ne_bytes([b'"'; 8]));
        let backslash = zero_byte(word ^ u64::from_ne_bytes([b'\\'; 8]));
        if control | quote | backslash != 0 {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// The JSON of a [`ResultDelta`]: exactly what `serde_json::to_string` writes.
pub(super) fn delta_json(delta: &ResultDelta) -> String {
    let mut out = String::with_capacity(DELTA_LEN);
    write_delta(&mut out, delta);
    out
}

/// The JSON array of these [`ResultDelta`]s: exactly what `serde_json::to_string` writes.
pub(super) fn delta_list_json(deltas: &[ResultDelta]) -> String {
    let mut out = String::with_capacity(DELTA_LEN * deltas.len() + 2);
    write_list(&mut out, deltas, write_delta);
    out
}

/// The JSON of a [`RunEnqueued`]: exactly what `serde_json::to_string` writes.
pub(super) fn run_enqueued_json(run: &RunEnqueued) -> String {
    let mut out = String::with_capacity(DELTA_LEN + 64);
    out.push_str("{\"id\":");
    write_str(&mut out, &run.id);
    out.push_str(",\"state\":");
    match &run.state {
        Some(state) => write_delta(&mut out, state),
        None => out.push_str("null"),
    }
    out.push('}');
    out
}

fn write_delta(out: &mut String, d: &ResultDelta) {
    out.push_str("{\"status\":\"");
    out.push_str(d.status.as_str());
    out.push_str("\",\"enqueued_at\":");
    write_micros(out, &d.enqueued_at);
    out.push_str(",\"started_at\":");
    write_micros(out, &d.started_at);
    out.push_str(",\"finished_at\":");
    write_micros(out, &d.finished_at);
    out.push_str(",\"last_attempted_at\":");
    write_micros(out, &d.last_attempted_at);
    write_outcome_fields(out, &d.errors, &d.worker_ids, &d.return_value);
    out.push('}');
}

/// `,"errors":[…],"worker_ids":[…],"return_value":…`: the last fields of a result and of a
/// delta alike.
fn write_outcome_fields(
    out: &mut String,
    errors: &[TaskError],
    worker_ids: &[String],
    return_value: &Option<Value>,
) {
    out.push_str(",\"errors\":");
    write_list(out, errors, write_error);
    out.push_str(",\"worker_ids\":");
    write_list(out, worker_ids, |out, id| write_str(out, id));
    out.push_str(",\"return_value\":");
    match return_value {
        Some(value) => write_json(out, value),
        None => out.push_str("null"),
    }
}

/// A time as integer microseconds since the epoch, or `null`.
fn write_micros(out: &mut String, time: &Option<DateTime<Utc>>) {
    match time {
        Some(time) => write_integer(out, time.timestamp_micros()),
        None => out.push_str("null"),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::wire::TaskResultStatus;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9_:.-]{0,40}",
            any::<String>(),
            "[\"\\\\\\x00-\\x1f\\x7f a-é]{0,20}",
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            text().prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(text(), inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Values the decoder reads without serde_json — `null`, booleans, integers, plain strings
    /// — nested up to ten deep (past the direct reader's limit of eight), with now and then a
    /// float or a string that needs escaping, which it must leave to serde_json.
    pub(in crate::wire) fn simple_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            8 => Just(Value::Null),
            8 => any::<bool>().prop_map(Value::from),
            8 => any::<i64>().prop_map(Value::from),
            8 => (-1000i64..1000).prop_map(Value::from),
            8 => any::<u64>().prop_map(Value::from),
            8 => "[a-z0-9 é_-]{0,12}".prop_map(Value::from),
            1 => any::<f64>().prop_map(Value::from),
            1 => "[a\"\\\\\n]{1,3}".prop_map(Value::from),
        ];
        leaf.prop_recursive(10, 48, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-c]{0,2}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Generated task outcomes, for the decoding tests too.
    pub(in crate::wire) fn outcome() -> impl Strategy<Value = TaskOutcome> {
        prop_oneof![
            prop_oneof![value(), simple_value()]
                .prop_map(|return_value| TaskOutcome::Successful { return_value }),
            (text(), text()).prop_map(|(exception_class_path, traceback)| {
                TaskOutcome::Failed {
                    error: TaskError {
                        exception_class_path,
                        traceback,
                    },
                }
            }),
        ]
    }

    fn time() -> impl Strategy<Value = Option<DateTime<Utc>>> {
        prop::option::of(
            (-70_000_000_000i64..260_000_000_000, 0u32..1_000_000_000)
                .prop_map(|(s, n)| DateTime::from_timestamp(s, n).unwrap()),
        )
    }

    fn task() -> impl Strategy<Value = TaskDescription> {
        (
            (text(), any::<i32>(), text(), text(), time()),
            (
                any::<bool>(),
                any::<bool>(),
                any::<Option<u32>>(),
                any::<Option<f64>>(),
            ),
        )
            .prop_map(
                |(
                    (path, priority, queue_name, backend, run_after),
                    (takes_context, is_async, max_attempts, timeout_secs),
                )| TaskDescription {
                    path,
                    priority,
                    queue_name,
                    backend,
                    run_after,
                    takes_context,
                    is_async,
                    max_attempts,
                    timeout_secs,
                },
            )
    }

    /// Generated enqueue requests, for the decoding tests too.
    pub(in crate::wire) fn request() -> impl Strategy<Value = EnqueueRequest> {
        (
            text(),
            task(),
            prop::collection::vec(value(), 0..4),
            prop::collection::btree_map(text(), value(), 0..3),
        )
            .prop_map(|(id, task, args, kwargs)| EnqueueRequest {
                id,
                task,
                args,
                kwargs: kwargs.into_iter().collect(),
            })
    }

    /// Generated task results, for the decoding tests too.
    /// Generated completions (with and without `retry_at` and `started_at`), for the decoding
    /// tests too.
    pub(in crate::wire) fn completion() -> impl Strategy<Value = Completion> {
        (text(), text(), any::<i64>(), outcome(), time(), time()).prop_map(
            |(id, worker_id, lease_token, outcome, retry_at, started_at)| Completion {
                id,
                worker_id,
                lease_token,
                outcome,
                retry_at,
                started_at,
            },
        )
    }

    /// Generated acknowledgements, for the decoding tests too.
    pub(in crate::wire) fn ack() -> impl Strategy<Value = CompletionAck> {
        (text(), any::<bool>()).prop_map(|(id, applied)| CompletionAck { id, applied })
    }

    pub(in crate::wire) fn result() -> impl Strategy<Value = TaskResultData> {
        (
            (
                text(),
                task(),
                prop::sample::select(TaskResultStatus::ALL.to_vec()),
            ),
            (time(), time(), time(), time()),
            (
                prop::collection::vec(value(), 0..3),
                prop::collection::btree_map(text(), value(), 0..3),
                text(),
            ),
            (
                prop::collection::vec((text(), text()), 0..3),
                prop::collection::vec(text(), 0..3),
                prop::option::of(value()),
            ),
        )
            .prop_map(
                |((id, task, status), times, (args, kwargs, backend), rest)| {
                    let (enqueued_at, started_at, finished_at, last_attempted_at) = times;
                    let (errors, worker_ids, return_value) = rest;
                    TaskResultData {
                        id,
                        task,
                        status,
                        enqueued_at,
                        started_at,
                        finished_at,
                        last_attempted_at,
                        args,
                        kwargs: kwargs.into_iter().collect(),
                        backend,
                        errors: errors
                            .into_iter()
                            .map(|(exception_class_path, traceback)| TaskError {
                                exception_class_path,
                                traceback,
                            })
                            .collect(),
                        worker_ids,
                        return_value,
                    }
                },
            )
    }

    #[test]
    fn extreme_integers_encode_as_serde_json_encodes_them() {
        for v in [
            Value::from(0),
            Value::from(-1),
            Value::from(i64::MIN),
            Value::from(i64::MAX),
            Value::from(u64::MAX),
        ] {
            let mut out = String::new();
            write_json(&mut out, &v);
            assert_eq!(out, serde_json::to_string(&v).unwrap());
        }
    }

    #[test]
    fn escaping_is_detected_at_every_position() {
        for len in 0..24 {
            let plain = "a".repeat(len);
            assert!(!needs_escape(plain.as_bytes()));
            for at in 0..len {
                for special in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                    let mut bytes = plain.clone().into_bytes();
                    bytes[at] = special;
                    assert!(needs_escape(&bytes), "{len} {at} {special}");
                }
                for fine in [b' ', 0x7f, b'~', b'!', b'#', b'[', b']'] {
                    let mut bytes = plain.clone().into_bytes();
                    bytes[at] = fine;
                    assert!(!needs_escape(&bytes), "{len} {at} {fine}");
                }
            }
        }
        assert!(!needs_escape("é—€😀 naïve ünïcödé".as_bytes()));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        #[test]
        fn a_result_encodes_as_serde_json_encodes_it(r in result()) {
            prop_assert_eq!(r.to_json(), serde_json::to_string(&r).unwrap());
        }

        #[test]
        fn a_request_encodes_as_serde_json_encodes_it(q in request()) {
            prop_assert_eq!(q.to_json(), serde_json::to_string(&q).unwrap());
        }

        #[test]
        fn lists_encode_as_serde_json_encodes_them(
            rs in prop::collection::vec(result(), 0..4),
            qs in prop::collection::vec(request(), 0..4),
        ) {
            prop_assert_eq!(TaskResultData::list_to_json(&rs), serde_json::to_string(&rs).unwrap());
            prop_assert_eq!(EnqueueRequest::list_to_json(&qs), serde_json::to_string(&qs).unwrap());
        }

        #[test]
        fn completions_and_acks_encode_as_serde_json_encodes_them(
            cs in prop::collection::vec(completion(), 0..4),
            acks in prop::collection::vec(ack(), 0..4),
        ) {
            prop_assert_eq!(Completion::list_to_json(&cs), serde_json::to_string(&cs).unwrap());
            prop_assert_eq!(CompletionAck::list_to_json(&acks), serde_json::to_string(&acks).unwrap());
        }

        #[test]
        fn values_encode_as_serde_json_encodes_them(v in prop_oneof![value(), simple_value()]) {
            let mut out = String::new();
            write_json(&mut out, &v);
            prop_assert_eq!(out, serde_json::to_string(&v).unwrap());
        }

        #[test]
        fn integers_encode_as_serde_json_encodes_them(n in any::<i64>(), u in any::<u64>()) {
            for v in [Value::from(n), Value::from(u), Value::from(n / 1000), Value::from(u % 100)] {
                let mut out = String::new();
                write_json(&mut out, &v);
                prop_assert_eq!(out, serde_json::to_string(&v).unwrap());
            }
        }

        #[test]
        fn an_outcome_encodes_as_serde_json_encodes_it(o in outcome()) {
            prop_assert_eq!(o.to_json(), serde_json::to_string(&o).unwrap());
        }

        #[test]
        fn strings_encode_as_serde_json_encodes_them(s in any::<String>()) {
            let mut out = String::new();
            write_str(&mut out, &s);
            prop_assert_eq!(out, serde_json::to_string(&s).unwrap());
        }
    }
}
