"""Turn generations that just became final into deliveries for their owners' endpoints, each recorded once."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from app.extensions import db
from app.models import UNFINISHED, Generation, Status, WebhookDelivery, WebhookEndpoint, utcnow
from app.webhooks import bodies, delivery, signing

log = logging.getLogger(__name__)
EVENT_OF_STATUS = {Status.SUCCEEDED: bodies.GENERATION_SUCCEEDED, Status.FAILED: bodies.GENERATION_FAILED,
                   Status.FILTERED: bodies.GENERATION_FAILED}


def generations_ended(generation_ids: Iterable[int]) -> None:
    """Record and queue the events of these now-final generations; never raises (the status change stands)."""
    ids = sorted(set(generation_ids))
    if not ids:
        return
    try:
        created = _record(ids)
    except Exception:
        db.session.rollback()
        log.exception("webhook events of generations %s could not be recorded", ids[:10])
        return
    delivery.enqueue(created)


def _endpoints_for(owner_ids: set[int], batch_ids: set[int]) -> list[WebhookEndpoint]:
    """The enabled endpoints these owners have, account-wide or for one of these batches."""
    return list(db.session.scalars(sa.select(WebhookEndpoint).where(
        WebhookEndpoint.enabled, WebhookEndpoint.user_id.in_(owner_ids),
        WebhookEndpoint.batch_id.is_(None) | WebhookEndpoint.batch_id.in_(batch_ids))))


def _anyone_listens(ids: list[int]) -> bool:
    """One indexed look: does an owner of these generations have an enabled endpoint at all (most have none)?"""
    return db.session.scalar(sa.select(sa.literal(1)).select_from(WebhookEndpoint).join(
        Generation, Generation.owner_id == WebhookEndpoint.user_id).where(
        Generation.id.in_(ids), WebhookEndpoint.enabled).limit(1)) is not None


def _record(ids: list[int]) -> list[int]:
    """Insert the deliveries (skipping any already recorded) and commit; return the new ids."""
    if not _anyone_listens(ids):
        db.session.rollback()  # end the read's transaction, as the lifecycle's own writes leave none open
        return []
    ended = list(db.session.scalars(sa.select(Generation).where(
        Generation.id.in_(ids), Generation.status.notin_(UNFINISHED), Generation.owner_id.is_not(None))))
    if not ended:
        return []
    endpoints = _endpoints_for({g.owner_id for g in ended if g.owner_id}, {g.batch_id for g in ended})
    if not endpoints:
        db.session.rollback()
        return []
    now, created = utcnow(), []

    def wanting(event: str, owner_id: int | None, batch_id: int) -> list[WebhookEndpoint]:
        return [e for e in endpoints if e.user_id == owner_id and event in e.events and e.batch_id in (None, batch_id)]

    for generation in ended:
        event = EVENT_OF_STATUS.get(generation.status_enum)
        for endpoint in wanting(event, generation.owner_id, generation.batch_id) if event else []:
            key = f"{event}:{generation.id}:{_stamp(generation)}"
            created += _insert(endpoint.id, event, key, bodies.generation_ended(event, generation, now))
    for batch_id, owner_id in sorted({(g.batch_id, g.owner_id) for g in ended}):
        targets = wanting(bodies.BATCH_COMPLETED, owner_id, batch_id)
        batch = list(db.session.scalars(sa.select(Generation).where(Generation.batch_id == batch_id)
                                        .order_by(Generation.position))) if targets else []
        if not batch or any(g.status_enum in UNFINISHED for g in batch):
            continue
        # The batch's last finish names this completion: two threads noticing it make one key, a retried card a new one.
        key = f"{bodies.BATCH_COMPLETED}:{batch_id}:{max(_stamp(g) for g in batch)}"
        payload = bodies.batch_completed(batch_id, batch, now)
        for endpoint in targets:
            created += _insert(endpoint.id, bodies.BATCH_COMPLETED, key, payload)
    db.session.commit()
    return created


def _stamp(generation: Generation) -> str:
    return generation.finished_at.isoformat() if generation.finished_at else "-"


def _insert(endpoint_id: int, event: str, key: str, payload: dict) -> list[int]:
    """One delivery row, unless this endpoint already has this event; the new id, or nothing."""
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    row = db.session.execute(
        insert(WebhookDelivery).values(
            endpoint_id=endpoint_id, event=event, event_key=key[:100], message_id=signing.new_message_id(),
            payload=payload, status=delivery.QUEUED, attempts=0, created_at=utcnow(),
            next_attempt_at=delivery.lease_end())
        .on_conflict_do_nothing(index_elements=["endpoint_id", "event_key"]).returning(WebhookDelivery.id)
    ).first()
    return [row[0]] if row else []
