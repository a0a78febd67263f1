"""What the generate page and the status API say about a batch."""

from __future__ import annotations

from dataclasses import dataclass

from flask import url_for

from app.models import Generation, Status

# One letter per generation, in prompt order, is what a page has seen; polls compare it.
STATUS_LETTERS = {
    Status.QUEUED: "q", Status.RUNNING: "r", Status.SUCCEEDED: "s",
    Status.FILTERED: "f", Status.FAILED: "x", Status.CANCELED: "c",
}


def seen_signature(generations: list[Generation]) -> str:
    """Encode the batch's statuses as the string a polling page sends back."""
    return "".join(STATUS_LETTERS[g.status_enum] for g in generations)


def changed_since(generations: list[Generation], seen: str) -> list[Generation]:
    """The generations whose status differs from what the page last saw."""
    if len(seen) != len(generations):
        return list(generations)
    return [g for g, letter in zip(generations, seen, strict=True) if STATUS_LETTERS[g.status_enum] != letter]


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


def image_url(generation: Generation) -> str | None:
    """URL of the stored file, served by id."""
    return url_for("media.file", generation_id=generation.id) if generation.has_image else None


def batch_json(batch_id: int, generations: list[Generation]) -> dict:
    """The status API's body."""
    return {
        "id": batch_id,
        "done": progress_of(generations).is_final,
        "generations": [
            {"id": g.id, "prompt": g.prompt, "status": g.status, "error": g.error, "image_url": image_url(g)}
            for g in generations
        ],
    }
