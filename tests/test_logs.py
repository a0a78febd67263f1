"""Log lines name their generation, job and API request; LOG_FORMAT=json writes one object a line."""

import io
import json
import logging
import re

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


def test_each_finished_image_is_one_line_saying_how_it_ended(api_app, caplog):
    from factories import make_batch

    _batch, (made, refused) = make_batch(api_app, "a lighthouse", "[moderate] a lighthouse")
    with caplog.at_level(logging.INFO, logger="app.worker.jobs"):
        drain(api_app)
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "app.worker.jobs"]
    assert len(lines) == 2
    assert lines[0][0] == "INFO" and re.fullmatch(rf"image {made} succeeded in \d+\.\d s", lines[0][1])
    assert lines[1][0] == "WARNING" and lines[1][1].startswith(f"image {refused} failed in ")
    assert "api error id" in lines[1][1]


def test_a_sweep_is_logged_in_words_not_as_a_repr():
    from app.generations.reaper import Sweep

    assert str(Sweep()) == "nothing to do"
    assert str(Sweep(requeued_stale=2, requeued_lost=1, orphans_deleted=1, resumed=True)) == (
        "requeued 2 images whose worker went quiet; requeued 1 image whose job Redis had lost; "
        "deleted 1 file no image holds; resumed the paused queue")
