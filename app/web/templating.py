"""Template helpers: filters and values every page uses."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask, url_for
from flask_login import current_user

from app.batches.eta import seconds_left
from app.batches.progress import elapsed_seconds
from app.generations import queue
from app.generations.edits import price_of_edit
from app.imaging.uploads import ACCEPT, TOO_LARGE, UPLOAD_MAX_BYTES
from app.media.urls import file_url, thumb_url
from app.models import Generation
from app.providers.operations import OPERATIONS, operation_label
from app.providers.options import SIZES_1MP, model_label, style_label
from app.services import services
from app.text.wording import shortened
from app.variations.grids import cell_label


def utc_time(value: datetime | None) -> str:
    """Format a stored time for people: 2026-11-24 09:41 UTC."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso_time(value: datetime | None) -> str:
    """Machine-readable time for <time datetime>."""
    return "" if value is None else value.isoformat()


def ratio_class(aspect_ratio: str) -> str:
    """CSS class that reserves an image's box before it loads (no inline styles under our CSP)."""
    return "ratio-" + aspect_ratio.replace(":", "-") if aspect_ratio in SIZES_1MP else "ratio-1-1"


def caption(generation: Generation) -> str:
    """What an image is called where it appears: its prompt, or what made it when it has none ("Uploaded")."""
    return generation.prompt or operation_label(generation.operation)


def edit_base(generation: Generation) -> str:
    """Where the image's operations' forms live ("/images/7/edit/" + an operation), or "" when it cannot be
    edited by this user (not theirs, or no file)."""
    if not generation.has_image or not current_user.is_authenticated or generation.owner_id != current_user.id:
        return ""
    return url_for("media.detail", generation_id=generation.id) + "/edit/"


def edit_price(operation: str) -> float:
    """What one result of the operation costs with its defaults, as the Edit menu shows it."""
    return price_of_edit(operation, {})


def page_globals() -> dict[str, object]:
    """Values the layout needs on every page."""
    app_services = services()
    return {"demo_mode": app_services.stability is None, "queue_paused": queue.paused_reason(app_services.redis)}


# What the upload form (templates/gallery/_upload.html) tells the picker and its script.
UPLOAD_LIMITS = {"max_bytes": UPLOAD_MAX_BYTES, "too_large": TOO_LARGE, "accept": ACCEPT}


def register(app: Flask) -> None:
    """Install filters and the context processor."""
    app.add_template_filter(utc_time)
    app.add_template_filter(iso_time)
    app.add_template_filter(ratio_class)
    app.add_template_filter(model_label)
    app.add_template_filter(style_label)
    app.add_template_filter(shortened)
    app.add_template_filter(caption)
    app.add_template_filter(operation_label)
    app.add_template_filter(cell_label)
    app.add_template_global(file_url)
    app.add_template_global(thumb_url)
    app.add_template_global(elapsed_seconds)
    app.add_template_global(seconds_left)
    app.add_template_global(UPLOAD_LIMITS, "upload_limits")
    app.add_template_global(edit_base)
    app.add_template_global(edit_price)
    app.add_template_global(list(OPERATIONS.values()), "edit_operations")
    app.context_processor(page_globals)
