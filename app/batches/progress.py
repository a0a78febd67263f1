"""What the generate page and the status API say about a batch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from app.media.urls import file_url
from app.models import Generation, Status

# One token per generation, in prompt order, is what a page has seen; polls compare it.
# A token is the status letter, plus the attempt number once a retry has started.
STATUS_LETTERS = {
    Status.QUEUED: "q", Status.RUNNING: "r", Status.SUCCEEDED: "s",
    Status.FILTERED: "f", Status.FAILED: "x", Status.CANCELED: "c",
}


def _token(generation: Generation) -> str:
    """What a card shows, in a few characters: status, then its place in the queue or its attempt number."""
    letter = STATUS_LETTERS[generation.status_enum]
    if generation.status_enum is Status.QUEUED and generation.queue_ahead is not None:
        return f"{letter}{generation.queue_ahead}"
    return f"{letter}{generation.attempts}" if generation.attempts > 1 else letter


def seen_signature(generations: list[Generation]) -> str:
    """Encode the batch's card states as the string a polling page sends back."""
    return ".".join(_token(g) for g in generations)


def changed_since(generations: list[Generation], current: str, seen: str) -> list[Generation]:
    """The generations whose card differs from what the page last saw (current is seen_signature's answer)."""
    now, before = current.split("."), seen.split(".")
    if len(now) != len(before):
        return list(generations)
    return [g for g, new, old in zip(generations, now, before, strict=True) if new != old]


@dataclass(frozen=True)
class Progress:
    """Counts for the batch summary."""

    total: int
    succeeded: int
    failed: int
    pending: int

    @property
    def is_final(self) -> bool:
        """True when nothing is queued or running."""
        return self.pending == 0


def progress_of(generations: list[Generation]) -> Progress:
    """Count finished, failed and pending generations."""
    statuses = [g.status_enum for g in generations]
    pending = sum(not s.is_final for s in statuses)
    succeeded = statuses.count(Status.SUCCEEDED)
    return Progress(total=len(statuses), succeeded=succeeded, failed=len(statuses) - pending - succeeded,
                    pending=pending)


def elapsed_seconds(generation: Generation) -> int:
    """Whole seconds since the generation started (0 if it has not)."""
    if generation.started_at is None:
        return 0
    started = generation.started_at
    if started.tzinfo is None:  # SQLite returns naive UTC
        started = started.replace(tzinfo=UTC)
    return max(0, int((datetime.now(UTC) - started).total_seconds()))


def image_url(generation: Generation) -> str | None:
    """URL of the stored file, served by id at its current version."""
    return file_url(generation)

