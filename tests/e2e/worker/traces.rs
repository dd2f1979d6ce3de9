//! One trace from enqueue to finish, across processes: the test enqueues inside a span recorded
//! by an OpenTelemetry layer (an in-memory exporter); a real worker process (`tests/worker-app`,
//! which records its spans the same way and writes them to a file when it ends) runs the task.
//! The W3C trace context stored with the task makes the worker's `taskhost.run` span a child of
//! the test's `taskhost.enqueue` span, and the task's own span a child of the run.

use super::env::{output_text, Env, Store};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde_json::{json, Value};
use taskhost::TaskResultStatus;
use tracing_subscriber::layer::SubscriberExt;

const TRACED: &str = "traced";

/// A span the worker process wrote: name, trace id, span id, parent span id (hex).
fn worker_spans(file: &std::path::Path) -> Vec<[String; 4]> {
    std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("the worker wrote no trace file {}: {e}", file.display()))
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            ["name", "trace_id", "span_id", "parent_span_id"]
                .map(|k| v[k].as_str().unwrap().to_string())
        })
        .collect()
}

fn the<'a>(spans: &'a [[String; 4]], name: &str) -> &'a [String; 4] {
    let mut found = spans.iter().filter(|s| s[0] == name);
    let span = found
        .next()
        .unwrap_or_else(|| panic!("no span '{name}' in {spans:?}"));
    assert!(found.next().is_none(), "two spans '{name}' in {spans:?}");
    span
}

fn one_trace_from_enqueue_to_finish(store: Store) {
    let env = Env::new(store, "");
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::INFO)
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("e2e")));
    let id = tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!("request").in_scope(|| env.enqueue(TRACED, json!([41])))
    });
    provider.force_flush().unwrap();
    let ours: Vec<SpanData> = exporter.get_finished_spans().unwrap();
    let request = ours.iter().find(|s| s.name == "request").unwrap();
    let enqueue = ours.iter().find(|s| s.name == "taskhost.enqueue").unwrap();
    assert_eq!(enqueue.parent_span_id, request.span_context.span_id());
    let trace_id = enqueue.span_context.trace_id().to_string();

    let file = env.dir.path().join("worker-spans.jsonl");
    let out = env
        .command(&["worker", "--no-startup-delay", "--batch"])
        .env("TASKHOST_TEST_TRACE_FILE", &file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    let result = env.result(&id);
    assert_eq!(
        result.status(),
        TaskResultStatus::Successful,
        "{:?}",
        result.errors()
    );
    assert_eq!(result.raw_return_value(), Some(&json!(42)));

    let theirs = worker_spans(&file);
    let run = the(&theirs, "taskhost.run");
    let inside = the(&theirs, "traced.inside");
    assert_eq!(run[1], trace_id, "the run continues the enqueue's trace");
    assert_eq!(
        run[3],
        enqueue.span_context.span_id().to_string(),
        "the enqueue span is the run span's parent"
    );
    assert_eq!(inside[1], trace_id);
    assert_eq!(inside[3], run[2], "the task's own span is inside the run");
}

#[test]
fn sqlite_one_trace_from_enqueue_to_finish_across_processes() {
    one_trace_from_enqueue_to_finish(Store::Sqlite);
}

#[test]
fn postgres_one_trace_from_enqueue_to_finish_across_processes() {
    one_trace_from_enqueue_to_finish(Store::Postgres);
}
