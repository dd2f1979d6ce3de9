-- taskhost DatabaseBackend, PostgreSQL, version 12: the W3C trace context of the enqueue
-- (a JSON object of the `traceparent` and `tracestate` headers), stored with the task so that
-- its run continues the enqueue's trace (docs/decisions/024-trace-context-stored-with-the-task.md).
-- NULL for a task enqueued outside a recorded trace. No rewrite, no index.
ALTER TABLE taskhost_tasks ADD COLUMN trace_context text;
