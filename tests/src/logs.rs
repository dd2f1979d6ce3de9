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

/// One line per event, as Django's log records: `LEVEL target: message fields`, without the
/// time, colours or the spans it happened in (`taskhost.enqueue`, `taskhost.run`).
struct Records;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for Records
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        write!(writer, "{:>5} {}: ", meta.level(), meta.target())?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Run `f` with every `tracing` event at or above `filter` (an `EnvFilter` string, e.g.
/// `taskhost=debug`) captured on this thread, without ANSI colours, timestamps or spans.
pub fn capture<T>(filter: &str, f: impl FnOnce() -> T) -> (T, Captured) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(captured.clone())
        .with_ansi(false)
        .event_format(Records)
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    (out, captured)
}
