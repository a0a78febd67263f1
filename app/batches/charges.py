"""What a batch reserved of its owner's allowance and what was refunded, from its rows' `credits` and `refunded`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class Charged(Protocol):
    """A generation's current attempt: what it reserved, and whether that was given back."""

    credits: float
    refunded: bool


@dataclass(frozen=True)
class Charges:
    """Credits reserved by the batch's current attempts, and the part refunded (images the API never charged)."""

    reserved: float
    refunded: float

    @property
    def held(self) -> float:
        """What the batch costs its owner now: spent, or still reserved for images not made yet."""
        return self.reserved - self.refunded


def charges_of(rows: Sequence[Charged]) -> Charges:
    """Add up a batch's reservations and refunds."""
    return Charges(reserved=sum(row.credits for row in rows),
                   refunded=sum(row.credits for row in rows if row.refunded))
