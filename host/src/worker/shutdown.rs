//! Stopping a worker: graceful first, forced second.

use tokio_util::sync::CancellationToken;

/// A worker's stop switches. The first [`Shutdown::request`] stops claiming and lets running
/// tasks finish (within the grace period); a second forces the stop.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    pub(crate) graceful: CancellationToken,
    pub(crate) force: CancellationToken,
}

impl Shutdown {
    /// Not stopping yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The first call asks for a graceful stop; any later call forces it.
    pub fn request(&self) {
        if self.graceful.is_cancelled() {
            self.force.cancel();
        } else {
            self.graceful.cancel();
        }
    }

    /// Force the stop now: unfinished tasks are released.
    pub fn force(&self) {
        self.graceful.cancel();
        self.force.cancel();
    }

    /// Whether a stop was requested.
    pub fn is_requested(&self) -> bool {
        self.graceful.is_cancelled()
    }

    /// Turn SIGINT and SIGTERM into [`Shutdown::request`] calls (Unix; Ctrl-C elsewhere).
    pub fn listen_for_signals(&self) -> tokio::task::JoinHandle<()> {
        let shutdown = self.clone();
        tokio::spawn(async move {
            let mut signals = Signals::new();
            loop {
                let name = signals.next().await;
                if shutdown.graceful.is_cancelled() {
                    tracing::warn!(target: "taskhost", "Received {name} - terminating running tasks.");
                } else {
                    tracing::warn!(target: "taskhost", "Received {name} - shutting down gracefully... (press Ctrl+C again to force)");
                }
                shutdown.request();
                if shutdown.force.is_cancelled() {
                    return;
                }
            }
        })
    }
}

/// The process's stop signals, registered once so none is missed between two waits.
struct Signals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let streams = match (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) {
                (Ok(int), Ok(term)) => Some((int, term)),
                _ => {
                    tracing::error!(target: "taskhost", "could not install SIGINT/SIGTERM handlers");
                    None
                }
            };
            Self { streams }
        }
        #[cfg(not(unix))]
        Self {}
    }

    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            let Some((int, term)) = self.streams.as_mut() else {
                return std::future::pending().await;
            };
            tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}
