// graphile-worker side of the side-by-side benchmarks (driven by bench/orchestrate.py).
// One JSON object on stdout per command. The database comes from $BENCH_PG_URL.
//
//   node graphile.mjs migrate
//   node graphile.mjs single --n 2000 --runs 5          addJob, one commit each
//   node graphile.mjs bulk --n 10000 --batch 1000 --runs 5   addJobs
//   node graphile.mjs fill --n 100000
//   node graphile.mjs latency --n 200 --log FILE [--jitter-ms 1000]   needs a worker running
//   node graphile.mjs worker --concurrency 4 [--tuned]  runs until SIGTERM, then prints
//                                                       its first job start and last job end
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { EventEmitter } from "node:events";
import { Logger, makeWorkerUtils, run, runMigrations } from "graphile-worker";

const connectionString = process.env.BENCH_PG_URL;
const [command, ...rest] = process.argv.slice(2);
const flags = {};
for (let i = 0; i < rest.length; i++) {
  const name = rest[i].replace(/^--/, "");
  if (i + 1 < rest.length && !rest[i + 1].startsWith("--")) flags[name] = rest[++i];
  else flags[name] = true;
}
const int = (name, fallback) => (flags[name] === undefined ? fallback : Number(flags[name]));
const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const taskList = {
  noop: async () => {},
  stamp: async (payload) => {
    const started = nowUs();
    if (process.env.BENCH_LATENCY_LOG) {
      appendFileSync(process.env.BENCH_LATENCY_LOG, `${started - payload.t0}\n`);
    }
  },
};

async function timedRuns(runs, body) {
  const seconds = [];
  for (let r = 0; r < runs; r++) {
    const start = performance.now();
    await body();
    seconds.push((performance.now() - start) / 1000);
  }
  return seconds;
}

async function fill(utils, n, batch) {
  for (let done = 0; done < n; done += batch) {
    const size = Math.min(batch, n - done);
    const specs = Array.from({ length: size }, (_, i) => ({
      identifier: "noop",
      payload: { a: done + i, b: 2 },
    }));
    await utils.addJobs(specs);
  }
}

async function withUtils(body) {
  const utils = await makeWorkerUtils({ connectionString });
  try {
    return await body(utils);
  } finally {
    await utils.release();
  }
}

async function main() {
  const n = int("n", 0);
  const runs = int("runs", 5);
  switch (command) {
    case "migrate":
      await runMigrations({ connectionString });
      return { ok: true };
    case "single":
      return withUtils(async (utils) => ({
        n,
        seconds: await timedRuns(runs, async () => {
          for (let i = 0; i < n; i++) await utils.addJob("noop", { a: i, b: 2 });
        }),
      }));
    case "bulk": {
      const batch = int("batch", 1000);
      return withUtils(async (utils) => ({
        n,
        batch,
        seconds: await timedRuns(runs, () => fill(utils, n, batch)),
      }));
    }
    case "fill":
      return withUtils(async (utils) => {
        const start = performance.now();
        await fill(utils, n, 5000);
        return { n, seconds: (performance.now() - start) / 1000 };
      });
    case "latency":
      return withUtils(async (utils) => {
        writeFileSync(flags.log, "");
        const lines = () => readFileSync(flags.log, "utf8").split("\n").length - 1;
        for (let seen = 0; seen <= n; seen++) {
          await utils.addJob("stamp", { t0: nowUs() });
          const deadline = performance.now() + 30000;
          while (lines() < seen + 1) {
            if (performance.now() > deadline) throw new Error(`probe ${seen} did not start`);
            await sleep(0.2);
          }
          await sleep(int("gap-ms", 5) + Math.random() * int("jitter-ms", 0));
        }
        const latency_us = readFileSync(flags.log, "utf8").trim().split("\n").slice(1).map(Number);
        return { n, latency_us };
      });
    case "worker":
      return worker();
    default:
      throw new Error(`unknown command ${command}`);
  }
}

async function worker() {
  const concurrency = int("concurrency", 1);
  const events = new EventEmitter();
  let firstStart = null;
  let lastEnd = null;
  let jobs = 0;
  events.on("job:start", () => {
    if (firstStart === null) firstStart = nowUs();
  });
  events.on("job:success", () => {
    lastEnd = nowUs();
    jobs++;
  });
  const options = {
    connectionString,
    concurrency,
    taskList,
    events,
    noHandleSignals: true,
    logger: quietLogger(),
  };
  if (flags.tuned) {
    // The documented batching options (https://worker.graphile.org/docs/performance). They
    // exist only as preset options: `run()` ignores them at the top level (with a warning), so
    // they go in `preset.worker`, with a pool large enough for the concurrency as documented.
    options.preset = {
      worker: {
        localQueue: { size: 500 },
        completeJobBatchDelay: 0,
        failJobBatchDelay: 0,
        maxPoolSize: Math.max(10, concurrency + 1),
      },
    };
  }
  const runner = await run(options);
  console.error("graphile worker ready");
  await new Promise((resolve) => process.once("SIGTERM", resolve));
  await runner.stop();
  return { concurrency, tuned: Boolean(flags.tuned), jobs, first_start_us: firstStart, last_end_us: lastEnd };
}

// Job logs would cost the worker time the other systems do not spend.
const quietLogger = () => new Logger(() => () => {});

main().then(
  (result) => {
    console.log(JSON.stringify(result));
    process.exit(0);
  },
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
