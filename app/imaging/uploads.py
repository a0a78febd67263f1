"""A picture someone uploads, checked as hostile input: its size, its type found by decoding it, its pixel count
before and while decoding, the whole of it decoded, and its metadata dropped by encoding the pixels afresh."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

UPLOAD_MAX_BYTES = 10 * 1024 * 1024
UPLOAD_MAX_PIXELS = 16_777_216  # 4096 × 4096: more than any operation takes, far less than a bomb
UPLOAD_MAX_SIDE = 8_192
FORMATS = ("PNG", "JPEG", "WEBP")
MIME_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
ACCEPT = ".png,.jpg,.jpeg,.webp,image/png,image/jpeg,image/webp"  # what the file picker offers, nothing more

EMPTY = "The file is empty."
TOO_LARGE = "The file is larger than 10 MiB; upload an image of at most 10 MiB."
NOT_AN_IMAGE = "This file is not a PNG, JPEG or WebP image."
CUT_SHORT = "The image is cut short or damaged: it could not be read to the end."
LIMIT = "at most 16.7 million pixels (4096 × 4096) and 8,192 on a side are accepted."
BOMB = "The image declares {width:,} × {height:,} pixels; " + LIMIT
HUGE = "The image declares far too many pixels; " + LIMIT

# A truncated file must fail, not come back part-grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class UploadRefused(ValueError):
    """An upload that is not taken; the message says why, for the person who sent it."""


@dataclass(frozen=True)
class CheckedUpload:
    """An upload that passed: its pixels, and the same encoded afresh without metadata."""

    data: bytes
    mime_type: str
    output_format: str  # "png", "jpeg" or "webp", as the options name them
    image: Image.Image

    @property
    def width(self) -> int:
        """Pixels across."""
        return self.image.width

    @property
    def height(self) -> int:
        """Pixels down."""
        return self.image.height


def check_upload(data: bytes) -> CheckedUpload:
    """The upload decoded and re-encoded, or UploadRefused saying why not; nothing is written anywhere."""
    if not data:
        raise UploadRefused(EMPTY)
    if len(data) > UPLOAD_MAX_BYTES:
        raise UploadRefused(TOO_LARGE)
    image, fmt = _decoded(data)
    image = _plain(image)
    return CheckedUpload(_encoded(image, fmt), MIME_TYPES[fmt], fmt.lower(), image)


def refuse_too_many_pixels(width: int, height: int) -> None:
    """UploadRefused if a header declares more pixels than an upload may have."""
    if width * height > UPLOAD_MAX_PIXELS or max(width, height) > UPLOAD_MAX_SIDE or min(width, height) < 1:
        raise UploadRefused(BOMB.format(width=width, height=height))


def _decoded(data: bytes) -> tuple[Image.Image, str]:
    """The first frame, decoded in full after its header's size was checked; the format is what decoded it."""
    with warnings.catch_warnings():
        # Pillow's own bomb guard warns before it raises: both are a refusal here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=FORMATS)  # the header only: the name and type are never read
        except (UnidentifiedImageError, SyntaxError, ValueError, OSError):
            raise UploadRefused(NOT_AN_IMAGE) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UploadRefused(HUGE) from None
        fmt = image.format
        if fmt not in FORMATS:
            raise UploadRefused(NOT_AN_IMAGE)
        refuse_too_many_pixels(*image.size)
        try:
            image.seek(0)  # an animation: its first frame
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UploadRefused(BOMB.format(width=image.width, height=image.height)) from None
        except (OSError, SyntaxError, ValueError, EOFError, MemoryError):
            raise UploadRefused(CUT_SHORT) from None
    return image, fmt


def _plain(image: Image.Image) -> Image.Image:
    """RGB or RGBA in sRGB, turned as the camera's orientation tag says, so dropping the metadata changes nothing
    anyone sees."""
    try:
        profile = image.info.get("icc_profile")
        image = ImageOps.exif_transpose(image) or image
        alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
        if image.mode == "P" or image.mode.startswith("I") or image.mode == "F":
            image = image.convert("RGBA" if alpha else "RGB")
        if profile:
            image = _in_srgb(image, profile)
        mode = "RGBA" if alpha or image.mode in ("RGBA", "LA") else "RGB"
        return image.convert(mode) if image.mode != mode else image
    except (OSError, ValueError, SyntaxError):
        raise UploadRefused(CUT_SHORT) from None


def _in_srgb(image: Image.Image, profile: bytes) -> Image.Image:
    """The pixels converted from their embedded colour profile to sRGB; unchanged when the profile is unusable."""
    mode = "RGBA" if image.mode in ("RGBA", "LA") else "RGB"
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        return ImageCms.profileToProfile(image.convert(mode), source, ImageCms.createProfile("sRGB"),
                                         outputMode=mode) or image
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return image


def _encoded(image: Image.Image, fmt: str) -> bytes:
    """The pixels alone in their own format: no EXIF, XMP, text chunks or colour profile survive."""
    buffer = io.BytesIO()
    if fmt == "PNG":
        image.save(buffer, format="PNG", compress_level=6)
    elif fmt == "JPEG":
        image.save(buffer, format="JPEG", quality=95, subsampling=0)
    else:
        image.save(buffer, format="WEBP", quality=95, method=4)
    return buffer.getvalue()
