"""Usage from the rows already stored (each generation's credits, refunded flag, owner, model, day): no second
bookkeeping. A row's credits are what its latest attempt reserved; refunded ones were given back."""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa

from app.extensions import db
from app.models import Generation, Status, User

MADE = (Status.SUCCEEDED, Status.FILTERED)
NO_OWNER = "(no owner)"
MAX_DAYS = 366


@dataclass(frozen=True)
class UsageRow:
    """One day, user and model: images made, credits charged (reserved and not refunded), credits refunded."""

    day: date
    user: str
    model: str
    images: int
    credits: float
    refunded_credits: float
    failed: int


@dataclass(frozen=True)
class Period:
    """The days from `start` to `end`, both included (UTC)."""

    start: date
    end: date

    @property
    def days(self) -> list[date]:
        """Every day of the period, in order."""
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]


class PeriodInvalid(ValueError):
    """A from/to that is not a date, is reversed, or spans more than MAX_DAYS."""


def parse_period(raw_from: str | None, raw_to: str | None, today: date) -> Period:
    """The period a query asks for; this month so far when neither is given."""
    try:
        start = date.fromisoformat(raw_from) if raw_from else today.replace(day=1)
        end = date.fromisoformat(raw_to) if raw_to else max(today, start)
    except ValueError:
        raise PeriodInvalid("Dates are written YYYY-MM-DD, such as 2026-12-01.") from None
    if end < start:
        raise PeriodInvalid("The period ends before it starts.")
    if (end - start).days >= MAX_DAYS:
        raise PeriodInvalid(f"Ask for at most {MAX_DAYS} days at once.")
    return Period(start, end)


def _day_of(column: sa.ColumnElement) -> sa.ColumnElement:
    """The UTC calendar day of a time column, on PostgreSQL (whatever the session's zone) and SQLite."""
    if db.session.get_bind().dialect.name == "postgresql":
        return sa.func.date(sa.func.timezone("UTC", column))
    return sa.func.date(column)


def usage_rows(period: Period, owner_id: int | None = None) -> list[UsageRow]:
    """Usage per day, user (email) and model in the period, in that order; one user's only with owner_id."""
    day = _day_of(Generation.created_at).label("day")
    charged = sa.case((Generation.refunded.is_(False), Generation.credits), else_=0.0)
    refunded = sa.case((Generation.refunded.is_(True), Generation.credits), else_=0.0)
    query = (sa.select(day, User.email, Generation.model,
                       sa.func.count().filter(Generation.status.in_(MADE)),
                       sa.func.coalesce(sa.func.sum(charged), 0.0), sa.func.coalesce(sa.func.sum(refunded), 0.0),
                       sa.func.count().filter(Generation.status == Status.FAILED))
             .select_from(Generation).outerjoin(User, User.id == Generation.owner_id)
             .where(Generation.created_at >= _midnight(period.start),
                    Generation.created_at < _midnight(period.end + timedelta(days=1)))
             .group_by(day, User.email, Generation.model))
    if owner_id is not None:
        query = query.where(Generation.owner_id == owner_id)
    rows = [UsageRow(_as_date(d), email or NO_OWNER, model, int(images), float(credits), float(back), int(failed))
            for d, email, model, images, credits, back, failed in db.session.execute(query)]
    return sorted(rows, key=lambda r: (r.day, r.user, r.model))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


@dataclass(frozen=True)
class Total:
    """What one user or model (or everyone) used in a period."""

    name: str
    images: int = 0
    credits: float = 0.0
    refunded_credits: float = 0.0
    failed: int = 0


def totals_by(rows: list[UsageRow], key: str) -> list[Total]:
    """Rows summed per user or per model ('user' or 'model'), the biggest spender first."""
    sums: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0])
    for row in rows:
        entry = sums[getattr(row, key)]
        entry[0] += row.images
        entry[1] += row.credits
        entry[2] += row.refunded_credits
        entry[3] += row.failed
    totals = [Total(name, int(a), b, c, int(d)) for name, (a, b, c, d) in sums.items()]
    return sorted(totals, key=lambda t: (-t.credits, t.name))


def grand_total(rows: list[UsageRow]) -> Total:
    """Every row summed."""
    return Total("all", sum(r.images for r in rows), sum(r.credits for r in rows),
                 sum(r.refunded_credits for r in rows), sum(r.failed for r in rows))


@dataclass(frozen=True)
class Projection:
    """This month so far and where it ends at the same pace."""

    month: str
    used: float
    days_elapsed: int
    days_in_month: int

    @property
    def per_day(self) -> float:
        """Credits per day so far."""
        return self.used / self.days_elapsed

    @property
    def month_end(self) -> float:
        """Credits used by the month's end if every remaining day is like the average day so far."""
        return self.per_day * self.days_in_month

    def days_until(self, balance: float) -> float | None:
        """Days a balance lasts at this pace (None: nothing is being spent)."""
        return balance / self.per_day if self.per_day > 0 else None


def month_projection(today: date, owner_id: int | None = None) -> Projection:
    """This month's charged credits (as allowances count them: by credits_month) and the month-end projection."""
    month = today.strftime("%Y-%m")
    query = sa.select(sa.func.coalesce(sa.func.sum(Generation.credits), 0.0)).where(
        Generation.credits_month == month, Generation.refunded.is_(False))
    if owner_id is not None:
        query = query.where(Generation.owner_id == owner_id)
    used = float(db.session.scalar(query) or 0.0)
    return Projection(month, used, today.day, calendar.monthrange(today.year, today.month)[1])
