"""Typed text the database and the API can take: the one check every text input goes through."""

from __future__ import annotations

import re

from wtforms import Field, Form
from wtforms.validators import ValidationError

# PostgreSQL text cannot hold NUL at all, and a lone surrogate cannot even be encoded as UTF-8;
# the other C0 and C1 controls (and DEL) are invisible and mean nothing in a prompt. Tab, new line
# and carriage return are ordinary typing.
UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def first_unsafe_character(text: str) -> tuple[int, str] | None:
    """The 1-based position and the character of the first one the database or the API cannot take, or None."""
    match = UNSAFE.search(text)
    return (match.start() + 1, match.group()) if match else None


def unsafe_character_message(position: int, char: str) -> str:
    """What to tell the person: which character, and where it is."""
    kind = "broken character" if "\ud800" <= char <= "\udfff" else "invisible control character"
    return f"Remove the {kind} U+{ord(char):04X} at position {position}."


def without_unsafe_characters(text: str) -> str:
    """The text with those characters dropped (for searches: no stored prompt can contain them)."""
    return UNSAFE.sub("", text)


class StorableText:
    """WTForms validator refusing text with a character the database or the API cannot take, saying where."""

    def __call__(self, form: Form, field: Field) -> None:
        """Raise ValidationError naming the first such character; the field keeps its text."""
        found = first_unsafe_character(field.data or "")
        if found:
            raise ValidationError(unsafe_character_message(*found))
