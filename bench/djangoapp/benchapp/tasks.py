"""The benchmark tasks: the same two as taskhost's runner and the graphile-worker script."""

import os
import time

from django_tasks import task


@task()
def noop(a: int, b: int) -> int:
    """A no-op task with two small arguments."""
    return a + b


@task()
def stamp(t0: int) -> None:
    """Append "now - t0" (µs) to $BENCH_LATENCY_LOG as the task starts."""
    started = time.time_ns() // 1000
    path = os.environ.get("BENCH_LATENCY_LOG")
    if path:
        with open(path, "a") as log:
            log.write(f"{started - t0}\n")
