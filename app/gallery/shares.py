"""Share links: made and revoked by their owner (/share-links/), and opened signed out at /s/<token>.

A link's page shows only what it names, and its files are served through the link, never by the image's own URL:
once the link is revoked or expired every URL of it answers 404. With S3 the files are presigned URLs of
S3_URL_TTL seconds, fetched with no referrer.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from app.accounts import ownership
from app.curation import collections, share_links
from app.curation.share_links import EXPIRY_DAYS, ShareLinkError
from app.media.archive import archive_name, selection_name, zip_response
from app.media.urls import file_version, thumb_source
from app.media_store.content_types import content_type_of
from app.media_store.s3 import content_disposition
from app.models import Generation, ShareLink
from app.services import services

bp = Blueprint("shares", __name__)
public = Blueprint("shared", __name__)


@bp.before_request
@public.before_request
def share_links_on() -> None:
    """SHARE_LINKS=off: no link is made or opened on this install."""
    if not current_app.config["SHARE_LINKS"]:
        abort(404)


def _mine() -> object:
    """The links the signed-in user may list and revoke: their own (an admin's own too)."""
    return ShareLink.owner_id == current_user.id


@bp.get("/share-links/")
def index() -> str:
    """Your live share links, each with what it shows, when it expires, and Revoke."""
    return render_template("gallery/share_links.html", links=share_links.live_links(_mine()), created=None)


def _expiry(raw: str) -> int | None:
    """'1', '7', '30' or 'never' from the form; anything else is refused."""
    if raw == "never":
        return None
    if raw in {str(days) for days in EXPIRY_DAYS if days}:
        return int(raw)
    abort(400)


@bp.post("/share-links/")
def create() -> str:
    """Make a link to one of your images or collections; its address is shown this once."""
    image, collection = request.form.get("generation_id", ""), request.form.get("collection_id", "")
    target: dict[str, object] = {}
    if image.isdecimal() and len(image) < 11:
        target["generation"] = ownership.generation_or_404(int(image))
    elif collection.isdecimal() and len(collection) < 11:
        found = ownership.collection_or_404(int(collection))
        if not ownership.owns(found.owner_id):
            abort(404)
        target["collection"] = found
    else:
        abort(400)
    try:
        made = share_links.create_link(current_user, expires_in_days=_expiry(request.form.get("expires_in_days", "")),
                                       show_owner=request.form.get("show_owner") == "1", **target)  # type: ignore[arg-type]
    except ShareLinkError as exc:
        flash(str(exc))
        return index()
    return render_template("gallery/share_links.html", links=share_links.live_links(_mine()), created=made,
                           created_url=url_for("shared.page", token=made.token, _external=True))


@bp.post("/share-links/<int:link_id>/revoke")
def revoke(link_id: int) -> Response:
    """End a link now: its page and files answer 404 from here on."""
    link = share_links.link_or_none(link_id, _mine())
    if link is None:
        abort(404)
    share_links.revoke(link)
    flash("Share link revoked: it shows nothing any more.")
    return redirect(url_for("shares.index"), code=303)


def _link_or_404(token: str) -> ShareLink:
    link = share_links.resolve(token)
    if link is None:
        abort(404)
    return link


def _images(link: ShareLink) -> list[Generation]:
    """What the link names: its image, or its collection's images."""
    if link.generation is not None:
        return [link.generation] if link.generation.has_image else []
    return collections.images_of(link.collection_id) if link.collection_id else []


def _named_or_404(link: ShareLink, generation_id: int) -> Generation:
    """One of the link's images; any other id answers as a missing one."""
    for image in _images(link):
        if image.id == generation_id:
            return image
    abort(404)


def _private(response: Response) -> Response:
    """Not indexed, sending no referrer, and kept by no cache: a revoked link must show nothing, even from cache."""
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@public.get("/s/<token>")
def page(token: str) -> Response:
    """The image or the collection the link names, with a larger view and downloads; nothing else of its owner's."""
    link = _link_or_404(token)
    images = _images(link)
    if not images and link.generation_id:
        abort(404)
    body = render_template("gallery/shared.html", link=link, token=token, images=images,
                           owner=link.owner.email if link.show_owner and link.owner else None)
    return _private(Response(body, mimetype="text/html"))


def _send(generation: Generation, name: str, mimetype: str, download_name: str | None = None) -> Response:
    """The stored file: a presigned redirect (S3) or the bytes streamed, never cached."""
    store = services().stores.get(generation.storage)
    direct = store.url(name, mimetype, download_name)
    if direct:
        return _private(redirect(direct, code=302))
    stored = store.open(name)
    response = Response(stored.chunks(), mimetype=mimetype, direct_passthrough=True)
    response.content_length = stored.size
    response.set_etag(file_version(name))
    if download_name:
        response.headers["Content-Disposition"] = content_disposition(download_name)
    return _private(response)


@public.get("/s/<token>/images/<int:generation_id>/file")
def file(token: str, generation_id: int) -> Response:
    """One of the link's image files (a download with ?download=1)."""
    image = _named_or_404(_link_or_404(token), generation_id)
    download = archive_name(image) if request.args.get("download") == "1" else None
    return _send(image, image.file_name or "", image.mime_type or "application/octet-stream", download)


@public.get("/s/<token>/images/<int:generation_id>/thumb")
def thumb(token: str, generation_id: int) -> Response:
    """One of the link's thumbnails."""
    image = _named_or_404(_link_or_404(token), generation_id)
    mimetype = content_type_of(image.thumb_name) if image.thumb_name else image.mime_type
    return _send(image, thumb_source(image) or "", mimetype or "application/octet-stream")


@public.get("/s/")
@public.get("/s/<path:rest>")
def unknown(rest: str = "") -> Response:
    """Anything else under /s/ (a mangled link): 404 signed out too, never the sign-in page."""
    abort(404)


@public.get("/s/<token>/images.zip")
def download(token: str) -> Response:
    """Every image the link names, in one streamed ZIP."""
    images = _images(_link_or_404(token))
    return _private(zip_response([(selection_name(g), g) for g in images], "shared-images.zip", services().stores))
