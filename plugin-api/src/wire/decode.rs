//! Fast reading of the payloads that cross the ABI on every enqueue.
//!
//! [`TaskResultData::from_json`] and [`EnqueueRequest::from_json`] read the compact form that
//! `serde_json::to_string` (and this crate's `to_json`) writes — fields in declaration order, no
//! whitespace — walking it directly, with plain strings sliced out rather than decoded piece by
//! piece. Anything else (another field order, a missing or extra field, whitespace, a payload
//! from a plugin built against an older 1.x) is read by `serde_json::from_str` instead, so the
//! result — value or error — is the one `serde_json::from_str` gives. Free-form values
//! (`args`, `kwargs`, `return_value`) are read directly too when they are simple (`null`,
//! booleans, integers, plain strings, shallow arrays and objects of them); any other value is
//! read by serde_json on its own. One leniency there: such a value gets serde_json's whole
//! nesting limit of its own, so a value one or two levels deeper than serde_json would take
//! inside the document is read rather than refused (the host never sends one: it refuses such
//! arguments).

use super::{
    timestamp, ClaimedTask, Completion, CompletionAck, EnqueueRequest, ResultDelta, RunEnqueued,
    TaskDescription, TaskError, TaskOutcome, TaskResultData, TaskResultStatus,
};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};

/// How deeply nested a free-form value may be and still be read directly; deeper ones are rare
/// enough to leave to serde_json, and the limit keeps the direct reader's recursion small.
const SIMPLE_DEPTH: usize = 8;

impl TaskResultData {
    /// Read a task result: the same as `serde_json::from_str`, faster on the compact form.
    pub fn from_json(text: &str) -> serde_json::Result<Self> {
        fast_or_serde(text, Cursor::result)
    }

    /// Read a JSON array of task results (a bulk enqueue's response): the same as
    /// `serde_json::from_str::<Vec<TaskResultData>>`, faster on the compact form.
    pub fn list_from_json(text: &str) -> serde_json::Result<Vec<Self>> {
        fast_or_serde(text, |c| c.list(Cursor::result))
    }
}

impl ClaimedTask {
    /// Read a JSON array of claimed tasks (a claim's response): the same as
    /// `serde_json::from_str::<Vec<ClaimedTask>>`, faster on the compact form.
    pub fn list_from_json(text: &str) -> serde_json::Result<Vec<Self>> {
        fast_or_serde(text, |c| c.list(Cursor::claimed))
    }
}

impl TaskOutcome {
    /// Read a task outcome: the same as `serde_json::from_str`, faster on the compact form
    /// (serde's internally tagged enums buffer the whole object before reading it).
    pub fn from_json(text: &str) -> serde_json::Result<Self> {
        fast_or_serde(text, Cursor::outcome)
    }
}

impl Completion {
    /// Read a JSON array of completions (a `complete` request): the same as
    /// `serde_json::from_str::<Vec<Completion>>`, faster on the compact form.
    pub fn list_from_json(text: &str) -> serde_json::Result<Vec<Self>> {
        fast_or_serde(text, |c| c.list(Cursor::completion))
    }
}

impl CompletionAck {
    /// Read a JSON array of acknowledgements (a `complete` response): the same as
    /// `serde_json::from_str::<Vec<CompletionAck>>`, faster on the compact form.
    pub fn list_from_json(text: &str) -> serde_json::Result<Vec<Self>> {
        fast_or_serde(text, |c| c.list(Cursor::ack))
    }
}

impl EnqueueRequest {
    /// Read an enqueue request: the same as `serde_json::from_str`, faster on the compact form.
    pub fn from_json(text: &str) -> serde_json::Result<Self> {
        fast_or_serde(text, Cursor::request)
    }

    /// Read a JSON array of enqueue requests (a bulk enqueue): the same as
    /// `serde_json::from_str::<Vec<EnqueueRequest>>`, faster on the compact form.
    pub fn list_from_json(text: &str) -> serde_json::Result<Vec<Self>> {
        fast_or_serde(text, |c| c.list(Cursor::request))
    }
}

/// All of `text` read by `read` on the fast path; anything it does not take (another form, or
/// an error) is read by serde_json, so the value or the error is exactly serde_json's.
fn fast_or_serde<'a, T: DeserializeOwned>(
    text: &'a str,
    read: impl FnOnce(&mut Cursor<'a>) -> Option<T>,
) -> serde_json::Result<T> {
    match Cursor::new(text).whole(read) {
        Some(value) => Ok(value),
        None => serde_json::from_str(text),
    }
}

/// Where the first `"`, `\` or control character of `bytes` is (what ends a plain string),
/// looked for a word at a time.
fn plain_len(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    /// The high bit of each zero byte of `word` is set; a byte above a zero byte may be
    /// flagged too (the borrow), so only the lowest flag is exact — the one used.
    fn zero_bytes(word: u64) -> u64 {
        word.wrapping_sub(ONES) & !word & HIGHS
    }
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        // A byte below 0x20 is one whose top three bits are clear.
        let hits = zero_bytes(word & u64::from_le_bytes([0xE0; 8]))
            | zero_bytes(word ^ u64::from_le_bytes([b'"'; 8]))
            | zero_bytes(word ^ u64::from_le_bytes([b'\\'; 8]));
        if hits != 0 {
            return Some(at + (hits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let tail = bytes.get(at..)?;
    let found = tail
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    Some(at + found)
}

/// A position in the text being read. Every reader returns `None` as soon as the text is not
/// in the expected form; the caller then leaves it all to serde_json.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, at: 0 }
    }

    fn rest(&self) -> &'a [u8] {
        &self.text.as_bytes()[self.at..]
    }

    /// The whole text has been read.
    fn end(&self) -> Option<()> {
        (self.at == self.text.len()).then_some(())
    }

    /// Exactly `literal` comes next. Inlined so that each caller's literal, a constant,
    /// is compared in place rather than through a `memcmp` call.
    #[inline(always)]
    fn literal(&mut self, literal: &str) -> Option<()> {
        self.rest().starts_with(literal.as_bytes()).then(|| {
            self.at += literal.len();
        })
    }

    /// `literal` comes next (and is read) or not (nothing is read).
    #[inline(always)]
    fn maybe(&mut self, literal: &str) -> bool {
        self.literal(literal).is_some()
    }

    /// One JSON value of any type, read by serde_json (for numbers and free-form values).
    fn value<T: DeserializeOwned>(&mut self) -> Option<T> {
        let mut stream = serde_json::Deserializer::from_str(&self.text[self.at..]).into_iter::<T>();
        let value = stream.next()?.ok()?;
        self.at += stream.byte_offset();
        Some(value)
    }

    /// A string: sliced out when it holds no escape, else read by serde_json.
    fn string(&mut self) -> Option<String> {
        match self.plain_string() {
            Some(text) => Some(text.to_owned()),
            None => self.value(),
        }
    }

    /// A string without escapes (or control characters), borrowed from the text.
    fn plain_string(&mut self) -> Option<&'a str> {
        let rest = self.rest();
        if rest.first() != Some(&b'"') {
            return None;
        }
        let len = plain_len(&rest[1..])?;
        if rest[1 + len] != b'"' {
            return None;
        }
        let text = self.text.get(self.at + 1..self.at + 1 + len)?;
        self.at += len + 2;
        Some(text)
    }

    /// A small integer written plainly (`0`, `-5`, `100`), else read by serde_json.
    fn integer<T: DeserializeOwned + TryFrom<i64>>(&mut self) -> Option<T> {
        let rest = self.rest();
        let sign = usize::from(rest.first() == Some(&b'-'));
        let digits = rest[sign..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        // No leading zero, and no `-0` (serde_json reads it as a float).
        let plain = (1..=9).contains(&digits)
            && (rest[sign] != b'0' || (digits == 1 && sign == 0))
            && matches!(rest.get(sign + digits), Some(b',' | b'}'));
        if !plain {
            return self.value();
        }
        let magnitude = rest[sign..sign + digits]
            .iter()
            .fold(0i64, |n, &b| n * 10 + i64::from(b - b'0'));
        let value = T::try_from(if sign == 1 { -magnitude } else { magnitude }).ok()?;
        self.at += sign + digits;
        Some(value)
    }

    fn boolean(&mut self) -> Option<bool> {
        if self.maybe("true") {
            Some(true)
        } else {
            self.literal("false").map(|()| false)
        }
    }

    fn time(&mut self) -> Option<Option<DateTime<Utc>>> {
        if self.maybe("null") {
            return Some(None);
        }
        // A timestamp never needs escapes; one written with them is left to serde_json.
        let text = self.plain_string()?;
        timestamp::parse(text).ok().map(Some)
    }

    fn args(&mut self) -> Option<Vec<Value>> {
        self.simple_or_value(|c| c.simple_array(SIMPLE_DEPTH))
    }

    fn kwargs(&mut self) -> Option<Map<String, Value>> {
        self.simple_or_value(|c| c.simple_object(SIMPLE_DEPTH))
    }

    /// A free-form JSON value (a return value): read directly when simple, else by serde_json.
    fn json_value(&mut self) -> Option<Value> {
        self.simple_or_value(|c| c.simple_value(SIMPLE_DEPTH))
    }

    /// A result's `return_value`: `null` is none (as serde_json reads an `Option<Value>`).
    fn return_value(&mut self) -> Option<Option<Value>> {
        if self.maybe("null") {
            return Some(None);
        }
        self.json_value().map(Some)
    }

    /// What `simple` reads, or — when it does not take the text — the same value read by
    /// serde_json from where `simple` started.
    fn simple_or_value<T: DeserializeOwned>(
        &mut self,
        simple: impl FnOnce(&mut Self) -> Option<T>,
    ) -> Option<T> {
        let start = self.at;
        if let Some(value) = simple(self) {
            return Some(value);
        }
        self.at = start;
        self.value()
    }

    /// A compact JSON value made only of what reads back unambiguously without serde_json —
    /// `null`, booleans, plain integers, plain strings, and arrays and objects of them nested
    /// at most `depth` deep — as the `Value` serde_json builds for it. `None` for anything
    /// else (floats, escapes, whitespace, deeper nesting, bad JSON), which serde_json reads.
    fn simple_value(&mut self, depth: usize) -> Option<Value> {
        match *self.rest().first()? {
            b'n' => self.literal("null").map(|()| Value::Null),
            b't' | b'f' => self.boolean().map(Value::Bool),
            b'"' => self.plain_string().map(|s| Value::String(s.to_owned())),
            b'[' => self.simple_array(depth).map(Value::Array),
            b'{' => self.simple_object(depth).map(Value::Object),
            b'-' | b'0'..=b'9' => self.simple_integer().map(Value::Number),
            _ => None,
        }
    }

    /// A compact array of simple values (see [`Cursor::simple_value`]); it is one of the
    /// `depth` levels.
    fn simple_array(&mut self, depth: usize) -> Option<Vec<Value>> {
        let inner = depth.checked_sub(1)?;
        self.list(|c| c.simple_value(inner))
    }

    /// A compact object of plain keys and simple values (see [`Cursor::simple_value`]); it is
    /// one of the `depth` levels. A repeated key keeps its last value, as serde_json's plain
    /// `Map::insert` does.
    fn simple_object(&mut self, depth: usize) -> Option<Map<String, Value>> {
        let inner = depth.checked_sub(1)?;
        self.literal("{")?;
        let mut map = Map::new();
        if self.maybe("}") {
            return Some(map);
        }
        loop {
            let key = self.plain_string()?;
            self.literal(":")?;
            map.insert(key.to_owned(), self.simple_value(inner)?);
            if self.maybe("}") {
                return Some(map);
            }
            self.literal(",")?;
        }
    }

    /// An integer written plainly, as the `Number` serde_json reads into a `Value`: from `u64`
    /// when non-negative, from `i64` when negative. `None` for what serde_json reads as a
    /// float (a fraction or exponent follows, `-0`, beyond 64 bits) and for leading zeros.
    fn simple_integer(&mut self) -> Option<Number> {
        let rest = self.rest();
        let negative = rest.first() == Some(&b'-');
        let digits = &rest[usize::from(negative)..];
        // One pass: 19 digits always fit in a u64, only a 20th can overflow it.
        let mut magnitude = 0u64;
        let mut len = 0;
        for &b in digits {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            magnitude = if len < 19 {
                magnitude * 10 + u64::from(digit)
            } else {
                magnitude.checked_mul(10)?.checked_add(u64::from(digit))?
            };
            len += 1;
        }
        let plain = len > 0
            && (digits[0] != b'0' || len == 1)
            && !matches!(digits.get(len), Some(b'.' | b'e' | b'E'));
        if !plain {
            return None;
        }
        let number = if negative {
            // `-0` and anything below `i64::MIN` are floats to serde_json.
            Number::from(0i64.checked_sub_unsigned(magnitude).filter(|&n| n < 0)?)
        } else {
            Number::from(magnitude)
        };
        self.at += usize::from(negative) + len;
        Some(number)
    }

    /// A task error object (what follows it is the caller's).
    fn error(&mut self) -> Option<TaskError> {
        self.literal("{\"exception_class_path\":")?;
        let exception_class_path = self.string()?;
        self.literal(",\"traceback\":")?;
        let traceback = self.string()?;
        self.literal("}")?;
        Some(TaskError {
            exception_class_path,
            traceback,
        })
    }

    /// A task outcome in the form serde_json writes its internally tagged enum: the tag first.
    fn outcome(&mut self) -> Option<TaskOutcome> {
        let outcome = if self.maybe("{\"status\":\"SUCCESSFUL\",\"return_value\":") {
            TaskOutcome::Successful {
                return_value: self.json_value()?,
            }
        } else {
            self.literal("{\"status\":\"FAILED\",\"error\":")?;
            TaskOutcome::Failed {
                error: self.error()?,
            }
        };
        self.literal("}")?;
        Some(outcome)
    }

    fn task(&mut self) -> Option<TaskDescription> {
        self.literal("{\"path\":")?;
        let path = self.string()?;
        self.literal(",\"priority\":")?;
        let priority = self.integer()?;
        self.literal(",\"queue_name\":")?;
        let queue_name = self.string()?;
        self.literal(",\"backend\":")?;
        let backend = self.string()?;
        self.literal(",\"run_after\":")?;
        let run_after = self.time()?;
        self.literal(",\"takes_context\":")?;
        let takes_context = self.boolean()?;
        self.literal(",\"is_async\":")?;
        let is_async = self.boolean()?;
        self.literal(",\"max_attempts\":")?;
        let max_attempts = if self.maybe("null") {
            None
        } else {
            Some(self.integer()?)
        };
        self.literal(",\"timeout_secs\":")?;
        let timeout_secs = if self.maybe("null") {
            None
        } else {
            Some(self.value()?)
        };
        self.literal("}")?;
        Some(TaskDescription {
            path,
            priority,
            queue_name,
            backend,
            run_after,
            takes_context,
            is_async,
            max_attempts,
            timeout_secs,
        })
    }

    /// One completion (what follows it is the caller's); `started_at` may be left out, as
    /// serde_json writes it when `None`.
    fn completion(&mut self) -> Option<Completion> {
        self.literal("{\"id\":")?;
        let id = self.string()?;
        self.literal(",\"worker_id\":")?;
        let worker_id = self.string()?;
        self.literal(",\"lease_token\":")?;
        let lease_token = self.integer()?;
        self.literal(",\"outcome\":")?;
        let outcome = self.outcome()?;
        self.literal(",\"retry_at\":")?;
        let retry_at = self.time()?;
        let started_at = if self.maybe(",\"started_at\":") {
            self.time()?
        } else {
            None
        };
        self.literal("}")?;
        Some(Completion {
            id,
            worker_id,
            lease_token,
            outcome,
            retry_at,
            started_at,
        })
    }

    /// One acknowledgement (what follows it is the caller's).
    fn ack(&mut self) -> Option<CompletionAck> {
        self.literal("{\"id\":")?;
        let id = self.string()?;
        self.literal(",\"applied\":")?;
        let applied = self.boolean()?;
        self.literal("}")?;
        Some(CompletionAck { id, applied })
    }

    /// `read`, then the end of the text.
    fn whole<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        let value = read(self)?;
        self.end()?;
        Some(value)
    }

    /// A compact JSON array of `item`s.
    fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        self.literal("[")?;
        let mut items = Vec::new();
        if !self.maybe("]") {
            loop {
                items.push(item(self)?);
                if self.maybe("]") {
                    break;
                }
                self.literal(",")?;
            }
        }
        Some(items)
    }

    /// One request object (what follows it is the caller's).
    fn request(&mut self) -> Option<EnqueueRequest> {
        self.literal("{\"id\":")?;
        let id = self.string()?;
        self.literal(",\"task\":")?;
        let task = self.task()?;
        self.literal(",\"args\":")?;
        let args = self.args()?;
        self.literal(",\"kwargs\":")?;
        let kwargs = self.kwargs()?;
        self.literal("}")?;
        Some(EnqueueRequest {
            id,
            task,
            args,
            kwargs,
        })
    }

    fn status(&mut self) -> Option<TaskResultStatus> {
        let rest = self.rest();
        let status = TaskResultStatus::ALL.into_iter().find(|s| {
            let name = s.as_str().as_bytes();
            rest.len() > name.len() + 1
                && rest[0] == b'"'
                && rest[1..].starts_with(name)
                && rest[1 + name.len()] == b'"'
        })?;
        self.at += status.as_str().len() + 2;
        Some(status)
    }

    /// One claimed task object (what follows it is the caller's).
    fn claimed(&mut self) -> Option<ClaimedTask> {
        self.literal("{\"result\":")?;
        let result = self.result()?;
        self.literal(",\"lease_token\":")?;
        let lease_token = self.integer()?;
        self.literal(",\"max_attempts\":")?;
        let max_attempts = self.integer()?;
        self.literal("}")?;
        Some(ClaimedTask {
            result,
            lease_token,
            max_attempts,
        })
    }

    /// One result object (what follows it is the caller's).
    fn result(&mut self) -> Option<TaskResultData> {
        self.literal("{\"id\":")?;
        let id = self.string()?;
        self.literal(",\"task\":")?;
        let task = self.task()?;
        self.literal(",\"status\":")?;
        let status = self.status()?;
        self.literal(",\"enqueued_at\":")?;
        let enqueued_at = self.time()?;
        self.literal(",\"started_at\":")?;
        let started_at = self.time()?;
        self.literal(",\"finished_at\":")?;
        let finished_at = self.time()?;
        self.literal(",\"last_attempted_at\":")?;
        let last_attempted_at = self.time()?;
        self.literal(",\"args\":")?;
        let args = self.args()?;
        self.literal(",\"kwargs\":")?;
        let kwargs = self.kwargs()?;
        self.literal(",\"backend\":")?;
        let backend = self.string()?;
        self.literal(",\"errors\":")?;
        let errors = self.list(Cursor::error)?;
        self.literal(",\"worker_ids\":")?;
        let worker_ids = self.list(Self::string)?;
        self.literal(",\"return_value\":")?;
        let return_value = self.return_value()?;
        self.literal("}")?;
        Some(TaskResultData {
            id,
            task,
            status,
            enqueued_at,
            started_at,
            finished_at,
            last_attempted_at,
            args,
            kwargs,
            backend,
            errors,
            worker_ids,
            return_value,
        })
    }
}

/// Read a [`ResultDelta`]: the same as `serde_json::from_str`, faster on the compact form.
pub(super) fn delta_from_json(text: &str) -> serde_json::Result<ResultDelta> {
    fast_or_serde(text, Cursor::delta)
}

/// Read a JSON array of [`ResultDelta`]s: the same as `serde_json::from_str`, faster on the
/// compact form.
pub(super) fn delta_list_from_json(text: &str) -> serde_json::Result<Vec<ResultDelta>> {
    fast_or_serde(text, |c| c.list(Cursor::delta))
}

/// Read a [`RunEnqueued`]: the same as `serde_json::from_str`, faster on the compact form.
pub(super) fn run_enqueued_from_json(text: &str) -> serde_json::Result<RunEnqueued> {
    fast_or_serde(text, |c| {
        c.literal("{\"id\":")?;
        let id = c.string()?;
        c.literal(",\"state\":")?;
        let state = if c.maybe("null") {
            None
        } else {
            Some(c.delta()?)
        };
        c.literal("}")?;
        Some(RunEnqueued { id, state })
    })
}

/// The readers of the delta payloads (`delta.rs`).
impl Cursor<'_> {
    /// One delta object (what follows it is the caller's).
    fn delta(&mut self) -> Option<ResultDelta> {
        self.literal("{\"status\":")?;
        let status = self.status()?;
        self.literal(",\"enqueued_at\":")?;
        let enqueued_at = self.micros()?;
        self.literal(",\"started_at\":")?;
        let started_at = self.micros()?;
        self.literal(",\"finished_at\":")?;
        let finished_at = self.micros()?;
        self.literal(",\"last_attempted_at\":")?;
        let last_attempted_at = self.micros()?;
        self.literal(",\"errors\":")?;
        let errors = self.list(Cursor::error)?;
        self.literal(",\"worker_ids\":")?;
        let worker_ids = self.list(Self::string)?;
        self.literal(",\"return_value\":")?;
        let return_value = self.return_value()?;
        self.literal("}")?;
        Some(ResultDelta {
            status,
            enqueued_at,
            started_at,
            finished_at,
            last_attempted_at,
            errors,
            worker_ids,
            return_value,
        })
    }

    /// `null`, or a time as integer microseconds since the epoch, written plainly, in `i64`
    /// and in chrono's range.
    fn micros(&mut self) -> Option<Option<DateTime<Utc>>> {
        if self.maybe("null") {
            return Some(None);
        }
        let micros = self.simple_integer()?.as_i64()?;
        DateTime::from_timestamp_micros(micros).map(Some)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::wire::encode::tests::{ack, completion, outcome, request, result, simple_value};
    use proptest::prelude::*;

    /// Byte edits that keep the text UTF-8: ASCII JSON punctuation and letters.
    pub(in crate::wire) fn mutate(text: &str, edits: &[(usize, u8, u8)]) -> String {
        let mut bytes = text.as_bytes().to_vec();
        for &(at, op, byte) in edits {
            let byte = b"{}[]\",:0123456789-.eE+ntfalsrue\\ Z"[byte as usize % 34];
            let at = at % (bytes.len() + 1);
            match op % 3 {
                0 if at < bytes.len() && bytes[at].is_ascii() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ if at < bytes.len() && bytes[at].is_ascii() => {
                    bytes.remove(at);
                }
                _ => {}
            }
        }
        String::from_utf8(bytes).unwrap_or_default()
    }

    fn claimed(parts: Vec<(TaskResultData, i64, u32)>) -> Vec<ClaimedTask> {
        parts
            .into_iter()
            .map(|(result, lease_token, max_attempts)| ClaimedTask {
                result,
                lease_token,
                max_attempts,
            })
            .collect()
    }

    /// `ours` is what `serde_json::from_str` gives for `text`: the same value or error.
    pub(in crate::wire) fn same<T: PartialEq + std::fmt::Debug + DeserializeOwned>(
        ours: serde_json::Result<T>,
        text: &str,
    ) -> Result<(), TestCaseError> {
        match (ours, serde_json::from_str::<T>(text)) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
            (a, b) => prop_assert!(false, "{:?} vs {:?} for {}", a.is_ok(), b.is_ok(), text),
        }
        Ok(())
    }

    /// How many arrays and objects deep `value` nests (a scalar is 0).
    fn depth(value: &Value) -> usize {
        let inner = match value {
            Value::Array(items) => items.iter().map(depth).max(),
            Value::Object(map) => map.values().map(depth).max(),
            _ => return 0,
        };
        1 + inner.unwrap_or(0)
    }

    /// Whether `value` holds a float or a string (or key) that needs escaping: what the direct
    /// reader leaves to serde_json.
    fn needs_serde(value: &Value) -> bool {
        let escaped = |s: &str| s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20);
        match value {
            Value::Number(n) => n.is_f64(),
            Value::String(s) => escaped(s),
            Value::Array(items) => items.iter().any(needs_serde),
            Value::Object(map) => map.iter().any(|(k, v)| escaped(k) || needs_serde(v)),
            _ => false,
        }
    }

    /// The direct reader on all of `text`, with the text checked against serde_json: whenever
    /// it takes the text, serde_json reads the same value from it.
    fn simple(text: &str) -> Result<Option<Value>, TestCaseError> {
        let ours = Cursor::new(text).whole(|c| c.simple_value(SIMPLE_DEPTH));
        if let Some(value) = &ours {
            let theirs = serde_json::from_str::<Value>(text);
            prop_assert!(
                theirs.is_ok(),
                "{} read directly, refused by serde_json",
                text
            );
            prop_assert_eq!(value, &theirs.unwrap(), "{}", text);
        }
        Ok(ours)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        #[test]
        fn simple_values_are_read_directly_and_the_rest_left_to_serde_json(v in simple_value()) {
            let text = serde_json::to_string(&v).unwrap();
            let direct = depth(&v) <= SIMPLE_DEPTH && !needs_serde(&v);
            prop_assert_eq!(simple(&text)?.is_some(), direct, "{}", text);
            // Compared with what serde_json reads, not `v`: its floats do not all round-trip.
            let theirs = serde_json::from_str::<Value>(&text).unwrap();
            prop_assert_eq!(Cursor::new(&text).whole(Cursor::json_value), Some(theirs));
        }

        #[test]
        fn nesting_past_the_limit_is_left_to_serde_json(
            v in simple_value(),
            layers in prop::collection::vec(any::<bool>(), 0..12),
        ) {
            let v = layers.into_iter().fold(v, |inner, array| {
                if array {
                    Value::Array(vec![Value::Null, inner])
                } else {
                    Value::Object(Map::from_iter([("k".to_owned(), inner)]))
                }
            });
            let text = serde_json::to_string(&v).unwrap();
            let direct = depth(&v) <= SIMPLE_DEPTH && !needs_serde(&v);
            prop_assert_eq!(simple(&text)?.is_some(), direct, "{}", text);
            let theirs = serde_json::from_str::<Value>(&text).unwrap();
            prop_assert_eq!(Cursor::new(&text).whole(Cursor::json_value), Some(theirs));
        }

        #[test]
        fn an_edited_simple_value_reads_as_serde_json_reads_it(
            v in simple_value(),
            edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4),
        ) {
            let text = mutate(&serde_json::to_string(&v).unwrap(), &edits);
            simple(&text)?;
            let wrapped = format!("{{\"status\":\"SUCCESSFUL\",\"return_value\":{text}}}");
            same(TaskOutcome::from_json(&wrapped), &wrapped)?;
        }

        #[test]
        fn integers_in_values_read_as_serde_json_reads_them(
            n in "-?(0|[1-9][0-9]{0,20}|0[0-9]{1,3})[.eE]?[0-9]?",
            close in prop::sample::select(vec!["]", ",1]", "}"]),
        ) {
            simple(&n)?;
            simple(&format!("[{n}{close}"))?;
            simple(&format!("{{\"a\":{n}{close}"))?;
        }

        #[test]
        fn repeated_keys_read_as_serde_json_reads_them(
            entries in prop::collection::vec(("[ab]", simple_value()), 0..5),
        ) {
            let body: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("\"{k}\":{}", serde_json::to_string(v).unwrap()))
                .collect();
            let text = format!("{{{}}}", body.join(","));
            simple(&text)?;
            let wrapped = format!("{{\"status\":\"SUCCESSFUL\",\"return_value\":{text}}}");
            same(TaskOutcome::from_json(&wrapped), &wrapped)?;
        }

        #[test]
        fn an_outcome_reads_back(o in outcome()) {
            let text = o.to_json();
            prop_assert!(Cursor::new(&text).whole(Cursor::outcome).is_some(), "not on the fast path: {}", text);
            same(TaskOutcome::from_json(&text), &text)?;
        }

        #[test]
        fn an_edited_outcome_reads_as_serde_json_reads_it(
            o in outcome(),
            edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4),
        ) {
            let text = mutate(&o.to_json(), &edits);
            same(TaskOutcome::from_json(&text), &text)?;
        }

        #[test]
        fn plain_len_finds_the_first_end_of_a_plain_string(bytes in prop::collection::vec(any::<u8>(), 0..40)) {
            let wanted = bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            prop_assert_eq!(plain_len(&bytes), wanted);
        }

        #[test]
        fn a_result_reads_back(r in result()) {
            let text = r.to_json();
            prop_assert!(Cursor::new(&text).whole(Cursor::result).is_some(), "not on the fast path: {}", text);
            same(TaskResultData::from_json(&text), &text)?;
        }

        #[test]
        fn integers_read_as_serde_json_reads_them(n in "-?[0-9]{1,11}[,}.e]?") {
            let text = format!("{{\"id\":\"x\",\"task\":{{\"path\":\"p\",\"priority\":{n},\"queue_name\":\"q\",\"backend\":\"b\",\"run_after\":null,\"takes_context\":false,\"is_async\":false,\"max_attempts\":{n},\"timeout_secs\":null}},\"args\":[],\"kwargs\":{{}}}}");
            same(EnqueueRequest::from_json(&text), &text)?;
        }

        #[test]
        fn a_request_reads_back(q in request()) {
            let text = q.to_json();
            prop_assert!(Cursor::new(&text).whole(Cursor::request).is_some(), "not on the fast path: {}", text);
            same(EnqueueRequest::from_json(&text), &text)?;
        }

        #[test]
        fn lists_read_back(
            rs in prop::collection::vec(result(), 0..4),
            qs in prop::collection::vec(request(), 0..4),
        ) {
            let text = TaskResultData::list_to_json(&rs);
            prop_assert!(Cursor::new(&text).whole(|c| c.list(Cursor::result)).is_some(), "{}", text);
            same(TaskResultData::list_from_json(&text), &text)?;
            let text = EnqueueRequest::list_to_json(&qs);
            prop_assert!(Cursor::new(&text).whole(|c| c.list(Cursor::request)).is_some(), "{}", text);
            same(EnqueueRequest::list_from_json(&text), &text)?;
        }

        #[test]
        fn completions_and_acks_read_back(
            cs in prop::collection::vec(completion(), 0..4),
            acks in prop::collection::vec(ack(), 0..4),
        ) {
            let text = Completion::list_to_json(&cs);
            prop_assert!(Cursor::new(&text).whole(|c| c.list(Cursor::completion)).is_some(), "not on the fast path: {}", text);
            same(Completion::list_from_json(&text), &text)?;
            let text = CompletionAck::list_to_json(&acks);
            prop_assert!(Cursor::new(&text).whole(|c| c.list(Cursor::ack)).is_some(), "not on the fast path: {}", text);
            same(CompletionAck::list_from_json(&text), &text)?;
        }

        #[test]
        fn edited_completions_and_acks_read_as_serde_json_reads_them(
            cs in prop::collection::vec(completion(), 1..3),
            acks in prop::collection::vec(ack(), 1..3),
            edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4),
        ) {
            let text = mutate(&Completion::list_to_json(&cs), &edits);
            same(Completion::list_from_json(&text), &text)?;
            let text = mutate(&CompletionAck::list_to_json(&acks), &edits);
            same(CompletionAck::list_from_json(&text), &text)?;
        }

        #[test]
        fn claimed_tasks_read_back(
            tasks in prop::collection::vec((result(), any::<i64>(), any::<u32>()), 0..4),
        ) {
            let tasks = claimed(tasks);
            let text = ClaimedTask::list_to_json(&tasks);
            prop_assert_eq!(&text, &serde_json::to_string(&tasks).unwrap());
            same(ClaimedTask::list_from_json(&text), &text)?;
        }

        #[test]
        fn an_edited_claim_response_reads_as_serde_json_reads_it(
            tasks in prop::collection::vec((result(), 0..1000i64, 1..5u32), 1..3),
            edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4),
        ) {
            let tasks = claimed(tasks);
            let text = mutate(&ClaimedTask::list_to_json(&tasks), &edits);
            same(ClaimedTask::list_from_json(&text), &text)?;
        }

        #[test]
        fn an_edited_list_reads_as_serde_json_reads_it(
            rs in prop::collection::vec(result(), 0..3),
            qs in prop::collection::vec(request(), 0..3),
            edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4),
        ) {
            let text = mutate(&TaskResultData::list_to_json(&rs), &edits);
            same(TaskResultData::list_from_json(&text), &text)?;
            let text = mutate(&EnqueueRequest::list_to_json(&qs), &edits);
            same(EnqueueRequest::list_from_json(&text), &text)?;
        }

        #[test]
        fn an_edited_result_reads_as_serde_json_reads_it(
            r in result(),
            edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4),
        ) {
            let text = mutate(&r.to_json(), &edits);
            same(TaskResultData::from_json(&text), &text)?;
        }

        #[test]
        fn an_edited_request_reads_as_serde_json_reads_it(
            q in request(),
            edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4),
        ) {
            let text = mutate(&q.to_json(), &edits);
            same(EnqueueRequest::from_json(&text), &text)?;
        }
    }
}
