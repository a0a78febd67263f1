"""Stars and ratings: each person's own star and 1–5 rating of an image, and every image's average and count."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import Generation, Rating, Star, utcnow

RATINGS = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Marks:
    """What one person sees on an image: their star and rating, and everyone's average and count."""

    starred: bool = False
    my_rating: int | None = None
    average: float | None = None
    count: int = 0


NO_MARKS = Marks()


def marks_of(generation_ids: Iterable[int], user_id: int | None) -> dict[int, Marks]:
    """Marks of these images for this person, with two queries whatever their number (none for no images)."""
    ids = list(set(generation_ids))
    if not ids:
        return {}
    starred = set(db.session.scalars(sa.select(Star.generation_id).where(
        Star.user_id == user_id, Star.generation_id.in_(ids)))) if user_id is not None else set()
    mine = sa.func.max(sa.case((Rating.user_id == user_id, Rating.value))) if user_id is not None else sa.null()
    rows = db.session.execute(
        sa.select(Rating.generation_id, sa.func.avg(Rating.value), sa.func.count(), mine)
        .where(Rating.generation_id.in_(ids)).group_by(Rating.generation_id)).all()
    rated = {gid: (float(average), count, my) for gid, average, count, my in rows}
    marks = {}
    for gid in ids:
        average, count, my = rated.get(gid, (None, 0, None))
        marks[gid] = Marks(starred=gid in starred, my_rating=my, average=average, count=count)
    return marks


def marks_for(generation_id: int, user_id: int | None) -> Marks:
    """One image's marks."""
    return marks_of([generation_id], user_id)[generation_id]


def set_star(user_id: int, generation_id: int, starred: bool) -> None:
    """Star or unstar; doing it twice is the same as once."""
    existing = db.session.get(Star, (user_id, generation_id))
    if starred and existing is None:
        db.session.add(Star(user_id=user_id, generation_id=generation_id))
    elif not starred and existing is not None:
        db.session.delete(existing)
    _commit_once()


def set_rating(user_id: int, generation: Generation, value: int | None) -> None:
    """Rate 1–5, or clear with None; each person has one rating per image."""
    if value is not None and value not in RATINGS:
        raise ValueError(f"a rating is 1 to 5, not {value!r}")
    existing = db.session.get(Rating, (user_id, generation.id))
    if value is None:
        if existing is not None:
            db.session.delete(existing)
    elif existing is None:
        db.session.add(Rating(user_id=user_id, generation_id=generation.id, value=value,
                              image_created_at=generation.created_at))
    else:
        existing.value, existing.updated_at = value, utcnow()
    _commit_once()


def _commit_once() -> None:
    """Commit; a double click that already wrote the same row wins, and this one changes nothing."""
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
