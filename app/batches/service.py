"""Creating batches and queueing their generations."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app
from redis.exceptions import RedisError

from app.extensions import db
from app.models import Batch, Generation, Status, utcnow
from app.providers import provider_name
from app.queueing import enqueue_generation, new_job_id

log = logging.getLogger(__name__)
QUEUE_DOWN = "Could not queue this image: the job queue is unavailable. Try again shortly."


@dataclass(frozen=True)
class BatchOptions:
    """Options chosen once for every prompt of a batch, as the API names them."""

    model: str = "core"
    aspect_ratio: str = "1:1"
    output_format: str = "png"
    style_preset: str | None = None
    negative_prompt: str | None = None
    seed: int | None = None  # None: the API picks one per image
    cfg_scale: float | None = None


def create_batch(prompts: list[str], options: BatchOptions | None = None) -> Batch:
    """Store a batch with one queued generation per prompt, commit, then enqueue a job per generation."""
    options = options or BatchOptions()
    provider = provider_name(current_app.config)
    attempts = current_app.config["STABILITY_MAX_ATTEMPTS"]
    now = utcnow()
    batch = Batch(created_at=now, generations=[
        Generation(position=i, prompt=text, provider=provider, created_at=now, max_attempts=attempts,
                   model=options.model, aspect_ratio=options.aspect_ratio, output_format=options.output_format,
                   style_preset=options.style_preset, negative_prompt=options.negative_prompt,
                   requested_seed=options.seed, cfg_scale=options.cfg_scale)
        for i, text in enumerate(prompts)
    ])
    db.session.add(batch)
    # Committed first: a worker that picks up a job must find its row.
    db.session.commit()
    queue_generations(batch.generations)
    return batch


def queue_generations(generations: list[Generation]) -> None:
    """Give each row a fresh job id, commit, enqueue; if the queue is down, fail the rows instead of leaving them."""
    for generation in generations:
        # Only the job holding the row's current id may claim or finish it: an older job (canceled, then
        # retried) finds its id replaced and leaves the row alone.
        generation.job_id = new_job_id()
    db.session.commit()
    not_queued = []
    for generation in generations:
        try:
            enqueue_generation(generation.id, generation.job_id)
        except (RedisError, RuntimeError, OSError):
            log.exception("could not enqueue generation %s", generation.id)
            not_queued.append(generation.id)
    if not_queued:
        db.session.execute(
            sa.update(Generation)
            .where(Generation.id.in_(not_queued), Generation.status == Status.QUEUED.value)
            .values(status=Status.FAILED.value, error=QUEUE_DOWN, finished_at=utcnow())
        )
        db.session.commit()


_AHEAD = so.aliased(Generation)
# Built once: constructing this statement per poll cost more than running it.
_QUEUE_AHEAD = sa.case(
    (Generation.status == Status.QUEUED.value,
     sa.select(sa.func.count()).where(_AHEAD.status == Status.QUEUED.value, _AHEAD.id < Generation.id)
     .scalar_subquery()),
    else_=None,
)


def generations_of(batch_id: int) -> list[Generation]:
    """The batch's generations in prompt order with each queued one's place in line, in one query."""
    return list(db.session.scalars(
        sa.select(Generation).where(Generation.batch_id == batch_id).order_by(Generation.position)
        .options(so.with_expression(Generation.queue_ahead, _QUEUE_AHEAD))
    ))
