"""Wildcard lists: a user's own by name, an admin's shared with everyone, and their .txt files (one value a line,
the format AUTOMATIC1111's, Fooocus's and SwarmUI's wildcards use)."""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import User, WildcardList, utcnow
from app.text.storable import UNSAFE

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
NAME_MESSAGE = "Use 1 to 64 letters, digits, - or _ (the list is written __name__ in a prompt)."
# A list, as JSON, stays well under the API's 1 MiB body limit, whatever its characters.
MAX_VALUES = 500
MAX_VALUE_LENGTH = 200
MAX_FILE_BYTES = 256 * 1024


class WildcardInvalid(ValueError):
    """A list that cannot be saved; `fields` maps "name" or "values" to its message."""

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = fields
        super().__init__("; ".join(f"{name}: {message}" for name, message in fields.items()))


def values_from_text(text: str) -> list[str]:
    """One value a line, blank lines and #-comments skipped (as the other tools read a wildcard file)."""
    lines = (line.strip() for line in text.replace("\r\n", "\n").split("\n"))
    return [line for line in lines if line and not line.startswith("#")]


def as_text(wildcards: WildcardList) -> str:
    """The list as a .txt file: one value a line."""
    return "".join(f"{value}\n" for value in wildcards.values)


def name_from_file(file_name: str) -> str:
    """The list name a file suggests: its name without .txt (colors.txt → colors)."""
    stem = file_name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    return stem[:-4] if stem.lower().endswith(".txt") else stem


def checked(name: str, values: list[str]) -> tuple[str, list[str]]:
    """The name and values as they are saved (trimmed, blanks dropped), or WildcardInvalid."""
    name, values = name.strip(), [value.strip() for value in values if value.strip()]
    problems = {}
    if not NAME.match(name):
        problems["name"] = NAME_MESSAGE
    if not values:
        problems["values"] = "Give the list at least one value, one a line."
    elif len(values) > MAX_VALUES:
        problems["values"] = f"{len(values):,} values is more than the {MAX_VALUES:,} a list may hold."
    elif any(len(value) > MAX_VALUE_LENGTH or UNSAFE.search(value) for value in values):
        problems["values"] = f"Each value must be at most {MAX_VALUE_LENGTH} characters of printable text."
    if problems:
        raise WildcardInvalid(problems)
    return name, values


def own_lists(user: User) -> list[WildcardList]:
    """The user's own lists, by name."""
    return list(db.session.scalars(sa.select(WildcardList).where(WildcardList.owner_id == user.id)
                                   .order_by(WildcardList.name)))


def shared_lists(user: User) -> list[WildcardList]:
    """Lists others shared, by name."""
    return list(db.session.scalars(sa.select(WildcardList).where(
        WildcardList.shared.is_(True), WildcardList.owner_id != user.id).order_by(WildcardList.name, WildcardList.id)))


def lists_for(user: User | None) -> dict[str, list[str]]:
    """Every list a template of this user may name: the shared ones, then the user's own, which win a name."""
    if user is None or not getattr(user, "id", None):
        return {}
    lists = {row.name: row.values for row in reversed(shared_lists(user))}
    lists.update({row.name: row.values for row in own_lists(user)})
    return lists


def readable(list_id: int, user: User) -> WildcardList | None:
    """The list if the user may read it (their own, or shared); None reads like a missing one."""
    row = db.session.get(WildcardList, list_id)
    return row if row is not None and (row.owner_id == user.id or row.shared) else None


def owned(list_id: int, user: User) -> WildcardList | None:
    """The list if the user may change it: their own."""
    row = db.session.get(WildcardList, list_id)
    return row if row is not None and row.owner_id == user.id else None


def _name_taken(user: User, name: str, except_id: int | None = None) -> bool:
    where = (WildcardList.owner_id == user.id) & (WildcardList.name == name)
    if except_id is not None:
        where &= WildcardList.id != except_id
    return db.session.scalar(sa.select(sa.func.count()).select_from(WildcardList).where(where)) > 0


def _shared_flag(user: User, shared: bool) -> bool:
    """Only an admin shares a list with everyone."""
    if shared and not user.is_admin:
        raise WildcardInvalid({"shared": "Only an admin can share a list with everyone."})
    return shared


def save(user: User, name: str, values: list[str], shared: bool = False,
         existing: WildcardList | None = None) -> WildcardList:
    """Create the list (or replace `existing`'s name, values and sharing), or WildcardInvalid."""
    name, values = checked(name, values)
    shared = _shared_flag(user, shared)
    if _name_taken(user, name, existing.id if existing else None):
        raise WildcardInvalid({"name": f"You already have a list named {name}."})
    row = existing or WildcardList(owner_id=user.id)
    row.name, row.values, row.shared, row.updated_at = name, values, shared, utcnow()
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:  # the same name saved a moment ago by another request
        db.session.rollback()
        raise WildcardInvalid({"name": f"You already have a list named {name}."}) from None
    return row


def delete(row: WildcardList) -> None:
    """Remove the list."""
    db.session.delete(row)
    db.session.commit()
