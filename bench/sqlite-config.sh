# Sourced by the bench/*.sh scripts: `write_sqlite_config WORK PLUGINS [SYNCHRONOUS]` writes
# WORK/tasks.toml with the aliases taskhost-bench expects (immediate, dummy, and db on the SQLite
# file WORK/tasks.db, `synchronous` = SYNCHRONOUS, default normal) and the plugin files in PLUGINS.
write_sqlite_config() {
  local work=$1 plugins=$2 sync=${3:-normal}
  cat > "$work/tasks.toml" <<TOML
plugin_dirs = ["$plugins"]

[tasks.immediate]
backend = "taskhost.backends.immediate.ImmediateBackend"
queues = []

[tasks.dummy]
backend = "taskhost.backends.dummy.DummyBackend"
queues = []

[tasks.db]
backend = "taskhost.backends.database.DatabaseBackend"
queues = []
[tasks.db.options]
url = "sqlite://$work/tasks.db"
synchronous = "$sync"
TOML
}
