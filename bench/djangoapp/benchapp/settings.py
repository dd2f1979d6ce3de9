"""Settings of the benchmark app, driven by environment variables set by bench/orchestrate.py.

BENCH_DJANGO_DB: "sqlite:/path/to/file.db" or "postgres:dbname" (on 127.0.0.1:5432, user postgres).
BENCH_SQLITE_SYNC: NORMAL (default) or FULL — SQLite runs in WAL mode, as taskhost's does.
"""

import os

SECRET_KEY = "benchmarks-only"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = ["django_tasks", "django_tasks_db"]
LOGGING_CONFIG = None

_kind, _, _name = os.environ.get("BENCH_DJANGO_DB", "sqlite:/tmp/bench-django.db").partition(":")
if _kind == "sqlite":
    _sync = os.environ.get("BENCH_SQLITE_SYNC", "NORMAL")
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _name,
            "OPTIONS": {
                "init_command": f"PRAGMA journal_mode=WAL; PRAGMA synchronous={_sync};",
            },
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _name,
            "USER": "postgres",
            "HOST": "127.0.0.1",
            "PORT": 5432,
        }
    }

TASKS = {
    "default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": []},
    "immediate": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend", "QUEUES": []},
    "dummy": {"BACKEND": "django_tasks.backends.dummy.DummyBackend", "QUEUES": []},
}
