"""Keyset pagination of images on (created_at, id), newest first."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.extensions import db
from app.models import Batch, Generation, parse_id
from app.providers.operations import GENERATE, OPERATIONS, UPLOAD, operation_label
from app.providers.options import MODELS
from app.text.storable import without_unsafe_characters

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)
# The last microsecond a datetime holds; a cursor past it pages back from there.
MAX_CURSOR_MICROS = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - EPOCH) // ONE_MICROSECOND


@dataclass(frozen=True)
class Cursor:
    """Position after which the next page starts: a creation time in microseconds and an id."""

    micros: int
    id: int

    @classmethod
    def parse(cls, raw: str) -> Cursor | None:
        """Read 'micros-id'; anything malformed means the first page."""
        micros, _, ident = raw.partition("-")
        generation_id = parse_id(ident)
        if not micros.isdecimal() or len(micros) > 17 or generation_id is None:
            return None  # 17 digits of microseconds reach past the year 4000
        return cls(int(micros), generation_id)

    @classmethod
    def after(cls, generation: Generation | Batch) -> Cursor:
        """The cursor that continues after this generation (or batch: the API pages batches the same way)."""
        # Integer arithmetic: a float timestamp would round some microseconds away.
        return cls((generation.created_at - EPOCH) // ONE_MICROSECOND, generation.id)

    def __str__(self) -> str:
        return f"{self.micros}-{self.id}"

    @property
    def created_at(self) -> datetime:
        """The creation time as a UTC datetime."""
        return EPOCH + self.micros * ONE_MICROSECOND


GALLERY_STATUSES = ("succeeded", "filtered")
# What made an image, as the operation filter offers it: from text, uploaded, then each operation.
GALLERY_OPERATIONS = {name: operation_label(name) for name in (GENERATE, UPLOAD, *OPERATIONS)}


@dataclass(frozen=True)
class GalleryFilter:
    """What the gallery is narrowed to; kept in the URL so a search can be shared and bookmarked."""

    q: str = ""
    status: str = ""
    model: str = ""
    owner: int | None = None  # admins only: one user's images
    operation: str = ""  # what made it: "generate", "upload" or an operation's name

    @classmethod
    def from_args(cls, args: Mapping[str, str], may_filter_owner: bool = False) -> GalleryFilter:
        """Read ?q=&status=&model=&operation=&owner=, dropping values that are not offered."""
        status = args.get("status", "")
        model = args.get("model", "")
        operation = args.get("operation", "")
        # Characters no stored prompt can hold are dropped rather than sent to the database (NUL fails there).
        q = without_unsafe_characters(args.get("q", "")).strip()[:200]
        return cls(q=q, status=status if status in GALLERY_STATUSES else "",
                   model=model if model in MODELS else "",
                   operation=operation if operation in GALLERY_OPERATIONS else "",
                   owner=parse_id(args.get("owner")) if may_filter_owner else None)

    def as_args(self) -> dict[str, str]:
        """The non-empty filters, for links that keep them."""
        pairs = (("q", self.q), ("status", self.status), ("model", self.model), ("operation", self.operation),
                 ("owner", str(self.owner or "")))
        return {key: value for key, value in pairs if value}

    def apply(self, query: sa.Select) -> sa.Select:
        """Narrow a query of generations."""
        if self.q:
            query = query.where(Generation.prompt.ilike(f"%{escape_like(self.q)}%", escape="\\"))
        if self.status:
            query = query.where(Generation.status == self.status)
        if self.model:
            query = query.where(Generation.model == self.model)
        if self.operation:
            query = query.where(Generation.operation == self.operation)
        if self.owner is not None:
            query = query.where(Generation.owner_id == self.owner)
        return query


def escape_like(text: str) -> str:
    """Make %, _ and the escape character itself match literally in LIKE."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class GalleryPage:
    """One page of images and the cursor of the next, if any."""

    items: list[Generation]
    next_cursor: Cursor | None


def gallery_page(cursor: Cursor | None, size: int, filters: GalleryFilter | None = None,
                 visible: sa.ColumnElement[bool] | None = None, with_owners: bool = False) -> GalleryPage:
    """Fetch one page of the images `visible` allows with a single indexed query (plus owners, for admins)."""
    query = sa.select(Generation).where(Generation.file_name.is_not(None))
    if visible is not None:
        query = query.where(visible)
    if with_owners:
        query = query.options(so.joinedload(Generation.owner))
    query = (filters or GalleryFilter()).apply(query)
    if cursor is not None:
        query = query.where(sa.tuple_(Generation.created_at, Generation.id) < (cursor.created_at, cursor.id))
    rows = list(db.session.scalars(
        query.order_by(Generation.created_at.desc(), Generation.id.desc()).limit(size + 1)
    ))
    more = len(rows) > size
    items = rows[:size]
    return GalleryPage(items=items, next_cursor=Cursor.after(items[-1]) if more else None)


def gallery_count(filters: GalleryFilter | None = None, visible: sa.ColumnElement[bool] | None = None) -> int:
    """How many images the search finds in all, with one COUNT query."""
    query = sa.select(sa.func.count()).select_from(Generation).where(Generation.file_name.is_not(None))
    if visible is not None:
        query = query.where(visible)
    return db.session.scalar((filters or GalleryFilter()).apply(query)) or 0
