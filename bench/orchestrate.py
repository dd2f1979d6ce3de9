"""Side-by-side benchmarks: taskhost against django-tasks (+ django-tasks-db), graphile-worker,
apalis and graphile_worker (Rust).

Run through `bench/run`, which installs the peers and builds taskhost and the Rust peers first.
Every system runs the same workloads on the same machine in the same run, each through its own
client:

- `taskhost-bench` (benches/src/bin/taskhost-bench.rs): the real plugin files, the real worker;
- `djangoapp/bench_django.py` + `manage.py db_worker`;
- `graphile.mjs` (enqueue, and a worker process built on `run()`);
- `rust-peers/` (`rust-peers apalis …`, `rust-peers graphile …`: the same commands).

Raw results go to `results/<UTC timestamp>.json`; `results/latest.md` holds the tables and
`results/drain.png` the chart.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PG = "postgresql://postgres@127.0.0.1:5432"
PYTHON = str(HERE / ".venv" / "bin" / "python")
DJANGO = HERE / "djangoapp"
# The Rust peers' binary (apalis, graphile_worker), built by `bench/run`.
RUST_PEERS = HERE / "rust-peers" / "target" / "release" / "rust-peers"

# Store settings: (name, kind, synchronous setting).
STORES = {
    "sqlite-normal": ("sqlite", "NORMAL"),
    "sqlite-full": ("sqlite", "FULL"),
    "pg-sync-on": ("postgres", "on"),
    "pg-sync-off": ("postgres", "off"),
}
# taskhost's "tuned" worker: claimed tasks that may wait in the worker (`--prefetch`), as
# graphile-worker's tuned `localQueue` (500) holds jobs ahead. 1024 rather than 256: at low
# concurrency a claim of ≈512 rows keeps the worker fed while the next claim runs (PostgreSQL,
# 1 worker × 1, 100,000 no-op tasks: 18.5–18.9k/s with 256, 23.8–28.2k/s with 1024, 2026-12-03).
TASKHOST_TUNED_PREFETCH = 1024
# Latency probes land at a random point of the longest wait of a worker that is not woken by the
# enqueue (its poll interval), by (system, worker options, store kind); absent: woken, 10 ms.
LATENCY_WAIT_MS = {
    ("django-tasks", "default", "sqlite"): 1000,
    ("django-tasks", "default", "postgres"): 1000,
    ("apalis", "default", "sqlite"): 30_000,
    ("apalis", "default", "postgres"): 30_000,
    ("apalis", "tuned", "sqlite"): 500,
}
# apalis on SQLite: the most tasks of one drain (its drains slow down as they grow).
APALIS_SQLITE_DRAIN_MOST = 10_000
# The full drain matrix runs on these; the others get `--secondary-concurrency` only.
PRIMARY = ("sqlite-normal", "pg-sync-on")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(cmd: list[str], env: dict, cwd: Path | None = None) -> str:
    """Run a command to its end; its stdout, or an error with the end of its stderr."""
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def run_json(cmd: list[str], env: dict, cwd: Path | None = None) -> dict:
    """Run a client command and parse the one JSON object it prints last."""
    return json.loads(run(cmd, env, cwd).strip().splitlines()[-1])


def memory_kib(pid: int) -> dict:
    """VmRSS and VmHWM of a process, in KiB (empty once it has exited)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {k: int(fields[k].split()[0]) for k in ("VmRSS", "VmHWM") if k in fields}


def summary(values: list[float]) -> dict:
    """Median and spread of several runs."""
    ordered = sorted(values)
    median = statistics.median(ordered)
    return {
        "median": median,
        "min": ordered[0],
        "max": ordered[-1],
        "mad": statistics.median(abs(v - median) for v in ordered),
        "runs": len(ordered),
    }


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def pg_admin(sql: str, db: str = "postgres") -> None:
    with psycopg.connect(f"{PG}/{db}", autocommit=True) as conn:
        conn.execute(sql)


def pg_scalar(db: str, sql: str):
    with psycopg.connect(f"{PG}/{db}", autocommit=True) as conn:
        return conn.execute(sql).fetchone()


class System:
    """One system under test: how to reset its store, run its client and its workers."""

    name = ""
    database = ""  # PostgreSQL database of this system
    table = ""  # the table holding its tasks

    def __init__(self, store: str, work: Path, args):
        self.store = store
        self.kind, self.sync = STORES[store]
        self.work = work
        self.args = args
        self.sqlite_path = work / f"{self.name}-{store}.db"

    # -- store -----------------------------------------------------------------------------
    def reset(self) -> None:
        """An empty, migrated store with this run's synchronous setting."""
        if self.kind == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.sqlite_path}{suffix}").unlink(missing_ok=True)
        else:
            pg_admin(f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")
            pg_admin(f"CREATE DATABASE {self.database}")
            pg_admin(f"ALTER DATABASE {self.database} SET synchronous_commit = {self.sync}")
        self.migrate()

    def clear(self) -> None:
        """Remove every task (between drains)."""
        if self.kind == "sqlite":
            self.reset()
        else:
            pg_admin(f"TRUNCATE {self.table}", self.database)
            pg_admin(f"VACUUM {self.table}", self.database)

    def migrate(self) -> None:
        pass

    # -- per-system commands ---------------------------------------------------------------
    def env(self) -> dict:
        return dict(os.environ)

    def client(self, *cmd: str) -> dict:
        raise NotImplementedError

    def worker_cmd(self, concurrency: int, variant: str, batch: bool) -> list[str]:
        raise NotImplementedError

    def drain_window(self, outputs: list[str]) -> tuple[float, float, int]:
        """(first start, last end) in seconds and the number of successful tasks, from the
        store's own `started_at`/`finished_at`."""
        sql = (f"SELECT min(started_at), max(finished_at), count(*) FROM {self.table} "
               "WHERE status = 'SUCCESSFUL'")
        if self.kind == "sqlite":
            with sqlite3.connect(self.sqlite_path) as conn:
                first, last, count = conn.execute(sql).fetchone()
            return self.sqlite_seconds(first), self.sqlite_seconds(last), count
        first, last, count = pg_scalar(self.database, sql)
        return first.timestamp(), last.timestamp(), count

    def sqlite_seconds(self, stored) -> float:
        """A time as this system stores it in SQLite, as Unix seconds."""
        raise NotImplementedError

    def batch_mode(self) -> bool:
        """Whether a worker exits by itself once the queue is empty."""
        return True

    def drain_start(self, plan: dict, variant: str) -> tuple[float, int]:
        """The rate (tasks/s) the first drain is sized for, and the fewest tasks of any drain
        with these worker options."""
        return plan["drain_first_n"] / plan["drain_seconds"], plan["drain_first_n"]

    def drain_most(self, plan: dict) -> int:
        """The most tasks of one drain."""
        return plan["drain_n"]

    def queue_empty(self) -> bool:
        raise NotImplementedError


class Taskhost(System):
    name = "taskhost"
    database = "bench_taskhost"
    table = "taskhost_tasks"

    def __init__(self, store, work, args):
        super().__init__(store, work, args)
        self.binary = str(args.target_dir / "release" / "taskhost-bench")
        self.config = work / f"tasks-{store}.toml"
        self.write_config(with_synchronous=self.kind == "sqlite")

    def write_config(self, with_synchronous: bool) -> None:
        if self.kind == "sqlite":
            options = f'url = "sqlite://{self.sqlite_path}"\n'
            if with_synchronous:
                options += f'synchronous = "{self.sync}"\n'
        else:
            options = f'url = "{PG}/{self.database}"\n'
        self.config.write_text(
            f'plugin_dirs = ["{self.args.target_dir / "release"}"]\n\n'
            '[tasks.immediate]\nbackend = "taskhost.backends.immediate.ImmediateBackend"\n'
            "queues = []\n\n"
            '[tasks.dummy]\nbackend = "taskhost.backends.dummy.DummyBackend"\nqueues = []\n\n'
            '[tasks.db]\nbackend = "taskhost.backends.database.DatabaseBackend"\nqueues = []\n'
            f"[tasks.db.options]\n{options}"
        )

    def supported(self) -> bool:
        """Whether this build has the store setting (SQLite `synchronous` is newer)."""
        if self.kind != "sqlite":
            return True
        try:
            self.reset()
            return True
        except RuntimeError as error:
            if "synchronous" not in str(error):
                raise
        if self.sync != "NORMAL":
            return False
        # NORMAL is the plugin's built-in setting: measure it without the option.
        self.write_config(with_synchronous=False)
        return True

    def env(self):
        return {**os.environ, "TASKHOST_CONFIG": str(self.config), "RUST_LOG": "warn"}

    def migrate(self):
        run([self.binary, "migrate", "--backend", "db"], self.env())

    def client(self, *cmd):
        return run_json([self.binary, *cmd], self.env())

    def worker_cmd(self, concurrency, variant, batch):
        cmd = [self.binary, "worker", "--backend", "db", "--queue", "*", "--no-startup-delay",
               "--concurrency", str(concurrency)]
        if variant == "tuned":
            cmd += ["--interval", "0.01", "--prefetch", str(TASKHOST_TUNED_PREFETCH)]
        return cmd + (["--batch"] if batch else [])

    def sqlite_seconds(self, stored):
        return stored / 1e6  # INTEGER µs


class DjangoTasks(System):
    name = "django-tasks"
    database = "bench_django"
    table = "django_tasks_database_dbtaskresult"

    def env(self):
        db = f"sqlite:{self.sqlite_path}" if self.kind == "sqlite" else f"postgres:{self.database}"
        return {**os.environ, "BENCH_DJANGO_DB": db, "BENCH_SQLITE_SYNC": self.sync,
                "DJANGO_SETTINGS_MODULE": "benchapp.settings"}

    def migrate(self):
        run([PYTHON, "manage.py", "migrate", "-v0"], self.env(), DJANGO)

    def client(self, *cmd):
        return run_json([PYTHON, "bench_django.py", *cmd], self.env(), cwd=DJANGO)

    def worker_cmd(self, concurrency, variant, batch):
        assert concurrency == 1, "db_worker runs one task at a time"
        cmd = [PYTHON, "manage.py", "db_worker", "--queue-name", "*", "-v0"]
        if variant == "tuned":
            cmd += ["--interval", "0.01", "--no-startup-delay"]
        return cmd + (["--batch"] if batch else [])

    def sqlite_seconds(self, stored):
        # Django keeps UTC datetimes as text in SQLite.
        return dt.datetime.fromisoformat(stored).replace(tzinfo=dt.timezone.utc).timestamp()


class Graphile(System):
    name = "graphile-worker"
    database = "bench_graphile"
    table = "graphile_worker._private_jobs"

    def env(self):
        return {**os.environ, "BENCH_PG_URL": f"{PG}/{self.database}"}

    def migrate(self):
        self.client("migrate")

    def client(self, *cmd):
        return run_json(["node", "graphile.mjs", *cmd], self.env(), cwd=HERE)

    def worker_cmd(self, concurrency, variant, batch):
        cmd = ["node", str(HERE / "graphile.mjs"), "worker", "--concurrency", str(concurrency)]
        return cmd + (["--tuned"] if variant == "tuned" else [])

    def batch_mode(self):
        return False

    def queue_empty(self):
        return not pg_scalar(self.database, f"SELECT EXISTS (SELECT 1 FROM {self.table})")[0]

    def drain_window(self, outputs):
        # Finished jobs are deleted: the workers report their first start and last end.
        return worker_reported_window(outputs)


def worker_reported_window(outputs: list[str]) -> tuple[float, float, int]:
    """(first start, last end, tasks run) from what the worker processes printed when they
    stopped (each: `first_start_us`, `last_end_us`, `jobs`)."""
    reports = [json.loads(out.strip().splitlines()[-1]) for out in outputs]
    reports = [r for r in reports if r["first_start_us"] is not None]
    return (min(r["first_start_us"] for r in reports) / 1e6,
            max(r["last_end_us"] for r in reports) / 1e6,
            sum(r["jobs"] for r in reports))


class RustPeer(System):
    """A peer built from bench/rust-peers (`rust-peers SYSTEM COMMAND`): the same commands and
    worker report as graphile.mjs."""

    subcommand = ""

    def __init__(self, store, work, args):
        super().__init__(store, work, args)
        self.binary = str(RUST_PEERS)

    def env(self):
        url = (f"sqlite://{self.sqlite_path}" if self.kind == "sqlite"
               else f"{PG}/{self.database}")
        return {**os.environ, "BENCH_URL": url, "BENCH_SQLITE_SYNC": self.sync}

    def migrate(self):
        self.client("migrate")

    def client(self, *cmd):
        return run_json([self.binary, self.subcommand, *cmd], self.env(), cwd=HERE)

    def worker_cmd(self, concurrency, variant, batch):
        cmd = [self.binary, self.subcommand, "worker", "--concurrency", str(concurrency)]
        return cmd + (["--tuned"] if variant == "tuned" else [])

    def batch_mode(self):
        return False

    def drain_window(self, outputs):
        return worker_reported_window(outputs)


class Apalis(RustPeer):
    name = "apalis"
    subcommand = "apalis"
    database = "bench_apalis"

    @property
    def table(self):
        return "Jobs" if self.kind == "sqlite" else "apalis.jobs"

    def clear(self):
        if self.kind == "sqlite":
            self.reset()
        else:
            # Its workers table stays: each worker process registers under its own name.
            pg_admin("TRUNCATE apalis.jobs", self.database)
            pg_admin("VACUUM apalis.jobs", self.database)

    def drain_most(self, plan):
        if self.kind == "postgres":
            return plan["drain_n"]
        # On SQLite its cost per task grows with the queue and with the tasks its worker has
        # done (bench/README.md): a 100,000-task drain would take the better part of an hour.
        return min(plan["drain_n"], APALIS_SQLITE_DRAIN_MOST)

    def queue_empty(self):
        # Done once every task's completion is stored ('Done'): apalis keeps finished tasks.
        sql = f"SELECT EXISTS (SELECT 1 FROM {self.table} WHERE status <> 'Done')"
        if self.kind == "sqlite":
            with sqlite3.connect(self.sqlite_path) as conn:
                return not conn.execute(sql).fetchone()[0]
        return not pg_scalar(self.database, sql)[0]


class GraphileRs(RustPeer):
    name = "graphile-worker-rs"
    subcommand = "graphile"
    database = "bench_graphile_rs"
    table = "graphile_worker._private_jobs"

    def clear(self):
        # Its job retirements table references the jobs.
        pg_admin(f"TRUNCATE {self.table} CASCADE", self.database)
        pg_admin(f"VACUUM {self.table}", self.database)

    def drain_start(self, plan, variant):
        if variant == "tuned":
            return super().drain_start(plan, variant)
        # Its default worker fetches one job per slot per wake-up (a NOTIFY, or its 1 s poll):
        # a stored queue drains at about `concurrency` jobs per second per worker
        # (bench/README.md), so the first drain is sized for that.
        return 1.0, 0

    def queue_empty(self):
        return not pg_scalar(self.database, f"SELECT EXISTS (SELECT 1 FROM {self.table})")[0]


def start_workers(system: System, count: int, concurrency: int, variant: str, batch: bool,
                  extra_env: dict | None = None) -> list[subprocess.Popen]:
    """Worker processes; their output goes to files (a full pipe would stall them)."""
    env = {**system.env(), **(extra_env or {})}
    cwd = DJANGO if isinstance(system, DjangoTasks) else HERE
    procs = []
    for i in range(count):
        out = open(system.work / f"worker-{i}.out", "w+")
        err = open(system.work / f"worker-{i}.err", "w+")
        proc = subprocess.Popen(system.worker_cmd(concurrency, variant, batch), env=env, cwd=cwd,
                                stdout=out, stderr=err, text=True)
        proc.files = (out, err)
        procs.append(proc)
    return procs


class WorkerFailed(RuntimeError):
    """A worker process exited with an error; `reason`: the last line it printed on stderr."""

    def __init__(self, code: int, stderr: str):
        lines = stderr.strip().splitlines() or ["(nothing on stderr)"]
        self.reason = lines[-1][-200:]
        super().__init__(f"worker exited {code}:\n{stderr[-3000:]}")


def stop(workers: list[subprocess.Popen]) -> list[str]:
    """SIGTERM each worker, wait, and return what each printed on stdout."""
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    outputs = []
    for worker in workers:
        worker.wait(timeout=60)
        out, err = worker.files
        out.seek(0)
        err.seek(0)
        if worker.returncode not in (0, -signal.SIGTERM):
            failed = WorkerFailed(worker.returncode, err.read())
            for other in workers:
                if other.poll() is None:
                    other.kill()
                    other.wait()
            raise failed
        outputs.append(out.read())
        out.close()
        err.close()
    return outputs


def measure_drain(system: System, n: int, workers: int, concurrency: int, variant: str) -> dict:
    """Fill `n` no-op tasks, start the workers, time first start → last end."""
    system.clear()
    system.client("fill", "--n", str(n))
    procs = start_workers(system, workers, concurrency, variant, batch=system.batch_mode())
    peak_rss = 0
    deadline = time.monotonic() + max(600, n / 20)
    while True:
        for proc in procs:
            peak_rss = max(peak_rss, memory_kib(proc.pid).get("VmRSS", 0))
        if system.batch_mode():
            if all(proc.poll() is not None for proc in procs):
                break
        elif system.queue_empty() or any(proc.poll() is not None for proc in procs):
            break  # drained, or a worker died (`stop` reports it)
        if time.monotonic() > deadline:
            stop(procs)
            raise RuntimeError(f"{system.name} drain of {n} did not finish in time")
        time.sleep(0.05)
    hwm = max(memory_kib(proc.pid).get("VmHWM", 0) for proc in procs)
    outputs = stop(procs)
    first, last, count = system.drain_window(outputs)
    if count != n:
        raise RuntimeError(f"{system.name}: {count} of {n} tasks successful after the drain")
    seconds = last - first
    return {"n": n, "workers": workers, "concurrency": concurrency, "variant": variant,
            "seconds": seconds, "tasks_per_s": n / seconds, "peak_rss_kib": peak_rss,
            "hwm_kib_while_running": hwm}


def measure_latency(system: System, samples: int, variant: str, jitter_ms: int) -> dict:
    """One idle worker; `samples` probes one at a time, each after a random pause of up to
    `jitter_ms` (a polling worker's interval: probes land anywhere in it); also the idle
    worker's memory."""
    system.clear()
    probe_log = system.work / f"latency-{system.name}.log"
    procs = start_workers(system, 1, 1, variant, batch=False,
                          extra_env={"BENCH_LATENCY_LOG": str(probe_log)})
    try:
        result = system.client("latency", "--n", str(samples), "--log", str(probe_log),
                               "--jitter-ms", str(jitter_ms))
        idle = memory_kib(procs[0].pid)
    finally:
        stop(procs)
    latency_ms = [us / 1000 for us in result["latency_us"]]
    return {"variant": variant, "samples": len(latency_ms),
            "p50_ms": percentile(latency_ms, 50), "p99_ms": percentile(latency_ms, 99),
            "max_ms": max(latency_ms), "idle_rss_kib": idle.get("VmRSS"),
            "idle_hwm_kib": idle.get("VmHWM")}


def rates(result: dict) -> dict:
    return {**summary([result["n"] / s for s in result["seconds"]]), "n": result["n"]}


def calibrated_enqueue(system: System, command: str, args, plan: dict, step: int = 1) -> dict:
    """Enqueue runs sized to take about `plan["enqueue_seconds"]` each (at most
    `plan["enqueue_n"]` tasks): one small untimed probe run first gives the rate."""
    extra = ["--batch", "1000"] if step > 1 else []
    probe = system.client(command, "--n", str(max(step, 20)), "--runs", "1", *extra)
    rate = probe["n"] / probe["seconds"][0]
    n = int(min(plan["enqueue_n"], max(step, 20, rate * plan["enqueue_seconds"])))
    n -= n % step
    return rates(system.client(command, "--n", str(n), "--runs", str(args.runs), *extra))


def bench_store(system: System, args, plan: dict) -> dict:
    """Every database workload of one system on one store setting."""
    out = {"system": system.name, "store": system.store}
    log(f"{system.name} on {system.store}: reset, enqueue")
    system.reset()
    ours = system.name == "taskhost"
    out["single_enqueue_per_s"] = calibrated_enqueue(
        system, "enqueue-single" if ours else "single", args, plan)
    out["bulk_enqueue_per_s"] = calibrated_enqueue(
        system, "enqueue-bulk" if ours else "bulk", args, plan, step=1000)
    out["latency"] = []
    for variant in ("default", "tuned"):
        # The interval a probe waits for at most when nothing wakes the worker: taskhost is woken
        # on both stores (PostgreSQL LISTEN/NOTIFY, SQLite a file watch: decision 011),
        # graphile-worker (both) by LISTEN/NOTIFY, apalis's tuned PostgreSQL worker by
        # LISTEN/NOTIFY; django-tasks-db polls every second by default; apalis's default worker
        # looks for new tasks only at its 30 s heartbeat, its tuned SQLite worker every 0.5 s
        # (bench/README.md).
        wait_ms = LATENCY_WAIT_MS.get((system.name, variant, system.kind), 0)
        if wait_ms >= 30_000 and system.store not in PRIMARY:
            continue  # the heartbeat's latency is the same on every store: primary ones only
        samples = (plan["latency_heartbeat_n"] if wait_ms >= 30_000
                   else plan["latency_poll_n"] if wait_ms >= 1000 else plan["latency_n"])
        log(f"{system.name} on {system.store}: latency ({variant}, {samples} probes)")
        out["latency"].append(measure_latency(system, samples, variant, wait_ms or 10))
    out["drains"] = []
    concurrencies = plan["concurrency"] if system.store in PRIMARY else plan["secondary"]
    if system.name == "django-tasks":
        concurrencies = [1]
    # django-tasks-db's tuning changes its idle polling only, so its drains use the defaults.
    variants = ("default",) if system.name == "django-tasks" else ("default", "tuned")
    # Each drain is sized to take about plan["drain_seconds"] at the rate of the one before,
    # and to give every slot (workers × concurrency) at least 5 tasks.
    rate = None  # after the first drain: the rate of the one before
    for variant in variants:
        start_rate, fewest = system.drain_start(plan, variant)
        rate = rate or start_rate
        for workers in (1, 2):
            for concurrency in concurrencies:
                for _ in range(args.drain_runs):
                    n = int(min(system.drain_most(plan), max(fewest, 5 * workers * concurrency,
                                                             rate * plan["drain_seconds"])))
                    log(f"{system.name} on {system.store}: drain {n} ({variant}, {workers} "
                        f"worker(s) × concurrency {concurrency})")
                    try:
                        drain = measure_drain(system, n, workers, concurrency, variant)
                        rate = drain["tasks_per_s"]
                        # Sized from a much slower drain before it (a peer's default worker
                        # before its tuned one), a drain can end in a burst too short to
                        # measure; it is measured again at the size its own rate calls for.
                        again = int(min(system.drain_most(plan), rate * plan["drain_seconds"]))
                        if n / rate < plan["drain_seconds"] / 4 and again > n:
                            log(f"{system.name} on {system.store}: {n} tasks took "
                                f"{n / rate:.3f} s; again with {again}")
                            drain = measure_drain(system, again, workers, concurrency, variant)
                            rate = drain["tasks_per_s"]
                    except WorkerFailed as failure:
                        # A peer's worker that dies is a result, not the end of the run.
                        log(f"{system.name} on {system.store}: {failure}")
                        drain = {"n": n, "workers": workers, "concurrency": concurrency,
                                 "variant": variant, "error": failure.reason}
                    out["drains"].append(drain)
    return out


SYSTEMS = {"taskhost": Taskhost, "django-tasks": DjangoTasks, "graphile-worker": Graphile,
           "apalis": Apalis, "graphile-worker-rs": GraphileRs}


def micro(args, work: Path) -> dict:
    """Immediate/Dummy enqueue and Dummy get_result, in process, for taskhost and django-tasks."""
    log("micro: taskhost")
    taskhost = Taskhost("sqlite-normal", work, args)
    ours = taskhost.client("micro", "--iters", str(args.micro_iters), "--runs", str(args.runs))
    log("micro: django-tasks")
    django = DjangoTasks("sqlite-normal", work, args)
    django.reset()
    theirs = django.client("micro", "--iters", str(args.micro_iters // 5), "--runs",
                           str(args.runs))
    keys = ("immediate_enqueue_ns", "dummy_enqueue_ns", "dummy_get_result_ns")
    return {"taskhost": {k: summary(ours[k]) for k in keys},
            "django-tasks": {k: summary(theirs[k]) for k in keys}}


def versions() -> dict:
    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
        except OSError:
            return "?"
    pip = json.loads(out([PYTHON, "-m", "pip", "list", "--format", "json"]) or "[]")
    wanted = {"django", "django-tasks", "django-tasks-db", "psycopg", "matplotlib"}
    graphile = json.loads((HERE / "node_modules/graphile-worker/package.json").read_text())
    return {
        "taskhost_commit": out(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "python_packages": {p["name"].lower(): p["version"] for p in pip
                            if p["name"].lower() in wanted},
        "python": out([PYTHON, "--version"]),
        "graphile-worker": graphile["version"],
        "rust_peers": rust_peer_versions(),
        "node": out(["node", "--version"]),
        "postgres": out(["psql", "--version"]),
        "rustc": out(["rustc", "--version"]),
        "sqlite_python": sqlite3.sqlite_version,
        "kernel": platform.release(),
        "nproc": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
    }


def rust_peer_versions() -> dict:
    """The apalis and graphile_worker crate versions bench/rust-peers is locked to."""
    wanted = {"apalis", "apalis-sqlite", "apalis-postgres", "graphile_worker", "sqlx"}
    versions, name = {}, None
    for line in (HERE / "rust-peers" / "Cargo.lock").read_text().splitlines():
        if line.startswith("name = "):
            name = line.split('"')[1]
        elif line.startswith("version = ") and name in wanted:
            versions[name] = line.split('"')[1]
    return versions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer runs")
    parser.add_argument("--target-dir", type=Path, default=ROOT / "target")
    parser.add_argument("--drain-n", type=int, help="most tasks per drain (default 100000)")
    parser.add_argument("--drain-seconds", type=float,
                        help="size each drain to take about this long (default 8, quick 2)")
    parser.add_argument("--runs", type=int, help="runs of each enqueue measurement")
    parser.add_argument("--drain-runs", type=int, default=1, help="runs of each drain")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--stores", default=",".join(STORES))
    args = parser.parse_args()
    quick = args.quick
    args.runs = args.runs or (3 if quick else 5)
    args.micro_iters = 20_000 if quick else 100_000
    plan = {
        "enqueue_seconds": 0.3 if quick else 1.5,
        "enqueue_n": 100_000,
        "latency_n": 20 if quick else 200,
        "latency_poll_n": 6 if quick else 40,
        "latency_heartbeat_n": 2 if quick else 8,
        "drain_n": args.drain_n or 100_000,
        "drain_seconds": args.drain_seconds or (1.5 if quick else 8),
        "drain_first_n": 200 if quick else 500,
        "concurrency": [1, 32] if quick else [1, 4, 16, 32],
        "secondary": [4] if quick else [1, 4],
    }
    unknown = set(args.systems.split(",")) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems {sorted(unknown)}: choose from {', '.join(SYSTEMS)}")
    chosen = [SYSTEMS[s] for s in args.systems.split(",")]
    started = time.time()
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    results_dir = HERE / "results"
    results_dir.mkdir(exist_ok=True)
    report = {"date": stamp, "quick": quick, "plan": plan, "runs": args.runs,
              "drain_runs": args.drain_runs, "versions": versions(), "stores": [],
              "skipped": []}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        if Taskhost in chosen:
            report["micro"] = micro(args, work)
        for store in args.stores.split(","):
            for cls in chosen:
                system = cls(store, work, args)
                if cls in (Graphile, GraphileRs) and system.kind == "sqlite":
                    continue  # PostgreSQL only
                if isinstance(system, Taskhost) and not system.supported():
                    note = (f"taskhost on {store}: this build's database plugin has no "
                            "`synchronous` option")
                    log(note)
                    report["skipped"].append(note)
                    continue
                report["stores"].append(bench_store(system, args, plan))
                if system.kind == "postgres":
                    pg_admin(f"DROP DATABASE IF EXISTS {system.database} WITH (FORCE)")
    report["seconds"] = time.time() - started
    report["loadavg_end"] = os.getloadavg()
    raw = results_dir / f"{stamp}.json"
    raw.write_text(json.dumps(report, indent=1))
    shutil.copy(raw, results_dir / "latest.json")
    import report as render  # noqa: PLC0415 (after the venv's matplotlib is known to work)

    render.write(report, results_dir)
    log(f"raw results: {raw}; table: {results_dir / 'latest.md'}; chart: "
        f"{results_dir / 'drain.png'}")


if __name__ == "__main__":
    main()
