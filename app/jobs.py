"""Work done by RQ workers: make one generation's image and record the outcome on its row."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from flask import Flask, current_app, has_app_context
from rq import get_current_job
from rq.timeouts import JobTimeoutException

from app.extensions import db
from app.images import inspect_image
from app.metadata import ImageParameters, embed_parameters, parameters_text
from app.models import UNFINISHED, Generation, Status, utcnow
from app.providers import provider_for
from app.providers.base import GeneratedImage, GenerationError, GenerationRequest, ImageProvider
from app.storage import delete_file, new_file_name, write_atomically
from app.thumbnails import make_thumbnail

log = logging.getLogger(__name__)

INTERRUPTED = "The worker stopped before this image was finished"
TIMED_OUT = "This image took too long and was stopped; try again"
UNEXPECTED = "An unexpected error stopped this generation; it has been logged"

_process_app: Flask | None = None


@contextmanager
def app_context() -> Iterator[Flask]:
    """Use the current app, or one app per worker process when called outside any context."""
    global _process_app
    if has_app_context():
        yield current_app._get_current_object()  # type: ignore[attr-defined]
        return
    if _process_app is None:
        from app import create_app

        _process_app = create_app()
    with _process_app.app_context():
        yield _process_app


def run_generation(generation_id: int) -> str:
    """RQ entry point: generate the image for one row and return its final status."""
    job = get_current_job()
    with app_context() as app:
        return generate(app, generation_id, job.id if job else None)


def _owned(generation_id: int, job_id: str | None) -> sa.ColumnElement[bool]:
    """The row, as long as this job is still the one it waits for (a retry gives it a new job id)."""
    condition = Generation.id == generation_id
    return condition & (Generation.job_id == job_id) if job_id else condition


def generate(app: Flask, generation_id: int, job_id: str | None = None) -> str:
    """Mark the row running, call the provider, store the result; every exit writes a final status."""
    generation = _claim(generation_id, job_id)
    if generation is None:
        return "skipped"
    try:
        provider = provider_for(app)
        generation.provider = provider.name
        image = _generate_with_retries(app, generation, provider, job_id)
        _store(app, generation, image, job_id)
    except GenerationError as exc:
        _fail(generation, job_id, exc.reason, error_id=exc.error_id, request_id=exc.request_id)
        log.info("generation %s failed: %s (api error id %s)", generation_id, exc.reason, exc.error_id)
    except JobTimeoutException:
        db.session.rollback()
        _fail(generation, job_id, TIMED_OUT)
        log.warning("generation %s timed out", generation_id)
    except Exception:
        # Anything unforeseen still ends the row; the traceback goes to the log, not the page.
        db.session.rollback()
        log.exception("generation %s crashed", generation_id)
        _fail(generation, job_id, UNEXPECTED)
    return db.session.scalar(sa.select(Generation.status).where(Generation.id == generation_id)) or "missing"


def _claim(generation_id: int, job_id: str | None) -> Generation | None:
    """Move a queued row to running in one conditional UPDATE so a duplicate job cannot run it twice."""
    claimed = db.session.execute(
        sa.update(Generation)
        .where(_owned(generation_id, job_id), Generation.status == Status.QUEUED.value)
        .values(status=Status.RUNNING.value, started_at=utcnow())
    ).rowcount
    db.session.commit()
    if not claimed:
        log.warning("generation %s is not queued; job skipped", generation_id)
        return None
    return db.session.get(Generation, generation_id)


def _request_for(generation: Generation) -> GenerationRequest:
    """Build the provider request from the options stored on the row."""
    return GenerationRequest(
        prompt=generation.prompt,
        model=generation.model,
        aspect_ratio=generation.aspect_ratio,
        output_format=generation.output_format,
        seed=generation.requested_seed or 0,
        negative_prompt=generation.negative_prompt,
        style_preset=generation.style_preset,
        cfg_scale=generation.cfg_scale,
    )


def _still_running(generation_id: int, job_id: str | None) -> bool:
    """Whether nobody canceled (or retried) the row while this job slept between attempts."""
    status = db.session.scalar(sa.select(Generation.status).where(_owned(generation_id, job_id)))
    return status == Status.RUNNING.value


def backoff_delay(attempt: int, base: float) -> float:
    """Exponential backoff with full jitter: up to base, 2*base, 4*base… after attempts 1, 2, 3…"""
    return random.uniform(0, base * 2 ** (attempt - 1))


def _generate_with_retries(app: Flask, generation: Generation, provider: ImageProvider,
                           job_id: str | None) -> GeneratedImage:
    """Call the provider, retrying transient failures (429, 5xx, timeouts) with backoff; never permanent ones."""
    request = _request_for(generation)
    attempt, note = 0, None
    while True:
        attempt += 1
        # Conditional, like every write of this job: a card canceled meanwhile keeps its own state.
        if not _update_running(generation.id, job_id, attempts=attempt, error=note):
            raise GenerationError("Canceled")  # _finish will not touch the canceled row either
        try:
            return provider.generate(request)
        except GenerationError as exc:
            if not exc.transient or attempt >= generation.max_attempts:
                raise
            delay = backoff_delay(attempt, app.config["STABILITY_RETRY_BASE_DELAY"])
            log.info("generation %s attempt %d/%d failed (%s); retrying in %.1f s", generation.id,
                     attempt, generation.max_attempts, exc.reason, delay)
            note = f"{exc.reason} (retrying)"
            time.sleep(delay)


def _store(app: Flask, generation: Generation, image: GeneratedImage, job_id: str | None) -> None:
    """Check and write the image and its thumbnail, then record them; a filtered (blurred) result is kept, marked."""
    try:
        info = inspect_image(image.data)
    except GenerationError as exc:
        exc.request_id = image.request_id  # support needs it most when the answer was unusable
        raise
    thumbnail = make_thumbnail(image.data)
    # The prompt and settings travel inside the file, as AUTOMATIC1111 writes them, without re-encoding.
    data = embed_parameters(image.data, info.mime_type, parameters_text(ImageParameters(
        prompt=generation.prompt, negative_prompt=generation.negative_prompt, seed=image.seed, model=generation.model,
        width=info.width, height=info.height, style_preset=generation.style_preset,
        aspect_ratio=generation.aspect_ratio, cfg_scale=generation.cfg_scale)))
    media = app.config["MEDIA_ROOT"]
    file_name, thumb_name = new_file_name(info.mime_type), new_file_name("image/webp")
    filtered = image.is_filtered
    values = {
        "file_name": file_name, "mime_type": info.mime_type, "byte_size": len(data),
        "width": info.width, "height": info.height, "seed": image.seed, "finish_reason": image.finish_reason,
        "thumb_name": thumb_name, "thumb_width": thumbnail.width, "thumb_height": thumbnail.height,
        "status": Status.FILTERED.value if filtered else Status.SUCCEEDED.value,
        # A transient error an earlier attempt met is no longer the story once an image arrived.
        "error": "Blurred by the API's content filter" if filtered else None,
        "api_request_id": image.request_id,
    }
    stored = False
    try:
        write_atomically(media, file_name, data)
        write_atomically(media, thumb_name, thumbnail.data)
        stored = _finish(generation.id, job_id, **values)
    finally:
        if not stored:
            # Canceled meanwhile, or a write failed: no file may outlive the attempt without a row.
            delete_file(media, file_name)
            delete_file(media, thumb_name)


def _update_running(generation_id: int, job_id: str | None, **values: object) -> bool:
    """Write to the row only while it is running for this job; False means it was canceled or retried meanwhile."""
    changed = db.session.execute(
        sa.update(Generation)
        .where(_owned(generation_id, job_id), Generation.status == Status.RUNNING.value)
        .values(**values)
    ).rowcount
    db.session.commit()
    return bool(changed)


def _finish(generation_id: int, job_id: str | None, **values: object) -> bool:
    """Write a final outcome if the row still runs for this job."""
    finished = _update_running(generation_id, job_id, finished_at=utcnow(), **values)
    if not finished:
        log.info("generation %s was canceled or retried while running; this result is discarded", generation_id)
    return finished


def _fail(generation: Generation, job_id: str | None, reason: str, error_id: str | None = None,
          request_id: str | None = None) -> None:
    """Record a failure reason and make the row final (unless it was canceled meanwhile)."""
    _finish(generation.id, job_id, status=Status.FAILED.value, error=reason, api_error_id=error_id,
            api_request_id=request_id)


def fail_unfinished(generation_id: int, reason: str, job_id: str | None = None) -> bool:
    """Mark a row failed if it is still queued or running (for this job, if given); return whether it changed."""
    changed = db.session.execute(
        sa.update(Generation)
        .where(_owned(generation_id, job_id), Generation.status.in_(UNFINISHED))
        .values(status=Status.FAILED.value, error=reason, finished_at=utcnow())
    ).rowcount
    db.session.commit()
    return bool(changed)


def on_job_failure(job, connection, exc_type, exc_value, traceback) -> None:  # noqa: ANN001
    """RQ failure callback, also run for jobs abandoned by a dead worker: never leave the row unfinished."""
    generation_id = job.args[0] if job.args else None
    if generation_id is None:
        return
    with app_context():
        if fail_unfinished(int(generation_id), INTERRUPTED, job.id):
            log.warning("generation %s failed by RQ: %s", generation_id, exc_type.__name__ if exc_type else "?")
