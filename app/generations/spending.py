"""Monthly credit allowances: a submission reserves its cost atomically; what the API does not charge is refunded."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite

from app.extensions import db
from app.models import MonthlySpend, User, utcnow

INSTALL_SCOPE = "all"


class OverAllowance(Exception):
    """The submission costs more than is left this month; nothing was created."""

    def __init__(self, cost: float, left: float, whose: str) -> None:
        self.cost, self.left, self.whose = cost, left, whose
        super().__init__(f"This batch costs {cost:g} credits; {whose} {max(0.0, left):g} left this month.")


@dataclass(frozen=True)
class Allowance:
    """What a user has used and may still use this month (None: no cap)."""

    used: float
    limit: float | None

    @property
    def left(self) -> float | None:
        """Credits left, never below zero; None when there is no cap."""
        return None if self.limit is None else max(0.0, self.limit - self.used)


def this_month() -> str:
    """The current calendar month in UTC, as allowances count it."""
    return utcnow().strftime("%Y-%m")


def user_scope(user_id: int) -> str:
    """The spending row key of one user."""
    return f"user:{user_id}"


def _ensure_rows(scopes: Iterable[str], month: str) -> None:
    """Create this month's counters if missing, without racing another request that does the same."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for scope in scopes:
        db.session.execute(insert(MonthlySpend).values(scope=scope, month=month, credits=0)
                           .on_conflict_do_nothing())


def _take(scope: str, month: str, cost: float, limit: float | None) -> bool:
    """Add cost to a counter in one conditional UPDATE: concurrent submissions cannot both fit the last credits."""
    statement = sa.update(MonthlySpend).where(MonthlySpend.scope == scope, MonthlySpend.month == month)
    if limit is not None:
        statement = statement.where(MonthlySpend.credits + cost <= limit + 1e-9)
    return bool(db.session.execute(statement.values(credits=MonthlySpend.credits + cost)).rowcount)


def reserve(user: User, cost: float) -> str:
    """Reserve cost this month in the current transaction (the caller commits); OverAllowance if it does not fit."""
    month = this_month()
    if cost <= 0:
        return month
    install_limit = current_app.config["MONTHLY_CREDIT_LIMIT"]
    _ensure_rows([user_scope(user.id), INSTALL_SCOPE], month)
    if not _take(user_scope(user.id), month, cost, user.monthly_credits):
        db.session.rollback()
        raise OverAllowance(cost, allowance(user).left or 0.0, "you have")
    if not _take(INSTALL_SCOPE, month, cost, install_limit):
        db.session.rollback()
        raise OverAllowance(cost, install_limit - used(INSTALL_SCOPE, month), "this installation has")
    return month


def refund(rows: Iterable[tuple[int | None, float, str | None]]) -> None:
    """Give back (owner id, credits, month) reservations in the current transaction; the caller commits."""
    for owner_id, credits, month in rows:
        if not credits or month is None:
            continue
        scopes = [INSTALL_SCOPE] + ([user_scope(owner_id)] if owner_id is not None else [])
        db.session.execute(sa.update(MonthlySpend)
                           .where(MonthlySpend.scope.in_(scopes), MonthlySpend.month == month)
                           .values(credits=sa.func.max(MonthlySpend.credits - credits, 0)
                                   if db.session.get_bind().dialect.name == "sqlite"
                                   else sa.func.greatest(MonthlySpend.credits - credits, 0)))


def used(scope: str, month: str | None = None) -> float:
    """Credits reserved in a month (this one by default)."""
    value = db.session.scalar(sa.select(MonthlySpend.credits).where(
        MonthlySpend.scope == scope, MonthlySpend.month == (month or this_month())))
    return float(value or 0)


def allowance(user: User) -> Allowance:
    """The user's use and cap this month."""
    return Allowance(used=used(user_scope(user.id)), limit=user.monthly_credits)
