"""Log lines name their generation, job and API request; LOG_FORMAT=json writes one object a line."""

import io
import json
import logging

from conftest import API_KEY, drain

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
        with app.test_request_context():
            from app.accounts.users import local_user
            from app.generations.lifecycle import create_batch

            generation = create_batch(local_user(), ["a lighthouse"]).generations[0]
            gid, job_id = generation.id, generation.job_id
        drain(app)
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines, "the client logged nothing"
    line = lines[-1]
    assert line["generation_id"] == gid and line["job_id"] == job_id and line["api_request_id"]
    assert line["level"] == "INFO" and "stability" in line["message"]
    assert API_KEY not in stream.getvalue()
