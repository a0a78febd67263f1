"""The JSON the API answers with, built from the rows (app/api/schemas.py documents each shape)."""

from __future__ import annotations

from datetime import datetime

from flask import url_for

from app.batches.charges import charges_of
from app.batches.progress import Progress, progress_of
from app.curation.collections import CollectionSummary
from app.curation.marks import NO_MARKS, Marks
from app.generations.lifecycle import price_of
from app.media.urls import file_url, thumb_url
from app.models import Batch, Generation, ShareLink


def links(generation: Generation) -> dict[str, str | None] | None:
    """Absolute URLs of the file, its thumbnail and a download; the same API token opens them."""
    if not generation.has_image:
        return None
    return {"file_url": file_url(generation, external=True), "thumb_url": thumb_url(generation, external=True),
            "download_url": file_url(generation, download=True, external=True)}


def generation_body(generation: Generation) -> dict[str, object]:
    """One card of a batch, as data."""
    return {
        "id": generation.id, "position": generation.position, "prompt": generation.prompt,
        "status": generation.status, "error": generation.error, "api_error_id": generation.api_error_id,
        "attempts": generation.attempts, "queue_ahead": generation.queue_ahead, "seed": generation.seed,
        "created_at": generation.created_at, "started_at": generation.started_at,
        "finished_at": generation.finished_at, "image": links(generation), "cell": cell_body(generation.cell),
        "operation": generation.operation, "source_id": generation.source_id,
    }


def cell_body(cell: dict[str, int] | None) -> dict[str, int | None] | None:
    """A generation's place in its batch's grid, every axis named (null where the grid has none)."""
    return {axis: cell.get(axis) for axis in ("x", "y", "z")} if cell else None


def progress_body(progress: Progress) -> dict[str, int]:
    """The counts of a batch."""
    return {"total": progress.total, "succeeded": progress.succeeded, "failed": progress.unsuccessful,
            "pending": progress.pending}


def batch_urls(batch_id: int) -> dict[str, str]:
    """The batch in the API and as a page."""
    return {"url": url_for("api.get_batch", batch_id=batch_id, _external=True),
            "page_url": url_for("batches.show", batch_id=batch_id, _external=True)}


def batch_body(batch_id: int, generations: list[Generation]) -> dict[str, object]:
    """A batch with its options, cost and generations in prompt order (a batch always has one at least)."""
    progress, charges = progress_of(generations), charges_of(generations)
    first = generations[0]
    finished = [g.finished_at for g in generations if g.finished_at is not None]
    return {
        "id": batch_id, **batch_urls(batch_id),
        "created_at": min(g.created_at for g in generations),
        "finished_at": max(finished) if progress.is_final and finished else None,
        "done": progress.is_final, "progress": progress_body(progress),
        "options": first.options.as_dict(),
        "cost": {"credits_per_image": price_of(first.options, first.operation), "credits": charges.held,
                 "reserved": charges.reserved, "refunded": charges.refunded},
        "zip_url": url_for("batches.download_zip", batch_id=batch_id, _external=True),
        "generations": [generation_body(g) for g in generations],
        "grid": first.batch.grid,
        "grid_image_url": url_for("batches.grid_image", batch_id=batch_id, _external=True)
        if first.batch.grid and progress.is_final else None,
    }


def batch_summary(batch: Batch, progress: Progress, finished_at: datetime | None) -> dict[str, object]:
    """A batch in the list: its counts, not its generations."""
    return {"id": batch.id, **batch_urls(batch.id), "created_at": batch.created_at,
            "finished_at": finished_at if progress.is_final else None, "done": progress.is_final,
            "progress": progress_body(progress)}


def marks_body(marks: Marks) -> dict[str, object]:
    """The viewer's star and rating of an image, and everyone's average and count."""
    return {"starred": marks.starred, "my_rating": marks.my_rating, "rating_average": marks.average,
            "rating_count": marks.count}


def image_body(generation: Generation, marks: Marks = NO_MARKS) -> dict[str, object]:
    """An image with all its metadata and links, and the viewer's marks."""
    return {**marks_body(marks),
        "id": generation.id, "batch_id": generation.batch_id, "owner_id": generation.owner_id,
        "position": generation.position, "prompt": generation.prompt, "status": generation.status,
        "options": generation.options.as_dict(), "seed": generation.seed, "provider": generation.provider,
        "finish_reason": generation.finish_reason, "api_request_id": generation.api_request_id,
        "mime_type": generation.mime_type, "width": generation.width, "height": generation.height,
        "byte_size": generation.byte_size, "created_at": generation.created_at,
        "finished_at": generation.finished_at, "operation": generation.operation, "source_id": generation.source_id,
        **(links(generation) or {}),
    }


def collection_body(summary: CollectionSummary, may_edit: bool) -> dict[str, object]:
    """A collection with its count and cover."""
    collection = summary.collection
    return {"id": collection.id, "name": collection.name, "visibility": collection.visibility,
            "owner_id": collection.owner_id, "cover_id": summary.cover_id, "image_count": summary.count,
            "may_edit": may_edit, "created_at": collection.created_at,
            "images_url": url_for("api.list_images", collection=collection.id, _external=True),
            "zip_url": url_for("collections.download", collection_id=collection.id, _external=True)}


def share_link_body(link: ShareLink, url: str | None = None) -> dict[str, object]:
    """A share link; its url only when it was just made (only the token's hash is kept)."""
    body: dict[str, object] = {"id": link.id, "image_id": link.generation_id, "collection_id": link.collection_id,
                               "show_owner": link.show_owner, "created_at": link.created_at,
                               "expires_at": link.expires_at}
    if url is not None:
        body["url"] = url
    return body
