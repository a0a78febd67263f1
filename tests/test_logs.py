"""Log lines name their generation, job and API request; LOG_FORMAT=json writes one object a line."""

import io
import json
import logging

from conftest import API_KEY, drain
from factories import make_batch
from tests_support import rows

from app.logs import ContextFilter, JsonFormatter


def test_a_jobs_log_lines_carry_its_ids_as_json(make_app, fake):
    app = make_app(STABILITY_API_KEY=API_KEY, STABILITY_API_BASE_URL=fake.base_url)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("app.providers.stability")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        _, (gid,) = make_batch(app, "a lighthouse")
        (job_id,) = [g.job_id for g in rows(app, [gid])]
        drain(app)
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines, "the client logged nothing"
    line = lines[-1]
    assert line["generation_id"] == gid and line["job_id"] == job_id and line["api_request_id"]
    assert line["level"] == "INFO" and "stability" in line["message"]
    assert API_KEY not in stream.getvalue()
