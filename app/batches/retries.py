"""Retry every failed card of a batch at once: all of them when the allowance covers them all, else none."""

from __future__ import annotations

from app.extensions import db
from app.generations import lifecycle, spending
from app.models import Generation, Status
from app.text.wording import count_of


def _short_of(failed: list[Generation]) -> str | None:
    """Why the whole retry does not fit the owner's allowance (a reservation tried and undone), or None."""
    owner, cost = failed[0].owner, sum(lifecycle.price_of(g.options, g.operation) for g in failed)
    if owner is None:
        return None
    db.session.commit()  # the trial reservation starts a transaction of its own (see lifecycle.create_batch)
    try:
        spending.reserve(owner, cost)
    except spending.OverAllowance as exc:
        return (f"Retrying {count_of(len(failed), 'failed image')} costs {cost:g} credits; "
                f"{exc.whose} {max(0.0, exc.left):g} left this month. Nothing was retried.")
    db.session.rollback()  # each retry below reserves its own cost, as a single retry does
    return None


def retry_failed(generations: list[Generation]) -> str:
    """Queue every failed card again through lifecycle.retry, each re-reserving its cost; say what happened."""
    failed = [g for g in generations if g.status == Status.FAILED]
    if not failed:
        return "No image of this batch has failed."
    ids = [g.id for g in failed]
    refused = _short_of(failed)
    if refused:
        return refused
    retried = 0
    for generation_id in ids:
        try:
            retried += lifecycle.retry(generation_id)
        except spending.OverAllowance as exc:  # spent elsewhere meanwhile
            return f"Queued {retried} again; the rest did not fit: {exc}"
    return f"Queued {count_of(retried, 'failed image')} again."
