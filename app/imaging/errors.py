"""The one error the pixel work raises: bytes that are not a usable image."""

from __future__ import annotations

NOT_AN_IMAGE = "The API answered with something that is not a valid image"
TOO_LARGE = "The API answered with an implausibly large image"


class ImageError(Exception):
    """Image bytes that cannot be decoded, checked or scaled; `reason` is said to the person."""

    def __init__(self, reason: str = NOT_AN_IMAGE) -> None:
        super().__init__(reason)
        self.reason = reason
