"""What the generate page and the status API say about a batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from app.models import Generation, Status

# One token per generation, in prompt order, is what a page has seen; polls compare it.
# A token is the status letter, plus the attempt number once a retry has started.
STATUS_LETTERS = {
    Status.QUEUED: "q", Status.RUNNING: "r", Status.SUCCEEDED: "s",
    Status.FILTERED: "f", Status.FAILED: "x", Status.CANCELED: "c",
}


class CardState(Protocol):
    """What a card's token is made of: a whole Generation, or the poll's row of just these columns."""

    id: int
    status: str
    attempts: int
    queue_ahead: int | None


S = TypeVar("S", bound=CardState)


# By the stored string: a poll builds a token per card, and making an enum member of each costs more than the rest.
_LETTER_OF = {status.value: letter for status, letter in STATUS_LETTERS.items()}


def _token(state: CardState) -> str:
    """What a card shows, in a few characters: status, then its place in the queue or its attempt number."""
    letter = _LETTER_OF[state.status]
    if letter == "q" and state.queue_ahead is not None:
        return f"{letter}{state.queue_ahead}"
    return f"{letter}{state.attempts}" if state.attempts > 1 else letter


def seen_signature(states: Sequence[CardState]) -> str:
    """Encode the batch's card states as the string a polling page sends back."""
    return ".".join(_token(s) for s in states)


def changed_since(states: Sequence[S], current: str, seen: str) -> list[S]:
    """The cards that differ from what the page last saw (current is seen_signature's answer)."""
    now, before = current.split("."), seen.split(".")
    if len(now) != len(before):
        return list(states)
    return [s for s, new, old in zip(states, now, before, strict=True) if new != old]


# How often a page polls: every second while an image is being made, slower while all still wait in line —
# but no slower than 2 s, or a card that starts and finishes within one wait would never be seen generating.
POLL_RUNNING_SECONDS = 1
POLL_QUEUED_SECONDS = 2


@dataclass(frozen=True)
class Progress:
    """Counts of a batch's cards: `unsuccessful` is every finished card without a success (the API calls it failed)."""

    total: int
    succeeded: int
    unsuccessful: int
    pending: int
    filtered: int = 0
    canceled: int = 0
    running: int = 0

    @property
    def is_final(self) -> bool:
        """True when nothing is queued or running."""
        return self.pending == 0

    @property
    def finished(self) -> int:
        """Cards that reached a final status."""
        return self.total - self.pending

    @property
    def failed(self) -> int:
        """Cards that failed outright (neither filtered nor canceled)."""
        return self.unsuccessful - self.filtered - self.canceled

    @property
    def poll_seconds(self) -> int | None:
        """The page's polling interval now, or None once nothing more will change."""
        if self.is_final:
            return None
        return POLL_RUNNING_SECONDS if self.running else POLL_QUEUED_SECONDS


def progress_of(states: Sequence[CardState]) -> Progress:
    """Count the batch's cards by status."""
    statuses = [Status(s.status) for s in states]
    pending = sum(not s.is_final for s in statuses)
    succeeded = statuses.count(Status.SUCCEEDED)
    return Progress(total=len(statuses), succeeded=succeeded, unsuccessful=len(statuses) - pending - succeeded,
                    pending=pending, filtered=statuses.count(Status.FILTERED),
                    canceled=statuses.count(Status.CANCELED), running=statuses.count(Status.RUNNING))


def elapsed_seconds(generation: Generation) -> int:
    """Whole seconds since the generation started (0 if it has not)."""
    if generation.started_at is None:
        return 0
    return max(0, int((datetime.now(UTC) - generation.started_at).total_seconds()))


