"""Uploads as hostile input: what is kept (an "Uploaded" image, free, metadata gone, alpha kept) and what is refused
with a clear message and nothing written (no row, no file): a bomb, a cut file, a renamed program, 30 MB, 20,000²."""

import io
import struct
import sys
import zlib
from pathlib import Path

import pytest
import sqlalchemy as sa
from factories import make_token, make_user
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin
from tests_support import bearer, csrf_for, sign_in

from app.extensions import db
from app.imaging import uploads
from app.models import Batch, Generation, Status


def chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk with its length and CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def black_png(width: int, height: int, rows: int | None = None, extra: bytes = b"") -> bytes:
    """A 1-bit black PNG built by hand (never decoded here): `rows` of its rows compressed, all by default."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(height if rows is None else rows)) + packer.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + extra + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def noise(mode: str = "RGB", size: tuple[int, int] = (256, 192), fmt: str = "PNG", **save) -> bytes:
    """A picture of random pixels (nothing compresses it away), encoded as asked."""
    image = Image.frombytes(mode, size, bytes((i * 7919) % 251 for i in range(size[0] * size[1] * len(mode))))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def text_bomb() -> bytes:
    """A small PNG whose zTXt chunk inflates to 200 MB."""
    packed = zlib.compress(b"\x00" * 200_000_000, 9)
    return black_png(64, 64, extra=chunk(b"zTXt", b"Comment\x00\x00" + packed))


def cut(data: bytes) -> bytes:
    return data[: len(data) * 2 // 3]


REFUSED = {
    "a decompression bomb (64k × 64k, 1-bit)": (black_png(65_535, 65_535, rows=16), uploads.HUGE),
    "a text-chunk bomb": (text_bomb(), uploads.NOT_AN_IMAGE),
    "a truncated PNG": (cut(noise()), uploads.CUT_SHORT),
    "a truncated JPEG": (cut(noise(fmt="JPEG", quality=90)), uploads.CUT_SHORT),
    "a renamed executable": (Path(sys.executable).read_bytes()[:300_000], uploads.NOT_AN_IMAGE),
    "a 20,000 × 20,000 PNG": (black_png(20_000, 20_000), uploads.HUGE),
    "a 9,000 × 2,000 PNG (over the side and pixel limits, under Pillow's)": (
        black_png(9_000, 2_000), uploads.BOMB.format(width=9_000, height=2_000)),
    "a GIF": (noise(mode="P", fmt="GIF"), uploads.NOT_AN_IMAGE),
    "an empty file": (b"", uploads.EMPTY),
}


def nothing_written(app) -> None:
    """No row and no file: the refusal happened before anything was stored."""
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Generation)) == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Batch)) == 0
    media = Path(app.config["MEDIA_ROOT"])
    assert not media.exists() or not [p for p in media.rglob("*") if p.is_file()]


def page_upload(client, data: bytes, name: str = "photo.png", htmx: bool = False):
    token = csrf_for(client)
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post("/all/upload", data={"csrf_token": token, "file": (io.BytesIO(data), name, "image/png")},
                       content_type="multipart/form-data", headers=headers)


@pytest.fixture
def ann(accounts_app):
    make_user(accounts_app, "ann@example.com")
    return accounts_app.test_client(), bearer(make_token(accounts_app, "ann@example.com"))


def test_an_uploaded_png_becomes_a_free_finished_image_named_uploaded(app, client):
    response = page_upload(client, noise("RGBA"))
    assert response.status_code == 303
    with app.app_context():
        image = db.session.scalars(sa.select(Generation)).one()
        assert (image.operation, image.provider, image.status, image.credits) == ("upload", "upload",
                                                                                 Status.SUCCEEDED, 0)
        assert (image.width, image.height, image.mime_type, image.prompt) == (256, 192, "image/png", "")
        assert image.thumb_name and image.is_upload
    assert response.headers["Location"] == f"/images/{image.id}"
    stored = Image.open(io.BytesIO(client.get(f"/images/{image.id}/file").data))
    assert stored.mode == "RGBA"  # the alpha survives the re-encoding
    assert client.get(f"/images/{image.id}/thumb").status_code == 200
    detail = client.get(f"/images/{image.id}").get_data(as_text=True)
    assert "<h1 class=\"batch-title\">Uploaded</h1>" in detail
    assert "Uploaded" in client.get("/all/").get_data(as_text=True)
    assert f"/?reuse={image.id}" not in detail  # nothing to reuse: it has no prompt


def test_metadata_is_stripped_and_the_camera_orientation_applied(app, client):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view"
    exif[0x010F] = "SecretCam"
    jpeg = noise(fmt="JPEG", exif=exif.tobytes(), quality=90)
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "where I live")
    png = noise(fmt="PNG", pnginfo=info)
    for data in (jpeg, png):
        assert page_upload(client, data).status_code == 303
    with app.app_context():
        kept = db.session.scalars(sa.select(Generation).order_by(Generation.id)).all()
    from_jpeg, from_png = (Image.open(io.BytesIO(client.get(f"/images/{g.id}/file").data)) for g in kept)
    assert from_jpeg.size == (192, 256)  # turned upright
    assert not from_jpeg.getexif() and b"SecretCam" not in client.get(f"/images/{kept[0].id}/file").data
    assert "parameters" not in from_png.info and b"where I live" not in client.get(f"/images/{kept[1].id}/file").data


@pytest.mark.parametrize("case", REFUSED)
def test_hostile_uploads_are_refused_with_a_clear_message_and_nothing_written(app, client, case):
    data, message = REFUSED[case]
    page = page_upload(client, data, name="holiday.png")
    assert page.status_code == 422
    assert message in page.get_data(as_text=True)
    htmx = page_upload(client, data, htmx=True)
    assert htmx.status_code == 422 and 'id="upload-error"' in htmx.get_data(as_text=True)
    api = app.test_client().post("/api/uploads", data={"file": (io.BytesIO(data), "holiday.png", "image/png")},
                      content_type="multipart/form-data")
    assert api.status_code == 422
    assert api.get_json()["error"] == {"code": "upload_refused", "message": message, "fields": {"file": message}}
    nothing_written(app)


BOUNDARY = "upload-test-boundary"


def multipart(data: bytes, **fields: str) -> dict:
    """A multipart body with `data` as its file part, built here: the test client's own spools to a file it leaves
    open."""
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields.items()]
    parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
                 "Content-Type: image/png\r\n\r\n".encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode())
    return {"data": b"".join(parts), "content_type": f"multipart/form-data; boundary={BOUNDARY}"}


def test_a_30_mb_file_is_refused_by_its_length_before_it_is_read(app, client):
    data = b"\x89PNG\r\n\x1a\n" + bytes(30 * 1024 * 1024)
    page = client.post("/all/upload", **multipart(data, csrf_token=csrf_for(client)))
    assert page.status_code == 413 and uploads.TOO_LARGE in page.get_data(as_text=True)
    api = app.test_client().post("/api/uploads", **multipart(data))
    assert api.status_code == 413 and api.get_json()["error"]["message"] == uploads.TOO_LARGE
    nothing_written(app)


def test_a_file_just_over_10_mib_inside_the_body_limit_is_refused_too(app):
    api = app.test_client().post("/api/uploads", **multipart(bytes(uploads.UPLOAD_MAX_BYTES + 1)))
    assert api.status_code == 422 and api.get_json()["error"]["message"] == uploads.TOO_LARGE
    nothing_written(app)


def test_the_api_answers_201_with_the_image_body_and_its_location(ann):
    client, auth = ann
    response = client.post("/api/uploads", data={"file": (io.BytesIO(noise(fmt="WEBP")), "x.bin")},
                           content_type="multipart/form-data", headers=auth)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["provider"], body["status"], body["mime_type"], body["width"]) == ("upload", "succeeded",
                                                                                   "image/webp", 256)
    assert response.headers["Location"].endswith(f"/api/images/{body['id']}")
    assert client.get(f"/api/images/{body['id']}", headers=auth).status_code == 200


def test_someone_elses_upload_answers_404(accounts_app, ann):
    client, auth = ann
    body = client.post("/api/uploads", data={"file": (io.BytesIO(noise()), "x.png")},
                       content_type="multipart/form-data", headers=auth).get_json()
    make_user(accounts_app, "bob@example.com")
    bob = accounts_app.test_client()
    sign_in(bob, "bob@example.com")
    assert bob.get(f"/images/{body['id']}").status_code == 404
    assert bob.get(f"/images/{body['id']}/file").status_code == 404


def test_the_upload_form_is_on_the_home_page_and_the_gallery(client):
    for path in ("/", "/all/"):
        page = client.get(path).get_data(as_text=True)
        assert 'id="upload-form"' in page and 'enctype="multipart/form-data"' in page and "js/upload.js" in page


SEED_PNG = noise(size=(32, 24))
FUZZED: dict = {}


def fuzzed_app(make_app):
    """One app for every example of the fuzz test (the fixture runs once for all of them), its rate limit off."""
    if make_app not in FUZZED:
        FUZZED.clear()
        FUZZED[make_app] = make_app(API_RATE_LIMIT="1000000/minute")
    return FUZZED[make_app]


@st.composite
def hostile_bytes(draw) -> bytes:
    """Random bytes, or a real PNG with some of its bytes changed, cut or repeated."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=4096))
    data = bytearray(SEED_PNG)
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))])


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=hostile_bytes(), name=st.text(max_size=40), content_type=st.sampled_from(
    ["image/png", "image/jpeg", "application/octet-stream", "text/html", ""]))
def test_fuzzing_the_upload_endpoint_never_gives_a_5xx(make_app, data, name, content_type):
    client = fuzzed_app(make_app).test_client()
    response = client.post("/api/uploads", data={"file": (io.BytesIO(data), name or "f", content_type)},
                           content_type="multipart/form-data")
    assert response.status_code in (201, 422), response.get_data(as_text=True)
