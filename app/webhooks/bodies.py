"""What a delivery says: the event's JSON (stored with the delivery), and the Slack or Discord form of it."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urlsplit

from flask import current_app

from app.models import Generation, Status

BATCH_COMPLETED = "batch.completed"
GENERATION_FAILED = "generation.failed"
GENERATION_SUCCEEDED = "generation.succeeded"
EVENTS = (BATCH_COMPLETED, GENERATION_FAILED, GENERATION_SUCCEEDED)
BODY_FORMATS = ("standard", "slack", "discord")
PROMPT_WORDS = 40  # characters of a prompt a one-line summary quotes


def absolute_url(endpoint: str, **values: object) -> str:
    """A page's full URL under PUBLIC_URL, also from a worker (which has no request to take the host from)."""
    public = urlsplit(current_app.config["PUBLIC_URL"])
    adapter = current_app.url_map.bind(public.netloc, script_name=public.path or "/", url_scheme=public.scheme)
    return adapter.build(endpoint, values, force_external=True)


def _short(prompt: str) -> str:
    return prompt if len(prompt) <= PROMPT_WORDS else prompt[:PROMPT_WORDS].rstrip() + "…"


def image_entry(generation: Generation) -> dict[str, object]:
    """One generation as the bodies list it."""
    with_image = generation.file_name is not None
    return {"id": generation.id, "prompt": generation.prompt, "status": generation.status,
            "model": generation.model, "error": generation.error if generation.status != Status.SUCCEEDED else None,
            "url": absolute_url("media.file", generation_id=generation.id) if with_image else None,
            "page_url": absolute_url("media.detail", generation_id=generation.id) if with_image else None}


def batch_entry(batch_id: int, generations: Sequence[Generation]) -> dict[str, object]:
    """A batch's counts and links."""
    counts = Counter(g.status for g in generations)
    return {"id": batch_id, "url": absolute_url("batches.show", batch_id=batch_id),
            "api_url": absolute_url("api.get_batch", batch_id=batch_id),
            "counts": {"images": len(generations), **{s.value: counts.get(s.value, 0) for s in Status if s.is_final}},
            "credits": sum(g.credits for g in generations if not g.refunded),
            "refunded_credits": sum(g.credits for g in generations if g.refunded)}


def batch_completed(batch_id: int, generations: Sequence[Generation], at: datetime) -> dict[str, object]:
    """The body of batch.completed: the batch, its counts, and every image with its URL."""
    batch = batch_entry(batch_id, generations)
    made = batch["counts"][Status.SUCCEEDED] + batch["counts"][Status.FILTERED]  # type: ignore[index]
    noun = "image" if made == 1 else "images"
    summary = f"{made} {noun} ready — {_short(generations[0].prompt)}"
    failed = batch["counts"][Status.FAILED]  # type: ignore[index]
    if failed:
        summary += f" ({failed} failed)"
    return {"type": BATCH_COMPLETED, "timestamp": at.isoformat(),
            "data": {"summary": summary, "batch": batch, "images": [image_entry(g) for g in generations]}}


def generation_ended(event: str, generation: Generation, at: datetime) -> dict[str, object]:
    """The body of generation.succeeded or generation.failed."""
    entry = image_entry(generation)
    if event == GENERATION_SUCCEEDED:
        summary = f"Image ready — {_short(generation.prompt)}"
    else:
        summary = f"An image {generation.status} — {_short(generation.prompt)}: {generation.error or 'no reason given'}"
    return {"type": event, "timestamp": at.isoformat(),
            "data": {"summary": summary, "generation": entry,
                     "batch": {"id": generation.batch_id,
                               "url": absolute_url("batches.show", batch_id=generation.batch_id)}}}


def render(body_format: str, payload: dict) -> bytes:
    """The bytes sent (and signed): our JSON, or the summary with a link as Slack's `text` / Discord's `content`."""
    if body_format in ("slack", "discord"):
        data = payload["data"]
        link = data["batch"]["url"]
        line = f"{data['summary']} {link}"
        payload = {"text": line} if body_format == "slack" else {"content": line}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
