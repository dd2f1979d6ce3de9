//! What a conformance run found: one named outcome per check.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How one check ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "reason", rename_all = "lowercase")]
pub enum Status {
    /// The backend did what the contract asks.
    Passed,
    /// It did not; the reason says what was expected and what happened.
    Failed(String),
    /// The check does not apply, e.g. `backend does not declare supports_queue_store`.
    Skipped(String),
}

/// One check and how it ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckOutcome {
    /// The check's name, e.g. `enqueue_result` (stable: scripts may match on it).
    pub name: String,
    /// How it ended.
    #[serde(flatten)]
    pub status: Status,
}

impl CheckOutcome {
    /// An outcome of check `name`.
    pub fn new(name: impl Into<String>, status: Status) -> Self {
        Self {
            name: name.into(),
            status,
        }
    }
}

/// Every check of a run, in the order they ran.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Report {
    /// The outcomes, in run order.
    pub checks: Vec<CheckOutcome>,
}

impl Report {
    pub(crate) fn push(&mut self, name: &str, status: Status) {
        self.checks.push(CheckOutcome::new(name, status));
    }

    fn count(&self, f: impl Fn(&Status) -> bool) -> usize {
        self.checks.iter().filter(|c| f(&c.status)).count()
    }

    /// How many checks passed.
    pub fn passed(&self) -> usize {
        self.count(|s| matches!(s, Status::Passed))
    }

    /// How many checks failed.
    pub fn failed(&self) -> usize {
        self.count(|s| matches!(s, Status::Failed(_)))
    }

    /// How many checks were skipped.
    pub fn skipped(&self) -> usize {
        self.count(|s| matches!(s, Status::Skipped(_)))
    }

    /// No check failed (and at least one ran).
    pub fn is_success(&self) -> bool {
        self.failed() == 0 && !self.checks.is_empty()
    }

    /// The outcome of the check `name`, if it ran.
    pub fn get(&self, name: &str) -> Option<&CheckOutcome> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// The report as pretty-printed JSON: `{"checks": [{"name", "status", "reason"?}…],
    /// "passed": n, "failed": n, "skipped": n}` (`status` is `passed`, `failed` or `skipped`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| {
            serde_json::json!({ "error": format!("could not encode the report: {e}") }).to_string()
        })
    }
}

impl Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            checks: &'a [CheckOutcome],
            passed: usize,
            failed: usize,
            skipped: usize,
        }
        View {
            checks: &self.checks,
            passed: self.passed(),
            failed: self.failed(),
            skipped: self.skipped(),
        }
        .serialize(serializer)
    }
}

impl fmt::Display for Report {
    /// One line per check (`PASS name`, `FAIL name: reason`, `SKIP name: reason`), then
    /// `N passed, N failed, N skipped`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for check in &self.checks {
            match &check.status {
                Status::Passed => writeln!(f, "PASS {}", check.name)?,
                Status::Failed(reason) => writeln!(f, "FAIL {}: {}", check.name, one_line(reason))?,
                Status::Skipped(reason) => {
                    writeln!(f, "SKIP {}: {}", check.name, one_line(reason))?
                }
            }
        }
        write!(
            f,
            "{} passed, {} failed, {} skipped",
            self.passed(),
            self.failed(),
            self.skipped()
        )
    }
}

/// A reason on one line: a multi-line message (a plugin's traceback) would break the format.
fn one_line(reason: &str) -> String {
    reason.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        Report {
            checks: vec![
                CheckOutcome::new("loads", Status::Passed),
                CheckOutcome::new("enqueue_result", Status::Failed("bad\nid".into())),
                CheckOutcome::new("claim", Status::Skipped("no queue store".into())),
            ],
        }
    }

    #[test]
    fn displays_one_line_per_check_and_a_summary() {
        assert_eq!(
            sample().to_string(),
            "PASS loads\nFAIL enqueue_result: bad id\nSKIP claim: no queue store\n\
             1 passed, 1 failed, 1 skipped"
        );
    }

    #[test]
    fn json_carries_status_reason_and_counts_and_reads_back() {
        let report = sample();
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(
            json["checks"][0],
            serde_json::json!({"name": "loads", "status": "passed"})
        );
        assert_eq!(
            json["checks"][1],
            serde_json::json!({"name": "enqueue_result", "status": "failed", "reason": "bad\nid"})
        );
        assert_eq!(
            (&json["passed"], &json["failed"], &json["skipped"]),
            (&1.into(), &1.into(), &1.into())
        );
        let back: Report = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn success_means_nothing_failed_and_something_ran() {
        assert!(!sample().is_success());
        assert!(!Report::default().is_success());
        let ok = Report {
            checks: vec![CheckOutcome::new("loads", Status::Passed)],
        };
        assert!(ok.is_success());
        assert_eq!(ok.get("loads").unwrap().status, Status::Passed);
    }
}
