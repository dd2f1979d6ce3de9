//! Traces from enqueue to run.
//!
//! Every enqueue happens inside a `taskhost.enqueue` span and every run inside a `taskhost.run`
//! span, both at INFO level with target `taskhost` (a subscriber whose filter keeps them sees
//! them; the worker's default `warn` filter makes neither, so they cost nothing there). Events a
//! task logs, and tasks it enqueues, sit inside its run span.
//!
//! With the `opentelemetry` feature, the enqueue span's W3C trace context (`traceparent`, and
//! `tracestate` when there is one) is stored with the task, and the run span takes it as its
//! parent — in whichever process, on whichever machine, the task runs. Exported through
//! `tracing-opentelemetry`, an enqueue and the run it led to are one trace. Without the feature,
//! or when the enqueue span is not recorded by an OpenTelemetry layer, nothing is stored.

use taskhost_plugin_api::{TaskResultData, Text};
use tracing::Span;

/// Whether anyone records the INFO spans of target `taskhost`. Asked first, so that with no
/// subscriber that wants them (the default) an enqueue or a run makes no span at all: a
/// disabled span still costs its record, enter and drop calls (≈1.3k instructions per
/// Immediate enqueue + run, measured with callgrind), `Span::none()` almost nothing.
fn wanted() -> bool {
    tracing::enabled!(target: "taskhost", tracing::Level::INFO)
}

/// The span an enqueue of `path` on `backend` happens in; `task_id` is recorded once known.
pub(crate) fn enqueue_span(path: &str, backend: &str) -> Span {
    if !wanted() {
        return Span::none();
    }
    tracing::info_span!(
        target: "taskhost",
        "taskhost.enqueue",
        task = path,
        backend = backend,
        task_id = tracing::field::Empty,
    )
}

/// What a run span says of the run.
pub(crate) struct Run<'a> {
    pub path: &'a str,
    pub id: &'a str,
    pub queue: &'a str,
    pub backend: &'a str,
    /// 1 for the first attempt.
    pub attempt: usize,
    /// The trace context stored with the task at enqueue.
    pub context: Option<&'a str>,
}

impl<'a> Run<'a> {
    /// The run of a claimed result.
    pub(crate) fn of(data: &'a TaskResultData) -> Self {
        Self {
            path: &data.task.path,
            id: &data.id,
            queue: &data.task.queue_name,
            backend: &data.backend,
            attempt: data.worker_ids.len(),
            context: data.trace_context.as_deref(),
        }
    }
}

/// The span a run happens in: a child of its enqueue's span when the task carries a trace
/// context (and the `opentelemetry` feature is on).
pub(crate) fn run_span(run: Run<'_>) -> Span {
    if !wanted() {
        return Span::none();
    }
    let span = tracing::info_span!(
        target: "taskhost",
        "taskhost.run",
        task = run.path,
        task_id = run.id,
        queue = run.queue,
        backend = run.backend,
        attempt = run.attempt,
    );
    #[cfg(feature = "opentelemetry")]
    if let Some(context) = run.context {
        if !span.is_disabled() {
            otel::set_parent(&span, context);
        }
    }
    span
}

/// The W3C trace context of the current span, to be stored with a task enqueued now: a JSON
/// object of the `traceparent` (and `tracestate`) headers, or `None` when there is no trace to
/// continue (no `opentelemetry` feature, or no OpenTelemetry layer recording the span).
pub(crate) fn current_context() -> Option<Text> {
    #[cfg(feature = "opentelemetry")]
    {
        otel::inject(&Span::current())
    }
    #[cfg(not(feature = "opentelemetry"))]
    {
        None
    }
}

#[cfg(feature = "opentelemetry")]
mod otel {
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::TraceContextExt;
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use std::collections::HashMap;
    use taskhost_plugin_api::Text;
    use tracing::Span;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    /// The headers of `span`'s context, as stored; `None` for a context with no valid span.
    pub(super) fn inject(span: &Span) -> Option<Text> {
        if span.is_none() || span.is_disabled() {
            return None;
        }
        let context = span.context();
        if !context.span().span_context().is_valid() {
            return None;
        }
        let mut headers = HashMap::new();
        TraceContextPropagator::new().inject_context(&context, &mut headers);
        headers.retain(|_, value: &mut String| !value.is_empty());
        serde_json::to_string(&headers).ok().map(Text::from)
    }

    /// Make the stored context `stored` the parent of `span`; a context that cannot be read (a
    /// foreign writer's) is logged and ignored: the run is traced on its own.
    pub(super) fn set_parent(span: &Span, stored: &str) {
        let headers: HashMap<String, String> = match serde_json::from_str(stored) {
            Ok(headers) => headers,
            Err(e) => {
                tracing::debug!(
                    target: "taskhost",
                    "ignoring a stored trace context that is not a JSON object of W3C headers \
                     ({e}): {stored}"
                );
                return;
            }
        };
        let parent = TraceContextPropagator::new().extract(&headers);
        if parent.span().span_context().is_valid() {
            let _ = span.set_parent(parent);
        }
    }
}
