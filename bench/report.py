"""Render one run of bench/orchestrate.py: Markdown tables (`latest.md`) and the drain chart.

    bench/.venv/bin/python bench/report.py bench/results/latest.json   # re-render a saved run
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PEERS = ("django-tasks", "graphile-worker", "apalis", "graphile-worker-rs")
# One colour family per system in the chart; shades tell its stores and worker options apart.
FAMILIES = {"taskhost": "Blues", "django-tasks": "Greys", "graphile-worker": "Oranges",
            "apalis": "Greens", "graphile-worker-rs": "Purples"}


def spread(s: dict, fmt: str = "{:,.0f}") -> str:
    """`median (min–max)` of a summary."""
    return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}–{fmt.format(s['max'])})"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def ratio(ours: float | None, theirs: float | None) -> str:
    if not ours or not theirs:
        return "—"
    return f"{ours / theirs:.2f}×"


def best_drain(entry: dict, variant: str) -> dict | None:
    drains = [d for d in measured(entry) if d["variant"] == variant]
    return max(drains, key=lambda d: d["tasks_per_s"]) if drains else None


def measured(entry: dict) -> list[dict]:
    """The drains of an entry that finished (a failed one has an `error` instead of a rate)."""
    return [d for d in entry["drains"] if "error" not in d]


def drain_at(entry: dict, variant: str, workers: int, concurrency: int) -> float | None:
    rates = [d["tasks_per_s"] for d in measured(entry)
             if (d["variant"], d["workers"], d["concurrency"]) == (variant, workers, concurrency)]
    return sorted(rates)[len(rates) // 2] if rates else None


def latency(entry: dict, variant: str) -> dict | None:
    return next((lat for lat in entry["latency"] if lat["variant"] == variant), None)


def mib(kib: int | None) -> str:
    return f"{kib / 1024:.1f}" if kib else "—"


def render(report: dict) -> str:
    out = []
    v = report["versions"]
    packages = ", ".join(f"{k} {val}" for k, val in sorted(v["python_packages"].items()))
    out.append(
        f"Run {report['date']} ({'quick' if report['quick'] else 'full'}, "
        f"{report['seconds'] / 60:.1f} min), taskhost `{v['taskhost_commit']}`; {packages}; "
        f"graphile-worker {v['graphile-worker']} (node {v['node']}); "
        + "".join(f"{k} {val}; " for k, val in sorted(v.get("rust_peers", {}).items()))
        + f"{v['python']}; "
        f"{v['postgres']}; {v['rustc']}; {v['nproc']} cores, load average at start "
        f"{v['loadavg_start'][0]:.1f}"
        + (f", at the end {report['loadavg_end'][0]:.1f}" if "loadavg_end" in report else "")
        + f". Plan: {json.dumps(report['plan'])}, "
        f"{report['runs']} runs per enqueue figure, {report['drain_runs']} per drain."
    )
    for note in report.get("skipped", []):
        out.append(f"\n**Skipped:** {note}.")

    if "micro" in report:
        ours, theirs = report["micro"]["taskhost"], report["micro"]["django-tasks"]
        rows = []
        for key, label in (("immediate_enqueue_ns", "Immediate enqueue (+ run), µs"),
                           ("dummy_enqueue_ns", "Dummy enqueue, µs"),
                           ("dummy_get_result_ns", "Dummy `get_result`, µs")):
            a, b = ours[key], theirs[key]
            us = {k: a[k] / 1000 for k in ("median", "min", "max")}
            them = {k: b[k] / 1000 for k in ("median", "min", "max")}
            rows.append([label, spread(us, "{:.2f}"), spread(them, "{:.2f}"),
                         f"{b['median'] / a['median']:.1f}×"])
        out.append("\n### In process: Immediate and Dummy (median (min–max) of the runs)\n")
        out.append(table(["per call", "taskhost", "django-tasks", "taskhost faster by"], rows))

    stores = report["stores"]
    rows = []
    for e in stores:
        rows.append([e["store"], e["system"], spread(e["single_enqueue_per_s"]),
                     spread(e["bulk_enqueue_per_s"])])
    out.append("\n### Enqueue rate, tasks/s (median (min–max) of the runs)\n")
    out.append(table(["store", "system", "single (one commit each)",
                      "bulk (1,000 per transaction)"], rows))

    rows = []
    for e in stores:
        for lat in e["latency"]:
            rows.append([e["store"], e["system"], lat["variant"], str(lat["samples"]),
                         f"{lat['p50_ms']:.2f}", f"{lat['p99_ms']:.2f}", f"{lat['max_ms']:.2f}",
                         mib(lat["idle_rss_kib"])])
    out.append("\n### Enqueue-to-start latency with an idle worker, and its idle memory\n")
    out.append(table(["store", "system", "worker options", "probes", "p50 ms", "p99 ms",
                      "max ms", "idle VmRSS MiB"], rows))

    rows = []
    for e in stores:
        for d in e["drains"]:
            rate = (f"failed: {d['error']}" if "error" in d else f"{d['tasks_per_s']:,.0f}")
            rows.append([e["store"], e["system"], d["variant"], str(d["workers"]),
                         str(d["concurrency"]), f"{d['n']:,}", rate,
                         mib(d.get("peak_rss_kib"))])
    out.append("\n### Drain rate (first start → last finish), and peak worker memory\n")
    out.append(table(["store", "system", "worker options", "workers", "concurrency", "tasks",
                      "tasks/s", "peak VmRSS MiB (per worker)"], rows))

    rows = []
    for e in stores:
        if e["system"] != "taskhost":
            continue
        for peer in (p for p in stores if p["store"] == e["store"] and p["system"] in PEERS):
            for variant in ("default", "tuned"):
                # Each side drains with the options named; a side that has no tuned drains
                # (django-tasks-db: its tuning is the idle poll) is drained with its defaults.
                ours_v = variant if best_drain(e, variant) else "default"
                theirs_v = variant if best_drain(peer, variant) else "default"
                ours_best, theirs_best = best_drain(e, ours_v), best_drain(peer, theirs_v)
                ours_lat, theirs_lat = latency(e, "tuned"), latency(peer, "tuned")
                label = variant if theirs_v == variant else f"{variant}; drains: {theirs_v}"
                rows.append([
                    e["store"], f"{peer['system']} ({label})",
                    ratio(e["single_enqueue_per_s"]["median"],
                          peer["single_enqueue_per_s"]["median"]),
                    ratio(e["bulk_enqueue_per_s"]["median"], peer["bulk_enqueue_per_s"]["median"]),
                    ratio(drain_at(e, ours_v, 1, 1), drain_at(peer, theirs_v, 1, 1)),
                    ratio(ours_best and ours_best["tasks_per_s"],
                          theirs_best and theirs_best["tasks_per_s"]),
                    ratio(theirs_lat and theirs_lat["p50_ms"], ours_lat and ours_lat["p50_ms"]),
                ])
    out.append("\n### taskhost ÷ peer (above 1× = taskhost better)\n")
    out.append("\nBoth sides with their default worker options, then both tuned "
               "(taskhost: `--prefetch`; graphile-worker and graphile-worker-rs: local queue "
               "and batched completions; apalis: larger fetches and a poll strategy; see "
               "bench/README.md).\n")
    out.append(table(["store", "peer (worker options of both)", "single enqueue", "bulk enqueue",
                      "drain, 1 worker × 1", "drain, best config of each",
                      "latency p50 (tuned workers)"], rows))
    return "\n".join(out) + "\n"


def chart(report: dict, path: Path) -> None:
    """Drain rate against concurrency: a colour family per system, a shade per store and worker
    options; solid = 1 worker process, dashed = 2."""
    fig, axes = plt.subplots(1, 2, figsize=(14, 8), sharey=True)
    handles = {}
    for ax, kind in zip(axes, ("sqlite", "pg")):
        shade = {}  # per system: the next shade of its colour family
        for e in report["stores"]:
            if not e["store"].startswith(kind):
                continue
            for variant in ("default", "tuned"):
                series = [d for d in measured(e) if d["variant"] == variant]
                if not series:
                    continue
                step = shade.get(e["system"], 0)
                shade[e["system"]] = step + 1
                family = plt.get_cmap(FAMILIES.get(e["system"], "Reds"))
                colour = family(0.95 - 0.17 * step)
                label = f"{e['system']}, {e['store']}"
                if e["system"] != "django-tasks":
                    label += f", {variant}"
                for workers, style in ((1, "-"), (2, "--")):
                    points = sorted((d["concurrency"], d["tasks_per_s"]) for d in series
                                    if d["workers"] == workers)
                    if points:
                        (line,) = ax.plot([p[0] for p in points], [p[1] for p in points],
                                          marker="^" if variant == "tuned" else "o",
                                          linestyle=style, color=colour)
                        handles.setdefault(label, line)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("concurrency per worker process")
        ax.set_title("SQLite (WAL)" if kind == "sqlite" else "PostgreSQL (local)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("drained no-op tasks / s (solid: 1 worker process, dashed: 2)")
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=4, fontsize=7.5)
    fig.suptitle(f"Drain rate against worker concurrency — {report['date']}")
    fig.tight_layout(rect=(0, 0.2, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(report: dict, results_dir: Path) -> None:
    (results_dir / "latest.md").write_text(render(report))
    chart(report, results_dir / "drain.png")


if __name__ == "__main__":
    saved = Path(sys.argv[1])
    write(json.loads(saved.read_text()), saved.parent)
