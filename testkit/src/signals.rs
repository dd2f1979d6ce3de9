//! Signals: `task_enqueued` fires once per enqueued task, from the backend's class; a backend
//! that runs tasks sends `task_started` before `task_finished`.

use crate::context::{Check, Ctx, Verdict};
use crate::pass;
use parking_lot::Mutex;
use serde_json::{json, Map};
use std::sync::Arc;
use taskhost::signals::{self, ReceiverId, SignalEvent};
use taskhost_plugin_api::TaskResultStatus;

pub(crate) const CHECKS: &[Check] = &[Check {
    name: "signals",
    run: signals_check,
}];

/// Which signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Enqueued,
    Started,
    Finished,
}

/// One signal received for a task of the run.
#[derive(Clone, Debug)]
pub(crate) struct Event {
    pub kind: Kind,
    /// Order of arrival among the recorded events.
    pub seq: usize,
    pub id: String,
    pub sender: String,
    pub status: TaskResultStatus,
    pub has_enqueued_at: bool,
    pub has_finished_at: bool,
    pub worker_ids: usize,
}

type Events = Arc<Mutex<Vec<Event>>>;

/// Records the three task signals for tasks with one path (signals are process-global: other
/// code may send them meanwhile). Disconnects when finished or dropped.
pub(crate) struct Recorder {
    events: Events,
    receivers: Vec<(&'static signals::Signal, ReceiverId)>,
}

impl Recorder {
    /// Start recording signals for tasks whose path is `path`.
    pub fn start(path: &str) -> Self {
        let events: Events = Arc::default();
        let receivers = [
            (&signals::task_enqueued, Kind::Enqueued),
            (&signals::task_started, Kind::Started),
            (&signals::task_finished, Kind::Finished),
        ]
        .into_iter()
        .map(|(signal, kind)| {
            let (events, path) = (Arc::clone(&events), path.to_string());
            let id = signal.connect(move |e: &SignalEvent<'_>| {
                let r = e.task_result;
                if r.task().path != path {
                    return;
                }
                let mut events = events.lock();
                let seq = events.len();
                events.push(Event {
                    kind,
                    seq,
                    id: r.id().to_string(),
                    sender: e.sender.to_string(),
                    status: r.status(),
                    has_enqueued_at: r.enqueued_at().is_some(),
                    has_finished_at: r.finished_at().is_some(),
                    worker_ids: r.worker_ids().len(),
                });
            });
            (signal, id)
        })
        .collect();
        Self { events, receivers }
    }

    /// Stop recording; the events in arrival order.
    pub fn finish(mut self) -> Vec<Event> {
        self.disconnect();
        self.events.lock().clone()
    }

    fn disconnect(&mut self) {
        for (signal, id) in self.receivers.drain(..) {
            signal.disconnect(id);
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.disconnect();
    }
}

/// Three enqueues: one `task_enqueued` each (READY, `enqueued_at` set, sender = the class);
/// where the backend ran a task, `task_started` (RUNNING, a worker id) came after it and before
/// `task_finished` (finished, `finished_at` set).
fn signals_check(ctx: &Ctx) -> Verdict {
    let task = ctx.task("signals");
    let recorder = Recorder::start(&task.path);
    let mut results = Vec::new();
    for i in 0..3 {
        results.push(ctx.enqueue(&task, vec![json!(i)], Map::new())?);
    }
    let events = recorder.finish();
    for result in &results {
        let id = result.id();
        let of = |kind: Kind| -> Vec<&Event> {
            events
                .iter()
                .filter(|e| e.id == id && e.kind == kind)
                .collect()
        };
        let (enqueued, started, finished) =
            (of(Kind::Enqueued), of(Kind::Started), of(Kind::Finished));
        ensure!(
            enqueued.len() == 1,
            "task_enqueued was sent {} times for result {id} (expected once)",
            enqueued.len()
        );
        let e = enqueued[0];
        ensure!(
            e.sender == ctx.class,
            "task_enqueued for {id} came from sender '{}', not '{}'",
            e.sender,
            ctx.class
        );
        ensure!(
            e.status == TaskResultStatus::Ready && e.has_enqueued_at,
            "task_enqueued for {id} carried status {} (enqueued_at set: {}); expected READY \
             with enqueued_at",
            e.status,
            e.has_enqueued_at
        );
        if result.is_finished() {
            ensure!(
                started.len() == 1 && finished.len() == 1,
                "result {id} came back {} but task_started was sent {} times and task_finished \
                 {} times (expected once each)",
                result.status(),
                started.len(),
                finished.len()
            );
        }
        ensure!(
            started.len() <= 1 && finished.len() <= 1,
            "result {id}: task_started sent {} times, task_finished {} times",
            started.len(),
            finished.len()
        );
        if let Some(s) = started.first() {
            ensure!(
                s.seq > e.seq,
                "task_started for {id} was sent before task_enqueued"
            );
            ensure!(
                s.status == TaskResultStatus::Running && s.worker_ids > 0,
                "task_started for {id} carried status {} with {} worker id(s); expected \
                 RUNNING with the worker id appended",
                s.status,
                s.worker_ids
            );
        }
        if let Some(f) = finished.first() {
            let after = started.first().map_or(e.seq, |s| s.seq);
            ensure!(
                !started.is_empty() && f.seq > after,
                "task_finished for {id} was not preceded by task_started"
            );
            ensure!(
                f.status.is_finished() && f.has_finished_at,
                "task_finished for {id} carried status {} (finished_at set: {})",
                f.status,
                f.has_finished_at
            );
        }
    }
    pass()
}
