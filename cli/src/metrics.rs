//! `worker --metrics ADDR`: the worker process's Prometheus exporter. It installs the
//! Prometheus recorder of the `metrics` facade (what `taskhost::metrics` records), serves its
//! text exposition at `http://ADDR/metrics`, and sets the queue gauges from the store every
//! `--metrics-queue-stats-secs`.

use super::WorkerArgs;
use axum::http::header;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::Arc;
use std::time::Duration;
use taskhost::metrics::{self as names, QueueGauges};
use taskhost::Backend;

/// The content type of Prometheus's text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How often the recorder's histogram samples are folded in (the exporter's own default).
const UPKEEP: Duration = Duration::from_secs(5);

/// With `--metrics`: listen on its address, install the recorder and serve `/metrics` there on
/// the current runtime, and start the queue gauges; print the address. Without it, nothing.
/// Fails naming the flag when the address cannot be listened on.
pub(crate) async fn start(args: &WorkerArgs) -> Result<(), String> {
    let Some(addr) = args.metrics else {
        return Ok(());
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--metrics {addr}: cannot listen there: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("--metrics {addr}: {e}"))?;
    let handle = install()?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP);
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let text = handle.render();
            async move { ([(header::CONTENT_TYPE, CONTENT_TYPE)], text) }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(target: "taskhost", "the --metrics server on {bound} stopped: {e}");
        }
    });
    if args.metrics_queue_stats_secs > 0 {
        // An alias that does not resolve, or is no queue store, is the worker's error to report.
        let backend = taskhost::task_backends().get(&args.backend);
        if let Some(backend) = backend.ok().filter(|b| b.supports_queue_store()) {
            let every = Duration::from_secs(args.metrics_queue_stats_secs);
            tokio::spawn(refresh_queue_gauges(backend, every));
        }
    }
    eprintln!("worker metrics on http://{bound}/metrics");
    Ok(())
}

/// The Prometheus recorder, installed for the process, with taskhost's histogram buckets and
/// help texts.
fn install() -> Result<PrometheusHandle, String> {
    let mut builder = PrometheusBuilder::new();
    for (name, buckets) in [
        (names::TASK_RUN_SECONDS, names::RUN_SECONDS_BUCKETS),
        (
            names::TASK_QUEUE_WAIT_SECONDS,
            names::QUEUE_WAIT_SECONDS_BUCKETS,
        ),
        (names::CLAIM_BATCH_SIZE, names::CLAIM_BATCH_SIZE_BUCKETS),
    ] {
        builder = builder
            .set_buckets_for_metric(Matcher::Full(name.to_string()), buckets)
            .map_err(|e| format!("--metrics: {e}"))?;
    }
    let handle = builder.install_recorder().map_err(|e| {
        format!("--metrics: cannot install the Prometheus recorder: {e} (has the application installed a metrics recorder of its own?)")
    })?;
    names::describe();
    Ok(handle)
}

/// Set `backend`'s queue gauges from its store every `every`, until the runtime ends. A read
/// that fails is logged once (the gauges keep their last values) until one works again.
async fn refresh_queue_gauges(backend: Arc<Backend>, every: Duration) {
    let mut gauges = QueueGauges::new(backend.alias(), backend.queues());
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        let store = Arc::clone(&backend);
        let Ok(read) = tokio::task::spawn_blocking(move || store.queue_stats()).await else {
            return;
        };
        match read {
            Ok(stats) => {
                gauges.record(&stats, chrono::Utc::now());
                if failing {
                    tracing::info!(target: "taskhost", "reading the queue stats of backend '{}' for --metrics works again", backend.alias());
                }
                failing = false;
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(target: "taskhost", "reading the queue stats of backend '{}' for --metrics failed; the queue gauges keep their last values: {e}", backend.alias());
                }
                failing = true;
            }
        }
    }
}
