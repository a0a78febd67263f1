"""Everything an account made, as one streamed ZIP: each image file, then manifest.json describing every generation.

Rows are read a page at a time and each file goes from its store (local or S3) straight into the ZIP, so neither
the rows nor the files are ever held whole; the manifest comes last, written as its rows are read, so it can say
which files made it in.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import stream_with_context
from werkzeug.wrappers import Response

from app.extensions import db
from app.generations import statements
from app.media.archive import Chunked, Entry, dated_entry, opened, selection_name, stream_zip, streamed_zip
from app.media_store.base import MediaStore
from app.media_store.stores import Stores
from app.models import Batch, Generation, User, utcnow
from app.providers.options import OPTION_NAMES, GenerationOptions, column_of

MANIFEST = "manifest.json"
FORMAT = "image-generator-export/1"
PAGE = 200
# Columns the manifest leaves out: how this installation stores and runs a row, not what the person made.
INTERNAL_COLUMNS = frozenset({"owner_id", "job_id", "heartbeat_at", "storage", "file_name", "thumb_name",
                              "thumb_width", "thumb_height", "credits_month", "refunded", "max_attempts",
                              "queue_ahead", "mask_name"})
# The options go under "options", named as GenerationOptions names them; their columns are not repeated.
OPTION_COLUMNS = frozenset(column_of(name) for name in OPTION_NAMES)
RENAMED = {"seed": "seed_used"}


def exported_columns() -> list[str]:
    """The Generation columns each manifest entry carries besides its options: every one that is not internal."""
    return [attr.key for attr in sa.inspect(Generation).column_attrs
            if attr.key not in INTERNAL_COLUMNS | OPTION_COLUMNS]


def entry_name(row: Any) -> str:  # noqa: ANN401  (a Generation, or a row of its columns)
    """'images/1234-a-red-fox.png': where an image lies in the export."""
    return f"images/{selection_name(row)}"


def _plain(value: object) -> object:
    """A value as JSON holds it (times in ISO 8601, UTC)."""
    return value.isoformat() if isinstance(value, datetime) else value


def manifest_entry(row: sa.RowMapping, file: str | None) -> dict[str, object]:
    """One generation as the manifest describes it: its columns, its options, its batch's time, its file."""
    options = GenerationOptions(**{name: row[column_of(name)] for name in OPTION_NAMES})
    entry = {RENAMED.get(key, key): _plain(row[key]) for key in exported_columns()}
    entry.update(options=options.as_dict(), seed_requested=options.seed,
                 batch_created_at=_plain(row["batch_created_at"]), file=file)
    return entry


class _Made:
    """A ZIP entry made on the way, from pieces of bytes."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self.pieces = pieces

    def chunks(self) -> Iterator[bytes]:
        """The pieces, as they are made."""
        yield from self.pieces


class AccountExport:
    """One account's export: its image files in id order, then the manifest."""

    def __init__(self, user: User, stores: Stores) -> None:
        self.user_id, self.stores = user.id, stores
        self.account = {"id": user.id, "email": user.email, "created_at": _plain(user.created_at)}
        # Images made after the export began wait for the next one, so the files and the manifest agree.
        self.last_id = db.session.scalar(sa.select(sa.func.max(Generation.id))
                                         .where(Generation.owner_id == user.id)) or 0
        self.written: set[str] = set()

    @property
    def download_name(self) -> str:
        """The ZIP's file name, dated."""
        return f"image-generator-export-{utcnow():%Y-%m-%d}.zip"

    def entries(self) -> Iterator[tuple[Entry, Chunked]]:
        """Every image file (one whose file is gone from its store is left out), then the manifest."""
        for entry, stored in opened(self._files()):
            self.written.add(entry.filename if isinstance(entry, zipfile.ZipInfo) else entry)
            yield entry, stored
        yield MANIFEST, _Made(self._manifest())

    def chunks(self) -> Iterator[bytes]:
        """The whole ZIP, piece by piece."""
        return stream_zip(self.entries())

    def _pages(self, statement: sa.Select) -> Iterator[sa.Row]:
        """The account's rows of this query in id order, a page per query, no connection held between pages."""
        after = 0
        while True:
            page = db.session.execute(statement.where(
                Generation.owner_id == self.user_id, Generation.id > after, Generation.id <= self.last_id,
            ).order_by(Generation.id).limit(PAGE)).all()
            statements.release()  # the rows are plain values: nothing to keep the transaction open for
            if not page:
                return
            yield from page
            after = page[-1].id

    def _files(self) -> Iterator[tuple[zipfile.ZipInfo, MediaStore, str]]:
        columns = (Generation.id, Generation.prompt, Generation.mime_type, Generation.storage, Generation.file_name,
                   Generation.finished_at, Generation.created_at)
        for row in self._pages(sa.select(*columns).where(Generation.file_name.is_not(None))):
            yield dated_entry(entry_name(row), row.finished_at or row.created_at), self.stores.get(row.storage), \
                row.file_name

    def _manifest(self) -> Iterator[bytes]:
        """The manifest's JSON, a generation at a time."""
        head = json.dumps({"format": FORMAT, "exported_at": _plain(utcnow()), "account": self.account})
        yield head[:-1].encode() + b', "generations": [\n'  # the object left open for the list that follows
        columns = {getattr(Generation, key) for key in exported_columns()} | {
            getattr(Generation, column) for column in OPTION_COLUMNS} | {Generation.prompt, Generation.mime_type}
        statement = sa.select(*columns, Batch.created_at.label("batch_created_at")).join(Batch)
        separator = b""
        for row in self._pages(statement):
            name = entry_name(row)
            entry = manifest_entry(row._mapping, name if name in self.written else None)
            yield separator + json.dumps(entry, ensure_ascii=False).encode()
            separator = b",\n"
        yield f'\n], "image_files": {len(self.written)}}}\n'.encode()


def export_response(user: User, stores: Stores) -> Response:
    """The export as a download, streamed while it is built (its rows read as it goes, in the request's context)."""
    export = AccountExport(user, stores)
    return streamed_zip(stream_with_context(export.entries()), export.download_name)
