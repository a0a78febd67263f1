"""Database models: users, a Batch of prompts and one Generation per image, tokens, spending, remembered options,
wildcard lists."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.extensions import db
from app.providers.operations import GENERATE, UPLOAD
from app.providers.options import DEFAULT_OPTIONS, OPTION_NAMES, GenerationOptions, column_of


def utcnow() -> datetime:
    """Return the current time in UTC (a callable, so defaults are evaluated per row)."""
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A time stored in UTC and always read back aware: SQLite hands times back naive, PostgreSQL aware."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """The stored time, marked as UTC where the driver left it naive."""
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


MAX_ID = 2**31 - 1  # ids are 32-bit integer columns on PostgreSQL


def parse_id(raw: str | None) -> int | None:
    """A database id from a query parameter, or None for anything that cannot be one."""
    if not raw or not raw.isdecimal() or len(raw) > 10:
        return None
    value = int(raw)
    return value if 0 < value <= MAX_ID else None


class Status(enum.StrEnum):
    """Lifecycle of a generation; the last four are final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FILTERED = "filtered"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_final(self) -> bool:
        """True once nothing more will happen to the generation."""
        return self not in (Status.QUEUED, Status.RUNNING)


FINAL_STATUSES = [s.value for s in Status if s.is_final]
UNFINISHED = (Status.QUEUED, Status.RUNNING)

# A card keeps only its latest earlier attempts: retries are unlimited, a row and its page must not be.
HISTORY_LIMIT = 10


def appended_history(history: list[dict], entry: dict) -> list[dict]:
    """A new list: the history with entry added last, keeping only the last HISTORY_LIMIT entries."""
    # A new list, never an in-place append: the JSON column only saves a value it sees replaced.
    return [*history, entry][-HISTORY_LIMIT:]


class User(db.Model):
    """Someone who may sign in: a member, or an admin who sees everything and manages accounts."""

    __tablename__ = "users"
    # SQLite must never hand a deleted account's id to a new one: old password links and copied cookies name it.
    __table_args__ = {"sqlite_autoincrement": True}

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    email: so.Mapped[str] = so.mapped_column(sa.String(254), unique=True)  # stored lower-cased
    password_hash: so.Mapped[str | None] = so.mapped_column(sa.String(255))  # None until an invite is used
    is_admin: so.Mapped[bool] = so.mapped_column(default=False, server_default=sa.false())
    disabled: so.Mapped[bool] = so.mapped_column(default=False, server_default=sa.false())
    # Credits per calendar month (UTC); None means no per-user cap.
    monthly_credits: so.Mapped[float | None]
    # Part of every password link: bumping it (a password set, a disable) makes the links made before unusable.
    session_version: so.Mapped[int] = so.mapped_column(default=1, server_default="1")
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    last_login_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    # Set while the account is being deleted (it is disabled too), and again after each chunk the deletion removes:
    # the reaper resumes a deletion silent for REAPER_STALE_SECONDS (app/generations/erasure.py).
    deletion_heartbeat_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    @property
    def being_deleted(self) -> bool:
        """True from the moment the account's deletion is asked for until its row is gone."""
        return self.deletion_heartbeat_at is not None

    # Flask-Login's user protocol.
    @property
    def is_active(self) -> bool:
        """Disabled accounts (and those being deleted) cannot sign in, and their sessions end."""
        return not self.disabled and not self.being_deleted

    @property
    def is_authenticated(self) -> bool:
        """Every loaded user is signed in."""
        return True

    @property
    def is_anonymous(self) -> bool:
        """Never anonymous."""
        return False

    def get_id(self) -> str:
        """Flask-Login's id of the account; the cookie carries its session's secret instead (accounts/sessions.py)."""
        return str(self.id)


class MonthlySpend(db.Model):
    """Credits reserved in one calendar month by one user ("user:<id>") or by the whole install ("all")."""

    __tablename__ = "monthly_spend"

    scope: so.Mapped[str] = so.mapped_column(sa.String(32), primary_key=True)
    month: so.Mapped[str] = so.mapped_column(sa.String(7), primary_key=True)  # "2026-12"
    credits: so.Mapped[float] = so.mapped_column(default=0, server_default="0")


class Batch(db.Model):
    """One submission of the prompt form."""

    __tablename__ = "batches"
    __table_args__ = (
        # The API's list of batches, newest first: a member's own, and everyone's for admins.
        sa.Index("ix_batches_owner_created_at_id", "owner_id", "created_at", "id"),
        sa.Index("ix_batches_created_at_id", "created_at", "id"),
        # Ids appear in URLs: SQLite must never hand a deleted row's id to a new one (PostgreSQL never does).
        {"sqlite_autoincrement": True},
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    # None only for rows made before accounts existed, until the first admin is created.
    owner_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    # Each prompt's images are consecutive positions: position = (prompt number - 1) × this + (image number - 1).
    images_per_prompt: so.Mapped[int] = so.mapped_column(default=1, server_default="1")
    # A comparison grid's axes as sent, each with its resolved values (app/variations/grids.py); None: no grid.
    grid: so.Mapped[dict | None] = so.mapped_column(sa.JSON(none_as_null=True))
    generations: so.Mapped[list[Generation]] = so.relationship(
        back_populates="batch", order_by="Generation.position", cascade="all, delete-orphan"
    )


class Generation(db.Model):
    """One prompt of a batch, its request options and the image it produced."""

    __tablename__ = "generations"
    __table_args__ = (
        sa.UniqueConstraint("batch_id", "position", name="uq_generations_batch_position"),
        sa.Index("ix_generations_created_at_id", "created_at", "id"),
        # Queue positions count the queued rows ahead of a card: status first, then id.
        sa.Index("ix_generations_status_id", "status", "id"),
        sa.Index("ix_generations_status_created_at_id", "status", "created_at", "id"),
        # The reaper's sweep: unfinished rows by how long ago they last showed life.
        sa.Index("ix_generations_status_heartbeat_at", "status", "heartbeat_at"),
        # A member's gallery, and a member's place in the queue.
        sa.Index("ix_generations_owner_created_at_id", "owner_id", "created_at", "id"),
        sa.Index("ix_generations_owner_status_id", "owner_id", "status", "id"),
        # The generate page's time-left estimate: a model's latest successes.
        sa.Index("ix_generations_model_status_finished_at", "model", "status", "finished_at"),
        # The gallery's operation filter within a member's images.
        sa.Index("ix_generations_owner_operation_created_at_id", "owner_id", "operation", "created_at", "id"),
        # On PostgreSQL a pg_trgm GIN index on prompt serves the gallery search; the migration creates it.
        {"sqlite_autoincrement": True},  # as for batches: a deleted image's id never names a new one
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    batch_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("batches.id", ondelete="CASCADE"))
    # The batch's owner, repeated here so the gallery and queue positions are one-table, indexed queries.
    owner_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    # What this attempt reserved of its owner's allowance, and in which month; refunded once if not charged.
    credits: so.Mapped[float] = so.mapped_column(default=0, server_default="0")
    credits_month: so.Mapped[str | None] = so.mapped_column(sa.String(7))
    refunded: so.Mapped[bool] = so.mapped_column(default=False, server_default=sa.false())
    position: so.Mapped[int]
    # What made it (app/providers/operations.py): "generate" from text, "upload", or an operation on `source_id`.
    operation: so.Mapped[str] = so.mapped_column(sa.String(40), default=GENERATE, server_default=GENERATE)
    # The image it was made from; deleting that image keeps this one (SET NULL), which then says the source is gone.
    source_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("generations.id", ondelete="SET NULL"), index=True)
    # The operation's own fields, named as the Stability API names them (strength, left, search_prompt, …).
    operation_params: so.Mapped[dict | None] = so.mapped_column(sa.JSON)
    # The painted mask (a PNG) of inpaint and erase, in the store named by `storage`.
    mask_name: so.Mapped[str | None] = so.mapped_column(sa.String(128))
    # An async operation's result id, stored once the API accepted the request: polled, never sent again.
    result_id: so.Mapped[str | None] = so.mapped_column(sa.String(128))
    prompt: so.Mapped[str] = so.mapped_column(sa.Text)
    model: so.Mapped[str] = so.mapped_column(sa.String(32), default=DEFAULT_OPTIONS.model)
    aspect_ratio: so.Mapped[str] = so.mapped_column(sa.String(8), default=DEFAULT_OPTIONS.aspect_ratio)
    output_format: so.Mapped[str] = so.mapped_column(sa.String(8), default=DEFAULT_OPTIONS.output_format)
    negative_prompt: so.Mapped[str | None] = so.mapped_column(sa.Text)
    style_preset: so.Mapped[str | None] = so.mapped_column(sa.String(32))
    requested_seed: so.Mapped[int | None] = so.mapped_column(sa.BigInteger)  # None: the API picks one
    cfg_scale: so.Mapped[float | None]
    # Its place in its batch's comparison grid: {"x": i, "y": j, "z": k}, indexes into the axes' values.
    cell: so.Mapped[dict | None] = so.mapped_column(sa.JSON(none_as_null=True))
    attempts: so.Mapped[int] = so.mapped_column(default=0, server_default="0")
    max_attempts: so.Mapped[int] = so.mapped_column(default=1, server_default="1")
    provider: so.Mapped[str] = so.mapped_column(sa.String(16))
    status: so.Mapped[str] = so.mapped_column(sa.String(16), default=Status.QUEUED)
    error: so.Mapped[str | None] = so.mapped_column(sa.Text)
    api_error_id: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    api_request_id: so.Mapped[str | None] = so.mapped_column(sa.String(128))
    job_id: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    seed: so.Mapped[int | None] = so.mapped_column(sa.BigInteger)
    finish_reason: so.Mapped[str | None] = so.mapped_column(sa.String(32))
    file_name: so.Mapped[str | None] = so.mapped_column(sa.String(128))
    mime_type: so.Mapped[str | None] = so.mapped_column(sa.String(32))
    thumb_name: so.Mapped[str | None] = so.mapped_column(sa.String(128))
    # Which store holds file_name and thumb_name ('local' or 's3'): during a move rows differ, and each is read
    # from its own.
    storage: so.Mapped[str] = so.mapped_column(sa.String(8), default="local", server_default="local")
    thumb_width: so.Mapped[int | None]
    thumb_height: so.Mapped[int | None]
    # Earlier attempts' outcomes, oldest first: [{"at": iso time, "status": ..., "error": ...}]
    history: so.Mapped[list[dict]] = so.mapped_column(sa.JSON, default=list, server_default="[]")
    byte_size: so.Mapped[int | None]
    width: so.Mapped[int | None]
    height: so.Mapped[int | None]
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    started_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    # When the row was last queued, or last known to be worked on: the reaper's evidence of life.
    heartbeat_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    finished_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    batch: so.Mapped[Batch] = so.relationship(back_populates="generations")
    owner: so.Mapped[User | None] = so.relationship()
    source: so.Mapped[Generation | None] = so.relationship(remote_side=[id], foreign_keys=[source_id])
    # Queued rows ahead of this one across every batch; loaded only by the generate page's query.
    queue_ahead: so.Mapped[int | None] = so.query_expression()

    @property
    def options(self) -> GenerationOptions:
        """The options this generation was requested with."""
        return GenerationOptions(**{name: getattr(self, column_of(name)) for name in OPTION_NAMES})

    @staticmethod
    def option_columns(options: GenerationOptions) -> dict[str, object]:
        """The column values that store these options."""
        return {column_of(name): value for name, value in options.as_dict().items()}

    @property
    def status_enum(self) -> Status:
        """The status as an enum member."""
        return Status(self.status)

    @property
    def has_image(self) -> bool:
        """True when a file was stored (a success, or a blurred filtered result)."""
        return self.file_name is not None

    @property
    def is_retrying(self) -> bool:
        """True while a later attempt runs after a transient failure."""
        return self.status == Status.RUNNING and self.attempts > 1

    @property
    def shown_history(self) -> list[dict]:
        """The earlier attempts a card lists: the last HISTORY_LIMIT (rows from before the cap may hold more)."""
        return (self.history or [])[-HISTORY_LIMIT:]

    @property
    def history_is_capped(self) -> bool:
        """True once older attempts may have been dropped from the history."""
        return len(self.history or []) >= HISTORY_LIMIT

    @property
    def is_demo(self) -> bool:
        """True for placeholders drawn by the offline demo provider."""
        return self.provider == "demo"

    @property
    def is_upload(self) -> bool:
        """True for a picture its owner uploaded: made by no provider, charged nothing."""
        return self.operation == UPLOAD

    @property
    def prompt_number(self) -> int:
        """Which of its batch's prompts this image is of, from 1."""
        return self.position // self.batch.images_per_prompt + 1

    @property
    def image_number(self) -> int:
        """Which of its prompt's images this is, from 1."""
        return self.position % self.batch.images_per_prompt + 1


class ApiToken(db.Model):
    """A personal access token: only the SHA-256 of its secret is kept, with a prefix to recognise it by."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        # A user's live tokens have distinct names, so `flask tokens revoke EMAIL NAME` means one token.
        sa.Index("uq_api_tokens_user_name_live", "user_id", "name", unique=True,
                 postgresql_where=sa.text("revoked_at IS NULL"), sqlite_where=sa.text("revoked_at IS NULL")),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(100))
    prefix: so.Mapped[str] = so.mapped_column(sa.String(16))  # "igk_" and the secret's first characters
    secret_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)  # hex SHA-256 of the whole secret
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    expires_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    last_used_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    revoked_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    user: so.Mapped[User] = so.relationship()

    def is_live(self, now: datetime) -> bool:
        """Neither revoked nor expired at `now`."""
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class UserSession(db.Model):
    """One sign-in of one browser: its cookie holds a random secret, this row the SHA-256; signing out deletes it."""

    __tablename__ = "user_sessions"
    # Ids name a session in the account page's "Sign out" forms: SQLite must not hand an ended one's to a new one.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)  # hex SHA-256 of the secret
    # Indexed for the sweep that deletes sessions past their lifetime or idle timeout.
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, index=True)
    last_seen_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, index=True)
    device: so.Mapped[str] = so.mapped_column(sa.String(120))  # "Firefox 128 on Ubuntu", read at sign-in
    address: so.Mapped[str] = so.mapped_column(sa.String(45))  # the client's address when last seen

    user: so.Mapped[User] = so.relationship()


class IdempotentRequest(db.Model):
    """The first answer to a POST sent with an Idempotency-Key, replayed for the same key for 24 hours."""

    __tablename__ = "idempotent_requests"
    __table_args__ = (
        # The constraint that makes two concurrent requests with one key create one batch.
        sa.UniqueConstraint("user_id", "key", name="uq_idempotent_requests_user_key"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    key: so.Mapped[str] = so.mapped_column(sa.String(255))
    request_hash: so.Mapped[str] = so.mapped_column(sa.String(64))  # SHA-256 of the canonical JSON body
    status: so.Mapped[int]
    body: so.Mapped[dict] = so.mapped_column(sa.JSON)
    location: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, index=True)


class WildcardList(db.Model):
    """A named list of values a prompt template picks from as `__name__`: a user's own, or shared by an admin."""

    __tablename__ = "wildcard_lists"
    __table_args__ = (sa.UniqueConstraint("owner_id", "name", name="uq_wildcard_lists_owner_name"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    owner_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(64))
    values: so.Mapped[list[str]] = so.mapped_column(sa.JSON, default=list)
    # Shared lists (an admin's) are read by every user whose own lists have no list of that name.
    shared: so.Mapped[bool] = so.mapped_column(default=False, server_default=sa.false())
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)


class LastOptions(db.Model):
    """The options of a user's last batch from the home form (never its prompts), which their next form opens with."""

    __tablename__ = "last_options"

    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    # Form field names to their values, as app/prompts/memory.py writes them.
    options: so.Mapped[dict] = so.mapped_column(sa.JSON)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)


class Visibility(enum.StrEnum):
    """Who sees a collection: its owner alone, or the whole team (everyone with an account) as viewers or editors."""

    PRIVATE = "private"
    TEAM_VIEW = "team-view"
    TEAM_EDIT = "team-edit"


SHARED_VISIBILITIES = (Visibility.TEAM_VIEW.value, Visibility.TEAM_EDIT.value)


class Star(db.Model):
    """One person's star on one image: a keeper."""

    __tablename__ = "stars"
    __table_args__ = (
        # The "Starred" filter: a person's stars, joined to the gallery's rows by image.
        sa.Index("ix_stars_generation_id", "generation_id"),
    )

    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    generation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("generations.id", ondelete="CASCADE"),
                                                     primary_key=True)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)


class Rating(db.Model):
    """One person's rating, 1 to 5, of one image; every reviewer has their own."""

    __tablename__ = "ratings"
    __table_args__ = (
        sa.CheckConstraint("value BETWEEN 1 AND 5", name="ck_ratings_value"),
        # A page's averages and counts, grouped by image.
        sa.Index("ix_ratings_generation_id_value", "generation_id", "value"),
        # The rating sort: a person's ratings in gallery order (5 to 1, newest image first), read by keyset.
        sa.Index("ix_ratings_user_value_image_created_at", "user_id", "value", "image_created_at", "generation_id"),
    )

    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    generation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("generations.id", ondelete="CASCADE"),
                                                     primary_key=True)
    value: so.Mapped[int]
    # The image's own created_at, repeated so the rating sort is one index scan (a creation time never changes).
    image_created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)


class Collection(db.Model):
    """A named set of images with a cover, private or shared with the team; deleting it deletes no image."""

    __tablename__ = "collections"
    __table_args__ = (
        sa.Index("ix_collections_owner_id_name", "owner_id", "name"),
        sa.Index("ix_collections_visibility", "visibility"),
        {"sqlite_autoincrement": True},  # ids appear in URLs: a deleted collection's never names a new one
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    owner_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    name: so.Mapped[str] = so.mapped_column(sa.String(100))
    visibility: so.Mapped[str] = so.mapped_column(sa.String(16), default=Visibility.PRIVATE,
                                                  server_default=Visibility.PRIVATE.value)
    # None: the newest image added stands in.
    cover_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("generations.id", ondelete="SET NULL"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    owner: so.Mapped[User | None] = so.relationship()

    @property
    def is_shared(self) -> bool:
        """True when the team sees it."""
        return self.visibility in SHARED_VISIBILITIES


class CollectionImage(db.Model):
    """An image in a collection (an image may be in several)."""

    __tablename__ = "collection_images"
    __table_args__ = (
        # Which shared collections hold an image: the ownership check of a team member's request.
        sa.Index("ix_collection_images_generation_id", "generation_id"),
    )

    collection_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("collections.id", ondelete="CASCADE"),
                                                     primary_key=True)
    generation_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("generations.id", ondelete="CASCADE"),
                                                     primary_key=True)
    added_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    added_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)


class ShareLink(db.Model):
    """A link that shows one image or one collection signed out: only the SHA-256 of its token is kept."""

    __tablename__ = "share_links"
    __table_args__ = (
        sa.CheckConstraint("(generation_id IS NULL) <> (collection_id IS NULL)", name="ck_share_links_one_target"),
        sa.Index("ix_share_links_owner_id_created_at", "owner_id", "created_at"),
        {"sqlite_autoincrement": True},
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    owner_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)  # hex SHA-256 of the token
    generation_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("generations.id", ondelete="CASCADE"),
                                                            index=True)
    collection_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("collections.id", ondelete="CASCADE"),
                                                            index=True)
    show_owner: so.Mapped[bool] = so.mapped_column(default=False, server_default=sa.false())
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    expires_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)  # None: never
    revoked_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    owner: so.Mapped[User | None] = so.relationship()
    generation: so.Mapped[Generation | None] = so.relationship()
    collection: so.Mapped[Collection | None] = so.relationship()

    def is_live(self, now: datetime) -> bool:
        """Neither revoked nor expired at `now`."""
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class WebhookEndpoint(db.Model):
    """A URL of one user's that is told about their batches, signed with its own secret (app/webhooks/)."""

    __tablename__ = "webhook_endpoints"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # Set for the one-off endpoint a batch named in the API (its `webhook_url`): told about that batch only.
    batch_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    url: so.Mapped[str] = so.mapped_column(sa.String(2000))
    events: so.Mapped[list[str]] = so.mapped_column(sa.JSON, default=list)
    # "standard" (our JSON), "slack" ({"text"}) or "discord" ({"content"}); every one is signed.
    body_format: so.Mapped[str] = so.mapped_column(sa.String(16), default="standard", server_default="standard")
    secret: so.Mapped[str] = so.mapped_column(sa.String(100))  # "whsec_…": needed whole to sign, shown once
    enabled: so.Mapped[bool] = so.mapped_column(default=True, server_default=sa.true())
    disabled_reason: so.Mapped[str | None] = so.mapped_column(sa.Text)
    # The first failed attempt since the last success: failing for WEBHOOK_DISABLE_AFTER_HOURS disables it.
    failing_since: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    deliveries: so.Mapped[list[WebhookDelivery]] = so.relationship(
        back_populates="endpoint", cascade="all, delete-orphan", passive_deletes=True)


class WebhookDelivery(db.Model):
    """One event for one endpoint: its body as sent, and how its attempts went."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # One event per endpoint and occurrence, however many threads notice it (a batch's last two images).
        sa.UniqueConstraint("endpoint_id", "event_key", name="uq_webhook_deliveries_endpoint_event_key"),
        # The sweep's question: which deliveries wait for their next attempt.
        sa.Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        {"sqlite_autoincrement": True},
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    endpoint_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
                                                   index=True)
    event: so.Mapped[str] = so.mapped_column(sa.String(32))
    event_key: so.Mapped[str] = so.mapped_column(sa.String(100))  # e.g. "batch.completed:12:<last finish time>"
    message_id: so.Mapped[str] = so.mapped_column(sa.String(64))  # the webhook-id header, the same on every attempt
    payload: so.Mapped[dict] = so.mapped_column(sa.JSON)
    # queued (a job in Redis), sending, waiting (for next_attempt_at), succeeded, failed (no attempts left).
    status: so.Mapped[str] = so.mapped_column(sa.String(16), default="queued")
    attempts: so.Mapped[int] = so.mapped_column(default=0, server_default="0")
    response_status: so.Mapped[int | None]
    error: so.Mapped[str | None] = so.mapped_column(sa.Text)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    last_attempt_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    next_attempt_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    endpoint: so.Mapped[WebhookEndpoint] = so.relationship(back_populates="deliveries")
