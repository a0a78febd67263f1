"""gunicorn settings for production: `gunicorn -c python:app.gunicorn_config wsgi:app`."""

import os

# Threads per web process: requests mostly wait on the database and Redis.
threads = int(os.environ.get("WEB_THREADS", "4"))
bind = os.environ.get("BIND", "0.0.0.0:" + os.environ.get("PORT", "8000"))
# Forwarded headers are read in one place, the app's TRUSTED_PROXIES: gunicorn's own default would take
# X-Forwarded-Proto from any client on 127.0.0.1 whatever that setting says.
forwarded_allow_ips = ""


def child_exit(_server, worker) -> None:  # noqa: ANN001
    """Drop a dead web process's live gauges from the shared metrics folder (prometheus-client's rule)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
