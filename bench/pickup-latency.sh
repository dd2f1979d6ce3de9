#!/bin/bash
# Enqueue-to-start latency of one idle *default* taskhost worker (`--interval 1`, concurrency 1)
# on an SQLite file, without the side-by-side harness (`bench/run`): the same probe
# (`taskhost-bench latency`) and the same percentile as bench/orchestrate.py.
#
#   cargo build --release -p taskhost-benches -p taskhost-backends-database \
#       -p taskhost-backends-immediate -p taskhost-backends-dummy
#   bench/pickup-latency.sh [PLUGIN_DIR] [PROBES] [JITTER_MS] [SYNCHRONOUS]
#
# PLUGIN_DIR (default target/release) holds the plugin files; PROBES (200) probes one at a
# time, each after a pause of 5 ms plus up to JITTER_MS (10; pass 1000 against a polling worker
# so probes land anywhere in its interval); SYNCHRONOUS is the `synchronous` option (normal).
# Prints {"n", "p50_ms", "p99_ms", "max_ms"}.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/sqlite-config.sh"
plugins=$(cd "${1:-$here/target/release}" && pwd)
probes=${2:-200}
jitter=${3:-10}
sync=${4:-normal}
bin=${TASKHOST_BENCH:-$here/target/release/taskhost-bench}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
write_sqlite_config "$work" "$plugins" "$sync"
export TASKHOST_CONFIG="$work/tasks.toml" RUST_LOG=warn
"$bin" migrate --backend db > /dev/null
BENCH_LATENCY_LOG="$work/latency.log" "$bin" worker --backend db --queue '*' \
    --no-startup-delay --concurrency 1 > "$work/worker.log" 2>&1 &
worker=$!
sleep 1
"$bin" latency --n "$probes" --log "$work/latency.log" --jitter-ms "$jitter" > "$work/result.json"
kill -TERM "$worker"
wait "$worker" || true
python3 - "$work/result.json" <<'PY'
import json, sys
ms = sorted(us / 1000 for us in json.load(open(sys.argv[1]))["latency_us"])
def percentile(p):  # as bench/orchestrate.py
    return ms[min(len(ms) - 1, int(round(p / 100 * (len(ms) - 1))))]
print(json.dumps({"n": len(ms), "p50_ms": round(percentile(50), 2),
                  "p99_ms": round(percentile(99), 2), "max_ms": round(ms[-1], 2)}))
PY
