"""django-tasks side of the side-by-side benchmarks (driven by bench/orchestrate.py).

One JSON object on stdout per command; mirrors `taskhost-bench` and `graphile.mjs`:

    python bench_django.py micro --iters 20000 --runs 5   Immediate/Dummy enqueue, get_result
    python bench_django.py single --n 2000 --runs 5       one commit each, database backend
    python bench_django.py bulk --n 10000 --batch 1000 --runs 5
                                                          `batch` enqueues per transaction.atomic()
    python bench_django.py fill --n 5000
    python bench_django.py latency --n 200 --log FILE [--jitter-ms 1000]
                                                          needs a db_worker running
"""

import argparse
import json
import os
import random
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchapp.settings")
import django  # noqa: E402

django.setup()

from django.db import transaction  # noqa: E402
from django_tasks import task_backends  # noqa: E402

from benchapp.tasks import noop, stamp  # noqa: E402


def per_call_ns(iters, call):
    start = time.perf_counter_ns()
    for _ in range(iters):
        call()
    return (time.perf_counter_ns() - start) / iters


def timed_runs(runs, body):
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        body()
        seconds.append(time.perf_counter() - start)
    return seconds


def fill(n, batch):
    for done in range(0, n, batch):
        with transaction.atomic():
            for i in range(done, min(n, done + batch)):
                noop.enqueue(i, 2)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command")
    parser.add_argument("--iters", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--n", type=int, default=0)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--log")
    parser.add_argument("--gap-ms", type=float, default=5)
    parser.add_argument("--jitter-ms", type=float, default=0)
    args = parser.parse_args()

    if args.command == "micro":
        immediate, dummy = noop.using(backend="immediate"), noop.using(backend="dummy")
        store = task_backends["dummy"]
        result = {"iters": args.iters, "immediate_enqueue_ns": [], "dummy_enqueue_ns": [],
                  "dummy_get_result_ns": []}
        for _ in range(args.runs):
            result["immediate_enqueue_ns"].append(
                per_call_ns(args.iters, lambda: immediate.enqueue(1, 2)))
            store.clear()
            result["dummy_enqueue_ns"].append(per_call_ns(args.iters, lambda: dummy.enqueue(1, 2)))
            store.clear()
            result_id = dummy.enqueue(1, 2).id
            result["dummy_get_result_ns"].append(
                per_call_ns(args.iters, lambda: dummy.get_result(result_id)))
            store.clear()
    elif args.command == "single":
        def body():
            for i in range(args.n):
                noop.enqueue(i, 2)
        result = {"n": args.n, "seconds": timed_runs(args.runs, body)}
    elif args.command == "bulk":
        result = {"n": args.n, "batch": args.batch,
                  "seconds": timed_runs(args.runs, lambda: fill(args.n, args.batch))}
    elif args.command == "fill":
        start = time.perf_counter()
        fill(args.n, 1000)
        result = {"n": args.n, "seconds": time.perf_counter() - start}
    elif args.command == "latency":
        open(args.log, "w").close()

        def lines():
            with open(args.log) as log:
                return log.read().count("\n")

        for seen in range(args.n + 1):
            stamp.enqueue(time.time_ns() // 1000)
            deadline = time.monotonic() + 30
            while lines() < seen + 1:
                if time.monotonic() > deadline:
                    raise SystemExit(f"probe {seen} did not start (is a db_worker running?)")
                time.sleep(0.0002)
            time.sleep((args.gap_ms + random.random() * args.jitter_ms) / 1000)
        with open(args.log) as log:
            result = {"n": args.n, "latency_us": [int(x) for x in log.read().split()[1:]]}
    else:
        raise SystemExit(f"unknown command {args.command}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
