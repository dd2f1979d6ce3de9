//! The worker's slots, the claimed tasks waiting in the worker for one (prefetch), and the cap
//! on what a worker holds unacknowledged (back-pressure).
//!
//! Every claimed task is *held* from its claim until the store has acknowledged its result (or
//! it is otherwise done with): running, waiting for a slot, or finished with its result waiting
//! to be written. A worker holds at most its cap ([`super::WorkerOptions::cap`]) and at most
//! `concurrency + prefetch` running or waiting; a claim asks for no more than both leave, and
//! none is made at 0 — the worker waits for a slot or an acknowledgement instead. So a store
//! slow to record results slows the claims down rather than piling up leases (each one a
//! re-run if the worker dies).
//!
//! Waiting tasks get a slot in claim order, handed straight from the task that frees it (no
//! round through the worker's loop, so a warm worker starts the next task at once). While tasks
//! are waiting, the next claim is made only once half the prefetch is free, so a busy worker
//! claims in batches (one write transaction for many tasks) instead of once per finished task.
//! With the adaptive prefetch the prefetch is [`Pace::target`], fed with each slot's run time
//! (from its hand-out to its return) and each claim's, and the tasks waiting beyond what it
//! keeps behind a long-running one are taken out of the queue to be handed back
//! ([`LocalQueue::hand_back`]), the last claimed first. A task is either taken out or handed a
//! slot, under one lock: a task handed back never starts here.

use super::options::Prefetch;
use super::pace::Pace;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, Notify};

/// The slots and the queue of tasks waiting for one.
pub(crate) struct LocalQueue {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled whenever a slot is freed or handed on, or a held task is let go (the worker
    /// may claim again).
    changed: Notify,
    concurrency: usize,
    /// `None`: adaptive ([`State::pace`]).
    prefetch: Option<usize>,
    /// The most tasks held at once.
    cap: usize,
}

struct State {
    /// The slots not in use (their numbers).
    free: Vec<usize>,
    /// When each slot was handed out, while it is in use (adaptive prefetch only).
    since: Vec<Option<Instant>>,
    /// The waiting tasks' ids and turns, in claim order.
    waiting: VecDeque<(String, oneshot::Sender<Slot>)>,
    /// Tasks claimed and not yet let go: running, waiting, or waiting for their result's ack.
    held: usize,
    pace: Pace,
}

/// A claimed task's place: its slot now, or its turn in the queue.
pub(crate) enum Ticket {
    /// A slot was free.
    Now(Slot),
    /// Wait for a slot; it is sent in claim order. Closed without one: the task was handed
    /// back ([`LocalQueue::hand_back`]).
    Queued(oneshot::Receiver<Slot>),
}

impl LocalQueue {
    /// `cap` is at least `concurrency` (see [`super::WorkerOptions::cap`]).
    pub fn new(concurrency: usize, prefetch: Prefetch, cap: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    free: (0..concurrency).rev().collect(),
                    since: vec![None; concurrency],
                    waiting: VecDeque::new(),
                    held: 0,
                    pace: Pace::new(concurrency, prefetch.ceiling()),
                }),
                changed: Notify::new(),
                concurrency,
                prefetch: match prefetch {
                    Prefetch::Auto => None,
                    Prefetch::Fixed(n) => Some(n),
                },
                cap: cap.max(1),
            }),
        }
    }

    /// A slot for the next claimed task (`id`), or its place behind the tasks already
    /// waiting; and the task's hold, to drop once the store has acknowledged its result.
    pub fn ticket(&self, id: &str) -> (Ticket, Held) {
        let mut state = self.shared.state.lock();
        state.held += 1;
        let held = Held {
            shared: Arc::clone(&self.shared),
        };
        if state.waiting.is_empty() {
            if let Some(index) = state.free.pop() {
                state.since[index] = self.shared.clock();
                let slot = Slot {
                    shared: Some(Arc::clone(&self.shared)),
                    index,
                };
                return (Ticket::Now(slot), held);
            }
        }
        let (sender, receiver) = oneshot::channel();
        state.waiting.push_back((id.to_string(), sender));
        (Ticket::Queued(receiver), held)
    }

    /// How many tasks the next claim asks for, or `None` when the worker should wait for
    /// [`LocalQueue::changed`] first: nothing may be claimed (the cap is reached), or tasks
    /// are waiting and less than half the prefetch is free.
    pub fn room(&self) -> Option<usize> {
        let shared = &*self.shared;
        let state = shared.state.lock();
        let prefetch = shared.prefetch.unwrap_or_else(|| {
            let oldest = state.oldest_start().map_or(Duration::ZERO, |s| s.elapsed());
            state.pace.target(oldest)
        });
        let waiting = state.waiting.len();
        let queued = waiting + (shared.concurrency - state.free.len());
        let room = shared
            .concurrency
            .saturating_add(prefetch)
            .saturating_sub(queued)
            .min(shared.cap.saturating_sub(state.held));
        let worth = room > 0 && (waiting == 0 || room >= (prefetch / 2).max(1));
        worth.then_some(room)
    }

    /// How many tasks a claim made now would start at once (the claim's `start_now`): the free
    /// slots when no task waits for one, else none. Slots only free up until the claimed tasks
    /// get their tickets, so at least this many of them get [`Ticket::Now`].
    pub fn free_slots(&self) -> usize {
        let state = self.shared.state.lock();
        match state.waiting.is_empty() {
            true => state.free.len(),
            false => 0,
        }
    }

    /// Take out of the queue the waiting tasks the adaptive prefetch no longer keeps (see
    /// [`Pace::keep`]), the last claimed first, and return their ids, for the worker to hand
    /// them back to the store. Their turns are closed: they will not start here. Nothing with
    /// a fixed prefetch.
    pub fn hand_back(&self) -> Vec<String> {
        if self.shared.prefetch.is_some() {
            return Vec::new();
        }
        let mut state = self.shared.state.lock();
        let waiting = state.waiting.len();
        let Some(oldest) = state.oldest_start().filter(|_| waiting > 0) else {
            return Vec::new();
        };
        let keep = state.pace.keep(oldest.elapsed(), waiting);
        state.waiting.drain(keep..).map(|(id, _turn)| id).collect()
    }

    /// When [`LocalQueue::hand_back`] will have tasks to take out if nothing else changes:
    /// tasks wait and the oldest running one is reaching the age that makes the target smaller
    /// than their count (`None`: not at the current averages, or a fixed prefetch).
    pub fn hand_back_at(&self) -> Option<Instant> {
        if self.shared.prefetch.is_some() {
            return None;
        }
        let state = self.shared.state.lock();
        let after = state.pace.hand_back_after(state.waiting.len())?;
        Some(state.oldest_start()? + after)
    }

    /// A claim took `took` (the adaptive prefetch's claim time).
    pub fn claimed(&self, took: Duration) {
        self.shared.state.lock().pace.claimed(took);
    }

    /// A claim found the queues empty. When nothing runs or waits either, the worker is idle:
    /// the adaptive prefetch starts again from nothing, and this returns true.
    pub fn idle(&self) -> bool {
        let mut state = self.shared.state.lock();
        let idle = state.waiting.is_empty() && state.free.len() == self.shared.concurrency;
        if idle {
            state.pace.idle();
        }
        idle
    }

    /// Tasks held now: claimed and not yet let go.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.shared.state.lock().held
    }

    /// Wait until a slot is freed or handed on (one signal sent while nobody waited counts
    /// for the next wait).
    pub async fn changed(&self) {
        self.shared.changed.notified().await
    }
}

impl State {
    /// When the longest-running task was handed its slot (adaptive prefetch only; `None`
    /// when nothing runs).
    fn oldest_start(&self) -> Option<Instant> {
        self.since.iter().flatten().min().copied()
    }
}

impl Shared {
    /// Now, when the prefetch is adaptive (only it uses the run times).
    fn clock(&self) -> Option<Instant> {
        self.prefetch.is_none().then(Instant::now)
    }

    /// Slot `index` was given back: its run time is measured, and it goes to the first task
    /// still waiting, else to the free ones.
    fn hand_on(self: Arc<Self>, index: usize) {
        let mut state = self.state.lock();
        let now = self.clock();
        if let (Some(since), Some(now)) = (state.since[index].take(), now) {
            state.pace.ran(now.saturating_duration_since(since));
        }
        let mut handed = false;
        while let Some((_, next)) = state.waiting.pop_front() {
            let slot = Slot {
                shared: Some(Arc::clone(&self)),
                index,
            };
            match next.send(slot) {
                Ok(()) => {
                    handed = true;
                    break;
                }
                // That task is gone (aborted): the slot goes to the next one, not back here.
                Err(mut unsent) => unsent.shared = None,
            }
        }
        if handed {
            state.since[index] = now;
        } else {
            state.free.push(index);
        }
        drop(state);
        self.changed.notify_one();
    }
}

/// A claimed task held by the worker; dropping it (once the store acknowledged the task's
/// result, or the worker is done with it otherwise) makes room for the next claim.
pub(crate) struct Held {
    shared: Arc<Shared>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.shared.state.lock().held -= 1;
        self.shared.changed.notify_one();
    }
}

/// A running task's slot; dropping it hands it to the next waiting task.
pub(crate) struct Slot {
    shared: Option<Arc<Shared>>,
    /// Which slot (its start time is `State::since[index]`).
    index: usize,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared.hand_on(self.index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;

    /// The slot of a ticket; its hold is let go at once (acknowledged).
    fn now((ticket, _held): (Ticket, Held)) -> Slot {
        match ticket {
            Ticket::Now(slot) => slot,
            Ticket::Queued(_) => panic!("expected a free slot"),
        }
    }

    /// The turn of a ticket; its hold is let go at once (acknowledged).
    fn queued((ticket, _held): (Ticket, Held)) -> oneshot::Receiver<Slot> {
        match ticket {
            Ticket::Queued(receiver) => receiver,
            Ticket::Now(_) => panic!("expected to wait"),
        }
    }

    #[test]
    fn finished_tasks_whose_result_is_not_acknowledged_count_toward_the_cap() {
        let local = LocalQueue::new(2, Prefetch::Fixed(0), 2);
        let (a, a_held) = local.ticket("t");
        let (b, b_held) = local.ticket("t");
        assert_eq!(local.held(), 2);
        // Both functions returned (slots given back), both results still being written.
        drop((a, b));
        assert_eq!(local.room(), None, "no claim while the cap is held");
        drop(a_held);
        assert_eq!(local.room(), Some(1));
        drop(b_held);
        assert_eq!((local.room(), local.held()), (Some(2), 0));
    }

    #[test]
    fn an_acknowledgement_wakes_a_worker_waiting_at_the_cap() {
        let local = LocalQueue::new(1, Prefetch::Fixed(0), 1);
        let (slot, held) = local.ticket("t");
        drop(slot);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        // The slot's own signal is consumed; the worker then waits at the cap.
        assert!(std::pin::pin!(local.changed()).poll(&mut cx).is_ready());
        assert_eq!(local.room(), None);
        let mut changed = std::pin::pin!(local.changed());
        assert!(changed.as_mut().poll(&mut cx).is_pending());
        drop(held);
        assert!(changed.as_mut().poll(&mut cx).is_ready());
        assert_eq!(local.room(), Some(1));
    }

    #[test]
    fn a_cap_above_concurrency_and_prefetch_leaves_their_limit() {
        let local = LocalQueue::new(1, Prefetch::Fixed(2), 6);
        let (_running, _h1) = local.ticket("t");
        let (_waiting, _h2) = local.ticket("t");
        assert_eq!(local.room(), Some(1));
    }

    #[test]
    fn without_prefetch_claims_are_for_free_slots_only() {
        let local = LocalQueue::new(2, Prefetch::Fixed(0), 2);
        assert_eq!(local.room(), Some(2));
        let a = now(local.ticket("t"));
        assert_eq!(local.room(), Some(1));
        let _b = now(local.ticket("t"));
        assert_eq!(local.room(), None);
        drop(a);
        assert_eq!(local.room(), Some(1));
    }

    /// A claim's `start_now` (decision 017): the tasks it claims up to the free slots get
    /// them at once, in claim order; with tasks waiting, none does.
    #[test]
    fn the_free_slots_are_what_a_claim_starts_at_once() {
        let local = LocalQueue::new(2, Prefetch::Fixed(4), 8);
        assert_eq!(local.free_slots(), 2);
        let a = now(local.ticket("a"));
        assert_eq!(local.free_slots(), 1);
        let b = now(local.ticket("b"));
        let mut c = queued(local.ticket("c"));
        assert_eq!(local.free_slots(), 0);
        drop(a);
        assert_eq!(
            local.free_slots(),
            0,
            "the freed slot went to the waiting task"
        );
        let c = c.try_recv().expect("c has a slot");
        drop((b, c));
        assert_eq!(local.free_slots(), 2);
    }

    #[test]
    fn waiting_tasks_get_slots_in_claim_order() {
        let local = LocalQueue::new(1, Prefetch::Fixed(4), 5);
        let first = now(local.ticket("t"));
        let (mut b, mut c) = (queued(local.ticket("t")), queued(local.ticket("t")));
        assert!(b.try_recv().is_err() && c.try_recv().is_err());
        drop(first);
        let slot = b
            .try_recv()
            .expect("the slot goes to the first waiting task");
        assert!(c.try_recv().is_err());
        drop(slot);
        drop(c.try_recv().expect("then to the next"));
        assert_eq!(local.room(), Some(5));
    }

    #[test]
    fn a_slot_skips_a_task_that_is_gone() {
        let local = LocalQueue::new(1, Prefetch::Fixed(2), 3);
        let first = now(local.ticket("t"));
        let gone = queued(local.ticket("t"));
        let mut next = queued(local.ticket("t"));
        drop(gone);
        drop(first);
        assert!(next.try_recv().is_ok());
    }

    #[test]
    fn with_tasks_waiting_the_next_claim_waits_for_half_the_prefetch() {
        let local = LocalQueue::new(2, Prefetch::Fixed(8), 10);
        assert_eq!(local.room(), Some(10));
        let running: Vec<_> = (0..2).map(|_| now(local.ticket("t"))).collect();
        let mut waiting: Vec<_> = (0..5).map(|_| queued(local.ticket("t"))).collect();
        // 2 running + 5 waiting of 10: 3 free, under half the prefetch.
        assert_eq!(local.room(), None);
        drop(running);
        // Their slots went to two waiting tasks: 2 running + 3 waiting, 5 free.
        let started: Vec<_> = waiting
            .iter_mut()
            .filter_map(|w| w.try_recv().ok())
            .collect();
        assert_eq!(started.len(), 2);
        assert_eq!(local.room(), Some(5));
    }

    #[test]
    fn the_adaptive_prefetch_claims_for_free_slots_until_it_has_measured_the_tasks() {
        let ceiling = Prefetch::Auto.ceiling();
        let local = LocalQueue::new(2, Prefetch::Auto, 4 + ceiling);
        assert_eq!(local.room(), Some(2), "nothing measured: free slots only");
        local.claimed(Duration::from_secs(1));
        let running = now(local.ticket("t"));
        assert_eq!(local.room(), Some(1));
        // A task far shorter than a claim: the buffer grows to its ceiling.
        drop(running);
        assert_eq!(local.room(), Some(2 + ceiling));
        // The queues were found empty while a task still ran: nothing changes.
        let running = now(local.ticket("t"));
        assert!(!local.idle());
        assert_eq!(local.room(), Some(1 + ceiling));
        // Found empty with nothing running: free slots only again.
        drop(running);
        assert!(local.idle());
        assert_eq!(local.room(), Some(2));
    }

    #[test]
    fn the_last_claimed_waiting_tasks_are_handed_back_and_never_start() {
        let local = LocalQueue::new(4, Prefetch::Auto, 8 + Prefetch::Auto.ceiling());
        local.claimed(Duration::from_millis(10));
        drop(now(local.ticket("measured")));
        let running: Vec<Slot> = (0..4).map(|_| now(local.ticket("r"))).collect();
        let mut turns: Vec<_> = ["a", "b", "c", "d", "e"]
            .into_iter()
            .map(|id| queued(local.ticket(id)))
            .collect();
        // Just started: nothing to hand back before the oldest has run two claims (20 ms).
        assert!(local.hand_back().is_empty());
        assert!(local.hand_back_at().unwrap() > Instant::now());
        // The oldest has run 25 ms: 2 × 4 × 10 ms ÷ 25 ms = 3 may stay.
        let started = Instant::now() - Duration::from_millis(25);
        local.shared.state.lock().since[running[0].index] = Some(started);
        assert!(local.hand_back_at().unwrap() <= Instant::now());
        assert_eq!(local.hand_back(), ["d", "e"]);
        assert!(local.hand_back().is_empty(), "taken out once");
        for (turn, handed_back) in turns.iter_mut().zip([false, false, false, true, true]) {
            let closed = matches!(turn.try_recv(), Err(oneshot::error::TryRecvError::Closed));
            assert_eq!(closed, handed_back);
        }
        // The slots go to the tasks that stayed, in claim order, and then back to the free ones.
        drop(running);
        let slots: Vec<Slot> = turns[..3]
            .iter_mut()
            .map(|t| t.try_recv().unwrap())
            .collect();
        drop(slots);
        assert_eq!(local.shared.state.lock().free.len(), 4);
    }

    #[test]
    fn a_fixed_prefetch_hands_nothing_back() {
        let local = LocalQueue::new(1, Prefetch::Fixed(4), 5);
        let running = now(local.ticket("r"));
        let _turn = queued(local.ticket("w"));
        local.shared.state.lock().since[running.index] = Some(Instant::now());
        assert!(local.hand_back().is_empty());
        assert_eq!(local.hand_back_at(), None);
    }

    #[test]
    fn a_freed_slot_wakes_the_worker_even_if_it_was_not_waiting_yet() {
        let local = LocalQueue::new(1, Prefetch::Fixed(0), 1);
        drop(now(local.ticket("t")));
        // Polled once: ready only if the signal sent before anyone waited was kept.
        let mut changed = std::pin::pin!(local.changed());
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(changed.as_mut().poll(&mut cx).is_ready());
        assert_eq!(local.room(), Some(1));
    }
}
