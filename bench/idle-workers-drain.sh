#!/bin/bash
# What idle SQLite workers cost a busy one: one `--batch` worker drains N no-op tasks on queue
# `default` while IDLE default workers wait on queue `other`; prints the drain time and rate,
# and the CPU the idle workers used meanwhile (from /proc/PID/stat, so Linux only).
#
#   bench/idle-workers-drain.sh [PLUGIN_DIR] [N] [IDLE]     # defaults: target/release 20000 3
#
# Build first as for bench/pickup-latency.sh; TASKHOST_BENCH overrides the runner binary.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/sqlite-config.sh"
plugins=$(cd "${1:-$here/target/release}" && pwd)
n=${2:-20000}
idle=${3:-3}
bin=${TASKHOST_BENCH:-$here/target/release/taskhost-bench}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
write_sqlite_config "$work" "$plugins"
export TASKHOST_CONFIG="$work/tasks.toml" RUST_LOG=warn
"$bin" migrate --backend db > /dev/null
"$bin" fill --n "$n" > /dev/null
for _ in $(seq 1 "$idle"); do
  "$bin" worker --backend db --queue other --no-startup-delay > /dev/null 2>&1 &
  pids+=($!)
done
sleep 1
cpu() {
  local total=0
  for p in "${pids[@]}"; do total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo "$total"
}
before=$(cpu)
start=$(date +%s.%N)
"$bin" worker --backend db --queue default --no-startup-delay --batch --concurrency 1 \
    --prefetch 64 > /dev/null 2>&1
end=$(date +%s.%N)
after=$(cpu)
python3 -c "print('{\"n\": $n, \"idle_workers\": $idle, \"seconds\": %.3f, \"per_s\": %.0f, \"idle_cpu_ms\": %d}' % ($end - $start, $n / ($end - $start), ($after - $before) * 1000 / $(getconf CLK_TCK)))"
