#!/bin/bash
# Resident size of a real worker process (tests/worker-app, release), idle and then while it
# drains $TASKS (default 200,000) no-op tasks at concurrency $CONCURRENCY (default 32) on
# PostgreSQL (a fresh schema, dropped at the end). Run from the workspace root after
# `cargo build --release -p taskhost-worker-app -p taskhost-backends-database`.
set -e
APP=${APP:-target/release/taskhost-worker-app}
PLUGINS=${PLUGINS:-$(pwd)/target/release}
URL=${TASKHOST_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
SCHEMA=rss_probe_$$
DIR=$(mktemp -d)
cat > $DIR/tasks.toml <<TOML
plugin_dirs = ["$PLUGINS"]
[tasks.default]
backend = "taskhost.backends.database.DatabaseBackend"
queues = []
[tasks.default.options]
url = "$URL"
schema = "$SCHEMA"
TOML
$APP --config $DIR/tasks.toml worker --queue '*' --concurrency ${CONCURRENCY:-32} --no-startup-delay > $DIR/worker.log 2>&1 &
PID=$!
sleep 3
echo "idle: $(grep -E 'VmRSS' /proc/$PID/status)"
psql -q $URL -c "SET search_path=$SCHEMA; SELECT count(taskhost_enqueue(gen_random_uuid(), 'taskhost_worker_app::record_key', jsonb_build_array('k' || i))) FROM generate_series(1, ${TASKS:-200000}) i" > /dev/null
max=0
while true; do
  rss=$(awk '/VmRSS/ {print $2}' /proc/$PID/status)
  [ "$rss" -gt "$max" ] && max=$rss
  left=$(psql -qtA $URL -c "SELECT count(*) FROM $SCHEMA.taskhost_tasks WHERE status <> 'SUCCESSFUL'")
  [ "$left" = "0" ] && break
  sleep 0.2
done
echo "draining: max VmRSS ${max} kB; $(grep VmHWM /proc/$PID/status)"
kill -TERM $PID; wait $PID || true
psql -q $URL -c "DROP SCHEMA $SCHEMA CASCADE" 2>/dev/null
rm -rf $DIR
