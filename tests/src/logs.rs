//! Capturing the `tracing` records a piece of code writes.

use parking_lot::Mutex;
use std::sync::Arc;
use tracing_subscriber::fmt::MakeWriter;

/// Log lines captured while a closure ran.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// The captured text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock()).into_owned()
    }

    /// The captured lines.
    pub fn lines(&self) -> Vec<String> {
        self.text().lines().map(str::to_string).collect()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Run `f` with every `tracing` event at or above `filter` (an `EnvFilter` string, e.g.
/// `taskhost=debug`) captured on this thread, without ANSI colours or timestamps.
pub fn capture<T>(filter: &str, f: impl FnOnce() -> T) -> (T, Captured) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(captured.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    (out, captured)
}
