"""Run the generation workers: `python worker.py` (WORKER_CONCURRENCY at once, against REDIS_URL)."""

import sys

from dotenv import load_dotenv

load_dotenv(override=False)

from app import DEFAULT_INSTANCE_PATH, create_app  # noqa: E402  (the environment must be loaded first)
from app.config import ConfigError  # noqa: E402
from app.processes.local_run import LocalRunError, join_local_run  # noqa: E402
from app.services import QueueUnavailable, services  # noqa: E402
from app.worker.pool import main  # noqa: E402

if __name__ == "__main__":
    try:
        join_local_run(DEFAULT_INSTANCE_PATH)  # a second worker beside scripts/run.py joins its queue
        app = create_app()
        services(app).require_redis()
    except (ConfigError, LocalRunError, QueueUnavailable) as exc:
        sys.exit(f"Configuration error: {exc}")
    main(app)
