//! `/metrics`: the queue gauges of every configured queue store, in Prometheus's text format,
//! behind the same token or loopback check as every page.
//!
//! Each scrape reads `queue_stats` from every alias whose backend is a queue store and renders
//! the gauges with a recorder of its own: nothing is installed for the process (an application
//! that mounts the router keeps its own recorder), and nothing is left over from an earlier
//! scrape. An alias whose store cannot be read is left out (and logged): its series go absent.

use crate::pages::{blocking, Problem};
use crate::App;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::PrometheusBuilder;
use std::sync::Arc;
use taskhost::metrics::{describe, QueueGauges};
use taskhost::TaskBackends;

/// The content type of Prometheus's text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`.
pub(crate) async fn metrics(State(app): State<Arc<App>>) -> Result<impl IntoResponse, Problem> {
    let backends = Arc::clone(&app.backends);
    let text = blocking(move || Ok(render(&backends, Utc::now()))).await?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text))
}

/// The queue gauges of every queue-store alias, as read at `now`.
fn render(backends: &TaskBackends, now: DateTime<Utc>) -> String {
    let recorder = PrometheusBuilder::new().build_recorder();
    ::metrics::with_local_recorder(&recorder, || {
        describe();
        let aliases = match backends.aliases() {
            Ok(aliases) => aliases,
            Err(e) => {
                tracing::warn!(target: "taskhost", "/metrics: the configured backends cannot be listed: {e}");
                return;
            }
        };
        for alias in aliases {
            let read = backends.get(&alias).and_then(|backend| {
                if !backend.supports_queue_store() {
                    return Ok(None);
                }
                Ok(Some((backend.queue_stats()?, backend.queues().to_vec())))
            });
            match read {
                Ok(Some((stats, queues))) => QueueGauges::new(&alias, &queues).record(&stats, now),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(target: "taskhost", "/metrics: the queues of backend '{alias}' cannot be read, so they are left out: {e}")
                }
            }
        }
    });
    recorder.handle().render()
}
