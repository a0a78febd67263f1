"""Seeds of a batch's images: random per image, or one locked seed counted up per image of a prompt."""

from __future__ import annotations

import secrets

from app.providers.options import MAX_SEED


def random_seed() -> int:
    """A fresh seed the API accepts (never 0, which the API reads as 'pick one')."""
    return secrets.randbelow(MAX_SEED) + 1


def nth_seed(seed: int | None, n: int) -> int | None:
    """The seed of a prompt's image number n (0-based): seed + n, wrapping within 1..MAX_SEED; None stays random."""
    if not seed:
        return None
    return (seed - 1 + n) % MAX_SEED + 1
