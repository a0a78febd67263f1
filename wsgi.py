"""WSGI entry point: `gunicorn wsgi:app`; also what the `flask` command loads (FLASK_APP=wsgi)."""

import sys

from dotenv import load_dotenv

load_dotenv(override=False)

from app import DEFAULT_INSTANCE_PATH, create_app  # noqa: E402  (the environment must be loaded first)
from app.config import ConfigError  # noqa: E402
from app.logs import configure_logging  # noqa: E402
from app.processes.local_run import LocalRunError, join_local_run  # noqa: E402

try:
    # Beside a running scripts/run.py, its database, Redis and secret fill in what the environment leaves unset.
    join_local_run(DEFAULT_INSTANCE_PATH)
    app = create_app()
    configure_logging(app.config["LOG_FORMAT"])
except (ConfigError, LocalRunError) as exc:
    # One clear line, then exit 3: gunicorn halts at once on a worker that fails to boot with it.
    print(f"Configuration error: {exc}", file=sys.stderr)
    sys.exit(3)
