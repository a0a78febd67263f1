"""Creating batches and queueing their generations."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import RedisError

from app.extensions import db
from app.models import Batch, Generation, Status, utcnow
from app.queueing import enqueue_generation

log = logging.getLogger(__name__)
QUEUE_DOWN = "Could not queue this image: the job queue is unavailable. Try again shortly."


def create_batch(prompts: list[str]) -> Batch:
    """Store a batch with one queued generation per prompt, commit, then enqueue a job per generation."""
    provider = "stability" if current_app.config.get("STABILITY_API_KEY") else "demo"
    now = utcnow()
    batch = Batch(created_at=now, generations=[
        Generation(position=i, prompt=text, provider=provider, created_at=now) for i, text in enumerate(prompts)
    ])
    db.session.add(batch)
    # Committed first: a worker that picks up a job must find its row.
    db.session.commit()
    queue_generations(batch.generations)
    return batch


def queue_generations(generations: list[Generation]) -> None:
    """Enqueue each generation; if the queue is down, fail the rows instead of leaving them queued."""
    for generation in generations:
        try:
            generation.job_id = enqueue_generation(generation.id)
        except (RedisError, RuntimeError, OSError):
            log.exception("could not enqueue generation %s", generation.id)
            generation.status, generation.error, generation.finished_at = Status.FAILED.value, QUEUE_DOWN, utcnow()
    db.session.commit()


def batch_or_none(batch_id: int) -> Batch | None:
    """Load a batch with its generations in one round trip each."""
    return db.session.get(Batch, batch_id)


def generations_of(batch_id: int) -> list[Generation]:
    """The batch's generations in prompt order (one query on the (batch_id, position) index)."""
    return list(db.session.scalars(
        sa.select(Generation).where(Generation.batch_id == batch_id).order_by(Generation.position)
    ))
