"""The MIME types of the files a store holds, and the extensions their names carry."""

from __future__ import annotations

EXTENSION_BY_MIME = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}
MIME_BY_EXTENSION = {extension: mime for mime, extension in EXTENSION_BY_MIME.items()}


def content_type_of(name: str) -> str:
    """The MIME type our file names carry in their extension."""
    return MIME_BY_EXTENSION.get("." + name.rsplit(".", 1)[-1], "application/octet-stream")


def extension_of(mime_type: str | None) -> str:
    """The extension a file of this MIME type is named with ('.bin' for anything else)."""
    return EXTENSION_BY_MIME.get(mime_type or "", ".bin")
