//! Queue limits across all workers (the option `queues`): at most `concurrency` tasks of a queue
//! RUNNING at once, and at most `rate.limit` claims of its tasks in any `rate.per` (a sliding
//! window). The store enforces them in the claim's transaction (`sqlite/limits.rs`,
//! `postgres/limits.rs`); see `docs/decisions/021-queue-limits.md`.
//!
//! What is shared by both stores lives here: the options, the per-queue log of recent starts
//! (stored as text in `taskhost_queue_limits.starts`), how many tasks a queue may still take,
//! and how the candidates of several queues are merged in claim order.

use crate::store::Claim;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The limits of one queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueLimit {
    /// At most this many of its tasks RUNNING at once (claimed and not finished, released or
    /// rescued), across every worker.
    pub concurrency: Option<u32>,
    /// At most this many claims of its tasks in any window of this length.
    pub rate: Option<Rate>,
}

/// A rate limit: `limit` starts per `per_micros`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Starts allowed in any window.
    pub limit: u32,
    /// The window's length, in microseconds.
    pub per_micros: i64,
}

/// Every limited queue of one backend alias, by name (sorted: the order claims lock them in).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Limits(Arc<BTreeMap<String, QueueLimit>>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    #[serde(default)]
    concurrency: Option<u64>,
    #[serde(default)]
    rate: Option<RawRate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRate {
    limit: u64,
    per: Value,
}

/// How `per` is written, for messages.
const PER_HELP: &str = "a duration such as \"500ms\", \"30s\", \"1m\", \"1h\" or \"1d\", or a \
                        number of seconds";

impl Limits {
    /// Parse the option `queues`: a table of queue name → `{ concurrency = N, rate = { limit =
    /// N, per = "1m" } }`. The error names the key at fault (`queues.<name>.<field>`).
    pub fn parse(value: &Value) -> Result<Self, String> {
        let Value::Object(queues) = value else {
            return Err(format!(
                "option 'queues' must be a table of queue names, e.g. \
                 `[tasks.default.options.queues.emails]` with `concurrency = 5`, got {value}."
            ));
        };
        let mut limits = BTreeMap::new();
        for (name, raw) in queues {
            let key = format!("queues.{name}");
            if name.is_empty() {
                return Err("option 'queues' has an empty queue name.".into());
            }
            let raw: RawQueue = serde_json::from_value(raw.clone()).map_err(|e| {
                format!(
                    "option '{key}': {e}. A queue takes `concurrency = N` and \
                     `rate = {{ limit = N, per = \"1m\" }}`."
                )
            })?;
            let concurrency = raw
                .concurrency
                .map(|n| positive(n, &format!("{key}.concurrency")))
                .transpose()?;
            let rate = raw
                .rate
                .map(|r| {
                    Ok::<_, String>(Rate {
                        limit: positive(r.limit, &format!("{key}.rate.limit"))?,
                        per_micros: per_micros(&r.per).ok_or_else(|| {
                            format!(
                                "option '{key}.rate.per' must be {PER_HELP}, greater than \
                                 zero and at most 30 days, got {}.",
                                r.per
                            )
                        })?,
                    })
                })
                .transpose()?;
            if concurrency.is_none() && rate.is_none() {
                return Err(format!(
                    "option '{key}' sets no limit: give it `concurrency = N`, \
                     `rate = {{ limit = N, per = \"1m\" }}`, or both (or remove it)."
                ));
            }
            limits.insert(name.clone(), QueueLimit { concurrency, rate });
        }
        Ok(Self(Arc::new(limits)))
    }

    /// Whether no queue is limited.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The limit of `queue`, if it has one.
    pub fn get(&self, queue: &str) -> Option<&QueueLimit> {
        self.0.get(queue)
    }

    /// Every limited queue, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &QueueLimit)> {
        self.0.iter()
    }

    /// The limited queues `claim` may take from, sorted by name; empty when none (the claim
    /// then takes today's path, without a look at limits).
    pub fn in_claim(&self, claim: &Claim) -> Vec<String> {
        if self.0.is_empty() {
            return Vec::new();
        }
        self.0
            .keys()
            .filter(|q| {
                claim.queues.as_ref().is_none_or(|qs| qs.contains(q))
                    && !claim.exclude_queues.contains(q)
            })
            .cloned()
            .collect()
    }
}

fn positive(n: u64, key: &str) -> Result<u32, String> {
    u32::try_from(n)
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| format!("option '{key}' must be an integer ≥ 1, got {n}."))
}

/// The longest rate window (a day's starts per queue fit in the log comfortably).
const MAX_PER_MICROS: i64 = 30 * 86_400 * 1_000_000;

/// `per` in microseconds: a number of seconds or a duration text.
fn per_micros(value: &Value) -> Option<i64> {
    let secs = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(text) => {
            let text = text.trim();
            let split = text
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(text.len());
            let (number, unit) = text.split_at(split);
            let number: f64 = number.parse().ok()?;
            let unit = match unit.trim() {
                "ms" => 0.001,
                "" | "s" => 1.0,
                "m" | "min" => 60.0,
                "h" => 3600.0,
                "d" => 86_400.0,
                _ => return None,
            };
            number * unit
        }
        _ => return None,
    };
    let micros = secs * 1e6;
    (micros.is_finite() && micros >= 1.0 && micros <= MAX_PER_MICROS as f64)
        .then_some(micros as i64)
}

/// Claims a rate log keeps at their exact time (see [`Starts::record`]).
const EXACT_ENTRIES: usize = 1024;

/// The starts of one queue still inside its rate window: (host time in µs, how many tasks the
/// claim at that time took), oldest first. Stored as JSON text, `[[µs, n], …]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Starts(Vec<(i64, u32)>);

impl Starts {
    /// Read the stored text; unreadable text counts as no starts (logged).
    pub fn decode(text: &str) -> Self {
        match serde_json::from_str(text) {
            Ok(starts) => Self(starts),
            Err(err) => {
                tracing::warn!("unreadable queue-limit starts {text:?} (counted as none): {err}");
                Self::default()
            }
        }
    }

    /// The text to store.
    pub fn encode(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "[]".into())
    }

    /// Starts after `since` (µs).
    fn since(&self, since: i64) -> u64 {
        self.0
            .iter()
            .filter(|(at, _)| *at > since)
            .map(|(_, n)| u64::from(*n))
            .sum()
    }

    /// Record `taken` starts at `now` (µs), forgetting those out of `rate`'s window. The log
    /// stays bounded: once it holds [`EXACT_ENTRIES`] claims, further starts are stamped at the
    /// end of their 1/[`EXACT_ENTRIES`]-of-the-window slot (merged per slot): they count for up
    /// to one slot longer than exact (stricter, never looser).
    pub fn record(&mut self, rate: &Rate, now: i64, taken: u32) {
        self.0.retain(|(at, _)| *at > now - rate.per_micros);
        if taken == 0 {
            return;
        }
        let mut at = now;
        if self.0.len() >= EXACT_ENTRIES {
            let slot = (rate.per_micros / EXACT_ENTRIES as i64).max(1);
            at = (now.saturating_add(slot - 1)).div_euclid(slot) * slot;
        }
        match self.0.last_mut() {
            Some((last, n)) if *last == at => *n = n.saturating_add(taken),
            _ => self.0.push((at, taken)),
        }
    }
}

impl QueueLimit {
    /// How many more tasks the queue may take now (µs), with `running` RUNNING and `starts`.
    pub fn allowance(&self, running: u64, starts: &Starts, now: i64) -> u32 {
        let mut allowed = u64::from(u32::MAX);
        if let Some(concurrency) = self.concurrency {
            allowed = allowed.min(u64::from(concurrency).saturating_sub(running));
        }
        if let Some(rate) = &self.rate {
            let recent = starts.since(now - rate.per_micros);
            allowed = allowed.min(u64::from(rate.limit).saturating_sub(recent));
        }
        allowed as u32
    }
}

/// One limited queue's limits and what uses them now (the answer of
/// [`crate::backend::QUEUE_LIMITS`], a JSON array of these, sorted by queue).
#[derive(serde::Serialize, Clone, Debug, PartialEq)]
pub struct LimitUsage {
    /// The queue.
    pub queue_name: String,
    /// Its concurrency limit, if any.
    pub concurrency: Option<u32>,
    /// Its tasks RUNNING now (claimed and not finished, handed back or rescued).
    pub running: u64,
    /// Its rate limit's claims per window, if any.
    pub rate_limit: Option<u32>,
    /// Its rate window, in seconds.
    pub rate_per_secs: Option<f64>,
    /// Claims of its tasks inside the current window (with a rate limit).
    pub started_in_window: Option<u64>,
}

impl Limits {
    /// Every limited queue's usage, from the RUNNING counts and stored starts (by queue).
    pub fn usage(
        &self,
        running: &std::collections::HashMap<String, i64>,
        starts: &std::collections::HashMap<String, String>,
        now: i64,
    ) -> Vec<LimitUsage> {
        self.0
            .iter()
            .map(|(queue, limit)| {
                let log = starts
                    .get(queue)
                    .map(|t| Starts::decode(t))
                    .unwrap_or_default();
                LimitUsage {
                    queue_name: queue.clone(),
                    concurrency: limit.concurrency,
                    running: running.get(queue).copied().unwrap_or(0).max(0) as u64,
                    rate_limit: limit.rate.as_ref().map(|r| r.limit),
                    rate_per_secs: limit.rate.as_ref().map(|r| r.per_micros as f64 / 1e6),
                    started_in_window: limit.rate.as_ref().map(|r| log.since(now - r.per_micros)),
                }
            })
            .collect()
    }
}

/// A ready task a limited claim may take, with its place in claim order (priority first, then
/// `run_after` — none sorts last —, then `enqueued_at`, then id).
#[derive(Clone, Debug)]
pub struct Candidate {
    /// Its id, as the store writes it.
    pub id: String,
    /// Its queue.
    pub queue: String,
    /// Priority (higher first).
    pub priority: i32,
    /// `run_after` in µs, `i64::MAX` for none.
    pub run_after: i64,
    /// `enqueued_at` in µs.
    pub enqueued_at: i64,
}

/// The first `limit` candidates in claim order (each queue's candidates already respect its
/// allowance), with how many each limited queue gets.
pub fn pick(mut candidates: Vec<Candidate>, limit: u32) -> Vec<Candidate> {
    candidates.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.run_after.cmp(&b.run_after))
            .then(a.enqueued_at.cmp(&b.enqueued_at))
            .then_with(|| a.id.cmp(&b.id))
    });
    candidates.truncate(limit as usize);
    candidates
}

/// How many of `taken` are of `queue`.
pub fn taken_from(taken: &[Candidate], queue: &str) -> u32 {
    taken.iter().filter(|c| c.queue == queue).count() as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn queues_parse_with_both_limits() {
        let limits = Limits::parse(&json!({
            "emails": {"concurrency": 5, "rate": {"limit": 100, "per": "1m"}},
            "reports": {"rate": {"limit": 2, "per": 0.5}},
        }))
        .unwrap();
        assert_eq!(
            limits.get("emails"),
            Some(&QueueLimit {
                concurrency: Some(5),
                rate: Some(Rate {
                    limit: 100,
                    per_micros: 60_000_000
                })
            })
        );
        assert_eq!(
            limits
                .get("reports")
                .unwrap()
                .rate
                .as_ref()
                .unwrap()
                .per_micros,
            500_000
        );
        for (text, micros) in [
            ("250ms", 250_000),
            ("2h", 7_200_000_000),
            ("1.5s", 1_500_000),
        ] {
            assert_eq!(per_micros(&json!(text)), Some(micros), "{text}");
        }
    }

    #[test]
    fn bad_queue_limits_name_the_key() {
        let cases = [
            (json!(5), "option 'queues' must be a table of queue names"),
            (
                json!({"emails": {"concurency": 5}}),
                "option 'queues.emails': unknown field `concurency`",
            ),
            (
                json!({"emails": {"concurrency": 0}}),
                "option 'queues.emails.concurrency' must be an integer ≥ 1, got 0.",
            ),
            (
                json!({"emails": {"rate": {"limit": 5, "per": "1 fortnight"}}}),
                "option 'queues.emails.rate.per' must be a duration",
            ),
            (
                json!({"emails": {"rate": {"limit": 5}}}),
                "option 'queues.emails': missing field `per`",
            ),
            (
                json!({"emails": {}}),
                "option 'queues.emails' sets no limit",
            ),
        ];
        for (value, expected) in cases {
            let message = Limits::parse(&value).unwrap_err();
            assert!(message.starts_with(expected), "{message}");
        }
    }

    #[test]
    fn the_allowance_is_the_tighter_limit_over_a_sliding_window() {
        let limit = QueueLimit {
            concurrency: Some(3),
            rate: Some(Rate {
                limit: 4,
                per_micros: 1000,
            }),
        };
        let mut starts = Starts::default();
        assert_eq!(limit.allowance(1, &starts, 0), 2);
        starts.record(limit.rate.as_ref().unwrap(), 10, 3);
        assert_eq!(limit.allowance(0, &starts, 500), 1);
        assert_eq!(limit.allowance(3, &starts, 500), 0);
        // The window slides: the start at 10 is out of it at 1010.
        assert_eq!(limit.allowance(0, &starts, 1010), 3);
        starts.record(limit.rate.as_ref().unwrap(), 1010, 1);
        assert_eq!(Starts::decode(&starts.encode()), Starts(vec![(1010, 1)]));
    }

    /// A busy queue with a large limit: the log stays bounded, every start is still counted,
    /// and none leaves the window before it should.
    #[test]
    fn the_log_of_a_busy_queue_stays_bounded_and_strict() {
        let rate = Rate {
            limit: 1_000_000,
            per_micros: 1_000_000,
        };
        let mut starts = Starts::default();
        for i in 0..10_000 {
            starts.record(&rate, i * 50, 1);
        }
        assert!(
            starts.0.len() <= 2 * EXACT_ENTRIES + 1,
            "{}",
            starts.0.len()
        );
        // The last 10,000 × 50 µs = 500 ms of claims are all inside the 1 s window.
        assert_eq!(starts.since(499_950 - rate.per_micros), 10_000);
        // Exactly a window after the first claims, at least as many still count as exact.
        let now = 1_200_000;
        let exact = (0..10_000)
            .filter(|i| i * 50 > now - rate.per_micros)
            .count() as u64;
        assert!(starts.since(now - rate.per_micros) >= exact);
        assert!(starts.since(now - rate.per_micros) <= exact + 20 * 2);
    }
}
