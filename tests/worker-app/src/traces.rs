//! With `$TASKHOST_TEST_TRACE_FILE` set, the process records its spans through
//! `tracing-opentelemetry` into an in-memory exporter and, when it ends, writes each finished
//! span to that file as a JSON line (`name`, `trace_id`, `span_id`, `parent_span_id`), so a
//! test can follow one trace across processes.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use std::io::Write;
use tracing_subscriber::layer::SubscriberExt;

/// Writes the finished spans to the file when dropped.
pub struct TraceFile {
    path: std::path::PathBuf,
    exporter: InMemorySpanExporter,
    provider: SdkTracerProvider,
}

/// Install the tracing subscriber (before `cli_main!`, which then keeps it) when
/// `$TASKHOST_TEST_TRACE_FILE` is set.
pub fn install() -> Option<TraceFile> {
    let path = std::env::var_os("TASKHOST_TEST_TRACE_FILE")?;
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::INFO)
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("worker-app")));
    tracing::subscriber::set_global_default(subscriber).ok()?;
    Some(TraceFile {
        path: path.into(),
        exporter,
        provider,
    })
}

impl Drop for TraceFile {
    fn drop(&mut self) {
        let _ = self.provider.force_flush();
        let spans = self.exporter.get_finished_spans().unwrap_or_default();
        let mut lines = String::new();
        for span in spans {
            let line = serde_json::json!({
                "name": span.name,
                "trace_id": span.span_context.trace_id().to_string(),
                "span_id": span.span_context.span_id().to_string(),
                "parent_span_id": span.parent_span_id.to_string(),
            });
            lines.push_str(&format!("{line}\n"));
        }
        if let Ok(mut file) = std::fs::File::create(&self.path) {
            let _ = file.write_all(lines.as_bytes());
        }
    }
}
