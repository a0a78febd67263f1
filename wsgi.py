"""WSGI entry point: `gunicorn wsgi:app`."""

import sys

from dotenv import load_dotenv

load_dotenv(override=False)

from app import create_app  # noqa: E402  (the environment must be loaded first)
from app.config import ConfigError  # noqa: E402
from app.logs import configure_logging  # noqa: E402

try:
    app = create_app()
    configure_logging(app.config["LOG_FORMAT"])
except ConfigError as exc:
    # One clear line, then exit 3: gunicorn halts at once on a worker that fails to boot with it.
    print(f"Configuration error: {exc}", file=sys.stderr)
    sys.exit(3)
