"""Collections: named sets of images with a cover, private or shared with the team; an image may be in several."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from app.accounts import ownership
from app.extensions import db
from app.models import Collection, CollectionImage, Generation, ShareLink, User, Visibility, parse_id
from app.text.storable import first_unsafe_character, unsafe_character_message

MAX_NAME_LENGTH = 100
MAX_IMAGES_PER_CHANGE = 100  # as the gallery's selection: one request adds or removes at most this many
VISIBILITIES = tuple(v.value for v in Visibility)
VISIBILITY_LABELS = {"private": "Only me", "team-view": "The team can view", "team-edit": "The team can edit"}


class CollectionError(ValueError):
    """A collection that cannot be made or changed as asked; the message says why."""


@dataclass(frozen=True)
class CollectionSummary:
    """A collection in a list: how many images it holds and the one on its cover."""

    collection: Collection
    count: int
    cover_id: int | None


def name_problem(name: str) -> str | None:
    """Why a collection name cannot be used, or None."""
    if not name:
        return "Give the collection a name."
    if len(name) > MAX_NAME_LENGTH:
        return f"Use at most {MAX_NAME_LENGTH} characters."
    found = first_unsafe_character(name)
    if found:
        return unsafe_character_message(*found)
    return None


def _checked(name: str, visibility: str) -> str:
    name = name.strip()
    problem = name_problem(name)
    if problem:
        raise CollectionError(problem)
    if visibility not in VISIBILITIES:
        raise CollectionError(f"Visibility is one of {', '.join(VISIBILITIES)}.")
    return name


def create_collection(owner: User, name: str, visibility: str = "private") -> Collection:
    """A new, empty collection of the owner's."""
    collection = Collection(owner_id=owner.id, name=_checked(name, visibility), visibility=visibility)
    db.session.add(collection)
    db.session.commit()
    return collection


def update_collection(collection: Collection, name: str | None = None, visibility: str | None = None,
                      cover_id: int | None = None) -> Collection:
    """Rename, share or unshare, or choose the cover (an image the collection holds)."""
    collection.name = _checked(collection.name if name is None else name,
                               collection.visibility if visibility is None else visibility)
    if visibility is not None:
        collection.visibility = visibility
    if cover_id is not None:
        if cover_id not in set(image_ids(collection.id)):
            raise CollectionError("The cover must be one of the collection's images.")
        collection.cover_id = cover_id
    db.session.commit()
    return collection


def delete_collection(collection: Collection) -> None:
    """Delete the collection and its share links; its images stay where they are."""
    # Explicitly, not by the foreign keys' cascade alone: SQLite enforces none.
    db.session.execute(sa.delete(CollectionImage).where(CollectionImage.collection_id == collection.id))
    db.session.execute(sa.delete(ShareLink).where(ShareLink.collection_id == collection.id))
    db.session.delete(collection)
    db.session.commit()


def parse_ids(raw_ids: Sequence[object]) -> list[int]:
    """Image ids from a request (numbers or digit strings), or CollectionError."""
    unique = list(dict.fromkeys(str(raw) for raw in raw_ids))
    if not unique:
        raise CollectionError("Select at least one image first.")
    if len(unique) > MAX_IMAGES_PER_CHANGE:
        raise CollectionError(f"Add or remove at most {MAX_IMAGES_PER_CHANGE} images at a time.")
    ids = [parse_id(raw) for raw in unique]
    if None in ids:
        raise LookupError("not an image id")
    return [i for i in ids if i is not None]


def require_viewable(ids: list[int]) -> None:
    """LookupError unless the user may see every one of these images."""
    found = set(db.session.scalars(sa.select(Generation.id).where(
        Generation.id.in_(ids), Generation.file_name.is_not(None), ownership.viewable())))
    if found != set(ids):
        raise LookupError("an image that is missing or someone else's")


def add_images(collection: Collection, ids: list[int], user: User) -> int:
    """Add images the user may see (LookupError if any is not); returns how many were new to the collection."""
    require_viewable(ids)
    present = set(image_ids(collection.id))
    new = [i for i in ids if i not in present]
    db.session.add_all(CollectionImage(collection_id=collection.id, generation_id=i, added_by_id=user.id) for i in new)
    db.session.commit()
    return len(new)


def remove_images(collection: Collection, ids: list[int]) -> int:
    """Take images out of the collection (never deleting them); returns how many it held."""
    result = db.session.execute(sa.delete(CollectionImage).where(
        CollectionImage.collection_id == collection.id, CollectionImage.generation_id.in_(ids)))
    if collection.cover_id in ids:
        collection.cover_id = None
    db.session.commit()
    return result.rowcount or 0


def image_ids(collection_id: int) -> list[int]:
    """The ids of the images a collection holds."""
    return list(db.session.scalars(sa.select(CollectionImage.generation_id).where(
        CollectionImage.collection_id == collection_id)))


def images_of(collection_id: int) -> list[Generation]:
    """A collection's images, newest first (for its ZIP and its share link)."""
    return list(db.session.scalars(
        sa.select(Generation).join(CollectionImage, CollectionImage.generation_id == Generation.id)
        .where(CollectionImage.collection_id == collection_id, Generation.file_name.is_not(None))
        .order_by(Generation.created_at.desc(), Generation.id.desc())))


def summaries(where: sa.ColumnElement[bool]) -> list[CollectionSummary]:
    """The collections `where` allows, by name, each with its count and cover, in one query."""
    # Joined to the images: SQLite enforces no cascades, so a deleted image's row may outlive it there.
    count = (sa.select(sa.func.count()).select_from(CollectionImage)
             .join(Generation, Generation.id == CollectionImage.generation_id)
             .where(CollectionImage.collection_id == Collection.id)
             .correlate(Collection).scalar_subquery())
    newest = (sa.select(CollectionImage.generation_id).where(CollectionImage.collection_id == Collection.id)
              .order_by(CollectionImage.added_at.desc(), CollectionImage.generation_id.desc()).limit(1)
              .correlate(Collection).scalar_subquery())
    rows = db.session.execute(sa.select(Collection, count, sa.func.coalesce(Collection.cover_id, newest))
                              .where(where).order_by(Collection.name, Collection.id)).all()
    return [CollectionSummary(collection, n, cover) for collection, n, cover in rows]


def summary(collection: Collection) -> CollectionSummary:
    """One collection's count and cover."""
    return summaries(Collection.id == collection.id)[0]
