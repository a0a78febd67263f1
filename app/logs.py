"""Log lines that say which generation, job and API request they are about; LOG_FORMAT=json for one object a line."""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
from collections.abc import Iterator

# Set by the job for the thread running it (context variables are per thread), read by every log record.
_generation_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("generation_id", default=None)
_job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_id", default=None)
_api_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("api_request_id", default=None)
TEXT_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s%(context)s"


@contextlib.contextmanager
def job_context(generation_id: int, job_id: str | None) -> Iterator[None]:
    """Tag every log line written while a job works on a generation."""
    tokens = (_generation_id.set(generation_id), _job_id.set(job_id), _api_request_id.set(None))
    try:
        yield
    finally:
        for var, token in zip((_generation_id, _job_id, _api_request_id), tokens, strict=True):
            var.reset(token)


def note_api_request_id(request_id: str | None) -> None:
    """Remember the API's x-request-id for the rest of the job's lines."""
    _api_request_id.set(request_id)


class ContextFilter(logging.Filter):
    """Copy the current generation, job and API request ids onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keep the record; only add fields."""
        record.generation_id = _generation_id.get()
        record.job_id = _job_id.get()
        record.api_request_id = _api_request_id.get()
        parts = [f"{key}={value}" for key, value in (("generation", record.generation_id), ("job", record.job_id),
                                                      ("api_request", record.api_request_id)) if value]
        record.context = (" [" + " ".join(parts) + "]") if parts else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log pipelines."""

    def format(self, record: logging.LogRecord) -> str:
        """The record's time, level, logger, message and ids (and the traceback, if any)."""
        entry = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
                 "message": record.getMessage()}
        for key in ("generation_id", "job_id", "api_request_id"):
            if getattr(record, key, None):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """Install one handler on the root logger in the chosen format."""
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
