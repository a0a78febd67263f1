"""Run the generation workers: `python worker.py` (WORKER_CONCURRENCY at once, against REDIS_URL)."""

import sys

from dotenv import load_dotenv

load_dotenv(override=False)

from app import create_app  # noqa: E402  (the environment must be loaded first)
from app.config import ConfigError  # noqa: E402
from app.worker.pool import main  # noqa: E402

if __name__ == "__main__":
    try:
        app = create_app()
    except ConfigError as exc:
        sys.exit(f"Configuration error: {exc}")
    main(app)
