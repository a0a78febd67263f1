"""Moving an install's files between stores: copy, check size and hash, then switch the row; safe to rerun."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa

from app.extensions import db
from app.media_store.base import FileMissing, MediaStore, StoreError
from app.media_store.content_types import content_type_of
from app.media_store.stores import Stores
from app.models import Generation

log = logging.getLogger(__name__)
BATCH = 200


class CopyMismatch(StoreError):
    """A copy read back with another size or hash than the original."""


@dataclass
class RowToMove:
    """What a move needs of one generation: its id, files and the store holding them now."""

    id: int
    storage: str
    file_name: str
    thumb_name: str | None

    @property
    def names(self) -> list[str]:
        """The file, then the thumbnail if there is one."""
        return [self.file_name, *([self.thumb_name] if self.thumb_name else [])]


@dataclass
class MoveReport:
    """What a move did (or, in a dry run, would do)."""

    images: int = 0
    copied: int = 0
    bytes_copied: int = 0
    already_there: int = 0
    missing: list[int] = field(default_factory=list)
    changed_meanwhile: int = 0


def count_to_move(target: str) -> int:
    """Images whose files are not in the target store yet."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(Generation).where(_pending(target))) or 0


def _pending(target: str) -> sa.ColumnElement[bool]:
    return Generation.file_name.is_not(None) & (Generation.storage != target)


def rows_to_move(target: str) -> Iterator[RowToMove]:
    """Every image not yet in the target store, by id, read in batches (rows made meanwhile come too)."""
    after = 0
    while True:
        rows = db.session.execute(
            sa.select(Generation.id, Generation.storage, Generation.file_name, Generation.thumb_name)
            .where(_pending(target), Generation.id > after).order_by(Generation.id).limit(BATCH)).all()
        db.session.rollback()  # no transaction held open while files are copied
        if not rows:
            return
        for row in rows:
            yield RowToMove(row.id, row.storage, row.file_name, row.thumb_name)
        after = rows[-1].id


def _digest(store: MediaStore, name: str) -> tuple[int, str]:
    """Size and SHA-256 of a stored file, read as a stream."""
    stored = store.open(name)
    sha, size = hashlib.sha256(), 0
    for chunk in stored.chunks():
        sha.update(chunk)
        size += len(chunk)
    return size, sha.hexdigest()


def copy_file(source: MediaStore, target: MediaStore, name: str, dry_run: bool, report: MoveReport) -> None:
    """Copy one file unless the target already holds the same bytes (an interrupted run's copy is never redone)."""
    if dry_run:
        size = source.size(name)
        if size is None:
            raise FileMissing(name)
        if target.size(name) == size:
            report.already_there += 1
        else:
            report.copied += 1
            report.bytes_copied += size
        return
    stored = source.open(name)
    data = b"".join(stored.chunks())
    digest = hashlib.sha256(data).hexdigest()
    if target.size(name) == len(data) and _digest(target, name) == (len(data), digest):
        report.already_there += 1
        return
    target.put(name, data, content_type_of(name))
    if _digest(target, name) != (len(data), digest):
        raise CopyMismatch(f"{name} reads back differently from {target.name}")
    report.copied += 1
    report.bytes_copied += len(data)


def move_row(stores: Stores, row: RowToMove, target_name: str, dry_run: bool, report: MoveReport,
             delete_source: bool = False) -> None:
    """Copy a row's files to the target store, then point the row there (if nothing changed it meanwhile)."""
    source, target = stores.get(row.storage), stores.get(target_name)
    try:
        for name in row.names:
            copy_file(source, target, name, dry_run, report)
    except FileMissing:
        report.missing.append(row.id)
        log.warning("image %s: a file is missing from %s; row left as it is", row.id, row.storage)
        return
    report.images += 1
    if dry_run:
        return
    switched = db.session.execute(
        sa.update(Generation).where(
            Generation.id == row.id, Generation.storage == row.storage, Generation.file_name == row.file_name,
            Generation.thumb_name.is_(None) if row.thumb_name is None else Generation.thumb_name == row.thumb_name)
        .values(storage=target_name)).rowcount
    db.session.commit()
    if not switched:
        # Deleted or retried while we copied: its old files have no row any more, so neither may their copies.
        report.changed_meanwhile += 1
        for name in row.names:
            target.delete(name)
        return
    if delete_source:
        for name in row.names:
            source.delete(name)
