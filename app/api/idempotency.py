"""Idempotency-Key (Stripe's convention): the first answer to a key is kept 24 hours and replayed for it.

The answer is stored in the same transaction that reserves the credits and creates the batch, under a unique
(user, key) constraint: of two concurrent requests with one key, the second fails that constraint, rolls back
its own reservation and batch, and replays the first one's answer. Only requests that created something are
kept; a refused one (invalid, over the allowance) can be sent again with the same key.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import sqlalchemy as sa
from flask import jsonify
from werkzeug.wrappers import Response

from app.api.errors import ApiProblem
from app.extensions import db
from app.models import IdempotentRequest, utcnow

WINDOW = timedelta(hours=24)
REPLAYED_HEADER = "Idempotent-Replayed"


def fingerprint(payload: object) -> str:
    """SHA-256 of the JSON body in a canonical form (key order and spacing do not matter)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def forget_expired() -> None:
    """Drop answers older than the window, so their keys may be used afresh."""
    db.session.execute(sa.delete(IdempotentRequest).where(IdempotentRequest.created_at < utcnow() - WINDOW)
                       .execution_options(synchronize_session=False))
    db.session.commit()


def earlier_answer(user_id: int, key: str, request_hash: str) -> Response | None:
    """The kept answer to this key, replayed; ApiProblem 422 if the key came with another body; None if new."""
    row = db.session.scalar(sa.select(IdempotentRequest).where(
        IdempotentRequest.user_id == user_id, IdempotentRequest.key == key,
        IdempotentRequest.created_at >= utcnow() - WINDOW))
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise ApiProblem(422, "idempotency_key_reused", "This Idempotency-Key was sent in the last 24 hours with a "
                         "different request; use a new key for a new batch.")
    return answer(row.status, row.body, row.location, replayed=True)


def remember(user_id: int, key: str, request_hash: str, status: int, body: dict, location: str | None) -> None:
    """Add the answer to the current transaction; IntegrityError (at the flush) if the key was taken meanwhile."""
    db.session.add(IdempotentRequest(user_id=user_id, key=key, request_hash=request_hash, status=status, body=body,
                                     location=location, created_at=utcnow()))
    db.session.flush()


def answer(status: int, body: dict, location: str | None, replayed: bool = False) -> Response:
    """The JSON answer, as first given or replayed."""
    response = jsonify(body)
    response.status_code = status
    if location:
        response.headers["Location"] = location
    if replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return response
