"""Keyset pagination of images on (created_at, id), newest or oldest first, or on (your rating, created_at, id)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.extensions import db
from app.models import Batch, CollectionImage, Generation, Rating, Star, parse_id
from app.providers.operations import GENERATE, OPERATIONS, UPLOAD, operation_label
from app.providers.options import MODELS
from app.text.storable import without_unsafe_characters

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)
# The last microsecond a datetime holds; a cursor past it pages back from there.
MAX_CURSOR_MICROS = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - EPOCH) // ONE_MICROSECOND


@dataclass(frozen=True)
class Cursor:
    """Position after which the next page starts: a creation time in microseconds and an id (and, sorted by
    rating, the rating of the last image: 0 for none)."""

    micros: int
    id: int
    rating: int | None = None

    @classmethod
    def parse(cls, raw: str) -> Cursor | None:
        """Read 'micros-id' (or 'rating-micros-id'); anything malformed means the first page."""
        rating = None
        if raw.count("-") == 2:
            head, _, raw = raw.partition("-")
            if head not in ("0", "1", "2", "3", "4", "5"):
                return None
            rating = int(head)
        micros, _, ident = raw.partition("-")
        generation_id = parse_id(ident)
        if not micros.isdecimal() or len(micros) > 17 or generation_id is None:
            return None  # 17 digits of microseconds reach past the year 4000
        return cls(int(micros), generation_id, rating)

    @classmethod
    def after(cls, generation: Generation | Batch) -> Cursor:
        """The cursor that continues after this generation (or batch: the API pages batches the same way)."""
        # Integer arithmetic: a float timestamp would round some microseconds away.
        return cls((generation.created_at - EPOCH) // ONE_MICROSECOND, generation.id)

    def __str__(self) -> str:
        return f"{self.micros}-{self.id}" if self.rating is None else f"{self.rating}-{self.micros}-{self.id}"

    @property
    def created_at(self) -> datetime:
        """The creation time as a UTC datetime."""
        return EPOCH + self.micros * ONE_MICROSECOND


GALLERY_STATUSES = ("succeeded", "filtered")
# What made an image, as the operation filter offers it: from text, uploaded, then each operation.
GALLERY_OPERATIONS = {name: operation_label(name) for name in (GENERATE, UPLOAD, *OPERATIONS)}
SORTS = {"newest": "Newest first", "oldest": "Oldest first", "rating": "Your rating, highest first"}


@dataclass(frozen=True)
class GalleryFilter:
    """What the gallery is narrowed to; kept in the URL so a search can be shared and bookmarked."""

    q: str = ""
    status: str = ""
    model: str = ""
    owner: int | None = None  # admins only: one user's images
    operation: str = ""  # what made it: "generate", "upload" or an operation's name
    starred: bool = False  # only the images the viewer starred
    collection: int | None = None  # only one collection's images (its access checked by the caller)
    sort: str = "newest"
    viewer: int | None = None  # whose stars and rating the filter and the rating sort read

    @classmethod
    def from_args(cls, args: Mapping[str, str], may_filter_owner: bool = False,
                  viewer: int | None = None) -> GalleryFilter:
        """Read ?q=&status=&model=&operation=&owner=&starred=&collection=&sort=, dropping values not offered."""
        status = args.get("status", "")
        model = args.get("model", "")
        operation = args.get("operation", "")
        sort = args.get("sort", "")
        # Characters no stored prompt can hold are dropped rather than sent to the database (NUL fails there).
        q = without_unsafe_characters(args.get("q", "")).strip()[:200]
        return cls(q=q, status=status if status in GALLERY_STATUSES else "",
                   model=model if model in MODELS else "",
                   operation=operation if operation in GALLERY_OPERATIONS else "",
                   owner=parse_id(args.get("owner")) if may_filter_owner else None,
                   starred=str(args.get("starred", "")).lower() in ("1", "true", "on"),
                   collection=parse_id(str(args.get("collection") or "")), sort=sort if sort in SORTS else "newest",
                   viewer=viewer)

    def as_args(self) -> dict[str, str]:
        """The non-empty filters (and a sort other than newest), for links that keep them."""
        pairs = (("q", self.q), ("status", self.status), ("model", self.model), ("operation", self.operation),
                 ("owner", str(self.owner or "")), ("starred", "1" if self.starred else ""),
                 ("collection", str(self.collection or "")), ("sort", "" if self.sort == "newest" else self.sort))
        return {key: value for key, value in pairs if value}

    def apply(self, query: sa.Select) -> sa.Select:
        """Narrow a query of generations."""
        if self.starred:
            query = query.where(sa.exists().where(Star.generation_id == Generation.id, Star.user_id == self.viewer))
        if self.collection is not None:
            query = query.where(sa.exists().where(CollectionImage.generation_id == Generation.id,
                                                  CollectionImage.collection_id == self.collection))
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


def _rating_order(query: sa.Select, cursor: Cursor | None, size: int, viewer: int | None) -> sa.Select:
    """The viewer's rated images (5 to 1, then newest) followed by the unrated ones (newest first), in one statement.

    Two keyset halves joined by UNION ALL, each reading at most size + 1 rows by an index: the rated half from the
    viewer's ratings, the unrated half backwards along (created_at, id). A single ORDER BY on the rating (0 for
    none) would sort every image of the gallery on each page.
    """
    mine = sa.and_(Rating.generation_id == Generation.id, Rating.user_id == viewer)
    rated = query.with_only_columns(Generation.id.label("gid"), Rating.value.label("rank"),
                                    Generation.created_at.label("made")).join(Rating, mine)
    unrated = query.with_only_columns(Generation.id.label("gid"), sa.literal(0).label("rank"),
                                      Generation.created_at.label("made")).where(~sa.exists().where(mine))
    # The rated half walks ix_ratings_user_value_image_created_at: its keys are the rating's own columns.
    key = sa.tuple_(Rating.value, Rating.image_created_at, Rating.generation_id)
    if cursor is not None and cursor.rating:
        rated = rated.where(key < (cursor.rating, cursor.created_at, cursor.id))
    elif cursor is not None:
        rated = rated.where(sa.false())
        unrated = unrated.where(sa.tuple_(Generation.created_at, Generation.id) < (cursor.created_at, cursor.id))
    halves = sa.union_all(
        sa.select(rated.order_by(Rating.value.desc(), Rating.image_created_at.desc(), Rating.generation_id.desc())
                  .limit(size + 1).subquery()),
        sa.select(unrated.order_by(Generation.created_at.desc(), Generation.id.desc()).limit(size + 1).subquery()),
    ).subquery()
    return (sa.select(Generation, halves.c.rank).join(halves, halves.c.gid == Generation.id)
            .order_by(halves.c.rank.desc(), halves.c.made.desc(), halves.c.gid.desc()))


def gallery_page(cursor: Cursor | None, size: int, filters: GalleryFilter | None = None,
                 visible: sa.ColumnElement[bool] | None = None, with_owners: bool = False) -> GalleryPage:
    """Fetch one page of the images `visible` allows with a single indexed query (plus owners, for admins)."""
    filters = filters or GalleryFilter()
    query = sa.select(Generation).where(Generation.file_name.is_not(None))
    if visible is not None:
        query = query.where(visible)
    query = filters.apply(query)
    if filters.sort == "rating":
        query = _rating_order(query, cursor, size, filters.viewer)
    elif filters.sort == "oldest":
        if cursor is not None:
            query = query.where(sa.tuple_(Generation.created_at, Generation.id) > (cursor.created_at, cursor.id))
        query = query.add_columns(sa.null()).order_by(Generation.created_at.asc(), Generation.id.asc())
    else:
        if cursor is not None:
            query = query.where(sa.tuple_(Generation.created_at, Generation.id) < (cursor.created_at, cursor.id))
        query = query.add_columns(sa.null()).order_by(Generation.created_at.desc(), Generation.id.desc())
    if with_owners:
        query = query.options(so.joinedload(Generation.owner))
    rows = db.session.execute(query.limit(size + 1)).all()
    more = len(rows) > size
    items = [row[0] for row in rows[:size]]
    if not more:
        return GalleryPage(items=items, next_cursor=None)
    last = Cursor.after(items[-1])
    if filters.sort == "rating":
        last = Cursor(last.micros, last.id, int(rows[size - 1][1]))
    return GalleryPage(items=items, next_cursor=last)


def gallery_count(filters: GalleryFilter | None = None, visible: sa.ColumnElement[bool] | None = None) -> int:
    """How many images the search finds in all, with one COUNT query."""
    query = sa.select(sa.func.count()).select_from(Generation).where(Generation.file_name.is_not(None))
    if visible is not None:
        query = query.where(visible)
    return db.session.scalar((filters or GalleryFilter()).apply(query)) or 0
