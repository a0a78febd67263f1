"""Image URLs that name the stored file's version, so a cached copy can never stand in for a replaced image."""

from __future__ import annotations

import hashlib

from flask import url_for

from app.models import Generation


def file_version(name: str) -> str:
    """A short token for one stored file name: a new file (retry, reused id) gets a new token, hence a new URL."""
    return hashlib.blake2s(name.encode(), digest_size=6).hexdigest()


def thumb_source(generation: Generation) -> str | None:
    """The stored name served as the thumbnail; images from before thumbnails existed show the file itself."""
    return generation.thumb_name or generation.file_name


def file_url(generation: Generation, download: bool = False, external: bool = False) -> str | None:
    """URL of the image file at its current version, or None when nothing is stored (absolute if `external`)."""
    if not generation.file_name:
        return None
    extra = {"download": 1} if download else {}
    return url_for("media.file", generation_id=generation.id, v=file_version(generation.file_name),
                   _external=external, **extra)


def thumb_url(generation: Generation, external: bool = False) -> str | None:
    """URL of the thumbnail at its current version, or None when nothing is stored (absolute if `external`)."""
    source = thumb_source(generation)
    if not source:
        return None
    return url_for("media.thumb", generation_id=generation.id, v=file_version(source), _external=external)
