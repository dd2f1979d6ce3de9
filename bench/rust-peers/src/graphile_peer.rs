//! graphile_worker, the Rust port of graphile-worker (PostgreSQL only).

use crate::{client_command, run_noop, run_stamp, url, worker_report, Command};
use anyhow::Context;
use graphile_worker::{
    IntoTaskHandlerResult, JobSpec, LocalQueueConfig, TaskHandler, WorkerContext, WorkerOptions,
    WorkerUtils,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Duration;

#[derive(Clone, Serialize, Deserialize)]
struct Noop {
    a: i64,
    b: i64,
}

impl TaskHandler for Noop {
    const IDENTIFIER: &'static str = "noop";

    async fn run(self, _ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        run_noop(self.a, self.b);
        Ok::<(), String>(())
    }
}

#[derive(Clone, Serialize, Deserialize)]
struct Stamp {
    t0: i64,
}

impl TaskHandler for Stamp {
    const IDENTIFIER: &'static str = "stamp";

    async fn run(self, _ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        run_stamp(self.t0);
        Ok::<(), String>(())
    }
}

struct Client(WorkerUtils);

impl crate::Client for Client {
    async fn noop(&mut self, a: i64, b: i64) -> anyhow::Result<()> {
        self.0.add_job(Noop { a, b }, JobSpec::default()).await?;
        Ok(())
    }

    async fn noop_batch(&mut self, first: i64, size: u64) -> anyhow::Result<()> {
        // `add_jobs`: one statement for the batch.
        let spec = JobSpec::default();
        let jobs: Vec<_> = (first..first + size as i64)
            .map(|a| (Noop { a, b: 2 }, &spec))
            .collect();
        self.0.add_jobs(&jobs).await?;
        Ok(())
    }

    async fn stamp(&mut self, t0: i64) -> anyhow::Result<()> {
        self.0.add_job(Stamp { t0 }, JobSpec::default()).await?;
        Ok(())
    }
}

pub(crate) async fn main(command: Command) -> anyhow::Result<Value> {
    let url = url()?;
    match command {
        Command::Worker { concurrency, tuned } => {
            let mut options = WorkerOptions::default()
                .database_url(&url)
                .concurrency(concurrency)
                .define_job::<Noop>()
                .define_job::<Stamp>();
            if tuned {
                // The "Throughput-oriented worker" of its worker-options page, with a pool large
                // enough for the concurrency (its default is 20 connections).
                options = options
                    .poll_interval(Duration::from_millis(500))
                    .complete_job_batch_delay(Duration::from_millis(5))
                    .fail_job_batch_delay(Duration::from_millis(5))
                    .local_queue(
                        LocalQueueConfig::default()
                            .with_size(100)
                            .with_ttl(Duration::from_secs(60)),
                    )
                    .max_pg_conn((concurrency as u32 + 1).max(20));
            }
            // It stops on SIGTERM by itself (its default OS signal handling).
            let worker = options.init().await.context("graphile_worker init")?;
            worker.run().await.context("graphile_worker run")?;
            Ok(worker_report(concurrency, tuned))
        }
        command => {
            let pool = sqlx_pool(&url).await?;
            let utils = WorkerUtils::new(pool, graphile_worker::Schema::default());
            if let Command::Migrate = command {
                utils.migrate().await?;
                return Ok(json!({"ok": true}));
            }
            client_command(&mut Client(utils), command).await
        }
    }
}

async fn sqlx_pool(url: &str) -> anyhow::Result<apalis_postgres::PgPool> {
    // apalis-postgres re-exports the same sqlx `PgPool` graphile_worker takes.
    Ok(apalis_postgres::PgPool::connect(url).await?)
}
