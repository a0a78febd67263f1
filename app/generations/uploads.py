"""A picture of the user's own kept as an image of theirs: checked, then its file and thumbnail written, then its
row; nothing is written before the checks pass, and no file outlives a row that was not made."""

from __future__ import annotations

from app.generations import lifecycle
from app.imaging.errors import ImageError
from app.imaging.thumbnails import make_thumbnail
from app.imaging.uploads import CUT_SHORT, UploadRefused, check_upload
from app.media_store import orphans
from app.media_store.base import new_file_name
from app.models import Generation, User
from app.services import services


def store_upload(owner: User, data: bytes) -> Generation:
    """Keep the upload as a finished image of `owner`; UploadRefused (nothing written) when it is not taken."""
    checked = check_upload(data)
    try:
        thumbnail = make_thumbnail(checked.image)
    except ImageError:
        raise UploadRefused(CUT_SHORT) from None
    app_services = services()
    store = app_services.stores.current
    file_name, thumb_name = new_file_name(checked.mime_type), new_file_name(thumbnail.mime_type)
    stored = False
    try:
        store.put(file_name, checked.data, checked.mime_type)
        store.put(thumb_name, thumbnail.data, thumbnail.mime_type)
        generation = lifecycle.create_upload(
            owner, file_name=file_name, mime_type=checked.mime_type, byte_size=len(checked.data),
            storage=store.name, width=checked.width, height=checked.height, output_format=checked.output_format,
            thumb_name=thumb_name, thumb_width=thumbnail.width, thumb_height=thumbnail.height)
        stored = True
        return generation
    finally:
        if not stored:
            orphans.discard(app_services.stores, app_services.redis, store.name, [file_name, thumb_name])
