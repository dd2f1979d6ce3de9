//! The threads a worker runs its sync task functions on.
//!
//! tokio's blocking pool parks a thread after every call and wakes one for the next, two
//! context switches per task; for short tasks those switches cost more than the tasks. Here a
//! thread that finishes a function takes the next one from a shared channel, spinning briefly
//! before it parks, so a busy worker runs task after task on warm threads. A thread is started
//! whenever no idle one is left — a sync task that overran its timeout keeps its thread (it
//! cannot be stopped), and the others go on without it — and an idle thread ends after
//! [`KEEP_ALIVE`]. Dropping the pool lets every thread end once its current function returns.

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// How long an idle thread waits for work before it ends.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

/// A growing set of threads sharing one job channel.
pub(crate) struct SyncPool {
    jobs: Sender<Job>,
    shared: Arc<Shared>,
}

struct Shared {
    receiver: Receiver<Job>,
    /// Threads waiting for a job that no submitted job has claimed yet.
    idle: AtomicUsize,
}

impl SyncPool {
    pub fn new() -> Self {
        let (jobs, receiver) = crossbeam_channel::unbounded();
        Self {
            jobs,
            shared: Arc::new(Shared {
                receiver,
                idle: AtomicUsize::new(0),
            }),
        }
    }

    /// Run `f` on a pool thread; the receiver gets its value (it is dropped unsent only if
    /// the thread could not be started).
    pub fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> oneshot::Receiver<R> {
        let (sender, receiver) = oneshot::channel();
        let job: Job = Box::new(move || {
            // The execution may have given up waiting (timeout): nobody to tell.
            let _ = sender.send(f());
        });
        let reserved = self
            .shared
            .idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if !reserved {
            let shared = Arc::clone(&self.shared);
            let started = std::thread::Builder::new()
                .name("taskhost-task".into())
                .spawn(move || shared.serve());
            if let Err(e) = started {
                tracing::error!(target: "taskhost", "could not start a thread for a sync task: {e}");
                return receiver;
            }
        }
        // The pool holds a receiver, so the channel is open.
        let _ = self.jobs.send(job);
        receiver
    }
}

impl Shared {
    fn serve(&self) {
        loop {
            match self.receiver.recv_timeout(KEEP_ALIVE) {
                Ok(job) => {
                    job();
                    self.idle.fetch_add(1, Ordering::AcqRel);
                }
                Err(RecvTimeoutError::Timeout) => {
                    // End unless every idle thread is spoken for by a job on its way.
                    let retired = self
                        .idle
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                        .is_ok();
                    if retired {
                        return;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn functions_return_their_values() {
        let pool = SyncPool::new();
        let answers: Vec<_> = (0..100).map(|i| pool.run(move || i * 2)).collect();
        for (i, answer) in answers.into_iter().enumerate() {
            assert_eq!(answer.await.unwrap(), i * 2);
        }
    }

    #[tokio::test]
    async fn blocked_functions_do_not_hold_up_the_others() {
        let pool = SyncPool::new();
        // Three functions that each wait until all three run at the same time (up to a
        // deadline, so a pool that runs them one after another fails rather than hangs).
        let running = Arc::new(AtomicUsize::new(0));
        let waiting: Vec<_> = (0..3)
            .map(|_| {
                let running = Arc::clone(&running);
                pool.run(move || {
                    running.fetch_add(1, Ordering::AcqRel);
                    let deadline = Instant::now() + Duration::from_secs(30);
                    while running.load(Ordering::Acquire) < 3 && Instant::now() < deadline {
                        std::thread::yield_now();
                    }
                    running.load(Ordering::Acquire) >= 3
                })
            })
            .collect();
        for w in waiting {
            assert!(
                w.await.unwrap(),
                "the three functions never ran at the same time"
            );
        }
    }
}
